//! The bridge's own PostgreSQL database: which one the spec asks for, where it stands (the
//! shared `operator_common::database::observe`: its Cluster created once, its Secret read), the
//! URI the bridge connects with, and the refusal of its Synapse's database.

use kube::ResourceExt as _;
use operator_common::apply::Applier;
use operator_common::database::{
    self, Connection, Problem, ProvisionedDatabase, Readiness, Source,
};
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::common::DatabaseConnectionInfo;
use synapse_types::{MautrixSignal, Synapse};

use crate::names::{self, DATABASE_NAME};
use crate::problems::{self, ConfigSource};

/// Where the bridge's database stands: SQLite, the user's file's own (`own`: the file names
/// one), or the PostgreSQL of the spec, never the Synapse's. `Err` in the inner result: the
/// user's file and the spec both name one.
pub async fn readiness(
    applier: &Applier,
    bridge: &MautrixSignal,
    subject: &Subject,
    synapse: &Synapse,
    origin: &ConfigSource,
    own: bool,
) -> Result<Result<Readiness, problems::Problem>, Error> {
    let source = match (source(bridge), own) {
        (None, true) => return Ok(Ok(Readiness::OwnConfiguration)),
        (None, false) => return Ok(Ok(Readiness::Sqlite)),
        (Some(source), true) => {
            return Ok(Err(problems::Problem::DatabaseConflict {
                origin: origin.clone(),
                field: source.spec_field(),
            }));
        }
        (Some(source), false) => source,
    };
    let lifetime = Lifetime::of_data(bridge.spec.deletion_policy);
    let cluster = || subject.meta(names::database_cluster(&subject.name), "database", lifetime);
    let readiness = database::observe(applier, subject, &source, cluster).await?;
    let synapse_database = synapse
        .status
        .as_ref()
        .and_then(|s| s.database_connection_info.as_ref());
    if let Some(connection) = readiness.connection()
        && let Err(problem) = shared_with_synapse(connection, &synapse.name_any(), synapse_database)
    {
        return Ok(Ok(Readiness::NotReady(problem)));
    }
    Ok(Ok(readiness))
}

/// The `sslmode` written when the Secret names none.
///
/// mautrix-go's dbutil opens `type: postgres` with Go's lib/pq (registered by the bridgev2
/// Matrix connector), which reads `PGPASSWORD` but, unlike libpq, treats a missing sslmode as
/// `require` (v1.12; its changelog announces `prefer`). The Secret's sslmode is documented as
/// libpq's, and the Synapse reading the same Secret goes through libpq, so a Secret without one
/// gets libpq's default, `prefer`: TLS where the server offers it (CloudNativePG always does),
/// plain TCP where it does not. Set `sslmode: require` or `verify-full` in the Secret to insist
/// on TLS. lib/pq knows `prefer` since v1.12.0; the default image's mautrix-go v0.30 needs
/// v1.12.3.
pub const DEFAULT_SSLMODE: &str = "prefer";

/// The PostgreSQL database `createNewPostgreSQL` or `externalPostgreSQL` ask for, if any.
pub fn source(bridge: &MautrixSignal) -> Option<Source> {
    Source::from_spec(
        bridge.spec.create_new_postgresql,
        bridge.spec.external_postgresql.as_ref(),
        || ProvisionedDatabase {
            cluster: names::database_cluster(&bridge.name_any()),
            database: DATABASE_NAME.to_owned(),
            owner: DATABASE_NAME.to_owned(),
            storage_class: bridge
                .spec
                .storage
                .as_ref()
                .and_then(|s| s.storage_class_name.clone()),
        },
    )
}

/// `postgres://USER@HOST:PORT/DBNAME?sslmode=MODE`, without the password: the bridge's
/// connections take it from `PGPASSWORD`. User and database are percent-escaped, so that no
/// value of the Secret can add a password, a host or a parameter of its own.
pub fn postgres_uri(connection: &Connection) -> String {
    let host = if connection.host.contains(':') {
        // An IPv6 address; a zone's `%` must be escaped inside the brackets.
        format!("[{}]", connection.host.replace('%', "%25"))
    } else {
        escape(&connection.host)
    };
    format!(
        "postgres://{}@{host}:{}/{}?sslmode={}",
        escape(&connection.username),
        connection.port,
        escape(&connection.dbname),
        connection.sslmode.as_deref().unwrap_or(DEFAULT_SSLMODE)
    )
}

