//! The MautrixSignal controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use kube::runtime::controller::Controller;
use operator_common::bridge::{BridgeContext, bridges_of_synapse};
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
    let inputs = wiring::inputs(&runtime);
    let pipeline = Pipeline::of(&runtime, EVENTS);
    let context = Arc::new(Context {
        bridge: BridgeContext::new(pipeline, synapses, owned.secrets.clone()),
        caches: Caches { owned, claims },
    });
    run_controller(
        &runtime,
        move |controller: Controller<MautrixSignal>| {
            let bridges = controller.store();
            let controller = owned_triggers.wire(controller);
            let controller = storage_triggers
                .wire(controller, database_source)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches_stream(synapse_triggers, move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                });
            inputs.wire(controller)
        },
        filled,
        reconcile,
        context,
    )
    .await;
}
