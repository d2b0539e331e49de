//! The controller loop every operator runs for its kind: a watch with its cache, readiness once
//! the cache is synced, metrics and logging around each reconciliation, and an error policy.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::Resource;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

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
    let error_policy = move |object: Arc<K>, error: &E, _: Arc<Ctx>| {
        metrics.failed(error.metric_label());
        tracing::warn!(
            kind = %K::kind(&()),
            namespace = object.meta().namespace.as_deref().unwrap_or_default(),
            name = object.meta().name.as_deref().unwrap_or_default(),
            error = %error,
            "reconciliation failed"
        );
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
                Err(e) => tracing::warn!(error = %e, "controller error"),
            }
        })
        .await;
    readiness.abort();
    runtime.health.set_synced(false);
}
