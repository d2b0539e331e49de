use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::expose::Exposure;
use crate::monitoring::Monitoring;
use crate::resolve::resolve;

fn values_config() -> ResolvedConfig {
    let spec = synapse_types::synapse::Homeserver {
        config_map: None,
        values: Some(synapse_types::synapse::HomeserverValues {
            server_name: "example.com".into(),
            report_stats: false,
            enable_registration: true,
        }),
    };
    resolve(&spec, None, None).unwrap()
}

fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap())
}

#[test]
fn running_status_and_steady_state_equality() {
    let config = values_config();
    let outcome = Outcome::Deployed {
        exposure: &Exposure::Off,
        monitoring: Monitoring::Off,
        config: &config,
        client_url: "http://hs.ns.svc:8008".into(),
        metrics_url: None,
        database: &Readiness::Sqlite,
        rollout: Rollout::Ready,
        workers: None,
        version: None,
        suspended: false,
        signing_key_id: None,
        app_services: &Decision::default(),
    };
    let first = next_status(None, Some(1), &outcome, at(10));
    assert_eq!(first.state, Some(State::Running));
    assert_eq!(first.observed_generation, Some(1));
    assert_eq!(first.client_url.as_deref(), Some("http://hs.ns.svc:8008"));
    let hs = first.homeserver_configuration.clone().unwrap();
    assert_eq!(hs.server_name.as_deref(), Some("example.com"));
    assert!(hs.registration_enabled);
    let ready = ready_condition(Some(&first)).unwrap();
    assert_eq!(ready.status, "True");
    // The same outcome later gives exactly the same status: nothing to write.
    assert_eq!(next_status(Some(&first), Some(1), &outcome, at(99)), first);
}

#[test]
fn a_problem_fails_and_keeps_the_running_configuration() {
    let config = values_config();
    let running = next_status(
        None,
        Some(1),
        &Outcome::Deployed {
            exposure: &Exposure::Off,
            monitoring: Monitoring::Off,
            config: &config,
            client_url: "http://hs.ns.svc:8008".into(),
            metrics_url: None,
            database: &Readiness::Sqlite,
            rollout: Rollout::Ready,
            workers: None,
            version: None,
            suspended: false,
            signing_key_id: None,
            app_services: &Decision::default(),
        },
        at(10),
    );
    let problem = ConfigProblem::ConfigMapNotFound {
        namespace: "ns".into(),
        name: "hs".into(),
    };
    let failed = next_status(Some(&running), Some(2), &Outcome::Problem(&problem), at(20));
    assert_eq!(failed.state, Some(State::Failed));
    assert!(failed.reason.as_deref().unwrap().contains("ns/hs"));
    assert_eq!(
        failed.homeserver_configuration,
        running.homeserver_configuration
    );
    let ready = ready_condition(Some(&failed)).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ConfigMapNotFound")
    );
    assert_eq!(ready.last_transition_time, at(20));
    assert_eq!(ready.observed_generation, Some(2));
}

fn connection() -> operator_common::database::Connection {
    operator_common::database::Connection {
        secret: "hs-pgsql-app".into(),
        host: "hs-pgsql-rw".into(),
        port: 5432,
        dbname: "synapse".into(),
        username: "synapse".into(),
        sslmode: None,
        password_fingerprint: [7; 32],
    }
}

#[test]
fn waiting_for_the_database_before_the_first_start() {
    let problem = Readiness::NotReady(Problem {
        reason: "ClusterNotReady",
        message: "the CloudNativePG Cluster hs-pgsql is not ready yet".into(),
        retry_after: None,
    });
    let outcome = Outcome::WaitingForDatabase {
        database: &problem,
        running: None,
    };
    let waiting = next_status(None, Some(1), &outcome, at(10));
    let ready = ready_condition(Some(&waiting)).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "DatabaseNotReady")
    );
    assert!(
        ready.message.contains("hs-pgsql is not ready"),
        "{}",
        ready.message
    );
    let database = waiting
        .conditions
        .iter()
        .find(|c| c.type_ == "DatabaseReady")
        .unwrap();
    assert_eq!(
        (database.status.as_str(), database.reason.as_str()),
        ("False", "ClusterNotReady")
    );
    assert_eq!(waiting.database_connection_info, None);
    assert_eq!(
        next_status(Some(&waiting), Some(1), &outcome, at(50)),
        waiting
    );
}

#[test]
fn a_ready_database_is_published_without_its_password_and_kept_when_it_falters() {
    let config = values_config();
    let ready_db = Readiness::Ready {
        source: operator_common::database::Source::External {
            secret: "hs-pgsql-app".into(),
        },
        connection: connection(),
    };
    let running = next_status(
        None,
        Some(1),
        &Outcome::Deployed {
            exposure: &Exposure::Off,
            monitoring: Monitoring::Off,
            config: &config,
            database: &ready_db,
            client_url: "http://hs.ns.svc:8008".into(),
            metrics_url: None,
            rollout: Rollout::Ready,
            workers: None,
            version: None,
            suspended: false,
            signing_key_id: None,
            app_services: &Decision::default(),
        },
        at(10),
    );
    let info = running.database_connection_info.clone().unwrap();
    assert_eq!(info.connection_url.as_deref(), Some("hs-pgsql-rw:5432"));
    assert_eq!(info.database_name.as_deref(), Some("synapse"));
    assert_eq!(info.state.as_deref(), Some("READY"));
    let database = |s: &SynapseStatus| {
        let c = s
            .conditions
            .iter()
            .find(|c| c.type_ == "DatabaseReady")
            .unwrap();
        (c.status.clone(), c.reason.clone())
    };
    assert_eq!(database(&running), ("True".into(), "SecretReady".into()));

    // The Cluster falters later: Synapse keeps running, the condition tells.
    let faltering = Readiness::NotReady(Problem {
        reason: "ClusterNotReady",
        message: "failing over".into(),
        retry_after: None,
    });
    let later = next_status(
        Some(&running),
        Some(1),
        &Outcome::WaitingForDatabase {
            database: &faltering,
            running: Some(Rollout::Ready),
        },
        at(20),
    );
    assert_eq!(ready_condition(Some(&later)).unwrap().status, "True");
    assert_eq!(database(&later), ("False".into(), "ClusterNotReady".into()));
    assert_eq!(
        later.database_connection_info.unwrap().state.as_deref(),
        Some("NOT READY")
    );
}

#[test]
fn a_database_conflict_is_a_database_condition_too() {
    let problem = ConfigProblem::DatabaseConflict {
        namespace: "ns".into(),
        name: "hs".into(),
        field: "spec.createNewPostgreSQL",
    };
    let failed = next_status(None, Some(1), &Outcome::Problem(&problem), at(10));
    let database = failed
        .conditions
        .iter()
        .find(|c| c.type_ == "DatabaseReady")
        .unwrap();
    assert_eq!(database.reason, "DatabaseConflict");
    assert_eq!(
        ready_condition(Some(&failed)).unwrap().reason,
        "DatabaseConflict"
    );
}

/// The Ready condition of a status, if any.
fn ready_condition(status: Option<&SynapseStatus>) -> Option<&Condition> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
}
