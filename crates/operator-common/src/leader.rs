//! Leader election through a `coordination.k8s.io/v1` Lease, so that several replicas of an
//! operator are safe: exactly one reconciles, another takes over when it dies. The Lease itself
//! is kept by `kube-lease-manager`; this module only ties its verdicts to the controller, the
//! health endpoints and the metrics.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio_util::sync::CancellationToken;

use crate::health::{Health, Leadership};
use crate::metrics::Metrics;

/// How long a Lease stays valid without renewal: a dead leader's replacement takes over
/// after at most this long.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long before expiry the leader renews, which also bounds the clock skew between replicas
/// that the election tolerates.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5);
/// How soon a failed round trip to the API server is retried.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Lease could not be set up.
    #[error("cannot use the leader Lease {name}: {source}")]
    Setup {
        name: String,
        #[source]
        source: LeaseManagerError,
    },
    /// Another replica now holds the Lease.
    #[error("lost the leader Lease {name} to another replica")]
    Lost { name: String },
}

/// The Lease `name` in `namespace`, claimed as `identity`.
pub async fn lease(
    client: Client,
    namespace: &str,
    name: &str,
    identity: String,
) -> Result<LeaseManager, LeaseError> {
    LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_duration(LEASE_DURATION.as_secs())
        .with_grace(RENEW_BEFORE_EXPIRY.as_secs())
        .build()
        .await
        .map_err(|source| LeaseError::Setup {
            name: name.to_owned(),
            source,
        })
}

/// Waits for the Lease, then runs `work` while it is held. Returns when `shutdown` is cancelled
/// (after `work` has finished and the Lease is released), when `work` ends by itself, or with an
/// error when another replica took the Lease (after `work` has been told to stop). A leader whose
/// renewals fail keeps trying: it cannot write anything either while it cannot reach the API
/// server, and it stops at once when it learns the Lease went to another replica.
pub async fn lead<F, Fut>(
    lease: LeaseManager,
    name: &str,
    health: &Health,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    work: F,
) -> Result<(), LeaseError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    // The Lease was read or created: the election reaches the API server.
    health.beat();
    tracing::info!(lease = name, "waiting for the leader Lease");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            changed = lease.changed() => match changed {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => retry(name, &error).await,
            },
        }
    }
    tracing::info!(lease = name, "acquired the leader Lease");
    health.set_leadership(Leadership::Leading);
    metrics.set_leader(true);

    let work_token = shutdown.child_token();
    let work = work(work_token.clone());
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            () = &mut work => break Ok(()),
            changed = lease.changed() => match changed {
                Ok(true) => {}
                Ok(false) => break Err(LeaseError::Lost { name: name.to_owned() }),
                Err(error) => retry(name, &error).await,
            },
        }
    };
    metrics.set_leader(false);
    health.set_leadership(Leadership::Standby);
    match outcome {
        Ok(()) => {
            match lease.release().await {
                Ok(()) => tracing::info!(lease = name, "released the leader Lease"),
                Err(error) => {
                    tracing::warn!(lease = name, %error, "cannot release the leader Lease")
                }
            }
            Ok(())
        }
        Err(lost) => {
            // Another replica may already reconcile: stop at once, and leave its Lease alone.
            tracing::error!(error = %lost, "stopping the controller");
            work_token.cancel();
            work.await;
            Err(lost)
        }
    }
}

async fn retry(name: &str, error: &LeaseManagerError) {
    tracing::warn!(lease = name, %error, "cannot reach the leader Lease; retrying");
    tokio::time::sleep(RETRY_INTERVAL).await;
}

/// An identity unique to this process: the host (the Pod's name in a cluster), the process id
/// and the start time, so a restarted container never mistakes its predecessor's Lease for its
/// own.
pub fn process_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown-host".to_owned());
    let started = Timestamp::now().as_nanosecond() % 1_000_000_000;
    format!("{host}_{}_{started:09}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_differ_between_processes_and_name_the_pid() {
        let identity = process_identity();
        let pid = std::process::id().to_string();
        assert_eq!(identity.split('_').nth_back(1), Some(pid.as_str()));
    }
}
