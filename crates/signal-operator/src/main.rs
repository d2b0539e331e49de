//! The signal-operator binary. `signal-operator [run]` runs it; `signal-operator crd` prints the
//! CustomResourceDefinition of its kind.

use clap::Parser as _;
use kube::CustomResourceExt as _;
use operator_common::cli::{Cli, Command};
use synapse_types::{MautrixSignal, crd_yaml};

/// The operator's name: its field manager, Lease name prefix and metrics prefix.
const OPERATOR: &str = "signal-operator";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command() {
        Command::Crd => print!("{}", crd_yaml(&MautrixSignal::crd())?),
        Command::Run(args) => {
            operator_common::runtime::run(OPERATOR, args, signal_operator::controller::run).await?
        }
    }
    Ok(())
}
