//! Smoke test of the local control plane (`hack/cluster`): the behaviour every operator test
//! relies on. Each test works in a namespace of its own, so they run in parallel.

use std::time::Duration;

use e2e::{TestNamespace, client, pinned_version, repo_root, run, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

fn from_json<T: k8s_openapi::serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("test object matches its Kubernetes type")
}

#[tokio::test]
async fn server_and_clients_report_the_pinned_versions() {
    let kubernetes = pinned_version("KUBERNETES_VERSION");
    let info = client()
        .await
        .apiserver_version()
        .await
        .expect("GET /version");
    assert_eq!(info.git_version, kubernetes, "apiserver /version");

    let versions: serde_json::Value =
        serde_json::from_str(&run("kubectl", &["version", "-o", "json"]).await)
            .expect("kubectl version prints JSON");
    assert_eq!(versions["clientVersion"]["gitVersion"], kubernetes.as_str());
    assert_eq!(versions["serverVersion"]["gitVersion"], kubernetes.as_str());

    let helm = run("helm", &["version", "--template", "{{.Version}}"]).await;
    assert_eq!(helm, pinned_version("HELM_VERSION"), "helm on PATH");
}

/// The Gateway API's standard channel at the pinned release, cert-manager's CRDs and the
/// Prometheus Operator's monitoring CRDs at the pinned release are installed and served, as in a
/// cluster that has them.
#[tokio::test]
async fn the_gateway_api_cert_manager_and_prometheus_operator_crds_are_served() {
    let crds = Api::<CustomResourceDefinition>::all(client().await);
    let established = |crd: &CustomResourceDefinition| {
        crd.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
    };
    for name in [
        "referencegrants.gateway.networking.k8s.io",
        "httproutes.gateway.networking.k8s.io",
        "gateways.gateway.networking.k8s.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let annotations = crd.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.get("gateway.networking.k8s.io/bundle-version"),
            Some(&pinned_version("GATEWAY_API_VERSION")),
            "{name}"
        );
        assert_eq!(
            annotations
                .get("gateway.networking.k8s.io/channel")
                .map(String::as_str),
            Some("standard")
        );
        assert!(established(&crd), "{name} is not established");
    }
    for name in [
        "certificates.cert-manager.io",
        "clusterissuers.cert-manager.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(established(&crd), "{name} is not established");
    }
    let prometheus_operator = pinned_version("PROMETHEUS_OPERATOR_VERSION");
    for name in [
        "servicemonitors.monitoring.coreos.com",
        "podmonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let annotations = crd.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations
                .get("operator.prometheus.io/version")
                .map(String::as_str),
            prometheus_operator.strip_prefix('v'),
            "{name}"
        );
        assert!(established(&crd), "{name} is not established");
    }
}

#[tokio::test]
async fn the_kwok_node_is_ready_on_loopback() {
    let node = Api::<Node>::all(client().await)
        .get("kwok-node-0")
        .await
        .expect("the plane has the node kwok-node-0");
    let status = node.status.expect("node status");
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("a Ready condition");
    assert_eq!(ready.status, "True");
    let internal: Vec<String> = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address)
        .collect();
    assert_eq!(internal, ["127.0.0.1"]);
}

#[tokio::test]
async fn deployment_with_a_claim_becomes_ready_and_is_garbage_collected() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "smoke-deploy", &[]).await;
    let claims: Api<PersistentVolumeClaim> = ns.api();
    let deployments: Api<Deployment> = ns.api();
    let replica_sets: Api<ReplicaSet> = ns.api();
    let pods: Api<Pod> = ns.api();
    let volumes = Api::<PersistentVolume>::all(client.clone());
    let pp = PostParams::default();

    // No storageClassName: the default StorageClass must provision it.
    let claim = from_json(json!({
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}
        }
    }));
    claims.create(&pp, &claim).await.expect("create the claim");
    let deployment = from_json(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "example.invalid/web:1",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
                }
            }
        }
    }));
    let deployment = deployments
        .create(&pp, &deployment)
        .await
        .expect("create the deployment");

    let volume_name = wait_for(TIMEOUT, "the claim to be Bound", || async {
        let claim = claims.get("data").await.ok()?;
        let bound = claim.status?.phase.as_deref() == Some("Bound");
        bound.then_some(claim.spec?.volume_name?)
    })
    .await;
    let volume = volumes.get(&volume_name).await.expect("the bound volume");
    assert_eq!(
        volume.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("kwok-volume")
    );
    assert_eq!(
        volume.status.as_ref().unwrap().phase.as_deref(),
        Some("Bound")
    );

    wait_for(TIMEOUT, "2 ready replicas", || async {
        let status = deployments.get("web").await.ok()?.status?;
        (status.ready_replicas == Some(2) && status.available_replicas == Some(2)).then_some(())
    })
    .await;
    let running = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list pods");
    assert_eq!(running.items.len(), 2);
    for pod in &running.items {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.host_ip.as_deref(), Some("127.0.0.1"));
    }
    let owned = replica_sets
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list replica sets");
    assert_eq!(owned.items.len(), 1);
    let owner = &owned.items[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.uid, deployment.metadata.uid.clone().unwrap());

    // Background propagation: the garbage collector, not the client, removes the dependents.
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete the deployment");
    wait_for(
        TIMEOUT,
        "the replica set and pods to be collected",
        || async {
            let sets = replica_sets.list(&ListParams::default()).await.ok()?;
            let left = pods.list(&ListParams::default()).await.ok()?;
            (sets.items.is_empty() && left.items.is_empty()).then_some(())
        },
    )
    .await;

    // Released volumes of the fake class are deleted, like a real provisioner's.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete the claim");
    wait_for(TIMEOUT, "the volume to be deleted", || async {
        volumes
            .get_opt(&volume_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn job_pods_complete() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "smoke-job", &[]).await;
    let jobs: Api<Job> = ns.api();
    let job = from_json(json!({
        "metadata": {"name": "once"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "once", "image": "example.invalid/once:1"}]
                }
            }
        }
    }));
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("create the job");
    wait_for(TIMEOUT, "the job to complete", || async {
        let status = jobs.get("once").await.ok()?.status?;
        let complete = status
            .conditions?
            .iter()
            .any(|c| c.type_ == "Complete" && c.status == "True");
        (complete && status.succeeded == Some(1)).then_some(())
    })
    .await;
    ns.delete().await;
}

