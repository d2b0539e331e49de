//! The monitoring the operators' charts ship, as the tests read it: each chart's alert rules
//! (its PrometheusRule, rendered by `helm template`) as a Prometheus rule file, and the Grafana
//! dashboards of the synapse-operator's chart with their queries.

use std::path::PathBuf;

use serde_json::Value;

use crate::charts::{chart_dir, template};

/// The operators, by chart.
pub const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];

/// The PrometheusRule of `operator`'s chart, rendered for the release namespace `namespace`.
pub async fn prometheus_rule(operator: &str, namespace: &str) -> Value {
    let documents = template(
        operator,
        "r",
        namespace,
        &[("metrics.prometheusRule.enabled", "true")],
    )
    .await;
    let mut rules = documents
        .into_iter()
        .filter(|d| d["kind"] == "PrometheusRule");
    let rule = rules
        .next()
        .unwrap_or_else(|| panic!("{operator}'s chart renders no PrometheusRule"));
    assert!(
        rules.next().is_none(),
        "{operator}'s chart renders two PrometheusRules"
    );
    rule
}

/// One alert rule.
#[derive(Clone, Debug)]
pub struct AlertRule {
    pub alert: String,
    pub expr: String,
    pub annotations: Value,
}

/// The alert rules of a PrometheusRule.
pub fn alert_rules(rule: &Value) -> Vec<AlertRule> {
    groups(rule)
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .map(|rule| AlertRule {
            alert: rule["alert"]
                .as_str()
                .expect("every rule is an alert")
                .to_owned(),
            expr: rule["expr"]
                .as_str()
                .expect("an alert has an expr")
                .to_owned(),
            annotations: rule["annotations"].clone(),
        })
        .collect()
}

fn groups(rule: &Value) -> Vec<Value> {
    rule["spec"]["groups"]
        .as_array()
        .cloned()
        .expect("a PrometheusRule has spec.groups")
}

/// The PrometheusRule's groups as a Prometheus rule file; `annotations: false` leaves the
/// annotations out (promtool's unit tests compare them whole).
pub fn rule_file(rule: &Value, annotations: bool) -> String {
    let mut groups = groups(rule);
    if !annotations {
        for group in &mut groups {
            for rule in group["rules"].as_array_mut().into_iter().flatten() {
                rule.as_object_mut().map(|r| r.remove("annotations"));
            }
        }
    }
    serde_yaml::to_string(&serde_json::json!({ "groups": groups })).expect("YAML")
}

/// The dashboards of the synapse-operator's chart: (file name, dashboard).
pub fn dashboards() -> Vec<(String, Value)> {
    let dir: PathBuf = chart_dir("synapse-operator").join("dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read a dashboard");
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let dashboard =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            (name, dashboard)
        })
        .collect()
}

/// A query of a dashboard: where it is, and its PromQL.
#[derive(Clone, Debug)]
pub struct DashboardQuery {
    pub place: String,
    pub expr: String,
}

/// Every query of `dashboard` with its variables replaced as `variables` say (`$name` → value;
/// Grafana's `$__rate_interval` → `1m`): the panels' targets, and the series each query
/// variable's `label_values(<series>, <label>)` reads.
pub fn dashboard_queries(dashboard: &Value, variables: &[(&str, &str)]) -> Vec<DashboardQuery> {
    let substitute = |expr: &str| {
        let mut expr = expr.replace("$__rate_interval", "1m");
        for (name, value) in variables {
            expr = expr.replace(&format!("${name}"), value);
        }
        assert!(!expr.contains('$'), "a variable left in {expr}");
        expr
    };
    let mut queries = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .expect("a variable query");
        let series = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(series, _)| series)
            .unwrap_or_else(|| panic!("variable query {query} is not label_values(series, label)"));
        queries.push(DashboardQuery {
            place: format!("variable {}", variable["name"]),
            expr: substitute(series),
        });
    }
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(DashboardQuery {
                place: format!("panel {} target {}", panel["title"], target["refId"]),
                expr: substitute(target["expr"].as_str().expect("a target expr")),
            });
        }
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_come_from_variables_and_targets_with_variables_replaced() {
        let dashboard = serde_json::json!({
            "templating": {"list": [
                {"type": "datasource", "name": "datasource"},
                {"type": "query", "name": "ns", "query": {"query": "label_values(up{job=\"a\"}, namespace)"}},
            ]},
            "panels": [{"title": "Rate", "targets": [
                {"refId": "A", "expr": "rate(x{namespace=\"$ns\"}[$__rate_interval])"},
            ]}],
        });
        let queries = dashboard_queries(&dashboard, &[("ns", "team")]);
        let exprs: Vec<_> = queries.iter().map(|q| q.expr.as_str()).collect();
        assert_eq!(exprs, ["up{job=\"a\"}", "rate(x{namespace=\"team\"}[1m])"]);
    }
}
