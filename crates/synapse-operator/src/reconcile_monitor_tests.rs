//! The monitoring step within a reconciliation: the metrics listener, the monitor it applies,
//! and what it reports.

use std::sync::Arc;

use base64::Engine as _;
use kube::runtime::controller::Action;
use operator_common::testing::{Bodies, Exchange, scripted};
use serde_json::{Value, json};

use super::*;
use crate::reconcile::reconcile;

const SERVICE_MONITOR: &str = "/apis/monitoring.coreos.com/v1/namespaces/ns/servicemonitors/hs";

fn monitored() -> Value {
    let mut spec = values();
    spec["metrics"] = json!({"monitor": {"labels": {"release": "prometheus"}}});
    spec
}

fn overlay(config: &Value) -> Value {
    let encoded = config["data"]["operator-overlay.yaml"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    // The overlay is JSON after its comment header.
    serde_json::from_str(&text[text.find('{').unwrap()..]).unwrap()
}

#[tokio::test]
async fn a_monitored_synapse_serves_metrics_and_gets_its_service_monitor() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let monitor = Exchange::patch(SERVICE_MONITOR).capture(&written).echo();
    let script = creation_with(&written, vec![monitor], None);
    let (ctx, config) = secrets_context(client, &synapse(monitored())).await;
    api.play(script, reconcile(Arc::new(synapse(monitored())), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let (config, service, monitor, status) = (&config, &written[2], &written[3], &written[4]);
    let overlay = overlay(config);
    assert_eq!(overlay["enable_metrics"], true);
    assert_eq!(
        overlay["listeners"][1],
        json!({"port": 9000, "type": "metrics", "bind_addresses": ["0.0.0.0"]}),
        "the rendered client listener first, then the metrics one: {overlay:#}"
    );
    assert_eq!(overlay["listeners"][0]["port"], 8008);
    assert_eq!(service["spec"]["ports"][1]["name"], "metrics");
    assert_eq!(service["spec"]["ports"][1]["port"], 9000);
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["metadata"]["ownerReferences"][0]["uid"], "u1");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(condition(status, "Monitored")["reason"], "MonitorApplied");
    assert_eq!(
        status["status"]["metricsUrl"],
        "http://hs.ns.svc:9000/_synapse/metrics"
    );
}

#[tokio::test]
async fn without_the_prometheus_operator_the_synapse_runs_and_says_what_is_missing() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let missing = Exchange::patch(SERVICE_MONITOR).reply(404, not_served());
    let warning = Some(("PrometheusOperatorMissing", "Warning"));
    let script = creation_with(&written, vec![missing], warning);
    let (ctx, _config) = secrets_context(client, &synapse(monitored())).await;
    let action = api
        .play(script, reconcile(Arc::new(synapse(monitored())), ctx))
        .await
        .expect("a missing CRD is no error");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));
    let written = written.lock().unwrap().clone();
    let status = written.last().unwrap();
    let monitored = condition(status, "Monitored");
    assert_eq!(monitored["status"], "False");
    assert!(
        monitored["message"]
            .as_str()
            .unwrap()
            .contains("ServiceMonitor CRD (monitoring.coreos.com/v1"),
        "{monitored}"
    );
    assert_eq!(condition(status, "Ready")["reason"], "RollingOut");
    assert_eq!(
        status["status"]["metricsUrl"], "http://hs.ns.svc:9000/_synapse/metrics",
        "Synapse serves its metrics all the same"
    );
}
