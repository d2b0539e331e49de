//! The two conditions every bridge reports, `Ready` and `Registered`, and the `state` and `reason`
//! the original API derives from them: the same rules and wording for every bridge kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use synapse_types::common::{CONDITION_READY, CONDITION_REGISTERED, State};

use super::kind::reasons;
use super::registration::RegistrationState;
use crate::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use crate::rollout::Rollout;

/// One condition's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: ConditionStatus,
    pub reason: &'static str,
    pub message: String,
}

impl Verdict {
    pub fn new(status: bool, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            reason,
            message: message.into(),
        }
    }

    /// The same False verdict for `Ready` and `Registered`.
    pub fn both_false(reason: &'static str, message: String) -> (Self, Self) {
        (
            Self::new(false, reason, message.clone()),
            Self::new(false, reason, message),
        )
    }
}

/// Both verdicts when the bridge's Synapse does not exist.
pub fn synapse_not_found(synapse: &str) -> (Verdict, Verdict) {
    Verdict::both_false(
        reasons::SYNAPSE_NOT_FOUND,
        format!(
            "Synapse {synapse} does not exist in this namespace: create it, or name an existing \
             one in spec.synapse"
        ),
    )
}

/// The `Ready` verdict of the bridge `workload` (e.g. `Heisenbridge`) from its Deployment's
/// rollout; `running` is the message once its pod is ready.
pub fn ready_verdict(workload: &str, running: &'static str, rollout: &Rollout) -> Verdict {
    match rollout {
        Rollout::Ready => Verdict::new(true, "Running", running),
        Rollout::Progressing(message) => {
            Verdict::new(false, "RollingOut", format!("{workload}: {message}"))
        }
        Rollout::Failed(message) => Verdict::new(
            false,
            "RolloutFailed",
            format!(
                "the {workload} pod did not become ready: {message}; see the pod's events and \
                 logs"
            ),
        ),
    }
}

/// The `Registered` verdict from what the Synapse's status says of the registration.
pub fn registered_verdict(synapse: &str, registration: &RegistrationState) -> Verdict {
    match registration {
        RegistrationState::Live => Verdict::new(
            true,
            reasons::REGISTERED,
            format!("the registration is live on Synapse {synapse}"),
        ),
        RegistrationState::NotLive { reason, message } => {
            Verdict::new(false, reason, message.clone())
        }
    }
}

/// The parts of a bridge's status that the verdicts decide.
pub struct BridgeStatusFields<'a> {
    pub conditions: &'a mut Vec<Condition>,
    pub state: &'a mut Option<State>,
    pub reason: &'a mut Option<String>,
}

/// Records `ready` and `registered`: both conditions; state FAILED when a reason `is_failure`
/// (the user must act), RUNNING when both hold, unset in between; the status reason is the
/// message of the first that does not hold.
pub fn record_verdicts(
    fields: BridgeStatusFields<'_>,
    (ready, registered): (Verdict, Verdict),
    is_failure: impl Fn(&str) -> bool,
    generation: Option<i64>,
    now: &Time,
) {
    *fields.state = if [&ready, &registered].iter().any(|v| is_failure(v.reason)) {
        Some(State::Failed)
    } else if ready.status == ConditionStatus::True && registered.status == ConditionStatus::True {
        Some(State::Running)
    } else {
        None
    };
    *fields.reason = [&ready, &registered]
        .iter()
        .find(|v| v.status != ConditionStatus::True)
        .map(|v| v.message.clone());
    for (type_, verdict) in [(CONDITION_READY, ready), (CONDITION_REGISTERED, registered)] {
        set_condition(
            fields.conditions,
            ConditionUpdate {
                type_,
                status: verdict.status,
                reason: verdict.reason,
                message: &verdict.message,
                observed_generation: generation,
            },
            now.clone(),
        );
    }
}
