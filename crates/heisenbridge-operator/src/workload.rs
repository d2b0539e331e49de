//! The bridge's objects as pure builders: registration Secret, Deployment and Service.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, KeyToPath,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    Secret, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
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

/// Names of the objects a Heisenbridge owns.
pub mod names {
    use super::PORT;

    /// The Deployment and the Service.
    pub fn workload(bridge: &str) -> String {
        format!("{bridge}-heisenbridge")
    }

    /// The registration Secret.
    pub fn registration_secret(bridge: &str) -> String {
        format!("{bridge}-heisenbridge-registration")
    }

    /// The URL Synapse sends the bridge's transactions to: its Service.
    pub fn service_url(bridge: &str, namespace: &str) -> String {
        format!("http://{}.{namespace}.svc:{PORT}", workload(bridge))
    }
}

/// The registration Secret: the registration file under [`REGISTRATION_SECRET_KEY`].
pub fn registration_secret(meta: ObjectMeta, registration: &str) -> Secret {
    Secret {
        metadata: meta,
        data: Some(BTreeMap::from([(
            REGISTRATION_SECRET_KEY.to_owned(),
            ByteString(registration.as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Secret::default()
    }
}

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
    let probe = |period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(LIVE_PATH.into()),
            port: IntOrString::String(PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Probe::default()
    };
    let container = Container {
        name: "heisenbridge".into(),
        image: Some(workload.image.clone()),
        command: Some(command(workload)),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: i32::from(PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe(10, 3)),
        liveness_probe: Some(probe(30, 3)),
        resources: Some(default_resources()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "registration".into(),
                mount_path: REGISTRATION_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "tmp".into(),
                mount_path: "/tmp".into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let volumes = vec![
        Volume {
            name: "registration".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(workload.registration_secret.clone()),
                // Owner and group read: the pod's fsGroup makes the group the bridge's.
                default_mode: Some(0o440),
                items: Some(vec![KeyToPath {
                    key: REGISTRATION_SECRET_KEY.into(),
                    path: REGISTRATION_SECRET_KEY.into(),
                    mode: None,
                }]),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        // Python and aiohttp may want a scratch directory; the root filesystem is read-only.
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    Deployment {
        metadata: meta,
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                match_expressions: None,
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    annotations: Some(BTreeMap::from([(
                        REGISTRATION_HASH_ANNOTATION.to_owned(),
                        workload.registration_hash.clone(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(BRIDGE_UID),
                        run_as_group: Some(BRIDGE_UID),
                        fs_group: Some(BRIDGE_UID),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..PodSecurityContext::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The Service Synapse reaches the bridge through, at the registration's `url`.
pub fn heisenbridge_service(meta: ObjectMeta, selector: BTreeMap<String, String>) -> Service {
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: i32::from(PORT),
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn deployment_is_restricted_probed_and_rolled_by_the_registration() {
        let d = heisenbridge_deployment(ObjectMeta::default(), selector(), &workload());
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let template = spec.template;
        assert_eq!(
            template.metadata.unwrap().annotations.unwrap()[REGISTRATION_HASH_ANNOTATION],
            "sha256:abc"
        );
        let pod = template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            (psc.run_as_user, psc.run_as_group),
            (Some(1000), Some(1000))
        );
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("hif1/heisenbridge:1.15.4"));
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        for probe in [&c.readiness_probe, &c.liveness_probe] {
            let get = probe.clone().unwrap().http_get.unwrap();
            assert_eq!(get.path.as_deref(), Some("/_matrix/mau/live"));
            assert_eq!(get.port, IntOrString::String("http".into()));
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
        let spec = s.spec.unwrap();
        assert_eq!(spec.selector, Some(selector()));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, 9898);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
    }
}
