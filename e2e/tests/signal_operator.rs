//! The signal-operator against the local plane (issue 6). Each test has its own namespace, which
//! enforces Pod Security `restricted`, and its own signal-operator process watching only that
//! namespace. Most tests play the synapse-operator's part of the handshake by writing the
//! Synapse's status themselves; the last one runs the real synapse-operator and boots real
//! Synapse from its Pod's files with the bridge's registration mounted.
//!
//! Every config.yaml the operator writes here goes through the bridgev2 framework's own
//! start-up checks (hack/tools/mautrix-config-check, built with Go on first use).
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), Go and a C compiler for
//! the checker; the Synapse boot needs root and `hack/python-env`.

// Each test crate uses a different part of the shared helpers.
mod signal_support;
#[allow(dead_code)]
mod synapse_support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::objects::{
    condition, condition_message, condition_state, create, get_json, resource, wait_object,
};
use e2e::operator_process::OperatorProcess;
use e2e::operators::install_crds;
use e2e::pod_harness::{PodProcess, Request, Scenario};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::{Value, json};
use signal_support::{assert_bridge_accepts, settle};
use synapse_support::{boot_synapse, restricted_namespace};

const OPERATOR: &str = "signal-operator";
/// Long enough for a loaded 2-core machine; a healthy run needs a few seconds.
const TIMEOUT: Duration = Duration::from_secs(60);
const SERVER: &str = "signal.test";
const FINALIZER: &str = "synapse.opdev.io/appservice-registration";
const HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";
const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";
const ERRORS: &str = "matrix_operator_reconciliation_errors_total";
const SYNAPSE_PORT: u16 = 8008;

fn testdata(name: &str) -> String {
    let path = e2e::repo_root().join("e2e/testdata/signal").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One test's share of the plane: a `restricted` namespace, a signal-operator for it, and in
/// the handshake test the synapse-operator too.
struct Plane {
    client: Client,
    ns: TestNamespace,
    operator: OperatorProcess,
    synapse_operator: Option<OperatorProcess>,
}

impl Plane {
    async fn start(prefix: &str) -> Self {
        let client = e2e::client().await;
        install_crds(&client).await;
        let ns = restricted_namespace(&client, prefix).await;
        let operator = start_operator(&ns.name).await;
        Self {
            client,
            ns,
            operator,
            synapse_operator: None,
        }
    }

    fn ns(&self) -> &str {
        &self.ns.name
    }

    fn synapses(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &resource("Synapse"))
    }

    fn bridges(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &resource("MautrixSignal"))
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    async fn delete_bridge(&self, name: &str) {
        let bridges = self.bridges();
        bridges
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete MautrixSignal {name}: {e}"));
        wait_for(
            TIMEOUT,
            &format!("MautrixSignal {name} to be gone"),
            || async { bridges.get_opt(name).await.ok()?.is_none().then_some(()) },
        )
        .await;
    }

    /// Deletes the bridges while the operator still runs (their finalizers need it), checks
    /// that no reconciliation failed, then deletes the namespace.
    async fn finish(mut self) {
        for bridge in self
            .bridges()
            .list(&ListParams::default())
            .await
            .expect("list the bridges")
            .items
        {
            self.delete_bridge(&bridge.name_any()).await;
        }
        self.operator.assert_running();
        assert_eq!(
            self.operator.metric(ERRORS),
            Some(0.0),
            "reconciliation errors"
        );
        if let Some(mut synapse_operator) = self.synapse_operator.take() {
            synapse_operator.assert_running();
        }
        e2e::pod_harness::forget_claims(self.ns()).expect("forget the claim data");
        drop(self.operator);
        self.ns.delete().await;
    }
}

async fn start_operator(namespace: &str) -> OperatorProcess {
    let mut operator = OperatorProcess::builder(OPERATOR, namespace).start();
    operator.wait_ready(TIMEOUT).await;
    operator
}

async fn create_synapse(plane: &Plane, name: &str, server_name: &str) {
    let spec = json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}});
    create(&plane.synapses(), "Synapse", name, spec).await;
}

async fn create_bridge(plane: &Plane, name: &str, spec: Value) {
    create(&plane.bridges(), "MautrixSignal", name, spec).await;
}

/// Writes a Synapse's status as the synapse-operator would.
async fn set_synapse_status(plane: &Plane, name: &str, status: Value) {
    plane
        .synapses()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .unwrap_or_else(|e| panic!("patch the status of Synapse {name}: {e}"));
}

/// A ready Synapse's status with `server_name`, listing `app_services`.
fn ready_status(plane: &Plane, name: &str, server_name: &str, app_services: Value) -> Value {
    json!({
        "clientUrl": format!("http://{name}.{}.svc:8008", plane.ns()),
        "homeserverConfiguration": {"serverName": server_name},
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Running", "message": "test",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
        "appServices": app_services,
    })
}

fn is(status: &str, reason: &str) -> (String, String) {
    (status.to_owned(), reason.to_owned())
}

/// Waits until the bridge's conditions are `ready` and `registered` for its current
/// generation.
async fn wait_conditions(
    plane: &Plane,
    name: &str,
    ready: (&str, &str),
    registered: (&str, &str),
) -> Value {
    wait_object(
        &plane.bridges(),
        name,
        &format!("Ready={ready:?} Registered={registered:?}"),
        |b| {
            condition_state(b, "Ready") == is(ready.0, ready.1)
                && condition_state(b, "Registered") == is(registered.0, registered.1)
                && b["status"]["observedGeneration"] == b["metadata"]["generation"]
        },
    )
    .await
}

/// Waits for an Event of `type_` and `reason` regarding the MautrixSignal `name`, reported by the
/// operator; returns its note.
async fn wait_event(plane: &Plane, name: &str, type_: &str, reason: &str) -> String {
    e2e::objects::wait_event(
        &plane.api(),
        OPERATOR,
        ("MautrixSignal", name),
        type_,
        reason,
    )
    .await
}

