//! The synapse-operator against the local plane (issue 4): each test has its own namespace, which
//! enforces Pod Security `restricted`, and its own operator process watching only that
//! namespace. Synapse itself runs for real through the pod harness, from exactly the objects the
//! operator wrote. Bad input is in `synapse_bad_input.rs`.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), root and `hack/python-env`.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::operator_process::OperatorProcess;
use e2e::pod_harness::{PodProcess, Request, Scenario};
use e2e::wait_for;
use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};
use synapse_support::*;

/// The signing key file line: key id `a_` and four alphanumerics, then the unpadded base64 of a
/// 32-byte seed (43 characters).
fn assert_signing_key_format(line: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 3, "signing key line {} parts", parts.len());
    assert_eq!(parts[0], "ed25519");
    let key_id = parts[1];
    assert!(
        key_id.len() == 6
            && key_id.starts_with("a_")
            && key_id[2..].chars().all(|c| c.is_ascii_alphanumeric()),
        "key id {key_id:?}"
    );
    let seed = parts[2];
    assert_eq!(seed.len(), 43, "unpadded base64 of 32 bytes");
    assert!(
        seed.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/'),
        "standard base64 without padding"
    );
    // The last character carries 2 bits of the 32nd byte and four zero bits.
    assert!(
        "AEIMQUYcgkosw048".contains(seed.chars().last().expect("non-empty")),
        "a canonical encoding of exactly 32 bytes"
    );
    key_id.to_owned()
}

fn assert_token_format(value: &str) {
    assert_eq!(value.len(), 64, "64 characters");
    assert!(
        value.chars().all(|c| c.is_ascii_alphanumeric()),
        "alphanumeric"
    );
}

/// Registers an admin through Synapse's shared-secret admin API: only the secret Synapse really
/// loaded gives a valid MAC. Returns the new user's access token.
async fn register_with_shared_secret(synapse: &PodProcess, port: u16, secret: &str) -> String {
    let path = "/_synapse/admin/v1/register";
    let nonce = synapse
        .http_get(port, path)
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"))["nonce"]
        .as_str()
        .expect("a nonce")
        .to_owned();
    let (user, password) = ("operator-e2e-admin", "correct horse battery staple");
    let message = format!("{nonce}\0{user}\0{password}\0admin");
    let mac = hmac_sha1_hex(secret, message.as_bytes());
    let response = synapse
        .http(Request::post(port, path).json(&json!({
            "nonce": nonce, "username": user, "password": password, "admin": true, "mac": mac,
        })))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let body = response.json().unwrap_or_else(|e| panic!("{e}"));
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("shared-secret registration refused: {}", body["errcode"]))
        .to_owned()
}

/// `whoami` with a bearer token: the Matrix user ID it belongs to.
async fn whoami(synapse: &PodProcess, port: u16, token: &str) -> Value {
    synapse
        .http(
            Request::get(port, "/_matrix/client/v3/account/whoami")
                .header("Authorization", &format!("Bearer {token}")),
        )
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Waits for Synapse's last start-up step (after the background tasks, phone-home among them,
/// were scheduled).
async fn wait_started(synapse: &mut PodProcess) {
    synapse
        .wait_for_log("garbage collector: Freezing", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

const PHONE_HOME: &str = "Scheduling stats reporting";

fn parse_yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

/// Every version of a Synapse the API server reports, from a watch started before the Synapse
/// exists (a watch sees every write, so no transient status is missed).
struct History {
    seen: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl History {
    /// Starts the watch and returns once its initial list is done, so nothing written afterwards
    /// is missed.
    async fn record(api: Api<DynamicObject>, name: &str) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let (listed, on_listed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut listed = Some(listed);
            let mut stream = watcher(api, config).boxed();
            while let Some(Ok(event)) = stream.next().await {
                match event {
                    watcher::Event::InitDone => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                    }
                    watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                        let value = serde_json::to_value(object).expect("serialise");
                        sink.lock().expect("history lock").push(value);
                    }
                    watcher::Event::Init | watcher::Event::Delete(_) => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), on_listed)
            .await
            .expect("the history watch lists within 30 s")
            .expect("the history watch runs");
        Self { seen, task }
    }

    /// What the watch has seen once it has seen a version matching `until` (the watch may
    /// deliver an event after the test read the same version through a GET).
    async fn seen_until(&self, what: &str, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        wait_for(Duration::from_secs(30), what, || {
            let seen = self.seen.lock().expect("history lock").clone();
            let found = seen.iter().any(&until);
            async move { found.then_some(seen) }
        })
        .await
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sets the Ready condition of a pod as a kubelet would after its readiness probe (kwok leaves
/// a running pod's conditions alone).
async fn set_pod_ready(client: &Client, namespace: &str, pod: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(
            pod,
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [
                {"type": "Ready", "status": status},
                {"type": "ContainersReady", "status": status},
            ]}})),
        )
        .await
        .unwrap_or_else(|e| panic!("set pod {pod} Ready={status}: {e}"));
}

/// The one live pod of a Deployment.
async fn deployment_pod_name(client: &Client, namespace: &str, deployment: &Deployment) -> String {
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .expect("a selector")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods: Vec<Pod> = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert_eq!(pods.len(), 1, "one Synapse pod");
    pods[0].name_any()
}

/// The Pod Security admission of the namespace really refuses a pod that is not `restricted`.
async fn assert_restricted_is_enforced(client: &Client, namespace: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "not-restricted"},
        "spec": {"containers": [{"name": "c", "image": "matrixdotorg/synapse:v1.163.2"}]},
    }))
    .expect("a pod");
    let refused = Api::<Pod>::namespaced(client.clone(), namespace)
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &pod,
        )
        .await
        .expect_err("a pod without a securityContext must be refused");
    assert!(
        refused.to_string().contains("violates PodSecurity"),
        "{refused}"
    );
}

const USER_FILE: &str = include_str!("../testdata/synapse-operator/homeserver.yaml");

