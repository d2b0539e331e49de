//! The command line every operator shares: `run` (the default) and `crd`.

use std::net::SocketAddr;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// Command line of an operator binary. Without a subcommand it runs the operator.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    run: RunArgs,
}

impl Cli {
    /// The subcommand to carry out; `run` when none was given.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Run(self.run))
    }
}

/// What the binary does.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator (the default).
    Run(RunArgs),
    /// Print the CustomResourceDefinition of the operator's kind as YAML.
    Crd,
}

/// Settings of a running operator. Each flag can also be given by its environment variable.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// Address of the Prometheus metrics endpoint (/metrics).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Address of the health endpoints (/healthz, /readyz). May equal --metrics-addr.
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    pub health_addr: SocketAddr,

    /// Namespace to watch. Empty or unset: all namespaces.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,

    /// Elect one active replica through a Lease, so that several replicas are safe.
    #[arg(long, env = "LEADER_ELECT", default_value_t = true, action = ArgAction::Set)]
    pub leader_elect: bool,

    /// Namespace of the leader-election Lease. Default: the watched namespace, else the
    /// client's default namespace (the Pod's own namespace in a cluster).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,

    /// How many objects are reconciled at once at most: bounds the operator's memory and its load
    /// on the API server under a burst of changes.
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,

    /// Requests per second the operator sends to the API server at most, on average, once warm:
    /// after a quiet period it starts at 20 (controller-runtime's pace), stays there for 5 s of
    /// sustained backlog and warms up to this over 5 s more, so a burst of changes meets a gentle operator while it
    /// lasts and a long backlog is worked off at full pace (`hack/bench`: 1,000 Synapses on a
    /// 2-core plane).
    #[arg(long, env = "KUBE_API_QPS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_qps: u32,

    /// Requests the operator may send at once above its pace.
    #[arg(long, env = "KUBE_API_BURST", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub kube_api_burst: u32,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter directives (tracing-subscriber EnvFilter syntax), e.g. `info` or
    /// `info,kube=debug`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl RunArgs {
    /// The namespace to watch, `None` for all namespaces.
    pub fn watch_namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| !ns.is_empty())
    }
}

/// How log lines are written.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("operator").chain(args.iter().copied()))
            .unwrap()
            .command()
    }

    #[test]
    fn run_is_the_default_and_takes_the_same_flags() {
        let Command::Run(default) = parse(&["--namespace", "matrix", "--leader-elect=false"])
        else {
            panic!("expected run");
        };
        let Command::Run(explicit) =
            parse(&["run", "--namespace", "matrix", "--leader-elect", "false"])
        else {
            panic!("expected run");
        };
        assert_eq!(default, explicit);
        assert_eq!(default.watch_namespace(), Some("matrix"));
        assert!(!default.leader_elect);
    }

    #[test]
    fn defaults() {
        let Command::Run(args) = parse(&[]) else {
            panic!("expected run");
        };
        assert!(args.leader_elect);
        assert_eq!(args.watch_namespace(), None);
        assert_eq!(args.log_format, LogFormat::Text);
        assert_eq!(args.metrics_addr.port(), 8080);
        assert_eq!(args.health_addr.port(), 8081);
    }

    #[test]
    fn empty_namespace_means_all() {
        let Command::Run(args) = parse(&["--namespace", ""]) else {
            panic!("expected run");
        };
        assert_eq!(args.watch_namespace(), None);
    }

    #[test]
    fn crd_subcommand() {
        assert!(matches!(parse(&["crd"]), Command::Crd));
    }
}
