//! The figures of one run: a table for people, one JSON object for comparing runs.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};

use super::operator::{Sample, Usage};
use super::track::Seen;

/// The targets at N=1000, printed next to the figures.
pub const TARGET_PEAK_RSS_MIB: f64 = 48.0;
pub const TARGET_TAIL_LAG_S: f64 = 2.0;
pub const TARGET_IDLE_WRITES: f64 = 0.0;
pub const TARGET_CREATION_RATIO: f64 = 1.5;

/// Readiness times of the burst, in seconds from the start of the creation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Convergence {
    /// The last Deployment first ready.
    pub deployments_ready_s: f64,
    /// The last Synapse first Ready.
    pub synapses_ready_s: f64,
    /// Half of the Deployments ready, half of the Synapses Ready: the shape of the curve.
    pub deployments_half_s: f64,
    pub synapses_half_s: f64,
    /// `synapses_ready_s - deployments_ready_s`.
    pub tail_lag_s: f64,
    /// Over objects, Synapse Ready minus its Deployment ready: the largest, median and 99th
    /// percentile.
    pub max_object_lag_s: f64,
    pub p50_object_lag_s: f64,
    pub p99_object_lag_s: f64,
}

impl Convergence {
    pub fn from_seen(seen: &Seen, t0: Instant) -> Self {
        let since = |t: &Instant| t.saturating_duration_since(t0).as_secs_f64();
        let times = |m: &BTreeMap<String, Instant>| sorted(m.values().map(since).collect());
        let (deployments, synapses) = (times(&seen.deployments), times(&seen.synapses));
        let lags = sorted(
            seen.synapses
                .iter()
                .filter_map(|(name, ready)| {
                    let deployment = seen.deployments.get(name)?;
                    Some(since(ready) - since(deployment))
                })
                .collect(),
        );
        let (deployments_ready_s, synapses_ready_s) =
            (quantile(&deployments, 1.0), quantile(&synapses, 1.0));
        Self {
            deployments_ready_s,
            synapses_ready_s,
            deployments_half_s: quantile(&deployments, 0.5),
            synapses_half_s: quantile(&synapses, 0.5),
            tail_lag_s: synapses_ready_s - deployments_ready_s,
            max_object_lag_s: quantile(&lags, 1.0),
            p50_object_lag_s: quantile(&lags, 0.5),
            p99_object_lag_s: quantile(&lags, 0.99),
        }
    }
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

/// The value at `q` (0 to 1) of sorted values, NaN when there are none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub n: usize,
    pub workers: usize,
    pub operator: String,
    pub revision: String,
    pub bench_nodes: usize,
    pub pods_per_node: usize,
    pub creation_without_s: f64,
    pub creation_with_s: f64,
    /// Applies retried after a 429/5xx, both bursts together.
    pub apply_retries: u32,
    pub delete_without_s: f64,
    pub operator_ready_s: f64,
    pub convergence: Convergence,
    /// Requests before the burst (start-up), at convergence (since start) and in the idle minute.
    pub at_start: Sample,
    pub at_ready: Sample,
    pub idle: Sample,
    pub idle_secs: u64,
    pub usage_at_ready: Option<Usage>,
    pub usage_end: Option<Usage>,
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
    pub log_warnings: usize,
    pub log_errors: usize,
    pub watch_errors: u32,
    /// Namespaces of Synapses not of this run seen during it (only with `--allow-foreign`).
    pub foreign_namespaces: Vec<String>,
    pub delete_with_s: f64,
    pub total_s: f64,
}

impl Figures {
    pub fn creation_ratio(&self) -> f64 {
        self.creation_with_s / self.creation_without_s
    }

    pub fn writes_per_cr(&self) -> f64 {
        self.at_ready.writes() / self.n as f64
    }

