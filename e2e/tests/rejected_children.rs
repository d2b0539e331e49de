//! A child the real apiserver rejects (HTTP 422 or 400: its own validation, or a cluster's
//! admission policy) is reported on the object that asked for it, for all three kinds:
//! `Ready=False` with reason `Invalid` and the apiserver's own message naming the child and the
//! reason, `state: FAILED`, a Warning Event; the operator keeps running and reconciling the
//! others, and a fixed spec recovers.
//!
//! The CRDs refuse every name and quantity from which the operators would derive a child the
//! apiserver's own validation refuses (`e2e/tests/crds.rs`), so the refusals here come from a
//! cluster's admission policies, as a site's rules on images, memory and claim sizes would.
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
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
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
        e2e::objects::create(&self.api(kind), kind, name, spec).await;
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

/// A cluster's admission policy that refuses, as invalid, the objects of one resource in the
/// test namespace that break its validations; removed when dropped.
struct AdmissionPolicy {
    name: String,
}

impl AdmissionPolicy {
    /// Installs the policy on `resource` (`group`, `version`, plural) and waits until it refuses
    /// `probe`, an object it must refuse, on a dry run.
    async fn install(
        client: &kube::Client,
        namespace: &str,
        (group, version, resource): (&str, &str, &str),
        validations: Value,
        probe: Value,
    ) -> Self {
        let name = format!("{namespace}-{resource}");
        let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
        let policy: ValidatingAdmissionPolicy = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [{
                        "apiGroups": [group], "apiVersions": [version],
                        "operations": ["CREATE", "UPDATE"], "resources": [resource],
                    }],
                },
                "validations": validations,
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
        let kind = probe["kind"].as_str().expect("the probe has a kind");
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let objects: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            namespace,
            &ApiResource::from_gvk_with_plural(&gvk, resource),
        );
        let probe: DynamicObject = serde_json::from_value(probe).expect("a probe object");
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        e2e::wait_for(
            Duration::from_secs(30),
            &format!("the policy on {resource} to be enforced"),
            || async {
                objects
                    .create(&dry_run, &probe)
                    .await
                    .is_err()
                    .then_some(())
            },
        )
        .await;
        Self { name }
    }

    /// Refuses Deployments whose containers may use more than 4Gi of memory, and Heisenbridge
    /// Deployments whose images do not come from the cluster's registry.
    async fn deployments(client: &kube::Client, namespace: &str) -> Self {
        let validations = json!([
            {
                "expression": "object.metadata.?labels[?'app.kubernetes.io/name'].orValue('') != 'heisenbridge' || object.spec.template.spec.containers.all(c, c.image.startsWith('registry.example.org/'))",
                "message": "images come from registry.example.org",
                "reason": "Invalid",
            },
            {
                // `dyn`: the policy's type checker does not see the quantities of `limits`.
                "expression": "object.spec.template.spec.containers.all(c, quantity(dyn(c.resources).?limits[?'memory'].orValue('0')).compareTo(quantity('4Gi')) <= 0)",
                "message": "a container may use at most 4Gi of memory",
                "reason": "Invalid",
            },
        ]);
        let probe = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "probe", "labels": {"app.kubernetes.io/name": "heisenbridge"}},
            "spec": {
                "selector": {"matchLabels": {"app": "probe"}},
                "template": {
                    "metadata": {"labels": {"app": "probe"}},
                    "spec": {"containers": [{"name": "c", "image": "elsewhere/probe"}]},
                },
            },
        });
        Self::install(
            client,
            namespace,
            ("apps", "v1", "deployments"),
            validations,
            probe,
        )
        .await
    }

    /// Refuses PersistentVolumeClaims that ask for more than 20Gi.
    async fn claims(client: &kube::Client, namespace: &str) -> Self {
        let validations = json!([{
            "expression": "quantity(object.spec.resources.requests['storage']).compareTo(quantity('20Gi')) <= 0",
            "message": "a claim may ask for at most 20Gi",
            "reason": "Invalid",
        }]);
        let probe = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "probe"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "30Gi"}},
            },
        });
        Self::install(
            client,
            namespace,
            ("", "v1", "persistentvolumeclaims"),
            validations,
            probe,
        )
        .await
    }
}

impl Drop for AdmissionPolicy {
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

    // The cluster's rules: memory, claim sizes, Heisenbridge images.
    let _deployments = AdmissionPolicy::deployments(&plane.client, &ns).await;
    let _claims = AdmissionPolicy::claims(&plane.client, &ns).await;

    // Synapse: a volume above the claim limit, a memory limit above the container limit; and a
    // healthy one beside them.
    plane
        .create("Synapse", "hs", values("rejected.example.org"))
        .await;
    let mut sized = values("sized.example.org");
    sized["storage"] = json!({"size": "50Gi"});
    plane.create("Synapse", "sized", sized).await;
    let mut greedy = values("greedy.example.org");
    greedy["resources"] = json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "8Gi"}});
    plane.create("Synapse", "greedy", greedy).await;

    plane
        .wait_refused(
            "synapse-operator",
            "Synapse",
            "sized",
            &format!("PersistentVolumeClaim {ns}/sized-data"),
            "a claim may ask for at most 20Gi",
        )
        .await;
    plane
        .wait_refused(
            "synapse-operator",
            "Synapse",
            "greedy",
            &format!("Deployment {ns}/greedy"),
            "a container may use at most 4Gi of memory",
        )
        .await;
    plane.wait_ready("Synapse", "hs").await;

    // The bridges, on the healthy Synapse: an image from elsewhere, a volume above the limit.
    plane
        .create("Heisenbridge", "irc", json!({"synapse": {"name": "hs"}}))
        .await;
    plane
        .create(
            "MautrixSignal",
            "sized",
            json!({"synapse": {"name": "hs"}, "storage": {"size": "50Gi"}}),
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
            "sized",
            &format!("PersistentVolumeClaim {ns}/sized-mautrix-signal-data"),
            "a claim may ask for at most 20Gi",
        )
        .await;

    // Fixing the spec recovers without any other step.
    plane
        .patch_spec("Synapse", "sized", json!({"storage": {"size": "20Gi"}}))
        .await;
    plane
        .patch_spec(
            "Synapse",
            "greedy",
            json!({"resources": {"limits": {"memory": "4Gi"}}}),
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
    plane.wait_ready("Synapse", "greedy").await;
    plane.wait_ready("Heisenbridge", "irc").await;
    plane.wait_ready("MautrixSignal", "sized").await;
    plane.finish().await;
}
