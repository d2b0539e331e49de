//! The writes of a reconciliation, all under the operator's field manager and all classified by
//! [`crate::error`]: server-side apply of the objects the operator owns (only when the cached
//! object differs, so a steady state writes nothing), of the status, and the one policy for
//! retained objects ([`crate::retained`]).

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
}

impl Applier {
    pub fn new(client: Client, field_manager: &'static str) -> Self {
        Self {
            client,
            field_manager,
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
    /// already holds everything it sets; returns the object as stored when it wrote. Fields
    /// another manager set are taken over: the operator owns what it applies.
    pub async fn apply<K: Applicable>(
        &self,
        desired: &K,
        existing: Option<&impl Serialize>,
    ) -> Result<Option<K>, Error> {
        if existing.is_some_and(|existing| is_applied(desired, existing)) {
            return Ok(None);
        }
        self.patch_apply(desired)
            .await
            .map(Some)
            .map_err(api_error(Self::describe("apply", desired)))
    }

    /// [`Applier::apply`] of a kind another project's CRD defines: `Ok(Err(NotServed))` when the
    /// API server does not serve the kind (its CRD is not installed).
    pub async fn apply_if_served<K: Applicable>(
        &self,
        desired: &K,
        existing: Option<&impl Serialize>,
    ) -> Result<Result<Option<K>, NotServed>, Error> {
        if existing.is_some_and(|existing| is_applied(desired, existing)) {
            return Ok(Ok(None));
        }
        match self.patch_apply(desired).await {
            Ok(stored) => Ok(Ok(Some(stored))),
            // An apply creates a missing object: a 404 means the kind is not served.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Err(NotServed)),
            Err(error) => Err(api_error(Self::describe("apply", desired))(error)),
        }
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
        Ok(match self.apply(desired, cached).await? {
            Some(stored) => rollout(&stored),
            None => cached
                .map(CachedDeployment::rollout)
                .unwrap_or_else(|| rollout(desired)),
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
        (Ok(serde_json::Value::Object(mut desired)), Ok(existing)) => {
            desired.remove("apiVersion");
            desired.remove("kind");
            is_subset(&serde_json::Value::Object(desired), &existing)
        }
        _ => false,
    }
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
    use serde_json::json;

    use super::is_subset;

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
