//! `Synapse.spec.expose`: how clients and other servers reach a Synapse from outside the cluster.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// CEL rule: a DNS host name (lowercase labels of letters, digits and '-', dot-separated).
pub const HOST_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?([.][a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')";

/// The public face of a Synapse.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(
    validation = kube::core::Rule::new("has(self.gateway) != has(self.ingress)").message(
        "spec.expose needs exactly one of gateway (an HTTPRoute for your Gateway) or ingress (an \
         Ingress for your ingress controller)"
    ),
    validation = kube::core::Rule::new(
        "!has(self.ingress) || !has(self.federation) || self.federation != 'Port8448'"
    )
    .message(
        "spec.expose.federation Port8448 needs gateway: an Ingress serves only ports 80 and 443; \
         use federation WellKnown (federation on 443) or a Gateway with a listener on 8448"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct Expose {
    /// The public host of the client and federation APIs, e.g. `matrix.example.com`, served on
    /// port 443 with TLS. Synapse's `public_baseurl` becomes `https://HOST/`. When it differs
    /// from the server name, the server name's host is routed too: its
    /// `/.well-known/matrix/client` sends clients to `https://HOST/`, its
    /// `/.well-known/matrix/server` sends other servers to port 443 of the server name's host,
    /// which takes federation.
    #[x_kube(validation = kube::core::Rule::new(HOST_RULE).message(
        "spec.expose.host must be a DNS host name such as matrix.example.com (lowercase, no \
         scheme, port or path)"
    ))]
    #[schemars(length(min = 1, max = 253))]
    pub host: String,

    /// Route through the Gateway API: an HTTPRoute (gateway.networking.k8s.io/v1) attached to
    /// your Gateway. TLS is the Gateway listener's (`tls` can have cert-manager issue its
    /// certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,

    /// Route through an Ingress (networking.k8s.io/v1) for your ingress controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,

    /// How other servers reach the federation API. `WellKnown` (the default): on port 443 of the
    /// server name's host, announced by its `/.well-known/matrix/server`. `Port8448`: on a
    /// dedicated port 8448 of the server name's host (the Matrix default without delegation; a
    /// second HTTPRoute `NAME-federation` attaches to your Gateways' listeners on 8448); no
    /// server well-known.
    #[serde(default)]
    pub federation: Federation,

    /// The TLS certificate of the host (and the server name's host): the Secret an Ingress
    /// serves it from, and optionally a cert-manager issuer that issues it into that Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

/// Where federation arrives.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum Federation {
    /// Port 443 of the server name's host, announced by `/.well-known/matrix/server`.
    #[default]
    WellKnown,
    /// A dedicated port 8448 of the server name's host.
    Port8448,
}

/// The Ingress of an exposed Synapse.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    /// The IngressClass. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// Annotations of the Ingress, for your controller (e.g. timeouts, body size).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A TLS certificate for the public hosts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// The Secret (type kubernetes.io/tls) holding the certificate: yours, or the one the
    /// issuer fills.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// A cert-manager issuer: the operator asks it for the certificate with a Certificate
    /// (cert-manager.io/v1) `NAME` for the public hosts, kept in `secretName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Issuer>,
}

/// A cert-manager Issuer or ClusterIssuer.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Issuer {
    /// Name of the issuer.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// `Issuer` (in the Synapse's namespace) or `ClusterIssuer`.
    #[serde(default)]
    pub kind: IssuerKind,
}

/// The kind of a cert-manager issuer.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum IssuerKind {
    #[default]
    Issuer,
    ClusterIssuer,
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
