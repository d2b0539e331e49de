//! Synapse's configuration for workers, checked against a real 1.163 deployment: the keys the
//! shared overlay adds, the main process's replication listener, and each worker's own file.
//! Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::topology::{Instance, MAIN_REPLICATION_PORT, Role, of_role};

/// Where the processes reach Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisEndpoint {
    pub host: String,
    pub port: u16,
    /// The file holding the password, mounted into every process.
    pub password_path: Option<String>,
}

/// The host of the main process's Service, which workers replicate with.
pub fn main_service(synapse: &str) -> String {
    format!("{synapse}-main")
}

fn names(instances: &[Instance], role: Role) -> Vec<String> {
    of_role(instances, role)
        .map(Instance::worker_name)
        .collect()
}

/// The keys every process reads alike: Redis, where the main process and the media
/// repositories are reached, and which instances run which duties.
pub fn shared(synapse: &str, instances: &[Instance], redis: &RedisEndpoint) -> Map<String, Value> {
    let mut redis_config = json!({"enabled": true, "host": redis.host, "port": redis.port});
    if let Some(path) = &redis.password_path {
        redis_config["password_path"] = json!(path);
    }
    let mut instance_map = Map::new();
    instance_map.insert(
        "main".into(),
        json!({"host": main_service(synapse), "port": MAIN_REPLICATION_PORT}),
    );
    let media = names(instances, Role::MediaRepository);
    for instance in of_role(instances, Role::MediaRepository) {
        // Media repositories write quarantine changes, which other processes send them.
        instance_map.insert(
            instance.worker_name(),
            json!({"host": instance.object_name(synapse), "port": instance.replication_port()}),
        );
    }
    let mut shared = Map::new();
    shared.insert("redis".into(), redis_config);
    shared.insert("instance_map".into(), Value::Object(instance_map));
    let senders = names(instances, Role::FederationSender);
    if !senders.is_empty() {
        shared.insert("federation_sender_instances".into(), json!(senders));
    }
    let pushers = names(instances, Role::Pusher);
    if !pushers.is_empty() {
        shared.insert("pusher_instances".into(), json!(pushers));
    }
    if let Some(first) = media.first() {
        // Off everywhere but on the media repositories, which their own files turn it on for.
        shared.insert("enable_media_repo".into(), json!(false));
        shared.insert(
            "media_instance_running_background_jobs".into(),
            json!(first),
        );
        shared.insert(
            "stream_writers".into(),
            json!({"quarantined_media_changes": media}),
        );
    }
    if let Some(background) = names(instances, Role::Background).first() {
        shared.insert("run_background_tasks_on".into(), json!(background));
    }
    shared
}

/// The main process's replication listener, which only workers reach.
pub fn replication_listener() -> Value {
    json!({
        "port": MAIN_REPLICATION_PORT,
        "type": "http",
        "bind_addresses": ["0.0.0.0"],
        "resources": [{"names": ["replication"]}],
    })
}

