//! The MautrixSignal controller: fetch the inputs, make the config and the registration, store
//! them, build the workload, apply what differs, announce the registration to the Synapse,
//! publish the status. On deletion, withdraw the announcement before the finalizer lets the
//! bridge go.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt as _};
use operator_common::apply::{ApplyError, apply, apply_if_changed, apply_status};
use operator_common::bridge::{
    Announcement, BridgeError, add_finalizer, bridges_of_config_map, bridges_of_synapse,
    has_finalizer, registration_state, remove_finalizer, synapse_name,
};
use operator_common::controller::{ReconcileError, run_controller};
use operator_common::database::{self, Readiness, cluster_resource};
use operator_common::events::Events;
use operator_common::labels::{AppLabels, named_by_label};
use operator_common::random::RandomError;
use operator_common::rollout::rollout;
use operator_common::runtime::Runtime;
use sha2::{Digest, Sha256};
use synapse_types::contract::{
    AnnotationKeyError, AppServiceSource, BridgeKind, LABEL_REGISTERED_WITH,
    REGISTRATION_SECRET_KEY, labels, registration_content_hash,
};
use synapse_types::{DeletionPolicy, MautrixSignal, Synapse};

use crate::config::{
    CONFIG_MAP_KEY, Database, OperatorDatabase, Owned, Prepared, default_config, user_config,
};
use crate::database::{shared_with_synapse, source as database_source};
use crate::keys::{IncompleteKeys, Keys, complete};
use crate::registration::render_registration;
use crate::status::{ConfigSource, Outcome, Problem, Running, next_status, notices};
use crate::workload::{
    BridgeWorkload, DEFAULT_IMAGE, DEFAULT_STORAGE_SIZE, bridge_deployment, bridge_service,
    data_claim, names, secret,
};

const APP_NAME: &str = "mautrix-signal";

/// A reconciliation that failed and is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the MautrixSignal has no namespace")]
    NoNamespace,
    #[error("the MautrixSignal has no uid")]
    NoUid,
    #[error(transparent)]
    Name(#[from] AnnotationKeyError),
    #[error("cannot read {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Keys(#[from] IncompleteKeys),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Database(#[from] database::ApiError),
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::NoNamespace | Error::NoUid | Error::Name(_) => "incomplete-object",
            Error::Read { .. } => "read",
            Error::Write { .. } => "write",
            Error::Apply(_) => "apply",
            Error::Random(_) | Error::Keys(_) => "keys",
            Error::Bridge(_) => "handshake",
            Error::Database(_) => "database",
        }
    }
}

struct Context {
    client: Client,
    field_manager: &'static str,
    events: Events,
}

/// Runs the MautrixSignal controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let context = Arc::new(Context {
        client: runtime.client.clone(),
        field_manager: runtime.field_manager,
        events: Events::new(runtime.client.clone(), runtime.field_manager),
    });
    let managed = runtime.managed_objects();
    let (deployments, services) = (runtime.api::<Deployment>(), runtime.api::<Service>());
    let (secrets, claims) = (
        runtime.api::<Secret>(),
        runtime.api::<PersistentVolumeClaim>(),
    );
    let (synapses, config_maps) = (runtime.api::<Synapse>(), runtime.api::<ConfigMap>());
    let clusters = runtime.dynamic_api(&cluster_resource());
    let field_manager = runtime.field_manager;
    run_controller(
        &runtime,
        move |controller: Controller<MautrixSignal>| {
            let bridges = controller.store();
            let (for_secrets, for_config_maps) = (bridges.clone(), bridges.clone());
            controller
                .owns(deployments, managed.clone())
                .owns(services, managed.clone())
                // One watch of all Secrets: ours (the keys Secret carries no owner reference
                // when retained, so all are mapped back through their instance label) and the
                // database Secrets, the user's or CloudNativePG's, found by name.
                .watches(
                    secrets,
                    watcher::Config::default(),
                    move |secret: Secret| {
                        database::secret_triggers(
                            &for_secrets,
                            field_manager,
                            &secret,
                            database_source,
                        )
                    },
                )
                .watches(claims, managed.clone(), by_instance_label)
                // A missing CloudNativePG CRD makes this watch fail and back off; the bridges
                // that need it look again on their own (database::CRD_RETRY).
                .watches_with(clusters, cluster_resource(), managed, by_instance_label)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches(synapses, watcher::Config::default(), move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                })
                .watches(config_maps, watcher::Config::default(), move |cm| {
                    bridges_of_config_map(&for_config_maps, &cm)
                })
        },
        reconcile,
        context,
    )
    .await;
}

