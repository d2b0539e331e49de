//! The Heisenbridge controller's wiring: the caches a reconciliation reads and the watches that
//! trigger it.

use std::sync::Arc;

use kube::runtime::controller::Controller;
use operator_common::bridge::{BridgeContext, bridges_of_synapse};
use operator_common::controller::{Caches, run_controller};
use operator_common::pipeline::Pipeline;
use operator_common::runtime::Runtime;
use operator_common::wiring::{self, Owned};
use synapse_types::Heisenbridge;

use crate::context::Context;
use crate::reconcile::reconcile;
use crate::status::EVENTS;

/// Runs the Heisenbridge controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let mut caches = Caches::default();
    let (owned, owned_triggers) = Owned::watch(&runtime, &mut caches);
    let (synapses, synapse_triggers) = wiring::synapses(&runtime, &mut caches);
    let inputs = wiring::inputs(&runtime);
    let pipeline = Pipeline::of(&runtime, EVENTS);
    let context = Arc::new(Context {
        bridge: BridgeContext::new(pipeline, synapses, owned.secrets.clone()),
        owned,
    });
    run_controller(
        &runtime,
        move |controller: Controller<Heisenbridge>| {
            let bridges = controller.store();
            let controller = owned_triggers
                .wire(controller)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches_stream(synapse_triggers, move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                });
            inputs.wire(controller)
        },
        caches,
        reconcile,
        context,
    )
    .await;
}