#[tokio::test]
async fn values_mode_renders_deploys_and_boots_synapse() {
    let plane = Plane::start("syn-values", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    let history = History::record(api.clone(), "matrix").await;
    create_synapse(
        &api,
        "matrix",
        json!({"homeserver": {"values": {
            "serverName": "values.example.org", "reportStats": true, "enableRegistration": true,
        }}}),
    )
    .await;
    let synapse = wait_running(&api, "matrix").await;

    // Status (item 6).
    let status = &synapse["status"];
    assert_eq!(
        status["homeserverConfiguration"],
        json!({"serverName": "values.example.org", "reportStats": true, "registrationEnabled": true})
    );
    assert_eq!(status["clientUrl"], format!("http://matrix.{ns}.svc:8008"));
    assert_eq!(
        condition_state(&synapse, "Progressing"),
        ("False".into(), "RolloutComplete".into())
    );
    assert!(status["reason"].is_null(), "no failure reason: {status}");
    let seen = history
        .seen_until("the watch to see Ready", |s| {
            condition_state(s, "Ready").0 == "True"
        })
        .await;
    let first_ready = seen
        .iter()
        .position(|s| condition_state(s, "Ready").0 == "True")
        .expect("the watch saw Ready");
    assert!(
        seen[..first_ready].iter().any(|s| {
            condition_state(s, "Progressing") == ("True".into(), "RollingOut".into())
                && condition_state(s, "Ready") == ("False".into(), "RollingOut".into())
        }),
        "Progressing=True while rolling out, before Ready: {:#?}",
        seen.iter().map(|s| &s["status"]).collect::<Vec<_>>()
    );
    wait_event(&client, &ns, "matrix", "Normal", "Running").await;

    // The rendered base file (item 1), the overlay (item 3) and the log config.
    let base = parse_yaml(&config_file(&client, &ns, "matrix", "homeserver.yaml").await);
    assert_eq!(base["server_name"], "values.example.org");
    assert_eq!(base["report_stats"], true);
    assert_eq!(base["enable_registration"], true);
    assert_eq!(base["enable_registration_without_verification"], true);
    let listeners = base["listeners"].as_array().expect("listeners");
    assert_eq!(listeners.len(), 1, "one listener: {listeners:?}");
    let listener = &listeners[0];
    assert_eq!(
        (
            &listener["port"],
            &listener["type"],
            &listener["x_forwarded"]
        ),
        (&json!(8008), &json!("http"), &json!(true))
    );
    let names: Vec<&Value> = listener["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .flat_map(|r| r["names"].as_array().expect("names"))
        .collect();
    assert!(names.contains(&&json!("client")) && names.contains(&&json!("federation")));
    assert_eq!(base["database"]["name"], "sqlite3");
    let db_path = base["database"]["args"]["database"]
        .as_str()
        .expect("a database path");
    assert!(db_path.starts_with("/data/"), "SQLite on the data volume");
    let overlay = parse_yaml(&config_file(&client, &ns, "matrix", "operator-overlay.yaml").await);
    for (key, value) in [
        ("pid_file", "/data/homeserver.pid"),
        ("media_store_path", "/data/media_store"),
        ("signing_key_path", "/secrets/signing.key"),
        ("log_config", "/config/log.config"),
        ("macaroon_secret_key_path", "/secrets/macaroon_secret_key"),
        (
            "registration_shared_secret_path",
            "/secrets/registration_shared_secret",
        ),
        ("form_secret_path", "/secrets/form_secret"),
    ] {
        assert_eq!(overlay[key], value, "overlay {key}");
    }
    assert_eq!(
        overlay["app_service_config_files"],
        json!([]),
        "no app services before any bridge registers"
    );
    let log_config = parse_yaml(&config_file(&client, &ns, "matrix", "log.config").await);
    assert_eq!(log_config["root"]["handlers"], json!(["console"]));
    assert_eq!(
        log_config["handlers"]["console"]["class"],
        "logging.StreamHandler"
    );
    let config: Secret = get(&client, &ns, "matrix-config").await;
    assert_eq!(
        secret_text(&config).keys().collect::<Vec<_>>(),
        ["homeserver.yaml", "log.config", "operator-overlay.yaml"]
    );

    // The workload (item 5).
    let uid = synapse["metadata"]["uid"].as_str().expect("a uid");
    let owned_by_synapse = |meta: &kube::api::ObjectMeta| {
        let owners = meta.owner_references.clone().unwrap_or_default();
        owners.len() == 1 && owners[0].uid == uid && owners[0].controller == Some(true)
    };
    let deployment: Deployment = get(&client, &ns, "matrix").await;
    assert!(owned_by_synapse(&deployment.metadata));
    assert!(owned_by_synapse(&config.metadata));
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    for (key, value) in [
        ("app.kubernetes.io/name", "synapse"),
        ("app.kubernetes.io/instance", "matrix"),
        ("app.kubernetes.io/managed-by", OPERATOR),
    ] {
        assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
    }
    let spec = deployment.spec.clone().expect("a Deployment spec");
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(
        spec.strategy.and_then(|s| s.type_).as_deref(),
        Some("Recreate")
    );
    let template = spec.template;
    let hash = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(HASH_ANNOTATION))
        .expect("the config hash annotation");
    assert!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "a SHA-256: {hash}"
    );
    let pod_spec = template.spec.expect("a pod spec");
    let pod_security = pod_spec
        .security_context
        .clone()
        .expect("pod securityContext");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(991));
    assert_eq!(
        pod_security.seccomp_profile.map(|p| p.type_).as_deref(),
        Some("RuntimeDefault")
    );
    let container = &pod_spec.containers[0];
    assert_eq!(
        container.command.clone().unwrap_or_default(),
        [
            "python",
            "-m",
            "synapse.app.homeserver",
            "--config-path",
            "/config/homeserver.yaml",
            "--config-path",
            "/config/operator-overlay.yaml"
        ]
    );
    let security = container.security_context.clone().expect("securityContext");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let ports: Vec<_> = (container.ports.iter().flatten())
        .map(|p| (p.name.as_deref(), p.container_port))
        .collect();
    assert_eq!(ports, [(Some("http"), 8008), (Some("metrics"), 9000)]);
    for (which, probe) in [
        ("startup", &container.startup_probe),
        ("readiness", &container.readiness_probe),
        ("liveness", &container.liveness_probe),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.clone())
            .unwrap_or_else(|| panic!("{which} probe"));
        assert_eq!(get.path.as_deref(), Some("/health"), "{which}");
        assert_eq!(
            serde_json::to_value(&get.port).expect("port"),
            json!("http"),
            "{which} probe on the named port"
        );
    }
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    assert!(
        requests.contains_key("cpu") && requests.contains_key("memory"),
        "default requests: {requests:?}"
    );
    let service: Service = get(&client, &ns, "matrix").await;
    assert!(owned_by_synapse(&service.metadata));
    let service_spec = service.spec.expect("a Service spec");
    let service_port = &service_spec.ports.expect("ports")[0];
    assert_eq!(
        (service_port.name.as_deref(), service_port.port),
        (Some("http"), 8008)
    );
    assert_eq!(
        service_spec.selector.as_ref(),
        template.metadata.as_ref().and_then(|m| m.labels.as_ref()),
        "the Service selects the Synapse pod"
    );
    let claim: PersistentVolumeClaim = get(&client, &ns, "matrix-data").await;
    assert_eq!(claim.metadata.owner_references.unwrap_or_default(), []);
    let claim_spec = claim.spec.expect("a PVC spec");
    assert_eq!(claim_spec.access_modes, Some(vec!["ReadWriteOnce".into()]));
    assert_eq!(
        claim_spec
            .resources
            .and_then(|r| r.requests)
            .expect("requests")["storage"]
            .0,
        "10Gi"
    );

    // The pod was admitted under `restricted`, which this namespace really enforces.
    assert_restricted_is_enforced(&client, &ns).await;

    // Real Synapse from exactly these objects ("the proof that counts").
    let mut scenario = Scenario::new("values").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns, "matrix");
    let image = container.image.clone().expect("an image");
    let program = scenario
        .programs()
        .resolve(&image)
        .unwrap_or_else(|e| panic!("the image is the pinned Synapse: {e}"));
    assert_eq!(image, format!("matrixdotorg/synapse:v{}", program.version));
    let mut running = boot_synapse(&scenario, &client, &ns, "matrix", 8008).await;
    let root = format!("/proc/{}/root", running.pid());
    for key in ["homeserver.yaml", "operator-overlay.yaml", "log.config"] {
        let mounted = std::fs::read_to_string(format!("{root}/config/{key}"))
            .unwrap_or_else(|e| panic!("read /config/{key}: {e}"));
        assert_eq!(mounted, config_file(&client, &ns, "matrix", key).await);
    }
    let secrets: Secret = get(&client, &ns, "matrix-secrets").await;
    let values = secret_text(&secrets);
    let key_id = assert_signing_key_format(&values["signing.key"]);
    let keys = running
        .http_get(8008, "/_matrix/key/v2/server")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys["server_name"], "values.example.org");
    assert!(
        keys["verify_keys"]
            .get(format!("ed25519:{key_id}"))
            .is_some(),
        "Synapse signs with the key of the Secret: {keys}"
    );
    // The registration shared secret Synapse uses is the Secret's, read through its _path.
    let token =
        register_with_shared_secret(&running, 8008, values["registration_shared_secret"].trim())
            .await;
    assert_eq!(
        whoami(&running, 8008, &token).await["user_id"],
        "@operator-e2e-admin:values.example.org"
    );
    // Registration is open without verification: the only flow is the dummy stage.
    let register = running
        .http(Request::post(8008, "/_matrix/client/v3/register").json(&json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let flows = register.json().unwrap_or_else(|e| panic!("{e}"))["flows"].clone();
    assert_eq!(flows, json!([{"stages": ["m.login.dummy"]}]));
    wait_started(&mut running).await;
    assert!(
        running.output().contains(PHONE_HOME),
        "reportStats: true schedules phone-home (the control for report_stats: no)"
    );
    let data = running.volume_dir("data").expect("the claim").to_path_buf();
    assert!(data.join("homeserver.db").is_file(), "SQLite on the PVC");
    assert!(data.join("media_store").is_dir(), "media on the PVC");
    drop(running);

    // Ready follows the pod's readiness (a failing readiness probe) and comes back with it.
    let pod = deployment_pod_name(&client, &ns, &deployment).await;
    set_pod_ready(&client, &ns, &pod, false).await;
    let unready = wait_synapse(
        &api,
        "matrix",
        "Ready=False while the pod is not ready",
        |s| condition_state(s, "Ready") == ("False".into(), "RollingOut".into()),
    )
    .await;
    assert_eq!(
        condition_state(&unready, "Progressing"),
        ("True".into(), "RollingOut".into())
    );
    assert_ne!(unready["status"]["state"], "RUNNING");
    set_pod_ready(&client, &ns, &pod, true).await;
    wait_running(&api, "matrix").await;

    // No generated secret leaked anywhere (Tests: the scan).
    assert_no_secret_leak(
        &client,
        &ns,
        &secret_needles(&secrets),
        &plane.operator.log_text(),
    )
    .await;
    assert_eq!(
        plane
            .operator
            .metric("matrix_operator_reconciliation_errors_total"),
        Some(0.0)
    );
    drop(history);
    drop(scenario);
    plane.finish().await;
}

/// Writes the user's own app-service registration onto the data volume, the one place in the
/// Synapse pod a user can put a file (the Synapse spec has no extra mounts).
fn seed_user_registration(namespace: &str, claim: &PersistentVolumeClaim, as_token: &str) {
    let uid = claim.metadata.uid.as_deref().expect("a claim uid");
    let dir = e2e::pod_harness::materialize::claim_dir(
        &e2e::pod_harness::state_dir().join("claims"),
        namespace,
        &claim.name_any(),
        uid,
    )
    .join("appservices");
    std::fs::create_dir_all(&dir).expect("create the registration directory");
    let registration = format!(
        "# The user's own bridge\nid: user-bridge\nurl: null\nas_token: {as_token}\n\
         hs_token: {}\nsender_localpart: userbridge\nrate_limited: no\nnamespaces:\n  users:\n    \
         - regex: '@userbridge_.*:chat\\.example\\.org'\n      exclusive: yes\n  aliases: []\n  \
         rooms: []\n",
        random_token()
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(dir.join("user-bridge.yaml"))
        .and_then(|mut f| f.write_all(registration.as_bytes()))
        .expect("write the registration");
}

/// What a bridge operator does to register with a Synapse: its registration in a Secret
/// labelled for that Synapse, announced by an annotation on the Synapse under its own field
/// manager.
async fn announce_bridge(
    client: &Client,
    namespace: &str,
    synapse: &str,
    as_token: &str,
    hs_token: &str,
) {
    let registration = format!(
        "id: heisenbridge\nurl: http://irc-bridge:9898\nas_token: {as_token}\nhs_token: {hs_token}\n\
         rate_limited: false\nsender_localpart: heisenbridge\nnamespaces:\n  users:\n  \
         - regex: '@irc_.*'\n    exclusive: true\n  aliases: []\n  rooms: []\n"
    );
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {
            "name": "irc-registration",
            "labels": {"synapse.opdev.io/synapse": synapse},
        },
        "stringData": {"registration.yaml": registration},
    }))
    .expect("a Secret");
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the registration Secret");
    synapse_support::synapses(client, namespace)
        .patch(
            synapse,
            &PatchParams::apply("e2e-bridge"),
            &Patch::Apply(json!({
                "apiVersion": "synapse.opdev.io/v1alpha1",
                "kind": "Synapse",
                "metadata": {
                    "name": synapse,
                    "annotations": {"heisenbridge.appservice.synapse.opdev.io/irc": "irc-registration"},
                },
            })),
        )
        .await
        .expect("announce the registration");
}

