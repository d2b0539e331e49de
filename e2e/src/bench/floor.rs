//! The floor of the burst: what the plane itself takes to run the children the operators make,
//! applied directly with nothing reconciling them. The e2e crate does not link the operators, so
//! the children are not rebuilt here: they are captured from one set (a Synapse, with its
//! Heisenbridge) the operators reconciled in a namespace of its own, and copied for every set
//! under that set's names. So are the statuses the operators wrote on the set's custom
//! resources: the floor with the custom resources applies them too.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Client, ResourceExt as _};
use serde_json::Value;

use super::{Desired, synapse_name};

/// The label every child carries, naming the operator that made it (`Subject::meta`).
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The children of the template set, as one would apply them, and the statuses of its custom
/// resources.
#[derive(Debug, Clone)]
pub struct Children {
    objects: Vec<Desired>,
    statuses: Vec<Desired>,
    /// The namespace they were captured in, replaced in copies.
    namespace: String,
}

impl Children {
    /// Captures the children of the set `synapse_name(0)` in `namespace`: every object of a
    /// namespaced kind the API serves that is labelled as made by one of `operators` and is
    /// either owned by one of our kinds or by nothing (the retained Secrets and volumes).
    /// Objects the plane derives from children carry their labels too and are left out: Pods and
    /// ReplicaSets, EndpointSlices (owned by others) and Endpoints (mirrored from a Service).
    pub async fn capture(client: &Client, namespace: &str, operators: &[String]) -> Result<Self> {
        let discovery = Discovery::new(client.clone())
            .run_aggregated()
            .await
            .context("discover the API's kinds")?;
        let selector = format!("{MANAGED_BY} in ({})", operators.join(","));
        let mut objects = Vec::new();
        for group in discovery.groups() {
            for (resource, capabilities) in group.recommended_resources() {
                if capabilities.scope != Scope::Namespaced
                    || !capabilities.supports_operation(verbs::LIST)
                    || resource.kind == "Endpoints"
                {
                    continue;
                }
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let list = api
                    .list(&ListParams::default().labels(&selector))
                    .await
                    .with_context(|| format!("list the {} of {namespace}", resource.plural))?;
                for object in list.items.into_iter().filter(made_by_operator) {
                    let mut applied = as_applied(serde_json::to_value(&object)?);
                    // The items of a list do not say their kind.
                    applied["apiVersion"] = resource.api_version.clone().into();
                    applied["kind"] = resource.kind.clone().into();
                    objects.push(Desired {
                        name: object.name_any(),
                        object: applied,
                        resource: resource.clone(),
                        status: false,
                    });
                }
            }
        }
        if !objects.iter().any(|o| o.resource.kind == "Deployment") {
            bail!("the template set in {namespace} has no Deployment labelled {selector}");
        }
        // As an operator does: the Deployments last, once what their pods mount exists.
        objects.sort_by_key(|o| o.resource.kind == "Deployment");
        let mut statuses = Vec::new();
        // The items of a list do not say their kind: each kind is listed on its own.
        for kind in ["Synapse", "Heisenbridge"] {
            let resource = crate::objects::resource(kind);
            let list = crate::objects::namespaced(client, namespace, kind)
                .list(&ListParams::default())
                .await
                .with_context(|| format!("list the {kind}s of {namespace} for their statuses"))?;
            for object in list.items {
                statuses.push(Desired {
                    name: object.name_any(),
                    object: serde_json::json!({
                        "apiVersion": resource.api_version,
                        "kind": kind,
                        "metadata": {"name": object.name_any()},
                        "status": object.data["status"],
                    }),
                    resource: resource.clone(),
                    status: true,
                });
            }
        }
        Ok(Self {
            objects,
            statuses,
            namespace: namespace.to_owned(),
        })
    }

    /// The children of the `i`th set in `namespace`: the template's, each name and reference
    /// renamed. A Secret's data, base64, keeps the template's names: the same bytes to store,
    /// which is all the floor needs of it.
    pub fn set(&self, i: usize, namespace: &str) -> Result<Vec<Desired>> {
        self.copy(&self.objects, i, namespace)
    }

    /// The statuses of the custom resources of the `i`th set in `namespace`, renamed likewise.
    pub fn statuses(&self, i: usize, namespace: &str) -> Result<Vec<Desired>> {
        self.copy(&self.statuses, i, namespace)
    }

