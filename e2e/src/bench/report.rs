//! The figures of one run: a table for people, one JSON object for comparing runs. A run of
//! several rounds reports the round of the median ratio of the operator to the floor in full,
//! and each round's ratios with their medians.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::operator::{Sample, Usage};
use super::track::Seen;

/// The targets at N=1000, printed next to the figures.
pub const TARGET_CHILDREN_RATIO: f64 = 1.05;
pub const TARGET_TAIL_LAG_S: f64 = 2.0;
pub const TARGET_CREATION_RATIO: f64 = 1.5;
pub const TARGET_IDLE_WRITES: f64 = 0.0;
/// The targets only the synapse-operator has.
pub const TARGET_WRITES_PER_SYNAPSE: f64 = 8.0;
pub const TARGET_PEAK_RSS_MIB: f64 = 48.0;
const SYNAPSE_OPERATOR: &str = "synapse-operator";

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
    /// `synapses_ready_s` minus when the last of the Synapses' own Deployments was ready.
    pub tail_lag_s: f64,
    /// Over objects, Synapse Ready minus its Deployment ready: the largest, median and 99th
    /// percentile.
    pub max_object_lag_s: f64,
    pub p50_object_lag_s: f64,
    pub p99_object_lag_s: f64,
    /// The last Heisenbridge and half of them first Registered; NaN without Heisenbridges.
    pub bridges_registered_s: f64,
    pub bridges_half_s: f64,
    /// `bridges_registered_s - deployments_ready_s`.
    pub bridge_tail_lag_s: f64,
}

