//! The Synapse controller: fetch the inputs, resolve the configuration, build the desired
//! objects, apply what differs, publish the status.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt as _};
use operator_common::apply::{ApplyError, apply_if_changed, apply_status};
use operator_common::controller::{ReconcileError, run_controller};
use operator_common::events::Events;
use operator_common::labels::AppLabels;
use operator_common::random::RandomError;
use operator_common::rollout::rollout;
use operator_common::runtime::Runtime;
use sha2::{Digest, Sha256};
use synapse_types::contract::{AppServiceState, LABEL_REGISTERED_WITH, labels};
use synapse_types::{DeletionPolicy, Synapse};

use crate::appservice::{Announced, Decision, announcements, decide};
use crate::homeserver_secret::complete_homeserver_secrets;
use crate::render::{OverlayInput, paths, render_log_config, render_overlay};
use crate::resolve::{ConfigMapInput, ConfigProblem, ResolvedConfig, resolve};
use crate::status::{Outcome, next_status, ready_condition};
use crate::workload::{
    RegistrationMount, SynapseWorkload, data_claim, default_resources, synapse_deployment,
    synapse_service,
};

/// Image used when `spec.image` is not set: the Synapse release the tests run.
pub const DEFAULT_IMAGE: &str = "matrixdotorg/synapse:v1.163.2";
const DEFAULT_STORAGE_SIZE: &str = "10Gi";
const APP_NAME: &str = "synapse";

/// Names of the objects a Synapse owns.
pub mod names {
    /// The operator's configuration bundle: base file, overlay, log config.
    pub fn config_secret(synapse: &str) -> String {
        format!("{synapse}-config")
    }
    /// The generated secrets: signing key, macaroon, registration and form secrets.
    pub fn homeserver_secret(synapse: &str) -> String {
        format!("{synapse}-secrets")
    }
    /// The data volume.
    pub fn data_claim(synapse: &str) -> String {
        format!("{synapse}-data")
    }
}

/// A reconciliation that failed and is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Synapse has no namespace")]
    NoNamespace,
    #[error("the Synapse has no uid")]
    NoUid,
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot create {what}: {source}")]
    Create {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::NoNamespace | Error::NoUid => "incomplete-object",
            Error::Read { .. } => "read",
            Error::Create { .. } => "create",
            Error::Apply(_) => "apply",
            Error::Random(_) => "random",
        }
    }
}

struct Context {
    client: Client,
    field_manager: &'static str,
    events: Events,
}

/// Runs the Synapse controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let context = Arc::new(Context {
        client: runtime.client.clone(),
        field_manager: runtime.field_manager,
        events: Events::new(runtime.client.clone(), runtime.field_manager),
    });
    let managed = runtime.managed_objects();
    let (secrets, claims, config_maps) = (
        runtime.api::<Secret>(),
        runtime.api::<PersistentVolumeClaim>(),
        runtime.api::<ConfigMap>(),
    );
    let (deployments, services) = (runtime.api::<Deployment>(), runtime.api::<Service>());
    run_controller(
        &runtime,
        move |controller: Controller<Synapse>| {
            let synapses = controller.store();
            controller
                .owns(deployments, managed.clone())
                .owns(services, managed.clone())
                // The homeserver Secret and the PVC carry no owner reference when retained: map
                // them back through their instance label.
                .watches(secrets.clone(), managed.clone(), by_instance_label)
                // Registration Secrets of bridges, labelled with the Synapse they are offered to.
                .watches(
                    secrets,
                    watcher::Config::default().labels(LABEL_REGISTERED_WITH),
                    |secret: Secret| by_label(&secret, LABEL_REGISTERED_WITH),
                )
                .watches(claims, managed, by_instance_label)
                .watches(
                    config_maps,
                    watcher::Config::default(),
                    move |cm: ConfigMap| referencing_synapses(&synapses, &cm),
                )
        },
        reconcile,
        context,
    )
    .await;
}

fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Synapse>> {
    by_label(&object, labels::INSTANCE)
}

/// The Synapse named by `label` on `object`, in the object's namespace.
fn by_label<K: Resource>(object: &K, label: &str) -> Option<ObjectRef<Synapse>> {
    let meta = object.meta();
    let name = meta.labels.as_ref()?.get(label)?;
    Some(ObjectRef::new(name).within(meta.namespace.as_deref()?))
}

/// The Synapses whose `spec.homeserver.configMap` names this ConfigMap.
fn referencing_synapses(synapses: &Store<Synapse>, cm: &ConfigMap) -> Vec<ObjectRef<Synapse>> {
    let (Some(cm_name), Some(cm_namespace)) = (cm.metadata.name.as_deref(), cm.namespace()) else {
        return Vec::new();
    };
    synapses
        .state()
        .iter()
        .filter(|synapse| {
            synapse
                .spec
                .homeserver
                .config_map
                .as_ref()
                .is_some_and(|r| {
                    let namespace = r.namespace.clone().or_else(|| synapse.namespace());
                    r.name == cm_name && namespace.as_deref() == Some(cm_namespace.as_str())
                })
        })
        .map(|synapse| ObjectRef::from_obj(synapse.as_ref()))
        .collect()
}

async fn reconcile(synapse: Arc<Synapse>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = synapse.namespace().ok_or(Error::NoNamespace)?;
    let name = synapse.name_any();
    let client = &ctx.client;

    let input = match &synapse.spec.homeserver.config_map {
        Some(reference) => {
            let cm_namespace = reference.namespace.clone().unwrap_or(namespace.clone());
            let api = Api::<ConfigMap>::namespaced(client.clone(), &cm_namespace);
            let found = api
                .get_opt(&reference.name)
                .await
                .map_err(|source| Error::Read {
                    what: format!("ConfigMap {cm_namespace}/{}", reference.name),
                    source,
                })?;
            Some((cm_namespace, reference.name.clone(), found))
        }
        None => None,
    };
    let recorded = synapse
        .status
        .as_ref()
        .and_then(|s| s.homeserver_configuration.as_ref())
        .and_then(|h| h.server_name.as_deref());
    let resolved = resolve(
        &synapse.spec.homeserver,
        input.as_ref().map(|(ns, name, cm)| ConfigMapInput {
            namespace: ns,
            name,
            config_map: cm.as_ref(),
        }),
        recorded,
    );

    let outcome_status = match &resolved {
        Err(problem) => {
            // The running workload keeps its last good configuration.
            next_status(
                synapse.status.as_ref(),
                synapse.metadata.generation,
                &Outcome::Problem(problem),
                now(),
            )
        }
        Ok(config) => {
            let found = announced(&synapse, &namespace, client).await?;
            let app_services = decide(&name, &namespace, found);
            let (client_url, deployment) =
                deploy(&synapse, &namespace, &name, config, &app_services, &ctx).await?;
            next_status(
                synapse.status.as_ref(),
                synapse.metadata.generation,
                &Outcome::Deployed {
                    config,
                    client_url,
                    rollout: rollout(&deployment),
                    app_services: &app_services,
                },
                now(),
            )
        }
    };

    if synapse.status.as_ref() != Some(&outcome_status) {
        announce(
            &ctx.events,
            &synapse,
            resolved.as_ref().err(),
            &outcome_status,
        )
        .await;
        announce_app_services(&ctx.events, &synapse, &outcome_status).await;
        let api = Api::<Synapse>::namespaced(client.clone(), &namespace);
        apply_status(&api, ctx.field_manager, &name, &outcome_status).await?;
    }
    Ok(Action::await_change())
}