    fn copy(&self, templates: &[Desired], i: usize, namespace: &str) -> Result<Vec<Desired>> {
        let (from, to) = (synapse_name(0), synapse_name(i));
        templates
            .iter()
            .map(|template| {
                let text = serde_json::to_string(&template.object)?
                    .replace(&from, &to)
                    .replace(&self.namespace, namespace);
                Ok(Desired {
                    resource: template.resource.clone(),
                    name: template.name.replace(&from, &to),
                    object: serde_json::from_str(&text)?,
                    status: template.status,
                })
            })
            .collect()
    }

    /// The names of the Deployments of the sets `0..n`.
    pub fn deployments(&self, n: usize) -> BTreeSet<String> {
        let names: Vec<&str> = self
            .objects
            .iter()
            .filter(|o| o.resource.kind == "Deployment")
            .map(|o| o.name.as_str())
            .collect();
        let from = synapse_name(0);
        let mut all = BTreeSet::new();
        for i in 0..n {
            let to = synapse_name(i);
            all.extend(names.iter().map(|name| name.replace(&from, &to)));
        }
        all
    }

    /// How many children of each kind a set has, e.g. `{"Deployment": 2, "Secret": 3}`.
    pub fn kinds(&self) -> BTreeMap<String, usize> {
        let mut kinds = BTreeMap::new();
        for object in &self.objects {
            *kinds.entry(object.resource.kind.clone()).or_default() += 1;
        }
        kinds
    }
}

/// Owned by one of our kinds, or by nothing.
fn made_by_operator(object: &DynamicObject) -> bool {
    object
        .owner_references()
        .iter()
        .all(|owner| owner.api_version.starts_with("synapse.opdev.io/"))
}

/// The object as an apply of it creates it: its name, labels, annotations and content, without
/// what the API server and controllers add (its identity, status, bookkeeping annotations,
/// owners, which the copies do not have) and what they allocate per object (a Service's cluster
/// IP, the volume a claim is bound to).
fn as_applied(mut object: Value) -> Value {
    let meta = object["metadata"].take();
    let annotations: serde_json::Map<String, Value> = meta["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !key.contains("kubernetes.io/"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    object["metadata"] = serde_json::json!({
        "name": meta["name"],
        "labels": meta["labels"],
        "annotations": annotations,
    });
    if let Some(object) = object.as_object_mut() {
        object.remove("status");
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        for allocated in ["clusterIP", "clusterIPs", "volumeName"] {
            spec.remove(allocated);
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_copy_is_applied_without_what_the_plane_added() {
        let stored = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "s0000", "namespace": "t", "uid": "u", "resourceVersion": "7",
                "labels": {MANAGED_BY: "synapse-operator"},
                "annotations": {"synapse.opdev.io/hash": "h", "pv.kubernetes.io/bound": "yes"},
                "ownerReferences": [{"apiVersion": "synapse.opdev.io/v1alpha1"}],
                "managedFields": [],
            },
            "spec": {"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "ports": []},
            "status": {},
        });
        assert_eq!(
            as_applied(stored),
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "s0000",
                    "labels": {MANAGED_BY: "synapse-operator"},
                    "annotations": {"synapse.opdev.io/hash": "h"},
                },
                "spec": {"ports": []},
            })
        );
    }

    #[test]
    fn an_object_without_spec_gets_none() {
        let secret = json!({"metadata": {"name": "s0000-config"}, "data": {}});
        assert_eq!(
            as_applied(secret),
            json!({"metadata": {"name": "s0000-config", "labels": null, "annotations": {}}, "data": {}})
        );
    }

    #[test]
    fn a_set_is_the_template_renamed() {
        let children = Children {
            objects: vec![Desired {
                resource: kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(
                    &(),
                ),
                name: "s0000-heisenbridge".to_owned(),
                object: json!({"spec": {"url": "http://s0000.template-ns.svc:8008"}}),
                status: false,
            }],
            statuses: vec![Desired {
                resource: crate::objects::resource("Synapse"),
                name: "s0000".to_owned(),
                object: json!({"metadata": {"name": "s0000"}, "status": {"state": "RUNNING"}}),
                status: true,
            }],
            namespace: "template-ns".to_owned(),
        };
        let set = children.set(12, "floor-ns").unwrap();
        assert_eq!(set[0].name, "s0012-heisenbridge");
        assert_eq!(
            set[0].object["spec"]["url"],
            "http://s0012.floor-ns.svc:8008"
        );
        let statuses = children.statuses(3, "floor-ns").unwrap();
        assert_eq!(statuses[0].object["metadata"]["name"], "s0003");
        assert!(statuses[0].status);
        assert_eq!(
            children.deployments(2),
            BTreeSet::from([
                "s0000-heisenbridge".to_owned(),
                "s0001-heisenbridge".to_owned()
            ])
        );
    }
}
