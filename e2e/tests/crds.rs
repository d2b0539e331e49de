//! The CRDs on a real API server: they install, manifests written for the original operator apply
//! unchanged, invalid objects are rejected with clear messages, and `kubectl` shows the
//! descriptions, printer columns and short names.

use std::time::Duration;

use e2e::operators::install_crds;
use e2e::{TestNamespace, client, repo_root, run, wait_for};
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const FIXTURES: &str = "e2e/testdata/original-api";

fn fixture(path: &str) -> Value {
    let file = repo_root().join(FIXTURES).join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn api_for(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("synapse.opdev.io", "v1alpha1", kind);
    Api::namespaced_with(client.clone(), namespace, &ApiResource::from_gvk(&gvk))
}

/// Creates `object` as given; returns the stored object, or the API server's message and code.
async fn create(client: &Client, namespace: &str, object: &Value) -> Result<Value, String> {
    let kind = object["kind"].as_str().expect("fixture has a kind");
    let dynamic: DynamicObject = serde_json::from_value(object.clone()).expect("a valid object");
    match api_for(client, namespace, kind)
        .create(&PostParams::default(), &dynamic)
        .await
    {
        Ok(stored) => Ok(serde_json::to_value(stored).expect("serializable")),
        Err(kube::Error::Api(status)) => Err(format!("{} ({})", status.message, status.code)),
        Err(other) => panic!("unexpected error creating {kind}: {other}"),
    }
}

/// Whether every field of `expected` is in `actual` with the same value (`actual` may have more,
/// e.g. defaults).
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        _ => actual == expected,
    }
}

#[tokio::test]
async fn crds_install_and_become_established() {
    let names = install_crds(&client().await).await;
    assert_eq!(
        names,
        [
            "heisenbridges.synapse.opdev.io",
            "mautrixsignals.synapse.opdev.io",
            "synapses.synapse.opdev.io"
        ]
    );
}

#[tokio::test]
async fn original_manifests_apply_unchanged() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "e2e-crds-original", &[]).await;
    for path in [
        "synapse-values.yaml",
        "synapse-values-postgresql.yaml",
        "synapse-configmap.yaml",
        "synapse-configmap-namespace.yaml",
        "heisenbridge-default.yaml",
        "heisenbridge-configmap.yaml",
        "heisenbridge-verbose.yaml",
        "mautrixsignal-default.yaml",
        "mautrixsignal-configmap.yaml",
    ] {
        let object = fixture(path);
        let stored = create(&client, &ns.name, &object)
            .await
            .unwrap_or_else(|message| panic!("{path} was rejected: {message}"));
        assert!(
            contains(&stored["spec"], &object["spec"]),
            "{path}: stored spec {} lost fields of {}",
            stored["spec"],
            object["spec"]
        );
    }

    // The schema's defaults keep the original operator's meaning.
    let stored = api_for(&client, &ns.name, "Synapse")
        .get("values")
        .await
        .expect("get the Synapse");
    let spec = &stored.data["spec"];
    assert_eq!(spec["createNewPostgreSQL"], json!(false));
    assert_eq!(
        spec["homeserver"]["values"]["enableRegistration"],
        json!(false)
    );
    let stored = api_for(&client, &ns.name, "Heisenbridge")
        .get("heisenbridge-default")
        .await
        .expect("get the Heisenbridge");
    assert_eq!(stored.data["spec"]["verboseLevel"], json!(0));

    ns.delete().await;
}