fn secret_text(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).expect("UTF-8")))
        .collect()
}

async fn wait_secret(plane: &Plane, name: &str) -> Secret {
    wait_for(TIMEOUT, &format!("Secret {name}"), || async {
        plane.api::<Secret>().get_opt(name).await.ok()?
    })
    .await
}

/// The registration Secret of bridge `name`, its file's bytes, and the file parsed.
async fn registration(plane: &Plane, name: &str) -> (Secret, Vec<u8>, Value) {
    let secret = wait_secret(plane, &format!("{name}-mautrix-signal-registration")).await;
    let bytes = secret.data.as_ref().expect("data")["registration.yaml"]
        .0
        .clone();
    let file = serde_json::from_slice(&bytes).expect("the registration file is JSON");
    (secret, bytes, file)
}

/// The config.yaml the operator wrote for bridge `name`, as text.
async fn config_text(plane: &Plane, name: &str) -> String {
    let secret = wait_secret(plane, &format!("{name}-mautrix-signal-config")).await;
    secret_text(&secret)
        .remove("config.yaml")
        .expect("config.yaml in the config Secret")
}

fn yaml_at<'a>(doc: &'a serde_yaml::Value, path: &str) -> &'a serde_yaml::Value {
    path.split('.')
        .try_fold(doc, |node, key| node.get(key))
        .unwrap_or_else(|| panic!("{path} is not set"))
}

fn yaml_str<'a>(doc: &'a serde_yaml::Value, path: &str) -> &'a str {
    yaml_at(doc, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string"))
}

fn content_hash(bytes: &[u8]) -> String {
    // sha256 via Python's hashlib: the e2e crate has no hashing dependency of its own.
    let output = Command::new("/usr/bin/python3.11")
        .args([
            "-I",
            "-c",
            "import sys, hashlib; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("run python3.11");
    assert!(output.status.success());
    format!("sha256:{}", String::from_utf8_lossy(&output.stdout).trim())
}

fn source(plane: &Plane, name: &str) -> Value {
    json!({"kind": "MautrixSignal", "namespace": plane.ns(), "name": name})
}

fn registered_entry(plane: &Plane, name: &str, hash: &str) -> Value {
    json!([{"source": source(plane, name), "id": "signal", "state": "registered",
            "contentHash": hash}])
}

fn annotation_key(bridge: &str) -> String {
    format!("mautrixsignal.appservice.synapse.opdev.io/{bridge}")
}

fn annotations(object: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(object["metadata"]["annotations"].clone()).unwrap_or_default()
}

/// The field managers of an object's main resource (not its status).
fn managers(object: &Value) -> Vec<String> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["subresource"].is_null())
        .filter_map(|m| m["manager"].as_str().map(str::to_owned))
        .collect()
}

fn assert_token(token: &str) {
    assert_eq!(token.len(), 64, "64 characters");
    assert!(
        token.chars().all(|c| c.is_ascii_alphanumeric()),
        "alphanumeric"
    );
}

fn assert_standard_labels(meta: &kube::api::ObjectMeta, instance: &str, component: &str) {
    let labels = meta.labels.clone().unwrap_or_default();
    assert_eq!(labels["app.kubernetes.io/name"], "mautrix-signal");
    assert_eq!(labels["app.kubernetes.io/instance"], instance);
    assert_eq!(labels["app.kubernetes.io/component"], component);
    assert_eq!(labels["app.kubernetes.io/managed-by"], OPERATOR);
    assert_eq!(labels["app.kubernetes.io/part-of"], "matrix");
}

/// The resource versions of a bridge's objects and its Synapse, to see that nothing was written.
async fn versions(plane: &Plane, bridge: &str, synapse: &str) -> Vec<String> {
    let workload = format!("{bridge}-mautrix-signal");
    let mut versions = vec![
        get_json(&plane.bridges(), bridge).await["metadata"]["resourceVersion"].to_string(),
        get_json(&plane.synapses(), synapse).await["metadata"]["resourceVersion"].to_string(),
    ];
    for secret in ["registration", "config", "keys"] {
        let name = format!("{workload}-{secret}");
        versions.push(
            plane
                .api::<Secret>()
                .get(&name)
                .await
                .unwrap_or_else(|e| panic!("get {name}: {e}"))
                .resource_version()
                .unwrap_or_default(),
        );
    }
    versions.push(
        plane
            .api::<PersistentVolumeClaim>()
            .get(&format!("{workload}-data"))
            .await
            .expect("the PVC")
            .resource_version()
            .unwrap_or_default(),
    );
    versions.push(
        plane
            .api::<Service>()
            .get(&workload)
            .await
            .expect("the Service")
            .resource_version()
            .unwrap_or_default(),
    );
    versions.push(
        plane
            .api::<Deployment>()
            .get(&workload)
            .await
            .expect("the Deployment")
            .resource_version()
            .unwrap_or_default(),
    );
    versions
}

