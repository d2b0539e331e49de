use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::store;
use kube::runtime::watcher;
use serde_json::json;
use synapse_types::contract::{
    AppServiceSource, AppServiceState, AppServiceStatus, registration_content_hash,
};
use synapse_types::synapse::SynapseStatus;

use kube::runtime::reflector::{ObjectRef, Store};
use synapse_types::contract::BridgeKind;
use synapse_types::{ConfigMapReference, Heisenbridge, Synapse, SynapseReference};

use super::announcement::finalizer_patch;
use super::*;

fn reference(name: &str, namespace: Option<&str>) -> SynapseReference {
    SynapseReference {
        name: name.into(),
        namespace: namespace.map(Into::into),
    }
}

#[test]
fn only_same_namespace_synapses_are_accepted() {
    assert_eq!(synapse_name("ns", &reference("hs", None)), Ok("hs"));
    assert_eq!(synapse_name("ns", &reference("hs", Some(""))), Ok("hs"));
    assert_eq!(synapse_name("ns", &reference("hs", Some("ns"))), Ok("hs"));
    let err = synapse_name("ns", &reference("hs", Some("other"))).unwrap_err();
    assert!(
        err.to_string()
            .contains("cross-namespace Synapse references are not supported"),
        "{err}"
    );
    assert!(err.to_string().contains("(other)"), "{err}");
}

fn bridge(
    namespace: &str,
    name: &str,
    synapse: SynapseReference,
    cm: Option<&str>,
) -> Heisenbridge {
    let mut bridge = Heisenbridge::new(
        name,
        synapse_types::HeisenbridgeSpec {
            config_map: cm.map(|n| ConfigMapReference {
                name: n.into(),
                namespace: None,
            }),
            verbose_level: 0,
            synapse,
            owner: None,
            image: None,
        },
    );
    bridge.metadata.namespace = Some(namespace.into());
    bridge
}

fn store_of(bridges: Vec<Heisenbridge>) -> Store<Heisenbridge> {
    let (reader, mut writer) = store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for b in bridges {
        writer.apply_watcher_event(&watcher::Event::InitApply(b));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

fn names<B: Bridge>(refs: Vec<ObjectRef<B>>) -> Vec<String> {
    let mut names: Vec<_> = refs
        .into_iter()
        .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
        .collect();
    names.sort();
    names
}

#[test]
fn a_synapse_maps_to_the_bridges_of_its_namespace_that_name_it() {
    let bridges = store_of(vec![
        bridge("a", "one", reference("hs", None), None),
        bridge("a", "two", reference("hs", Some("a")), None),
        bridge("a", "other", reference("hs2", None), None),
        bridge("b", "same-name", reference("hs", None), None),
        bridge("b", "cross", reference("hs", Some("a")), None),
    ]);
    let mut synapse = Synapse::new(
        "hs",
        serde_json::from_value(json!({
            "homeserver": {"values": {"serverName": "x", "reportStats": false}}
        }))
        .unwrap(),
    );
    synapse.metadata.namespace = Some("a".into());
    assert_eq!(
        names(bridges_of_synapse(&bridges, &synapse)),
        ["a/one", "a/two"]
    );
}

fn synapse_with(status: Option<SynapseStatus>, annotations: &[(&str, &str)]) -> Synapse {
    let mut synapse = Synapse::new(
        "hs",
        serde_json::from_value(json!({
            "homeserver": {"values": {"serverName": "x", "reportStats": false}}
        }))
        .unwrap(),
    );
    synapse.metadata.namespace = Some("ns".into());
    synapse.metadata.annotations = Some(
        annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    synapse.status = status;
    synapse
}

#[test]
fn the_announcement_has_a_per_bridge_manager_and_removes_by_omission() {
    let a = Announcement::new(
        "heisenbridge-operator",
        BridgeKind::Heisenbridge,
        "irc",
        "irc-heisenbridge-registration",
    )
    .unwrap();
    assert_eq!(a.key(), "heisenbridge.appservice.synapse.opdev.io/irc");
    assert_eq!(a.field_manager(), "heisenbridge-operator/irc");
    assert_eq!(
        a.patch("hs", "ns", true),
        json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Synapse",
            "metadata": {
                "name": "hs",
                "namespace": "ns",
                "annotations": {
                    "heisenbridge.appservice.synapse.opdev.io/irc":
                        "irc-heisenbridge-registration"
                },
            },
        })
    );
    assert_eq!(
        a.patch("hs", "ns", false)["metadata"],
        json!({"name": "hs", "namespace": "ns"})
    );

    let key = a.key();
    assert!(a.is_on(&synapse_with(
        None,
        &[(&key, "irc-heisenbridge-registration")]
    )));
    assert!(!a.is_on(&synapse_with(None, &[(&key, "another-secret")])));
    assert!(!a.is_on(&synapse_with(None, &[])));
}

#[test]
fn finalizer_patch_owns_only_the_finalizer() {
    let b = bridge("ns", "irc", reference("hs", None), None);
    assert_eq!(
        finalizer_patch(&b, true),
        json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "metadata": {
                "name": "irc",
                "namespace": "ns",
                "finalizers": ["synapse.opdev.io/appservice-registration"],
            },
        })
    );
    assert!(
        finalizer_patch(&b, false)["metadata"]
            .get("finalizers")
            .is_none()
    );
    assert!(!has_finalizer(&b));
}

