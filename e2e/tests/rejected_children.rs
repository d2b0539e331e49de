//! A child the real apiserver rejects (HTTP 422 or 400: its own validation, or a cluster's
//! admission policy) is reported on the object that asked for it, for all three kinds: `Ready=False` with reason `Invalid` and the apiserver's own message
//! naming the child and the field, `state: FAILED`, a Warning Event; the operator keeps running
//! and reconciling the others, and a fixed spec recovers.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

use std::time::Duration;

use e2e::TestNamespace;
use e2e::objects::{
    TIMEOUT, condition_message, condition_state, resource, wait_event, wait_object,
};
use e2e::operator_process::OperatorProcess;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];

struct Plane {
    ns: TestNamespace,
    client: kube::Client,
    operators: Vec<OperatorProcess>,
}

impl Plane {
    async fn start() -> Self {
        let client = e2e::client().await;
        e2e::operators::install_crds(&client).await;
        let ns = TestNamespace::create(
            &client,
            "rejected",
            &[
                ("pod-security.kubernetes.io/enforce", "restricted"),
                ("pod-security.kubernetes.io/enforce-version", "latest"),
            ],
        )
        .await;
        let mut operators = Vec::new();
        for operator in OPERATORS {
            let mut process = OperatorProcess::builder(operator, &ns.name)
                .label("rejected")
                .start();
            process.wait_ready(Duration::from_secs(60)).await;
            operators.push(process);
        }
        Self {
            ns,
            client,
            operators,
        }
    }

    fn api(&self, kind: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns.name, &resource(kind))
    }

    async fn create(&self, kind: &str, name: &str, spec: Value) {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a valid object");
        self.api(kind)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create {kind} {name}: {e}"));
    }

    async fn patch_spec(&self, kind: &str, name: &str, spec: Value) {
        self.api(kind)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .unwrap_or_else(|e| panic!("patch {kind} {name}: {e}"));
    }

    /// Waits until the object reports the refusal of `child`, naming `field`; checks the
    /// Warning Event of `operator` too.
    async fn wait_refused(&self, operator: &str, kind: &str, name: &str, child: &str, field: &str) {
        let object = wait_object(
            &self.api(kind),
            name,
            &format!("Ready=False with reason Invalid naming {child}"),
            |o| {
                condition_state(o, "Ready") == ("False".into(), "Invalid".into())
                    && condition_message(o, "Ready").contains(child)
            },
        )
        .await;
        let message = condition_message(&object, "Ready");
        assert!(
            message.contains(field),
            "{kind} {name}: the apiserver's message names the field {field}: {message}"
        );
        assert_eq!(object["status"]["state"], "FAILED", "{kind} {name}");
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns.name);
        let note = wait_event(&events, operator, (kind, name), "Warning", "Invalid").await;
        assert!(note.contains(child), "{note}");
    }

    async fn wait_ready(&self, kind: &str, name: &str) {
        wait_object(&self.api(kind), name, "Ready=True", |o| {
            condition_state(o, "Ready").0 == "True"
        })
        .await;
    }

    async fn finish(mut self) {
        // The bridges first, while their operators can withdraw them and release their
        // finalizers.
        for kind in ["Heisenbridge", "MautrixSignal"] {
            let api = self.api(kind);
            api.delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("delete the {kind}s: {e}"));
            e2e::wait_for(TIMEOUT, &format!("the {kind}s to be gone"), || async {
                api.list(&ListParams::default())
                    .await
                    .ok()
                    .filter(|l| l.items.is_empty())
            })
            .await;
        }
        for operator in &mut self.operators {
            operator.assert_running();
            let status = operator.stop();
            assert!(status.success(), "the operator stops cleanly: {status}");
        }
        e2e::pod_harness::forget_claims(&self.ns.name).expect("forget the claim data");
        self.ns.delete().await;
    }
}

/// A cluster's admission policy that refuses, as invalid, Heisenbridge Deployments of the test
/// namespace whose images do not come from its registry; removed when dropped.
struct ImagePolicy {
    name: String,
}

impl ImagePolicy {
    async fn install(client: &kube::Client, namespace: &str) -> Self {
        let name = format!("{namespace}-images");
        let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": ["apps"], "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"], "resources": ["deployments"],
                    }],
                    "objectSelector": {"matchLabels": {"app.kubernetes.io/name": "heisenbridge"}},
                },
                "validations": [{
                    "expression": "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.org/'))",
                    "message": "images come from registry.example.org",
                    "reason": "Invalid",
                }],
            },
        }))
        .expect("a policy");
        policies
            .create(&PostParams::default(), &policy)
            .await
            .expect("create the admission policy");
        let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
        let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": namespace,
                }}},
            },
        }))
        .expect("a binding");
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("bind the admission policy");
        // A new policy takes a moment to be enforced: probe with a dry run.
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let probe: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "probe", "labels": {"app.kubernetes.io/name": "heisenbridge"}},
            "spec": {
                "selector": {"matchLabels": {"app": "probe"}},
                "template": {
                    "metadata": {"labels": {"app": "probe"}},
                    "spec": {"containers": [{"name": "c", "image": "elsewhere/probe"}]},
                },
            },
        }))
        .expect("a Deployment");
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        e2e::wait_for(
            Duration::from_secs(30),
            "the policy to be enforced",
            || async {
                deployments
                    .create(&dry_run, &probe)
                    .await
                    .is_err()
                    .then_some(())
            },
        )
        .await;
        Self { name }
    }
}

