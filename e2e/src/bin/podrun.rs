//! `podrun`: runs the process of pods the local cluster created, for real, through the e2e pod
//! harness (see `e2e::pod_harness`). All targets share one network namespace, so they reach each
//! other (and the caller's command reaches them) on 127.0.0.1. Needs root and `hack/python-env`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use e2e::pod_harness::{self, Error, PodProcess, Scenario, netns};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    about = "Run pods of the local cluster for real, in one network namespace",
    after_help = "Examples:\n  \
      podrun -n demo --service synapse --wait-http 8008/health deployment/synapse \\\n      \
        -- curl -fsS http://127.0.0.1:8008/_matrix/client/versions\n  \
      podrun -n demo --netns demo --service synapse deployment/synapse deployment/heisenbridge\n    \
        (follows the logs until Ctrl-C; meanwhile: ip netns exec demo curl http://127.0.0.1:8008/health)"
)]
struct Args {
    /// Namespace of the targets, and of `--service` names given without one.
    #[arg(short, long)]
    namespace: String,
    /// What to run: `deployment/NAME` (its ready pod of the newest ReplicaSet) or `pod/NAME`,
    /// with `:CONTAINER` appended when the pod has several containers.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// A Service whose cluster DNS names resolve to 127.0.0.1 in the pods: `NAME` or
    /// `NAME.NAMESPACE`. Repeatable.
    #[arg(long = "service", value_name = "SERVICE")]
    services: Vec<String>,
    /// Name of the network namespace to create (default `podh-<pid>-<n>`); it must not exist.
    #[arg(long)]
    netns: Option<String>,
    /// Wait until `http://127.0.0.1:PORT/PATH` answers 200 (e.g. `8008/health`). Repeatable.
    #[arg(long = "wait-http", value_name = "PORT/PATH")]
    wait_http: Vec<String>,
    /// Seconds to wait for each target's ready pod and for each `--wait-http`.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// After stopping, delete the data the harness kept for the namespace's claims (by default
    /// it persists across runs, like a PersistentVolume).
    #[arg(long)]
    forget_claims: bool,
    /// Run this inside the network namespace once everything is up, then stop the pods and exit
    /// with its status. Without it, podrun follows the logs until Ctrl-C or SIGTERM.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Prints what a log file gained since the last call, line by line, with a prefix.
struct Follow {
    prefix: String,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Follow {
    fn new(prefix: &str, path: PathBuf) -> Self {
        Self {
            prefix: prefix.to_string(),
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn pump(&mut self) -> std::io::Result<()> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut fresh = Vec::new();
        self.offset += file.read_to_end(&mut fresh)? as u64;
        self.partial.extend(fresh);
        let mut out = std::io::stdout().lock();
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            out.write_all(self.prefix.as_bytes())?;
            out.write_all(&line)?;
        }
        out.flush()
    }
}

fn parse_wait(spec: &str) -> anyhow::Result<(u16, String)> {
    let (port, path) = spec.split_once('/').unwrap_or((spec, ""));
    let port = port
        .parse()
        .with_context(|| format!("--wait-http {spec:?}: expected PORT/PATH"))?;
    Ok((port, format!("/{path}")))
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    // `run` returns once every pod is stopped and the network namespace is gone.
    let code = run(&args).await;
    if args.forget_claims {
        pod_harness::forget_claims(&args.namespace)?;
    }
    code
}

async fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout);
    let client = kube::Client::try_default()
        .await
        .context("connect to the cluster named by KUBECONFIG (eval \"$(hack/cluster env)\")")?;
    let mut scenario = match &args.netns {
        Some(name) => Scenario::with_netns("podrun", name)?,
        None => Scenario::new("podrun")?,
    };
    for service in &args.services {
        match service.split_once('.') {
            Some((name, namespace)) => scenario.add_service(namespace, name),
            None => scenario.add_service(&args.namespace, service),
        }
    }

    let mut running: Vec<(String, PodProcess)> = Vec::new();
    for target in &args.targets {
        let (what, container) = match target.split_once(':') {
            Some((what, container)) => (what, Some(container)),
            None => (target.as_str(), None),
        };
        let start = Instant::now();
        let process = match what.split_once('/') {
            Some(("deployment" | "deploy", name)) => {
                scenario
                    .run_deployment(&client, &args.namespace, name, container, timeout)
                    .await?
            }
            Some(("pod", name)) => {
                scenario
                    .run_pod(&client, &args.namespace, name, container)
                    .await?
            }
            _ => bail!("target {target:?}: expected deployment/NAME or pod/NAME[:CONTAINER]"),
        };
        eprintln!(
            "podrun: {target}: started pod {} (pid {}) in {:?}; logs: {} {}",
            process.plan().pod,
            process.pid(),
            start.elapsed(),
            process.stdout_path().display(),
            process.stderr_path().display(),
        );
        running.push((target.clone(), process));
    }
    let ns_name = scenario.netns().name().to_string();
    eprintln!("podrun: network namespace {ns_name} (ip netns exec {ns_name} COMMAND)");

    for spec in &args.wait_http {
        let (port, path) = parse_wait(spec)?;
        let start = Instant::now();
        netns::wait_http_ok(scenario.netns(), port, &path, timeout, || {
            for (_, process) in running.iter_mut() {
                process.check_running(&format!("HTTP 200 from :{port}{path}"))?;
            }
            Ok::<(), Error>(())
        })
        .await?;
        eprintln!(
            "podrun: http://127.0.0.1:{port}{path} answered 200 after {:?}",
            start.elapsed()
        );
    }

    if let Some((program, rest)) = args.command.split_first() {
        let status = scenario
            .netns()
            .command(program)
            .args(rest)
            .status()
            .with_context(|| format!("run {program} in netns {ns_name}"))?;
        return Ok(ExitCode::from(
            status
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .unwrap_or(1),
        ));
    }

    let mut follows: Vec<Follow> = running
        .iter()
        .flat_map(|(target, p)| {
            let prefix = format!("[{target}] ");
            [
                Follow::new(&prefix, p.stdout_path().to_path_buf()),
                Follow::new(&prefix, p.stderr_path().to_path_buf()),
            ]
        })
        .collect();
    let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    loop {
        for follow in &mut follows {
            follow.pump().context("follow the logs")?;
        }
        for (target, process) in running.iter_mut() {
            if let Some(status) = process.try_exit()? {
                eprintln!("podrun: {target} exited ({status}); stopping the others");
                return Ok(ExitCode::FAILURE);
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    eprintln!("podrun: stopping");
    Ok(ExitCode::SUCCESS)
}
