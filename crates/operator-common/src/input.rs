//! The user's input ConfigMap a spec names (`spec.homeserver.configMap`, `spec.configMap`): read
//! from the API server when a reconciliation needs it. ConfigMaps are watched by their metadata
//! alone, only to map their changes to the objects that name them.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt as _};
use synapse_types::ConfigMapReference;

use crate::error::{Error, api_error};
use crate::grant::{self, CrossReference, NotGranted};
use crate::reconciled::Reconciled;

/// The ConfigMap a reference names, as found.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigMapInput {
    pub namespace: String,
    pub name: String,
    pub lookup: Lookup,
}

/// What became of the read.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    Found(Box<ConfigMap>),
    /// It does not exist.
    NotFound,
    /// It is in another namespace, which did not grant the reference: it was not read.
    NotGranted(NotGranted),
}

/// Why an input ConfigMap gives no file.
#[derive(Clone, Debug, PartialEq)]
pub enum InputProblem {
    NotFound,
    KeyMissing,
    NotGranted(NotGranted),
}

impl ConfigMapInput {
    /// The text under `key` (in `data`, or UTF-8 in `binaryData`); `None` without the key or
    /// the ConfigMap.
    pub fn text(&self, key: &str) -> Option<String> {
        let Lookup::Found(config_map) = &self.lookup else {
            return None;
        };
        config_map
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .cloned()
            .or_else(|| {
                let binary = config_map.binary_data.as_ref()?.get(key)?;
                String::from_utf8(binary.0.clone()).ok()
            })
    }

    /// The file under `key`, or why there is none.
    pub fn file(&self, key: &str) -> Result<String, InputProblem> {
        match &self.lookup {
            Lookup::NotFound => Err(InputProblem::NotFound),
            Lookup::NotGranted(denied) => Err(InputProblem::NotGranted(denied.clone())),
            Lookup::Found(_) => self.text(key).ok_or(InputProblem::KeyMissing),
        }
    }
}

/// The namespace a reference names: its own, or the referring object's (`namespace`).
pub fn referenced_namespace(reference: &ConfigMapReference, namespace: &str) -> String {
    reference
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| namespace.to_owned())
}

/// Reads the input ConfigMaps specs name: in the object's own namespace always, in another
/// only as its ReferenceGrants allow (see [`grant`]).
#[derive(Clone)]
pub struct ConfigMapReader {
    client: Client,
    /// The one namespace the operator is installed for, if it is.
    watched: Option<String>,
}

impl ConfigMapReader {
    pub fn new(client: Client, watched: Option<String>) -> Self {
        Self { client, watched }
    }

    /// Reads the ConfigMap `object` (in `namespace`) names; `None` when it names none.
    pub async fn read<K: Reconciled>(
        &self,
        object: &K,
        namespace: &str,
    ) -> Result<Option<ConfigMapInput>, Error> {
        let Some(reference) = object.config_map_reference() else {
            return Ok(None);
        };
        let target = referenced_namespace(reference, namespace);
        let name = reference.name.clone();
        let input = |lookup| {
            Ok(Some(ConfigMapInput {
                namespace: target.clone(),
                name: name.clone(),
                lookup,
            }))
        };
        if target != namespace {
            let reference = CrossReference {
                kind: K::kind(&()).into_owned(),
                from: namespace.to_owned(),
                field: K::CONFIG_MAP_FIELD,
                namespace: target.clone(),
                name: name.clone(),
            };
            let watched = self.watched.as_deref();
            if let Err(denied) = grant::check(&self.client, watched, reference).await? {
                return input(Lookup::NotGranted(denied));
            }
        }
        let found = Api::<ConfigMap>::namespaced(self.client.clone(), &target)
            .get_opt(&name)
            .await
            .map_err(api_error(format!("read ConfigMap {target}/{name}")))?;
        input(found.map_or(Lookup::NotFound, |cm| Lookup::Found(Box::new(cm))))
    }
}

/// The objects of `store` whose ConfigMap reference names `config_map`.
pub fn referring_to<K: Reconciled>(
    store: &Store<K>,
    config_map: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<K>> {
    let (Some(name), Some(namespace)) =
        (config_map.metadata.name.as_deref(), config_map.namespace())
    else {
        return Vec::new();
    };
    referring(store, |_, reference, target| {
        reference.name == name && target == namespace
    })
}

/// The objects of `store` whose ConfigMap reference crosses into `namespace` from another: what
/// a change of that namespace's ReferenceGrants concerns.
pub fn referring_into<K: Reconciled>(store: &Store<K>, namespace: &str) -> Vec<ObjectRef<K>> {
    referring(store, |own, _, target| {
        target == namespace && own != namespace
    })
}

fn referring<K: Reconciled>(
    store: &Store<K>,
    matches: impl Fn(&str, &ConfigMapReference, &str) -> bool,
) -> Vec<ObjectRef<K>> {
    store
        .state()
        .iter()
        .filter(|object| {
            let own = object.namespace().unwrap_or_default();
            object.config_map_reference().is_some_and(|reference| {
                matches(&own, reference, &referenced_namespace(reference, &own))
            })
        })
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

#[cfg(test)]
#[path = "input_tests.rs"]
mod tests;
