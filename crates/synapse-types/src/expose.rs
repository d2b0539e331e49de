//! `Synapse.spec.expose`: how clients and other servers reach a Synapse from outside the cluster.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL rule: a DNS host name (lowercase labels of letters, digits and '-', dot-separated).
pub const HOST_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')";

/// The public face of a Synapse.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// The public host of the client and federation APIs, e.g. `matrix.example.com`, served on
    /// port 443 with TLS. Synapse's `public_baseurl` becomes `https://HOST/`. When it differs
    /// from the server name, the server name's host delegates to it: its
    /// `/.well-known/matrix/server` and `/.well-known/matrix/client` are routed too, and answer
    /// `HOST:443` and `https://HOST/`.
    #[x_kube(validation = kube::core::Rule::new(HOST_RULE).message(
        "spec.expose.host must be a DNS host name such as matrix.example.com (lowercase, no \
         scheme, port or path)"
    ))]
    #[schemars(length(min = 1, max = 253))]
    pub host: String,

    /// Route through the Gateway API: an HTTPRoute (gateway.networking.k8s.io/v1) attached to
    /// your Gateway. TLS is the Gateway listener's: give it a certificate for the host (and the
    /// server name's host when delegating).
    pub gateway: Gateway,
}

/// The Gateway (or Gateways) the HTTPRoutes attach to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// The Gateways (or their listeners) the routes attach to, as the HTTPRoute's parentRefs.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<ParentRef>,
}

/// One Gateway, or one of its listeners.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the Gateway. Default: the Synapse's. A Gateway elsewhere must allow routes
    /// from this namespace (its listener's `allowedRoutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,

    /// The listener of the Gateway, by name. Default: every listener that accepts the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}
