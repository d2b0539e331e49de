//! The `Synapse` kind: one Matrix homeserver.

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common::{
    ConfigMapReference, DATABASE_KIND_IMMUTABLE_RULE, DatabaseConnectionInfo, ExternalPostgreSQL,
    ONE_POSTGRESQL_SOURCE_RULE, State, name_fits_database_cluster, name_fits_service,
    name_is_dns_label,
};
use crate::contract::AppServiceStatus;
use crate::expose::Expose;
use crate::metrics::Metrics;
use crate::workers::Workers;

/// CEL rule: a Matrix server name is a DNS name, an IPv4 literal or a bracketed IPv6 literal,
/// optionally followed by `:port` (Matrix specification, appendix "Server Name").
pub const SERVER_NAME_RULE: &str = r"self.matches('^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:.]{2,45}\\])(:[0-9]{1,5})?$')";

/// What the synapse-operator appends to a Synapse's name to name its CloudNativePG Cluster (its
/// Service is the name itself).
pub const DATABASE_CLUSTER_SUFFIX: &str = "-pgsql";

/// Most entries in `spec.resources.requests` or `limits`, and the longest quantity text: the
/// apiserver refuses quantity rules over unbounded maps and strings as too costly.
const MAX_RESOURCE_ENTRIES: u32 = 32;
const MAX_QUANTITY_LENGTH: u32 = 64;

/// CEL: `value` (an int-or-string) is a Kubernetes quantity. `string()` turns an int into its
/// digits, so one test serves both types.
fn is_quantity(value: &str) -> String {
    format!("isQuantity(string({value}))")
}

/// CEL: the quantity `value` (an int-or-string that passes [`is_quantity`]).
fn quantity(value: &str) -> String {
    format!("quantity(string({value}))")
}

/// CEL rule of `spec.resources`: every request and limit is a quantity of at least 0.
pub(crate) fn resource_quantities_rule() -> String {
    let valid = |map: &str| {
        let value = format!("self.{map}[r]");
        format!(
            "(!has(self.{map}) || self.{map}.all(r, {} && {}.compareTo(quantity('0')) >= 0))",
            is_quantity(&value),
            quantity(&value)
        )
    };
    format!("{} && {}", valid("requests"), valid("limits"))
}

/// CEL rule of `spec.resources`: no limit is below the request of its resource. Entries that are
/// no quantity are left to the rule above.
pub(crate) fn limits_cover_requests_rule() -> String {
    let (request, limit) = ("self.requests[r]", "self.limits[r]");
    format!(
        "!has(self.requests) || !has(self.limits) || self.requests.all(r, !(r in self.limits) || \
         !{} || !{} || {}.compareTo({}) >= 0)",
        is_quantity(request),
        is_quantity(limit),
        quantity(limit),
        quantity(request)
    )
}

/// Bounds `spec.resources` (Kubernetes' ResourceRequirements) for the cost of its rules.
pub(crate) fn bound_resources(schema: &mut Schema) {
    for map in ["requests", "limits"] {
        let map = schema
            .get_mut("properties")
            .and_then(|properties| properties.get_mut(map))
            .expect("ResourceRequirements has requests and limits");
        map["maxProperties"] = json!(MAX_RESOURCE_ENTRIES);
        map["additionalProperties"]["maxLength"] = json!(MAX_QUANTITY_LENGTH);
    }
}

