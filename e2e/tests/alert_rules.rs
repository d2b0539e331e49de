//! The alert rules each operator's chart ships (issue 16): its PrometheusRule, rendered by
//! `helm template`, passes `promtool check rules`, and promtool's unit tests under
//! `e2e/testdata/alerts/` make every alert fire on its failure and stay quiet otherwise; every
//! alert has a summary, a description and a runbook in docs/monitoring.md.
//!
//! Needs helm and the pinned promtool on PATH (`eval "$(hack/cluster env)"`), not the plane.

use std::collections::BTreeSet;
use std::path::Path;

use e2e::monitoring::{OPERATORS, alert_rules, prometheus_rule, rule_file};
use e2e::repo_root;

/// The release namespace the rules are rendered for; the unit tests' series use it.
const NAMESPACE: &str = "ops";

/// promtool's output, which must succeed.
fn promtool(args: &[&Path]) -> String {
    let args: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().expect("a UTF-8 path"))
        .collect();
    e2e::prometheus::promtool_ok(&args).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh directory for `operator`'s files, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir(operator: &str) -> ScratchDir {
    let dir = std::env::temp_dir().join(format!("alert-rules-{}-{operator}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    ScratchDir(dir)
}

/// The unit-test files of `operator`'s rules, `__OPERATOR__` replaced by its name.
fn unit_tests(operator: &str) -> Vec<(String, String)> {
    let mut files = vec!["operator.test.yml"];
    if operator == "synapse-operator" {
        files.push("synapse.test.yml");
    }
    files
        .into_iter()
        .map(|file| {
            let path = repo_root().join("e2e/testdata/alerts").join(file);
            let text = std::fs::read_to_string(&path).expect("read a promtool test file");
            (file.to_owned(), text.replace("__OPERATOR__", operator))
        })
        .collect()
}

/// The alerts promtool unit tests evaluate.
fn tested_alerts(test_file: &str) -> BTreeSet<String> {
    let doc: serde_json::Value = serde_yaml::from_str(test_file).expect("a YAML test file");
    doc["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|test| {
            test["alert_rule_test"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|case| case["alertname"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn every_chart_s_alert_rules_pass_promtool_and_their_unit_tests() {
    for operator in OPERATORS {
        let rule = prometheus_rule(operator, NAMESPACE).await;
        let dir = scratch_dir(operator);
        let checked = dir.path().join("checked.yml");
        std::fs::write(&checked, rule_file(&rule, true)).unwrap();
        let out = promtool(&[Path::new("check"), Path::new("rules"), &checked]);
        eprintln!("{operator}: {out}");

        std::fs::write(dir.path().join("rules.yml"), rule_file(&rule, false)).unwrap();
        let tests = unit_tests(operator);
        let mut tested = BTreeSet::new();
        for (name, text) in &tests {
            std::fs::write(dir.path().join(name), text).unwrap();
            tested.extend(tested_alerts(text));
        }
        let paths: Vec<_> = tests
            .iter()
            .map(|(name, _)| dir.path().join(name))
            .collect();
        let mut args = vec![Path::new("test"), Path::new("rules")];
        args.extend(paths.iter().map(|p| p.as_path()));
        let out = promtool(&args);
        eprintln!("{operator}: {out}");

        let alerts: BTreeSet<String> = alert_rules(&rule).into_iter().map(|r| r.alert).collect();
        assert!(!alerts.is_empty(), "{operator} ships no alert rule");
        let untested: Vec<_> = alerts.difference(&tested).collect();
        assert!(
            untested.is_empty(),
            "{operator}: no promtool test for {untested:?}"
        );
    }
}

/// The anchors of the `###` sections of docs/monitoring.md, as GitHub makes them.
fn runbook_anchors() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/monitoring.md")).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|title| title.trim().to_lowercase().replace(' ', "-"))
        .collect()
}

#[tokio::test]
async fn every_alert_has_a_summary_a_description_and_a_runbook() {
    let anchors = runbook_anchors();
    for operator in OPERATORS {
        let rule = prometheus_rule(operator, NAMESPACE).await;
        for alert in alert_rules(&rule) {
            let name = &alert.alert;
            for key in ["summary", "description", "runbook_url"] {
                let value = alert.annotations[key].as_str().unwrap_or_default();
                assert!(!value.is_empty(), "{operator}: {name} has no {key}");
                assert!(
                    !value.contains("__"),
                    "{operator}: {name}'s {key} keeps a placeholder: {value}"
                );
            }
            let url = alert.annotations["runbook_url"].as_str().unwrap();
            let anchor = name.to_lowercase();
            assert!(
                url.ends_with(&format!("/docs/monitoring.md#{anchor}")),
                "{operator}: {name}'s runbook_url {url} is not its section of docs/monitoring.md"
            );
            assert!(
                anchors.contains(&anchor),
                "docs/monitoring.md has no section \"### {name}\" (the runbook of {operator}'s alert)"
            );
        }
    }
}

/// The operator rules and the template that ships them are the same file in every chart.
#[test]
fn the_charts_share_the_operator_rules_and_their_template() {
    for file in ["alerts/operator.yaml", "templates/prometheusrule.yaml"] {
        let read = |operator: &str| {
            let path = e2e::charts::chart_dir(operator).join(file);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let first = read(OPERATORS[0]);
        for operator in &OPERATORS[1..] {
            assert!(
                read(operator) == first,
                "charts/{operator}/{file} differs from charts/{}/{file}: keep them the same",
                OPERATORS[0]
            );
        }
    }
}
