//! The config files the operator writes for Synapse: the base `homeserver.yaml` in values mode,
//! the operator-owned overlay given to Synapse as a second `-c` file (later files win, key by
//! key), and the console logging config.
//!
//! Both YAML files are written as JSON, which is also YAML: every string is quoted, so nothing
//! can change meaning under Synapse's YAML 1.1 reader (a path named `no` stays a string).

use operator_common::yaml11::escape_unprintable;
use serde_json::{Value, json};

use crate::homeserver_file::{DEFAULT_CLIENT_PORT, InlineSecrets};
use crate::homeserver_secret as secrets;

/// Where the Synapse container finds its files.
pub mod paths {
    /// The PVC: SQLite database, media, pid file.
    pub const DATA_DIR: &str = "/data";
    /// The operator-owned ConfigMap: base file, overlay, log config.
    pub const CONFIG_DIR: &str = "/config";
    /// The homeserver Secret (signing key and secrets, one file each).
    pub const SECRETS_DIR: &str = "/secrets";
    /// Accepted app-service registrations, one directory per registration.
    pub const APPSERVICES_DIR: &str = "/appservices";
    pub const BASE_FILE: &str = "homeserver.yaml";
    pub const OVERLAY_FILE: &str = "operator-overlay.yaml";
    pub const LOG_CONFIG_FILE: &str = "log.config";
}

const HEADER: &str =
    "# Written by synapse-operator; edits are overwritten. JSON is valid YAML for Synapse.\n";

/// The settings of `spec.homeserver.values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values {
    pub server_name: String,
    pub report_stats: bool,
    pub enable_registration: bool,
}

/// The base `homeserver.yaml` rendered from `spec.homeserver.values`: one plain-HTTP listener for
/// client and federation traffic behind a proxy, SQLite on the data volume.
pub fn render_values_homeserver(values: &Values) -> String {
    let mut config = json!({
        "server_name": values.server_name,
        "report_stats": values.report_stats,
        "enable_registration": values.enable_registration,
        "listeners": [{
            "port": DEFAULT_CLIENT_PORT,
            "type": "http",
            "tls": false,
            "x_forwarded": true,
            "bind_addresses": ["0.0.0.0"],
            "resources": [{"names": ["client", "federation"], "compress": false}],
        }],
        "database": sqlite_database(),
    });
    if values.enable_registration {
        // Kept from the original operator: registration without email or captcha.
        config["enable_registration_without_verification"] = json!(true);
    }
    to_file(&config)
}

/// What the overlay depends on besides fixed paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayInput {
    /// Secrets the base file sets inline: no `*_path` for them (Synapse refuses both).
    pub inline_secrets: InlineSecrets,
    /// The base file's own `app_service_config_files`, kept first.
    pub user_app_service_files: Vec<String>,
    /// Mount paths of the accepted bridge registrations.
    pub bridge_registration_files: Vec<String>,
    /// The `database` section the overlay sets, if any.
    pub database: OverlayDatabase,
    /// With `spec.expose`: the public URL (which also makes Synapse answer
    /// `/.well-known/matrix/client`), and whether it answers `/.well-known/matrix/server`.
    pub public_baseurl: Option<String>,
    pub serve_server_wellknown: bool,
    /// The listeners to replace the base file's with, and whether to set `enable_metrics`.
    pub listeners: Option<Vec<Value>>,
    pub enable_metrics: bool,
    /// With workers: the keys every process reads alike (Redis, `instance_map`, duties).
    pub workers: serde_json::Map<String, Value>,
    /// The retired signing keys (`old_signing_keys`), if any.
    pub old_signing_keys: Option<Value>,
}

/// The database the overlay gives Synapse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OverlayDatabase {
    /// None: the base file's own section is used as written.
    #[default]
    Base,
    /// SQLite on the data volume.
    Sqlite,
    /// PostgreSQL through psycopg2. The password is not here: libpq reads it from `PGPASSWORD`.
    Postgres {
        host: String,
        port: u16,
        dbname: String,
        user: String,
        sslmode: Option<String>,
    },
}

