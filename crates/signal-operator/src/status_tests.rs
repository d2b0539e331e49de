use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use operator_common::conditions::{find_condition, is_condition_true};
use operator_common::events::{Notice, condition_notices};
use synapse_types::common::State;

use operator_common::database;

use super::*;
use crate::legacy::LegacyFormat;
use crate::problems::{ConfigProblem, ConfigSource};

fn notices(before: Option<&MautrixSignalStatus>, after: &MautrixSignalStatus) -> Vec<Notice> {
    let before = before.map(|b| b.conditions.as_slice()).unwrap_or_default();
    condition_notices(before, &after.conditions, &EVENTS)
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

fn applied(
    registration: RegistrationState,
    rollout: Rollout,
    migration: Option<Migration>,
) -> Outcome {
    Outcome::Applied {
        synapse: "hs".into(),
        registration,
        rollout,
        migration,
        database: Readiness::Sqlite,
    }
}

fn migration() -> Migration {
    Migration {
        format: LegacyFormat::Python,
        dropped: vec!["signal".into(), "logging".into()],
        notes: Vec::new(),
    }
}

fn condition<'a>(status: &'a MautrixSignalStatus, type_: &str) -> &'a Condition {
    find_condition(&status.conditions, type_).unwrap()
}

#[test]
fn running_and_registered_is_running_and_steady() {
    let outcome = applied(RegistrationState::Live, Rollout::Ready, None);
    let first = next_status(None, Some(2), &outcome, Some("matrix.example.org"), at(10));
    assert!(is_condition_true(&first.conditions, "Ready"));
    assert!(is_condition_true(&first.conditions, "Registered"));
    assert_eq!(first.state, Some(State::Running));
    assert_eq!(first.reason, None);
    assert_eq!(
        first
            .synapse
            .as_ref()
            .and_then(|s| s.server_name.as_deref()),
        Some("matrix.example.org")
    );
    assert!(find_condition(&first.conditions, CONDITION_CONFIG_MIGRATED).is_none());
    let again = next_status(
        Some(&first),
        Some(2),
        &outcome,
        Some("matrix.example.org"),
        at(20),
    );
    assert_eq!(again, first);
    assert!(notices(Some(&first), &again).is_empty());
    let announced = notices(None, &first);
    assert_eq!(
        announced
            .iter()
            .map(|n| n.reason.as_str())
            .collect::<Vec<_>>(),
        ["Running", "Registered"]
    );
    assert_eq!(
        condition(&first, CONDITION_DATABASE_READY).reason,
        "SQLite",
        "SQLite is a ready database"
    );
    assert_eq!(first.database_connection_info, None);
    assert!(announced.iter().all(|n| !n.warning));
}

#[test]
fn a_missing_synapse_fails_and_then_converges() {
    let missing = Outcome::SynapseNotFound {
        synapse: "hs".into(),
    };
    let failed = next_status(None, Some(1), &missing, None, at(10));
    assert_eq!(failed.state, Some(State::Failed));
    assert_eq!(condition(&failed, "Ready").reason, "SynapseNotFound");
    assert_eq!(condition(&failed, "Registered").reason, "SynapseNotFound");
    assert!(failed.reason.as_deref().unwrap().contains("does not exist"));
    assert!(failed.synapse.is_none());
    let warnings = notices(None, &failed);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].warning);

    let waiting = next_status(
        Some(&failed),
        Some(1),
        &Outcome::SynapseNotReady {
            synapse: "hs".into(),
        },
        None,
        at(20),
    );
    assert_eq!(waiting.state, None);
    assert_eq!(condition(&waiting, "Ready").reason, "SynapseNotReady");
    assert!(notices(Some(&failed), &waiting).is_empty());

    let pending = applied(
        RegistrationState::NotLive {
            reason: reasons::REGISTRATION_PENDING,
            message: "waiting".into(),
        },
        Rollout::Progressing("starting".into()),
        None,
    );
    let rolling = next_status(Some(&waiting), Some(1), &pending, Some("m.org"), at(30));
    assert_eq!(rolling.state, None);
    assert_eq!(condition(&rolling, "Ready").reason, "RollingOut");
    let live = applied(RegistrationState::Live, Rollout::Ready, None);
    let running = next_status(Some(&rolling), Some(1), &live, Some("m.org"), at(40));
    assert_eq!(running.state, Some(State::Running));
    assert_eq!(condition(&running, "Ready").last_transition_time, at(40));
}

