//! The workers step: the worker objects applied, the ones the spec no longer asks for deleted,
//! and how many workers of each role are ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::runtime::reflector::Store;
use operator_common::apply::{Applicable, Applier};
use operator_common::cached_deployment::CachedDeployment;
use operator_common::error::Error;
use operator_common::rollout::Rollout;
use operator_common::watch::cached_of_instance;
use synapse_types::contract::labels;
use synapse_types::synapse::{WorkerRoleStatus, WorkersStatus};

use super::build::{REDIS, ROUTER, WorkerChildren};
use super::topology::Role;

/// `app.kubernetes.io/component` of every worker object but the main process's Service.
fn is_worker_component(component: &str) -> bool {
    component == ROUTER
        || component == REDIS
        || component == "workers"
        || Role::ALL.iter().any(|r| r.slug() == component)
}

/// The cached worker objects of one Synapse.
#[derive(Clone, Debug, Default)]
pub struct Cached {
    pub deployments: Vec<Arc<CachedDeployment>>,
    pub services: Vec<Arc<Service>>,
    pub secrets: Vec<Arc<Secret>>,
    pub budgets: Vec<Arc<PodDisruptionBudget>>,
}

impl Cached {
    /// The operator's Redis Secret, if cached.
    pub fn redis_secret(&self) -> Option<&Secret> {
        self.secrets
            .iter()
            .find(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::COMPONENT))
                    .map(String::as_str)
                    == Some(REDIS)
            })
            .map(|s| s.as_ref())
    }
}

/// The objects of `store` that belong to the worker topology of the Synapse `name`; its main
/// Service is `main_service`.
pub fn of_synapse<K>(
    store: &Store<K>,
    namespace: &str,
    name: &str,
    main_service: &str,
) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    cached_of_instance(store, namespace, name)
        .into_iter()
        .filter(|object| {
            let meta = object.meta();
            let component = meta.labels.as_ref().and_then(|l| l.get(labels::COMPONENT));
            component.is_some_and(|c| is_worker_component(c))
                || meta.name.as_deref() == Some(main_service)
        })
        .collect()
}

/// How the workers stand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkersState {
    pub status: WorkersStatus,
    /// What the Synapse still waits for, if anything: a worker, the router or Redis.
    pub waiting: Option<String>,
}

/// Applies `desired` (nothing without workers) and deletes the cached objects it does not have.
pub async fn converge(
    applier: &Applier,
    desired: Option<&WorkerChildren>,
    cached: &Cached,
    declared: &[(Role, i32)],
) -> Result<Option<WorkersState>, Error> {
    let mut keep = BTreeSet::new();
    let mut waiting = Vec::new();
    let mut roles: Vec<WorkerRoleStatus> = declared
        .iter()
        .map(|(role, replicas)| WorkerRoleStatus {
            role: role.field().into(),
            replicas: *replicas,
            ready: 0,
        })
        .collect();
    if let Some(desired) = desired {
        let find = |name: &str| {
            cached
                .deployments
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name))
        };
        applier
            .apply(&desired.files, by_name(&cached.secrets, &desired.files))
            .await?;
        keep.insert(name_of(&desired.files));
        if let Some((deployment, service)) = &desired.redis {
            let rollout = applier
                .apply_deployment(deployment, find(&name_of(deployment)).map(|d| d.as_ref()))
                .await?;
            note(&mut waiting, "Redis", &rollout);
            applier
                .apply(service, by_name(&cached.services, service))
                .await?;
            keep.extend([name_of(deployment), name_of(service)]);
        }
        applier
            .apply(
                &desired.main_service,
                by_name(&cached.services, &desired.main_service),
            )
            .await?;
        keep.insert(name_of(&desired.main_service));
        for (instance, deployment, service) in &desired.workers {
            let rollout = applier
                .apply_deployment(deployment, find(&name_of(deployment)).map(|d| d.as_ref()))
                .await?;
            keep.insert(name_of(deployment));
            if rollout == Rollout::Ready {
                if let Some(role) = roles.iter_mut().find(|r| r.role == instance.role.field()) {
                    role.ready += 1;
                }
            } else {
                note(
                    &mut waiting,
                    &format!("worker {}", instance.worker_name()),
                    &rollout,
                );
            }
            if let Some(service) = service {
                applier
                    .apply(service, by_name(&cached.services, service))
                    .await?;
                keep.insert(name_of(service));
            }
        }
        let rollout = applier
            .apply_deployment(
                &desired.router,
                find(&name_of(&desired.router)).map(|d| d.as_ref()),
            )
            .await?;
        note(&mut waiting, "the router", &rollout);
        keep.insert(name_of(&desired.router));
        for budget in &desired.budgets {
            applier
                .apply(budget, by_name(&cached.budgets, budget))
                .await?;
            keep.insert(format!("pdb/{}", name_of(budget)));
        }
    }
    remove_unkept(applier, &cached.deployments, &keep, "").await?;
    remove_unkept(applier, &cached.services, &keep, "").await?;
    remove_unkept(applier, &cached.secrets, &keep, "").await?;
    remove_unkept(applier, &cached.budgets, &keep, "pdb/").await?;
    let Some(_) = desired else {
        return Ok(None);
    };
    let (ready, total) = roles
        .iter()
        .fold((0, 0), |(r, t), role| (r + role.ready, t + role.replicas));
    Ok(Some(WorkersState {
        status: WorkersStatus {
            summary: format!("{ready}/{total}"),
            roles,
        },
        waiting: (!waiting.is_empty()).then(|| waiting.join("; ")),
    }))
}

fn note(waiting: &mut Vec<String>, what: &str, rollout: &Rollout) {
    match rollout {
        Rollout::Ready => {}
        Rollout::Progressing(message) | Rollout::Failed(message) => {
            waiting.push(format!("{what}: {message}"));
        }
    }
}

fn name_of<K: Resource>(object: &K) -> String {
    object.meta().name.clone().unwrap_or_default()
}

fn by_name<'a, K: Resource>(cached: &'a [Arc<K>], desired: &impl Resource) -> Option<&'a K> {
    let name = desired.meta().name.as_deref();
    cached
        .iter()
        .find(|c| c.meta().name.as_deref() == name)
        .map(|c| c.as_ref())
}

async fn remove_unkept<K: Applicable>(
    applier: &Applier,
    cached: &[Arc<K>],
    keep: &BTreeSet<String>,
    prefix: &str,
) -> Result<(), Error> {
    for object in cached {
        if !keep.contains(&format!("{prefix}{}", name_of(object.as_ref()))) {
            applier.delete_cached(Some(object.as_ref())).await?;
        }
    }
    Ok(())
}