fn by_instance_label<K: Resource>(object: K) -> Option<ObjectRef<MautrixSignal>> {
    named_by_label(&object, labels::INSTANCE)
}

async fn reconcile(bridge: Arc<MautrixSignal>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = bridge.namespace().ok_or(Error::NoNamespace)?;
    let name = bridge.name_any();
    let announcement = Announcement::new(
        ctx.field_manager,
        BridgeKind::MautrixSignal,
        &name,
        &names::registration_secret(&name),
    )?;
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let registration_secret = secrets
        .get_opt(&names::registration_secret(&name))
        .await
        .map_err(|source| read_error("the registration Secret", source))?;

    if bridge.metadata.deletion_timestamp.is_some() {
        withdraw(
            &bridge,
            &namespace,
            &announcement,
            registration_secret.as_ref(),
            &ctx,
        )
        .await?;
        return Ok(Action::await_change());
    }

    let (outcome, server_name) = converge(
        &bridge,
        &namespace,
        &announcement,
        registration_secret.as_ref(),
        &ctx,
    )
    .await?;
    // What cannot be watched (a CRD not yet installed) is looked at again after a while.
    let action = match &outcome {
        Outcome::WaitingForDatabase {
            database: Readiness::NotReady(problem),
            ..
        } => problem
            .retry_after
            .map_or_else(Action::await_change, Action::requeue),
        _ => Action::await_change(),
    };
    let next = next_status(
        bridge.status.as_ref(),
        bridge.metadata.generation,
        &outcome,
        server_name.as_deref(),
        now(),
    );
    if bridge.status.as_ref() != Some(&next) {
        ctx.events
            .publish(bridge.as_ref(), notices(bridge.status.as_ref(), &next))
            .await;
        let api = Api::<MautrixSignal>::namespaced(ctx.client.clone(), &namespace);
        apply_status(&api, ctx.field_manager, &name, &next).await?;
    }
    Ok(action)
}

/// The user's config file, or why it cannot be read; `None` without `spec.configMap`.
async fn input_file(
    bridge: &MautrixSignal,
    namespace: &str,
    ctx: &Context,
) -> Result<Result<Option<(ConfigSource, String)>, Problem>, Error> {
    let Some(reference) = &bridge.spec.config_map else {
        return Ok(Ok(None));
    };
    let cm_namespace = reference
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| namespace.to_owned());
    let config_map = Api::<ConfigMap>::namespaced(ctx.client.clone(), &cm_namespace)
        .get_opt(&reference.name)
        .await
        .map_err(|source| {
            read_error(
                &format!("ConfigMap {cm_namespace}/{}", reference.name),
                source,
            )
        })?;
    let (namespace, name) = (cm_namespace, reference.name.clone());
    let Some(config_map) = config_map else {
        return Ok(Err(Problem::ConfigMapNotFound { namespace, name }));
    };
    let Some(file) = config_map.data.as_ref().and_then(|d| d.get(CONFIG_MAP_KEY)) else {
        return Ok(Err(Problem::ConfigMapKeyMissing { namespace, name }));
    };
    Ok(Ok(Some((
        ConfigSource::ConfigMap { namespace, name },
        file.clone(),
    ))))
}