#[tokio::test]
async fn config_map_mode_keeps_the_users_file_and_follows_its_edits() {
    let plane = Plane::start("syn-cm", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    let input = create_config_map(
        &client,
        &ns,
        "chat-config",
        &[("homeserver.yaml", USER_FILE)],
    )
    .await;
    // A spec image override: the other official image of the same release.
    create_synapse(
        &api,
        "chat",
        json!({
            "homeserver": {"configMap": {"name": "chat-config"}},
            "image": "ghcr.io/element-hq/synapse:v1.163.2",
        }),
    )
    .await;
    let synapse = wait_running(&api, "chat").await;

    // Read with YAML 1.1 meaning: `no` and `off` are false.
    assert_eq!(
        synapse["status"]["homeserverConfiguration"],
        json!({"serverName": "chat.example.org", "reportStats": false, "registrationEnabled": false})
    );
    // Service, probes and client URL follow the user's listener port.
    assert_eq!(
        synapse["status"]["clientUrl"],
        format!("http://chat.{ns}.svc:8090")
    );
    let deployment: Deployment = get(&client, &ns, "chat").await;
    let container = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers[0].clone())
        .expect("a container");
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/element-hq/synapse:v1.163.2")
    );
    let port = &container.ports.clone().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("http"), 8090)
    );
    let probe_port = container
        .readiness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .map(|g| serde_json::to_value(&g.port).expect("port"));
    assert_eq!(probe_port, Some(json!("http")), "probes use the named port");
    let service: Service = get(&client, &ns, "chat").await;
    let service_port = &service.spec.and_then(|s| s.ports).expect("ports")[0];
    assert_eq!(
        (service_port.name.as_deref(), service_port.port),
        (Some("http"), 8090)
    );

    // The user's file verbatim; the overlay beside it.
    assert_eq!(
        config_file(&client, &ns, "chat", "homeserver.yaml").await,
        USER_FILE
    );
    let overlay = parse_yaml(&config_file(&client, &ns, "chat", "operator-overlay.yaml").await);
    assert_eq!(
        overlay["app_service_config_files"],
        json!(["/data/appservices/user-bridge.yaml"]),
        "the user's own entries, first"
    );
    for inline in ["macaroon_secret_key_path", "form_secret_path", "database"] {
        assert!(
            overlay.get(inline).is_none(),
            "the user set {inline} themselves: {overlay}"
        );
    }
    assert_eq!(
        overlay["registration_shared_secret_path"],
        "/secrets/registration_shared_secret"
    );
    // The input is never written by the operator.
    let now: ConfigMap = get(&client, &ns, "chat-config").await;
    assert_eq!(
        now.metadata.resource_version,
        input.metadata.resource_version
    );
    assert!(
        now.metadata
            .managed_fields
            .iter()
            .flatten()
            .all(|m| m.manager.as_deref() != Some(OPERATOR)),
        "the operator manages no field of the input"
    );

    // A bridge announces its registration (DESIGN section 5): it is listed after the user's
    // own entry, which stays.
    let (bridge_as_token, bridge_hs_token) = (random_token(), random_token());
    announce_bridge(&client, &ns, "chat", &bridge_as_token, &bridge_hs_token).await;
    wait_synapse(&api, "chat", "the bridge registered", |s| {
        is_running(s) && s["status"]["appServices"][0]["state"] == "registered"
    })
    .await;
    let overlay = parse_yaml(&config_file(&client, &ns, "chat", "operator-overlay.yaml").await);
    let files = overlay["app_service_config_files"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(
        files[0], "/data/appservices/user-bridge.yaml",
        "the user's first"
    );
    let bridge_file = files[1].as_str().expect("a path");
    assert!(
        bridge_file.starts_with("/appservices/") && bridge_file.ends_with("/registration.yaml"),
        "{bridge_file}"
    );

    // Real Synapse from the user's file: the user's port, database and app service, and the
    // bridge's.
    let claim: PersistentVolumeClaim = get(&client, &ns, "chat-data").await;
    let as_token = random_token();
    seed_user_registration(&ns, &claim, &as_token);
    let mut scenario = Scenario::new("configmap").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns, "chat");
    let mut running = boot_synapse(&scenario, &client, &ns, "chat", 8090).await;
    assert_eq!(
        whoami(&running, 8090, &as_token).await["user_id"],
        "@userbridge:chat.example.org",
        "Synapse loaded the user's own app service"
    );
    assert_eq!(
        whoami(&running, 8090, &bridge_as_token).await["user_id"],
        "@heisenbridge:chat.example.org",
        "Synapse loaded the bridge's app service"
    );
    let data = running.volume_dir("data").expect("the claim").to_path_buf();
    assert!(
        data.join("user-homeserver.db").is_file(),
        "the user's database section is used as written"
    );
    let register = running
        .http(Request::post(8090, "/_matrix/client/v3/register").json(&json!({})))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(register.status, 403, "enable_registration: off is off");
    // report_stats: no is false to Synapse: no phone-home, and its config reads False.
    wait_started(&mut running).await;
    assert!(
        !running.output().contains(PHONE_HOME),
        "report_stats: no must not schedule phone-home"
    );
    let read = |key: &'static str| {
        [
            "python",
            "-m",
            "synapse.config",
            "read",
            key,
            "-c",
            "/config/homeserver.yaml",
            "-c",
            "/config/operator-overlay.yaml",
        ]
    };
    let output = run_in_pod(
        &scenario,
        &client,
        &ns,
        "chat",
        &read("metrics.report_stats"),
    )
    .await;
    assert!(
        output.contains("metrics.report_stats: False"),
        "Synapse reads report_stats: no as False:\n{output}"
    );
    drop(running);

    // An edit of the input is noticed within seconds and rolled out.
    let current: Deployment = get(&client, &ns, "chat").await;
    let before_hash = template_hash(&current);
    let last_revision = *replica_sets(&client, &ns, &current)
        .await
        .keys()
        .max()
        .expect("a ReplicaSet");
    let edited = USER_FILE.replace("max_upload_size: 50M", "max_upload_size: 100M\n# edited");
    let edit_sent = Instant::now();
    let input =
        set_config_map_data(&client, &ns, "chat-config", &[("homeserver.yaml", &edited)]).await;
    let rolled: Deployment = wait_for(TIMEOUT, "the Deployment to roll", || async {
        let d: Deployment = get(&client, &ns, "chat").await;
        (template_hash(&d) != before_hash).then_some(d)
    })
    .await;
    let noticed = edit_sent.elapsed();
    eprintln!("input edit rolled into the Deployment after {noticed:?}");
    assert!(noticed < Duration::from_secs(10), "took {noticed:?}");
    assert_eq!(
        config_file(&client, &ns, "chat", "homeserver.yaml").await,
        edited
    );
    wait_for(TIMEOUT, "a new ReplicaSet", || async {
        let sets = replica_sets(&client, &ns, &rolled).await;
        sets.contains_key(&(last_revision + 1)).then_some(())
    })
    .await;
    wait_running(&api, "chat").await;
    let now: ConfigMap = get(&client, &ns, "chat-config").await;
    assert_eq!(
        now.metadata.resource_version, input.metadata.resource_version,
        "the operator never writes the input"
    );
    let rebooted = boot_synapse(&scenario, &client, &ns, "chat", 8090).await;
    drop(rebooted);
    let output = run_in_pod(
        &scenario,
        &client,
        &ns,
        "chat",
        &read("media.max_upload_size"),
    )
    .await;
    assert!(
        output.contains("media.max_upload_size: 104857600"),
        "the new pod runs the edited file:\n{output}"
    );

    let secrets: Secret = get(&client, &ns, "chat-secrets").await;
    let mut needles = secret_needles(&secrets);
    needles.extend([bridge_as_token, bridge_hs_token]);
    assert_no_secret_leak(&client, &ns, &needles, &plane.operator.log_text()).await;
    drop(scenario);
    plane.finish().await;
}

