//! Shared by the synapse-operator end-to-end tests: a namespace under the `restricted` Pod
//! Security standard with its own operator process, Synapse objects read as the JSON users and
//! bridges see, waiting for conditions and Events, the secret scan, and real Synapse boots
//! through the pod harness.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::operator_process::OperatorProcess;
use e2e::pod_harness::{PodProcess, Scenario};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Resource};
use serde_json::{Value, json};

pub const OPERATOR: &str = "synapse-operator";
/// Long enough for a loaded 2-core CI machine; a healthy run needs a few seconds.
pub const TIMEOUT: Duration = Duration::from_secs(60);
pub const HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";

/// One test's share of the plane: its namespace (enforcing Pod Security `restricted`) and an
/// operator process watching only that namespace.
pub struct Plane {
    pub client: Client,
    pub ns: TestNamespace,
    pub operator: OperatorProcess,
    _claims: ForgetClaims,
}

/// Removes the pod harness's claim data of a namespace (Synapse's database, users' files) when
/// the test ends, passed or failed.
pub struct ForgetClaims(pub String);

impl Drop for ForgetClaims {
    fn drop(&mut self) {
        if let Err(e) = e2e::pod_harness::forget_claims(&self.0) {
            eprintln!("forget the claim data of {}: {e}", self.0);
        }
    }
}

impl Plane {
    /// A namespace `<prefix>-…` and a ready synapse-operator for it (`log_level` as given to
    /// `--log-level`).
    pub async fn start(prefix: &str, log_level: &str) -> Self {
        let client = e2e::client().await;
        e2e::operators::install_crds(&client).await;
        let ns = restricted_namespace(&client, prefix).await;
        let operator = start_operator(&ns.name, log_level, "op").await;
        Self {
            client,
            _claims: ForgetClaims(ns.name.clone()),
            ns,
            operator,
        }
    }

    pub fn synapses(&self) -> Api<DynamicObject> {
        synapses(&self.client, &self.ns.name)
    }

    /// Stops the operator and deletes the namespace (the claim data goes with the Plane).
    pub async fn finish(self) {
        let Plane {
            ns,
            operator,
            _claims,
            ..
        } = self;
        drop(operator);
        ns.delete().await;
    }
}

/// A ready synapse-operator process for `namespace`.
pub async fn start_operator(namespace: &str, log_level: &str, label: &str) -> OperatorProcess {
    let mut operator = OperatorProcess::builder(OPERATOR, namespace)
        .log_level(log_level)
        .label(label)
        .start();
    operator.wait_ready(TIMEOUT).await;
    operator
}

/// A namespace whose Pod Security admission enforces `restricted`, so the plane really checks
/// the Synapse pod.
pub async fn restricted_namespace(client: &Client, prefix: &str) -> TestNamespace {
    TestNamespace::create(
        client,
        prefix,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await
}

pub fn synapse_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "synapse.opdev.io",
        "v1alpha1",
        "Synapse",
    ))
}

pub fn synapses(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &synapse_resource())
}

/// Creates a Synapse from its spec, written as a user writes it.
pub async fn create_synapse(api: &Api<DynamicObject>, name: &str, spec: Value) {
    e2e::objects::create(api, "Synapse", name, spec).await;
}

/// A Synapse as JSON (metadata, spec, status).
pub async fn get_synapse(api: &Api<DynamicObject>, name: &str) -> Value {
    let object = api
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get Synapse {name}: {e}"));
    serde_json::to_value(object).expect("a Synapse serialises")
}

/// Merge-patches a Synapse's spec.
pub async fn patch_spec(api: &Api<DynamicObject>, name: &str, spec: Value) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": spec})),
    )
    .await
    .unwrap_or_else(|e| panic!("patch Synapse {name}: {e}"));
}

// Each test crate uses a different part of these.
#[allow(unused_imports)]
pub use e2e::objects::{condition, condition_state, is_running};

