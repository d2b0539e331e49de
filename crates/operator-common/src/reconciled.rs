//! The three kinds the operators reconcile, as the shared pipeline sees them: an object with a
//! status made of conditions, the original API's `state` and `reason`, and the generation the
//! status describes.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    ($kind:ty, $status:ty) => {
        impl Reconciled for $kind {
            type Status = $status;

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

reconciled!(Synapse, SynapseStatus);
reconciled!(Heisenbridge, HeisenbridgeStatus);
reconciled!(MautrixSignal, MautrixSignalStatus);
