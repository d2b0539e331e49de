//! The `MautrixSignal` kind: a Signal bridge (mautrix-signal) registered with one Synapse.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConfigMapReference, State, SynapseReference};

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
#[serde(rename_all = "camelCase")]
pub struct MautrixSignalSpec {
    /// A ConfigMap holding your own mautrix-signal configuration under the key `config.yaml`.
    /// It is used as a base: the operator sets the homeserver address, the app-service
    /// registration and the paths it manages. When absent, the operator generates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapReference>,

    /// The Synapse this bridge registers with.
    pub synapse: SynapseReference,
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
