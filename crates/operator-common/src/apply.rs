//! The writes of a reconciliation, all under the operator's field manager and all classified by
//! [`crate::error`]: server-side apply of the objects the operator owns (only when the cached
//! object differs, so a steady state writes nothing, and not again while the cache has not caught
//! up with the last apply: [`crate::unseen`]), of the status, and the one policy for retained
//! objects ([`crate::retained`]).

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::{Client, Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cached_deployment::CachedDeployment;
use crate::error::{Error, api_error};
use crate::reconciled::Reconciled;
use crate::rollout::{Rollout, rollout};
use crate::unseen::{Key, Unseen, fingerprint};
use synapse_types::contract::labels;

/// What an apply needs of a kind.
pub trait Applicable:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Serialize
    + DeserializeOwned
    + Clone
    + Debug
{
}

impl<K> Applicable for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Serialize
        + DeserializeOwned
        + Clone
        + Debug
{
}

/// The API server does not serve a kind (its CRD is not installed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotServed;

/// Writes as one operator.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    field_manager: &'static str,
    unseen: Unseen,
}

/// What an apply did.
enum Applied<K> {
    /// Nothing: the cache holds the object as desired.
    Held,
    /// Nothing: the same apply was made over the version the cache still shows.
    Unseen,
    /// Wrote; the object as stored.
    Wrote(K),
}

impl<K> Applied<K> {
    fn written(self) -> Option<K> {
        match self {
            Self::Wrote(stored) => Some(stored),
            Self::Held | Self::Unseen => None,
        }
    }
}

impl Applier {
    /// The applier of `field_manager`; `unseen` remembers its applies until the caches show them.
    pub fn new(client: Client, field_manager: &'static str, unseen: Unseen) -> Self {
        Self {
            client,
            field_manager,
            unseen,
        }
    }

