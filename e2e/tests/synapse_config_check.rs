//! A new configuration is checked by Synapse itself before it rolls out (issue 18), with the pod
//! harness playing the kubelet of the check Jobs (the namespace is a `kubelet-by-test-*` one,
//! where kwok leaves Job pods to the test) and the real Synapse loader running in them:
//!
//! - a valid homeserver.yaml passes and rolls out, and the real Synapse serves `/health`;
//! - an edit Synapse rejects is refused with Synapse's own words (Ready=False ConfigRejected, a
//!   Warning Event): the Deployment and the configuration Secret stay as they were and the running
//!   Synapse keeps serving;
//! - a valid edit then rolls out, and the checks are cleaned up;
//! - a Synapse whose first configuration Synapse rejects gets no Deployment at all.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), root and `hack/python-env`.

#[allow(dead_code)]
mod synapse_support;

use e2e::objects::condition_message;
use e2e::pod_harness::Scenario;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::json;
use synapse_support::*;

const USER_FILE: &str = include_str!("../testdata/synapse-operator/homeserver.yaml");
const PORT: u16 = 8090;
/// What Synapse 1.163 says of this setting: its loader only, the operator has no rule for it.
const REJECTED_SETTING: &str = "auto_join_rooms: [\"not-a-room\"]";
const SYNAPSE_SAYS: &str = "Invalid auto_join_rooms entry not-a-room";

/// The user's file without its app service (whose registration file this test does not
/// write: Synapse reads it only when it starts, which the check cannot see), `extra` appended.
fn file_with(extra: &str) -> String {
    let file = USER_FILE.replace(
        "app_service_config_files:\n  - /data/appservices/user-bridge.yaml\n",
        "",
    );
    assert_ne!(file, USER_FILE, "the test file lists an app service");
    format!("{file}\n{extra}\n")
}

