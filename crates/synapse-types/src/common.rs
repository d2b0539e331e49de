//! Shapes shared by the three kinds.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type that every kind reports: the workload is deployed and its pods are ready.
pub const CONDITION_READY: &str = "Ready";

/// Condition type of the bridges: the bridge's current registration is live on a ready Synapse.
pub const CONDITION_REGISTERED: &str = "Registered";

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