    /// The figures as one JSON object (flat, numbers in seconds and MiB).
    pub fn json(&self) -> Value {
        let c = &self.convergence;
        let usage = |u: &Option<Usage>| {
            u.map_or(
                json!(null),
                |u| json!({"peak_rss_mib": u.peak_rss_mib, "cpu_seconds": u.cpu_seconds}),
            )
        };
        let mut figures = json!({
            "n": self.n,
            "workers": self.workers,
            "revision": self.revision,
            "operator": self.operator,
            "bench_nodes": self.bench_nodes,
            "pods_per_node": self.pods_per_node,
            "creation_without_operator_s": self.creation_without_s,
            "creation_with_operator_s": self.creation_with_s,
            "creation_ratio": self.creation_ratio(),
            "apply_retries": self.apply_retries,
            "operator_ready_s": self.operator_ready_s,
            "deployments_ready_s": c.deployments_ready_s,
            "synapses_ready_s": c.synapses_ready_s,
            "deployments_half_ready_s": c.deployments_half_s,
            "synapses_half_ready_s": c.synapses_half_s,
            "tail_lag_s": c.tail_lag_s,
            "max_object_lag_s": c.max_object_lag_s,
            "p50_object_lag_s": c.p50_object_lag_s,
            "p99_object_lag_s": c.p99_object_lag_s,
            "requests_at_start": self.at_start.requests,
            "requests_at_ready": self.at_ready.requests,
            "writes_at_ready": self.at_ready.writes(),
            "writes_per_cr": self.writes_per_cr(),
            "gets_at_ready": self.at_ready.gets(),
            "reconciliations_at_ready": self.at_ready.reconciliations,
            "reconciliation_errors_at_ready": self.at_ready.errors,
        });
        // Two objects: one `json!` this long exceeds the macro's recursion limit.
        let rest = json!({
            "idle_secs": self.idle_secs,
            "idle_writes": self.idle.writes(),
            "idle_gets": self.idle.gets(),
            "idle_reconciliations": self.idle.reconciliations,
            "at_ready": usage(&self.usage_at_ready),
            "peak_rss_mib": self.usage_end.map(|u| u.peak_rss_mib),
            "cpu_seconds": self.usage_end.map(|u| u.cpu_seconds),
            "loadavg_start": self.load_start,
            "loadavg_end": self.load_end,
            "operator_log_warnings": self.log_warnings,
            "operator_log_errors": self.log_errors,
            "watch_errors": self.watch_errors,
            "foreign_namespaces": self.foreign_namespaces,
            "delete_without_operator_s": self.delete_without_s,
            "delete_with_operator_s": self.delete_with_s,
            "total_s": self.total_s,
        });
        if let (Value::Object(all), Value::Object(rest)) = (&mut figures, rest) {
            all.extend(rest);
        }
        figures
    }

