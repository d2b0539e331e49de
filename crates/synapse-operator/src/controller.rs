//! The Synapse controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use operator_common::controller::{Caches as Filled, run_controller};
use operator_common::labels::named_by_label;
use operator_common::pipeline::Pipeline;
use operator_common::runtime::Runtime;
use operator_common::watch::cache;
use operator_common::wiring::{self, Owned};
use synapse_types::Synapse;
use synapse_types::contract::LABEL_REGISTERED_WITH;

use crate::certificate::Certificate;
use crate::config_check::CheckJob;
use crate::context::{Caches, Context};
use crate::database::database_source;
use crate::http_route::HTTPRoute;
use crate::monitor::{PodMonitor, ServiceMonitor};
use crate::reconcile::reconcile;
use crate::status::EVENTS;

/// Runs the Synapse controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let mut filled = Filled::default();
    let (owned, owned_triggers) = Owned::watch(&runtime, &mut filled);
    let (claims, storage_triggers) = wiring::storage(&runtime, &mut filled);
    // The bridges' registration Secrets, labelled with the Synapse they are offered to.
    let (registrations, registration_triggers) = cache(
        runtime.api::<Secret>(),
        watcher::Config::default().labels(LABEL_REGISTERED_WITH),
    );
    filled.add(&registrations);
    let managed = || runtime.managed_objects();
    let (routes, route_triggers) = cache(runtime.api::<HTTPRoute>(), managed());
    let (certificates, certificate_triggers) = cache(runtime.api::<Certificate>(), managed());
    let (ingresses, ingress_triggers) = cache(runtime.api::<Ingress>(), managed());
    let (service_monitors, service_monitor_triggers) =
        cache(runtime.api::<ServiceMonitor>(), managed());
    let (pod_monitors, pod_monitor_triggers) = cache(runtime.api::<PodMonitor>(), managed());
    let (budgets, budget_triggers) = cache(runtime.api::<PodDisruptionBudget>(), managed());
    filled.add(&budgets);
    let (config_checks, config_check_triggers) = cache(runtime.api::<CheckJob>(), managed());
    filled.add(&config_checks);
    filled.add(&ingresses);
    let inputs = wiring::inputs(&runtime);
    let caches = Caches {
        owned,
        registrations,
        claims,
        routes,
        ingresses,
        certificates,
        service_monitors,
        pod_monitors,
        budgets,
        config_checks,
    };
    let pipeline = Pipeline::of(&runtime, EVENTS);
    let context = Arc::new(Context { pipeline, caches });
    run_controller(
        &runtime,
        move |controller: Controller<Synapse>| {
            let controller = owned_triggers
                .wire(controller)
                .owns_stream(route_triggers)
                .owns_stream(ingress_triggers)
                .owns_stream(certificate_triggers)
                .owns_stream(service_monitor_triggers)
                .owns_stream(pod_monitor_triggers)
                .owns_stream(budget_triggers)
                .owns_stream(config_check_triggers);
            let controller = storage_triggers
                .wire(controller, database_source)
                .watches_stream(registration_triggers, |secret| {
                    named_by_label(&secret, LABEL_REGISTERED_WITH)
                });
            inputs.wire(controller)
        },
        filled,
        reconcile,
        context,
    )
    .await;
}
