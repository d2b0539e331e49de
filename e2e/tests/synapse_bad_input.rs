//! Bad input for the synapse-operator (issue 4, item 7): each broken input becomes Ready=False
//! with a reason naming the problem, `state: FAILED` and a Warning Event; the operator keeps
//! running and keeps reconciling a healthy Synapse in the same namespace; fixing the input
//! recovers without any manual step.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;
use synapse_support::*;

fn user_file(server_name: &str) -> String {
    format!(
        "server_name: {server_name}\nreport_stats: false\nlisteners:\n  - port: 8008\n    \
         type: http\n    resources: [{{names: [client]}}]\n"
    )
}

/// One broken input: the Synapse, the reason expected, and words the message must contain (the
/// broken files are written in the test).
struct Case {
    synapse: &'static str,
    reason: &'static str,
    mentions: &'static str,
}

const CASES: [Case; 8] = [
    Case {
        synapse: "no-configmap",
        reason: "ConfigMapNotFound",
        mentions: "does not exist",
    },
    Case {
        synapse: "no-key",
        reason: "HomeserverYamlMissing",
        mentions: "homeserver.yaml",
    },
    Case {
        synapse: "bad-yaml",
        reason: "InvalidYAML",
        mentions: "not valid YAML",
    },
    Case {
        synapse: "no-name",
        reason: "ServerNameMissing",
        mentions: "server_name",
    },
    Case {
        synapse: "name-not-string",
        reason: "InvalidServerName",
        mentions: "must be a string",
    },
    Case {
        synapse: "bad-name",
        reason: "InvalidServerName",
        mentions: "is not valid",
    },
    Case {
        synapse: "no-report-stats",
        reason: "InvalidHomeserverConfig",
        mentions: "report_stats",
    },
    Case {
        synapse: "renamed",
        reason: "ServerNameChanged",
        mentions: "cannot change its name",
    },
];

fn config_map_of(synapse: &str) -> String {
    format!("{synapse}-input")
}

#[tokio::test]
async fn bad_input_fails_clearly_and_recovers() {
    let mut plane = Plane::start("syn-bad", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();

    // A healthy Synapse beside the broken ones, and one that starts healthy and is renamed.
    create_synapse(
        &api,
        "healthy",
        json!({"homeserver": {"values": {"serverName": "healthy.example.org", "reportStats": false}}}),
    )
    .await;
    create_config_map(
        &client,
        &ns,
        &config_map_of("renamed"),
        &[("homeserver.yaml", &user_file("renamed.example.org"))],
    )
    .await;
    for case in &CASES {
        create_synapse(
            &api,
            case.synapse,
            json!({"homeserver": {"configMap": {"name": config_map_of(case.synapse)}}}),
        )
        .await;
    }
    wait_running(&api, "healthy").await;
    wait_running(&api, "renamed").await;
    let renamed_config: Secret = get(&client, &ns, "renamed-config").await;

    // Break every input (the missing ConfigMap is broken by not existing).
    let broken = [
        ("no-key", "other.yaml", user_file("no-key.example.org")),
        (
            "bad-yaml",
            "homeserver.yaml",
            "server_name: [oops\nreport_stats: no\n".to_owned(),
        ),
        (
            "no-name",
            "homeserver.yaml",
            "report_stats: no\nlisteners: []\n".to_owned(),
        ),
        // `yes` is a boolean to Synapse (YAML 1.1), not a name.
        ("name-not-string", "homeserver.yaml", user_file("yes")),
        ("bad-name", "homeserver.yaml", user_file("'bad name!'")),
        (
            "no-report-stats",
            "homeserver.yaml",
            user_file("no-report-stats.example.org").replace("report_stats: false\n", ""),
        ),
    ];
    for (synapse, key, text) in &broken {
        create_config_map(&client, &ns, &config_map_of(synapse), &[(key, text)]).await;
    }
    set_config_map_data(
        &client,
        &ns,
        &config_map_of("renamed"),
        &[("homeserver.yaml", &user_file("other.example.org"))],
    )
    .await;

    for case in &CASES {
        let failed = wait_failed(&api, case.synapse, case.reason).await;
        let message = condition(&failed, "Ready").expect("Ready")["message"]
            .as_str()
            .expect("a message")
            .to_owned();
        assert!(
            message.contains(case.mentions),
            "{}: {message:?} should mention {:?}",
            case.synapse,
            case.mentions
        );
        assert_eq!(failed["status"]["reason"], json!(message));
        let note = wait_event(&client, &ns, case.synapse, "Warning", case.reason).await;
        assert_eq!(
            note, message,
            "{}: the Event says what the condition says",
            case.synapse
        );
    }
    // The renamed Synapse keeps running its last good configuration.
    let still: Secret = get(&client, &ns, "renamed-config").await;
    assert_eq!(still.data, renamed_config.data);
    let renamed = get_synapse(&api, "renamed").await;
    assert_eq!(
        renamed["status"]["homeserverConfiguration"]["serverName"],
        "renamed.example.org"
    );

    // The operator is alive and still reconciles the healthy Synapse: its spec change rolls.
    plane.operator.assert_running();
    assert!(plane.operator.health_ok("/healthz"));
    patch_spec(
        &api,
        "healthy",
        json!({"resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}),
    )
    .await;
    wait_synapse(&api, "healthy", "the spec change rolled out", |s| {
        is_running(s) && s["metadata"]["generation"] == 2
    })
    .await;
    let healthy: Deployment = get(&client, &ns, "healthy").await;
    let cpu = healthy
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers[0].resources.clone())
        .and_then(|r| r.requests)
        .expect("requests")["cpu"]
        .0
        .clone();
    assert_eq!(cpu, "100m");

    // Fixing each input recovers it, with no other step.
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": config_map_of("no-configmap")},
                "data": {"homeserver.yaml": user_file("no-configmap.example.org")},
            }))
            .expect("a ConfigMap"),
        )
        .await
        .expect("create the missing ConfigMap");
    for (synapse, server_name) in [
        ("no-key", "no-key.example.org"),
        ("bad-yaml", "bad-yaml.example.org"),
        ("no-name", "no-name.example.org"),
        ("name-not-string", "name-not-string.example.org"),
        ("bad-name", "bad-name.example.org"),
        ("no-report-stats", "no-report-stats.example.org"),
        ("renamed", "renamed.example.org"),
    ] {
        set_config_map_data(
            &client,
            &ns,
            &config_map_of(synapse),
            &[("homeserver.yaml", &user_file(server_name))],
        )
        .await;
    }
    for case in &CASES {
        let recovered = wait_running(&api, case.synapse).await;
        assert!(recovered["status"]["reason"].is_null(), "{}", case.synapse);
        wait_event(&client, &ns, case.synapse, "Normal", "Running").await;
    }

    plane.operator.assert_running();
    let log = plane.operator.log_text();
    assert!(!log.contains("panicked"), "the operator panicked:\n{log}");
    plane.finish().await;
}