#[test]
fn a_migrated_config_is_reported_and_its_condition_goes_with_it() {
    let outcome = applied(RegistrationState::Live, Rollout::Ready, Some(migration()));
    let migrated = next_status(None, Some(1), &outcome, Some("m.org"), at(10));
    let c = condition(&migrated, CONDITION_CONFIG_MIGRATED);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", REASON_MIGRATED)
    );
    assert!(
        c.message
            .contains("Dropped, with no bridgev2 equivalent: signal, logging")
    );
    assert!(
        notices(None, &migrated)
            .iter()
            .any(|n| n.reason == REASON_MIGRATED && !n.warning)
    );

    // A problem later keeps the record of what runs; a current-format file removes it.
    let problem = Outcome::Problem(Problem::ConfigMapKeyMissing {
        namespace: "ns".into(),
        name: "cm".into(),
    });
    let broken = next_status(Some(&migrated), Some(2), &problem, None, at(20));
    assert!(find_condition(&broken.conditions, CONDITION_CONFIG_MIGRATED).is_some());
    assert_eq!(broken.state, Some(State::Failed));
    assert_eq!(
        broken.synapse, migrated.synapse,
        "the server name seen last is kept"
    );
    let modern = applied(RegistrationState::Live, Rollout::Ready, None);
    let current = next_status(Some(&broken), Some(3), &modern, Some("m.org"), at(30));
    assert!(find_condition(&current.conditions, CONDITION_CONFIG_MIGRATED).is_none());
}

#[test]
fn an_invalid_config_says_where_and_why() {
    let problem = Problem::InvalidConfig {
        origin: ConfigSource::ConfigMap {
            namespace: "ns".into(),
            name: "cm".into(),
        },
        error: ConfigProblem::Empty,
    };
    assert_eq!(problem.reason(), "InvalidConfig");
    assert_eq!(
        problem.to_string(),
        "config.yaml in ConfigMap ns/cm cannot be used: it is empty; the bridge is not \
         deployed with it"
    );
    let status = next_status(None, Some(1), &Outcome::Problem(problem), None, at(1));
    assert_eq!(condition(&status, "Ready").reason, "InvalidConfig");
    assert_eq!(status.state, Some(State::Failed));
    let example = Problem::InvalidConfig {
        origin: ConfigSource::Default,
        error: ConfigProblem::ExampleDomain,
    };
    assert_eq!(example.reason(), "UnsupportedServerName");
}

#[test]
fn migration_messages_list_the_dropped_keys_and_notes() {
    let mut m = migration();
    m.notes.push("the database is kept".into());
    let message = migration_message(&m);
    assert!(message.starts_with("config.yaml was in the legacy signald-era"));
    assert!(message.contains("signal, logging"));
    assert!(message.ends_with("Note: the database is kept"));
    m.dropped.clear();
    assert!(migration_message(&m).contains("every setting was carried over"));
}

fn postgres() -> operator_common::database::Connection {
    crate::database::tests::connection(&[])
}

fn not_ready(reason: &'static str, message: &str) -> Readiness {
    Readiness::NotReady(database::Problem {
        reason,
        message: message.into(),
        retry_after: None,
    })
}

#[test]
fn a_bridge_never_started_waits_for_its_database() {
    let waiting = Outcome::WaitingForDatabase {
        synapse: "hs".into(),
        database: not_ready("ClusterNotReady", "the Cluster is not ready yet"),
        running: None,
    };
    let status = next_status(None, Some(1), &waiting, Some("m.org"), at(10));
    for type_ in ["Ready", "Registered"] {
        let c = condition(&status, type_);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "DatabaseNotReady")
        );
        assert!(
            c.message.contains("the Cluster is not ready yet"),
            "{}",
            c.message
        );
    }
    let db = condition(&status, CONDITION_DATABASE_READY);
    assert_eq!(
        (db.status.as_str(), db.reason.as_str()),
        ("False", "ClusterNotReady")
    );
    assert_eq!(db.observed_generation, Some(1));
    assert_eq!(status.state, None, "waiting, not failed");
    assert_eq!(status.database_connection_info, None, "never connected");
    assert!(
        notices(None, &status).is_empty(),
        "waiting for CloudNativePG is no problem"
    );

    let missing = Outcome::WaitingForDatabase {
        synapse: "hs".into(),
        database: not_ready("SecretNotFound", "Secret db does not exist"),
        running: None,
    };
    let status = next_status(Some(&status), Some(1), &missing, Some("m.org"), at(20));
    let warnings = notices(None, &status);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].warning && warnings[0].reason == "SecretNotFound");
}

