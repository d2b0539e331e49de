//! The status step: `MautrixSignal.status` computed from what the reconciliation found and
//! applied, and the Events its changes call for. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use operator_common::bridge::status::{
    BridgeStatusFields, Verdict, ready_verdict, record_verdicts, registered_verdict,
    synapse_not_found,
};
use operator_common::bridge::{RegistrationState, reasons};
use operator_common::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use operator_common::database::Readiness;
use operator_common::events::EventPolicy;
use operator_common::grant::REFERENCE_NOT_GRANTED;
use operator_common::pipeline::Converged;
use operator_common::rollout::Rollout;
use synapse_types::common::{CONDITION_DATABASE_READY, CONDITION_READY, CONDITION_REGISTERED};
use synapse_types::mautrix_signal::MautrixSignalSynapseStatus;
use synapse_types::{MautrixSignal, MautrixSignalStatus};

use crate::legacy::Migration;
use crate::problems::{Problem, REASON_DATABASE_CONFLICT};

/// Condition type: the user's config.yaml was in a legacy format and was migrated.
pub const CONDITION_CONFIG_MIGRATED: &str = "ConfigMigrated";
/// Reason of [`CONDITION_CONFIG_MIGRATED`].
pub const REASON_MIGRATED: &str = "LegacyConfigMigrated";

/// Ready and Registered while a bridge never started waits for its database.
pub const REASON_DATABASE_NOT_READY: &str = "DatabaseNotReady";

/// What the reconciliation arrived at.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The input cannot be used.
    Problem(Problem),
    /// The Synapse does not exist: nothing is announced or deployed.
    SynapseNotFound { synapse: String },
    /// The Synapse has not published its server name and client URL yet, which the config and
    /// the registration are made from: nothing is deployed yet.
    SynapseNotReady { synapse: String },
    /// The PostgreSQL database cannot be used (`database` is [`Readiness::NotReady`]): nothing
    /// was applied. A bridge started earlier keeps running as it was: `running` says how it
    /// stands.
    WaitingForDatabase {
        synapse: String,
        database: Readiness,
        running: Option<Running>,
    },
    /// Everything is applied and announced.
    Applied {
        synapse: String,
        registration: RegistrationState,
        rollout: Rollout,
        /// Set when the user's file was a legacy one.
        migration: Option<Migration>,
        database: Readiness,
    },
}

/// A bridge deployed before: its rollout and the state of the registration it announced.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub rollout: Rollout,
    pub registration: RegistrationState,
}

impl Outcome {
    /// What this outcome says about the database, if anything.
    fn database(&self) -> Option<Readiness> {
        match self {
            Outcome::Problem(problem) => problem.database(),
            Outcome::WaitingForDatabase { database, .. } | Outcome::Applied { database, .. } => {
                Some(database.clone())
            }
            Outcome::SynapseNotFound { .. } | Outcome::SynapseNotReady { .. } => None,
        }
    }
}

/// Reasons that need the user to act: `FAILED` (on Ready or Registered), and a Warning Event.
/// The database's own reasons only ever stand on `DatabaseReady`, next to Ready's
/// `DatabaseNotReady` (waiting) or the running bridge's state.
fn is_failure(reason: &str) -> bool {
    [
        reasons::CROSS_NAMESPACE_SYNAPSE,
        REFERENCE_NOT_GRANTED,
        reasons::SYNAPSE_NOT_FOUND,
        reasons::REGISTRATION_REJECTED,
        "ConfigMapNotFound",
        "ConfigMapKeyMissing",
        "InvalidConfig",
        "UnsupportedServerName",
        "RolloutFailed",
        REASON_DATABASE_CONFLICT,
        "CloudNativePGMissing",
        "SecretNotFound",
        "SecretKeyMissing",
        "SecretInvalid",
        "SharedWithSynapse",
    ]
    .contains(&reason)
}