    /// The table: figure, value, target and whether it is met.
    pub fn table(&self) -> String {
        let c = &self.convergence;
        let rss = self.usage_end.map_or(f64::NAN, |u| u.peak_rss_mib);
        let cpu = self.usage_end.map_or(f64::NAN, |u| u.cpu_seconds);
        let cpu_ready = self.usage_at_ready.map_or(f64::NAN, |u| u.cpu_seconds);
        let check = |ok: bool| if ok { "ok" } else { "MISSED" };
        let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
        let rows: Vec<(String, String, String)> = vec![
            row(
                "Synapses (N), apply workers",
                format!("{}, {}", self.n, self.workers),
            ),
            row("operator", format!("{} ({})", self.revision, self.operator)),
            row(
                "bench nodes (pods each)",
                format!("{} ({})", self.bench_nodes, self.pods_per_node),
            ),
            row(
                "CR creation without operator",
                secs(self.creation_without_s),
            ),
            row("CR creation with operator", secs(self.creation_with_s)),
            target(
                "  ratio with / without",
                format!("{:.2}x", self.creation_ratio()),
                format!("<= {TARGET_CREATION_RATIO}x"),
                check(self.creation_ratio() <= TARGET_CREATION_RATIO),
            ),
            row("operator start to /readyz", secs(self.operator_ready_s)),
            row(
                "all N Deployments ready (half of them)",
                format!(
                    "{:.2} s ({:.2} s)",
                    c.deployments_ready_s, c.deployments_half_s
                ),
            ),
            row(
                "all N Synapses Ready (half of them)",
                format!("{:.2} s ({:.2} s)", c.synapses_ready_s, c.synapses_half_s),
            ),
            target(
                "  tail lag (last Ready - last Deployment)",
                secs(c.tail_lag_s),
                format!("<= {TARGET_TAIL_LAG_S} s"),
                check(c.tail_lag_s <= TARGET_TAIL_LAG_S),
            ),
            row(
                "  lag per object: max / p99 / median",
                format!(
                    "{:.2} / {:.2} / {:.2} s",
                    c.max_object_lag_s, c.p99_object_lag_s, c.p50_object_lag_s
                ),
            ),
            row(
                "writes at convergence (per CR)",
                format!("{} ({:.2})", self.at_ready.writes(), self.writes_per_cr()),
            ),
            row("  by method", methods(&self.at_ready)),
            row("GETs at convergence", format!("{}", self.at_ready.gets())),
            row(
                "reconciliations (errors) at convergence",
                format!(
                    "{} ({})",
                    self.at_ready.reconciliations, self.at_ready.errors
                ),
            ),
            target(
                &format!("writes in the idle {} s", self.idle_secs),
                format!("{}", self.idle.writes()),
                format!("{TARGET_IDLE_WRITES}"),
                check(self.idle.writes() <= TARGET_IDLE_WRITES),
            ),
            row(
                "  by method; GETs, reconciliations",
                format!(
                    "{}; {} GETs, {} reconciliations",
                    methods(&self.idle),
                    self.idle.gets(),
                    self.idle.reconciliations
                ),
            ),
            target(
                "operator peak RSS (VmHWM)",
                format!("{rss:.1} MiB"),
                format!("<= {TARGET_PEAK_RSS_MIB} MiB"),
                check(rss <= TARGET_PEAK_RSS_MIB),
            ),
            row(
                "operator CPU at convergence / at end",
                format!("{cpu_ready:.1} / {cpu:.1} s"),
            ),
            row(
                "operator log WARN / ERROR lines",
                format!("{} / {}", self.log_warnings, self.log_errors),
            ),
            row("load average at start", load(self.load_start)),
            row("load average at end", load(self.load_end)),
            row(
                "namespace deletion without / with",
                format!("{:.1} / {:.1} s", self.delete_without_s, self.delete_with_s),
            ),
            row("whole run", secs(self.total_s)),
        ];
        let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let value_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        let value_width = value_width.min(40);
        let mut out = String::new();
        for (label, value, target) in rows {
            let line = format!("{label:<width$}  {value:<value_width$}  {target}");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if !self.foreign_namespaces.is_empty() {
            out.push_str(&format!(
                "WARNING: the operator also reconciled Synapses in {:?}: the figures include that\n",
                self.foreign_namespaces
            ));
        }
        if self.n != 1000 {
            out.push_str("(the targets are set for N=1000)\n");
        }
        out
    }
}

fn row(label: &str, value: String) -> (String, String, String) {
    (label.to_owned(), value, String::new())
}

fn target(label: &str, value: String, target: String, verdict: &str) -> (String, String, String) {
    (
        label.to_owned(),
        value,
        format!("target {target}: {verdict}"),
    )
}

fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

fn methods(sample: &Sample) -> String {
    let methods = sample
        .requests
        .iter()
        .filter(|(m, v)| m.as_str() != "GET" && **v != 0.0)
        .map(|(m, v)| format!("{m} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if methods.is_empty() {
        "none".to_owned()
    } else {
        methods
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_holds_every_figure_and_the_table_every_target() {
        let figures = Figures {
            n: 1000,
            creation_without_s: 2.0,
            creation_with_s: 2.5,
            foreign_namespaces: vec!["other".to_owned()],
            ..Figures::default()
        };
        let json = figures.json();
        assert_eq!(json["n"], 1000);
        assert_eq!(json["creation_ratio"], 1.25);
        assert_eq!(json["foreign_namespaces"][0], "other");
        assert_eq!(json["total_s"], 0.0);
        let table = figures.table();
        assert!(
            table.contains("1.25x") && table.contains("target <= 1.5x: ok"),
            "{table}"
        );
        assert!(
            table.contains("WARNING") && !table.contains("N=1000)"),
            "{table}"
        );
    }
}
