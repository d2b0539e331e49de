//! The bridge's objects as pure builders: the Secrets, the data PVC, the Deployment and the
//! Service.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, KeyToPath, ProjectedVolumeSource, ResourceRequirements, Secret,
    SecretProjection, Service, Volume, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::workload::{
    SECRET_FILE_MODE, claim_volume, empty_dir_volume, http_probe, mount, named_container_port,
    named_port_service, restricted_container_security_context, single_replica_deployment,
};
use synapse_types::contract::REGISTRATION_SECRET_KEY;

use crate::names::{CONFIG_MAP_KEY, PORT};

/// Image used when `spec.image` is not set: the mautrix-signal release whose mautrix-go version
/// the config checker of the tests is built with (hack/tools/mautrix-config-check).
pub const DEFAULT_IMAGE: &str = "dock.mau.dev/mautrix/signal:v0.2608.0";
/// The image's binary.
pub const BINARY: &str = "/usr/bin/mautrix-signal";
/// UID and GID of the image's user (its `UID`/`GID` environment, used by its start script).
pub const BRIDGE_UID: i64 = 1337;
/// Where the config and the registration are mounted, read-only.
pub const CONFIG_DIR: &str = "/config";
/// The data volume: the SQLite database; also the working directory, as in the image's own
/// start script, so relative paths in a user's config land on the volume.
pub const DATA_DIR: &str = "/data";
/// Default size of the data volume.
pub const DEFAULT_STORAGE_SIZE: &str = "1Gi";
/// Pod-template annotation with the hash of the mounted files: a change rolls the bridge,
/// which reads them only at start.
pub const CONFIG_HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";
const PORT_NAME: &str = "http";
/// Live as soon as the HTTP server runs.
const LIVE_PATH: &str = "/_matrix/mau/live";
/// Ready once the bridge has reached Synapse with its token and started.
const READY_PATH: &str = "/_matrix/mau/ready";

/// A Secret holding `files`.
pub fn secret(meta: ObjectMeta, files: BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: meta,
        data: Some(files.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

/// Everything the Deployment depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeWorkload {
    pub image: String,
    pub config_secret: String,
    pub registration_secret: String,
    pub data_claim: String,
    /// Hash of the mounted files and of the database password.
    pub config_hash: String,
    /// The container's environment: `PGPASSWORD` from the database Secret, with PostgreSQL.
    pub env: Vec<EnvVar>,
}

/// The container's command: the bridge with the mounted config and registration, and `-n` so
/// that it never tries to write its config back to the read-only mount.
pub fn command() -> Vec<String> {
    vec![
        BINARY.to_owned(),
        "-c".to_owned(),
        format!("{CONFIG_DIR}/{CONFIG_MAP_KEY}"),
        "-r".to_owned(),
        format!("{CONFIG_DIR}/{REGISTRATION_SECRET_KEY}"),
        "-n".to_owned(),
    ]
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".into())),
            ("memory".to_owned(), Quantity("128Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("1Gi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// One replica with the Recreate strategy: the data volume is ReadWriteOnce, SQLite must never
/// be opened by two pods, and two bridges with the same tokens would both answer Synapse.
pub fn bridge_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    workload: &BridgeWorkload,
) -> Deployment {
    let probe = |path, period, failures| http_probe(path, PORT_NAME, period, failures);
    let container = Container {
        name: "mautrix-signal".into(),
        image: Some(workload.image.clone()),
        command: Some(command()),
        working_dir: Some(DATA_DIR.into()),
        env: (!workload.env.is_empty()).then(|| workload.env.clone()),
        ports: Some(vec![named_container_port(PORT_NAME, PORT)]),
        // The first start migrates the database: give it up to five minutes.
        startup_probe: Some(probe(LIVE_PATH, 5, 60)),
        liveness_probe: Some(probe(LIVE_PATH, 30, 3)),
        readiness_probe: Some(probe(READY_PATH, 10, 3)),
        resources: Some(default_resources()),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR, true),
            mount("data", DATA_DIR, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    };
    let project = |secret: &str, key: &str| VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.to_owned(),
            items: Some(vec![KeyToPath {
                key: key.to_owned(),
                path: key.to_owned(),
                mode: None,
            }]),
            optional: Some(false),
        }),
        ..VolumeProjection::default()
    };
    let volumes = vec![
        // Config and registration side by side, from the two Secrets.
        Volume {
            name: "config".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(SECRET_FILE_MODE),
                sources: Some(vec![
                    project(&workload.config_secret, CONFIG_MAP_KEY),
                    project(&workload.registration_secret, REGISTRATION_SECRET_KEY),
                ]),
            }),
            ..Volume::default()
        },
        claim_volume("data", &workload.data_claim),
        // Attachments are converted through temporary files; the root filesystem is read-only.
        empty_dir_volume("tmp"),
    ];
    single_replica_deployment(
        meta,
        selector,
        (CONFIG_HASH_ANNOTATION, workload.config_hash.clone()),
        BRIDGE_UID,
        container,
        volumes,
    )
}

