//! Synapse's rules for an app-service registration file, as its loader (`_load_appservice` and
//! the namespace checks) applies them when it reads `app_service_config_files`: a file breaking
//! one makes Synapse exit at start. The one place these rules live: the synapse-operator checks
//! every registration announced to it with them (a broken one is not mounted), and a bridge
//! operator checks a user's own registration with them before announcing it.
//!
//! The file is read with YAML 1.1 meaning ([`yaml11`]), as Synapse reads it.

use std::fmt;

use crate::yaml11::{self, Value};

/// The namespace kinds of a registration.
pub const NAMESPACE_KINDS: [&str; 3] = ["users", "aliases", "rooms"];

/// What the checks across registrations need of a valid one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub id: String,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    /// Every namespace: kind (`users`, `aliases`, `rooms`), regex, exclusive.
    pub namespaces: Vec<(String, String, bool)>,
}

impl Registration {
    /// The exclusive namespaces: (kind, regex).
    pub fn exclusive(&self) -> impl Iterator<Item = (&str, &str)> {
        self.namespaces
            .iter()
            .filter(|(_, _, exclusive)| *exclusive)
            .map(|(kind, regex, _)| (kind.as_str(), regex.as_str()))
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// The file is not UTF-8 text.
    NotText,
    /// The file is not YAML.
    Yaml(yaml11::Yaml11Error),
    /// The file is not a mapping; what it holds instead.
    NotAMapping(&'static str),
    /// A field Synapse requires as a string is missing or not a string.
    RequiredString(&'static str),
    /// `sender_localpart` is missing.
    MissingSenderLocalpart,
    /// `url` is neither a string nor null.
    UrlNotAString,
    /// The localpart needs URL encoding, which Synapse refuses.
    SenderLocalpartNotUrlSafe(String),
    /// `namespaces` is not a mapping.
    NamespacesNotAMapping,
    /// A namespace kind does not hold a list.
    NamespaceNotAList(String),
    /// A namespace entry lacks a string `regex` or a boolean `exclusive`.
    BadNamespaceEntry { path: String },
    /// A namespace regex does not compile.
    BadRegex {
        path: String,
        regex: String,
        error: String,
    },
    /// `protocols` is not a list of strings.
    ProtocolsNotStrings,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotText => f.write_str("it is not UTF-8 text"),
            Violation::Yaml(e) => write!(f, "it is not valid YAML: {e}"),
            Violation::NotAMapping(what) => write!(
                f,
                "it holds {what} instead of a mapping of registration fields (id, as_token, \
                 hs_token, sender_localpart, namespaces)"
            ),
            Violation::RequiredString(field) => {
                write!(f, "`{field}` must be a string (Synapse requires it)")
            }
            Violation::MissingSenderLocalpart => write!(
                f,
                "`sender_localpart` is missing (Synapse requires it: the localpart of the \
                 bridge's bot user, e.g. heisenbridge)"
            ),
            Violation::UrlNotAString => {
                write!(
                    f,
                    "`url` must be a string, or explicitly null (Synapse requires it)"
                )
            }
            Violation::SenderLocalpartNotUrlSafe(localpart) => write!(
                f,
                "`sender_localpart` {localpart:?} needs URL encoding, which Synapse refuses: use \
                 letters, digits and _ . - ~ / only"
            ),
            Violation::NamespacesNotAMapping => write!(
                f,
                "`namespaces` must be a mapping of users, aliases and rooms lists (Synapse \
                 requires it)"
            ),
            Violation::NamespaceNotAList(kind) => {
                write!(
                    f,
                    "`namespaces.{kind}` must be a list (Synapse requires it)"
                )
            }
            Violation::BadNamespaceEntry { path } => write!(
                f,
                "`{path}` must be a mapping with a string `regex` and a boolean `exclusive` \
                 (true or false; Synapse requires it)"
            ),
            Violation::BadRegex { path, regex, error } => {
                write!(
                    f,
                    "the regex {regex:?} of `{path}` does not compile: {error}"
                )
            }
            Violation::ProtocolsNotStrings => {
                f.write_str("`protocols` must be a list of strings (Synapse requires it)")
            }
        }
    }
}

/// The broken rules of one file, in the order Synapse's loader meets them.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&rules.join("; "))
    }
}

