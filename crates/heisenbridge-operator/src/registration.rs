//! The bridge's app-service registration: the default one, the user's own from a ConfigMap
//! checked against Heisenbridge's and Synapse's rules, and its rendering as the file both read.
//! Pure.
//!
//! The file is rendered as JSON, which is YAML: Synapse reads it with PyYAML (YAML 1.1) and
//! Heisenbridge with ruamel.yaml (YAML 1.2), and JSON means the same to both. A user's file is
//! read with YAML 1.1 meaning ([`yaml11`]), as Synapse reads it.

use std::fmt;
use std::sync::LazyLock;

use operator_common::yaml11::{self, Value};
use regex::Regex;

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
    /// The file is not YAML.
    Yaml(yaml11::Yaml11Error),
    /// The file is not a mapping.
    NotAMapping(&'static str),
    /// A field Synapse requires as a string is missing or not a string.
    RequiredString(&'static str),
    /// Heisenbridge's rule: `sender_localpart` must be present.
    MissingSenderLocalpart,
    /// Synapse's rule: the localpart must need no URL encoding.
    SenderLocalpartNotUrlSafe(String),
    /// Synapse's rule: `namespaces` must be a mapping.
    NamespacesNotAMapping,
    /// Heisenbridge's rule: `namespaces.users` must be present.
    MissingUsersNamespace,
    /// Synapse's rule: each namespace kind holds a list.
    NamespaceNotAList(String),
    /// Synapse's rule: each namespace entry has a string `regex` and a boolean `exclusive`.
    BadNamespaceEntry {
        /// Path of the entry, e.g. `namespaces.users[0]`.
        path: String,
    },
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
                "`sender_localpart` is missing (Heisenbridge requires it: the bridge bot's \
                 localpart, e.g. heisenbridge)"
            ),
            Violation::SenderLocalpartNotUrlSafe(localpart) => write!(
                f,
                "`sender_localpart` {localpart:?} needs URL encoding, which Synapse refuses: use \
                 letters, digits and _ . - ~ / only"
            ),
            Violation::NamespacesNotAMapping => write!(
                f,
                "`namespaces` must be a mapping with a `users` list (Synapse requires it)"
            ),
            Violation::MissingUsersNamespace => write!(
                f,
                "`namespaces.users` is missing (Heisenbridge needs exactly one exclusive users \
                 namespace such as @irc_.*)"
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

/// The registration file made from a user's `heisenbridge.yaml`: checked against
/// Heisenbridge's start-up rules and the fields Synapse requires, with `url` set to the bridge's
/// Service URL. Every other field, the tokens included, is kept as the user wrote it (with the
/// YAML 1.1 meaning Synapse gives it).
pub fn user_registration(file: &str, url: &str) -> Result<String, InvalidRegistration> {
    let value = yaml11::parse(file).map_err(|e| InvalidRegistration(vec![Violation::Yaml(e)]))?;
    if !matches!(value, Value::Map(_)) {
        let what = match value {
            Value::Null => "nothing",
            Value::Seq(_) => "a list",
            _ => "a single value",
        };
        return Err(InvalidRegistration(vec![Violation::NotAMapping(what)]));
    }
    let mut violations = check(&value);
    let json = Json::from_yaml(&value, "");
    if let Err(v) = &json {
        violations.push(v.clone());
    }
    let Ok(Json::Map(mut entries)) = json else {
        return Err(InvalidRegistration(violations));
    };
    if !violations.is_empty() {
        return Err(InvalidRegistration(violations));
    }
    let url = Json::Str(url.to_owned());
    // A repeated key keeps its last value (PyYAML's meaning), so that is the one replaced.
    match entries.iter_mut().rev().find(|(k, _)| k == "url") {
        Some((_, value)) => *value = url,
        None => entries.push(("url".to_owned(), url)),
    }
    Ok(render(&Json::Map(entries)))
}

/// Every rule `registration` breaks.
fn check(registration: &Value) -> Vec<Violation> {
    let mut violations = Vec::new();
    for field in ["id", "as_token", "hs_token"] {
        if !matches!(registration.get(field), Some(Value::Str(_))) {
            violations.push(Violation::RequiredString(field));
        }
    }
    let localpart = match registration.get("sender_localpart") {
        None => {
            violations.push(Violation::MissingSenderLocalpart);
            None
        }
        Some(Value::Str(localpart)) => {
            if !localpart.chars().all(is_url_safe) {
                violations.push(Violation::SenderLocalpartNotUrlSafe(localpart.clone()));
            }
            Some(localpart.as_str())
        }
        Some(_) => {
            violations.push(Violation::RequiredString("sender_localpart"));
            None
        }
    };
    let namespaces = match registration.get("namespaces") {
        Some(namespaces @ Value::Map(_)) => namespaces,
        _ => {
            violations.push(Violation::NamespacesNotAMapping);
            return violations;
        }
    };
    let mut users = None;
    for kind in ["users", "aliases", "rooms"] {
        match namespaces.get(kind) {
            None if kind == "users" => violations.push(Violation::MissingUsersNamespace),
            None => {}
            Some(Value::Seq(entries)) => {
                for (index, entry) in entries.iter().enumerate() {
                    let well_formed = matches!(entry.get("regex"), Some(Value::Str(_)))
                        && matches!(entry.get("exclusive"), Some(Value::Bool(_)));
                    if !well_formed {
                        violations.push(Violation::BadNamespaceEntry {
                            path: format!("namespaces.{kind}[{index}]"),
                        });
                    }
                }
                if kind == "users" {
                    users = Some(entries);
                }
            }
            Some(_) => violations.push(Violation::NamespaceNotAList(kind.to_owned())),
        }
    }
    if let (Some(users), Some(localpart)) = (users, localpart) {
        check_puppet_namespace(users, localpart, &mut violations);
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

/// Characters Python's `urllib.parse.quote` leaves alone (its default safe set `/` included):
/// Synapse requires `quote(sender_localpart) == sender_localpart`.
fn is_url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '~' | '/')
}

/// A registration as JSON: a YAML 1.1 value without what JSON cannot carry, keys in order.
#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i128),
    /// Always finite.
    Float(f64),
    Str(String),
    Seq(Vec<Json>),
    Map(Vec<(String, Json)>),
}

impl Json {
    /// `value` (found at `path`) as JSON, or the first part of it JSON cannot carry.
    fn from_yaml(value: &Value, path: &str) -> Result<Self, Violation> {
        let unrepresentable = |what: String| Violation::Unrepresentable {
            path: if path.is_empty() {
                "(top level)".into()
            } else {
                path.to_owned()
            },
            what,
        };
        Ok(match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) if f.is_finite() => Json::Float(*f),
            Value::Float(f) => return Err(unrepresentable(format!("the float {f}"))),
            Value::Str(s) => Json::Str(s.clone()),
            Value::Other(what) => return Err(unrepresentable(format!("a {what}"))),
            Value::Seq(items) => Json::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Json::from_yaml(item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => Json::Map(
                entries
                    .iter()
                    .map(|(key, item)| {
                        let Value::Str(key) = key else {
                            return Err(unrepresentable(format!(
                                "a key that is a {}, not a string",
                                key.type_name()
                            )));
                        };
                        let child = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        Ok((key.clone(), Json::from_yaml(item, &child)?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// The file: indented JSON ending with a newline.
fn render(registration: &Json) -> String {
    let mut out = String::new();
    write_json(registration, 0, &mut out);
    out.push('\n');
    out
}

fn write_json(value: &Json, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => out.push_str(&i.to_string()),
        Json::Float(f) => out.push_str(&python_float(*f)),
        Json::Str(s) => out.push_str(&json_string(s)),
        Json::Seq(items) if items.is_empty() => out.push_str("[]"),
        Json::Seq(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push(']');
        }
        Json::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Json::Map(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&json_string(key));
                out.push_str(": ");
                write_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// A finite float written so that PyYAML reads it back as the same float: YAML 1.1 wants a
/// `.` in the mantissa and a sign in the exponent (`1.0e+20`, not `1e20`).
fn python_float(f: f64) -> String {
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let dot = if mantissa.contains('.') { "" } else { ".0" };
            let sign = if exponent.starts_with('-') { "" } else { "+" };
            format!("{mantissa}{dot}e{sign}{exponent}")
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://irc-heisenbridge.matrix.svc:9898";

    fn fixture(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../e2e/testdata/heisenbridge")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    fn tokens() -> Tokens {
        Tokens {
            as_token: "a".repeat(64),
            hs_token: "h".repeat(64),
        }
    }

    /// The rendered file read back with YAML 1.1 meaning, as Synapse reads it, and as JSON.
    fn reread(text: &str) -> (Value, serde_json::Value) {
        (
            yaml11::parse(text).expect("the rendered file is YAML"),
            serde_json::from_str(text).expect("the rendered file is JSON"),
        )
    }

    #[test]
    fn the_default_registration_is_heisenbridges_own_shape() {
        let text = default_registration(URL, &tokens());
        let (yaml, json) = reread(&text);
        assert_eq!(
            json,
            serde_json::json!({
                "id": "heisenbridge",
                "url": URL,
                "as_token": "a".repeat(64),
                "hs_token": "h".repeat(64),
                "rate_limited": false,
                "sender_localpart": "heisenbridge",
                "namespaces": {
                    "users": [{"regex": "@irc_.*", "exclusive": true}],
                    "aliases": [],
                    "rooms": [],
                },
            })
        );
        assert_eq!(check(&yaml), Vec::new(), "the default passes its own rules");
        assert!(
            text.starts_with("{\n  \"id\": \"heisenbridge\",\n"),
            "{text}"
        );
        assert!(text.ends_with("}\n"));
        assert_eq!(tokens_of(text.as_bytes()), Some(tokens()));
    }

    #[test]
    fn tokens_are_read_back_only_when_both_are_there() {
        assert_eq!(
            tokens_of(b"as_token: x\nhs_token: y\n").unwrap().as_token,
            "x"
        );
        assert_eq!(tokens_of(b"as_token: x\n"), None);
        assert_eq!(tokens_of(b"as_token: x\nhs_token: ''\n"), None);
        assert_eq!(tokens_of(b"as_token: [x]\nhs_token: y\n"), None);
        assert_eq!(tokens_of(b"{{{"), None);
        assert_eq!(tokens_of(&[0xff, 0xfe]), None);
        assert_eq!(format!("{:?}", tokens()), "Tokens { .. }");
    }

    #[test]
    fn a_valid_user_file_keeps_its_tokens_and_fields_and_gets_our_url() {
        let registration = user_registration(&fixture("valid.yaml"), URL).unwrap();
        let (_, json) = reread(&registration);
        assert_eq!(json["url"], URL);
        assert_eq!(json["id"], "irc-bridge");
        assert_eq!(json["as_token"], "userAsTokenFromTheConfigMap0123456789");
        assert_eq!(json["hs_token"], "userHsTokenFromTheConfigMap0123456789");
        assert_eq!(json["sender_localpart"], "ircbot");
        // YAML 1.1 meaning, as Synapse reads the user's file: `no` is false.
        assert_eq!(json["rate_limited"], false);
        assert_eq!(
            json["namespaces"]["users"],
            serde_json::json!([
                {"regex": "@ircbot:example\\.com", "exclusive": true},
                {"regex": "@ircu/.*", "exclusive": true},
            ])
        );
        assert_eq!(json["de.sorunome.msc2409.push_ephemeral"], true);
    }

    #[test]
    fn a_missing_url_is_added() {
        let file = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                    users:\n  - regex: '@x_.*'\n    exclusive: true\n";
        let (yaml, _) = reread(&user_registration(file, URL).unwrap());
        assert_eq!(yaml.get("url"), Some(&Value::Str(URL.into())));
    }

    fn violations(name: &str) -> Vec<Violation> {
        user_registration(&fixture(name), URL)
            .expect_err("the fixture breaks a rule")
            .0
    }

    #[test]
    fn each_rule_is_named() {
        assert_eq!(
            violations("no-sender-localpart.yaml"),
            [Violation::MissingSenderLocalpart]
        );
        assert_eq!(
            violations("no-users-namespace.yaml"),
            [Violation::MissingUsersNamespace]
        );
        assert_eq!(
            violations("two-users-namespaces.yaml"),
            [Violation::UsersNamespaceCount {
                found: 2,
                bot: "@heisenbridge".into()
            }]
        );
        assert_eq!(
            violations("not-exclusive.yaml"),
            [Violation::NotExclusive("@irc_.*".into())]
        );
        assert_eq!(
            violations("not-a-prefix.yaml"),
            [Violation::NotAPrefix("@irc.*".into())]
        );
        assert_eq!(
            violations("missing-tokens.yaml"),
            [
                Violation::RequiredString("as_token"),
                Violation::RequiredString("hs_token")
            ]
        );
        assert_eq!(
            violations("exclusive-not-bool.yaml"),
            [
                Violation::BadNamespaceEntry {
                    path: "namespaces.users[0]".into()
                },
                Violation::NotExclusive("@irc_.*".into()),
            ]
        );
    }

    #[test]
    fn synapse_field_rules() {
        let base = |extra: &str| {
            format!("id: x\nurl: null\nas_token: a\nhs_token: h\nsender_localpart: bot\n{extra}")
        };
        let check_file = |file: &str| match user_registration(file, URL) {
            Ok(_) => Vec::new(),
            Err(e) => e.0,
        };
        assert_eq!(check_file(&base("")), [Violation::NamespacesNotAMapping]);
        assert_eq!(
            check_file(&base("namespaces: {users: {regex: '@x_.*'}}\n")),
            [Violation::NamespaceNotAList("users".into())]
        );
        assert_eq!(
            check_file(&base(
                "namespaces:\n  users: [{regex: '@x_.*', exclusive: true}]\n  rooms: [1]\n"
            )),
            [Violation::BadNamespaceEntry {
                path: "namespaces.rooms[0]".into()
            }]
        );
        assert_eq!(
            check_file(
                "id: 5\nas_token: a\nhs_token: h\nsender_localpart: b%t\nnamespaces:\n  \
                 users: [{regex: '@x_.*', exclusive: true}]\n"
            ),
            [
                Violation::RequiredString("id"),
                Violation::SenderLocalpartNotUrlSafe("b%t".into())
            ]
        );
        // The bot's own namespace does not count; `yes` is a YAML 1.1 boolean.
        assert_eq!(
            check_file(&base(
                "namespaces:\n  users:\n  - {regex: '@bot:example.com', exclusive: yes}\n  \
                 - {regex: '@x/.+:example.com', exclusive: yes}\n"
            )),
            []
        );
    }

    #[test]
    fn files_that_are_not_registrations() {
        let reason = |file: &str| user_registration(file, URL).unwrap_err().to_string();
        assert!(reason("").contains("holds nothing instead of a mapping"));
        assert!(reason("- a\n").contains("holds a list"));
        assert!(reason("key: [unclosed\n").contains("not valid YAML"));
        let stamped = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                       users: [{regex: '@x_.*', exclusive: true}]\ncreated: 2024-01-01\n";
        assert!(
            reason(stamped).contains("`created` holds a timestamp"),
            "{}",
            reason(stamped)
        );
        let int_key = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                       users: [{regex: '@x_.*', exclusive: true}]\n1: one\n";
        assert!(
            reason(int_key).contains("not a string"),
            "{}",
            reason(int_key)
        );
    }

    #[test]
    fn floats_keep_their_yaml_1_1_meaning() {
        for (f, text) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (1e20, "1.0e+20"),
            (1.5e-7, "1.5e-7"),
        ] {
            let rendered = python_float(f);
            assert_eq!(rendered, text);
            assert_eq!(yaml11::parse(&rendered).unwrap(), Value::Float(f), "{text}");
        }
        let nan = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                   users: [{regex: '@x_.*', exclusive: true}]\nweight: .nan\n";
        let reason = user_registration(nan, URL).unwrap_err().to_string();
        assert!(reason.contains("`weight` holds the float NaN"), "{reason}");
    }

    #[test]
    fn strings_are_escaped_for_both_readers() {
        let value = Value::Map(vec![(
            Value::Str("k\"ey".into()),
            Value::Str("line\nbreak \\ \u{1} é: #x".into()),
        )]);
        let text = render(&Json::from_yaml(&value, "").unwrap());
        let (yaml, _) = reread(&text);
        assert_eq!(yaml, value);
    }
}
