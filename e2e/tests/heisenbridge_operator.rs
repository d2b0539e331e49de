//! The heisenbridge-operator against the local plane (issue 5), bridge side: each test has its
//! own namespace, which enforces Pod Security `restricted`, and its own operator process
//! watching only that namespace. No synapse-operator runs here: the tests create Synapse objects
//! and write their status themselves, playing its part of the handshake. The full handshake with
//! the real synapse-operator and real programs is in `appservice_handshake.rs`.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`); the rule cross-check needs
//! `hack/python-env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::objects::{condition_message, condition_state, create, get_json, resource, wait_object};
use e2e::operator_process::OperatorProcess;
use e2e::operators::{free_local_port, install_crds};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::{Value, json};

const OPERATOR: &str = "heisenbridge-operator";
/// Long enough for a loaded 2-core machine; a healthy run needs a few seconds.
const TIMEOUT: Duration = Duration::from_secs(60);
const FINALIZER: &str = "synapse.opdev.io/appservice-registration";
const HASH_ANNOTATION: &str = "synapse.opdev.io/registration-hash";
const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";
const ERRORS: &str = "matrix_operator_reconciliation_errors_total";

fn testdata(name: &str) -> String {
    let path = e2e::repo_root()
        .join("e2e/testdata/heisenbridge")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// One test's share of the plane: a `restricted` namespace and an operator process for it.
struct Plane {
    client: Client,
    ns: TestNamespace,
    operator: OperatorProcess,
}

impl Plane {
    async fn start(prefix: &str) -> Self {
        let client = e2e::client().await;
        install_crds(&client).await;
        let ns = TestNamespace::create(
            &client,
            prefix,
            &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "latest"),
            ],
        )
        .await;
        let operator = start_operator(&ns.name).await;
        Self {
            client,
            ns,
            operator,
        }
    }

    fn ns(&self) -> &str {
        &self.ns.name
    }

    fn synapses(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &resource("Synapse"))
    }

    fn bridges(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &resource("Heisenbridge"))
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    /// Deletes the bridges while the operator still runs (their finalizers need it), then the
    /// namespace.
    async fn finish(mut self) {
        let bridges = self.bridges();
        bridges
            .delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete the Heisenbridges");
        wait_for(TIMEOUT, "the Heisenbridges to be gone", || async {
            bridges
                .list(&ListParams::default())
                .await
                .ok()
                .filter(|l| l.items.is_empty())
        })
        .await;
        self.operator.assert_running();
        drop(self.operator);
        self.ns.delete().await;
    }
}

async fn start_operator(namespace: &str) -> OperatorProcess {
    let mut operator = OperatorProcess::builder(OPERATOR, namespace).start();
    operator.wait_ready(TIMEOUT).await;
    operator
}

