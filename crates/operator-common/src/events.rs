//! Kubernetes Events on the custom resources: what a user sees in `kubectl describe`.

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

    /// A Normal event: a notable transition.
    pub async fn normal<K>(&self, object: &K, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_one(object, EventType::Normal, reason, note)
            .await;
    }

    /// A Warning event: a problem the user must act on; `note` says what to do.
    pub async fn warning<K>(&self, object: &K, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish_one(object, EventType::Warning, reason, note)
            .await;
    }

    async fn publish_one<K>(&self, object: &K, type_: EventType, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(reason, error = %error, "cannot publish event");
        }
    }
}

/// An Event to publish for a condition that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// A Warning (a problem the user must act on) rather than a Normal Event.
    pub warning: bool,
    /// The condition's reason, also the Event's.
    pub reason: String,
    /// The condition's message, the Event's note.
    pub message: String,
}

/// The Events for the conditions of `types` that changed from `before` to `after`: a Warning for
/// each reason `is_failure` names, a Normal one when a condition becomes True. Progress in
/// between makes none, and one reason is announced once.
pub fn condition_notices(
    before: &[Condition],
    after: &[Condition],
    types: &[&str],
    is_failure: impl Fn(&str) -> bool,
) -> Vec<Notice> {
    let find = |conditions: &[Condition], type_: &str| {
        conditions.iter().find(|c| c.type_ == type_).cloned()
    };
    let mut notices: Vec<Notice> = Vec::new();
    for type_ in types {
        let Some(now) = find(after, type_) else {
            continue;
        };
        let unchanged = find(before, type_).is_some_and(|was| {
            was.status == now.status && was.reason == now.reason && was.message == now.message
        });
        if unchanged {
            continue;
        }
        let warning = is_failure(&now.reason);
        if (warning || now.status == "True") && !notices.iter().any(|n| n.reason == now.reason) {
            notices.push(Notice {
                warning,
                reason: now.reason,
                message: now.message,
            });
        }
    }
    notices
}

impl Events {
    /// Publishes `notices` about `object`.
    pub async fn publish<K>(&self, object: &K, notices: Vec<Notice>)
    where
        K: Resource<DynamicType = ()>,
    {
        for notice in notices {
            let type_ = if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.publish_one(object, type_, &notice.reason, notice.message)
                .await;
        }
    }
}