/// The registrations announced on the Synapse, with their Secrets.
async fn announced(
    synapse: &Synapse,
    namespace: &str,
    client: &Client,
) -> Result<Vec<Announced>, Error> {
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let mut found = Vec::new();
    for (annotation, secret_name) in announcements(synapse.annotations()) {
        let secret = secrets
            .get_opt(&secret_name)
            .await
            .map_err(|source| Error::Read {
                what: format!("registration Secret {namespace}/{secret_name}"),
                source,
            })?;
        found.push(Announced {
            annotation,
            secret_name,
            secret,
        });
    }
    Ok(found)
}

/// Applies the homeserver Secret, the configuration, the PVC, the Deployment and the Service.
/// Returns the client URL and the Deployment as stored.
async fn deploy(
    synapse: &Synapse,
    namespace: &str,
    name: &str,
    config: &ResolvedConfig,
    app_services: &Decision,
    ctx: &Context,
) -> Result<(String, Deployment), Error> {
    let client = &ctx.client;
    let owner = synapse.controller_owner_ref(&()).ok_or(Error::NoUid)?;
    let labels_for = |component: &'static str| AppLabels {
        name: APP_NAME,
        instance: name,
        component,
        managed_by: ctx.field_manager,
    };
    let meta = |object_name: String, component: &'static str, owned: bool| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels_for(component).all()),
        // Retained objects list no owner, so that deleting the Synapse leaves them.
        owner_references: Some(if owned { vec![owner.clone()] } else { vec![] }),
        ..ObjectMeta::default()
    };
    let delete_with_synapse = synapse.spec.deletion_policy == DeletionPolicy::Delete;

    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let homeserver_secret = ensure_homeserver_secret(
        &secrets,
        meta(
            names::homeserver_secret(name),
            "secrets",
            delete_with_synapse,
        ),
        ctx.field_manager,
    )
    .await?;

    let registrations: Vec<RegistrationMount> = app_services
        .accepted
        .iter()
        .map(|a| a.mount.clone())
        .collect();
    let config_secret = Secret {
        metadata: meta(names::config_secret(name), "config", true),
        data: Some(config_files(config, &registrations)),
        ..Secret::default()
    };
    let existing = secrets
        .get_opt(&names::config_secret(name))
        .await
        .map_err(|source| read_error("the config Secret", source))?;
    apply_if_changed(
        &secrets,
        ctx.field_manager,
        &config_secret,
        existing.as_ref(),
    )
    .await?;

    let storage = synapse.spec.storage.clone().unwrap_or_default();
    let size = storage
        .size
        .map(|q| q.0)
        .unwrap_or_else(|| DEFAULT_STORAGE_SIZE.to_owned());
    ensure_claim(
        &Api::namespaced(client.clone(), namespace),
        data_claim(
            meta(names::data_claim(name), "data", delete_with_synapse),
            &size,
            storage.storage_class_name.as_deref(),
        ),
        ctx.field_manager,
    )
    .await?;

    let selector = labels_for("homeserver").selector();
    let workload = SynapseWorkload {
        image: synapse
            .spec
            .image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        client_port: config.facts.client_port,
        config_secret: names::config_secret(name),
        homeserver_secret: names::homeserver_secret(name),
        data_claim: names::data_claim(name),
        registrations,
        config_hash: config_hash(&[
            config_secret.data.as_ref(),
            homeserver_secret.data.as_ref(),
            Some(&registration_files(app_services)),
        ]),
        resources: synapse
            .spec
            .resources
            .clone()
            .unwrap_or_else(default_resources),
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
    let desired = synapse_deployment(
        meta(name.to_owned(), "homeserver", true),
        selector.clone(),
        &workload,
    );
    let existing = deployments
        .get_opt(name)
        .await
        .map_err(|source| read_error("the Deployment", source))?;
    let deployment =
        apply_if_changed(&deployments, ctx.field_manager, &desired, existing.as_ref()).await?;

    let services = Api::<Service>::namespaced(client.clone(), namespace);
    let desired = synapse_service(
        meta(name.to_owned(), "homeserver", true),
        selector,
        config.facts.client_port,
    );
    let existing = services
        .get_opt(name)
        .await
        .map_err(|source| read_error("the Service", source))?;
    apply_if_changed(&services, ctx.field_manager, &desired, existing.as_ref()).await?;

    let client_url = format!("http://{name}.{namespace}.svc:{}", config.facts.client_port);
    Ok((client_url, deployment))
}

