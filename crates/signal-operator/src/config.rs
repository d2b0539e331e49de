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

pub use crate::config_checks::{Database, Owned};
use crate::config_checks::{SECRET_PATHS, check, kind_of};
use crate::database::postgres_uri;
use crate::legacy::{self, Migration};
use crate::names::{APPSERVICE_ID, PORT, POSTGRES_TYPE, SQLITE_TYPE, SQLITE_URI};
use crate::problems::ConfigProblem;
use crate::registration::{RegistrationInput, UsernameTemplate};
use crate::yaml::{set, string};

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
            let (migrated, migration) = legacy::migrate(&root, format, owned.domain)?;
            prepare(migrated, owned, Some(migration))
        }
    }
}

/// Checks a bridgev2-format mapping and sets the owned keys but `database`.
fn prepare(
    mut root: Mapping,
    owned: &Owned<'_>,
    migration: Option<Migration>,
) -> Result<Prepared, ConfigProblem> {
    let checked = check(&Value::Mapping(root.clone()), owned)?;
    // In the order the file has always had them: a new order would change the file and roll
    // every bridge.
    let owned_values = [
        (&["homeserver", "address"][..], string(owned.homeserver_url)),
        (&["homeserver", "domain"], string(owned.domain)),
        (&["homeserver", "software"], string("standard")),
        (&["appservice", "address"], string(owned.appservice_url)),
        (&["appservice", "hostname"], string("0.0.0.0")),
        (&["appservice", "port"], Value::from(PORT)),
        (&["appservice", "id"], string(APPSERVICE_ID)),
        (
            &["appservice", "bot", "username"],
            string(&checked.bot_username),
        ),
        (&["appservice", "as_token"], string(&owned.keys.as_token)),
        (&["appservice", "hs_token"], string(&owned.keys.hs_token)),
        (
            &["appservice", "username_template"],
            string(&checked.template_text),
        ),
    ];
    for (path, value) in owned_values {
        set(&mut root, path, value);
    }
    set(
        &mut root,
        &["bridge", "permissions"],
        Value::Mapping(checked.permissions),
    );
    for ((path, generated), users_own) in SECRET_PATHS
        .iter()
        .zip(owned.secrets())
        .zip(checked.own_secrets)
    {
        if !users_own {
            set(&mut root, path, string(generated));
        }
    }
    if !checked.has_logging {
        set(&mut root, &["logging"], default_logging());
    }
    // serde_yaml reads some files it cannot write (a tagged mapping key): refused here, where
    // the user is told, rather than when `finish` writes the file.
    if serde_yaml::to_string(&root).is_err() {
        return Err(ConfigProblem::Unwritable);
    }
    Ok(Prepared {
        root,
        bot_username: checked.bot_username,
        username_template: checked.username_template,
        ephemeral_events: checked.ephemeral_events,
        msc3202: checked.msc3202,
        msc4190: checked.msc4190,
        database: checked.database,
        migration,
    })
}

/// Logging to the container's standard output, where `kubectl logs` reads it.
fn default_logging() -> Value {
    serde_yaml::from_str("min_level: info\nwriters:\n  - type: stdout\n    format: pretty\n")
        .expect("the default logging section parses")
}

#[cfg(test)]
#[path = "config_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "config_fuzz_tests.rs"]
mod fuzz_tests;