/// The Pod Security admission of the namespace really refuses a pod that is not `restricted`.
async fn assert_restricted_is_enforced(plane: &Plane) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "not-restricted"},
        "spec": {"containers": [{"name": "c", "image": "dock.mau.dev/mautrix/signal:v0.2608.0"}]},
    }))
    .expect("a pod");
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let refused = plane
        .api::<Pod>()
        .create(&dry_run, &pod)
        .await
        .expect_err("a pod without a securityContext must be refused");
    assert!(
        refused.to_string().contains("violates PodSecurity"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_default_bridge_gets_its_objects_and_announces_itself() {
    let plane = Plane::start("signal-objects").await;
    assert_restricted_is_enforced(&plane).await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    let admin = format!("@alice:{SERVER}");
    create_bridge(
        &plane,
        "sig",
        json!({"synapse": {"name": "hs"}, "admins": [admin]}),
    )
    .await;

    // The registration: the bot and the puppets, exclusive, on the Synapse's domain.
    let (secret, bytes, file) = registration(&plane, "sig").await;
    let url = format!("http://sig-mautrix-signal.{}.svc:29328", plane.ns());
    assert_eq!(file["id"], "signal");
    assert_eq!(file["url"], url);
    assert_eq!(file["sender_localpart"], "signalbot");
    assert_eq!(
        file["namespaces"],
        json!({
            "users": [
                {"regex": r"^@signalbot:signal\.test$", "exclusive": true},
                {"regex": r"^@signal_.*:signal\.test$", "exclusive": true},
            ],
            "aliases": [],
            "rooms": [],
        })
    );
    let as_token = file["as_token"].as_str().expect("as_token").to_owned();
    let hs_token = file["hs_token"].as_str().expect("hs_token").to_owned();
    assert_token(&as_token);
    assert_token(&hs_token);
    assert_ne!(as_token, hs_token);
    assert_standard_labels(&secret.metadata, "sig", "registration");
    assert_eq!(secret.labels()["synapse.opdev.io/synapse"], "hs");
    let bridge = get_json(&plane.bridges(), "sig").await;
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("MautrixSignal", "sig", Some(true))
    );
    assert_eq!(owner.uid, bridge["metadata"]["uid"].as_str().unwrap());

    // The config: bridgev2 format, Synapse's address and domain from its status, the same
    // tokens, SQLite on the bridge's own volume, permissions, logging to stdout.
    let config = config_text(&plane, "sig").await;
    let doc: serde_yaml::Value = serde_yaml::from_str(&config).expect("config.yaml is YAML");
    for (path, want) in [
        (
            "homeserver.address",
            format!("http://hs.{}.svc:8008", plane.ns()),
        ),
        ("homeserver.domain", SERVER.to_owned()),
        ("homeserver.software", "standard".to_owned()),
        ("appservice.address", url.clone()),
        ("appservice.hostname", "0.0.0.0".to_owned()),
        ("appservice.id", "signal".to_owned()),
        ("appservice.bot.username", "signalbot".to_owned()),
        ("appservice.username_template", "signal_{{.}}".to_owned()),
        ("appservice.as_token", as_token.clone()),
        ("appservice.hs_token", hs_token.clone()),
        ("database.type", "sqlite3-fk-wal".to_owned()),
        (
            "database.uri",
            "file:/data/mautrix-signal.db?_txlock=immediate".to_owned(),
        ),
        ("logging.writers", String::new()),
    ] {
        if want.is_empty() {
            yaml_at(&doc, path);
        } else {
            assert_eq!(yaml_str(&doc, path), want, "{path}");
        }
    }
    assert_eq!(yaml_at(&doc, "appservice.port").as_u64(), Some(29328));
    assert_eq!(
        yaml_at(&doc, "logging.writers")[0]["type"].as_str(),
        Some("stdout")
    );
    let permissions = yaml_at(&doc, "bridge.permissions");
    assert_eq!(permissions["*"].as_str(), Some("relay"));
    assert_eq!(permissions[SERVER].as_str(), Some("user"));
    assert_eq!(permissions[admin.as_str()].as_str(), Some("admin"));
    assert_eq!(permissions.as_mapping().unwrap().len(), 3);
    assert_bridge_accepts("default", &config);
    let config_secret = wait_secret(&plane, "sig-mautrix-signal-config").await;
    assert_standard_labels(&config_secret.metadata, "sig", "config");
    assert_eq!(config_secret.owner_references()[0].name, "sig");

    // The generated secrets are kept in a Secret that stays with the data (no owner).
    let keys = wait_secret(&plane, "sig-mautrix-signal-keys").await;
    assert_standard_labels(&keys.metadata, "sig", "keys");
    assert!(keys.owner_references().is_empty());
    assert_eq!(secret_text(&keys)["as_token"], as_token);
    assert_eq!(
        secret_text(&keys)["pickle_key"],
        yaml_str(&doc, "encryption.pickle_key")
    );
    let claim = plane
        .api::<PersistentVolumeClaim>()
        .get("sig-mautrix-signal-data")
        .await
        .expect("the bridge's own PVC");
    assert_standard_labels(&claim.metadata, "sig", "data");
    assert!(claim.owner_references().is_empty());
    assert_eq!(claim.spec.unwrap().access_modes.unwrap(), ["ReadWriteOnce"]);

    // The Deployment: pinned image, explicit command, restricted, probed, the files mounted.
    let deployment: Deployment = wait_for(TIMEOUT, "the Deployment", || async {
        plane
            .api::<Deployment>()
            .get_opt("sig-mautrix-signal")
            .await
            .ok()?
    })
    .await;
    assert_standard_labels(&deployment.metadata, "sig", "bridge");
    let template = deployment.spec.as_ref().unwrap().template.clone();
    assert_eq!(
        template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()[HASH_ANNOTATION]
            .len(),
        64
    );
    let pod = template.spec.unwrap();
    let security = pod.security_context.clone().unwrap();
    assert_eq!(
        (
            security.run_as_user,
            security.run_as_group,
            security.fs_group
        ),
        (Some(1337), Some(1337), Some(1337))
    );
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("dock.mau.dev/mautrix/signal:v0.2608.0")
    );
    assert_eq!(
        container.command.clone().unwrap(),
        [
            "/usr/bin/mautrix-signal",
            "-c",
            "/config/config.yaml",
            "-r",
            "/config/registration.yaml",
            "-n"
        ]
    );
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.clone().unwrap().http_get.unwrap().path.unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/_matrix/mau/live");
    assert_eq!(probe_path(&container.readiness_probe), "/_matrix/mau/ready");
    let mounts = container.volume_mounts.clone().unwrap();
    let config_mount = mounts.iter().find(|m| m.mount_path == "/config").unwrap();
    assert_eq!(config_mount.read_only, Some(true));
    assert!(mounts.iter().any(|m| m.mount_path == "/data"));
    let data_volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(
        data_volume.persistent_volume_claim.unwrap().claim_name,
        "sig-mautrix-signal-data"
    );
    let service = plane
        .api::<Service>()
        .get("sig-mautrix-signal")
        .await
        .unwrap();
    assert_eq!(service.spec.unwrap().ports.unwrap()[0].port, 29328);

    // The pod passed `restricted` admission and is ready (kwok runs it); the registration waits
    // for the synapse-operator. The announcement is the bridge's own field manager's.
    let bridge = wait_conditions(
        &plane,
        "sig",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    assert_eq!(bridge["metadata"]["finalizers"], json!([FINALIZER]));
    assert_eq!(bridge["status"]["synapse"]["serverName"], SERVER);
    wait_event(&plane, "sig", "Normal", "Running").await;
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert_eq!(
        annotations(&synapse)[&annotation_key("sig")],
        "sig-mautrix-signal-registration"
    );
    assert!(
        managers(&synapse).contains(&format!("{OPERATOR}/sig")),
        "{:?}",
        managers(&synapse)
    );

    // Registered once the Synapse lists exactly this registration as registered.
    set_synapse_status(
        &plane,
        "hs",
        ready_status(
            &plane,
            "hs",
            SERVER,
            registered_entry(&plane, "sig", &content_hash(&bytes)),
        ),
    )
    .await;
    let bridge = wait_conditions(&plane, "sig", ("True", "Running"), ("True", "Registered")).await;
    assert_eq!(bridge["status"]["state"], "RUNNING");
    assert!(condition(&bridge, "ConfigMigrated").is_none());
    wait_event(&plane, "sig", "Normal", "Registered").await;
    plane.finish().await;
}

#[tokio::test]
async fn tokens_are_generated_once_and_a_steady_state_writes_nothing() {
    let mut plane = Plane::start("signal-steady").await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    create_bridge(&plane, "sig", json!({"synapse": {"name": "hs"}})).await;
    let (_, first, _) = registration(&plane, "sig").await;
    let keys = secret_text(&wait_secret(&plane, "sig-mautrix-signal-keys").await);
    set_synapse_status(
        &plane,
        "hs",
        ready_status(
            &plane,
            "hs",
            SERVER,
            registered_entry(&plane, "sig", &content_hash(&first)),
        ),
    )
    .await;
    wait_conditions(&plane, "sig", ("True", "Running"), ("True", "Registered")).await;

    settle(&plane.operator, Duration::from_secs(3)).await;
    let before = versions(&plane, "sig", "hs").await;
    // A resync of everything by a new process must find nothing to write.
    plane.operator.stop();
    plane.operator = start_operator(plane.ns()).await;
    wait_for(TIMEOUT, "the new operator to reconcile", || async {
        plane.operator.metric(RECONCILIATIONS).filter(|n| *n >= 1.0)
    })
    .await;
    settle(&plane.operator, Duration::from_secs(3)).await;
    assert_eq!(
        versions(&plane, "sig", "hs").await,
        before,
        "something was written"
    );
    assert_eq!(registration(&plane, "sig").await.1, first);

    // Another spec: new permissions in the config, same tokens and registration.
    let admin = format!("@bob:{SERVER}");
    plane
        .bridges()
        .patch(
            "sig",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"admins": [admin]}})),
        )
        .await
        .expect("patch the bridge");
    wait_object(&plane.bridges(), "sig", "generation 2 observed", |b| {
        b["status"]["observedGeneration"] == 2
    })
    .await;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&config_text(&plane, "sig").await).expect("YAML");
    assert_eq!(
        yaml_at(&doc, "bridge.permissions")[admin.as_str()].as_str(),
        Some("admin")
    );
    assert_eq!(registration(&plane, "sig").await.1, first);

    // A key taken out of the keys Secret is made again; the others stay.
    plane
        .api::<Secret>()
        .patch(
            "sig-mautrix-signal-keys",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"pickle_key": null}})),
        )
        .await
        .expect("remove the pickle key");
    let repaired = wait_for(TIMEOUT, "the pickle key to be made again", || async {
        let text = secret_text(
            &plane
                .api::<Secret>()
                .get("sig-mautrix-signal-keys")
                .await
                .ok()?,
        );
        text.contains_key("pickle_key").then_some(text)
    })
    .await;
    assert_ne!(repaired["pickle_key"], keys["pickle_key"]);
    for key in ["as_token", "hs_token", "provisioning_shared_secret"] {
        assert_eq!(repaired[key], keys[key], "{key}");
    }
    assert_eq!(registration(&plane, "sig").await.1, first);
    plane.finish().await;
}

