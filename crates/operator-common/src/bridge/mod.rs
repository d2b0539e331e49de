//! The bridge side of the app-service handshake (DESIGN section 5), shared by the bridge
//! operators: which Synapse a bridge belongs to ([`synapse_name`]), the one reconciliation
//! skeleton of a bridge ([`handshake`]: deletion and withdrawal, retargeting, storing and
//! announcing the registration), the announcement itself ([`announcement`]), reading from
//! `Synapse.status` whether the registration is live ([`registration`]), and the conditions
//! every bridge reports ([`status`]).
//!
//! The keys and shapes of the contract itself live in [`synapse_types::contract`]; this module
//! is how a bridge operator acts on them.

pub mod announcement;
pub mod handshake;
pub mod kind;
pub mod registration;
pub mod status;

pub use announcement::{Announcement, add_finalizer, has_finalizer, remove_finalizer};
pub use handshake::{BridgeContext, Handshake, reconcile};
pub use kind::{Bridge, CrossNamespaceSynapse, bridges_of_synapse, reasons, synapse_name};
pub use registration::{RegistrationState, registration_state};

#[cfg(test)]
mod tests;
