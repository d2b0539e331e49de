//! The configuration check: before a new configuration or image replaces the running Synapse, or
//! starts the first one, a Job runs Synapse's own loader (`python -m synapse.config`) with the
//! image, files and environment the new pod would have. Only a passing check rolls out; a failing
//! one leaves the running pod as it is and reports Synapse's own words. A first deployment of a
//! configuration the operator rendered whole, for its default image, starts unchecked (see
//! [`Decision::Generated`]). Pure builders and decisions; the step that acts on them is in
//! `reconcile`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams};
use operator_common::apply::Applier;
use operator_common::cached_deployment::CachedDeployment;
use operator_common::error::{Error, api_error};
use operator_common::subject::{Lifetime, Subject};
use operator_common::workload::empty_dir_volume;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::build::DEFAULT_IMAGE;
use crate::resolve::ConfigProblem;
use crate::workload::{CONFIG_HASH_ANNOTATION, CONFIG_VOLUME, MAIN_MODULE};

/// `app.kubernetes.io/component` of the check's Job, pod and Secret.
pub const COMPONENT: &str = "config-check";
/// The candidate a Job checks, as [`Candidate::key`].
pub const KEY_ANNOTATION: &str = "synapse.opdev.io/config-check";
/// The label the Job controller puts on the Job's pods.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Synapse's loader, run on the same files as the process.
const CHECK_MODULE: &str = "synapse.config";
/// How long a check may take, the image pull included, before it counts as failed.
const DEADLINE_SECONDS: i64 = 600;
/// The most of Synapse's output a condition carries (the end of it, where the error is).
const MAX_OUTPUT: usize = 1500;
const REDACTED: &str = "[redacted]";

/// A check Job as cached: its metadata and status, not its pod template (a Job holds a whole pod
/// spec, and a burst of new Synapses holds a Job each).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
pub struct CheckJob {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

impl From<Job> for CheckJob {
    fn from(job: Job) -> Self {
        Self {
            metadata: job.metadata,
            status: job.status,
        }
    }
}

impl k8s_openapi::Resource for CheckJob {
    const API_VERSION: &'static str = "batch/v1";
    const GROUP: &'static str = "batch";
    const KIND: &'static str = "Job";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "jobs";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CheckJob {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What a check covers: the image and the hash of every file the pod reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub image: String,
    pub config_hash: String,
}

impl Candidate {
    /// The candidate of a Deployment of the main process.
    pub fn of(deployment: &Deployment) -> Option<Self> {
        let template = &deployment.spec.as_ref()?.template;
        let config_hash = template
            .metadata
            .as_ref()?
            .annotations
            .as_ref()?
            .get(CONFIG_HASH_ANNOTATION)?
            .clone();
        let image = template.spec.as_ref()?.containers.first()?.image.clone()?;
        Some(Self { image, config_hash })
    }

    /// The candidate a cached Deployment runs, read from its spec's text without building the
    /// rest of it (every reconciliation of a running Synapse asks).
    pub fn of_cached(deployment: &CachedDeployment) -> Option<Self> {
        #[derive(Deserialize)]
        struct Spec {
            template: Template,
        }
        #[derive(Deserialize)]
        struct Template {
            metadata: Option<Meta>,
            spec: Option<Pod>,
        }
        #[derive(Deserialize)]
        struct Meta {
            annotations: Option<BTreeMap<String, String>>,
        }
        #[derive(Deserialize)]
        struct Pod {
            containers: Vec<Image>,
        }
        #[derive(Deserialize)]
        struct Image {
            image: Option<String>,
        }
        let spec: Spec = serde_json::from_str(deployment.spec.as_ref()?.get()).ok()?;
        let template = spec.template;
        Some(Self {
            image: template.spec?.containers.into_iter().next()?.image?,
            config_hash: template
                .metadata?
                .annotations?
                .remove(CONFIG_HASH_ANNOTATION)?,
        })
    }

