//! The Heisenbridge controller: fetch the inputs, make the registration, store it and announce
//! it to the Synapse, build the workload, apply what differs, publish the status. On deletion,
//! withdraw the announcement before the finalizer lets the bridge go.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt as _};
use operator_common::apply::{ApplyError, apply_if_changed, apply_status};
use operator_common::bridge::{
    Announcement, BridgeError, add_finalizer, bridges_of_config_map, bridges_of_synapse,
    has_finalizer, registration_state, remove_finalizer, rollout, synapse_name,
};
use operator_common::controller::{ReconcileError, run_controller};
use operator_common::events::Events;
use operator_common::labels::AppLabels;
use operator_common::random::{RandomError, random_alphanumeric};
use operator_common::runtime::Runtime;
use synapse_types::contract::{
    AnnotationKeyError, AppServiceSource, BridgeKind, LABEL_REGISTERED_WITH,
    REGISTRATION_SECRET_KEY, registration_content_hash,
};
use synapse_types::{Heisenbridge, Synapse};

use crate::registration::{
    CONFIG_MAP_KEY, TOKEN_LENGTH, Tokens, default_registration, tokens_of, user_registration,
};
use crate::status::{Outcome, Problem, SynapseSide, next_status, notices};
use crate::workload::{
    BridgeWorkload, DEFAULT_IMAGE, heisenbridge_deployment, heisenbridge_service, names,
    registration_secret,
};

const APP_NAME: &str = "heisenbridge";

/// A reconciliation that failed and is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Heisenbridge has no namespace")]
    NoNamespace,
    #[error("the Heisenbridge has no uid")]
    NoUid,
    #[error(transparent)]
    Name(#[from] AnnotationKeyError),
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
    Bridge(#[from] BridgeError),
}

impl ReconcileError for Error {
    fn metric_label(&self) -> &'static str {
        match self {
            Error::NoNamespace | Error::NoUid | Error::Name(_) => "incomplete-object",
            Error::Read { .. } => "read",
            Error::Create { .. } => "create",
            Error::Apply(_) => "apply",
            Error::Random(_) => "random",
            Error::Bridge(_) => "handshake",
        }
    }
}

struct Context {
    client: Client,
    field_manager: &'static str,
    events: Events,
}

/// Runs the Heisenbridge controller until the runtime asks it to stop.
pub async fn run(runtime: Runtime) {
    let context = Arc::new(Context {
        client: runtime.client.clone(),
        field_manager: runtime.field_manager,
        events: Events::new(runtime.client.clone(), runtime.field_manager),
    });
    let managed = runtime.managed_objects();
    let (deployments, services, secrets) = (
        runtime.api::<Deployment>(),
        runtime.api::<Service>(),
        runtime.api::<Secret>(),
    );
    let (synapses, config_maps) = (runtime.api::<Synapse>(), runtime.api::<ConfigMap>());
    run_controller(
        &runtime,
        move |controller: Controller<Heisenbridge>| {
            let bridges = controller.store();
            let bridges_too = bridges.clone();
            controller
                .owns(deployments, managed.clone())
                .owns(services, managed.clone())
                .owns(secrets, managed)
                // A Synapse appearing, changing status or going away concerns its bridges.
                .watches(synapses, watcher::Config::default(), move |synapse| {
                    bridges_of_synapse(&bridges, &synapse)
                })
                .watches(config_maps, watcher::Config::default(), move |cm| {
                    bridges_of_config_map(&bridges_too, &cm)
                })
        },
        reconcile,
        context,
    )
    .await;
}

