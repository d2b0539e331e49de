//! The status step: `Heisenbridge.status` computed from what the reconciliation found and
//! applied, and the Events its changes call for. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator_common::bridge::status::{
    BridgeStatusFields, Verdict, ready_verdict, record_verdicts, registered_verdict,
    synapse_not_found,
};
use operator_common::bridge::{CrossNamespaceSynapse, RegistrationState, reasons};
use operator_common::events::EventPolicy;
use operator_common::grant::{NotGranted, REFERENCE_NOT_GRANTED};
use operator_common::pipeline::Converged;
use operator_common::rollout::Rollout;
use synapse_types::common::{CONDITION_READY, CONDITION_REGISTERED};
use synapse_types::{Heisenbridge, HeisenbridgeStatus};

use crate::registration::{CONFIG_MAP_KEY, InvalidRegistration};

/// Input the operator cannot use. The objects already deployed are left as they are.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    CrossNamespaceSynapse(#[from] CrossNamespaceSynapse),
    #[error(transparent)]
    ReferenceNotGranted(#[from] NotGranted),
    #[error(
        "ConfigMap {namespace}/{name} named by spec.configMap does not exist: create it with \
         your registration under the key {CONFIG_MAP_KEY}, or remove spec.configMap to use a \
         generated registration"
    )]
    ConfigMapNotFound { namespace: String, name: String },
    #[error("ConfigMap {namespace}/{name} has no key {CONFIG_MAP_KEY}: put the registration there")]
    ConfigMapKeyMissing { namespace: String, name: String },
    #[error(
        "{CONFIG_MAP_KEY} in ConfigMap {namespace}/{name} is not a usable registration: {error}"
    )]
    InvalidRegistration {
        namespace: String,
        name: String,
        error: InvalidRegistration,
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
            Problem::InvalidRegistration { .. } => "InvalidRegistration",
        }
    }
}

/// What became of the Synapse side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SynapseSide {
    /// The Synapse does not exist: nothing is announced, the Deployment is left as it was.
    NotFound { name: String },
    /// The Synapse exists; `client_url` is whether its status names its client URL yet (without
    /// it no Deployment can be made).
    Found {
        name: String,
        client_url: bool,
        registration: RegistrationState,
    },
}

/// What the reconciliation arrived at.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The input cannot be used.
    Problem(Problem),
    /// The registration is stored; `rollout` is the Deployment's, when one was applied.
    Applied {
        synapse: SynapseSide,
        rollout: Option<Rollout>,
    },
}

/// Reasons that need the user to act: `FAILED`, and a Warning Event.
fn is_failure(reason: &str) -> bool {
    [
        reasons::CROSS_NAMESPACE_SYNAPSE,
        REFERENCE_NOT_GRANTED,
        reasons::SYNAPSE_NOT_FOUND,
        reasons::REGISTRATION_REJECTED,
        "ConfigMapNotFound",
        "ConfigMapKeyMissing",
        "InvalidRegistration",
        "RolloutFailed",
    ]
    .contains(&reason)
}

fn verdicts(outcome: &Outcome) -> (Verdict, Verdict) {
    match outcome {
        Outcome::Problem(problem) => Verdict::both_false(problem.reason(), problem.to_string()),
        Outcome::Applied {
            synapse: SynapseSide::NotFound { name },
            ..
        } => synapse_not_found(name),
        Outcome::Applied {
            synapse:
                SynapseSide::Found {
                    name,
                    client_url,
                    registration,
                },
            rollout,
        } => {
            let ready = match (client_url, rollout) {
                (true, Some(rollout)) => ready_verdict(
                    "Heisenbridge",
                    "Heisenbridge is running the current registration and its pod is ready",
                    rollout,
                ),
                _ => Verdict::new(
                    false,
                    reasons::SYNAPSE_NOT_READY,
                    format!(
                        "waiting for Synapse {name} to publish its client URL in its status \
                         before deploying the bridge"
                    ),
                ),
            };
            (ready, registered_verdict(name, registration))
        }
    }
}

