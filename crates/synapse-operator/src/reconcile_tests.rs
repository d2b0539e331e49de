//! The reconciliation against a scripted API server: every request it makes, in order, for a
//! new Synapse, a steady one, bad input and each way the API server can refuse or fail.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::api::PartialObjectMeta;
use operator_common::error::ErrorKind;
use operator_common::pipeline::Pipeline;
use operator_common::testing::{Bodies, Exchange, api_status, scripted, store_of};
use operator_common::wiring::Owned;
use serde_json::{Value, json};

use super::*;
use crate::context::{Caches, Context};
use crate::http_route::HTTPRoute;

const NS: &str = "/api/v1/namespaces/ns";
const SECRETS: &str = "/api/v1/namespaces/ns/secrets";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns/deployments/hs";
const SERVICE: &str = "/api/v1/namespaces/ns/services/hs";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/ns/events";
const STATUS: &str = "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/synapses/hs/status";
const JOBS: &str = "/apis/batch/v1/namespaces/ns/jobs";
fn synapse(spec: Value) -> Synapse {
    serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "hs", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": spec,
    }))
    .unwrap()
}

/// The API server's answer to a status write: the object with that status.
fn stored(status: &Value) -> Value {
    let mut object = serde_json::to_value(synapse(values())).unwrap();
    object["status"] = status["status"].clone();
    object
}

/// A status write, kept in `written`.
fn status_write(written: &Bodies) -> Exchange {
    let written = written.clone();
    Exchange::patch(STATUS)
        .capture(&written)
        .reply(200, stored(&json!({})))
}

