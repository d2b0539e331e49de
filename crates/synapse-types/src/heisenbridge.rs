//! The `Heisenbridge` kind: an IRC bridge registered with one Synapse.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{
    ConfigMapReference, State, SynapseReference, name_fits_service, name_is_dns_label,
};

/// What the heisenbridge-operator appends to a Heisenbridge's name to name its Service and
/// Deployment (and, longer, its registration Secret).
pub const SERVICE_SUFFIX: &str = "-heisenbridge";

/// CEL rule: a Matrix user ID, `@localpart:server_name`. The localpart is printable ASCII
/// without `:` (the historical user ID grammar, a superset of today's), the server name a DNS
/// name, an IPv4 literal or a bracketed IPv6 literal with an optional port (Matrix
/// specification, appendices "User Identifiers" and "Server Name").
pub const MATRIX_USER_ID_RULE: &str = r"self.matches('^@[!-9;-~]+:([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?([.][a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:.]{2,45}\\])(:[0-9]{1,5})?$')";

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
    validation = name_is_dns_label("Heisenbridge", SERVICE_SUFFIX),
    validation = name_fits_service("Heisenbridge", SERVICE_SUFFIX),
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

    /// The Synapse this bridge registers with. It must be in the bridge's namespace.
    pub synapse: SynapseReference,

    /// The Matrix user who owns the bridge (Heisenbridge's `--owner`), e.g. @alice:example.com.
    /// The bridge invites this user to its control room when it starts. When empty, the first
    /// local user who talks to the bridge becomes its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(MATRIX_USER_ID_RULE).message(
        "owner must be a Matrix user ID: @localpart:server_name, e.g. @alice:example.com"
    ))]
    #[schemars(length(min = 1, max = 255))]
    pub owner: Option<String>,

    /// Container image of Heisenbridge. Defaults to the Heisenbridge release this operator is
    /// tested with; the command the operator gives the container works with the official image
    /// (hif1/heisenbridge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub image: Option<String>,
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

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt as _;
    use kube::core::cel::Validator;
    use serde_json::{Value, json};

    use super::*;

    fn bridge(name: &str, spec: Value) -> Value {
        json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "metadata": {"name": name},
            "spec": spec,
        })
    }

    /// The messages of the CEL rules `object` breaks.
    fn failures(object: &Value) -> Vec<String> {
        let crd = Heisenbridge::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.clone())
            .expect("the CRD has a schema");
        let schema = serde_json::to_value(schema).unwrap();
        match Validator::new().validate(&schema, object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .as_slice()
                .iter()
                .map(|e| e.message.clone())
                .collect(),
        }
    }

    fn with_owner(owner: &str) -> Value {
        bridge("irc", json!({"synapse": {"name": "hs"}, "owner": owner}))
    }

    #[test]
    fn owner_must_be_a_matrix_user_id() {
        for valid in [
            "@alice:example.com",
            "@a.b-c_d=e/f+g:matrix.example.com:8448",
            "@Alice:localhost",
            "@bob:[::1]:8008",
            "@carol:1.2.3.4",
        ] {
            assert_eq!(
                failures(&with_owner(valid)),
                Vec::<String>::new(),
                "{valid}"
            );
        }
        for invalid in [
            "alice:example.com",
            "@alice",
            "@:example.com",
            "@alice:",
            "@al ice:example.com",
            "@alice:exa mple.com",
            "@alice:example.com/",
            "#room:example.com",
        ] {
            let failed = failures(&with_owner(invalid));
            assert!(
                failed
                    .iter()
                    .any(|m| m.contains("owner must be a Matrix user ID")),
                "{invalid} accepted: {failed:?}"
            );
        }
    }
}
