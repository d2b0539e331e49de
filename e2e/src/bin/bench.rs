//! `bench`: the synapse-operator (and the heisenbridge-operator) under a burst of N Synapses on
//! the local plane, run by `hack/bench` (which starts the plane, builds the release operators and
//! installs the CRDs).
//! It prints a table and, as its last line, one JSON object (also written to `--out-dir`).
//! See `e2e::bench` and docs/development.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use e2e::bench::floor::Children;
use e2e::bench::foreign::Foreign;
use e2e::bench::operator::{self, Operator};
use e2e::bench::report::{Convergence, Figures, Floor, OperatorFigures, Rounds};
use e2e::bench::track::{Expected, Tracker};
use e2e::bench::{self, Burst, Desired, nodes};
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
    /// Prefix of the namespaces the run creates
    /// (`<prefix><run id>-template|-floor|-floor-crs|-without|-with`).
    #[arg(long, default_value = "bench-")]
    namespace_prefix: String,
    /// The synapse-operator binary to run (a release build).
    #[arg(long)]
    operator: PathBuf,
    /// A heisenbridge-operator binary (a release build): with it, each Synapse gets a
    /// Heisenbridge, and this operator runs beside the synapse-operator.
    #[arg(long)]
    heisenbridge_operator: Option<PathBuf>,
    /// What the operator was built from, for the report (e.g. a commit).
    #[arg(long, default_value = "unknown")]
    revision: String,
    /// Directory for the operators' logs, their pid files and `result.json`.
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
    /// Run even though Synapses (or Heisenbridges) exist (or appear) outside the run's
    /// namespaces: the operators reconcile them too, and the figures include that work.
    #[arg(long)]
    allow_foreign: bool,
    /// Seconds each wait may take. Default: 180 + 0.6 per custom resource (Synapse and
    /// Heisenbridge).
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// How many times to measure the floors and the operators, alternately: one run on a busy
    /// plane varies by more than the targets allow, the median of three less.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
}

impl Args {
    /// The operators to run: the synapse-operator, then the heisenbridge-operator if given.
    fn binaries(&self) -> Vec<&Path> {
        std::iter::once(self.operator.as_path())
            .chain(self.heisenbridge_operator.as_deref())
            .collect()
    }

    fn namespace(&self, run_id: &str, pass: &str) -> String {
        format!("{}{run_id}-{pass}", self.namespace_prefix)
    }
}

/// What a run created and has not removed yet: removed on any exit.
struct Leftovers {
    client: kube::Client,
    run_id: String,
    namespaces: Vec<String>,
    nodes: bool,
    operators: Vec<Operator>,
    out_dir: PathBuf,
}

impl Leftovers {
    /// Starts each of `binaries` with its log `<log_prefix><name>.log` and its pid file (which
    /// `hack/bench` reads should the run be killed) and waits until each is ready; returns how
    /// long each took.
    async fn start_operators(
        &mut self,
        binaries: &[&Path],
        log_prefix: &str,
        log_level: &str,
    ) -> Result<Vec<f64>> {
        for binary in binaries {
            let name = binary.file_name().unwrap_or_default().to_string_lossy();
            step(&format!("starting {}", binary.display()));
            let log = self.out_dir.join(format!("{log_prefix}{name}.log"));
            let operator = Operator::start(binary, &log, log_level)?;
            std::fs::write(self.pid_file(&operator), format!("{}\n", operator.pid()))?;
            self.operators.push(operator);
        }
        let mut ready = Vec::new();
        for operator in &mut self.operators {
            ready.push(bench::secs(
                operator.wait_ready(Duration::from_secs(120)).await?,
            ));
        }
        Ok(ready)
    }

    fn pid_file(&self, operator: &Operator) -> PathBuf {
        self.out_dir.join(format!("{}.pid", operator.name()))
    }

    async fn stop_operators(&mut self) -> Result<()> {
        while let Some(mut operator) = self.operators.pop() {
            let status = operator.stop().await?;
            let _ = std::fs::remove_file(self.pid_file(&operator));
            eprintln!("{} stopped ({status})", operator.name());
        }
        Ok(())
    }

