//! A fleet of Synapses, each with a Heisenbridge, in one namespace, as the fault tests drive it:
//! creating it, what "converged" means with the plane's fake pods (the operators' children, Secrets
//! and conditions; no program runs), the exact children each owner must have, the generated
//! values that must never change, and the teardown that must leave no finalizer behind.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::{Value, json};

use crate::object_history::ObjectHistory;
use crate::object_history::{COMPONENT, CONFIG_CHECK, MANAGED_BY};
use crate::objects::{condition_state, create, is_running};

pub const SYNAPSE_OPERATOR: &str = "synapse-operator";
pub const BRIDGE_OPERATOR: &str = "heisenbridge-operator";
/// Deployment, Service, configuration and generated Secrets, data volume.
const CHILDREN_PER_SYNAPSE: usize = 5;
/// Deployment, Service, registration Secret.
const CHILDREN_PER_BRIDGE: usize = 3;
const INSTANCE: &str = "app.kubernetes.io/instance";

/// A child as the census sees it: who it belongs to by label, and its controlling owner
/// (kind, name, UID), if any.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Child {
    instance: String,
    managed_by: String,
    owner: Option<(String, String, String)>,
}

pub struct Fleet {
    client: Client,
    namespace: String,
    size: usize,
}

impl Fleet {
    pub fn new(client: &Client, namespace: &str, size: usize) -> Self {
        Self {
            client: client.clone(),
            namespace: namespace.to_owned(),
            size,
        }
    }

    pub fn synapse(i: usize) -> String {
        format!("hs-{i}")
    }

    pub fn bridge(i: usize) -> String {
        format!("irc-{i}")
    }

    fn api(&self, kind: &str) -> Api<DynamicObject> {
        crate::objects::namespaced(&self.client, &self.namespace, kind)
    }

    /// Creates each Synapse and its Heisenbridge, pair after pair.
    pub async fn create(&self) {
        for i in 0..self.size {
            let synapse = Self::synapse(i);
            self.create_object(
                "Synapse",
                &synapse,
                json!({"homeserver": {"values": {
                    "serverName": format!("{synapse}.test"), "reportStats": false,
                }}}),
            )
            .await;
            self.create_object(
                "Heisenbridge",
                &Self::bridge(i),
                json!({"synapse": {"name": synapse}}),
            )
            .await;
        }
    }

    async fn create_object(&self, kind: &str, name: &str, spec: Value) {
        create(&self.api(kind), kind, name, spec).await;
    }

    async fn list(&self, kind: &str) -> BTreeMap<String, Value> {
        self.api(kind)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {kind}s: {e}"))
            .items
            .into_iter()
            .map(|o| {
                let name = o.name_any();
                (name, serde_json::to_value(o).expect("serialise"))
            })
            .collect()
    }

    /// What is not converged yet, one line each: a Synapse not Ready and RUNNING for its
    /// generation with exactly its bridge registered, a Heisenbridge not Ready and Registered for
    /// its generation.
    pub async fn unconverged(&self) -> Vec<String> {
        let (synapses, bridges) = (self.list("Synapse").await, self.list("Heisenbridge").await);
        let mut problems = Vec::new();
        for i in 0..self.size {
            let (synapse, bridge) = (Self::synapse(i), Self::bridge(i));
            match synapses.get(&synapse) {
                None => problems.push(format!("Synapse {synapse} is missing")),
                Some(s) if !synapse_converged(s, &bridge) => problems.push(format!(
                    "Synapse {synapse}: Ready={:?} state={} observedGeneration={} \
                     generation={} appServices={}",
                    condition_state(s, "Ready"),
                    s["status"]["state"],
                    s["status"]["observedGeneration"],
                    s["metadata"]["generation"],
                    s["status"]["appServices"]
                )),
                Some(_) => {}
            }
            match bridges.get(&bridge) {
                None => problems.push(format!("Heisenbridge {bridge} is missing")),
                Some(b) if !bridge_converged(b) => problems.push(format!(
                    "Heisenbridge {bridge}: Ready={:?} Registered={:?} observedGeneration={} \
                     generation={}",
                    condition_state(b, "Ready"),
                    condition_state(b, "Registered"),
                    b["status"]["observedGeneration"],
                    b["metadata"]["generation"],
                )),
                Some(_) => {}
            }
        }
        problems
    }

