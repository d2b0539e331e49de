//! The heisenbridge-operator: deploys Heisenbridge IRC bridges and registers them with a Synapse (the `Heisenbridge` kind).
//!
//! `heisenbridge-operator [run]` runs it; `heisenbridge-operator crd` prints the CustomResourceDefinition of its kind.

mod controller;
mod registration;
mod status;
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
