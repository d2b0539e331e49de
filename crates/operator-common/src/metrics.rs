//! Prometheus metrics of an operator: reconciliations, errors by kind, durations, leadership.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
}

/// The operator's metrics, exposed in the Prometheus text format at `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciliations: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
    requests: Family<RequestLabels, Counter>,
}

impl Metrics {
    /// Metrics named after `operator` (e.g. `synapse-operator` gives `synapse_operator_…`).
    pub fn new(operator: &str) -> Self {
        let mut registry = Registry::with_prefix(operator.replace('-', "_"));
        let reconciliations = Counter::default();
        registry.register(
            "reconciliations",
            "Reconciliations run",
            reconciliations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconciliation_errors",
            "Reconciliations that failed, by kind of error",
            errors.clone(),
        );
        // 1 ms to about 33 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time taken by one reconciliation",
            duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and reconciles",
            leader.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "kube_requests",
            "Requests sent to the Kubernetes API server, by HTTP method (watches are GETs)",
            requests.clone(),
        );
        Self {
            registry,
            reconciliations,
            errors,
            duration,
            leader,
            requests,
        }
    }

    /// Records one reconciliation that took `took`.
    pub fn reconciled(&self, took: Duration) {
        self.reconciliations.inc();
        self.duration.observe(took.as_secs_f64());
    }

    /// Records one failed reconciliation; `error` is the error's stable metric label.
    pub fn failed(&self, error: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                error: error.to_owned(),
            })
            .inc();
    }

    /// Records one request to the API server.
    pub fn requested(&self, method: &::http::Method) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.as_str().to_owned(),
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_reconciles_errors_durations_and_leadership() {
        let metrics = Metrics::new("synapse-operator");
        metrics.reconciled(Duration::from_millis(3));
        metrics.reconciled(Duration::from_millis(5));
        metrics.failed("kube");
        metrics.set_leader(true);
        metrics.requested(&::http::Method::PATCH);
        let text = metrics.encode();
        assert!(
            text.contains("synapse_operator_reconciliations_total 2"),
            "{text}"
        );
        assert!(
            text.contains("synapse_operator_reconciliation_errors_total{error=\"kube\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("synapse_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("synapse_operator_leader 1"), "{text}");
        assert!(
            text.contains("synapse_operator_kube_requests_total{method=\"PATCH\"} 1"),
            "{text}"
        );
    }
}
