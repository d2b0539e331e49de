//! Prometheus and promtool for the end-to-end tests: the release `hack/versions.env` pins
//! (`PROMETHEUS_VERSION`, a Go module version: v0.316.0 is Prometheus 3.16.0), built by
//! `hack/build-tools` and put on `PATH` by `eval "$(hack/cluster env)"` (as `hack/test` does).
//! [`binary`] finds them there and refuses any other release, so a Prometheus of the host's never
//! stands in.
//!
//! - [`Prometheus::start`] runs a server on 127.0.0.1 inside a pod harness [`NetNs`], where it can
//!   scrape what the scenario's pods serve, from a configuration and rule files the test writes;
//!   dropping it stops the server.
//! - [`Prometheus::query`], [`Prometheus::rules`], [`Prometheus::targets`] and
//!   [`Prometheus::wait_for_scrapes`] use its HTTP API; an answer with `"status": "error"` is
//!   [`Error::Api`], carrying Prometheus's message.
//! - [`Prometheus::selectors`] has Prometheus parse an expression (`/api/v1/parse_query`) and
//!   lists the series selectors in it ([`Selector`]), so a test can query each on its own and
//!   tell a missing series from a wrong expression.
//! - [`promtool`] and [`promtool_ok`] run promtool on the host (`check rules`, `test rules`).
//!
//! The server's files (configuration, rule files, TSDB, output) live in a directory
//! `/var/tmp/podh-<pid>-prometheus-<n>`, removed on drop unless the test panics (then it is kept
//! for the output and named on stderr); directories of test processes that are gone are removed
//! by the next one. Prometheus runs as root (the tests do), its web UI is not built in; the HTTP
//! API is complete.

use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pod_harness::proxy::ScratchDir;
use crate::pod_harness::{self, NetNs, netns};

/// How long Prometheus may take to answer `/-/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The configuration file in the server's directory; rule files are named relative to it.
const CONFIG_FILE: &str = "prometheus.yml";
/// The TSDB directory in the server's directory.
const DATA_DIR: &str = "data";
/// Prometheus's stdout and stderr, in the server's directory.
const OUTPUT_FILE: &str = "prometheus.log";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// prometheus or promtool is missing, or not the pinned release.
    #[error("{0}")]
    Setup(String),
    /// Files, the network namespace, HTTP, a command, the server exiting or a timeout.
    #[error(transparent)]
    Harness(#[from] pod_harness::Error),
    /// Prometheus answered `"status": "error"` (a bad expression is `bad_data`).
    #[error("Prometheus {endpoint}: HTTP {status}, {error_type}: {message}")]
    Api {
        endpoint: String,
        status: u16,
        error_type: String,
        message: String,
    },
    /// An answer not in the shape of Prometheus's API.
    #[error("Prometheus {endpoint}: {detail}")]
    Response { endpoint: String, detail: String },
}

impl Error {
    /// Prometheus's own message, for an [`Error::Api`].
    pub fn api_message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. } => Some(message),
            _ => None,
        }
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| pod_harness::Error::Io { what, source }.into()
}

/// The Prometheus release of a Go module version of github.com/prometheus/prometheus:
/// v0.MMM.P is MMM/100.MMM%100.P (v0.316.0 is 3.16.0, v0.300.1 is 3.0.1).
pub fn release_of(module_version: &str) -> Option<String> {
    let rest = module_version.strip_prefix("v0.")?;
    let (mmm, patch) = rest.split_once('.')?;
    let mmm: u32 = mmm.parse().ok()?;
    let patch: u32 = patch.parse().ok()?;
    (mmm >= 100).then(|| format!("{}.{}.{patch}", mmm / 100, mmm % 100))
}

/// The release `hack/versions.env` pins, e.g. `3.16.0`.
pub fn pinned_release() -> String {
    let version = crate::pinned_version("PROMETHEUS_VERSION");
    release_of(&version)
        .unwrap_or_else(|| panic!("PROMETHEUS_VERSION={version} is no Prometheus 3 module version"))
}

