//! What a reconciliation of a MautrixSignal runs with: the shared bridge context and the caches
//! of the bridge's own objects.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::Client;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::Store;
use operator_common::apply::Applier;
use operator_common::bridge::BridgeContext;
use operator_common::events::Events;
use operator_common::pipeline::Pipeline;
use operator_common::subject::Subject;
use operator_common::watch::cached;
use synapse_types::Synapse;

use crate::names;
use crate::status::EVENTS;

/// The caches a reconciliation reads without a request.
#[derive(Clone)]
pub struct Caches {
    pub synapses: Store<Synapse>,
    /// The operator's own Secrets: keys, config, registration.
    pub secrets: Store<Secret>,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    pub claims: Store<PartialObjectMeta<PersistentVolumeClaim>>,
}

/// What a reconciliation runs with.
pub struct Context {
    pub bridge: BridgeContext,
    pub caches: Caches,
}

impl Context {
    pub fn new(client: Client, field_manager: &'static str, caches: Caches) -> Self {
        Self {
            bridge: BridgeContext {
                pipeline: Pipeline {
                    applier: Applier::new(client.clone(), field_manager),
                    events: Events::new(client, field_manager),
                    policy: EVENTS,
                },
                synapses: caches.synapses.clone(),
                secrets: caches.secrets.clone(),
            },
            caches,
        }
    }

    pub fn applier(&self) -> &Applier {
        &self.bridge.pipeline.applier
    }

    /// The bridge's objects as cached.
    pub fn existing(&self, subject: &Subject) -> Existing {
        let (namespace, name) = (subject.namespace.as_str(), subject.name.as_str());
        let caches = &self.caches;
        Existing {
            keys: cached(&caches.secrets, namespace, &names::keys_secret(name)),
            config: cached(&caches.secrets, namespace, &names::config_secret(name)),
            claim: cached(&caches.claims, namespace, &names::data_claim(name)),
            deployment: cached(&caches.deployments, namespace, &names::workload(name)),
            service: cached(&caches.services, namespace, &names::workload(name)),
        }
    }
}

/// The bridge's objects as cached (its registration Secret is the handshake's).
pub struct Existing {
    pub keys: Option<Arc<Secret>>,
    pub config: Option<Arc<Secret>>,
    pub claim: Option<Arc<PartialObjectMeta<PersistentVolumeClaim>>>,
    pub deployment: Option<Arc<Deployment>>,
    pub service: Option<Arc<Service>>,
}
