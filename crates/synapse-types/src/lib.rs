//! The `synapse.opdev.io/v1alpha1` API: the `Synapse`, `Heisenbridge` and `MautrixSignal` kinds,
//! a superset of the original Go operator's API, and the [`contract`] through which the three
//! operators coordinate.

pub mod common;
pub mod contract;
pub mod expose;
pub mod heisenbridge;
pub mod mautrix_signal;
pub mod metrics;
pub mod synapse;
pub mod workers;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};

pub use common::{
    CONDITION_DATABASE_READY, CONDITION_READY, CONDITION_REGISTERED, ConfigMapReference,
    DatabaseConnectionInfo, ExternalPostgreSQL, State, SynapseReference,
};
pub use heisenbridge::{Heisenbridge, HeisenbridgeSpec, HeisenbridgeStatus};
pub use mautrix_signal::{MautrixSignal, MautrixSignalSpec, MautrixSignalStatus};
pub use synapse::{DeletionPolicy, StorageSpec, Synapse, SynapseSpec, SynapseStatus};

/// The API group of every kind.
pub const GROUP: &str = "synapse.opdev.io";

/// The API version of every kind.
pub const VERSION: &str = "v1alpha1";

/// The CRD YAML could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("cannot render the CRD as YAML: {0}")]
pub struct RenderError(#[from] serde_yaml::Error);

/// Renders a CRD as the YAML document committed under `crds/`. The one rendering used both by
/// the operators' `crd` subcommand and by the test that keeps `crds/` in step with the types.
///
/// Descriptions come from doc comments wrapped at 100 columns; the wrapping is undone so that
/// `kubectl explain` can wrap them to the terminal.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, RenderError> {
    let mut crd = crd.clone();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            unwrap_descriptions(schema);
        }
    }
    Ok(format!(
        "# Generated from crates/synapse-types by hack/gen-crds: do not edit.\n{}",
        serde_yaml::to_string(&crd)?
    ))
}

/// Joins the lines of each paragraph of every description in `schema`.
fn unwrap_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(description) = &mut schema.description {
        *description = description
            .split("\n\n")
            .map(|paragraph| {
                paragraph
                    .split('\n')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n\n");
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        unwrap_descriptions(child);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &mut schema.items {
        unwrap_descriptions(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_unwrapped_paragraph_by_paragraph() {
        let mut schema = JSONSchemaProps {
            description: Some("one\ntwo\n\nthree\nfour".into()),
            items: Some(JSONSchemaPropsOrArray::Schema(Box::new(JSONSchemaProps {
                description: Some("a\nb".into()),
                ..JSONSchemaProps::default()
            }))),
            ..JSONSchemaProps::default()
        };
        unwrap_descriptions(&mut schema);
        assert_eq!(schema.description.as_deref(), Some("one two\n\nthree four"));
        let Some(JSONSchemaPropsOrArray::Schema(items)) = schema.items else {
            unreachable!()
        };
        assert_eq!(items.description.as_deref(), Some("a b"));
    }
}
