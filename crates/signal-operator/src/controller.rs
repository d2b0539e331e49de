//! The MautrixSignal controller. So far it only observes its kind: what it deploys comes in the
//! following issues.

use std::convert::Infallible;
use std::sync::Arc;

use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use operator_common::controller::run_controller;
use operator_common::runtime::Runtime;
use synapse_types::MautrixSignal;

/// Runs the MautrixSignal controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    run_controller(&runtime, |controller| controller, reconcile, Arc::new(())).await;
}

async fn reconcile(object: Arc<MautrixSignal>, _: Arc<()>) -> Result<Action, Infallible> {
    tracing::info!(
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        generation = object.metadata.generation,
        "observed MautrixSignal"
    );
    Ok(Action::await_change())
}
