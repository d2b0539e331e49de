//! Kubernetes Events on the custom resources: what a user sees in `kubectl describe`. One rule
//! turns condition changes into Events for every operator ([`condition_notices`]).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

/// Publishes Events as one operator. Publishing never fails a reconciliation: an Event that
/// cannot be written is logged and dropped.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// Events reported by `operator` (the reporting controller's name).
    pub fn new(client: Client, operator: &str) -> Self {
        let reporter = Reporter {
            controller: operator.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A Warning event: a problem the user must act on; `note` says what to do.
    pub async fn warning<K>(&self, object: &K, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.warning_on(&object.object_ref(&()), reason, note).await;
    }

    /// [`Events::warning`] on an object known only by its reference.
    pub async fn warning_on(&self, object: &ObjectReference, reason: &str, note: String) {
        self.publish_one(object, EventType::Warning, reason, note)
            .await;
    }

    /// Publishes `notices` about `object`.
    pub async fn publish<K>(&self, object: &K, notices: Vec<Notice>)
    where
        K: Resource<DynamicType = ()>,
    {
        let reference = object.object_ref(&());
        for notice in notices {
            let type_ = if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.publish_one(&reference, type_, &notice.reason, notice.message)
                .await;
        }
    }

    async fn publish_one(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, object).await {
            tracing::warn!(reason, error = %error, "cannot publish event");
        }
    }
}

/// An Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// A Warning (a problem the user must act on) rather than a Normal Event.
    pub warning: bool,
    /// The Event's reason (a condition's reason when it stands for one).
    pub reason: String,
    /// The Event's note.
    pub message: String,
}

/// Which condition changes of a kind are announced, and how.
#[derive(Clone, Copy, Debug)]
pub struct EventPolicy {
    /// The condition types whose changes are announced.
    pub conditions: &'static [&'static str],
    /// Those whose first True is news (the object is up, connected): a Normal Event. Another
    /// condition becoming True is announced only when it ends a problem (it was there and not
    /// True): that a new object's database is ready says nothing the Ready Event does not.
    pub milestones: &'static [&'static str],
    /// Whether a condition stands for a problem the user must act on: a Warning.
    pub is_warning: fn(&Condition) -> bool,
    /// Whether a change that is neither a problem nor a condition becoming True (progress such
    /// as a rollout under way) gets a Normal Event too.
    pub announce_progress: bool,
}

/// The Events for the conditions the policy names that changed from `before` to `after`.
/// A condition changed when its status or reason did, or, for a problem, its message (another
/// problem of the same kind). A reason is announced once per change.
pub fn condition_notices(
    before: &[Condition],
    after: &[Condition],
    policy: &EventPolicy,
) -> Vec<Notice> {
    let find = |conditions: &[Condition], type_: &str| {
        conditions.iter().find(|c| c.type_ == type_).cloned()
    };
    let mut notices: Vec<Notice> = Vec::new();
    for type_ in policy.conditions {
        let Some(now) = find(after, type_) else {
            continue;
        };
        let warning = (policy.is_warning)(&now);
        let was = find(before, type_);
        let unchanged = was.as_ref().is_some_and(|was| {
            was.status == now.status
                && was.reason == now.reason
                && (!warning || was.message == now.message)
        });
        let news = was.is_some() || policy.milestones.contains(type_);
        let announced = warning || (now.status == "True" && news) || policy.announce_progress;
        if unchanged || !announced || notices.iter().any(|n| n.reason == now.reason) {
            continue;
        }
        notices.push(Notice {
            warning,
            reason: now.reason,
            message: now.message,
        });
    }
    notices
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    const BRIDGE: EventPolicy = EventPolicy {
        conditions: &["Ready", "Registered", "DatabaseReady"],
        milestones: &["Ready", "Registered"],
        is_warning: |c| c.reason == "InvalidConfig",
        announce_progress: false,
    };

    fn reasons(notices: &[Notice]) -> Vec<(bool, &str)> {
        notices
            .iter()
            .map(|n| (n.warning, n.reason.as_str()))
            .collect()
    }

    #[test]
    fn problems_warn_true_conditions_inform_and_progress_follows_the_policy() {
        let progress = [condition("Ready", "False", "RollingOut", "starting")];
        assert!(condition_notices(&[], &progress, &BRIDGE).is_empty());
        let announcing = EventPolicy {
            announce_progress: true,
            ..BRIDGE
        };
        assert_eq!(
            reasons(&condition_notices(&[], &progress, &announcing)),
            [(false, "RollingOut")]
        );
        let up = [
            condition("Ready", "True", "Running", "up"),
            condition("Registered", "True", "Registered", "live"),
        ];
        assert_eq!(
            reasons(&condition_notices(&progress, &up, &BRIDGE)),
            [(false, "Running"), (false, "Registered")]
        );
        assert!(condition_notices(&up, &up, &BRIDGE).is_empty());
    }

    #[test]
    fn a_supporting_condition_is_announced_when_it_ends_a_problem_not_when_it_starts_true() {
        let ready = [condition("DatabaseReady", "True", "Connected", "ok")];
        assert!(condition_notices(&[], &ready, &BRIDGE).is_empty());
        let waiting = [condition("DatabaseReady", "False", "Waiting", "no answer")];
        assert_eq!(
            reasons(&condition_notices(&waiting, &ready, &BRIDGE)),
            [(false, "Connected")]
        );
    }

    #[test]
    fn a_problem_is_announced_once_per_reason_and_again_when_its_message_changes() {
        let broken = |m: &str| {
            [
                condition("Ready", "False", "InvalidConfig", m),
                condition("Registered", "False", "InvalidConfig", m),
            ]
        };
        let first = condition_notices(&[], &broken("a"), &BRIDGE);
        assert_eq!(reasons(&first), [(true, "InvalidConfig")]);
        assert!(condition_notices(&broken("a"), &broken("a"), &BRIDGE).is_empty());
        assert_eq!(
            reasons(&condition_notices(&broken("a"), &broken("b"), &BRIDGE)),
            [(true, "InvalidConfig")]
        );
        // Progress messages change without an Event.
        let announcing = EventPolicy {
            announce_progress: true,
            ..BRIDGE
        };
        assert!(
            condition_notices(
                &[condition("Ready", "False", "RollingOut", "a")],
                &[condition("Ready", "False", "RollingOut", "b")],
                &announcing
            )
            .is_empty()
        );
    }
}
