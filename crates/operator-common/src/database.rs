//! PostgreSQL for a workload (Synapse, mautrix-signal): a database provisioned through
//! CloudNativePG, or an existing server named by a Secret with CloudNativePG's keys.
//!
//! Either way the operator reads the connection from a Secret, puts host, port, database and user
//! into the workload's configuration and hands the password to the container only as the
//! `PGPASSWORD` environment variable (libpq and Go's lib/pq both read it), so it never lands in a
//! configuration file, a status or a log line.

use std::time::Duration;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, Secret, SecretKeySelector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::core::Status;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt as _};
use serde_json::json;
use sha2::{Digest, Sha256};
use synapse_types::common::DatabaseConnectionInfo;
use synapse_types::{CONDITION_DATABASE_READY, ExternalPostgreSQL};

use crate::conditions::{ConditionStatus, ConditionUpdate};
use crate::retained::retained_metadata_patch;

pub const CNPG_GROUP: &str = "postgresql.cnpg.io";
pub const CNPG_VERSION: &str = "v1";
pub const CNPG_CLUSTER_KIND: &str = "Cluster";
pub const CNPG_CLUSTER_PLURAL: &str = "clusters";

/// The objects a Secret matters to: the one it belongs to when it is `field_manager`'s, and those
/// whose database Secret it is (`source_of` reads an object's spec). For one watch of all Secrets:
/// a user's database Secret or CloudNativePG's carries no label of ours.
pub fn secret_triggers<K>(
    objects: &Store<K>,
    field_manager: &str,
    secret: &Secret,
    source_of: impl Fn(&K) -> Option<Source>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let mut found: Vec<ObjectRef<K>> = crate::labels::owning_instance(secret, field_manager)
        .into_iter()
        .collect();
    let (Some(name), Some(namespace)) = (secret.metadata.name.as_deref(), secret.namespace())
    else {
        return found;
    };
    found.extend(
        objects
            .state()
            .iter()
            .filter(|object| object.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|object| source_of(object).is_some_and(|s| s.secret_name() == name))
            .map(|object| ObjectRef::from_obj(object.as_ref())),
    );
    found
}

/// The environment variable that carries the password into the container.
pub const PASSWORD_ENV: &str = "PGPASSWORD";

/// The keys a connection Secret must have (CloudNativePG's `-app` Secret has them all).
pub const REQUIRED_KEYS: [&str; 5] = ["host", "port", "dbname", "username", "password"];

/// libpq's `sslmode` values.
const SSL_MODES: [&str; 6] = [
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

/// The CloudNativePG `Cluster` resource.
pub fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(CNPG_GROUP, CNPG_VERSION, CNPG_CLUSTER_KIND),
        CNPG_CLUSTER_PLURAL,
    )
}

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
    fn new(reason: &'static str, message: String) -> Self {
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

/// Reads a connection Secret (`None`: it does not exist). `field` names where the Secret comes
/// from, for the messages.
pub fn read_secret(
    name: &str,
    secret: Option<&Secret>,
    field: &str,
) -> Result<Connection, Problem> {
    let Some(secret) = secret else {
        return Err(Problem::new(
            "SecretNotFound",
            format!(
                "Secret {name} ({field}) does not exist: create it with the keys {}",
                REQUIRED_KEYS.join(", ")
            ),
        ));
    };
    let data = secret.data.clone().unwrap_or_default();
    let missing: Vec<&str> = REQUIRED_KEYS
        .into_iter()
        .filter(|key| data.get(*key).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(Problem::new(
            "SecretKeyMissing",
            format!(
                "Secret {name} ({field}) lacks the key{} {}: a connection Secret needs {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                REQUIRED_KEYS.join(", ")
            ),
        ));
    }
    let text = |key: &str| -> Result<String, Problem> {
        String::from_utf8(data[key].0.clone())
            .map(|v| v.trim().to_owned())
            .map_err(|_| {
                Problem::new(
                    "SecretInvalid",
                    format!("Secret {name} ({field}): the value of {key} is not UTF-8 text"),
                )
            })
    };
    let port_text = text("port")?;
    let port = port_text
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            Problem::new(
                "SecretInvalid",
                format!("Secret {name} ({field}): port {port_text:?} is not a TCP port number"),
            )
        })?;
    let sslmode = match data.get("sslmode").filter(|v| !v.0.is_empty()) {
        None => None,
        Some(_) => {
            let mode = text("sslmode")?;
            if !SSL_MODES.contains(&mode.as_str()) {
                return Err(Problem::new(
                    "SecretInvalid",
                    format!(
                        "Secret {name} ({field}): sslmode {mode:?} is not one of {}",
                        SSL_MODES.join(", ")
                    ),
                ));
            }
            Some(mode)
        }
    };
    let host = text("host")?;
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(Problem::new(
            "SecretInvalid",
            format!("Secret {name} ({field}): host {host:?} is not a host name or address"),
        ));
    }
    Ok(Connection {
        secret: name.to_owned(),
        host,
        port,
        dbname: text("dbname")?,
        username: text("username")?,
        sslmode,
        password_fingerprint: Sha256::digest(&data["password"].0).into(),
    })
}

