//! From the spec and its input ConfigMap to the base `homeserver.yaml` Synapse runs with and the
//! facts read from it, or to the problem the user must fix. Pure: the caller fetched the inputs.

use synapse_types::Synapse;
use synapse_types::synapse::{Homeserver, HomeserverConfigurationStatus};

use crate::fetch::Inputs;
use operator_common::grant::{NotGranted, REFERENCE_NOT_GRANTED};
use operator_common::input::{ConfigMapInput, InputProblem};

use crate::homeserver_file::{
    HomeserverFacts, HomeserverFileError, ServerNameError, read_homeserver_file,
    validate_server_name,
};
use crate::metrics::{MetricsProblem, ServedMetrics, served};
use crate::public::{ExposeProblem, Public, public};
use crate::render::{Values, render_values_homeserver};
use crate::version::{self, Downgrade};
use crate::workers::{has_workers, operator_key_set};
use synapse_types::workers::OPERATOR_WORKER_KEYS;

/// Key of the input ConfigMap that holds the user's configuration.
pub const HOMESERVER_KEY: &str = "homeserver.yaml";

/// The configuration Synapse runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedConfig {
    /// The base file: the user's bytes unchanged, or the one rendered from values.
    pub base_file: String,
    pub facts: HomeserverFacts,
    /// What `spec.expose` makes public, if it is set.
    pub public: Option<Public>,
    /// Where Synapse serves its metrics, if it does.
    pub metrics: Option<ServedMetrics>,
    /// The operator rendered the base file from `spec.homeserver.values`: no file of the user's.
    pub generated: bool,
}

impl ResolvedConfig {
    /// What `status.homeserverConfiguration` publishes.
    pub fn status(&self) -> HomeserverConfigurationStatus {
        HomeserverConfigurationStatus {
            server_name: Some(self.facts.server_name.clone()),
            report_stats: self.facts.report_stats,
            registration_enabled: self.facts.registration_enabled,
        }
    }
}

/// A configuration the operator cannot use; the message says what to change.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum ConfigProblem {
    #[error(transparent)]
    Expose(#[from] ExposeProblem),
    #[error(transparent)]
    Metrics(#[from] MetricsProblem),
    #[error(transparent)]
    Downgrade(#[from] Downgrade),
    #[error(
        "spec.workers needs PostgreSQL: Synapse's workers share one database, which SQLite cannot be; set createNewPostgreSQL or externalPostgreSQL (on a new Synapse: the database cannot be switched later), or remove spec.workers"
    )]
    WorkersNeedPostgreSQL,
    #[error(
        "the listeners of homeserver.yaml hold a value the operator cannot copy to add the main process's replication listener (a date, binary data, a non-string key): remove it, or remove spec.workers"
    )]
    WorkersListenersNotCopyable,
    #[error(
        "spec.workers.{role}.homeserver sets {key}, which the operator writes for workers: remove it"
    )]
    WorkerSettingsConflict { role: &'static str, key: String },
    #[error(
        "homeserver.yaml sets {key}, which the operator writes for spec.workers: remove it from your file (the operator's value: see the reference, Workers), or remove spec.workers"
    )]
    WorkersConflict { key: String },
    #[error(transparent)]
    ReferenceNotGranted(#[from] NotGranted),
    #[error(
        "ConfigMap {namespace}/{name} named in spec.homeserver.configMap does not exist: create it with your homeserver.yaml under the key homeserver.yaml"
    )]
    ConfigMapNotFound { namespace: String, name: String },
    #[error(
        "ConfigMap {namespace}/{name} has no key homeserver.yaml: put your Synapse configuration under that key"
    )]
    MissingHomeserverKey { namespace: String, name: String },
    #[error("ConfigMap {namespace}/{name}: {error}")]
    InvalidHomeserverFile {
        namespace: String,
        name: String,
        error: HomeserverFileError,
    },
    #[error("spec.homeserver sets neither values nor configMap: set exactly one of them")]
    NoSource,
    #[error(
        "the homeserver.yaml of ConfigMap {namespace}/{name} has its own database section, and {field} asks the operator for a PostgreSQL database: remove the database section from homeserver.yaml (the operator writes it), or create a Synapse without {field} to keep yours"
    )]
    DatabaseConflict {
        namespace: String,
        name: String,
        field: &'static str,
    },
    #[error("spec.homeserver.values.serverName: {0}")]
    InvalidValuesServerName(ServerNameError),
    #[error(
        "server_name changed from {recorded:?} to {found:?}: a Matrix server cannot change its name (user IDs, rooms and signatures are bound to it); restore server_name {recorded:?} or create a new Synapse"
    )]
    ServerNameChanged { recorded: String, found: String },
    #[error(
        "Synapse rejected the new configuration (its own loader, run by Job {job} with the new image and files): {output}\nThe running Synapse keeps its last good configuration; fix homeserver.yaml or the spec and the operator checks again"
    )]
    ConfigRejected { job: String, output: String },
}