    /// A short, stable name of this candidate of the Synapse `synapse`.
    pub fn key(&self, synapse: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [synapse, &self.image, &self.config_hash] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .take(5)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The Job (and candidate Secret) of the check `key`: `NAME-check-KEY`, the name cut so that the
/// Job controller's pod label (at most 63 characters) fits.
pub fn job_name(synapse: &str, key: &str) -> String {
    let room = 63 - "-check-".len() - key.len();
    let prefix = synapse[..synapse.len().min(room)].trim_end_matches('-');
    format!("{prefix}-check-{key}")
}

/// Where the check of the desired candidate stands.
#[derive(Debug, PartialEq)]
pub enum Decision<'a> {
    /// The running Deployment already runs this image and configuration: nothing to check.
    Unchanged,
    /// A first deployment of files the operator wrote whole, for the image it is released with:
    /// known good (its end-to-end tests start that Synapse on them), and no running Synapse to
    /// keep. Checked all the same once a Synapse runs.
    Generated,
    /// Synapse accepted it: roll it out.
    Passed,
    /// Not checked yet: start the check.
    Start,
    /// The check runs.
    Running(&'a CheckJob),
    /// Synapse rejected it.
    Rejected(&'a CheckJob),
}

/// Decides from the candidate `running` (none before the first rollout), the `desired` one,
/// whether the operator rendered the user's configuration itself (`generated`, from
/// `spec.homeserver.values`) and the Synapse's check Jobs.
pub fn decide<'a>(
    synapse: &str,
    running: Option<&Candidate>,
    desired: &Candidate,
    generated: bool,
    jobs: &'a [Arc<CheckJob>],
) -> Decision<'a> {
    if running == Some(desired) {
        return Decision::Unchanged;
    }
    if running.is_none() && generated && desired.image == DEFAULT_IMAGE {
        return Decision::Generated;
    }
    let key = desired.key(synapse);
    let Some(job) = jobs.iter().find(|job| job_key(job) == Some(key.as_str())) else {
        return Decision::Start;
    };
    match finished(job) {
        Some(true) => Decision::Passed,
        Some(false) => Decision::Rejected(job),
        None => Decision::Running(job),
    }
}

/// The candidate key a check Job carries.
pub fn job_key(job: &CheckJob) -> Option<&str> {
    job.metadata
        .annotations
        .as_ref()?
        .get(KEY_ANNOTATION)
        .map(String::as_str)
}

/// `Some(passed)` once the Job finished.
fn finished(job: &CheckJob) -> Option<bool> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some(true),
            "Failed" => Some(false),
            _ => None,
        })
}

/// The check Job of `desired`: the pod of the Deployment with Synapse's loader as its command, run
/// once. `candidate_secret` replaces the configuration Secret (the running pod's stays as it is
/// until the check passed); the data volume becomes a scratch directory, as the loader creates
/// the media directory but the running pod holds the claim.
pub fn job(
    subject: &Subject,
    desired: &Deployment,
    key: &str,
    candidate_secret: Option<&str>,
) -> Job {
    let name = job_name(&subject.name, key);
    let mut metadata = subject.meta(name, COMPONENT, Lifetime::Owned);
    metadata.annotations = Some(BTreeMap::from([(
        KEY_ANNOTATION.to_owned(),
        key.to_owned(),
    )]));
    let mut pod = desired
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .unwrap_or_default();
    pod.restart_policy = Some("Never".into());
    pod.containers.truncate(1);
    for container in &mut pod.containers {
        container.name = "check".into();
        container.command = container.command.as_ref().map(|command| {
            command
                .iter()
                .map(|arg| match arg.as_str() {
                    MAIN_MODULE => CHECK_MODULE.to_owned(),
                    _ => arg.clone(),
                })
                .collect()
        });
        container.ports = None;
        container.startup_probe = None;
        container.readiness_probe = None;
        container.liveness_probe = None;
        container.lifecycle = None;
        // Synapse writes its error to stderr: the tail of the log becomes the message.
        container.termination_message_policy = Some("FallbackToLogsOnError".into());
    }
    for volume in pod.volumes.iter_mut().flatten() {
        if volume.persistent_volume_claim.is_some() {
            *volume = empty_dir_volume(&volume.name);
        }
        if let (Some(secret), Some(candidate)) = (volume.secret.as_mut(), candidate_secret)
            && volume.name == CONFIG_VOLUME
        {
            secret.secret_name = Some(candidate.to_owned());
        }
    }
    Job {
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(subject.selector(COMPONENT)),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        metadata,
        status: None,
    }
}

