//! The checks of a bridgev2 `config.yaml`: what the bridge would refuse to start with (sections
//! and values of the wrong type, unedited example values, unknown permission levels), and the
//! settings the registration is made from. Pure.

use serde_yaml::{Mapping, Value};

use crate::keys::Keys;
use crate::problems::ConfigProblem;
use crate::registration::UsernameTemplate;
use crate::yaml::{dotted, get, get_str, string};

/// `appservice.bot.username` unless the user's file names another bot.
pub const DEFAULT_BOT_USERNAME: &str = "signalbot";
/// `appservice.username_template` unless the user's file has another one.
pub const DEFAULT_USERNAME_TEMPLATE: &str = "signal_{{.}}";

/// Example values the bridge refuses to start with ("Configuration error").
const EXAMPLE_DOMAIN: &str = "example.com";
const EXAMPLE_DATABASE_URI: &str = "postgres://user:password@host/database?sslmode=disable";
pub const EXAMPLE_PERMISSION_KEYS: [&str; 3] = ["*", "example.com", "@admin:example.com"];
/// The value that makes the bridge generate a secret itself (and, with `-n`, never save it).
const GENERATE: &str = "generate";
/// The permission levels the bridge knows (case-insensitive).
const PERMISSION_LEVELS: [&str; 5] = ["block", "relay", "commands", "user", "admin"];

/// Sections that must be mappings when present: the bridge cannot decode anything else.
const SECTIONS: [&[&str]; 15] = [
    &["homeserver"],
    &["appservice"],
    &["appservice", "bot"],
    &["bridge"],
    &["bridge", "permissions"],
    &["bridge", "relay"],
    &["database"],
    &["matrix"],
    &["provisioning"],
    &["public_media"],
    &["direct_media"],
    &["double_puppet"],
    &["encryption"],
    &["logging"],
    &["network"],
];

/// Keys that must be strings when present.
const STRINGS: [&[&str]; 9] = [
    &["appservice", "bot", "username"],
    &["appservice", "bot", "avatar"],
    &["appservice", "username_template"],
    &["database", "type"],
    &["database", "uri"],
    &["encryption", "pickle_key"],
    &["provisioning", "shared_secret"],
    &["public_media", "signing_key"],
    &["direct_media", "server_key"],
];

/// The generated secrets the config holds: where, and which key of [`Keys`].
pub const SECRET_PATHS: [&[&str]; 4] = [
    &["encryption", "pickle_key"],
    &["provisioning", "shared_secret"],
    &["public_media", "signing_key"],
    &["direct_media", "server_key"],
];

/// What the operator puts into every config.
#[derive(Clone, Copy, Debug)]
pub struct Owned<'a> {
    /// `homeserver.address`: the Synapse's client URL from its status.
    pub homeserver_url: &'a str,
    /// `homeserver.domain`: the Synapse's server name from its status.
    pub domain: &'a str,
    /// `appservice.address`: the bridge's Service URL.
    pub appservice_url: &'a str,
    pub keys: &'a Keys,
    /// Matrix user IDs that get `admin` permission.
    pub admins: &'a [String],
}

impl Owned<'_> {
    /// The generated value of each of [`SECRET_PATHS`].
    pub fn secrets(&self) -> [&str; 4] {
        [
            &self.keys.pickle_key,
            &self.keys.provisioning_secret,
            &self.keys.public_media_key,
            &self.keys.direct_media_key,
        ]
    }
}

/// Who runs the bridge's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// The operator: SQLite on the bridge's data volume, or the PostgreSQL database it was given.
    Managed,
    /// The PostgreSQL database the user's file names.
    User,
}

/// What the checks found in a config the bridge accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub bot_username: String,
    pub template_text: String,
    pub username_template: UsernameTemplate,
    pub ephemeral_events: bool,
    pub msc3202: bool,
    pub msc4190: bool,
    pub database: Database,
    /// The permissions the config gets.
    pub permissions: Mapping,
    /// For each of [`SECRET_PATHS`], whether the file sets its own value.
    pub own_secrets: [bool; 4],
    pub has_logging: bool,
}