async fn reconcile(bridge: Arc<Heisenbridge>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = bridge.namespace().ok_or(Error::NoNamespace)?;
    let name = bridge.name_any();
    tracing::info!(
        namespace,
        name,
        generation = bridge.metadata.generation,
        "observed Heisenbridge"
    );
    let announcement = Announcement::new(
        ctx.field_manager,
        BridgeKind::Heisenbridge,
        &name,
        &names::registration_secret(&name),
    )?;
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let existing_secret = secrets
        .get_opt(&names::registration_secret(&name))
        .await
        .map_err(|source| read_error("the registration Secret", source))?;

    if bridge.metadata.deletion_timestamp.is_some() {
        withdraw(
            &bridge,
            &namespace,
            &announcement,
            existing_secret.as_ref(),
            &ctx,
        )
        .await?;
        return Ok(Action::await_change());
    }

    let outcome = match registration(&bridge, &namespace, existing_secret.as_ref(), &ctx).await? {
        Err(problem) => Outcome::Problem(problem),
        Ok((synapse, file)) => {
            deploy(
                &bridge,
                &namespace,
                &announcement,
                &synapse,
                &file,
                existing_secret.as_ref(),
                &ctx,
            )
            .await?
        }
    };

    let next = next_status(
        bridge.status.as_ref(),
        bridge.metadata.generation,
        &outcome,
        now(),
    );
    if bridge.status.as_ref() != Some(&next) {
        ctx.events
            .publish(bridge.as_ref(), notices(bridge.status.as_ref(), &next))
            .await;
        let api = Api::<Heisenbridge>::namespaced(ctx.client.clone(), &namespace);
        apply_status(&api, ctx.field_manager, &name, &next).await?;
    }
    Ok(Action::await_change())
}

/// The Synapse's name and the registration file, or why the input cannot be used. Tokens of a
/// generated registration are the stored ones; new ones only for a new bridge.
async fn registration(
    bridge: &Heisenbridge,
    namespace: &str,
    existing_secret: Option<&Secret>,
    ctx: &Context,
) -> Result<Result<(String, String), Problem>, Error> {
    let synapse = match synapse_name(namespace, &bridge.spec.synapse) {
        Ok(name) => name.to_owned(),
        Err(problem) => return Ok(Err(problem.into())),
    };
    let url = names::service_url(&bridge.name_any(), namespace);
    let Some(reference) = &bridge.spec.config_map else {
        let stored = existing_secret
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get(REGISTRATION_SECRET_KEY))
            .and_then(|file| tokens_of(&file.0));
        let tokens = match stored {
            Some(tokens) => tokens,
            None => Tokens {
                as_token: random_alphanumeric(TOKEN_LENGTH)?,
                hs_token: random_alphanumeric(TOKEN_LENGTH)?,
            },
        };
        return Ok(Ok((synapse, default_registration(&url, &tokens))));
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
    Ok(match user_registration(file, &url) {
        Ok(file) => Ok((synapse, file)),
        Err(error) => Err(Problem::InvalidRegistration {
            namespace,
            name,
            error,
        }),
    })
}