fn verdicts(outcome: &Outcome) -> (Verdict, Verdict) {
    let both = Verdict::both_false;
    match outcome {
        Outcome::Problem(problem) => both(problem.reason(), problem.to_string()),
        Outcome::SynapseNotFound { synapse } => synapse_not_found(synapse),
        Outcome::SynapseNotReady { synapse } => both(
            reasons::SYNAPSE_NOT_READY,
            format!(
                "waiting for Synapse {synapse} to publish its server name and client URL in its \
                 status; the bridge's configuration is made from them"
            ),
        ),
        Outcome::WaitingForDatabase {
            synapse,
            running: Some(running),
            ..
        } => (
            ready(&running.rollout),
            registered_verdict(synapse, &running.registration),
        ),
        Outcome::WaitingForDatabase {
            database,
            running: None,
            ..
        } => {
            let why = match database {
                Readiness::NotReady(problem) => problem.message.as_str(),
                _ => "see the DatabaseReady condition",
            };
            both(
                REASON_DATABASE_NOT_READY,
                format!("mautrix-signal waits for its database: {why}"),
            )
        }
        Outcome::Applied {
            synapse,
            registration,
            rollout,
            ..
        } => (ready(rollout), registered_verdict(synapse, registration)),
    }
}

fn ready(rollout: &Rollout) -> Verdict {
    ready_verdict(
        "mautrix-signal",
        "mautrix-signal is running the current configuration and its pod is ready",
        rollout,
    )
}

/// The ConfigMigrated message: what happened and every key that was dropped.
pub fn migration_message(migration: &Migration) -> String {
    let mut message = format!(
        "config.yaml was in the legacy {} format, which mautrix-signal v26 refuses to start \
         with; it was migrated to the bridgev2 format",
        migration.format
    );
    if migration.dropped.is_empty() {
        message.push_str(" and every setting was carried over");
    } else {
        message.push_str(&format!(
            ". Dropped, with no bridgev2 equivalent: {}",
            migration.dropped.join(", ")
        ));
    }
    for note in &migration.notes {
        message.push_str(&format!(". Note: {note}"));
    }
    message
}

/// The next status: `current` with this reconciliation's observations. Conditions keep their
/// transition times unless their status flips, so an unchanged outcome gives an equal status
/// (and no write). `server_name` is the Synapse's, when it published one.
pub fn next_status(
    current: Option<&MautrixSignalStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    server_name: Option<&str>,
    now: Time,
) -> MautrixSignalStatus {
    let mut status = current.cloned().unwrap_or_default();
    status.observed_generation = generation;
    if let Some(server_name) = server_name {
        status.synapse = Some(MautrixSignalSynapseStatus {
            server_name: Some(server_name.to_owned()),
        });
    }
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
    if let Some(database) = outcome.database() {
        set_condition(
            &mut status.conditions,
            ConditionUpdate {
                observed_generation: generation,
                ..database.condition()
            },
            now.clone(),
        );
        status.database_connection_info =
            database.connection_info(status.database_connection_info.take());
    }
    // The migration describes the config that was applied; an unusable input changes nothing.
    if let Outcome::Applied { migration, .. } = outcome {
        match migration {
            Some(migration) => {
                set_condition(
                    &mut status.conditions,
                    ConditionUpdate {
                        type_: CONDITION_CONFIG_MIGRATED,
                        status: ConditionStatus::True,
                        reason: REASON_MIGRATED,
                        message: &migration_message(migration),
                        observed_generation: generation,
                    },
                    now,
                );
            }
            None => status
                .conditions
                .retain(|c| c.type_ != CONDITION_CONFIG_MIGRATED),
        }
    }
    status
}

/// The Events of a MautrixSignal: a Warning for each problem the user must act on, a Normal
/// one when it becomes ready or registered, its configuration is migrated, or a problem ends.
pub const EVENTS: EventPolicy = EventPolicy {
    conditions: &[
        CONDITION_READY,
        CONDITION_REGISTERED,
        CONDITION_DATABASE_READY,
        CONDITION_CONFIG_MIGRATED,
    ],
    milestones: &[
        CONDITION_READY,
        CONDITION_REGISTERED,
        CONDITION_CONFIG_MIGRATED,
    ],
    is_warning: |condition| is_failure(&condition.reason),
    announce_progress: false,
};

/// The end of a reconciliation of `bridge` that arrived at `outcome`, with the server name of
/// its Synapse when it published one; a database that cannot be watched is looked at again.
pub fn converged(
    bridge: &MautrixSignal,
    outcome: &Outcome,
    server_name: Option<&str>,
    now: Time,
) -> Converged<MautrixSignalStatus> {
    let requeue = match outcome {
        Outcome::WaitingForDatabase { database, .. } => database.retry_after(),
        _ => None,
    };
    Converged {
        status: next_status(
            bridge.status.as_ref(),
            bridge.metadata.generation,
            outcome,
            server_name,
            now,
        ),
        notices: Vec::new(),
        requeue,
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
