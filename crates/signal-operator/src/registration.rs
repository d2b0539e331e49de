//! The bridge's app-service registration, made from its config the way mautrix's own
//! `--generate-registration` makes it: the bot's user ID and every user ID the username
//! template can produce, both exclusive, on the Synapse's domain. Pure.
//!
//! The file is rendered as JSON, which is YAML: Synapse reads it with PyYAML (YAML 1.1), and
//! JSON means the same there as anywhere.

use std::sync::LazyLock;

use operator_common::yaml11::escape_unprintable;
use regex::Regex;
use serde::Serialize;

/// The placeholder of a username template: `{{.}}`, spaces allowed inside the braces.
static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{ *\. *\}\}").expect("the placeholder regex compiles"));

/// A username template split around its one placeholder, e.g. `signal_{{.}}` into `signal_`
/// and ``.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameTemplate {
    pub prefix: String,
    pub suffix: String,
}

impl UsernameTemplate {
    /// Splits `template`, which must hold the placeholder `{{.}}` exactly once and no other
    /// template action (then the user IDs it makes are a literal prefix, the remote ID and a
    /// literal suffix, which a namespace regex can describe exactly).
    pub fn parse(template: &str) -> Option<Self> {
        let mut matches = PLACEHOLDER.find_iter(template);
        let placeholder = matches.next()?;
        if matches.next().is_some() {
            return None;
        }
        let (prefix, suffix) = (
            &template[..placeholder.start()],
            &template[placeholder.end()..],
        );
        let has_action = |s: &str| s.contains("{{") || s.contains("}}");
        if has_action(prefix) || has_action(suffix) {
            return None;
        }
        Some(Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        })
    }
}

/// Escapes the characters Go's `regexp.QuoteMeta` escapes, which is how mautrix writes its
/// namespaces; the result means the same to Python's `re`, which Synapse uses.
pub fn quote_meta(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted
}

/// What the registration is made from: the final config's values and the generated tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrationInput<'a> {
    /// `appservice.id`.
    pub id: &'a str,
    /// `appservice.address`: the bridge's Service URL.
    pub url: &'a str,
    /// `appservice.bot.username`.
    pub bot_username: &'a str,
    pub username_template: &'a UsernameTemplate,
    /// `homeserver.domain`: the Synapse's server name.
    pub domain: &'a str,
    pub as_token: &'a str,
    pub hs_token: &'a str,
    /// `appservice.ephemeral_events`.
    pub ephemeral_events: bool,
    /// `encryption.appservice`: MSC3202 device masquerading.
    pub msc3202: bool,
    /// `encryption.msc4190`.
    pub msc4190: bool,
}

#[derive(Serialize)]
struct Registration<'a> {
    id: &'a str,
    url: &'a str,
    as_token: &'a str,
    hs_token: &'a str,
    sender_localpart: &'a str,
    rate_limited: bool,
    namespaces: Namespaces,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    receive_ephemeral: bool,
    #[serde(
        rename = "de.sorunome.msc2409.push_ephemeral",
        skip_serializing_if = "std::ops::Not::not"
    )]
    push_ephemeral: bool,
    #[serde(
        rename = "org.matrix.msc3202",
        skip_serializing_if = "std::ops::Not::not"
    )]
    msc3202: bool,
    #[serde(
        rename = "io.element.msc4190",
        skip_serializing_if = "std::ops::Not::not"
    )]
    msc4190: bool,
}

#[derive(Serialize)]
struct Namespaces {
    users: Vec<Namespace>,
    aliases: Vec<Namespace>,
    rooms: Vec<Namespace>,
}

#[derive(Serialize)]
struct Namespace {
    regex: String,
    exclusive: bool,
}

/// The exclusive users namespaces: the bot, and every user the template makes.
pub fn user_namespaces(
    bot_username: &str,
    template: &UsernameTemplate,
    domain: &str,
) -> [String; 2] {
    let domain = quote_meta(domain);
    [
        format!("^@{}:{domain}$", quote_meta(bot_username)),
        format!(
            "^@{}.*{}:{domain}$",
            quote_meta(&template.prefix),
            quote_meta(&template.suffix)
        ),
    ]
}

