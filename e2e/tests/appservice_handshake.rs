//! The app-service handshake end to end (issue 5): the real synapse-operator and
//! heisenbridge-operator against the local plane, then real Synapse and real Heisenbridge
//! booted by the pod harness from exactly the files their Pods mount, with the Services' names
//! resolving to loopback. Proves that they connect, that a deleted bridge leaves Synapse's next
//! Pod without its registration, and that a conflicting second registration is left out.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), root and `hack/python-env`.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::time::Duration;

use e2e::operator_process::OperatorProcess;
use e2e::pod_harness::{PodProcess, Request, Scenario};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use synapse_support::{
    TIMEOUT, boot_synapse, condition_state, config_file, create_synapse, get, hmac_sha1_hex,
    is_running, restricted_namespace, secret_text, start_operator, synapses, wait_synapse,
};

const SERVER: &str = "handshake.test";
const PORT: u16 = 8008;
const BRIDGE_PORT: u16 = 9898;

/// One test's plane: a `restricted` namespace, both operators watching it, and the harness's
/// network namespace. Bridges are deleted while their operator runs (their finalizers need it).
struct Handshake {
    client: Client,
    ns: TestNamespace,
    synapse_operator: OperatorProcess,
    bridge_operator: OperatorProcess,
}

impl Handshake {
    async fn start(prefix: &str) -> Self {
        let client = e2e::client().await;
        e2e::operators::install_crds(&client).await;
        let ns = restricted_namespace(&client, prefix).await;
        let synapse_operator = start_operator(&ns.name, "info", "synapse").await;
        let mut bridge_operator = OperatorProcess::builder("heisenbridge-operator", &ns.name)
            .label("bridge")
            .start();
        bridge_operator.wait_ready(TIMEOUT).await;
        Self {
            client,
            ns,
            synapse_operator,
            bridge_operator,
        }
    }

    fn ns(&self) -> &str {
        &self.ns.name
    }

    fn synapses(&self) -> Api<DynamicObject> {
        synapses(&self.client, self.ns())
    }

    fn bridges(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            self.ns(),
            &ApiResource::from_gvk(&GroupVersionKind::gvk(
                "synapse.opdev.io",
                "v1alpha1",
                "Heisenbridge",
            )),
        )
    }

    async fn create_bridge(&self, name: &str, spec: Value) {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a Heisenbridge");
        self.bridges()
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create Heisenbridge {name}: {e}"));
    }

    /// Waits until the bridge's conditions are `ready` and `registered`; returns it.
    async fn wait_bridge(
        &self,
        name: &str,
        ready: (&str, &str),
        registered: (&str, &str),
    ) -> Value {
        let bridges = self.bridges();
        let mut last = Value::Null;
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(Some(object)) = bridges.get_opt(name).await {
                last = serde_json::to_value(object).expect("serialise");
                let state = |type_| condition_state(&last, type_);
                if state("Ready") == (ready.0.into(), ready.1.into())
                    && state("Registered") == (registered.0.into(), registered.1.into())
                {
                    return last;
                }
            }
            assert!(
                started.elapsed() < TIMEOUT * 2,
                "timed out waiting for Heisenbridge {name}: Ready={ready:?} \
                 Registered={registered:?}; last status: {:#}",
                last["status"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The bridge's registration file, parsed.
    async fn registration(&self, bridge: &str) -> Value {
        let secret: Secret = get(
            &self.client,
            self.ns(),
            &format!("{bridge}-heisenbridge-registration"),
        )
        .await;
        let text = secret_text(&secret)
            .remove("registration.yaml")
            .expect("registration.yaml");
        serde_json::from_str(&text).expect("the registration is JSON")
    }

    async fn delete_bridge(&self, name: &str) {
        let bridges = self.bridges();
        bridges
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete Heisenbridge {name}: {e}"));
        wait_for(
            TIMEOUT,
            &format!("Heisenbridge {name} to be gone"),
            || async { bridges.get_opt(name).await.ok()?.is_none().then_some(()) },
        )
        .await;
    }

    async fn finish(mut self) {
        let bridges = self.bridges();
        for bridge in bridges
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
        {
            self.delete_bridge(&bridge.metadata.name.unwrap_or_default())
                .await;
        }
        self.synapse_operator.assert_running();
        self.bridge_operator.assert_running();
        assert_eq!(
            self.bridge_operator
                .metric("matrix_operator_reconciliation_errors_total"),
            Some(0.0)
        );
        e2e::pod_harness::forget_claims(self.ns()).expect("forget the claim data");
        drop(self.synapse_operator);
        drop(self.bridge_operator);
        self.ns.delete().await;
    }
}

/// Removes the harness's claim data of a namespace when the test ends, passed or not.
struct ForgetClaims(String);

impl Drop for ForgetClaims {
    fn drop(&mut self) {
        let _ = e2e::pod_harness::forget_claims(&self.0);
    }
}

fn values(server_name: &str) -> Value {
    json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}})
}

