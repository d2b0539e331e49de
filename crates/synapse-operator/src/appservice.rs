//! The synapse-operator's side of the app-service handshake: which registrations announced on a
//! Synapse are mounted. Each is checked the way Synapse checks it when it loads
//! `app_service_config_files` (a bad file makes Synapse exit at start), and against the
//! registrations accepted before it (unique `id` and tokens, no overlapping exclusive
//! namespaces). A rejected registration is reported and not mounted, so one bad bridge cannot
//! take Synapse down. Pure: the caller fetched the Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator_common::yaml11::{self, Value};
use synapse_types::contract::{
    AppServiceAnnotation, AppServiceSource, AppServiceState, AppServiceStatus,
    LABEL_REGISTERED_WITH, REGISTRATION_SECRET_KEY, registration_content_hash,
};
use synapse_types::synapse::{BridgeStatus, BridgesStatus};

use crate::workload::RegistrationMount;

/// One registration announced on the Synapse, with its Secret as fetched (`None`: not found).
#[derive(Clone, Debug)]
pub struct Announced {
    pub annotation: AppServiceAnnotation,
    pub secret_name: String,
    pub secret: Option<Secret>,
}

/// The announcements in a Synapse's annotations (other annotations are ignored).
pub fn announcements(
    annotations: &BTreeMap<String, String>,
) -> Vec<(AppServiceAnnotation, String)> {
    annotations
        .iter()
        .filter_map(|(key, value)| Some((AppServiceAnnotation::parse(key)?, value.clone())))
        .collect()
}

/// A registration that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub mount: RegistrationMount,
    /// The registration file, hashed into the pod template so a change rolls Synapse.
    pub content: Vec<u8>,
}

/// The outcome for every announcement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub accepted: Vec<Accepted>,
    /// One entry per announcement, sorted by bridge kind and name.
    pub statuses: Vec<AppServiceStatus>,
}

impl Decision {
    /// The original operator's `status.bridges`: a kind is enabled when one of its bridges is
    /// registered; `name` is the first such bridge.
    pub fn bridges(&self) -> Option<BridgesStatus> {
        if self.statuses.is_empty() {
            return None;
        }
        let of_kind = |kind: &str| {
            let announced = self.statuses.iter().any(|s| s.source.kind == kind);
            announced.then(|| {
                let registered = self
                    .statuses
                    .iter()
                    .find(|s| s.source.kind == kind && s.state == AppServiceState::Registered);
                BridgeStatus {
                    enabled: registered.is_some(),
                    name: registered.map(|s| s.source.name.clone()),
                }
            })
        };
        Some(BridgesStatus {
            heisenbridge: of_kind("Heisenbridge"),
            mautrixsignal: of_kind("MautrixSignal"),
        })
    }
}

/// A registration file as far as the cross-registration checks need it.
struct Registration {
    id: String,
    as_token: String,
    hs_token: String,
    /// Exclusive namespaces: (`users`|`aliases`|`rooms`, regex).
    exclusive: Vec<(String, String)>,
}

/// Decides which announced registrations are mounted. Earlier registrations (by their Secret's
/// creation time, then annotation key) win conflicts, so the outcome is stable as bridges come
/// and go.
pub fn decide(synapse_name: &str, namespace: &str, mut announced: Vec<Announced>) -> Decision {
    announced.sort_by(|a, b| {
        let created = |x: &Announced| {
            x.secret
                .as_ref()
                .and_then(|s| s.metadata.creation_timestamp.clone())
        };
        compare_times(created(a), created(b)).then_with(|| a.annotation.cmp(&b.annotation))
    });
    let mut accepted: Vec<(Accepted, Registration)> = Vec::new();
    let mut statuses = Vec::new();
    for item in announced {
        let source = AppServiceSource {
            kind: item.annotation.bridge_kind().kind().to_owned(),
            namespace: namespace.to_owned(),
            name: item.annotation.bridge_name().to_owned(),
        };
        let content = item.secret.as_ref().and_then(registration_bytes);
        let content_hash = content.as_deref().map(registration_content_hash);
        let checked = check_secret(synapse_name, &item)
            .and_then(parse_registration)
            .and_then(|registration| {
                conflicts(&registration, accepted.iter().map(|(_, r)| r))?;
                Ok(registration)
            });
        let id = match &checked {
            Ok(registration) => Some(registration.id.clone()),
            Err(_) => content
                .as_deref()
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
                .and_then(|text| yaml11::parse(text).ok())
                .and_then(|doc| match doc.get("id") {
                    Some(Value::Str(id)) => Some(id.clone()),
                    _ => None,
                }),
        };
        match checked {
            Ok(registration) => {
                let mount = RegistrationMount {
                    dir: format!(
                        "{}-{}",
                        item.annotation.bridge_kind().label(),
                        item.annotation.bridge_name()
                    ),
                    secret_name: item.secret_name.clone(),
                    secret_key: REGISTRATION_SECRET_KEY.to_owned(),
                };
                statuses.push(AppServiceStatus {
                    source,
                    id,
                    state: AppServiceState::Registered,
                    content_hash,
                    reason: None,
                });
                accepted.push((
                    Accepted {
                        mount,
                        content: content.unwrap_or_default(),
                    },
                    registration,
                ));
            }
            Err(reason) => statuses.push(AppServiceStatus {
                source,
                id,
                state: AppServiceState::Rejected,
                content_hash,
                reason: Some(reason),
            }),
        }
    }
    statuses
        .sort_by(|a, b| (&a.source.kind, &a.source.name).cmp(&(&b.source.kind, &b.source.name)));
    let mut accepted: Vec<Accepted> = accepted.into_iter().map(|(a, _)| a).collect();
    accepted.sort_by(|a, b| a.mount.dir.cmp(&b.mount.dir));
    Decision { accepted, statuses }
}