/// The check Jobs of the Synapse `name`.
async fn check_jobs(client: &Client, namespace: &str, name: &str) -> Vec<Job> {
    let selector =
        format!("app.kubernetes.io/component=config-check,app.kubernetes.io/instance={name}");
    Api::<Job>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list the check Jobs")
        .items
        .into_iter()
        .filter(|job| job.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Waits for a check Job of `name` other than the `done` ones, runs its pod for real and
/// returns the Job's name, the loader's exit code and its output.
async fn run_next_check(
    plane: &Plane,
    scenario: &Scenario,
    name: &str,
    done: &mut Vec<String>,
) -> (String, i32, String) {
    let (client, ns) = (&plane.client, plane.ns.name.as_str());
    let job = e2e::wait_for(TIMEOUT, &format!("a new check Job of {name}"), || async {
        check_jobs(client, ns, name)
            .await
            .into_iter()
            .filter_map(|job| job.metadata.name)
            .find(|job| !done.contains(job))
    })
    .await;
    done.push(job.clone());
    let (status, output) = scenario
        .finish_job(client, ns, &job, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (job, status.code().unwrap_or(-1), output)
}

async fn deployment(plane: &Plane, name: &str) -> Option<Deployment> {
    get_opt(&plane.client, &plane.ns.name, name).await
}

#[tokio::test]
async fn synapse_checks_a_configuration_before_it_rolls_out() {
    let plane = Plane::start("kubelet-by-test-check", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let scenario = Scenario::new("config-check").unwrap_or_else(|e| panic!("{e}"));
    let api = plane.synapses();
    let valid = file_with("");
    create_config_map(&client, &ns, "hs-input", &[("homeserver.yaml", &valid)]).await;
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"configMap": {"name": "hs-input"}}}),
    )
    .await;
    // A second Synapse whose very first configuration Synapse rejects.
    let rejected = file_with(REJECTED_SETTING);
    create_config_map(&client, &ns, "bad-input", &[("homeserver.yaml", &rejected)]).await;
    create_synapse(
        &api,
        "bad",
        json!({"homeserver": {"configMap": {"name": "bad-input"}}}),
    )
    .await;

    // The first configuration: checked before any Deployment exists, then rolled out.
    let mut done = Vec::new();
    let checking = wait_synapse(&api, "hs", "checking its configuration", |s| {
        condition_state(s, "Ready") == ("False".into(), "CheckingConfig".into())
    })
    .await;
    assert_eq!(
        condition_state(&checking, "Progressing"),
        ("True".into(), "CheckingConfig".into())
    );
    assert!(
        deployment(&plane, "hs").await.is_none(),
        "nothing runs unchecked"
    );
    let (_, code, output) = run_next_check(&plane, &scenario, "hs", &mut done).await;
    assert_eq!(code, 0, "Synapse accepts the file:\n{output}");
    assert!(output.contains("Config parses OK!"), "{output}");
    wait_running(&api, "hs").await;
    let synapse = boot_synapse(&scenario, &client, &ns, "hs", PORT).await;
    let first = deployment(&plane, "hs").await.expect("the Deployment");

    // The bad first configuration: refused, and no Deployment ever.
    let mut bad_done = Vec::new();
    let (bad_job, code, output) = run_next_check(&plane, &scenario, "bad", &mut bad_done).await;
    assert_eq!(code, 1, "{output}");
    let refused = wait_failed(&api, "bad", "ConfigRejected").await;
    let message = condition_message(&refused, "Ready");
    assert!(message.contains(SYNAPSE_SAYS), "{message}");
    assert!(message.contains(&bad_job), "names the Job: {message}");
    assert!(
        deployment(&plane, "bad").await.is_none(),
        "no crash-looping pod"
    );

    // An edit Synapse rejects: refused with its words, the running Synapse untouched.
    let config_before = config_file(&client, &ns, "hs", "homeserver.yaml").await;
    set_config_map_data(&client, &ns, "hs-input", &[("homeserver.yaml", &rejected)]).await;
    let (_, code, output) = run_next_check(&plane, &scenario, "hs", &mut done).await;
    assert_eq!(code, 1, "{output}");
    let refused = wait_failed(&api, "hs", "ConfigRejected").await;
    let message = condition_message(&refused, "Ready");
    assert!(message.contains(SYNAPSE_SAYS), "{message}");
    assert!(
        message.contains("keeps its last good configuration"),
        "{message}"
    );
    wait_event(&client, &ns, "hs", "Warning", "ConfigRejected").await;
    let kept = deployment(&plane, "hs").await.expect("the Deployment");
    assert_eq!(
        template_hash(&kept),
        template_hash(&first),
        "not rolled out"
    );
    assert_eq!(
        config_file(&client, &ns, "hs", "homeserver.yaml").await,
        config_before,
        "the running pod's files are kept"
    );
    let health = synapse
        .http_get(PORT, "/health")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.text(), "OK", "the old pod keeps serving");
    let secrets = get(&client, &ns, "hs-secrets").await;
    let needles = secret_needles(&secrets);
    assert_no_secret_leak(&client, &ns, &needles, &plane.operator.log_text()).await;

    // A valid edit rolls out, and the checks go.
    let fixed = file_with("max_upload_size: 100M");
    set_config_map_data(&client, &ns, "hs-input", &[("homeserver.yaml", &fixed)]).await;
    let (_, code, output) = run_next_check(&plane, &scenario, "hs", &mut done).await;
    assert_eq!(code, 0, "{output}");
    e2e::wait_for(TIMEOUT, "the valid edit to roll out", || async {
        let rolled = deployment(&plane, "hs").await?;
        (template_hash(&rolled) != template_hash(&first)).then_some(())
    })
    .await;
    wait_running(&api, "hs").await;
    let files = config_file(&client, &ns, "hs", "homeserver.yaml").await;
    assert!(files.contains("max_upload_size: 100M"), "{files}");
    e2e::wait_for(TIMEOUT, "the checks of hs to be deleted", || async {
        check_jobs(&client, &ns, "hs")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    drop(synapse);
    plane.finish().await;
}
