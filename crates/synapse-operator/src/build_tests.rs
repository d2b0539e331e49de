use operator_common::database::Readiness;
use synapse_types::Synapse;

use super::*;
use crate::resolve::resolve;

#[test]
fn config_hash_changes_with_any_file_and_is_stable() {
    let a = BTreeMap::from([("a".to_owned(), ByteString(b"1".to_vec()))]);
    let b = BTreeMap::from([("a".to_owned(), ByteString(b"2".to_vec()))]);
    let s = BTreeMap::from([("k".to_owned(), ByteString(b"secret".to_vec()))]);
    let h = config_hash(&[Some(&a), Some(&s)]);
    assert_eq!(h, config_hash(&[Some(&a), Some(&s)]));
    assert_ne!(h, config_hash(&[Some(&b), Some(&s)]));
    assert_ne!(h, config_hash(&[Some(&a), None]));
    assert_eq!(h.len(), 64);
    assert!(!h.contains("secret"));
}

fn synapse(policy: &str) -> Synapse {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "hs", "namespace": "ns", "uid": "u1"},
        "spec": {
            "homeserver": {"values": {"serverName": "example.com", "reportStats": false}},
            "storage": {"size": "3Gi"},
            "deletionPolicy": policy,
        },
    }))
    .unwrap()
}

#[test]
fn children_are_named_labelled_and_owned_by_the_deletion_policy() {
    let synapse = synapse("Retain");
    let subject = Subject::of(&synapse, "synapse", "synapse-operator").unwrap();
    let config = resolve(&synapse.spec.homeserver, None, None).unwrap();
    let secrets = BTreeMap::from([("signing.key".to_owned(), b"ed25519 a_x y".to_vec())]);
    let built = children(
        &synapse,
        &subject,
        &config,
        &Readiness::Sqlite,
        &Decision::default(),
        &secrets,
        None,
    );
    let owned = |meta: &ObjectMeta| !meta.owner_references.clone().unwrap_or_default().is_empty();
    assert_eq!(
        built.config_secret.metadata.name.as_deref(),
        Some("hs-config")
    );
    assert!(owned(&built.config_secret.metadata));
    assert_eq!(built.claim.metadata.name.as_deref(), Some("hs-data"));
    assert!(!owned(&built.claim.metadata), "Retain keeps the data");
    let size = &built
        .claim
        .spec
        .as_ref()
        .unwrap()
        .resources
        .as_ref()
        .unwrap();
    assert_eq!(size.requests.as_ref().unwrap()["storage"].0, "3Gi");
    assert_eq!(built.deployment.metadata.name.as_deref(), Some("hs"));
    assert_eq!(built.service.metadata.name.as_deref(), Some("hs"));
    let files = built.config_secret.data.as_ref().unwrap();
    assert!(files.contains_key("homeserver.yaml"), "{:?}", files.keys());
    assert_eq!(
        homeserver_secret_meta(&synapse, &subject).owner_references,
        Some(Vec::new())
    );

    // The generated secrets are in the pod's hash: a change rolls Synapse.
    let hash = |secrets: &BTreeMap<String, Vec<u8>>| {
        let built = children(
            &synapse,
            &subject,
            &config,
            &Readiness::Sqlite,
            &Decision::default(),
            secrets,
            None,
        );
        built
            .deployment
            .spec
            .unwrap()
            .template
            .metadata
            .unwrap()
            .annotations
            .unwrap()["synapse.opdev.io/config-hash"]
            .clone()
    };
    assert_ne!(hash(&secrets), hash(&BTreeMap::new()));

    let deleted = self::synapse("Delete");
    let subject = Subject::of(&deleted, "synapse", "synapse-operator").unwrap();
    let built = children(
        &deleted,
        &subject,
        &config,
        &Readiness::Sqlite,
        &Decision::default(),
        &secrets,
        None,
    );
    assert!(owned(&built.claim.metadata), "Delete takes the data along");
}

fn with_workers(workers: serde_json::Value) -> Synapse {
    let mut synapse = synapse("Retain");
    synapse.spec.workers = Some(serde_json::from_value(workers).unwrap());
    synapse
}

/// The children of `synapse` on an external PostgreSQL, with a generated Redis Secret.
fn worker_children(synapse: &Synapse) -> Children {
    let subject = Subject::of(synapse, "synapse", "synapse-operator").unwrap();
    let config = resolve(&synapse.spec.homeserver, None, None).unwrap();
    let secrets = BTreeMap::from([("signing.key".to_owned(), b"ed25519 a_x y".to_vec())]);
    let redis = crate::workers::complete_redis_secret(&BTreeMap::new()).unwrap();
    children(
        synapse,
        &subject,
        &config,
        &Readiness::Sqlite,
        &Decision::default(),
        &secrets,
        Some(&redis),
    )
}

