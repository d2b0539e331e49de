//! Fake nodes for the burst: kwok plays the kubelet of every node annotated
//! `kwok.x-k8s.io/node: fake` (hack/cluster-bootstrap.yaml), so a node is one object away.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use serde_json::json;

use super::RUN_LABEL;

/// The name of the `i`th bench node.
pub fn node_name(i: usize) -> String {
    format!("bench-node-{i}")
}

fn node(name: &str, run_id: &str) -> Result<Node> {
    Ok(serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/os": "linux",
                "kubernetes.io/hostname": name,
                "type": "kwok",
                RUN_LABEL: run_id,
            },
        },
    }))?)
}

fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// What one pod of the burst asks of a node.
#[derive(Debug, Clone, Copy)]
pub struct PodRequests {
    /// CPU, in cores.
    pub cpu: f64,
    /// Memory, in bytes.
    pub memory: f64,
}

/// How many pods asking `pod` a Ready node takes: the least of its allocatable pods, CPU and
/// memory divided by the pod's requests (kwok gives every node the same, hack/cluster-kwok.yaml).
fn pods_capacity(node: &Node, pod: PodRequests) -> Option<usize> {
    let status = node.status.as_ref()?;
    let allocatable = status.allocatable.as_ref().or(status.capacity.as_ref())?;
    let amount = |name: &str| quantity(&allocatable.get(name)?.0);
    let pods = amount("pods")?;
    let by_cpu = amount("cpu")? / pod.cpu;
    let by_memory = amount("memory")? / pod.memory;
    // Truncation is the point: a part of a pod does not fit.
    Some(pods.min(by_cpu).min(by_memory).floor() as usize)
}

/// A Kubernetes quantity in its base unit: `110`, `1k` (the canonical form of 1000), `250m`,
/// `512Mi`, `1.5Gi`.
pub fn quantity(text: &str) -> Option<f64> {
    let number = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let factor = match &text[number.len()..] {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value = number.parse::<f64>().ok()? * factor;
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// Creates the nodes `bench-node-<first>..<first+count>`, labelled with the run's id; the names
/// created are pushed to `created` as they are (for the clean-up, should a later one fail).
pub async fn create(
    client: &Client,
    run_id: &str,
    range: std::ops::Range<usize>,
    created: &mut Vec<String>,
) -> Result<()> {
    let api = Api::<Node>::all(client.clone());
    for i in range {
        let name = node_name(i);
        match api
            .create(&PostParams::default(), &node(&name, run_id)?)
            .await
        {
            Ok(_) => created.push(name),
            Err(kube::Error::Api(status)) if status.code == 409 => bail!(
                "node {name} already exists: another bench runs, or an earlier one left it \
                 (remove it with `kubectl delete node -l {RUN_LABEL}`)"
            ),
            Err(e) => return Err(e).with_context(|| format!("create node {name}")),
        }
    }
    Ok(())
}

/// Waits (through a watch) until every node of `names` is Ready; returns how many pods asking
/// `pod` each takes (the smallest number).
pub async fn wait_ready(
    client: &Client,
    run_id: &str,
    names: &[String],
    pod: PodRequests,
    timeout: Duration,
) -> Result<usize> {
    let api = Api::<Node>::all(client.clone());
    let config = watcher::Config::default().labels(&format!("{RUN_LABEL}={run_id}"));
    let mut pending: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut capacity = usize::MAX;
    let mut nodes = std::pin::pin!(watcher(api, config).default_backoff().applied_objects());
    let deadline = tokio::time::Instant::now() + timeout;
    while !pending.is_empty() {
        let next = tokio::time::timeout_at(deadline, nodes.try_next()).await;
        let Ok(next) = next else {
            bail!(
                "{} of {} bench nodes still not Ready after {timeout:?}: {pending:?}",
                pending.len(),
                names.len()
            );
        };
        let Some(node) = next.context("watch the bench nodes")? else {
            bail!("the watch of the bench nodes ended");
        };
        if is_ready(&node) && pending.remove(node.name_any().as_str()) {
            capacity = capacity.min(pods_capacity(&node, pod).with_context(|| {
                format!(
                    "node {} is Ready without allocatable pods, cpu and memory",
                    node.name_any()
                )
            })?);
        }
    }
    Ok(capacity)
}

/// Deletes the nodes of this run (found by label, so also those a failed create left) and
/// waits (through watches) until they are gone; returns how many there were.
pub async fn remove(client: &Client, run_id: &str, timeout: Duration) -> Result<usize> {
    let api = Api::<Node>::all(client.clone());
    let list = ListParams::default().labels(&format!("{RUN_LABEL}={run_id}"));
    let nodes: Vec<(String, String)> = api
        .list_metadata(&list)
        .await
        .context("list the bench nodes")?
        .items
        .iter()
        .map(|n| (n.name_any(), n.uid().unwrap_or_default()))
        .collect();
    for (name, _) in &nodes {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("delete node {name}")),
        }
    }
    let gone = futures::future::try_join_all(
        nodes
            .iter()
            .map(|(name, uid)| await_condition(api.clone(), name, conditions::is_deleted(uid))),
    );
    match tokio::time::timeout(timeout, gone).await {
        Ok(result) => {
            result.context("watch the bench nodes")?;
            Ok(nodes.len())
        }
        Err(_) => bail!(
            "bench nodes still there after {timeout:?}: {}",
            api.list_metadata(&list)
                .await
                .map(|l| l.items.len().to_string())
                .unwrap_or_else(|e| format!("? ({e})"))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn reads_quantities() {
        assert_eq!(quantity("110"), Some(110.0));
        assert_eq!(quantity("1k"), Some(1000.0));
        assert_eq!(quantity("250m"), Some(0.25));
        assert_eq!(quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1.5Gi"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("2Qi"), None);
        assert_eq!(quantity("-1"), None);
    }
}
