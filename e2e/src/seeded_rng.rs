//! The seeded random choices of fault tests (fastrand's generator): the seed is printed, and an
//! environment variable replays a run's random choices.

use std::ops::Range;
use std::time::Duration;

pub struct SeededRng {
    rng: fastrand::Rng,
}

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Seeded from `variable` when it is set, else from the clock; prints the seed for `user`
    /// and how to replay it.
    pub fn from_env(variable: &str, user: &str) -> Self {
        let seed = match std::env::var(variable) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|e| panic!("{variable}={text} is not a u64: {e}")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos() as u64,
        };
        eprintln!("{user}: random seed {seed} (replay with {variable}={seed})");
        Self::new(seed)
    }

    /// A duration drawn uniformly from `range` (millisecond resolution).
    pub fn duration(&mut self, range: Range<Duration>) -> Duration {
        let low = range.start.as_millis() as u64;
        let high = (range.end.as_millis() as u64).max(low + 1);
        Duration::from_millis(self.rng.u64(low..high))
    }

    /// A child generator, so concurrent tasks each draw their own sequence from one seed.
    pub fn fork(&mut self) -> Self {
        Self::new(self.rng.u64(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_sequence_within_the_range() {
        let draw = |seed| {
            let mut rng = SeededRng::new(seed);
            (0..50)
                .map(|_| rng.duration(Duration::from_millis(100)..Duration::from_millis(300)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(
            draw(7)
                .iter()
                .all(|d| d.as_millis() >= 100 && d.as_millis() < 300)
        );
    }
}
