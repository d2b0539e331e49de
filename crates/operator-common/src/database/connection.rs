//! The types of the database module: where a database comes from ([`Source`]), a usable
//! connection ([`Connection`]) and the `DatabaseReady` outcome ([`Readiness`]). A leaf.

use std::time::Duration;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};
use synapse_types::common::DatabaseConnectionInfo;
use synapse_types::{CONDITION_DATABASE_READY, ExternalPostgreSQL};

use crate::conditions::{ConditionStatus, ConditionUpdate};

pub const CNPG_GROUP: &str = "postgresql.cnpg.io";
pub const CNPG_VERSION: &str = "v1";
pub const CNPG_CLUSTER_KIND: &str = "Cluster";
pub const CNPG_CLUSTER_PLURAL: &str = "clusters";

/// The environment variable that carries the password into the container.
pub const PASSWORD_ENV: &str = "PGPASSWORD";

/// The keys a connection Secret must have (CloudNativePG's `-app` Secret has them all).
pub const REQUIRED_KEYS: [&str; 5] = ["host", "port", "dbname", "username", "password"];

/// libpq's `sslmode` values.
pub(super) const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// How often a workload whose database needs CloudNativePG looks again for its CRD: a missing
/// CRD cannot be watched.
pub const CRD_RETRY: Duration = Duration::from_secs(30);

/// Where a workload's PostgreSQL comes from, as its spec asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A CloudNativePG Cluster the operator creates.
    Provisioned(ProvisionedDatabase),
    /// An existing server, named by a Secret.
    External { secret: String },
}

/// The Cluster the operator provisions and the database inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedDatabase {
    /// Name of the CloudNativePG Cluster.
    pub cluster: String,
    /// Database name and its owner role.
    pub database: String,
    pub owner: String,
    /// StorageClass of the Cluster's volume (default: the cluster's default class).
    pub storage_class: Option<String>,
}

impl Source {
    /// The source `createNewPostgreSQL` / `externalPostgreSQL` ask for, if any.
    pub fn from_spec(
        create: bool,
        external: Option<&ExternalPostgreSQL>,
        provisioned: impl FnOnce() -> ProvisionedDatabase,
    ) -> Option<Self> {
        match (create, external) {
            (_, Some(external)) => Some(Source::External {
                secret: external.secret_name.clone(),
            }),
            (true, None) => Some(Source::Provisioned(provisioned())),
            (false, None) => None,
        }
    }

    /// The spec field that asks for this source (the same on every kind), for messages.
    pub fn spec_field(&self) -> &'static str {
        match self {
            Source::Provisioned(_) => "spec.createNewPostgreSQL",
            Source::External { .. } => "spec.externalPostgreSQL.secretName",
        }
    }

    /// The Secret holding the connection and the password.
    pub fn secret_name(&self) -> String {
        match self {
            Source::Provisioned(db) => app_secret_name(&db.cluster),
            Source::External { secret } => secret.clone(),
        }
    }
}

/// The Secret CloudNativePG writes for a Cluster's application user.
pub fn app_secret_name(cluster: &str) -> String {
    format!("{cluster}-app")
}

/// A usable connection. No password: it stays in the Secret, only its fingerprint is kept so
/// that a rotation changes the workload's pod template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub secret: String,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub username: String,
    pub sslmode: Option<String>,
    /// SHA-256 of the password, for the pod template's config hash only. That hash also covers
    /// generated secrets, so it does not let anyone test password guesses.
    pub password_fingerprint: [u8; 32],
}

