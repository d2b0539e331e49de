//! The status step: `Synapse.status` computed from what the reconciliation found and applied,
//! and the Events its changes call for. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use operator_common::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use operator_common::database::{CRD_RETRY, Problem, Readiness};
use operator_common::events::{EventPolicy, Notice};
use operator_common::pipeline::Converged;
use operator_common::rollout::Rollout;
use synapse_types::Synapse;
use synapse_types::common::{CONDITION_DATABASE_READY, CONDITION_READY, State};
use synapse_types::contract::AppServiceState;
use synapse_types::synapse::SynapseStatus;

use crate::appservice::Decision;
use crate::expose::Exposure;
use crate::monitoring::Monitoring;
use crate::public::Public;
use crate::resolve::{ConfigProblem, ResolvedConfig};
use crate::workers::step::WorkersState;

/// The Events of a Synapse, as of the bridges: a Warning for what the user must act on, a Normal
/// one when it becomes Ready or a problem ends. Progress (a check or a rollout under way), and a
/// new Synapse's database or route being there, are in the conditions only: an Event for each
/// would double the writes of a burst of creations.
pub const EVENTS: EventPolicy = EventPolicy {
    conditions: &[
        CONDITION_READY,
        CONDITION_DATABASE_READY,
        CONDITION_EXPOSED,
        CONDITION_MONITORED,
    ],
    milestones: &[CONDITION_READY],
    is_warning,
    announce_progress: false,
};

/// A database that is not ready, a configuration problem or a failed rollout.
fn is_warning(condition: &Condition) -> bool {
    condition.status != "True"
        && (condition.type_ == CONDITION_DATABASE_READY
            || condition.type_ == CONDITION_EXPOSED
            || condition.type_ == CONDITION_MONITORED
            || condition.reason == REASON_ROLLOUT_FAILED
            || ConfigProblem::REASONS.contains(&condition.reason.as_str()))
}

const REASON_ROLLOUT_FAILED: &str = "RolloutFailed";
const REASON_CHECKING: &str = "CheckingConfig";

/// The end of a reconciliation that arrived at `outcome`: the next status, the Events of
/// app services whose state changed, and when to look again at what cannot be watched.
pub fn converged(synapse: &Synapse, outcome: &Outcome<'_>, now: Time) -> Converged<SynapseStatus> {
    let status = next_status(
        synapse.status.as_ref(),
        synapse.metadata.generation,
        outcome,
        now,
    );
    let requeue = match outcome {
        Outcome::WaitingForDatabase { database, .. } => database.retry_after(),
        Outcome::Deployed {
            exposure: Exposure::Unserved { .. },
            ..
        }
        | Outcome::Deployed {
            monitoring: Monitoring::Unserved(_),
            ..
        } => Some(CRD_RETRY),
        _ => None,
    };
    Converged {
        notices: app_service_notices(synapse.status.as_ref(), &status),
        status,
        requeue,
    }
}

/// Events for app services whose state changed: Normal when registered, Warning (with the
/// reason) when rejected.
fn app_service_notices(before: Option<&SynapseStatus>, after: &SynapseStatus) -> Vec<Notice> {
    let before = before
        .map(|s| s.app_services.as_slice())
        .unwrap_or_default();
    after
        .app_services
        .iter()
        .filter(|entry| !before.contains(entry))
        .map(|entry| {
            let bridge = format!("{} {}", entry.source.kind, entry.source.name);
            match entry.state {
                AppServiceState::Registered => Notice {
                    warning: false,
                    reason: "AppServiceRegistered".into(),
                    message: format!("registration of {bridge} accepted and mounted"),
                },
                AppServiceState::Rejected => Notice {
                    warning: true,
                    reason: "AppServiceRejected".into(),
                    message: format!(
                        "registration of {bridge} rejected, not mounted: {}",
                        entry.reason.as_deref().unwrap_or_default()
                    ),
                },
            }
        })
        .collect()
}

/// Condition type: with `spec.expose`, the Synapse is routed from outside the cluster.
pub const CONDITION_EXPOSED: &str = "Exposed";

