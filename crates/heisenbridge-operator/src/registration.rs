//! The validate step of a Heisenbridge: its app-service registration, the default one or the
//! user's own from a ConfigMap checked against Synapse's rules
//! ([`operator_common::registration_file`]) and Heisenbridge's, written as
//! [`registration_json`](crate::registration_json) renders it. Pure.
//!
//! A user's file is read with YAML 1.1 meaning ([`yaml11`]), as Synapse reads it.

use std::fmt;
use std::sync::LazyLock;

use operator_common::registration_file;
use operator_common::yaml11::{self, Value};
use regex::Regex;

use crate::registration_json::{Json, render};

/// The key of the user's registration in the input ConfigMap (the original operator's).
pub const CONFIG_MAP_KEY: &str = "heisenbridge.yaml";
/// `id` of the default registration.
pub const DEFAULT_ID: &str = "heisenbridge";
/// `sender_localpart` of the default registration: the bridge bot is @heisenbridge:SERVER.
pub const DEFAULT_SENDER_LOCALPART: &str = "heisenbridge";
/// The exclusive users namespace of the default registration: IRC users appear as @irc_NICK.
pub const DEFAULT_USERS_NAMESPACE: &str = "@irc_.*";
/// Length of generated tokens: Heisenbridge's own generator makes 64 alphanumerics.
pub const TOKEN_LENGTH: usize = 64;

/// Heisenbridge's own check of the puppets' namespace (`__main__.py`, `run`): an exact prefix
/// such as `@irc_.*` ending in a separator `_` or `/`.
static PREFIX_NAMESPACE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^@(.+)([_/])\.[*+]:?").expect("the prefix namespace regex compiles")
});

/// The app-service tokens. Their `Debug` hides them: secrets never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Token the bridge uses with Synapse.
    pub as_token: String,
    /// Token Synapse uses with the bridge.
    pub hs_token: String,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// The default registration file: Heisenbridge's own `--generate` output with this bridge's
/// URL and tokens.
pub fn default_registration(url: &str, tokens: &Tokens) -> String {
    let s = |v: &str| Json::Str(v.to_owned());
    let entry = |k: &str, v: Json| (k.to_owned(), v);
    render(&Json::Map(vec![
        entry("id", s(DEFAULT_ID)),
        entry("url", s(url)),
        entry("as_token", s(&tokens.as_token)),
        entry("hs_token", s(&tokens.hs_token)),
        entry("rate_limited", Json::Bool(false)),
        entry("sender_localpart", s(DEFAULT_SENDER_LOCALPART)),
        entry(
            "namespaces",
            Json::Map(vec![
                entry(
                    "users",
                    Json::Seq(vec![Json::Map(vec![
                        entry("regex", s(DEFAULT_USERS_NAMESPACE)),
                        entry("exclusive", Json::Bool(true)),
                    ])]),
                ),
                entry("aliases", Json::Seq(Vec::new())),
                entry("rooms", Json::Seq(Vec::new())),
            ]),
        ),
    ]))
}

/// The tokens of a registration file the operator wrote before, if it holds both.
pub fn tokens_of(registration: &[u8]) -> Option<Tokens> {
    let text = std::str::from_utf8(registration).ok()?;
    let value = yaml11::parse(text).ok()?;
    let token = |key| match value.get(key) {
        Some(Value::Str(t)) if !t.is_empty() => Some(t.clone()),
        _ => None,
    };
    Some(Tokens {
        as_token: token("as_token")?,
        hs_token: token("hs_token")?,
    })
}

/// One broken rule of a user's registration file.
#[derive(Clone, Debug, PartialEq)]
pub enum Violation {
    /// A rule of Synapse's.
    Synapse(registration_file::Violation),
    /// Heisenbridge's rule: `namespaces.users` must be present.
    MissingUsersNamespace,
    /// Heisenbridge's rule: exactly one users namespace besides the bot's own.
    UsersNamespaceCount {
        /// How many there are.
        found: usize,
        /// The bot's user ID prefix, whose namespace does not count.
        bot: String,
    },
    /// Heisenbridge's rule: the puppets' namespace is exclusive.
    NotExclusive(String),
    /// Heisenbridge's rule: the puppets' namespace is an exact prefix with a separator.
    NotAPrefix(String),
    /// A value JSON cannot carry (a timestamp, binary data, a non-string key, NaN...).
    Unrepresentable {
        /// Where it is.
        path: String,
        /// What it is.
        what: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Synapse(violation) => violation.fmt(f),
            Violation::MissingUsersNamespace => write!(
                f,
                "`namespaces.users` is missing (Heisenbridge needs exactly one exclusive users \
                 namespace such as @irc_.*)"
            ),
            Violation::UsersNamespaceCount { found, bot } => write!(
                f,
                "`namespaces.users` must hold exactly one namespace for the IRC users besides \
                 the bot's own ({bot}:...), found {found} (Heisenbridge requires it)"
            ),
            Violation::NotExclusive(regex) => write!(
                f,
                "the users namespace {regex:?} must be `exclusive: true` (Heisenbridge requires \
                 it)"
            ),
            Violation::NotAPrefix(regex) => write!(
                f,
                "the users namespace regex {regex:?} must be an exact prefix like @irc_.* that \
                 ends with a separator character (_ or /) (Heisenbridge requires it)"
            ),
            Violation::Unrepresentable { path, what } => write!(
                f,
                "`{path}` holds {what}, which a registration file cannot carry"
            ),
        }
    }
}

