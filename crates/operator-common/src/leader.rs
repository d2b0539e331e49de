//! Leader election through a `coordination.k8s.io/v1` Lease, so that several replicas of an
//! operator are safe: exactly one reconciles, another takes over when it dies.
//!
//! Like client-go's leader election, expiry is judged by this process's own clock: a held Lease
//! is taken over only after its content (its `resourceVersion`) has not changed for the lease
//! duration since this process first saw it, so clock skew between replicas does not matter.
//! Every write is conditional on the `resourceVersion` read, so two replicas never both win.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use crate::health::{Health, Leadership};
use crate::metrics::Metrics;

/// How long a Lease stays valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews its Lease.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// How often a standby looks at the Lease, and how soon a failed renewal is retried.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A leader that could not renew for this long stops reconciling, before its Lease can expire
/// and another replica takes over.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait for one API call of the election.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Leader election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Lease could not be renewed in time, or another replica now holds it.
    #[error("lost the leader Lease {name}: {why}")]
    Lost {
        /// The Lease's name.
        name: String,
        /// What happened.
        why: String,
    },
}

/// Where this replica stands after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// This replica holds the Lease.
    Leading,
    /// Another replica holds it (`None`: nobody, but another replica won the race to it).
    Following(Option<String>),
}

/// One attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// The API server answered with an error.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// The API server did not answer in time.
    #[error("the API server did not answer within {CALL_TIMEOUT:?}")]
    Timeout,
}

#[derive(Debug)]
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// A Lease used as a lock by the replicas of one operator.
#[derive(Debug)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    observed: Option<Observed>,
}

impl LeaseLock {
    /// The Lease `name` in `namespace`, contended for as `identity` (unique per process).
    pub fn new(client: Client, namespace: &str, name: &str, identity: String) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity,
            observed: None,
        }
    }

    /// This replica's identity in the Lease's `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The Lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One attempt: create the Lease, renew it, take over an expired or released one, or
    /// observe that another replica holds it.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Standing, AttemptError> {
        let current = timed(self.api.get_opt(&self.name)).await?;
        let Some(current) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(claim(&self.identity, &LeaseSpec::default(), now())),
            };
            return match timed(self.api.create(&PostParams::default(), &lease)).await {
                Ok(created) => {
                    self.observe(&created);
                    Ok(Standing::Leading)
                }
                Err(AttemptError::Api(e)) if is_conflict(&e) => Ok(Standing::Following(None)),
                Err(e) => Err(e),
            };
        };

        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let renewing = holder.as_deref() == Some(self.identity.as_str());
        if !renewing && holder.is_some() && !expired(self.observed.as_ref(), &spec) {
            return Ok(Standing::Following(holder));
        }

        let mut next = current;
        next.spec = Some(if renewing {
            LeaseSpec {
                renew_time: Some(now()),
                lease_duration_seconds: Some(duration_seconds(LEASE_DURATION)),
                ..spec
            }
        } else {
            claim(&self.identity, &spec, now())
        });
        match timed(self.api.replace(&self.name, &PostParams::default(), &next)).await {
            Ok(updated) => {
                self.observe(&updated);
                Ok(Standing::Leading)
            }
            // Someone else wrote the Lease since we read it: they won this round.
            Err(AttemptError::Api(e)) if is_conflict(&e) => Ok(Standing::Following(holder)),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up, if this replica holds it, so that a standby takes over at once.
    pub async fn release(&mut self) -> Result<(), AttemptError> {
        let Some(mut lease) = timed(self.api.get_opt(&self.name)).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(1);
        match timed(self.api.replace(&self.name, &PostParams::default(), &lease)).await {
            Err(AttemptError::Api(e)) if is_conflict(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let resource_version = lease.metadata.resource_version.clone();
        if self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != resource_version)
        {
            self.observed = Some(Observed {
                resource_version,
                at: Instant::now(),
            });
        }
    }
}

/// Waits for the Lease, then runs `work` while renewing it. Returns when `shutdown` is
/// cancelled (after `work` has finished and the Lease is released), when `work` ends by itself,
/// or with an error when leadership is lost (after `work` has been told to stop).
pub async fn lead<F, Fut>(
    mut lock: LeaseLock,
    health: &Health,
    metrics: &Metrics,
    shutdown: &CancellationToken,
    work: F,
) -> Result<(), LeaseError>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut last_holder = None;
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(Standing::Leading) => {
                health.beat();
                break;
            }
            Ok(Standing::Following(holder)) => {
                health.beat();
                if holder != last_holder {
                    tracing::info!(lease = lock.name(), holder = ?holder, "waiting for the leader Lease");
                    last_holder = holder;
                }
            }
            Err(e) => {
                tracing::warn!(lease = lock.name(), error = %e, "cannot read the leader Lease")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(RETRY_INTERVAL) => {}
        }
    }

    tracing::info!(
        lease = lock.name(),
        identity = lock.identity(),
        "acquired the leader Lease"
    );
    health.set_leadership(Leadership::Leading);
    metrics.set_leader(true);

    let work_token = shutdown.child_token();
    let work = work(work_token.clone());
    tokio::pin!(work);
    let mut last_renewal = Instant::now();
    let mut wait = RENEW_INTERVAL;
    let outcome = loop {
        tokio::select! {
            () = &mut work => break Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        match lock.try_acquire_or_renew().await {
            Ok(Standing::Leading) => {
                health.beat();
                last_renewal = Instant::now();
                wait = RENEW_INTERVAL;
            }
            Ok(Standing::Following(holder)) => {
                break Err(LeaseError::Lost {
                    name: lock.name().to_owned(),
                    why: format!(
                        "it is now held by {}",
                        holder.as_deref().unwrap_or("nobody")
                    ),
                });
            }
            Err(e) if last_renewal.elapsed() >= RENEW_DEADLINE => {
                break Err(LeaseError::Lost {
                    name: lock.name().to_owned(),
                    why: format!("not renewed for {RENEW_DEADLINE:?}: {e}"),
                });
            }
            Err(e) => {
                tracing::warn!(lease = lock.name(), error = %e, "cannot renew the leader Lease");
                wait = RETRY_INTERVAL;
            }
        }
    };

    metrics.set_leader(false);
    match outcome {
        Ok(()) => {
            if let Err(e) = lock.release().await {
                tracing::warn!(lease = lock.name(), error = %e, "cannot release the leader Lease");
            } else {
                tracing::info!(lease = lock.name(), "released the leader Lease");
            }
            health.set_leadership(Leadership::Standby);
            Ok(())
        }
        Err(lost) => {
            // Another replica may already reconcile: stop at once, and do not touch the Lease.
            tracing::error!(error = %lost, "stopping the controller");
            work_token.cancel();
            work.await;
            health.set_leadership(Leadership::Standby);
            Err(lost)
        }
    }
}