/// Percent-escapes every byte but RFC 3986's unreserved characters, which Go's net/url decodes
/// back in each part of the URI.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Refuses a connection to the database the Synapse publishes as its own
/// (`status.databaseConnectionInfo`): mautrix-signal must never share it.
pub fn shared_with_synapse(
    connection: &Connection,
    synapse: &str,
    synapse_database: Option<&DatabaseConnectionInfo>,
) -> Result<(), Problem> {
    match synapse_database {
        Some(info) if connection.same_database_as(info) => Err(Problem {
            reason: "SharedWithSynapse",
            message: format!(
                "Secret {} names database {} on {}:{}, which is Synapse {synapse}'s own \
                 database: mautrix-signal must have a database of its own; point the Secret at \
                 another database (the bridge is not started or changed with this one)",
                connection.secret, connection.dbname, connection.host, connection.port
            ),
            retry_after: None,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use operator_common::database::read_secret;
    use synapse_types::ExternalPostgreSQL;

    use super::*;

    pub(crate) fn connection(pairs: &[(&str, &str)]) -> Connection {
        let mut data: BTreeMap<String, ByteString> = [
            ("host", "pg.db.svc"),
            ("port", "5432"),
            ("dbname", "signal"),
            ("username", "signal"),
            ("password", "pw-never-shown"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
        for (k, v) in pairs {
            data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
        }
        let secret = Secret {
            data: Some(data),
            ..Secret::default()
        };
        read_secret("db", Some(&secret), "spec.externalPostgreSQL.secretName").unwrap()
    }

    #[test]
    fn the_uri_names_user_host_port_and_database_but_never_the_password() {
        let uri = postgres_uri(&connection(&[]));
        assert_eq!(
            uri,
            "postgres://signal@pg.db.svc:5432/signal?sslmode=prefer"
        );
        assert!(!uri.contains("pw-never-shown"));
    }

    #[test]
    fn the_secrets_sslmode_wins_and_libpqs_default_stands_in_for_none() {
        for mode in ["disable", "require", "verify-full"] {
            let uri = postgres_uri(&connection(&[("sslmode", mode)]));
            assert!(uri.ends_with(&format!("?sslmode={mode}")), "{uri}");
        }
        assert!(postgres_uri(&connection(&[])).ends_with("?sslmode=prefer"));
    }

    #[test]
    fn every_part_is_escaped_so_no_value_adds_a_parameter_or_a_password() {
        let uri = postgres_uri(&connection(&[
            ("username", "sig:nal@x"),
            ("dbname", "db/?sslmode=disable#é"),
            ("host", "db@evil"),
        ]));
        assert_eq!(
            uri,
            "postgres://sig%3Anal%40x@db%40evil:5432/db%2F%3Fsslmode%3Ddisable%23%C3%A9\
             ?sslmode=prefer"
        );
        assert_eq!(uri.matches('@').count(), 1);
        assert_eq!(uri.matches('?').count(), 1);
        let v6 = postgres_uri(&connection(&[("host", "fd00::5"), ("port", "6432")]));
        assert_eq!(v6, "postgres://signal@[fd00::5]:6432/signal?sslmode=prefer");
    }

    #[test]
    fn the_synapses_database_is_refused_and_any_other_accepted() {
        let ours = connection(&[]);
        let info = |url: &str, db: &str| DatabaseConnectionInfo {
            connection_url: Some(url.into()),
            database_name: Some(db.into()),
            user: Some("synapse".into()),
            state: Some("READY".into()),
        };
        let problem =
            shared_with_synapse(&ours, "hs", Some(&info("pg.db.svc:5432", "signal"))).unwrap_err();
        assert_eq!(problem.reason, "SharedWithSynapse");
        assert!(problem.message.contains("Synapse hs's own database"));
        assert!(problem.message.contains("Secret db"));
        assert!(!problem.message.contains("pw-never-shown"));
        assert_eq!(problem.retry_after, None);
        // Same server, another database; another server; no PostgreSQL published.
        assert!(shared_with_synapse(&ours, "hs", Some(&info("pg.db.svc:5432", "synapse"))).is_ok());
        assert!(
            shared_with_synapse(&ours, "hs", Some(&info("other.db.svc:5432", "signal"))).is_ok()
        );
        assert!(shared_with_synapse(&ours, "hs", None).is_ok());
    }

    #[test]
    fn the_spec_names_the_cluster_after_the_bridge() {
        let mut bridge = MautrixSignal::new(
            "sig",
            serde_json::from_value(serde_json::json!({
                "synapse": {"name": "hs"},
                "createNewPostgreSQL": true,
                "storage": {"storageClassName": "fast"},
            }))
            .unwrap(),
        );
        let Some(Source::Provisioned(db)) = source(&bridge) else {
            panic!("a provisioned database");
        };
        assert_eq!(db.cluster, "sig-mautrix-signal-pgsql");
        assert_eq!(
            (db.database.as_str(), db.owner.as_str()),
            ("mautrix_signal", "mautrix_signal")
        );
        assert_eq!(db.storage_class.as_deref(), Some("fast"));

        bridge.spec.create_new_postgresql = false;
        assert_eq!(source(&bridge), None);
        bridge.spec.external_postgresql = Some(ExternalPostgreSQL {
            secret_name: "signal-db".into(),
        });
        assert_eq!(source(&bridge).unwrap().secret_name(), "signal-db");
    }
}
