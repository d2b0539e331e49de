//! `Synapse.status` computed from what the reconciliation found and applied. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use operator_common::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use operator_common::database::{Problem, Readiness};
use operator_common::rollout::Rollout;
use synapse_types::common::{CONDITION_READY, State};
use synapse_types::synapse::SynapseStatus;

use crate::appservice::Decision;
use crate::resolve::{ConfigProblem, ResolvedConfig};

/// Condition type: a rollout of the current configuration is under way.
pub const CONDITION_PROGRESSING: &str = "Progressing";

/// What the reconciliation arrived at.
pub enum Outcome<'a> {
    /// The configuration cannot be used; the running workload, if any, was left as it was.
    Problem(&'a ConfigProblem),
    /// The PostgreSQL database is not usable yet (`database` is [`Readiness::NotReady`]): nothing
    /// was applied. `running` is the rollout of a Deployment started earlier, which keeps running.
    WaitingForDatabase {
        database: &'a Readiness,
        running: Option<Rollout>,
    },
    /// The workload for `config`, with the accepted app services of `app_services`, was applied.
    Deployed {
        config: &'a ResolvedConfig,
        database: &'a Readiness,
        client_url: String,
        rollout: Rollout,
        app_services: &'a Decision,
    },
}

/// Ready and Progressing (status, reason, message), the state and its reason.
type Verdict = (
    (ConditionStatus, &'static str, String),
    (ConditionStatus, &'static str, String),
    Option<State>,
    Option<String>,
);

/// The next status: `current` with what this reconciliation observed. Conditions keep their
/// transition times unless their status flips, so an unchanged outcome gives an equal status.
pub fn next_status(
    current: Option<&SynapseStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Time,
) -> SynapseStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let (verdict, database) = match outcome {
        Outcome::Problem(problem) => {
            let message = problem.to_string();
            let database = matches!(problem, ConfigProblem::DatabaseConflict { .. }).then(|| {
                Readiness::NotReady(Problem {
                    reason: problem.reason(),
                    message: message.clone(),
                    retry_after: None,
                })
            });
            (
                (
                    (ConditionStatus::False, problem.reason(), message.clone()),
                    (ConditionStatus::False, problem.reason(), message.clone()),
                    Some(State::Failed),
                    Some(message),
                ),
                database,
            )
        }
        Outcome::WaitingForDatabase { database, running } => {
            let verdict = match running {
                Some(rollout) => rollout_verdict(rollout),
                None => {
                    let message = match database {
                        Readiness::NotReady(problem) => {
                            format!("Synapse waits for its database: {}", problem.message)
                        }
                        _ => "Synapse waits for its database".to_owned(),
                    };
                    (
                        (ConditionStatus::False, "DatabaseNotReady", message.clone()),
                        (ConditionStatus::False, "DatabaseNotReady", message.clone()),
                        None,
                        Some(message),
                    )
                }
            };
            (verdict, Some((*database).clone()))
        }
        Outcome::Deployed {
            config,
            database,
            client_url,
            rollout,
            app_services,
        } => {
            status.homeserver_configuration = Some(config.status());
            status.client_url = Some(client_url.clone());
            status.app_services = app_services.statuses.clone();
            status.bridges = app_services.bridges();
            (rollout_verdict(rollout), Some((*database).clone()))
        }
    };
    let (ready, progressing, state, reason) = verdict;
    for (type_, (condition_status, reason, message)) in [
        (CONDITION_READY, ready),
        (CONDITION_PROGRESSING, progressing),
    ] {
        set_condition(
            &mut status.conditions,
            ConditionUpdate {
                type_,
                status: condition_status,
                reason,
                message: &message,
                observed_generation: generation,
            },
            now.clone(),
        );
    }
    if let Some(database) = database {
        set_condition(
            &mut status.conditions,
            ConditionUpdate {
                observed_generation: generation,
                ..database.condition()
            },
            now,
        );
        status.database_connection_info = database.connection_info(status.database_connection_info);
    }
    status.state = state;
    status.reason = reason;
    status
}

fn rollout_verdict(rollout: &Rollout) -> Verdict {
    match rollout {
        Rollout::Ready => (
            (
                ConditionStatus::True,
                "Running",
                "Synapse is running the current configuration and its pod is ready".to_owned(),
            ),
            (
                ConditionStatus::False,
                "RolloutComplete",
                "the current configuration is rolled out".to_owned(),
            ),
            Some(State::Running),
            None,
        ),
        Rollout::Progressing(message) => (
            (ConditionStatus::False, "RollingOut", message.clone()),
            (ConditionStatus::True, "RollingOut", message.clone()),
            None,
            Some(message.clone()),
        ),
        Rollout::Failed(message) => {
            let message = format!(
                "the Synapse pod did not become ready: {message}; see the pod's events and logs"
            );
            (
                (ConditionStatus::False, "RolloutFailed", message.clone()),
                (
                    ConditionStatus::False,
                    "ProgressDeadlineExceeded",
                    message.clone(),
                ),
                Some(State::Failed),
                Some(message),
            )
        }
    }
}

/// The Ready condition of a status, if any.
pub fn ready_condition(status: Option<&SynapseStatus>) -> Option<&Condition> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
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
            config: &config,
            client_url: "http://hs.ns.svc:8008".into(),
            database: &Readiness::Sqlite,
            rollout: Rollout::Ready,
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
                config: &config,
                client_url: "http://hs.ns.svc:8008".into(),
                database: &Readiness::Sqlite,
                rollout: Rollout::Ready,
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
                config: &config,
                database: &ready_db,
                client_url: "http://hs.ns.svc:8008".into(),
                rollout: Rollout::Ready,
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
}