/// The registration file.
pub fn render_registration(input: &RegistrationInput<'_>) -> String {
    let users = user_namespaces(input.bot_username, input.username_template, input.domain)
        .into_iter()
        .map(|regex| Namespace {
            regex,
            exclusive: true,
        })
        .collect();
    let registration = Registration {
        id: input.id,
        url: input.url,
        as_token: input.as_token,
        hs_token: input.hs_token,
        // The bot is the app service's own user, so Synapse creates it and whoami with the
        // as_token answers with it.
        sender_localpart: input.bot_username,
        rate_limited: false,
        namespaces: Namespaces {
            users,
            aliases: Vec::new(),
            rooms: Vec::new(),
        },
        receive_ephemeral: input.ephemeral_events,
        push_ephemeral: input.ephemeral_events,
        msc3202: input.msc3202,
        msc4190: input.msc4190,
    };
    let file =
        serde_json::to_string_pretty(&registration).expect("a registration serialises to JSON");
    // The template's prefix and suffix are the user's: what PyYAML refuses in them is escaped.
    escape_unprintable(&file) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal_template() -> UsernameTemplate {
        UsernameTemplate::parse("signal_{{.}}").unwrap()
    }

    #[test]
    fn username_templates_split_around_their_one_placeholder() {
        assert_eq!(
            signal_template(),
            UsernameTemplate {
                prefix: "signal_".into(),
                suffix: String::new()
            }
        );
        assert_eq!(
            UsernameTemplate::parse("sig.{{ . }}.x"),
            Some(UsernameTemplate {
                prefix: "sig.".into(),
                suffix: ".x".into()
            })
        );
        for refused in [
            "signal_",
            "signal_{userid}",
            "{{.}}_{{.}}",
            "{{.}}{{if .}}x{{end}}",
            "signal_{{.Name}}",
            "x}}{{.}}",
        ] {
            assert_eq!(UsernameTemplate::parse(refused), None, "{refused}");
        }
    }

    #[test]
    fn quote_meta_escapes_like_go() {
        assert_eq!(quote_meta("matrix.example.com"), r"matrix\.example\.com");
        assert_eq!(quote_meta("[::1]:8448"), r"\[::1\]:8448");
        assert_eq!(
            quote_meta(r"a+b*c?(d)|e{f}^$\"),
            r"a\+b\*c\?\(d\)\|e\{f\}\^\$\\"
        );
        assert_eq!(quote_meta("signal_-/"), "signal_-/");
    }

    fn input<'a>(template: &'a UsernameTemplate, ephemeral: bool) -> RegistrationInput<'a> {
        RegistrationInput {
            id: "signal",
            url: "http://sig-mautrix-signal.ns.svc:29328",
            bot_username: "signalbot",
            username_template: template,
            domain: "matrix.example.com",
            as_token: "AS",
            hs_token: "HS",
            ephemeral_events: ephemeral,
            msc3202: false,
            msc4190: false,
        }
    }

    #[test]
    fn registration_covers_the_bot_and_the_puppets_exclusively() {
        let template = signal_template();
        let file = render_registration(&input(&template, true));
        let doc: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "id": "signal",
                "url": "http://sig-mautrix-signal.ns.svc:29328",
                "as_token": "AS",
                "hs_token": "HS",
                "sender_localpart": "signalbot",
                "rate_limited": false,
                "namespaces": {
                    "users": [
                        {"regex": r"^@signalbot:matrix\.example\.com$", "exclusive": true},
                        {"regex": r"^@signal_.*:matrix\.example\.com$", "exclusive": true},
                    ],
                    "aliases": [],
                    "rooms": [],
                },
                "receive_ephemeral": true,
                "de.sorunome.msc2409.push_ephemeral": true,
            })
        );
        assert!(file.ends_with("}\n"));
        // The same input renders the same bytes: the content hash is stable.
        assert_eq!(file, render_registration(&input(&template, true)));
    }

    #[test]
    fn optional_flags_follow_the_config() {
        let template = UsernameTemplate::parse("sg-{{.}}-x").unwrap();
        let mut flags = input(&template, false);
        flags.msc3202 = true;
        flags.msc4190 = true;
        let doc: serde_json::Value = serde_json::from_str(&render_registration(&flags)).unwrap();
        assert!(doc.get("receive_ephemeral").is_none());
        assert_eq!(doc["org.matrix.msc3202"], true);
        assert_eq!(doc["io.element.msc4190"], true);
        assert_eq!(
            doc["namespaces"]["users"][1]["regex"],
            r"^@sg-.*-x:matrix\.example\.com$"
        );
    }

    #[test]
    fn the_puppet_namespace_matches_what_the_template_makes_and_nothing_else() {
        let [bot, puppets] = user_namespaces("signalbot", &signal_template(), "matrix.example.com");
        let bot = Regex::new(&bot).unwrap();
        let puppets = Regex::new(&puppets).unwrap();
        assert!(bot.is_match("@signalbot:matrix.example.com"));
        assert!(!bot.is_match("@signalbot:matrixxexample.com"));
        assert!(puppets.is_match("@signal_0a1b2c3d-4e5f:matrix.example.com"));
        assert!(!puppets.is_match("@signalbot:matrix.example.com"));
        assert!(!puppets.is_match("@signal_x:other.example.com"));
    }
}