/// Waits until `check` holds for the Synapse, returning it; the panic shows the last status.
pub async fn wait_synapse(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    let started = tokio::time::Instant::now();
    loop {
        if let Ok(Some(object)) = api.get_opt(name).await {
            last = serde_json::to_value(object).expect("a Synapse serialises");
            if check(&last) {
                return last;
            }
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "timed out waiting for Synapse {name}: {what}; last status: {:#}",
            last["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn wait_running(api: &Api<DynamicObject>, name: &str) -> Value {
    wait_synapse(api, name, "Ready and RUNNING", is_running).await
}

/// Waits until the Synapse reports the problem `reason`: Ready=False with that reason for its
/// current generation, state FAILED and a status reason.
pub async fn wait_failed(api: &Api<DynamicObject>, name: &str, reason: &str) -> Value {
    wait_synapse(api, name, &format!("FAILED with {reason}"), |s| {
        condition_state(s, "Ready") == ("False".into(), reason.into())
            && s["status"]["state"] == "FAILED"
            && s["status"]["observedGeneration"] == s["metadata"]["generation"]
            && s["status"]["reason"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
    })
    .await
}

/// The events.k8s.io Events regarding the Synapse `name`.
pub async fn synapse_events(client: &Client, namespace: &str, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().is_some_and(|r| {
                r.kind.as_deref() == Some("Synapse") && r.name.as_deref() == Some(name)
            })
        })
        .collect()
}

/// Waits for an Event of `type_` (`Normal`/`Warning`) with `reason` regarding the Synapse,
/// reported by the operator; returns its note.
pub async fn wait_event(
    client: &Client,
    namespace: &str,
    name: &str,
    type_: &str,
    reason: &str,
) -> String {
    wait_for(
        TIMEOUT,
        &format!("a {type_} Event {reason} regarding Synapse {name}"),
        || async {
            synapse_events(client, namespace, name)
                .await
                .into_iter()
                .find(|e| {
                    e.type_.as_deref() == Some(type_)
                        && e.reason.as_deref() == Some(reason)
                        && e.reporting_controller.as_deref() == Some(OPERATOR)
                })
                .map(|e| e.note.unwrap_or_default())
        },
    )
    .await
}

pub async fn create_config_map(
    client: &Client,
    namespace: &str,
    name: &str,
    data: &[(&str, &str)],
) -> ConfigMap {
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("create ConfigMap {name}: {e}"))
}

/// Replaces the data of a ConfigMap (as `kubectl edit` would); returns it as stored.
pub async fn set_config_map_data(
    client: &Client,
    namespace: &str,
    name: &str,
    data: &[(&str, &str)],
) -> ConfigMap {
    let api = Api::<ConfigMap>::namespaced(client.clone(), namespace);
    let mut cm = api.get(name).await.expect("get the ConfigMap");
    cm.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    api.replace(name, &PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("replace ConfigMap {name}: {e}"))
}

pub async fn get<K>(client: &Client, namespace: &str, name: &str) -> K
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", K::kind(&())))
}

pub async fn get_opt<K>(client: &Client, namespace: &str, name: &str) -> Option<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("get {} {name}: {e}", K::kind(&())))
}

/// A Secret's data as text.
pub fn secret_text(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                String::from_utf8(v.0.clone()).expect("UTF-8 secret"),
            )
        })
        .collect()
}

/// The values to look for in a secret scan: each value of the homeserver Secret, and the key
/// material of the signing key on its own.
pub fn secret_needles(secret: &Secret) -> Vec<String> {
    let mut needles = Vec::new();
    for (key, value) in secret_text(secret) {
        let value = value.trim().to_owned();
        if key == "signing.key" {
            let seed = value
                .rsplit(' ')
                .next()
                .expect("a signing key line")
                .to_owned();
            needles.push(seed);
        }
        needles.push(value);
    }
    assert!(
        needles.iter().all(|n| n.len() >= 40),
        "secrets are long: {}",
        needles.len()
    );
    needles
}

/// Asserts that no secret value appears in any ConfigMap, any Synapse (status included), any
/// annotation, or any other non-Secret object of the namespace (Deployments, ReplicaSets, Pods,
/// Services, PVCs, Events), nor in the operator's log.
pub async fn assert_no_secret_leak(
    client: &Client,
    namespace: &str,
    needles: &[String],
    operator_log: &str,
) {
    let mut documents: Vec<(String, String)> = Vec::new();
    async fn add<K>(client: &Client, namespace: &str, documents: &mut Vec<(String, String)>)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + k8s_openapi::serde::Serialize
            + std::fmt::Debug,
    {
        for object in Api::<K>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", K::kind(&())))
            .items
        {
            let name = format!(
                "{} {}",
                K::kind(&()),
                object.meta().name.clone().unwrap_or_default()
            );
            documents.push((name, serde_json::to_string(&object).expect("serialise")));
        }
    }
    add::<ConfigMap>(client, namespace, &mut documents).await;
    add::<Deployment>(client, namespace, &mut documents).await;
    add::<ReplicaSet>(client, namespace, &mut documents).await;
    add::<Pod>(client, namespace, &mut documents).await;
    add::<Service>(client, namespace, &mut documents).await;
    add::<PersistentVolumeClaim>(client, namespace, &mut documents).await;
    add::<ServiceAccount>(client, namespace, &mut documents).await;
    add::<Event>(client, namespace, &mut documents).await;
    add::<k8s_openapi::api::core::v1::Event>(client, namespace, &mut documents).await;
    for synapse in synapses(client, namespace)
        .list(&ListParams::default())
        .await
        .expect("list Synapses")
        .items
    {
        documents.push((
            format!(
                "Synapse {}",
                synapse.metadata.name.clone().unwrap_or_default()
            ),
            serde_json::to_string(&synapse).expect("serialise"),
        ));
    }
    // Secrets hold secrets; their annotations must not.
    for secret in Api::<Secret>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list Secrets")
        .items
    {
        documents.push((
            format!(
                "annotations of Secret {}",
                secret.metadata.name.clone().unwrap_or_default()
            ),
            serde_json::to_string(&secret.metadata.annotations).expect("serialise"),
        ));
    }
    documents.push(("the operator's log".into(), operator_log.to_owned()));
    assert!(documents.len() > 8, "the scan found objects to scan");
    for (what, text) in &documents {
        for needle in needles {
            assert!(
                !text.contains(needle.as_str()),
                "a generated secret appears in {what}"
            );
        }
    }
}