/// The operator-owned overlay: paths, secrets by `*_path`, app services, logging.
pub fn render_overlay(input: &OverlayInput) -> String {
    use paths::*;
    let secret = |key: &str| format!("{SECRETS_DIR}/{key}");
    let mut config = json!({
        "pid_file": format!("{DATA_DIR}/homeserver.pid"),
        "media_store_path": format!("{DATA_DIR}/media_store"),
        "signing_key_path": secret(secrets::SIGNING_KEY),
        "log_config": format!("{CONFIG_DIR}/{LOG_CONFIG_FILE}"),
        "app_service_config_files": input
            .user_app_service_files
            .iter()
            .chain(&input.bridge_registration_files)
            .collect::<Vec<_>>(),
    });
    let path_secrets = [
        (
            "macaroon_secret_key_path",
            secrets::MACAROON_SECRET_KEY,
            input.inline_secrets.macaroon_secret_key,
        ),
        (
            "registration_shared_secret_path",
            secrets::REGISTRATION_SHARED_SECRET,
            input.inline_secrets.registration_shared_secret,
        ),
        (
            "form_secret_path",
            secrets::FORM_SECRET,
            input.inline_secrets.form_secret,
        ),
    ];
    for (option, key, inline) in path_secrets {
        if !inline {
            config[option] = json!(secret(key));
        }
    }
    if let Some(url) = &input.public_baseurl {
        config["public_baseurl"] = json!(url);
        config["serve_server_wellknown"] = json!(input.serve_server_wellknown);
    }
    if let Some(listeners) = &input.listeners {
        config["listeners"] = json!(listeners);
    }
    if input.enable_metrics {
        config["enable_metrics"] = json!(true);
    }
    for (key, value) in &input.workers {
        config[key] = value.clone();
    }
    if let Some(old) = &input.old_signing_keys {
        config["old_signing_keys"] = old.clone();
    }
    match &input.database {
        OverlayDatabase::Base => {}
        OverlayDatabase::Sqlite => config["database"] = sqlite_database(),
        OverlayDatabase::Postgres {
            host,
            port,
            dbname,
            user,
            sslmode,
        } => {
            // psycopg2 hands `args` to libpq as connection parameters.
            let mut args = json!({
                "user": user,
                "dbname": dbname,
                "host": host,
                "port": port,
                "cp_min": 5,
                "cp_max": 10,
            });
            if let Some(mode) = sslmode {
                args["sslmode"] = json!(mode);
            }
            config["database"] = json!({"name": "psycopg2", "args": args});
        }
    }
    to_file(&config)
}

/// Python logging config: everything to the console, where `kubectl logs` finds it.
pub fn render_log_config() -> String {
    to_file(&json!({
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s"
            }
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "precise"}
        },
        "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
        "root": {"level": "INFO", "handlers": ["console"]},
        "disable_existing_loggers": false,
    }))
}

fn sqlite_database() -> Value {
    json!({"name": "sqlite3", "args": {"database": format!("{}/homeserver.db", paths::DATA_DIR)}})
}

