//! The pace of the operator's requests to the API server: a token bucket whose rate warms up.
//! After a quiet period the operator starts at [`COLD_QPS`], stays there through the first half
//! of [`WARM_UP`] of sustained backlog, and reaches its whole pace at its end (it cools down as
//! fast when demand falls below the pace). A burst of user changes thus meets a gentle operator
//! while it lasts, and a long backlog is worked off at full pace: at N=1000 in `hack/bench`, a
//! fixed 20 per second kept the CRs' creation within 1.5× but took 3.8× the floor to converge, a
//! fixed 100 per second converged at the floor but slowed the creation 4×. The cold half keeps
//! the warm-up out of the burst itself: warming while the burst lasted slowed it, which made it
//! last longer, which warmed the pace further (creation 1.15× to 3.3× between runs).
//!
//! Hand-written because tower's `RateLimit` and `governor` have a fixed rate; a warm-up (as
//! Guava's `SmoothRateLimiter` has) is what no maintained Rust crate provides.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

/// How long a sustained backlog takes to bring the pace from cold to warm.
pub const WARM_UP: Duration = Duration::from_secs(10);
/// The share of [`WARM_UP`] the pace stays cold: a burst of user changes, which the operator's
/// own requests (and the plane's work on its children) would slow, is over by then.
const COLD_SHARE: f64 = 0.5;
/// Requests per second after a quiet period (controller-runtime's fixed pace), or the warm pace
/// if that is lower.
pub const COLD_QPS: f64 = 20.0;

/// The rates and the bucket of a [`Paced`] service.
#[derive(Clone, Copy, Debug)]
pub struct PaceLayer {
    /// Requests per second once warm.
    warm: f64,
    /// Requests that may go at once: the bucket's size.
    burst: f64,
}

impl PaceLayer {
    /// `qps` per second once warm, at most `burst` at once.
    pub fn new(qps: u32, burst: u32) -> Self {
        Self {
            warm: f64::from(qps.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }
}

impl<S> Layer<S> for PaceLayer {
    type Service = Paced<S>;

    fn layer(&self, inner: S) -> Paced<S> {
        Paced {
            inner,
            meter: Meter::new(*self, Instant::now()),
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            granted: false,
        }
    }
}

/// The bucket and the warmth, apart from the clock and the service (pure, tested on its own).
#[derive(Clone, Copy, Debug)]
struct Meter {
    pace: PaceLayer,
    tokens: f64,
    /// 0: cold, 1: warm.
    warmth: f64,
    /// Whether a request waits for a token since `last`: the demand exceeds the pace.
    backlog: bool,
    last: Instant,
}

impl Meter {
    fn new(pace: PaceLayer, now: Instant) -> Self {
        Self {
            pace,
            tokens: pace.burst,
            warmth: 0.0,
            backlog: false,
            last: now,
        }
    }

    fn rate(&self) -> f64 {
        let cold = COLD_QPS.min(self.pace.warm);
        let ramp = ((self.warmth - COLD_SHARE) / (1.0 - COLD_SHARE)).max(0.0);
        cold + ramp * (self.pace.warm - cold)
    }

    /// Brings the bucket and the warmth to `now`.
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate()).min(self.pace.burst);
        let change = elapsed / WARM_UP.as_secs_f64();
        let warmth = if self.backlog {
            self.warmth + change
        } else {
            self.warmth - change
        };
        self.warmth = warmth.clamp(0.0, 1.0);
        self.last = now;
    }

    /// Takes a token at `now`, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.advance(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.backlog = false;
            return Ok(());
        }
        self.backlog = true;
        // At least a microsecond: a wait rounded down to nothing would not refill the bucket.
        let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.rate());
        Err(wait.max(Duration::from_micros(1)))
    }
}

/// A service whose requests go at the pace of its [`PaceLayer`].
pub struct Paced<S> {
    inner: S,
    meter: Meter,
    sleep: Pin<Box<Sleep>>,
    /// A token is taken for the next call.
    granted: bool,
}

impl<S: Service<R>, R> Service<R> for Paced<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.granted {
            if self.sleep.is_elapsed() || self.sleep.as_mut().poll(cx).is_ready() {
                let now = Instant::now();
                match self.meter.take(now) {
                    Ok(()) => self.granted = true,
                    Err(wait) => self.sleep.as_mut().reset(now + wait),
                }
            } else {
                return Poll::Pending;
            }
        }
        ready!(self.inner.poll_ready(cx))?;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: R) -> S::Future {
        self.granted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes tokens as fast as they come for `duration` from `start`; returns how many and
    /// the time after.
    fn drain(meter: &mut Meter, start: Instant, duration: Duration) -> (u32, Instant) {
        let (mut now, mut taken) = (start, 0);
        while now < start + duration {
            match meter.take(now) {
                Ok(()) => taken += 1,
                Err(wait) => now += wait,
            }
        }
        (taken, now)
    }

    #[test]
    fn a_backlog_starts_at_the_cold_pace_and_warms_up() {
        let start = Instant::now();
        let mut meter = Meter::new(PaceLayer::new(100, 10), start);
        // The bucket, then 20 per second.
        let (first, now) = drain(&mut meter, start, Duration::from_secs(1));
        assert!((29..=31).contains(&first), "{first}");
        // Still cold through the first half of the warm-up.
        let (cold, now) = drain(&mut meter, now, WARM_UP / 2 - Duration::from_secs(1));
        assert!((79..=81).contains(&cold), "{cold}");
        // Warm after WARM_UP of backlog: 100 per second.
        let (_, now) = drain(&mut meter, now, WARM_UP);
        assert!(meter.warmth > 0.99, "{}", meter.warmth);
        let (warm, _) = drain(&mut meter, now, Duration::from_secs(1));
        assert!((98..=102).contains(&warm), "{warm}");
    }

    #[test]
    fn a_pace_below_the_cold_one_is_the_pace_throughout() {
        let start = Instant::now();
        let mut meter = Meter::new(PaceLayer::new(5, 1), start);
        let (taken, _) = drain(&mut meter, start, WARM_UP * 2);
        assert!((100..=102).contains(&taken), "{taken}");
    }

    #[test]
    fn a_pace_that_meets_the_demand_cools_down() {
        let start = Instant::now();
        let mut meter = Meter::new(PaceLayer::new(100, 10), start);
        let (_, mut now) = drain(&mut meter, start, WARM_UP + Duration::from_secs(1));
        assert!(meter.warmth > 0.99);
        // Ten requests a second, each finding a token: no backlog.
        for _ in 0..50 {
            now += Duration::from_millis(100);
            assert_eq!(meter.take(now), Ok(()));
        }
        assert!(meter.warmth < 0.55, "{}", meter.warmth);
        // A quiet period: cold again.
        now += WARM_UP;
        assert_eq!(meter.take(now), Ok(()));
        assert_eq!(meter.warmth, 0.0);
        assert!((meter.rate() - 20.0).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn the_service_waits_for_its_tokens() {
        use tower::ServiceExt as _;
        let service = tower::service_fn(|()| async { Ok::<_, std::convert::Infallible>(()) });
        let mut paced = PaceLayer::new(100, 2).layer(service);
        let start = Instant::now();
        for _ in 0..4 {
            paced.ready().await.unwrap().call(()).await.unwrap();
        }
        // Two from the bucket, two at about the cold pace of 20 per second.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(90) && elapsed <= Duration::from_millis(110),
            "{elapsed:?}"
        );
    }
}
