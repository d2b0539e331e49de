//! The heisenbridge-operator: deploys Heisenbridge IRC bridges and registers them with a Synapse
//! (the `Heisenbridge` kind).
//!
//! `heisenbridge-operator [run]` runs it; `heisenbridge-operator crd` prints the
//! CustomResourceDefinition of its kind. A reconciliation ([`reconcile`]) runs the shared bridge
//! skeleton around this operator's steps: [`validate`] makes the registration ([`registration`]
//! checks a user's, [`registration_json`] writes it), [`build`] makes the objects ([`workload`]
//! the Deployment and Service), [`status`] computes the status; [`controller`] wires the caches
//! and watches.

mod build;
mod context;
mod controller;
mod names;
mod reconcile;
mod registration;
mod registration_json;
mod status;
mod validate;
mod workload;

use clap::Parser as _;
use kube::CustomResourceExt as _;
use operator_common::cli::{Cli, Command};
use synapse_types::{Heisenbridge, crd_yaml};

/// The operator's name: its field manager, Lease name prefix and metrics prefix.
const OPERATOR: &str = "heisenbridge-operator";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command() {
        Command::Crd => print!("{}", crd_yaml(&Heisenbridge::crd())?),
        Command::Run(args) => {
            operator_common::runtime::run(OPERATOR, args, controller::run).await?
        }
    }
    Ok(())
}
