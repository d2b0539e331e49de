//! The operator under test: a release binary run as a local process watching all namespaces, as
//! a real install does, its log in a file, its health and metrics endpoints on loopback, and what
//! the kernel says about its memory and CPU.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::operators::{free_local_port, http_get};

/// The prefix of the operators' metric names (operator_common::metrics::PREFIX).
const METRIC_PREFIX: &str = "matrix_operator";

/// The environment variables the operators read their flags from: none may leak into the run
/// (a `WATCH_NAMESPACE` would narrow it to one namespace).
const FLAG_VARIABLES: [&str; 8] = [
    "METRICS_ADDR",
    "HEALTH_ADDR",
    "WATCH_NAMESPACE",
    "LEADER_ELECT",
    "LEADER_ELECTION_NAMESPACE",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "RUST_LOG",
];

/// A running operator; [`Operator::stop`] it (dropping it kills it).
pub struct Operator {
    /// The binary's name, e.g. `synapse-operator`: its field manager.
    name: String,
    /// The metric prefix of builds before the shared `matrix_operator_…` names:
    /// `synapse-operator` exposed `synapse_operator_…`. The benchmark may measure such a build.
    old_prefix: String,
    child: Child,
    /// When the process was started.
    started: Instant,
    binary: PathBuf,
    health_addr: SocketAddr,
    metrics_addr: SocketAddr,
    log: PathBuf,
}

impl Operator {
    /// Starts `binary run` without leader election, watching all namespaces, JSON logs at
    /// `log_level` into `log`, with `$KUBECONFIG`'s identity.
    pub fn start(binary: &Path, log: &Path, log_level: &str) -> Result<Self> {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let health_addr: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let metrics_addr: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let stdout = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let stderr = stdout.try_clone()?;
        let mut command = Command::new(binary);
        command
            .args(["run", "--leader-elect=false"])
            .args(["--health-addr", &health_addr.to_string()])
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--log-format", "json", "--log-level", log_level])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for variable in FLAG_VARIABLES {
            command.env_remove(variable);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        Ok(Self {
            old_prefix: name.replace('-', "_"),
            name,
            child,
            started: Instant::now(),
            binary: binary.to_path_buf(),
            health_addr,
            metrics_addr,
            log: log.to_path_buf(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the end of the log if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the operator exited ({status}); its log ({}) ends with:\n{}",
                self.log.display(),
                log_tail(&self.log, 20)
            );
        }
        Ok(())
    }

    /// Waits until `/readyz` answers 200 (its caches are synced); returns how long after its
    /// start that was.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        loop {
            self.check_running()?;
            let addr = self.health_addr;
            let answer = tokio::task::spawn_blocking(move || http_get(addr, "/readyz")).await?;
            if answer.is_ok_and(|(code, _)| code == 200) {
                return Ok(self.started.elapsed());
            }
            if self.started.elapsed() > timeout {
                bail!(
                    "the operator is not ready after {timeout:?}; its log ends with:\n{}",
                    log_tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The operator's requests to the API server so far, by HTTP method
    /// (`<prefix>_kube_requests_total`), with a few other counters of its `/metrics`.
    pub async fn sample(&self) -> Result<Sample> {
        let addr = self.metrics_addr;
        let (code, text) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
            .await?
            .context("scrape the operator's /metrics")?;
        if code != 200 {
            bail!("the operator's /metrics answered {code}");
        }
        let Some((prefix, requests)) = [METRIC_PREFIX, &self.old_prefix]
            .into_iter()
            .map(|prefix| {
                let name = format!("{prefix}_kube_requests_total");
                (prefix, samples_by_label(&text, &name, "method"))
            })
            .find(|(_, requests)| !requests.is_empty())
        else {
            bail!(
                "the operator's /metrics has no {METRIC_PREFIX}_kube_requests_total: is it older \
                 than the request counter (commit 0d1b61c)?"
            );
        };
        // `+ 0.0`: an empty sum is -0.0.
        let total = |name: &str| crate::operator_process::metric_sum(&text, name) + 0.0;
        Ok(Sample {
            requests,
            reconciliations: total(&format!("{prefix}_reconciliations_total")),
            errors: total(&format!("{prefix}_reconciliation_errors_total")),
        })
    }

    /// Peak resident memory (MiB) and CPU time used (seconds) so far, from /proc.
    pub fn usage(&self) -> Result<Usage> {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let hwm_kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .context("no VmHWM in /proc/<pid>/status")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which is in parentheses and may hold spaces): state is
        // field 3, utime and stime are fields 14 and 15.
        let after_comm = stat
            .rsplit_once(')')
            .context("malformed /proc/<pid>/stat")?
            .1;
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(fields
                .get(i - 3)
                .context("short /proc/<pid>/stat")?
                .parse()?)
        };
        Ok(Usage {
            peak_rss_mib: hwm_kib / 1024.0,
            cpu_seconds: (ticks(14)? + ticks(15)?) / clock_ticks()?,
        })
    }

    /// SIGTERM, then SIGKILL after 15 s; returns how it ended.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        if self.child.try_wait()?.is_none() {
            let pid = Pid::from_raw(i32::try_from(self.pid())?);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.child.try_wait()?.is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        match self.child.try_wait()? {
            Some(status) => Ok(status),
            None => {
                self.child.kill()?;
                Ok(self.child.wait()?)
            }
        }
    }

