//! What a reconciliation of a Heisenbridge runs with: the shared bridge context and the caches of
//! the bridge's Deployment and Service.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use operator_common::bridge::BridgeContext;
use operator_common::cached_deployment::CachedDeployment;
use operator_common::subject::Subject;
use operator_common::watch::cached;
use operator_common::wiring::Owned;

use crate::names;

/// What a reconciliation runs with.
pub struct Context {
    pub bridge: BridgeContext,
    /// The bridges' Deployments, Services and Secrets.
    pub owned: Owned,
}

impl Context {
    /// The bridge's Deployment as cached.
    pub fn deployment(&self, subject: &Subject) -> Option<Arc<CachedDeployment>> {
        let name = names::workload(&subject.name);
        cached(&self.owned.deployments, &subject.namespace, &name)
    }

    /// The bridge's Service as cached.
    pub fn service(&self, subject: &Subject) -> Option<Arc<Service>> {
        let name = names::workload(&subject.name);
        cached(&self.owned.services, &subject.namespace, &name)
    }
}
