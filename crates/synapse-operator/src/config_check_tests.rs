use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, PodStatus,
};
use synapse_types::Synapse;

use super::*;
use crate::workload::{SynapseWorkload, synapse_deployment};

fn subject() -> Subject {
    let synapse: Synapse = serde_json::from_value(serde_json::json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "hs", "namespace": "ns", "uid": "u1"},
        "spec": {"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}},
    }))
    .unwrap();
    Subject::of(&synapse, "synapse", "synapse-operator").unwrap()
}

fn deployment(image: &str, hash: &str) -> Deployment {
    let workload = SynapseWorkload {
        image: image.into(),
        config_hash: hash.into(),
        ..SynapseWorkload::sample()
    };
    synapse_deployment(
        ObjectMeta::default(),
        subject().selector("homeserver"),
        &workload,
    )
}

fn cached(deployment: &Deployment) -> CachedDeployment {
    serde_json::from_str(&serde_json::to_string(deployment).unwrap()).unwrap()
}

/// A check Job of `candidate` that finished with `condition` (`None`: still running).
fn check(candidate: &Candidate, condition: Option<&str>) -> Arc<CheckJob> {
    let desired = deployment(&candidate.image, &candidate.config_hash);
    let mut job = job(&subject(), &desired, &candidate.key("hs"), None);
    job.status = condition.map(|type_| JobStatus {
        conditions: Some(vec![JobCondition {
            type_: type_.into(),
            status: "True".into(),
            ..JobCondition::default()
        }]),
        ..JobStatus::default()
    });
    Arc::new(job.into())
}

#[test]
fn the_candidate_of_a_deployment_is_its_image_and_config_hash_cached_or_not() {
    let desired = deployment("matrixdotorg/synapse:v1.163.2", "abc");
    let candidate = Candidate::of(&desired).unwrap();
    assert_eq!(candidate.image, "matrixdotorg/synapse:v1.163.2");
    assert_eq!(candidate.config_hash, "abc");
    assert_eq!(Candidate::of_cached(&cached(&desired)), Some(candidate));
    assert_eq!(Candidate::of_cached(&CachedDeployment::default()), None);
}

#[test]
fn a_key_names_synapse_image_and_files_and_fits_a_job_name() {
    let candidate = Candidate::of(&deployment("img:1", "abc")).unwrap();
    let key = candidate.key("hs");
    assert_eq!(key, candidate.key("hs"), "stable");
    assert_eq!(key.len(), 10);
    assert_ne!(key, candidate.key("other"));
    assert_ne!(
        key,
        Candidate::of(&deployment("img:2", "abc"))
            .unwrap()
            .key("hs")
    );
    assert_ne!(
        key,
        Candidate::of(&deployment("img:1", "abd"))
            .unwrap()
            .key("hs")
    );
    assert_eq!(job_name("hs", &key), format!("hs-check-{key}"));
    let long = format!("{}-x", "a".repeat(44));
    let name = job_name(&long, &key);
    assert!(name.len() <= 63, "{name}");
    assert!(!name.contains("--"), "{name}");
}

#[test]
fn a_check_runs_only_for_what_does_not_run_yet_and_its_job_decides() {
    let old = Candidate::of(&deployment("img:1", "old")).unwrap();
    let new = Candidate::of(&deployment("img:1", "new")).unwrap();
    assert_eq!(
        decide("hs", Some(&new), &new, false, &[]),
        Decision::Unchanged
    );
    assert_eq!(decide("hs", None, &new, false, &[]), Decision::Start);
    assert_eq!(decide("hs", Some(&old), &new, false, &[]), Decision::Start);
    // Another candidate's check says nothing of this one.
    let other = [check(&old, Some("Complete"))];
    assert_eq!(
        decide("hs", Some(&old), &new, false, &other),
        Decision::Start
    );
    let running = [check(&new, None)];
    assert_eq!(
        decide("hs", Some(&old), &new, false, &running),
        Decision::Running(&running[0])
    );
    let passed = [check(&new, Some("Complete"))];
    assert_eq!(
        decide("hs", Some(&old), &new, false, &passed),
        Decision::Passed
    );
    let failed = [check(&new, Some("Failed"))];
    assert_eq!(
        decide("hs", None, &new, false, &failed),
        Decision::Rejected(&failed[0])
    );
}

#[test]
fn only_a_first_deployment_of_a_generated_file_for_the_default_image_goes_unchecked() {
    let old = Candidate::of(&deployment(DEFAULT_IMAGE, "old")).unwrap();
    let new = Candidate::of(&deployment(DEFAULT_IMAGE, "new")).unwrap();
    assert_eq!(decide("hs", None, &new, true, &[]), Decision::Generated);
    // A check that failed before (of a file the user has since replaced by values) is moot.
    let failed = [check(&new, Some("Failed"))];
    assert_eq!(decide("hs", None, &new, true, &failed), Decision::Generated);
    // A user's file, another image, or a Synapse that runs: checked.
    assert_eq!(decide("hs", None, &new, false, &[]), Decision::Start);
    let other_image = Candidate::of(&deployment("matrixdotorg/synapse:v1.150.0", "new")).unwrap();
    assert_eq!(decide("hs", None, &other_image, true, &[]), Decision::Start);
    assert_eq!(decide("hs", Some(&old), &new, true, &[]), Decision::Start);
}

