//! The bridge's `config.yaml` in the bridgev2 format that mautrix-signal v26 reads. Pure.
//!
//! With no input file the operator writes the whole configuration. With a user's file, that file
//! is the base: a legacy one is first migrated ([`crate::legacy`]), then the operator checks
//! what the bridge would refuse, sets the keys it owns and keeps the rest. The file only holds
//! what differs from the bridge's built-in example config: at start, the bridge's config
//! upgrader lays the file over that example, key by key.
//!
//! Owned keys: `homeserver.address`, `.domain` and `.software` (from `Synapse.status`),
//! `appservice.address` (the bridge's Service), `.hostname`, `.port`, `.id` and the tokens, and
//! `database` (SQLite, or the PostgreSQL database the operator was given) unless the user's file
//! names a PostgreSQL database of its own. A config is made in two steps: [`default_config`] or
//! [`user_config`] check it and set the rest, telling whether the file has its own database;
//! [`Prepared::finish`] then writes the database section the operator chose. The generated
//! secrets (`encryption.pickle_key`, `provisioning.shared_secret`, `public_media.signing_key`,
//! `direct_media.server_key`) are the operator's unless the user's file sets its own.

use std::fmt;

use operator_common::database::Connection;
use serde_yaml::{Mapping, Value};

use crate::database::{POSTGRES_TYPE, postgres_uri};
use crate::keys::Keys;
use crate::legacy::{self, Migration};
use crate::registration::{RegistrationInput, UsernameTemplate};
use crate::yaml::{dotted, get, get_str, set, string};

/// The key of the user's config in the input ConfigMap (the original operator's).
pub const CONFIG_MAP_KEY: &str = "config.yaml";
/// `appservice.id`.
pub const APPSERVICE_ID: &str = "signal";
/// `appservice.bot.username` unless the user's file names another bot.
pub const DEFAULT_BOT_USERNAME: &str = "signalbot";
/// `appservice.username_template` unless the user's file has another one.
pub const DEFAULT_USERNAME_TEMPLATE: &str = "signal_{{.}}";
/// The port the bridge listens on for Synapse's transactions (mautrix-signal's own default).
pub const PORT: u16 = 29328;
/// The bridge's SQLite database, on its own data volume.
pub const SQLITE_URI: &str = "file:/data/mautrix-signal.db?_txlock=immediate";
/// The database type mautrix requires for SQLite.
pub const SQLITE_TYPE: &str = "sqlite3-fk-wal";

/// Example values the bridge refuses to start with ("Configuration error").
const EXAMPLE_DOMAIN: &str = "example.com";
const EXAMPLE_DATABASE_URI: &str = "postgres://user:password@host/database?sslmode=disable";
const EXAMPLE_PERMISSION_KEYS: [&str; 3] = ["*", "example.com", "@admin:example.com"];
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

/// Who runs the bridge's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// The operator: SQLite on the bridge's data volume, or the PostgreSQL database it was given.
    Managed,
    /// The PostgreSQL database the user's file names.
    User,
}

/// The `database` section the operator writes when the file names no database of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorDatabase<'a> {
    /// SQLite on the bridge's data volume.
    Sqlite,
    /// A PostgreSQL database, reached without a password in the file (`PGPASSWORD`).
    Postgres(&'a Connection),
}

/// A config the bridge accepts, with every owned key set but `database`.
#[derive(Clone, PartialEq)]
pub struct Prepared {
    root: Mapping,
    bot_username: String,
    username_template: UsernameTemplate,
    ephemeral_events: bool,
    msc3202: bool,
    msc4190: bool,
    database: Database,
    migration: Option<Migration>,
}

