//! Liveness and readiness of an operator process, as served at `/healthz` and `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where this replica stands in leader election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Leadership {
    /// Leader election is off: this replica always reconciles.
    Disabled = 0,
    /// Waiting for the Lease held by another replica.
    Standby = 1,
    /// Holding the Lease and reconciling.
    Leading = 2,
}

/// Shared, cheaply cloned health state. The leader-election loop beats it, the controller marks
/// its caches synced, and the HTTP endpoints read it.
#[derive(Clone, Debug)]
pub struct Health(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    start: Instant,
    /// The loop that must beat (leader election) beats at least this often when healthy.
    beat_timeout: Option<Duration>,
    last_beat_ms: AtomicU64,
    leadership: AtomicU8,
    synced: AtomicBool,
    stopped: AtomicBool,
}

impl Health {
    /// Health of a process whose leader-election loop, when there is one, beats at least every
    /// `beat_timeout`. `None`: no leader election, so nothing beats.
    pub fn new(beat_timeout: Option<Duration>) -> Self {
        let leadership = if beat_timeout.is_some() {
            Leadership::Standby
        } else {
            Leadership::Disabled
        };
        Self(Arc::new(Inner {
            start: Instant::now(),
            beat_timeout,
            last_beat_ms: AtomicU64::new(0),
            leadership: AtomicU8::new(leadership as u8),
            synced: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }))
    }

    /// The leader-election loop made a successful round trip to the API.
    pub fn beat(&self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_beat_ms.store(ms, Ordering::Relaxed);
    }

    /// The controller's caches have (or no longer have) their initial content.
    pub fn set_synced(&self, synced: bool) {
        self.0.synced.store(synced, Ordering::Relaxed);
    }

    /// Records this replica's standing in leader election.
    pub fn set_leadership(&self, leadership: Leadership) {
        self.0.leadership.store(leadership as u8, Ordering::Relaxed);
    }

    /// This replica's standing in leader election.
    pub fn leadership(&self) -> Leadership {
        match self.0.leadership.load(Ordering::Relaxed) {
            0 => Leadership::Disabled,
            1 => Leadership::Standby,
            _ => Leadership::Leading,
        }
    }

    /// The controller (or the leader-election loop) has stopped for good.
    pub fn set_stopped(&self) {
        self.0.stopped.store(true, Ordering::Relaxed);
    }

    /// `Ok` when the process's loops are alive, else why not.
    pub fn live(&self) -> Result<(), &'static str> {
        if self.0.stopped.load(Ordering::Relaxed) {
            return Err("the controller has stopped");
        }
        if let Some(timeout) = self.0.beat_timeout {
            let last = Duration::from_millis(self.0.last_beat_ms.load(Ordering::Relaxed));
            // Before the first beat the process counts as starting, not dead.
            if last > Duration::ZERO && self.0.start.elapsed().saturating_sub(last) > timeout {
                return Err("the leader-election loop has not reached the API server recently");
            }
        }
        Ok(())
    }

    /// `Ok` when the process does its job: reconciling with synced caches, or, as a standby,
    /// watching the Lease; else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        self.live()?;
        match self.leadership() {
            Leadership::Standby => {
                if self.0.last_beat_ms.load(Ordering::Relaxed) == 0 {
                    Err("leader election has not reached the API server yet")
                } else {
                    Ok(())
                }
            }
            Leadership::Disabled | Leadership::Leading => {
                if self.0.synced.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("the controller's caches are not synced yet")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_leader_election_ready_once_synced() {
        let health = Health::new(None);
        assert!(health.live().is_ok());
        assert!(health.ready().is_err());
        health.set_synced(true);
        assert!(health.ready().is_ok());
        health.set_stopped();
        assert!(health.live().is_err());
        assert!(health.ready().is_err());
    }

    #[test]
    fn standby_is_ready_while_it_watches_the_lease() {
        let health = Health::new(Some(Duration::from_secs(60)));
        assert_eq!(health.leadership(), Leadership::Standby);
        assert!(health.ready().is_err(), "not ready before reaching the API");
        std::thread::sleep(Duration::from_millis(2));
        health.beat();
        assert!(health.ready().is_ok());
        health.set_leadership(Leadership::Leading);
        assert!(health.ready().is_err(), "a new leader waits for its caches");
        health.set_synced(true);
        assert!(health.ready().is_ok());
    }

    #[test]
    fn a_stale_beat_is_not_live() {
        let health = Health::new(Some(Duration::from_millis(10)));
        std::thread::sleep(Duration::from_millis(2));
        health.beat();
        assert!(health.live().is_ok());
        std::thread::sleep(Duration::from_millis(30));
        assert!(health.live().is_err());
    }
}
