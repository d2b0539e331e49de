use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use synapse_types::contract::BridgeKind;

use super::*;

const IRC: &str = "id: heisenbridge\nurl: http://irc-heisenbridge.ns.svc:9898\nas_token: aaa\nhs_token: bbb\nsender_localpart: heisenbridge\nrate_limited: false\nnamespaces:\n  users:\n    - regex: '@irc_.*'\n      exclusive: true\n  aliases: []\n  rooms: []\n";

fn secret(name: &str, labelled_for: &str, content: &str, created: i64) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(
                LABEL_REGISTERED_WITH.to_owned(),
                labelled_for.to_owned(),
            )])),
            creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            REGISTRATION_SECRET_KEY.to_owned(),
            ByteString(content.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

fn announced(kind: BridgeKind, bridge: &str, secret: Option<Secret>) -> Announced {
    Announced {
        annotation: AppServiceAnnotation::new(kind, bridge).unwrap(),
        secret_name: format!("{bridge}-registration"),
        secret,
    }
}

fn reason_of(decision: &Decision, bridge: &str) -> Option<String> {
    decision
        .statuses
        .iter()
        .find(|s| s.source.name == bridge)
        .unwrap()
        .reason
        .clone()
}

#[test]
fn a_valid_registration_is_mounted_and_reported() {
    let d = decide(
        "hs",
        "ns",
        vec![announced(
            BridgeKind::Heisenbridge,
            "irc",
            Some(secret("irc-registration", "hs", IRC, 1)),
        )],
    );
    assert_eq!(d.accepted.len(), 1);
    assert_eq!(
        d.accepted[0].mount.path(),
        "/appservices/heisenbridge-irc/registration.yaml"
    );
    assert_eq!(d.accepted[0].mount.secret_name, "irc-registration");
    let s = &d.statuses[0];
    assert_eq!(s.state, AppServiceState::Registered);
    assert_eq!(s.id.as_deref(), Some("heisenbridge"));
    assert_eq!(
        s.content_hash.as_deref(),
        Some(registration_content_hash(IRC.as_bytes()).as_str())
    );
    assert_eq!(s.source.kind, "Heisenbridge");
    let bridges = d.bridges().unwrap();
    assert_eq!(
        bridges.heisenbridge,
        Some(BridgeStatus {
            enabled: true,
            name: Some("irc".into())
        })
    );
    assert_eq!(bridges.mautrixsignal, None);
}

#[test]
fn a_registration_breaking_synapses_rules_is_rejected_naming_them() {
    // The rules themselves are operator_common::registration_file's, tested there.
    let cases = [
        (
            IRC.replace("id: heisenbridge\n", ""),
            "`id` must be a string",
        ),
        (IRC.replace("'@irc_.*'", "'@irc_(.*'"), "does not compile"),
        ("[oops".to_owned(), "not valid YAML"),
    ];
    for (content, needle) in cases {
        let d = decide(
            "hs",
            "ns",
            vec![announced(
                BridgeKind::Heisenbridge,
                "irc",
                Some(secret("irc-registration", "hs", &content, 1)),
            )],
        );
        assert!(d.accepted.is_empty(), "{content}");
        let reason = reason_of(&d, "irc").unwrap();
        assert!(reason.contains(needle), "{needle}: {reason}");
        assert_eq!(d.statuses[0].state, AppServiceState::Rejected);
    }
}

#[test]
fn missing_foreign_or_keyless_secrets_are_rejected() {
    let mut keyless = secret("c-registration", "hs", IRC, 1);
    keyless.data = Some(BTreeMap::new());
    let d = decide(
        "hs",
        "ns",
        vec![
            announced(BridgeKind::Heisenbridge, "a", None),
            announced(
                BridgeKind::Heisenbridge,
                "b",
                Some(secret("b-registration", "other", IRC, 1)),
            ),
            announced(BridgeKind::Heisenbridge, "c", Some(keyless)),
        ],
    );
    assert!(d.accepted.is_empty());
    assert!(reason_of(&d, "a").unwrap().contains("does not exist"));
    assert!(reason_of(&d, "b").unwrap().contains("not labelled"));
    assert!(reason_of(&d, "c").unwrap().contains("no key"));
    assert!(!d.bridges().unwrap().heisenbridge.unwrap().enabled);
}

#[test]
fn the_earlier_of_two_conflicting_registrations_wins() {
    let second = IRC.replace("aaa", "ccc").replace("bbb", "ddd");
    let d = decide(
        "hs",
        "ns",
        vec![
            announced(
                BridgeKind::Heisenbridge,
                "a-late",
                Some(secret("late", "hs", &second, 20)),
            ),
            announced(
                BridgeKind::Heisenbridge,
                "z-early",
                Some(secret("early", "hs", IRC, 10)),
            ),
        ],
    );
    assert_eq!(d.accepted.len(), 1);
    assert_eq!(d.accepted[0].mount.dir, "heisenbridge-z-early");
    assert!(reason_of(&d, "a-late").unwrap().contains("already used"));
    // Statuses are sorted by name whatever the decision order.
    assert_eq!(d.statuses[0].source.name, "a-late");
}

#[test]
fn distinct_registrations_coexist_and_conflicts_are_named() {
    let other = IRC
        .replace("id: heisenbridge", "id: irc2")
        .replace("aaa", "ccc")
        .replace("bbb", "ddd")
        .replace("@irc_.*", "@irc2_.*")
        .replace("localpart: heisenbridge", "localpart: heisenbridge2");
    let both = |second: &str| {
        decide(
            "hs",
            "ns",
            vec![
                announced(
                    BridgeKind::Heisenbridge,
                    "one",
                    Some(secret("1", "hs", IRC, 1)),
                ),
                announced(
                    BridgeKind::Heisenbridge,
                    "two",
                    Some(secret("2", "hs", second, 2)),
                ),
            ],
        )
    };
    assert_eq!(both(&other).accepted.len(), 2);
    let same_token = other.replace("ccc", "aaa");
    assert!(
        reason_of(&both(&same_token), "two")
            .unwrap()
            .contains("tokens")
    );
    let overlapping = other.replace("@irc2_.*", "@irc_foo.*");
    assert!(
        reason_of(&both(&overlapping), "two")
            .unwrap()
            .contains("overlaps")
    );
    let not_exclusive = overlapping.replace("exclusive: true", "exclusive: false");
    assert_eq!(both(&not_exclusive).accepted.len(), 2);
}

#[test]
fn literal_prefixes() {
    assert_eq!(literal_prefix("@irc_.*"), "@irc_");
    assert_eq!(literal_prefix("^@signal_.*:example\\.com$"), "@signal_");
    assert_eq!(
        literal_prefix("@signalbot:example\\.com"),
        "@signalbot:example.com"
    );
    assert_eq!(literal_prefix("@ab*c"), "@a");
    assert_eq!(literal_prefix("@x\\d+"), "@x");
    assert!(may_overlap("@irc_.*", "^@irc_.*:example\\.com$"));
    assert!(!may_overlap("@irc_.*", "@signal_.*"));
    assert!(!may_overlap("@signalbot:a\\.b", "@signal_.*"));
    assert!(may_overlap(".*", "@irc_.*"));
}

#[test]
fn announcements_are_read_from_annotations() {
    let annotations = BTreeMap::from([
        (
            "heisenbridge.appservice.synapse.opdev.io/irc".to_owned(),
            "irc-heisenbridge-registration".to_owned(),
        ),
        ("unrelated/key".to_owned(), "x".to_owned()),
    ]);
    let found = announcements(&annotations);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0.bridge_name(), "irc");
    assert_eq!(found[0].1, "irc-heisenbridge-registration");
}