/// Desired state of a Synapse homeserver.
// Printer columns repeat `type_ = "string"`, which this lint mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "synapse.opdev.io",
    version = "v1alpha1",
    kind = "Synapse",
    plural = "synapses",
    namespaced,
    status = "SynapseStatus",
    derive = "PartialEq",
    shortname = "syn",
    category = "matrix",
    validation = name_is_dns_label("Synapse", ""),
    validation = name_fits_service("Synapse", ""),
    validation = name_fits_database_cluster("Synapse", DATABASE_CLUSTER_SUFFIX),
    validation = Rule::new("!has(self.spec.workers) || self.metadata.name.size() <= 49").message(
        "with spec.workers, metadata.name must be at most 49 characters because the workers' \
         Services are named NAME-<role>-<index> (up to 14 more characters) and a Service name is \
         at most 63 characters long"
    ),
    doc = "A Matrix homeserver (Synapse). Its configuration comes either from a few values or from \
           a homeserver.yaml in a ConfigMap; bridges register with it through the app-service \
           annotations described in status.appServices.",
    printcolumn(
        name = "Server Name",
        type_ = "string",
        description = "The Matrix server name",
        json_path = ".status.homeserverConfiguration.serverName"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether Synapse is deployed and its pod is ready",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Workers",
        type_ = "string",
        description = "Ready workers of those declared",
        json_path = ".status.workers.summary"
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
        "the database of a Synapse cannot be switched between SQLite (or your homeserver.yaml's \
         own), a provisioned PostgreSQL and an external one after creation: its data would be left \
         behind. Port it with synapse_port_db and create a new Synapse"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SynapseSpec {
    /// Where the homeserver.yaml configuration comes from: set exactly one of `values` (the
    /// operator writes the configuration) or `configMap` (your own homeserver.yaml).
    pub homeserver: Homeserver,

    /// Provision a PostgreSQL database for this Synapse through CloudNativePG (which must be
    /// installed): a Cluster NAME-pgsql with database `synapse` owned by role `synapse`, UTF8,
    /// collation and ctype C. Synapse starts once the Cluster is ready. When false and no
    /// `externalPostgreSQL` is given, Synapse uses SQLite on its data volume, or the `database`
    /// section of your own homeserver.yaml. Cannot be changed after creation.
    #[serde(default, rename = "createNewPostgreSQL")]
    pub create_new_postgresql: bool,

    /// Use an existing PostgreSQL database, named by a Secret. The database must have encoding
    /// UTF8 and collation and ctype C (Synapse refuses others) and be owned by the user.
    /// Cannot be added or removed after creation.
    #[serde(
        default,
        rename = "externalPostgreSQL",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_postgresql: Option<ExternalPostgreSQL>,

    /// Accepted for compatibility with the original operator. The workloads always run under the
    /// `restricted` Pod Security standard, so OpenShift needs no special security context
    /// constraint and this field changes nothing.
    #[serde(default)]
    pub is_openshift: bool,

    /// Container image of Synapse. Defaults to the Synapse release this operator is tested with;
    /// the command the operator gives the container works with the official images
    /// (matrixdotorg/synapse, ghcr.io/element-hq/synapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,

    /// Let an image whose Synapse version (from its tag) is older than the one that last ran
    /// replace it. Synapse cannot read a database schema newer than its own: set this only
    /// after restoring a backup made by that older version. Without it such an image is refused
    /// (`DowngradeRefused`) and the running Synapse is kept.
    #[serde(default)]
    pub allow_downgrade: bool,

    /// Scale every workload of this Synapse (its workers, router and Redis too) to zero while
    /// keeping every object, the data volume, the database and the secrets; `false` brings it
    /// back with the same data.
    #[serde(default)]
    pub suspend: bool,

    /// Set or change this value (e.g. to today's date) to have the operator generate a new
    /// signing key once: the current key is retired to `old_signing_keys` (expired now, so other
    /// servers still verify what it signed) and both stay in the Secret `NAME-secrets`.
    /// The value a Synapse is created with only records itself. The key never rotates by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub signing_key_rotation: Option<String>,

    /// The data volume holding the SQLite database and the media store. Applied when the volume
    /// is created; later changes are not applied to an existing volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,

    /// Compute resources of the Synapse container. Default: requests cpu 250m and memory 512Mi,
    /// memory limit 2Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = Rule::new(resource_quantities_rule()).message(
            "every value of spec.resources.requests and spec.resources.limits must be a \
             quantity of at least 0 such as 250m, 2, 512Mi or 2Gi (no space before the unit): \
             Kubernetes refuses the Synapse container otherwise"
        ),
        validation = Rule::new(limits_cover_requests_rule()).message(
            "each limit in spec.resources.limits must be at least the request of the same \
             resource in spec.resources.requests: Kubernetes refuses a container whose request \
             exceeds its limit"
        )
    )]
    #[schemars(transform = bound_resources)]
    pub resources: Option<ResourceRequirements>,

    /// What happens to the data volume and the generated secrets (signing key, macaroon,
    /// registration and form secrets) when this Synapse is deleted. Retain (the default) keeps
    /// them, so a Synapse re-created with the same name finds its data and identity again;
    /// Delete removes them with the Synapse.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Reach this Synapse from outside the cluster: its public host, routed by the Gateway API,
    /// with `.well-known` delegation from the server name. Without it the Synapse is reachable
    /// inside the cluster only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<Expose>,

    /// Synapse's Prometheus metrics: served by default on a listener the operator adds, and
    /// scraped through a ServiceMonitor or PodMonitor when `monitor` is set.
    #[serde(default)]
    pub metrics: Metrics,

    /// Worker processes by role, the Redis they replicate through and the router in front of
    /// them. Without it (the default) Synapse runs as one process. Workers need PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<Workers>,
}

/// The data volume of a Synapse.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Requested size of the volume. Default 10Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(format!(
        "{} && {}.compareTo(quantity('0')) > 0",
        is_quantity("self"),
        quantity("self")
    ))
    .message(
        "spec.storage.size must be a quantity above 0 such as 10Gi or 500M (no space before the \
         unit): it is what the data volume's PersistentVolumeClaim requests"
    ))]
    pub size: Option<Quantity>,

    /// StorageClass of the volume. Default: the cluster's default StorageClass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// What happens to a Synapse's data volume and generated secrets when the Synapse is deleted.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeletionPolicy {
    /// Keep the data volume and the secrets.
    #[default]
    Retain,
    /// Delete the data volume and the secrets with the Synapse.
    Delete,
}