#[test]
fn the_check_job_runs_synapses_loader_in_the_new_pod_without_its_claim_or_labels() {
    let desired = deployment("img:2", "new");
    let job = job(&subject(), &desired, "k1", Some("hs-check-k1"));
    assert_eq!(job.metadata.name.as_deref(), Some("hs-check-k1"));
    assert_eq!(job_key(&job.clone().into()), Some("k1"));
    assert_eq!(job.metadata.owner_references.as_ref().unwrap()[0].uid, "u1");
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let labels = spec.template.metadata.as_ref().unwrap().labels.clone();
    assert_eq!(
        labels.unwrap()["app.kubernetes.io/component"],
        COMPONENT,
        "not the homeserver's pod labels, which its Service selects"
    );
    let pod = spec.template.spec.as_ref().unwrap();
    let template = desired.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.security_context, template.security_context);
    let container = &pod.containers[0];
    let main = &template.containers[0];
    assert_eq!(container.image, main.image);
    assert_eq!(container.env, main.env);
    assert_eq!(container.volume_mounts, main.volume_mounts);
    let command = container.command.clone().unwrap();
    let mut expected = main.command.clone().unwrap();
    expected[2] = "synapse.config".into();
    assert_eq!(command, expected);
    assert!(command.contains(&"--config-path".to_owned()));
    assert!(container.readiness_probe.is_none() && container.ports.is_none());
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    let volumes = pod.volumes.as_ref().unwrap();
    let volume = |name: &str| volumes.iter().find(|v| v.name == name).unwrap();
    assert!(
        volume("data").empty_dir.is_some(),
        "the claim stays the running pod's"
    );
    let config = volume(CONFIG_VOLUME).secret.as_ref().unwrap();
    assert_eq!(config.secret_name.as_deref(), Some("hs-check-k1"));
    let first = super::job(&subject(), &deployment("img:2", "new"), "k1", None);
    let volumes = first.spec.unwrap().template.spec.unwrap().volumes.unwrap();
    let config = volumes.iter().find(|v| v.name == CONFIG_VOLUME).unwrap();
    assert_eq!(
        config.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("hs-config"),
        "before the first rollout the configuration Secret itself"
    );
}

#[test]
fn the_candidate_secret_belongs_to_its_job() {
    let built = job(&subject(), &deployment("img", "h"), "k1", None);
    let mut job = CheckJob::from(built);
    job.metadata.uid = Some("job-uid".into());
    let data = BTreeMap::from([("homeserver.yaml".to_owned(), ByteString(b"a: 1".to_vec()))]);
    let secret = candidate_secret(&job, data.clone());
    assert_eq!(secret.metadata.name.as_deref(), Some("hs-check-k1"));
    let owner = &secret.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Job", "job-uid")
    );
    assert_eq!(secret.data, Some(data));
}

fn terminated(message: &str) -> Pod {
    Pod {
        status: Some(PodStatus {
            container_statuses: Some(vec![ContainerStatus {
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 1,
                        message: Some(message.into()),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

#[test]
fn a_rejection_quotes_synapse_with_secrets_redacted() {
    let failed = check(
        &Candidate::of(&deployment("i", "h")).unwrap(),
        Some("Failed"),
    );
    let output = "Error in configuration at 'max_upload_size':\n  \
                  invalid size 'lots'\nregistration_shared_secret: hunter2hunter2\n\
                  seed was ed25519 a_AbCd q83vEjRWeJCrze8Sdwhatever";
    let signing = b"ed25519 a_AbCd q83vEjRWeJCrze8Sdwhatever".as_slice();
    let text = rejection(&failed, &[terminated(output)], &[signing]);
    assert!(
        text.contains("Error in configuration at 'max_upload_size':"),
        "{text}"
    );
    assert!(text.contains("invalid size 'lots'"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("q83vEjRWeJCrze8Sdwhatever"), "{text}");
    assert!(
        text.contains("registration_shared_secret: [redacted]"),
        "{text}"
    );

    // No output (a deadline, a pod gone): why the Job failed.
    let mut job = failed.as_ref().clone();
    job.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].message =
        Some("Job was active longer than specified deadline".into());
    assert_eq!(
        rejection(&job, &[], &[]),
        "Job was active longer than specified deadline"
    );
    let mut pulling = terminated("");
    pulling
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .state = Some(ContainerState {
        waiting: Some(k8s_openapi::api::core::v1::ContainerStateWaiting {
            reason: Some("ImagePullBackOff".into()),
            message: Some("Back-off pulling image \"nope\"".into()),
        }),
        ..ContainerState::default()
    });
    assert_eq!(
        rejection(&job, &[pulling], &[]),
        "Job was active longer than specified deadline; its pod never ran \
         (ImagePullBackOff: Back-off pulling image \"nope\")"
    );
    // A long traceback: its end, where the error is.
    let long = format!("{}\nConfigError: the end", "x".repeat(5000));
    let text = rejection(&job, &[terminated(&long)], &[]);
    assert!(text.len() < 1600 && text.ends_with("ConfigError: the end"));
}

#[test]
fn redaction_keeps_what_is_not_a_secret_setting() {
    assert_eq!(
        redact("KeyError: 'listeners'", &[]),
        "KeyError: 'listeners'"
    );
    assert_eq!(redact("  - as_token: abc", &[]), "  - as_token: [redacted]");
    assert_eq!(redact("macaroon_secret_key:", &[]), "macaroon_secret_key:");
    assert_eq!(redact("short", &[b"short"]), "short", "too short to hide");
}