impl fmt::Debug for Prepared {
    // The mapping holds the tokens: it never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("database", &self.database)
            .field("migration", &self.migration)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Whether the file names a PostgreSQL database of its own.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The config with the operator's `database` section. A file with a database of its own
    /// keeps it whatever `database` says: the controller never combines the two.
    pub fn finish(self, database: OperatorDatabase<'_>) -> BridgeConfig {
        let mut root = self.root;
        if self.database == Database::Managed {
            let (kind, uri) = match database {
                OperatorDatabase::Sqlite => (SQLITE_TYPE, SQLITE_URI.to_owned()),
                OperatorDatabase::Postgres(connection) => (POSTGRES_TYPE, postgres_uri(connection)),
            };
            let mut section = Mapping::new();
            section.insert(string("type"), string(kind));
            section.insert(string("uri"), string(uri));
            set(&mut root, &["database"], Value::Mapping(section));
        }
        let body = serde_yaml::to_string(&Value::Mapping(root))
            .expect("a mapping of YAML values serialises");
        BridgeConfig {
            file: format!(
                "# mautrix-signal configuration written by the signal-operator. Do not edit: it is\n\
                 # rewritten from the MautrixSignal (and its spec.configMap) at every change.\n{body}"
            ),
            bot_username: self.bot_username,
            username_template: self.username_template,
            ephemeral_events: self.ephemeral_events,
            msc3202: self.msc3202,
            msc4190: self.msc4190,
            database: self.database,
            migration: self.migration,
        }
    }
}

/// A config the bridge accepts, and what the registration is made from.
#[derive(Clone, PartialEq)]
pub struct BridgeConfig {
    /// The `config.yaml` file.
    pub file: String,
    pub bot_username: String,
    pub username_template: UsernameTemplate,
    pub ephemeral_events: bool,
    pub msc3202: bool,
    pub msc4190: bool,
    pub database: Database,
    /// Set when the input was a legacy file.
    pub migration: Option<Migration>,
}

impl fmt::Debug for BridgeConfig {
    // The file holds the tokens and perhaps database credentials: it never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("bot_username", &self.bot_username)
            .field("username_template", &self.username_template)
            .field("database", &self.database)
            .field("migration", &self.migration)
            .finish_non_exhaustive()
    }
}

impl BridgeConfig {
    /// What the registration is made from.
    pub fn registration_input<'a>(&'a self, owned: &Owned<'a>) -> RegistrationInput<'a> {
        RegistrationInput {
            id: APPSERVICE_ID,
            url: owned.appservice_url,
            bot_username: &self.bot_username,
            username_template: &self.username_template,
            domain: owned.domain,
            as_token: &owned.keys.as_token,
            hs_token: &owned.keys.hs_token,
            ephemeral_events: self.ephemeral_events,
            msc3202: self.msc3202,
            msc4190: self.msc4190,
        }
    }
}

/// Why a config cannot be used; each would make the bridge refuse to start (or, for the
/// username template, make its users impossible to register).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("it is not valid YAML: {0}")]
    Yaml(String),
    #[error("it is empty")]
    Empty,
    #[error(
        "it holds {0} instead of a mapping of config sections (homeserver, appservice, bridge, \
         database, ...)"
    )]
    NotAMapping(&'static str),
    #[error("`{path}` must be a mapping of settings, not {found}")]
    SectionNotAMapping { path: String, found: &'static str },
    #[error("`{path}` must be a string, not {found}")]
    NotAString { path: String, found: &'static str },
    #[error(
        "`appservice.username_template` {0:?} must contain the placeholder {{{{.}}}} exactly \
         once and no other template action, e.g. signal_{{{{.}}}}"
    )]
    UsernameTemplate(String),
    #[error(
        "`appservice.bot.username` {0:?} is not a usable Matrix localpart: use lower-case \
         letters, digits and . _ - / only"
    )]
    BotUsername(String),
    #[error("`appservice.bot.avatar` {0:?} must be an mxc:// URI, \"remove\" or empty")]
    BotAvatar(String),
    #[error(
        "`bridge.permissions` entry {key:?} has {found}; use one of block, relay, commands, \
         user, admin (or a mapping of permission flags)"
    )]
    PermissionLevel { key: String, found: String },
    #[error(
        "`bridge.permissions` only has the example entries (*, example.com, \
         @admin:example.com), which the bridge refuses as an unedited example: add your \
         server or users, or list admins in spec.admins"
    )]
    PermissionsOnlyExamples,
    #[error(
        "the Synapse's server name is example.com, which mautrix-signal refuses as the unedited \
         example value of homeserver.domain: the bridge cannot run with this Synapse"
    )]
    ExampleDomain,
    /// Holds only the URI's scheme: the rest may carry a password.
    #[error(
        "the legacy `appservice.database` is a {0:?} URI, neither postgres:// nor sqlite:, so \
         it cannot be carried over to `database`"
    )]
    LegacyDatabase(String),
}

