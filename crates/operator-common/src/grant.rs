//! Cross-namespace references: a spec may name a ConfigMap in another namespace (the original
//! API has the field), but a namespace is a tenant. The operator reads across only when the
//! target namespace's owner granted it with a Gateway API `ReferenceGrant` in that namespace;
//! otherwise it reads nothing there and says how to grant it.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::{Client, CustomResource, Resource};
use serde::{Deserialize, Serialize};
use synapse_types::GROUP;

use crate::error::{Error, api_error};

/// The Gateway API's `ReferenceGrant` (`gateway.networking.k8s.io/v1beta1`), only the fields
/// the check reads. Hand-written: the `gateway-api` crate is built on an older kube than ours.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1beta1",
    kind = "ReferenceGrant",
    namespaced,
    schema = "disabled"
)]
pub struct ReferenceGrantSpec {
    /// Who may refer: kinds in namespaces.
    #[serde(default)]
    pub from: Vec<ReferenceGrantFrom>,
    /// What they may refer to in the grant's namespace: kinds, perhaps one name.
    #[serde(default)]
    pub to: Vec<ReferenceGrantTo>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ReferenceGrantFrom {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ReferenceGrantTo {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
    /// Absent or empty: every object of the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A reference from an object of ours to a ConfigMap in another namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossReference {
    /// The referring object's kind (`Synapse`, ...), of our API group.
    pub kind: String,
    /// The referring object's namespace.
    pub from: String,
    /// The spec field holding the reference, for messages.
    pub field: &'static str,
    /// The ConfigMap's namespace and name.
    pub namespace: String,
    pub name: String,
}

/// Why a cross-namespace reference was not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denial {
    /// No ReferenceGrant in the target namespace allows it.
    NoGrant,
    /// The cluster has no ReferenceGrant API (the Gateway API CRDs are not installed).
    NoGrantApi,
    /// The operator watches one namespace only and reads nothing outside it.
    OutsideWatchedNamespace { watched: String },
}

/// A cross-namespace reference that was not followed: nothing was read from its namespace.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct NotGranted {
    pub reference: Box<CrossReference>,
    pub denial: Denial,
}

/// The condition reason of [`NotGranted`].
pub const REFERENCE_NOT_GRANTED: &str = "ReferenceNotGranted";

impl NotGranted {
    fn message(&self) -> String {
        let CrossReference {
            kind,
            from,
            field,
            namespace,
            name,
        } = self.reference.as_ref();
        let refused = format!(
            "{field} names ConfigMap {namespace}/{name} in another namespace than this \
             {kind}'s ({from}); nothing is read from namespace {namespace}"
        );
        let grant = format!(
            "a ReferenceGrant (gateway.networking.k8s.io/v1beta1) in namespace {namespace} with \
             from [{{group: {GROUP}, kind: {kind}, namespace: {from}}}] and to [{{group: \"\", \
             kind: ConfigMap, name: {name}}}]"
        );
        match &self.denial {
            Denial::NoGrant => format!(
                "{refused} until its owner grants it: create {grant}, or copy the ConfigMap into \
                 namespace {from}"
            ),
            Denial::NoGrantApi => format!(
                "{refused}: the cluster has no ReferenceGrant API, so nothing can grant it; \
                 install the Gateway API CRDs and create {grant}, or copy the ConfigMap into \
                 namespace {from}"
            ),
            Denial::OutsideWatchedNamespace { watched } => format!(
                "{refused}: this operator is installed for namespace {watched} only and reads \
                 nothing outside it; copy the ConfigMap into namespace {from}"
            ),
        }
    }
}

/// Whether `grants` (the ReferenceGrants of the ConfigMap's namespace) allow `reference`.
pub fn allows(grants: &[ReferenceGrant], reference: &CrossReference) -> bool {
    let config_map_kind = ConfigMap::kind(&());
    grants.iter().any(|grant| {
        let from = grant.spec.from.iter().any(|from| {
            from.group == GROUP && from.kind == reference.kind && from.namespace == reference.from
        });
        let to = grant.spec.to.iter().any(|to| {
            to.group.is_empty()
                && to.kind == config_map_kind
                && to
                    .name
                    .as_deref()
                    .is_none_or(|name| name.is_empty() || name == reference.name)
        });
        from && to
    })
}

/// Checks `reference` against the ReferenceGrants of its target namespace, read from the API
/// server: only cross-namespace references get here, and a read always sees the grant as it is
/// now (a revoked grant stops the next reconciliation). `watched`: the one namespace the
/// operator is installed for, if it is.
pub async fn check(
    client: &Client,
    watched: Option<&str>,
    reference: CrossReference,
) -> Result<Result<(), NotGranted>, Error> {
    let denial = |denial| {
        Ok(Err(NotGranted {
            reference: Box::new(reference.clone()),
            denial,
        }))
    };
    if let Some(watched) = watched {
        return denial(Denial::OutsideWatchedNamespace {
            watched: watched.to_owned(),
        });
    }
    let api = Api::<ReferenceGrant>::namespaced(client.clone(), &reference.namespace);
    match api.list(&ListParams::default()).await {
        Ok(grants) if allows(&grants.items, &reference) => Ok(Ok(())),
        Ok(_) => denial(Denial::NoGrant),
        // No such resource: the CRD is not installed.
        Err(kube::Error::Api(status)) if status.code == 404 => denial(Denial::NoGrantApi),
        Err(error) => Err(api_error(format!(
            "list the ReferenceGrants of namespace {}",
            reference.namespace
        ))(error)),
    }
}

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;