    /// Log lines at WARN and at ERROR so far.
    pub fn log_problems(&self) -> (usize, usize) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let count = |level: &str| {
            let needle = format!("\"level\":\"{level}\"");
            text.lines().filter(|l| l.contains(&needle)).count()
        };
        (count("WARN"), count("ERROR"))
    }
}

/// Waits until none of `operators` has written for `quiet` (their counters sampled twice a
/// second): what they are doing is done.
pub async fn settle(operators: &[Operator], quiet: Duration, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let (mut last, mut since) = (Vec::new(), Instant::now());
    loop {
        let mut writes = Vec::new();
        for operator in operators {
            writes.push(operator.sample().await?.writes());
        }
        if writes != last {
            (last, since) = (writes, Instant::now());
        } else if since.elapsed() >= quiet {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("the operators still write after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Counters of the operator's `/metrics` at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// `kube_requests_total` by method.
    pub requests: BTreeMap<String, f64>,
    pub reconciliations: f64,
    pub errors: f64,
}

impl Sample {
    pub fn method(&self, method: &str) -> f64 {
        self.requests.get(method).copied().unwrap_or(0.0)
    }

    /// POST + PUT + PATCH + DELETE.
    pub fn writes(&self) -> f64 {
        ["POST", "PUT", "PATCH", "DELETE"]
            .iter()
            .map(|m| self.method(m))
            .sum()
    }

    pub fn gets(&self) -> f64 {
        self.method("GET")
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Sample) -> Sample {
        Sample {
            requests: self
                .requests
                .iter()
                .map(|(m, v)| (m.clone(), v - earlier.method(m)))
                .collect(),
            reconciliations: self.reconciliations - earlier.reconciliations,
            errors: self.errors - earlier.errors,
        }
    }
}

/// What the kernel accounts to the operator process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// VmHWM, in MiB.
    pub peak_rss_mib: f64,
    /// utime + stime, in seconds.
    pub cpu_seconds: f64,
}

/// `name{method="GET"} 12` lines of a Prometheus text exposition, by the value of their one
/// label.
pub fn samples_by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (labels, value) = rest.split_once('}')?;
            // Label values here never hold a comma.
            let found = labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(label)?.strip_prefix('='))?;
            Some((
                found.trim_matches('"').to_owned(),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Clock ticks per second, the unit of /proc/<pid>/stat's times (`getconf CLK_TCK`).
fn clock_ticks() -> Result<f64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("`getconf CLK_TCK` did not print a number")
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_requests_by_method() {
        let text = "# TYPE matrix_operator_kube_requests counter\n\
                    matrix_operator_kube_requests_total{operator=\"a\",method=\"GET\"} 12\n\
                    matrix_operator_kube_requests_total{operator=\"a\",method=\"PATCH\"} 30\n\
                    matrix_operator_kube_requests_total{operator=\"a\",method=\"POST\"} 5\n\
                    matrix_operator_reconciliations_total{operator=\"a\"} 9\n";
        let requests = samples_by_label(text, "matrix_operator_kube_requests_total", "method");
        let sample = Sample {
            requests,
            ..Sample::default()
        };
        assert_eq!(sample.gets(), 12.0);
        assert_eq!(sample.writes(), 35.0);
    }
}
