//! The reconciliation of a MautrixSignal against a scripted API server: every request it
//! makes, in order, for a new bridge, a missing Synapse and each way the API server can refuse.

use std::sync::Arc;

use operator_common::bridge::BridgeContext;
use operator_common::error::ErrorKind;
use operator_common::pipeline::Pipeline;
use operator_common::testing::{Bodies, Exchange, api_status, scripted, store_of};
use operator_common::wiring::Owned;
use serde_json::{Value, json};
use synapse_types::Synapse;

use super::*;
use crate::context::Caches;
use crate::status::EVENTS;

const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
const CONFIG: &str = "/api/v1/namespaces/ns/secrets/sig-mautrix-signal-config";
const CLAIMS: &str = "/api/v1/namespaces/ns/persistentvolumeclaims";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns/deployments/sig-mautrix-signal";
const SERVICE: &str = "/api/v1/namespaces/ns/services/sig-mautrix-signal";
const BRIDGE: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/mautrixsignals/sig";
const STATUS: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/mautrixsignals/sig/status";
const SYNAPSE: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/synapses/hs";
const EVENT_PATH: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";

fn bridge(spec: Value) -> Value {
    json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "MautrixSignal",
        "metadata": {"name": "sig", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": spec,
    })
}

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// A ready Synapse that publishes its server name and client URL.
fn synapse() -> Synapse {
    object(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "hs", "namespace": "ns", "uid": "s1"},
        "spec": {"homeserver": {"values": {"serverName": "chat.example.org", "reportStats": false}}},
        "status": {
            "clientUrl": "http://hs.ns.svc:8008",
            "homeserverConfiguration": {"serverName": "chat.example.org"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    }))
}

fn context(client: kube::Client, synapses: Vec<Synapse>) -> Arc<Context> {
    let owned = Owned {
        deployments: store_of(Vec::new()),
        services: store_of(Vec::new()),
        secrets: store_of(Vec::new()),
    };
    let pipeline = Pipeline::new(client, "signal-operator", EVENTS, None, Default::default());
    Arc::new(Context {
        bridge: BridgeContext::new(pipeline, store_of(synapses), owned.secrets.clone()),
        caches: Caches {
            owned,
            claims: store_of(Vec::new()),
        },
    })
}

fn event(reason: &'static str, type_: &'static str) -> Exchange {
    Exchange::post(EVENT_PATH).body(move |event| {
        assert_eq!(event["reason"], reason, "{event}");
        assert_eq!(event["type"], type_, "{event}");
    })
}

fn status_write(written: &Bodies) -> Exchange {
    Exchange::patch(STATUS)
        .capture(written)
        .reply(200, bridge(json!({"synapse": {"name": "hs"}})))
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// The requests of a first reconciliation, up to the status.
fn creation() -> Vec<Exchange> {
    vec![
        Exchange::post(SECRETS)
            .body(|keys| assert_eq!(keys["metadata"]["name"], "sig-mautrix-signal-keys"))
            .echo(),
        Exchange::post(SECRETS)
            .body(|registration| {
                assert_eq!(
                    registration["metadata"]["name"],
                    "sig-mautrix-signal-registration"
                )
            })
            .echo(),
        Exchange::patch(CONFIG).echo(),
        Exchange::post(CLAIMS).echo(),
        Exchange::patch(DEPLOYMENT).echo(),
        Exchange::patch(SERVICE).echo(),
        Exchange::patch(BRIDGE).reply(200, bridge(json!({"synapse": {"name": "hs"}}))),
        Exchange::patch(SYNAPSE).reply(200, serde_json::to_value(synapse()).unwrap()),
    ]
}

#[tokio::test]
async fn a_new_bridge_gets_its_keys_config_and_workload_then_announces_itself() {
    let (client, api) = scripted();
    let written = Bodies::default();
    // A new bridge's database being ready is no Event of its own (Ready's says more).
    let mut script = creation();
    script.push(status_write(&written));
    let ctx = context(client, vec![synapse()]);
    let spec = json!({"synapse": {"name": "hs"}});
    let action = api
        .play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .expect("the reconciliation succeeds");
    assert_eq!(action, Action::await_change());
    let status = &written.lock().unwrap()[0];
    assert_eq!(condition(status, "Ready")["reason"], "RollingOut");
    assert_eq!(
        status["status"]["synapse"]["serverName"],
        "chat.example.org"
    );
}

#[tokio::test]
async fn a_missing_synapse_is_reported_and_nothing_is_written() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let script = vec![event("SynapseNotFound", "Warning"), status_write(&written)];
    let ctx = context(client, Vec::new());
    let spec = json!({"synapse": {"name": "hs"}});
    api.play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .unwrap();
    let status = &written.lock().unwrap()[0];
    assert_eq!(condition(status, "Registered")["reason"], "SynapseNotFound");
}

#[tokio::test]
async fn refusals_are_reported_and_failures_retried() {
    // A name no Service may have: the apiserver's message reaches the bridge.
    let (client, api) = scripted();
    let written = Bodies::default();
    let mut script: Vec<Exchange> = creation().into_iter().take(5).collect();
    let message = "Service \"sig-mautrix-signal\" is invalid: metadata.name: Invalid value";
    script.push(Exchange::patch(SERVICE).reply(422, api_status(422, "Invalid", message)));
    script.push(event("Invalid", "Warning"));
    script.push(status_write(&written));
    let ctx = context(client, vec![synapse()]);
    let spec = json!({"synapse": {"name": "hs"}});
    let error = api
        .play(
            script,
            reconcile(Arc::new(object(bridge(spec.clone()))), ctx),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Invalid);
    let ready = condition(&written.lock().unwrap()[0], "Ready").clone();
    assert!(
        ready["message"].as_str().unwrap().contains(message),
        "{ready}"
    );

    // A missing permission on the keys.
    let (client, api) = scripted();
    let script = vec![
        Exchange::post(SECRETS).reply(403, api_status(403, "Forbidden", "cannot create secrets")),
        event("Forbidden", "Warning"),
        status_write(&Bodies::default()),
    ];
    let ctx = context(client, vec![synapse()]);
    let error = api
        .play(
            script,
            reconcile(Arc::new(object(bridge(spec.clone()))), ctx),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);

    // A server error: retried, nothing recorded.
    let (client, api) = scripted();
    let script = vec![Exchange::post(SECRETS).reply(500, api_status(500, "InternalError", "etcd"))];
    let ctx = context(client, vec![synapse()]);
    let error = api
        .play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
}