fn ready(status: bool) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: if status { "True" } else { "False" }.into(),
        reason: "Test".into(),
        message: String::new(),
        observed_generation: None,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

fn source() -> AppServiceSource {
    AppServiceSource {
        kind: "Heisenbridge".into(),
        namespace: "ns".into(),
        name: "irc".into(),
    }
}

fn entry(state: AppServiceState, hash: &str, reason: Option<&str>) -> AppServiceStatus {
    AppServiceStatus {
        source: source(),
        id: Some("heisenbridge".into()),
        state,
        content_hash: Some(hash.into()),
        reason: reason.map(Into::into),
    }
}

fn status(ready_now: bool, app_services: Vec<AppServiceStatus>) -> SynapseStatus {
    SynapseStatus {
        conditions: vec![ready(ready_now)],
        app_services,
        ..SynapseStatus::default()
    }
}

fn reason_of(state: RegistrationState) -> &'static str {
    match state {
        RegistrationState::Live => reasons::REGISTERED,
        RegistrationState::NotLive { reason, .. } => reason,
    }
}

#[test]
fn registered_only_when_the_current_registration_is_live_on_a_ready_synapse() {
    let hash = registration_content_hash(b"current");
    let old = registration_content_hash(b"old");
    let check = |status: Option<SynapseStatus>| {
        reason_of(registration_state(
            &synapse_with(status, &[]),
            &source(),
            &hash,
        ))
    };
    let registered = |h: &str| entry(AppServiceState::Registered, h, None);

    assert_eq!(
        check(Some(status(true, vec![registered(&hash)]))),
        reasons::REGISTERED
    );
    assert_eq!(check(None), reasons::SYNAPSE_NOT_READY);
    assert_eq!(
        check(Some(status(true, vec![]))),
        reasons::REGISTRATION_PENDING
    );
    assert_eq!(
        check(Some(status(true, vec![registered(&old)]))),
        reasons::REGISTRATION_PENDING
    );
    assert_eq!(
        check(Some(status(false, vec![registered(&hash)]))),
        reasons::SYNAPSE_NOT_READY
    );
    let mut suspended = synapse_with(Some(status(false, vec![registered(&hash)])), &[]);
    suspended.spec.suspend = true;
    assert_eq!(
        reason_of(registration_state(&suspended, &source(), &hash)),
        reasons::SYNAPSE_SUSPENDED
    );
    let mut elsewhere = registered(&hash);
    elsewhere.source.namespace = "other".into();
    assert_eq!(
        check(Some(status(true, vec![elsewhere]))),
        reasons::REGISTRATION_PENDING
    );

    let rejected = entry(
        AppServiceState::Rejected,
        &hash,
        Some("id heisenbridge is already used by Heisenbridge ns/first"),
    );
    let state = registration_state(
        &synapse_with(Some(status(true, vec![rejected])), &[]),
        &source(),
        &hash,
    );
    let RegistrationState::NotLive { reason, message } = state else {
        panic!("a rejected registration is not live");
    };
    assert_eq!(reason, reasons::REGISTRATION_REJECTED);
    assert!(
        message.contains("already used by Heisenbridge ns/first"),
        "{message}"
    );
}