fn command(deployment: &Deployment) -> Vec<String> {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap();
    pod.containers[0].command.clone().unwrap()
}

#[test]
fn workers_run_the_shared_files_and_their_own_behind_the_router() {
    let built = worker_children(&with_workers(serde_json::json!({
        "generic": {"replicas": 1}, "mediaRepository": {"replicas": 1},
    })));
    let workers = built.workers.as_ref().expect("worker objects");
    let (_, generic, service) = &workers.workers[0];
    assert_eq!(generic.metadata.name.as_deref(), Some("hs-generic-0"));
    assert_eq!(
        command(generic)[2..],
        [
            "synapse.app.generic_worker",
            "--config-path",
            "/config/homeserver.yaml",
            "--config-path",
            "/config/operator-overlay.yaml",
            "--config-path",
            "/workers/generic-0.yaml",
        ]
    );
    assert!(service.is_some(), "the router's backend");
    let files = workers.files.data.as_ref().unwrap();
    assert!(files.contains_key("generic-0.yaml") && files.contains_key("nginx.conf"));
    // The Service NAME is the router's; Redis is the operator's.
    let selector = built
        .service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap();
    assert_eq!(selector["app.kubernetes.io/component"], "router");
    assert!(workers.redis.is_some());
    let overlay = String::from_utf8(
        built.config_secret.data.as_ref().unwrap()["operator-overlay.yaml"]
            .0
            .clone(),
    )
    .unwrap();
    assert!(overlay.contains("\"host\": \"hs-redis\"") && overlay.contains("\"replication\""));
}

#[test]
fn a_generic_worker_more_changes_neither_the_main_pod_nor_the_others() {
    let one = worker_children(&with_workers(
        serde_json::json!({"generic": {"replicas": 1}}),
    ));
    let two = worker_children(&with_workers(
        serde_json::json!({"generic": {"replicas": 2}}),
    ));
    assert_eq!(one.deployment, two.deployment, "the main process");
    let (a, b) = (one.workers.unwrap(), two.workers.unwrap());
    assert_eq!(a.workers[0].1, b.workers[0].1, "generic-0");
    assert_eq!(b.workers.len(), 2);
    assert_ne!(a.router, b.router, "the router gets the new backend");
}

#[test]
fn an_external_redis_is_used_and_none_is_run() {
    let built = worker_children(&with_workers(serde_json::json!({
        "generic": {"replicas": 1},
        "redis": {"external": {"host": "redis.infra.svc", "passwordSecret": {"name": "redis", "key": "pw"}}},
    })));
    let workers = built.workers.as_ref().unwrap();
    assert!(workers.redis.is_none(), "the operator runs no Redis");
    let overlay = String::from_utf8(
        built.config_secret.data.as_ref().unwrap()["operator-overlay.yaml"]
            .0
            .clone(),
    )
    .unwrap();
    assert!(
        overlay.contains("\"host\": \"redis.infra.svc\""),
        "{overlay}"
    );
    let pod = built
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap();
    let redis = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "redis")
        .unwrap();
    let secret = redis.secret.as_ref().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("redis"));
    assert_eq!(secret.items.as_ref().unwrap()[0].key, "pw");
    assert!(workers.workers[0].1.spec.is_some());
}

#[test]
fn a_suspended_synapse_keeps_its_objects_without_pods() {
    let mut synapse = with_workers(serde_json::json!({"generic": {"replicas": 1}}));
    synapse.spec.suspend = true;
    let built = worker_children(&synapse);
    let replicas = |d: &Deployment| d.spec.as_ref().and_then(|s| s.replicas);
    assert_eq!(replicas(&built.deployment), Some(0));
    let workers = built.workers.unwrap();
    assert_eq!(replicas(&workers.workers[0].1), Some(0));
    assert_eq!(replicas(&workers.router), Some(0));
    assert_eq!(replicas(&workers.redis.unwrap().0), Some(0));
    synapse.spec.suspend = false;
    let resumed = worker_children(&synapse);
    assert_eq!(replicas(&resumed.deployment), Some(1));
    assert_eq!(
        resumed.deployment.spec.unwrap().template,
        built.deployment.spec.unwrap().template,
        "the same pod comes back"
    );
}
