//! Day-2 operations on a Synapse (issue 18), against the real plane:
//!
//! - an image whose tag is an older Synapse than the one that last ran is refused
//!   (`DowngradeRefused`, the running Deployment kept) until `spec.allowDowngrade`;
//! - `spec.suspend` scales the Synapse to zero and back with the same data: a user registered on
//!   the real Synapse (pod harness, SQLite on its volume) logs in again after the resume.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), root and `hack/python-env`.

#[allow(dead_code)]
mod synapse_support;

use e2e::pod_harness::{Request, Scenario};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};
use synapse_support::*;
/// The image of the Synapse's Deployment.
async fn deployed_image(plane: &Plane, name: &str) -> String {
    let deployment: Deployment = get(&plane.client, &plane.ns.name, name).await;
    deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers[0].image.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_older_image_is_refused_unless_allowed() {
    let plane = Plane::start("syn-downgrade", "info").await;
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "down.example", "reportStats": false}}}),
    )
    .await;
    let running = wait_synapse(&api, "hs", "running with its version recorded", |s| {
        is_running(s) && s["status"]["synapseVersion"] == "1.163.2"
    })
    .await;
    assert_eq!(running["status"]["state"], "RUNNING");

    let older = "matrixdotorg/synapse:v1.160.0";
    patch_spec(&api, "hs", json!({"image": older})).await;
    let refused = wait_failed(&api, "hs", "DowngradeRefused").await;
    let message = condition(&refused, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("older than the 1.163.2"), "{message}");
    wait_event(
        &plane.client,
        &plane.ns.name,
        "hs",
        "Warning",
        "DowngradeRefused",
    )
    .await;
    assert_eq!(
        deployed_image(&plane, "hs").await,
        "matrixdotorg/synapse:v1.163.2",
        "the running Synapse is kept"
    );

    patch_spec(&api, "hs", json!({"allowDowngrade": true})).await;
    wait_synapse(&api, "hs", "rolled out to the older image", |s| {
        is_running(s) && s["status"]["synapseVersion"] == "1.160.0"
    })
    .await;
    assert_eq!(deployed_image(&plane, "hs").await, older);
    plane.finish().await;
}

/// Registers `user` with the shared secret on the real Synapse at `port`.
async fn register(
    synapse: &e2e::pod_harness::PodProcess,
    plane: &Plane,
    user: &str,
    password: &str,
) {
    let secret: Secret = get(&plane.client, &plane.ns.name, "hs-secrets").await;
    let shared = secret_text(&secret)
        .remove("registration_shared_secret")
        .expect("the registration shared secret");
    let path = "/_synapse/admin/v1/register";
    let nonce = synapse
        .http_get(8008, path)
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    let nonce = nonce["nonce"].as_str().expect("a nonce").to_owned();
    let mac = hmac_sha1_hex(
        shared.trim(),
        format!("{nonce}\0{user}\0{password}\0notadmin").as_bytes(),
    );
    let body =
        json!({"nonce": nonce, "username": user, "password": password, "admin": false, "mac": mac});
    let response = synapse
        .http(Request::post(8008, path).json(&body))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Logs `user` in; the status code.
async fn log_in(
    synapse: &e2e::pod_harness::PodProcess,
    user: &str,
    password: &str,
) -> (u16, Value) {
    let body = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    });
    let response = synapse
        .http(Request::post(8008, "/_matrix/client/v3/login").json(&body))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response.status, response.json().unwrap_or(Value::Null))
}

fn replicas(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref().and_then(|s| s.replicas)
}

