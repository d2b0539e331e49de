//! The controller every operator runs for its kind: its objects read one by one (one that cannot
//! be read is skipped, see [`crate::watch::tolerant`]), at most `--max-concurrent-reconciles`
//! reconciliations at once, each in a tracing span naming its object and run only once the
//! caches it reads are filled, failures retried with a backoff per object and counted by
//! [`ErrorKind`](crate::error::ErrorKind).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt as _, StreamExt as _};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::{Lookup, ObjectRef, Store};
use kube::runtime::watcher;
use tracing::Instrument as _;
use tracing::instrument::Instrumented;

use crate::conditions::is_condition_true;
use crate::error::{Error, ErrorKind};
use crate::events::Events;
use crate::health::Health;
use crate::metrics::{Metrics, ObjectLabels, ObjectSource};
use crate::reconciled::{ObjectStatus as _, Reconciled};
use crate::runtime::Runtime;
use crate::watch::{resource_of, tolerant};

/// The first retry of a failed reconciliation; each further failure doubles the wait.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// The longest wait between retries.
pub const MAX_RETRY: Duration = Duration::from_secs(120);

/// How often a cache's readiness is asked again until it is filled.
const SYNC_POLL: Duration = Duration::from_millis(500);

/// How long a trigger waits for more triggers of the same object, so that a burst of changes
/// (a child created, then its status) is reconciled once.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// The caches a reconciliation reads; it runs only once all of them are filled, so that it
/// never takes an object it has not seen yet for a missing one.
#[derive(Clone, Default)]
pub struct Caches {
    filled: Vec<Shared<BoxFuture<'static, ()>>>,
}

impl Caches {
    /// Adds `store`.
    pub fn add<K>(&mut self, store: &Store<K>)
    where
        K: Lookup + Clone + Send + Sync + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    {
        let store = store.clone();
        self.filled.push(
            async move {
                // A store wakes only the last of several concurrent waiters (the controller
                // waits on its own store too): ask again until the memoised readiness is seen.
                // An error means the writer is gone: the controller is stopping.
                while tokio::time::timeout(SYNC_POLL, store.wait_until_ready())
                    .await
                    .is_err()
                {}
            }
            .boxed()
            .shared(),
        );
    }

    /// Waits until every cache is filled.
    pub async fn filled(&self) {
        futures::future::join_all(self.filled.iter().cloned()).await;
    }
}

/// Failures in a row per object: the backoff of its retries.
struct Backoff<K: Reconciled>(Mutex<HashMap<ObjectRef<K>, u32>>);

impl<K: Reconciled> Backoff<K> {
    fn succeeded(&self, object: &ObjectRef<K>) {
        self.lock().remove(object);
    }