async fn create_synapse(plane: &Plane, name: &str) {
    let spec =
        json!({"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}});
    create(&plane.synapses(), "Synapse", name, spec).await;
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

/// A ready Synapse's status, listing `app_services`.
fn ready_status(plane: &Plane, name: &str, app_services: Value) -> Value {
    json!({
        "clientUrl": format!("http://{name}.{}.svc:8008", plane.ns()),
        "homeserverConfiguration": {"serverName": "example.com"},
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

/// Waits for an Event of `type_` and `reason` regarding the Heisenbridge `name`, reported by the
/// operator; returns its note.
async fn wait_event(plane: &Plane, name: &str, type_: &str, reason: &str) -> String {
    e2e::objects::wait_event(
        &plane.api(),
        OPERATOR,
        ("Heisenbridge", name),
        type_,
        reason,
    )
    .await
}

/// The registration Secret of bridge `name` and its file, parsed.
async fn registration(plane: &Plane, name: &str) -> (Secret, Vec<u8>, Value) {
    let secret_name = format!("{name}-heisenbridge-registration");
    let secret = wait_for(TIMEOUT, &format!("Secret {secret_name}"), || async {
        plane.api::<Secret>().get_opt(&secret_name).await.ok()?
    })
    .await;
    let bytes = secret.data.as_ref().expect("data")["registration.yaml"]
        .0
        .clone();
    let file = serde_json::from_slice(&bytes).expect("the registration file is JSON");
    (secret, bytes, file)
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
            use std::io::Write as _;
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("run python3.11");
    assert!(output.status.success());
    format!("sha256:{}", String::from_utf8_lossy(&output.stdout).trim())
}

fn source(plane: &Plane, name: &str) -> Value {
    json!({"kind": "Heisenbridge", "namespace": plane.ns(), "name": name})
}

fn assert_token(token: &Value) {
    let token = token.as_str().expect("a string token");
    assert_eq!(token.len(), 64, "64 characters");
    assert!(
        token.chars().all(|c| c.is_ascii_alphanumeric()),
        "alphanumeric"
    );
}

fn annotation_key(bridge: &str) -> String {
    format!("heisenbridge.appservice.synapse.opdev.io/{bridge}")
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

/// The Pod Security admission of the namespace really refuses a pod that is not `restricted`.
async fn assert_restricted_is_enforced(plane: &Plane) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "not-restricted"},
        "spec": {"containers": [{"name": "c", "image": "hif1/heisenbridge:1.15.4"}]},
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

/// The resource versions of the objects of one bridge and its Synapse, to see that nothing was
/// written.
async fn versions(plane: &Plane, bridge: &str, synapse: &str) -> Vec<String> {
    let workload = format!("{bridge}-heisenbridge");
    vec![
        get_json(&plane.bridges(), bridge).await["metadata"]["resourceVersion"].to_string(),
        get_json(&plane.synapses(), synapse).await["metadata"]["resourceVersion"].to_string(),
        plane
            .api::<Secret>()
            .get(&format!("{workload}-registration"))
            .await
            .expect("the Secret")
            .resource_version()
            .unwrap_or_default(),
        plane
            .api::<Service>()
            .get(&workload)
            .await
            .expect("the Service")
            .resource_version()
            .unwrap_or_default(),
        plane
            .api::<Deployment>()
            .get(&workload)
            .await
            .expect("the Deployment")
            .resource_version()
            .unwrap_or_default(),
    ]
}

/// Waits until the operator has run no reconciliation for `calm`.
async fn settle(operator: &OperatorProcess, calm: Duration) {
    let mut last = operator.metric(RECONCILIATIONS);
    let mut since = tokio::time::Instant::now();
    let started = since;
    while since.elapsed() < calm {
        assert!(started.elapsed() < TIMEOUT, "the operator never settled");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = operator.metric(RECONCILIATIONS);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        }
    }
}

#[tokio::test]
async fn a_default_bridge_gets_its_objects_and_announces_itself() {
    let plane = Plane::start("hb-objects").await;
    assert_restricted_is_enforced(&plane).await;
    create_synapse(&plane, "hs").await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", json!([]))).await;
    create(
        &plane.bridges(),
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": "hs"}, "verboseLevel": 2, "owner": "@alice:example.com"}),
    )
    .await;

    // The registration: generated, with this bridge's Service URL, kept in an owned Secret.
    let (secret, bytes, file) = registration(&plane, "irc").await;
    assert_eq!(file["id"], "heisenbridge");
    assert_eq!(
        file["url"],
        format!("http://irc-heisenbridge.{}.svc:9898", plane.ns())
    );
    assert_eq!(file["sender_localpart"], "heisenbridge");
    assert_eq!(file["rate_limited"], false);
    assert_eq!(
        file["namespaces"],
        json!({"users": [{"regex": "@irc_.*", "exclusive": true}], "aliases": [], "rooms": []})
    );
    assert_token(&file["as_token"]);
    assert_token(&file["hs_token"]);
    assert_ne!(file["as_token"], file["hs_token"]);
    let labels = secret.labels();
    assert_eq!(labels["synapse.opdev.io/synapse"], "hs");
    assert_eq!(labels["app.kubernetes.io/name"], "heisenbridge");
    assert_eq!(labels["app.kubernetes.io/instance"], "irc");
    assert_eq!(labels["app.kubernetes.io/component"], "registration");
    assert_eq!(labels["app.kubernetes.io/managed-by"], OPERATOR);
    assert_eq!(labels["app.kubernetes.io/part-of"], "matrix");
    let bridge = get_json(&plane.bridges(), "irc").await;
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Heisenbridge", "irc", Some(true))
    );
    assert_eq!(owner.uid, bridge["metadata"]["uid"].as_str().unwrap());

    // The Deployment: restricted, probed on /_matrix/mau/live, Synapse's URL from its status.
    let deployment: Deployment = wait_for(TIMEOUT, "the Deployment", || async {
        plane
            .api::<Deployment>()
            .get_opt("irc-heisenbridge")
            .await
            .ok()?
    })
    .await;
    let template = deployment.spec.as_ref().unwrap().template.clone();
    let pod = template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("hif1/heisenbridge:1.15.4"));
    assert_eq!(
        container.command.clone().unwrap(),
        [
            "python",
            "-m",
            "heisenbridge",
            "-c",
            "/registration/registration.yaml",
            "-l",
            "0.0.0.0",
            "-p",
            "9898",
            "-v",
            "-v",
            "-o",
            "@alice:example.com",
            &format!("http://hs.{}.svc:8008", plane.ns()),
        ]
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        let get = probe.clone().unwrap().http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some("/_matrix/mau/live"));
    }
    assert_eq!(
        template.metadata.unwrap().annotations.unwrap()[HASH_ANNOTATION],
        content_hash(&bytes)
    );
    let service = plane
        .api::<Service>()
        .get("irc-heisenbridge")
        .await
        .unwrap();
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.port, 9898);

    // The pod passed `restricted` admission and is ready (kwok runs it): Ready, and the
    // registration waits for the synapse-operator.
    let bridge = wait_conditions(
        &plane,
        "irc",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], Value::Null);
    assert_eq!(bridge["metadata"]["finalizers"], json!([FINALIZER]));
    wait_event(&plane, "irc", "Normal", "Running").await;

    // The announcement, written by the bridge's own field manager.
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert_eq!(
        annotations(&synapse)[&annotation_key("irc")],
        "irc-heisenbridge-registration"
    );
    assert!(
        managers(&synapse).contains(&format!("{OPERATOR}/irc")),
        "{:?}",
        managers(&synapse)
    );

    // Registered only for this registration's content on a ready Synapse.
    let hash = content_hash(&bytes);
    let entry = |state: &str, hash: &str, reason: Option<&str>| {
        json!([{"source": source(&plane, "irc"), "id": "heisenbridge", "state": state,
                "contentHash": hash, "reason": reason}])
    };
    set_synapse_status(
        &plane,
        "hs",
        ready_status(&plane, "hs", entry("registered", &hash, None)),
    )
    .await;
    let bridge = wait_conditions(&plane, "irc", ("True", "Running"), ("True", "Registered")).await;
    assert_eq!(bridge["status"]["state"], "RUNNING");
    wait_event(&plane, "irc", "Normal", "Registered").await;

    set_synapse_status(
        &plane,
        "hs",
        ready_status(&plane, "hs", entry("registered", "sha256:0ld", None)),
    )
    .await;
    wait_conditions(
        &plane,
        "irc",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;

    let rejected = "id \"heisenbridge\" is already used by another registration on this Synapse";
    set_synapse_status(
        &plane,
        "hs",
        ready_status(&plane, "hs", entry("rejected", &hash, Some(rejected))),
    )
    .await;
    let bridge = wait_conditions(
        &plane,
        "irc",
        ("True", "Running"),
        ("False", "RegistrationRejected"),
    )
    .await;
    assert!(condition_message(&bridge, "Registered").contains(rejected));
    assert_eq!(bridge["status"]["state"], "FAILED");
    let note = wait_event(&plane, "irc", "Warning", "RegistrationRejected").await;
    assert!(note.contains(rejected), "{note}");

    assert_eq!(plane.operator.metric(ERRORS), Some(0.0));
    plane.finish().await;
}

#[tokio::test]
async fn tokens_are_generated_once_and_a_steady_state_writes_nothing() {
    let mut plane = Plane::start("hb-steady").await;
    create_synapse(&plane, "hs").await;
    create(
        &plane.bridges(),
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": "hs"}}),
    )
    .await;
    let (_, first, _) = registration(&plane, "irc").await;
    set_synapse_status(
        &plane,
        "hs",
        ready_status(
            &plane,
            "hs",
            json!([{"source": source(&plane, "irc"), "id": "heisenbridge",
                    "state": "registered", "contentHash": content_hash(&first)}]),
        ),
    )
    .await;
    wait_conditions(&plane, "irc", ("True", "Running"), ("True", "Registered")).await;

    settle(&plane.operator, Duration::from_secs(3)).await;
    let before = versions(&plane, "irc", "hs").await;
    // A resync of everything by a new process must find nothing to write.
    plane.operator.stop();
    plane.operator = start_operator(plane.ns()).await;
    wait_for(TIMEOUT, "the new operator to reconcile", || async {
        plane.operator.metric(RECONCILIATIONS).filter(|n| *n >= 1.0)
    })
    .await;
    settle(&plane.operator, Duration::from_secs(3)).await;
    assert_eq!(
        versions(&plane, "irc", "hs").await,
        before,
        "something was written"
    );
    let (_, again, _) = registration(&plane, "irc").await;
    assert_eq!(again, first, "the registration, tokens included, is kept");

    // Another spec: the registration keeps its tokens, the Deployment follows.
    plane
        .bridges()
        .patch(
            "irc",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"verboseLevel": 1, "image": "hif1/heisenbridge:1.15.4"}}),
            ),
        )
        .await
        .expect("patch the bridge");
    wait_object(
        &plane.bridges(),
        "irc",
        "the new generation observed",
        |b| b["status"]["observedGeneration"] == 2,
    )
    .await;
    let deployment = plane
        .api::<Deployment>()
        .get("irc-heisenbridge")
        .await
        .unwrap();
    let command = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .command
        .clone()
        .unwrap();
    assert_eq!(command.iter().filter(|a| *a == "-v").count(), 1);
    assert_eq!(registration(&plane, "irc").await.1, first);
    assert_eq!(plane.operator.metric(ERRORS), Some(0.0));
    plane.finish().await;
}