/// The Cluster for `db`: one instance, the database owned by its role, UTF8 with collation and
/// ctype C as Synapse requires. `meta` carries name, namespace, labels and owner.
pub fn desired_cluster(meta: ObjectMeta, db: &ProvisionedDatabase) -> DynamicObject {
    let mut storage = json!({"size": "10Gi"});
    if let Some(class) = &db.storage_class {
        storage["storageClass"] = json!(class);
    }
    let mut cluster = DynamicObject::new("", &cluster_resource()).data(json!({
        "spec": {
            "instances": 1,
            "storage": storage,
            "bootstrap": {"initdb": {
                "database": db.database,
                "owner": db.owner,
                "encoding": "UTF8",
                "localeCollate": "C",
                "localeCType": "C",
            }},
        }
    }));
    cluster.metadata = meta;
    cluster
}

/// Whether CloudNativePG reports the Cluster ready (its `Ready` condition), else what it says.
pub fn cluster_readiness(cluster: &DynamicObject) -> Result<(), String> {
    let status = &cluster.data["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    if ready.is_some_and(|c| c["status"] == "True") {
        return Ok(());
    }
    let phase = status["phase"].as_str().unwrap_or("no status yet");
    let detail = ready
        .and_then(|c| c["message"].as_str())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Err(format!("phase {phase:?}{detail}"))
}

/// A failed read or write of the API.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct ApiError {
    pub what: String,
    #[source]
    pub source: kube::Error,
}

fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> ApiError {
    let what = what.into();
    move |source| ApiError { what, source }
}

/// The API server answered 404 without a Status naming an object: the resource type itself is
/// unknown (its CRD is not installed).
fn is_unknown_resource(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if unknown_resource_status(status))
}

fn unknown_resource_status(status: &Status) -> bool {
    status.code == 404 && status.reason != "NotFound"
}

/// Where the workload's PostgreSQL stands: creates the Cluster when provisioning (once; later only
/// its labels and owner follow `cluster_meta`), then reads the connection Secret.
/// `owner_kind`/`owner_api_version` identify the workload kind's owner references.
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    source: &Source,
    cluster_meta: impl FnOnce() -> ObjectMeta,
    owner: (&str, &str),
    field_manager: &str,
    field: &str,
) -> Result<Readiness, ApiError> {
    if let Source::Provisioned(db) = source
        && let Err(problem) =
            ensure_cluster(client, namespace, db, cluster_meta(), owner, field_manager).await?
    {
        return Ok(Readiness::NotReady(problem));
    }
    let name = source.secret_name();
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&name)
        .await
        .map_err(api_error(format!("read Secret {namespace}/{name}")))?;
    let connection = match (source, secret) {
        (Source::Provisioned(db), None) => {
            return Ok(Readiness::NotReady(Problem::new(
                "ClusterNotReady",
                format!(
                    "the CloudNativePG Cluster {} is ready but its Secret {name} does not exist yet",
                    db.cluster
                ),
            )));
        }
        (_, secret) => read_secret(&name, secret.as_ref(), field),
    };
    Ok(match connection {
        Ok(connection) => Readiness::Ready {
            source: source.clone(),
            connection,
        },
        Err(problem) => Readiness::NotReady(problem),
    })
}

