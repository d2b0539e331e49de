//! The synapse-operator: deploys and runs Matrix homeservers (the `Synapse` kind).
//!
//! `synapse-operator [run]` runs it; `synapse-operator crd` prints the CustomResourceDefinition of its kind.

mod appservice;
mod controller;
mod homeserver_file;
mod homeserver_secret;
mod render;
mod resolve;
mod status;
mod workload;

use clap::Parser as _;
use kube::CustomResourceExt as _;
use operator_common::cli::{Cli, Command};
use synapse_types::{Synapse, crd_yaml};

/// The operator's name: its field manager, Lease name prefix and metrics prefix.
const OPERATOR: &str = "synapse-operator";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command() {
        Command::Crd => print!("{}", crd_yaml(&Synapse::crd())?),
        Command::Run(args) => {
            operator_common::runtime::run(OPERATOR, args, controller::run).await?
        }
    }
    Ok(())
}