impl ConfigProblem {
    /// Every reason [`ConfigProblem::reason`] gives.
    pub const REASONS: [&'static str; 20] = [
        "ExposedServerNameHasPort",
        "ExposureConflict",
        "MetricsPortConflict",
        "MetricsListenerNotAdded",
        "WorkersNeedPostgreSQL",
        "WorkersListenersNotCopyable",
        "WorkerSettingsConflict",
        "WorkersConflict",
        "DowngradeRefused",
        REFERENCE_NOT_GRANTED,
        "ConfigMapNotFound",
        "HomeserverYamlMissing",
        "InvalidYAML",
        "ServerNameMissing",
        "InvalidServerName",
        "InvalidHomeserverConfig",
        "ServerNameChanged",
        "NoConfigurationSource",
        "DatabaseConflict",
        "ConfigRejected",
    ];

    /// The condition reason (CamelCase, stable: users and alerts match on it).
    pub fn reason(&self) -> &'static str {
        match self {
            ConfigProblem::ReferenceNotGranted(_) => REFERENCE_NOT_GRANTED,
            ConfigProblem::Expose(problem) => problem.reason(),
            ConfigProblem::Metrics(problem) => problem.reason(),
            ConfigProblem::Downgrade(_) => "DowngradeRefused",
            ConfigProblem::WorkersNeedPostgreSQL => "WorkersNeedPostgreSQL",
            ConfigProblem::WorkersListenersNotCopyable => "WorkersListenersNotCopyable",
            ConfigProblem::WorkerSettingsConflict { .. } => "WorkerSettingsConflict",
            ConfigProblem::WorkersConflict { .. } => "WorkersConflict",
            ConfigProblem::ConfigMapNotFound { .. } => "ConfigMapNotFound",
            ConfigProblem::MissingHomeserverKey { .. } => "HomeserverYamlMissing",
            ConfigProblem::InvalidHomeserverFile { error, .. } => match error {
                HomeserverFileError::Syntax(_) => "InvalidYAML",
                HomeserverFileError::MissingServerName => "ServerNameMissing",
                HomeserverFileError::ServerNameNotString(_)
                | HomeserverFileError::InvalidServerName(_) => "InvalidServerName",
                _ => "InvalidHomeserverConfig",
            },
            ConfigProblem::InvalidValuesServerName(_) => "InvalidServerName",
            ConfigProblem::ServerNameChanged { .. } => "ServerNameChanged",
            ConfigProblem::NoSource => "NoConfigurationSource",
            ConfigProblem::DatabaseConflict { .. } => "DatabaseConflict",
            ConfigProblem::ConfigRejected { .. } => "ConfigRejected",
        }
    }
}

/// The image Synapse runs: `spec.image`, or the release this operator is tested with.
pub fn image(synapse: &Synapse) -> String {
    synapse
        .spec
        .image
        .clone()
        .unwrap_or_else(|| crate::build::DEFAULT_IMAGE.to_owned())
}

