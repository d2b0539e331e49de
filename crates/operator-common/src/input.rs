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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    #[test]
    fn text_comes_from_data_then_utf8_binary_data_and_the_reference_defaults_to_its_namespace() {
        let input = |config_map: Option<ConfigMap>| ConfigMapInput {
            namespace: "ns".into(),
            name: "cm".into(),
            config_map,
        };
        let data = ConfigMap {
            data: Some(BTreeMap::from([("a".into(), "text".into())])),
            binary_data: Some(BTreeMap::from([
                ("b".into(), ByteString(b"bytes".to_vec())),
                ("c".into(), ByteString(vec![0xff])),
            ])),
            ..ConfigMap::default()
        };
        let found = input(Some(data));
        assert_eq!(found.text("a").as_deref(), Some("text"));
        assert_eq!(found.text("b").as_deref(), Some("bytes"));
        assert_eq!(found.text("c"), None, "not UTF-8");
        assert_eq!(found.text("d"), None);
        assert_eq!(input(None).text("a"), None);

        let reference = |namespace: Option<&str>| ConfigMapReference {
            name: "cm".into(),
            namespace: namespace.map(Into::into),
        };
        assert_eq!(referenced_namespace(&reference(None), "mine"), "mine");
        assert_eq!(referenced_namespace(&reference(Some("")), "mine"), "mine");
        assert_eq!(
            referenced_namespace(&reference(Some("other")), "mine"),
            "other"
        );
    }
}