/// Creates the Cluster once and waits for it to be ready: `Err(problem)` while it is not (or
/// while CloudNativePG is not installed).
async fn ensure_cluster(
    client: &kube::Client,
    namespace: &str,
    db: &ProvisionedDatabase,
    meta: ObjectMeta,
    (owner_kind, owner_api_version): (&str, &str),
    field_manager: &str,
) -> Result<Result<(), Problem>, ApiError> {
    let resource = cluster_resource();
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, &resource);
    let name = &db.cluster;
    let missing_operator = || {
        Ok(Err(Problem {
            reason: "CloudNativePGMissing",
            message: format!(
                "the CloudNativePG operator is not installed (no CRD {CNPG_CLUSTER_PLURAL}.\
                 {CNPG_GROUP}): install CloudNativePG, or use externalPostgreSQL; looking again \
                 every {}s",
                CRD_RETRY.as_secs()
            ),
            retry_after: Some(CRD_RETRY),
        }))
    };
    let existing = match api.get(name).await {
        Ok(cluster) => Some(cluster),
        Err(kube::Error::Api(status)) if unknown_resource_status(&status) => {
            return missing_operator();
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => None,
        Err(e) => return Err(api_error(format!("read Cluster {namespace}/{name}"))(e)),
    };
    let Some(existing) = existing else {
        let desired = desired_cluster(meta, db);
        return match api.create(&PostParams::default(), &desired).await {
            Ok(_) => Ok(Err(Problem::new(
                "ClusterNotReady",
                format!("created the CloudNativePG Cluster {name}; waiting for it to be ready"),
            ))),
            Err(e) if is_unknown_resource(&e) => missing_operator(),
            Err(e) => Err(api_error(format!("create Cluster {namespace}/{name}"))(e)),
        };
    };
    if let Some(patch) =
        retained_metadata_patch(&meta, &existing.metadata, owner_kind, owner_api_version)
    {
        let params = PatchParams {
            field_manager: Some(field_manager.to_owned()),
            ..PatchParams::default()
        };
        api.patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!(
                "update labels and owner of Cluster {namespace}/{name}"
            )))?;
    }
    Ok(cluster_readiness(&existing).map_err(|detail| {
        Problem::new(
            "ClusterNotReady",
            format!("the CloudNativePG Cluster {name} is not ready yet ({detail})"),
        )
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> Secret {
        Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        }
    }

    const COMPLETE: &[(&str, &str)] = &[
        ("host", "db.example.org"),
        ("port", "5432"),
        ("dbname", "synapse"),
        ("username", "synapse"),
        ("password", "s3cret-pw"),
    ];

    #[test]
    fn a_complete_secret_gives_a_connection_without_the_password() {
        let connection = read_secret("db", Some(&secret(COMPLETE)), "spec.x").unwrap();
        assert_eq!(connection.host, "db.example.org");
        assert_eq!(connection.port, 5432);
        assert_eq!(connection.dbname, "synapse");
        assert_eq!(connection.username, "synapse");
        assert_eq!(connection.sslmode, None);
        assert!(!format!("{connection:?}").contains("s3cret-pw"));
        let info = serde_json::to_string(&connection.info(true)).unwrap();
        assert!(!info.contains("s3cret-pw"), "{info}");
        assert!(info.contains("db.example.org:5432"), "{info}");

        let env = connection.password_env();
        assert_eq!(env.name, "PGPASSWORD");
        assert_eq!(
            env.value, None,
            "the value comes from the Secret, not the spec"
        );
        let key = env.value_from.unwrap().secret_key_ref.unwrap();
        assert_eq!((key.name.as_str(), key.key.as_str()), ("db", "password"));
    }

    #[test]
    fn a_rotated_password_changes_only_the_fingerprint() {
        let before = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
        let mut rotated: Vec<_> = COMPLETE.to_vec();
        rotated[4] = ("password", "another");
        let after = read_secret("db", Some(&secret(&rotated)), "f").unwrap();
        assert_ne!(before.password_fingerprint, after.password_fingerprint);
        assert_eq!(
            Connection {
                password_fingerprint: [0; 32],
                ..before
            },
            Connection {
                password_fingerprint: [0; 32],
                ..after
            }
        );
    }

    #[test]
    fn missing_secret_and_keys_are_named() {
        let problem = read_secret("db", None, "spec.externalPostgreSQL.secretName").unwrap_err();
        assert_eq!(problem.reason, "SecretNotFound");
        assert!(problem.message.contains("Secret db"), "{}", problem.message);
        assert!(
            problem
                .message
                .contains("host, port, dbname, username, password")
        );

        let partial = secret(&[("host", "h"), ("port", "5432"), ("password", "")]);
        let problem = read_secret("db", Some(&partial), "f").unwrap_err();
        assert_eq!(problem.reason, "SecretKeyMissing");
        assert!(
            problem
                .message
                .contains("lacks the keys dbname, username, password"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn invalid_values_are_refused_with_the_key() {
        for (key, value, expected) in [
            ("port", "postgres", "port \"postgres\""),
            ("port", "70000", "port \"70000\""),
            ("host", "db host", "host \"db host\""),
        ] {
            let mut pairs = COMPLETE.to_vec();
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            let problem = read_secret("db", Some(&secret(&pairs)), "f").unwrap_err();
            assert_eq!(problem.reason, "SecretInvalid");
            assert!(problem.message.contains(expected), "{}", problem.message);
        }
        let mut pairs = COMPLETE.to_vec();
        pairs.push(("sslmode", "sometimes"));
        let problem = read_secret("db", Some(&secret(&pairs)), "f").unwrap_err();
        assert!(problem.message.contains("sslmode \"sometimes\""));
        pairs.pop();
        pairs.push(("sslmode", "verify-full"));
        let connection = read_secret("db", Some(&secret(&pairs)), "f").unwrap();
        assert_eq!(connection.sslmode.as_deref(), Some("verify-full"));
    }

    #[test]
    fn the_cluster_asks_for_a_c_collated_utf8_database_owned_by_its_role() {
        let db = ProvisionedDatabase {
            cluster: "hs-pgsql".into(),
            database: "synapse".into(),
            owner: "synapse".into(),
            storage_class: Some("fast".into()),
        };
        let meta = ObjectMeta {
            name: Some("hs-pgsql".into()),
            namespace: Some("ns".into()),
            ..ObjectMeta::default()
        };
        let cluster = serde_json::to_value(desired_cluster(meta, &db)).unwrap();
        assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
        assert_eq!(cluster["kind"], "Cluster");
        assert_eq!(cluster["metadata"]["name"], "hs-pgsql");
        let initdb = &cluster["spec"]["bootstrap"]["initdb"];
        assert_eq!(
            initdb,
            &json!({"database": "synapse", "owner": "synapse", "encoding": "UTF8",
                    "localeCollate": "C", "localeCType": "C"})
        );
        assert_eq!(cluster["spec"]["storage"]["storageClass"], "fast");
        assert_eq!(app_secret_name("hs-pgsql"), "hs-pgsql-app");
    }

    #[test]
    fn cluster_readiness_follows_its_ready_condition() {
        let cluster = |status: serde_json::Value| {
            DynamicObject::new("c", &cluster_resource()).data(json!({"status": status}))
        };
        assert_eq!(
            cluster_readiness(&cluster(json!({}))),
            Err("phase \"no status yet\"".into())
        );
        let unhealthy = cluster(json!({
            "phase": "Setting up primary",
            "conditions": [{"type": "Ready", "status": "False", "message": "Cluster Is Not Ready"}]
        }));
        assert_eq!(
            cluster_readiness(&unhealthy),
            Err("phase \"Setting up primary\": Cluster Is Not Ready".into())
        );
        let healthy = cluster(json!({
            "phase": "Cluster in healthy state",
            "conditions": [{"type": "Ready", "status": "True"}]
        }));
        assert_eq!(cluster_readiness(&healthy), Ok(()));
    }

    #[test]
    fn only_a_404_without_an_object_means_an_unknown_resource() {
        let page_not_found =
            Status::failure("404 page not found", "Failed to parse error data").with_code(404);
        assert!(unknown_resource_status(&page_not_found));
        let object_not_found =
            Status::failure("clusters \"x\" not found", "NotFound").with_code(404);
        assert!(!unknown_resource_status(&object_not_found));
    }

    #[test]
    fn published_info_is_compared_by_server_and_database() {
        let connection = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
        let info = |url: &str, db: &str| DatabaseConnectionInfo {
            connection_url: Some(url.into()),
            database_name: Some(db.into()),
            ..DatabaseConnectionInfo::default()
        };
        assert!(connection.same_database_as(&connection.info(false)));
        assert!(connection.same_database_as(&info("DB.example.org:5432", "synapse")));
        assert!(!connection.same_database_as(&info("db.example.org:5433", "synapse")));
        assert!(!connection.same_database_as(&info("db.example.org:5432", "other")));
        assert!(!connection.same_database_as(&info("other.example.org:5432", "synapse")));
        assert!(!connection.same_database_as(&info("db.example.org", "synapse")));
        assert!(!connection.same_database_as(&DatabaseConnectionInfo::default()));
        let mut pairs = COMPLETE.to_vec();
        pairs[0] = ("host", "::1");
        let v6 = read_secret("db", Some(&secret(&pairs)), "f").unwrap();
        assert!(v6.same_database_as(&v6.info(true)));
    }

    #[test]
    fn connection_info_follows_readiness_and_keeps_where_it_was() {
        let connection = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
        let ready = Readiness::Ready {
            source: Source::External {
                secret: "db".into(),
            },
            connection: connection.clone(),
        };
        let published = ready.connection_info(None).unwrap();
        assert_eq!(published, connection.info(true));
        assert_eq!(published.state.as_deref(), Some("READY"));
        let not_ready = Readiness::NotReady(Problem::new("SecretNotFound", "gone".into()));
        let faltering = not_ready.connection_info(Some(published)).unwrap();
        assert_eq!(faltering.state.as_deref(), Some("NOT READY"));
        assert_eq!(
            faltering.connection_url.as_deref(),
            Some("db.example.org:5432")
        );
        assert_eq!(not_ready.connection_info(None), None);
        assert_eq!(Readiness::Sqlite.connection_info(Some(faltering)), None);
    }

    #[test]
    fn the_spec_picks_the_source() {
        let provisioned = || ProvisionedDatabase {
            cluster: "c".into(),
            database: "d".into(),
            owner: "o".into(),
            storage_class: None,
        };
        assert_eq!(Source::from_spec(false, None, provisioned), None);
        let external = ExternalPostgreSQL {
            secret_name: "ext".into(),
        };
        let source = Source::from_spec(false, Some(&external), provisioned).unwrap();
        assert_eq!(source.secret_name(), "ext");
        assert_eq!(source.spec_field(), "spec.externalPostgreSQL.secretName");
        let source = Source::from_spec(true, None, provisioned).unwrap();
        assert_eq!(source.secret_name(), "c-app");
        assert_eq!(source.spec_field(), "spec.createNewPostgreSQL");
    }

    #[test]
    fn a_secret_triggers_its_owner_and_the_objects_whose_database_it_is() {
        use kube::runtime::reflector::store;
        use kube::runtime::watcher;
        use synapse_types::{Synapse, SynapseSpec};

        let synapse = |name: &str, namespace: &str, external: Option<&str>| {
            let mut synapse = Synapse::new(
                name,
                SynapseSpec {
                    homeserver: Default::default(),
                    create_new_postgresql: false,
                    external_postgresql: external.map(|s| ExternalPostgreSQL {
                        secret_name: s.into(),
                    }),
                    is_openshift: false,
                    image: None,
                    storage: None,
                    resources: None,
                    deletion_policy: Default::default(),
                },
            );
            synapse.metadata.namespace = Some(namespace.into());
            synapse
        };
        let (reader, mut writer) = store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for s in [
            synapse("a", "ns", Some("db")),
            synapse("b", "ns", None),
            synapse("c", "other", Some("db")),
        ] {
            writer.apply_watcher_event(&watcher::Event::InitApply(s));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let source = |s: &Synapse| {
            Source::from_spec(
                false,
                s.spec.external_postgresql.as_ref(),
                || unreachable!(),
            )
        };
        let secret = |name: &str, labels: &[(&str, &str)]| Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        let names = |refs: Vec<ObjectRef<Synapse>>| -> Vec<String> {
            refs.into_iter().map(|r| r.name).collect()
        };
        let triggered = |s: &Secret| names(secret_triggers(&reader, "op", s, source));
        assert_eq!(triggered(&secret("db", &[])), ["a"]);
        let ours = [
            ("app.kubernetes.io/instance", "b"),
            ("app.kubernetes.io/managed-by", "op"),
        ];
        assert_eq!(triggered(&secret("b-secrets", &ours)), ["b"]);
        let foreign = [
            ("app.kubernetes.io/instance", "b"),
            ("app.kubernetes.io/managed-by", "helm"),
        ];
        assert!(triggered(&secret("b-secrets", &foreign)).is_empty());
    }
}
