//! `bench`: the synapse-operator under a burst of N Synapses on the local plane, run by
//! `hack/bench` (which starts the plane, builds the release operator and installs the CRDs).
//! It prints a table and, as its last line, one JSON object (also written to `--out-dir`).
//! See `e2e::bench` and docs/development.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use e2e::bench::foreign::Foreign;
use e2e::bench::operator::Operator;
use e2e::bench::report::{Convergence, Figures};
use e2e::bench::track::Tracker;
use e2e::bench::{self, nodes};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(about = "Benchmark the synapse-operator under a burst of N Synapses (see hack/bench)")]
struct Args {
    /// How many Synapses to create at once.
    #[arg(default_value_t = 1000)]
    n: usize,
    /// Parallel workers applying the Synapses (one request in flight each).
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Prefix of the namespaces the run creates (`<prefix><run id>-without|-with`).
    #[arg(long, default_value = "bench-")]
    namespace_prefix: String,
    /// The operator binary to run (a release build).
    #[arg(long)]
    operator: PathBuf,
    /// What the operator was built from, for the report (e.g. a commit).
    #[arg(long, default_value = "unknown")]
    revision: String,
    /// Directory for the operator's log, its pid file and `result.json`.
    #[arg(long)]
    out_dir: PathBuf,
    /// Id of the run: the value of the label on everything it creates. Default: the Unix time.
    #[arg(long)]
    run_id: Option<String>,
    /// CPU request of a Synapse pod, to fit the pods on the nodes: the operator's default
    /// (`spec.resources` in docs/reference/synapse.md).
    #[arg(long, default_value = "250m", value_parser = requests)]
    pod_cpu: f64,
    /// Memory request of a Synapse pod, likewise.
    #[arg(long, default_value = "512Mi", value_parser = requests)]
    pod_memory: f64,
    /// The operator's `--log-level`, e.g. `info,kube_client=debug` to log every request.
    #[arg(long, default_value = "info")]
    operator_log_level: String,
    /// Seconds of the idle period after convergence.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Run even though Synapses exist (or appear) outside the run's namespaces: the operator
    /// reconciles them too, and the figures include that work.
    #[arg(long)]
    allow_foreign: bool,
    /// Seconds each wait may take. Default: 180 + 0.6 per Synapse.
    #[arg(long)]
    timeout_secs: Option<u64>,
}

/// What a run created and has not removed yet: removed on any exit.
struct Leftovers {
    client: kube::Client,
    run_id: String,
    namespaces: Vec<String>,
    nodes: bool,
    operator: Option<Operator>,
    pid_file: PathBuf,
}

impl Leftovers {
    async fn stop_operator(&mut self) -> Result<()> {
        if let Some(mut operator) = self.operator.take() {
            let status = operator.stop().await?;
            let _ = std::fs::remove_file(&self.pid_file);
            eprintln!("operator stopped ({status})");
        }
        Ok(())
    }

    async fn delete_namespace(&mut self, name: &str, timeout: Duration) -> Result<Duration> {
        let took = bench::delete_namespace(&self.client, name, timeout).await?;
        self.namespaces.retain(|n| n != name);
        Ok(took)
    }

    async fn remove_nodes(&mut self, timeout: Duration) -> Result<()> {
        if self.nodes {
            let removed = nodes::remove(&self.client, &self.run_id, timeout).await?;
            self.nodes = false;
            eprintln!("removed {removed} bench nodes");
        }
        Ok(())
    }