/// Everything short of the status: returns the outcome and the Synapse's server name when it
/// published one.
async fn converge(
    bridge: &MautrixSignal,
    namespace: &str,
    announcement: &Announcement,
    registration_secret: Option<&Secret>,
    ctx: &Context,
) -> Result<(Outcome, Option<String>), Error> {
    let synapse_name = match synapse_name(namespace, &bridge.spec.synapse) {
        Ok(name) => name.to_owned(),
        Err(problem) => return Ok((Outcome::Problem(problem.into()), None)),
    };
    let input = match input_file(bridge, namespace, ctx).await? {
        Ok(input) => input,
        Err(problem) => return Ok((Outcome::Problem(problem), None)),
    };
    let synapses = Api::<Synapse>::namespaced(ctx.client.clone(), namespace);
    let synapse = synapses
        .get_opt(&synapse_name)
        .await
        .map_err(|source| read_error(&format!("Synapse {namespace}/{synapse_name}"), source))?;
    let Some(synapse) = synapse else {
        return Ok((
            Outcome::SynapseNotFound {
                synapse: synapse_name,
            },
            None,
        ));
    };
    let status = synapse.status.as_ref();
    let server_name = status
        .and_then(|s| s.homeserver_configuration.as_ref())
        .and_then(|h| h.server_name.clone());
    let client_url = status.and_then(|s| s.client_url.clone());
    let (Some(domain), Some(homeserver_url)) = (server_name.clone(), client_url) else {
        return Ok((
            Outcome::SynapseNotReady {
                synapse: synapse_name,
            },
            server_name,
        ));
    };

    let name = bridge.name_any();
    let owner = bridge.controller_owner_ref(&()).ok_or(Error::NoUid)?;
    let retained = bridge.spec.deletion_policy == DeletionPolicy::Retain;
    let app_labels = |component| AppLabels {
        name: APP_NAME,
        instance: &name,
        component,
        managed_by: ctx.field_manager,
    };
    let meta = |object_name: String, component, owned: bool| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.to_owned()),
        labels: Some(app_labels(component).all()),
        owner_references: Some(if owned { vec![owner.clone()] } else { vec![] }),
        ..ObjectMeta::default()
    };
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), namespace);

    let keys = ensure_keys(
        &secrets,
        meta(names::keys_secret(&name), "keys", !retained),
        ctx.field_manager,
    )
    .await?;
    let appservice_url = names::service_url(&name, namespace);
    let owned = Owned {
        homeserver_url: &homeserver_url,
        domain: &domain,
        appservice_url: &appservice_url,
        keys: &keys,
        admins: &bridge.spec.admins,
    };
    let (origin, rendered) = match &input {
        None => (ConfigSource::Default, default_config(&owned)),
        Some((origin, file)) => (origin.clone(), user_config(file, &owned)),
    };
    let prepared = match rendered {
        Ok(prepared) => prepared,
        Err(error) => {
            let problem = Problem::InvalidConfig { origin, error };
            return Ok((Outcome::Problem(problem), server_name));
        }
    };
    let cluster_meta = || meta(names::database_cluster(&name), "database", !retained);
    let database = match observe_database(
        bridge,
        namespace,
        &synapse,
        &origin,
        &prepared,
        cluster_meta,
        ctx,
    )
    .await?
    {
        Ok(database) => database,
        Err(problem) => return Ok((Outcome::Problem(problem), server_name)),
    };
    if let Readiness::NotReady(_) = database {
        // Not started against a database it cannot use; one already running stays as it is.
        let running = deployed(namespace, &name, &synapse, registration_secret, ctx).await?;
        return Ok((
            Outcome::WaitingForDatabase {
                synapse: synapse_name,
                database,
                running,
            },
            server_name,
        ));
    }
    let config = prepared.finish(match database.connection() {
        Some(connection) => OperatorDatabase::Postgres(connection),
        None => OperatorDatabase::Sqlite,
    });
    let registration = render_registration(&config.registration_input(&owned));

    // A bridge moved to another Synapse leaves the one it was announced to.
    let previous = registration_secret
        .and_then(|s| s.labels().get(LABEL_REGISTERED_WITH))
        .filter(|previous| previous.as_str() != synapse_name);
    if let Some(previous) = previous {
        announcement.withdraw(&synapses, previous).await?;
    }
    let mut registration_meta = meta(names::registration_secret(&name), "registration", true);
    registration_meta
        .labels
        .get_or_insert_default()
        .insert(LABEL_REGISTERED_WITH.to_owned(), synapse_name.clone());
    let desired = secret(
        registration_meta,
        BTreeMap::from([(
            REGISTRATION_SECRET_KEY.to_owned(),
            registration.clone().into_bytes(),
        )]),
    );
    apply_if_changed(&secrets, ctx.field_manager, &desired, registration_secret).await?;
    let desired = secret(
        meta(names::config_secret(&name), "config", true),
        BTreeMap::from([(CONFIG_MAP_KEY.to_owned(), config.file.clone().into_bytes())]),
    );
    let existing = secrets
        .get_opt(&names::config_secret(&name))
        .await
        .map_err(|source| read_error("the config Secret", source))?;
    apply_if_changed(&secrets, ctx.field_manager, &desired, existing.as_ref()).await?;

    let storage = bridge.spec.storage.clone().unwrap_or_default();
    let size = storage
        .size
        .map(|q| q.0)
        .unwrap_or_else(|| DEFAULT_STORAGE_SIZE.to_owned());
    ensure_claim(
        &Api::namespaced(ctx.client.clone(), namespace),
        data_claim(
            meta(names::data_claim(&name), "data", !retained),
            &size,
            storage.storage_class_name.as_deref(),
        ),
        ctx.field_manager,
    )
    .await?;

    let selector = app_labels("bridge").selector();
    // The password is not mounted but read from PGPASSWORD at start: its rotation must roll the
    // pod too.
    let mut hashed = vec![config.file.as_bytes(), registration.as_bytes()];
    hashed.extend(database.connection().map(|c| &c.password_fingerprint[..]));
    let workload = BridgeWorkload {
        image: bridge
            .spec
            .image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
        config_secret: names::config_secret(&name),
        registration_secret: names::registration_secret(&name),
        data_claim: names::data_claim(&name),
        config_hash: files_hash(&hashed),
        env: database
            .connection()
            .map(|c| vec![c.password_env()])
            .unwrap_or_default(),
    };
    let deployments = Api::<Deployment>::namespaced(ctx.client.clone(), namespace);
    let existing = deployments
        .get_opt(&names::workload(&name))
        .await
        .map_err(|source| read_error("the Deployment", source))?;
    let desired = bridge_deployment(
        meta(names::workload(&name), "bridge", true),
        selector.clone(),
        &workload,
    );
    let deployment =
        apply_if_changed(&deployments, ctx.field_manager, &desired, existing.as_ref()).await?;
    let services = Api::<Service>::namespaced(ctx.client.clone(), namespace);
    let existing = services
        .get_opt(&names::workload(&name))
        .await
        .map_err(|source| read_error("the Service", source))?;
    let desired = bridge_service(meta(names::workload(&name), "bridge", true), selector);
    apply_if_changed(&services, ctx.field_manager, &desired, existing.as_ref()).await?;

    // The finalizer first: once announced, the bridge must not go without withdrawing.
    let bridges = Api::<MautrixSignal>::namespaced(ctx.client.clone(), namespace);
    add_finalizer(&bridges, bridge, ctx.field_manager).await?;
    announcement.announce(&synapses, &synapse).await?;

    let source = app_service_source(namespace, &name);
    let content_hash = registration_content_hash(registration.as_bytes());
    Ok((
        Outcome::Applied {
            synapse: synapse_name,
            registration: registration_state(&synapse, &source, &content_hash),
            rollout: rollout(&deployment),
            migration: config.migration,
            database,
        },
        server_name,
    ))
}