fn compare_times(a: Option<Time>, b: Option<Time>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.0.cmp(&b.0),
        // Unknown (missing Secret) sorts last.
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

fn registration_bytes(secret: &Secret) -> Option<Vec<u8>> {
    secret
        .data
        .as_ref()?
        .get(REGISTRATION_SECRET_KEY)
        .map(|b| b.0.clone())
}

/// The Secret exists, was labelled for this Synapse by its owner, and holds the file. The label
/// keeps an annotation from mounting any Secret of the namespace into Synapse's pod.
fn check_secret<'a>(synapse_name: &str, item: &'a Announced) -> Result<&'a [u8], String> {
    let name = &item.secret_name;
    let Some(secret) = &item.secret else {
        return Err(format!(
            "Secret {name} named by the announcement does not exist"
        ));
    };
    let labelled = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_REGISTERED_WITH))
        .is_some_and(|v| v == synapse_name);
    if !labelled {
        return Err(format!(
            "Secret {name} is not labelled {LABEL_REGISTERED_WITH}={synapse_name}, so it is not offered to this Synapse"
        ));
    }
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(REGISTRATION_SECRET_KEY))
        .map(|b| b.0.as_slice())
        .ok_or_else(|| format!("Secret {name} has no key {REGISTRATION_SECRET_KEY}"))
}

/// Synapse's own checks of a registration file (`_load_appservice` and the namespace checks):
/// each failure would make Synapse exit at start.
fn parse_registration(bytes: &[u8]) -> Result<Registration, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| "the registration is not UTF-8 text".to_owned())?;
    let doc =
        yaml11::parse(text).map_err(|e| format!("the registration is not valid YAML: {e}"))?;
    if !matches!(doc, Value::Map(_)) {
        return Err("the registration must be a YAML mapping".into());
    }
    let string = |field: &str| match doc.get(field) {
        Some(Value::Str(s)) => Ok(s.clone()),
        _ => Err(format!(
            "required string field {field:?} is missing or not a string"
        )),
    };
    let id = string("id")?;
    let as_token = string("as_token")?;
    let hs_token = string("hs_token")?;
    let sender_localpart = string("sender_localpart")?;
    match doc.get("url") {
        Some(Value::Str(_) | Value::Null) => {}
        _ => return Err("url must be a string, or explicitly null".into()),
    }
    // Synapse requires urllib's quote() to leave the localpart unchanged.
    if !sender_localpart
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-~/".contains(c))
    {
        return Err(format!(
            "sender_localpart {sender_localpart:?} has characters that need URL encoding"
        ));
    }
    let Some(Value::Map(namespaces)) = doc.get("namespaces") else {
        return Err("namespaces must be a mapping with users, aliases and rooms lists".into());
    };
    let mut exclusive = Vec::new();
    for (key, entries) in namespaces {
        let Value::Str(kind) = key else { continue };
        if !["users", "aliases", "rooms"].contains(&kind.as_str()) {
            continue;
        }
        let Value::Seq(entries) = entries else {
            return Err(format!("namespaces.{kind} must be a list"));
        };
        for entry in entries {
            let regex = match entry.get("regex") {
                Some(Value::Str(r)) => r,
                _ => return Err(format!("each namespaces.{kind} entry needs a string regex")),
            };
            let is_exclusive = match entry.get("exclusive") {
                Some(Value::Bool(b)) => *b,
                _ => {
                    return Err(format!(
                        "namespaces.{kind} entry {regex:?} needs exclusive: true or false"
                    ));
                }
            };
            fancy_regex::Regex::new(regex)
                .map_err(|e| format!("namespaces.{kind} regex {regex:?} does not compile: {e}"))?;
            if is_exclusive {
                exclusive.push((kind.clone(), regex.clone()));
            }
        }
    }
    if let Some(protocols) = doc.get("protocols")
        && protocols.is_truthy()
    {
        let Value::Seq(items) = protocols else {
            return Err("protocols must be a list of strings".into());
        };
        if !items.iter().all(|p| matches!(p, Value::Str(_))) {
            return Err("protocols must be a list of strings".into());
        }
    }
    Ok(Registration {
        id,
        as_token,
        hs_token,
        exclusive,
    })
}