/// The file of one worker: its name, listeners and log configuration, then its role's own
/// settings (`extra`), which may not set the operator's keys.
pub fn worker_file(
    instance: &Instance,
    extra: &BTreeMap<String, Value>,
    metrics: bool,
    log_config: &str,
) -> Value {
    let resources: &[&str] = match instance.role {
        Role::Generic => &["client", "federation"],
        Role::MediaRepository => &["media"],
        // `/health` only, for the probes.
        Role::FederationSender | Role::Pusher | Role::Background => &["health"],
    };
    let mut listeners = vec![json!({
        "port": instance.http_port(),
        "type": "http",
        "bind_addresses": ["0.0.0.0"],
        "x_forwarded": true,
        "resources": [{"names": resources}],
    })];
    if instance.role == Role::MediaRepository {
        listeners.push(json!({
            "port": instance.replication_port(),
            "type": "http",
            "bind_addresses": ["0.0.0.0"],
            "resources": [{"names": ["replication"]}],
        }));
    }
    if metrics {
        listeners.push(json!({
            "port": instance.metrics_port(),
            "type": "metrics",
            "bind_addresses": ["0.0.0.0"],
        }));
    }
    let mut file: Map<String, Value> = extra.clone().into_iter().collect();
    file.insert("worker_app".into(), json!("synapse.app.generic_worker"));
    file.insert("worker_name".into(), json!(instance.worker_name()));
    file.insert("worker_log_config".into(), json!(log_config));
    file.insert("worker_listeners".into(), Value::Array(listeners));
    if instance.role == Role::MediaRepository {
        file.insert("enable_media_repo".into(), json!(true));
    }
    Value::Object(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(role: Role, index: u16) -> Instance {
        Instance { role, index }
    }

    fn redis() -> RedisEndpoint {
        RedisEndpoint {
            host: "hs-redis".into(),
            port: 6379,
            password_path: Some("/redis/password".into()),
        }
    }

    #[test]
    fn every_duty_is_named_once_in_the_shared_keys() {
        let all = [
            instance(Role::Generic, 0),
            instance(Role::FederationSender, 0),
            instance(Role::FederationSender, 1),
            instance(Role::Pusher, 0),
            instance(Role::MediaRepository, 0),
            instance(Role::Background, 0),
        ];
        assert_eq!(
            Value::Object(shared("hs", &all, &redis())),
            json!({
                "redis": {"enabled": true, "host": "hs-redis", "port": 6379, "password_path": "/redis/password"},
                "instance_map": {
                    "main": {"host": "hs-main", "port": 9093},
                    "media-0": {"host": "hs-media-0", "port": 10400},
                },
                "federation_sender_instances": ["federation-0", "federation-1"],
                "pusher_instances": ["pusher-0"],
                "enable_media_repo": false,
                "media_instance_running_background_jobs": "media-0",
                "stream_writers": {"quarantined_media_changes": ["media-0"]},
                "run_background_tasks_on": "background-0",
            })
        );
    }

    #[test]
    fn generic_workers_alone_leave_every_duty_on_main() {
        let shared = shared("hs", &[instance(Role::Generic, 0)], &redis());
        let keys: Vec<_> = shared.keys().map(String::as_str).collect();
        assert_eq!(keys, ["instance_map", "redis"]);
    }

    #[test]
    fn each_role_listens_for_what_it_serves() {
        let extra = BTreeMap::from([("caches".to_owned(), json!({"global_factor": 2.0}))]);
        let generic = worker_file(
            &instance(Role::Generic, 1),
            &extra,
            true,
            "/config/log.config",
        );
        assert_eq!(
            generic,
            json!({
                "caches": {"global_factor": 2.0},
                "worker_app": "synapse.app.generic_worker",
                "worker_name": "generic-1",
                "worker_log_config": "/config/log.config",
                "worker_listeners": [
                    {"port": 8101, "type": "http", "bind_addresses": ["0.0.0.0"], "x_forwarded": true,
                     "resources": [{"names": ["client", "federation"]}]},
                    {"port": 9101, "type": "metrics", "bind_addresses": ["0.0.0.0"]},
                ],
            })
        );
        let media = worker_file(
            &instance(Role::MediaRepository, 0),
            &BTreeMap::new(),
            false,
            "l",
        );
        assert_eq!(media["enable_media_repo"], true);
        assert_eq!(
            media["worker_listeners"][0]["resources"][0]["names"],
            json!(["media"])
        );
        assert_eq!(
            media["worker_listeners"][1]["resources"][0]["names"],
            json!(["replication"])
        );
        let sender = worker_file(
            &instance(Role::FederationSender, 0),
            &BTreeMap::new(),
            false,
            "l",
        );
        assert_eq!(
            sender["worker_listeners"][0]["resources"][0]["names"],
            json!(["health"])
        );
        assert_eq!(sender["worker_listeners"].as_array().unwrap().len(), 1);
    }
}
