//! The MautrixSignal controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use kube::runtime::controller::Controller;
use operator_common::bridge::{BridgeContext, bridges_of_config_map, bridges_of_synapse};
use operator_common::controller::{Caches as Filled, run_controller};
use operator_common::pipeline::Pipeline;
use operator_common::runtime::Runtime;
use operator_common::wiring::{self, Owned};
use synapse_types::MautrixSignal;

use crate::context::{Caches, Context};
use crate::database::source as database_source;
use crate::reconcile::reconcile;
use crate::status::EVENTS;

/// Runs the MautrixSignal controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let mut filled = Filled::default();
    let (owned, owned_triggers) = Owned::watch(&runtime, &mut filled);
    let (claims, storage_triggers) = wiring::storage(&runtime, &mut filled);
    let (synapses, synapse_triggers) = wiring::synapses(&runtime, &mut filled);
    let config_maps = wiring::config_maps(&runtime);
    let pipeline = Pipeline::new(runtime.client.clone(), runtime.field_manager, EVENTS);
    let context = Arc::new(Context {
        bridge: BridgeContext::new(pipeline, synapses, owned.secrets.clone()),
        caches: Caches { owned, claims },
    });
    run_controller(
        &runtime,
        move |controller: Controller<MautrixSignal>| {
            let bridges = controller.store();
            let for_config_maps = bridges.clone();
            let controller = owned_triggers.wire(controller);
            storage_triggers
                .wire(controller, database_source)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches_stream(synapse_triggers, move |synapse| {
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