/// A user's registration file that breaks one or more rules.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct InvalidRegistration(pub Vec<Violation>);

impl fmt::Display for InvalidRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&rules.join("; "))
    }
}

/// The registration file made from a user's `heisenbridge.yaml`: checked against Synapse's
/// rules and Heisenbridge's start-up rules, with `url` set to the bridge's Service URL. Every
/// other field, the tokens included, is kept as the user wrote it (with the YAML 1.1 meaning
/// Synapse gives it).
pub fn user_registration(file: &str, url: &str) -> Result<String, InvalidRegistration> {
    let mut value = registration_file::parse(file.as_bytes())
        .map_err(|v| InvalidRegistration(vec![Violation::Synapse(v)]))?;
    if let Value::Map(entries) = &mut value {
        let url = Value::Str(url.to_owned());
        // A repeated key keeps its last value (PyYAML's meaning), so that is the one replaced.
        match entries
            .iter_mut()
            .rev()
            .find(|(k, _)| matches!(k, Value::Str(key) if key == "url"))
        {
            Some((_, value)) => *value = url,
            None => entries.push((Value::Str("url".to_owned()), url)),
        }
    }
    let mut violations = check(&value);
    let json = Json::from_yaml(&value, "");
    if let Err(part) = &json {
        violations.push(Violation::Unrepresentable {
            path: part.path.clone(),
            what: part.what.clone(),
        });
    }
    match json {
        Ok(json) if violations.is_empty() => Ok(render(&json)),
        _ => Err(InvalidRegistration(violations)),
    }
}

/// Every rule `registration` (a mapping) breaks: Synapse's, then Heisenbridge's.
fn check(registration: &Value) -> Vec<Violation> {
    let mut violations: Vec<Violation> = registration_file::check(registration)
        .err()
        .map(|v| v.0.into_iter().map(Violation::Synapse).collect())
        .unwrap_or_default();
    let Some(namespaces @ Value::Map(_)) = registration.get("namespaces") else {
        return violations;
    };
    match (
        namespaces.get("users"),
        registration.get("sender_localpart"),
    ) {
        (None, _) => violations.push(Violation::MissingUsersNamespace),
        (Some(Value::Seq(users)), Some(Value::Str(localpart))) => {
            check_puppet_namespace(users, localpart, &mut violations)
        }
        _ => {}
    }
    violations
}

/// Heisenbridge's rule on the users namespaces: apart from the bot's own (a regex whose part
/// before the first `:` is `@<sender_localpart>`), exactly one, exclusive, shaped like a prefix.
fn check_puppet_namespace(users: &[Value], localpart: &str, violations: &mut Vec<Violation>) {
    let bot = format!("@{localpart}");
    let puppets: Vec<&Value> = users
        .iter()
        .filter(|entry| match entry.get("regex") {
            Some(Value::Str(regex)) => regex.split(':').next() != Some(bot.as_str()),
            _ => true,
        })
        .collect();
    let [puppets] = puppets[..] else {
        violations.push(Violation::UsersNamespaceCount {
            found: puppets.len(),
            bot,
        });
        return;
    };
    let Some(Value::Str(regex)) = puppets.get("regex") else {
        return;
    };
    if puppets.get("exclusive") != Some(&Value::Bool(true)) {
        violations.push(Violation::NotExclusive(regex.clone()));
    }
    if !PREFIX_NAMESPACE.is_match(regex) {
        violations.push(Violation::NotAPrefix(regex.clone()));
    }
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "registration_fuzz_tests.rs"]
mod fuzz_tests;