impl Drop for ImagePolicy {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A client of its own: the test's runtime is blocked in this drop.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(async move {
                    let client = e2e::client().await;
                    let params = kube::api::DeleteParams::default();
                    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
                    let _ = bindings.delete(&name, &params).await;
                    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client);
                    let _ = policies.delete(&name, &params).await;
                })
        })
        .join()
        .expect("remove the admission policy");
    }
}

fn values(server_name: &str) -> Value {
    json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}})
}

#[tokio::test]
async fn a_rejected_child_is_reported_on_every_kind_and_a_fixed_spec_recovers() {
    let plane = Plane::start().await;
    let ns = plane.ns.name.clone();

    // Synapse: a name no Service may have, a size no PVC may ask for, a memory limit below
    // the request; and a healthy one beside them.
    plane
        .create("Synapse", "hs", values("rejected.example.org"))
        .await;
    plane
        .create("Synapse", "my.synapse", values("dotted.example.org"))
        .await;
    let mut sized = values("sized.example.org");
    sized["storage"] = json!({"size": "10 GB"});
    plane.create("Synapse", "sized", sized).await;
    let mut squeezed = values("squeezed.example.org");
    squeezed["resources"] = json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}});
    plane.create("Synapse", "squeezed", squeezed).await;

    plane
        .wait_refused(
            "synapse-operator",
            "Synapse",
            "my.synapse",
            &format!("Service {ns}/my.synapse"),
            "metadata.name",
        )
        .await;
    plane
        .wait_refused(
            "synapse-operator",
            "Synapse",
            "sized",
            &format!("PersistentVolumeClaim {ns}/sized-data"),
            "quantities must match",
        )
        .await;
    plane
        .wait_refused(
            "synapse-operator",
            "Synapse",
            "squeezed",
            &format!("Deployment {ns}/squeezed"),
            "must be less than or equal to memory limit",
        )
        .await;
    plane.wait_ready("Synapse", "hs").await;

    // The bridges, on the healthy Synapse: an image a cluster policy refuses (a Heisenbridge's
    // names and fields are all checked by its CRD, so only a policy can refuse its children), a
    // name no Service may have, a size no PVC may ask for.
    let _policy = ImagePolicy::install(&plane.client, &ns).await;
    plane
        .create("Heisenbridge", "irc", json!({"synapse": {"name": "hs"}}))
        .await;
    plane
        .create(
            "MautrixSignal",
            "my.signal",
            json!({"synapse": {"name": "hs"}}),
        )
        .await;
    plane
        .create(
            "MautrixSignal",
            "sized",
            json!({"synapse": {"name": "hs"}, "storage": {"size": "1 GB"}}),
        )
        .await;
    plane
        .wait_refused(
            "heisenbridge-operator",
            "Heisenbridge",
            "irc",
            &format!("Deployment {ns}/irc-heisenbridge"),
            "images come from registry.example.org",
        )
        .await;
    plane
        .wait_refused(
            "signal-operator",
            "MautrixSignal",
            "my.signal",
            &format!("Service {ns}/my.signal-mautrix-signal"),
            "metadata.name",
        )
        .await;
    plane
        .wait_refused(
            "signal-operator",
            "MautrixSignal",
            "sized",
            &format!("PersistentVolumeClaim {ns}/sized-mautrix-signal-data"),
            "quantities must match",
        )
        .await;

    // Fixing the spec recovers without any other step.
    plane
        .patch_spec("Synapse", "sized", json!({"storage": {"size": "10Gi"}}))
        .await;
    plane
        .patch_spec(
            "Synapse",
            "squeezed",
            json!({"resources": {"limits": {"memory": "2Gi"}}}),
        )
        .await;
    plane
        .patch_spec(
            "Heisenbridge",
            "irc",
            json!({"image": "registry.example.org/heisenbridge:1.15.4"}),
        )
        .await;
    plane
        .patch_spec(
            "MautrixSignal",
            "sized",
            json!({"storage": {"size": "1Gi"}}),
        )
        .await;
    plane.wait_ready("Synapse", "sized").await;
    plane.wait_ready("Synapse", "squeezed").await;
    plane.wait_ready("Heisenbridge", "irc").await;
    plane.wait_ready("MautrixSignal", "sized").await;
    plane.finish().await;
}