#[tokio::test]
async fn invalid_objects_are_rejected_with_clear_messages() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "e2e-crds-invalid", &[]).await;
    for (path, expected) in [
        (
            "invalid/synapse-both.yaml",
            "spec.homeserver.values and spec.homeserver.configMap are mutually exclusive",
        ),
        (
            "invalid/synapse-neither.yaml",
            "spec.homeserver needs one of values",
        ),
        (
            "invalid/synapse-empty-spec.yaml",
            "spec.homeserver: Required value",
        ),
        (
            "invalid/synapse-bad-server-name.yaml",
            "serverName must be a Matrix server name",
        ),
        (
            "invalid/heisenbridge-verbose-7.yaml",
            "spec.verboseLevel: Invalid value: 7",
        ),
        (
            "invalid/heisenbridge-no-synapse-name.yaml",
            "spec.synapse.name: Required value",
        ),
        (
            "invalid/mautrixsignal-no-synapse-name.yaml",
            "spec.synapse.name: Required value",
        ),
    ] {
        match create(&client, &ns.name, &fixture(path)).await {
            Ok(_) => panic!("{path} was accepted"),
            Err(message) => {
                eprintln!("{path}: {message}");
                assert!(
                    message.contains(expected),
                    "{path}: {message:?} lacks {expected:?}"
                );
                assert!(message.ends_with("(422)"), "{path}: {message}");
            }
        }
    }

    // The server name cannot change once set.
    create(&client, &ns.name, &fixture("synapse-values.yaml"))
        .await
        .expect("a valid Synapse is accepted");
    let synapses = api_for(&client, &ns.name, "Synapse");
    let patch = json!({"spec": {"homeserver": {"values": {"serverName": "example.org"}}}});
    let err = synapses
        .patch("values", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("changing serverName must be refused");
    let kube::Error::Api(status) = err else {
        panic!("unexpected error {err}");
    };
    eprintln!("serverName change: {} ({})", status.message, status.code);
    assert_eq!(status.code, 422);
    assert!(
        status.message.contains("serverName is immutable"),
        "{}",
        status.message
    );
    assert!(
        status.message.contains("breaks the homeserver"),
        "{}",
        status.message
    );

    // Other changes of the same object are still accepted.
    let patch = json!({"spec": {"homeserver": {"values": {"reportStats": false}}}});
    synapses
        .patch("values", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("changing reportStats is allowed");

    ns.delete().await;
}

/// A valid `kind` named `name`, with `spec` merged into a minimal spec.
fn object(kind: &str, name: &str, spec: Value) -> Value {
    let mut full = match kind {
        "Synapse" => {
            json!({"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}})
        }
        _ => json!({"synapse": {"name": "hs"}}),
    };
    for (key, value) in spec.as_object().expect("a spec is an object") {
        full[key] = value.clone();
    }
    json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": full,
    })
}

/// The name and quantity rules on the real API server: a name every derived name can carry and
/// quantities Kubernetes accepts pass; the others are refused at creation with the rule's reason,
/// before the operator could derive a child the API server would refuse.
#[tokio::test]
async fn names_and_quantities_are_checked_when_created() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "e2e-crds-names", &[]).await;
    let provisioned = json!({"createNewPostgreSQL": true});
    let a = |n: usize| "a".repeat(n);
    let accepted = [
        object("Synapse", &a(63), json!({})),
        object("Synapse", &format!("p{}", a(43)), provisioned.clone()),
        object("Heisenbridge", &a(50), json!({})),
        object("MautrixSignal", &a(48), json!({})),
        object("MautrixSignal", &format!("p{}", a(28)), provisioned.clone()),
        object(
            "Synapse",
            "quantities",
            json!({
                "storage": {"size": 1073741824},
                "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1Gi"}},
            }),
        ),
        object(
            "MautrixSignal",
            "sized",
            json!({"storage": {"size": "500M"}}),
        ),
    ];
    for object in accepted {
        let name = &object["metadata"]["name"];
        create(&client, &ns.name, &object)
            .await
            .unwrap_or_else(|message| panic!("{} {name} was rejected: {message}", object["kind"]));
    }

    let dns_label = |kind: &str, service: &str| {
        format!(
            "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting \
             with a letter and ending with a letter or digit) because it names the {kind}'s \
             Service, NAME{service}"
        )
    };
    let service_fit = |kind: &str, max: usize, service: &str| {
        format!(
            "metadata.name must be at most {max} characters because the {kind}'s Service is \
             named NAME{service} and a Service name is at most 63 characters long"
        )
    };
    let cluster_fit = |kind: &str, max: usize, cluster: &str| {
        format!(
            "with createNewPostgreSQL, metadata.name must be at most {max} characters because \
             the {kind}'s CloudNativePG Cluster is named NAME{cluster} and CloudNativePG \
             accepts Cluster names of at most 50 characters"
        )
    };
    let synapse_name = "spec.synapse.name must be a Synapse's name, a DNS-1035 label (lowercase \
                        letters, digits and '-', starting with a letter and ending with a letter \
                        or digit): it is also the value of the label synapse.opdev.io/synapse";
    let size = "spec.storage.size must be a quantity above 0 such as 10Gi or 500M (no space before \
                the unit): it is what the data volume's PersistentVolumeClaim requests";
    let refused = [
        (
            object("Synapse", "my.synapse", json!({})),
            dns_label("Synapse", ""),
        ),
        (
            object("Synapse", "1hs", json!({})),
            dns_label("Synapse", ""),
        ),
        (
            object("Synapse", &a(64), json!({})),
            service_fit("Synapse", 63, ""),
        ),
        (
            object("Synapse", &format!("p{}", a(44)), provisioned.clone()),
            cluster_fit("Synapse", 44, "-pgsql"),
        ),
        (
            object("Heisenbridge", "my.irc", json!({})),
            dns_label("Heisenbridge", "-heisenbridge"),
        ),
        (
            object("Heisenbridge", &a(51), json!({})),
            service_fit("Heisenbridge", 50, "-heisenbridge"),
        ),
        (
            object("MautrixSignal", "my.signal", json!({})),
            dns_label("MautrixSignal", "-mautrix-signal"),
        ),
        (
            object("MautrixSignal", &a(49), json!({})),
            service_fit("MautrixSignal", 48, "-mautrix-signal"),
        ),
        (
            object("MautrixSignal", &format!("p{}", a(29)), provisioned.clone()),
            cluster_fit("MautrixSignal", 29, "-mautrix-signal-pgsql"),
        ),
        (
            object(
                "Heisenbridge",
                "dotted-synapse",
                json!({"synapse": {"name": "my.synapse"}}),
            ),
            synapse_name.to_owned(),
        ),
        (
            object(
                "MautrixSignal",
                "upper-synapse",
                json!({"synapse": {"name": "Matrix"}}),
            ),
            synapse_name.to_owned(),
        ),
        (
            object(
                "MautrixSignal",
                "long-synapse",
                json!({"synapse": {"name": a(64)}}),
            ),
            "Too long: may not be more than 63".to_owned(),
        ),
        (
            object("Synapse", "sized", json!({"storage": {"size": "10 GB"}})),
            size.to_owned(),
        ),
        (
            object("MautrixSignal", "zero", json!({"storage": {"size": 0}})),
            size.to_owned(),
        ),
        (
            object(
                "Synapse",
                "spaced",
                json!({"resources": {"requests": {"memory": "1 Gi"}}}),
            ),
            "every value of spec.resources.requests and spec.resources.limits must be a quantity \
             of at least 0 such as 250m, 2, 512Mi or 2Gi (no space before the unit): Kubernetes \
             refuses the Synapse container otherwise"
                .to_owned(),
        ),
        (
            object(
                "Synapse",
                "squeezed",
                json!({"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}}),
            ),
            "each limit in spec.resources.limits must be at least the request of the same \
             resource in spec.resources.requests: Kubernetes refuses a container whose request \
             exceeds its limit"
                .to_owned(),
        ),
    ];
    for (object, expected) in refused {
        let what = format!("{} {}", object["kind"], object["metadata"]["name"]);
        match create(&client, &ns.name, &object).await {
            Ok(_) => panic!("{what} was accepted"),
            Err(message) => {
                eprintln!("{what}: {message}");
                assert!(
                    message.contains(&expected),
                    "{what}: {message:?} lacks {expected:?}"
                );
                assert!(message.ends_with("(422)"), "{what}: {message}");
            }
        }
    }
    ns.delete().await;
}

/// Runs kubectl, returning its output only when it succeeds.
async fn try_kubectl(args: &[&str]) -> Option<String> {
    let output = tokio::process::Command::new("kubectl")
        .args(args)
        .output()
        .await
        .expect("run kubectl (is hack/cluster env applied?)");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn kubectl_explain_shows_the_descriptions() {
    install_crds(&client().await).await;
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    let explained = wait_for(
        Duration::from_secs(60),
        "kubectl explain synapse.spec.homeserver.values",
        || try_kubectl(&["explain", "synapse.spec.homeserver.values"]),
    )
    .await;
    for expected in [
        "A few values from which the operator writes a complete homeserver.yaml.",
        "serverName",
        "The public-facing domain of the server",
        "reportStats",
        "enableRegistration",
        "Whether anyone may register a new account",
    ] {
        assert!(
            explained.contains(expected),
            "{expected:?} missing from:\n{explained}"
        );
    }

    let explained = wait_for(
        Duration::from_secs(60),
        "kubectl explain heisenbridge.spec",
        || try_kubectl(&["explain", "heisenbridge.spec"]),
    )
    .await;
    for expected in [
        "verboseLevel",
        "-vvv",
        "synapse",
        "The Synapse this bridge registers with",
    ] {
        assert!(
            explained.contains(expected),
            "{expected:?} missing from:\n{explained}"
        );
    }
    let explained = wait_for(
        Duration::from_secs(60),
        "kubectl explain mautrixsignal.status.synapse",
        || try_kubectl(&["explain", "mautrixsignal.status.synapse"]),
    )
    .await;
    assert!(explained.contains("serverName"), "{explained}");
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

#[tokio::test]
async fn printer_columns_and_short_names() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "e2e-crds-columns", &[]).await;
    for path in [
        "synapse-values.yaml",
        "heisenbridge-default.yaml",
        "mautrixsignal-default.yaml",
    ] {
        create(&client, &ns.name, &fixture(path))
            .await
            .unwrap_or_else(|message| panic!("{path} was rejected: {message}"));
    }
    let synapses = run("kubectl", &["get", "syn", "-n", &ns.name]).await;
    assert_eq!(
        header(&synapses),
        ["NAME", "SERVER", "NAME", "READY", "WORKERS", "AGE"],
        "{synapses}"
    );
    for short in ["hb", "signal"] {
        let bridges = run("kubectl", &["get", short, "-n", &ns.name]).await;
        assert_eq!(
            header(&bridges),
            ["NAME", "SYNAPSE", "REGISTERED", "READY", "AGE"],
            "{bridges}"
        );
        assert!(
            bridges.contains("values"),
            "the Synapse column shows spec.synapse.name: {bridges}"
        );
    }
    let all = run("kubectl", &["get", "matrix", "-n", &ns.name]).await;
    for kind in [
        "synapse.synapse.opdev.io/values",
        "heisenbridge.synapse.opdev.io/heisenbridge-default",
        "mautrixsignal.synapse.opdev.io/mautrixsignal-default",
    ] {
        assert!(all.contains(kind), "category matrix lists {kind}: {all}");
    }
    ns.delete().await;
}
