//! Prometheus metrics of an operator: reconciliations, errors by kind, durations, work in
//! progress, leadership, requests to the API server, and whether each object is Ready.
//!
//! The three operators share the metric names (`matrix_operator_…`) and tell themselves apart by
//! the label `operator`, so that one dashboard and one set of alert rules serve all three.
//! docs/monitoring.md lists them.

use std::borrow::Cow;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The prefix of every metric name.
pub const PREFIX: &str = "matrix_operator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
}

/// One reconciled object. Not `namespace` and `name`: a scrape gives its target's own namespace
/// the label `namespace`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub object_namespace: String,
    pub object_name: String,
}

/// Where the objects' readiness comes from at each scrape: the controller's cache.
pub type ObjectSource = Box<dyn Fn() -> Vec<(ObjectLabels, bool)> + Send + Sync>;

/// The operator's metrics, exposed in the Prometheus text format at `/metrics`.
pub struct Metrics {
    registry: Registry,
    reconciliations: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    in_progress: Gauge,
    leader: Gauge,
    requests: Family<RequestLabels, Counter>,
    ready: Family<ObjectLabels, Gauge>,
    objects: Mutex<Option<ObjectSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// The metrics of `operator` (e.g. `synapse-operator`), its name in the label `operator`.
    pub fn new(operator: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            PREFIX,
            [(Cow::Borrowed("operator"), Cow::Owned(operator.to_owned()))].into_iter(),
        );
        let reconciliations = Counter::default();
        registry.register(
            "reconciliations",
            "Reconciliations run",
            reconciliations.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconciliation_errors",
            "Reconciliations that failed, by kind of error (transient, invalid, forbidden, \
             field-conflict)",
            errors.clone(),
        );
        // 1 ms to about 33 s.
        let duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "reconcile_duration_seconds",
            "Time taken by one reconciliation",
            duration.clone(),
        );
        let in_progress = Gauge::default();
        registry.register(
            "reconciliations_in_progress",
            "Reconciliations running now; at the configured concurrency, changed objects queue",
            in_progress.clone(),
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
        let ready = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "object_ready",
            "1 for each reconciled object whose condition Ready is True, 0 for the others \
             (only on the replica that leads)",
            ready.clone(),
        );
        Self {
            registry,
            reconciliations,
            errors,
            duration,
            in_progress,
            leader,
            requests,
            ready,
            objects: Mutex::default(),
        }
    }

    /// Records the start of a reconciliation; the guard records its end and duration.
    pub fn reconciling(&self) -> Reconciling<'_> {
        self.in_progress.inc();
        Reconciling {
            metrics: self,
            started: std::time::Instant::now(),
        }
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

    /// Reports, at each scrape, the objects `source` lists with whether each is Ready; `None`
    /// (a controller that stopped) reports none.
    pub fn set_objects(&self, source: Option<ObjectSource>) {
        *self.objects.lock().unwrap_or_else(|e| e.into_inner()) = source;
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        // Held across the refresh and the encoding so that two scrapes do not interleave.
        let objects = self.objects.lock().unwrap_or_else(|e| e.into_inner());
        self.ready.clear();
        for (labels, ready) in objects.as_ref().map(|list| list()).unwrap_or_default() {
            self.ready.get_or_create(&labels).set(i64::from(ready));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A reconciliation in progress (see [`Metrics::reconciling`]).
pub struct Reconciling<'a> {
    metrics: &'a Metrics,
    started: std::time::Instant,
}

impl Drop for Reconciling<'_> {
    fn drop(&mut self) {
        let metrics = self.metrics;
        metrics.in_progress.dec();
        metrics.reconciliations.inc();
        metrics
            .duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> ObjectLabels {
        ObjectLabels {
            kind: "Synapse".into(),
            object_namespace: "team".into(),
            object_name: name.into(),
        }
    }

    #[test]
    fn exposes_reconciles_errors_durations_leadership_and_readiness() {
        let metrics = Metrics::new("synapse-operator");
        drop(metrics.reconciling());
        let running = metrics.reconciling();
        metrics.failed("transient");
        metrics.set_leader(true);
        metrics.requested(&::http::Method::PATCH);
        metrics.set_objects(Some(Box::new(|| {
            vec![(object("a"), true), (object("b"), false)]
        })));
        let text = metrics.encode();
        for line in [
            "matrix_operator_reconciliations_total{operator=\"synapse-operator\"} 1",
            "matrix_operator_reconciliations_in_progress{operator=\"synapse-operator\"} 1",
            "matrix_operator_reconciliation_errors_total{operator=\"synapse-operator\",error=\"transient\"} 1",
            "matrix_operator_reconcile_duration_seconds_count{operator=\"synapse-operator\"} 1",
            "matrix_operator_leader{operator=\"synapse-operator\"} 1",
            "matrix_operator_kube_requests_total{operator=\"synapse-operator\",method=\"PATCH\"} 1",
            "matrix_operator_object_ready{operator=\"synapse-operator\",kind=\"Synapse\",object_namespace=\"team\",object_name=\"a\"} 1",
            "matrix_operator_object_ready{operator=\"synapse-operator\",kind=\"Synapse\",object_namespace=\"team\",object_name=\"b\"} 0",
        ] {
            assert!(text.contains(line), "no {line} in\n{text}");
        }
        drop(running);
        assert!(
            metrics
                .encode()
                .contains("matrix_operator_reconciliations_total{operator=\"synapse-operator\"} 2")
        );
    }

    #[test]
    fn objects_gone_with_their_source() {
        let metrics = Metrics::new("heisenbridge-operator");
        metrics.set_objects(Some(Box::new(|| vec![(object("a"), true)])));
        assert!(metrics.encode().contains("object_name=\"a\""));
        metrics.set_objects(None);
        assert!(!metrics.encode().contains("object_name=\"a\""));
    }
}
