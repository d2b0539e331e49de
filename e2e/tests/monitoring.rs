//! Monitoring proven against a real Prometheus (issue 16). The real synapse-operator,
//! heisenbridge-operator and signal-operator run against the local plane for one namespace with a
//! Synapse (with `spec.metrics.monitor`), a Heisenbridge and a MautrixSignal; the Synapse boots for
//! real in the pod harness. A real Prometheus (`hack/build-tools prometheus`) then runs in the
//! harness's network namespace and scrapes
//!
//! - Synapse, through the port the operator configured, with the scrape configuration the
//!   Prometheus Operator would derive from the ServiceMonitor the operator wrote, and
//! - the three operators, through their charts' ServiceMonitors, the same way,
//!
//! and evaluates the alert rules of the three charts' PrometheusRules. Every rule must evaluate
//! without error, and every expression of every alert rule and dashboard panel (and every
//! dashboard variable's series) must parse; each series selector in it must select data unless
//! its metric is listed in [`ABSENT`] with the reason it cannot exist here, and each dashboard
//! query must return data when its selectors do. An app-service transaction that fails (no bridge
//! pod runs) gives the bridge-side metrics data.
//!
//! The ServiceMonitor, the PodMonitor it is switched to, and the PrometheusRules and
//! ServiceMonitors of the charts are accepted by the real API server with the Prometheus
//! Operator's CRDs (`hack/cluster` installs them). Removing `spec.metrics.monitor` deletes the
//! monitor and the `Monitored` condition.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`: helm and prometheus on
//! PATH), root and `hack/python-env`.

#[allow(dead_code)]
mod synapse_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use e2e::charts::template;
use e2e::monitoring::{
    OPERATORS, alert_rules, dashboard_queries, dashboards, prometheus_rule, rule_file,
};
use e2e::objects::{condition_state, namespaced};
use e2e::operator_process::OperatorProcess;
use e2e::pod_harness::{Request, Scenario};
use e2e::prometheus::Prometheus;
use e2e::wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use synapse_support::{
    TIMEOUT, boot_synapse, create_synapse, get, patch_spec, restricted_namespace, secret_text,
    start_operator, synapses, wait_synapse,
};

const SYNAPSE: &str = "hs";
const SERVER: &str = "monitor.test";
const PORT: u16 = 8008;
const PROMETHEUS_PORT: u16 = 9090;

/// Metrics that cannot have data in this setup, and why. A selector of any other metric that
/// selects nothing fails the test.
const ABSENT: &[(&str, &str)] = &[
    (
        "matrix_operator_reconciliation_errors_total",
        "no reconciliation fails here, and the family has no series until one does",
    ),
    (
        "synapse_appservice_api_sent_transactions_total",
        "no bridge pod runs here, so no transaction to one succeeds",
    ),
];

fn is_absent_here(metric: &str) -> bool {
    ABSENT.iter().any(|(name, _)| *name == metric)
}

/// What the Prometheus Operator derives from the ServiceMonitor `monitor` for the Service
/// `service`, with the target at `address`, for the pod `pod` (its container `container`): one
/// scrape job per endpoint, its target labels, and the relabelings. Any field this translation
/// does not know fails the test, so nothing the operator or a chart writes goes unchecked.
fn scrape_configs(
    monitor: &Value,
    service: &Service,
    address: SocketAddr,
    pod: &str,
    container: &str,
) -> Vec<Value> {
    let name = monitor["metadata"]["name"].as_str().expect("a name");
    let namespace = monitor["metadata"]["namespace"]
        .as_str()
        .expect("a namespace");
    let spec = monitor["spec"].as_object().expect("a spec");
    for key in spec.keys() {
        assert!(
            ["selector", "endpoints", "namespaceSelector"].contains(&key.as_str()),
            "ServiceMonitor {name}: spec.{key} is not translated"
        );
    }
    let service_labels = service.metadata.labels.clone().unwrap_or_default();
    let selector: BTreeMap<String, String> =
        serde_json::from_value(spec["selector"]["matchLabels"].clone()).expect("matchLabels");
    assert!(
        selector
            .iter()
            .all(|(k, v)| service_labels.get(k) == Some(v)),
        "ServiceMonitor {name} does not select the Service {:?}: {selector:?} vs {service_labels:?}",
        service.metadata.name
    );
    let service_name = service.metadata.name.clone().expect("a Service name");
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    spec["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .enumerate()
        .map(|(index, endpoint)| {
            for key in endpoint.as_object().expect("an endpoint").keys() {
                assert!(
                    ["port", "path", "interval", "relabelings"].contains(&key.as_str()),
                    "ServiceMonitor {name}: endpoints[{index}].{key} is not translated"
                );
            }
            let port = endpoint["port"].as_str().expect("a port name");
            assert!(
                ports.iter().any(|p| p.name.as_deref() == Some(port)),
                "ServiceMonitor {name} scrapes port {port}, which the Service {service_name} lacks"
            );
            let relabel_configs: Vec<Value> = endpoint["relabelings"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    // The CRD defaults `action` to replace, the only one translated.
                    let keys: Vec<_> = r.as_object().expect("a relabeling").keys().collect();
                    let known = ["targetLabel", "replacement", "action"];
                    let replace = r["action"]
                        .as_str()
                        .is_none_or(|a| a.eq_ignore_ascii_case("replace"));
                    assert!(
                        keys.iter().all(|k| known.contains(&k.as_str())) && replace,
                        "ServiceMonitor {name}: relabeling {r} is not translated"
                    );
                    json!({"target_label": r["targetLabel"], "replacement": r["replacement"]})
                })
                .collect();
            let mut job = json!({
                "job_name": format!("serviceMonitor/{namespace}/{name}/{index}"),
                "metrics_path": endpoint["path"].as_str().unwrap_or("/metrics"),
                "static_configs": [{
                    "targets": [address.to_string()],
                    "labels": {
                        "job": service_name, "namespace": namespace, "service": service_name,
                        "pod": pod, "container": container, "endpoint": port,
                    },
                }],
                "relabel_configs": relabel_configs,
            });
            if let Some(interval) = endpoint["interval"].as_str() {
                job["scrape_interval"] = json!(interval);
            }
            job
        })
        .collect()
}