#[tokio::test]
async fn config_map_mode_uses_the_users_registration_and_names_a_broken_rule() {
    let plane = Plane::start("hb-configmap").await;
    create_synapse(&plane, "hs").await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", json!([]))).await;
    create(
        &plane.bridges(),
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": "hs"}, "configMap": {"name": "my-heisenbridge"}}),
    )
    .await;

    // The ConfigMap does not exist yet: said so, nothing deployed; it appears: converges.
    let bridge = wait_conditions(
        &plane,
        "irc",
        ("False", "ConfigMapNotFound"),
        ("False", "ConfigMapNotFound"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], "FAILED");
    wait_event(&plane, "irc", "Warning", "ConfigMapNotFound").await;
    assert!(
        plane
            .api::<Secret>()
            .get_opt("irc-heisenbridge-registration")
            .await
            .unwrap()
            .is_none()
    );
    let configs: Api<ConfigMap> = plane.api();
    let config_map = |text: String| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("my-heisenbridge".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("heisenbridge.yaml".to_owned(), text)])),
        ..Default::default()
    };
    configs
        .create(&PostParams::default(), &config_map(testdata("valid.yaml")))
        .await
        .expect("create the ConfigMap");

    // The user's file: tokens and fields kept, url replaced by the Service's.
    wait_conditions(
        &plane,
        "irc",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    let (_, bytes, file) = registration(&plane, "irc").await;
    assert_eq!(
        file["url"],
        format!("http://irc-heisenbridge.{}.svc:9898", plane.ns())
    );
    assert_eq!(file["id"], "irc-bridge");
    assert_eq!(file["as_token"], "userAsTokenFromTheConfigMap0123456789");
    assert_eq!(file["hs_token"], "userHsTokenFromTheConfigMap0123456789");
    assert_eq!(file["sender_localpart"], "ircbot");
    assert_eq!(file["rate_limited"], false, "YAML 1.1: `no` is false");
    let input = configs.get("my-heisenbridge").await.unwrap();
    assert_eq!(
        input.data.unwrap()["heisenbridge.yaml"],
        testdata("valid.yaml"),
        "the input is never modified"
    );
    let deployment = plane
        .api::<Deployment>()
        .get("irc-heisenbridge")
        .await
        .unwrap();
    let generation = deployment.metadata.generation;

    // Each broken rule: a condition and a Warning naming it; the Deployment and the stored
    // registration stay as they were.
    for (fixture, rule) in [
        ("no-sender-localpart.yaml", "`sender_localpart` is missing"),
        (
            "two-users-namespaces.yaml",
            "exactly one namespace for the IRC users",
        ),
        ("not-a-prefix.yaml", "must be an exact prefix like @irc_.*"),
        ("missing-tokens.yaml", "`as_token` must be a string"),
    ] {
        let mut cm = configs.get("my-heisenbridge").await.unwrap();
        cm.data = Some(BTreeMap::from([(
            "heisenbridge.yaml".to_owned(),
            testdata(fixture),
        )]));
        configs
            .replace("my-heisenbridge", &PostParams::default(), &cm)
            .await
            .expect("replace the ConfigMap");
        let bridge = wait_object(&plane.bridges(), "irc", fixture, |b| {
            condition_state(b, "Ready") == is("False", "InvalidRegistration")
                && condition_message(b, "Ready").contains(rule)
        })
        .await;
        assert_eq!(
            condition_state(&bridge, "Registered"),
            is("False", "InvalidRegistration")
        );
        assert!(
            condition_message(&bridge, "Ready").contains("ConfigMap"),
            "{}",
            condition_message(&bridge, "Ready")
        );
        let note = wait_event(&plane, "irc", "Warning", "InvalidRegistration").await;
        assert!(note.contains("is not a usable registration"), "{note}");
        assert_eq!(registration(&plane, "irc").await.1, bytes);
        let now = plane
            .api::<Deployment>()
            .get("irc-heisenbridge")
            .await
            .unwrap();
        assert_eq!(
            now.metadata.generation, generation,
            "{fixture}: Deployment changed"
        );
    }

    // Fixed, with new tokens: recovers and rolls the bridge.
    let fixed = testdata("valid.yaml").replace("FromTheConfigMap", "RotatedByTheUser");
    let mut cm = configs.get("my-heisenbridge").await.unwrap();
    cm.data = Some(BTreeMap::from([("heisenbridge.yaml".to_owned(), fixed)]));
    configs
        .replace("my-heisenbridge", &PostParams::default(), &cm)
        .await
        .expect("replace the ConfigMap");
    wait_conditions(
        &plane,
        "irc",
        ("True", "Running"),
        ("False", "RegistrationPending"),
    )
    .await;
    let (_, rotated, file) = registration(&plane, "irc").await;
    assert_eq!(file["as_token"], "userAsTokenRotatedByTheUser0123456789");
    let deployment = plane
        .api::<Deployment>()
        .get("irc-heisenbridge")
        .await
        .unwrap();
    assert_eq!(
        deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()[HASH_ANNOTATION],
        content_hash(&rotated),
        "a new registration rolls the bridge"
    );
    assert_eq!(plane.operator.metric(ERRORS), Some(0.0));
    plane.finish().await;
}