/// A ConfigMap named `name` holding `config.yaml`.
fn config_map(name: &str, file: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "config.yaml".to_owned(),
            file.to_owned(),
        )])),
        ..Default::default()
    }
}

/// A ConfigMap `name` holding the test file `fixture`, and a bridge `name` of Synapse `hs`
/// configured by it.
async fn bridge_with_config(plane: &Plane, name: &str, fixture: &str) {
    plane
        .api::<ConfigMap>()
        .create(
            &PostParams::default(),
            &config_map(name, &testdata(fixture)),
        )
        .await
        .unwrap_or_else(|e| panic!("create the ConfigMap {name}: {e}"));
    let spec = json!({"synapse": {"name": "hs"}, "configMap": {"name": name}});
    create_bridge(plane, name, spec).await;
}

#[tokio::test]
async fn config_map_mode_keeps_the_users_keys_and_migrates_a_legacy_file() {
    let plane = Plane::start("signal-configmap").await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    let configs: Api<ConfigMap> = plane.api();
    bridge_with_config(&plane, "modern", "modern.yaml").await;
    bridge_with_config(&plane, "legacy", "legacy-signald.yaml").await;

    // A modern file: the user's keys kept, the owned ones set, no migration.
    let bridge = wait_conditions(
        &plane,
        "modern",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    assert!(condition(&bridge, "ConfigMigrated").is_none());
    let config = config_text(&plane, "modern").await;
    let doc: serde_yaml::Value = serde_yaml::from_str(&config).expect("YAML");
    let (_, _, file) = registration(&plane, "modern").await;
    for (path, want) in [
        ("homeserver.domain", SERVER.to_owned()),
        (
            "homeserver.address",
            format!("http://hs.{}.svc:8008", plane.ns()),
        ),
        (
            "appservice.address",
            format!("http://modern-mautrix-signal.{}.svc:29328", plane.ns()),
        ),
        ("appservice.hostname", "0.0.0.0".to_owned()),
        (
            "appservice.as_token",
            file["as_token"].as_str().unwrap().to_owned(),
        ),
        ("appservice.bot.username", "signalbridge".to_owned()),
        ("appservice.bot.displayname", "Signal bridge".to_owned()),
        ("appservice.username_template", "sgnl_{{.}}".to_owned()),
        ("network.device_name", "matrix-bridge".to_owned()),
        ("logging.min_level", "debug".to_owned()),
        // The unedited PostgreSQL placeholder: the operator runs SQLite instead.
        ("database.type", "sqlite3-fk-wal".to_owned()),
    ] {
        assert_eq!(yaml_str(&doc, path), want, "{path}");
    }
    assert_ne!(yaml_str(&doc, "encryption.pickle_key"), "generate");
    assert_eq!(yaml_at(&doc, "encryption.allow").as_bool(), Some(true));
    // The registration follows the user's bot and template.
    assert_eq!(file["sender_localpart"], "signalbridge");
    assert_eq!(
        file["namespaces"]["users"][1]["regex"],
        r"^@sgnl_.*:signal\.test$"
    );
    assert_bridge_accepts("configmap-modern", &config);

    // A legacy (signald-era) file: migrated, the dropped keys listed, the input untouched.
    let bridge = wait_conditions(
        &plane,
        "legacy",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    assert_eq!(
        condition_state(&bridge, "ConfigMigrated"),
        is("True", "LegacyConfigMigrated")
    );
    let message = condition_message(&bridge, "ConfigMigrated");
    for dropped in [
        "signal",
        "logging",
        "metrics",
        "manhole",
        "homeserver.verify_ssl",
        "appservice.tls_cert",
        "bridge.sync_with_custom_puppets",
        "bridge.relay.message_formats",
    ] {
        assert!(
            message.contains(&format!(" {dropped},")) || message.ends_with(&format!(" {dropped}")),
            "{dropped} missing from: {message}"
        );
    }
    let note = wait_event(&plane, "legacy", "Normal", "LegacyConfigMigrated").await;
    assert!(note.contains("signald-era"), "{note}");
    let config = config_text(&plane, "legacy").await;
    let doc: serde_yaml::Value = serde_yaml::from_str(&config).expect("YAML");
    for (path, want) in [
        ("homeserver.domain", SERVER),
        ("appservice.bot.username", "signalbot"),
        ("appservice.bot.displayname", "Signal bridge bot"),
        ("appservice.username_template", "signal_{{.}}"),
        (
            "network.displayname_template",
            "{{or .ProfileName .PhoneNumber \"Unknown user\"}} (Signal)",
        ),
        ("bridge.command_prefix", "!signal"),
        (
            "database.uri",
            "file:/data/mautrix-signal.db?_txlock=immediate",
        ),
    ] {
        assert_eq!(yaml_str(&doc, path), want, "{path}");
    }
    assert_eq!(
        yaml_at(&doc, "bridge.permissions")["@admin:matrix.example.org"].as_str(),
        Some("admin")
    );
    for gone in ["signal", "metrics", "manhole"] {
        assert!(doc.get(gone).is_none(), "{gone} is still in the config");
    }
    assert!(yaml_at(&doc, "logging").get("writers").is_some());
    assert!(yaml_at(&doc, "appservice").get("database").is_none());
    assert_bridge_accepts("configmap-legacy-signald", &config);
    let input = configs.get("legacy").await.expect("the input ConfigMap");
    assert_eq!(
        input.data.unwrap()["config.yaml"],
        testdata("legacy-signald.yaml"),
        "the input ConfigMap is never modified"
    );

    // The user replaces the legacy file with a modern one: the migration record goes.
    let mut input = configs.get("legacy").await.unwrap();
    input.data = config_map("legacy", &testdata("modern.yaml")).data;
    configs
        .replace("legacy", &PostParams::default(), &input)
        .await
        .expect("replace the ConfigMap");
    wait_object(&plane.bridges(), "legacy", "ConfigMigrated removed", |b| {
        condition(b, "ConfigMigrated").is_none()
    })
    .await;
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&config_text(&plane, "legacy").await).expect("YAML");
    assert_eq!(yaml_str(&doc, "appservice.bot.username"), "signalbridge");
    plane.finish().await;
}

/// The original operator's own example config.yaml for a ConfigMap (signald era, permissions
/// only the template's `*`, `example.com`, `@admin:example.com`) registers: the migration gives
/// it the permissions the original operator set for the Synapse's server, and says so.
#[tokio::test]
async fn the_original_operators_example_config_registers() {
    let plane = Plane::start("signal-example").await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    bridge_with_config(&plane, "example", "legacy-signald-example.yaml").await;
    let bridge = wait_conditions(
        &plane,
        "example",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    let message = condition_message(&bridge, "ConfigMigrated");
    let replaced = format!("*: relay, {SERVER}: user, @admin:{SERVER}: admin");
    assert!(message.contains(&replaced), "{message}");
    let config = config_text(&plane, "example").await;
    let doc: serde_yaml::Value = serde_yaml::from_str(&config).expect("YAML");
    let permissions: BTreeMap<String, String> =
        serde_yaml::from_value(yaml_at(&doc, "bridge.permissions").clone()).expect("levels");
    let admin = format!("@admin:{SERVER}");
    let expected = [("*", "relay"), (SERVER, "user"), (admin.as_str(), "admin")];
    assert_eq!(
        permissions,
        expected.map(|(k, v)| (k.to_owned(), v.to_owned())).into()
    );
    assert_eq!(yaml_str(&doc, "homeserver.domain"), SERVER);
    assert_bridge_accepts("configmap-original-example", &config);

    let (_, bytes, _) = registration(&plane, "example").await;
    let registered = registered_entry(&plane, "example", &content_hash(&bytes));
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, registered)).await;
    let bridge = wait_conditions(
        &plane,
        "example",
        ("True", "Running"),
        ("True", "Registered"),
    )
    .await;
    assert_eq!(
        condition_state(&bridge, "ConfigMigrated"),
        is("True", "LegacyConfigMigrated")
    );
    plane.finish().await;
}

