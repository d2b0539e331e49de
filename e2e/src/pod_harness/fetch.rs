//! Reading a pod and what it references through the Kubernetes API.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, PostParams};

use super::Error;
use super::plan::{References, Sources};

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error::Kube { what, source }
}

/// Fetches every object `refs` names; absent ones stay absent (the planner decides whether
/// that is an error), and one projected token is requested per distinct token source.
pub async fn sources(
    client: &kube::Client,
    pod: &Pod,
    refs: &References,
) -> Result<Sources, Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    let mut out = Sources::default();
    for name in &refs.config_maps {
        if let Some(cm) = config_maps
            .get_opt(name)
            .await
            .map_err(kube_err(format!("get configmap {namespace}/{name}")))?
        {
            out.config_maps.insert(name.clone(), cm);
        }
    }
    for name in &refs.secrets {
        if let Some(secret) = secrets
            .get_opt(name)
            .await
            .map_err(kube_err(format!("get secret {namespace}/{name}")))?
        {
            out.secrets.insert(name.clone(), secret);
        }
    }
    for name in &refs.claims {
        if let Some(claim) = claims.get_opt(name).await.map_err(kube_err(format!(
            "get persistentvolumeclaim {namespace}/{name}"
        )))? {
            out.claims.insert(name.clone(), claim);
        }
    }
    for key in &refs.tokens {
        // As the kubelet does: bound to the pod, the API server's audience when none is named.
        let request = TokenRequest {
            metadata: ObjectMeta::default(),
            spec: TokenRequestSpec {
                audiences: key.audience.iter().cloned().collect(),
                expiration_seconds: Some(key.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            status: None,
        };
        let what = format!(
            "request a token for serviceaccount {namespace}/{}",
            key.service_account
        );
        let response = accounts
            .create_token_request(&key.service_account, &PostParams::default(), &request)
            .await
            .map_err(kube_err(what.clone()))?;
        let token = response
            .status
            .map(|s| s.token)
            .ok_or_else(|| Error::Setup(format!("{what}: the answer has no token")))?;
        out.tokens.insert(key.clone(), token);
    }
    Ok(out)
}

pub async fn pod(client: &kube::Client, namespace: &str, name: &str) -> Result<Pod, Error> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(kube_err(format!("get pod {namespace}/{name}")))
}

fn controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The ready pod of the Deployment's newest ReplicaSet, waiting up to `timeout` for one.
pub async fn deployment_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Pod, Error> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let start = Instant::now();
    loop {
        let seen = match deployments
            .get_opt(name)
            .await
            .map_err(kube_err(format!("get deployment {namespace}/{name}")))?
        {
            None => "the deployment does not exist".to_string(),
            Some(deployment) => {
                let uid = deployment.metadata.uid.unwrap_or_default();
                let newest = sets
                    .list(&ListParams::default())
                    .await
                    .map_err(kube_err(format!("list replicasets in {namespace}")))?
                    .items
                    .into_iter()
                    .filter(|rs| controlled_by(&rs.metadata, &uid))
                    .max_by_key(|rs| {
                        rs.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                            .and_then(|r| r.parse::<u64>().ok())
                            .unwrap_or(0)
                    });
                match newest {
                    None => "no replicaset yet".to_string(),
                    Some(rs) => {
                        let rs_uid = rs.metadata.uid.clone().unwrap_or_default();
                        let rs_name = rs.metadata.name.clone().unwrap_or_default();
                        let owned: Vec<Pod> = pods
                            .list(&ListParams::default())
                            .await
                            .map_err(kube_err(format!("list pods in {namespace}")))?
                            .items
                            .into_iter()
                            .filter(|p| {
                                controlled_by(&p.metadata, &rs_uid)
                                    && p.metadata.deletion_timestamp.is_none()
                            })
                            .collect();
                        let ready = owned
                            .iter()
                            .filter(|p| is_ready(p))
                            .max_by_key(|p| p.metadata.creation_timestamp.clone());
                        if let Some(pod) = ready {
                            return Ok(pod.clone());
                        }
                        let states: Vec<_> = owned
                            .iter()
                            .map(|p| {
                                format!(
                                    "{} ({})",
                                    p.metadata.name.as_deref().unwrap_or_default(),
                                    p.status
                                        .as_ref()
                                        .and_then(|s| s.phase.as_deref())
                                        .unwrap_or("no phase")
                                )
                            })
                            .collect();
                        format!(
                            "replicaset {rs_name} has no ready pod (pods: {})",
                            if states.is_empty() {
                                "none".to_string()
                            } else {
                                states.join(", ")
                            }
                        )
                    }
                }
            }
        };
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("a ready pod of deployment {namespace}/{name}"),
                after: timeout,
                context: format!("; last seen: {seen}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The running pod of the Job `job`, waiting up to `timeout` for one.
pub async fn job_pod(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    timeout: Duration,
) -> Result<Pod, Error> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let start = Instant::now();
    loop {
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err(format!("list the pods of job {namespace}/{job}")))?;
        let running = listed.items.into_iter().find(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        });
        if let Some(pod) = running {
            return Ok(pod);
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!("a running pod of job {namespace}/{job}"),
                after: timeout,
                context: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