    /// The wait before the next retry of `object`, which failed once more.
    fn failed(&self, object: ObjectRef<K>) -> Duration {
        let mut failures = self.lock();
        let count = failures.entry(object).or_insert(0);
        *count += 1;
        retry_after(*count)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<K>, u32>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The wait before retrying after the `failures`-th failure in a row.
pub fn retry_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

/// Runs the controller of kind `K` until the runtime's shutdown token is cancelled.
/// `watches` adds the watches of related objects to the controller (`owns_stream`,
/// `watches_stream`); `caches` are the stores the reconciliation reads.
pub async fn run_controller<K, Ctx, Fut>(
    runtime: &Runtime,
    watches: impl FnOnce(Controller<K>) -> Controller<K>,
    mut caches: Caches,
    reconcile: impl Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
    context: Arc<Ctx>,
) where
    K: Reconciled,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let events = Events::new(runtime.client.clone(), runtime.field_manager);
    let api = runtime.dynamic_api(&resource_of::<K>());
    let (store, triggers) = tolerant::<K>(api, watcher::Config::default(), events);
    caches.add(&store);
    runtime
        .metrics
        .set_objects(Some(readiness_of(store.clone())));
    let config = controller::Config::default()
        .concurrency(runtime.concurrency)
        .debounce(DEBOUNCE);
    let controller = watches(Controller::for_stream(triggers, store)).with_config(config);
    let readiness = tokio::spawn(report_synced::<K>(caches.clone(), runtime.health.clone()));
    let backoff = Arc::new(Backoff::<K>(Mutex::default()));
    let reconcile = instrumented(
        reconcile,
        caches,
        Arc::clone(&runtime.metrics),
        Arc::clone(&backoff),
    );
    let metrics = Arc::clone(&runtime.metrics);
    let error_policy = move |object: Arc<K>, error: &Error, _: Arc<Ctx>| {
        let kind = error.kind();
        metrics.failed(kind.label());
        let reference = ObjectRef::from_obj(object.as_ref());
        let retry = backoff.failed(reference.clone());
        let (namespace, name) = (reference.namespace.unwrap_or_default(), reference.name);
        if kind == ErrorKind::Transient {
            tracing::warn!(%namespace, %name, error.kind = kind.label(), %error, ?retry, "reconciliation failed");
        } else {
            // Recorded on the object itself by the pipeline.
            tracing::info!(%namespace, %name, error.kind = kind.label(), %error, ?retry, "the API server refused a request");
        }
        Action::requeue(retry)
    };
    controller
        .graceful_shutdown_on(runtime.shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, context)
        .for_each(|result| async move { log_result(result) })
        .await;
    readiness.abort();
    runtime.metrics.set_objects(None);
    runtime.health.set_synced(false);
}

/// `reconcile` run once the caches are filled, in a span naming its object, timed, and
/// clearing the object's backoff when it succeeds.
fn instrumented<K, Ctx, Fut>(
    reconcile: impl Fn(Arc<K>, Arc<Ctx>) -> Fut + Send + Sync + 'static,
    caches: Caches,
    metrics: Arc<Metrics>,
    backoff: Arc<Backoff<K>>,
) -> impl FnMut(Arc<K>, Arc<Ctx>) -> Instrumented<BoxFuture<'static, Result<Action, Error>>>
where
    K: Reconciled,
    Ctx: Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    move |object: Arc<K>, context: Arc<Ctx>| {
        let (metrics, backoff) = (Arc::clone(&metrics), Arc::clone(&backoff));
        let (caches, reconcile) = (caches.clone(), Arc::clone(&reconcile));
        let reference = ObjectRef::from_obj(object.as_ref());
        let span = tracing::info_span!(
            "reconcile",
            kind = %K::kind(&()),
            namespace = reference.namespace.as_deref().unwrap_or_default(),
            name = %reference.name,
        );
        async move {
            caches.filled().await;
            let reconciling = metrics.reconciling();
            let result = reconcile(object, context).await;
            drop(reconciling);
            if result.is_ok() {
                backoff.succeeded(&reference);
            }
            result
        }
        .boxed()
        .instrument(span)
    }
}

/// Each cached object with whether its condition Ready is True, for the metrics.
fn readiness_of<K: Reconciled>(store: Store<K>) -> ObjectSource {
    Box::new(move || {
        store
            .state()
            .iter()
            .map(|object| {
                let ready = object
                    .status()
                    .is_some_and(|status| is_condition_true(status.conditions(), "Ready"));
                let labels = ObjectLabels {
                    kind: K::kind(&()).into_owned(),
                    object_namespace: object.meta().namespace.clone().unwrap_or_default(),
                    object_name: object.meta().name.clone().unwrap_or_default(),
                };
                (labels, ready)
            })
            .collect()
    })
}

/// Marks the operator ready once its caches are filled.
async fn report_synced<K: Reconciled>(caches: Caches, health: Health) {
    caches.filled().await;
    tracing::info!(kind = %K::kind(&()), "caches synced");
    health.set_synced(true);
}

fn log_result<K: Reconciled, E: std::error::Error>(
    result: Result<(ObjectRef<K>, Action), controller::Error<Error, E>>,
) {
    match result {
        Ok((object, _)) => tracing::debug!(object = %object, "reconciled"),
        // Failed reconciliations were logged and counted by the error policy.
        Err(controller::Error::ReconcilerFailed(..)) => {}
        // A related object names one of our kind that does not exist (a registration Secret
        // labelled for a deleted Synapse, say): nothing to do.
        Err(e @ controller::Error::ObjectNotFound(_)) => {
            tracing::debug!(error = %e, "trigger for an object that does not exist")
        }
        Err(e) => tracing::warn!(error = %e, "controller error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_after(1), Duration::from_secs(5));
        assert_eq!(retry_after(2), Duration::from_secs(10));
        assert_eq!(retry_after(4), Duration::from_secs(40));
        assert_eq!(retry_after(6), MAX_RETRY);
        assert_eq!(retry_after(60), MAX_RETRY);
    }
}
