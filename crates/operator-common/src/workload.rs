//! Skeletons of the objects every operator's workload is made of: a single-replica restricted
//! Deployment, a one-port Service, volumes, probes and the data PVC. Pure builders, so that the
//! operators' own builders only add what is theirs (image, command, files, numbers).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use synapse_types::StorageSpec;

/// Mode of mounted Secret files: owner and group read, the pod's fsGroup making the group the
/// workload's own.
pub const SECRET_FILE_MODE: i32 = 0o440;

/// One replica with the Recreate strategy: every workload either keeps its data on a
/// ReadWriteOnce volume or must never run twice with the same tokens, so the old pod goes before
/// the new one starts. The pod template carries `labels` = `selector` and the one
/// `hash_annotation` whose change rolls the pod; the pod runs `container` as `uid` under the
/// restricted security context, without a service account token or service links.
pub fn single_replica_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    hash_annotation: (&str, String),
    uid: i64,
    container: Container,
    volumes: Vec<Volume>,
) -> Deployment {
    let (annotation, hash) = hash_annotation;
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
                    annotations: Some(BTreeMap::from([(annotation.to_owned(), hash)])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(restricted_pod_security_context(uid)),
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

/// The pod side of the `restricted` Pod Security Standard, with `uid` as user, group and
/// fsGroup so that mounted files are readable through the group.
pub fn restricted_pod_security_context(uid: i64) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        fs_group: Some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// The container side of the `restricted` Pod Security Standard, plus a read-only root
/// filesystem: whatever must be written goes to a volume.
pub fn restricted_container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

/// The container's one TCP port, named so that probes and the Service follow a port change.
pub fn named_container_port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

/// An HTTP GET of `path` on the named port, every `period` seconds, failing after `failures`
/// misses of 5 seconds each.
pub fn http_probe(path: &str, port_name: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port_name.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(5),
        ..Probe::default()
    }
}

/// A ClusterIP Service with one TCP `port`, targeting the container port of the same name.
pub fn named_port_service(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    ports: &[(&str, u16)],
) -> Service {
    Service {
        metadata: meta,
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(
                ports
                    .iter()
                    .map(|&(name, port)| ServicePort {
                        name: Some(name.into()),
                        port: i32::from(port),
                        target_port: Some(IntOrString::String(name.into())),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// A volume of the Secret `secret`, its files in [`SECRET_FILE_MODE`]; `items` picks keys, all
/// keys when `None`.
pub fn secret_volume(name: &str, secret: &str, items: Option<Vec<KeyToPath>>) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            default_mode: Some(SECRET_FILE_MODE),
            items,
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// A volume of the PVC `claim`.
pub fn claim_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_owned(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

/// A scratch emptyDir volume: the root filesystem is read-only.
pub fn empty_dir_volume(name: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

/// Mounts volume `name` at `path`. A writable mount leaves `readOnly` unset: the API server
/// drops `readOnly: false`, and a desired object that sets it would never match the stored one.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// A ReadWriteOnce data volume of `size`, in `storage_class` or the cluster's default.
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
                    "storage".to_owned(),
                    Quantity(size.to_owned()),
                )])),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// The data volume of a workload as its spec's `storage` asks: its size (`default_size` when
/// it names none) and StorageClass.
pub fn storage_claim(
    meta: ObjectMeta,
    storage: Option<&StorageSpec>,
    default_size: &str,
) -> PersistentVolumeClaim {
    let size = storage
        .and_then(|s| s.size.as_ref())
        .map_or(default_size, |q| q.0.as_str());
    let class = storage.and_then(|s| s.storage_class_name.as_deref());
    data_claim(meta, size, class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/instance".to_owned(), "x".to_owned())])
    }

    #[test]
    fn deployment_is_one_recreated_restricted_pod_rolled_by_its_hash() {
        let container = Container {
            name: "c".into(),
            security_context: Some(restricted_container_security_context()),
            ..Container::default()
        };
        let d = single_replica_deployment(
            ObjectMeta::default(),
            selector(),
            ("example.io/hash", "abc".into()),
            991,
            container,
            vec![empty_dir_volume("tmp")],
        );
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.strategy.unwrap().type_.as_deref(), Some("Recreate"));
        assert_eq!(spec.selector.match_labels, Some(selector()));
        let template_meta = spec.template.metadata.unwrap();
        assert_eq!(template_meta.labels, Some(selector()));
        assert_eq!(template_meta.annotations.unwrap()["example.io/hash"], "abc");
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.enable_service_links, Some(false));
        let psc = pod.security_context.unwrap();
        assert_eq!(
            (psc.run_as_user, psc.run_as_group, psc.fs_group),
            (Some(991), Some(991), Some(991))
        );
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(psc.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let sc = pod.containers[0].security_context.clone().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert!(pod.volumes.unwrap()[0].empty_dir.is_some());
    }

    #[test]
    fn probe_gets_the_path_on_the_named_port() {
        let p = http_probe("/health", "http", 10, 3);
        let get = p.http_get.unwrap();
        assert_eq!(get.path.as_deref(), Some("/health"));
        assert_eq!(get.port, IntOrString::String("http".into()));
        assert_eq!(
            (p.period_seconds, p.failure_threshold, p.timeout_seconds),
            (Some(10), Some(3), Some(5))
        );
    }

    #[test]
    fn service_targets_the_named_port() {
        let s = named_port_service(ObjectMeta::default(), selector(), &[("http", 8080)]);
        let spec = s.spec.unwrap();
        assert_eq!(spec.selector, Some(selector()));
        let port = &spec.ports.unwrap()[0];
        assert_eq!(port.port, 8080);
        assert_eq!(port.name.as_deref(), Some("http"));
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        let c = named_container_port("http", 8080);
        assert_eq!((c.name.as_deref(), c.container_port), (Some("http"), 8080));
    }

    #[test]
    fn writable_mounts_leave_read_only_unset_as_the_api_server_stores_them() {
        assert_eq!(mount("data", "/data", false).read_only, None);
        assert_eq!(mount("config", "/config", true).read_only, Some(true));
    }

    #[test]
    fn secret_files_are_group_readable() {
        let v = secret_volume("config", "hs-config", None);
        let secret = v.secret.unwrap();
        assert_eq!(secret.secret_name.as_deref(), Some("hs-config"));
        assert_eq!(secret.default_mode, Some(0o440));
        let claim = claim_volume("data", "hs-data")
            .persistent_volume_claim
            .unwrap();
        assert_eq!(claim.claim_name, "hs-data");
    }

    #[test]
    fn claim_is_read_write_once_of_the_size_asked() {
        let c = data_claim(ObjectMeta::default(), "2Gi", Some("fast"));
        let spec = c.spec.unwrap();
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"],
            Quantity("2Gi".into())
        );
        let default = data_claim(ObjectMeta::default(), "1Gi", None);
        assert_eq!(default.spec.unwrap().storage_class_name, None);
    }
}