fn values_spec(server_name: &str) -> Value {
    json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}})
}

async fn secret_data(client: &Client, namespace: &str, name: &str) -> BTreeMap<String, String> {
    secret_text(&get::<Secret>(client, namespace, name).await)
}

fn owner_uids(meta: &kube::api::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|o| o.uid.clone())
        .collect()
}

#[tokio::test]
async fn generated_secrets_are_kept_across_restarts_changes_and_deletion() {
    let mut plane = Plane::start("syn-secrets", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    let mut keep_spec = values_spec("keep.example.org");
    keep_spec["storage"] = json!({"size": "2Gi", "storageClassName": "kwok-volume"});
    create_synapse(&api, "keep", keep_spec.clone()).await;
    let mut drop_spec = values_spec("drop.example.org");
    drop_spec["deletionPolicy"] = json!("Delete");
    create_synapse(&api, "drop", drop_spec).await;
    let mut switch_spec = values_spec("switch.example.org");
    switch_spec["deletionPolicy"] = json!("Delete");
    create_synapse(&api, "switch", switch_spec).await;
    let keep = wait_running(&api, "keep").await;
    let dropped = wait_running(&api, "drop").await;
    wait_running(&api, "switch").await;

    // Format, and two Synapses never share a secret.
    let keep_secret = secret_data(&client, &ns, "keep-secrets").await;
    let drop_secret = secret_data(&client, &ns, "drop-secrets").await;
    for data in [&keep_secret, &drop_secret] {
        assert_eq!(
            data.keys().collect::<Vec<_>>(),
            [
                "form_secret",
                "macaroon_secret_key",
                "registration_shared_secret",
                "signing.key"
            ]
        );
        assert_signing_key_format(&data["signing.key"]);
        for key in [
            "form_secret",
            "macaroon_secret_key",
            "registration_shared_secret",
        ] {
            assert_token_format(&data[key]);
        }
    }
    for (key, value) in &keep_secret {
        assert_ne!(value, &drop_secret[key], "{key} differs between Synapses");
        let seed = |s: &str| s.trim().rsplit(' ').next().expect("a value").to_owned();
        assert_ne!(seed(value), seed(&drop_secret[key]));
    }

    // Ownership: retained objects have no owner, Delete ones are owned by their Synapse.
    let keep_uid = keep["metadata"]["uid"].as_str().expect("uid").to_owned();
    let drop_uid = dropped["metadata"]["uid"].as_str().expect("uid").to_owned();
    let keep_claim: PersistentVolumeClaim = get(&client, &ns, "keep-data").await;
    let keep_secret_object: Secret = get(&client, &ns, "keep-secrets").await;
    assert!(owner_uids(&keep_claim.metadata).is_empty());
    assert!(owner_uids(&keep_secret_object.metadata).is_empty());
    let drop_claim: PersistentVolumeClaim = get(&client, &ns, "drop-data").await;
    assert_eq!(
        owner_uids(&drop_claim.metadata),
        std::slice::from_ref(&drop_uid)
    );
    assert_eq!(
        owner_uids(&get::<Secret>(&client, &ns, "drop-secrets").await.metadata),
        [drop_uid]
    );
    // Size and class as the spec asked.
    let claim_spec = keep_claim.spec.clone().expect("a PVC spec");
    assert_eq!(
        claim_spec.storage_class_name.as_deref(),
        Some("kwok-volume")
    );
    assert_eq!(
        claim_spec
            .resources
            .and_then(|r| r.requests)
            .expect("requests")["storage"]
            .0,
        "2Gi"
    );

    // An operator restart generates nothing new.
    let exit = plane.operator.stop();
    assert!(
        exit.success(),
        "the operator stops cleanly on SIGTERM: {exit}"
    );
    let log_before_restart = plane.operator.log_text();
    plane.operator = start_operator(&ns, "info", "restarted").await;
    wait_for(
        TIMEOUT,
        "the restarted operator to reconcile all three",
        || async {
            plane
                .operator
                .metric("matrix_operator_reconciliations_total")
                .filter(|n| *n >= 3.0)
        },
    )
    .await;
    let after_restart: Secret = get(&client, &ns, "keep-secrets").await;
    assert_eq!(secret_text(&after_restart), keep_secret);
    assert_eq!(
        after_restart.metadata.resource_version,
        keep_secret_object.metadata.resource_version
    );

    // A spec change rolls Synapse but keeps the secrets and the volume (a storage change is not
    // applied to an existing volume).
    let before: Deployment = get(&client, &ns, "keep").await;
    patch_spec(
        &api,
        "keep",
        json!({
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
            "storage": {"size": "5Gi"},
        }),
    )
    .await;
    wait_synapse(&api, "keep", "the spec change rolled out", |s| {
        is_running(s) && s["metadata"]["generation"] == 2
    })
    .await;
    let after: Deployment = get(&client, &ns, "keep").await;
    assert!(after.metadata.generation > before.metadata.generation);
    let requests = after
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers[0].resources.clone())
        .and_then(|r| r.requests)
        .expect("requests");
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(secret_data(&client, &ns, "keep-secrets").await, keep_secret);
    let claim_now: PersistentVolumeClaim = get(&client, &ns, "keep-data").await;
    assert_eq!(
        claim_now.metadata.uid, keep_claim.metadata.uid,
        "never recreated"
    );
    assert_eq!(
        claim_now
            .spec
            .and_then(|s| s.resources)
            .and_then(|r| r.requests)
            .expect("requests")["storage"]
            .0,
        "2Gi"
    );

    // The hash covers the mounted Secret: a removed key is regenerated (only that one) and
    // Synapse rolls.
    let hash_before = template_hash(&get::<Deployment>(&client, &ns, "keep").await);
    Api::<Secret>::namespaced(client.clone(), &ns)
        .patch(
            "keep-secrets",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([{"op": "remove", "path": "/data/form_secret"}]))
                    .expect("a JSON patch"),
            ),
        )
        .await
        .expect("remove form_secret");
    let repaired = wait_for(TIMEOUT, "form_secret to be regenerated", || async {
        let data = secret_data(&client, &ns, "keep-secrets").await;
        data.contains_key("form_secret").then_some(data)
    })
    .await;
    assert_ne!(repaired["form_secret"], keep_secret["form_secret"]);
    assert_token_format(&repaired["form_secret"]);
    for key in [
        "signing.key",
        "macaroon_secret_key",
        "registration_shared_secret",
    ] {
        assert_eq!(repaired[key], keep_secret[key], "{key} kept");
    }
    wait_for(
        TIMEOUT,
        "the Deployment to roll for the new Secret",
        || async {
            let d: Deployment = get(&client, &ns, "keep").await;
            (template_hash(&d) != hash_before).then_some(())
        },
    )
    .await;
    let keep_secret = repaired;

    // Switching a Synapse to Retain releases its data and secrets from the Synapse.
    patch_spec(&api, "switch", json!({"deletionPolicy": "Retain"})).await;
    wait_for(
        TIMEOUT,
        "switch's data and secrets without an owner",
        || async {
            let secret: Secret = get(&client, &ns, "switch-secrets").await;
            let claim: PersistentVolumeClaim = get(&client, &ns, "switch-data").await;
            (owner_uids(&secret.metadata).is_empty() && owner_uids(&claim.metadata).is_empty())
                .then_some(())
        },
    )
    .await;

    // Deleting Synapses: Retain keeps the PVC and the Secret, Delete lets the garbage
    // collector remove them.
    for name in ["keep", "drop", "switch"] {
        api.delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    wait_for(
        TIMEOUT,
        "the garbage collector to remove the owned objects",
        || async {
            let mut gone = true;
            for name in ["keep", "drop", "switch"] {
                gone &= get_opt::<Deployment>(&client, &ns, name).await.is_none();
                gone &= get_opt::<Secret>(&client, &ns, &format!("{name}-config"))
                    .await
                    .is_none();
            }
            gone &= get_opt::<Secret>(&client, &ns, "drop-secrets")
                .await
                .is_none();
            gone &= get_opt::<PersistentVolumeClaim>(&client, &ns, "drop-data")
                .await
                .is_none();
            gone.then_some(())
        },
    )
    .await;
    assert_eq!(secret_data(&client, &ns, "keep-secrets").await, keep_secret);
    let kept_claim: PersistentVolumeClaim = get(&client, &ns, "keep-data").await;
    assert_eq!(kept_claim.metadata.uid, keep_claim.metadata.uid);
    assert!(
        get_opt::<Secret>(&client, &ns, "switch-secrets")
            .await
            .is_some()
    );
    assert!(
        get_opt::<PersistentVolumeClaim>(&client, &ns, "switch-data")
            .await
            .is_some()
    );

    // A Synapse re-created with the same name finds its identity and data again.
    create_synapse(&api, "keep", keep_spec).await;
    let recreated = wait_running(&api, "keep").await;
    assert_ne!(recreated["metadata"]["uid"], json!(keep_uid));
    assert_eq!(secret_data(&client, &ns, "keep-secrets").await, keep_secret);
    let adopted: PersistentVolumeClaim = get(&client, &ns, "keep-data").await;
    assert_eq!(adopted.metadata.uid, keep_claim.metadata.uid);

    let needles: Vec<String> = [&keep_secret, &drop_secret]
        .iter()
        .flat_map(|d| d.values().map(|v| v.trim().to_owned()))
        .collect();
    let log = format!("{log_before_restart}\n{}", plane.operator.log_text());
    assert_no_secret_leak(&client, &ns, &needles, &log).await;
    plane.finish().await;
}

