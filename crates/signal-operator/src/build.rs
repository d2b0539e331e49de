//! The build step of a MautrixSignal: its config Secret, data PVC, Deployment and Service from
//! the finished config, its registration and its database. Pure; metadata from
//! [`Subject::meta`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::database::Readiness;
use operator_common::subject::{Lifetime, Subject};
use operator_common::workload::storage_claim;
use sha2::{Digest, Sha256};
use synapse_types::MautrixSignal;

use crate::config::BridgeConfig;
use crate::names::{self, CONFIG_MAP_KEY};
use crate::workload::{
    BridgeWorkload, DEFAULT_IMAGE, DEFAULT_STORAGE_SIZE, bridge_deployment, bridge_service, secret,
};

/// `app.kubernetes.io/component` of the bridge's pod, Deployment and Service.
const COMPONENT: &str = "bridge";

/// The objects applied for a MautrixSignal, besides its keys and registration Secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    pub config_secret: Secret,
    pub claim: PersistentVolumeClaim,
    pub deployment: Deployment,
    pub service: Service,
}

/// The metadata of the generated keys, which follow the deletion policy.
pub fn keys_meta(bridge: &MautrixSignal, subject: &Subject) -> ObjectMeta {
    subject.meta(
        names::keys_secret(&subject.name),
        "keys",
        Lifetime::of_data(bridge.spec.deletion_policy),
    )
}

/// Everything but the keys and the registration, whose file (`registration`) the pod's hash
/// covers with the config and the database password.
pub fn children(
    bridge: &MautrixSignal,
    subject: &Subject,
    config: &BridgeConfig,
    registration: &str,
    database: &Readiness,
) -> Children {
    let name = subject.name.as_str();
    let data = Lifetime::of_data(bridge.spec.deletion_policy);
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
        config_secret: names::config_secret(name),
        registration_secret: names::registration_secret(name),
        data_claim: names::data_claim(name),
        config_hash: files_hash(&hashed),
        env: database
            .connection()
            .map(|c| vec![c.password_env()])
            .unwrap_or_default(),
    };
    let meta = || subject.meta(names::workload(name), COMPONENT, Lifetime::Owned);
    let selector = subject.selector(COMPONENT);
    Children {
        config_secret: secret(
            subject.meta(names::config_secret(name), "config", Lifetime::Owned),
            BTreeMap::from([(CONFIG_MAP_KEY.to_owned(), config.file.clone().into_bytes())]),
        ),
        claim: storage_claim(
            subject.meta(names::data_claim(name), "data", data),
            bridge.spec.storage.as_ref(),
            DEFAULT_STORAGE_SIZE,
        ),
        deployment: bridge_deployment(meta(), selector.clone(), &workload),
        service: bridge_service(meta(), selector),
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

#[cfg(test)]
mod tests {
    use super::*;

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
