//! What the bridge operators share about their kinds: the [`Bridge`] trait, the reasons of the
//! handshake's conditions, which Synapse a bridge names, and which bridges a Synapse's change concerns.
//! A leaf of the bridge module.

use kube::ResourceExt as _;
use kube::runtime::reflector::{ObjectRef, Store};
use synapse_types::contract::BridgeKind;
use synapse_types::{Heisenbridge, MautrixSignal, Synapse, SynapseReference};

use crate::reconciled::Reconciled;

/// A bridge kind: an object that registers one app service with one Synapse of its namespace.
pub trait Bridge: Reconciled {
    /// Which bridge kind this is, for the annotation key and the app-service source.
    const KIND: BridgeKind;

    /// The Synapse the bridge registers with (`spec.synapse`).
    fn synapse_reference(&self) -> &SynapseReference;
}

impl Bridge for Heisenbridge {
    const KIND: BridgeKind = BridgeKind::Heisenbridge;

    fn synapse_reference(&self) -> &SynapseReference {
        &self.spec.synapse
    }
}

impl Bridge for MautrixSignal {
    const KIND: BridgeKind = BridgeKind::MautrixSignal;

    fn synapse_reference(&self) -> &SynapseReference {
        &self.spec.synapse
    }
}

/// Condition reasons of the handshake, shared by the bridge operators.
pub mod reasons {
    /// The bridge's registration is live on a ready Synapse.
    pub const REGISTERED: &str = "Registered";
    /// The Synapse named by `spec.synapse` does not exist.
    pub const SYNAPSE_NOT_FOUND: &str = "SynapseNotFound";
    /// The Synapse exists but is not ready, or has not published what the bridge needs yet.
    pub const SYNAPSE_NOT_READY: &str = "SynapseNotReady";
    /// The Synapse is suspended (`spec.suspend`): the bridge waits for it to be resumed.
    pub const SYNAPSE_SUSPENDED: &str = "SynapseSuspended";
    /// The Synapse has not taken up the bridge's current registration yet.
    pub const REGISTRATION_PENDING: &str = "RegistrationPending";
    /// The synapse-operator rejected the registration.
    pub const REGISTRATION_REJECTED: &str = "RegistrationRejected";
    /// `spec.synapse` names a Synapse in another namespace.
    pub const CROSS_NAMESPACE_SYNAPSE: &str = "CrossNamespaceSynapse";
}

/// `spec.synapse` names a Synapse in another namespace than the bridge's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "spec.synapse names Synapse {name} in namespace {namespace}, but cross-namespace Synapse \
     references are not supported: put the bridge in the Synapse's namespace ({namespace})"
)]
pub struct CrossNamespaceSynapse {
    /// The namespace the reference names.
    pub namespace: String,
    /// The Synapse name the reference names.
    pub name: String,
}

/// The name of the Synapse a bridge in `bridge_namespace` registers with. A reference to
/// another namespace is refused: the handshake (annotation, Secret, status) lives in one
/// namespace, and matching across namespaces by name was a defect of the original operator.
pub fn synapse_name<'a>(
    bridge_namespace: &str,
    reference: &'a SynapseReference,
) -> Result<&'a str, CrossNamespaceSynapse> {
    match reference.namespace.as_deref() {
        Some(namespace) if !namespace.is_empty() && namespace != bridge_namespace => {
            Err(CrossNamespaceSynapse {
                namespace: namespace.to_owned(),
                name: reference.name.clone(),
            })
        }
        _ => Ok(&reference.name),
    }
}

/// The bridges of `synapse`'s namespace whose `spec.synapse` names it: what a change of that
/// Synapse (appearing, its status, its deletion) must reconcile.
pub fn bridges_of_synapse<B: Bridge>(bridges: &Store<B>, synapse: &Synapse) -> Vec<ObjectRef<B>> {
    let (Some(name), Some(namespace)) = (synapse.metadata.name.as_deref(), synapse.namespace())
    else {
        return Vec::new();
    };
    bridges
        .state()
        .iter()
        .filter(|bridge| {
            bridge.namespace().as_deref() == Some(namespace.as_str())
                && synapse_name(&namespace, bridge.synapse_reference()) == Ok(name)
        })
        .map(|bridge| ObjectRef::from_obj(bridge.as_ref()))
        .collect()
}
