//! The `MautrixSignal` kind: a Signal bridge (mautrix-signal) registered with one Synapse.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{
    ConfigMapReference, DATABASE_KIND_IMMUTABLE_RULE, DatabaseConnectionInfo, ExternalPostgreSQL,
    ONE_POSTGRESQL_SOURCE_RULE, State, SynapseReference, name_fits_database_cluster,
    name_fits_service, name_is_dns_label,
};
use crate::heisenbridge::MATRIX_USER_ID_RULE;
use crate::synapse::{DeletionPolicy, StorageSpec};

/// What the signal-operator appends to a MautrixSignal's name to name its Service and
/// Deployment (and, longer, its Secrets and data volume).
pub const SERVICE_SUFFIX: &str = "-mautrix-signal";

/// What the signal-operator appends to a MautrixSignal's name to name its CloudNativePG Cluster.
pub const DATABASE_CLUSTER_SUFFIX: &str = "-mautrix-signal-pgsql";

/// The CEL rule of `spec.admins`: each entry is a Matrix user ID (the rule of a single user ID
/// applied to every item).
fn admins_rule() -> String {
    let single = MATRIX_USER_ID_RULE
        .strip_prefix("self.")
        .expect("the user ID rule is a method call on self");
    format!("self.all(id, id.{single})")
}

/// Desired state of a mautrix-signal bridge. With no `configMap` the bridge runs with a default
/// configuration; with one, its `config.yaml` is used.
// Printer columns repeat `type_ = "string"`, which this lint mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "synapse.opdev.io",
    version = "v1alpha1",
    kind = "MautrixSignal",
    plural = "mautrixsignals",
    namespaced,
    status = "MautrixSignalStatus",
    derive = "PartialEq",
    shortname = "signal",
    category = "matrix",
    validation = name_is_dns_label("MautrixSignal", SERVICE_SUFFIX),
    validation = name_fits_service("MautrixSignal", SERVICE_SUFFIX),
    validation = name_fits_database_cluster("MautrixSignal", DATABASE_CLUSTER_SUFFIX),
    doc = "mautrix-signal, a Signal bridge, registered as an app service with one Synapse.",
    printcolumn(
        name = "Synapse",
        type_ = "string",
        description = "The Synapse the bridge registers with",
        json_path = ".spec.synapse.name"
    ),
    printcolumn(
        name = "Registered",
        type_ = "string",
        description = "Whether the bridge's registration is live on a ready Synapse",
        json_path = ".status.conditions[?(@.type==\"Registered\")].status"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the bridge is deployed and its pod is ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(ONE_POSTGRESQL_SOURCE_RULE).message(
        "createNewPostgreSQL and externalPostgreSQL are mutually exclusive: provision a database \
         or name an existing one, not both"
    ),
    validation = Rule::new(DATABASE_KIND_IMMUTABLE_RULE).message(
        "the database of a bridge cannot be switched between SQLite (or your config's own), a \
         provisioned PostgreSQL and an external one after creation: its data (the Signal logins) \
         would be left behind. Create a new bridge instead"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MautrixSignalSpec {
    /// A ConfigMap holding your own mautrix-signal configuration under the key `config.yaml`.
    /// It is used as a base and never modified: the operator sets the keys it owns (the
    /// homeserver, the app-service address, listener, id and tokens, and the database unless
    /// yours is PostgreSQL) and keeps the rest. A legacy (signald-era or pre-bridgev2) file is
    /// migrated to today's format; the ConfigMigrated condition lists what had no equivalent,
    /// and the example permissions it replaced with the original operator's for the server.
    /// When absent, the operator writes the whole configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapReference>,

    /// The Synapse this bridge registers with. It must be in the bridge's namespace.
    pub synapse: SynapseReference,

    /// Matrix users who get the bridge's `admin` permission, e.g. @alice:example.com. Every
    /// user of the Synapse's server gets `user` (they can log in to Signal), everyone else
    /// `relay`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new(admins_rule()).message(
        "each entry of admins must be a Matrix user ID: @localpart:server_name, e.g. \
         @alice:example.com"
    ))]
    #[schemars(length(max = 64), inner(length(min = 1, max = 255)))]
    pub admins: Vec<String>,

    /// Provision a PostgreSQL database for the bridge through CloudNativePG (which must be
    /// installed): a Cluster NAME-mautrix-signal-pgsql with database `mautrix_signal` owned by
    /// role `mautrix_signal`, never the Synapse's database. The bridge starts once the Cluster is
    /// ready. When false and no `externalPostgreSQL` is given, the bridge uses SQLite on its data
    /// volume, or the PostgreSQL database your own config.yaml names. Cannot be changed after
    /// creation.
    #[serde(default, rename = "createNewPostgreSQL")]
    pub create_new_postgresql: bool,

    /// Use an existing PostgreSQL database, named by a Secret. It must not be the Synapse's
    /// database: the bridge refuses a Secret that points at the same server and database.
    /// Cannot be added or removed after creation.
    #[serde(
        default,
        rename = "externalPostgreSQL",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_postgresql: Option<ExternalPostgreSQL>,

    /// Container image of mautrix-signal. Defaults to the mautrix-signal release this operator
    /// is tested with; the command the operator gives the container works with the official
    /// image (dock.mau.dev/mautrix/signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// The bridge's own data volume, holding its SQLite database. Applied when the volume is
    /// created; later changes are not applied to an existing volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// What happens to the data volume and the generated secrets (app-service tokens, pickle
    /// key, provisioning secret) when this bridge is deleted. Retain (the default) keeps them,
    /// so a bridge re-created with the same name finds its Signal logins again; Delete removes
    /// them with the bridge.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Observed state of a mautrix-signal bridge.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MautrixSignalStatus {
    /// Latest observations of the bridge's state: `Registered` (its registration is live on a
    /// ready Synapse) and `Ready` (its pod is ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// State of the mautrix-signal instance: RUNNING or FAILED (kept from the original
    /// operator; see `conditions` for detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,

    /// Reason for the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The Synapse this bridge is connected to, as read from its status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synapse: Option<MautrixSignalSynapseStatus>,

    /// Connection information of the bridge's PostgreSQL database (provisioned or external).
    /// The password is never published here: it stays in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_connection_info: Option<DatabaseConnectionInfo>,

    /// Kept for compatibility with the original operator, which copied the Synapse's
    /// `spec.isOpenshift` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_openshift: Option<bool>,
}

/// The Synapse a mautrix-signal bridge is connected to.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MautrixSignalSynapseStatus {
    /// The Matrix server name of that Synapse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}