/// The validate step: the configuration `synapse` runs with, from its spec and inputs, or the
/// problem the user must fix. `operator_database` is the spec field asking the operator for a
/// PostgreSQL database, if one does.
pub fn config(
    synapse: &Synapse,
    inputs: &Inputs,
    operator_database: Option<&'static str>,
) -> Result<ResolvedConfig, ConfigProblem> {
    let recorded = synapse
        .status
        .as_ref()
        .and_then(|s| s.homeserver_configuration.as_ref())
        .and_then(|h| h.server_name.as_deref());
    let input = inputs.config_map.as_ref();
    let config = resolve(&synapse.spec.homeserver, input, recorded)?;
    let mut config = check_database(config, input, operator_database)?;
    let facts = &config.facts;
    config.public = public(
        synapse.spec.expose.as_ref(),
        &facts.server_name,
        &facts.public,
    )?;
    config.metrics = served(&synapse.spec.metrics, facts)?;
    let last_ran = synapse
        .status
        .as_ref()
        .and_then(|s| s.synapse_version.as_deref());
    version::check(&image(synapse), last_ran, synapse.spec.allow_downgrade)?;
    if has_workers(synapse) {
        if operator_database.is_none() && facts.sqlite {
            return Err(ConfigProblem::WorkersNeedPostgreSQL);
        }
        if facts.listeners.is_none() {
            return Err(ConfigProblem::WorkersListenersNotCopyable);
        }
        if let Some((role, key)) = operator_key_set(synapse) {
            return Err(ConfigProblem::WorkerSettingsConflict { role, key });
        }
        // The user's file keeps its keys: one the overlay would replace is a conflict.
        if let Some(key) = OPERATOR_WORKER_KEYS
            .iter()
            .filter(|k| !["listeners", "database"].contains(k))
            .find(|k| facts.keys.contains(**k))
        {
            return Err(ConfigProblem::WorkersConflict {
                key: (*key).to_owned(),
            });
        }
    }
    Ok(config)
}

/// Resolves the configuration. `recorded_server_name` is the name in the current status: once a
/// server name is published it may never change.
pub fn resolve(
    homeserver: &Homeserver,
    input: Option<&ConfigMapInput>,
    recorded_server_name: Option<&str>,
) -> Result<ResolvedConfig, ConfigProblem> {
    let resolved = match (&homeserver.values, input) {
        (Some(values), _) => from_values(&Values {
            server_name: values.server_name.clone(),
            report_stats: values.report_stats,
            enable_registration: values.enable_registration,
        })?,
        (None, Some(input)) => from_config_map(input)?,
        // The CRD's validation forbids this; an object stored under an older CRD may still have it.
        (None, None) => return Err(ConfigProblem::NoSource),
    };
    match recorded_server_name {
        Some(recorded) if recorded != resolved.facts.server_name => {
            Err(ConfigProblem::ServerNameChanged {
                recorded: recorded.to_owned(),
                found: resolved.facts.server_name,
            })
        }
        _ => Ok(resolved),
    }
}

/// A user's own homeserver.yaml (ConfigMap mode) with a `database` section is used as written, so
/// it cannot be combined with a database the operator provides (`operator_database`: the spec
/// field asking for one).
pub fn check_database(
    config: ResolvedConfig,
    input: Option<&ConfigMapInput>,
    operator_database: Option<&'static str>,
) -> Result<ResolvedConfig, ConfigProblem> {
    match (input, operator_database) {
        (Some(input), Some(field)) if config.facts.has_database => {
            Err(ConfigProblem::DatabaseConflict {
                namespace: input.namespace.clone(),
                name: input.name.clone(),
                field,
            })
        }
        _ => Ok(config),
    }
}

fn from_values(values: &Values) -> Result<ResolvedConfig, ConfigProblem> {
    // The CRD's rule lets through names Synapse refuses (port 0 or 99999, brackets holding no
    // IPv6 address), and an object stored under an older CRD was not checked at all.
    validate_server_name(&values.server_name).map_err(ConfigProblem::InvalidValuesServerName)?;
    let base_file = render_values_homeserver(values);
    // Read back like a user's file, so the facts cannot disagree with what was rendered.
    let facts = read_homeserver_file(&base_file).expect("the rendered homeserver.yaml reads back");
    Ok(ResolvedConfig {
        base_file,
        facts,
        public: None,
        metrics: None,
        generated: true,
    })
}

fn from_config_map(input: &ConfigMapInput) -> Result<ResolvedConfig, ConfigProblem> {
    let (namespace, name) = (input.namespace.clone(), input.name.clone());
    let text = match input.file(HOMESERVER_KEY) {
        Ok(text) => text,
        Err(InputProblem::NotFound) => {
            return Err(ConfigProblem::ConfigMapNotFound { namespace, name });
        }
        Err(InputProblem::KeyMissing) => {
            return Err(ConfigProblem::MissingHomeserverKey { namespace, name });
        }
        Err(InputProblem::NotGranted(denied)) => return Err(denied.into()),
    };
    match read_homeserver_file(&text) {
        Ok(facts) => Ok(ResolvedConfig {
            base_file: text,
            facts,
            public: None,
            metrics: None,
            generated: false,
        }),
        Err(error) => Err(ConfigProblem::InvalidHomeserverFile {
            namespace,
            name,
            error,
        }),
    }
}