/// The Synapse once it is running with exactly `expected` app services (source name, state).
async fn wait_app_services(h: &Handshake, synapse: &str, expected: &[(&str, &str)]) -> Value {
    wait_synapse(
        &h.synapses(),
        synapse,
        &format!("running with app services {expected:?}"),
        |s| {
            let listed: Vec<(String, String)> = s["status"]["appServices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        a["source"]["name"].as_str().unwrap_or_default().to_owned(),
                        a["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let wanted: Vec<(String, String)> = expected
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect();
            is_running(s) && listed == wanted
        },
    )
    .await
}

/// Registers `user` through Synapse's shared-secret admin API with the secret the
/// synapse-operator generated; returns the user's access token.
async fn register_user(h: &Handshake, synapse: &PodProcess, name: &str, user: &str) -> String {
    let secret: Secret = get(&h.client, h.ns(), &format!("{name}-secrets")).await;
    let shared = secret_text(&secret)
        .remove("registration_shared_secret")
        .expect("the registration shared secret");
    let path = "/_synapse/admin/v1/register";
    let nonce = synapse
        .http_get(PORT, path)
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"))["nonce"]
        .as_str()
        .expect("a nonce")
        .to_owned();
    let password = "correct horse battery staple";
    let mac = hmac_sha1_hex(
        shared.trim(),
        format!("{nonce}\0{user}\0{password}\0notadmin").as_bytes(),
    );
    let body = synapse
        .http(Request::post(PORT, path).json(&json!({
            "nonce": nonce, "username": user, "password": password, "admin": false, "mac": mac,
        })))
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("registration of {user} refused: {body}"))
        .to_owned()
}

/// `whoami` with a bearer token: the status code and the answer.
async fn whoami(synapse: &PodProcess, token: &str) -> (u16, Value) {
    let response = synapse
        .http(
            Request::get(PORT, "/_matrix/client/v3/account/whoami")
                .header("Authorization", &format!("Bearer {token}")),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status;
    (status, response.json().unwrap_or(Value::Null))
}

#[tokio::test]
async fn synapse_and_heisenbridge_connect_and_part() {
    let h = Handshake::start("as-connect").await;
    let _forget = ForgetClaims(h.ns().to_owned());
    let owner = format!("@alice:{SERVER}");
    create_synapse(&h.synapses(), "hs", values(SERVER)).await;
    h.create_bridge(
        "irc",
        json!({"synapse": {"name": "hs"}, "owner": owner, "verboseLevel": 1}),
    )
    .await;

    // The operators' handshake: Synapse lists the registration, the bridge sees it live.
    let bridge = h
        .wait_bridge("irc", ("True", "Running"), ("True", "Registered"))
        .await;
    assert_eq!(bridge["status"]["state"], "RUNNING");
    let synapse = wait_app_services(&h, "hs", &[("irc", "registered")]).await;
    let entry = &synapse["status"]["appServices"][0];
    assert_eq!(entry["id"], "heisenbridge");
    assert_eq!(
        entry["source"],
        json!({"kind": "Heisenbridge", "namespace": h.ns(), "name": "irc"})
    );
    assert_eq!(
        synapse["status"]["bridges"]["heisenbridge"],
        json!({"enabled": true, "name": "irc"})
    );
    let overlay = config_file(&h.client, h.ns(), "hs", "operator-overlay.yaml").await;
    assert!(overlay.contains("heisenbridge-irc"), "{overlay}");
    let as_token = h.registration("irc").await["as_token"]
        .as_str()
        .expect("an as_token")
        .to_owned();

    // Both programs, from their Pods' files, in one network namespace.
    let mut scenario = Scenario::new("appservice-handshake").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(h.ns(), "hs");
    scenario.add_service(h.ns(), "irc-heisenbridge");
    let synapse_process = boot_synapse(&scenario, &h.client, h.ns(), "hs", PORT).await;
    let alice = register_user(&h, &synapse_process, "hs", "alice").await;
    let mut heisenbridge = scenario
        .run_deployment(&h.client, h.ns(), "irc-heisenbridge", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    heisenbridge
        .wait_for_log("bridge is now running", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    heisenbridge
        .wait_http_ok(BRIDGE_PORT, "/_matrix/mau/live", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let (status, me) = whoami(&synapse_process, &as_token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user_id"], format!("@heisenbridge:{SERVER}"));

    // Synapse reaches the bridge at the registration's url (the Service name).
    let ping = synapse_process
        .http(
            Request::post(PORT, "/_matrix/client/v1/appservice/heisenbridge/ping")
                .header("Authorization", &format!("Bearer {as_token}"))
                .json(&json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ping.status, 200, "{}", ping.text());

    // The owner is invited to the bridge's control room. Incremental syncs: Synapse caches an
    // initial sync's answer for a while.
    let mut since = String::new();
    let started = tokio::time::Instant::now();
    let invite = loop {
        let path = format!("/_matrix/client/v3/sync?timeout=1000{since}");
        let response = synapse_process
            .http(Request::get(PORT, &path).header("Authorization", &format!("Bearer {alice}")))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let sync = response
            .json()
            .unwrap_or_else(|e| panic!("{e}: {}", response.text()));
        if let Some(invite) = sync["rooms"]["invite"]
            .as_object()
            .and_then(|invites| invites.values().next())
        {
            break invite.clone();
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no control-room invite for the owner; last sync: {sync:#}"
        );
        since = format!(
            "&since={}",
            sync["next_batch"].as_str().expect("next_batch")
        );
    };
    let inviter = invite["invite_state"]["events"]
        .as_array()
        .expect("invite state")
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == owner.as_str())
        .map(|e| e["sender"].clone());
    assert_eq!(
        inviter,
        Some(json!(format!("@heisenbridge:{SERVER}"))),
        "{invite}"
    );
    drop(heisenbridge);
    drop(synapse_process);

    // The bridge goes: its registration leaves Synapse's next Pod.
    h.delete_bridge("irc").await;
    let synapse = wait_app_services(&h, "hs", &[]).await;
    assert!(
        !synapse["metadata"]["annotations"]
            .as_object()
            .is_some_and(|a| a.keys().any(|k| k.contains("appservice.synapse.opdev.io"))),
        "{}",
        synapse["metadata"]
    );
    let overlay = config_file(&h.client, h.ns(), "hs", "operator-overlay.yaml").await;
    assert!(!overlay.contains("heisenbridge-irc"), "{overlay}");
    let synapse_process = boot_synapse(&scenario, &h.client, h.ns(), "hs", PORT).await;
    let root = format!("/proc/{}/root", synapse_process.pid());
    assert!(
        !std::path::Path::new(&format!("{root}/appservices/heisenbridge-irc")).exists(),
        "the registration is no longer mounted"
    );
    let (status, answer) = whoami(&synapse_process, &as_token).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["errcode"], "M_UNKNOWN_TOKEN");
    drop(synapse_process);
    drop(scenario);
    h.finish().await;
}

#[tokio::test]
async fn a_conflicting_second_registration_is_left_out() {
    let h = Handshake::start("as-conflict").await;
    let _forget = ForgetClaims(h.ns().to_owned());
    create_synapse(&h.synapses(), "hs", values(SERVER)).await;
    h.create_bridge("first", json!({"synapse": {"name": "hs"}}))
        .await;
    h.wait_bridge("first", ("True", "Running"), ("True", "Registered"))
        .await;

    // A second default bridge: same id, same users namespace.
    h.create_bridge("second", json!({"synapse": {"name": "hs"}}))
        .await;
    let second = h
        .wait_bridge(
            "second",
            ("True", "Running"),
            ("False", "RegistrationRejected"),
        )
        .await;
    let message = second["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Registered"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("already used"), "{message}");
    assert_eq!(second["status"]["state"], "FAILED");
    wait_app_services(&h, "hs", &[("first", "registered"), ("second", "rejected")]).await;
    h.wait_bridge("first", ("True", "Running"), ("True", "Registered"))
        .await;

    // Synapse boots from its Pod's files with the first registration only.
    let token = |r: Value| r["as_token"].as_str().expect("as_token").to_owned();
    let first = token(h.registration("first").await);
    let second = token(h.registration("second").await);
    assert_ne!(first, second, "each bridge has its own tokens");
    let mut scenario = Scenario::new("appservice-conflict").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(h.ns(), "hs");
    let synapse_process = boot_synapse(&scenario, &h.client, h.ns(), "hs", PORT).await;
    let (status, me) = whoami(&synapse_process, &first).await;
    assert_eq!(
        (status, me["user_id"].clone()),
        (200, json!(format!("@heisenbridge:{SERVER}")))
    );
    let (status, answer) = whoami(&synapse_process, &second).await;
    assert_eq!(status, 401, "{answer}");
    drop(synapse_process);
    drop(scenario);
    h.finish().await;
}