#[tokio::test]
async fn a_bridge_waits_for_its_synapse_and_converges_when_it_appears() {
    let plane = Plane::start("hb-nosynapse").await;
    create(
        &plane.bridges(),
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": "hs"}}),
    )
    .await;
    let bridge = wait_conditions(
        &plane,
        "irc",
        ("False", "SynapseNotFound"),
        ("False", "SynapseNotFound"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], "FAILED");
    assert!(condition_message(&bridge, "Ready").contains("Synapse hs does not exist"));
    assert!(
        bridge["metadata"]["finalizers"].is_null(),
        "nothing announced, nothing to withdraw"
    );
    wait_event(&plane, "irc", "Warning", "SynapseNotFound").await;
    let deployments: Api<Deployment> = plane.api();
    assert!(
        deployments
            .get_opt("irc-heisenbridge")
            .await
            .unwrap()
            .is_none()
    );
    let (_, bytes, _) = registration(&plane, "irc").await;

    // The Synapse appears without a status: announced, but nothing to deploy against yet.
    create_synapse(&plane, "hs").await;
    wait_conditions(
        &plane,
        "irc",
        ("False", "SynapseNotReady"),
        ("False", "SynapseNotReady"),
    )
    .await;
    let synapse = get_json(&plane.synapses(), "hs").await;
    assert_eq!(
        annotations(&synapse)[&annotation_key("irc")],
        "irc-heisenbridge-registration"
    );
    assert!(
        deployments
            .get_opt("irc-heisenbridge")
            .await
            .unwrap()
            .is_none()
    );

    // Its status names its client URL and lists the registration: deployed and registered.
    set_synapse_status(
        &plane,
        "hs",
        ready_status(
            &plane,
            "hs",
            json!([{"source": source(&plane, "irc"), "id": "heisenbridge",
                    "state": "registered", "contentHash": content_hash(&bytes)}]),
        ),
    )
    .await;
    let bridge = wait_conditions(&plane, "irc", ("True", "Running"), ("True", "Registered")).await;
    assert_eq!(bridge["status"]["state"], "RUNNING");
    assert_eq!(bridge["metadata"]["finalizers"], json!([FINALIZER]));
    let deployment = deployments.get("irc-heisenbridge").await.unwrap();
    let command = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .command
        .clone()
        .unwrap();
    assert_eq!(
        command.last().unwrap(),
        &format!("http://hs.{}.svc:8008", plane.ns())
    );
    assert_eq!(plane.operator.metric(ERRORS), Some(0.0));
    plane.finish().await;
}

