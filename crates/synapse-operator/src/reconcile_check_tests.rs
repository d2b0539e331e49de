//! The configuration check against the scripted API server: a new Synapse on another image is
//! checked before it starts, a change to a running Synapse before anything it reads changes, and
//! a rejection is reported without a write.

use super::*;

/// The Synapse `hs` with `reportStats` as given: a change of its files.
fn reporting(report_stats: bool) -> Synapse {
    synapse(json!({"homeserver": {"values": {
        "serverName": "example.com", "reportStats": report_stats}}}))
}

fn check_job(written: &Value) -> crate::config_check::CheckJob {
    from(written)
}

#[tokio::test]
async fn a_new_synapse_on_another_image_is_checked_before_anything_runs() {
    let mut spec = values();
    spec["image"] = json!("matrixdotorg/synapse:v1.164.0");
    let (client, api) = scripted();
    let written = Bodies::default();
    let ctx = context(client, Cached::default());
    api.play(checking(&written), reconcile(Arc::new(synapse(spec)), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let [_generated, config, job, status] = &written[..] else {
        panic!("four writes: {written:#?}");
    };
    // Nothing reads the configuration Secret yet: the check reads it there.
    let volumes = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let mounted = volumes.iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(mounted["secret"]["secretName"], config["metadata"]["name"]);
    let image = &job["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "matrixdotorg/synapse:v1.164.0");
    assert_eq!(condition(status, "Ready")["reason"], "CheckingConfig");
    assert_eq!(condition(status, "Ready")["status"], "False");
}

#[tokio::test]
async fn a_change_is_checked_in_its_own_secret_while_the_running_synapse_stays() {
    let cached = running_cache(&reporting(false)).await;
    let (client, api) = scripted();
    let written = Bodies::default();
    let script = vec![
        Exchange::post(JOBS).capture(&written).echo(),
        Exchange::post(SECRETS).capture(&written).echo(),
        event("Running", "Normal"),
        status_write(&written),
    ];
    let ctx = context(client, cached.clone());
    api.play(script, reconcile(Arc::new(reporting(true)), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let [job, candidate, status] = &written[..] else {
        panic!("three writes: {written:#?}");
    };
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("hs-check-"), "{name}");
    let volumes = job["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    let config = volumes.iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(config["secret"]["secretName"], name, "{config}");
    assert_eq!(candidate["metadata"]["name"], name);
    assert_eq!(candidate["metadata"]["ownerReferences"][0]["kind"], "Job");
    let running = serde_json::to_value(&cached.secrets[1]).unwrap();
    assert_ne!(
        candidate["data"]["homeserver.yaml"], running["data"]["homeserver.yaml"],
        "the candidate is the new file"
    );
    assert_eq!(condition(status, "Ready")["status"], "True", "{status}");
    assert_eq!(condition(status, "Progressing")["reason"], "CheckingConfig");

    // Synapse rejected it: its words, redacted, and not one write but the status.
    let mut failed = check_job(job);
    failed.status = Some(from(
        &json!({"conditions": [{"type": "Failed", "status": "True"}]}),
    ));
    let signing = String::from_utf8(
        cached.secrets[0].data.as_ref().unwrap()["signing.key"]
            .0
            .clone(),
    )
    .unwrap();
    let output = format!("Error in configuration at 'x':\n  seed {signing}\nbad value");
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
        {"metadata": {"name": "p"}, "status": {"containerStatuses": [{
            "name": "check", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "message": output}}}]}}]});
    let mut cached = cached;
    cached.jobs.push(failed);
    let (client, api) = scripted();
    let written = Bodies::default();
    let script = vec![
        Exchange::get("/api/v1/namespaces/ns/pods").reply(200, pods),
        event("ConfigRejected", "Warning"),
        status_write(&written),
    ];
    api.play(
        script,
        reconcile(Arc::new(reporting(true)), context(client, cached)),
    )
    .await
    .expect("a rejection is no error to retry");
    let status = &written.lock().unwrap()[0];
    let message = condition(status, "Ready")["message"].as_str().unwrap();
    assert!(
        message.contains("Error in configuration at 'x'"),
        "{message}"
    );
    assert!(message.contains(name), "names the Job: {message}");
    let seed = signing.split_whitespace().last().unwrap();
    assert!(
        !message.contains(seed),
        "the signing key is redacted: {message}"
    );
    assert_eq!(status["status"]["state"], "FAILED");
}

#[tokio::test]
async fn a_check_whose_secret_was_not_created_gets_it() {
    // The operator stopped between creating the Job and its candidate Secret.
    let mut cached = running_cache(&reporting(false)).await;
    let (client, api) = scripted();
    let written = Bodies::default();
    let script = vec![
        Exchange::post(JOBS).capture(&written).echo(),
        Exchange::post(SECRETS).reply(500, api_status(500, "InternalError", "gone")),
    ];
    let ctx = context(client, cached.clone());
    api.play(script, reconcile(Arc::new(reporting(true)), ctx))
        .await
        .expect_err("the Secret was not created");
    let job = check_job(&written.lock().unwrap()[0]);
    cached.jobs.push(job);
    let (client, api) = scripted();
    let script = vec![
        Exchange::post(SECRETS).body(|secret| {
            assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Job");
        }),
        event("Running", "Normal"),
        status_write(&Bodies::default()),
    ];
    api.play(
        script,
        reconcile(Arc::new(reporting(true)), context(client, cached)),
    )
    .await
    .expect("the reconciliation succeeds");
}

#[tokio::test]
async fn a_check_created_before_the_cache_shows_it_is_not_an_error() {
    // An earlier reconciliation created the Job; the cache does not show it yet.
    let cached = running_cache(&reporting(false)).await;
    let (client, api) = scripted();
    let written = Bodies::default();
    let exists = api_status(
        409,
        "AlreadyExists",
        "jobs.batch \"hs-check\" already exists",
    );
    let script = vec![
        Exchange::post(JOBS).reply(409, exists),
        event("Running", "Normal"),
        status_write(&written),
    ];
    api.play(
        script,
        reconcile(Arc::new(reporting(true)), context(client, cached)),
    )
    .await
    .expect("the check is under way");
    let status = &written.lock().unwrap()[0];
    assert_eq!(condition(status, "Progressing")["reason"], "CheckingConfig");
}