/// `name` (`prometheus` or `promtool`) on `PATH`, checked to report the pinned release.
pub fn binary(name: &str) -> Result<PathBuf, Error> {
    let hint =
        "run `hack/build-tools prometheus` and `eval \"$(hack/cluster env)\"` (hack/test does)";
    let path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| Error::Setup(format!("{name} is not on PATH: {hint}")))?;
    let release = pinned_release();
    let output = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("run {} --version", path.display())))?;
    let reported = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !reported.starts_with(&format!("{name}, version {release} ")) {
        return Err(Error::Setup(format!(
            "{} is not the pinned {name} {release} (it reports {:?}): {hint}",
            path.display(),
            reported.lines().next().unwrap_or_default()
        )));
    }
    Ok(path)
}

/// Runs the pinned promtool on the host with `args` (e.g. `["check", "rules", path]`) and returns
/// its output, whatever its exit status.
pub fn promtool(args: &[&str]) -> Result<Output, Error> {
    let path = binary("promtool")?;
    Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!("run promtool {}", args.join(" "))))
}

/// Like [`promtool`], but fails with both output streams unless promtool succeeds; returns its
/// standard output.
pub fn promtool_ok(args: &[&str]) -> Result<String, Error> {
    let output = promtool(args)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(pod_harness::Error::Command {
            command: format!("promtool {}", args.join(" ")),
            detail: format!(
                "{}:\n{stdout}{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        }
        .into());
    }
    Ok(stdout)
}

/// A Prometheus server on 127.0.0.1:`port` in a network namespace; dropping it stops the server.
pub struct Prometheus<'n> {
    netns: &'n NetNs,
    port: u16,
    child: Child,
    dir: ScratchDir,
}

