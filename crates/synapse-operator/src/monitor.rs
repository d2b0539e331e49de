//! The Prometheus Operator's ServiceMonitor and PodMonitor (`monitoring.coreos.com/v1`), only
//! the fields the operator writes, and the one monitor of a Synapse with `spec.metrics.monitor`.
//! Hand-written: no maintained crate has the Prometheus Operator's types for our kube. Pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use synapse_types::metrics::{METRICS_PATH, Monitor};

use crate::workload::METRICS_PORT_NAME;

/// The `job` label of every Synapse's samples, whichever monitor scrapes it: the alert rules and
/// dashboards select Synapse by it.
pub const JOB: &str = "synapse";

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    pub selector: LabelSelector,
    #[serde(default)]
    pub pod_metrics_endpoints: Vec<Endpoint>,
}

/// A scrape endpoint; ServiceMonitors and PodMonitors share these fields.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub port: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default)]
    pub relabelings: Vec<Relabeling>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Relabeling {
    pub target_label: String,
    pub replacement: String,
}

/// The monitor `spec` asks for, scraping the metrics port of the pods (or Service) `selector`
/// picks, its samples labelled `job="synapse"` and `synapse="<name>"`.
pub enum Desired {
    Service(ServiceMonitor),
    Pod(PodMonitor),
}

pub fn desired(
    mut meta: ObjectMeta,
    synapse: &str,
    spec: &Monitor,
    selector: BTreeMap<String, String>,
) -> Desired {
    // The user's labels first: the operator's own (which its watches select by) win.
    let mut labels = spec.labels.clone();
    labels.extend(meta.labels.take().unwrap_or_default());
    meta.labels = Some(labels);
    let selector = LabelSelector {
        match_labels: Some(selector),
        match_expressions: None,
    };
    let endpoint = Endpoint {
        port: METRICS_PORT_NAME.into(),
        path: METRICS_PATH.into(),
        interval: spec.interval.clone(),
        relabelings: vec![
            Relabeling {
                target_label: "job".into(),
                replacement: JOB.into(),
            },
            Relabeling {
                target_label: "synapse".into(),
                replacement: synapse.into(),
            },
        ],
    };
    match spec.kind {
        synapse_types::metrics::MonitorKind::ServiceMonitor => Desired::Service(ServiceMonitor {
            metadata: meta,
            spec: ServiceMonitorSpec {
                selector,
                endpoints: vec![endpoint],
            },
        }),
        synapse_types::metrics::MonitorKind::PodMonitor => Desired::Pod(PodMonitor {
            metadata: meta,
            spec: PodMonitorSpec {
                selector,
                pod_metrics_endpoints: vec![endpoint],
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use synapse_types::metrics::MonitorKind;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("hs".into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".into(),
                "synapse-operator".into(),
            )])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn a_service_monitor_scrapes_the_metrics_port_as_job_synapse() {
        let spec = Monitor {
            kind: MonitorKind::ServiceMonitor,
            labels: BTreeMap::from([
                ("release".into(), "prometheus".into()),
                ("app.kubernetes.io/managed-by".into(), "me".into()),
            ]),
            interval: Some("15s".into()),
        };
        let selector = BTreeMap::from([("app.kubernetes.io/instance".into(), "hs".into())]);
        let Desired::Service(monitor) = desired(meta(), "hs", &spec, selector) else {
            panic!("a ServiceMonitor was asked for");
        };
        assert_eq!(
            serde_json::to_value(&monitor).unwrap(),
            json!({
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": {"name": "hs", "labels": {
                    "app.kubernetes.io/managed-by": "synapse-operator",
                    "release": "prometheus",
                }},
                "spec": {
                    "selector": {"matchLabels": {"app.kubernetes.io/instance": "hs"}},
                    "endpoints": [{
                        "port": "metrics",
                        "path": "/_synapse/metrics",
                        "interval": "15s",
                        "relabelings": [
                            {"targetLabel": "job", "replacement": "synapse"},
                            {"targetLabel": "synapse", "replacement": "hs"},
                        ],
                    }],
                },
            })
        );
    }

    #[test]
    fn a_pod_monitor_scrapes_the_pods() {
        let spec = Monitor {
            kind: MonitorKind::PodMonitor,
            ..Monitor::default()
        };
        let Desired::Pod(monitor) = desired(meta(), "hs", &spec, BTreeMap::new()) else {
            panic!("a PodMonitor was asked for");
        };
        let endpoint = &monitor.spec.pod_metrics_endpoints[0];
        assert_eq!(
            (endpoint.port.as_str(), endpoint.interval.as_deref()),
            ("metrics", None)
        );
    }
}
