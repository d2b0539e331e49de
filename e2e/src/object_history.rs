//! Every version of the operators' objects in one namespace, watched through the plane's own
//! apiserver from before they exist: a fault test asserts on the whole history, not only on the
//! end state, that no object was deleted or recreated and that a generated value never changed.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource};
use tokio::task::JoinHandle;

/// The objects the operators own or retain carry this label, naming the operator.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// The component of a configuration check's Job and candidate Secret: made to be deleted once
/// the check is done, so no part of the history.
pub const CONFIG_CHECK: &str = "config-check";

/// The label naming an object's component.
pub const COMPONENT: &str = "app.kubernetes.io/component";

/// A label selector of the objects `operators` manage, but for their configuration checks.
pub fn managed_by(operators: &[&str]) -> String {
    format!(
        "{MANAGED_BY} in ({}),{COMPONENT}!={CONFIG_CHECK}",
        operators.join(",")
    )
}

/// One observed state of an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub uid: String,
    /// A Secret's data; empty for other kinds.
    pub data: BTreeMap<String, Vec<u8>>,
    pub deleted: bool,
}

type Versions = BTreeMap<(String, String), Vec<Version>>;

pub struct ObjectHistory {
    versions: Arc<Mutex<Versions>>,
    synced: Arc<Mutex<usize>>,
    watches: Vec<JoinHandle<()>>,
}

impl ObjectHistory {
    /// Starts watching the Deployments, Services, Secrets, ConfigMaps and PersistentVolumeClaims
    /// that `operators` manage in `namespace` (but configuration checks); returns once every
    /// watch has listed.
    pub async fn record(client: &Client, namespace: &str, operators: &[&str]) -> Self {
        let selector = managed_by(operators);
        let mut history = Self {
            versions: Arc::default(),
            synced: Arc::default(),
            watches: Vec::new(),
        };
        history.watch::<Deployment>(client, namespace, &selector);
        history.watch::<Service>(client, namespace, &selector);
        history.watch::<Secret>(client, namespace, &selector);
        history.watch::<ConfigMap>(client, namespace, &selector);
        history.watch::<PersistentVolumeClaim>(client, namespace, &selector);
        let kinds = history.watches.len();
        crate::wait_for(Duration::from_secs(30), "the history's watches", || {
            let synced = *history.synced.lock().expect("lock");
            async move { (synced == kinds).then_some(()) }
        })
        .await;
        history
    }

    fn watch<K>(&mut self, client: &Client, namespace: &str, selector: &str)
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned
            + Serialize
            + Send
            + 'static,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let config = watcher::Config::default().labels(selector);
        let (versions, synced) = (Arc::clone(&self.versions), Arc::clone(&self.synced));
        let kind = K::kind(&()).into_owned();
        self.watches.push(tokio::spawn(async move {
            let mut events = watcher::watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        add(&versions, &kind, &o, false);
                    }
                    Ok(Event::Delete(o)) => add(&versions, &kind, &o, true),
                    Ok(Event::InitDone) => *synced.lock().expect("lock") += 1,
                    Ok(Event::Init) => {}
                    Err(error) => eprintln!("the history's watch of {kind}s: {error}"),
                }
            }
        }));
    }

    /// The versions seen so far, by (kind, name).
    pub fn versions(&self) -> Versions {
        self.versions.lock().expect("lock").clone()
    }

    /// The last version of each object.
    pub fn latest(&self) -> BTreeMap<(String, String), Version> {
        self.versions()
            .into_iter()
            .filter_map(|(key, versions)| Some((key, versions.last()?.clone())))
            .collect()
    }

    /// Fails naming every object that was deleted or had more than one UID (was recreated).
    pub fn assert_never_recreated(&self) {
        let problems: Vec<String> = self
            .versions()
            .iter()
            .filter_map(|((kind, name), versions)| {
                let mut uids: Vec<&str> = versions.iter().map(|v| v.uid.as_str()).collect();
                uids.dedup();
                let deleted = versions.iter().any(|v| v.deleted);
                (uids.len() > 1 || deleted)
                    .then(|| format!("{kind} {name}: UIDs {uids:?}, deleted: {deleted}"))
            })
            .collect();
        assert!(
            problems.is_empty(),
            "objects were deleted or recreated:\n{}",
            problems.join("\n")
        );
    }
}

impl Drop for ObjectHistory {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

fn add<K: Resource + Serialize>(versions: &Mutex<Versions>, kind: &str, object: &K, deleted: bool) {
    let meta = object.meta();
    let data = if kind == "Secret" {
        let data = serde_json::to_value(object).expect("serialise")["data"].take();
        serde_json::from_value::<Option<BTreeMap<String, ByteString>>>(data)
            .expect("a Secret's data")
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    } else {
        BTreeMap::new()
    };
    let version = Version {
        uid: meta.uid.clone().unwrap_or_default(),
        data,
        deleted,
    };
    let key = (kind.to_owned(), meta.name.clone().unwrap_or_default());
    let mut versions = versions.lock().expect("lock");
    let seen = versions.entry(key).or_default();
    // Status-only and metadata-only updates repeat the last version: kept once.
    if seen.last() != Some(&version) {
        seen.push(version);
    }
}
