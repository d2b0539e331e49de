//! The Heisenbridge controller's wiring: the caches a reconciliation reads, the watches that
//! trigger it, and the context it runs with.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::watcher;
use operator_common::bridge::{bridges_of_config_map, bridges_of_synapse};
use operator_common::controller::{Caches, run_controller};
use operator_common::events::Events;
use operator_common::runtime::Runtime;
use operator_common::watch::{cache, metadata_triggers, resource_of, tolerant};
use synapse_types::{Heisenbridge, Synapse};

use crate::context::Context;
use crate::reconcile::reconcile;

/// Runs the Heisenbridge controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let managed = runtime.managed_objects();
    let (deployments, deployment_triggers) = cache(runtime.api::<Deployment>(), managed.clone());
    let (services, service_triggers) = cache(runtime.api::<Service>(), managed.clone());
    let (secrets, secret_triggers) = cache(runtime.api::<Secret>(), managed);
    // A Synapse that cannot be read is skipped, not a stall of every bridge.
    let (synapses, synapse_changes) = tolerant::<Synapse>(
        runtime.dynamic_api(&resource_of::<Synapse>()),
        watcher::Config::default(),
        Events::new(runtime.client.clone(), runtime.field_manager),
    );
    let config_maps = metadata_triggers(
        runtime.api::<PartialObjectMeta<ConfigMap>>(),
        watcher::Config::default(),
    );
    let mut caches = Caches::default();
    caches.add(&deployments);
    caches.add(&services);
    caches.add(&secrets);
    caches.add(&synapses);
    let context = Arc::new(Context::new(
        runtime.client.clone(),
        runtime.field_manager,
        (synapses, secrets),
        deployments,
        services,
    ));
    run_controller(
        &runtime,
        move |controller: Controller<Heisenbridge>| {
            let bridges = controller.store();
            let for_config_maps = bridges.clone();
            controller
                .owns_stream(deployment_triggers)
                .owns_stream(service_triggers)
                .owns_stream(secret_triggers)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches_stream(synapse_changes, move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                })
                .watches_stream(config_maps, move |cm| {
                    bridges_of_config_map(&for_config_maps, &cm)
                })
        },
        caches,
        reconcile,
        context,
    )
    .await;
}