fn values() -> Value {
    json!({"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}})
}

/// What the caches hold: the objects written earlier, as the API server stored them.
#[derive(Clone, Default)]
struct Cached {
    secrets: Vec<Secret>,
    claims: Vec<PersistentVolumeClaim>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    routes: Vec<HTTPRoute>,
    /// Configuration checks.
    jobs: Vec<crate::config_check::CheckJob>,
}

fn context(client: kube::Client, cached: Cached) -> Arc<Context> {
    let claims = cached
        .claims
        .into_iter()
        .map(|c| PartialObjectMeta::<PersistentVolumeClaim> {
            types: None,
            metadata: c.metadata,
            _phantom: Default::default(),
        });
    let caches = Caches {
        owned: Owned {
            // As the API server sends them: JSON text the cache keeps the spec of.
            deployments: store_of(
                cached
                    .deployments
                    .iter()
                    .map(|d| serde_json::from_str(&serde_json::to_string(d).unwrap()).unwrap()),
            ),
            services: store_of(cached.services),
            secrets: store_of(cached.secrets),
        },
        registrations: store_of(Vec::new()),
        claims: store_of(claims),
        routes: store_of(cached.routes),
        ingresses: store_of(Vec::new()),
        certificates: store_of(Vec::new()),
        service_monitors: store_of(Vec::new()),
        pod_monitors: store_of(Vec::new()),
        budgets: store_of(Vec::new()),
        config_checks: store_of(cached.jobs),
    };
    Arc::new(context_of(client, caches))
}

fn context_of(client: kube::Client, caches: Caches) -> Context {
    let pipeline = Pipeline::new(
        client,
        "synapse-operator",
        crate::status::EVENTS,
        None,
        Default::default(),
    );
    Context { pipeline, caches }
}

fn from<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap()
}

fn event(reason: &'static str, type_: &'static str) -> Exchange {
    Exchange::post(EVENTS).body(move |event| {
        assert_eq!(event["reason"], reason, "{event}");
        assert_eq!(event["type"], type_, "{event}");
    })
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// The first requests of a new Synapse: its generated secrets, then its configuration; every
/// body written kept.
fn secrets_written(written: &Bodies) -> Vec<Exchange> {
    vec![
        Exchange::post(SECRETS).capture(written).echo(),
        Exchange::patch(&format!("{SECRETS}/hs-config"))
            .capture(written)
            .echo(),
    ]
}

/// The requests of a first reconciliation of a Synapse whose configuration Synapse checks first
/// (not the default image, or a file of the user's): the Secrets, then the check.
fn checking(written: &Bodies) -> Vec<Exchange> {
    let mut script = secrets_written(written);
    script.push(Exchange::post(JOBS).capture(written).echo());
    script.push(status_write(written));
    script
}

/// `cached` with the Secrets a first reconciliation of `synapse` writes (its requests echoed)
/// before the API server failed its next request: the state [`creation`] goes on from.
async fn with_secrets(synapse: &Synapse, mut cached: Cached) -> Cached {
    let (client, api) = scripted();
    let written = Bodies::default();
    let ctx = context(client, Cached::default());
    let mut script = secrets_written(&written);
    script.push(
        Exchange::post(&format!("{NS}/persistentvolumeclaims"))
            .reply(500, api_status(500, "InternalError", "try again")),
    );
    let error = api
        .play(script, reconcile(Arc::new(synapse.clone()), ctx))
        .await
        .expect_err("the server error is retried");
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    let written = written.lock().unwrap().clone();
    let [generated, config] = &written[..] else {
        panic!("two writes: {written:#?}");
    };
    cached.secrets.extend([from(generated), from(config)]);
    cached
}

/// The context of the reconciliation of `synapse` once its Secrets exist, and the configuration
/// Secret its first reconciliation wrote (JSON, as the request carried it).
async fn secrets_context(client: kube::Client, synapse: &Synapse) -> (Arc<Context>, Value) {
    let cached = with_secrets(synapse, Cached::default()).await;
    let config = serde_json::to_value(&cached.secrets[1]).unwrap();
    (context(client, cached), config)
}

/// The requests of a new Synapse's reconciliation once its Secrets exist, keeping every body
/// written: configured by values on the default image, it starts unchecked.
fn creation(written: &Bodies) -> Vec<Exchange> {
    vec![
        Exchange::post(&format!("{NS}/persistentvolumeclaims"))
            .capture(written)
            .echo(),
        Exchange::patch(DEPLOYMENT).capture(written).echo(),
        Exchange::patch(SERVICE).capture(written).echo(),
        status_write(written),
    ]
}

/// The caches of `synapse` once it runs: its first reconciliations played (requests echoed), its
/// pod ready.
async fn running_cache(synapse: &Synapse) -> Cached {
    let mut cached = with_secrets(synapse, Cached::default()).await;
    let (client, api) = scripted();
    let written = Bodies::default();
    let ctx = context(client, cached.clone());
    api.play(
        creation(&written),
        reconcile(Arc::new(synapse.clone()), ctx),
    )
    .await
    .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let [claim, deployment, service, _status] = &written[..] else {
        panic!("four writes: {written:#?}");
    };
    cached.claims.push(from(claim));
    cached.deployments.push(ready(from(deployment)));
    cached.services.push(from(service));
    cached
}

/// `deployment` as the API server has it once its pod is ready.
fn ready(mut deployment: Deployment) -> Deployment {
    deployment.metadata.generation = Some(1);
    deployment.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(1),
        updated_replicas: Some(1),
        ready_replicas: Some(1),
        available_replicas: Some(1),
        ..DeploymentStatus::default()
    });
    deployment
}

/// A first reconciliation with the requests of the steps after the Service (`exposure`), and
/// their Event `exposed` (reason, type) after the creation's own.
fn creation_with(
    written: &Bodies,
    exposure: Vec<Exchange>,
    exposed: Option<(&'static str, &'static str)>,
) -> Vec<Exchange> {
    let mut script = creation(written);
    let status = script.pop().expect("the status write");
    script.extend(exposure);
    script.extend(exposed.map(|(reason, type_)| event(reason, type_)));
    script.push(status);
    script
}

