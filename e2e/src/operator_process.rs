//! An operator binary run as a local process for one test: built first when stale, watching one
//! namespace, its stdout and stderr captured in one log file for later scanning, its health and
//! metrics endpoints on free loopback ports, killed when dropped.
//!
//! ```no_run
//! # async fn example() {
//! use e2e::operator_process::OperatorProcess;
//! let mut operator = OperatorProcess::builder("synapse-operator", "my-test-namespace").start();
//! operator.wait_ready(std::time::Duration::from_secs(30)).await;
//! assert_eq!(operator.metric("matrix_operator_reconciliation_errors_total"), Some(0.0));
//! # }
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::operators::{free_local_port, http_get, operator_binary};

/// How long a stopped operator gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The path of `operator`'s binary, built once per test process: `cargo build` is the staleness
/// check, and parallel tests should not queue on cargo's lock one after the other.
pub fn built_binary(operator: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    built
        .entry(operator.to_owned())
        .or_insert_with(|| operator_binary(operator))
        .clone()
}

/// How to run an operator; see [`OperatorProcess::builder`].
#[derive(Clone, Debug)]
pub struct OperatorBuilder {
    operator: String,
    namespace: String,
    kubeconfig: Option<PathBuf>,
    leader_elect: bool,
    log_level: String,
    label: String,
    all_namespaces: bool,
}

impl OperatorBuilder {
    /// Runs the operator as the identity of this kubeconfig instead of `$KUBECONFIG`'s.
    pub fn kubeconfig(mut self, path: &Path) -> Self {
        self.kubeconfig = Some(path.to_path_buf());
        self
    }

    /// Elects a leader through a Lease in the watched namespace (off by default: one replica).
    pub fn leader_elect(mut self, on: bool) -> Self {
        self.leader_elect = on;
        self
    }

    /// `--log-level` (EnvFilter directives); `info` by default.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_owned();
        self
    }

    /// Watches every namespace, as a cluster-wide install does (the builder's namespace then only
    /// names the log file). Only for a test that runs alone: it reconciles other tests' objects.
    pub fn all_namespaces(mut self) -> Self {
        self.all_namespaces = true;
        self
    }

    /// A word that tells several processes of one test apart in their log file names.
    pub fn label(mut self, label: &str) -> Self {
        self.label = label.to_owned();
        self
    }

    /// Builds the binary if it is stale and starts it with JSON logs.
    pub fn start(self) -> OperatorProcess {
        let binary = built_binary(&self.operator);
        let health_addr: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let metrics_addr: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let dir = std::env::temp_dir().join("e2e-operators");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let log = dir.join(format!(
            "{}-{}-{}-{}.log",
            self.namespace,
            self.operator,
            self.label,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_nanos()
        ));
        let stdout = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let stderr = stdout.try_clone().expect("clone the log file handle");
        let mut command = Command::new(&binary);
        command
            .arg("run")
            .args(if self.all_namespaces {
                vec![]
            } else {
                vec!["--namespace", &self.namespace]
            })
            .arg(format!("--leader-elect={}", self.leader_elect))
            .args(["--health-addr", &health_addr.to_string()])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--log-format", "json", "--log-level", &self.log_level])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        if let Some(kubeconfig) = &self.kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        OperatorProcess {
            name: self.operator,
            child,
            exit: None,
            health_addr,
            metrics_addr,
            log,
        }
    }
}

/// A running operator process. Dropping it kills the process; its log file is removed unless
/// the test is failing, when its path is printed instead.
pub struct OperatorProcess {
    name: String,
    child: Child,
    exit: Option<ExitStatus>,
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    log: PathBuf,
}

impl OperatorProcess {
    /// `operator` (a workspace package with a binary of the same name) watching only `namespace`,
    /// without leader election, with `$KUBECONFIG`'s identity.
    pub fn builder(operator: &str, namespace: &str) -> OperatorBuilder {
        OperatorBuilder {
            operator: operator.to_owned(),
            namespace: namespace.to_owned(),
            kubeconfig: None,
            leader_elect: false,
            log_level: "info".to_owned(),
            label: "op".to_owned(),
            all_namespaces: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything the process wrote so far (stdout and stderr, interleaved as written).
    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self
                .child
                .try_wait()
                .unwrap_or_else(|e| panic!("wait for {}: {e}", self.name));
        }
        self.exit
    }

    /// Panics with the end of the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_exit() {
            panic!(
                "{} exited ({status}); its log ends with:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// Whether `path` on the health endpoint answers 200.
    pub fn health_ok(&self, path: &str) -> bool {
        http_get(self.health_addr, path).is_ok_and(|(code, _)| code == 200)
    }

    /// Waits until `/readyz` answers 200 (the operator's cache is synced), failing at once if the
    /// process exits.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let started = Instant::now();
        loop {
            self.assert_running();
            if self.health_ok("/readyz") {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{} not ready after {timeout:?}; its log ends with:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `/metrics` text; `None` while the endpoint does not answer.
    pub fn metrics_text(&self) -> Option<String> {
        let (code, text) = http_get(self.metrics_addr, "/metrics").ok()?;
        assert_eq!(code, 200, "{} /metrics answered {code}", self.name);
        Some(text)
    }

    /// The sum of every sample of the metric `name` (all label sets), `Some(0.0)` when the
    /// metric has no sample yet; `None` while `/metrics` does not answer.
    pub fn metric(&self, name: &str) -> Option<f64> {
        Some(metric_sum(&self.metrics_text()?, name))
    }

    /// SIGKILL, as a node failure or an OOM kill does; returns the exit status, which is the
    /// process's own when it had already exited (a panic, an error).
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(status) = self.try_exit() {
            return status;
        }
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("wait for {}: {e}", self.name));
        self.exit = Some(status);
        status
    }

    /// Stops the process like Kubernetes does: SIGTERM, SIGKILL after a grace period.
    pub fn stop(&mut self) -> ExitStatus {
        if self.try_exit().is_none() {
            let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            while self.try_exit().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.kill()
    }
}

/// The sum of the samples of metric `name` in a Prometheus text exposition.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = if rest.starts_with('{') {
                rest.split_once('}')?.1
            } else {
                rest
            };
            // A longer metric name sharing the prefix has no space here.
            value.strip_prefix(' ')?.trim().parse::<f64>().ok()
        })
        .sum()
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("log of {} kept in {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn sums_samples_of_one_metric_only() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\nx_total 3\n\
                    x_total_created 17\nerrs_total{error=\"read\"} 1\nerrs_total{error=\"apply\"} 2\n";
        assert_eq!(metric_sum(text, "x_total"), 3.0);
        assert_eq!(metric_sum(text, "errs_total"), 3.0);
        assert_eq!(metric_sum(text, "missing_total"), 0.0);
    }
}