/// The next status: `current` with this reconciliation's observations. Conditions keep their
/// transition times unless their status flips, so an unchanged outcome gives an equal status
/// (and no write).
pub fn next_status(
    current: Option<&HeisenbridgeStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Time,
) -> HeisenbridgeStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    record_verdicts(
        BridgeStatusFields {
            conditions: &mut status.conditions,
            state: &mut status.state,
            reason: &mut status.reason,
        },
        verdicts(outcome),
        is_failure,
        generation,
        &now,
    );
    status
}

/// The Events of a Heisenbridge: a Warning for each problem the user must act on, a Normal
/// one when it becomes ready or registered.
pub const EVENTS: EventPolicy = EventPolicy {
    conditions: &[CONDITION_READY, CONDITION_REGISTERED],
    milestones: &[CONDITION_READY, CONDITION_REGISTERED],
    is_warning: |condition| is_failure(&condition.reason),
    announce_progress: false,
};

/// The end of a reconciliation of `bridge` that arrived at `outcome`.
pub fn converged(
    bridge: &Heisenbridge,
    outcome: &Outcome,
    now: Time,
) -> Converged<HeisenbridgeStatus> {
    Converged::status(next_status(
        bridge.status.as_ref(),
        bridge.metadata.generation,
        outcome,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use k8s_openapi::jiff::Timestamp;
    use operator_common::conditions::{find_condition, is_condition_true};
    use synapse_types::common::State;

    use operator_common::events::{Notice, condition_notices};
    use operator_common::registration_file::Violation as SynapseRule;

    use super::*;
    use crate::registration::Violation;

    fn notices(before: Option<&HeisenbridgeStatus>, after: &HeisenbridgeStatus) -> Vec<Notice> {
        let before = before.map(|b| b.conditions.as_slice()).unwrap_or_default();
        condition_notices(before, &after.conditions, &EVENTS)
    }

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    fn found(client_url: bool, registration: RegistrationState) -> SynapseSide {
        SynapseSide::Found {
            name: "hs".into(),
            client_url,
            registration,
        }
    }

    fn pending() -> RegistrationState {
        RegistrationState::NotLive {
            reason: reasons::REGISTRATION_PENDING,
            message: "waiting".into(),
        }
    }

    fn condition<'a>(status: &'a HeisenbridgeStatus, type_: &str) -> &'a Condition {
        find_condition(&status.conditions, type_).unwrap()
    }

    #[test]
    fn running_and_registered_is_running_and_steady() {
        let outcome = Outcome::Applied {
            synapse: found(true, RegistrationState::Live),
            rollout: Some(Rollout::Ready),
        };
        let first = next_status(None, Some(3), &outcome, at(10));
        assert!(is_condition_true(&first.conditions, "Ready"));
        assert!(is_condition_true(&first.conditions, "Registered"));
        assert_eq!(first.state, Some(State::Running));
        assert_eq!(first.reason, None);
        assert_eq!(first.observed_generation, Some(3));
        assert_eq!(condition(&first, "Ready").observed_generation, Some(3));
        // The same outcome later gives the same status: nothing to write, no Event.
        let again = next_status(Some(&first), Some(3), &outcome, at(99));
        assert_eq!(again, first);
        assert_eq!(notices(Some(&first), &again), []);
        let told = notices(None, &first);
        assert_eq!(
            told.iter()
                .map(|n| (n.warning, n.reason.as_str()))
                .collect::<Vec<_>>(),
            [(false, "Running"), (false, "Registered")]
        );
    }

    #[test]
    fn synapse_missing_fails_both_and_warns_once() {
        let outcome = Outcome::Applied {
            synapse: SynapseSide::NotFound { name: "hs".into() },
            rollout: None,
        };
        let status = next_status(None, Some(1), &outcome, at(1));
        for type_ in ["Ready", "Registered"] {
            let c = condition(&status, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", "SynapseNotFound")
            );
            assert!(
                c.message.contains("Synapse hs does not exist"),
                "{}",
                c.message
            );
        }
        assert_eq!(status.state, Some(State::Failed));
        let told = notices(None, &status);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].warning);
    }

    #[test]
    fn waiting_states_are_neither_running_nor_failed_and_stay_quiet() {
        for (client_url, rollout) in [
            (false, None),
            (true, Some(Rollout::Progressing("starting".into()))),
            (true, Some(Rollout::Ready)),
        ] {
            let status = next_status(
                None,
                Some(1),
                &Outcome::Applied {
                    synapse: found(client_url, pending()),
                    rollout,
                },
                at(1),
            );
            assert_eq!(status.state, None);
            assert!(status.reason.is_some());
            assert!(notices(None, &status).iter().all(|n| !n.warning));
        }
        let no_url = next_status(
            None,
            Some(1),
            &Outcome::Applied {
                synapse: found(false, pending()),
                rollout: None,
            },
            at(1),
        );
        assert_eq!(condition(&no_url, "Ready").reason, "SynapseNotReady");
        assert_eq!(
            condition(&no_url, "Registered").reason,
            "RegistrationPending"
        );
    }

    #[test]
    fn a_rejected_registration_fails_with_the_synapse_operators_reason() {
        let status = next_status(
            None,
            Some(1),
            &Outcome::Applied {
                synapse: found(
                    true,
                    RegistrationState::NotLive {
                        reason: reasons::REGISTRATION_REJECTED,
                        message: "Synapse hs rejected the registration: duplicate id".into(),
                    },
                ),
                rollout: Some(Rollout::Ready),
            },
            at(1),
        );
        assert!(is_condition_true(&status.conditions, "Ready"));
        let registered = condition(&status, "Registered");
        assert_eq!(registered.reason, "RegistrationRejected");
        assert!(registered.message.contains("duplicate id"));
        assert_eq!(status.state, Some(State::Failed));
        assert_eq!(status.reason.as_deref(), Some(registered.message.as_str()));
        assert!(notices(None, &status).iter().any(|n| n.warning));
    }

    #[test]
    fn an_invalid_configmap_names_the_rule_and_recovers() {
        let problem = Problem::InvalidRegistration {
            namespace: "ns".into(),
            name: "cfg".into(),
            error: InvalidRegistration(vec![Violation::Synapse(
                SynapseRule::MissingSenderLocalpart,
            )]),
        };
        let running = next_status(
            None,
            Some(1),
            &Outcome::Applied {
                synapse: found(true, RegistrationState::Live),
                rollout: Some(Rollout::Ready),
            },
            at(1),
        );
        let broken = next_status(Some(&running), Some(2), &Outcome::Problem(problem), at(2));
        for type_ in ["Ready", "Registered"] {
            let c = condition(&broken, type_);
            assert_eq!(
                (c.status.as_str(), c.reason.as_str()),
                ("False", "InvalidRegistration")
            );
            assert!(c.message.contains("ConfigMap ns/cfg"), "{}", c.message);
            assert!(
                c.message.contains("`sender_localpart` is missing"),
                "{}",
                c.message
            );
            assert_eq!(c.last_transition_time, at(2));
        }
        assert_eq!(broken.state, Some(State::Failed));
        let told = notices(Some(&running), &broken);
        assert_eq!(told.len(), 1);
        assert!(told[0].warning && told[0].reason == "InvalidRegistration");

        let fixed = next_status(
            Some(&broken),
            Some(3),
            &Outcome::Applied {
                synapse: found(true, RegistrationState::Live),
                rollout: Some(Rollout::Ready),
            },
            at(3),
        );
        assert_eq!(fixed.state, Some(State::Running));
        assert_eq!(condition(&fixed, "Ready").last_transition_time, at(3));
    }

    #[test]
    fn problem_messages_say_what_to_do() {
        let cross = Problem::from(CrossNamespaceSynapse {
            namespace: "other".into(),
            name: "hs".into(),
        });
        assert_eq!(cross.reason(), "CrossNamespaceSynapse");
        assert!(
            cross
                .to_string()
                .contains("put the bridge in the Synapse's namespace")
        );
        let missing = Problem::ConfigMapNotFound {
            namespace: "ns".into(),
            name: "cfg".into(),
        };
        assert!(missing.to_string().contains("heisenbridge.yaml"));
    }
}
