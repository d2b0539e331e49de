//! The build step: the objects a Synapse is made of, from its validated configuration, its
//! database and its accepted app services. Pure; every object's metadata comes from
//! [`Subject::meta`].

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::database::Readiness;
use operator_common::subject::{Lifetime, Subject};
use operator_common::workload::storage_claim;
use sha2::{Digest, Sha256};
use synapse_types::Synapse;

use crate::appservice::Decision;
use crate::homeserver_secret::OLD_SIGNING_KEYS;
use crate::names;
use crate::public::Public;
use crate::render::{
    OverlayDatabase, OverlayInput, paths, render_log_config, render_overlay, to_file,
};
use crate::resolve::ResolvedConfig;
use crate::workers::build::{REDIS_ACL_KEY, WorkerChildren};
use crate::workers::config::{RedisEndpoint, replication_listener, worker_file};
use crate::workers::{self, topology};
use crate::workload::REDIS_DIR;
use crate::workload::{
    RegistrationMount, SynapseWorkload, default_resources, synapse_deployment, synapse_service,
};
use operator_common::workload::named_port_service;

/// Image used when `spec.image` is not set: the Synapse release the tests run.
pub const DEFAULT_IMAGE: &str = "matrixdotorg/synapse:v1.163.2";
const DEFAULT_STORAGE_SIZE: &str = "10Gi";
/// `app.kubernetes.io/component` of the homeserver's pod, Deployment and Service.
pub const HOMESERVER: &str = "homeserver";

/// The objects applied for a Synapse, besides its generated secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub config_secret: Secret,
    pub claim: PersistentVolumeClaim,
    pub deployment: Deployment,
    /// The Service `NAME`: the main process's, or with workers the router's.
    pub service: Service,
    /// With `spec.workers`: the workers, the router, Redis and their budgets.
    pub workers: Option<WorkerChildren>,
}

/// The metadata of the generated secrets, which follow the deletion policy.
pub fn homeserver_secret_meta(synapse: &Synapse, subject: &Subject) -> ObjectMeta {
    subject.meta(
        names::homeserver_secret(&subject.name),
        "secrets",
        Lifetime::of_data(synapse.spec.deletion_policy),
    )
}

