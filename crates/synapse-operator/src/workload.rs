//! The Synapse workload as pure builders: Deployment, Service and data PVC.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::render::paths;

/// UID and GID of the Synapse image's user.
pub const SYNAPSE_UID: i64 = 991;
const PORT_NAME: &str = "http";
/// Owner read, group read: the pod's fsGroup makes the group Synapse's.
const SECRET_FILE_MODE: i32 = 0o440;

/// An accepted app-service registration, mounted at `/appservices/<dir>/registration.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationMount {
    pub dir: String,
    pub secret_name: String,
    pub secret_key: String,
}

impl RegistrationMount {
    pub fn path(&self) -> String {
        format!("{}/{}/registration.yaml", paths::APPSERVICES_DIR, self.dir)
    }
}

/// Everything the Deployment depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct SynapseWorkload {
    pub image: String,
    pub client_port: u16,
    pub config_secret: String,
    pub homeserver_secret: String,
    pub data_claim: String,
    pub registrations: Vec<RegistrationMount>,
    /// Hash of every file the pod mounts: a change rolls the pod.
    pub config_hash: String,
    pub resources: ResourceRequirements,
}

pub const CONFIG_HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";

pub fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("250m".into())),
            ("memory".to_string(), Quantity("512Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_string(),
            Quantity("2Gi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// One replica with the Recreate strategy: the data volume is ReadWriteOnce and SQLite must
/// never be opened by two pods.
pub fn synapse_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    workload: &SynapseWorkload,
) -> Deployment {
    let secret_volume = |name: &str, secret: &str, items: Option<Vec<KeyToPath>>| Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            default_mode: Some(SECRET_FILE_MODE),
            items,
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        // The API server drops `readOnly: false`; setting it would make the stored Deployment
        // never match the desired one, and every reconcile would apply it again.
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    };
    let mut volumes = vec![
        secret_volume("config", &workload.config_secret, None),
        secret_volume("secrets", &workload.homeserver_secret, None),
        Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: workload.data_claim.clone(),
                read_only: None,
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    ];
    let mut mounts = vec![
        mount("config", paths::CONFIG_DIR, true),
        mount("secrets", paths::SECRETS_DIR, true),
        mount("data", paths::DATA_DIR, false),
        mount("tmp", "/tmp", false),
    ];
    for (index, registration) in workload.registrations.iter().enumerate() {
        let volume = format!("appservice-{index}");
        volumes.push(secret_volume(
            &volume,
            &registration.secret_name,
            Some(vec![KeyToPath {
                key: registration.secret_key.clone(),
                path: "registration.yaml".into(),
                mode: None,
            }]),
        ));
        mounts.push(mount(
            &volume,
            &format!("{}/{}", paths::APPSERVICES_DIR, registration.dir),
            true,
        ));
    }
    let probe = |period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/health".into()),
            port: IntOrString::String(PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Probe::default()
    };
    let container = Container {
        name: "synapse".into(),
        image: Some(workload.image.clone()),
        command: Some(
            [
                "python",
                "-m",
                "synapse.app.homeserver",
                "--config-path",
                &format!("{}/{}", paths::CONFIG_DIR, paths::BASE_FILE),
                "--config-path",
                &format!("{}/{}", paths::CONFIG_DIR, paths::OVERLAY_FILE),
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: i32::from(workload.client_port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        // First start runs database migrations: allow up to 10 minutes.
        startup_probe: Some(probe(5, 120)),
        readiness_probe: Some(probe(10, 3)),
        liveness_probe: Some(probe(30, 3)),
        resources: Some(workload.resources.clone()),
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
        volume_mounts: Some(mounts),
        ..Container::default()
    };
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
                        CONFIG_HASH_ANNOTATION.to_string(),
                        workload.config_hash.clone(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(SYNAPSE_UID),
                        run_as_group: Some(SYNAPSE_UID),
                        fs_group: Some(SYNAPSE_UID),
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

pub fn synapse_service(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    client_port: u16,
) -> Service {
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: i32::from(client_port),
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The data volume: SQLite database and media. Created once, never replaced.
pub fn data_claim(
    meta: ObjectMeta,
    size: &str,
    storage_class: Option<&str>,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: meta,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage_class.map(String::from),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(size.to_string()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> SynapseWorkload {
        SynapseWorkload {
            image: "matrixdotorg/synapse:v1.163.2".into(),
            client_port: 8008,
            config_secret: "hs-config".into(),
            homeserver_secret: "hs-secrets".into(),
            data_claim: "hs-data".into(),
            registrations: vec![RegistrationMount {
                dir: "heisenbridge-irc".into(),
                secret_name: "irc-registration".into(),
                secret_key: "registration.yaml".into(),
            }],
            config_hash: "abc".into(),
            resources: default_resources(),
        }
    }

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/instance".to_string(), "hs".to_string())])
    }

    #[test]
    fn deployment_is_restricted_and_recreated() {
        let d = synapse_deployment(ObjectMeta::default(), selector(), &workload());
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        let pod = spec.template.spec.unwrap();
        let psc = pod.security_context.unwrap();
        assert_eq!(psc.run_as_user, Some(991));
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = &pod.containers[0];
        let sc = c.security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
        assert_eq!(c.command.as_ref().unwrap()[4], "/config/homeserver.yaml");
        assert_eq!(
            c.command.as_ref().unwrap()[6],
            "/config/operator-overlay.yaml"
        );
        for probe in [&c.startup_probe, &c.readiness_probe, &c.liveness_probe] {
            let get = probe.clone().unwrap().http_get.unwrap();
            assert_eq!(get.path.as_deref(), Some("/health"));
        }
        assert_eq!(
            spec.template.metadata.unwrap().annotations.unwrap()[CONFIG_HASH_ANNOTATION],
            "abc"
        );
    }

    #[test]
    fn writable_mounts_leave_read_only_unset_as_the_api_server_stores_them() {
        let d = synapse_deployment(ObjectMeta::default(), selector(), &workload());
        let mounts = d.spec.unwrap().template.spec.unwrap().containers[0]
            .volume_mounts
            .clone()
            .unwrap();
        let read_only = |name: &str| mounts.iter().find(|m| m.name == name).unwrap().read_only;
        assert_eq!(read_only("data"), None);
        assert_eq!(read_only("tmp"), None);
        assert_eq!(read_only("config"), Some(true));
        assert!(mounts.iter().all(|m| m.read_only != Some(false)));
    }

    #[test]
    fn registrations_are_mounted_where_the_overlay_points() {
        let w = workload();
        let d = synapse_deployment(ObjectMeta::default(), selector(), &w);
        let pod = d.spec.unwrap().template.spec.unwrap();
        let mounts = pod.containers[0].volume_mounts.clone().unwrap();
        let m = mounts.iter().find(|m| m.name == "appservice-0").unwrap();
        assert_eq!(
            format!("{}/registration.yaml", m.mount_path),
            w.registrations[0].path()
        );
        let v = pod.volumes.unwrap();
        let secret = v.iter().find(|v| v.name == "appservice-0").unwrap();
        assert_eq!(
            secret.secret.as_ref().unwrap().secret_name.as_deref(),
            Some("irc-registration")
        );
    }

    #[test]
    fn service_follows_the_client_port() {
        let s = synapse_service(ObjectMeta::default(), selector(), 8080);
        let port = &s.spec.unwrap().ports.unwrap()[0];
        assert_eq!(port.port, 8080);
        assert_eq!(port.name.as_deref(), Some("http"));
    }
}