impl<'n> Prometheus<'n> {
    /// Writes `config_yaml` (prometheus.yml) and `rule_files` (name relative to the
    /// configuration's directory, contents) into a fresh directory, starts Prometheus in `netns`
    /// listening on 127.0.0.1:`port`, and returns once it is ready (`/-/ready`). The
    /// configuration's `rule_files:` names these files as given (e.g. `rules/synapse.yml`).
    /// Fails with Prometheus's output if it exits first (e.g. on a bad configuration).
    pub async fn start(
        netns: &'n NetNs,
        port: u16,
        config_yaml: &str,
        rule_files: &[(&str, &str)],
    ) -> Result<Self, Error> {
        let binary = binary("prometheus")?;
        let dir = ScratchDir::new("prometheus", true)?;
        let write = |path: &Path, contents: &str| {
            fs::write(path, contents).map_err(io_err(format!("write {}", path.display())))
        };
        write(&dir.path.join(CONFIG_FILE), config_yaml)?;
        for (name, contents) in rule_files {
            let path = dir.path.join(rule_file_name(name)?);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(io_err(format!("create {}", parent.display())))?;
            }
            write(&path, contents)?;
        }
        let output_path = dir.path.join(OUTPUT_FILE);
        let output = File::create(&output_path)
            .map_err(io_err(format!("create {}", output_path.display())))?;
        let output_too = output
            .try_clone()
            .map_err(io_err(format!("reopen {}", output_path.display())))?;
        let child = netns
            .command(&binary.display().to_string())
            .arg(format!(
                "--config.file={}",
                dir.path.join(CONFIG_FILE).display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path.join(DATA_DIR).display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(&dir.path)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(output_too)
            // Its own process group, so that dropping it stops everything it started.
            .process_group(0)
            .spawn()
            .map_err(io_err(format!("start {}", binary.display())))?;
        let mut prometheus = Self {
            netns,
            port,
            child,
            dir,
        };
        prometheus.wait_ready().await?;
        Ok(prometheus)
    }

    async fn wait_ready(&mut self) -> Result<(), Error> {
        let output_path = self.dir.path.join(OUTPUT_FILE);
        let output = || fs::read_to_string(&output_path).unwrap_or_default();
        let child = &mut self.child;
        let ready =
            netns::wait_http_ok(
                self.netns,
                self.port,
                "/-/ready",
                START_TIMEOUT,
                || match child.try_wait() {
                    Ok(None) => Ok(()),
                    Ok(Some(status)) => Err(pod_harness::Error::Exited {
                        pod: "prometheus".into(),
                        status,
                        what: "it to be ready".into(),
                        tail: output(),
                    }),
                    Err(source) => Err(pod_harness::Error::Io {
                        what: "wait for prometheus".into(),
                        source,
                    }),
                },
            )
            .await;
        match ready {
            Ok(_) => Ok(()),
            Err(pod_harness::Error::Timeout {
                what,
                after,
                context,
            }) => Err(pod_harness::Error::Timeout {
                what,
                after,
                context: format!("{context}; its output:\n{}", output()),
            }
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process started in the namespace (Prometheus itself: nsenter executes it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory with prometheus.yml, the rule files (for promtool), the TSDB and the output.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// What Prometheus has written to stdout and stderr so far (its log).
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path.join(OUTPUT_FILE)).unwrap_or_default()
    }

    /// GETs `path_and_query` of the HTTP API (e.g. `/api/v1/status/config`) and returns the
    /// answer's `data`.
    pub async fn api(&self, path_and_query: &str) -> Result<Value, Error> {
        let endpoint = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path)
            .to_string();
        let response = self.netns.http_get(self.port, path_and_query).await?;
        api_data(&endpoint, response.status, &response.body)
    }

    /// Evaluates `expr` now (`/api/v1/query`) and returns `data.result`: for a vector an array of
    /// `{"metric": {...}, "value": [<unix time>, "<value>"]}`.
    pub async fn query(&self, expr: &str) -> Result<Value, Error> {
        let path = "/api/v1/query";
        let mut data = self
            .api(&format!("{path}?query={}", url_encode(expr)))
            .await?;
        match data.get_mut("result") {
            Some(result) => Ok(result.take()),
            None => Err(Error::Response {
                endpoint: path.into(),
                detail: format!("no result in {data}"),
            }),
        }
    }

    /// The series selectors in `expr` as Prometheus parses it (`/api/v1/parse_query`), see
    /// [`selectors_in`]. A bad expression is [`Error::Api`] with the parse error.
    pub async fn selectors(&self, expr: &str) -> Result<Vec<Selector>, Error> {
        let path = "/api/v1/parse_query";
        let ast = self
            .api(&format!("{path}?query={}", url_encode(expr)))
            .await?;
        selectors_in(&ast).map_err(|detail| Error::Response {
            endpoint: path.into(),
            detail,
        })
    }

    /// `/api/v1/rules`: `{"groups": [{"name", "file", "rules": [{"name", "query", "health",
    /// "lastError", "type": "recording"|"alerting", ...}], ...}]}`. A rule's `health` is
    /// `unknown` until it has been evaluated, then `ok` or `err`.
    pub async fn rules(&self) -> Result<Value, Error> {
        self.api("/api/v1/rules").await
    }

    /// `/api/v1/targets`: `{"activeTargets": [{"labels", "scrapeUrl", "health": "up"|"down"|
    /// "unknown", "lastError", ...}], "droppedTargets": [...]}`.
    pub async fn targets(&self) -> Result<Value, Error> {
        self.api("/api/v1/targets").await
    }

    /// Waits until at least `min_targets_up` active targets have been scraped successfully
    /// (health `up`) and returns the active targets. Times out naming each target's health and
    /// last error.
    pub async fn wait_for_scrapes(
        &self,
        min_targets_up: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, Error> {
        let start = Instant::now();
        loop {
            let data = self.targets().await?;
            let active = data["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let up = active.iter().filter(|t| t["health"] == "up").count();
            if up >= min_targets_up {
                return Ok(active);
            }
            if start.elapsed() >= timeout {
                let mut context = String::new();
                for target in &active {
                    let _ = write!(
                        context,
                        "\n  {} {}: {}",
                        target["scrapeUrl"].as_str().unwrap_or("?"),
                        target["health"].as_str().unwrap_or("?"),
                        target["lastError"].as_str().unwrap_or_default()
                    );
                }
                return Err(pod_harness::Error::Timeout {
                    what: format!("{min_targets_up} target(s) up"),
                    after: timeout,
                    context: format!("; {up} of {} active target(s) up:{context}", active.len()),
                }
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus<'_> {
    fn drop(&mut self) {
        // SIGTERM lets it close the TSDB.
        crate::pod_harness::proxy::stop_group(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "prometheus on 127.0.0.1:{} in netns {}, its output:\n{}",
                self.port,
                self.netns.name(),
                self.output()
            );
        }
    }
}

/// A rule file's name, checked to stay inside the server's directory and off its own files.
fn rule_file_name(name: &str) -> Result<&Path, Error> {
    let path = Path::new(name);
    let plain = !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    let first = path.components().next().map(|c| c.as_os_str());
    let reserved = [CONFIG_FILE, DATA_DIR, OUTPUT_FILE]
        .iter()
        .any(|r| first == Some(r.as_ref()));
    if !plain || reserved {
        return Err(pod_harness::Error::Spec(format!(
            "rule file {name:?}: must be a relative path without `..`, not under \
             {CONFIG_FILE}, {DATA_DIR} or {OUTPUT_FILE}"
        ))
        .into());
    }
    Ok(path)
}

/// The `data` of an API answer, or the error it reports.
fn api_data(endpoint: &str, status: u16, body: &[u8]) -> Result<Value, Error> {
    let text = || String::from_utf8_lossy(body).into_owned();
    let response = |detail: String| Error::Response {
        endpoint: endpoint.into(),
        detail,
    };
    let mut answer: Value = serde_json::from_slice(body)
        .map_err(|e| response(format!("HTTP {status}, not JSON ({e}): {}", text())))?;
    match answer["status"].as_str() {
        Some("success") if status == 200 => Ok(answer["data"].take()),
        Some("error") => Err(Error::Api {
            endpoint: endpoint.into(),
            status,
            error_type: answer["errorType"].as_str().unwrap_or_default().into(),
            message: answer["error"].as_str().unwrap_or_default().into(),
        }),
        _ => Err(response(format!("HTTP {status}: {}", text()))),
    }
}

/// Percent-encodes all but the unreserved characters of RFC 3986, for a query parameter.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// One series selector of an expression: what a vector selector (`up{job="x"}`) or the series
/// part of a range selector (`up{job="x"}[5m]`) selects. Offsets, `@` and ranges are left out:
/// [`Selector::promql`] is the instant selector of the same series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name; empty when the selector names none (`{__name__=~"a|b"}`).
    pub metric: String,
    /// The label matchers besides the metric name, in Prometheus's order: (label, operator,
    /// value), the operator one of `=`, `!=`, `=~`, `!~`.
    pub matchers: Vec<(String, String, String)>,
}

impl Selector {
    /// The selector in PromQL, e.g. `up{job="synapse"}`; names that are not classic identifiers
    /// are quoted as Prometheus 3 writes them (`{"my.metric", "my.label"="x"}`).
    pub fn promql(&self) -> String {
        let mut inside: Vec<String> = Vec::new();
        let mut out = String::new();
        if is_metric_name(&self.metric) {
            out.push_str(&self.metric);
        } else if !self.metric.is_empty() {
            inside.push(quote(&self.metric));
        }
        for (label, op, value) in &self.matchers {
            let label = if is_label_name(label) {
                label.clone()
            } else {
                quote(label)
            };
            inside.push(format!("{label}{op}{}", quote(value)));
        }
        if !inside.is_empty() || out.is_empty() {
            let _ = write!(out, "{{{}}}", inside.join(", "));
        }
        out
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.promql())
    }
}

/// A classic metric name, written without quotes: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A classic label name, written without quotes: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A PromQL double-quoted string (Go's escapes).
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The series selectors in an AST as `/api/v1/parse_query` returns it (its `data`): every node
/// `{"type": "vectorSelector"|"matrixSelector", "name", "matchers": [{"name", "type", "value"}],
/// ...}`, wherever it sits (aggregations, calls' args, binary operands, subqueries,
/// parentheses). The metric name is the node's `name`, or for the quoted form
/// (`{"my.metric"}`, whose `name` is empty) its `__name__="..."` matcher; the `__name__` equality
/// matcher that holds it is dropped either way. In the order they appear, each selector once.
pub fn selectors_in(ast: &Value) -> Result<Vec<Selector>, String> {
    let mut found = Vec::new();
    collect_selectors(ast, &mut found)?;
    let mut unique: Vec<Selector> = Vec::with_capacity(found.len());
    for selector in found {
        if !unique.contains(&selector) {
            unique.push(selector);
        }
    }
    Ok(unique)
}

fn collect_selectors(node: &Value, out: &mut Vec<Selector>) -> Result<(), String> {
    match node {
        Value::Object(fields) => {
            if matches!(
                fields.get("type").and_then(Value::as_str),
                Some("vectorSelector" | "matrixSelector")
            ) {
                out.push(selector_of(node)?);
                return Ok(());
            }
            fields
                .values()
                .try_for_each(|value| collect_selectors(value, out))
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|value| collect_selectors(value, out)),
        _ => Ok(()),
    }
}

fn selector_of(node: &Value) -> Result<Selector, String> {
    let name = node["name"]
        .as_str()
        .ok_or_else(|| format!("selector without a name: {node}"))?;
    let mut matchers = Vec::new();
    for matcher in node["matchers"]
        .as_array()
        .ok_or_else(|| format!("selector without matchers: {node}"))?
    {
        let field = |key: &str| {
            matcher[key]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("matcher without {key}: {matcher}"))
        };
        matchers.push((field("name")?, field("type")?, field("value")?));
    }
    // The metric name: `name` for `up{...}`, only a `__name__` matcher for the quoted form
    // `{"my.metric", ...}`; either way that matcher is there, and goes.
    let name_matcher = matchers.iter().position(|(label, op, value)| {
        label == "__name__" && op == "=" && (name.is_empty() || value == name)
    });
    let metric = match name_matcher {
        Some(index) => matchers.remove(index).2,
        None => name.to_string(),
    };
    Ok(Selector { metric, matchers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ASTs `/api/v1/parse_query` of Prometheus 3.16.0 returned, as `{query: data}`.
    const FIXTURE: &str = include_str!("../testdata/prometheus/parse_query.json");

    fn fixture_ast(query: &str) -> Value {
        let all: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
        all.get(query)
            .unwrap_or_else(|| panic!("no fixture for {query:?}"))
            .clone()
    }

    fn selector(metric: &str, matchers: &[(&str, &str, &str)]) -> Selector {
        Selector {
            metric: metric.into(),
            matchers: matchers
                .iter()
                .map(|(l, o, v)| (l.to_string(), o.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn finds_the_selectors_of_real_asts() {
        let cases: Vec<(&str, Vec<Selector>)> = vec![
            (
                r#"sum(rate(prometheus_http_requests_total{handler="/api/v1/query"}[1m])) / up"#,
                vec![
                    selector(
                        "prometheus_http_requests_total",
                        &[("handler", "=", "/api/v1/query")],
                    ),
                    selector("up", &[]),
                ],
            ),
            (
                r#"histogram_quantile(0.99, sum by (le) (rate(synapse_http_server_response_time_seconds_bucket{job=~"synapse.*", code!="500"}[5m] offset 1m)))"#,
                vec![selector(
                    "synapse_http_server_response_time_seconds_bucket",
                    &[("job", "=~", "synapse.*"), ("code", "!=", "500")],
                )],
            ),
            (
                r#"max_over_time((up{job="a"} == bool 0)[10m:1m]) or -absent(up{job="a"}) and on(job) {__name__=~"x|y", env!~"dev"}"#,
                vec![
                    selector("up", &[("job", "=", "a")]),
                    selector("", &[("__name__", "=~", "x|y"), ("env", "!~", "dev")]),
                ],
            ),
            (
                r#"{"my.metric", "my.label"="a\"b\\c"}"#,
                vec![selector("my.metric", &[("my.label", "=", "a\"b\\c")])],
            ),
            ("1 + 2", vec![]),
        ];
        for (query, expected) in cases {
            let found = selectors_in(&fixture_ast(query)).unwrap();
            assert_eq!(found, expected, "{query}");
        }
    }

    #[test]
    fn takes_an_equality_name_matcher_as_the_metric() {
        // `{__name__="up", job="a"}` selects what `up{job="a"}` does.
        let ast = serde_json::json!({
            "type": "vectorSelector",
            "name": "",
            "matchers": [
                {"name": "__name__", "type": "=", "value": "up"},
                {"name": "job", "type": "=", "value": "a"},
            ],
        });
        assert_eq!(
            selectors_in(&ast).unwrap(),
            [selector("up", &[("job", "=", "a")])]
        );
    }

    #[test]
    fn renders_selectors_as_promql() {
        assert_eq!(selector("up", &[]).promql(), "up");
        assert_eq!(
            selector("up", &[("job", "=", "synapse"), ("code", "!~", "5..")]).promql(),
            r#"up{job="synapse", code!~"5.."}"#
        );
        assert_eq!(
            selector("", &[("__name__", "=~", "x|y")]).promql(),
            r#"{__name__=~"x|y"}"#
        );
        assert_eq!(
            selector("my.metric", &[("my.label", "=", "a\"b\\c\nd")]).promql(),
            r#"{"my.metric", "my.label"="a\"b\\c\nd"}"#
        );
        assert_eq!(selector("my.metric", &[]).to_string(), r#"{"my.metric"}"#);
        assert_eq!(selector("", &[]).promql(), "{}");
    }

    #[test]
    fn refuses_selectors_without_their_fields() {
        let e = selectors_in(&serde_json::json!({"type": "vectorSelector", "matchers": []}))
            .unwrap_err();
        assert!(e.contains("without a name"), "{e}");
        let e = selectors_in(&serde_json::json!({
            "type": "matrixSelector", "name": "up", "matchers": [{"name": "job", "type": "="}]
        }))
        .unwrap_err();
        assert!(e.contains("matcher without value"), "{e}");
    }

    #[test]
    fn maps_module_versions_to_releases() {
        assert_eq!(release_of("v0.316.0").as_deref(), Some("3.16.0"));
        assert_eq!(release_of("v0.300.1").as_deref(), Some("3.0.1"));
        assert_eq!(release_of("v0.55.1"), None);
        assert_eq!(release_of("v3.16.0"), None);
        assert_eq!(release_of("v0.316"), None);
    }

    #[test]
    fn reads_answers_and_errors_of_the_api() {
        let data = api_data(
            "/api/v1/query",
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert_eq!(data["result"], serde_json::json!([]));
        let e = api_data(
            "/api/v1/query",
            400,
            br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Api { status: 400, error_type, .. } if error_type == "bad_data"),
            "{e:?}"
        );
        assert!(e.api_message().unwrap().contains("parse error"), "{e}");
        let e = api_data("/-/x", 502, b"Bad Gateway").unwrap_err();
        assert!(matches!(e, Error::Response { .. }), "{e:?}");
    }

    #[test]
    fn rule_files_stay_in_the_directory() {
        assert!(rule_file_name("rules.yml").is_ok());
        assert!(rule_file_name("rules/synapse.yml").is_ok());
        for bad in [
            "",
            "/etc/rules.yml",
            "../rules.yml",
            "a/../../b",
            "prometheus.yml",
            "data/x.yml",
        ] {
            assert!(rule_file_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encodes_query_parameters() {
        assert_eq!(
            url_encode(r#"sum(up{job="a b"}) / 2 + x~y"#),
            "sum%28up%7Bjob%3D%22a%20b%22%7D%29%20%2F%202%20%2B%20x~y"
        );
        assert_eq!(url_encode("é"), "%C3%A9");
    }
}