#[tokio::test]
async fn pod_security_rejects_a_privileged_pod_in_a_restricted_namespace() {
    let client = client().await;
    let restricted = TestNamespace::create(
        &client,
        "smoke-restricted",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await;
    let open = TestNamespace::create(&client, "smoke-open", &[]).await;
    let pp = PostParams::default();
    let privileged: Pod = from_json(json!({
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [{
                "name": "c",
                "image": "example.invalid/c:1",
                "securityContext": {"privileged": true}
            }]
        }
    }));

    match restricted.api::<Pod>().create(&pp, &privileged).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert_eq!(status.reason, "Forbidden", "{status:?}");
            assert!(
                status
                    .message
                    .contains(r#"violates PodSecurity "restricted:latest""#)
                    && status.message.contains("privileged"),
                "unexpected message: {}",
                status.message
            );
        }
        other => panic!("a privileged pod in a restricted namespace must be Forbidden: {other:?}"),
    }

    // The same pod is fine without the label, and a compliant pod is fine with it: the
    // rejection above is the policy's doing.
    open.api::<Pod>()
        .create(&pp, &privileged)
        .await
        .expect("a privileged pod is admitted where no policy is enforced");
    let compliant: Pod = from_json(json!({
        "metadata": {"name": "compliant"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "c",
                "image": "example.invalid/c:1",
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}
                }
            }]
        }
    }));
    restricted
        .api::<Pod>()
        .create(&pp, &compliant)
        .await
        .expect("a compliant pod is admitted in a restricted namespace");
    restricted.delete().await;
    open.delete().await;
}

#[tokio::test]
async fn helm_installs_and_uninstalls_a_chart() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "smoke-helm", &[]).await;
    let chart = repo_root().join("e2e/testdata/smoke-chart");
    let chart = chart.to_str().expect("UTF-8 repository path");
    let namespace = ns.name.as_str();

    run(
        "helm",
        &[
            "install",
            "smoke",
            chart,
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "90s",
        ],
    )
    .await;
    let releases: serde_json::Value =
        serde_json::from_str(&run("helm", &["list", "--namespace", namespace, "-o", "json"]).await)
            .expect("helm list prints JSON");
    assert_eq!(releases.as_array().map(Vec::len), Some(1), "{releases}");
    assert_eq!(releases[0]["name"], "smoke");
    assert_eq!(releases[0]["status"], "deployed");

    let info = ns
        .api::<ConfigMap>()
        .get("smoke-info")
        .await
        .expect("the chart's ConfigMap");
    let data = info.data.expect("ConfigMap data");
    assert_eq!(data["kubeVersion"], pinned_version("KUBERNETES_VERSION"));
    let web = ns
        .api::<Deployment>()
        .get("smoke-web")
        .await
        .expect("the chart's Deployment");
    assert_eq!(web.status.and_then(|s| s.ready_replicas), Some(1));

    run(
        "helm",
        &[
            "uninstall",
            "smoke",
            "--namespace",
            namespace,
            "--wait",
            "--timeout",
            "90s",
        ],
    )
    .await;
    let releases: serde_json::Value =
        serde_json::from_str(&run("helm", &["list", "--namespace", namespace, "-o", "json"]).await)
            .expect("helm list prints JSON");
    assert_eq!(releases, json!([]));
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("smoke-info")
            .await
            .expect("get the ConfigMap")
            .is_none()
    );
    ns.delete().await;
}
