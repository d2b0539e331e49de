//! What a reconciliation of a Synapse runs with: the shared pipeline and the caches it reads.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::Store;
use operator_common::pipeline::Pipeline;
use operator_common::wiring::Owned;

use crate::certificate::Certificate;
use crate::config_check::CheckJob;
use crate::http_route::HTTPRoute;
use crate::monitor::{PodMonitor, ServiceMonitor};

/// The objects a reconciliation reads without a request.
#[derive(Clone)]
pub struct Caches {
    /// Its Deployments, Services and own Secrets (configuration, generated secrets).
    pub owned: Owned,
    /// The bridges' registration Secrets, labelled with the Synapse they are offered to.
    pub registrations: Store<Secret>,
    pub claims: Store<PartialObjectMeta<PersistentVolumeClaim>>,
    /// The HTTPRoutes, Ingresses and Certificates of exposed Synapses. Routes and Certificates
    /// stay empty while their CRDs are missing, so they are not awaited at start: one found
    /// later triggers its Synapse again.
    pub routes: Store<HTTPRoute>,
    pub ingresses: Store<Ingress>,
    pub certificates: Store<Certificate>,
    /// The monitors of Synapses with `spec.metrics.monitor`; not awaited either, the
    /// Prometheus Operator's CRDs may be missing.
    pub service_monitors: Store<ServiceMonitor>,
    pub pod_monitors: Store<PodMonitor>,
    /// The disruption budgets of Synapses with workers.
    pub budgets: Store<PodDisruptionBudget>,
    /// The Jobs checking a new configuration before it rolls out: only while one is checked or
    /// was rejected.
    pub config_checks: Store<CheckJob>,
}

/// What a reconciliation runs with.
pub struct Context {
    pub pipeline: Pipeline,
    pub caches: Caches,
}

impl Context {
    pub fn field_manager(&self) -> &'static str {
        self.pipeline.applier.field_manager()
    }
}
