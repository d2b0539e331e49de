//! The signal-operator: deploys mautrix-signal bridges and registers them with a Synapse (the
//! `MautrixSignal` kind).
//!
//! A reconciliation ([`reconcile`]) runs the shared bridge skeleton around this operator's
//! steps, one module each: [`fetch`] reads the input file and the Synapse, [`validate`] makes
//! the bridgev2
//! `config.yaml` ([`config`], its checks in [`config_checks`]; a legacy file is first migrated
//! by [`legacy`]), [`keys`] holds the generated secrets, [`database`] says which PostgreSQL
//! database the bridge uses and how it connects, [`registration`] writes the matching
//! app-service registration, [`build`] makes the objects ([`workload`] the Deployment and
//! Service), [`apply`] writes them, [`status`] computes the status. [`names`] and [`problems`] are leaves every step
//! reads; [`controller`] wires the caches and watches.

pub mod apply;
pub mod build;
pub mod config;
pub mod config_checks;
pub mod context;
pub mod controller;
pub mod database;
pub mod fetch;
pub mod keys;
pub mod legacy;
mod legacy_paths;
mod legacy_values;
pub mod names;
pub mod problems;
pub mod reconcile;
pub mod registration;
pub mod status;
pub mod validate;
pub mod workload;
mod yaml;
