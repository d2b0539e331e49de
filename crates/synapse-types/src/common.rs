//! Shapes shared by the three kinds.

use kube::KubeSchema;
use kube::core::{Message, Rule};
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

/// Longest Service name: a DNS-1035 label of at most 63 characters.
const MAX_SERVICE_NAME: usize = 63;

/// Longest Cluster name CloudNativePG's webhook accepts (it keeps room for the names it derives
/// from it: Services `-rw`, Pods `-1`, Jobs `-1-initdb`, Secrets `-app`).
const MAX_DATABASE_CLUSTER_NAME: usize = 50;

/// Makes a check of `metadata.name` a creation-time rule (`oldSelf` is empty only on create).
/// A name never changes, so checking it once suffices; and an object stored before the rule
/// existed must stay updatable (status, finalizer removal), since a root rule is not ratcheted.
fn on_creation(check: String, message: String) -> Rule {
    Rule::new(format!("oldSelf.hasValue() || {check}"))
        .optional_old_self(true)
        .message(Message::Message(message))
}

/// Root rule of a kind whose Service is named `NAME{service_suffix}`: the name is a DNS-1035
/// label, as a Service name must be (a Kubernetes object name may also hold dots).
pub fn name_is_dns_label(kind: &str, service_suffix: &str) -> Rule {
    on_creation(
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')".to_owned(),
        format!(
            "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting \
             with a letter and ending with a letter or digit) because it names the {kind}'s \
             Service, NAME{service_suffix}"
        ),
    )
}

/// Root rule: `NAME{service_suffix}`, the Service's name, fits 63 characters. The other names
/// derived from the object's name are Secrets and claims (253 characters), label values and the
/// name part of an app-service annotation key (63, the name alone).
pub fn name_fits_service(kind: &str, service_suffix: &str) -> Rule {
    let max = MAX_SERVICE_NAME - service_suffix.len();
    on_creation(
        format!("self.metadata.name.size() <= {max}"),
        format!(
            "metadata.name must be at most {max} characters because the {kind}'s Service is \
             named NAME{service_suffix} and a Service name is at most {MAX_SERVICE_NAME} \
             characters long"
        ),
    )
}

/// Root rule of a kind with `createNewPostgreSQL`: `NAME{cluster_suffix}`, the CloudNativePG
/// Cluster's name, fits CloudNativePG's limit when a Cluster is provisioned.
pub fn name_fits_database_cluster(kind: &str, cluster_suffix: &str) -> Rule {
    let max = MAX_DATABASE_CLUSTER_NAME - cluster_suffix.len();
    on_creation(
        format!(
            "!(has(self.spec.createNewPostgreSQL) && self.spec.createNewPostgreSQL) || \
             self.metadata.name.size() <= {max}"
        ),
        format!(
            "with createNewPostgreSQL, metadata.name must be at most {max} characters because \
             the {kind}'s CloudNativePG Cluster is named NAME{cluster_suffix} and CloudNativePG \
             accepts Cluster names of at most {MAX_DATABASE_CLUSTER_NAME} characters"
        ),
    )
}

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

    /// Namespace of the ConfigMap. When empty, the namespace of this object is used. Another
    /// namespace is read only when a ReferenceGrant (gateway.networking.k8s.io) there allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The Synapse a bridge connects to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SynapseReference {
    /// Name of the Synapse object the bridge registers with.
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "spec.synapse.name must be a Synapse's name, a DNS-1035 label (lowercase letters, \
         digits and '-', starting with a letter and ending with a letter or digit): it is also \
         the value of the label synapse.opdev.io/synapse"
    ))]
    #[schemars(length(min = 1, max = 63))]
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
