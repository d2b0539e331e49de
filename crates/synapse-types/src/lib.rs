//! The `synapse.opdev.io/v1alpha1` API: the `Synapse`, `Heisenbridge` and `MautrixSignal` kinds,
//! a superset of the original Go operator's API, and the [`contract`] through which the three
//! operators coordinate.

pub mod common;
pub mod contract;
pub mod heisenbridge;
pub mod mautrix_signal;
pub mod synapse;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub use common::{
    CONDITION_READY, CONDITION_REGISTERED, ConfigMapReference, State, SynapseReference,
};
pub use heisenbridge::{Heisenbridge, HeisenbridgeSpec, HeisenbridgeStatus};
pub use mautrix_signal::{MautrixSignal, MautrixSignalSpec, MautrixSignalStatus};
pub use synapse::{Synapse, SynapseSpec, SynapseStatus};

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
pub fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String, RenderError> {
    Ok(format!(
        "# Generated from crates/synapse-types by hack/gen-crds: do not edit.\n{}",
        serde_yaml::to_string(crd)?
    ))
}