/// The file: JSON, with what PyYAML refuses in a stream escaped (a user's strings are copied).
pub fn to_file(config: &Value) -> String {
    let body = serde_json::to_string_pretty(config).expect("a JSON value always serialises");
    format!("{HEADER}{}\n", escape_unprintable(&body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::homeserver_file::read_homeserver_file;
    use operator_common::yaml11::{self, Value as Y};

    fn values(enable_registration: bool) -> Values {
        Values {
            server_name: "example.com".into(),
            report_stats: false,
            enable_registration,
        }
    }

    #[test]
    fn values_file_reads_back_with_synapse_meaning() {
        let text = render_values_homeserver(&values(false));
        let facts = read_homeserver_file(&text).unwrap();
        assert_eq!(facts.server_name, "example.com");
        assert!(!facts.report_stats);
        assert!(!facts.registration_enabled);
        assert_eq!(facts.client_port, 8008);
        assert!(facts.has_database);
        let doc = yaml11::parse(&text).unwrap();
        assert_eq!(doc.get("enable_registration_without_verification"), None);
        let listener = match doc.get("listeners") {
            Some(Y::Seq(l)) => l[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(listener.get("x_forwarded"), Some(&Y::Bool(true)));
    }

    #[test]
    fn registration_enabled_adds_without_verification() {
        let text = render_values_homeserver(&values(true));
        let doc = yaml11::parse(&text).unwrap();
        assert_eq!(doc.get("enable_registration"), Some(&Y::Bool(true)));
        assert_eq!(
            doc.get("enable_registration_without_verification"),
            Some(&Y::Bool(true))
        );
    }

    #[test]
    fn overlay_sets_paths_secrets_and_app_services_in_order() {
        let text = render_overlay(&OverlayInput {
            user_app_service_files: vec!["/etc/mine.yaml".into()],
            bridge_registration_files: vec!["/appservices/irc/registration.yaml".into()],
            database: OverlayDatabase::Sqlite,
            ..OverlayInput::default()
        });
        let doc = yaml11::parse(&text).unwrap();
        let s = |v: &str| Some(Y::Str(v.into()));
        assert_eq!(
            doc.get("signing_key_path").cloned(),
            s("/secrets/signing.key")
        );
        assert_eq!(doc.get("media_store_path").cloned(), s("/data/media_store"));
        assert_eq!(doc.get("pid_file").cloned(), s("/data/homeserver.pid"));
        assert_eq!(doc.get("log_config").cloned(), s("/config/log.config"));
        assert_eq!(
            doc.get("macaroon_secret_key_path").cloned(),
            s("/secrets/macaroon_secret_key")
        );
        assert_eq!(
            doc.get("registration_shared_secret_path").cloned(),
            s("/secrets/registration_shared_secret")
        );
        assert_eq!(
            doc.get("form_secret_path").cloned(),
            s("/secrets/form_secret")
        );
        assert_eq!(
            doc.get("app_service_config_files"),
            Some(&Y::Seq(vec![
                Y::Str("/etc/mine.yaml".into()),
                Y::Str("/appservices/irc/registration.yaml".into())
            ]))
        );
        assert!(doc.get("database").is_some());
        assert!(!text.contains("ed25519"));
    }

    #[test]
    fn overlay_respects_inline_secrets_and_user_database() {
        let text = render_overlay(&OverlayInput {
            inline_secrets: InlineSecrets {
                macaroon_secret_key: true,
                registration_shared_secret: false,
                form_secret: true,
            },
            database: OverlayDatabase::Base,
            ..OverlayInput::default()
        });
        let doc = yaml11::parse(&text).unwrap();
        assert_eq!(doc.get("macaroon_secret_key_path"), None);
        assert_eq!(doc.get("form_secret_path"), None);
        assert!(doc.get("registration_shared_secret_path").is_some());
        assert_eq!(doc.get("database"), None);
        assert_eq!(doc.get("app_service_config_files"), Some(&Y::Seq(vec![])));
    }

    #[test]
    fn overlay_points_psycopg2_at_postgres_without_a_password() {
        let postgres = |sslmode: Option<&str>| OverlayDatabase::Postgres {
            host: "hs-pgsql-rw".into(),
            port: 5432,
            dbname: "synapse".into(),
            user: "synapse".into(),
            sslmode: sslmode.map(String::from),
        };
        let text = render_overlay(&OverlayInput {
            database: postgres(None),
            ..OverlayInput::default()
        });
        let doc = yaml11::parse(&text).unwrap();
        let database = doc.get("database").unwrap();
        assert_eq!(database.get("name"), Some(&Y::Str("psycopg2".into())));
        let args = database.get("args").unwrap();
        assert_eq!(args.get("host"), Some(&Y::Str("hs-pgsql-rw".into())));
        assert_eq!(args.get("port"), Some(&Y::Int(5432)));
        assert_eq!(args.get("dbname"), Some(&Y::Str("synapse".into())));
        assert_eq!(args.get("user"), Some(&Y::Str("synapse".into())));
        assert_eq!(args.get("sslmode"), None);
        assert_eq!(args.get("password"), None);
        assert!(!text.contains("password"));

        let text = render_overlay(&OverlayInput {
            database: postgres(Some("verify-full")),
            ..OverlayInput::default()
        });
        let doc = yaml11::parse(&text).unwrap();
        let args = doc.get("database").unwrap().get("args").unwrap().clone();
        assert_eq!(args.get("sslmode"), Some(&Y::Str("verify-full".into())));
    }

    #[test]
    fn log_config_logs_to_the_console() {
        let doc = yaml11::parse(&render_log_config()).unwrap();
        let root = doc.get("root").unwrap();
        assert_eq!(
            root.get("handlers"),
            Some(&Y::Seq(vec![Y::Str("console".into())]))
        );
        assert_eq!(doc.get("version"), Some(&Y::Int(1)));
    }
}
