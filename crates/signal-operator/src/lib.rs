//! The signal-operator: deploys mautrix-signal bridges and registers them with a Synapse (the
//! `MautrixSignal` kind).
//!
//! The reconciliation is a pipeline of steps, one module each: [`controller`] fetches the inputs
//! and applies the results; [`config`] writes the bridge's bridgev2 `config.yaml` (from nothing,
//! from a user's file, or from a legacy file migrated by [`legacy`]); [`registration`] writes
//! the matching app-service registration; [`keys`] holds the generated secrets; [`database`]
//! says which PostgreSQL database the bridge uses and how it connects; [`workload`] builds the
//! Kubernetes objects; [`status`] computes the status and its Events. Everything but the
//! controller is pure.

pub mod config;
pub mod controller;
pub mod database;
pub mod keys;
pub mod legacy;
pub mod registration;
pub mod status;
pub mod workload;
mod yaml;