fn read_error(what: &str, source: kube::Error) -> Error {
    Error::Read {
        what: what.to_owned(),
        source,
    }
}

/// The files of the config Secret.
fn config_files(
    config: &ResolvedConfig,
    registrations: &[RegistrationMount],
) -> BTreeMap<String, ByteString> {
    let overlay = render_overlay(&OverlayInput {
        inline_secrets: config.facts.inline_secrets.clone(),
        user_app_service_files: config.facts.app_service_config_files.clone(),
        bridge_registration_files: registrations.iter().map(RegistrationMount::path).collect(),
        base_has_database: config.facts.has_database,
    });
    BTreeMap::from([
        (
            paths::BASE_FILE.to_owned(),
            ByteString(config.base_file.clone().into_bytes()),
        ),
        (
            paths::OVERLAY_FILE.to_owned(),
            ByteString(overlay.into_bytes()),
        ),
        (
            paths::LOG_CONFIG_FILE.to_owned(),
            ByteString(render_log_config().into_bytes()),
        ),
    ])
}

/// The accepted registration files by mount directory, for the config hash.
fn registration_files(app_services: &Decision) -> BTreeMap<String, ByteString> {
    app_services
        .accepted
        .iter()
        .map(|a| (a.mount.dir.clone(), ByteString(a.content.clone())))
        .collect()
}

/// SHA-256 over every file the pod mounts: a change in any of them changes the pod template and
/// so rolls Synapse. Only the hash is published, never the content.
fn config_hash(sources: &[Option<&BTreeMap<String, ByteString>>]) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in sources.iter().flat_map(|s| s.iter().flat_map(|m| m.iter())) {
        hasher.update((key.len() as u64).to_be_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.0.len() as u64).to_be_bytes());
        hasher.update(&value.0);
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The homeserver Secret, generated once. Created with a plain create, never applied over, so a
/// stale read can never replace existing keys with new ones: if another reconciliation created it
/// first, the create fails and the next attempt reads it. Only missing keys are ever added, and
/// only the metadata (labels, owner) is applied on later reconciliations.
async fn ensure_homeserver_secret(
    api: &Api<Secret>,
    meta: ObjectMeta,
    field_manager: &str,
) -> Result<Secret, Error> {
    let name = meta.name.clone().unwrap_or_default();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| read_error("the homeserver Secret", source))?;
    let Some(existing) = existing else {
        let data = complete_homeserver_secrets(&BTreeMap::new())?;
        let secret = Secret {
            metadata: meta,
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            ..Secret::default()
        };
        return api
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|source| Error::Create {
                what: format!("Secret {name}"),
                source,
            });
    };
    let current: BTreeMap<String, Vec<u8>> = existing
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let complete = complete_homeserver_secrets(&current)?;
    let mut secret = existing;
    if complete != current {
        // Someone removed a key: add only what is missing, guarded by the resourceVersion.
        let missing: BTreeMap<String, ByteString> = complete
            .into_iter()
            .filter(|(k, _)| !current.contains_key(k) || current[k].is_empty())
            .map(|(k, v)| (k, ByteString(v)))
            .collect();
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": secret.metadata.resource_version},
            "data": missing,
        });
        secret = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::Create {
                what: format!("the missing keys of Secret {name}"),
                source,
            })?;
    }
    update_metadata(api, field_manager, meta, &secret).await
}