#[test]
fn a_ready_database_is_published_without_the_password() {
    let connection = postgres();
    let database = Readiness::Ready {
        source: operator_common::database::Source::External {
            secret: "db".into(),
        },
        connection: connection.clone(),
    };
    let outcome = Outcome::Applied {
        synapse: "hs".into(),
        registration: RegistrationState::Live,
        rollout: Rollout::Ready,
        migration: None,
        database,
    };
    let status = next_status(None, Some(1), &outcome, Some("m.org"), at(10));
    let db = condition(&status, CONDITION_DATABASE_READY);
    assert_eq!(
        (db.status.as_str(), db.reason.as_str()),
        ("True", "SecretReady")
    );
    let info = status.database_connection_info.clone().unwrap();
    assert_eq!(info.connection_url.as_deref(), Some("pg.db.svc:5432"));
    assert_eq!(info.database_name.as_deref(), Some("signal"));
    assert_eq!(info.user.as_deref(), Some("signal"));
    assert_eq!(info.state.as_deref(), Some("READY"));
    assert!(
        !serde_json::to_string(&status)
            .unwrap()
            .contains("pw-never-shown")
    );
    assert_eq!(
        next_status(Some(&status), Some(1), &outcome, Some("m.org"), at(20)),
        status
    );

    // The database falters: the running bridge is left as it is, only the condition says.
    let faltering = Outcome::WaitingForDatabase {
        synapse: "hs".into(),
        database: not_ready("SharedWithSynapse", "Synapse hs's own database"),
        running: Some(Running {
            rollout: Rollout::Ready,
            registration: RegistrationState::Live,
        }),
    };
    let after = next_status(Some(&status), Some(2), &faltering, Some("m.org"), at(30));
    assert!(is_condition_true(&after.conditions, "Ready"));
    assert!(is_condition_true(&after.conditions, "Registered"));
    assert_eq!(after.state, Some(State::Running));
    let db = condition(&after, CONDITION_DATABASE_READY);
    assert_eq!(
        (db.status.as_str(), db.reason.as_str()),
        ("False", "SharedWithSynapse")
    );
    assert_eq!(db.last_transition_time, at(30));
    let info = after.database_connection_info.clone().unwrap();
    assert_eq!(info.state.as_deref(), Some("NOT READY"));
    assert_eq!(info.connection_url.as_deref(), Some("pg.db.svc:5432"));
    let events = notices(Some(&status), &after);
    assert_eq!(events.len(), 1);
    assert!(events[0].warning && events[0].reason == "SharedWithSynapse");
}

#[test]
fn an_own_database_and_one_asked_for_conflict() {
    let problem = Problem::DatabaseConflict {
        origin: ConfigSource::ConfigMap {
            namespace: "ns".into(),
            name: "cm".into(),
        },
        field: "spec.createNewPostgreSQL",
    };
    assert_eq!(problem.reason(), "DatabaseConflict");
    let status = next_status(None, Some(1), &Outcome::Problem(problem), None, at(1));
    for type_ in ["Ready", CONDITION_DATABASE_READY] {
        let c = condition(&status, type_);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "DatabaseConflict")
        );
        assert!(
            c.message.contains("config.yaml in ConfigMap ns/cm"),
            "{}",
            c.message
        );
        assert!(
            c.message.contains("spec.createNewPostgreSQL"),
            "{}",
            c.message
        );
    }
    assert_eq!(status.state, Some(State::Failed));
    let events = notices(None, &status);
    assert_eq!(events.len(), 1, "one Warning for the one reason");
    assert!(events[0].warning);

    let own = Outcome::Applied {
        synapse: "hs".into(),
        registration: RegistrationState::Live,
        rollout: Rollout::Ready,
        migration: None,
        database: Readiness::OwnConfiguration,
    };
    let fixed = next_status(Some(&status), Some(2), &own, Some("m.org"), at(2));
    let c = condition(&fixed, CONDITION_DATABASE_READY);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "OwnConfiguration")
    );
    assert_eq!(fixed.database_connection_info, None);
}

#[test]
fn the_synapse_missing_leaves_the_database_condition_alone() {
    let ready = next_status(
        None,
        Some(1),
        &applied(RegistrationState::Live, Rollout::Ready, None),
        Some("m.org"),
        at(1),
    );
    let gone = Outcome::SynapseNotFound {
        synapse: "hs".into(),
    };
    let after = next_status(Some(&ready), Some(1), &gone, None, at(2));
    assert_eq!(
        condition(&after, CONDITION_DATABASE_READY),
        condition(&ready, CONDITION_DATABASE_READY)
    );
}