/// The config when the user gave no file.
pub fn default_config(owned: &Owned<'_>) -> Result<Prepared, ConfigProblem> {
    prepare(Mapping::new(), owned, None)
}

/// The config made from the user's `config.yaml`, migrated first if it is a legacy file.
pub fn user_config(file: &str, owned: &Owned<'_>) -> Result<Prepared, ConfigProblem> {
    let root = match serde_yaml::from_str::<Value>(file) {
        Err(e) => return Err(ConfigProblem::Yaml(e.to_string())),
        Ok(Value::Mapping(root)) => root,
        Ok(Value::Null) => return Err(ConfigProblem::Empty),
        Ok(other) => return Err(ConfigProblem::NotAMapping(kind_of(&other))),
    };
    match legacy::detect(&root) {
        None => prepare(root, owned, None),
        Some(format) => {
            let (migrated, migration) = legacy::migrate(&root, format)?;
            prepare(migrated, owned, Some(migration))
        }
    }
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

/// Checks a bridgev2-format mapping and sets the owned keys but `database`.
fn prepare(
    mut root: Mapping,
    owned: &Owned<'_>,
    migration: Option<Migration>,
) -> Result<Prepared, ConfigProblem> {
    if owned.domain == EXAMPLE_DOMAIN {
        return Err(ConfigProblem::ExampleDomain);
    }
    let view = Value::Mapping(root.clone());
    for path in SECTIONS {
        if let Some(found) = get(&view, path).filter(|v| !v.is_mapping()) {
            return Err(ConfigProblem::SectionNotAMapping {
                path: dotted(path),
                found: kind_of(found),
            });
        }
    }
    for path in STRINGS {
        if let Some(found) = get(&view, path).filter(|v| !v.is_string()) {
            return Err(ConfigProblem::NotAString {
                path: dotted(path),
                found: kind_of(found),
            });
        }
    }

    let bot_username =
        get_str(&view, &["appservice", "bot", "username"]).unwrap_or(DEFAULT_BOT_USERNAME);
    if bot_username.is_empty()
        || !bot_username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    {
        return Err(ConfigProblem::BotUsername(bot_username.to_owned()));
    }
    let template_text =
        get_str(&view, &["appservice", "username_template"]).unwrap_or(DEFAULT_USERNAME_TEMPLATE);
    let username_template = UsernameTemplate::parse(template_text)
        .ok_or_else(|| ConfigProblem::UsernameTemplate(template_text.to_owned()))?;
    if let Some(avatar) = get_str(&view, &["appservice", "bot", "avatar"])
        && !(avatar.is_empty() || avatar == "remove" || avatar.starts_with("mxc://"))
    {
        return Err(ConfigProblem::BotAvatar(avatar.to_owned()));
    }
    let permissions = permissions(get(&view, &["bridge", "permissions"]), owned)?;
    let database = match (
        get_str(&view, &["database", "type"]),
        get_str(&view, &["database", "uri"]),
    ) {
        (Some("postgres"), Some(uri)) if uri != EXAMPLE_DATABASE_URI => Database::User,
        _ => Database::Managed,
    };
    let flag = |path: &[&str]| get(&view, path).and_then(Value::as_bool);
    let ephemeral_events = flag(&["appservice", "ephemeral_events"]).unwrap_or(true);
    let msc3202 = flag(&["encryption", "appservice"]).unwrap_or(false);
    let msc4190 = flag(&["appservice", "msc4190"])
        .or_else(|| flag(&["encryption", "msc4190"]))
        .unwrap_or(false);
    let own_secret =
        |path: &[&str]| get_str(&view, path).is_some_and(|s| !s.is_empty() && s != GENERATE);
    let secrets = [
        (
            &["encryption", "pickle_key"][..],
            &owned.keys.pickle_key,
            own_secret(&["encryption", "pickle_key"]),
        ),
        (
            &["provisioning", "shared_secret"],
            &owned.keys.provisioning_secret,
            own_secret(&["provisioning", "shared_secret"]),
        ),
        (
            &["public_media", "signing_key"],
            &owned.keys.public_media_key,
            own_secret(&["public_media", "signing_key"]),
        ),
        (
            &["direct_media", "server_key"],
            &owned.keys.direct_media_key,
            own_secret(&["direct_media", "server_key"]),
        ),
    ];
    let has_logging = get(&view, &["logging"]).is_some();
    let bot_username = bot_username.to_owned();
    let template_text = template_text.to_owned();

    set(
        &mut root,
        &["homeserver", "address"],
        string(owned.homeserver_url),
    );
    set(&mut root, &["homeserver", "domain"], string(owned.domain));
    set(&mut root, &["homeserver", "software"], string("standard"));
    set(
        &mut root,
        &["appservice", "address"],
        string(owned.appservice_url),
    );
    set(&mut root, &["appservice", "hostname"], string("0.0.0.0"));
    set(&mut root, &["appservice", "port"], Value::from(PORT));
    set(&mut root, &["appservice", "id"], string(APPSERVICE_ID));
    set(
        &mut root,
        &["appservice", "bot", "username"],
        string(&bot_username),
    );
    set(
        &mut root,
        &["appservice", "as_token"],
        string(&owned.keys.as_token),
    );
    set(
        &mut root,
        &["appservice", "hs_token"],
        string(&owned.keys.hs_token),
    );
    set(
        &mut root,
        &["appservice", "username_template"],
        string(template_text),
    );
    set(
        &mut root,
        &["bridge", "permissions"],
        Value::Mapping(permissions),
    );
    for (path, generated, users_own) in secrets {
        if !users_own {
            set(&mut root, path, string(generated));
        }
    }
    if !has_logging {
        set(&mut root, &["logging"], default_logging());
    }

    Ok(Prepared {
        root,
        bot_username,
        username_template,
        ephemeral_events,
        msc3202,
        msc4190,
        database,
        migration,
    })
}

/// Logging to the container's standard output, where `kubectl logs` reads it.
fn default_logging() -> Value {
    serde_yaml::from_str("min_level: info\nwriters:\n  - type: stdout\n    format: pretty\n")
        .expect("the default logging section parses")
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
        .filter(|k| {
            k.as_str()
                .is_some_and(|k| EXAMPLE_PERMISSION_KEYS.contains(&k))
        })
        .count();
    if permissions.len() <= examples {
        return Err(ConfigProblem::PermissionsOnlyExamples);
    }
    Ok(permissions)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn keys() -> Keys {
        Keys {
            as_token: "as-token-value".into(),
            hs_token: "hs-token-value".into(),
            pickle_key: "pickle-key-value".into(),
            provisioning_secret: "provisioning-value".into(),
            public_media_key: "public-media-value".into(),
            direct_media_key: "ed25519 a_abCD AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".into(),
        }
    }

    fn owned<'a>(keys: &'a Keys, admins: &'a [String]) -> Owned<'a> {
        Owned {
            homeserver_url: "http://hs.ns.svc:8008",
            domain: "matrix.example.org",
            appservice_url: "http://sig-mautrix-signal.ns.svc:29328",
            keys,
            admins,
        }
    }

    /// The config with the operator's SQLite database.
    fn sqlite(prepared: Result<Prepared, ConfigProblem>) -> BridgeConfig {
        prepared.unwrap().finish(OperatorDatabase::Sqlite)
    }

    fn parsed(config: &BridgeConfig) -> Value {
        serde_yaml::from_str(&config.file).unwrap()
    }

    fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
        let path: Vec<&str> = path.split('.').collect();
        get(doc, &path).unwrap_or_else(|| panic!("{} is not set", path.join(".")))
    }

    #[test]
    fn default_config_has_every_owned_key_and_nothing_the_bridge_refuses() {
        let keys = keys();
        let admins = vec!["@alice:matrix.example.org".to_owned()];
        let config = sqlite(default_config(&owned(&keys, &admins)));
        let doc = parsed(&config);
        for (path, want) in [
            ("homeserver.address", "http://hs.ns.svc:8008"),
            ("homeserver.domain", "matrix.example.org"),
            ("homeserver.software", "standard"),
            (
                "appservice.address",
                "http://sig-mautrix-signal.ns.svc:29328",
            ),
            ("appservice.hostname", "0.0.0.0"),
            ("appservice.id", "signal"),
            ("appservice.bot.username", "signalbot"),
            ("appservice.as_token", "as-token-value"),
            ("appservice.hs_token", "hs-token-value"),
            ("appservice.username_template", "signal_{{.}}"),
            ("database.type", "sqlite3-fk-wal"),
            (
                "database.uri",
                "file:/data/mautrix-signal.db?_txlock=immediate",
            ),
            ("encryption.pickle_key", "pickle-key-value"),
            ("provisioning.shared_secret", "provisioning-value"),
            ("public_media.signing_key", "public-media-value"),
            ("direct_media.server_key", keys.direct_media_key.as_str()),
            ("logging.writers", ""),
        ] {
            let found = at(&doc, path);
            if !want.is_empty() {
                assert_eq!(found.as_str(), Some(want), "{path}");
            }
        }
        assert_eq!(at(&doc, "appservice.port"), &Value::from(29328));
        assert_eq!(
            at(&doc, "logging.writers")[0]["type"].as_str(),
            Some("stdout")
        );
        let permissions: Mapping =
            serde_yaml::from_value(at(&doc, "bridge.permissions").clone()).unwrap();
        let expected: Mapping = serde_yaml::from_str(
            "'*': relay\nmatrix.example.org: user\n'@alice:matrix.example.org': admin\n",
        )
        .unwrap();
        assert_eq!(permissions, expected);
        assert_eq!(config.bot_username, "signalbot");
        assert_eq!(config.database, Database::Managed);
        assert!(config.ephemeral_events && !config.msc3202 && !config.msc4190);
        assert_eq!(config.migration, None);
        assert!(config.file.starts_with("# mautrix-signal configuration"));
        // Stable: the same inputs give the same bytes, so a steady state writes nothing.
        assert_eq!(
            config.file,
            sqlite(default_config(&owned(&keys, &admins))).file
        );
        assert!(!format!("{config:?}").contains("as-token-value"));
    }

    #[test]
    fn without_admins_the_domain_entry_still_configures_permissions() {
        let keys = keys();
        let config = sqlite(default_config(&owned(&keys, &[])));
        let doc = parsed(&config);
        assert_eq!(
            at(&doc, "bridge.permissions").as_mapping().unwrap().len(),
            2
        );
    }

    #[test]
    fn the_example_domain_is_refused() {
        let keys = keys();
        let mut o = owned(&keys, &[]);
        o.domain = "example.com";
        assert_eq!(default_config(&o), Err(ConfigProblem::ExampleDomain));
    }

    const MODERN: &str = r#"
network:
    displayname_template: '{{.ProfileName}} (Signal)'
    device_name: my-bridge
homeserver:
    address: http://old-synapse:8008
    domain: old.example.org
    software: standard
    async_media: true
appservice:
    address: http://localhost:29328
    hostname: 127.0.0.1
    port: 8080
    id: not-signal
    bot:
        username: sigbot
        displayname: My Signal bot
        avatar: mxc://example.org/abc
    ephemeral_events: false
    as_token: users-as-token
    hs_token: users-hs-token
    username_template: sig_{{.}}
bridge:
    command_prefix: '!sig'
    permissions:
        '*': relay
        matrix.example.org: user
        '@bob:matrix.example.org': admin
encryption:
    allow: true
    appservice: true
    pickle_key: users-own-pickle-key
provisioning:
    shared_secret: generate
database:
    type: postgres
    uri: postgres://signal:pw@db.example.org/signal?sslmode=require
logging:
    min_level: debug
    writers:
        - type: stdout
          format: json
"#;

    #[test]
    fn a_modern_file_keeps_its_keys_and_gets_the_owned_ones() {
        let keys = keys();
        let admins = vec!["@alice:matrix.example.org".to_owned()];
        let config = sqlite(user_config(MODERN, &owned(&keys, &admins)));
        let doc = parsed(&config);
        // Owned.
        for (path, want) in [
            ("homeserver.address", "http://hs.ns.svc:8008"),
            ("homeserver.domain", "matrix.example.org"),
            (
                "appservice.address",
                "http://sig-mautrix-signal.ns.svc:29328",
            ),
            ("appservice.hostname", "0.0.0.0"),
            ("appservice.id", "signal"),
            ("appservice.as_token", "as-token-value"),
            ("appservice.hs_token", "hs-token-value"),
            // "generate" would make a new secret at every start: the operator's instead.
            ("provisioning.shared_secret", "provisioning-value"),
        ] {
            assert_eq!(at(&doc, path).as_str(), Some(want), "{path}");
        }
        assert_eq!(at(&doc, "appservice.port"), &Value::from(29328));
        // Kept.
        for (path, want) in [
            ("network.displayname_template", "{{.ProfileName}} (Signal)"),
            ("network.device_name", "my-bridge"),
            ("appservice.bot.username", "sigbot"),
            ("appservice.bot.displayname", "My Signal bot"),
            ("appservice.username_template", "sig_{{.}}"),
            ("bridge.command_prefix", "!sig"),
            ("encryption.pickle_key", "users-own-pickle-key"),
            ("database.type", "postgres"),
            (
                "database.uri",
                "postgres://signal:pw@db.example.org/signal?sslmode=require",
            ),
            ("logging.min_level", "debug"),
        ] {
            assert_eq!(at(&doc, path).as_str(), Some(want), "{path}");
        }
        assert_eq!(at(&doc, "homeserver.async_media"), &Value::Bool(true));
        assert_eq!(
            at(&doc, "bridge.permissions")["@bob:matrix.example.org"].as_str(),
            Some("admin")
        );
        assert_eq!(
            at(&doc, "bridge.permissions")["@alice:matrix.example.org"].as_str(),
            Some("admin")
        );
        assert_eq!(config.database, Database::User);
        assert_eq!(config.bot_username, "sigbot");
        assert_eq!(
            config.username_template,
            UsernameTemplate::parse("sig_{{.}}").unwrap()
        );
        assert!(!config.ephemeral_events && config.msc3202 && !config.msc4190);
        assert_eq!(config.migration, None);
    }

    #[test]
    fn an_unconfigured_database_or_sqlite_is_managed_by_the_operator() {
        let keys = keys();
        for database in [
            "database:\n  type: postgres\n  uri: postgres://user:password@host/database?sslmode=disable\n",
            "database:\n  type: sqlite3\n  uri: /somewhere/else.db\n",
            "database:\n  type: sqlite3-fk-wal\n  uri: file:/data/x.db\n",
            "homeserver: {}\n",
        ] {
            let config = sqlite(user_config(database, &owned(&keys, &[])));
            let doc = parsed(&config);
            assert_eq!(config.database, Database::Managed, "{database}");
            assert_eq!(at(&doc, "database.uri").as_str(), Some(SQLITE_URI));
            assert_eq!(at(&doc, "database.type").as_str(), Some(SQLITE_TYPE));
        }
    }

    #[test]
    fn files_that_cannot_be_understood_say_why() {
        let keys = keys();
        let problem = |file: &str| user_config(file, &owned(&keys, &[])).unwrap_err();
        assert!(matches!(problem("a: [1, 2"), ConfigProblem::Yaml(_)));
        assert!(matches!(problem("a: 1\na: 2\n"), ConfigProblem::Yaml(_)));
        assert_eq!(problem(""), ConfigProblem::Empty);
        assert_eq!(problem("# only a comment\n"), ConfigProblem::Empty);
        assert_eq!(problem("- a\n- b\n"), ConfigProblem::NotAMapping("a list"));
        assert_eq!(
            problem("just some text"),
            ConfigProblem::NotAMapping("a string")
        );
        assert_eq!(
            problem("appservice: 5\n"),
            ConfigProblem::SectionNotAMapping {
                path: "appservice".into(),
                found: "a number"
            }
        );
        assert_eq!(
            problem("bridge:\n  permissions: [relay]\n"),
            ConfigProblem::SectionNotAMapping {
                path: "bridge.permissions".into(),
                found: "a list"
            }
        );
        assert_eq!(
            problem("appservice:\n  bot:\n    username: [a]\n"),
            ConfigProblem::NotAString {
                path: "appservice.bot.username".into(),
                found: "a list"
            }
        );
        assert_eq!(
            problem("appservice:\n  username_template: signal_x\n"),
            ConfigProblem::UsernameTemplate("signal_x".into())
        );
        assert_eq!(
            problem("appservice:\n  bot:\n    username: Signal Bot\n"),
            ConfigProblem::BotUsername("Signal Bot".into())
        );
        assert_eq!(
            problem("appservice:\n  bot:\n    avatar: https://example.org/a.png\n"),
            ConfigProblem::BotAvatar("https://example.org/a.png".into())
        );
        assert_eq!(
            problem("bridge:\n  permissions:\n    '*': superuser\n"),
            ConfigProblem::PermissionLevel {
                key: "*".into(),
                found: "the unknown level \"superuser\"".into()
            }
        );
        assert_eq!(
            problem(
                "bridge:\n  permissions:\n    '*': relay\n    example.com: user\n    '@admin:example.com': admin\n"
            ),
            ConfigProblem::PermissionsOnlyExamples
        );
        // Every message says what to do and names the key.
        let message = problem("appservice:\n  username_template: signal_x\n").to_string();
        assert!(message.contains("{{.}}"), "{message}");
    }

    #[test]
    fn spec_admins_make_an_example_only_permission_map_acceptable() {
        let keys = keys();
        let admins = vec!["@root:matrix.example.org".to_owned()];
        let file = "bridge:\n  permissions:\n    '*': relay\n";
        assert_eq!(
            user_config(file, &owned(&keys, &[])).unwrap_err(),
            ConfigProblem::PermissionsOnlyExamples
        );
        let config = sqlite(user_config(file, &owned(&keys, &admins)));
        let doc = parsed(&config);
        assert_eq!(
            at(&doc, "bridge.permissions").as_mapping().unwrap().len(),
            2
        );
    }

    #[test]
    fn numeric_and_flag_permissions_are_accepted_as_the_bridge_accepts_them() {
        let keys = keys();
        let file = "bridge:\n  permissions:\n    '*': 5\n    matrix.example.org: {commands: true, login: true}\n    '@x:matrix.example.org': ADMIN\n";
        assert!(user_config(file, &owned(&keys, &[])).is_ok());
    }

    #[test]
    fn a_postgresql_database_given_to_the_operator_replaces_sqlite_without_its_password() {
        let keys = keys();
        let connection = crate::database::tests::connection(&[("sslmode", "disable")]);
        for prepared in [
            default_config(&owned(&keys, &[])).unwrap(),
            // A file whose database is SQLite or the example gets the operator's too.
            user_config(
                "database:\n  type: sqlite3-fk-wal\n  uri: file:/data/x.db\n  max_open_conns: 5\n",
                &owned(&keys, &[]),
            )
            .unwrap(),
        ] {
            assert_eq!(prepared.database(), &Database::Managed);
            let config = prepared.finish(OperatorDatabase::Postgres(&connection));
            let doc = parsed(&config);
            assert_eq!(at(&doc, "database.type").as_str(), Some("postgres"));
            assert_eq!(
                at(&doc, "database.uri").as_str(),
                Some("postgres://signal@pg.db.svc:5432/signal?sslmode=disable")
            );
            assert_eq!(at(&doc, "database").as_mapping().unwrap().len(), 2);
            assert!(!config.file.contains("pw-never-shown"), "{}", config.file);
        }
    }

    #[test]
    fn a_file_with_its_own_postgresql_database_keeps_it() {
        let keys = keys();
        let prepared = user_config(MODERN, &owned(&keys, &[])).unwrap();
        assert_eq!(prepared.database(), &Database::User);
        let connection = crate::database::tests::connection(&[]);
        let config = prepared.finish(OperatorDatabase::Postgres(&connection));
        assert_eq!(
            at(&parsed(&config), "database.uri").as_str(),
            Some("postgres://signal:pw@db.example.org/signal?sslmode=require")
        );
    }
}
