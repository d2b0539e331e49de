//! One stored object the operators cannot read (written under a looser schema, as an older or a
//! foreign CRD would have let it through) stalls nothing: the synapse-operator and a bridge
//! operator watching Synapses report it (a Warning Event on it, a log line) and go on with every
//! other object; once it is fixed it is reconciled like the rest.
//!
//! This binary swaps the Synapse CRD's schema for a moment (cargo runs test binaries one after
//! another, so no other test sees it) and puts it back however the test ends.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

use std::time::Duration;

use e2e::TestNamespace;
use e2e::objects::{TIMEOUT, condition_state, resource, wait_event, wait_object};
use e2e::operator_process::OperatorProcess;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const CRD: &str = "synapses.synapse.opdev.io";

/// Puts the committed CRDs back when dropped, whether the test passed or not.
struct RestoreCrds;

impl Drop for RestoreCrds {
    fn drop(&mut self) {
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(async { e2e::operators::install_crds(&e2e::client().await).await });
        })
        .join()
        .expect("reinstall the CRDs");
    }
}

fn synapse(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .expect("an object")
}

fn values(server_name: &str) -> Value {
    json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}})
}

/// Stores `object` while the Synapse CRD takes any spec, then restores the CRD.
async fn store_under_a_loose_schema(
    client: &kube::Client,
    api: &Api<DynamicObject>,
    object: &DynamicObject,
) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = crds.get(CRD).await.expect("the Synapse CRD");
    let schema = crd.spec.versions[0]
        .schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .expect("a schema");
    let properties = schema.properties.as_mut().expect("properties");
    properties.insert(
        "spec".into(),
        serde_json::from_value(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        )
        .expect("a schema"),
    );
    schema.x_kubernetes_validations = None;
    crd.metadata.managed_fields = None;
    crds.replace(CRD, &PostParams::default(), &crd)
        .await
        .expect("loosen the schema");
    e2e::wait_for(
        Duration::from_secs(30),
        "the loose schema to take",
        || async { api.create(&PostParams::default(), object).await.ok() },
    )
    .await;
    e2e::operators::install_crds(client).await;
}

#[tokio::test]
async fn an_unreadable_synapse_is_reported_and_skipped() {
    let client = e2e::client().await;
    let _restore = RestoreCrds;
    e2e::operators::install_crds(&client).await;
    let ns = TestNamespace::create(&client, "unreadable", &[]).await;
    let synapses: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &resource("Synapse"));
    store_under_a_loose_schema(
        &client,
        &synapses,
        &synapse("broken", json!({"homeserver": "not a mapping"})),
    )
    .await;

    let mut operators = Vec::new();
    for operator in ["synapse-operator", "heisenbridge-operator"] {
        let mut process = OperatorProcess::builder(operator, &ns.name)
            .label("unreadable")
            .start();
        process.wait_ready(Duration::from_secs(60)).await;
        operators.push(process);
    }
    synapses
        .create(
            &PostParams::default(),
            &synapse("hs", values("unreadable.example.org")),
        )
        .await
        .expect("create a readable Synapse");
    let ready = |o: &Value| condition_state(o, "Ready").0 == "True";
    wait_object(&synapses, "hs", "the readable Synapse Ready", ready).await;

    // The bridge operator reads Synapses too: the broken one does not hold it up either.
    let bridges: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &resource("Heisenbridge"));
    let bridge: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Heisenbridge",
        "metadata": {"name": "irc"},
        "spec": {"synapse": {"name": "hs"}},
    }))
    .expect("a bridge");
    bridges
        .create(&PostParams::default(), &bridge)
        .await
        .expect("create the bridge");
    wait_object(&bridges, "irc", "Registered", |o| {
        condition_state(o, "Registered").0 == "True"
    })
    .await;

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    for operator in ["synapse-operator", "heisenbridge-operator"] {
        let note = wait_event(
            &events,
            operator,
            ("Synapse", "broken"),
            "Warning",
            "UnreadableObject",
        )
        .await;
        assert!(
            note.contains("homeserver"),
            "the note says what is wrong: {note}"
        );
    }
    assert!(
        operators[0].log_text().contains("cannot read the object"),
        "the operator logs it"
    );

    // Fixed under the real schema, it is reconciled like any other.
    synapses
        .patch(
            "broken",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": values("fixed.example.org")})),
        )
        .await
        .expect("fix the broken Synapse");
    wait_object(&synapses, "broken", "the fixed Synapse Ready", ready).await;

    // The bridge first, while its operator can release its finalizer.
    bridges
        .delete("irc", &DeleteParams::default())
        .await
        .expect("delete the bridge");
    e2e::wait_for(TIMEOUT, "the bridge to be gone", || async {
        bridges.get_opt("irc").await.ok().filter(Option::is_none)
    })
    .await;
    for operator in &mut operators {
        operator.assert_running();
        assert!(operator.stop().success());
    }
    e2e::pod_harness::forget_claims(&ns.name).expect("forget the claim data");
    ns.delete().await;
}
