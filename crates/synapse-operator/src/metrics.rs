//! Where Synapse serves its metrics, from `spec.metrics` and the homeserver.yaml: the file's own
//! metrics listener as written, or one the overlay adds. Pure.

use serde_json::{Value, json};
use synapse_types::metrics::Metrics;

use crate::homeserver_file::HomeserverFacts;

/// Synapse's metrics as the operator serves them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedMetrics {
    /// The port of the metrics listener (the Service's port `metrics`).
    pub port: u16,
    /// The metrics listener the overlay adds after the file's, if the file has none.
    pub listener: Option<Value>,
    /// Whether the overlay sets `enable_metrics: true` (not when the file sets it).
    pub enable: bool,
}

/// Why the operator cannot add the metrics listener.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetricsProblem {
    #[error(
        "spec.metrics.port {0} is taken by a listener of homeserver.yaml: set spec.metrics.port to a free port, or add a listener of type metrics to homeserver.yaml yourself"
    )]
    PortTaken(u16),
    #[error(
        "the listeners of homeserver.yaml hold a value the operator cannot copy to add the metrics listener (a date, binary data, a non-string key): add a listener of type metrics to homeserver.yaml yourself, or set spec.metrics.enabled: false"
    )]
    ListenersNotCopyable,
}

impl MetricsProblem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            MetricsProblem::PortTaken(_) => "MetricsPortConflict",
            MetricsProblem::ListenersNotCopyable => "MetricsListenerNotAdded",
        }
    }
}

/// Where Synapse serves its metrics; `None` when `spec` turns them off or the file sets
/// `enable_metrics` to false.
pub fn served(
    spec: &Metrics,
    facts: &HomeserverFacts,
) -> Result<Option<ServedMetrics>, MetricsProblem> {
    let settings = &facts.metrics;
    if !spec.enabled || settings.enable_metrics == Some(false) {
        return Ok(None);
    }
    if let Some(port) = settings.listener_port {
        return Ok(Some(ServedMetrics {
            port,
            listener: None,
            enable: settings.enable_metrics.is_none(),
        }));
    }
    if facts.listener_ports.contains(&spec.port) {
        return Err(MetricsProblem::PortTaken(spec.port));
    }
    if facts.listeners.is_none() {
        return Err(MetricsProblem::ListenersNotCopyable);
    }
    // Synapse serves this listener with prometheus_client's own server, on every path.
    let listener = json!({
        "port": spec.port,
        "type": "metrics",
        "bind_addresses": ["0.0.0.0"],
    });
    Ok(Some(ServedMetrics {
        port: spec.port,
        listener: Some(listener),
        enable: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver_file::read_homeserver_file;

    const CLIENT: &str = "  - port: 8008\n    type: http\n    resources: [{names: [client]}]\n";

    fn facts(extra: &str) -> HomeserverFacts {
        let text = format!("server_name: a.test\nreport_stats: no\n{extra}listeners:\n{CLIENT}");
        read_homeserver_file(&text).unwrap()
    }

    fn with_listener(listener: &str) -> HomeserverFacts {
        read_homeserver_file(&format!(
            "server_name: a.test\nreport_stats: no\nlisteners:\n{CLIENT}{listener}"
        ))
        .unwrap()
    }

    #[test]
    fn adds_a_listener_after_the_files() {
        let served = served(&Metrics::default(), &facts("")).unwrap().unwrap();
        assert_eq!(served.port, 9000);
        assert!(served.enable);
        assert_eq!(
            served.listener.unwrap(),
            json!({"port": 9000, "type": "metrics", "bind_addresses": ["0.0.0.0"]})
        );
    }

    #[test]
    fn the_files_own_listener_is_used_as_written() {
        for listener in [
            "  - port: 9102\n    type: metrics\n",
            "  - port: 9102\n    type: http\n    resources: [{names: [metrics]}]\n",
        ] {
            let served = served(&Metrics::default(), &with_listener(listener));
            assert_eq!(
                served,
                Ok(Some(ServedMetrics {
                    port: 9102,
                    listener: None,
                    enable: true
                })),
                "{listener}"
            );
        }
        let own = read_homeserver_file(&format!(
            "server_name: a.test\nreport_stats: no\nenable_metrics: yes\nlisteners:\n{CLIENT}  - port: 9102\n    type: metrics\n"
        ))
        .unwrap();
        assert!(!served(&Metrics::default(), &own).unwrap().unwrap().enable);
    }

    #[test]
    fn off_by_spec_or_by_the_file() {
        let off = Metrics {
            enabled: false,
            ..Metrics::default()
        };
        assert_eq!(served(&off, &facts("")), Ok(None));
        assert_eq!(
            served(&Metrics::default(), &facts("enable_metrics: false\n")),
            Ok(None)
        );
    }

    #[test]
    fn a_taken_port_or_uncopyable_listeners_are_problems() {
        let taken = Metrics {
            port: 8008,
            ..Metrics::default()
        };
        assert_eq!(
            served(&taken, &facts("")),
            Err(MetricsProblem::PortTaken(8008))
        );
        let dated = with_listener("  - port: 8009\n    type: http\n    since: 2001-12-14\n");
        assert_eq!(
            served(&Metrics::default(), &dated),
            Err(MetricsProblem::ListenersNotCopyable)
        );
    }
}
