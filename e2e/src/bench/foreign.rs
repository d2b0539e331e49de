//! Synapses outside the run's namespaces. The operator under test watches all namespaces, so on
//! a plane shared with `hack/test` it would reconcile the tests' Synapses too: disturbing the
//! tests (two operators writing one object) and mixing their work into the figures. The
//! benchmark refuses to start while there are any, and stops when one appears.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, ResourceExt as _};
use tokio::sync::{oneshot, watch};

/// A watch of every Synapse in the cluster, collecting the namespaces not of this run.
pub struct Foreign {
    namespaces: watch::Receiver<BTreeSet<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Foreign {
    /// Starts the watch and returns once it has listed the cluster; namespaces starting with
    /// `ours` belong to the run.
    pub async fn start(client: &Client, ours: String) -> Result<Self> {
        // Metadata only: the namespace is all that matters.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(client.clone(), &crate::objects::resource("Synapse"));
        let (found, namespaces) = watch::channel(BTreeSet::new());
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
        tokio::time::timeout(Duration::from_secs(60), on_listed)
            .await
            .context("the watch of all Synapses did not list them within 60 s")?
            .context("the watch of all Synapses ended")?;
        Ok(Self { namespaces, task })
    }

    /// The namespaces of Synapses not of this run seen so far.
    pub fn namespaces(&self) -> BTreeSet<String> {
        self.namespaces.borrow().clone()
    }

    /// Returns once a Synapse not of this run has been seen, with the namespaces seen.
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
        self.task.abort();
    }
}