/// Checks the bridgev2-format config `view` for the Synapse and bridge of `owned`.
pub fn check(view: &Value, owned: &Owned<'_>) -> Result<Checked, ConfigProblem> {
    if owned.domain == EXAMPLE_DOMAIN {
        return Err(ConfigProblem::ExampleDomain);
    }
    for path in SECTIONS {
        if let Some(found) = get(view, path).filter(|v| !v.is_mapping()) {
            return Err(ConfigProblem::SectionNotAMapping {
                path: dotted(path),
                found: kind_of(found),
            });
        }
    }
    for path in STRINGS {
        if let Some(found) = get(view, path).filter(|v| !v.is_string()) {
            return Err(ConfigProblem::NotAString {
                path: dotted(path),
                found: kind_of(found),
            });
        }
    }
    let bot_username =
        get_str(view, &["appservice", "bot", "username"]).unwrap_or(DEFAULT_BOT_USERNAME);
    if bot_username.is_empty()
        || !bot_username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    {
        return Err(ConfigProblem::BotUsername(bot_username.to_owned()));
    }
    let template_text =
        get_str(view, &["appservice", "username_template"]).unwrap_or(DEFAULT_USERNAME_TEMPLATE);
    let username_template = UsernameTemplate::parse(template_text)
        .ok_or_else(|| ConfigProblem::UsernameTemplate(template_text.to_owned()))?;
    if let Some(avatar) = get_str(view, &["appservice", "bot", "avatar"])
        && !(avatar.is_empty() || avatar == "remove" || avatar.starts_with("mxc://"))
    {
        return Err(ConfigProblem::BotAvatar(avatar.to_owned()));
    }
    let permissions = permissions(get(view, &["bridge", "permissions"]), owned)?;
    let database = match (
        get_str(view, &["database", "type"]),
        get_str(view, &["database", "uri"]),
    ) {
        (Some("postgres"), Some(uri)) if uri != EXAMPLE_DATABASE_URI => Database::User,
        _ => Database::Managed,
    };
    let flag = |path: &[&str]| get(view, path).and_then(Value::as_bool);
    let own_secret =
        |path: &[&str]| get_str(view, path).is_some_and(|s| !s.is_empty() && s != GENERATE);
    Ok(Checked {
        bot_username: bot_username.to_owned(),
        template_text: template_text.to_owned(),
        username_template,
        ephemeral_events: flag(&["appservice", "ephemeral_events"]).unwrap_or(true),
        msc3202: flag(&["encryption", "appservice"]).unwrap_or(false),
        msc4190: flag(&["appservice", "msc4190"])
            .or_else(|| flag(&["encryption", "msc4190"]))
            .unwrap_or(false),
        database,
        permissions,
        own_secrets: SECRET_PATHS.map(own_secret),
        has_logging: get(view, &["logging"]).is_some(),
    })
}

/// What a YAML value is, for messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The permissions: the user's, or by default `*` relay and the Synapse's domain `user`; then
/// every spec admin `admin`. Refused when the bridge would refuse them.
fn permissions(user: Option<&Value>, owned: &Owned<'_>) -> Result<Mapping, ConfigProblem> {
    let mut permissions = match user {
        Some(Value::Mapping(map)) => map.clone(),
        _ => {
            let mut defaults = Mapping::new();
            defaults.insert(string("*"), string("relay"));
            defaults.insert(string(owned.domain), string("user"));
            defaults
        }
    };
    for (key, level) in &permissions {
        let known = match level {
            Value::String(name) => PERMISSION_LEVELS.contains(&name.to_lowercase().as_str()),
            // Deprecated numeric levels and explicit flag mappings are still accepted.
            Value::Number(n) => n.is_i64() || n.is_u64(),
            Value::Mapping(_) => true,
            _ => false,
        };
        if !known {
            let found = match level {
                Value::String(name) => format!("the unknown level {name:?}"),
                other => kind_of(other).to_owned(),
            };
            return Err(ConfigProblem::PermissionLevel {
                key: yaml_key(key),
                found,
            });
        }
    }
    for admin in owned.admins {
        permissions.insert(string(admin), string("admin"));
    }
    let examples = permissions
        .keys()
        .filter(|k| is_example_permission(k))
        .count();
    if permissions.len() <= examples {
        return Err(ConfigProblem::PermissionsOnlyExamples);
    }
    Ok(permissions)
}

/// Whether a permissions key is one of the bridge's example entries.
pub fn is_example_permission(key: &Value) -> bool {
    key.as_str()
        .is_some_and(|k| EXAMPLE_PERMISSION_KEYS.contains(&k))
}

/// A mapping key as text, for messages.
fn yaml_key(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}
