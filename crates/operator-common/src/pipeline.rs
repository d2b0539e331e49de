//! The end of every reconciliation, the same for the three operators: the status an operator
//! computed from what it applied is written (only when it changed) with an Event for each
//! condition change; a request the API server refused is recorded on the object itself
//! (`Ready=False`, `state: FAILED`, a Warning Event naming the refused request and the API
//! server's message) and retried with backoff; a transient failure is retried.
//!
//! Each operator's `reconcile` is a short list of its steps (fetch, validate, build, apply,
//! status) ending in [`Pipeline::finish`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use synapse_types::common::{CONDITION_READY, State};

use crate::apply::Applier;
use crate::conditions::{ConditionStatus, ConditionUpdate, set_condition};
use crate::error::{Error, Refusal};
use crate::events::{EventPolicy, Events, Notice, condition_notices};
use crate::input::ConfigMapReader;
use crate::reconciled::{ObjectStatus, Reconciled};
use crate::runtime::Runtime;
use crate::unseen::Unseen;

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
    /// Reads the input ConfigMaps specs name, within the tenancy rules.
    pub config_maps: ConfigMapReader,
    pub events: Events,
    pub policy: EventPolicy,
    /// The statuses this operator wrote that its cache may not show yet.
    written: Arc<Mutex<Written>>,
}

/// By object uid: the last status this operator wrote, and every `resourceVersion` of the object
/// known to come before that write: those its writes were made over, those its earlier writes
/// made, and those its changes to the object itself (a finalizer) made on the way. While the
/// cache shows one of them, the status written is the current one: a reconciliation triggered
/// before the cache caught up (by a child's change, say) must not write it again, with new
/// transition times and its Events once more. Several writes can come before the cache shows the
/// first, so the version of any of them, not only the last, is stale.
type Written = HashMap<String, WrittenStatus>;

#[derive(Default)]
struct WrittenStatus {
    /// None while only the object itself was changed.
    status: Option<serde_json::Value>,
    stale_versions: Vec<String>,
    /// The version the last write made, stale once another write follows it.
    made: Option<String>,
}

/// Bounds the stale versions remembered of one object: more writes than that before the cache
/// shows the first cost a repeated write, nothing else.
const MAX_STALE_VERSIONS: usize = 16;

/// Bounds the memory of [`Written`].
const MAX_WRITTEN: usize = 10_000;

impl Pipeline {
    /// The pipeline of the operator `runtime` runs.
    pub fn of(runtime: &Runtime, policy: EventPolicy) -> Self {
        Self::new(
            runtime.client.clone(),
            runtime.field_manager,
            policy,
            runtime.namespace.clone(),
            runtime.unseen.clone(),
        )
    }

    /// The pipeline of the operator `field_manager`, announcing condition changes by `policy`;
    /// `watched`: the one namespace it is installed for, if it is; `unseen`: its applies its
    /// caches do not show yet.
    pub fn new(
        client: kube::Client,
        field_manager: &'static str,
        policy: EventPolicy,
        watched: Option<String>,
        unseen: Unseen,
    ) -> Self {
        Self {
            applier: Applier::new(client.clone(), field_manager, unseen),
            config_maps: ConfigMapReader::new(client.clone(), watched),
            events: Events::new(client, field_manager),
            policy,
            written: Arc::default(),
        }
    }

    /// `object` as this operator last left it: with the status it wrote, when the cache does
    /// not show that write yet. Each reconciliation starts from it.
    pub fn current<K: Reconciled>(&self, object: Arc<K>) -> Arc<K> {
        let (Some(uid), Some(version)) = (
            object.meta().uid.as_deref(),
            object.meta().resource_version.as_deref(),
        ) else {
            return object;
        };
        let mut written = lock(&self.written);
        match written.get(uid) {
            Some(entry) if entry.stale_versions.iter().any(|v| v == version) => {
                let Some(Ok(status)) = (entry.status.clone()).map(serde_json::from_value) else {
                    return object;
                };
                let mut current = object.as_ref().clone();
                *current.status_mut() = Some(status);
                Arc::new(current)
            }
            // The cache shows the last write, or a later version, which holds it.
            Some(_) => {
                written.remove(uid);
                object
            }
            None => object,
        }
    }