/// Where the bridge's database stands: SQLite, the user's file's own, or the PostgreSQL of the
/// spec (the Cluster created once, the Secret read), never the Synapse's. `Err`: the user's file
/// and the spec both name one.
async fn observe_database(
    bridge: &MautrixSignal,
    namespace: &str,
    synapse: &Synapse,
    origin: &ConfigSource,
    prepared: &Prepared,
    cluster_meta: impl FnOnce() -> ObjectMeta,
    ctx: &Context,
) -> Result<Result<Readiness, Problem>, Error> {
    let own = *prepared.database() == Database::User;
    let source = match (database_source(bridge), own) {
        (None, true) => return Ok(Ok(Readiness::OwnConfiguration)),
        (None, false) => return Ok(Ok(Readiness::Sqlite)),
        (Some(source), true) => {
            return Ok(Err(Problem::DatabaseConflict {
                origin: origin.clone(),
                field: source.spec_field(),
            }));
        }
        (Some(source), false) => source,
    };
    let readiness = database::observe(
        &ctx.client,
        namespace,
        &source,
        cluster_meta,
        (&MautrixSignal::kind(&()), &MautrixSignal::api_version(&())),
        ctx.field_manager,
        source.spec_field(),
    )
    .await?;
    let synapse_database = synapse
        .status
        .as_ref()
        .and_then(|s| s.database_connection_info.as_ref());
    if let Some(connection) = readiness.connection()
        && let Err(problem) = shared_with_synapse(connection, &synapse.name_any(), synapse_database)
    {
        return Ok(Ok(Readiness::NotReady(problem)));
    }
    Ok(Ok(readiness))
}

