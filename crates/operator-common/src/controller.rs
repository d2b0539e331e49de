//! The controller loop every operator runs for its kind: a watch with its cache, readiness once
//! the cache is synced, metrics and logging around each reconciliation, and an error policy.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;
use synapse_types::common::CONDITION_READY;

use crate::apply::apply_status;
use crate::events::Events;
use crate::runtime::Runtime;

/// How long a failed reconciliation waits before it is retried.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(15);

/// How often the cache's readiness is checked until it is synced.
const SYNC_POLL: Duration = Duration::from_millis(500);

/// A reconciliation error, counted in the metrics under a stable label.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// Stable, low-cardinality name of the kind of error, e.g. `kube` or `invalid-config`.
    fn metric_label(&self) -> &'static str;
}

/// For reconcilers that cannot fail.
impl ReconcileError for Infallible {
    fn metric_label(&self) -> &'static str {
        match *self {}
    }
}

/// Reason of the `Ready` condition and of the Warning Event when the API server refuses a request
/// of the operator (HTTP 403): its RBAC rules lack a permission.
pub const REASON_FORBIDDEN: &str = "Forbidden";

/// The API server's refusal (HTTP 403) anywhere in `error`'s chain of sources: its message.
fn forbidden(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        let status = match e.downcast_ref::<kube::Error>() {
            Some(kube::Error::Api(status)) => Some(status.as_ref()),
            _ => e.downcast_ref::<kube::core::Status>(),
        };
        if let Some(status) = status.filter(|s| s.code == 403) {
            return Some(status.message.clone());
        }
        current = e.source();
    }
    None
}

/// Surfaces a refused request on the object, where `kubectl describe` shows it: `Ready=False`
/// with reason [`REASON_FORBIDDEN`] (written under a field manager of its own, so only that
/// condition is touched; the next successful reconciliation takes it back) and a Warning Event.
#[derive(Clone)]
struct Refusals {
    client: kube::Client,
    events: Events,
    field_manager: String,
}

impl Refusals {
    async fn report<K>(&self, object: &K, refusal: &str)
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + serde::Serialize,
    {
        let (Some(name), Some(namespace)) = (
            object.meta().name.as_deref(),
            object.meta().namespace.as_deref(),
        ) else {
            return;
        };
        let message = format!(
            "the operator is not allowed to do what this object needs: {refusal}. Grant the \
             permission to the operator's ServiceAccount (its Helm chart's RBAC rules list them)"
        );
        let current = serde_json::to_value(object).ok();
        let ready = current.as_ref().and_then(|o| {
            o["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == CONDITION_READY)
                .cloned()
        });
        // Reported already: nothing to write on every retry.
        if ready
            .as_ref()
            .is_some_and(|c| c["reason"] == REASON_FORBIDDEN && c["message"] == message.as_str())
        {
            return;
        }
        let since = ready
            .filter(|c| c["status"] == "False")
            .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_owned))
            .unwrap_or_else(|| Timestamp::now().to_string());
        self.events
            .warning(object, REASON_FORBIDDEN, message.clone())
            .await;
        let condition = serde_json::json!({"conditions": [{
            "type": CONDITION_READY,
            "status": "False",
            "reason": REASON_FORBIDDEN,
            "message": message,
            "lastTransitionTime": since,
            "observedGeneration": object.meta().generation,
        }]});
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        if let Err(error) = apply_status(&api, &self.field_manager, name, &condition).await {
            tracing::warn!(error = %error, "cannot record the refusal in the status");
        }
    }
}

/// Runs the controller of kind `K` until the runtime's shutdown token is cancelled.
/// `configure` adds the watches of related objects (`owns`, `watches`) to the controller.
pub async fn run_controller<K, Ctx, E, Fut>(
    runtime: &Runtime,
    configure: impl FnOnce(Controller<K>) -> Controller<K>,
    mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    context: Arc<Ctx>,
) where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + Debug
        + Send
        + Sync
        + 'static,
    Ctx: Send + Sync + 'static,
    E: ReconcileError,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let controller = configure(Controller::new(
        runtime.api::<K>(),
        watcher::Config::default(),
    ));

    let health = runtime.health.clone();
    let synced = controller.store();
    let readiness = tokio::spawn(async move {
        // The store wakes only the last of several concurrent waiters, and the controller waits
        // on it too: poll again and again until the (memoised) readiness is seen.
        loop {
            match tokio::time::timeout(SYNC_POLL, synced.wait_until_ready()).await {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return,
                Err(_) => {}
            }
        }
        tracing::info!(kind = %K::kind(&()), "cache synced");
        health.set_synced(true);
    });

    let metrics = Arc::clone(&runtime.metrics);
    let timed_reconcile = move |object: Arc<K>, context: Arc<Ctx>| {
        let metrics = Arc::clone(&metrics);
        let started = Instant::now();
        let reconciliation = reconcile(object, context);
        async move {
            let result = reconciliation.await;
            metrics.reconciled(started.elapsed());
            result
        }
    };
    let metrics = Arc::clone(&runtime.metrics);
    let refusals = Refusals {
        client: runtime.client.clone(),
        events: Events::new(runtime.client.clone(), runtime.field_manager),
        field_manager: format!("{}-errors", runtime.field_manager),
    };
    let error_policy = move |object: Arc<K>, error: &E, _: Arc<Ctx>| {
        metrics.failed(error.metric_label());
        tracing::warn!(
            kind = %K::kind(&()),
            namespace = object.meta().namespace.as_deref().unwrap_or_default(),
            name = object.meta().name.as_deref().unwrap_or_default(),
            error = %error,
            "reconciliation failed"
        );
        if let Some(refusal) = forbidden(error) {
            let refusals = refusals.clone();
            tokio::spawn(async move { refusals.report(object.as_ref(), &refusal).await });
        }
        Action::requeue(RETRY_AFTER_ERROR)
    };

    controller
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(timed_reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(object = %object, "reconciled"),
                // Failed reconciliations were logged and counted by the error policy.
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
                // A related object names one of our kind that does not exist (a registration
                // Secret labelled for a deleted Synapse, say): nothing to do.
                Err(e @ kube::runtime::controller::Error::ObjectNotFound(_)) => {
                    tracing::debug!(error = %e, "trigger for an object that does not exist")
                }
                Err(e) => tracing::warn!(error = %e, "controller error"),
            }
        })
        .await;
    readiness.abort();
    runtime.health.set_synced(false);
}
