//! Shapes shared by the three kinds.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type that every kind reports: the workload is deployed and its pods are ready.
pub const CONDITION_READY: &str = "Ready";

/// Condition type of the bridges: the bridge's current registration is live on a ready Synapse.
pub const CONDITION_REGISTERED: &str = "Registered";

/// Condition type of Synapse and MautrixSignal: the database the workload is configured with is
/// ready to be used (SQLite, the database of a user's own file, a provisioned CloudNativePG
/// cluster, or an existing server given by a Secret).
pub const CONDITION_DATABASE_READY: &str = "DatabaseReady";

/// CEL rule on a spec with `createNewPostgreSQL` and `externalPostgreSQL`: at most one is set.
/// (`has` on the defaulted field keeps the rule meaningful for objects checked before defaulting.)
pub const ONE_POSTGRESQL_SOURCE_RULE: &str =
    "!(has(self.createNewPostgreSQL) && self.createNewPostgreSQL && has(self.externalPostgreSQL))";

/// CEL transition rule on such a spec: the kind of database (SQLite or a configuration file's
/// own, provisioned, external) stays what it was at creation, since the operator never moves
/// data from one database to another.
pub const DATABASE_KIND_IMMUTABLE_RULE: &str = "(has(self.createNewPostgreSQL) && \
     self.createNewPostgreSQL) == (has(oldSelf.createNewPostgreSQL) && \
     oldSelf.createNewPostgreSQL) && has(self.externalPostgreSQL) == has(oldSelf.externalPostgreSQL)";

/// An existing PostgreSQL server, reached with the credentials in a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalPostgreSQL {
    /// Name of a Secret in this object's namespace with the keys `host`, `port`, `dbname`,
    /// `username` and `password` (the keys of the `-app` Secret CloudNativePG writes, so such a
    /// Secret can be named directly) and optionally `sslmode` (a libpq sslmode such as
    /// `require` or `verify-full`). The password reaches the container only as the `PGPASSWORD`
    /// environment variable; changing it in the Secret restarts the workload.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
}

/// Where a workload's PostgreSQL database is reached. Secrets are never part of it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct DatabaseConnectionInfo {
    /// Endpoint (host:port) of the PostgreSQL server.
    #[serde(
        default,
        rename = "connectionURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub connection_url: Option<String>,

    /// Name of the database.
    #[serde(
        default,
        rename = "databaseName",
        skip_serializing_if = "Option::is_none"
    )]
    pub database_name: Option<String>,

    /// Database user the workload connects as. Its password is kept in a Secret, never in the
    /// status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,

    /// State of the database: READY, or NOT READY while it cannot be used (the DatabaseReady
    /// condition says why). The field name is capitalised as in the original operator.
    #[serde(default, rename = "State", skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A ConfigMap given as input, in the namespace of the object that names it unless told otherwise.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigMapReference {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1))]
    pub name: String,

    /// Namespace of the ConfigMap. When empty, the namespace of this object is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The Synapse a bridge connects to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynapseReference {
    /// Name of the Synapse object the bridge registers with.
    #[schemars(length(min = 1))]
    pub name: String,

    /// Namespace of the Synapse object. When empty, the bridge's own namespace is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// RUNNING when the workload is deployed and ready, FAILED when the object cannot be reconciled
/// (`reason` says why). Kept from the original operator; the conditions carry the detail.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The workload is deployed and ready.
    #[serde(rename = "RUNNING")]
    Running,
    /// The object cannot be reconciled; `status.reason` says why.
    #[serde(rename = "FAILED")]
    Failed,
}