impl Connection {
    /// The container's `PGPASSWORD`, taken from the Secret by the kubelet.
    pub fn password_env(&self) -> EnvVar {
        EnvVar {
            name: PASSWORD_ENV.to_owned(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: self.secret.clone(),
                    key: "password".to_owned(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            value: None,
        }
    }

    /// The status field: where the database is, never the password.
    pub fn info(&self, ready: bool) -> DatabaseConnectionInfo {
        DatabaseConnectionInfo {
            connection_url: Some(format!("{}:{}", self.host, self.port)),
            database_name: Some(self.dbname.clone()),
            user: Some(self.username.clone()),
            state: Some(if ready { "READY" } else { "NOT READY" }.to_owned()),
        }
    }

    /// Whether both name the same database on the same server.
    pub fn same_database(&self, host: &str, port: u16, dbname: &str) -> bool {
        self.host.eq_ignore_ascii_case(host) && self.port == port && self.dbname == dbname
    }

    /// Whether another workload's published [`Connection::info`] names this database, e.g. a
    /// bridge's connection and its Synapse's status. Info it cannot read names nothing.
    pub fn same_database_as(&self, info: &DatabaseConnectionInfo) -> bool {
        let endpoint = info
            .connection_url
            .as_deref()
            .and_then(|url| url.rsplit_once(':'));
        match (endpoint, info.database_name.as_deref()) {
            (Some((host, port)), Some(dbname)) => port
                .parse()
                .is_ok_and(|port| self.same_database(host, port, dbname)),
            _ => false,
        }
    }
}

/// Why the database cannot be used yet: the `DatabaseReady=False` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
    /// When to look again without a watch event (only for what cannot be watched).
    pub retry_after: Option<Duration>,
}

impl Problem {
    pub(crate) fn new(reason: &'static str, message: String) -> Self {
        Self {
            reason,
            message,
            retry_after: None,
        }
    }
}

/// The outcome for the `DatabaseReady` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// SQLite on the data volume.
    Sqlite,
    /// The database section of the user's own configuration file, used as written.
    OwnConfiguration,
    /// PostgreSQL from `source`, ready.
    Ready {
        source: Source,
        connection: Connection,
    },
    /// PostgreSQL not usable (yet).
    NotReady(Problem),
}

impl Readiness {
    /// The `DatabaseReady` condition for this outcome.
    pub fn condition(&self) -> ConditionUpdate<'_> {
        let (status, reason, message): (_, &str, &str) = match self {
            Readiness::Sqlite => (ConditionStatus::True, "SQLite", "SQLite on the data volume"),
            Readiness::OwnConfiguration => (
                ConditionStatus::True,
                "OwnConfiguration",
                "the database section of your own configuration file is used as written",
            ),
            Readiness::Ready {
                source: Source::Provisioned(_),
                ..
            } => (
                ConditionStatus::True,
                "ClusterReady",
                "the CloudNativePG Cluster is ready",
            ),
            Readiness::Ready {
                source: Source::External { .. },
                ..
            } => (
                ConditionStatus::True,
                "SecretReady",
                "the connection Secret names a complete connection",
            ),
            Readiness::NotReady(problem) => {
                (ConditionStatus::False, problem.reason, &problem.message)
            }
        };
        ConditionUpdate {
            type_: CONDITION_DATABASE_READY,
            status,
            reason,
            message,
            observed_generation: None,
        }
    }

    /// When to look again without a watch event, for a database that cannot be watched.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Readiness::NotReady(problem) => problem.retry_after,
            _ => None,
        }
    }

    pub fn connection(&self) -> Option<&Connection> {
        match self {
            Readiness::Ready { connection, .. } => Some(connection),
            _ => None,
        }
    }

    /// The status field `databaseConnectionInfo` after this outcome, `previous` being the
    /// published one: where the database is while ready; where it was, marked NOT READY, while
    /// it cannot be used; nothing for SQLite or a configuration file's own database.
    pub fn connection_info(
        &self,
        previous: Option<DatabaseConnectionInfo>,
    ) -> Option<DatabaseConnectionInfo> {
        match (self, previous) {
            (Readiness::Ready { connection, .. }, _) => Some(connection.info(true)),
            (Readiness::NotReady(_), Some(info)) => Some(DatabaseConnectionInfo {
                state: Some("NOT READY".to_owned()),
                ..info
            }),
            _ => None,
        }
    }
}
