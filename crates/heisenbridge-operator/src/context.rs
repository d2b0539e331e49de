//! What a reconciliation of a Heisenbridge runs with: the shared bridge context and the caches of
//! the bridge's Deployment and Service.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::Client;
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

/// What a reconciliation runs with.
pub struct Context {
    pub bridge: BridgeContext,
    pub deployments: Store<Deployment>,
    pub services: Store<Service>,
}

impl Context {
    pub fn new(
        client: Client,
        field_manager: &'static str,
        bridge_caches: (Store<Synapse>, Store<Secret>),
        deployments: Store<Deployment>,
        services: Store<Service>,
    ) -> Self {
        let (synapses, secrets) = bridge_caches;
        Self {
            bridge: BridgeContext {
                pipeline: Pipeline {
                    applier: Applier::new(client.clone(), field_manager),
                    events: Events::new(client, field_manager),
                    policy: EVENTS,
                },
                synapses,
                secrets,
            },
            deployments,
            services,
        }
    }

    pub fn client(&self) -> &Client {
        self.bridge.pipeline.applier.client()
    }

    /// The bridge's Deployment as cached.
    pub fn deployment(&self, subject: &Subject) -> Option<Arc<Deployment>> {
        cached(
            &self.deployments,
            &subject.namespace,
            &names::workload(&subject.name),
        )
    }

    /// The bridge's Service as cached.
    pub fn service(&self, subject: &Subject) -> Option<Arc<Service>> {
        cached(
            &self.services,
            &subject.namespace,
            &names::workload(&subject.name),
        )
    }
}
