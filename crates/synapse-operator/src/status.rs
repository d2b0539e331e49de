//! `Synapse.status` computed from what the reconciliation found and applied. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use operator_common::conditions::{ConditionStatus, ConditionUpdate, set_condition};
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
    /// The workload for `config`, with the accepted app services of `app_services`, was applied.
    Deployed {
        config: &'a ResolvedConfig,
        client_url: String,
        rollout: Rollout,
        app_services: &'a Decision,
    },
}

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
    let (ready, progressing, state, reason) = match outcome {
        Outcome::Problem(problem) => {
            let message = problem.to_string();
            (
                (ConditionStatus::False, problem.reason(), message.clone()),
                (ConditionStatus::False, problem.reason(), message.clone()),
                Some(State::Failed),
                Some(message),
            )
        }
        Outcome::Deployed {
            config,
            client_url,
            rollout,
            app_services,
        } => {
            status.homeserver_configuration = Some(config.status());
            status.client_url = Some(client_url.clone());
            status.app_services = app_services.statuses.clone();
            status.bridges = app_services.bridges();
            match rollout {
                Rollout::Ready => (
                    (
                        ConditionStatus::True,
                        "Running",
                        "Synapse is running the current configuration and its pod is ready"
                            .to_owned(),
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
    };
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
    status.state = state;
    status.reason = reason;
    status
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
}
