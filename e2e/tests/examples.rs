//! Every manifest under `examples/` reaches the end state its header documents (issue 9).
//!
//! Each `*.yaml` file (found by walking the directory, so a new example is covered without
//! touching this test) is applied with `kubectl apply` into a fresh namespace that enforces Pod
//! Security `restricted`, with the three operators running as local processes for that namespace.
//! Its header's `# expect: <Kind>/<name> <Condition>=<Status> [reason=<Reason>]` lines must then
//! all hold at once: the condition with that status (and reason), for the object's current
//! generation. In kwok, pods become Ready without running: a Synapse is Ready when its
//! Deployment's pod is, a bridge Registered when its registration is accepted and the Synapse is
//! Ready with it.
//!
//! No CloudNativePG operator runs: when an example asks for a provisioned database, this test
//! installs the `Cluster` CRD and plays CloudNativePG's part for every Cluster that appears (the
//! `<cluster>-app` Secret with plausible credentials, then a healthy status). No database is
//! needed to reach Ready in kwok.
//!
//! The file's own rules are checked too: a comment header saying what it shows, at least one
//! `expect` line naming an object of the file, and no `metadata.namespace` (an example applies to
//! whatever namespace the user picks).
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`: kubectl on PATH).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::operator_process::OperatorProcess;
use e2e::postgres::{app_secret_data, cluster_api, install_cnpg_crd, mark_cluster_ready};
use e2e::{TestNamespace, repo_root};
use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, ObjectMeta, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt as _};
use serde_json::Value;

/// How long an example may take to reach its end state (a healthy run needs a few seconds; a
/// loaded 2-core machine running several examples at once needs more).
const TIMEOUT: Duration = Duration::from_secs(180);
/// Examples run at once (three operator processes each).
const PARALLEL: usize = 4;
const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];
/// The kinds an `expect` line may name.
const KINDS: [&str; 3] = ["Synapse", "Heisenbridge", "MautrixSignal"];

/// One `# expect:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expectation {
    kind: String,
    name: String,
    condition: String,
    status: String,
    reason: Option<String>,
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} {}={}",
            self.kind, self.name, self.condition, self.status
        )?;
        if let Some(reason) = &self.reason {
            write!(f, " reason={reason}")?;
        }
        Ok(())
    }
}

/// An example file, read and checked against the rules for examples.
struct Example {
    path: PathBuf,
    /// Path relative to the repository root, for messages.
    name: String,
    expectations: Vec<Expectation>,
    /// Whether some object asks for a CloudNativePG database.
    needs_cnpg: bool,
}

/// Every `*.yaml` below `examples/`, sorted.
fn example_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("examples"), &mut files);
    files.sort();
    files
}

fn parse_expectation(line: &str) -> Result<Expectation, String> {
    let usage = || {
        format!(
            "malformed expect line {line:?}: write `# expect: <Kind>/<name> \
             <Condition>=<True|False|Unknown> [reason=<Reason>]`"
        )
    };
    let mut words = line.split_whitespace();
    let (kind, name) = words
        .next()
        .and_then(|w| w.split_once('/'))
        .ok_or_else(usage)?;
    let (condition, status) = words
        .next()
        .and_then(|w| w.split_once('='))
        .ok_or_else(usage)?;
    let reason = match words.next() {
        None => None,
        Some(word) => Some(word.strip_prefix("reason=").ok_or_else(usage)?.to_owned()),
    };
    if words.next().is_some()
        || !["True", "False", "Unknown"].contains(&status)
        || [kind, name, condition].iter().any(|s| s.is_empty())
    {
        return Err(usage());
    }
    if !KINDS.contains(&kind) {
        return Err(format!(
            "expect line {line:?} names kind {kind}; this test reads the conditions of {}",
            KINDS.join(", ")
        ));
    }
    Ok(Expectation {
        kind: kind.to_owned(),
        name: name.to_owned(),
        condition: condition.to_owned(),
        status: status.to_owned(),
        reason,
    })
}

/// The YAML documents of a file: its text split at `---` lines.
fn documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else {
            let current = documents.last_mut().expect("never empty");
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
}

