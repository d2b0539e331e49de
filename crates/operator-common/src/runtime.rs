//! What an operator binary runs: logging, the HTTP endpoints, signal handling, optional leader
//! election, and the operator's controller.

use std::future::Future;
use std::sync::Arc;

use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tower::util::MapRequestLayer;

use crate::cli::RunArgs;
use crate::health::Health;
use crate::http::{self, ServeError};
use crate::leader::{self, LeaseError};
use crate::logging::{self, LoggingError};
use crate::metrics::Metrics;
use crate::pace::PaceLayer;
use crate::unseen::Unseen;

/// The operator could not run, or stopped for a reason other than a shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] LoggingError),
    /// No Kubernetes client could be configured.
    #[error("cannot configure the Kubernetes client")]
    Client(#[from] kube::Error),
    /// An HTTP endpoint could not listen.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Signal handlers could not be installed.
    #[error("cannot install the signal handlers")]
    Signals(#[source] std::io::Error),
    /// Leadership was lost: another replica may reconcile now.
    #[error(transparent)]
    Leadership(#[from] LeaseError),
    /// The controller ended without being asked to.
    #[error("the controller stopped unexpectedly")]
    ControllerStopped,
}

/// What a controller gets from the operator process.
#[derive(Clone)]
pub struct Runtime {
    /// The Kubernetes client.
    pub client: Client,
    /// The namespace to watch; `None` for all.
    pub namespace: Option<String>,
    /// Field manager name for server-side apply: the operator's name.
    pub field_manager: &'static str,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's health, to mark caches synced.
    pub health: Health,
    /// Cancelled when the controller must stop (shutdown signal or lost leadership).
    pub shutdown: CancellationToken,
    /// How many objects are reconciled at once at most.
    pub concurrency: u16,
    /// The applies the caches of this run of the controller do not show yet.
    pub unseen: Unseen,
}

impl Runtime {
    /// A watch of only the objects this operator labelled as managed by it, so that the watches
    /// of Secrets, Deployments and the like stay small in a busy cluster.
    pub fn managed_objects(&self) -> kube::runtime::watcher::Config {
        kube::runtime::watcher::Config::default().labels(&format!(
            "{}={}",
            synapse_types::contract::labels::MANAGED_BY,
            self.field_manager
        ))
    }

    /// An API for the watched namespace, or for all namespaces.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// [`Runtime::api`] for a kind known only at run time (another operator's CRD).
    pub fn dynamic_api(&self, resource: &kube::api::ApiResource) -> Api<kube::api::DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }
}

/// Runs the operator named `operator` (also its field manager, Lease name prefix and metrics
/// prefix) with `args`, calling `controller` to run its controller, until SIGTERM or SIGINT.
pub async fn run<F, Fut>(
    operator: &'static str,
    args: RunArgs,
    controller: F,
) -> Result<(), RunError>
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = ()>,
{
    logging::init(args.log_format, &args.log_level)?;
    let metrics = Arc::new(Metrics::new(operator));
    let client = paced_client(Arc::clone(&metrics), args.kube_api_qps, args.kube_api_burst).await?;
    let health = Health::new(args.leader_elect);
    let shutdown = CancellationToken::new();

    let mut servers = http::serve(
        args.health_addr,
        args.metrics_addr,
        health.clone(),
        Arc::clone(&metrics),
        shutdown.clone(),
    )
    .await?;
    let signals = tokio::spawn(cancel_on_signal(shutdown.clone()).map_err(RunError::Signals)?);

    let namespace = args.watch_namespace().map(str::to_owned);
    tracing::info!(
        operator,
        namespace = namespace.as_deref().unwrap_or("(all)"),
        leader_election = args.leader_elect,
        health = %args.health_addr,
        metrics = %args.metrics_addr,
        "starting"
    );
    let runtime = Runtime {
        client,
        namespace,
        field_manager: operator,
        metrics: Arc::clone(&metrics),
        health: health.clone(),
        shutdown: shutdown.clone(),
        concurrency: args.max_concurrent_reconciles,
        unseen: Unseen::default(),
    };

    let outcome = lead_or_run(operator, &args, runtime, controller).await;
    health.set_stopped();
    let outcome = outcome.and_then(|()| {
        if shutdown.is_cancelled() {
            Ok(())
        } else {
            Err(RunError::ControllerStopped)
        }
    });

    shutdown.cancel();
    signals.abort();
    while servers.join_next().await.is_some() {}
    tracing::info!(operator, "stopped");
    outcome
}

/// Runs `controller` at once, or with leader election once this replica holds the Lease (until
/// it loses it).
async fn lead_or_run<F, Fut>(
    operator: &'static str,
    args: &RunArgs,
    runtime: Runtime,
    controller: F,
) -> Result<(), RunError>
where
    F: FnOnce(Runtime) -> Fut,
    Fut: Future<Output = ()>,
{
    if !args.leader_elect {
        runtime.metrics.set_leader(true);
        controller(runtime).await;
        return Ok(());
    }
    let lease_namespace = args
        .leader_election_namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| runtime.namespace.clone())
        .unwrap_or_else(|| runtime.client.default_namespace().to_owned());
    let name = format!("{operator}-leader");
    let identity = leader::process_identity();
    let lease = leader::lease(runtime.client.clone(), &lease_namespace, &name, identity).await?;
    let (health, metrics) = (runtime.health.clone(), Arc::clone(&runtime.metrics));
    let shutdown = runtime.shutdown.clone();
    leader::lead(lease, &name, &health, &metrics, &shutdown, |stop| {
        // A new term starts new caches.
        controller(Runtime {
            shutdown: stop,
            unseen: Unseen::default(),
            ..runtime
        })
    })
    .await?;
    Ok(())
}

/// The client of the inferred configuration (in-cluster or `KUBECONFIG`): its requests paced to
/// `qps` per second once warm, at most `burst` at once (see [`crate::pace`]), and counted in
/// `metrics`.
async fn paced_client(metrics: Arc<Metrics>, qps: u32, burst: u32) -> Result<Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let pace = PaceLayer::new(qps, burst);
    let count = MapRequestLayer::new(move |request: ::http::Request<kube::client::Body>| {
        metrics.requested(request.method());
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&pace)
        .with_layer(&count)
        .build())
}

/// Installs SIGTERM and SIGINT handlers; the returned future cancels `shutdown` on either.
fn cancel_on_signal(
    shutdown: CancellationToken,
) -> Result<impl Future<Output = ()> + Send + 'static, std::io::Error> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received: shutting down"),
        }
        shutdown.cancel();
    })
}