/// The API server's answer for a kind it does not serve.
fn not_served() -> serde_json::Value {
    api_status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

#[tokio::test]
async fn a_new_synapse_gets_its_objects_then_a_steady_state_makes_no_request() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let synapse = Arc::new(synapse(values()));
    let mut script = secrets_written(&written);
    script.extend(creation(&written));
    let ctx = context(client, Cached::default());
    let action = api
        .play(script, reconcile(Arc::clone(&synapse), ctx))
        .await
        .expect("the reconciliation succeeds");
    assert_eq!(action, Action::await_change());

    // Its own values on the default image: started at once, no check Job, no Event yet.
    let written = written.lock().unwrap().clone();
    let [generated, config, claim, deployment, service, status] = &written[..] else {
        panic!("six writes: {written:#?}");
    };
    let (generated, config): (Secret, Secret) = (from(generated), from(config));
    assert_eq!(generated.metadata.name.as_deref(), Some("hs-secrets"));
    assert_eq!(
        generated.data.as_ref().unwrap().len(),
        4,
        "signing key, macaroon, registration and form secrets"
    );
    assert!(
        config
            .data
            .as_ref()
            .unwrap()
            .contains_key("homeserver.yaml")
    );
    assert_eq!(claim["metadata"]["name"], "hs-data");
    assert_eq!(
        condition(status, "Ready")["reason"],
        "RollingOut",
        "{status}"
    );
    assert_eq!(status["status"]["clientUrl"], "http://hs.ns.svc:8008");

    // The same Synapse, its objects in the caches as written and its pod ready: nothing to do.
    let cached = Cached {
        secrets: vec![generated, config],
        claims: vec![from(claim)],
        deployments: vec![ready(from(deployment))],
        services: vec![from(service)],
        ..Cached::default()
    };
    let mut running = synapse.as_ref().clone();
    running.status = Some(from(&status["status"]));
    let (client, api) = scripted();
    let becoming_ready = vec![
        event("Running", "Normal"),
        Exchange::patch(STATUS)
            .body(|status| assert_eq!(condition(status, "Ready")["status"], "True"))
            .reply(200, stored(&json!({}))),
    ];
    let ctx = context(client, cached);
    let synapse = Arc::new(running.clone());
    api.play(
        becoming_ready,
        reconcile(Arc::clone(&synapse), Arc::clone(&ctx)),
    )
    .await
    .unwrap();
    // Once the status says so too, a reconciliation makes no request at all.
    let (client, api) = scripted();
    let mut steady = running;
    let next = converged_status(&steady, &ctx).await;
    steady.status = Some(next);
    let ctx = Arc::new(context_of(client, ctx.caches.clone()));
    api.play(Vec::new(), reconcile(Arc::new(steady), ctx))
        .await
        .unwrap();
}

/// The status a reconciliation of `synapse` arrives at, its requests answered by echoes.
async fn converged_status(synapse: &Synapse, ctx: &Context) -> SynapseStatus {
    let (client, api) = scripted();
    let ctx = context_of(client, ctx.caches.clone());
    let written = Bodies::default();
    let script = vec![event("Running", "Normal"), status_write(&written)];
    api.play(script, reconcile(Arc::new(synapse.clone()), Arc::new(ctx)))
        .await
        .unwrap();
    let status = written.lock().unwrap()[0]["status"].clone();
    serde_json::from_value(status).unwrap()
}

/// A first reconciliation whose request to `refused` (the index in [`creation`]) the API
/// server answers with `code`: the requests up to it, then the refusal recorded on the
/// Synapse (Warning Event, Ready=False with `reason`), and the error to retry.
async fn refused_at(refused: usize, code: u16, status_reason: &str, reason: &'static str) {
    let (client, api) = scripted();
    let written = Bodies::default();
    let mut script: Vec<Exchange> = creation(&Bodies::default())
        .into_iter()
        .take(refused)
        .collect();
    let path = match refused {
        1 => DEPLOYMENT.to_owned(),
        2 => SERVICE.to_owned(),
        _ => unreachable!(),
    };
    let message = format!("{path} refused: {status_reason}");
    script.push(Exchange::patch(&path).reply(code, api_status(code, status_reason, &message)));
    script.push(event(reason, "Warning"));
    script.push(status_write(&written));
    let synapse = synapse(values());
    let ctx = context(client, with_secrets(&synapse, Cached::default()).await);
    let error = api
        .play(script, reconcile(Arc::new(synapse), ctx))
        .await
        .expect_err("a refusal is retried");
    let Error::Refused(refusal) = &error else {
        panic!("not a refusal: {error}");
    };
    assert_eq!(refusal.reason(), reason);
    let status = &written.lock().unwrap()[0];
    let ready = condition(status, "Ready");
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!(reason))
    );
    let text = ready["message"].as_str().unwrap();
    assert!(text.contains(&message), "the API server's message: {text}");
    assert_eq!(status["status"]["state"], "FAILED");
}