#[tokio::test]
async fn deletion_withdraws_only_its_own_announcement_and_a_deleted_synapse_is_reported() {
    let mut plane = Plane::start("hb-delete").await;
    create_synapse(&plane, "hs").await;
    set_synapse_status(&plane, "hs", ready_status(&plane, "hs", json!([]))).await;
    for name in ["irc", "libera"] {
        create(
            &plane.bridges(),
            "Heisenbridge",
            name,
            json!({"synapse": {"name": "hs"}}),
        )
        .await;
    }
    let synapse = wait_object(&plane.synapses(), "hs", "both announcements", |s| {
        let a = annotations(s);
        a.contains_key(&annotation_key("irc")) && a.contains_key(&annotation_key("libera"))
    })
    .await;
    assert_eq!(
        annotations(&synapse)[&annotation_key("libera")],
        "libera-heisenbridge-registration"
    );

    // Deleting one bridge removes its annotation and leaves the other's.
    plane
        .bridges()
        .delete("irc", &DeleteParams::default())
        .await
        .expect("delete irc");
    wait_for(TIMEOUT, "irc to be gone", || async {
        plane
            .bridges()
            .get_opt("irc")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let synapse = get_json(&plane.synapses(), "hs").await;
    let left = annotations(&synapse);
    assert!(!left.contains_key(&annotation_key("irc")), "{left:?}");
    assert_eq!(
        left[&annotation_key("libera")],
        "libera-heisenbridge-registration"
    );
    assert!(!managers(&synapse).contains(&format!("{OPERATOR}/irc")));

    // The Synapse is deleted: reported, nothing crashes, and the bridge can still go.
    plane
        .synapses()
        .delete("hs", &DeleteParams::default())
        .await
        .expect("delete the Synapse");
    let bridge = wait_conditions(
        &plane,
        "libera",
        ("False", "SynapseNotFound"),
        ("False", "SynapseNotFound"),
    )
    .await;
    assert_eq!(bridge["status"]["state"], "FAILED");
    plane.operator.assert_running();
    assert!(
        plane
            .api::<Deployment>()
            .get_opt("libera-heisenbridge")
            .await
            .unwrap()
            .is_some(),
        "the running bridge is left alone"
    );
    plane
        .bridges()
        .delete("libera", &DeleteParams::default())
        .await
        .expect("delete libera");
    wait_for(TIMEOUT, "libera to be gone", || async {
        plane
            .bridges()
            .get_opt("libera")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    plane.operator.assert_running();
    assert_eq!(plane.operator.metric(ERRORS), Some(0.0));
    plane.finish().await;
}

#[tokio::test]
async fn a_synapse_in_another_namespace_is_refused() {
    let plane = Plane::start("hb-crossns").await;
    create(
        &plane.bridges(),
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": "hs", "namespace": "elsewhere"}}),
    )
    .await;
    let bridge = wait_conditions(
        &plane,
        "irc",
        ("False", "CrossNamespaceSynapse"),
        ("False", "CrossNamespaceSynapse"),
    )
    .await;
    assert!(
        condition_message(&bridge, "Ready").contains(
            "cross-namespace Synapse references are not supported: put the bridge in the \
             Synapse's namespace"
        ),
        "{bridge}"
    );
    wait_event(&plane, "irc", "Warning", "CrossNamespaceSynapse").await;
    assert!(
        plane
            .api::<Secret>()
            .get_opt("irc-heisenbridge-registration")
            .await
            .unwrap()
            .is_none()
    );
    plane.finish().await;
}

/// A venv made by `hack/python-env`.
fn venv_python(name: &str) -> PathBuf {
    let root = std::env::var_os("SYNAPSE_OPERATORS_VENV_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/synapse-operators/venv"));
    let python = root.join(name).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run hack/python-env",
        python.display()
    );
    python
}

/// Runs the real Heisenbridge on `file` until it passes its registration checks (it then prints
/// its version and tries to reach the homeserver, here a closed loopback port) or exits.
/// Returns whether it accepted the file, and its output.
async fn heisenbridge_accepts(file: &Path) -> (bool, String) {
    let python = venv_python("heisenbridge-1.15.4");
    let port = free_local_port().to_string();
    let log = std::env::temp_dir().join(format!(
        "heisenbridge-rules-{}-{}.log",
        std::process::id(),
        file.file_name().unwrap().to_string_lossy()
    ));
    let out = std::fs::File::create(&log).expect("create the output file");
    let mut child = Command::new(python)
        .args(["-m", "heisenbridge", "-c"])
        .arg(file)
        .args(["-l", "127.0.0.1", "-p", &port, "http://127.0.0.1:9"])
        .stdout(out.try_clone().expect("clone the file handle"))
        .stderr(out)
        .spawn()
        .expect("run heisenbridge");
    let started = tokio::time::Instant::now();
    let accepted = loop {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        if output.contains("Heisenbridge v1.15.4") {
            break true;
        }
        if child.try_wait().expect("poll heisenbridge").is_some() {
            break std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Heisenbridge v1.15.4");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "heisenbridge neither accepted nor refused {} within 30 s:\n{output}",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_file(&log).expect("remove the output file");
    (accepted, output)
}

/// Runs Synapse's own loader of app-service files on `file`; returns its error, if any.
fn synapse_refuses(file: &Path) -> Option<String> {
    let output = Command::new(venv_python("synapse-1.163.2"))
        .args([
            "-c",
            "import sys, yaml\n\
             from synapse.config.appservice import _load_appservice\n\
             with open(sys.argv[1]) as f:\n    info = yaml.safe_load(f)\n\
             _load_appservice('example.com', info, sys.argv[1])",
        ])
        .arg(file)
        .output()
        .expect("run synapse's loader");
    (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The fixtures the operator's unit tests check its rules on, checked by the real programs: each
/// file the operator refuses for a Heisenbridge rule is refused by Heisenbridge with that rule,
/// each it refuses for a Synapse rule by Synapse's loader, and the valid one passes both. The
/// operator's own registration passes both too (see the appservice handshake test).
#[tokio::test]
async fn the_rules_are_heisenbridges_and_synapses_own() {
    let dir = e2e::repo_root().join("e2e/testdata/heisenbridge");
    // (fixture, Heisenbridge's message or None if it accepts, whether Synapse refuses)
    let cases = [
        ("valid.yaml", None, false),
        (
            "no-sender-localpart.yaml",
            Some("Missing sender_localpart"),
            true,
        ),
        (
            "no-users-namespace.yaml",
            Some("User namespaces missing"),
            false,
        ),
        (
            "two-users-namespaces.yaml",
            Some("A single user namespace is required"),
            false,
        ),
        (
            "not-exclusive.yaml",
            Some("User namespace must be exclusive"),
            false,
        ),
        (
            "not-a-prefix.yaml",
            Some("User namespace regex must be an exact prefix"),
            false,
        ),
        ("missing-tokens.yaml", None, true),
        ("exclusive-not-bool.yaml", None, true),
    ];
    for (fixture, heisenbridge_message, synapse_refuses_it) in cases {
        let file = dir.join(fixture);
        let (accepted, output) = heisenbridge_accepts(&file).await;
        match heisenbridge_message {
            None => assert!(accepted, "Heisenbridge refused {fixture}:\n{output}"),
            Some(message) => {
                assert!(!accepted, "Heisenbridge accepted {fixture}:\n{output}");
                assert!(output.contains(message), "{fixture}:\n{output}");
            }
        }
        let refused = synapse_refuses(&file);
        assert_eq!(
            refused.is_some(),
            synapse_refuses_it,
            "Synapse's loader on {fixture}: {refused:?}"
        );
    }
}

/// The apiserver itself refuses what the operator could not deploy: an owner that is not a
/// Matrix user ID, a name too long for the bridge's Service.
#[tokio::test]
async fn the_apiserver_refuses_a_bad_owner_and_a_name_too_long() {
    let client = e2e::client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "hb-schema", &[]).await;
    let bridges: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &resource("Heisenbridge"));
    let refusal = |name: &str, spec: Value| {
        let bridges = bridges.clone();
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("an object");
        async move {
            bridges
                .create(&PostParams::default(), &object)
                .await
                .map(|_| ())
                .expect_err("the apiserver must refuse it")
                .to_string()
        }
    };
    let bad_owner = refusal(
        "irc",
        json!({"synapse": {"name": "hs"}, "owner": "alice@example.com"}),
    )
    .await;
    assert!(
        bad_owner.contains("owner must be a Matrix user ID"),
        "{bad_owner}"
    );
    let long = refusal(&"a".repeat(51), json!({"synapse": {"name": "hs"}})).await;
    assert!(
        long.contains("metadata.name must be at most 50 characters"),
        "{long}"
    );
    ns.delete().await;
}
