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
use operator_common::database::{self, ProvisionedDatabase, Readiness, Source, cluster_resource};
use operator_common::events::Events;
use operator_common::labels::{AppLabels, named_by_label};
use operator_common::random::RandomError;
use operator_common::retained::retained_metadata_patch;
use operator_common::rollout::rollout;
use operator_common::runtime::Runtime;
use sha2::{Digest, Sha256};
use synapse_types::contract::{AppServiceState, LABEL_REGISTERED_WITH, labels};
use synapse_types::{DeletionPolicy, Synapse};

use crate::appservice::{Announced, Decision, announcements, decide};
use crate::homeserver_secret::complete_homeserver_secrets;
use crate::render::{OverlayDatabase, OverlayInput, paths, render_log_config, render_overlay};
use crate::resolve::{ConfigMapInput, ConfigProblem, ResolvedConfig, check_database, resolve};
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
    /// The CloudNativePG Cluster of `createNewPostgreSQL`.
    pub fn database_cluster(synapse: &str) -> String {
        format!("{synapse}-pgsql")
    }
}

/// Database and owner role in the provisioned Cluster.
const DATABASE_NAME: &str = "synapse";

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
    #[error(transparent)]
    Database(#[from] database::ApiError),
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::NoNamespace | Error::NoUid => "incomplete-object",
            Error::Read { .. } => "read",
            Error::Create { .. } => "create",
            Error::Apply(_) => "apply",
            Error::Random(_) => "random",
            Error::Database(_) => "database",
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
    let clusters = runtime.dynamic_api(&cluster_resource());
    let field_manager = runtime.field_manager;
    run_controller(
        &runtime,
        move |controller: Controller<Synapse>| {
            let synapses = controller.store();
            let referencing = synapses.clone();
            controller
                .owns(deployments, managed.clone())
                .owns(services, managed.clone())
                // One watch of all Secrets: the retained homeserver Secret (no owner reference,
                // mapped back by its instance label), bridges' registration Secrets (labelled
                // with the Synapse they are offered to), and database Secrets (the user's or
                // CloudNativePG's, found by name).
                .watches(
                    secrets,
                    watcher::Config::default(),
                    move |secret: Secret| secret_triggers(&referencing, field_manager, &secret),
                )
                .watches(claims, managed.clone(), by_instance_label)
                // A missing CloudNativePG CRD makes this watch fail and back off; the Synapses
                // that need it look again on their own (database::CRD_RETRY).
                .watches_with(clusters, cluster_resource(), managed, by_instance_label)
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

/// The Synapses a Secret matters to: besides ours and database Secrets, bridges' registration
/// Secrets, labelled with the Synapse they are offered to.
fn secret_triggers(
    synapses: &Store<Synapse>,
    field_manager: &str,
    secret: &Secret,
) -> Vec<ObjectRef<Synapse>> {
    let mut found = database::secret_triggers(synapses, field_manager, secret, database_source);
    found.extend(named_by_label(secret, LABEL_REGISTERED_WITH));
    found
}

/// The PostgreSQL database the spec asks for, if any.
fn database_source(synapse: &Synapse) -> Option<Source> {
    Source::from_spec(
        synapse.spec.create_new_postgresql,
        synapse.spec.external_postgresql.as_ref(),
        || ProvisionedDatabase {
            cluster: names::database_cluster(&synapse.name_any()),
            database: DATABASE_NAME.to_owned(),
            owner: DATABASE_NAME.to_owned(),
            storage_class: synapse
                .spec
                .storage
                .as_ref()
                .and_then(|s| s.storage_class_name.clone()),
        },
    )
}

fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<Synapse>> {
    named_by_label(&object, labels::INSTANCE)
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
    let source = database_source(&synapse);
    let input = input.as_ref().map(|(ns, name, cm)| ConfigMapInput {
        namespace: ns,
        name,
        config_map: cm.as_ref(),
    });
    let resolved = resolve(&synapse.spec.homeserver, input, recorded).and_then(|config| {
        check_database(
            config,
            input.as_ref(),
            source.as_ref().map(Source::spec_field),
        )
    });

    let mut action = Action::await_change();
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
            let database = match &source {
                None if input.is_some() && config.facts.has_database => Readiness::OwnConfiguration,
                None => Readiness::Sqlite,
                Some(source) => {
                    database::observe(
                        client,
                        &namespace,
                        source,
                        || {
                            object_meta(
                                &synapse,
                                &namespace,
                                names::database_cluster(&name),
                                "database",
                                synapse.spec.deletion_policy == DeletionPolicy::Delete,
                                ctx.field_manager,
                            )
                        },
                        (&Synapse::kind(&()), &Synapse::api_version(&())),
                        ctx.field_manager,
                        source.spec_field(),
                    )
                    .await?
                }
            };
            if let Readiness::NotReady(problem) = &database {
                // Not started against a database that is not ready; one already running stays.
                if let Some(retry) = problem.retry_after {
                    action = Action::requeue(retry);
                }
                let running = Api::<Deployment>::namespaced(client.clone(), &namespace)
                    .get_opt(&name)
                    .await
                    .map_err(|source| read_error("the Deployment", source))?;
                next_status(
                    synapse.status.as_ref(),
                    synapse.metadata.generation,
                    &Outcome::WaitingForDatabase {
                        database: &database,
                        running: running.as_ref().map(rollout),
                    },
                    now(),
                )
            } else {
                let found = announced(&synapse, &namespace, client).await?;
                let app_services = decide(&name, &namespace, found);
                let (client_url, deployment) = deploy(
                    &synapse,
                    &namespace,
                    &name,
                    config,
                    &database,
                    &app_services,
                    &ctx,
                )
                .await?;
                next_status(
                    synapse.status.as_ref(),
                    synapse.metadata.generation,
                    &Outcome::Deployed {
                        config,
                        database: &database,
                        client_url,
                        rollout: rollout(&deployment),
                        app_services: &app_services,
                    },
                    now(),
                )
            }
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
        announce_database(&ctx.events, &synapse, &outcome_status).await;
        announce_app_services(&ctx.events, &synapse, &outcome_status).await;
        let api = Api::<Synapse>::namespaced(client.clone(), &namespace);
        apply_status(&api, ctx.field_manager, &name, &outcome_status).await?;
    }
    Ok(action)
}

/// Metadata of an object of `synapse`: its labels, and the Synapse as owner when `owned`
/// (retained objects list no owner, so that deleting the Synapse leaves them).
fn object_meta(
    synapse: &Synapse,
    namespace: &str,
    object_name: String,
    component: &'static str,
    owned: bool,
    field_manager: &str,
) -> ObjectMeta {
    let name = synapse.name_any();
    ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.to_owned()),
        labels: Some(
            AppLabels {
                name: APP_NAME,
                instance: &name,
                component,
                managed_by: field_manager,
            }
            .all(),
        ),
        owner_references: Some(
            synapse
                .controller_owner_ref(&())
                .filter(|_| owned)
                .into_iter()
                .collect(),
        ),
        ..ObjectMeta::default()
    }
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
    database: &Readiness,
    app_services: &Decision,
    ctx: &Context,
) -> Result<(String, Deployment), Error> {
    let client = &ctx.client;
    synapse.controller_owner_ref(&()).ok_or(Error::NoUid)?;
    let labels_for = |component: &'static str| AppLabels {
        name: APP_NAME,
        instance: name,
        component,
        managed_by: ctx.field_manager,
    };
    let meta = |object_name: String, component: &'static str, owned: bool| {
        object_meta(
            synapse,
            namespace,
            object_name,
            component,
            owned,
            ctx.field_manager,
        )
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
        data: Some(config_files(config, database, &registrations)),
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
        // The password is not mounted but read from PGPASSWORD at start: its rotation must
        // roll the pod too.
        config_hash: config_hash(&[
            config_secret.data.as_ref(),
            homeserver_secret.data.as_ref(),
            Some(&registration_files(app_services)),
            database
                .connection()
                .map(|c| {
                    BTreeMap::from([(
                        "database-password".to_owned(),
                        ByteString(c.password_fingerprint.to_vec()),
                    )])
                })
                .as_ref(),
        ]),
        env: database
            .connection()
            .map(|c| vec![c.password_env()])
            .unwrap_or_default(),
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
    database: &Readiness,
    registrations: &[RegistrationMount],
) -> BTreeMap<String, ByteString> {
    let database = match database.connection() {
        Some(c) => OverlayDatabase::Postgres {
            host: c.host.clone(),
            port: c.port,
            dbname: c.dbname.clone(),
            user: c.username.clone(),
            sslmode: c.sslmode.clone(),
        },
        // Values mode writes SQLite into the base file; a user's file may have its own.
        None if config.facts.has_database => OverlayDatabase::Base,
        None => OverlayDatabase::Sqlite,
    };
    let overlay = render_overlay(&OverlayInput {
        inline_secrets: config.facts.inline_secrets.clone(),
        user_app_service_files: config.facts.app_service_config_files.clone(),
        bridge_registration_files: registrations.iter().map(RegistrationMount::path).collect(),
        database,
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
    let Some(patch) = retained_metadata_patch(
        &meta,
        existing.meta(),
        &Synapse::kind(&()),
        &Synapse::api_version(&()),
    ) else {
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

/// An Event when the DatabaseReady condition changes: Normal when ready, Warning otherwise.
async fn announce_database(
    events: &Events,
    synapse: &Synapse,
    next: &synapse_types::SynapseStatus,
) {
    let find = |status: Option<&synapse_types::SynapseStatus>| {
        status.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == synapse_types::CONDITION_DATABASE_READY)
                .cloned()
        })
    };
    let (Some(after), before) = (find(Some(next)), find(synapse.status.as_ref())) else {
        return;
    };
    if before.is_some_and(|b| b.status == after.status && b.reason == after.reason) {
        return;
    }
    if after.status == "True" {
        events.normal(synapse, &after.reason, after.message).await;
    } else {
        events.warning(synapse, &after.reason, after.message).await;
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
    use super::*;

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
