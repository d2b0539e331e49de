//! The Synapse workload as pure builders: Deployment, Service and data PVC.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, KeyToPath, Lifecycle, LifecycleHandler, ResourceRequirements, Service,
    SleepAction,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use operator_common::workload::{
    claim_volume, empty_dir_volume, http_probe, mount, named_container_port, named_port_service,
    restricted_container_security_context, secret_volume, single_replica_deployment,
};

use crate::render::paths;

/// UID and GID of the Synapse image's user.
pub const SYNAPSE_UID: i64 = 991;
const PORT_NAME: &str = "http";
/// The name of the metrics listener's port, which ServiceMonitors and PodMonitors scrape.
pub const METRICS_PORT_NAME: &str = "metrics";

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
    /// Environment of the container: the database password (`PGPASSWORD`) when on PostgreSQL.
    pub env: Vec<EnvVar>,
    /// The port of Synapse's metrics listener, if it serves metrics.
    pub metrics_port: Option<u16>,
    /// `None` for the main process; for a worker, its file.
    pub worker: Option<WorkerFile>,
    /// Whether the process mounts the data volume (the main process and media repositories).
    pub data: bool,
    /// The Secret and key of Redis's password, mounted for the processes of a Synapse with
    /// workers.
    pub redis_password: Option<(String, String)>,
}

#[cfg(test)]
impl SynapseWorkload {
    /// The main process of the Synapse `hs`, with a bridge registration, for tests.
    pub fn sample() -> Self {
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
            env: Vec::new(),
            metrics_port: Some(9000),
            worker: None,
            data: true,
            redis_password: None,
        }
    }
}

/// A worker's own configuration file: the key `key` of the Secret `secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerFile {
    pub secret: String,
    pub key: String,
}

/// Where workers find their files and every process Redis's password.
pub const WORKERS_DIR: &str = "/workers";
pub const REDIS_DIR: &str = "/redis";

pub const CONFIG_HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";
/// The volume of the configuration Secret.
pub const CONFIG_VOLUME: &str = "config";
/// The module the main process runs.
pub const MAIN_MODULE: &str = "synapse.app.homeserver";

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
    let mut volumes = vec![
        secret_volume(CONFIG_VOLUME, &workload.config_secret, None),
        secret_volume("secrets", &workload.homeserver_secret, None),
        empty_dir_volume("tmp"),
    ];
    let mut mounts = vec![
        mount(CONFIG_VOLUME, paths::CONFIG_DIR, true),
        mount("secrets", paths::SECRETS_DIR, true),
        mount("tmp", "/tmp", false),
    ];
    if workload.data {
        volumes.push(claim_volume("data", &workload.data_claim));
        mounts.push(mount("data", paths::DATA_DIR, false));
    }
    if let Some(file) = &workload.worker {
        let items = vec![KeyToPath {
            key: file.key.clone(),
            path: file.key.clone(),
            mode: None,
        }];
        volumes.push(secret_volume("worker", &file.secret, Some(items)));
        mounts.push(mount("worker", WORKERS_DIR, true));
    }
    if let Some((secret, key)) = &workload.redis_password {
        let items = vec![KeyToPath {
            key: key.clone(),
            path: "password".into(),
            mode: None,
        }];
        volumes.push(secret_volume("redis", secret, Some(items)));
        mounts.push(mount("redis", REDIS_DIR, true));
    }
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
    let probe = |period, failures| http_probe("/health", PORT_NAME, period, failures);
    let container = Container {
        name: "synapse".into(),
        image: Some(workload.image.clone()),
        command: Some(command(workload.worker.as_ref())),
        // A worker leaves the router's rotation before it stops.
        lifecycle: workload.worker.as_ref().map(|_| pre_stop_delay()),
        ports: Some(
            ports(workload.client_port, workload.metrics_port)
                .into_iter()
                .map(|(name, port)| named_container_port(name, port))
                .collect(),
        ),
        env: (!workload.env.is_empty()).then(|| workload.env.clone()),
        // First start runs database migrations: allow up to 10 minutes.
        startup_probe: Some(probe(5, 120)),
        readiness_probe: Some(probe(10, 3)),
        liveness_probe: Some(probe(30, 3)),
        resources: Some(workload.resources.clone()),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    single_replica_deployment(
        meta,
        selector,
        (CONFIG_HASH_ANNOTATION, workload.config_hash.clone()),
        SYNAPSE_UID,
        container,
        volumes,
    )
}

