//! The three kinds the operators reconcile, as the shared pipeline sees them: an object with a
//! status made of conditions, the original API's `state` and `reason`, and the generation the
//! status describes.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use synapse_types::ConfigMapReference;
use synapse_types::common::State;
use synapse_types::{
    Heisenbridge, HeisenbridgeStatus, MautrixSignal, MautrixSignalStatus, Synapse, SynapseStatus,
};

/// A custom resource kind one of the operators reconciles.
pub trait Reconciled:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Its status.
    type Status: ObjectStatus;

    /// Its current status, if it has one.
    fn status(&self) -> Option<&Self::Status>;

    /// Its status, to replace.
    fn status_mut(&mut self) -> &mut Option<Self::Status>;

    /// The spec field naming the user's input ConfigMap, for messages.
    const CONFIG_MAP_FIELD: &'static str;

    /// The user's input ConfigMap, if the spec names one.
    fn config_map_reference(&self) -> Option<&ConfigMapReference>;
}

/// The fields every status of ours has.
pub trait ObjectStatus:
    Clone + Default + PartialEq + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Sets the original API's `state` and its `reason`.
    fn set_state(&mut self, state: Option<State>, reason: Option<String>);
    fn set_observed_generation(&mut self, generation: Option<i64>);
}

macro_rules! reconciled {
    ($kind:ty, $status:ty, $field:literal, |$object:ident| $config_map:expr) => {
        impl Reconciled for $kind {
            type Status = $status;
            const CONFIG_MAP_FIELD: &'static str = $field;

            fn config_map_reference(&self) -> Option<&ConfigMapReference> {
                let $object = self;
                $config_map.as_ref()
            }

            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }

            fn status_mut(&mut self) -> &mut Option<$status> {
                &mut self.status
            }
        }

        impl ObjectStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }

            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }

            fn set_state(&mut self, state: Option<State>, reason: Option<String>) {
                self.state = state;
                self.reason = reason;
            }

            fn set_observed_generation(&mut self, generation: Option<i64>) {
                self.observed_generation = generation;
            }
        }
    };
}

reconciled!(
    Synapse,
    SynapseStatus,
    "spec.homeserver.configMap",
    |synapse| synapse.spec.homeserver.config_map
);
reconciled!(
    Heisenbridge,
    HeisenbridgeStatus,
    "spec.configMap",
    |bridge| bridge.spec.config_map
);
reconciled!(
    MautrixSignal,
    MautrixSignalStatus,
    "spec.configMap",
    |bridge| bridge.spec.config_map
);
