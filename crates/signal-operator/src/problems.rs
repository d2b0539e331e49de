//! The problems a user must fix, which a reconciliation reports instead of deploying: broken
//! references and inputs ([`Problem`]) and configs the bridge would refuse ([`ConfigProblem`]).
//! A leaf module.

use operator_common::bridge::{CrossNamespaceSynapse, reasons};
use operator_common::database::{self, Readiness};
use operator_common::grant::{NotGranted, REFERENCE_NOT_GRANTED};

use crate::names::CONFIG_MAP_KEY;

/// Why a config cannot be used; each would make the bridge refuse to start (or, for the
/// username template, make its users impossible to register).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("it is not valid YAML: {0}")]
    Yaml(String),
    #[error("it is empty")]
    Empty,
    /// serde_yaml reads it but cannot write it back (its message is not the user's concern).
    #[error(
        "it holds a value the operator cannot write back, such as a mapping key with a tag \
         (`! yes: ...`): remove the tag"
    )]
    Unwritable,
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

/// Where a config came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// Written by the operator (no `spec.configMap`).
    Default,
    /// The user's ConfigMap.
    ConfigMap { namespace: String, name: String },
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Default => f.write_str("the generated configuration"),
            ConfigSource::ConfigMap { namespace, name } => {
                write!(f, "{CONFIG_MAP_KEY} in ConfigMap {namespace}/{name}")
            }
        }
    }
}

/// Input the operator cannot use. The objects already deployed are left as they are.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    CrossNamespaceSynapse(#[from] CrossNamespaceSynapse),
    #[error(transparent)]
    ReferenceNotGranted(#[from] NotGranted),
    #[error(
        "ConfigMap {namespace}/{name} named by spec.configMap does not exist: create it with \
         your mautrix-signal configuration under the key {CONFIG_MAP_KEY}, or remove \
         spec.configMap to use a generated configuration"
    )]
    ConfigMapNotFound { namespace: String, name: String },
    #[error(
        "ConfigMap {namespace}/{name} has no key {CONFIG_MAP_KEY}: put the mautrix-signal \
         configuration there"
    )]
    ConfigMapKeyMissing { namespace: String, name: String },
    #[error("{origin} cannot be used: {error}; the bridge is not deployed with it")]
    InvalidConfig {
        origin: ConfigSource,
        error: ConfigProblem,
    },
    #[error(
        "{origin} names a PostgreSQL database of its own and {field} asks the operator for \
         another: remove one of them (the bridge is not deployed or changed meanwhile)"
    )]
    DatabaseConflict {
        origin: ConfigSource,
        field: &'static str,
    },
}

impl Problem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::CrossNamespaceSynapse(_) => reasons::CROSS_NAMESPACE_SYNAPSE,
            Problem::ReferenceNotGranted(_) => REFERENCE_NOT_GRANTED,
            Problem::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            Problem::ConfigMapKeyMissing { .. } => "ConfigMapKeyMissing",
            Problem::InvalidConfig {
                error: ConfigProblem::ExampleDomain,
                ..
            } => "UnsupportedServerName",
            Problem::InvalidConfig { .. } => "InvalidConfig",
            Problem::DatabaseConflict { .. } => REASON_DATABASE_CONFLICT,
        }
    }

    /// The `DatabaseReady` outcome this problem stands for, if it is about the database.
    pub fn database(&self) -> Option<Readiness> {
        matches!(self, Problem::DatabaseConflict { .. }).then(|| {
            Readiness::NotReady(database::Problem {
                reason: self.reason(),
                message: self.to_string(),
                retry_after: None,
            })
        })
    }
}

/// Reason of a user's own database combined with one the operator was asked for.
pub const REASON_DATABASE_CONFLICT: &str = "DatabaseConflict";
