//! Our kinds outside the run's namespaces. The operators under test watch all namespaces, so on
//! a plane shared with `hack/test` they would reconcile the tests' Synapses (and Heisenbridges)
//! too: disturbing the tests (two operators writing one object) and mixing their work into the
//! figures. The benchmark refuses to start while there are any, and stops when one appears.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt as _};
use tokio::sync::{oneshot, watch};

/// Watches of every object of some of our kinds in the cluster, collecting the namespaces not
/// of this run.
pub struct Foreign {
    namespaces: watch::Receiver<BTreeSet<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Foreign {
    /// Starts a watch of each of `kinds` and returns once they have listed the cluster;
    /// namespaces starting with `ours` belong to the run.
    pub async fn start(client: &Client, ours: &str, kinds: &[&str]) -> Result<Self> {
        let (found, namespaces) = watch::channel(BTreeSet::new());
        let mut tasks = Vec::new();
        let mut listings = Vec::new();
        for kind in kinds {
            let (task, listed) = Self::watch(client, ours, kind, found.clone());
            tasks.push(task);
            listings.push(async move {
                tokio::time::timeout(Duration::from_secs(60), listed)
                    .await
                    .with_context(|| {
                        format!("the watch of all {kind}s did not list them within 60 s")
                    })?
                    .with_context(|| format!("the watch of all {kind}s ended"))
            });
        }
        let foreign = Self { namespaces, tasks };
        futures::future::try_join_all(listings).await?;
        Ok(foreign)
    }

    fn watch(
        client: &Client,
        ours: &str,
        kind: &str,
        found: watch::Sender<BTreeSet<String>>,
    ) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<()>) {
        // Metadata only: the namespace is all that matters.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(client.clone(), &crate::objects::resource(kind));
        let ours = ours.to_owned();
        let (listed, on_listed) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut listed = Some(listed);
            let events = watcher(api, watcher::Config::default()).default_backoff();
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        if let Some(ns) = o.namespace().filter(|ns| !ns.starts_with(&ours)) {
                            found.send_if_modified(|all| all.insert(ns));
                        }
                    }
                    Ok(Event::InitDone) => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                    }
                    _ => {}
                }
            }
        });
        (task, on_listed)
    }

    /// The namespaces of objects not of this run seen so far.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.namespaces.borrow().clone()
    }

    /// Returns once an object not of this run has been seen, with the namespaces seen.
    pub async fn appeared(&mut self) -> BTreeSet<String> {
        loop {
            let seen = self.namespaces();
            if !seen.is_empty() {
                return seen;
            }
            if self.namespaces.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
