//! `Synapse.spec.workers`: Synapse's worker processes by role, the Redis they replicate through,
//! and the router in front of them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::synapse::{bound_resources, limits_cover_requests_rule, resource_quantities_rule};

/// Most replicas of one role.
pub const MAX_REPLICAS: i32 = 16;

/// The homeserver.yaml keys the operator writes for workers, which a role's `homeserver` may not
/// set.
pub const OPERATOR_WORKER_KEYS: [&str; 14] = [
    "worker_app",
    "worker_name",
    "worker_listeners",
    "worker_log_config",
    "instance_map",
    "redis",
    "stream_writers",
    "federation_sender_instances",
    "pusher_instances",
    "media_instance_running_background_jobs",
    "run_background_tasks_on",
    "enable_media_repo",
    "listeners",
    "database",
];

/// The worker processes of a Synapse, by role. Without any (the default), Synapse runs as one
/// process. Workers need PostgreSQL.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = kube::core::Rule::new(
    "!has(self.background) || self.background.replicas <= 1"
)
.message(
    "spec.workers.background takes at most 1 replica: Synapse runs its background tasks in one \
     process"
))]
#[serde(rename_all = "camelCase")]
pub struct Workers {
    /// Generic workers: client reads and `/sync`, login and registration, room and profile
    /// requests, and inbound federation, behind the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic: Option<WorkerRole>,

    /// Federation senders: outgoing federation traffic, sharded across the replicas by
    /// destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation_sender: Option<WorkerRole>,

    /// Pushers: push notifications, sharded across the replicas by user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pusher: Option<WorkerRole>,

    /// Media repositories: uploads, downloads and thumbnails (`/_matrix/media`,
    /// `/_matrix/client/v1/media`, `/_matrix/federation/v1/media`); the first also runs the
    /// media background jobs. They share the data volume's media store, which then needs a
    /// volume all their pods can mount (ReadWriteMany) when they run on several nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_repository: Option<WorkerRole>,

    /// A background worker running Synapse's background tasks instead of the main process; at
    /// most 1 replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<WorkerRole>,

    /// The Redis the processes replicate through. Default: the operator runs one (`NAME-redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Redis>,

    /// The router (nginx) in front of the processes, which the Service `NAME` points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
}

/// One role's workers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRole {
    /// How many workers of this role run.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 16))]
    pub replicas: i32,

    /// Compute resources of each worker's container. Default: requests cpu 100m and memory
    /// 256Mi, memory limit 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(
        validation = kube::core::Rule::new(resource_quantities_rule()).message(
            "every value of resources.requests and resources.limits of a worker role must be a \
             quantity of at least 0 such as 250m, 2, 512Mi or 2Gi (no space before the unit)"
        ),
        validation = kube::core::Rule::new(limits_cover_requests_rule()).message(
            "each limit in resources.limits of a worker role must be at least the request of the \
             same resource: Kubernetes refuses a container whose request exceeds its limit"
        )
    )]
    #[schemars(transform = bound_resources)]
    pub resources: Option<ResourceRequirements>,

    /// Extra homeserver.yaml settings of this role's workers (e.g. `caches`), applied over the
    /// shared configuration. The keys the operator writes for workers
    /// ([`OPERATOR_WORKER_KEYS`]) are refused (`WorkerSettingsConflict`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(transform = settings_map)]
    pub homeserver: BTreeMap<String, serde_json::Value>,
}

/// A map of settings whose values may be anything YAML holds: the map stays a map for the CEL
/// rule on its keys, each value keeps its unknown fields.
fn settings_map(schema: &mut schemars::Schema) {
    let description = schema.get("description").cloned();
    *schema = schemars::json_schema!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true},
    });
    if let Some(description) = description {
        schema.insert("description".into(), description);
    }
}

fn one() -> i32 {
    1
}

/// The Redis of a Synapse with workers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Redis {
    /// Your own Redis instead of the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalRedis>,
}

/// A Redis of yours. The operator reads nothing of it: the processes connect to `host` and
/// read the password from the Secret their pods mount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalRedis {
    /// Its host name or address, e.g. `redis.infra.svc`.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,

    /// Its port.
    #[serde(default = "redis_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,

    /// The key of a Secret in the Synapse's namespace that holds its password. Without it the
    /// processes connect without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKey>,
}

fn redis_port() -> u16 {
    6379
}

/// One key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKey {
    /// The Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// The router in front of Synapse's processes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Router {
    /// How many routers run.
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 16))]
    pub replicas: i32,
}

fn two() -> i32 {
    2
}