/// The resourceVersion of every object of the given Synapses plus the input ConfigMaps.
async fn resource_versions(
    client: &Client,
    namespace: &str,
    synapses: &[&str],
    config_maps: &[&str],
) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let api = synapse_support::synapses(client, namespace);
    for name in synapses {
        let synapse = api.get(name).await.expect("get the Synapse");
        versions.insert(
            format!("Synapse {name}"),
            synapse.resource_version().expect("rv"),
        );
        let rv = |meta: &kube::api::ObjectMeta| meta.resource_version.clone().expect("rv");
        let d: Deployment = get(client, namespace, name).await;
        versions.insert(format!("Deployment {name}"), rv(&d.metadata));
        let s: Service = get(client, namespace, name).await;
        versions.insert(format!("Service {name}"), rv(&s.metadata));
        for secret in [format!("{name}-config"), format!("{name}-secrets")] {
            let s: Secret = get(client, namespace, &secret).await;
            versions.insert(format!("Secret {secret}"), rv(&s.metadata));
        }
        let c: PersistentVolumeClaim = get(client, namespace, &format!("{name}-data")).await;
        versions.insert(format!("PVC {name}-data"), rv(&c.metadata));
    }
    for name in config_maps {
        let c: ConfigMap = get(client, namespace, name).await;
        versions.insert(format!("ConfigMap {name}"), rv_of(&c.metadata));
    }
    versions
}