#[tokio::test]
async fn a_child_the_api_server_rejects_is_reported_on_the_synapse() {
    // A Synapse named my.synapse: its Service name is not a DNS label.
    refused_at(2, 422, "Invalid", "Invalid").await;
    // A spec the Deployment cannot take (memory limit below the request).
    refused_at(1, 422, "Invalid", "Invalid").await;
    // A missing permission.
    refused_at(1, 403, "Forbidden", "Forbidden").await;
}

#[tokio::test]
async fn a_field_another_manager_owns_is_a_refusal_and_a_stale_write_is_transient() {
    let (client, api) = scripted();
    let mut script: Vec<Exchange> = checking(&Bodies::default()).into_iter().take(1).collect();
    let mut conflict = api_status(
        409,
        "Conflict",
        "Apply failed with 1 conflict: conflict with \"kubectl\": .data",
    );
    conflict["details"] = json!({"causes": [{"reason": "FieldManagerConflict", "field": ".data"}]});
    script.push(Exchange::patch(&format!("{SECRETS}/hs-config")).reply(409, conflict));
    script.push(event("FieldConflict", "Warning"));
    script.push(status_write(&Bodies::default()));
    let ctx = context(client, Cached::default());
    let error = api
        .play(script, reconcile(Arc::new(synapse(values())), ctx))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::FieldConflict);

    // A server error or a lost race: retried, nothing recorded, no Event.
    for (code, reason) in [(500, "InternalError"), (409, "AlreadyExists")] {
        let (client, api) = scripted();
        let script =
            vec![Exchange::post(SECRETS).reply(code, api_status(code, reason, "try again"))];
        let ctx = context(client, Cached::default());
        let error = api
            .play(script, reconcile(Arc::new(synapse(values())), ctx))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    }
}

#[tokio::test]
async fn bad_input_is_a_condition_and_a_warning_and_nothing_is_applied() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let spec = json!({"homeserver": {"configMap": {"name": "missing"}}});
    let script = vec![
        Exchange::get(&format!("{NS}/configmaps/missing")).reply(
            404,
            api_status(404, "NotFound", "configmaps \"missing\" not found"),
        ),
        event("ConfigMapNotFound", "Warning"),
        status_write(&written),
    ];
    let ctx = context(client, Cached::default());
    let action = api
        .play(script, reconcile(Arc::new(synapse(spec)), ctx))
        .await
        .expect("a user problem is not an error to retry");
    assert_eq!(
        action,
        Action::await_change(),
        "it waits for the input to change"
    );
    let status = &written.lock().unwrap()[0];
    assert_eq!(condition(status, "Ready")["reason"], "ConfigMapNotFound");
    assert_eq!(status["status"]["state"], "FAILED");
}

#[tokio::test]
async fn a_status_the_api_server_refuses_is_retried() {
    let (client, api) = scripted();
    let mut script = creation(&Bodies::default());
    script.pop();
    let forbidden = || api_status(403, "Forbidden", "cannot patch synapses/status");
    script.push(Exchange::patch(STATUS).reply(403, forbidden()));
    // Recording the refusal needs the same permission: it is logged, the error retried.
    script.push(event("Forbidden", "Warning"));
    script.push(Exchange::patch(STATUS).reply(403, forbidden()));
    let synapse = synapse(values());
    let ctx = context(client, with_secrets(&synapse, Cached::default()).await);
    let error = api
        .play(script, reconcile(Arc::new(synapse), ctx))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Forbidden);
}

#[cfg(test)]
#[path = "reconcile_check_tests.rs"]
mod check;

/// The exposure step's requests.
#[path = "reconcile_monitor_tests.rs"]
mod monitor_tests;

#[cfg(test)]
#[path = "reconcile_expose_tests.rs"]
mod expose;