/// The data PVC: created once and never replaced or resized by a spec change; afterwards only its
/// labels and owner are set.
async fn ensure_claim(
    api: &Api<PersistentVolumeClaim>,
    desired: PersistentVolumeClaim,
    field_manager: &str,
) -> Result<PersistentVolumeClaim, Error> {
    let name = desired.metadata.name.clone().unwrap_or_default();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| read_error("the data PVC", source))?;
    match existing {
        None => api
            .create(&PostParams::default(), &desired)
            .await
            .map_err(|source| Error::Create {
                what: format!("PersistentVolumeClaim {name}"),
                source,
            }),
        Some(existing) => update_metadata(api, field_manager, desired.metadata, &existing).await,
    }
}

/// Sets `meta`'s labels and exactly its Synapse owner reference (or none) on an existing
/// retained object; writes nothing when they are already there.
async fn update_metadata<K>(
    api: &Api<K>,
    field_manager: &str,
    meta: ObjectMeta,
    existing: &K,
) -> Result<K, Error>
where
    K: Resource<DynamicType = ()>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug,
{
    let Some(patch) = retained_metadata_patch(&meta, existing.meta()) else {
        return Ok(existing.clone());
    };
    let name = existing.meta().name.clone().unwrap_or_default();
    let params = PatchParams {
        field_manager: Some(field_manager.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|error| {
            Error::Apply(ApplyError::Api {
                kind: K::kind(&()).into_owned(),
                name,
                error,
            })
        })
}

/// The JSON merge patch that gives an existing retained object (homeserver Secret, data PVC)
/// the labels and the Synapse owner reference of `desired`, or `None` when it has them.
///
/// A merge patch replaces the whole owner list, so switching `deletionPolicy` from Delete to
/// Retain really removes the owner reference, whichever request wrote it (the object was
/// created by a plain create, so server-side apply does not own that reference and could not
/// remove it). Owner references of other kinds are kept; the resourceVersion guards against a
/// concurrent change.
fn retained_metadata_patch(
    desired: &ObjectMeta,
    existing: &ObjectMeta,
) -> Option<serde_json::Value> {
    let is_synapse = |o: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference| {
        o.kind == Synapse::kind(&()) && o.api_version == Synapse::api_version(&())
    };
    let current_owners = existing.owner_references.clone().unwrap_or_default();
    let owners: Vec<_> = current_owners
        .iter()
        .filter(|o| !is_synapse(o))
        .chain(desired.owner_references.iter().flatten().filter(is_synapse))
        .cloned()
        .collect();
    let current_labels = existing.labels.clone().unwrap_or_default();
    let labels = desired.labels.clone().unwrap_or_default();
    let labels_set = labels.iter().all(|(k, v)| current_labels.get(k) == Some(v));
    if labels_set && owners == current_owners {
        return None;
    }
    Some(serde_json::json!({
        "metadata": {
            "resourceVersion": existing.resource_version,
            "labels": labels,
            "ownerReferences": if owners.is_empty() { None } else { Some(owners) },
        }
    }))
}

/// Events for a changed Ready condition: a Warning for a problem the user must fix, Normal for
/// the rest.
async fn announce(
    events: &Events,
    synapse: &Synapse,
    problem: Option<&ConfigProblem>,
    next: &synapse_types::SynapseStatus,
) {
    let before = ready_condition(synapse.status.as_ref());
    let Some(after) = ready_condition(Some(next)) else {
        return;
    };
    if before.is_some_and(|b| b.status == after.status && b.reason == after.reason) {
        return;
    }
    match problem {
        Some(problem) => {
            events
                .warning(synapse, problem.reason(), problem.to_string())
                .await
        }
        None => {
            events
                .normal(synapse, &after.reason, after.message.clone())
                .await
        }
    }
}

/// Events for app services whose state changed: Normal when registered, Warning (with the
/// reason) when rejected.
async fn announce_app_services(
    events: &Events,
    synapse: &Synapse,
    next: &synapse_types::SynapseStatus,
) {
    let before = synapse
        .status
        .as_ref()
        .map(|s| s.app_services.as_slice())
        .unwrap_or_default();
    for entry in &next.app_services {
        if before.contains(entry) {
            continue;
        }
        let bridge = format!("{} {}", entry.source.kind, entry.source.name);
        match entry.state {
            AppServiceState::Registered => {
                events
                    .normal(
                        synapse,
                        "AppServiceRegistered",
                        format!("registration of {bridge} accepted and mounted"),
                    )
                    .await
            }
            AppServiceState::Rejected => {
                events
                    .warning(
                        synapse,
                        "AppServiceRejected",
                        format!(
                            "registration of {bridge} rejected, not mounted: {}",
                            entry.reason.as_deref().unwrap_or_default()
                        ),
                    )
                    .await
            }
        }
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    fn owner(kind: &str, api_version: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "hs".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn synapse_owner(uid: &str) -> OwnerReference {
        owner("Synapse", "synapse.opdev.io/v1alpha1", uid)
    }

    fn meta(owners: Vec<OwnerReference>, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            resource_version: Some("7".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(owners),
            ..ObjectMeta::default()
        }
    }

    const LABELS: &[(&str, &str)] = &[("app.kubernetes.io/instance", "hs")];

    #[test]
    fn retained_metadata_in_place_needs_no_write() {
        // The API server omits an empty owner list; an empty desired list means the same.
        let existing = ObjectMeta {
            owner_references: None,
            ..meta(
                vec![],
                &[("app.kubernetes.io/instance", "hs"), ("other", "x")],
            )
        };
        assert_eq!(
            retained_metadata_patch(&meta(vec![], LABELS), &existing),
            None
        );
        let owned = meta(vec![synapse_owner("u1")], LABELS);
        assert_eq!(retained_metadata_patch(&owned, &owned), None);
    }

    #[test]
    fn switching_to_retain_removes_the_synapse_owner_and_keeps_others() {
        let foreign = owner("Backup", "example.org/v1", "b1");
        let existing = meta(vec![synapse_owner("u1"), foreign.clone()], LABELS);
        let patch = retained_metadata_patch(&meta(vec![], LABELS), &existing).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![foreign]).unwrap()
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let only_ours = meta(vec![synapse_owner("u1")], LABELS);
        let patch = retained_metadata_patch(&meta(vec![], LABELS), &only_ours).unwrap();
        assert!(patch["metadata"]["ownerReferences"].is_null());
        assert!(
            patch["metadata"]
                .as_object()
                .unwrap()
                .contains_key("ownerReferences"),
            "null deletes the list in a merge patch"
        );
    }

    #[test]
    fn switching_to_delete_or_a_new_synapse_sets_its_owner_and_labels() {
        let desired = meta(vec![synapse_owner("u2")], LABELS);
        let patch = retained_metadata_patch(&desired, &meta(vec![], &[])).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![synapse_owner("u2")]).unwrap()
        );
        assert_eq!(
            patch["metadata"]["labels"]["app.kubernetes.io/instance"],
            "hs"
        );
        // A reference to a former Synapse of the same name is replaced.
        let patch =
            retained_metadata_patch(&desired, &meta(vec![synapse_owner("u1")], LABELS)).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![synapse_owner("u2")]).unwrap()
        );
    }

    #[test]
    fn config_hash_changes_with_any_file_and_is_stable() {
        let a = BTreeMap::from([("a".to_owned(), ByteString(b"1".to_vec()))]);
        let b = BTreeMap::from([("a".to_owned(), ByteString(b"2".to_vec()))]);
        let s = BTreeMap::from([("k".to_owned(), ByteString(b"secret".to_vec()))]);
        let h = config_hash(&[Some(&a), Some(&s)]);
        assert_eq!(h, config_hash(&[Some(&a), Some(&s)]));
        assert_ne!(h, config_hash(&[Some(&b), Some(&s)]));
        assert_ne!(h, config_hash(&[Some(&a), None]));
        assert_eq!(h.len(), 64);
        assert!(!h.contains("secret"));
    }
}
