//! What a reconciliation of a Synapse runs with: the shared pipeline and the caches it reads.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::Client;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::Store;
use operator_common::apply::Applier;
use operator_common::events::{EventPolicy, Events};
use operator_common::pipeline::Pipeline;

/// The objects a reconciliation reads without a request.
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
    /// The operator's own Secrets (configuration, generated secrets).
    pub secrets: Store<Secret>,
    /// The bridges' registration Secrets, labelled with the Synapse they are offered to.
    pub registrations: Store<Secret>,
    pub claims: Store<PartialObjectMeta<PersistentVolumeClaim>>,
}

/// What a reconciliation runs with.
pub struct Context {
    pub pipeline: Pipeline,
    pub caches: Caches,
}

impl Context {
    pub fn new(
        client: Client,
        field_manager: &'static str,
        policy: EventPolicy,
        caches: Caches,
    ) -> Self {
        Self {
            pipeline: Pipeline {
                applier: Applier::new(client.clone(), field_manager),
                events: Events::new(client, field_manager),
                policy,
            },
            caches,
        }
    }

    pub fn client(&self) -> &Client {
        self.pipeline.applier.client()
    }

    pub fn field_manager(&self) -> &'static str {
        self.pipeline.applier.field_manager()
    }
}
