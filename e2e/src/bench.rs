//! The burst benchmark behind `hack/bench` (binary `bench`): N Synapses (optionally each with a
//! Heisenbridge) at once. First the floor, their children applied directly ([`floor`]); then the
//! floor with the custom resources (them, their children and one status write each: the least
//! any operator adds); then the custom resources with no operator (the plane's own cost of
//! them); then with the release operators watching all namespaces, until every Synapse is Ready
//! (and every Heisenbridge Registered); then an idle minute. It prints figures, it asserts
//! nothing: see docs/development.md.
//!
//! Everything it creates carries the label [`RUN_LABEL`] with the run's id, so that whatever a
//! crashed run left behind can be found and removed (`hack/bench` does so in its exit trap).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

pub mod floor;
pub mod foreign;
pub mod nodes;
pub mod operator;
pub mod report;
pub mod track;

/// The label on every namespace and node a run creates; its value is the run's id.
pub const RUN_LABEL: &str = "synapse-operators.bench/run";

/// The field manager of the benchmark's server-side applies.
pub const FIELD_MANAGER: &str = "bench";

/// The name of the `i`th Synapse: `s0000`, `s0001`, …
pub fn synapse_name(i: usize) -> String {
    format!("s{i:04}")
}

/// The `Synapse` API of a namespace, untyped (the e2e crate does not link the operators' types).
pub fn synapse_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::objects::resource("Synapse"),
    )
}

/// The `Heisenbridge` API of a namespace, untyped.
pub fn bridge_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &crate::objects::resource("Heisenbridge"),
    )
}

/// Seconds as a float, the unit of every figure.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Creates the namespace `name`, labelled with the run's id.
pub async fn create_namespace(client: &Client, name: &str, run_id: &str) -> Result<()> {
    let namespace: Namespace = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {RUN_LABEL: run_id}}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("create namespace {name}"))?;
    Ok(())
}

/// One object a burst applies.
#[derive(Debug, Clone)]
pub struct Desired {
    pub resource: ApiResource,
    pub name: String,
    pub object: Value,
    /// Applied to the object's `status` subresource (the object must exist).
    pub status: bool,
}

/// The custom resources of the `i`th set: the Synapse `s<i>`, with `heisenbridge` also a
/// Heisenbridge of the same name bridging to it.
pub fn custom_resources(i: usize, heisenbridge: bool) -> Vec<Desired> {
    let name = synapse_name(i);
    let mut set = vec![Desired {
        resource: crate::objects::resource("Synapse"),
        name: name.clone(),
        object: json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Synapse",
            "metadata": {"name": name},
            "spec": {"homeserver": {"values": {
                "serverName": format!("s{i}.bench.example"),
                "reportStats": false,
            }}},
        }),
        status: false,
    }];
    if heisenbridge {
        set.push(Desired {
            resource: crate::objects::resource("Heisenbridge"),
            name: name.clone(),
            object: json!({
                "apiVersion": "synapse.opdev.io/v1alpha1",
                "kind": "Heisenbridge",
                "metadata": {"name": name},
                "spec": {"synapse": {"name": name}},
            }),
            status: false,
        });
    }
    set
}

/// What applying the burst took.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    /// From the first request sent to the last answer received.
    pub elapsed: Duration,
    /// Applies sent again after a 429 or 5xx answer.
    pub retries: u32,
}

/// Applies `sets` in `namespace` with `workers` parallel workers, each taking the next set and
/// sending its objects one server-side apply at a time, and returns once every apply was
/// answered. A 429 or 5xx answer is retried (up to 5 times per object); any other error fails
/// the burst.
pub async fn apply_burst(
    client: &Client,
    namespace: &str,
    sets: Vec<Vec<Desired>>,
    workers: usize,
) -> Result<Burst> {
    let sets = Arc::new(sets);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (client, namespace) = (client.clone(), namespace.to_owned());
        let (sets, next, retries) = (sets.clone(), next.clone(), retries.clone());
        tasks.spawn(async move {
            while let Some(set) = sets.get(next.fetch_add(1, Ordering::Relaxed)) {
                for desired in set {
                    apply_one(&client, &namespace, desired, &retries).await?;
                }
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("an apply worker panicked")? {
            tasks.abort_all();
            return Err(e);
        }
    }
    Ok(Burst {
        elapsed: started.elapsed(),
        retries: retries.load(Ordering::Relaxed),
    })
}

async fn apply_one(
    client: &Client,
    namespace: &str,
    desired: &Desired,
    retries: &AtomicU32,
) -> Result<()> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &desired.resource);
    let params = PatchParams::apply(FIELD_MANAGER);
    let mut attempt = 0;
    loop {
        let patch = Patch::Apply(&desired.object);
        let applied = if desired.status {
            api.patch_status(&desired.name, &params, &patch).await
        } else {
            api.patch(&desired.name, &params, &patch).await
        };
        match applied {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status))
                if (status.code == 429 || status.code >= 500) && attempt < 5 =>
            {
                attempt += 1;
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                let kind = &desired.resource.kind;
                return Err(e).with_context(|| format!("apply {kind} {}", desired.name));
            }
        }
    }
}

