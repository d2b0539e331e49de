//! The objects of a Synapse's workers: a Deployment (and, for the routed and replicated roles, a
//! Service) per worker, the router, the main process's own Service, the operator's Redis, and
//! the disruption budgets. Pure.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, KeyToPath, Probe, Secret, Service, TCPSocketAction,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use operator_common::subject::{Lifetime, Subject};
use operator_common::workload::{
    empty_dir_volume, http_probe, mount, named_container_port, named_port_service,
    restricted_container_security_context, secret_volume, single_replica_deployment,
};
use synapse_types::workers::Workers;

use super::router::{HEALTH_PATH, nginx_conf};
use super::topology::{Instance, MAIN_REPLICATION_PORT, ROUTER_PORT, Role};
use crate::workload::{
    METRICS_PORT_NAME, SynapseWorkload, WorkerFile, pre_stop_delay, synapse_deployment,
};

/// The router's image: nginx, which the e2e tests run as Debian's nginx of the same version.
pub const ROUTER_IMAGE: &str = "docker.io/library/nginx:1.22.1";
/// The operator's Redis, which the e2e tests run as Debian's redis-server of the same version.
pub const REDIS_IMAGE: &str = "docker.io/library/redis:7.0.15";
pub const REDIS_PORT: u16 = 6379;
/// The nginx image's user, and the Redis image's.
const NGINX_UID: i64 = 101;
const REDIS_UID: i64 = 999;
/// Labels of a worker's objects besides the standard ones: which worker it is.
pub const WORKER_LABEL: &str = "synapse.opdev.io/worker";
/// `app.kubernetes.io/component` of the router and of the operator's Redis.
pub const ROUTER: &str = "router";
pub const REDIS: &str = "redis";
/// The key of the router's configuration in the workers' Secret.
pub const ROUTER_CONFIG_KEY: &str = "nginx.conf";
/// Where the router and Redis find their files.
const ROUTER_DIR: &str = "/etc/router";
const REDIS_DIR: &str = "/etc/redis-operator";
/// The key of the Redis ACL file in the Redis Secret (beside `password`).
pub const REDIS_ACL_KEY: &str = "users.acl";

/// Names of a Synapse's worker objects.
pub fn workers_secret(synapse: &str) -> String {
    format!("{synapse}-workers")
}
pub fn router(synapse: &str) -> String {
    format!("{synapse}-router")
}
pub fn redis(synapse: &str) -> String {
    format!("{synapse}-redis")
}

/// The worker objects, beside the main process's.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerChildren {
    /// Each worker's file and the router's configuration.
    pub files: Secret,
    pub workers: Vec<(Instance, Deployment, Option<Service>)>,
    /// The main process, for the router and the workers' replication.
    pub main_service: Service,
    pub router: Deployment,
    /// The operator's Redis; `None` with an external one.
    pub redis: Option<(Deployment, Service)>,
    pub budgets: Vec<PodDisruptionBudget>,
}

/// What the worker objects are built from.
pub struct Inputs<'a> {
    pub subject: &'a Subject,
    pub spec: &'a Workers,
    pub instances: &'a [Instance],
    /// The main process's workload: the workers run the same image, files and secrets.
    pub main: &'a SynapseWorkload,
    /// Each worker's file, by key of the workers' Secret.
    pub files: BTreeMap<String, String>,
    /// The hash of what every process mounts alike; each worker's adds its own file.
    pub shared_hash: &'a str,
    /// The operator's Redis Secret (with its ACL file), or `None` with an external one.
    pub redis_secret: Option<(&'a str, &'a str)>,
    pub client_port: u16,
}

/// The key of `instance`'s file in the workers' Secret.
pub fn file_key(instance: &Instance) -> String {
    format!("{}.yaml", instance.worker_name())
}