    /// Removes whatever is left, reporting each failure and going on.
    async fn clean(&mut self, timeout: Duration) -> bool {
        let mut ok = true;
        if let Err(e) = self.stop_operator().await {
            eprintln!("error: stop the operator: {e:#}");
            ok = false;
        }
        for name in self.namespaces.clone() {
            eprintln!("deleting namespace {name}");
            if let Err(e) = self.delete_namespace(&name, timeout).await {
                eprintln!("error: {e:#}");
                ok = false;
            }
        }
        if let Err(e) = self.remove_nodes(timeout).await {
            eprintln!("error: remove the bench nodes: {e:#}");
            ok = false;
        }
        ok
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!("error: KUBECONFIG is not set: run the benchmark through hack/bench");
        return ExitCode::FAILURE;
    }
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(e) => {
            eprintln!("error: connect to the plane: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map(|d| d.as_secs()).unwrap_or_default().to_string()
    });
    let timeout = Duration::from_secs(
        args.timeout_secs
            .unwrap_or_else(|| bench::default_timeout(args.n).as_secs()),
    );
    let mut leftovers = Leftovers {
        client: client.clone(),
        run_id: run_id.clone(),
        namespaces: Vec::new(),
        nodes: false,
        operator: None,
        pid_file: args.out_dir.join("operator.pid"),
    };
    let ours = format!("{}{run_id}-", args.namespace_prefix);
    let mut foreign = match Foreign::start(&client, ours).await {
        Ok(foreign) => foreign,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let before = foreign.namespaces();
    if !before.is_empty() && !args.allow_foreign {
        eprintln!(
            "error: the plane holds Synapses in {before:?} (a test running?): the operator under \
             test watches all namespaces and would reconcile them too. Run hack/bench when they \
             are gone, or pass --allow-foreign."
        );
        return ExitCode::FAILURE;
    }
    let result = tokio::select! {
        result = run(&args, &client, &run_id, timeout, &mut leftovers) => result,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
        seen = foreign.appeared(), if !args.allow_foreign => Err(anyhow::anyhow!(
            "Synapses appeared in {seen:?} (a test started?): stopping, so that the operator \
             under test leaves them alone; the run is void"
        )),
    };
    let result = result.map(|mut figures| {
        figures.foreign_namespaces = foreign.namespaces().into_iter().collect();
        figures
    });
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
        let log = args.out_dir.join("operator.log");
        if log.exists() {
            eprintln!("the operator's log: {}", log.display());
        }
        eprintln!("cleaning up");
    }
    let cleaned = leftovers.clean(timeout).await;
    match result {
        Ok(figures) => {
            let json = figures.json().to_string();
            let path = args.out_dir.join("result.json");
            if let Err(e) = std::fs::write(&path, format!("{json}\n")) {
                eprintln!("error: write {}: {e}", path.display());
            }
            println!("{}", figures.table());
            println!("JSON written to {}", path.display());
            println!("{json}");
            if cleaned {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(_) => ExitCode::FAILURE,
    }
}

async fn interrupted() -> &'static str {
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// A resource request as a Kubernetes quantity (`250m`, `512Mi`), in its base unit.
fn requests(text: &str) -> Result<f64, String> {
    nodes::quantity(text)
        .filter(|q| *q > 0.0)
        .ok_or_else(|| format!("{text:?} is not a positive Kubernetes quantity"))
}

/// A line of progress on stderr, stamped with the UTC time of day (the operator logs in UTC).
fn step(what: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, millis) = (now.as_secs() % 86_400, now.subsec_millis());
    eprintln!(
        "[bench {:02}:{:02}:{:02}.{millis:03}Z] {what}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

async fn run(
    args: &Args,
    client: &kube::Client,
    run_id: &str,
    timeout: Duration,
    leftovers: &mut Leftovers,
) -> Result<Figures> {
    let started = Instant::now();
    let n = args.n;
    if n == 0 || args.workers == 0 {
        bail!("N and --workers must be at least 1");
    }
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("create {}", args.out_dir.display()))?;
    let mut figures = Figures {
        n,
        workers: args.workers,
        operator: args.operator.display().to_string(),
        revision: args.revision.clone(),
        idle_secs: args.idle_secs,
        load_start: bench::load_average(),
        ..Figures::default()
    };

    // 1. Room for N pods: one node first, to learn how many pods a node as kwok makes it takes
    //    (its pods, CPU and memory against the pod's requests).
    step("adding bench nodes");
    let pod = nodes::PodRequests {
        cpu: args.pod_cpu,
        memory: args.pod_memory,
    };
    let mut created = Vec::new();
    leftovers.nodes = true;
    nodes::create(client, run_id, 0..1, &mut created).await?;
    let capacity = nodes::wait_ready(client, run_id, &created, pod, timeout).await?;
    if capacity == 0 {
        bail!("a bench node has no room for one Synapse pod (--pod-cpu, --pod-memory)");
    }
    let count = n.div_ceil(capacity) + 1;
    nodes::create(client, run_id, 1..count, &mut created).await?;
    nodes::wait_ready(client, run_id, &created, pod, timeout).await?;
    (figures.bench_nodes, figures.pods_per_node) = (count, capacity);
    step(&format!("{count} bench nodes Ready, {capacity} pods each"));

    // 2. The burst without an operator: what the plane itself costs.
    let without = format!("{}{run_id}-without", args.namespace_prefix);
    bench::create_namespace(client, &without, run_id).await?;
    leftovers.namespaces.push(without.clone());
    step(&format!(
        "applying {n} Synapses in {without}, no operator running"
    ));
    let burst = bench::apply_synapses(client, &without, n, args.workers).await?;
    figures.creation_without_s = bench::secs(burst.elapsed);
    figures.apply_retries = burst.retries;
    step(&format!(
        "created in {:.2} s; deleting {without}",
        figures.creation_without_s
    ));
    figures.delete_without_s = bench::secs(leftovers.delete_namespace(&without, timeout).await?);

    // 3. The operator, watching all namespaces.
    step(&format!("starting {}", args.operator.display()));
    let log = args.out_dir.join("operator.log");
    let operator = leftovers.operator.insert(Operator::start(
        &args.operator,
        &log,
        &args.operator_log_level,
    )?);
    std::fs::write(&leftovers.pid_file, format!("{}\n", operator.pid()))?;
    figures.operator_ready_s = bench::secs(operator.wait_ready(Duration::from_secs(120)).await?);
    figures.at_start = operator.sample().await?;

    let with = format!("{}{run_id}-with", args.namespace_prefix);
    bench::create_namespace(client, &with, run_id).await?;
    leftovers.namespaces.push(with.clone());
    let mut tracker = Tracker::start(client, &with, n).await?;
    step(&format!(
        "applying {n} Synapses in {with}, the operator running"
    ));
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let converged = tokio::spawn(async move {
        let seen = tracker.converge(deadline).await;
        seen.map(|seen| (seen, tracker.watch_errors))
    });
    let burst = bench::apply_synapses(client, &with, n, args.workers).await?;
    figures.creation_with_s = bench::secs(burst.elapsed);
    figures.apply_retries += burst.retries;
    step(&format!(
        "created in {:.2} s; waiting for every Deployment and Synapse to be ready (at most {timeout:?})",
        figures.creation_with_s
    ));
    let (seen, watch_errors) = converged.await??;
    let operator = leftovers.operator.as_mut().context("the operator")?;
    figures.at_ready = operator.sample().await?;
    figures.usage_at_ready = Some(operator.usage()?);
    figures.convergence = Convergence::from_seen(&seen, t0);
    figures.watch_errors = watch_errors;
    step(&format!(
        "all {n} Synapses Ready after {:.2} s; idle for {} s",
        figures.convergence.synapses_ready_s, args.idle_secs
    ));

    // 4. and 5. The idle minute.
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    operator.check_running()?;
    figures.idle = operator.sample().await?.since(&figures.at_ready);
    let mut end = operator.usage()?;
    // VmHWM is assembled from per-thread counters and may read a little lower later.
    end.peak_rss_mib = end
        .peak_rss_mib
        .max(figures.usage_at_ready.map_or(0.0, |u| u.peak_rss_mib));
    figures.usage_end = Some(end);
    (figures.log_warnings, figures.log_errors) = operator.log_problems();
    figures.load_end = bench::load_average();

    // 6. Clean up, timed.
    leftovers.stop_operator().await?;
    step(&format!("deleting {with}"));
    figures.delete_with_s = bench::secs(leftovers.delete_namespace(&with, timeout).await?);
    leftovers.remove_nodes(timeout).await?;
    figures.total_s = bench::secs(started.elapsed());
    Ok(figures)
}
