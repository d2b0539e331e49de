//! What a reconciliation of a MautrixSignal runs with: the shared bridge context and the caches
//! of the bridge's own objects.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::Store;
use operator_common::apply::Applier;
use operator_common::bridge::BridgeContext;
use operator_common::cached_deployment::CachedDeployment;
use operator_common::subject::Subject;
use operator_common::watch::cached;
use operator_common::wiring::Owned;

use crate::names;

/// The caches of the bridge's own objects (the Synapses are the bridge context's).
#[derive(Clone)]
pub struct Caches {
    /// The bridges' Deployments, Services and Secrets (keys, config, registration).
    pub owned: Owned,
    pub claims: Store<PartialObjectMeta<PersistentVolumeClaim>>,
}

/// What a reconciliation runs with.
pub struct Context {
    pub bridge: BridgeContext,
    pub caches: Caches,
}

impl Context {
    pub fn applier(&self) -> &Applier {
        &self.bridge.pipeline.applier
    }

    /// The bridge's objects as cached.
    pub fn existing(&self, subject: &Subject) -> Existing {
        let (namespace, name) = (subject.namespace.as_str(), subject.name.as_str());
        let owned = &self.caches.owned;
        Existing {
            keys: cached(&owned.secrets, namespace, &names::keys_secret(name)),
            config: cached(&owned.secrets, namespace, &names::config_secret(name)),
            claim: cached(&self.caches.claims, namespace, &names::data_claim(name)),
            deployment: cached(&owned.deployments, namespace, &names::workload(name)),
            service: cached(&owned.services, namespace, &names::workload(name)),
        }
    }
}

/// The bridge's objects as cached (its registration Secret is the handshake's).
pub struct Existing {
    pub keys: Option<Arc<Secret>>,
    pub config: Option<Arc<Secret>>,
    pub claim: Option<Arc<PartialObjectMeta<PersistentVolumeClaim>>>,
    pub deployment: Option<Arc<CachedDeployment>>,
    pub service: Option<Arc<Service>>,
}
