//! The Gateway API's HTTPRoute (`gateway.networking.k8s.io/v1`), only the fields the operator
//! writes, and the one route of an exposed Synapse. Hand-written: the `gateway-api` crate is
//! built on an older kube than ours. Pure.

use kube::CustomResource;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use synapse_types::expose::Gateway;

use crate::public::Public;

/// The paths Synapse serves publicly: the client and federation APIs (`/_matrix`), Synapse's
/// own client pages (password reset, SSO, consent: `/_synapse/client`) and the `.well-known`
/// delegation.
pub const PUBLIC_PATHS: [&str; 3] = ["/_matrix", "/_synapse/client", "/.well-known/matrix"];

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<RouteParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<RouteRule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    #[serde(default)]
    pub matches: Vec<RouteMatch>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct RouteMatch {
    pub path: PathMatch,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct PathMatch {
    #[serde(rename = "type")]
    pub type_: String,
    pub value: String,
}

/// A Service of the route's namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct BackendRef {
    pub name: String,
    pub port: u16,
}

/// The route of an exposed Synapse: its public hosts to the Synapse Service `service` on
/// `port`, through `gateway`.
pub fn desired(
    meta: ObjectMeta,
    gateway: &Gateway,
    public: &Public,
    service: &str,
    port: u16,
) -> HTTPRoute {
    let parent_refs = gateway
        .parent_refs
        .iter()
        .map(|parent| RouteParentRef {
            name: parent.name.clone(),
            namespace: parent.namespace.clone(),
            section_name: parent.section_name.clone(),
            port: None,
        })
        .collect();
    route(
        meta,
        parent_refs,
        public.hosts(),
        &PUBLIC_PATHS,
        service,
        port,
    )
}

/// With a dedicated federation port: the route of the server name's federation paths through
/// every listener on that port of the same Gateways. A route of its own, as one route may name
/// a Gateway twice only by listener name, which the operator does not know.
pub fn federation_route(
    meta: ObjectMeta,
    gateway: &Gateway,
    public: &Public,
    service: &str,
    port: u16,
) -> HTTPRoute {
    let mut parent_refs: Vec<RouteParentRef> = Vec::new();
    for parent in &gateway.parent_refs {
        let dedicated = RouteParentRef {
            name: parent.name.clone(),
            namespace: parent.namespace.clone(),
            section_name: None,
            port: Some(public.federation_port),
        };
        if !parent_refs.contains(&dedicated) {
            parent_refs.push(dedicated);
        }
    }
    let hosts = vec![public.server_name.clone()];
    route(meta, parent_refs, hosts, &FEDERATION_PATHS, service, port)
}

/// The federation API and the server keys other servers fetch.
const FEDERATION_PATHS: [&str; 2] = ["/_matrix/federation", "/_matrix/key"];

fn route(
    meta: ObjectMeta,
    parent_refs: Vec<RouteParentRef>,
    hostnames: Vec<String>,
    paths: &[&str],
    service: &str,
    port: u16,
) -> HTTPRoute {
    let matches = paths
        .iter()
        .map(|path| RouteMatch {
            path: PathMatch {
                type_: "PathPrefix".into(),
                value: (*path).into(),
            },
        })
        .collect();
    HTTPRoute {
        metadata: meta,
        spec: HTTPRouteSpec {
            parent_refs,
            hostnames,
            rules: vec![RouteRule {
                matches,
                backend_refs: vec![BackendRef {
                    name: service.to_owned(),
                    port,
                }],
            }],
        },
    }
}