    /// The operator's field manager.
    pub fn field_manager(&self) -> &'static str {
        self.field_manager
    }

    /// The client, for the few reads a reconciliation makes outside its caches.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API of `K` in `namespace`.
    pub fn api<K: Applicable>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// `verb K namespace/name` of `object`, for messages.
    pub fn describe<K: Resource<DynamicType = ()>>(verb: &str, object: &K) -> String {
        format!(
            "{verb} {} {}/{}",
            K::kind(&()),
            object.namespace().unwrap_or_default(),
            object.name_any()
        )
    }

    /// Applies `desired` unless `existing` (the cached object, in whatever form it is cached)
    /// already holds everything it sets, or the cache does not show the same apply made before;
    /// returns the object as stored when it wrote. Fields another manager set are taken over:
    /// the operator owns what it applies.
    pub async fn apply<K: Applicable>(
        &self,
        desired: &K,
        existing: Option<&impl Serialize>,
    ) -> Result<Option<K>, Error> {
        self.apply_unless_held(desired, existing)
            .await
            .map(Applied::written)
            .map_err(api_error(Self::describe("apply", desired)))
    }

    /// [`Applier::apply`] of a kind another project's CRD defines: `Ok(Err(NotServed))` when the
    /// API server does not serve the kind (its CRD is not installed).
    pub async fn apply_if_served<K: Applicable>(
        &self,
        desired: &K,
        existing: Option<&impl Serialize>,
    ) -> Result<Result<Option<K>, NotServed>, Error> {
        match self.apply_unless_held(desired, existing).await {
            Ok(applied) => Ok(Ok(applied.written())),
            // An apply creates a missing object: a 404 means the kind is not served.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Err(NotServed)),
            Err(error) => Err(api_error(Self::describe("apply", desired))(error)),
        }
    }

    async fn apply_unless_held<K: Applicable>(
        &self,
        desired: &K,
        existing: Option<&impl Serialize>,
    ) -> Result<Applied<K>, kube::Error> {
        let content = serde_json::to_value(desired).map_err(kube::Error::SerdeError)?;
        // The version the cache shows: `None` for no object, unknown if it cannot be read.
        let cached = match existing.map(serde_json::to_value) {
            None => Some(None),
            Some(Ok(existing)) => {
                if is_subset_of_object(&content, &existing) {
                    return Ok(Applied::Held);
                }
                Some(resource_version(&existing))
            }
            Some(Err(_)) => None,
        };
        // Only objects the operator's own watches hold: their events clear what is remembered.
        let remembered = cached
            .filter(|_| {
                desired.labels().get(labels::MANAGED_BY).map(String::as_str)
                    == Some(self.field_manager)
            })
            .map(|over| (Key::of(desired), fingerprint(&content), over));
        if let Some((key, fingerprint, over)) = &remembered
            && self.unseen.is_pending(key, *fingerprint, over.as_deref())
        {
            tracing::debug!(
                kind = %K::kind(&()),
                namespace = desired.namespace().unwrap_or_default(),
                name = desired.name_any(),
                "not applied again: the cache does not show the last apply yet"
            );
            return Ok(Applied::Unseen);
        }
        let stored = self.patch_apply(desired).await?;
        if let Some((key, fingerprint, over)) = remembered {
            self.unseen.applied(key, fingerprint, over);
        }
        Ok(Applied::Wrote(stored))
    }

    async fn patch_apply<K: Applicable>(&self, desired: &K) -> Result<K, kube::Error> {
        let namespace = desired.namespace().unwrap_or_default();
        self.api::<K>(&namespace)
            .patch(
                &desired.name_any(),
                &PatchParams::apply(self.field_manager).force(),
                &Patch::Apply(desired),
            )
            .await
    }

    /// Deletes the `K` `name` in `namespace`; one already gone is no error.
    pub async fn delete<K: Applicable>(&self, namespace: &str, name: &str) -> Result<(), Error> {
        match self
            .api::<K>(namespace)
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(error) => Err(api_error(format!(
                "delete {} {namespace}/{name}",
                K::kind(&())
            ))(error)),
        }
    }

    /// Deletes `cached` (an object as a cache holds it), if there is one: what the spec no
    /// longer asks for.
    pub async fn delete_cached<K: Applicable>(&self, cached: Option<&K>) -> Result<(), Error> {
        let Some(object) = cached else {
            return Ok(());
        };
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        self.delete::<K>(&namespace, &object.name_any()).await
    }

    /// Applies the Deployment `desired` unless `cached` holds it; returns where its rollout
    /// stands.
    pub async fn apply_deployment(
        &self,
        desired: &Deployment,
        cached: Option<&CachedDeployment>,
    ) -> Result<Rollout, Error> {
        let applied = self
            .apply_unless_held(desired, cached)
            .await
            .map_err(api_error(Self::describe("apply", desired)))?;
        Ok(match (applied, cached) {
            (Applied::Wrote(stored), _) => rollout(&stored),
            (Applied::Held, Some(cached)) => cached.rollout(),
            // Applied, not seen yet: its rollout has not started.
            (Applied::Held | Applied::Unseen, _) => rollout(desired),
        })
    }

    /// Creates `object`; a create that lost a race with another is transient (the next
    /// attempt sees the object).
    pub async fn create<K: Applicable>(&self, object: &K) -> Result<K, Error> {
        let namespace = object.namespace().unwrap_or_default();
        self.api::<K>(&namespace)
            .create(&PostParams::default(), object)
            .await
            .map_err(api_error(Self::describe("create", object)))
    }

    /// Creates `object` unless an object of its name exists: `None` then. For a child whose name
    /// says what it is (a hash of its content), which a reconciliation before the cache showed
    /// it may have created already.
    pub async fn create_new<K: Applicable>(&self, object: &K) -> Result<Option<K>, Error> {
        let namespace = object.namespace().unwrap_or_default();
        match self
            .api::<K>(&namespace)
            .create(&PostParams::default(), object)
            .await
        {
            Ok(created) => Ok(Some(created)),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(None),
            Err(error) => Err(api_error(Self::describe("create", object))(error)),
        }
    }

    /// A JSON merge patch of the `K` `name` in `namespace` (`what` names the change).
    pub async fn merge<K: Applicable>(
        &self,
        namespace: &str,
        name: &str,
        patch: &serde_json::Value,
        what: &str,
    ) -> Result<K, Error> {
        self.api::<K>(namespace)
            .patch(name, &self.merge_params(), &Patch::Merge(patch))
            .await
            .map_err(api_error(format!(
                "{what} of {} {namespace}/{name}",
                K::kind(&())
            )))
    }

    /// The parameters of a merge patch under the operator's field manager.
    pub fn merge_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.field_manager.to_owned()),
            ..PatchParams::default()
        }
    }

    /// Applies `status` as the status of `object`, returning the `resourceVersion` the write
    /// made; nothing when the object is gone (deleted while it was reconciled).
    pub async fn apply_status<K: Reconciled>(
        &self,
        object: &K,
        status: &K::Status,
    ) -> Result<Option<String>, Error> {
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        let namespace = object.namespace().unwrap_or_default();
        let result = self
            .api::<K>(&namespace)
            .patch_status(
                &object.name_any(),
                &PatchParams::apply(self.field_manager).force(),
                &Patch::Apply(&patch),
            )
            .await;
        match result {
            Ok(written) => Ok(written.meta().resource_version.clone()),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
            Err(error) => Err(api_error(Self::describe("write the status of", object))(
                error,
            )),
        }
    }
}

/// Whether `existing` already holds everything `desired` sets, so applying `desired` would change
/// nothing: every field of `desired` is present in `existing` with the same value (fields the API
/// server defaulted are ignored), and lists have the same length and matching items in order.
/// `apiVersion` and `kind` are not compared: a cached object may lack them. A map key the
/// operator stops setting stays until the next apply that changes something else.
pub fn is_applied(desired: &impl Serialize, existing: &impl Serialize) -> bool {
    match (
        serde_json::to_value(desired),
        serde_json::to_value(existing),
    ) {
        (Ok(desired), Ok(existing)) => is_subset_of_object(&desired, &existing),
        _ => false,
    }
}

