//! The Synapse controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt as _;
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use operator_common::controller::{Caches as Filled, run_controller};
use operator_common::labels::named_by_label;
use operator_common::runtime::Runtime;
use operator_common::watch::cache;
use operator_common::wiring::{self, Owned};
use synapse_types::Synapse;
use synapse_types::contract::LABEL_REGISTERED_WITH;

use crate::context::{Caches, Context};
use crate::database::database_source;
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
    let config_maps = wiring::config_maps(&runtime);
    let caches = Caches {
        owned,
        registrations,
        claims,
    };
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
            let controller = owned_triggers.wire(controller);
            storage_triggers
                .wire(controller, database_source)
                .watches_stream(registration_triggers, |secret| {
                    named_by_label(&secret, LABEL_REGISTERED_WITH)
                })
                .watches_stream(config_maps, move |cm| referencing_synapses(&synapses, &cm))
        },
        filled,
        reconcile,
        context,
    )
    .await;
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