/// The Lease content claiming it for `identity`, after `previous`.
fn claim(identity: &str, previous: &LeaseSpec, at: MicroTime) -> LeaseSpec {
    let transitions = previous.lease_transitions.unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(duration_seconds(LEASE_DURATION)),
        acquire_time: Some(at.clone()),
        renew_time: Some(at),
        // A Lease that was ever acquired changes hands now.
        lease_transitions: Some(if previous.acquire_time.is_some() {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

/// Whether the holder has let its Lease lapse: unchanged for its whole duration since this
/// process first saw this version of it.
fn expired(observed: Option<&Observed>, spec: &LeaseSpec) -> bool {
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(LEASE_DURATION, Duration::from_secs);
    observed.is_some_and(|o| o.at.elapsed() >= duration)
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

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn duration_seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

fn is_conflict(e: &kube::Error) -> bool {
    // 409: the resourceVersion changed (replace) or the Lease already exists (create).
    matches!(e, kube::Error::Api(status) if status.code == 409)
}

async fn timed<T>(call: impl Future<Output = Result<T, kube::Error>>) -> Result<T, AttemptError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(AttemptError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_counts_transitions_of_a_lease_that_was_held() {
        let fresh = claim("a", &LeaseSpec::default(), now());
        assert_eq!(fresh.holder_identity.as_deref(), Some("a"));
        assert_eq!(fresh.lease_duration_seconds, Some(15));
        assert_eq!(fresh.lease_transitions, Some(0));
        assert_eq!(fresh.acquire_time, fresh.renew_time);

        let taken_over = claim("b", &fresh, now());
        assert_eq!(taken_over.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken_over.lease_transitions, Some(1));
    }

    #[test]
    fn a_lease_expires_after_its_duration_unchanged() {
        let spec = LeaseSpec {
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        };
        let seen = |ago: u64| Observed {
            resource_version: Some("1".into()),
            at: Instant::now() - Duration::from_secs(ago),
        };
        assert!(!expired(None, &spec), "never seen: not judged expired");
        assert!(!expired(Some(&seen(14)), &spec));
        assert!(expired(Some(&seen(15)), &spec));
        let short = LeaseSpec {
            lease_duration_seconds: Some(1),
            ..LeaseSpec::default()
        };
        assert!(
            expired(Some(&seen(2)), &short),
            "the holder's duration counts"
        );
    }

    #[test]
    fn identities_differ_between_processes_and_name_the_pid() {
        let identity = process_identity();
        let pid = std::process::id().to_string();
        assert_eq!(identity.split('_').nth_back(1), Some(pid.as_str()));
    }
}