/// What makes `candidate` clash with a registration accepted before it.
fn conflicts<'a>(
    candidate: &Registration,
    accepted: impl Iterator<Item = &'a Registration>,
) -> Result<(), String> {
    for other in accepted {
        if candidate.id == other.id {
            return Err(format!(
                "id {:?} is already used by another registration on this Synapse",
                candidate.id
            ));
        }
        let tokens = [&candidate.as_token, &candidate.hs_token];
        if tokens.contains(&&other.as_token) || tokens.contains(&&other.hs_token) {
            return Err(format!(
                "its tokens are already used by registration {:?}; generate new ones",
                other.id
            ));
        }
        for (kind, regex) in &candidate.exclusive {
            if let Some((_, theirs)) = other
                .exclusive
                .iter()
                .find(|(k, r)| k == kind && may_overlap(regex, r))
            {
                return Err(format!(
                    "exclusive {kind} namespace {regex:?} overlaps {theirs:?} of registration {:?}",
                    other.id
                ));
            }
        }
    }
    Ok(())
}

/// Whether two namespace regexes may match a common ID. Regex intersection is not decidable
/// in general, so this compares the literal prefixes (what every match must start with): when
/// neither extends the other, the two cannot overlap; otherwise they are taken to overlap. Exact
/// for the prefix-shaped namespaces bridges use (`@irc_.*`, `^@signal_.*:example\.com$`).
fn may_overlap(a: &str, b: &str) -> bool {
    let (a, b) = (literal_prefix(a), literal_prefix(b));
    a.starts_with(&b) || b.starts_with(&a)
}

/// The literal text every match of `regex` starts with (Synapse matches from the start).
fn literal_prefix(regex: &str) -> String {
    let mut prefix = String::new();
    let mut chars = regex.strip_prefix('^').unwrap_or(regex).chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if !escaped.is_ascii_alphanumeric() => prefix.push(escaped),
                _ => break,
            },
            '.' | '[' | '(' | '|' | '$' | '^' => break,
            '*' | '?' | '{' => {
                // The previous character was optional or repeated: it is not a fixed prefix.
                prefix.pop();
                break;
            }
            '+' => break,
            c => prefix.push(c),
        }
    }
    prefix
}

#[cfg(test)]
mod tests {
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
    fn each_synapse_load_rule_rejects() {
        let cases = [
            (IRC.replace("id: heisenbridge\n", ""), "\"id\""),
            (
                IRC.replace("as_token: aaa", "as_token: 123"),
                "\"as_token\"",
            ),
            (
                IRC.replace("url: http://irc-heisenbridge.ns.svc:9898\n", ""),
                "url",
            ),
            (
                IRC.replace("heisenbridge\nrate", "heisen bridge\nrate"),
                "URL encoding",
            ),
            (
                IRC.replace("exclusive: true", "exclusive: 'yes'"),
                "exclusive",
            ),
            (IRC.replace("'@irc_.*'", "'@irc_(.*'"), "does not compile"),
            (
                IRC.replace("  aliases: []\n", "  aliases: {}\n"),
                "must be a list",
            ),
            (
                IRC.split("namespaces").next().unwrap().to_owned(),
                "namespaces",
            ),
            ("[oops".to_owned(), "not valid YAML"),
            ("- a\n".to_owned(), "mapping"),
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
        // url: null is allowed; `exclusive: yes` is a real YAML 1.1 boolean.
        let ok = IRC
            .replace("url: http://irc-heisenbridge.ns.svc:9898", "url: null")
            .replace("exclusive: true", "exclusive: yes");
        let d = decide(
            "hs",
            "ns",
            vec![announced(
                BridgeKind::Heisenbridge,
                "irc",
                Some(secret("irc-registration", "hs", &ok, 1)),
            )],
        );
        assert_eq!(d.accepted.len(), 1, "{:?}", d.statuses);
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
}