#[tokio::test]
async fn suspend_scales_to_zero_and_resume_keeps_the_data() {
    let plane = Plane::start("syn-suspend", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "suspend.example", "reportStats": false}}}),
    )
    .await;
    wait_running(&api, "hs").await;
    let mut scenario = Scenario::new("synapse-suspend").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns, "hs");
    let mut synapse = boot_synapse(&scenario, &client, &ns, "hs", 8008).await;
    register(&synapse, &plane, "alice", "kept across a suspend").await;
    let before: Deployment = get(&client, &ns, "hs").await;

    patch_spec(&api, "hs", json!({"suspend": true})).await;
    let suspended = wait_synapse(&api, "hs", "Suspended", |s| {
        condition_state(s, "Ready") == ("False".into(), "Suspended".into())
    })
    .await;
    assert!(
        suspended["status"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.suspend")
    );
    let scaled: Deployment = get(&client, &ns, "hs").await;
    assert_eq!(replicas(&scaled), Some(0));
    assert_eq!(
        template_hash(&scaled),
        template_hash(&before),
        "the same pod, none of it"
    );
    for (kind, name) in [("Secret", "hs-secrets"), ("Secret", "hs-config")] {
        let kept: Option<Secret> = get_opt(&client, &ns, name).await;
        assert!(kept.is_some(), "{kind} {name} is kept");
    }
    let claim: Option<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        get_opt(&client, &ns, "hs-data").await;
    assert!(claim.is_some(), "the data volume is kept");
    // Kubernetes stops the pod.
    synapse.stop().unwrap_or_else(|e| panic!("{e}"));

    patch_spec(&api, "hs", json!({"suspend": false})).await;
    wait_running(&api, "hs").await;
    let resumed: Deployment = get(&client, &ns, "hs").await;
    assert_eq!(replicas(&resumed), Some(1));
    let synapse = boot_synapse(&scenario, &client, &ns, "hs", 8008).await;
    let (status, body) = log_in(&synapse, "alice", "kept across a suspend").await;
    assert_eq!(
        status, 200,
        "the user registered before the suspend: {body}"
    );
    drop(synapse);
    plane.finish().await;
}

/// Synapse's own keys: `/_matrix/key/v2/server`.
async fn server_keys(synapse: &e2e::pod_harness::PodProcess) -> Value {
    synapse
        .http_get(8008, "/_matrix/key/v2/server")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn a_rotated_signing_key_is_served_and_the_old_one_listed_as_expired() {
    let plane = Plane::start("syn-rotate", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "rotate.example", "reportStats": false}}}),
    )
    .await;
    let running = wait_synapse(&api, "hs", "running with its key id", |s| {
        is_running(s) && s["status"]["signingKeyId"].is_string()
    })
    .await;
    let old_id = running["status"]["signingKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut scenario = Scenario::new("synapse-rotate").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns, "hs");
    let mut synapse = boot_synapse(&scenario, &client, &ns, "hs", 8008).await;
    let keys = server_keys(&synapse).await;
    assert!(keys["verify_keys"][&old_id].is_object(), "{keys}");
    let before: Deployment = get(&client, &ns, "hs").await;

    patch_spec(&api, "hs", json!({"signingKeyRotation": "2026-12-06"})).await;
    let rotated = wait_synapse(&api, "hs", "a new key id, rolled out", |s| {
        is_running(s)
            && s["status"]["signingKeyId"]
                .as_str()
                .is_some_and(|id| id != old_id)
    })
    .await;
    let new_id = rotated["status"]["signingKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let after: Deployment = get(&client, &ns, "hs").await;
    assert_ne!(
        template_hash(&after),
        template_hash(&before),
        "the pod rolls"
    );
    let secret: Secret = get(&client, &ns, "hs-secrets").await;
    let data = secret_text(&secret);
    assert!(
        data["old_signing_keys"].contains(&old_id),
        "both keys kept in the Secret"
    );
    synapse.stop().unwrap_or_else(|e| panic!("{e}"));
    let synapse = boot_synapse(&scenario, &client, &ns, "hs", 8008).await;
    let keys = server_keys(&synapse).await;
    assert!(keys["verify_keys"][&new_id].is_object(), "{keys}");
    assert!(keys["verify_keys"][&old_id].is_null(), "{keys}");
    let old = &keys["old_verify_keys"][&old_id];
    assert!(
        old["key"].is_string() && old["expired_ts"].as_i64().is_some_and(|t| t > 0),
        "{keys}"
    );

    // Steady: the same value rotates nothing more.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let still = get_synapse(&api, "hs").await;
    assert_eq!(still["status"]["signingKeyId"], json!(new_id));
    drop(synapse);
    plane.finish().await;
}