/// Stores the registration, announces it to the Synapse if that exists, and applies the
/// Service and, once the Synapse publishes its client URL, the Deployment.
async fn deploy(
    bridge: &Heisenbridge,
    namespace: &str,
    announcement: &Announcement,
    synapse_name: &str,
    registration: &str,
    existing_secret: Option<&Secret>,
    ctx: &Context,
) -> Result<Outcome, Error> {
    let client = &ctx.client;
    let name = bridge.name_any();
    let owner = bridge.controller_owner_ref(&()).ok_or(Error::NoUid)?;
    let app_labels = |component| AppLabels {
        name: APP_NAME,
        instance: &name,
        component,
        managed_by: ctx.field_manager,
    };
    let meta = |object_name: String, component| ObjectMeta {
        name: Some(object_name),
        namespace: Some(namespace.to_owned()),
        labels: Some(app_labels(component).all()),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let synapses = Api::<Synapse>::namespaced(client.clone(), namespace);

    // A bridge moved to another Synapse leaves the one it was announced to.
    let previous = existing_secret
        .and_then(|s| s.labels().get(LABEL_REGISTERED_WITH))
        .filter(|previous| previous.as_str() != synapse_name);
    if let Some(previous) = previous {
        announcement.withdraw(&synapses, previous).await?;
    }

    let mut secret_meta = meta(names::registration_secret(&name), "registration");
    secret_meta
        .labels
        .get_or_insert_default()
        .insert(LABEL_REGISTERED_WITH.to_owned(), synapse_name.to_owned());
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    store_registration(
        &secrets,
        registration_secret(secret_meta, registration),
        existing_secret,
        ctx.field_manager,
    )
    .await?;

    let synapse = synapses
        .get_opt(synapse_name)
        .await
        .map_err(|source| read_error(&format!("Synapse {namespace}/{synapse_name}"), source))?;
    let Some(synapse) = synapse else {
        return Ok(Outcome::Applied {
            synapse: SynapseSide::NotFound {
                name: synapse_name.to_owned(),
            },
            rollout: None,
        });
    };
    // The finalizer first: once announced, the bridge must not go without withdrawing.
    let bridges = Api::<Heisenbridge>::namespaced(client.clone(), namespace);
    add_finalizer(&bridges, bridge, ctx.field_manager).await?;
    announcement.announce(&synapses, &synapse).await?;

    let selector = app_labels("bridge").selector();
    let services = Api::<Service>::namespaced(client.clone(), namespace);
    let existing = services
        .get_opt(&names::workload(&name))
        .await
        .map_err(|source| read_error("the Service", source))?;
    let desired = heisenbridge_service(meta(names::workload(&name), "bridge"), selector.clone());
    apply_if_changed(&services, ctx.field_manager, &desired, existing.as_ref()).await?;

    let content_hash = registration_content_hash(registration.as_bytes());
    let client_url = synapse.status.as_ref().and_then(|s| s.client_url.clone());
    let rollout_state = match &client_url {
        None => None,
        Some(homeserver_url) => {
            let workload = BridgeWorkload {
                image: bridge
                    .spec
                    .image
                    .clone()
                    .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
                homeserver_url: homeserver_url.clone(),
                owner: bridge.spec.owner.clone(),
                verbose_level: bridge.spec.verbose_level,
                registration_secret: names::registration_secret(&name),
                registration_hash: content_hash.clone(),
            };
            let deployments = Api::<Deployment>::namespaced(client.clone(), namespace);
            let existing = deployments
                .get_opt(&names::workload(&name))
                .await
                .map_err(|source| read_error("the Deployment", source))?;
            let desired = heisenbridge_deployment(
                meta(names::workload(&name), "bridge"),
                selector,
                &workload,
            );
            let deployment =
                apply_if_changed(&deployments, ctx.field_manager, &desired, existing.as_ref())
                    .await?;
            Some(rollout(&deployment))
        }
    };

    let source = AppServiceSource {
        kind: BridgeKind::Heisenbridge.kind().to_owned(),
        namespace: namespace.to_owned(),
        name: name.clone(),
    };
    Ok(Outcome::Applied {
        synapse: SynapseSide::Found {
            name: synapse_name.to_owned(),
            client_url: client_url.is_some(),
            registration: registration_state(&synapse, &source, &content_hash),
        },
        rollout: rollout_state,
    })
}

/// Writes the registration Secret. A new one is created with a plain create, so a
/// reconciliation that raced another can never replace generated tokens: the loser's create
/// fails and its retry reads the Secret. An existing one is applied only when its content
/// differs, conditional on the version that was read.
async fn store_registration(
    api: &Api<Secret>,
    mut desired: Secret,
    existing: Option<&Secret>,
    field_manager: &str,
) -> Result<Secret, Error> {
    let Some(existing) = existing else {
        let name = desired.metadata.name.clone().unwrap_or_default();
        return api
            .create(&PostParams::default(), &desired)
            .await
            .map_err(|source| Error::Create {
                what: format!("Secret {name}"),
                source,
            });
    };
    desired.metadata.resource_version = existing.metadata.resource_version.clone();
    Ok(apply_if_changed(api, field_manager, &desired, Some(existing)).await?)
}

/// On deletion: withdraws the announcement from the Synapse the spec names and from the one the
/// registration was last announced to, then lets the bridge go. A missing Synapse blocks
/// nothing.
async fn withdraw(
    bridge: &Heisenbridge,
    namespace: &str,
    announcement: &Announcement,
    existing_secret: Option<&Secret>,
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
    if let Some(previous) = existing_secret.and_then(|s| s.labels().get(LABEL_REGISTERED_WITH)) {
        targets.push(previous.clone());
    }
    targets.dedup();
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
    let bridges = Api::<Heisenbridge>::namespaced(ctx.client.clone(), namespace);
    remove_finalizer(&bridges, bridge, ctx.field_manager).await?;
    Ok(())
}

fn read_error(what: &str, source: kube::Error) -> Error {
    Error::Read {
        what: what.to_owned(),
        source,
    }
}

fn now() -> Time {
    Time(Timestamp::now())
}
