//! The synapse-operator: deploys and runs Matrix homeservers (the `Synapse` kind).
//!
//! `synapse-operator [run]` runs it; `synapse-operator crd` prints the CustomResourceDefinition
//! of its kind. A reconciliation ([`reconcile`]) is a pipeline of steps, one module each:
//! [`fetch`] reads the inputs, [`resolve`] validates them into the configuration Synapse runs
//! with ([`homeserver_file`] reads a user's file, [`render`] writes the operator's),
//! [`database`] finds the database, [`appservice`] decides which bridge registrations are
//! mounted, [`build`] makes the objects ([`workload`] the Deployment and Service), and
//! [`status`] computes the status; [`context`] holds what a reconciliation runs with and
//! [`controller`] wires the caches and watches.

mod appservice;
mod build;
mod certificate;
mod config_check;
mod context;
mod controller;
mod database;
mod expose;
mod fetch;
mod homeserver_file;
mod homeserver_secret;
mod http_route;
mod ingress;
mod metrics;
mod monitor;
mod monitoring;
mod names;
mod public;
mod reconcile;
mod render;
mod resolve;
mod status;
mod version;
mod workers;
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