/// The bridge deployed earlier, if any: how its rollout stands and whether the registration it
/// announced (the stored one) is live.
async fn deployed(
    namespace: &str,
    name: &str,
    synapse: &Synapse,
    registration_secret: Option<&Secret>,
    ctx: &Context,
) -> Result<Option<Running>, Error> {
    let deployment = Api::<Deployment>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&names::workload(name))
        .await
        .map_err(|source| read_error("the Deployment", source))?;
    let Some(deployment) = deployment else {
        return Ok(None);
    };
    let stored = registration_secret
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get(REGISTRATION_SECRET_KEY))
        .map(|file| file.0.as_slice())
        .unwrap_or_default();
    Ok(Some(Running {
        rollout: rollout(&deployment),
        registration: registration_state(
            synapse,
            &app_service_source(namespace, name),
            &registration_content_hash(stored),
        ),
    }))
}

/// How the Synapse's status names this bridge's registration.
fn app_service_source(namespace: &str, name: &str) -> AppServiceSource {
    AppServiceSource {
        kind: BridgeKind::MautrixSignal.kind().to_owned(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

/// SHA-256 over the files the pod mounts: a change in any of them changes the pod template and
/// so restarts the bridge. Only the hash is published, never the content.
fn files_hash(files: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update((file.len() as u64).to_be_bytes());
        hasher.update(file);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys Secret, generated once. Created with a plain create, never applied over, so a
/// stale read can never replace existing keys with new ones: if another reconciliation created
/// it first, the create fails and the retry reads it. Only missing keys are ever added; later
/// reconciliations apply only its labels and owner.
async fn ensure_keys(
    api: &Api<Secret>,
    meta: ObjectMeta,
    field_manager: &str,
) -> Result<Keys, Error> {
    let name = meta.name.clone().unwrap_or_default();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| read_error("the keys Secret", source))?;
    let current: BTreeMap<String, Vec<u8>> = existing
        .iter()
        .flat_map(|s| s.data.iter().flatten())
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let data = complete(&current)?;
    let stored = match existing {
        None => {
            let secret = secret(without_owner(&meta), data.clone());
            api.create(&PostParams::default(), &secret)
                .await
                .map_err(|source| write_error(&format!("Secret {name}"), source))?
        }
        Some(existing) if data != current => {
            // Someone removed or emptied a key: add only those, guarded by the version read.
            let missing: BTreeMap<&String, k8s_openapi::ByteString> = data
                .iter()
                .filter(|(k, v)| current.get(*k) != Some(*v))
                .map(|(k, v)| (k, k8s_openapi::ByteString(v.clone())))
                .collect();
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": existing.metadata.resource_version},
                "data": missing,
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| {
                    write_error(&format!("the missing keys of Secret {name}"), source)
                })?
        }
        Some(existing) => existing,
    };
    apply_metadata(api, field_manager, meta, &stored).await?;
    Ok(Keys::from_data(&data)?)
}

/// The data PVC: created once and never replaced or resized by a spec change; afterwards only
/// its labels and owner are applied.
async fn ensure_claim(
    api: &Api<PersistentVolumeClaim>,
    desired: PersistentVolumeClaim,
    field_manager: &str,
) -> Result<(), Error> {
    let name = desired.metadata.name.clone().unwrap_or_default();
    let existing = api
        .get_opt(&name)
        .await
        .map_err(|source| read_error("the data PVC", source))?;
    let stored = match existing {
        Some(existing) => existing,
        None => {
            let mut new = desired.clone();
            new.metadata = without_owner(&desired.metadata);
            api.create(&PostParams::default(), &new)
                .await
                .map_err(|source| write_error(&format!("PersistentVolumeClaim {name}"), source))?
        }
    };
    apply_metadata(api, field_manager, desired.metadata, &stored).await
}

/// `meta` without owner references: objects are created without them, so that the owner is
/// only ever set by [`apply_metadata`], whose field manager can later take it away again.
fn without_owner(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        owner_references: None,
        ..meta.clone()
    }
}

/// Applies only `meta`'s labels and owner references to an existing object, when they differ.
async fn apply_metadata<K>(
    api: &Api<K>,
    field_manager: &str,
    meta: ObjectMeta,
    existing: &K,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()>
        + serde::Serialize
        + serde::de::DeserializeOwned
        + Clone
        + std::fmt::Debug
        + Default,
{
    let mut desired = K::default();
    *desired.meta_mut() = ObjectMeta {
        name: meta.name,
        namespace: meta.namespace,
        labels: meta.labels,
        owner_references: meta.owner_references,
        ..ObjectMeta::default()
    };
    if metadata_applied(desired.meta(), existing.meta()) {
        return Ok(());
    }
    apply(api, field_manager, &desired).await?;
    Ok(())
}

/// Whether `existing` has every label of `desired` and exactly its owner references (none is
/// the same as an empty list).
fn metadata_applied(desired: &ObjectMeta, existing: &ObjectMeta) -> bool {
    let owners = |m: &ObjectMeta| m.owner_references.clone().unwrap_or_default();
    let labels = existing.labels.clone().unwrap_or_default();
    owners(existing) == owners(desired)
        && desired
            .labels
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v))
}