    /// This reconciliation changed `object` itself (not its status), which made the version
    /// `made`: one the cache may show before the status the reconciliation ends with.
    pub fn changed<K: Reconciled>(&self, object: &K, made: Option<String>) {
        if let (Some(uid), Some(made)) = (object.meta().uid.clone(), made) {
            self.remember(uid, |entry| entry.stale_versions.push(made));
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
        let made = self.applier.apply_status(object, &status).await?;
        let meta = object.meta();
        if let (Some(uid), Some(version), Ok(status)) = (
            meta.uid.clone(),
            meta.resource_version.clone(),
            serde_json::to_value(&status),
        ) {
            self.remember(uid, |entry| {
                entry.stale_versions.push(version);
                entry.stale_versions.extend(entry.made.take());
                entry.status = Some(status);
                entry.made = made;
            });
        }
        Ok(())
    }

    fn remember(&self, uid: String, update: impl FnOnce(&mut WrittenStatus)) {
        let mut written = lock(&self.written);
        // Entries of deleted objects are never seen again; forgetting them all only costs the
        // next reconciliations of the others a repeated write.
        if written.len() >= MAX_WRITTEN && !written.contains_key(&uid) {
            written.clear();
        }
        let entry = written.entry(uid).or_default();
        update(entry);
        let excess = entry
            .stale_versions
            .len()
            .saturating_sub(MAX_STALE_VERSIONS);
        entry.stale_versions.drain(..excess);
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The time conditions are stamped with.
pub fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use synapse_types::{Synapse, SynapseStatus};

    use super::*;
    use crate::error::ErrorKind;
    use crate::testing::{Exchange, scripted};

    const QUIET: EventPolicy = EventPolicy {
        conditions: &[],
        milestones: &[],
        is_warning: |_| false,
        announce_progress: false,
    };

    fn at_version(version: &str, observed: Option<i64>) -> Arc<Synapse> {
        let mut synapse: Synapse = serde_json::from_value(serde_json::json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Synapse",
            "metadata": {"name": "hs", "namespace": "ns", "uid": "u", "resourceVersion": version},
            "spec": {"homeserver": {"values": {"serverName": "x.org", "reportStats": false}}},
        }))
        .unwrap();
        synapse.status = observed.map(observing);
        Arc::new(synapse)
    }

    /// A status of the spec's `generation`.
    fn observing(generation: i64) -> SynapseStatus {
        SynapseStatus {
            observed_generation: Some(generation),
            ..SynapseStatus::default()
        }
    }

    /// The status write, answered with the object at `version`.
    fn status_write(version: &str) -> Exchange {
        let written = serde_json::to_value(at_version(version, None).as_ref()).unwrap();
        Exchange::patch("/apis/synapse.opdev.io/v1alpha1/namespaces/ns/synapses/hs/status")
            .reply(200, written)
    }

    fn observed(synapse: &Synapse) -> Option<i64> {
        synapse.status.as_ref().and_then(|s| s.observed_generation)
    }

    #[tokio::test]
    async fn a_cache_behind_any_of_several_status_writes_is_not_written_over_again() {
        let (client, api) = scripted();
        let pipeline = Pipeline::new(client, "synapse-operator", QUIET, None, Unseen::default());
        let status = |generation| Converged::status(observing(generation));
        let work = async {
            // Two writes before the cache shows either: both made over version 1.
            let first = pipeline.current(at_version("1", None));
            pipeline
                .finish(first.as_ref(), Ok(status(1)))
                .await
                .unwrap();
            let second = pipeline.current(at_version("1", None));
            assert_eq!(
                observed(&second),
                Some(1),
                "the first write, not yet cached"
            );
            pipeline
                .finish(second.as_ref(), Ok(status(2)))
                .await
                .unwrap();
            // The cache shows the first write (version 2): the second is still the current one.
            let behind = pipeline.current(at_version("2", Some(1)));
            assert_eq!(observed(&behind), Some(2));
            pipeline
                .finish(behind.as_ref(), Ok(status(2)))
                .await
                .unwrap();
            // The cache shows the second write: it is taken as it is, and remembered no longer.
            let caught_up = pipeline.current(at_version("3", Some(2)));
            assert_eq!(observed(&caught_up), Some(2));
            assert!(lock(&pipeline.written).is_empty());
        };
        api.play(vec![status_write("2"), status_write("3")], work)
            .await;
    }

    #[tokio::test]
    async fn a_cache_showing_the_operators_own_change_of_the_object_is_behind_its_status() {
        let (client, api) = scripted();
        let pipeline = Pipeline::new(client, "synapse-operator", QUIET, None, Unseen::default());
        let work = async {
            // The reconciliation of version 1 added a finalizer (version 2), then wrote the
            // status (version 3).
            let object = pipeline.current(at_version("1", None));
            pipeline.changed(object.as_ref(), Some("2".into()));
            assert_eq!(observed(&pipeline.current(at_version("2", None))), None);
            pipeline
                .finish(object.as_ref(), Ok(Converged::status(observing(1))))
                .await
                .unwrap();
            assert_eq!(observed(&pipeline.current(at_version("2", None))), Some(1));
            assert_eq!(
                observed(&pipeline.current(at_version("3", Some(1)))),
                Some(1)
            );
            assert!(lock(&pipeline.written).is_empty());
        };
        api.play(vec![status_write("3")], work).await;
    }

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