fn rv_of(meta: &kube::api::ObjectMeta) -> String {
    meta.resource_version.clone().expect("rv")
}

/// The API requests the operator sent that could write (kube-client logs every request at
/// debug level with its method).
fn write_requests(log: &str) -> Vec<String> {
    requests(log)
        .into_iter()
        .filter(|(method, _)| method != "GET")
        .map(|(method, url)| format!("{method} {url}"))
        .collect()
}

fn requests(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "requesting")
        .filter_map(|entry| {
            let span = &entry["span"];
            Some((
                span["http.method"].as_str()?.to_owned(),
                span["http.url"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Waits until the operator's reconciliation count stays unchanged for `calm`; returns it.
async fn settled(operator: &OperatorProcess, calm: Duration) -> f64 {
    let count = || {
        operator
            .metric("matrix_operator_reconciliations_total")
            .expect("metrics")
    };
    let mut last = count();
    let mut since = Instant::now();
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= calm {
            return now;
        }
        assert!(started.elapsed() < TIMEOUT, "the operator never settled");
    }
}

#[tokio::test]
async fn steady_state_writes_nothing() {
    // kube-client's debug lines show every request the operator sends.
    let mut plane = Plane::start("syn-steady", "info,kube_client=debug").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    // `on` and `yes` are true under YAML 1.1.
    let user_file = "server_name: steady.example.org\nreport_stats: on\nenable_registration: yes\n\
                     enable_registration_without_verification: true\nlisteners:\n  - port: 8008\n    \
                     type: http\n    resources: [{names: [client]}]\n";
    create_config_map(
        &client,
        &ns,
        "steady-config",
        &[("homeserver.yaml", user_file)],
    )
    .await;
    create_synapse(&api, "values", values_spec("values.example.org")).await;
    create_synapse(
        &api,
        "cm",
        json!({"homeserver": {"configMap": {"name": "steady-config"}}}),
    )
    .await;
    wait_running(&api, "values").await;
    let cm = wait_running(&api, "cm").await;
    assert_eq!(
        cm["status"]["homeserverConfiguration"],
        json!({"serverName": "steady.example.org", "reportStats": true, "registrationEnabled": true})
    );

    let reconciled = settled(&plane.operator, Duration::from_secs(2)).await;
    let objects = resource_versions(&client, &ns, &["values", "cm"], &["steady-config"]).await;
    let writes = write_requests(&plane.operator.log_text()).len();
    let events = synapse_events(&client, &ns, "values").await.len()
        + synapse_events(&client, &ns, "cm").await.len();
    assert!(
        requests(&plane.operator.log_text()).len() > 10,
        "the request log works"
    );

    // A quiet period: no reconciliation, no write, no Event.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let log = plane.operator.log_text();
    assert_eq!(
        resource_versions(&client, &ns, &["values", "cm"], &["steady-config"]).await,
        objects
    );
    assert_eq!(
        write_requests(&log)[writes..],
        [] as [String; 0],
        "writes during the quiet period"
    );
    assert_eq!(
        plane
            .operator
            .metric("matrix_operator_reconciliations_total"),
        Some(reconciled)
    );
    assert_eq!(
        synapse_events(&client, &ns, "values").await.len()
            + synapse_events(&client, &ns, "cm").await.len(),
        events
    );

    // A reconciliation at steady state (someone annotates a child or the input) reads and
    // writes nothing. (Not the Deployment: any metadata change bumps its generation, and the
    // Deployment controller's catching up is a rollout step of its own.)
    let requests_before = requests(&log).len();
    let mut expected = objects.clone();
    let note = |api_version: &str, kind: &str, name: &str| {
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "annotations": {"example.org/note": "hello"}},
        })
    };
    let by_someone_else = PatchParams::apply("e2e-someone-else");
    for name in ["values", "cm"] {
        let annotated = Api::<Service>::namespaced(client.clone(), &ns)
            .patch(
                name,
                &by_someone_else,
                &Patch::Apply(note("v1", "Service", name)),
            )
            .await
            .expect("annotate the Service");
        expected.insert(format!("Service {name}"), rv_of(&annotated.metadata));
    }
    let annotated = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .patch(
            "steady-config",
            &by_someone_else,
            &Patch::Apply(note("v1", "ConfigMap", "steady-config")),
        )
        .await
        .expect("annotate the input");
    expected.insert("ConfigMap steady-config".into(), rv_of(&annotated.metadata));
    let after_nudge = settled(&plane.operator, Duration::from_secs(2)).await;
    assert!(after_nudge >= reconciled + 2.0, "both Synapses reconciled");
    let log = plane.operator.log_text();
    assert!(
        requests(&log).len() > requests_before,
        "the reconciliations sent requests"
    );
    assert_eq!(
        write_requests(&log)[writes..],
        [] as [String; 0],
        "writes at steady state"
    );
    assert_eq!(
        resource_versions(&client, &ns, &["values", "cm"], &["steady-config"]).await,
        expected
    );

    // A restarted operator reconciles everything once and writes nothing either.
    assert!(plane.operator.stop().success(), "a clean exit on SIGTERM");
    plane.operator = start_operator(&ns, "info,kube_client=debug", "restarted").await;
    let after_restart = settled(&plane.operator, Duration::from_secs(2)).await;
    assert!(after_restart >= 2.0, "both Synapses reconciled");
    assert_eq!(
        write_requests(&plane.operator.log_text()),
        [] as [String; 0],
        "writes after a restart"
    );
    assert_eq!(
        resource_versions(&client, &ns, &["values", "cm"], &["steady-config"]).await,
        expected
    );
    plane.finish().await;
}

/// What the synapse-operator needs in the namespace it watches, and nothing about the bridge
/// kinds. (Issue 8's Helm chart grants the same rules.)
fn operator_rules() -> Vec<PolicyRule> {
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    };
    vec![
        rule("synapse.opdev.io", &["synapses"], &["get", "list", "watch"]),
        rule("synapse.opdev.io", &["synapses/status"], &["patch"]),
        rule(
            "",
            &["secrets", "persistentvolumeclaims", "services"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule("", &["configmaps"], &["get", "list", "watch"]),
        rule(
            "apps",
            &["deployments"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule(
            "postgresql.cnpg.io",
            &["clusters"],
            &["get", "list", "watch", "create", "patch"],
        ),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
        // The configuration checks.
        rule("batch", &["jobs"], &["list", "watch", "create", "delete"]),
        rule("", &["pods"], &["list"]),
        // spec.expose's objects (none here, but they are watched).
        rule(
            "gateway.networking.k8s.io",
            &["httproutes"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "networking.k8s.io",
            &["ingresses"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "cert-manager.io",
            &["certificates"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "policy",
            &["poddisruptionbudgets"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        // spec.metrics.monitor's (none here either).
        rule(
            "monitoring.coreos.com",
            &["servicemonitors", "podmonitors"],
            &["list", "watch", "create", "patch", "delete"],
        ),
        rule(
            "coordination.k8s.io",
            &["leases"],
            &["get", "create", "patch"],
        ),
    ]
}

/// A kubeconfig for `token` on the plane of `$KUBECONFIG`, readable only by its owner.
fn token_kubeconfig(path: &Path, token: &str) {
    let admin = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(admin).expect("read the kubeconfig"))
            .expect("a kubeconfig");
    let cluster = admin["clusters"][0]["cluster"].clone();
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "plane", "cluster": cluster}],
        "users": [{"name": "synapse-operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "plane", "user": "synapse-operator"}}],
        "current-context": "operator",
    });
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(serde_json::to_string(&config).expect("JSON").as_bytes()))
        .expect("write the kubeconfig");
}

/// A directory holding a credential, removed however the test ends.
struct RemovedOnDrop(std::path::PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn runs_with_least_privilege_and_without_bridge_access() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    let ns = restricted_namespace(&client, "syn-rbac").await;
    let pp = PostParams::default();
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "synapse-operator"}})).expect("SA");
    ns.api::<ServiceAccount>()
        .create(&pp, &account)
        .await
        .expect("create the ServiceAccount");
    let role = Role {
        metadata: kube::api::ObjectMeta {
            name: Some("synapse-operator".into()),
            ..Default::default()
        },
        rules: Some(operator_rules()),
    };
    ns.api::<Role>()
        .create(&pp, &role)
        .await
        .expect("create the Role");
    let binding = RoleBinding {
        metadata: kube::api::ObjectMeta {
            name: Some("synapse-operator".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "synapse-operator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "synapse-operator".into(),
            namespace: Some(ns.name.clone()),
            ..Subject::default()
        }]),
    };
    ns.api::<RoleBinding>()
        .create(&pp, &binding)
        .await
        .expect("create the RoleBinding");
    let token = ns
        .api::<ServiceAccount>()
        .create_token_request(
            "synapse-operator",
            &pp,
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            },
        )
        .await
        .expect("request a token")
        .status
        .expect("a token")
        .token;
    let dir = RemovedOnDrop(std::env::temp_dir().join(format!("e2e-{}", ns.name)));
    std::fs::create_dir_all(&dir.0).expect("create the kubeconfig directory");
    let kubeconfig = dir.0.join("kubeconfig");
    token_kubeconfig(&kubeconfig, &token);

    // The identity can see Synapses but no bridge kind.
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("a client config");
    let limited = Client::try_from(config).expect("a client");
    synapse_support::synapses(&limited, &ns.name)
        .list(&ListParams::default())
        .await
        .expect("the operator's identity lists Synapses");
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let resource = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "synapse.opdev.io",
            "v1alpha1",
            kind,
        ));
        let denied = Api::<DynamicObject>::namespaced_with(limited.clone(), &ns.name, &resource)
            .list(&ListParams::default())
            .await
            .expect_err("no access to bridge kinds");
        assert!(
            matches!(&denied, kube::Error::Api(s) if s.code == 403),
            "{kind}: {denied}"
        );
    }

    let mut operator = OperatorProcess::builder(OPERATOR, &ns.name)
        .kubeconfig(&kubeconfig)
        .leader_elect(true)
        .start();
    operator.wait_ready(TIMEOUT).await;
    let api = synapse_support::synapses(&client, &ns.name);
    create_config_map(
        &client,
        &ns.name,
        "rbac-config",
        &[(
            "homeserver.yaml",
            "server_name: rbac.example.org\nreport_stats: false\nlisteners:\n  - port: 8008\n    \
             type: http\n    resources: [{names: [client]}]\n",
        )],
    )
    .await;
    create_synapse(&api, "values", values_spec("values.example.org")).await;
    create_synapse(
        &api,
        "cm",
        json!({"homeserver": {"configMap": {"name": "rbac-config"}}}),
    )
    .await;
    wait_running(&api, "values").await;
    wait_running(&api, "cm").await;
    wait_event(&client, &ns.name, "values", "Normal", "Running").await;
    let lease: Lease = get(&client, &ns.name, "synapse-operator-leader").await;
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    assert!(
        holder.contains(&format!("_{}_", operator.pid())),
        "the operator holds the Lease: {holder}"
    );
    operator.assert_running();
    assert_eq!(
        operator.metric("matrix_operator_reconciliation_errors_total"),
        Some(0.0),
        "{}",
        operator.log_text()
    );
    let log = operator.log_text();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "a request was refused:\n{log}"
    );
    assert!(!log.contains(&token), "the token never appears in the log");
    drop(operator);
    drop(dir);
    ns.delete().await;
}