/// Everything but the generated secrets, whose data (`secrets`) the pod's hash covers.
pub fn children(
    synapse: &Synapse,
    subject: &Subject,
    config: &ResolvedConfig,
    database: &Readiness,
    app_services: &Decision,
    secrets: &BTreeMap<String, Vec<u8>>,
    redis: Option<&BTreeMap<String, Vec<u8>>>,
) -> Children {
    let name = subject.name.as_str();
    let instances = synapse
        .spec
        .workers
        .as_ref()
        .map(topology::instances)
        .unwrap_or_default();
    let external = (synapse.spec.workers.as_ref())
        .and_then(|w| w.redis.as_ref())
        .and_then(|r| r.external.as_ref());
    let password_path = || format!("{REDIS_DIR}/password");
    let (redis_endpoint, redis_password) = match external {
        Some(external) => (
            RedisEndpoint {
                host: external.host.clone(),
                port: external.port,
                password_path: external.password_secret.as_ref().map(|_| password_path()),
            },
            (external.password_secret.as_ref()).map(|s| (s.name.clone(), s.key.clone())),
        ),
        None => (
            RedisEndpoint {
                host: workers::build::redis(name),
                port: workers::build::REDIS_PORT,
                password_path: Some(password_path()),
            },
            Some((workers::build::redis(name), "password".to_owned())),
        ),
    };
    let shared =
        (!instances.is_empty()).then(|| workers::config::shared(name, &instances, &redis_endpoint));
    let registrations: Vec<RegistrationMount> = app_services
        .accepted
        .iter()
        .map(|a| a.mount.clone())
        .collect();
    let config_secret = Secret {
        metadata: subject.meta(names::config_secret(name), "config", Lifetime::Owned),
        data: Some(config_files(
            config,
            database,
            &registrations,
            shared,
            secrets,
        )),
        ..Secret::default()
    };
    let data = Lifetime::of_data(synapse.spec.deletion_policy);
    let claim = storage_claim(
        subject.meta(names::data_claim(name), "data", data),
        synapse.spec.storage.as_ref(),
        DEFAULT_STORAGE_SIZE,
    );
    let generated: BTreeMap<String, ByteString> = secrets
        .iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect();
    let workload = SynapseWorkload {
        image: crate::resolve::image(synapse),
        client_port: config.facts.client_port,
        config_secret: names::config_secret(name),
        homeserver_secret: names::homeserver_secret(name),
        data_claim: names::data_claim(name),
        // The password is not mounted but read from PGPASSWORD at start: its rotation must
        // roll the pod too.
        config_hash: config_hash(&[
            config_secret.data.as_ref(),
            Some(&generated),
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
        registrations,
        metrics_port: config.metrics.as_ref().map(|m| m.port),
        worker: None,
        data: true,
        redis_password: redis_password.filter(|_| !instances.is_empty()),
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
    let workload_meta = || subject.meta(names::workload(name), HOMESERVER, Lifetime::Owned);
    let selector = subject.selector(HOMESERVER);
    let mut deployment = synapse_deployment(workload_meta(), selector.clone(), &workload);
    let suspend = synapse.spec.suspend;
    suspended(&mut deployment, suspend);
    if instances.is_empty() {
        return Children {
            deployment,
            service: synapse_service(
                workload_meta(),
                selector,
                config.facts.client_port,
                config.metrics.as_ref().map(|m| m.port),
            ),
            config_secret,
            claim,
            workers: None,
        };
    }
    let spec = synapse.spec.workers.as_ref().expect("workers are declared");
    let log_config = format!("{}/{}", paths::CONFIG_DIR, paths::LOG_CONFIG_FILE);
    let files = instances
        .iter()
        .map(|instance| {
            let extra = instance
                .role
                .spec(spec)
                .map(|r| r.homeserver.clone())
                .unwrap_or_default();
            let file = worker_file(instance, &extra, config.metrics.is_some(), &log_config);
            (workers::build::file_key(instance), to_file(&file))
        })
        .collect();
    let redis_acl = (redis.filter(|_| external.is_none()))
        .and_then(|r| r.get(REDIS_ACL_KEY))
        .map(|acl| String::from_utf8_lossy(acl).into_owned());
    let redis_secret = workers::build::redis(name);
    let worker_children = workers::build::build(&workers::build::Inputs {
        subject,
        spec,
        instances: &instances,
        main: &workload,
        files,
        shared_hash: &workload.config_hash,
        redis_secret: redis_acl.as_deref().map(|acl| (redis_secret.as_str(), acl)),
        client_port: config.facts.client_port,
    });
    // The Service `NAME`, which bridges and routes use, goes to the router.
    let router_meta = subject.meta(
        names::workload(name),
        workers::build::ROUTER,
        Lifetime::Owned,
    );
    let service = named_port_service(
        router_meta,
        subject.selector(workers::build::ROUTER),
        &[("http", config.facts.client_port)],
    );
    let mut worker_children = worker_children;
    for (_, deployment, _) in &mut worker_children.workers {
        suspended(deployment, suspend);
    }
    suspended(&mut worker_children.router, suspend);
    if let Some((redis, _)) = &mut worker_children.redis {
        suspended(redis, suspend);
    }
    Children {
        deployment,
        service,
        config_secret,
        claim,
        workers: Some(worker_children),
    }
}

/// With `spec.suspend`, no pod: every other object stays as it is.
fn suspended(deployment: &mut Deployment, suspend: bool) {
    if let (true, Some(spec)) = (suspend, deployment.spec.as_mut()) {
        spec.replicas = Some(0);
    }
}

/// The files of the config Secret.
fn config_files(
    config: &ResolvedConfig,
    database: &Readiness,
    registrations: &[RegistrationMount],
    workers: Option<serde_json::Map<String, serde_json::Value>>,
    secrets: &BTreeMap<String, Vec<u8>>,
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
        public_baseurl: config.public.as_ref().map(Public::base_url),
        serve_server_wellknown: config
            .public
            .as_ref()
            .is_some_and(Public::serves_server_well_known),
        listeners: overlay_listeners(config, workers.is_some()),
        enable_metrics: config.metrics.as_ref().is_some_and(|m| m.enable),
        workers: workers.unwrap_or_default(),
        old_signing_keys: (secrets.get(OLD_SIGNING_KEYS))
            .and_then(|o| serde_json::from_slice(o).ok()),
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

/// The listeners the overlay replaces the base file's with, when it adds any: the file's, then
/// the metrics listener and, with workers, the main process's replication listener. Resolving
/// checked that the file's can be copied whenever one is added.
fn overlay_listeners(config: &ResolvedConfig, workers: bool) -> Option<Vec<serde_json::Value>> {
    let mut added: Vec<serde_json::Value> = config
        .metrics
        .as_ref()
        .and_then(|m| m.listener.clone())
        .into_iter()
        .collect();
    if workers {
        added.push(replication_listener());
    }
    if added.is_empty() {
        return None;
    }
    let mut listeners = config.facts.listeners.clone().unwrap_or_default();
    listeners.extend(added);
    Some(listeners)
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

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
