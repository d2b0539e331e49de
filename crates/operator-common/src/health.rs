//! Liveness and readiness of an operator process, as served at `/healthz` and `/readyz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

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

/// Shared, cheaply cloned health state. Leader election records its standing, the controller
/// marks its caches synced, and the HTTP endpoints read it.
#[derive(Clone, Debug)]
pub struct Health(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Leader election has reached the API server (read or created its Lease).
    election_reached: AtomicBool,
    leadership: AtomicU8,
    synced: AtomicBool,
    stopped: AtomicBool,
}

impl Health {
    /// Health of a process that elects a leader (`leader_elect`) or always reconciles.
    pub fn new(leader_elect: bool) -> Self {
        let leadership = if leader_elect {
            Leadership::Standby
        } else {
            Leadership::Disabled
        };
        Self(Arc::new(Inner {
            election_reached: AtomicBool::new(false),
            leadership: AtomicU8::new(leadership as u8),
            synced: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }))
    }

    /// Leader election made a successful round trip to the API server.
    pub fn beat(&self) {
        self.0.election_reached.store(true, Ordering::Relaxed);
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

    /// `Ok` while the process has not stopped for good, else why not.
    pub fn live(&self) -> Result<(), &'static str> {
        if self.0.stopped.load(Ordering::Relaxed) {
            return Err("the controller has stopped");
        }
        Ok(())
    }

    /// `Ok` when the process does its job: reconciling with synced caches, or, as a standby,
    /// watching the Lease; else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        self.live()?;
        match self.leadership() {
            Leadership::Standby => {
                if !self.0.election_reached.load(Ordering::Relaxed) {
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
        let health = Health::new(false);
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
        let health = Health::new(true);
        assert_eq!(health.leadership(), Leadership::Standby);
        assert!(health.ready().is_err(), "not ready before reaching the API");
        health.beat();
        assert!(health.ready().is_ok());
        health.set_leadership(Leadership::Leading);
        assert!(health.ready().is_err(), "a new leader waits for its caches");
        health.set_synced(true);
        assert!(health.ready().is_ok());
    }
}