/// Deletes the namespace and waits (through a watch) until it is gone; returns how long that
/// took. A namespace that is already gone is no error. The operators must have stopped: the
/// finalizers of the Heisenbridges in it, which only a running heisenbridge-operator removes,
/// are removed first.
pub async fn delete_namespace(client: &Client, name: &str, timeout: Duration) -> Result<Duration> {
    let api = Api::<Namespace>::all(client.clone());
    let Some(namespace) = api.get_opt(name).await? else {
        return Ok(Duration::ZERO);
    };
    release_bridges(client, name).await?;
    let started = Instant::now();
    let uid = namespace.uid().unwrap_or_default();
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(started.elapsed()),
        Err(e) => return Err(e).with_context(|| format!("delete namespace {name}")),
    }
    let gone = await_condition(api, name, conditions::is_deleted(&uid));
    match tokio::time::timeout(timeout, gone).await {
        Ok(result) => {
            result.with_context(|| format!("watch namespace {name}"))?;
            Ok(started.elapsed())
        }
        Err(_) => bail!(
            "namespace {name} still not gone after {timeout:?}; left in it: {}",
            leftovers(client, name).await
        ),
    }
}

/// Removes the finalizers of the Heisenbridges of `namespace`.
async fn release_bridges(client: &Client, namespace: &str) -> Result<()> {
    let api = bridge_api(client, namespace);
    let bridges = api
        .list_metadata(&ListParams::default())
        .await
        .with_context(|| format!("list the Heisenbridges of {namespace}"))?;
    let release = json!({"metadata": {"finalizers": null}});
    for bridge in bridges.items.iter().filter(|b| !b.finalizers().is_empty()) {
        let name = bridge.name_any();
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&release))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("release Heisenbridge {name}")),
        }
    }
    Ok(())
}

/// What is still in a namespace, counted by kind, for a timeout's message.
async fn leftovers(client: &Client, namespace: &str) -> String {
    let list = ListParams::default();
    let count = |r: kube::Result<usize>| r.map_or_else(|e| format!("? ({e})"), |n| n.to_string());
    let synapses = synapse_api(client, namespace).list_metadata(&list).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), namespace)
        .list_metadata(&list)
        .await;
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list_metadata(&list)
        .await;
    format!(
        "{} Synapses, {} Deployments, {} Pods",
        count(synapses.map(|l| l.items.len())),
        count(deployments.map(|l| l.items.len())),
        count(pods.map(|l| l.items.len()))
    )
}

/// The 1-, 5- and 15-minute load averages of the machine.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(f64::NAN));
    [(); 3].map(|()| fields.next().unwrap_or(f64::NAN))
}

/// The machine's CPU time so far, busy and all, from `/proc/stat` (in clock ticks).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTimes {
    busy: u64,
    total: u64,
}

impl CpuTimes {
    pub fn now() -> Self {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        Self::parse(text.lines().next().unwrap_or_default())
    }

    /// The `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal …; idle
    /// and iowait are not busy, guest time is already in user.
    fn parse(line: &str) -> Self {
        let ticks: Vec<u64> = (line.split_whitespace().skip(1).take(8))
            .map(|t| t.parse().unwrap_or(0))
            .collect();
        let total = ticks.iter().sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        Self {
            busy: total - idle,
            total,
        }
    }

    /// The share of the machine's CPU time that was busy since `earlier`, 0 to 1 (NaN without
    /// `/proc/stat`).
    pub fn busy_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return f64::NAN;
        }
        self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

/// A generous timeout for one wait of a run of `n` objects: 3 minutes plus 0.6 s per object
/// (13 minutes at N=1000), far beyond what a healthy 2-core machine needs.
pub fn default_timeout(n: usize) -> Duration {
    Duration::from_secs(180) + Duration::from_millis(600) * u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_is_all_but_idle_and_iowait() {
        let before = CpuTimes::parse("cpu  100 0 50 800 50 0 0 0 0 0");
        let after = CpuTimes::parse("cpu  400 0 150 900 50 0 0 0 10 0");
        assert_eq!(after.busy_since(&before), 0.8);
        assert!(before.busy_since(&before).is_nan());
    }
}