/// Condition type: with `spec.metrics.monitor`, Prometheus is told to scrape the Synapse.
pub const CONDITION_MONITORED: &str = "Monitored";

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
    /// Synapse checks a new configuration or image (Job `job`) before it rolls out; `running` is
    /// the rollout of the Deployment that keeps running meanwhile.
    CheckingConfig {
        job: String,
        running: Option<Rollout>,
    },
    /// The workload for `config`, with the accepted app services of `app_services`, was applied.
    Deployed {
        exposure: &'a Exposure,
        monitoring: Monitoring,
        config: &'a ResolvedConfig,
        database: &'a Readiness,
        client_url: String,
        metrics_url: Option<String>,
        rollout: Rollout,
        /// With workers: how they stand.
        workers: Option<&'a WorkersState>,
        /// The Synapse version of the image applied, if its tag names one.
        version: Option<String>,
        /// `spec.suspend`: the workloads are scaled to zero.
        suspended: bool,
        /// The id of the signing key in use.
        signing_key_id: Option<String>,
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
        Outcome::CheckingConfig { job, running } => {
            let message = format!(
                "Synapse checks the new configuration and image (Job {job}) before they roll out"
            );
            let checking = (ConditionStatus::True, REASON_CHECKING, message.clone());
            let verdict = match running {
                Some(rollout) => {
                    let (ready, _, state, reason) = rollout_verdict(rollout);
                    (ready, checking, state, reason)
                }
                None => (
                    (ConditionStatus::False, REASON_CHECKING, message.clone()),
                    checking,
                    None,
                    Some(message),
                ),
            };
            (verdict, None)
        }
        Outcome::Deployed {
            exposure,
            monitoring,
            config,
            database,
            client_url,
            metrics_url,
            rollout,
            workers,
            version,
            suspended,
            signing_key_id,
            app_services,
        } => {
            status.signing_key_id = signing_key_id.clone();
            if *rollout == Rollout::Ready && version.is_some() && !*suspended {
                // It runs now: no older image may replace it.
                status.synapse_version = version.clone();
            }
            publish_exposure(&mut status, exposure, generation, now.clone());
            publish_monitoring(&mut status, *monitoring, generation, now.clone());
            status.metrics_url = metrics_url.clone();
            status.workers = workers.map(|w| w.status.clone());
            status.homeserver_configuration = Some(config.status());
            status.client_url = Some(client_url.clone());
            status.app_services = app_services.statuses.clone();
            status.bridges = app_services.bridges();
            let waiting = workers.and_then(|w| w.waiting.as_deref());
            let verdict = match (rollout, waiting) {
                _ if *suspended => {
                    let message = "spec.suspend: every workload of this Synapse is scaled to \
                                   zero; its data volume, database and secrets are kept"
                        .to_owned();
                    (
                        (ConditionStatus::False, "Suspended", message.clone()),
                        (ConditionStatus::False, "Suspended", message.clone()),
                        None,
                        Some(message),
                    )
                }
                (Rollout::Ready, Some(waiting)) => {
                    let message =
                        format!("the main process is ready, the workers are not: {waiting}");
                    (
                        (ConditionStatus::False, "WorkersNotReady", message.clone()),
                        (ConditionStatus::True, "RollingOut", message.clone()),
                        None,
                        Some(message),
                    )
                }
                _ => rollout_verdict(rollout),
            };
            (verdict, Some((*database).clone()))
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

/// The `Exposed` condition and the public URLs; neither without `spec.expose`.
fn publish_exposure(
    status: &mut SynapseStatus,
    exposure: &Exposure,
    generation: Option<i64>,
    now: Time,
) {
    let (condition_status, reason, message, public) = match exposure {
        Exposure::Off => {
            status.conditions.retain(|c| c.type_ != CONDITION_EXPOSED);
            status.public_client_url = None;
            status.federation_endpoint = None;
            return;
        }
        Exposure::Routed(public) => (
            ConditionStatus::True,
            "Routed",
            format!(
                "{} and the .well-known of {} are routed to Synapse: clients use {}, other \
                 servers {}",
                public.host,
                public.server_name,
                public.base_url(),
                public.federation_endpoint()
            ),
            Some(public),
        ),
        Exposure::Unserved { reason, crd } => (
            ConditionStatus::False,
            *reason,
            format!(
                "spec.expose needs {crd}, which the cluster does not serve: install its CRDs; \
                 Synapse runs meanwhile, and the operator looks again every {}s",
                CRD_RETRY.as_secs()
            ),
            None,
        ),
    };
    status.public_client_url = public.map(Public::base_url);
    status.federation_endpoint = public.map(Public::federation_endpoint);
    set_condition(
        &mut status.conditions,
        ConditionUpdate {
            type_: CONDITION_EXPOSED,
            status: condition_status,
            reason,
            message: &message,
            observed_generation: generation,
        },
        now,
    );
}

/// The `Monitored` condition; none without `spec.metrics.monitor`.
fn publish_monitoring(
    status: &mut SynapseStatus,
    monitoring: Monitoring,
    generation: Option<i64>,
    now: Time,
) {
    let (condition_status, reason, message) = match monitoring {
        Monitoring::Off => {
            status.conditions.retain(|c| c.type_ != CONDITION_MONITORED);
            return;
        }
        Monitoring::Monitored(kind) => (
            ConditionStatus::True,
            "MonitorApplied",
            format!("the {kind} of this Synapse tells Prometheus to scrape its metrics"),
        ),
        Monitoring::MetricsDisabled => (
            ConditionStatus::False,
            "MetricsDisabled",
            "spec.metrics.monitor asks for a monitor, but homeserver.yaml sets enable_metrics: \
             false: remove it, or remove spec.metrics.monitor"
                .to_owned(),
        ),
        Monitoring::Unserved(kind) => (
            ConditionStatus::False,
            "PrometheusOperatorMissing",
            format!(
                "spec.metrics.monitor needs the {kind} CRD (monitoring.coreos.com/v1, the \
                 Prometheus Operator), which the cluster does not serve: install it; Synapse \
                 serves its metrics meanwhile, and the operator looks again every {}s",
                CRD_RETRY.as_secs()
            ),
        ),
    };
    set_condition(
        &mut status.conditions,
        ConditionUpdate {
            type_: CONDITION_MONITORED,
            status: condition_status,
            reason,
            message: &message,
            observed_generation: generation,
        },
        now,
    );
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
                (
                    ConditionStatus::False,
                    REASON_ROLLOUT_FAILED,
                    message.clone(),
                ),
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

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