/// Runs the Synapse Deployment's current pod for real and waits until it answers `/health` and
/// `/_matrix/client/versions` on `port`.
pub async fn boot_synapse(
    scenario: &Scenario,
    client: &Client,
    namespace: &str,
    name: &str,
    port: u16,
) -> PodProcess {
    let mut synapse = scenario
        .run_deployment(client, namespace, name, None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let health = synapse
        .wait_http_ok(port, "/health", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.text(), "OK");
    eprintln!(
        "Synapse {namespace}/{name} answered /health {:?} after its start",
        synapse.started().elapsed()
    );
    let versions = synapse
        .http_get(port, "/_matrix/client/versions")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    let list = versions["versions"].as_array().expect("a versions list");
    assert!(
        !list.is_empty() && list.iter().all(Value::is_string),
        "{versions}"
    );
    synapse
}

/// Runs `command` in the view of the Synapse Deployment's current pod (same volumes, user and
/// image) and returns its output once it exited successfully.
pub async fn run_in_pod(
    scenario: &Scenario,
    client: &Client,
    namespace: &str,
    deployment: &str,
    command: &[&str],
) -> String {
    let mut pod = e2e::pod_harness::fetch::deployment_pod(client, namespace, deployment, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = pod.spec.as_mut().expect("a pod spec");
    spec.containers[0].command = Some(command.iter().map(|s| s.to_string()).collect());
    spec.containers[0].args = None;
    let mut process = scenario
        .run(client, &pod, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = process
        .wait_exit(TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let output = process.output();
    assert!(status.success(), "{command:?} failed ({status}):\n{output}");
    output
}

/// The file `key` of the Synapse's operator-owned config Secret.
pub async fn config_file(client: &Client, namespace: &str, synapse: &str, key: &str) -> String {
    let secret: Secret = get(client, namespace, &format!("{synapse}-config")).await;
    secret_text(&secret)
        .remove(key)
        .unwrap_or_else(|| panic!("{synapse}-config has no {key}"))
}

/// The pod-template hash annotation of the Synapse's Deployment.
pub fn template_hash(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(HASH_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| panic!("the pod template has no {HASH_ANNOTATION}"))
}

/// The Deployment's ReplicaSets, by revision.
pub async fn replica_sets(
    client: &Client,
    namespace: &str,
    deployment: &Deployment,
) -> BTreeMap<u64, ReplicaSet> {
    let uid = deployment.metadata.uid.clone().expect("a uid");
    Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list ReplicaSets")
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .map(|rs| {
            let revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .and_then(|r| r.parse().ok())
                .expect("a ReplicaSet revision");
            (revision, rs)
        })
        .collect()
}

/// 32 random bytes as 64 hex digits, for app-service tokens in test files.
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA1 as hex, by Python's hmac module; the key goes through stdin, never a command line.
pub fn hmac_sha1_hex(key: &str, message: &[u8]) -> String {
    let mut child = Command::new("/usr/bin/python3.11")
        .args([
            "-I",
            "-c",
            "import sys, hmac, hashlib\n\
             key, message = sys.stdin.buffer.read().split(b'\\n', 1)\n\
             print(hmac.new(key, message, hashlib.sha1).hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3.11");
    let mut input = key.as_bytes().to_vec();
    input.push(b'\n');
    input.extend_from_slice(message);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write to python");
    let output = child.wait_with_output().expect("python's output");
    assert!(output.status.success(), "hmac helper failed");
    String::from_utf8(output.stdout)
        .expect("hex")
        .trim()
        .to_owned()
}
