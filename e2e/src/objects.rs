//! Our kinds as the tests see them: read as the JSON users and other operators see, their
//! conditions, waiting for a state, and the Events an operator reports about them.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// How long the waits here wait: long enough for a loaded 2-core CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A kind the tests create or read: ours (`synapse.opdev.io/v1alpha1`), or another project's
/// the operators work with (the Gateway API's, cert-manager's Certificate, the Prometheus
/// Operator's).
pub fn resource(kind: &str) -> ApiResource {
    let (group, version) = match kind {
        "HTTPRoute" | "Gateway" => ("gateway.networking.k8s.io", "v1"),
        "ReferenceGrant" => ("gateway.networking.k8s.io", "v1beta1"),
        "Certificate" => ("cert-manager.io", "v1"),
        "ServiceMonitor" | "PodMonitor" | "PrometheusRule" => ("monitoring.coreos.com", "v1"),
        _ => ("synapse.opdev.io", "v1alpha1"),
    };
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// The objects of `kind` (see [`resource`]) in `namespace`.
pub fn namespaced(client: &kube::Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &resource(kind))
}

/// Creates an object of one of our kinds from its spec, as a user writes it.
pub async fn create(api: &Api<DynamicObject>, kind: &str, name: &str, spec: Value) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("an object");
    api.create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {name}: {e}"));
}

/// The object as JSON; panics when it cannot be read.
pub async fn get_json(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(
        api.get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}")),
    )
    .expect("serialise")
}

pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `(status, reason)` of a condition, empty strings when it is absent.
pub fn condition_state(object: &Value, type_: &str) -> (String, String) {
    condition(object, type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .unwrap_or_default()
}

pub fn condition_message(object: &Value, type_: &str) -> String {
    condition(object, type_)
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Whether a Synapse is Ready for its current generation and `RUNNING`.
pub fn is_running(synapse: &Value) -> bool {
    let generation = &synapse["metadata"]["generation"];
    condition_state(synapse, "Ready") == ("True".into(), "Running".into())
        && condition(synapse, "Ready").is_some_and(|c| &c["observedGeneration"] == generation)
        && &synapse["status"]["observedGeneration"] == generation
        && synapse["status"]["state"] == "RUNNING"
}

/// Waits until `check` holds for the object, returning it; the panic shows its last status.
pub async fn wait_object(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    let started = tokio::time::Instant::now();
    loop {
        if let Ok(Some(object)) = api.get_opt(name).await {
            last = serde_json::to_value(object).expect("serialise");
            if check(&last) {
                return last;
            }
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "timed out waiting for {name}: {what}; last: {:#}",
            json!({"metadata": last["metadata"], "status": last["status"]})
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for an Event of `type_` and `reason` regarding the `kind` `name`, reported by
/// `operator`; returns its note.
pub async fn wait_event(
    events: &Api<Event>,
    operator: &str,
    (kind, name): (&str, &str),
    type_: &str,
    reason: &str,
) -> String {
    crate::wait_for(
        TIMEOUT,
        &format!("a {type_} Event {reason} regarding {kind} {name}"),
        || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                    }) && e.type_.as_deref() == Some(type_)
                        && e.reason.as_deref() == Some(reason)
                        && e.reporting_controller.as_deref() == Some(operator)
                })
                .map(|e| e.note.unwrap_or_default())
        },
    )
    .await
}