#[tokio::test]
async fn a_file_that_cannot_be_understood_gives_a_condition_and_no_deployment() {
    let plane = Plane::start("signal-bad").await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    create_bridge(
        &plane,
        "sig",
        json!({"synapse": {"name": "hs"}, "configMap": {"name": "signal-config"}}),
    )
    .await;

    // No ConfigMap yet.
    let bridge = wait_conditions(
        &plane,
        "sig",
        ("False", "ConfigMapNotFound"),
        ("False", "ConfigMapNotFound"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], "FAILED");
    wait_event(&plane, "sig", "Warning", "ConfigMapNotFound").await;

    // Files the bridge could never start with: a condition that says why, and no Deployment.
    let configs: Api<ConfigMap> = plane.api();
    configs
        .create(
            &PostParams::default(),
            &config_map("signal-config", "appservice: [this, is, not, a, mapping]\n"),
        )
        .await
        .expect("create the ConfigMap");
    for (file, says) in [
        (
            "appservice: [this, is, not, a, mapping]\n",
            "`appservice` must be a mapping of settings, not a list",
        ),
        ("homeserver: {address: [\n", "it is not valid YAML"),
        (
            "appservice:\n  username_template: signal_user\n",
            "must contain the placeholder {{.}}",
        ),
        (
            "appservice:\n  database: mysql://signal:s3cr3t@db/signal\n",
            "is a \"mysql\" URI, neither postgres:// nor sqlite:",
        ),
    ] {
        let mut input = configs.get("signal-config").await.unwrap();
        input.data = config_map("signal-config", file).data;
        configs
            .replace("signal-config", &PostParams::default(), &input)
            .await
            .expect("replace the ConfigMap");
        let bridge = wait_object(&plane.bridges(), "sig", says, |b| {
            condition_state(b, "Ready") == is("False", "InvalidConfig")
                && condition_message(b, "Ready").contains(says)
        })
        .await;
        assert_eq!(bridge["status"]["state"], "FAILED");
        assert!(
            !bridge["status"].to_string().contains("s3cr3t"),
            "a password in the user's file reached the status"
        );
        assert!(
            condition_message(&bridge, "Ready").starts_with("config.yaml in ConfigMap"),
            "{}",
            condition_message(&bridge, "Ready")
        );
    }
    wait_event(&plane, "sig", "Warning", "InvalidConfig").await;
    for name in [
        "sig-mautrix-signal-config",
        "sig-mautrix-signal-registration",
    ] {
        assert!(plane.api::<Secret>().get_opt(name).await.unwrap().is_none());
    }
    assert!(
        plane
            .api::<Deployment>()
            .get_opt("sig-mautrix-signal")
            .await
            .unwrap()
            .is_none(),
        "no Deployment for a config the bridge would refuse"
    );
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert!(!annotations(&synapse).contains_key(&annotation_key("sig")));

    // Fixed: converges.
    let mut input = configs.get("signal-config").await.unwrap();
    input.data = config_map("signal-config", &testdata("modern.yaml")).data;
    configs
        .replace("signal-config", &PostParams::default(), &input)
        .await
        .expect("replace the ConfigMap");
    wait_conditions(
        &plane,
        "sig",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;

    // A Synapse named example.com cannot have this bridge: the bridge refuses that domain.
    create_synapse(&plane, "example", "example.com").await;
    set_synapse_status(
        &plane,
        "example",
        ready_status(&plane, "example", "example.com", json!([])),
    )
    .await;
    create_bridge(&plane, "ex", json!({"synapse": {"name": "example"}})).await;
    let bridge = wait_conditions(
        &plane,
        "ex",
        ("False", "UnsupportedServerName"),
        ("False", "UnsupportedServerName"),
    )
    .await;
    assert!(condition_message(&bridge, "Ready").contains("example.com"));
    assert!(
        plane
            .api::<Deployment>()
            .get_opt("ex-mautrix-signal")
            .await
            .unwrap()
            .is_none()
    );
    plane.finish().await;
}

#[tokio::test]
async fn a_bridge_waits_for_its_synapse_and_converges_when_it_appears() {
    let plane = Plane::start("signal-wait").await;
    create_bridge(&plane, "sig", json!({"synapse": {"name": "hs"}})).await;
    let bridge = wait_conditions(
        &plane,
        "sig",
        ("False", "SynapseNotFound"),
        ("False", "SynapseNotFound"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], "FAILED");
    assert!(bridge["status"]["synapse"].is_null());
    wait_event(&plane, "sig", "Warning", "SynapseNotFound").await;

    // The Synapse appears without a status: the bridge waits for its server name.
    create_synapse(&plane, "hs", SERVER).await;
    wait_conditions(
        &plane,
        "sig",
        ("False", "SynapseNotReady"),
        ("False", "SynapseNotReady"),
    )
    .await;
    assert!(
        plane
            .api::<Deployment>()
            .get_opt("sig-mautrix-signal")
            .await
            .unwrap()
            .is_none()
    );

    // Its status arrives: everything is made and announced.
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    let bridge = wait_conditions(
        &plane,
        "sig",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    assert_eq!(bridge["status"]["synapse"]["serverName"], SERVER);
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert!(annotations(&synapse).contains_key(&annotation_key("sig")));
    plane.finish().await;
}

#[tokio::test]
async fn deletion_withdraws_the_announcement_and_keeps_the_data_unless_asked() {
    let plane = Plane::start("signal-delete").await;
    create_synapse(&plane, "hs", SERVER).await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", SERVER, json!([]))).await;
    create_bridge(&plane, "kept", json!({"synapse": {"name": "hs"}})).await;
    create_bridge(
        &plane,
        "gone",
        json!({"synapse": {"name": "hs"}, "deletionPolicy": "Delete"}),
    )
    .await;
    for name in ["kept", "gone"] {
        wait_conditions(
            &plane,
            name,
            ("True", "Running"),
            ("False", "RegistrationPending"),
        )
        .await;
    }
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert!(annotations(&synapse).contains_key(&annotation_key("kept")));
    assert!(annotations(&synapse).contains_key(&annotation_key("gone")));

    // The deletion policy can change: the owner of the keys and the data follows it.
    let owners = || async {
        let keys = plane
            .api::<Secret>()
            .get("kept-mautrix-signal-keys")
            .await
            .ok()?;
        let claim = plane
            .api::<PersistentVolumeClaim>()
            .get("kept-mautrix-signal-data")
            .await
            .ok()?;
        Some((
            keys.owner_references().len(),
            claim.owner_references().len(),
        ))
    };
    for (policy, owned) in [("Delete", 1), ("Retain", 0)] {
        plane
            .bridges()
            .patch(
                "kept",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"deletionPolicy": policy}})),
            )
            .await
            .expect("patch the deletion policy");
        wait_for(
            TIMEOUT,
            &format!("{owned} owner on the keys and data of kept ({policy})"),
            || async { owners().await.filter(|o| *o == (owned, owned)) },
        )
        .await;
    }

    // Deleting one bridge withdraws its announcement only; the finalizer lets it go.
    plane.delete_bridge("kept").await;
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert!(!annotations(&synapse).contains_key(&annotation_key("kept")));
    assert!(annotations(&synapse).contains_key(&annotation_key("gone")));
    // Its owned objects are collected; its keys and data stay (deletionPolicy Retain).
    wait_for(
        TIMEOUT,
        "the owned objects of kept to be collected",
        || async {
            let deployment = plane
                .api::<Deployment>()
                .get_opt("kept-mautrix-signal")
                .await
                .ok()?;
            let config = plane
                .api::<Secret>()
                .get_opt("kept-mautrix-signal-config")
                .await
                .ok()?;
            (deployment.is_none() && config.is_none()).then_some(())
        },
    )
    .await;
    assert!(
        plane
            .api::<Secret>()
            .get_opt("kept-mautrix-signal-keys")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        plane
            .api::<PersistentVolumeClaim>()
            .get_opt("kept-mautrix-signal-data")
            .await
            .unwrap()
            .is_some()
    );

    // deletionPolicy Delete: the keys and the data go with the bridge.
    let keys = plane
        .api::<Secret>()
        .get("gone-mautrix-signal-keys")
        .await
        .unwrap();
    assert_eq!(keys.owner_references()[0].name, "gone");
    plane.delete_bridge("gone").await;
    wait_for(
        TIMEOUT,
        "the keys and data of gone to be collected",
        || async {
            let keys = plane
                .api::<Secret>()
                .get_opt("gone-mautrix-signal-keys")
                .await
                .ok()?;
            let claim = plane
                .api::<PersistentVolumeClaim>()
                .get_opt("gone-mautrix-signal-data")
                .await
                .ok()?;
            (keys.is_none()
                && claim
                    .as_ref()
                    .is_none_or(|c| c.metadata.deletion_timestamp.is_some()))
            .then_some(())
        },
    )
    .await;
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert!(
        !annotations(&synapse)
            .keys()
            .any(|k| k.starts_with("mautrixsignal.")),
        "{:?}",
        annotations(&synapse)
    );
    plane.finish().await;
}