/// The container port named `name` of the Deployment's pod.
fn container_port(deployment: &Deployment, name: &str) -> u16 {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod");
    pod.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or_else(|| panic!("the pod has no port {name}"))
}

/// Applies `object` (rendered YAML as JSON) server-side: the API server validates it against
/// its CRD.
async fn apply(client: &kube::Client, namespace: &str, object: &Value) {
    let kind = object["kind"].as_str().expect("a kind");
    let name = object["metadata"]["name"].as_str().expect("a name");
    let object: DynamicObject = serde_json::from_value(object.clone()).expect("an object");
    namespaced(client, namespace, kind)
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server refused {kind} {name}: {e}"));
}

async fn create(client: &kube::Client, namespace: &str, kind: &str, name: &str, spec: Value) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("an object");
    namespaced(client, namespace, kind)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("create {kind} {name}: {e}"));
}

/// Creates a room as the Heisenbridge's own user: Synapse sends its events to the bridge, whose
/// pod does not run, so the transaction fails.
async fn provoke_app_service_transaction(
    client: &kube::Client,
    namespace: &str,
    synapse: &e2e::pod_harness::PodProcess,
) {
    let secret: Secret = get(client, namespace, "irc-heisenbridge-registration").await;
    let registration: Value = serde_json::from_str(
        &secret_text(&secret)
            .remove("registration.yaml")
            .expect("registration.yaml"),
    )
    .expect("the registration is JSON");
    let token = registration["as_token"].as_str().expect("an as_token");
    let response = synapse
        .http(
            Request::post(PORT, "/_matrix/client/v3/createRoom")
                .header("Authorization", &format!("Bearer {token}"))
                .json(&json!({"name": "monitoring"})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, 200, "createRoom: {}", response.text());
}

/// Whether `expr` returns at least one sample.
async fn has_data(prometheus: &Prometheus<'_>, expr: &str) -> Result<bool, String> {
    let result = prometheus.query(expr).await.map_err(|e| e.to_string())?;
    Ok(result.as_array().is_some_and(|r| !r.is_empty()))
}

/// Checks one expression: it parses; each of its selectors selects data unless its metric is
/// absent here; with `whole`, the expression itself returns data when its selectors do.
async fn check(
    prometheus: &Prometheus<'_>,
    place: &str,
    expr: &str,
    whole: bool,
    problems: &mut Vec<String>,
) {
    let selectors = match prometheus.selectors(expr).await {
        Ok(selectors) => selectors,
        Err(e) => {
            problems.push(format!("{place}: {expr} does not parse: {e}"));
            return;
        }
    };
    let mut complete = true;
    eprintln!("{place}: {expr} ({} selectors)", selectors.len());
    for selector in &selectors {
        if is_absent_here(&selector.metric) {
            complete = false;
            continue;
        }
        match has_data(prometheus, &selector.promql()).await {
            Ok(true) => {}
            Ok(false) => problems.push(format!(
                "{place}: {} selects nothing (in {expr})",
                selector.promql()
            )),
            Err(e) => problems.push(format!("{place}: {}: {e}", selector.promql())),
        }
    }
    if whole && complete {
        match has_data(prometheus, expr).await {
            Ok(true) => {}
            Ok(false) => problems.push(format!("{place}: {expr} returns nothing")),
            Err(e) => problems.push(format!("{place}: {expr}: {e}")),
        }
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_synapse_and_the_operators_and_every_query_works() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    let ns = restricted_namespace(&client, "monitoring").await;
    let namespace = ns.name.clone();
    let _forget = synapse_support::ForgetClaims(namespace.clone());
    let mut operators = vec![start_operator(&namespace, "info", "synapse").await];
    for operator in ["heisenbridge-operator", "signal-operator"] {
        let mut process = OperatorProcess::builder(operator, &namespace)
            .label("bridge")
            .start();
        process.wait_ready(TIMEOUT).await;
        operators.push(process);
    }

    let spec = json!({
        "homeserver": {"values": {"serverName": SERVER, "reportStats": false}},
        "metrics": {"monitor": {
            "kind": "ServiceMonitor", "labels": {"release": "prometheus"}, "interval": "2s",
        }},
    });
    create_synapse(&synapses(&client, &namespace), SYNAPSE, spec).await;
    create(
        &client,
        &namespace,
        "Heisenbridge",
        "irc",
        json!({"synapse": {"name": SYNAPSE}}),
    )
    .await;
    let signal = json!({"synapse": {"name": SYNAPSE}, "admins": [format!("@alice:{SERVER}")]});
    create(&client, &namespace, "MautrixSignal", "signal", signal).await;
    let synapse = wait_synapse(
        &synapses(&client, &namespace),
        SYNAPSE,
        "monitored, running with both bridges registered",
        |s| {
            condition_state(s, "Monitored") == ("True".into(), "MonitorApplied".into())
                && synapse_support::is_running(s)
                && s["status"]["appServices"].as_array().is_some_and(|list| {
                    list.len() == 2 && list.iter().all(|a| a["state"] == "registered")
                })
        },
    )
    .await;
    let metrics_url = format!("http://{SYNAPSE}.{namespace}.svc:9000/_synapse/metrics");
    assert_eq!(synapse["status"]["metricsUrl"], json!(metrics_url));

    // Synapse, for real, and its ServiceMonitor as the Prometheus Operator would read it.
    let mut scenario = Scenario::new("monitoring").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&namespace, SYNAPSE);
    scenario.add_service(&namespace, "irc-heisenbridge");
    scenario.add_service(&namespace, "signal-mautrix-signal");
    let synapse_process = boot_synapse(&scenario, &client, &namespace, SYNAPSE, PORT).await;
    let deployment: Deployment = get(&client, &namespace, SYNAPSE).await;
    let service: Service = get(&client, &namespace, SYNAPSE).await;
    let monitor = serde_json::to_value(
        namespaced(&client, &namespace, "ServiceMonitor")
            .get(SYNAPSE)
            .await
            .expect("the ServiceMonitor"),
    )
    .unwrap();
    let metrics_port = container_port(&deployment, "metrics");
    let address = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let mut jobs = scrape_configs(&monitor, &service, address, "hs-0", "synapse");

    // The operators, through their charts' ServiceMonitors; each reached through a relay from
    // the network namespace to its metrics address on the host.
    let mut relays = Vec::new();
    let mut rule_files = Vec::new();
    for (operator, process) in OPERATORS.iter().zip(&operators) {
        let rendered = template(
            operator,
            "r",
            &namespace,
            &[
                ("metrics.serviceMonitor.enabled", "true"),
                ("metrics.serviceMonitor.interval", "1s"),
                ("crds.install", "false"),
            ],
        )
        .await;
        let find = |kind: &str| {
            rendered
                .iter()
                .find(|d| d["kind"] == kind)
                .unwrap_or_else(|| panic!("{operator}'s chart renders no {kind}"))
                .clone()
        };
        let (monitor, service) = (find("ServiceMonitor"), find("Service"));
        apply(&client, &namespace, &monitor).await;
        let service: Service = serde_json::from_value(service).expect("a Service");
        let target = process.metrics_addr();
        relays.push(
            scenario
                .forward_port(target.port(), target)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        jobs.extend(scrape_configs(
            &monitor,
            &service,
            target,
            &format!("{operator}-0"),
            "operator",
        ));
        let rule = prometheus_rule(operator, &namespace).await;
        apply(&client, &namespace, &rule).await;
        rule_files.push((format!("rules/{operator}.yml"), rule));
    }

    let config = json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files.iter().map(|(name, _)| name).collect::<Vec<_>>(),
        "scrape_configs": jobs,
    });
    let rule_texts: Vec<(String, String)> = rule_files
        .iter()
        .map(|(name, rule)| (name.clone(), rule_file(rule, true)))
        .collect();
    let rule_refs: Vec<(&str, &str)> = rule_texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let prometheus = Prometheus::start(
        scenario.netns(),
        PROMETHEUS_PORT,
        &serde_yaml::to_string(&config).unwrap(),
        &rule_refs,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    prometheus
        .wait_for_scrapes(4, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", prometheus.output()));

    // The bridge side: a failed transaction to the Heisenbridge.
    provoke_app_service_transaction(&client, &namespace, &synapse_process).await;
    wait_for(
        TIMEOUT,
        "a failed app-service transaction in Prometheus",
        || async {
            has_data(
                &prometheus,
                r#"synapse_appservice_api_failed_transactions_total{job="synapse"}"#,
            )
            .await
            .ok()?
            .then_some(())
        },
    )
    .await;
    // A few more scrapes and rule evaluations.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut problems = Vec::new();
    let rules = prometheus.rules().await.unwrap_or_else(|e| panic!("{e}"));
    let evaluated: Vec<&Value> = rules["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect();
    let shipped: usize = rule_files.iter().map(|(_, r)| alert_rules(r).len()).sum();
    assert_eq!(
        evaluated.len(),
        shipped,
        "Prometheus loaded other rules than shipped: {rules:#}"
    );
    for rule in &evaluated {
        if rule["health"] != "ok" {
            problems.push(format!(
                "rule {} evaluates with {}: {}",
                rule["name"], rule["health"], rule["lastError"]
            ));
        }
    }
    for (operator, rule) in &rule_files {
        for alert in alert_rules(rule) {
            let place = format!("{operator} alert {}", alert.alert);
            check(&prometheus, &place, &alert.expr, false, &mut problems).await;
        }
    }
    let all_operators = OPERATORS.join("|");
    let variables = [
        ("namespace", namespace.as_str()),
        ("synapse", SYNAPSE),
        ("operator", all_operators.as_str()),
    ];
    for (file, dashboard) in dashboards() {
        for query in dashboard_queries(&dashboard, &variables) {
            let place = format!("dashboard {file} {}", query.place);
            check(&prometheus, &place, &query.expr, true, &mut problems).await;
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nmetrics scraped: {}",
        problems.len(),
        problems.join("\n"),
        prometheus
            .api("/api/v1/label/__name__/values")
            .await
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
    drop(prometheus);
    drop(relays);
    drop(synapse_process);

    // A PodMonitor instead: the ServiceMonitor goes, the PodMonitor scrapes the pods' port.
    let api = synapses(&client, &namespace);
    patch_spec(
        &api,
        SYNAPSE,
        json!({"metrics": {"monitor": {"kind": "PodMonitor"}}}),
    )
    .await;
    let pod_monitors = namespaced(&client, &namespace, "PodMonitor");
    let service_monitors = namespaced(&client, &namespace, "ServiceMonitor");
    wait_for(
        TIMEOUT,
        "the PodMonitor instead of the ServiceMonitor",
        || async {
            let pod_monitor = pod_monitors.get_opt(SYNAPSE).await.ok()??;
            let gone = service_monitors.get_opt(SYNAPSE).await.ok()?.is_none();
            gone.then_some(pod_monitor)
        },
    )
    .await;
    let pod_monitor = serde_json::to_value(pod_monitors.get(SYNAPSE).await.unwrap()).unwrap();
    let endpoint = &pod_monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], "metrics", "{pod_monitor:#}");
    assert_eq!(
        endpoint["relabelings"][0],
        json!({"action": "replace", "targetLabel": "job", "replacement": "synapse"})
    );

    // No monitor: it is deleted and the condition goes.
    api.patch(
        SYNAPSE,
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([
                {"op": "remove", "path": "/spec/metrics/monitor"}
            ]))
            .unwrap(),
        ),
    )
    .await
    .expect("remove spec.metrics.monitor");
    wait_synapse(&api, SYNAPSE, "without the Monitored condition", |s| {
        condition_state(s, "Monitored") == (String::new(), String::new())
    })
    .await;
    wait_for(TIMEOUT, "the PodMonitor to be deleted", || async {
        pod_monitors
            .get_opt(SYNAPSE)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    for operator in &mut operators {
        operator.assert_running();
    }
    // The bridges go while their operators run: their finalizers need them.
    for (kind, name) in [("Heisenbridge", "irc"), ("MautrixSignal", "signal")] {
        let bridges = namespaced(&client, &namespace, kind);
        bridges
            .delete(name, &kube::api::DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {kind} {name}: {e}"));
        wait_for(TIMEOUT, &format!("{kind} {name} to be gone"), || async {
            bridges.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }
    ns.delete().await;
    drop(operators);
}
