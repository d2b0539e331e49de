//! The tests' Prometheus helper (`e2e::prometheus`) for real: the pinned Prometheus built by
//! `hack/build-tools`, found on the `PATH` `hack/cluster env` sets, in a scenario's network
//! namespace scraping itself and evaluating a rule file; its query, parse_query, rules and
//! targets APIs as the helper reads them; promtool checking and unit-testing the rule file on the
//! host. Needs root and the built tools, not the plane; nothing leaves the namespace. Nothing
//! skips: without the binaries the test fails naming `hack/build-tools`.

use std::time::Duration;

use e2e::pod_harness::Scenario;
use e2e::prometheus::{self, Error, Prometheus, Selector};
use serde_json::Value;

const PORT: u16 = 19090;
const TIMEOUT: Duration = Duration::from_secs(30);

const RULES: &str = r#"groups:
  - name: e2e
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: PrometheusDown
        expr: up{job="prometheus"} == 0
        for: 1m
        labels:
          severity: critical
"#;

/// A promtool unit test of the rule file: a minute of failed scrapes fires the alert.
const RULES_TEST: &str = r#"rule_files:
  - e2e.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="prometheus", instance="127.0.0.1:19090"}'
        values: '1 0 0 0'
    alert_rule_test:
      - eval_time: 1m
        alertname: PrometheusDown
        exp_alerts: []
      - eval_time: 3m
        alertname: PrometheusDown
        exp_alerts:
          - exp_labels:
              severity: critical
              job: prometheus
              instance: 127.0.0.1:19090
    promql_expr_test:
      - expr: job:up:sum
        eval_time: 0m
        exp_samples:
          - labels: 'job:up:sum{job="prometheus"}'
            value: 1
"#;

fn config() -> String {
    format!(
        "global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - rules/e2e.yml
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{PORT}']
"
    )
}

/// The value of a one-sample vector result, if it has exactly one sample.
fn single_value(result: &Value) -> Option<&str> {
    match result.as_array().map(Vec::as_slice) {
        Some([sample]) => sample["value"][1].as_str(),
        _ => None,
    }
}

/// The rule named `name` in the answer of `/api/v1/rules`.
fn rule<'a>(rules: &'a Value, name: &str) -> Option<&'a Value> {
    rules["groups"]
        .as_array()?
        .iter()
        .flat_map(|group| group["rules"].as_array().into_iter().flatten())
        .find(|rule| rule["name"] == name)
}

#[tokio::test]
async fn prometheus_scrapes_itself_evaluates_rules_and_parses_queries() {
    let scenario = Scenario::new("prometheus-tool").unwrap_or_else(|e| panic!("{e}"));
    let prom = Prometheus::start(
        scenario.netns(),
        PORT,
        &config(),
        &[("rules/e2e.yml", RULES), ("rules/e2e_test.yml", RULES_TEST)],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Scraping itself inside the namespace.
    let targets = prom
        .wait_for_scrapes(1, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(
        targets[0]["scrapeUrl"],
        format!("http://127.0.0.1:{PORT}/metrics"),
        "{targets:?}"
    );
    e2e::wait_for(TIMEOUT, "up{job=\"prometheus\"} to be 1", || async {
        let result = prom.query(r#"up{job="prometheus"}"#).await.ok()?;
        (single_value(&result) == Some("1")).then_some(())
    })
    .await;

    // Selectors as Prometheus parses them, each queryable on its own.
    let selectors = prom
        .selectors(r#"sum(rate(prometheus_http_requests_total{handler="/api/v1/query"}[1m])) / up"#)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        Selector {
            metric: "prometheus_http_requests_total".into(),
            matchers: vec![("handler".into(), "=".into(), "/api/v1/query".into())],
        },
        Selector {
            metric: "up".into(),
            matchers: vec![],
        },
    ];
    assert_eq!(selectors, expected);
    assert_eq!(
        selectors.iter().map(Selector::promql).collect::<Vec<_>>(),
        [
            r#"prometheus_http_requests_total{handler="/api/v1/query"}"#,
            "up"
        ]
    );
    for selector in &selectors {
        let result = prom
            .query(&selector.promql())
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        // The queries above have been counted; `up` has the one target.
        assert_eq!(
            result.as_array().map(Vec::len),
            Some(1),
            "{selector}: {result}"
        );
    }

    // A bad expression is Prometheus's parse error, from either endpoint.
    for bad in [
        prom.query("sum(rate(up[1m])").await,
        prom.selectors("sum(rate(up[1m])")
            .await
            .map(|_| Value::Null),
    ] {
        let e = bad.expect_err("an unclosed parenthesis is refused");
        assert!(
            matches!(&e, Error::Api { status: 400, error_type, .. } if error_type == "bad_data"),
            "{e:?}"
        );
        let message = e.api_message().unwrap_or_default();
        assert!(
            message.contains("parse error") && message.contains("unclosed left parenthesis"),
            "{e}"
        );
    }

    // The rules are loaded from the file the configuration names and evaluate cleanly; the
    // recording rule's series is there.
    let rules = e2e::wait_for(TIMEOUT, "the rules to be evaluated", || async {
        let rules = prom.rules().await.ok()?;
        let healthy = ["job:up:sum", "PrometheusDown"]
            .iter()
            .all(|name| rule(&rules, name).is_some_and(|r| r["health"] == "ok"));
        healthy.then_some(rules)
    })
    .await;
    let recording = rule(&rules, "job:up:sum").expect("the recording rule");
    assert_eq!(recording["type"], "recording", "{recording}");
    assert_eq!(recording["query"], "sum by (job) (up)", "{recording}");
    let group = &rules["groups"][0];
    assert_eq!(
        group["file"],
        prom.dir().join("rules/e2e.yml").display().to_string(),
        "{group}"
    );
    let alert = rule(&rules, "PrometheusDown").expect("the alerting rule");
    assert_eq!(alert["state"], "inactive", "{alert}");
    e2e::wait_for(
        TIMEOUT,
        "job:up:sum{job=\"prometheus\"} to be 1",
        || async {
            let result = prom.query(r#"job:up:sum{job="prometheus"}"#).await.ok()?;
            (single_value(&result) == Some("1")).then_some(())
        },
    )
    .await;

    // promtool on the host: the rule file checks and its unit test passes; a broken rule is
    // refused naming the parse error.
    let rules_path = prom.dir().join("rules/e2e.yml").display().to_string();
    let checked =
        prometheus::promtool_ok(&["check", "rules", &rules_path]).unwrap_or_else(|e| panic!("{e}"));
    assert!(checked.contains("SUCCESS: 2 rules found"), "{checked}");
    let test_path = prom.dir().join("rules/e2e_test.yml").display().to_string();
    let tested =
        prometheus::promtool_ok(&["test", "rules", &test_path]).unwrap_or_else(|e| panic!("{e}"));
    assert!(tested.contains("SUCCESS"), "{tested}");
    let broken_path = prom.dir().join("rules/broken.yml");
    std::fs::write(
        &broken_path,
        RULES.replace("sum by (job) (up)", "sum by (job) (up"),
    )
    .expect("write the broken rule file");
    let broken = prometheus::promtool(&["check", "rules", &broken_path.display().to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(!broken.status.success(), "{broken:?}");
    assert!(stderr.contains("parse error"), "{stderr}");
}