/// `whoami` with the as_token, optionally as `user_id`: the status code and the answer.
async fn whoami(synapse: &PodProcess, token: &str, user_id: Option<&str>) -> (u16, Value) {
    let path = match user_id {
        Some(user) => format!("/_matrix/client/v3/account/whoami?user_id={user}"),
        None => "/_matrix/client/v3/account/whoami".to_owned(),
    };
    let response = synapse
        .http(Request::get(SYNAPSE_PORT, &path).header("Authorization", &format!("Bearer {token}")))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response.status, response.json().unwrap_or(Value::Null))
}

/// Registers `localpart` as an app-service user with the as_token.
async fn register_as(synapse: &PodProcess, token: &str, localpart: &str) -> (u16, Value) {
    let response = synapse
        .http(
            Request::post(SYNAPSE_PORT, "/_matrix/client/v3/register")
                .header("Authorization", &format!("Bearer {token}"))
                .json(&json!({"type": "m.login.application_service", "username": localpart})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response.status, response.json().unwrap_or(Value::Null))
}

#[tokio::test]
async fn real_synapse_accepts_the_registration_and_lists_the_bridge() {
    let mut plane = Plane::start("signal-handshake").await;
    let mut synapse_operator = synapse_support::start_operator(plane.ns(), "info", "synapse").await;
    synapse_operator.assert_running();
    plane.synapse_operator = Some(synapse_operator);
    let synapses = plane.synapses();
    synapse_support::create_synapse(
        &synapses,
        "hs",
        json!({"homeserver": {"values": {"serverName": SERVER, "reportStats": false}}}),
    )
    .await;
    create_bridge(&plane, "sig", json!({"synapse": {"name": "hs"}})).await;

    // The operators' handshake: the synapse-operator validates and mounts the registration,
    // the bridge sees it live on a ready Synapse.
    let bridge = wait_conditions(&plane, "sig", ("True", "Running"), ("True", "Registered")).await;
    assert_eq!(bridge["status"]["state"], "RUNNING");
    assert_eq!(bridge["status"]["synapse"]["serverName"], SERVER);
    let synapse = synapse_support::wait_synapse(&synapses, "hs", "the bridge registered", |s| {
        synapse_support::is_running(s) && s["status"]["appServices"][0]["state"] == "registered"
    })
    .await;
    let entry = &synapse["status"]["appServices"][0];
    assert_eq!(entry["id"], "signal");
    assert_eq!(entry["source"], source(&plane, "sig"));
    let (_, bytes, file) = registration(&plane, "sig").await;
    assert_eq!(entry["contentHash"], content_hash(&bytes));
    assert_eq!(
        synapse["status"]["bridges"]["mautrixsignal"],
        json!({"enabled": true, "name": "sig"})
    );
    assert_bridge_accepts("handshake-default", &config_text(&plane, "sig").await);

    // Real Synapse, booted from its Pod's files with the registration mounted, accepts it.
    let mut scenario = Scenario::new("signal-handshake").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(plane.ns(), "hs");
    scenario.add_service(plane.ns(), "sig-mautrix-signal");
    let synapse_process =
        boot_synapse(&scenario, &plane.client, plane.ns(), "hs", SYNAPSE_PORT).await;
    let root = format!("/proc/{}/root", synapse_process.pid());
    assert!(
        Path::new(&format!(
            "{root}/appservices/mautrixsignal-sig/registration.yaml"
        ))
        .exists(),
        "the registration is mounted into Synapse's pod"
    );
    let as_token = file["as_token"].as_str().expect("as_token");
    let bot = format!("@signalbot:{SERVER}");
    let (status, me) = whoami(&synapse_process, as_token, None).await;
    assert_eq!((status, &me["user_id"]), (200, &json!(bot)), "{me}");
    let (status, me) = whoami(&synapse_process, as_token, Some(&bot)).await;
    assert_eq!((status, &me["user_id"]), (200, &json!(bot)), "{me}");
    // A puppet in the exclusive namespace can be registered and acted as; a user outside it
    // cannot.
    let puppet = format!("@signal_e2e:{SERVER}");
    let (status, answer) = register_as(&synapse_process, as_token, "signal_e2e").await;
    assert_eq!(
        (status, &answer["user_id"]),
        (200, &json!(puppet)),
        "{answer}"
    );
    let (status, me) = whoami(&synapse_process, as_token, Some(&puppet)).await;
    assert_eq!((status, &me["user_id"]), (200, &json!(puppet)), "{me}");
    let (status, answer) = register_as(&synapse_process, as_token, "not_a_puppet").await;
    assert_eq!(
        (status, &answer["errcode"]),
        (400, &json!("M_EXCLUSIVE")),
        "{answer}"
    );
    let (status, answer) = whoami(&synapse_process, "not-the-token", None).await;
    assert_eq!(
        (status, &answer["errcode"]),
        (401, &json!("M_UNKNOWN_TOKEN"))
    );

    // Synapse tries the bridge at the registration's url; no bridge process runs here.
    let ping = synapse_process
        .http(
            Request::post(SYNAPSE_PORT, "/_matrix/client/v1/appservice/signal/ping")
                .header("Authorization", &format!("Bearer {as_token}"))
                .json(&json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = ping.json().unwrap_or(Value::Null);
    assert_eq!(
        (ping.status, &answer["errcode"]),
        (502, &json!("M_CONNECTION_FAILED")),
        "{}",
        ping.text()
    );
    drop(synapse_process);
    drop(scenario);

    // The bridge goes: the annotation is withdrawn and Synapse lists nothing.
    plane.delete_bridge("sig").await;
    let synapse = synapse_support::wait_synapse(&synapses, "hs", "no app services", |s| {
        s["status"]["appServices"]
            .as_array()
            .is_none_or(Vec::is_empty)
    })
    .await;
    assert!(!annotations(&synapse).contains_key(&annotation_key("sig")));
    plane.finish().await;
}

#[tokio::test]
async fn the_apiserver_refuses_admins_that_are_not_user_ids() {
    let plane = Plane::start("signal-admins").await;
    let bridge = |admins: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "MautrixSignal",
            "metadata": {"name": "sig"},
            "spec": {"synapse": {"name": "hs"}, "admins": admins},
        }))
        .expect("an object")
    };
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    for refused in [
        json!(["alice"]),
        json!([format!("@alice:{SERVER}"), "@bob"]),
    ] {
        let error = plane
            .bridges()
            .create(&dry_run, &bridge(refused.clone()))
            .await
            .expect_err("admins that are not Matrix user IDs");
        assert!(
            error
                .to_string()
                .contains("each entry of admins must be a Matrix user ID"),
            "{refused}: {error}"
        );
    }
    plane
        .bridges()
        .create(
            &dry_run,
            &bridge(json!([format!("@alice:{SERVER}"), "@bob:[::1]:8448"])),
        )
        .await
        .expect("Matrix user IDs are accepted");
    plane.finish().await;
}