/// Reads a registration file's bytes: UTF-8, YAML, a mapping.
pub fn parse(bytes: &[u8]) -> Result<Value, Violation> {
    let text = std::str::from_utf8(bytes).map_err(|_| Violation::NotText)?;
    let doc = yaml11::parse(text).map_err(Violation::Yaml)?;
    match doc {
        Value::Map(_) => Ok(doc),
        Value::Null => Err(Violation::NotAMapping("nothing")),
        Value::Seq(_) => Err(Violation::NotAMapping("a list")),
        _ => Err(Violation::NotAMapping("a single value")),
    }
}

/// Every rule of Synapse's that the registration `doc` (a mapping) breaks, or what the
/// cross-registration checks need of it.
pub fn check(doc: &Value) -> Result<Registration, Violations> {
    let mut violations = Vec::new();
    let mut string = |field: &'static str| match doc.get(field) {
        Some(Value::Str(s)) => Some(s.clone()),
        None if field == "sender_localpart" => {
            violations.push(Violation::MissingSenderLocalpart);
            None
        }
        _ => {
            violations.push(Violation::RequiredString(field));
            None
        }
    };
    let (id, as_token, hs_token, localpart) = (
        string("id"),
        string("as_token"),
        string("hs_token"),
        string("sender_localpart"),
    );
    if !matches!(doc.get("url"), Some(Value::Str(_) | Value::Null)) {
        violations.push(Violation::UrlNotAString);
    }
    if let Some(localpart) = &localpart
        && !localpart.chars().all(is_url_safe)
    {
        violations.push(Violation::SenderLocalpartNotUrlSafe(localpart.clone()));
    }
    let namespaces = namespaces(doc, &mut violations);
    if let Some(protocols) = doc.get("protocols")
        && protocols.is_truthy()
        && !matches!(protocols, Value::Seq(items) if items.iter().all(|p| matches!(p, Value::Str(_))))
    {
        violations.push(Violation::ProtocolsNotStrings);
    }
    match (id, as_token, hs_token, localpart) {
        (Some(id), Some(as_token), Some(hs_token), Some(sender_localpart))
            if violations.is_empty() =>
        {
            Ok(Registration {
                id,
                as_token,
                hs_token,
                sender_localpart,
                namespaces,
            })
        }
        _ => Err(Violations(violations)),
    }
}

/// The namespaces of `doc`; their broken rules go to `violations`.
fn namespaces(doc: &Value, violations: &mut Vec<Violation>) -> Vec<(String, String, bool)> {
    let Some(Value::Map(_)) = doc.get("namespaces") else {
        violations.push(Violation::NamespacesNotAMapping);
        return Vec::new();
    };
    let mut found = Vec::new();
    for kind in NAMESPACE_KINDS {
        let entries = match doc.get("namespaces").and_then(|n| n.get(kind)) {
            None => continue,
            Some(Value::Seq(entries)) => entries,
            Some(_) => {
                violations.push(Violation::NamespaceNotAList(kind.to_owned()));
                continue;
            }
        };
        for (index, entry) in entries.iter().enumerate() {
            let path = format!("namespaces.{kind}[{index}]");
            let (Some(Value::Str(regex)), Some(Value::Bool(exclusive))) =
                (entry.get("regex"), entry.get("exclusive"))
            else {
                violations.push(Violation::BadNamespaceEntry { path });
                continue;
            };
            if let Err(error) = fancy_regex::Regex::new(regex) {
                violations.push(Violation::BadRegex {
                    path,
                    regex: regex.clone(),
                    error: error.to_string(),
                });
                continue;
            }
            found.push((kind.to_owned(), regex.clone(), *exclusive));
        }
    }
    found
}

/// Characters Python's `urllib.parse.quote` leaves alone (its default safe set `/` included):
/// Synapse requires `quote(sender_localpart) == sender_localpart`.
fn is_url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '~' | '/')
}

#[cfg(test)]
#[path = "registration_file_tests.rs"]
mod tests;