/// Source of the homeserver.yaml configuration file.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(
    validation = Rule::new("has(self.values) || has(self.configMap)").message(
        "spec.homeserver needs one of values (the operator writes homeserver.yaml) or configMap \
         (a ConfigMap holding your own homeserver.yaml)"
    ),
    validation = Rule::new("!(has(self.values) && has(self.configMap))").message(
        "spec.homeserver.values and spec.homeserver.configMap are mutually exclusive: set only one"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct Homeserver {
    /// A ConfigMap holding your own configuration under the key `homeserver.yaml`. It is used as
    /// is and never modified: the operator adds its own settings (paths, secrets, app services)
    /// in a separate file and follows later edits of the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapReference>,

    /// A few values from which the operator writes a complete homeserver.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<HomeserverValues>,
}

/// Values from which the operator writes homeserver.yaml.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HomeserverValues {
    /// The public-facing domain of the server (Matrix `server_name`): the part after the colon
    /// in user IDs such as @alice:example.com. A DNS name or IP literal, optionally with a port.
    /// It cannot be changed once set.
    #[x_kube(
        validation = Rule::new(SERVER_NAME_RULE).message(
            "serverName must be a Matrix server name: a DNS name, an IPv4 address or an IPv6 \
             address in brackets, optionally followed by :port (e.g. example.com, \
             matrix.example.com:8448, [2001:db8::1])"
        ),
        validation = Rule::new("self == oldSelf").message(
            "serverName is immutable: user IDs, room IDs and event signatures are bound to the \
             server name, so changing it breaks the homeserver. Create a new Synapse to use \
             another server name"
        )
    )]
    #[schemars(length(min = 1, max = 255))]
    pub server_name: String,

    /// Whether Synapse reports anonymized homeserver usage statistics (`report_stats`).
    pub report_stats: bool,

    /// Whether anyone may register a new account on this server (`enable_registration`).
    #[serde(default)]
    pub enable_registration: bool,
}

/// Observed state of a Synapse homeserver.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SynapseStatus {
    /// Latest observations of the homeserver's state. `Ready` is True only when Synapse's pod is
    /// ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// State of the Synapse instance: RUNNING or FAILED (kept from the original operator; see
    /// `conditions` for detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,

    /// Reason for the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The configuration Synapse runs with, from `spec.homeserver.values` or read from the input
    /// ConfigMap. Bridges read the server name from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homeserver_configuration: Option<HomeserverConfigurationStatus>,

    /// URL of the Synapse client API inside the cluster (e.g.
    /// http://NAME.NAMESPACE.svc:8008). Bridges connect to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,

    /// With `spec.expose`: the public URL of the client API (`https://HOST/`), what clients
    /// are told by `/.well-known/matrix/client`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_client_url: Option<String>,

    /// With `spec.expose`: where other servers reach the federation API (`HOST:443`), what
    /// `/.well-known/matrix/server` delegates to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_endpoint: Option<String>,

    /// The id of the signing key in use, e.g. `ed25519:a_AbCd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_id: Option<String>,

    /// The Synapse version that last ran, from its image's tag (e.g. `1.163.2`): an older image
    /// is refused unless `spec.allowDowngrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synapse_version: Option<String>,

    /// With `spec.metrics.enabled`: where Prometheus scrapes Synapse's metrics inside the
    /// cluster (e.g. http://NAME.NAMESPACE.svc:9000/_synapse/metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_url: Option<String>,

    /// With `spec.workers`: how many workers of each role are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkersStatus>,

    /// The bridges deployed for this Synapse (kept from the original operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridges: Option<BridgesStatus>,

    /// Every app-service registration announced to this Synapse by annotation, and whether it
    /// was accepted (mounted and live) or rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_services: Vec<AppServiceStatus>,

    /// Connection information of the PostgreSQL database of this Synapse (provisioned or
    /// external). Unlike the original operator, the password is not published here: it stays in
    /// a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_connection_info: Option<DatabaseConnectionInfo>,

    /// Kept for compatibility with the original operator's status, which used it as an internal
    /// trigger. This operator is level-triggered and never sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_reconcile: Option<bool>,
}

/// The homeserver configuration Synapse runs with.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HomeserverConfigurationStatus {
    /// The public-facing domain of the server (Matrix `server_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,

    /// Whether anonymized homeserver usage statistics are reported.
    #[serde(default)]
    pub report_stats: bool,

    /// Whether new user registration is enabled.
    #[serde(default)]
    pub registration_enabled: bool,
}

/// The bridges deployed for a Synapse.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgesStatus {
    /// The Heisenbridge (IRC bridge) connected to this Synapse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heisenbridge: Option<BridgeStatus>,

    /// The mautrix-signal bridge connected to this Synapse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mautrixsignal: Option<BridgeStatus>,
}

/// One bridge deployed for a Synapse.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeStatus {
    /// Whether such a bridge is deployed for this Synapse.
    #[serde(default)]
    pub enabled: bool,

    /// Name of the bridge object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The workers of a Synapse as they run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkersStatus {
    /// Ready workers of those declared, over every role, e.g. `3/4`.
    pub summary: String,
    /// Each declared role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<WorkerRoleStatus>,
}

/// The workers of one role as they run.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRoleStatus {
    /// `generic`, `federationSender`, `pusher`, `mediaRepository` or `background`.
    pub role: String,
    /// Workers declared.
    pub replicas: i32,
    /// Workers whose pod is ready with the current configuration.
    pub ready: i32,
}
