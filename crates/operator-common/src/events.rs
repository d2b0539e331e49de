//! Kubernetes Events on the custom resources: what a user sees in `kubectl describe`.

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
        self.publish(object, EventType::Normal, reason, note).await;
    }

    /// A Warning event: a problem the user must act on; `note` says what to do.
    pub async fn warning<K>(&self, object: &K, reason: &str, note: String)
    where
        K: Resource<DynamicType = ()>,
    {
        self.publish(object, EventType::Warning, reason, note).await;
    }

    async fn publish<K>(&self, object: &K, type_: EventType, reason: &str, note: String)
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