/// [`is_applied`] of serialised objects.
fn is_subset_of_object(desired: &serde_json::Value, existing: &serde_json::Value) -> bool {
    let serde_json::Value::Object(desired) = desired else {
        return false;
    };
    desired
        .iter()
        .filter(|(key, _)| *key != "apiVersion" && *key != "kind")
        .all(|(key, value)| {
            existing
                .get(key)
                .is_some_and(|found| is_subset(value, found))
        })
}

/// The `resourceVersion` of a serialised object.
fn resource_version(object: &serde_json::Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")?
        .as_str()
        .map(str::to_owned)
}

fn is_subset(desired: &serde_json::Value, existing: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, existing) {
        (Value::Object(d), Value::Object(e)) => d
            .iter()
            .all(|(key, value)| e.get(key).is_some_and(|found| is_subset(value, found))),
        (Value::Array(d), Value::Array(e)) => {
            d.len() == e.len() && d.iter().zip(e).all(|(d, e)| is_subset(d, e))
        }
        (d, e) => d == e,
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;
    use crate::testing::{Exchange, ScriptedApi, scripted};

    const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments/hs";

    fn deployment(managed_by: &str, image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "hs", "namespace": "ns",
                         "labels": {labels::MANAGED_BY: managed_by}},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": image}]}}},
        }))
        .unwrap()
    }

    fn cached(desired: &Deployment, version: &str) -> CachedDeployment {
        let mut stored = serde_json::to_value(desired).unwrap();
        stored["metadata"]["resourceVersion"] = json!(version);
        serde_json::from_value(stored).unwrap()
    }

    /// An applier whose Deployments' watch is followed, what that watch sees, the API.
    fn following_deployments() -> (Applier, impl Fn(&Event<CachedDeployment>), ScriptedApi) {
        let (client, api) = scripted();
        let unseen = Unseen::default();
        let seen = unseen.follow::<CachedDeployment>();
        (Applier::new(client, "synapse-operator", unseen), seen, api)
    }

    #[tokio::test]
    async fn an_apply_the_cache_does_not_show_yet_is_not_repeated() {
        let (applier, seen, api) = following_deployments();
        let desired = deployment("synapse-operator", "synapse:1");
        let changed = deployment("synapse-operator", "synapse:2");
        let script = (0..5)
            .map(|_| Exchange::patch(DEPLOYMENTS).echo())
            .collect();
        let waiting = rollout(&desired);
        api.play(script, async {
            let none = None::<&CachedDeployment>;
            // Created; the next reconciliation runs before the watch shows it.
            assert_eq!(
                applier.apply_deployment(&desired, none).await.unwrap(),
                waiting
            );
            assert_eq!(
                applier.apply_deployment(&desired, none).await.unwrap(),
                waiting
            );
            // Something else to apply is applied.
            applier.apply_deployment(&changed, none).await.unwrap();
            // Seen, then deleted: applied again.
            seen(&Event::Apply(cached(&changed, "2")));
            applier.apply_deployment(&changed, none).await.unwrap();
            // Changed over version 3: not again while the cache shows 3, again once it moved on.
            let three = cached(&desired, "3");
            applier
                .apply_deployment(&changed, Some(&three))
                .await
                .unwrap();
            applier
                .apply_deployment(&changed, Some(&three))
                .await
                .unwrap();
            let four = cached(&desired, "4");
            applier
                .apply_deployment(&changed, Some(&four))
                .await
                .unwrap();
            assert!(
                applier
                    .apply(&changed, Some(&cached(&changed, "5")))
                    .await
                    .unwrap()
                    .is_none()
            );
        })
        .await;
    }

    #[tokio::test]
    async fn objects_the_operators_watch_does_not_hold_are_always_applied() {
        let (applier, _seen, api) = following_deployments();
        let foreign = deployment("someone-else", "synapse:1");
        let script = vec![
            Exchange::patch(DEPLOYMENTS).echo(),
            Exchange::patch(DEPLOYMENTS).echo(),
        ];
        api.play(script, async {
            let none = None::<&CachedDeployment>;
            applier.apply(&foreign, none).await.unwrap();
            applier.apply(&foreign, none).await.unwrap();
        })
        .await;
    }

    #[test]
    fn defaulted_fields_do_not_count_but_changes_and_list_lengths_do() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 8008}]}});
        let existing = json!({"spec": {"replicas": 1, "paused": false,
            "ports": [{"port": 8008, "protocol": "TCP"}]}, "status": {}});
        assert!(is_subset(&desired, &existing));
        let changed = json!({"spec": {"replicas": 2, "ports": [{"port": 8008}]}});
        assert!(!is_subset(&changed, &existing));
        let more = json!({"spec": {"ports": [{"port": 8008}, {"port": 9000}]}});
        assert!(!is_subset(&more, &existing));
        let fewer = json!({"spec": {"ports": []}});
        assert!(!is_subset(&fewer, &existing));
        assert!(!is_subset(&json!({"new": 1}), &existing));
    }
}
