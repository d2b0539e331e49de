//! `Synapse.spec.metrics`: Synapse's Prometheus metrics, and how a Prometheus run by the
//! Prometheus Operator finds them.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The port of the metrics listener the operator adds by default.
pub const DEFAULT_METRICS_PORT: u16 = 9000;

/// The path Prometheus scrapes: Synapse serves its metrics there on a `metrics` listener and on
/// an `http` listener with the `metrics` resource alike.
pub const METRICS_PATH: &str = "/_synapse/metrics";

/// A label value (Kubernetes' rule): at most 63 characters, alphanumeric at both ends.
const LABEL_VALUE_PATTERN: &str = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// A Prometheus duration as the Prometheus Operator accepts it, e.g. `30s` or `1m30s`.
pub const DURATION_PATTERN: &str =
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$";

/// Synapse's metrics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = kube::core::Rule::new("self.enabled || !has(self.monitor)").message(
    "spec.metrics.monitor needs spec.metrics.enabled: true: a ServiceMonitor or PodMonitor \
     scrapes the metrics listener, which enabled: false leaves out"
))]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Serve Synapse's Prometheus metrics: the operator adds a `metrics` listener on `port`
    /// (and `enable_metrics: true`) and names the port `metrics` on the Service. A
    /// homeserver.yaml of yours that has a metrics listener already is used as written, on its
    /// port. Metrics cost Synapse little.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,

    /// The port of the metrics listener the operator adds. Not used when your homeserver.yaml
    /// has its own metrics listener.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,

    /// Have a Prometheus run by the Prometheus Operator scrape these metrics: the operator
    /// writes a ServiceMonitor or PodMonitor (monitoring.coreos.com/v1) `NAME` for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            enabled: true,
            port: DEFAULT_METRICS_PORT,
            monitor: None,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

fn default_port() -> u16 {
    DEFAULT_METRICS_PORT
}

/// The Prometheus Operator's object that has Synapse scraped.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Monitor {
    /// `ServiceMonitor` (scrapes through the Service) or `PodMonitor` (scrapes the pod).
    #[serde(default)]
    pub kind: MonitorKind,

    /// Labels of the monitor, for your Prometheus's `serviceMonitorSelector` or
    /// `podMonitorSelector` (e.g. `release: prometheus`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {
        "type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN
    }))]
    pub labels: BTreeMap<String, String>,

    /// How often Prometheus scrapes, e.g. `30s`. Default: your Prometheus's scrape interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
}

/// The kind of a monitor.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum MonitorKind {
    #[default]
    ServiceMonitor,
    PodMonitor,
}