/// Reads an example and checks the rules every example follows; `Err` lists what is wrong.
fn read_example(path: &Path) -> Result<Example, (String, Vec<String>)> {
    let name = path
        .strip_prefix(repo_root())
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {name}: {e}"));
    let mut problems = Vec::new();
    let header: Vec<&str> = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .collect();
    let description = header
        .iter()
        .filter(|line| !line.trim_start_matches('#').trim().starts_with("expect:"))
        .filter(|line| !line.trim_start_matches('#').trim().is_empty())
        .count();
    if description == 0 {
        problems
            .push("the file does not start with a comment header saying what it shows".to_owned());
    }
    let mut expectations = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#').map(str::trim)
            && let Some(expect) = rest.strip_prefix("expect:")
        {
            if !header.contains(&line) {
                problems.push(format!(
                    "the expect line {line:?} is not in the header (the comment lines at the top)"
                ));
            }
            match parse_expectation(expect.trim()) {
                Ok(e) => expectations.push(e),
                Err(problem) => problems.push(problem),
            }
        }
    }
    if expectations.is_empty() && problems.is_empty() {
        problems.push("the header has no `# expect:` line stating the end state".to_owned());
    }

    let mut objects = Vec::new();
    let mut needs_cnpg = false;
    for (index, document) in documents(&text).into_iter().enumerate() {
        let value = match serde_yaml::from_str::<Value>(&document) {
            Ok(Value::Null) => continue,
            Ok(value) => value,
            Err(e) => {
                problems.push(format!("document {} is not YAML: {e}", index + 1));
                continue;
            }
        };
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let object_name = value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if value["metadata"].get("namespace").is_some() {
            problems.push(format!(
                "{kind}/{object_name} sets metadata.namespace: examples apply to the namespace \
                 the user picks (kubectl -n)"
            ));
        }
        needs_cnpg |= value["spec"]["createNewPostgreSQL"] == Value::Bool(true);
        objects.push((kind, object_name));
    }
    for expectation in &expectations {
        if !objects
            .iter()
            .any(|(k, n)| *k == expectation.kind && *n == expectation.name)
        {
            problems.push(format!(
                "`expect: {expectation}` names {}/{}, which the file does not contain",
                expectation.kind, expectation.name
            ));
        }
    }
    if problems.is_empty() {
        Ok(Example {
            path: path.to_path_buf(),
            name,
            expectations,
            needs_cnpg,
        })
    } else {
        Err((name, problems))
    }
}

fn api_for(client: &Client, namespace: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("synapse.opdev.io", "v1alpha1", kind)),
    )
}

/// How an expectation stands on `object` (`None`: the object does not exist): `Ok` when met,
/// else what was seen.
fn check(expectation: &Expectation, object: Option<&Value>) -> Result<(), String> {
    let Some(object) = object else {
        return Err("the object does not exist".to_owned());
    };
    let condition = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == expectation.condition.as_str());
    let Some(condition) = condition else {
        return Err(format!(
            "no {} condition; status: {}",
            expectation.condition, object["status"]
        ));
    };
    let seen = format!(
        "{}={} reason={} message={:?}",
        expectation.condition,
        condition["status"].as_str().unwrap_or_default(),
        condition["reason"].as_str().unwrap_or_default(),
        condition["message"].as_str().unwrap_or_default()
    );
    let status_ok = condition["status"] == expectation.status.as_str();
    let reason_ok = expectation
        .reason
        .as_ref()
        .is_none_or(|r| condition["reason"] == r.as_str());
    let current = condition["observedGeneration"].is_null()
        || condition["observedGeneration"] == object["metadata"]["generation"];
    if status_ok && reason_ok && current {
        Ok(())
    } else if !current {
        Err(format!("{seen}, for an older generation"))
    } else {
        Err(seen)
    }
}