#[cfg(test)]
#[path = "resolve_fuzz_tests.rs"]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use synapse_types::common::ConfigMapReference;
    use synapse_types::synapse::HomeserverValues;

    use super::*;
    use operator_common::input::Lookup;

    fn values_spec() -> Homeserver {
        Homeserver {
            config_map: None,
            values: Some(HomeserverValues {
                server_name: "example.com".into(),
                report_stats: true,
                enable_registration: false,
            }),
        }
    }

    fn cm_spec() -> Homeserver {
        Homeserver {
            config_map: Some(ConfigMapReference {
                name: "hs".into(),
                namespace: None,
            }),
            values: None,
        }
    }

    fn config_map(text: &str) -> ConfigMap {
        ConfigMap {
            data: Some(BTreeMap::from([(HOMESERVER_KEY.into(), text.into())])),
            ..ConfigMap::default()
        }
    }

    fn input(cm: Option<&ConfigMap>) -> Option<ConfigMapInput> {
        Some(ConfigMapInput {
            namespace: "ns".into(),
            name: "hs".into(),
            lookup: cm.map_or(Lookup::NotFound, |cm| Lookup::Found(Box::new(cm.clone()))),
        })
    }

    const USER_FILE: &str = "# my config\nserver_name: my.example\nreport_stats: no\nlisteners:\n  - port: 8080\n    type: http\n    resources: [{names: [client]}]\n";

    #[test]
    fn values_mode_renders_and_publishes() {
        let resolved = resolve(&values_spec(), None, None).unwrap();
        assert_eq!(resolved.facts.client_port, 8008);
        assert!(
            resolved
                .base_file
                .contains("\"server_name\": \"example.com\"")
        );
        let status = resolved.status();
        assert_eq!(status.server_name.as_deref(), Some("example.com"));
        assert!(status.report_stats);
        assert!(!status.registration_enabled);
        assert!(resolved.generated);
    }

    #[test]
    fn config_map_mode_keeps_the_users_bytes() {
        let cm = config_map(USER_FILE);
        let resolved = resolve(&cm_spec(), input(Some(&cm)).as_ref(), Some("my.example")).unwrap();
        assert_eq!(resolved.base_file, USER_FILE);
        assert!(!resolved.generated);
        assert!(!resolved.facts.report_stats);
        assert_eq!(resolved.facts.client_port, 8080);
    }

    #[test]
    fn problems_have_reasons_and_messages() {
        let missing = resolve(&cm_spec(), input(None).as_ref(), None).unwrap_err();
        assert_eq!(missing.reason(), "ConfigMapNotFound");
        assert!(missing.to_string().contains("ns/hs"));

        let no_key = ConfigMap::default();
        assert_eq!(
            resolve(&cm_spec(), input(Some(&no_key)).as_ref(), None)
                .unwrap_err()
                .reason(),
            "HomeserverYamlMissing"
        );
        for (text, reason) in [
            ("server_name: [x\n", "InvalidYAML"),
            ("report_stats: no\n", "ServerNameMissing"),
            ("server_name: 12\nreport_stats: no\n", "InvalidServerName"),
            (
                "server_name: {a: b}\nreport_stats: no\n",
                "InvalidServerName",
            ),
            ("server_name: a.b\n", "InvalidHomeserverConfig"),
        ] {
            let cm = config_map(text);
            let problem = resolve(&cm_spec(), input(Some(&cm)).as_ref(), None).unwrap_err();
            assert_eq!(problem.reason(), reason, "{text}: {problem}");
        }
    }

    #[test]
    fn a_values_server_name_the_crd_lets_through_is_refused_not_a_panic() {
        // Found by the fuzzing: the CRD's pattern accepts these, and the rendered file failed
        // its own read-back, which panicked the reconciliation.
        for name in [
            "example.com:0",
            "example.com:99999",
            "[::::::::::]",
            "[1.2.3.4]",
        ] {
            let mut spec = values_spec();
            spec.values.as_mut().unwrap().server_name = name.into();
            let problem = resolve(&spec, None, None).unwrap_err();
            assert_eq!(problem.reason(), "InvalidServerName", "{name}");
            assert!(
                problem
                    .to_string()
                    .starts_with("spec.homeserver.values.serverName: server name"),
                "{problem}"
            );
        }
    }

    #[test]
    fn a_recorded_server_name_cannot_change() {
        let cm = config_map(USER_FILE);
        let problem =
            resolve(&cm_spec(), input(Some(&cm)).as_ref(), Some("old.example")).unwrap_err();
        assert_eq!(problem.reason(), "ServerNameChanged");
        assert!(problem.to_string().contains("old.example"));
    }

    #[test]
    fn an_own_database_section_conflicts_only_with_an_operator_database() {
        let base = "server_name: my.example\nreport_stats: false\nlisteners:\n  - port: 8008\n    type: http\n    resources:\n      - names: [client]\n";
        let with_db = config_map(&format!("{base}database:\n  name: psycopg2\n"));
        let without_db = config_map(base);
        let field = Some("spec.createNewPostgreSQL");
        let resolved = resolve(&cm_spec(), input(Some(&with_db)).as_ref(), None).unwrap();
        let problem =
            check_database(resolved.clone(), input(Some(&with_db)).as_ref(), field).unwrap_err();
        assert_eq!(problem.reason(), "DatabaseConflict");
        assert!(problem.to_string().contains("ConfigMap ns/hs"), "{problem}");
        assert!(
            problem.to_string().contains("spec.createNewPostgreSQL"),
            "{problem}"
        );
        assert_eq!(
            check_database(resolved.clone(), input(Some(&with_db)).as_ref(), None),
            Ok(resolved)
        );
        let resolved = resolve(&cm_spec(), input(Some(&without_db)).as_ref(), None).unwrap();
        assert!(check_database(resolved, input(Some(&without_db)).as_ref(), field).is_ok());
        // Values mode: the operator wrote the base file, its SQLite section is replaced.
        let resolved = resolve(&values_spec(), None, None).unwrap();
        assert!(check_database(resolved, None, field).is_ok());
    }

    #[test]
    fn workers_need_postgresql_and_leave_the_users_keys_alone() {
        use crate::fetch::Inputs;
        use synapse_types::{Synapse, SynapseSpec};

        let synapse = |homeserver: Homeserver, workers: serde_json::Value| {
            let mut spec: SynapseSpec = serde_json::from_value(serde_json::json!({
                "homeserver": {}, "workers": workers,
            }))
            .unwrap();
            spec.homeserver = homeserver;
            Synapse::new("hs", spec)
        };
        let generic = serde_json::json!({"generic": {"replicas": 1}});
        let values = Inputs::default();
        let on_sqlite = config(&synapse(values_spec(), generic.clone()), &values, None);
        assert_eq!(on_sqlite.unwrap_err().reason(), "WorkersNeedPostgreSQL");
        let pg = Some("spec.createNewPostgreSQL");
        assert!(config(&synapse(values_spec(), generic.clone()), &values, pg).is_ok());
        let none = serde_json::json!({"generic": {"replicas": 0}});
        assert!(
            config(&synapse(values_spec(), none), &values, None).is_ok(),
            "no worker: SQLite is fine"
        );

        let own = config_map(&format!("{USER_FILE}redis:\n  enabled: true\n"));
        let inputs = Inputs {
            config_map: input(Some(&own)),
            ..Inputs::default()
        };
        let conflict = config(&synapse(cm_spec(), generic.clone()), &inputs, pg).unwrap_err();
        assert_eq!(conflict.reason(), "WorkersConflict");
        assert!(conflict.to_string().contains("sets redis"), "{conflict}");

        let settings = serde_json::json!({"pusher": {"homeserver": {"instance_map": {}}}});
        let refused = config(&synapse(values_spec(), settings), &values, pg).unwrap_err();
        assert_eq!(refused.reason(), "WorkerSettingsConflict");
        assert!(
            refused
                .to_string()
                .contains("spec.workers.pusher.homeserver sets instance_map")
        );
    }
}