    /// Waits until every Synapse and Heisenbridge has converged; the panic names what has not.
    pub async fn wait_converged(&self, timeout: Duration, after: &str) {
        let started = tokio::time::Instant::now();
        loop {
            let problems = self.unconverged().await;
            if problems.is_empty() {
                eprintln!("converged {after} in {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "not converged {timeout:?} {after}: {} of {} objects:\n{}",
                problems.len(),
                self.size * 2,
                problems.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How many children the operators make for the fleet (see [`Self::assert_children`]).
    pub fn children_expected(&self) -> usize {
        self.size * (CHILDREN_PER_SYNAPSE + CHILDREN_PER_BRIDGE)
    }

    /// The invariants a fault must not break: the exact children (see
    /// [`Self::assert_children`]), none ever recreated, every generated value kept.
    pub async fn assert_invariants(&self, history: &ObjectHistory) {
        let children = self.assert_children().await;
        // The history saw each child, and only those: its watches are alive.
        let watched: BTreeSet<(String, String)> = history
            .latest()
            .into_iter()
            .filter_map(|(key, version)| (!version.deleted).then_some(key))
            .collect();
        assert_eq!(
            watched, children,
            "the history's objects are not the children"
        );
        history.assert_never_recreated();
        self.assert_generated_values_kept(history);
    }

    /// Fails unless the namespace holds exactly the children the fleet should have, each with
    /// its labels and its controlling owner (the live object, by UID), and nothing else that
    /// the operators manage or that names a Synapse or a Heisenbridge as its owner: no
    /// duplicate, no leftover, no orphan.
    /// Returns the children's (kind, name).
    pub async fn assert_children(&self) -> BTreeSet<(String, String)> {
        let (synapses, bridges) = (self.list("Synapse").await, self.list("Heisenbridge").await);
        let uid = |objects: &BTreeMap<String, Value>, name: &str| {
            objects.get(name).map_or_else(String::new, |o| {
                o["metadata"]["uid"].as_str().unwrap_or_default().to_owned()
            })
        };
        let mut expected = BTreeMap::new();
        for i in 0..self.size {
            let synapse = Self::synapse(i);
            let bridge = Self::bridge(i);
            let owned_by = |kind: &str, name: &str, objects| {
                Some((kind.to_owned(), name.to_owned(), uid(objects, name)))
            };
            let of_synapse = |owner| Child {
                instance: synapse.clone(),
                managed_by: SYNAPSE_OPERATOR.to_owned(),
                owner,
            };
            let by_synapse = owned_by("Synapse", &synapse, &synapses);
            expected.insert(
                ("Deployment", synapse.clone()),
                of_synapse(by_synapse.clone()),
            );
            expected.insert(("Service", synapse.clone()), of_synapse(by_synapse.clone()));
            expected.insert(
                ("Secret", format!("{synapse}-config")),
                of_synapse(by_synapse),
            );
            // Kept when the Synapse goes (the retained-object policy): labelled, not owned.
            expected.insert(("Secret", format!("{synapse}-secrets")), of_synapse(None));
            expected.insert(
                ("PersistentVolumeClaim", format!("{synapse}-data")),
                of_synapse(None),
            );
            let of_bridge = Child {
                instance: bridge.clone(),
                managed_by: BRIDGE_OPERATOR.to_owned(),
                owner: owned_by("Heisenbridge", &bridge, &bridges),
            };
            let workload = format!("{bridge}-heisenbridge");
            expected.insert(("Deployment", workload.clone()), of_bridge.clone());
            expected.insert(("Service", workload), of_bridge.clone());
            expected.insert(
                ("Secret", format!("{bridge}-heisenbridge-registration")),
                of_bridge,
            );
        }
        let expected: BTreeMap<(String, String), Child> = expected
            .into_iter()
            .map(|((kind, name), child)| ((kind.to_owned(), name), child))
            .collect();
        assert_eq!(
            expected.len(),
            self.children_expected(),
            "the fleet's own count"
        );

        let mut actual = BTreeMap::new();
        self.census::<Deployment>(&mut actual).await;
        self.census::<Service>(&mut actual).await;
        self.census::<Secret>(&mut actual).await;
        self.census::<ConfigMap>(&mut actual).await;
        self.census::<PersistentVolumeClaim>(&mut actual).await;
        self.census::<ServiceAccount>(&mut actual).await;

        let mut problems = Vec::new();
        for (key, want) in &expected {
            match actual.get(key) {
                None => problems.push(format!("missing {key:?}")),
                Some(got) if got != want => {
                    problems.push(format!("{key:?}: expected {want:?}, found {got:?}"));
                }
                Some(_) => {}
            }
        }
        for (key, got) in &actual {
            if !expected.contains_key(key) {
                problems.push(format!("unexpected {key:?}: {got:?}"));
            }
        }
        assert!(
            problems.is_empty(),
            "the children differ from the fleet's ({} expected, {} found):\n{}",
            expected.len(),
            actual.len(),
            problems.join("\n")
        );
        expected.into_keys().collect()
    }

    /// Adds to `children` every `K` the operators manage or that a Synapse or Heisenbridge
    /// controls.
    async fn census<K>(&self, children: &mut BTreeMap<(String, String), Child>)
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        let kind = K::kind(&()).into_owned();
        let objects = Api::<K>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {kind}s: {e}"));
        for object in objects.items {
            let meta: &ObjectMeta = object.meta();
            let label = |key: &str| {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(key))
                    .cloned()
                    .unwrap_or_default()
            };
            let owner = meta
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.kind == "Synapse" || o.kind == "Heisenbridge")
                .map(|o| (o.kind.clone(), o.name.clone(), o.uid.clone()));
            let managed_by = label(MANAGED_BY);
            let ours = [SYNAPSE_OPERATOR, BRIDGE_OPERATOR].contains(&managed_by.as_str());
            // A configuration check's Secret goes with its Job (the garbage collector's turn).
            if label(COMPONENT) == CONFIG_CHECK {
                continue;
            }
            if ours || owner.is_some() {
                children.insert(
                    (kind.clone(), object.name_any()),
                    Child {
                        instance: label(INSTANCE),
                        managed_by,
                        owner,
                    },
                );
            }
        }
    }

    /// Fails unless each generated value kept the value it was first seen with, in every version
    /// `history` saw: every key of a Synapse's generated Secret (signing key, registration
    /// shared secret, macaroon and form secrets), and each bridge's `as_token` and `hs_token`.
    /// Also fails when one was never generated.
    pub fn assert_generated_values_kept(&self, history: &ObjectHistory) {
        let versions = history.versions();
        let mut problems = Vec::new();
        for i in 0..self.size {
            let homeserver_secret = format!("{}-secrets", Self::synapse(i));
            let registration = format!("{}-heisenbridge-registration", Self::bridge(i));
            let key = |name: &str| ("Secret".to_owned(), name.to_owned());
            let mut values: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
            for version in versions.get(&key(&homeserver_secret)).into_iter().flatten() {
                for (k, v) in &version.data {
                    values
                        .entry(format!("{homeserver_secret} {k}"))
                        .or_default()
                        .insert(v.clone());
                }
            }
            for version in versions.get(&key(&registration)).into_iter().flatten() {
                let file = version
                    .data
                    .get("registration.yaml")
                    .map(|f| serde_yaml::from_slice::<Value>(f).expect("a registration file"));
                for token in ["as_token", "hs_token"] {
                    let value = file.as_ref().and_then(|f| f[token].as_str());
                    values
                        .entry(format!("{registration} {token}"))
                        .or_default()
                        .insert(value.unwrap_or_default().as_bytes().to_vec());
                }
            }
            let keys = values.keys().filter(|k| k.starts_with(&homeserver_secret));
            if keys.count() < 3 {
                problems.push(format!(
                    "{homeserver_secret} holds too few generated values: {:?}",
                    values.keys().collect::<Vec<_>>()
                ));
            }
            for (what, seen) in values {
                if seen.len() != 1 || seen.iter().any(Vec::is_empty) {
                    problems.push(format!("{what}: {} distinct values seen", seen.len()));
                }
            }
            if !versions.contains_key(&key(&registration)) {
                problems.push(format!("{registration} was never seen"));
            }
        }
        assert!(
            problems.is_empty(),
            "generated values changed or are missing:\n{}",
            problems.join("\n")
        );
    }

    /// Deletes every Synapse and Heisenbridge at once, as a namespace deletion does, and waits
    /// until they are gone: a finalizer left behind fails, naming the objects that keep one.
    pub async fn delete_all(&self, timeout: Duration) {
        for kind in ["Heisenbridge", "Synapse"] {
            self.api(kind)
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("delete the {kind}s: {e}"));
        }
        let started = tokio::time::Instant::now();
        loop {
            let mut left = Vec::new();
            for kind in ["Heisenbridge", "Synapse"] {
                for (name, object) in self.list(kind).await {
                    left.push(format!(
                        "{kind} {name} finalizers={}",
                        object["metadata"]["finalizers"]
                    ));
                }
            }
            if left.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{} objects still there {timeout:?} after their deletion:\n{}",
                left.len(),
                left.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn synapse_converged(synapse: &Value, bridge: &str) -> bool {
    let registered: Vec<(&str, &str)> = synapse["status"]["appServices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["source"]["name"].as_str().unwrap_or_default(),
                a["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    is_running(synapse) && registered == [(bridge, "registered")]
}

fn bridge_converged(bridge: &Value) -> bool {
    condition_state(bridge, "Ready") == ("True".into(), "Running".into())
        && condition_state(bridge, "Registered") == ("True".into(), "Registered".into())
        && bridge["status"]["observedGeneration"] == bridge["metadata"]["generation"]
}
