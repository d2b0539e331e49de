//! The reconciliation of a Heisenbridge against a scripted API server: every request it makes,
//! in order, for a new bridge, its deletion, and what the user must fix.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use operator_common::bridge::BridgeContext;
use operator_common::error::ErrorKind;
use operator_common::pipeline::Pipeline;
use operator_common::testing::{Bodies, Exchange, api_status, scripted, store_of};
use operator_common::wiring::Owned;
use serde_json::{Value, json};
use synapse_types::Synapse;

use super::*;
use crate::status::EVENTS;

const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
const SECRET: &str = "/api/v1/namespaces/ns/secrets/irc-heisenbridge-registration";
const BRIDGE: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/heisenbridges/irc";
const STATUS: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/heisenbridges/irc/status";
const SYNAPSE: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/synapses/hs";
const SERVICE: &str = "/api/v1/namespaces/ns/services/irc-heisenbridge";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns/deployments/irc-heisenbridge";
const EVENT_PATH: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const ANNOTATION: &str = "heisenbridge.appservice.synapse.opdev.io/irc";

fn bridge(spec: Value) -> Value {
    json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Heisenbridge",
        "metadata": {"name": "irc", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": spec,
    })
}

fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// A ready Synapse that publishes its client URL.
fn synapse() -> Synapse {
    object(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "hs", "namespace": "ns", "uid": "s1"},
        "spec": {"homeserver": {"values": {"serverName": "chat.example.org", "reportStats": false}}},
        "status": {
            "clientUrl": "http://hs.ns.svc:8008",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Running", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    }))
}

fn context(client: kube::Client, synapses: Vec<Synapse>, secrets: Vec<Secret>) -> Arc<Context> {
    let owned = Owned {
        deployments: store_of(Vec::new()),
        services: store_of(Vec::new()),
        secrets: store_of(secrets),
    };
    let pipeline = Pipeline::new(
        client,
        "heisenbridge-operator",
        EVENTS,
        None,
        Default::default(),
    );
    Arc::new(Context {
        bridge: BridgeContext::new(pipeline, store_of(synapses), owned.secrets.clone()),
        owned,
    })
}

fn event(reason: &'static str, type_: &'static str) -> Exchange {
    Exchange::post(EVENT_PATH).body(move |event| {
        assert_eq!(event["reason"], reason, "{event}");
        assert_eq!(event["type"], type_, "{event}");
    })
}

fn status_write(written: &Bodies, spec: Value) -> Exchange {
    Exchange::patch(STATUS)
        .capture(written)
        .reply(200, bridge(spec))
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

#[tokio::test]
async fn a_new_bridge_stores_announces_and_deploys() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let spec = json!({"synapse": {"name": "hs"}});
    let script = vec![
        Exchange::post(SECRETS)
            .body(|secret| {
                assert_eq!(
                    secret["metadata"]["labels"]["synapse.opdev.io/synapse"],
                    "hs"
                );
                assert!(secret["data"]["registration.yaml"].is_string());
            })
            .echo(),
        Exchange::patch(BRIDGE)
            .body(|patch| {
                assert_eq!(
                    patch["metadata"]["finalizers"],
                    json!(["synapse.opdev.io/appservice-registration"])
                )
            })
            .reply(200, bridge(json!({"synapse": {"name": "hs"}}))),
        Exchange::patch(SYNAPSE)
            .body(|patch| {
                assert_eq!(
                    patch["metadata"]["annotations"][ANNOTATION],
                    "irc-heisenbridge-registration"
                )
            })
            .reply(200, serde_json::to_value(synapse()).unwrap()),
        Exchange::patch(SERVICE).echo(),
        Exchange::patch(DEPLOYMENT)
            .body(|deployment| {
                let command = &deployment["spec"]["template"]["spec"]["containers"][0]["command"];
                assert_eq!(
                    command.as_array().unwrap().last().unwrap(),
                    "http://hs.ns.svc:8008"
                );
            })
            .echo(),
        status_write(&written, spec.clone()),
    ];
    let ctx = context(client, vec![synapse()], Vec::new());
    let action = api
        .play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .expect("the reconciliation succeeds");
    assert_eq!(action, Action::await_change());
    let status = &written.lock().unwrap()[0];
    assert_eq!(condition(status, "Ready")["reason"], "RollingOut");
    assert_eq!(
        condition(status, "Registered")["reason"],
        "RegistrationPending"
    );
}

#[tokio::test]
async fn a_deleted_bridge_withdraws_from_its_synapse_then_lets_go() {
    let (client, api) = scripted();
    let mut deleted = bridge(json!({"synapse": {"name": "hs"}}));
    deleted["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    deleted["metadata"]["finalizers"] = json!(["synapse.opdev.io/appservice-registration"]);
    let mut announced = serde_json::to_value(synapse()).unwrap();
    announced["metadata"]["annotations"] = json!({ANNOTATION: "irc-heisenbridge-registration"});
    let script = vec![
        Exchange::get(SYNAPSE).reply(200, announced.clone()),
        Exchange::patch(SYNAPSE)
            .body(|patch| assert!(patch["metadata"].get("annotations").is_none(), "{patch}"))
            .reply(200, serde_json::to_value(synapse()).unwrap()),
        Exchange::get(BRIDGE).reply(200, deleted.clone()),
        Exchange::patch(BRIDGE)
            .body(|patch| assert!(patch["metadata"].get("finalizers").is_none(), "{patch}"))
            .reply(200, deleted.clone()),
    ];
    let ctx = context(client, vec![synapse()], Vec::new());
    let action = api
        .play(script, reconcile(Arc::new(object(deleted)), ctx))
        .await
        .expect("the withdrawal succeeds");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn input_the_user_must_fix_is_reported_without_a_write_to_anything_else() {
    // A Synapse in another namespace: refused before anything is read or written.
    let (client, api) = scripted();
    let written = Bodies::default();
    let spec = json!({"synapse": {"name": "hs", "namespace": "other"}});
    let script = vec![
        event("CrossNamespaceSynapse", "Warning"),
        status_write(&written, spec.clone()),
    ];
    let ctx = context(client, vec![synapse()], Vec::new());
    api.play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .unwrap();
    let status = written.lock().unwrap()[0].clone();
    assert_eq!(status["status"]["state"], "FAILED");

    // A registration ConfigMap that does not exist.
    let (client, api) = scripted();
    let spec = json!({"synapse": {"name": "hs"}, "configMap": {"name": "mine"}});
    let script = vec![
        Exchange::get("/api/v1/namespaces/ns/configmaps/mine").reply(
            404,
            api_status(404, "NotFound", "configmaps \"mine\" not found"),
        ),
        event("ConfigMapNotFound", "Warning"),
        status_write(&Bodies::default(), spec.clone()),
    ];
    let ctx = context(client, vec![synapse()], Vec::new());
    api.play(script, reconcile(Arc::new(object(bridge(spec))), ctx))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deployment_the_api_server_rejects_is_reported_and_retried() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let spec = json!({"synapse": {"name": "hs"}, "image": " bad image"});
    let stored: Secret = object(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "irc-heisenbridge-registration", "namespace": "ns",
                     "resourceVersion": "5",
                     "labels": {"synapse.opdev.io/synapse": "hs"}},
    }));
    let message = "Deployment.apps \"irc-heisenbridge\" is invalid: \
                   spec.template.spec.containers[0].image: Invalid value: \" bad image\"";
    let mut announced = synapse();
    announced
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(ANNOTATION.into(), "irc-heisenbridge-registration".into());
    let mut finalized = bridge(spec.clone());
    finalized["metadata"]["finalizers"] = json!(["synapse.opdev.io/appservice-registration"]);
    let script = vec![
        // The stored Secret has no registration yet: written again, conditional on its version.
        Exchange::patch(SECRET)
            .body(|secret| assert_eq!(secret["metadata"]["resourceVersion"], "5"))
            .echo(),
        Exchange::patch(SERVICE).echo(),
        Exchange::patch(DEPLOYMENT).reply(422, api_status(422, "Invalid", message)),
        event("Invalid", "Warning"),
        status_write(&written, spec),
    ];
    let ctx = context(client, vec![announced], vec![stored]);
    let error = api
        .play(script, reconcile(Arc::new(object(finalized)), ctx))
        .await
        .expect_err("a refusal is retried");
    assert_eq!(error.kind(), ErrorKind::Invalid);
    let status = &written.lock().unwrap()[0];
    let ready = condition(status, "Ready");
    assert_eq!(ready["reason"], "Invalid");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("containers[0].image"),
        "{ready}"
    );
}

#[tokio::test]
async fn a_status_written_is_not_written_again_before_the_cache_shows_it() {
    let (client, api) = scripted();
    let spec = json!({"synapse": {"name": "hs", "namespace": "other"}});
    let mut cached = bridge(spec.clone());
    cached["metadata"]["resourceVersion"] = json!("7");
    let cached: Arc<Heisenbridge> = Arc::new(object(cached));
    // Only the first reconciliation writes; the second, triggered before the watch delivered
    // that write, starts from it.
    let script = vec![
        event("CrossNamespaceSynapse", "Warning"),
        status_write(&Bodies::default(), spec),
    ];
    let ctx = context(client, vec![synapse()], Vec::new());
    let twice = async {
        reconcile(cached.clone(), ctx.clone()).await.unwrap();
        reconcile(cached, ctx).await.unwrap()
    };
    assert_eq!(api.play(script, twice).await, Action::await_change());
}
