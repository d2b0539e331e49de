//! The custom resource a reconciliation is for, as its children see it: where they live, who
//! owns them and how they are labelled. Every object an operator builds takes its metadata from
//! [`Subject::meta`], the one metadata helper.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt as _};
use synapse_types::DeletionPolicy;

use crate::error::Error;
use crate::labels::AppLabels;

/// Whether a child goes with its custom resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Owned by the custom resource: garbage-collected with it.
    Owned,
    /// Kept when the custom resource is deleted (data, generated secrets): no owner reference.
    Retained,
}

impl Lifetime {
    /// The lifetime of data-bearing children under `policy`.
    pub fn of_data(policy: DeletionPolicy) -> Self {
        match policy {
            DeletionPolicy::Delete => Lifetime::Owned,
            DeletionPolicy::Retain => Lifetime::Retained,
        }
    }
}

/// The reconciled object: name, namespace, generation and owner reference, with the operator
/// and application its children are labelled with.
#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub name: String,
    pub namespace: String,
    pub generation: Option<i64>,
    owner: OwnerReference,
    /// `app.kubernetes.io/name` of the children, e.g. `synapse`.
    app: &'static str,
    /// The operator: field manager and `app.kubernetes.io/managed-by`.
    pub field_manager: &'static str,
}

impl Subject {
    /// The subject `object`, whose children are labelled as `app`, managed by `field_manager`.
    /// Every object read from the API server has a namespace (our kinds are namespaced) and a
    /// uid; one without is refused as transient, as it cannot have come from there.
    pub fn of<K: Resource<DynamicType = ()>>(
        object: &K,
        app: &'static str,
        field_manager: &'static str,
    ) -> Result<Self, Error> {
        let incomplete = |what: &str| {
            Error::transient(
                format!("reconcile {} {}", K::kind(&()), object.name_any()),
                format!("the object has no {what}"),
            )
        };
        Ok(Self {
            name: object.name_any(),
            namespace: object.namespace().ok_or_else(|| incomplete("namespace"))?,
            generation: object.meta().generation,
            owner: object
                .controller_owner_ref(&())
                .ok_or_else(|| incomplete("uid"))?,
            app,
            field_manager,
        })
    }

    /// The standard labels of the child `component`.
    pub fn labels(&self, component: &'static str) -> AppLabels<'_> {
        AppLabels {
            name: self.app,
            instance: &self.name,
            component,
            managed_by: self.field_manager,
        }
    }

    /// The labels selecting the pods of `component`.
    pub fn selector(&self, component: &'static str) -> BTreeMap<String, String> {
        self.labels(component).selector()
    }

    /// The metadata of the child `name` in the subject's namespace: the standard labels of
    /// `component`, and the subject as controller owner unless the child is retained.
    pub fn meta(
        &self,
        name: impl Into<String>,
        component: &'static str,
        lifetime: Lifetime,
    ) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(component).all()),
            owner_references: Some(match lifetime {
                Lifetime::Owned => vec![self.owner.clone()],
                Lifetime::Retained => Vec::new(),
            }),
            ..ObjectMeta::default()
        }
    }

    /// `kind namespace/name` of a child, for messages.
    pub fn child(&self, kind: &str, name: &str) -> String {
        format!("{kind} {}/{name}", self.namespace)
    }

    /// The owner reference the subject's children carry.
    pub fn owner(&self) -> &OwnerReference {
        &self.owner
    }
}

#[cfg(test)]
mod tests {
    use synapse_types::Synapse;

    use super::*;

    pub(crate) fn synapse() -> Synapse {
        let mut synapse: Synapse = serde_json::from_value(serde_json::json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Synapse",
            "metadata": {"name": "hs", "namespace": "ns", "uid": "u1", "generation": 3},
            "spec": {"homeserver": {"values": {"serverName": "x.org", "reportStats": false}}},
        }))
        .unwrap();
        synapse.status = None;
        synapse
    }

    #[test]
    fn children_are_labelled_and_owned_unless_retained() {
        let subject = Subject::of(&synapse(), "synapse", "synapse-operator").unwrap();
        assert_eq!(subject.generation, Some(3));
        let owned = subject.meta("hs-config", "config", Lifetime::Owned);
        assert_eq!(owned.name.as_deref(), Some("hs-config"));
        assert_eq!(owned.namespace.as_deref(), Some("ns"));
        let owners = owned.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (owners[0].kind.as_str(), owners[0].uid.as_str()),
            ("Synapse", "u1")
        );
        assert_eq!(owners[0].controller, Some(true));
        let labels = owned.labels.unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], "config");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "synapse-operator");
        let retained = subject.meta("hs-data", "data", Lifetime::of_data(DeletionPolicy::Retain));
        assert_eq!(retained.owner_references, Some(Vec::new()));
        assert_eq!(Lifetime::of_data(DeletionPolicy::Delete), Lifetime::Owned);
        assert_eq!(subject.child("Service", "hs"), "Service ns/hs");
    }

    #[test]
    fn an_object_without_namespace_or_uid_is_refused() {
        let mut synapse = synapse();
        synapse.metadata.uid = None;
        assert!(Subject::of(&synapse, "synapse", "synapse-operator").is_err());
        let mut synapse = self::tests::synapse();
        synapse.metadata.namespace = None;
        assert!(Subject::of(&synapse, "synapse", "synapse-operator").is_err());
    }
}