    async fn create_namespace(&mut self, name: &str) -> Result<()> {
        bench::create_namespace(&self.client, name, &self.run_id).await?;
        self.namespaces.push(name.to_owned());
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
        if let Err(e) = self.stop_operators().await {
            eprintln!("error: stop the operators: {e:#}");
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
            .unwrap_or_else(|| bench::default_timeout(args.n * args.binaries().len()).as_secs()),
    );
    let mut leftovers = Leftovers {
        client: client.clone(),
        run_id: run_id.clone(),
        namespaces: Vec::new(),
        nodes: false,
        operators: Vec::new(),
        out_dir: args.out_dir.clone(),
    };
    let ours = args.namespace(&run_id, "");
    let kinds: &[&str] = match args.heisenbridge_operator {
        Some(_) => &["Synapse", "Heisenbridge"],
        None => &["Synapse"],
    };
    let mut foreign = match Foreign::start(&client, &ours, kinds).await {
        Ok(foreign) => foreign,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let before = foreign.namespaces();
    if !before.is_empty() && !args.allow_foreign {
        eprintln!(
            "error: the plane holds {kinds:?} in {before:?} (a test running?): the operators \
             under test watch all namespaces and would reconcile them too. Run hack/bench when \
             they are gone, or pass --allow-foreign."
        );
        return ExitCode::FAILURE;
    }
    let run = Run {
        args: &args,
        client: &client,
        run_id: &run_id,
        timeout,
        round: 1,
    };
    let result = tokio::select! {
        result = run.run(&mut leftovers) => result,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
        seen = foreign.appeared(), if !args.allow_foreign => Err(anyhow::anyhow!(
            "{kinds:?} appeared in {seen:?} (a test started?): stopping, so that the operators \
             under test leave them alone; the run is void"
        )),
    };
    let result = result.map(|mut rounds| {
        for figures in &mut rounds.0 {
            figures.foreign_namespaces = foreign.namespaces().into_iter().collect();
        }
        rounds
    });
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
        eprintln!("the operators' logs are in {}", args.out_dir.display());
        eprintln!("cleaning up");
    }
    let cleaned = leftovers.clean(timeout).await;
    match result {
        Ok(rounds) => {
            let json = rounds.json().to_string();
            let path = args.out_dir.join("result.json");
            if let Err(e) = std::fs::write(&path, format!("{json}\n")) {
                eprintln!("error: write {}: {e}", path.display());
            }
            println!("{}", rounds.table());
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

/// One run's settings, which its passes share.
#[derive(Clone, Copy)]
struct Run<'a> {
    args: &'a Args,
    client: &'a kube::Client,
    run_id: &'a str,
    timeout: Duration,
    /// The round its passes belong to, from 1.
    round: usize,
}

impl Run<'_> {
    /// The passes of a run, in order; `leftovers` removes what a failed one leaves.
    async fn run(&self, leftovers: &mut Leftovers) -> Result<Rounds> {
        let started = Instant::now();
        if self.args.n == 0 || self.args.workers == 0 || self.args.rounds == 0 {
            bail!("N, --workers and --rounds must be at least 1");
        }
        std::fs::create_dir_all(&self.args.out_dir)
            .with_context(|| format!("create {}", self.args.out_dir.display()))?;
        let mut first = Figures {
            n: self.args.n,
            workers: self.args.workers,
            heisenbridge: self.args.heisenbridge_operator.is_some(),
            revision: self.args.revision.clone(),
            idle_secs: self.args.idle_secs,
            ..Figures::default()
        };
        self.add_nodes(leftovers, &mut first).await?;
        let children = self.capture_children(leftovers).await?;
        let mut rounds = Vec::new();
        for round in 1..=self.args.rounds {
            if self.args.rounds > 1 {
                step(&format!("round {round} of {}", self.args.rounds));
            }
            let run = Run { round, ..*self };
            let mut figures = Figures {
                round,
                load_start: bench::load_average(),
                ..first.clone()
            };
            run.floors(&children, leftovers, &mut figures).await?;
            run.without_operators(&children, leftovers, &mut figures)
                .await?;
            run.with_operators(&children, leftovers, &mut figures)
                .await?;
            rounds.push(figures);
        }
        leftovers.remove_nodes(self.timeout).await?;
        for figures in &mut rounds {
            figures.total_s = bench::secs(started.elapsed());
        }
        Ok(Rounds(rounds))
    }

    /// The namespace of `pass` in this round: the first round's are named as without rounds.
    fn namespace(&self, pass: &str) -> String {
        match self.round {
            1 => self.args.namespace(self.run_id, pass),
            round => self.args.namespace(self.run_id, &format!("{pass}-{round}")),
        }
    }

    /// The prefix of the operators' logs in this round.
    fn log_prefix(&self) -> String {
        match self.round {
            1 => String::new(),
            round => format!("round-{round}-"),
        }
    }

    /// Room for N sets of pods: one node first, to learn how many pods a node as kwok makes it
    /// takes (its pods, CPU and memory against the pod's requests).
    async fn add_nodes(&self, leftovers: &mut Leftovers, figures: &mut Figures) -> Result<()> {
        step("adding bench nodes");
        let pod = nodes::PodRequests {
            cpu: self.args.pod_cpu,
            memory: self.args.pod_memory,
        };
        let mut created = Vec::new();
        leftovers.nodes = true;
        nodes::create(self.client, self.run_id, 0..1, &mut created).await?;
        let capacity =
            nodes::wait_ready(self.client, self.run_id, &created, pod, self.timeout).await?;
        if capacity == 0 {
            bail!("a bench node has no room for one Synapse pod (--pod-cpu, --pod-memory)");
        }
        // A Heisenbridge's pod asks less than a Synapse's: counted as one, there is room to spare.
        let pods = self.args.n * self.args.binaries().len();
        let count = pods.div_ceil(capacity) + 1;
        nodes::create(self.client, self.run_id, 1..count, &mut created).await?;
        nodes::wait_ready(self.client, self.run_id, &created, pod, self.timeout).await?;
        (figures.bench_nodes, figures.pods_per_node) = (count, capacity);
        step(&format!("{count} bench nodes Ready, {capacity} pods each"));
        Ok(())
    }

    /// The children of one set as the operators make them: one set reconciled by operators of its
    /// own in a namespace of its own, until nothing more is written.
    async fn capture_children(&self, leftovers: &mut Leftovers) -> Result<Children> {
        let namespace = self.namespace("template");
        leftovers.create_namespace(&namespace).await?;
        let binaries = self.args.binaries();
        leftovers
            .start_operators(&binaries, "template-", &self.args.operator_log_level)
            .await?;
        let set = bench::custom_resources(0, self.args.heisenbridge_operator.is_some());
        let expected = expected_resources(&set);
        step(&format!("capturing the children of one set in {namespace}"));
        self.burst(&namespace, vec![set], expected).await?;
        operator::settle(&leftovers.operators, Duration::from_secs(3), self.timeout).await?;
        let names: Vec<String> = (leftovers.operators.iter())
            .map(|o| o.name().to_owned())
            .collect();
        let children = Children::capture(self.client, &namespace, &names).await?;
        leftovers.stop_operators().await?;
        leftovers.delete_namespace(&namespace, self.timeout).await?;
        step(&format!("children of a set: {:?}", children.kinds()));
        Ok(children)
    }

    /// The floor: N sets of children applied directly, nothing reconciling them, until every
    /// Deployment is ready. Then the floor with the custom resources: each set's custom
    /// resources, its children and one status write on each custom resource (the status the
    /// operators wrote on the template's), likewise; the least any operator adds to the floor,
    /// the user's objects and one report on each.
    async fn floors(
        &self,
        children: &Children,
        leftovers: &mut Leftovers,
        figures: &mut Figures,
    ) -> Result<()> {
        let n = self.args.n;
        let heisenbridge = self.args.heisenbridge_operator.is_some();
        figures.floor = self
            .floor(
                "floor",
                &format!("the floor: applying the children of {n} sets"),
                children,
                leftovers,
                |i, namespace| children.set(i, namespace),
            )
            .await?;
        figures.floor_crs = self
            .floor(
                "floor-crs",
                &format!(
                    "the floor with the custom resources: applying {n} sets of custom resources, \
                     their children and statuses"
                ),
                children,
                leftovers,
                |i, namespace| {
                    let mut set = bench::custom_resources(i, heisenbridge);
                    set.extend(children.set(i, namespace)?);
                    set.extend(children.statuses(i, namespace)?);
                    Ok(set)
                },
            )
            .await?;
        figures.apply_retries += figures.floor.retries + figures.floor_crs.retries;
        Ok(())
    }

    /// One floor: the sets `set_of(i, namespace)` applied into the namespace of `pass`, nothing
    /// reconciling them, until every Deployment is ready; the namespace is then deleted.
    async fn floor(
        &self,
        pass: &str,
        what: &str,
        children: &Children,
        leftovers: &mut Leftovers,
        set_of: impl Fn(usize, &str) -> Result<Vec<Desired>>,
    ) -> Result<Floor> {
        let namespace = self.namespace(pass);
        leftovers.create_namespace(&namespace).await?;
        let sets = (0..self.args.n)
            .map(|i| set_of(i, &namespace))
            .collect::<Result<Vec<_>>>()?;
        let expected = Expected {
            deployments: children.deployments(self.args.n),
            ..Expected::default()
        };
        step(&format!("{what} in {namespace}, no operator running"));
        let Converged {
            burst,
            convergence,
            cpu_busy,
            ..
        } = self.burst(&namespace, sets, expected).await?;
        step(&format!(
            "all Deployments ready after {:.2} s; deleting {namespace}",
            convergence.deployments_ready_s
        ));
        let deleted = leftovers.delete_namespace(&namespace, self.timeout).await?;
        Ok(Floor {
            children: children.kinds(),
            apply_s: bench::secs(burst.elapsed),
            deployments_ready_s: convergence.deployments_ready_s,
            deployments_half_s: convergence.deployments_half_s,
            cpu_busy,
            retries: burst.retries,
            delete_s: bench::secs(deleted),
        })
    }

    /// The custom resources of N sets with no operator: what the plane itself costs.
    async fn without_operators(
        &self,
        children: &Children,
        leftovers: &mut Leftovers,
        figures: &mut Figures,
    ) -> Result<()> {
        let namespace = self.namespace("without");
        leftovers.create_namespace(&namespace).await?;
        let sets = custom_resources(self.args);
        // The watches of the run with the operators, followed the same way while the burst is
        // applied: what measuring costs is in both creation times, only the operators differ.
        let expected = Expected {
            deployments: children.deployments(self.args.n),
            ..expected_resources(&sets.concat())
        };
        let mut tracker = Tracker::start(self.client, &namespace, expected).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let watching = tokio::spawn(async move { tracker.converge(deadline).await });
        step(&format!(
            "applying {} sets of custom resources in {namespace}, no operator running",
            self.args.n
        ));
        let burst = bench::apply_burst(self.client, &namespace, sets, self.args.workers).await;
        watching.abort();
        let burst = burst?;
        figures.creation_without_s = bench::secs(burst.elapsed);
        figures.apply_retries += burst.retries;
        step(&format!(
            "created in {:.2} s; deleting {namespace}",
            figures.creation_without_s
        ));
        figures.delete_without_s =
            bench::secs(leftovers.delete_namespace(&namespace, self.timeout).await?);
        Ok(())
    }

    /// The operators watching all namespaces, as an install does: the custom resources of N sets,
    /// until every Deployment is ready, every Synapse Ready and every Heisenbridge Registered and
    /// Ready; then the idle minute.
    async fn with_operators(
        &self,
        children: &Children,
        leftovers: &mut Leftovers,
        figures: &mut Figures,
    ) -> Result<()> {
        let ready = leftovers
            .start_operators(
                &self.args.binaries(),
                &self.log_prefix(),
                &self.args.operator_log_level,
            )
            .await?;
        for (operator, ready_s) in leftovers.operators.iter().zip(ready) {
            figures.operators.push(OperatorFigures {
                name: operator.name().to_owned(),
                binary: operator.binary().display().to_string(),
                ready_s,
                at_start: operator.sample().await?,
                ..OperatorFigures::default()
            });
        }

        let namespace = self.namespace("with");
        leftovers.create_namespace(&namespace).await?;
        let sets = custom_resources(self.args);
        let expected = Expected {
            deployments: children.deployments(self.args.n),
            ..expected_resources(&sets.concat())
        };
        step(&format!(
            "applying {} sets of custom resources in {namespace}, the operators running",
            self.args.n
        ));
        let converged = self.burst(&namespace, sets, expected).await?;
        figures.creation_with_s = bench::secs(converged.burst.elapsed);
        figures.apply_retries += converged.burst.retries;
        for (operator, f) in leftovers.operators.iter().zip(&mut figures.operators) {
            f.at_ready = operator.sample().await?;
            f.usage_at_ready = Some(operator.usage()?);
        }
        figures.convergence = converged.convergence;
        figures.cpu_busy = converged.cpu_busy;
        figures.watch_errors = converged.watch_errors;
        step(&format!(
            "all ready after {:.2} s; idle for {} s",
            figures
                .convergence
                .synapses_ready_s
                .max(figures.convergence.bridges_registered_s),
            self.args.idle_secs
        ));

        tokio::time::sleep(Duration::from_secs(self.args.idle_secs)).await;
        for (operator, f) in leftovers.operators.iter_mut().zip(&mut figures.operators) {
            operator.check_running()?;
            f.idle = operator.sample().await?.since(&f.at_ready);
            let mut end = operator.usage()?;
            // VmHWM is assembled from per-thread counters and may read a little lower later.
            end.peak_rss_mib = end
                .peak_rss_mib
                .max(f.usage_at_ready.map_or(0.0, |u| u.peak_rss_mib));
            f.usage_end = Some(end);
            (f.log_warnings, f.log_errors) = operator.log_problems();
        }
        figures.load_end = bench::load_average();

        leftovers.stop_operators().await?;
        step(&format!("deleting {namespace}"));
        figures.delete_with_s =
            bench::secs(leftovers.delete_namespace(&namespace, self.timeout).await?);
        Ok(())
    }

    /// Applies `sets` into `namespace` while watching it, and waits until everything
    /// `expected` is ready.
    async fn burst(
        &self,
        namespace: &str,
        sets: Vec<Vec<Desired>>,
        expected: Expected,
    ) -> Result<Converged> {
        let mut tracker = Tracker::start(self.client, namespace, expected).await?;
        let t0 = Instant::now();
        let cpu = bench::CpuTimes::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let converged = tokio::spawn(async move {
            let seen = tracker.converge(deadline).await;
            seen.map(|seen| (seen, tracker.watch_errors))
        });
        let burst = bench::apply_burst(self.client, namespace, sets, self.args.workers).await?;
        step(&format!(
            "applied in {:.2} s; waiting for everything to be ready (at most {:?})",
            bench::secs(burst.elapsed),
            self.timeout
        ));
        let (seen, watch_errors) = converged.await??;
        Ok(Converged {
            burst,
            convergence: Convergence::from_seen(&seen, t0),
            cpu_busy: bench::CpuTimes::now().busy_since(&cpu),
            watch_errors,
        })
    }
}

/// What a burst took and when what it waited for was ready.
struct Converged {
    burst: Burst,
    /// Times from the first apply.
    convergence: Convergence,
    /// The share of the machine's CPU time that was busy until everything was ready.
    cpu_busy: f64,
    watch_errors: u32,
}

/// The Synapses and Heisenbridges among `set`, to wait for.
fn expected_resources(set: &[Desired]) -> Expected {
    let names = |kind: &str| {
        set.iter()
            .filter(|d| d.resource.kind == kind)
            .map(|d| d.name.clone())
            .collect()
    };
    Expected {
        synapses: names("Synapse"),
        bridges: names("Heisenbridge"),
        ..Expected::default()
    }
}

fn custom_resources(args: &Args) -> Vec<Vec<Desired>> {
    let heisenbridge = args.heisenbridge_operator.is_some();
    (0..args.n)
        .map(|i| bench::custom_resources(i, heisenbridge))
        .collect()
}