/// On deletion: withdraws the announcement from the Synapse the spec names and from the one the
/// registration was last announced to, then lets the bridge go. A missing Synapse blocks
/// nothing. Owned objects go with the bridge; the keys Secret and the PVC stay unless the
/// deletion policy is Delete.
async fn withdraw(
    bridge: &MautrixSignal,
    namespace: &str,
    announcement: &Announcement,
    registration_secret: Option<&Secret>,
    ctx: &Context,
) -> Result<(), Error> {
    if !has_finalizer(bridge) {
        return Ok(());
    }
    let synapses = Api::<Synapse>::namespaced(ctx.client.clone(), namespace);
    let mut targets: Vec<String> = synapse_name(namespace, &bridge.spec.synapse)
        .ok()
        .map(str::to_owned)
        .into_iter()
        .collect();
    if let Some(previous) = registration_secret.and_then(|s| s.labels().get(LABEL_REGISTERED_WITH))
        && !targets.contains(previous)
    {
        targets.push(previous.clone());
    }
    for target in &targets {
        if announcement.withdraw(&synapses, target).await? {
            tracing::info!(
                namespace,
                name = bridge.name_any(),
                synapse = target,
                "withdrew the app-service registration"
            );
        }
    }
    let bridges = Api::<MautrixSignal>::namespaced(ctx.client.clone(), namespace);
    remove_finalizer(&bridges, bridge, ctx.field_manager).await?;
    Ok(())
}

fn read_error(what: &str, source: kube::Error) -> Error {
    Error::Read {
        what: what.to_owned(),
        source,
    }
}

fn write_error(what: &str, source: kube::Error) -> Error {
    Error::Write {
        what: what.to_owned(),
        source,
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    #[test]
    fn metadata_is_applied_when_labels_are_there_and_owners_match() {
        let label = |k: &str| BTreeMap::from([(k.to_owned(), "v".to_owned())]);
        let owner = OwnerReference {
            name: "sig".into(),
            uid: "u".into(),
            ..OwnerReference::default()
        };
        let meta =
            |labels: BTreeMap<String, String>, owners: Option<Vec<OwnerReference>>| ObjectMeta {
                labels: Some(labels),
                owner_references: owners,
                ..ObjectMeta::default()
            };
        let mut stored = label("a");
        stored.insert("extra".into(), "x".into());
        // A retained object: no owner desired, none stored (absent, not an empty list).
        assert!(metadata_applied(
            &meta(label("a"), Some(vec![])),
            &meta(stored.clone(), None)
        ));
        assert!(!metadata_applied(
            &meta(label("b"), Some(vec![])),
            &meta(stored.clone(), None)
        ));
        // The deletion policy changed: the owner must be added or taken away.
        assert!(!metadata_applied(
            &meta(label("a"), Some(vec![owner.clone()])),
            &meta(stored.clone(), None)
        ));
        assert!(!metadata_applied(
            &meta(label("a"), Some(vec![])),
            &meta(stored.clone(), Some(vec![owner.clone()]))
        ));
        assert!(metadata_applied(
            &meta(label("a"), Some(vec![owner.clone()])),
            &meta(stored, Some(vec![owner]))
        ));
    }

    #[test]
    fn files_hash_changes_with_any_file_and_is_stable() {
        let h = files_hash(&[b"config", b"registration"]);
        assert_eq!(h, files_hash(&[b"config", b"registration"]));
        assert_ne!(h, files_hash(&[b"config2", b"registration"]));
        // Lengths are hashed too: moving bytes between files changes the hash.
        assert_ne!(h, files_hash(&[b"configr", b"egistration"]));
        assert_eq!(h.len(), 64);
    }
}