impl Convergence {
    pub fn from_seen(seen: &Seen, t0: Instant) -> Self {
        let since = |t: &Instant| t.saturating_duration_since(t0).as_secs_f64();
        let times = |m: &BTreeMap<String, Instant>| sorted(m.values().map(since).collect());
        let (deployments, synapses) = (times(&seen.deployments), times(&seen.synapses));
        let bridges = times(&seen.bridges);
        let lags = sorted(
            seen.synapses
                .iter()
                .filter_map(|(name, ready)| {
                    let deployment = seen.deployments.get(name)?;
                    Some(since(ready) - since(deployment))
                })
                .collect(),
        );
        let deployments_ready_s = quantile(&deployments, 1.0);
        let (synapses_ready_s, bridges_registered_s) =
            (quantile(&synapses, 1.0), quantile(&bridges, 1.0));
        // The Deployments of the Synapses (named as them), without the bridges'.
        let synapse_deployments_ready_s = (seen.deployments.iter())
            .filter(|(name, _)| seen.synapses.contains_key(*name))
            .map(|(_, ready)| since(ready))
            .fold(f64::NAN, f64::max);
        Self {
            deployments_ready_s,
            synapses_ready_s,
            deployments_half_s: quantile(&deployments, 0.5),
            synapses_half_s: quantile(&synapses, 0.5),
            tail_lag_s: synapses_ready_s - synapse_deployments_ready_s,
            max_object_lag_s: quantile(&lags, 1.0),
            p50_object_lag_s: quantile(&lags, 0.5),
            p99_object_lag_s: quantile(&lags, 0.99),
            bridges_registered_s,
            bridges_half_s: quantile(&bridges, 0.5),
            bridge_tail_lag_s: bridges_registered_s - deployments_ready_s,
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

/// A floor: the operators' children applied directly, nothing reconciling them (and, for the
/// floor with the custom resources, the custom resources and their statuses with them).
#[derive(Debug, Clone, Default)]
pub struct Floor {
    /// The children of one set, by kind.
    pub children: BTreeMap<String, usize>,
    /// The N sets applied.
    pub apply_s: f64,
    /// The last and half of the Deployments first ready, from the first apply.
    pub deployments_ready_s: f64,
    pub deployments_half_s: f64,
    /// The share of the machine's CPU time that was busy until the last Deployment was ready.
    pub cpu_busy: f64,
    /// Applies retried after a 429/5xx.
    pub retries: u32,
    pub delete_s: f64,
}

/// What one operator did and cost during the run.
#[derive(Debug, Clone, Default)]
pub struct OperatorFigures {
    /// Its name, e.g. `synapse-operator`.
    pub name: String,
    pub binary: String,
    pub ready_s: f64,
    /// Requests before the burst (start-up), at convergence (since start) and in the idle minute.
    pub at_start: Sample,
    pub at_ready: Sample,
    pub idle: Sample,
    pub usage_at_ready: Option<Usage>,
    pub usage_end: Option<Usage>,
    pub log_warnings: usize,
    pub log_errors: usize,
}

impl OperatorFigures {
    fn peak_rss_mib(&self) -> f64 {
        self.usage_end.map_or(f64::NAN, |u| u.peak_rss_mib)
    }

    /// The figures under the keys of the JSON (the synapse-operator's at its top level).
    fn json(&self, n: usize) -> Map<String, Value> {
        let usage = |u: &Option<Usage>| {
            u.map_or(
                json!(null),
                |u| json!({"peak_rss_mib": u.peak_rss_mib, "cpu_seconds": u.cpu_seconds}),
            )
        };
        let figures = json!({
            "operator": self.binary,
            "operator_ready_s": self.ready_s,
            "requests_at_start": self.at_start.requests,
            "requests_at_ready": self.at_ready.requests,
            "writes_at_ready": self.at_ready.writes(),
            "writes_per_cr": self.at_ready.writes() / n as f64,
            "gets_at_ready": self.at_ready.gets(),
            "reconciliations_at_ready": self.at_ready.reconciliations,
            "reconciliation_errors_at_ready": self.at_ready.errors,
            "idle_writes": self.idle.writes(),
            "idle_gets": self.idle.gets(),
            "idle_reconciliations": self.idle.reconciliations,
            "at_ready": usage(&self.usage_at_ready),
            "peak_rss_mib": self.usage_end.map(|u| u.peak_rss_mib),
            "cpu_seconds": self.usage_end.map(|u| u.cpu_seconds),
            "operator_log_warnings": self.log_warnings,
            "operator_log_errors": self.log_errors,
        });
        match figures {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The operator's rows of the table.
    fn rows(&self, n: usize, idle_secs: u64) -> Vec<Row> {
        let writes_per_cr = self.at_ready.writes() / n as f64;
        let rss = self.peak_rss_mib();
        let cpu = |u: Option<Usage>| u.map_or(f64::NAN, |u| u.cpu_seconds);
        // The targets of writes and memory are the synapse-operator's alone.
        let targeted = |label: &str, value: String, goal: String, met: bool| {
            if self.name == SYNAPSE_OPERATOR {
                target(label, value, goal, met)
            } else {
                row(label, value)
            }
        };
        vec![
            row(&self.name, self.binary.clone()),
            row("  start to /readyz", secs(self.ready_s)),
            targeted(
                "  writes at convergence (per CR)",
                format!("{} ({writes_per_cr:.2})", self.at_ready.writes()),
                format!("<= {TARGET_WRITES_PER_SYNAPSE}"),
                writes_per_cr <= TARGET_WRITES_PER_SYNAPSE,
            ),
            row("    by method", methods(&self.at_ready)),
            row("  GETs at convergence", format!("{}", self.at_ready.gets())),
            row(
                "  reconciliations (errors) at convergence",
                format!(
                    "{} ({})",
                    self.at_ready.reconciliations, self.at_ready.errors
                ),
            ),
            target(
                &format!("  writes in the idle {idle_secs} s"),
                format!("{}", self.idle.writes()),
                format!("{TARGET_IDLE_WRITES}"),
                self.idle.writes() <= TARGET_IDLE_WRITES,
            ),
            row(
                "    by method; GETs, reconciliations",
                format!(
                    "{}; {} GETs, {} reconciliations",
                    methods(&self.idle),
                    self.idle.gets(),
                    self.idle.reconciliations
                ),
            ),
            targeted(
                "  peak RSS (VmHWM)",
                format!("{rss:.1} MiB"),
                format!("<= {TARGET_PEAK_RSS_MIB} MiB"),
                rss <= TARGET_PEAK_RSS_MIB,
            ),
            row(
                "  CPU at convergence / at end",
                format!(
                    "{:.1} / {:.1} s",
                    cpu(self.usage_at_ready),
                    cpu(self.usage_end)
                ),
            ),
            row(
                "  log WARN / ERROR lines",
                format!("{} / {}", self.log_warnings, self.log_errors),
            ),
        ]
    }
}

/// Everything one round of a run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// The round, from 1.
    pub round: usize,
    pub n: usize,
    pub workers: usize,
    /// One Heisenbridge per Synapse.
    pub heisenbridge: bool,
    pub revision: String,
    pub bench_nodes: usize,
    pub pods_per_node: usize,
    pub floor: Floor,
    /// The floor with the custom resources and one status write each applied too: what any
    /// operator adds to the floor before its own work.
    pub floor_crs: Floor,
    pub creation_without_s: f64,
    pub creation_with_s: f64,
    /// Applies retried after a 429/5xx, all bursts together.
    pub apply_retries: u32,
    pub delete_without_s: f64,
    pub convergence: Convergence,
    /// The share of the machine's CPU time that was busy from the first apply until everything
    /// was ready, with the operators.
    pub cpu_busy: f64,
    /// The synapse-operator, then the heisenbridge-operator if it ran.
    pub operators: Vec<OperatorFigures>,
    pub idle_secs: u64,
    pub load_start: [f64; 3],
    pub load_end: [f64; 3],
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

    /// Every Deployment ready with the operators over the floor's.
    pub fn children_ratio(&self) -> f64 {
        self.convergence.deployments_ready_s / self.floor.deployments_ready_s
    }

    /// The floor with the custom resources over the floor: what the API alone adds.
    pub fn floor_crs_ratio(&self) -> f64 {
        self.floor_crs.deployments_ready_s / self.floor.deployments_ready_s
    }

    /// Every Deployment ready with the operators over the floor with the custom resources: what
    /// the operators add.
    pub fn children_ratio_floor_crs(&self) -> f64 {
        self.convergence.deployments_ready_s / self.floor_crs.deployments_ready_s
    }

    /// The figures as one JSON object (flat, numbers in seconds and MiB; the
    /// heisenbridge-operator's under `heisenbridge_operator`).
    pub fn json(&self) -> Value {
        let c = &self.convergence;
        let f = &self.floor;
        let number = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
        let mut figures = json!({
            "round": self.round,
            "n": self.n,
            "workers": self.workers,
            "heisenbridge": self.heisenbridge,
            "revision": self.revision,
            "bench_nodes": self.bench_nodes,
            "pods_per_node": self.pods_per_node,
            "floor_children_per_synapse": f.children,
            "floor_apply_s": f.apply_s,
            "floor_deployments_ready_s": f.deployments_ready_s,
            "floor_deployments_half_ready_s": f.deployments_half_s,
            "floor_cpu_busy": number(f.cpu_busy),
            "floor_crs_apply_s": self.floor_crs.apply_s,
            "floor_crs_deployments_ready_s": self.floor_crs.deployments_ready_s,
            "floor_crs_deployments_half_ready_s": self.floor_crs.deployments_half_s,
            "floor_crs_cpu_busy": number(self.floor_crs.cpu_busy),
            "floor_crs_ratio": number(self.floor_crs_ratio()),
            "children_ratio": self.children_ratio(),
            "children_ratio_floor_crs": number(self.children_ratio_floor_crs()),
            "cpu_busy": number(self.cpu_busy),
            "creation_without_operator_s": self.creation_without_s,
            "creation_with_operator_s": self.creation_with_s,
            "creation_ratio": self.creation_ratio(),
            "apply_retries": self.apply_retries,
            "deployments_ready_s": c.deployments_ready_s,
            "synapses_ready_s": c.synapses_ready_s,
            "deployments_half_ready_s": c.deployments_half_s,
            "synapses_half_ready_s": c.synapses_half_s,
            "tail_lag_s": c.tail_lag_s,
            "max_object_lag_s": c.max_object_lag_s,
            "p50_object_lag_s": c.p50_object_lag_s,
            "p99_object_lag_s": c.p99_object_lag_s,
        });
        // Two objects: one `json!` this long exceeds the macro's recursion limit.
        let rest = json!({
            "bridges_registered_s": number(c.bridges_registered_s),
            "bridges_half_registered_s": number(c.bridges_half_s),
            "bridge_tail_lag_s": number(c.bridge_tail_lag_s),
            "idle_secs": self.idle_secs,
            "loadavg_start": self.load_start,
            "loadavg_end": self.load_end,
            "watch_errors": self.watch_errors,
            "foreign_namespaces": self.foreign_namespaces,
            "delete_floor_s": f.delete_s,
            "delete_floor_crs_s": self.floor_crs.delete_s,
            "delete_without_operator_s": self.delete_without_s,
            "delete_with_operator_s": self.delete_with_s,
            "total_s": self.total_s,
            "heisenbridge_operator": self.operators.get(1).map(|o| o.json(self.n)),
        });
        if let (Value::Object(all), Value::Object(rest)) = (&mut figures, rest) {
            all.extend(rest);
            if let Some(synapse_operator) = self.operators.first() {
                all.extend(synapse_operator.json(self.n));
            }
        }
        figures
    }

    /// The table: figure, value, target and whether it is met.
    pub fn table(&self) -> String {
        let c = &self.convergence;
        let f = &self.floor;
        let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
        let busy = |b: f64| format!("{:.0}%", b * 100.0);
        let half = |all: f64, half: f64| format!("{all:.2} s ({half:.2} s)");
        let children = f
            .children
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut rows = vec![
            row(
                "Synapses (N), apply workers",
                format!("{}, {}", self.n, self.workers),
            ),
            row(
                "one Heisenbridge per Synapse",
                (if self.heisenbridge { "yes" } else { "no" }).to_owned(),
            ),
            row("revision", self.revision.clone()),
            row(
                "bench nodes (pods each)",
                format!("{} ({})", self.bench_nodes, self.pods_per_node),
            ),
            row("floor: children per set", children),
            row("floor: children applied", secs(f.apply_s)),
            row(
                "floor: all Deployments ready (half)",
                half(f.deployments_ready_s, f.deployments_half_s),
            ),
            row("  machine CPU busy until then", busy(f.cpu_busy)),
            row(
                "floor + CRs and statuses: all applied",
                secs(self.floor_crs.apply_s),
            ),
            row(
                "floor + CRs and statuses: all Deployments ready (half)",
                half(
                    self.floor_crs.deployments_ready_s,
                    self.floor_crs.deployments_half_s,
                ),
            ),
            row(
                "  ratio to the floor",
                format!("{:.2}x", self.floor_crs_ratio()),
            ),
            row(
                "  machine CPU busy until then",
                busy(self.floor_crs.cpu_busy),
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
                self.creation_ratio() <= TARGET_CREATION_RATIO,
            ),
            row(
                "all Deployments ready (half)",
                half(c.deployments_ready_s, c.deployments_half_s),
            ),
            target(
                "  ratio operator / floor",
                format!("{:.2}x", self.children_ratio()),
                format!("<= {TARGET_CHILDREN_RATIO}x"),
                self.children_ratio() <= TARGET_CHILDREN_RATIO,
            ),
            row(
                "  ratio operator / floor + CRs and statuses",
                format!("{:.2}x", self.children_ratio_floor_crs()),
            ),
            row("  machine CPU busy until all ready", busy(self.cpu_busy)),
            row(
                "all Synapses Ready (half)",
                half(c.synapses_ready_s, c.synapses_half_s),
            ),
            target(
                "  tail lag (last Ready - last Synapse Deployment)",
                secs(c.tail_lag_s),
                format!("<= {TARGET_TAIL_LAG_S} s"),
                c.tail_lag_s <= TARGET_TAIL_LAG_S,
            ),
            row(
                "  lag per object: max / p99 / median",
                format!(
                    "{:.2} / {:.2} / {:.2} s",
                    c.max_object_lag_s, c.p99_object_lag_s, c.p50_object_lag_s
                ),
            ),
        ];
        if self.heisenbridge {
            rows.push(row(
                "all Heisenbridges Registered (half)",
                half(c.bridges_registered_s, c.bridges_half_s),
            ));
            rows.push(row(
                "  tail lag (last Registered - last Deployment)",
                secs(c.bridge_tail_lag_s),
            ));
        }
        for operator in &self.operators {
            rows.extend(operator.rows(self.n, self.idle_secs));
        }
        rows.extend([
            row("load average at start", load(self.load_start)),
            row("load average at end", load(self.load_end)),
            row(
                "namespace deletion floor / + CRs / without / with",
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.1} s",
                    f.delete_s, self.floor_crs.delete_s, self.delete_without_s, self.delete_with_s
                ),
            ),
            row("whole run", secs(self.total_s)),
        ]);
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

/// The rounds of a run, in order.
#[derive(Debug, Clone, Default)]
pub struct Rounds(pub Vec<Figures>);

/// A ratio of a round's figures.
type Ratio = fn(&Figures) -> f64;

/// The ratios rounds are compared by, under their JSON keys.
const RATIOS: [(&str, Ratio); 4] = [
    ("children_ratio", Figures::children_ratio),
    (
        "children_ratio_floor_crs",
        Figures::children_ratio_floor_crs,
    ),
    ("floor_crs_ratio", Figures::floor_crs_ratio),
    ("creation_ratio", Figures::creation_ratio),
];

impl Rounds {
    /// The round of the median ratio of the operator to the floor (of an even count, the lower
    /// of the two middle ones).
    pub fn median_round(&self) -> &Figures {
        let mut rounds: Vec<&Figures> = self.0.iter().collect();
        rounds.sort_by(|a, b| a.children_ratio().total_cmp(&b.children_ratio()));
        rounds[(rounds.len() - 1) / 2]
    }

    /// The median over the rounds of `ratio`.
    fn median(&self, ratio: Ratio) -> f64 {
        let values = sorted(self.0.iter().map(ratio).collect());
        values[(values.len() - 1) / 2]
    }

    /// The median round's figures, each round's ratios under `rounds` and their medians under
    /// `median`.
    pub fn json(&self) -> Value {
        let number = |x: f64| if x.is_finite() { json!(x) } else { json!(null) };
        let rounds: Vec<Value> = (self.0.iter())
            .map(|f| {
                let mut round = json!({
                    "round": f.round,
                    "floor_deployments_ready_s": f.floor.deployments_ready_s,
                    "floor_crs_deployments_ready_s": f.floor_crs.deployments_ready_s,
                    "deployments_ready_s": f.convergence.deployments_ready_s,
                    "tail_lag_s": number(f.convergence.tail_lag_s),
                    "writes_per_cr": f.operators.first().map(|o| o.at_ready.writes() / f.n as f64),
                    "peak_rss_mib": f.operators.first().map(|o| number(o.peak_rss_mib())),
                });
                for (key, ratio) in RATIOS {
                    round[key] = number(ratio(f));
                }
                round
            })
            .collect();
        let mut median = json!({});
        for (key, ratio) in RATIOS {
            median[key] = number(self.median(ratio));
        }
        let mut figures = self.median_round().json();
        figures["rounds"] = json!(rounds);
        figures["median"] = median;
        figures
    }

    /// The median round's table and, of several rounds, each one's ratios and their medians.
    pub fn table(&self) -> String {
        let median = self.median_round();
        let mut out = median.table();
        if self.0.len() < 2 {
            return out;
        }
        out.push_str(&format!(
            "\nThe table above is round {} of {}, the median operator / floor. Each round, in s:\n",
            median.round,
            self.0.len()
        ));
        out.push_str(
            "round  floor    + CRs    operator  / floor  / + CRs  creation  writes/CR  tail lag  RSS MiB\n",
        );
        let ratio = |r: f64| format!("{r:.2}x");
        for f in &self.0 {
            let synapse_operator = f.operators.first();
            out.push_str(&format!(
                "{:<5}  {:<7.2}  {:<7.2}  {:<8.2}  {:<7}  {:<7}  {:<8}  {:<9.3}  {:<8.2}  {:.1}\n",
                f.round,
                f.floor.deployments_ready_s,
                f.floor_crs.deployments_ready_s,
                f.convergence.deployments_ready_s,
                ratio(f.children_ratio()),
                ratio(f.children_ratio_floor_crs()),
                ratio(f.creation_ratio()),
                synapse_operator.map_or(f64::NAN, |o| o.at_ready.writes() / f.n as f64),
                f.convergence.tail_lag_s,
                synapse_operator.map_or(f64::NAN, OperatorFigures::peak_rss_mib),
            ));
        }
        let children = self.median(Figures::children_ratio);
        let creation = self.median(Figures::creation_ratio);
        let rows = [
            target(
                "median ratio operator / floor",
                format!("{children:.2}x"),
                format!("<= {TARGET_CHILDREN_RATIO}x"),
                children <= TARGET_CHILDREN_RATIO,
            ),
            row(
                "median ratio operator / floor + CRs and statuses",
                format!("{:.2}x", self.median(Figures::children_ratio_floor_crs)),
            ),
            row(
                "median ratio floor + CRs and statuses / floor",
                format!("{:.2}x", self.median(Figures::floor_crs_ratio)),
            ),
            target(
                "median ratio of CR creation with / without operator",
                format!("{creation:.2}x"),
                format!("<= {TARGET_CREATION_RATIO}x"),
                creation <= TARGET_CREATION_RATIO,
            ),
        ];
        for (label, value, target) in rows {
            out.push_str(format!("{label:<52}  {value:<6}  {target}").trim_end());
            out.push('\n');
        }
        out
    }
}

/// Label, value, target with its verdict.
type Row = (String, String, String);

fn row(label: &str, value: String) -> Row {
    (label.to_owned(), value, String::new())
}

fn target(label: &str, value: String, target: String, met: bool) -> Row {
    let verdict = if met { "ok" } else { "MISSED" };
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
    fn a_synapse_lags_its_own_deployment_and_a_bridge_all_of_them() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        let seen = Seen {
            deployments: [("s0000", 1000), ("s0000-heisenbridge", 3000)]
                .map(|(n, ms)| (n.to_owned(), at(ms)))
                .into(),
            synapses: [("s0000".to_owned(), at(1500))].into(),
            bridges: [("s0000".to_owned(), at(4000))].into(),
        };
        let c = Convergence::from_seen(&seen, t0);
        assert_eq!(c.deployments_ready_s, 3.0);
        assert_eq!(c.tail_lag_s, 0.5);
        assert_eq!(c.max_object_lag_s, 0.5);
        assert_eq!(c.bridge_tail_lag_s, 1.0);
    }

    #[test]
    fn the_json_holds_every_figure_and_the_table_every_target() {
        let operator = |name: &str| OperatorFigures {
            name: name.to_owned(),
            ..OperatorFigures::default()
        };
        let figures = Figures {
            n: 1000,
            heisenbridge: true,
            creation_without_s: 2.0,
            creation_with_s: 2.5,
            floor: Floor {
                deployments_ready_s: 100.0,
                cpu_busy: 0.99,
                ..Floor::default()
            },
            floor_crs: Floor {
                deployments_ready_s: 80.0,
                ..Floor::default()
            },
            convergence: Convergence {
                deployments_ready_s: 104.0,
                ..Convergence::default()
            },
            cpu_busy: f64::NAN,
            operators: vec![
                operator(SYNAPSE_OPERATOR),
                operator("heisenbridge-operator"),
            ],
            foreign_namespaces: vec!["other".to_owned()],
            ..Figures::default()
        };
        let json = figures.json();
        assert_eq!(json["n"], 1000);
        assert_eq!(json["creation_ratio"], 1.25);
        assert_eq!(json["children_ratio"], 1.04);
        assert_eq!(json["floor_crs_ratio"], 0.8);
        assert_eq!(json["children_ratio_floor_crs"], 1.3);
        assert_eq!(json["floor_cpu_busy"], 0.99);
        // No CPU figure without /proc/stat: null, not NaN.
        assert_eq!(json["cpu_busy"], Value::Null);
        assert_eq!(json["foreign_namespaces"][0], "other");
        assert_eq!(json["total_s"], 0.0);
        assert_eq!(json["idle_writes"], 0.0);
        assert_eq!(json["heisenbridge_operator"]["idle_writes"], 0.0);
        let table = figures.table();
        for expected in [
            "target <= 1.5x: ok",
            "1.04x",
            "target <= 1.05x: ok",
            "1.30x",
            "99%",
            "target <= 8: ok",
            "target <= 48 MiB: MISSED",
            "heisenbridge-operator",
            "WARNING",
        ] {
            assert!(table.contains(expected), "{expected}: {table}");
        }
        assert!(!table.contains("N=1000)"), "{table}");
        // The RSS and writes targets are the synapse-operator's alone.
        assert_eq!(table.matches("target <= 8").count(), 1, "{table}");
    }

    #[test]
    fn several_rounds_report_the_median_round_and_each_rounds_ratios() {
        let round = |round: usize, operator_s: f64, creation_with_s: f64| Figures {
            round,
            n: 1000,
            creation_without_s: 2.0,
            creation_with_s,
            floor: Floor {
                deployments_ready_s: 100.0,
                ..Floor::default()
            },
            floor_crs: Floor {
                deployments_ready_s: 110.0,
                ..Floor::default()
            },
            convergence: Convergence {
                deployments_ready_s: operator_s,
                ..Convergence::default()
            },
            ..Figures::default()
        };
        let rounds = Rounds(vec![
            round(1, 130.0, 2.0),
            round(2, 100.0, 4.0),
            round(3, 120.0, 2.5),
        ]);
        assert_eq!(rounds.median_round().round, 3);
        let json = rounds.json();
        assert_eq!(json["round"], 3);
        assert_eq!(json["children_ratio"], 1.2);
        assert_eq!(json["median"]["children_ratio"], 1.2);
        assert_eq!(json["median"]["creation_ratio"], 1.25);
        assert_eq!(json["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(json["rounds"][0]["children_ratio"], 1.3);
        let table = rounds.table();
        for expected in [
            "round 3 of 3",
            "1      100.00   110.00   130.00    1.30x",
            "1.20x   target <= 1.05x: MISSED",
            "target <= 1.5x: ok",
        ] {
            assert!(table.contains(expected), "{expected}: {table}");
        }
        let one = Rounds(vec![round(1, 100.0, 2.0)]);
        assert!(!one.table().contains("round 1 of 1"));
        assert_eq!(one.json()["median"]["children_ratio"], 1.0);
    }
}