/// The candidate configuration Secret of a check, owned by its Job (created first) so that it
/// goes with it.
pub fn candidate_secret(job: &CheckJob, data: BTreeMap<String, ByteString>) -> Secret {
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    Secret {
        metadata: ObjectMeta {
            name: job.metadata.name.clone(),
            namespace: job.metadata.namespace.clone(),
            labels: job.metadata.labels.clone(),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

/// What Synapse said when it rejected the candidate: the check pod's termination message (the
/// tail of its output), else why the Job failed, with every value of `secrets` redacted.
pub fn rejection(job: &CheckJob, pods: &[Pod], secrets: &[&[u8]]) -> String {
    let output = pods
        .iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|status| status.state.as_ref()?.terminated.as_ref())
        .filter_map(|terminated| terminated.message.as_deref())
        .map(str::trim)
        .find(|message| !message.is_empty());
    // A pod that never ran (an image that cannot be pulled) says why it waited.
    let waiting = pods
        .iter()
        .filter_map(|pod| pod.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter_map(|status| status.state.as_ref()?.waiting.as_ref())
        .map(|w| {
            let reason = w.reason.as_deref().unwrap_or("Waiting");
            format!("{reason}: {}", w.message.as_deref().unwrap_or_default())
        })
        .next();
    let text = match output {
        Some(output) => output.to_owned(),
        None => {
            let failed = job
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Failed"))
                .and_then(|c| c.message.clone())
                .unwrap_or_else(|| "the check failed without output".to_owned());
            match waiting {
                Some(waiting) => format!("{failed}; its pod never ran ({waiting})"),
                None => failed,
            }
        }
    };
    tail(&redact(&text, secrets), MAX_OUTPUT)
}

/// `text` with every secret value (and every long word of one, e.g. the seed of a signing-key
/// line) replaced, and the value of every `…secret…`, `…password…`, `…key…` or `…token…`
/// setting Synapse may quote.
pub fn redact(text: &str, secrets: &[&[u8]]) -> String {
    let mut text = text.to_owned();
    let mut needles: Vec<String> = secrets
        .iter()
        .map(|s| String::from_utf8_lossy(s).trim().to_owned())
        .flat_map(|s| {
            let words: Vec<String> = s
                .split_whitespace()
                .filter(|w| w.len() >= 8)
                .map(str::to_owned)
                .collect();
            std::iter::once(s).chain(words)
        })
        .filter(|s| s.len() >= 8)
        .collect();
    // Longest first, so a whole value goes before its words.
    needles.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for needle in needles {
        text = text.replace(&needle, REDACTED);
    }
    text.lines()
        .map(redact_setting)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A YAML `name: value` line whose name has a word saying it holds a secret (`form_secret`,
/// `password`, `macaroon_secret_key`, `as_token`), with the value redacted.
fn redact_setting(line: &str) -> String {
    let Some((name, value)) = line.split_once(':') else {
        return line.to_owned();
    };
    let bare = name
        .trim()
        .trim_start_matches("- ")
        .trim_matches(['"', '\'']);
    let setting = !bare.is_empty() && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let secret = bare.split('_').any(|word| {
        ["secret", "password", "key", "token"].contains(&word.to_ascii_lowercase().as_str())
    });
    if setting && secret && !value.trim().is_empty() && value.trim() != REDACTED {
        format!("{name}: {REDACTED}")
    } else {
        line.to_owned()
    }
}

/// The last `max` bytes of `text` (at a character boundary), marked as cut.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// What the reconciliation does with the desired workload.
#[derive(Debug)]
pub enum Gate {
    /// Apply it: it is what runs, or Synapse accepted it.
    RollOut,
    /// Wait for the check Job named here.
    Checking(String),
    /// Keep what runs: Synapse rejected the candidate.
    Rejected(ConfigProblem),
}

/// What the check step reads.
pub struct Inputs<'a> {
    /// The Deployment of the main process as it runs, if it does.
    pub running: Option<&'a CachedDeployment>,
    /// The Synapse's check Jobs.
    pub jobs: &'a [Arc<CheckJob>],
    /// Whether the operator's Secret of that name exists (from its cache).
    pub has_secret: &'a (dyn Fn(&str) -> bool + Sync),
    /// The generated secrets, whose values a rejection must not quote.
    pub secrets: &'a BTreeMap<String, Vec<u8>>,
    /// The operator rendered the configuration from `spec.homeserver.values`.
    pub generated: bool,
}

/// The check step: decides on the desired Deployment of the main process against the one
/// running, starts a check (with `config` as its candidate configuration when a pod runs the
/// current one) and reads a rejection. Checks of other candidates are deleted, so at most one
/// runs.
pub async fn gate(
    applier: &Applier,
    subject: &Subject,
    desired: &Deployment,
    config: &Secret,
    inputs: Inputs<'_>,
) -> Result<Gate, Error> {
    let Some(candidate) = Candidate::of(desired) else {
        return Ok(Gate::RollOut);
    };
    let current = inputs.running.and_then(Candidate::of_cached);
    let decision = decide(
        &subject.name,
        current.as_ref(),
        &candidate,
        inputs.generated,
        inputs.jobs,
    );
    if matches!(
        decision,
        Decision::Unchanged | Decision::Generated | Decision::Passed
    ) {
        return Ok(Gate::RollOut);
    }
    let key = candidate.key(&subject.name);
    let stale: Vec<Arc<CheckJob>> = (inputs.jobs.iter())
        .filter(|job| job_key(job) != Some(key.as_str()))
        .cloned()
        .collect();
    delete_all(applier, &stale).await?;
    let name = job_name(&subject.name, &key);
    // A running pod keeps reading the current configuration Secret: the candidate goes into one
    // of its own, created after the Job it belongs to (and again when the operator stopped
    // between the two: the check's pod waits for it).
    let own_secret = inputs.running.is_some().then_some(name.as_str());
    let data = || config.data.clone().unwrap_or_default();
    match decision {
        Decision::Start => {
            // Created already when the cache does not show it yet: its watch brings it, and with
            // it the candidate Secret's turn (`Running`).
            let created = applier
                .create_new(&job(subject, desired, &key, own_secret))
                .await?;
            if let (Some(created), Some(_)) = (created, own_secret) {
                let created = CheckJob::from(created);
                applier.create(&candidate_secret(&created, data())).await?;
            }
            Ok(Gate::Checking(name))
        }
        Decision::Running(job) => {
            if own_secret.is_some() && !(inputs.has_secret)(&name) {
                applier.create(&candidate_secret(job, data())).await?;
            }
            Ok(Gate::Checking(name))
        }
        Decision::Rejected(job) => {
            let pods: Api<Pod> = Api::namespaced(applier.client().clone(), &subject.namespace);
            let selector = format!("{JOB_NAME_LABEL}={name}");
            let pods = pods
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(api_error(format!("list the pods of Job {name}")))?;
            let values: Vec<&[u8]> = inputs.secrets.values().map(Vec::as_slice).collect();
            Ok(Gate::Rejected(ConfigProblem::ConfigRejected {
                job: subject.child("Job", &name),
                output: rejection(job, &pods.items, &values),
            }))
        }
        Decision::Unchanged | Decision::Generated | Decision::Passed => Ok(Gate::RollOut),
    }
}

/// Deletes the check Jobs `jobs` (their pods and candidate Secrets go with them), skipping those
/// already going.
pub async fn delete_all(applier: &Applier, jobs: &[Arc<CheckJob>]) -> Result<(), Error> {
    for job in jobs {
        if job.metadata.deletion_timestamp.is_none() {
            applier.delete_cached(Some(job.as_ref())).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_check_tests.rs"]
mod tests;
