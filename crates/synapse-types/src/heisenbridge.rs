//! The `Heisenbridge` kind: an IRC bridge registered with one Synapse.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{ConfigMapReference, State, SynapseReference};

/// Desired state of a Heisenbridge. With no `configMap` the bridge runs with a default
/// configuration; with one, its `heisenbridge.yaml` is used.
// Printer columns repeat `type_ = "string"`, which this lint mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "synapse.opdev.io",
    version = "v1alpha1",
    kind = "Heisenbridge",
    plural = "heisenbridges",
    namespaced,
    status = "HeisenbridgeStatus",
    derive = "PartialEq",
    shortname = "hb",
    category = "matrix",
    doc = "Heisenbridge, a bouncer-style IRC bridge, registered as an app service with one Synapse.",
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
#[serde(rename_all = "camelCase")]
pub struct HeisenbridgeSpec {
    /// A ConfigMap holding your own Heisenbridge registration file under the key
    /// `heisenbridge.yaml`. When absent, the operator generates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapReference>,

    /// Log verbosity of Heisenbridge: 0 is the normal level, 1 to 3 add "-v", "-vv" or "-vvv".
    #[serde(default)]
    #[schemars(range(min = 0, max = 3))]
    pub verbose_level: i32,

    /// The Synapse this bridge registers with.
    pub synapse: SynapseReference,
}

/// Observed state of a Heisenbridge.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HeisenbridgeStatus {
    /// Latest observations of the bridge's state: `Registered` (its registration is live on a
    /// ready Synapse) and `Ready` (its pod is ready).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// State of the Heisenbridge instance: RUNNING or FAILED (kept from the original operator;
    /// see `conditions` for detail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,

    /// Reason for the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
