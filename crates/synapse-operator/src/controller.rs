//! The Synapse controller's wiring: the caches a reconciliation reads, the watches that trigger
//! it, and the context it runs with.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt as _};
use operator_common::controller::{Caches as Filled, run_controller};
use operator_common::database::{cluster_resource, secret_triggers};
use operator_common::labels::named_by_label;
use operator_common::runtime::Runtime;
use operator_common::watch::{cache, dynamic_triggers, metadata_cache, metadata_triggers};
use synapse_types::Synapse;
use synapse_types::contract::{LABEL_REGISTERED_WITH, labels};

use crate::context::{Caches, Context};
use crate::database::database_source;
use crate::reconcile::reconcile;
use crate::status::EVENTS;

/// Runs the Synapse controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let managed = runtime.managed_objects();
    let (deployments, deployment_triggers) = cache(runtime.api::<Deployment>(), managed.clone());
    let (services, service_triggers) = cache(runtime.api::<Service>(), managed.clone());
    let (secrets, secret_changes) = cache(runtime.api::<Secret>(), managed.clone());
    let (registrations, registration_changes) = cache(
        runtime.api::<Secret>(),
        watcher::Config::default().labels(LABEL_REGISTERED_WITH),
    );
    let (claims, claim_changes) = metadata_cache(
        runtime.api::<PartialObjectMeta<PersistentVolumeClaim>>(),
        managed.clone(),
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
    // A missing CloudNativePG CRD makes this watch fail and back off on its own; the Synapses
    // that need it look again by themselves (database::CRD_RETRY).
    let clusters = dynamic_triggers(
        runtime.dynamic_api(&cluster_resource()),
        &cluster_resource(),
        managed,
    );
    let caches = Caches {
        deployments,
        services,
        secrets,
        registrations,
        claims,
    };
    let mut filled = Filled::default();
    filled.add(&caches.deployments);
    filled.add(&caches.services);
    filled.add(&caches.secrets);
    filled.add(&caches.registrations);
    filled.add(&caches.claims);
    let context = Arc::new(Context::new(
        runtime.client.clone(),
        runtime.field_manager,
        EVENTS,
        caches,
    ));
    run_controller(
        &runtime,
        move |controller: Controller<Synapse>| {
            let synapses = controller.store();
            let for_secrets = synapses.clone();
            controller
                .owns_stream(deployment_triggers)
                .owns_stream(service_triggers)
                // The generated secrets carry no owner when retained: mapped by instance label.
                .watches_stream(secret_changes, by_instance_label)
                .watches_stream(registration_changes, |secret| {
                    named_by_label(&secret, LABEL_REGISTERED_WITH)
                })
                .watches_stream(claim_changes, by_instance_label)
                .watches_stream_with(clusters, by_instance_label, cluster_resource())
                .watches_stream(all_secrets, move |secret| {
                    secret_triggers(&for_secrets, &secret, database_source)
                })
                .watches_stream(config_maps, move |cm| referencing_synapses(&synapses, &cm))
        },
        filled,
        reconcile,
        context,
    )
    .await;
}

fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Synapse>> {
    named_by_label(&object, labels::INSTANCE)
}

/// The Synapses whose `spec.homeserver.configMap` names this ConfigMap.
fn referencing_synapses(
    synapses: &Store<Synapse>,
    cm: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<Synapse>> {
    let (Some(cm_name), Some(cm_namespace)) = (cm.metadata.name.as_deref(), cm.namespace()) else {
        return Vec::new();
    };
    synapses
        .state()
        .iter()
        .filter(|synapse| {
            synapse
                .spec
                .homeserver
                .config_map
                .as_ref()
                .is_some_and(|r| {
                    let namespace = r
                        .namespace
                        .clone()
                        .filter(|ns| !ns.is_empty())
                        .or_else(|| synapse.namespace());
                    r.name == cm_name && namespace.as_deref() == Some(cm_namespace.as_str())
                })
        })
        .map(|synapse| ObjectRef::from_obj(synapse.as_ref()))
        .collect()
}
