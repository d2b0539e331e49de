//! The MautrixSignal controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::Resource;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use operator_common::bridge::{bridges_of_config_map, bridges_of_synapse};
use operator_common::controller::{Caches as Filled, run_controller};
use operator_common::database::{cluster_resource, secret_triggers};
use operator_common::events::Events;
use operator_common::labels::named_by_label;
use operator_common::runtime::Runtime;
use operator_common::watch::{
    cache, dynamic_triggers, metadata_cache, metadata_triggers, resource_of, tolerant,
};
use synapse_types::contract::labels;
use synapse_types::{MautrixSignal, Synapse};

use crate::context::{Caches, Context};
use crate::database::source as database_source;
use crate::reconcile::reconcile;

/// Runs the MautrixSignal controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let managed = runtime.managed_objects();
    let (deployments, deployment_triggers) = cache(runtime.api::<Deployment>(), managed.clone());
    let (services, service_triggers) = cache(runtime.api::<Service>(), managed.clone());
    // Ours: the keys Secret carries no owner reference when retained, so all are mapped back
    // through their instance label.
    let (secrets, secret_changes) = cache(runtime.api::<Secret>(), managed.clone());
    let (claims, claim_changes) = metadata_cache(
        runtime.api::<PartialObjectMeta<PersistentVolumeClaim>>(),
        managed.clone(),
    );
    // A Synapse that cannot be read is skipped, not a stall of every bridge.
    let (synapses, synapse_changes) = tolerant::<Synapse>(
        runtime.dynamic_api(&resource_of::<Synapse>()),
        watcher::Config::default(),
        Events::new(runtime.client.clone(), runtime.field_manager),
    );
    // Any Secret may be a database Secret (the user's, or CloudNativePG's): watched by name.
    let all_secrets = metadata_triggers(
        runtime.api::<PartialObjectMeta<Secret>>(),
        watcher::Config::default(),
    );
    let config_maps = metadata_triggers(
        runtime.api::<PartialObjectMeta<ConfigMap>>(),
        watcher::Config::default(),
    );
    // A missing CloudNativePG CRD makes this watch fail and back off on its own; the bridges
    // that need it look again by themselves (database::CRD_RETRY).
    let clusters = dynamic_triggers(
        runtime.dynamic_api(&cluster_resource()),
        &cluster_resource(),
        managed,
    );
    let caches = Caches {
        synapses,
        secrets,
        deployments,
        services,
        claims,
    };
    let mut filled = Filled::default();
    filled.add(&caches.synapses);
    filled.add(&caches.secrets);
    filled.add(&caches.deployments);
    filled.add(&caches.services);
    filled.add(&caches.claims);
    let context = Arc::new(Context::new(
        runtime.client.clone(),
        runtime.field_manager,
        caches,
    ));
    run_controller(
        &runtime,
        move |controller: Controller<MautrixSignal>| {
            let bridges = controller.store();
            let (for_secrets, for_config_maps) = (bridges.clone(), bridges.clone());
            controller
                .owns_stream(deployment_triggers)
                .owns_stream(service_triggers)
                .watches_stream(secret_changes, by_instance_label)
                .watches_stream(claim_changes, by_instance_label)
                .watches_stream_with(clusters, by_instance_label, cluster_resource())
                .watches_stream(all_secrets, move |secret| {
                    secret_triggers(&for_secrets, &secret, database_source)
                })
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches_stream(synapse_changes, move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                })
                .watches_stream(config_maps, move |cm| {
                    bridges_of_config_map(&for_config_maps, &cm)
                })
        },
        filled,
        reconcile,
        context,
    )
    .await;
}

fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<MautrixSignal>> {
    named_by_label(&object, labels::INSTANCE)
}
