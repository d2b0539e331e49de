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