/// The process's command: the main process, or a worker with its own file last.
fn command(worker: Option<&WorkerFile>) -> Vec<String> {
    let app = match worker {
        None => MAIN_MODULE,
        Some(_) => "synapse.app.generic_worker",
    };
    let mut command = vec!["python".to_owned(), "-m".to_owned(), app.to_owned()];
    let files =
        [paths::BASE_FILE, paths::OVERLAY_FILE].map(|f| format!("{}/{f}", paths::CONFIG_DIR));
    let own = worker.map(|w| format!("{WORKERS_DIR}/{}", w.key));
    for file in files.into_iter().chain(own) {
        command.extend(["--config-path".to_owned(), file]);
    }
    command
}

/// How long a stopping pod keeps serving, so that the router and Services stop sending it
/// requests first.
pub const PRE_STOP_SECONDS: i64 = 5;

pub fn pre_stop_delay() -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            sleep: Some(SleepAction {
                seconds: PRE_STOP_SECONDS,
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

pub fn synapse_service(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    client_port: u16,
    metrics_port: Option<u16>,
) -> Service {
    named_port_service(meta, selector, &ports(client_port, metrics_port))
}

/// The named ports of the pod and the Service: the client API's, and the metrics listener's.
fn ports(client_port: u16, metrics_port: Option<u16>) -> Vec<(&'static str, u16)> {
    let metrics = metrics_port.map(|port| (METRICS_PORT_NAME, port));
    std::iter::once((PORT_NAME, client_port))
        .chain(metrics)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> SynapseWorkload {
        SynapseWorkload::sample()
    }

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("app.kubernetes.io/instance".to_string(), "hs".to_string())])
    }

    #[test]
    fn the_database_password_comes_only_from_the_environment() {
        let pod = |env: Vec<EnvVar>| {
            let d = synapse_deployment(
                ObjectMeta::default(),
                selector(),
                &SynapseWorkload { env, ..workload() },
            );
            d.spec.unwrap().template.spec.unwrap().containers[0].clone()
        };
        assert_eq!(
            pod(Vec::new()).env,
            None,
            "no empty list to differ from the stored one"
        );
        let password = EnvVar {
            name: "PGPASSWORD".into(),
            value: None,
            value_from: None,
        };
        assert_eq!(pod(vec![password.clone()]).env, Some(vec![password]));
    }

    #[test]
    fn deployment_runs_synapse_with_both_configs_as_its_user() {
        let d = synapse_deployment(ObjectMeta::default(), selector(), &workload());
        let spec = d.spec.unwrap();
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(991));
        let c = &pod.containers[0];
        assert!(c.security_context.is_some());
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
    fn service_follows_the_client_and_metrics_ports() {
        let s = synapse_service(ObjectMeta::default(), selector(), 8080, None);
        let ports = s.spec.unwrap().ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 8080);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        let s = synapse_service(ObjectMeta::default(), selector(), 8080, Some(9102));
        let ports = s.spec.unwrap().ports.unwrap();
        assert_eq!(ports[1].port, 9102);
        assert_eq!(ports[1].name.as_deref(), Some("metrics"));
        let d = synapse_deployment(ObjectMeta::default(), selector(), &workload());
        let container = &d.spec.unwrap().template.spec.unwrap().containers[0];
        let names: Vec<_> = container
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.container_port))
            .collect();
        assert_eq!(
            names,
            [(Some("http".into()), 8008), (Some("metrics".into()), 9000)]
        );
    }
}
