//! The operators' Helm charts (issue 8): `helm lint --strict`, what `helm template` renders in
//! both RBAC modes, installs into the local plane with Pods Ready under kwok in a namespace that
//! enforces Pod Security `restricted`, and the CRD upgrade story: `helm upgrade` and
//! `helm uninstall` leave the CRD, the custom resources, PVCs and Secrets in place.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"` for the pinned helm). The
//! project's CRDs are shared with tests running in parallel: no test here deletes one.

use std::time::Duration;

use e2e::charts::{Release, chart_dir, granted, template};
use e2e::operators::install_crds;
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];
const TIMEOUT: Duration = Duration::from_secs(120);

fn kinds(documents: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    kinds.sort();
    kinds
}

fn find<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

/// `helm template` that must fail; returns its error output.
async fn template_fails(operator: &str, values: &[&str]) -> String {
    let mut args = vec![
        "template".to_owned(),
        "r".to_owned(),
        chart_dir(operator).display().to_string(),
    ];
    for value in values {
        args.extend(["--set".to_owned(), (*value).to_owned()]);
    }
    let output = tokio::process::Command::new("helm")
        .args(&args)
        .output()
        .await
        .expect("run helm");
    assert!(
        !output.status.success(),
        "helm {} should fail",
        args.join(" ")
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn every_chart_lints_strictly_in_both_rbac_modes() {
    for operator in OPERATORS {
        let chart = chart_dir(operator).display().to_string();
        for extra in [
            &[][..],
            &[
                "--set",
                "rbac.namespaced=true",
                "--set",
                "watchNamespace=matrix",
            ][..],
            &[
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "replicaCount=2",
            ][..],
        ] {
            let mut args = vec!["lint", "--strict", chart.as_str()];
            args.extend(extra);
            let out = e2e::run("helm", &args).await;
            assert!(
                out.contains("1 chart(s) linted, 0 chart(s) failed"),
                "{out}"
            );
            assert!(!out.contains("[WARNING]"), "{out}");
        }
    }
}

#[tokio::test]
async fn templates_render_each_mode_and_refuse_contradictions() {
    for operator in OPERATORS {
        let all = template(operator, "r", "ops", &[]).await;
        assert_eq!(
            kinds(&all),
            [
                "ClusterRole",
                "ClusterRole",
                "ClusterRole",
                "ClusterRoleBinding",
                "CustomResourceDefinition",
                "Deployment",
                "Role",
                "RoleBinding",
                "Service",
                "ServiceAccount"
            ],
            "{operator}"
        );
        check_cluster_roles(operator, &all);
        let crd = find(&all, "CustomResourceDefinition")[0];
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{operator}: the CRD outlives the release"
        );
        // The only namespaced Role is the Lease's, in the release namespace.
        let lease_role = find(&all, "Role")[0];
        assert_eq!(lease_role["metadata"]["namespace"], "ops");
        assert!(
            lease_role["rules"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["resources"] == json!(["leases"])),
            "{operator}: {lease_role:#}"
        );

        let deployment = find(&all, "Deployment")[0];
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(
            container["image"],
            format!("ghcr.io/synapse-operators/{operator}:0.1.0")
        );
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"],
            json!(["ALL"])
        );
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for expected in [
            "--namespace=",
            "--leader-elect=true",
            "--leader-election-namespace=ops",
            "--log-format=json",
        ] {
            assert!(args.contains(&expected), "{operator}: {args:?}");
        }

        let namespaced = template(
            operator,
            "r",
            "ops",
            &[
                ("rbac.namespaced", "true"),
                ("watchNamespace", "matrix"),
                ("crds.install", "false"),
                ("metrics.serviceMonitor.enabled", "true"),
                ("logging.format", "text"),
            ],
        )
        .await;
        assert_eq!(
            kinds(&namespaced),
            [
                "Deployment",
                "Role",
                "Role",
                "RoleBinding",
                "RoleBinding",
                "Service",
                "ServiceAccount",
                "ServiceMonitor"
            ],
            "{operator}"
        );
        assert!(
            !granted(&namespaced)
                .iter()
                .any(|(_, resource, _)| resource == "referencegrants"),
            "{operator}: installed for one namespace, it reads no ReferenceGrant"
        );
        let roles = find(&namespaced, "Role");
        let namespaces: Vec<&Value> = roles.iter().map(|r| &r["metadata"]["namespace"]).collect();
        assert_eq!(namespaces, [&json!("matrix"), &json!("ops")], "{operator}");
        let args = &find(&namespaced, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
            ["args"];
        assert!(
            args.as_array()
                .unwrap()
                .contains(&json!("--namespace=matrix"))
                && args
                    .as_array()
                    .unwrap()
                    .contains(&json!("--log-format=text")),
            "{args}"
        );

        let refused = template_fails(operator, &["rbac.namespaced=true"]).await;
        assert!(refused.contains("watchNamespace"), "{refused}");
        let refused = template_fails(
            operator,
            &["replicaCount=2", "leaderElection.enabled=false"],
        )
        .await;
        assert!(refused.contains("leaderElection.enabled"), "{refused}");
        let refused = template_fails(operator, &["logging.format=xml"]).await;
        assert!(refused.contains("logging"), "{refused}");
    }
}

/// Installed for all namespaces: the operator's ClusterRole lets it check ReferenceGrants, and
/// two more join the built-in roles: editors manage the kind (never its status), viewers read it.
fn check_cluster_roles(operator: &str, all: &[Value]) {
    let cluster_roles = find(all, "ClusterRole");
    let grants = granted(all);
    for verb in ["list", "watch"] {
        let rule = (
            "gateway.networking.k8s.io".into(),
            "referencegrants".into(),
            verb.into(),
        );
        assert!(grants.contains(&rule), "{operator}: {grants:?}");
    }
    let aggregated = |label: &str| -> Vec<&Value> {
        cluster_roles
            .iter()
            .copied()
            .filter(|r| r["metadata"]["labels"][label] == "true")
            .collect()
    };
    let edit = aggregated("rbac.authorization.k8s.io/aggregate-to-edit");
    let view = aggregated("rbac.authorization.k8s.io/aggregate-to-view");
    assert_eq!(
        (edit.len(), view.len()),
        (1, 1),
        "{operator}: {cluster_roles:#?}"
    );
    assert_eq!(
        edit[0]["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
        "true"
    );
    let kind = match operator {
        "synapse-operator" => "synapses",
        "heisenbridge-operator" => "heisenbridges",
        _ => "mautrixsignals",
    };
    assert_eq!(
        edit[0]["rules"][0]["resources"],
        json!([kind]),
        "{operator}"
    );
    assert!(
        edit[0]["rules"][0]["verbs"]
            .as_array()
            .unwrap()
            .contains(&json!("create"))
    );
    assert_eq!(
        view[0]["rules"][0]["verbs"],
        json!(["get", "list", "watch"])
    );
}

#[tokio::test]
async fn the_synapse_chart_needs_no_bridge_kind() {
    // Its only CRD is the Synapse's, and no rule names a bridge kind (the Synapse CRD's own
    // status describes bridges, so the text as a whole does mention them).
    for values in [
        &[][..],
        &[("rbac.namespaced", "true"), ("watchNamespace", "m")][..],
    ] {
        let rendered = template("synapse-operator", "r", "ops", values).await;
        let crds: Vec<&Value> = find(&rendered, "CustomResourceDefinition")
            .iter()
            .map(|c| &c["metadata"]["name"])
            .collect();
        assert!(
            crds.is_empty() || crds == [&json!("synapses.synapse.opdev.io")],
            "{crds:?}"
        );
        for (_, resource, _) in granted(&rendered) {
            assert!(
                !resource.starts_with("heisenbridges") && !resource.starts_with("mautrixsignals"),
                "the synapse-operator chart grants access to {resource}"
            );
        }
    }
}

async fn restricted_namespace(client: &kube::Client, prefix: &str) -> TestNamespace {
    TestNamespace::create(
        client,
        prefix,
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await
}

async fn wait_available(client: &kube::Client, namespace: &str, name: &str, replicas: i32) {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    wait_for(TIMEOUT, &format!("Deployment {name} available"), || async {
        let status = api.get(name).await.ok()?.status?;
        (status.ready_replicas == Some(replicas) && status.updated_replicas == Some(replicas))
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn each_chart_installs_with_ready_pods_in_both_rbac_modes() {
    let client = e2e::client().await;
    install_crds(&client).await;
    let ns = restricted_namespace(&client, "chart-install").await;
    for operator in OPERATORS {
        // Cluster mode (ClusterRole named after the release, so unique to this namespace), then
        // namespaced mode; the CRDs already exist, identical, from crds/.
        let cluster = Release::install(
            operator,
            &format!("{}-c", ns.name),
            &ns.name,
            &[("crds.install", "false"), ("replicaCount", "2")],
        )
        .await;
        wait_available(&client, &ns.name, &cluster.service_account(), 2).await;
        let namespaced = Release::install(
            operator,
            &format!("{}-n", ns.name),
            &ns.name,
            &[
                ("crds.install", "false"),
                ("rbac.namespaced", "true"),
                ("watchNamespace", &ns.name),
            ],
        )
        .await;
        wait_available(&client, &ns.name, &namespaced.service_account(), 1).await;
        cluster.uninstall().await;
        namespaced.uninstall().await;
    }
    ns.delete().await;
}

fn synapse_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "synapse.opdev.io",
        "v1alpha1",
        "Synapse",
    ));
    Api::namespaced_with(client.clone(), namespace, &resource)
}

#[tokio::test]
async fn upgrade_and_uninstall_keep_the_crd_the_resources_and_the_data() {
    let client = e2e::client().await;
    install_crds(&client).await;
    let ns = restricted_namespace(&client, "chart-keep").await;
    // The CRD exists already (crds/, shared with other tests): the release takes it over, as a
    // user moving from `kubectl apply -f crds/` to the chart would.
    let release = Release {
        name: format!("{}-keep", ns.name),
        namespace: ns.name.clone(),
        operator: "synapse-operator".to_owned(),
    };
    release
        .helm(
            "install",
            &[("watchNamespace", &ns.name)],
            &["--take-ownership"],
        )
        .await;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let crd = crds
        .get("synapses.synapse.opdev.io")
        .await
        .expect("the CRD");
    let annotations = crd.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("meta.helm.sh/release-name"),
        Some(&release.name),
        "the release owns the CRD"
    );
    assert_eq!(
        annotations
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );

    let pp = PostParams::default();
    let synapse: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "kept"},
        "spec": {"homeserver": {"values": {"serverName": "kept.example.org", "reportStats": false}}},
    }))
    .expect("a Synapse");
    synapse_api(&client, &ns.name)
        .create(&pp, &synapse)
        .await
        .expect("create a Synapse");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "kept-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("a PVC");
    ns.api::<PersistentVolumeClaim>()
        .create(&pp, &claim)
        .await
        .expect("create a PVC");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "kept-secrets"},
        "stringData": {"signing.key": "not a real key"},
    }))
    .expect("a Secret");
    ns.api::<Secret>()
        .create(&pp, &secret)
        .await
        .expect("create a Secret");

    let assert_kept = |when: &'static str| {
        let (client, ns_name, crds) = (client.clone(), ns.name.clone(), crds.clone());
        async move {
            crds.get("synapses.synapse.opdev.io")
                .await
                .unwrap_or_else(|e| panic!("the CRD is gone after {when}: {e}"));
            synapse_api(&client, &ns_name)
                .get("kept")
                .await
                .unwrap_or_else(|e| panic!("the Synapse is gone after {when}: {e}"));
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns_name)
                .get("kept-data")
                .await
                .unwrap_or_else(|e| panic!("the PVC is gone after {when}: {e}"));
            Api::<Secret>::namespaced(client.clone(), &ns_name)
                .get("kept-secrets")
                .await
                .unwrap_or_else(|e| panic!("the Secret is gone after {when}: {e}"));
        }
    };

    release
        .helm(
            "upgrade",
            &[
                ("watchNamespace", &ns.name),
                ("replicaCount", "2"),
                ("logging.level", "debug"),
            ],
            &["--take-ownership"],
        )
        .await;
    wait_available(&client, &ns.name, &release.service_account(), 2).await;
    assert_kept("helm upgrade").await;

    release.uninstall().await;
    assert_kept("helm uninstall").await;
    ns.delete().await;
}
