//! The user's input ConfigMap a spec names (`spec.homeserver.configMap`, `spec.configMap`): read
//! from the API server when a reconciliation needs it. ConfigMaps are watched by their metadata
//! alone, only to map their changes to the objects that name them.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};
use synapse_types::ConfigMapReference;

use crate::error::{Error, api_error};

/// The ConfigMap a reference names, as found.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigMapInput {
    pub namespace: String,
    pub name: String,
    /// `None`: it does not exist.
    pub config_map: Option<ConfigMap>,
}

impl ConfigMapInput {
    /// The text under `key` (in `data`, or UTF-8 in `binaryData`); `None` without the key or
    /// the ConfigMap.
    pub fn text(&self, key: &str) -> Option<String> {
        let config_map = self.config_map.as_ref()?;
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
}

/// The namespace a reference names: its own, or the referring object's (`namespace`).
pub fn referenced_namespace(reference: &ConfigMapReference, namespace: &str) -> String {
    reference
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| namespace.to_owned())
}

/// Reads the ConfigMap `reference` names for an object in `namespace`.
pub async fn read_config_map(
    client: &Client,
    namespace: &str,
    reference: &ConfigMapReference,
) -> Result<ConfigMapInput, Error> {
    let namespace = referenced_namespace(reference, namespace);
    let name = reference.name.clone();
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get_opt(&name)
        .await
        .map_err(api_error(format!("read ConfigMap {namespace}/{name}")))?;
    Ok(ConfigMapInput {
        namespace,
        name,
        config_map,
    })
}