/// Plays CloudNativePG for every Cluster of `namespace`, forever: writes its `-app` Secret with
/// plausible credentials for the database its `bootstrap.initdb` asks for, then reports it
/// healthy.
async fn play_cloudnativepg(client: Client, namespace: String) {
    let clusters = cluster_api(&client, &namespace);
    let secrets = Api::<Secret>::namespaced(client.clone(), &namespace);
    loop {
        for cluster in clusters
            .list(&Default::default())
            .await
            .into_iter()
            .flatten()
        {
            let name = cluster.name_any();
            let initdb = &cluster.data["spec"]["bootstrap"]["initdb"];
            let dbname = initdb["database"].as_str().unwrap_or("app");
            let owner = initdb["owner"].as_str().unwrap_or(dbname);
            let secret_name = format!("{name}-app");
            if matches!(secrets.get_opt(&secret_name).await, Ok(None)) {
                let data = app_secret_data(&namespace, &name, dbname, owner, "example-password");
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(secret_name.clone()),
                        labels: Some(BTreeMap::from([(
                            "cnpg.io/cluster".to_owned(),
                            name.clone(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    type_: Some("kubernetes.io/basic-auth".into()),
                    data: Some(
                        data.into_iter()
                            .map(|(k, v)| (k.to_owned(), ByteString(v.into_bytes())))
                            .collect(),
                    ),
                    ..Secret::default()
                };
                let _ = secrets.create(&PostParams::default(), &secret).await;
            }
            let ready = cluster.data["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if !ready {
                mark_cluster_ready(&client, &namespace, &name).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `kubectl apply -n <namespace> -f <file>`, as a user runs it.
async fn kubectl_apply(namespace: &str, file: &Path) -> Result<(), String> {
    let output = tokio::process::Command::new("kubectl")
        .args(["apply", "-n", namespace, "-f"])
        .arg(file)
        .output()
        .await
        .map_err(|e| format!("cannot run kubectl (is the plane's env loaded?): {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kubectl apply failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The warnings and errors an operator logged, for a failure report.
fn log_problems(operator: &OperatorProcess, name: &str) -> Vec<String> {
    operator
        .log_text()
        .lines()
        .filter(|line| line.contains("\"WARN\"") || line.contains("\"ERROR\""))
        .map(|line| format!("{name}: {line}"))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(5)
        .collect()
}

/// Applies one example in its own namespace and waits for its end state; `Err` says which
/// expectations were not met and what was seen instead.
async fn run_example(client: Client, example: Example) -> Result<(), (String, Vec<String>)> {
    let ns = TestNamespace::create(
        &client,
        "example",
        &[
            ("pod-security.kubernetes.io/enforce", "restricted"),
            ("pod-security.kubernetes.io/enforce-version", "latest"),
        ],
    )
    .await;
    let mut operators = Vec::new();
    for operator in OPERATORS {
        let mut process = OperatorProcess::builder(operator, &ns.name)
            .label("examples")
            .start();
        process.wait_ready(Duration::from_secs(60)).await;
        operators.push((operator, process));
    }
    let cnpg = example
        .needs_cnpg
        .then(|| tokio::spawn(play_cloudnativepg(client.clone(), ns.name.clone())));

    let outcome = match kubectl_apply(&ns.name, &example.path).await {
        Err(problem) => Err(vec![problem]),
        Ok(()) => wait_for_end_state(&client, &ns.name, &example.expectations).await,
    };
    let outcome = outcome.map_err(|mut problems| {
        problems.push(format!("(applied in namespace {})", ns.name));
        for (name, operator) in &operators {
            problems.extend(log_problems(operator, name));
        }
        (example.name.clone(), problems)
    });

    if let Some(task) = cnpg {
        task.abort();
    }
    // The namespace goes while the operators run, so the bridges' finalizers are released.
    let namespace = ns.name.clone();
    ns.delete().await;
    let bridges_gone = async {
        loop {
            let mut left = 0;
            for kind in ["Heisenbridge", "MautrixSignal"] {
                left += api_for(&client, &namespace, kind)
                    .list(&Default::default())
                    .await
                    .map(|l| l.items.len())
                    .unwrap_or(0);
            }
            if left == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(60), bridges_gone).await;
    drop(operators);
    outcome
}

/// Waits until every expectation holds at the same time; `Err` lists the unmet ones.
async fn wait_for_end_state(
    client: &Client,
    namespace: &str,
    expectations: &[Expectation],
) -> Result<(), Vec<String>> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut unmet = Vec::new();
        for expectation in expectations {
            let object = api_for(client, namespace, &expectation.kind)
                .get_opt(&expectation.name)
                .await
                .ok()
                .flatten()
                .map(|o| serde_json::to_value(o).expect("an object serialises"));
            if let Err(seen) = check(expectation, object.as_ref()) {
                unmet.push(format!("unmet `expect: {expectation}`: {seen}"));
            }
        }
        if unmet.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            unmet.insert(0, format!("after {TIMEOUT:?}:"));
            return Err(unmet);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_example_reaches_its_documented_end_state() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;

    let mut failures: Vec<(String, Vec<String>)> = Vec::new();
    let mut examples = Vec::new();
    for path in example_files() {
        match read_example(&path) {
            Ok(example) => examples.push(example),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(
        !examples.is_empty() || !failures.is_empty(),
        "no example found under examples/"
    );
    if examples.iter().any(|e| e.needs_cnpg) {
        install_cnpg_crd(&client).await;
    }
    let count = examples.len();
    let results: Vec<_> = futures::stream::iter(examples)
        .map(|example| run_example(client.clone(), example))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    failures.extend(results.into_iter().filter_map(Result::err));
    failures.sort();
    let report: Vec<String> = failures
        .iter()
        .map(|(file, problems)| format!("{file}:\n    {}", problems.join("\n    ")))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {count} examples failed:\n{}",
        failures.len(),
        report.join("\n")
    );
}

#[test]
fn expect_lines_are_read_strictly() {
    assert_eq!(
        parse_expectation("Heisenbridge/irc Registered=True reason=Registered"),
        Ok(Expectation {
            kind: "Heisenbridge".into(),
            name: "irc".into(),
            condition: "Registered".into(),
            status: "True".into(),
            reason: Some("Registered".into()),
        })
    );
    assert!(parse_expectation("Synapse/example Ready=True").is_ok());
    for bad in [
        "Synapse/example Ready=yes",
        "Synapse example Ready=True",
        "Synapse/example Ready",
        "Synapse/example Ready=True Running",
        "Synapse/example Ready=True reason=Running extra",
        "Deployment/example Available=True",
    ] {
        assert!(parse_expectation(bad).is_err(), "{bad} accepted");
    }
}
