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
use crate::names;
use crate::public::Public;
use crate::render::{OverlayDatabase, OverlayInput, paths, render_log_config, render_overlay};
use crate::resolve::ResolvedConfig;
use crate::workload::{
    RegistrationMount, SynapseWorkload, default_resources, synapse_deployment, synapse_service,
};

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
    pub service: Service,
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
) -> Children {
    let name = subject.name.as_str();
    let registrations: Vec<RegistrationMount> = app_services
        .accepted
        .iter()
        .map(|a| a.mount.clone())
        .collect();
    let config_secret = Secret {
        metadata: subject.meta(names::config_secret(name), "config", Lifetime::Owned),
        data: Some(config_files(config, database, &registrations)),
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
        image: synapse
            .spec
            .image
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
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
    Children {
        deployment: synapse_deployment(workload_meta(), selector.clone(), &workload),
        service: synapse_service(
            workload_meta(),
            selector,
            config.facts.client_port,
            config.metrics.as_ref().map(|m| m.port),
        ),
        config_secret,
        claim,
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
        public_baseurl: config.public.as_ref().map(Public::base_url),
        serve_server_wellknown: config
            .public
            .as_ref()
            .is_some_and(Public::serves_server_well_known),
        listeners: config.metrics.as_ref().and_then(|m| m.listeners.clone()),
        enable_metrics: config.metrics.as_ref().is_some_and(|m| m.enable),
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

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
