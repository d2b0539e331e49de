//! The synapse-operator's side of the app-service handshake: which registrations announced on a
//! Synapse are mounted. Each is checked the way Synapse checks it when it loads
//! `app_service_config_files` (a bad file makes Synapse exit at start), and against the
//! registrations accepted before it (unique `id` and tokens, no overlapping exclusive
//! namespaces). A rejected registration is reported and not mounted, so one bad bridge cannot
//! take Synapse down. Pure: the caller fetched the Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator_common::registration_file::{self, Registration};
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
            "Secret {name} named by the announcement does not exist, or is not labelled \
             {LABEL_REGISTERED_WITH}=<this Synapse> (only such Secrets are offered to a Synapse)"
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

/// Synapse's own checks of a registration file: each broken rule would make Synapse exit at
/// start.
fn parse_registration(bytes: &[u8]) -> Result<Registration, String> {
    let doc = registration_file::parse(bytes).map_err(|v| format!("the registration: {v}"))?;
    registration_file::check(&doc)
        .map_err(|v| format!("the registration breaks Synapse's rules: {v}"))
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
        for (kind, regex) in candidate.exclusive() {
            if let Some((_, theirs)) = other
                .exclusive()
                .find(|(k, r)| *k == kind && may_overlap(regex, r))
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
#[path = "appservice_tests.rs"]
mod tests;
