//! When each Deployment of the burst first became ready and each Synapse first reported
//! Ready=True, as seen through two watches of the namespace (never by polling).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt as _, watcher as watch};
use kube::{Client, ResourceExt as _};

use super::{synapse_api, synapse_name};

/// The first moment each object was seen ready, by name.
#[derive(Debug, Default)]
pub struct Seen {
    pub deployments: BTreeMap<String, Instant>,
    pub synapses: BTreeMap<String, Instant>,
}

/// A Deployment is ready once a pod of its current generation is available and ready.
pub fn deployment_ready(deployment: &Deployment) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    status.available_replicas.unwrap_or(0) >= 1
        && status.ready_replicas.unwrap_or(0) >= 1
        && status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(1)
}

/// A Synapse is Ready when its condition Ready is True.
pub fn synapse_ready(synapse: &DynamicObject) -> bool {
    crate::objects::condition(&synapse.data, "Ready").is_some_and(|c| c["status"] == "True")
}

enum Update {
    /// A ready Deployment, by name.
    Deployment(String),
    /// A Ready Synapse, by name.
    Synapse(String),
    /// A watch finished its initial list.
    Listed,
    /// A watch failed; the watcher retries with a backoff.
    Failed(String),
}

/// Watches of the Deployments and Synapses of one namespace, started before the burst.
pub struct Tracker {
    updates: std::pin::Pin<Box<dyn Stream<Item = Update> + Send>>,
    expected: usize,
    /// Watch errors seen (each retried).
    pub watch_errors: u32,
}

impl Tracker {
    /// Starts both watches and returns once both have listed the namespace, so that nothing
    /// the burst creates can be missed.
    pub async fn start(client: &Client, namespace: &str, expected: usize) -> Result<Self> {
        fn updates<K, S>(
            stream: S,
            ready: fn(&K) -> bool,
            wrap: fn(String) -> Update,
        ) -> impl Stream<Item = Update>
        where
            K: kube::Resource,
            S: Stream<Item = Result<Event<K>, watcher::Error>>,
        {
            stream.filter_map(move |event| {
                futures::future::ready(match event {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        ready(&o).then(|| wrap(o.name_any()))
                    }
                    Ok(Event::InitDone) => Some(Update::Listed),
                    Ok(Event::Init | Event::Delete(_)) => None,
                    Err(e) => Some(Update::Failed(e.to_string())),
                })
            })
        }
        let config = watcher::Config::default();
        let deployments = watch(
            Api::<Deployment>::namespaced(client.clone(), namespace),
            config.clone(),
        )
        .default_backoff();
        let synapses = watch(synapse_api(client, namespace), config).default_backoff();
        let mut tracker = Self {
            updates: Box::pin(futures::stream::select(
                updates(deployments, deployment_ready, Update::Deployment),
                updates(synapses, synapse_ready, Update::Synapse),
            )),
            expected,
            watch_errors: 0,
        };
        let mut listed = 0;
        while listed < 2 {
            let update = tokio::time::timeout(Duration::from_secs(60), tracker.updates.next())
                .await
                .context("the watches did not list the namespace within 60 s")?;
            match update {
                Some(Update::Listed) => listed += 1,
                Some(Update::Failed(e)) => bail!("watch the namespace {namespace}: {e}"),
                Some(_) => {}
                None => bail!("the watches of {namespace} ended"),
            }
        }
        Ok(tracker)
    }

    /// Follows the watches until every expected Deployment was ready and every Synapse Ready
    /// (each at least once), or fails at `deadline` saying how many are not yet.
    pub async fn converge(&mut self, deadline: tokio::time::Instant) -> Result<Seen> {
        let expected: std::collections::BTreeSet<String> =
            (0..self.expected).map(synapse_name).collect();
        let mut seen = Seen::default();
        while seen.deployments.len() < self.expected || seen.synapses.len() < self.expected {
            let update = match tokio::time::timeout_at(deadline, self.updates.next()).await {
                Ok(Some(update)) => update,
                Ok(None) => bail!("the watches ended"),
                Err(_) => bail!(self.not_ready_message(&seen, &expected)),
            };
            let now = Instant::now();
            let (map, name) = match update {
                Update::Deployment(name) => (&mut seen.deployments, name),
                Update::Synapse(name) => (&mut seen.synapses, name),
                Update::Failed(_) => {
                    self.watch_errors += 1;
                    continue;
                }
                Update::Listed => continue,
            };
            if expected.contains(&name) {
                map.entry(name).or_insert(now);
            }
        }
        Ok(seen)
    }

    fn not_ready_message(
        &self,
        seen: &Seen,
        expected: &std::collections::BTreeSet<String>,
    ) -> String {
        let missing = |map: &BTreeMap<String, Instant>| {
            let names: Vec<&str> = expected
                .iter()
                .filter(|n| !map.contains_key(*n))
                .map(String::as_str)
                .collect();
            let shown = names
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            let more = if names.len() > 10 { ", …" } else { "" };
            (names.len(), format!("{shown}{more}"))
        };
        let (deployments, deployment_names) = missing(&seen.deployments);
        let (synapses, synapse_names) = missing(&seen.synapses);
        format!(
            "timed out: {deployments} of {n} Deployments still not ready ({deployment_names}), \
             {synapses} of {n} Synapses still not Ready ({synapse_names})",
            n = self.expected
        )
    }
}
