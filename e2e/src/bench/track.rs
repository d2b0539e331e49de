//! When each Deployment of a burst first became ready, each Synapse first reported Ready=True
//! and each Heisenbridge Registered=True and Ready=True, as seen through watches of the namespace
//! (never by polling).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt as _, watcher as watch};
use kube::{Client, ResourceExt as _};

use super::{bridge_api, synapse_api};

/// The first moment each object was seen ready, by name.
#[derive(Debug, Default)]
pub struct Seen {
    pub deployments: BTreeMap<String, Instant>,
    pub synapses: BTreeMap<String, Instant>,
    pub bridges: BTreeMap<String, Instant>,
}

/// The objects a burst waits for, by name: a set left empty is not watched.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub deployments: BTreeSet<String>,
    pub synapses: BTreeSet<String>,
    pub bridges: BTreeSet<String>,
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
    condition_true(synapse, "Ready")
}

/// A Heisenbridge is done when its conditions Registered (its Synapse serves its registration)
/// and Ready (its own pod runs) are both True: either may come last, and the idle minute must
/// not start before the other.
pub fn bridge_registered(bridge: &DynamicObject) -> bool {
    condition_true(bridge, "Registered") && condition_true(bridge, "Ready")
}

fn condition_true(object: &DynamicObject, type_: &str) -> bool {
    crate::objects::condition(&object.data, type_).is_some_and(|c| c["status"] == "True")
}

#[derive(Clone, Copy)]
enum Kind {
    Deployment,
    Synapse,
    Bridge,
}

enum Update {
    /// A ready object, by name.
    Ready(Kind, String),
    /// A watch finished its initial list.
    Listed,
    /// A watch failed; the watcher retries with a backoff.
    Failed(String),
}

type Updates = std::pin::Pin<Box<dyn Stream<Item = Update> + Send>>;

/// Watches of one namespace, started before the burst.
pub struct Tracker {
    updates: Updates,
    expected: Expected,
    /// Watch errors seen (each retried).
    pub watch_errors: u32,
}

impl Tracker {
    /// Starts the watches `expected` needs and returns once each has listed the namespace, so
    /// that nothing the burst creates can be missed.
    pub async fn start(client: &Client, namespace: &str, expected: Expected) -> Result<Self> {
        fn updates<K, S>(stream: S, ready: fn(&K) -> bool, kind: Kind) -> Updates
        where
            K: kube::Resource + Send + 'static,
            S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
        {
            Box::pin(stream.filter_map(move |event| {
                futures::future::ready(match event {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        ready(&o).then(|| Update::Ready(kind, o.name_any()))
                    }
                    Ok(Event::InitDone) => Some(Update::Listed),
                    Ok(Event::Init | Event::Delete(_)) => None,
                    Err(e) => Some(Update::Failed(e.to_string())),
                })
            }))
        }
        let config = watcher::Config::default();
        let mut streams = Vec::new();
        if !expected.deployments.is_empty() {
            let api = Api::<Deployment>::namespaced(client.clone(), namespace);
            let stream = watch(api, config.clone()).default_backoff();
            streams.push(updates(stream, deployment_ready, Kind::Deployment));
        }
        if !expected.synapses.is_empty() {
            let stream = watch(synapse_api(client, namespace), config.clone()).default_backoff();
            streams.push(updates(stream, synapse_ready, Kind::Synapse));
        }
        if !expected.bridges.is_empty() {
            let stream = watch(bridge_api(client, namespace), config).default_backoff();
            streams.push(updates(stream, bridge_registered, Kind::Bridge));
        }
        let watches = streams.len();
        let mut tracker = Self {
            updates: Box::pin(futures::stream::select_all(streams)),
            expected,
            watch_errors: 0,
        };
        let mut listed = 0;
        while listed < watches {
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

    /// Follows the watches until every expected object was ready (each at least once), or
    /// fails at `deadline` saying how many are not yet.
    pub async fn converge(&mut self, deadline: tokio::time::Instant) -> Result<Seen> {
        let mut seen = Seen::default();
        while !self.all_seen(&seen) {
            let update = match tokio::time::timeout_at(deadline, self.updates.next()).await {
                Ok(Some(update)) => update,
                Ok(None) => bail!("the watches ended"),
                Err(_) => bail!(self.not_ready_message(&seen)),
            };
            let now = Instant::now();
            let (expected, map, name) = match update {
                Update::Ready(Kind::Deployment, name) => {
                    (&self.expected.deployments, &mut seen.deployments, name)
                }
                Update::Ready(Kind::Synapse, name) => {
                    (&self.expected.synapses, &mut seen.synapses, name)
                }
                Update::Ready(Kind::Bridge, name) => {
                    (&self.expected.bridges, &mut seen.bridges, name)
                }
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

    fn all_seen(&self, seen: &Seen) -> bool {
        seen.deployments.len() >= self.expected.deployments.len()
            && seen.synapses.len() >= self.expected.synapses.len()
            && seen.bridges.len() >= self.expected.bridges.len()
    }

    fn not_ready_message(&self, seen: &Seen) -> String {
        let missing = |expected: &BTreeSet<String>, map: &BTreeMap<String, Instant>, what: &str| {
            let names: Vec<&str> = expected
                .iter()
                .filter(|n| !map.contains_key(*n))
                .map(String::as_str)
                .collect();
            let shown = names.iter().take(10).copied().collect::<Vec<_>>();
            let more = if names.len() > 10 { ", …" } else { "" };
            format!(
                "{} of {} {what} ({}{more})",
                names.len(),
                expected.len(),
                shown.join(", ")
            )
        };
        let e = &self.expected;
        format!(
            "timed out: still not ready: {}; {}; {}",
            missing(&e.deployments, &seen.deployments, "Deployments ready"),
            missing(&e.synapses, &seen.synapses, "Synapses Ready"),
            missing(&e.bridges, &seen.bridges, "Heisenbridges Registered"),
        )
    }
}
