//! The fetch step: everything a reconciliation of a Synapse reads, and nothing else. The
//! objects the operator watches come from its caches; only the input ConfigMap is read from the
//! API server.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::ResourceExt as _;
use kube::api::PartialObjectMeta;
use operator_common::cached_deployment::CachedDeployment;
use operator_common::error::Error;
use operator_common::input::ConfigMapInput;
use operator_common::subject::Subject;
use operator_common::watch::{cached, cached_of_instance};
use synapse_types::Synapse;

use crate::appservice::{Announced, announcements};
use crate::config_check::CheckJob;
use crate::context::Context;
use crate::names;
use crate::{expose, monitoring, workers};

/// What a reconciliation of one Synapse reads.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `None` without `spec.homeserver.configMap`.
    pub config_map: Option<ConfigMapInput>,
    /// The registrations announced on the Synapse, with their Secrets.
    pub announced: Vec<Announced>,
    pub homeserver_secret: Option<Arc<Secret>>,
    pub config_secret: Option<Arc<Secret>>,
    pub claim: Option<Arc<PartialObjectMeta<PersistentVolumeClaim>>>,
    pub deployment: Option<Arc<CachedDeployment>>,
    pub service: Option<Arc<Service>>,
    /// Its HTTPRoute, Ingress and Certificate.
    pub exposure: expose::Cached,
    /// Its ServiceMonitor or PodMonitor.
    pub monitors: monitoring::Cached,
    /// Its workers' objects.
    pub workers: workers::step::Cached,
    /// The Jobs checking its configuration.
    pub config_checks: Vec<Arc<CheckJob>>,
}

/// Reads the inputs of `synapse`.
pub async fn inputs(synapse: &Synapse, subject: &Subject, ctx: &Context) -> Result<Inputs, Error> {
    let (namespace, name) = (subject.namespace.as_str(), subject.name.as_str());
    let caches = &ctx.caches;
    let owned = &caches.owned;
    let config_map = ctx.pipeline.config_maps.read(synapse, namespace).await?;
    let announced = announcements(synapse.annotations())
        .into_iter()
        .map(|(annotation, secret_name)| Announced {
            secret: cached(&caches.registrations, namespace, &secret_name)
                .map(|s| s.as_ref().clone()),
            annotation,
            secret_name,
        })
        .collect();
    Ok(Inputs {
        config_map,
        announced,
        homeserver_secret: cached(&owned.secrets, namespace, &names::homeserver_secret(name)),
        config_secret: cached(&owned.secrets, namespace, &names::config_secret(name)),
        claim: cached(&caches.claims, namespace, &names::data_claim(name)),
        deployment: cached(&owned.deployments, namespace, &names::workload(name)),
        service: cached(&owned.services, namespace, &names::workload(name)),
        exposure: expose::Cached {
            route: cached(&caches.routes, namespace, &names::workload(name)),
            federation_route: cached(&caches.routes, namespace, &names::federation_route(name)),
            ingress: cached(&caches.ingresses, namespace, &names::workload(name)),
            certificate: cached(&caches.certificates, namespace, &names::workload(name)),
        },
        workers: worker_objects(synapse, ctx, namespace, name),
        config_checks: cached_of_instance(&caches.config_checks, namespace, name),
        monitors: monitoring::Cached {
            service_monitor: cached(&caches.service_monitors, namespace, &names::workload(name)),
            pod_monitor: cached(&caches.pod_monitors, namespace, &names::workload(name)),
        },
    })
}

/// The cached worker objects of the Synapse: scanned for only when it declares workers or its
/// status says it ran some (whose objects may be left to delete), so an ordinary Synapse's
/// reconciliation does not walk every cache.
fn worker_objects(
    synapse: &Synapse,
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> workers::step::Cached {
    let had_workers = synapse.status.as_ref().is_some_and(|s| s.workers.is_some());
    if synapse.spec.workers.is_none() && !had_workers {
        return workers::step::Cached::default();
    }
    let (owned, main) = (&ctx.caches.owned, workers::config::main_service(name));
    workers::step::Cached {
        deployments: workers::step::of_synapse(&owned.deployments, namespace, name, &main),
        services: workers::step::of_synapse(&owned.services, namespace, name, &main),
        secrets: workers::step::of_synapse(&owned.secrets, namespace, name, &main),
        budgets: workers::step::of_synapse(&ctx.caches.budgets, namespace, name, &main),
    }
}
