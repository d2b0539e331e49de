//! The build step: the bridge's Deployment and Service as pure builders.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, KeyToPath, ResourceRequirements, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::workload::{
    empty_dir_volume, http_probe, mount, named_container_port, named_port_service,
    restricted_container_security_context, secret_volume, single_replica_deployment,
};
use synapse_types::contract::REGISTRATION_SECRET_KEY;

/// Image used when `spec.image` is not set: the Heisenbridge release the tests run.
pub const DEFAULT_IMAGE: &str = "hif1/heisenbridge:1.15.4";
/// The port Heisenbridge listens on for Synapse's transactions.
pub const PORT: u16 = 9898;
const PORT_NAME: &str = "http";
/// A fixed non-root identity: Heisenbridge keeps no files, so any UID works.
pub const BRIDGE_UID: i64 = 1000;
/// Where the registration Secret is mounted.
pub const REGISTRATION_DIR: &str = "/registration";
/// Pod-template annotation with the registration's content hash: a new registration rolls the
/// bridge, which reads its file only at start.
pub const REGISTRATION_HASH_ANNOTATION: &str = "synapse.opdev.io/registration-hash";
/// Heisenbridge's liveness endpoint. Its `/_matrix/mau/ready` always answers 500.
const LIVE_PATH: &str = "/_matrix/mau/live";

/// Everything the Deployment depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct BridgeWorkload {
    pub image: String,
    /// Synapse's client URL, from `Synapse.status.clientUrl`.
    pub homeserver_url: String,
    pub owner: Option<String>,
    /// 0 to 3: how many `-v` Heisenbridge gets.
    pub verbose_level: i32,
    pub registration_secret: String,
    /// Content hash of the registration file: a change rolls the pod.
    pub registration_hash: String,
}

/// The container's command: `python -m heisenbridge` with the mounted registration, listening
/// on every address at [`PORT`], one `-v` per verbosity level, the owner if any, and the
/// homeserver URL.
pub fn command(workload: &BridgeWorkload) -> Vec<String> {
    let mut command: Vec<String> = [
        "python",
        "-m",
        "heisenbridge",
        "-c",
        &format!("{REGISTRATION_DIR}/{REGISTRATION_SECRET_KEY}"),
        "-l",
        "0.0.0.0",
        "-p",
        &PORT.to_string(),
    ]
    .map(String::from)
    .to_vec();
    let verbosity = usize::try_from(workload.verbose_level.clamp(0, 3)).unwrap_or_default();
    command.extend(std::iter::repeat_n("-v".to_owned(), verbosity));
    if let Some(owner) = &workload.owner {
        command.extend(["-o".to_owned(), owner.clone()]);
    }
    command.push(workload.homeserver_url.clone());
    command
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".into())),
            ("memory".to_owned(), Quantity("128Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// One replica with the Recreate strategy: two bridges with the same tokens would both answer
/// Synapse and both connect to IRC.
pub fn heisenbridge_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    workload: &BridgeWorkload,
) -> Deployment {
    let probe = |period, failures| http_probe(LIVE_PATH, PORT_NAME, period, failures);
    let container = Container {
        name: "heisenbridge".into(),
        image: Some(workload.image.clone()),
        command: Some(command(workload)),
        ports: Some(vec![named_container_port(PORT_NAME, PORT)]),
        readiness_probe: Some(probe(10, 3)),
        liveness_probe: Some(probe(30, 3)),
        resources: Some(default_resources()),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount("registration", REGISTRATION_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        secret_volume(
            "registration",
            &workload.registration_secret,
            Some(vec![KeyToPath {
                key: REGISTRATION_SECRET_KEY.into(),
                path: REGISTRATION_SECRET_KEY.into(),
                mode: None,
            }]),
        ),
        // Python and aiohttp may want a scratch directory; the root filesystem is read-only.
        empty_dir_volume("tmp"),
    ];
    single_replica_deployment(
        meta,
        selector,
        (
            REGISTRATION_HASH_ANNOTATION,
            workload.registration_hash.clone(),
        ),
        BRIDGE_UID,
        container,
        volumes,
    )
}

/// The Service Synapse reaches the bridge through, at the registration's `url`.
pub fn heisenbridge_service(meta: ObjectMeta, selector: BTreeMap<String, String>) -> Service {
    named_port_service(meta, selector, &[(PORT_NAME, PORT)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names;

    fn workload() -> BridgeWorkload {
        BridgeWorkload {
            image: DEFAULT_IMAGE.into(),
            homeserver_url: "http://hs.matrix.svc:8008".into(),
            owner: Some("@alice:example.com".into()),
            verbose_level: 2,
            registration_secret: "irc-heisenbridge-registration".into(),
            registration_hash: "sha256:abc".into(),
        }
    }

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/instance".to_owned(), "irc".to_owned())])
    }

    #[test]
    fn names_and_url() {
        assert_eq!(names::workload("irc"), "irc-heisenbridge");
        assert_eq!(
            names::registration_secret("irc"),
            "irc-heisenbridge-registration"
        );
        assert_eq!(
            names::service_url("irc", "matrix"),
            "http://irc-heisenbridge.matrix.svc:9898"
        );
    }

    #[test]
    fn command_follows_heisenbridges_arguments() {
        assert_eq!(
            command(&workload()),
            [
                "python",
                "-m",
                "heisenbridge",
                "-c",
                "/registration/registration.yaml",
                "-l",
                "0.0.0.0",
                "-p",
                "9898",
                "-v",
                "-v",
                "-o",
                "@alice:example.com",
                "http://hs.matrix.svc:8008",
            ]
        );
        let quiet = BridgeWorkload {
            owner: None,
            verbose_level: 0,
            ..workload()
        };
        let c = command(&quiet);
        assert!(!c.iter().any(|a| a == "-v" || a == "-o"), "{c:?}");
        assert_eq!(c.last().unwrap(), "http://hs.matrix.svc:8008");
        let loud = BridgeWorkload {
            verbose_level: 3,
            ..workload()
        };
        assert_eq!(command(&loud).iter().filter(|a| *a == "-v").count(), 3);
    }

    #[test]
    fn deployment_runs_the_bridge_probed_and_rolled_by_the_registration() {
        let d = heisenbridge_deployment(ObjectMeta::default(), selector(), &workload());
        let template = d.spec.unwrap().template;
        assert_eq!(
            template.metadata.unwrap().annotations.unwrap()[REGISTRATION_HASH_ANNOTATION],
            "sha256:abc"
        );
        let pod = template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(
            (psc.run_as_user, psc.run_as_group),
            (Some(1000), Some(1000))
        );
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("hif1/heisenbridge:1.15.4"));
        assert!(c.security_context.is_some());
        for probe in [&c.readiness_probe, &c.liveness_probe] {
            let get = probe.clone().unwrap().http_get.unwrap();
            assert_eq!(get.path.as_deref(), Some("/_matrix/mau/live"));
        }
        assert!(c.resources.as_ref().unwrap().requests.is_some());
        let volumes = pod.volumes.unwrap();
        let secret = volumes[0].secret.clone().unwrap();
        assert_eq!(
            secret.secret_name.as_deref(),
            Some("irc-heisenbridge-registration")
        );
        assert_eq!(secret.items.unwrap()[0].key, "registration.yaml");
        let mounts = c.volume_mounts.clone().unwrap();
        assert_eq!(mounts[0].mount_path, "/registration");
        assert_eq!(mounts[0].read_only, Some(true));
    }

    #[test]
    fn service_exposes_the_bridge_port() {
        let s = heisenbridge_service(ObjectMeta::default(), selector());
        let port = &s.spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.port, 9898);
    }
}