fn sha256(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn with_worker_label(
    mut labels: BTreeMap<String, String>,
    instance: &Instance,
) -> BTreeMap<String, String> {
    labels.insert(WORKER_LABEL.into(), instance.worker_name());
    labels
}

pub fn build(inputs: &Inputs<'_>) -> WorkerChildren {
    let subject = inputs.subject;
    let name = subject.name.as_str();
    let secret_name = workers_secret(name);
    let nginx = nginx_conf(
        name,
        &format!(
            "{}:{}",
            super::config::main_service(name),
            inputs.client_port
        ),
        inputs.instances,
    );
    let mut files = inputs.files.clone();
    files.insert(ROUTER_CONFIG_KEY.into(), nginx.clone());

    let workers = inputs
        .instances
        .iter()
        .map(|instance| {
            let key = file_key(instance);
            let role_spec = instance.role.spec(inputs.spec);
            let workload = SynapseWorkload {
                client_port: instance.http_port(),
                metrics_port: inputs.main.metrics_port.map(|_| instance.metrics_port()),
                config_hash: sha256(&[
                    inputs.shared_hash,
                    files.get(&key).map_or("", String::as_str),
                ]),
                resources: role_spec
                    .and_then(|r| r.resources.clone())
                    .unwrap_or_else(default_worker_resources),
                worker: Some(WorkerFile {
                    secret: secret_name.clone(),
                    key,
                }),
                data: instance.role == Role::MediaRepository,
                ..inputs.main.clone()
            };
            let component = instance.role.slug();
            let mut meta = subject.meta(instance.object_name(name), component, Lifetime::Owned);
            meta.labels = meta.labels.map(|l| with_worker_label(l, instance));
            let selector = with_worker_label(subject.selector(component), instance);
            let deployment = synapse_deployment(meta.clone(), selector.clone(), &workload);
            let mut ports = vec![("http", instance.http_port())];
            if instance.role == Role::MediaRepository {
                ports.push(("replication", instance.replication_port()));
            }
            let routed = matches!(instance.role, Role::Generic | Role::MediaRepository);
            let service = routed.then(|| named_port_service(meta, selector, &ports));
            (*instance, deployment, service)
        })
        .collect();

    let main_meta = subject.meta(
        super::config::main_service(name),
        crate::build::HOMESERVER,
        Lifetime::Owned,
    );
    let mut main_ports = vec![
        ("http", inputs.client_port),
        ("replication", MAIN_REPLICATION_PORT),
    ];
    if let Some(port) = inputs.main.metrics_port {
        main_ports.push((METRICS_PORT_NAME, port));
    }
    let main_service = named_port_service(
        main_meta,
        subject.selector(crate::build::HOMESERVER),
        &main_ports,
    );

    let router_replicas = inputs.spec.router.as_ref().map_or(2, |r| r.replicas);
    let router_deployment = router_deployment(
        subject.meta(router(name), ROUTER, Lifetime::Owned),
        subject.selector(ROUTER),
        &secret_name,
        sha256(&[&nginx]),
        router_replicas,
    );
    let redis = inputs.redis_secret.map(|(secret, acl)| {
        let meta = subject.meta(redis(name), REDIS, Lifetime::Owned);
        let selector = subject.selector(REDIS);
        let service = named_port_service(meta.clone(), selector.clone(), &[("redis", REDIS_PORT)]);
        (
            redis_deployment(meta, selector, secret, sha256(&[acl])),
            service,
        )
    });

    let mut budgets = vec![budget(
        subject.meta(router(name), ROUTER, Lifetime::Owned),
        subject.selector(ROUTER),
    )];
    for role in Role::ALL {
        let replicas = role.spec(inputs.spec).map_or(0, |r| r.replicas);
        if replicas > 0 {
            let object = format!("{name}-{}", role.slug());
            budgets.push(budget(
                subject.meta(object, role.slug(), Lifetime::Owned),
                subject.selector(role.slug()),
            ));
        }
    }

    WorkerChildren {
        files: Secret {
            metadata: subject.meta(secret_name, "workers", Lifetime::Owned),
            data: Some(
                files
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            ..Secret::default()
        },
        workers,
        main_service,
        router: router_deployment,
        redis,
        budgets,
    }
}

/// Each worker's default resources: lighter than the main process's.
pub fn default_worker_resources() -> k8s_openapi::api::core::v1::ResourceRequirements {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    k8s_openapi::api::core::v1::ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".into())),
            ("memory".to_owned(), Quantity("256Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("1Gi".into()),
        )])),
        ..Default::default()
    }
}

/// At most one pod of the group down at a time by a voluntary disruption (a drain).
fn budget(meta: ObjectMeta, selector: BTreeMap<String, String>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

fn router_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    secret: &str,
    hash: String,
    replicas: i32,
) -> Deployment {
    let items = vec![KeyToPath {
        key: ROUTER_CONFIG_KEY.into(),
        path: ROUTER_CONFIG_KEY.into(),
        mode: None,
    }];
    let probe = |period, failures| http_probe(HEALTH_PATH, "http", period, failures);
    let container = Container {
        name: "router".into(),
        image: Some(ROUTER_IMAGE.into()),
        command: Some(
            [
                "nginx",
                "-c",
                &format!("{ROUTER_DIR}/{ROUTER_CONFIG_KEY}"),
                "-g",
                "daemon off;",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![named_container_port("http", ROUTER_PORT)]),
        readiness_probe: Some(probe(5, 3)),
        liveness_probe: Some(probe(30, 3)),
        lifecycle: Some(pre_stop_delay()),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount("config", ROUTER_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    };
    let mut deployment = single_replica_deployment(
        meta,
        selector,
        (crate::workload::CONFIG_HASH_ANNOTATION, hash),
        NGINX_UID,
        container,
        vec![
            secret_volume("config", secret, Some(items)),
            empty_dir_volume("tmp"),
        ],
    );
    if let Some(spec) = deployment.spec.as_mut() {
        // Stateless: replaced pod by pod.
        spec.replicas = Some(replicas);
        spec.strategy = Some(DeploymentStrategy::default());
    }
    deployment
}

fn redis_deployment(
    meta: ObjectMeta,
    selector: BTreeMap<String, String>,
    secret: &str,
    hash: String,
) -> Deployment {
    let items = vec![KeyToPath {
        key: REDIS_ACL_KEY.into(),
        path: REDIS_ACL_KEY.into(),
        mode: None,
    }];
    let port = REDIS_PORT.to_string();
    let acl = format!("{REDIS_DIR}/{REDIS_ACL_KEY}");
    // Replication only: nothing to persist, the processes resubscribe after a restart.
    let args = [
        "redis-server",
        "--port",
        &port,
        "--bind",
        "0.0.0.0",
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/tmp",
        "--aclfile",
        &acl,
    ];
    let probe = |period, failures| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("redis".into()),
            host: None,
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let container = Container {
        name: "redis".into(),
        image: Some(REDIS_IMAGE.into()),
        command: Some(args.map(String::from).to_vec()),
        ports: Some(vec![ContainerPort {
            name: Some("redis".into()),
            container_port: i32::from(REDIS_PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(probe(5, 3)),
        liveness_probe: Some(probe(30, 3)),
        security_context: Some(restricted_container_security_context()),
        volume_mounts: Some(vec![
            mount("acl", REDIS_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        ..Container::default()
    };
    single_replica_deployment(
        meta,
        selector,
        (crate::workload::CONFIG_HASH_ANNOTATION, hash),
        REDIS_UID,
        container,
        vec![
            secret_volume("acl", secret, Some(items)),
            empty_dir_volume("tmp"),
        ],
    )
}