/// The Service Synapse reaches the bridge through, at the registration's `url`.
pub fn bridge_service(meta: ObjectMeta, selector: BTreeMap<String, String>) -> Service {
    named_port_service(meta, selector, &[(PORT_NAME, PORT)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names;

    fn workload() -> BridgeWorkload {
        BridgeWorkload {
            image: DEFAULT_IMAGE.into(),
            config_secret: names::config_secret("sig"),
            registration_secret: names::registration_secret("sig"),
            data_claim: names::data_claim("sig"),
            config_hash: "abc".into(),
            env: Vec::new(),
        }
    }

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/instance".to_owned(), "sig".to_owned())])
    }

    #[test]
    fn names_and_url() {
        assert_eq!(names::workload("sig"), "sig-mautrix-signal");
        assert_eq!(
            names::registration_secret("sig"),
            "sig-mautrix-signal-registration"
        );
        assert_eq!(names::config_secret("sig"), "sig-mautrix-signal-config");
        assert_eq!(names::keys_secret("sig"), "sig-mautrix-signal-keys");
        assert_eq!(names::data_claim("sig"), "sig-mautrix-signal-data");
        assert_eq!(names::database_cluster("sig"), "sig-mautrix-signal-pgsql");
        assert_eq!(
            names::service_url("sig", "ns"),
            "http://sig-mautrix-signal.ns.svc:29328"
        );
    }

    #[test]
    fn the_command_reads_the_mounted_files_and_never_writes_them() {
        assert_eq!(
            command(),
            [
                "/usr/bin/mautrix-signal",
                "-c",
                "/config/config.yaml",
                "-r",
                "/config/registration.yaml",
                "-n"
            ]
        );
    }

    #[test]
    fn deployment_runs_the_bridge_on_its_volumes_as_its_user() {
        let d = bridge_deployment(ObjectMeta::default(), selector(), &workload());
        let spec = d.spec.unwrap();
        assert_eq!(
            spec.template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION],
            "abc"
        );
        let pod = spec.template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(
            (psc.run_as_user, psc.run_as_group, psc.fs_group),
            (Some(1337), Some(1337), Some(1337))
        );
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some(DEFAULT_IMAGE));
        // No environment without PostgreSQL: left unset, as the API server stores it.
        assert_eq!(c.env, None);
        assert_eq!(c.working_dir.as_deref(), Some("/data"));
        assert!(c.security_context.is_some());
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 29328);
        let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.clone().unwrap().http_get.unwrap().path.unwrap()
        };
        assert_eq!(path(&c.liveness_probe), "/_matrix/mau/live");
        assert_eq!(path(&c.startup_probe), "/_matrix/mau/live");
        assert_eq!(path(&c.readiness_probe), "/_matrix/mau/ready");
        let mounts = c.volume_mounts.clone().unwrap();
        let config = mounts.iter().find(|m| m.name == "config").unwrap();
        assert_eq!(
            (config.mount_path.as_str(), config.read_only),
            ("/config", Some(true))
        );
        let data = mounts.iter().find(|m| m.name == "data").unwrap();
        // Writable: readOnly left unset, as the API server stores it.
        assert_eq!((data.mount_path.as_str(), data.read_only), ("/data", None));

        let volumes = pod.volumes.unwrap();
        let projected = volumes[0].projected.clone().unwrap();
        let sources: Vec<(String, String)> = projected
            .sources
            .unwrap()
            .into_iter()
            .map(|s| {
                let s = s.secret.unwrap();
                (s.name, s.items.unwrap()[0].path.clone())
            })
            .collect();
        assert_eq!(
            sources,
            [
                (
                    "sig-mautrix-signal-config".to_owned(),
                    "config.yaml".to_owned()
                ),
                (
                    "sig-mautrix-signal-registration".to_owned(),
                    "registration.yaml".to_owned()
                ),
            ]
        );
        let claim = volumes[1].persistent_volume_claim.clone().unwrap();
        assert_eq!(claim.claim_name, "sig-mautrix-signal-data");
    }

    #[test]
    fn service_exposes_the_bridge_port() {
        let s = bridge_service(ObjectMeta::default(), selector());
        let port = &s.spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.port, 29328);
    }

    #[test]
    fn the_database_password_reaches_the_container_only_from_its_secret() {
        let env = EnvVar {
            name: "PGPASSWORD".into(),
            value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                secret_key_ref: Some(k8s_openapi::api::core::v1::SecretKeySelector {
                    name: "db".into(),
                    key: "password".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }),
            value: None,
        };
        let with_database = BridgeWorkload {
            env: vec![env.clone()],
            ..workload()
        };
        let d = bridge_deployment(ObjectMeta::default(), selector(), &with_database);
        let pod = d.spec.unwrap().template.spec.unwrap();
        assert_eq!(pod.containers[0].env, Some(vec![env]));
    }
}
