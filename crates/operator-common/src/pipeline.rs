//! The end of every reconciliation, the same for the three operators: the status an operator
//! computed from what it applied is written (only when it changed) with an Event for each
//! condition change; a request the API server refused is recorded on the object itself
//! (`Ready=False`, `state: FAILED`, a Warning Event naming the refused request and the API
//! server's message) and retried with backoff; a transient failure is retried.
//!
//! Each operator's `reconcile` is a short list of its steps (fetch, validate, build, apply,
//! status) ending in [`Pipeline::finish`].

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use synapse_types::common::{CONDITION_READY, State};

use crate::apply::Applier;
use crate::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use crate::error::{Error, Refusal};
use crate::events::{EventPolicy, Events, Notice, condition_notices};
use crate::reconciled::{ObjectStatus, Reconciled};

/// What a reconciliation arrived at: the next status, the Events that are not condition
/// changes, and when to look again without a change (inputs that cannot be watched).
#[derive(Clone, Debug, PartialEq)]
pub struct Converged<S> {
    pub status: S,
    pub notices: Vec<Notice>,
    pub requeue: Option<Duration>,
}

impl<S> Converged<S> {
    /// `status`, nothing else to announce, nothing to look at again.
    pub fn status(status: S) -> Self {
        Self {
            status,
            notices: Vec::new(),
            requeue: None,
        }
    }
}

/// The writes and Events of one operator.
#[derive(Clone)]
pub struct Pipeline {
    pub applier: Applier,
    pub events: Events,
    pub policy: EventPolicy,
}

impl Pipeline {
    /// The pipeline of the operator `field_manager`, announcing condition changes by `policy`.
    pub fn new(client: kube::Client, field_manager: &'static str, policy: EventPolicy) -> Self {
        Self {
            applier: Applier::new(client.clone(), field_manager),
            events: Events::new(client, field_manager),
            policy,
        }
    }

    /// Ends the reconciliation of `object` with `outcome`.
    pub async fn finish<K: Reconciled>(
        &self,
        object: &K,
        outcome: Result<Converged<K::Status>, Error>,
    ) -> Result<Action, Error> {
        let result = match outcome {
            Ok(converged) => {
                let mut notices = self.condition_notices(object, &converged.status);
                notices.extend(converged.notices);
                self.publish(object, converged.status, notices)
                    .await
                    .map(|()| {
                        converged
                            .requeue
                            .map_or_else(Action::await_change, Action::requeue)
                    })
            }
            Err(error) => Err(error),
        };
        if let Err(Error::Refused(refusal)) = &result {
            let status = refused_status(object, refusal, now());
            let notice = Notice {
                warning: true,
                reason: refusal.reason().to_owned(),
                message: refusal.to_string(),
            };
            if let Err(error) = self.publish(object, status, vec![notice]).await {
                tracing::warn!(%error, "cannot record the refusal in the status");
            }
        }
        result
    }

    fn condition_notices<K: Reconciled>(&self, object: &K, next: &K::Status) -> Vec<Notice> {
        let before = object.status().map(|s| s.conditions()).unwrap_or_default();
        condition_notices(before, next.conditions(), &self.policy)
    }

    /// Writes `status` and publishes `notices` when the status differs from the current one.
    async fn publish<K: Reconciled>(
        &self,
        object: &K,
        status: K::Status,
        notices: Vec<Notice>,
    ) -> Result<(), Error> {
        if object.status() == Some(&status) {
            return Ok(());
        }
        self.events.publish(object, notices).await;
        self.applier.apply_status(object, &status).await
    }
}

/// The status of `object` after `refusal`: `Ready=False` with the refusal's reason and message,
/// `state: FAILED`; the other conditions as they were.
pub fn refused_status<K: Reconciled>(object: &K, refusal: &Refusal, now: Time) -> K::Status {
    let mut status = object.status().cloned().unwrap_or_default();
    let generation = object.meta().generation;
    let message = refusal.to_string();
    status.set_observed_generation(generation);
    set_condition(
        status.conditions_mut(),
        ConditionUpdate {
            type_: CONDITION_READY,
            status: ConditionStatus::False,
            reason: refusal.reason(),
            message: &message,
            observed_generation: generation,
        },
        now,
    );
    status.set_state(Some(State::Failed), Some(message));
    status
}

/// The time conditions are stamped with.
pub fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use synapse_types::Synapse;

    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_refusal_fails_ready_and_keeps_the_other_conditions() {
        let mut synapse: Synapse = serde_json::from_value(serde_json::json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Synapse",
            "metadata": {"name": "my.synapse", "namespace": "ns", "generation": 2},
            "spec": {"homeserver": {"values": {"serverName": "x.org", "reportStats": false}}},
            "status": {"conditions": [{
                "type": "DatabaseReady", "status": "True", "reason": "SQLite", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z"
            }]},
        }))
        .unwrap();
        let refusal = Refusal {
            kind: ErrorKind::Invalid,
            action: "apply Service ns/my.synapse".into(),
            message: "metadata.name: Invalid value: \"my.synapse\"".into(),
        };
        let at = Time(Timestamp::from_second(100).unwrap());
        let status = refused_status(&synapse, &refusal, at.clone());
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Invalid")
        );
        assert!(
            ready.message.contains("Service ns/my.synapse"),
            "{}",
            ready.message
        );
        assert_eq!(ready.observed_generation, Some(2));
        assert_eq!(status.state, Some(State::Failed));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(status.conditions.len(), 2);
        // Recorded already: the same refusal again gives the same status, so nothing is written.
        synapse.status = Some(status.clone());
        let later = Time(Timestamp::from_second(200).unwrap());
        assert_eq!(refused_status(&synapse, &refusal, later), status);
    }
}
