//! The operators run from their images (issue 20). `hack/image` builds the three images (a static
//! musl binary and a CA bundle on an empty base), once per test process, as the other tests build
//! their operator binaries: a run of this file alone never tests stale images. Each image is
//! tagged as its chart's default image, and each test runs it under podman with runc the way the
//! chart's Deployment runs it: host network (the plane listens on loopback), read-only root
//! filesystem without tmpfs, no capabilities, the image's UID 65532, the kubeconfig of the chart's
//! ServiceAccount (namespaced RBAC) mounted read-only, leader election on. Then:
//!
//! - the operator drives one example from `examples/` to its end state: a Synapse Ready, and for
//!   each bridge operator its bridge Registered and Ready, with the synapse-operator also running
//!   from its image (Registered needs both sides of the handshake);
//! - `/healthz`, `/readyz` and `/metrics` answer, from inside the container: the image has no
//!   shell and no HTTP client to `podman exec`, so the endpoints are asked on the loopback the
//!   container shares with the host, and the test checks that each listening socket belongs to
//!   the container's process (is one of its file descriptors): no other process answered;
//! - SIGTERM (`podman kill --signal TERM`, what `podman stop` and the kubelet send first) stops
//!   it within the grace period with exit code 0 and the leader Lease released.
//!
//! The image contents and the charts' default image references are checked on their own (the
//! latter offline). Containers, releases and namespaces are removed also when a test fails.
//!
//! Needs root, the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`) and what `hack/image`
//! installs (podman, runc, musl-tools, the rustup musl target).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use e2e::charts::{Release, service_account_kubeconfig};
use e2e::objects::{condition_state, namespaced, wait_object};
use e2e::operator_process::metric_sum;
use e2e::operators::{free_local_port, http_get, install_crds, without_cargo_test_env};
use e2e::{TestNamespace, repo_root, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;
use synapse_support::{TIMEOUT, restricted_namespace, synapses, wait_running};

const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];
/// The chart's non-root user, which the Dockerfile sets.
const UID: u32 = 65532;
/// What `podman stop` waits between SIGTERM and SIGKILL by default, less than a Pod's 30 s.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The issue's target.
const MAX_IMAGE_BYTES: u64 = 30_000_000;

/// Runs podman, returning its standard output; panics with both streams unless it succeeds.
fn podman(args: &[&str]) -> String {
    let output = Command::new("podman")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run podman (hack/image installs it): {e}"));
    assert!(
        output.status.success(),
        "`podman {}` failed ({}):\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The references `hack/image` tags, by operator (`hack/image names`, with the default prefix).
fn image_names() -> BTreeMap<String, String> {
    let output = Command::new(repo_root().join("hack/image"))
        .arg("names")
        .env_remove("IMAGE_PREFIX")
        .output()
        .expect("run hack/image names");
    assert!(
        output.status.success(),
        "hack/image names: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), OPERATORS.len(), "{names:?}");
    OPERATORS
        .iter()
        .map(|operator| {
            let name = names
                .iter()
                .find(|n| {
                    n.rsplit_once(':')
                        .and_then(|(repository, _)| repository.rsplit('/').next())
                        == Some(*operator)
                })
                .unwrap_or_else(|| panic!("no image of {operator} in {names:?}"));
            ((*operator).to_owned(), name.clone())
        })
        .collect()
}

/// The three images, built by `hack/image` (the static binaries and the images; a no-op build
/// when nothing changed) the first time a test of this process asks.
fn images() -> &'static BTreeMap<String, String> {
    static IMAGES: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let started = Instant::now();
        let mut command = Command::new(repo_root().join("hack/image"));
        let output = without_cargo_test_env(&mut command)
            .env_remove("IMAGE_PREFIX")
            .output()
            .expect("run hack/image");
        assert!(
            output.status.success(),
            "hack/image failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "hack/image ({:?}):\n{}",
            started.elapsed(),
            String::from_utf8_lossy(&output.stdout)
        );
        image_names()
    })
}

/// This process's resource limit `name` (a row of `/proc/self/limits`) as podman's `soft:hard`.
fn own_limit(name: &str) -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let values: Vec<&str> = limits
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in /proc/self/limits"))
        .split_whitespace()
        .take(2)
        .map(|v| if v == "unlimited" { "-1" } else { v })
        .collect();
    values.join(":")
}

/// The inodes of the sockets listening on 127.0.0.1:`port` (TCP, IPv4) in this network namespace.
fn listening_sockets(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (address, local_port) = fields.get(1)?.split_once(':')?;
            let listening = fields.get(3) == Some(&"0A");
            (address == "0100007F"
                && u16::from_str_radix(local_port, 16).ok() == Some(port)
                && listening)
                .then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
        })
        .collect()
}

/// Whether `pid` has the socket `inode` open.
fn holds_socket(pid: u32, inode: &str) -> bool {
    let needle = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == Path::new(&needle)))
}

/// One operator running from its image in a podman container; removed when dropped, its log
/// printed first when the test is failing.
struct Container {
    operator: String,
    name: String,
    health: SocketAddr,
    metrics: SocketAddr,
}

impl Container {
    /// Runs `operator`'s image watching `namespace` (its Lease there too) as the identity of
    /// `kubeconfig`, and waits until it is ready.
    async fn start(operator: &str, namespace: &str, kubeconfig: &Path) -> Self {
        let image = &images()[operator];
        let name = format!("{namespace}-{operator}");
        let health: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let metrics: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        // Readable by the image's user, as a projected token is in a Pod.
        std::os::unix::fs::chown(kubeconfig, Some(UID), Some(UID))
            .unwrap_or_else(|e| panic!("chown {}: {e}", kubeconfig.display()));
        let mount = format!(
            "type=bind,source={},target=/var/run/operator/kubeconfig,readonly",
            kubeconfig.display()
        );
        let container = Self {
            operator: operator.to_owned(),
            name: name.clone(),
            health,
            metrics,
        };
        podman(&[
            "run",
            "--detach",
            "--name",
            &name,
            "--pull",
            "never",
            // crun, podman's first choice, fails on this host's hybrid cgroups. runc cannot set
            // podman's default limits, which are above what this host allows (the hard limit
            // of open files, and the kernel's pid_max for processes): this process's open
            // files, and processes enough for an operator's threads.
            "--runtime",
            "runc",
            "--ulimit",
            &format!("nofile={}", own_limit("Max open files")),
            "--ulimit",
            "nproc=4096:4096",
            "--network",
            "host",
            // As the chart's securityContext: readOnlyRootFilesystem (no tmpfs either), no
            // capabilities, no privilege escalation; the user is the image's.
            "--read-only",
            "--read-only-tmpfs=false",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--mount",
            &mount,
            "--env",
            "KUBECONFIG=/var/run/operator/kubeconfig",
            // The Lease holder identity, as the chart sets it from the Pod's name.
            "--env",
            &format!("POD_NAME={name}"),
            image,
            "run",
            "--namespace",
            namespace,
            "--leader-elect=true",
            "--leader-election-namespace",
            namespace,
            "--health-addr",
            &health.to_string(),
            "--metrics-addr",
            &metrics.to_string(),
            "--log-format",
            "json",
        ]);
        wait_for(TIMEOUT, &format!("{name} /readyz"), || async {
            assert!(
                container.running(),
                "{name} exited; its log:\n{}",
                container.log()
            );
            http_get(container.health, "/readyz")
                .is_ok_and(|(code, _)| code == 200)
                .then_some(())
        })
        .await;
        container
    }

    fn inspect(&self, format: &str) -> String {
        podman(&["inspect", "--format", format, &self.name])
            .trim()
            .to_owned()
    }

    fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// The operator's process id on the host.
    fn pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}")
            .parse()
            .unwrap_or_else(|e| panic!("the pid of {}: {e}", self.name))
    }

    fn log(&self) -> String {
        let output = Command::new("podman")
            .args(["logs", &self.name])
            .output()
            .expect("run podman logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Checks that the process runs as the image's user, that the health and metrics sockets
    /// are its own, and that the endpoints answer; returns the metrics text.
    fn check_endpoints(&self) -> String {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read the status of {} ({pid}): {e}", self.name));
        let uids = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .expect("a Uid line");
        assert!(
            uids.split_whitespace().all(|uid| uid == UID.to_string()),
            "{} runs as Uid {uids}",
            self.name
        );
        for addr in [self.health, self.metrics] {
            let sockets = listening_sockets(addr.port());
            assert!(
                !sockets.is_empty() && sockets.iter().all(|inode| holds_socket(pid, inode)),
                "{addr} is not (only) the socket of {} (pid {pid}): {sockets:?}",
                self.name
            );
        }
        for path in ["/healthz", "/readyz"] {
            let (code, body) =
                http_get(self.health, path).unwrap_or_else(|e| panic!("{} {path}: {e}", self.name));
            assert_eq!(code, 200, "{} {path}: {body}", self.name);
        }
        let (code, text) = http_get(self.metrics, "/metrics")
            .unwrap_or_else(|e| panic!("{} /metrics: {e}", self.name));
        assert_eq!(code, 200, "{} /metrics: {text}", self.name);
        assert_eq!(
            metric_sum(&text, "matrix_operator_leader"),
            1.0,
            "{} leads:\n{text}",
            self.name
        );
        assert!(
            metric_sum(&text, "matrix_operator_reconciliations_total") >= 1.0,
            "{} reconciled:\n{text}",
            self.name
        );
        text
    }

    /// Waits until `/metrics` reports the `kind` `name` ready (the operator's own view of the
    /// end state the test saw in the object's status).
    async fn wait_object_ready_metric(&self, kind: &str, name: &str) {
        let labels = [
            format!("kind=\"{kind}\""),
            format!("object_name=\"{name}\""),
        ];
        wait_for(
            TIMEOUT,
            &format!("{} to report {kind} {name} ready", self.name),
            || async {
                let (_, text) = http_get(self.metrics, "/metrics").ok()?;
                text.lines()
                    .any(|line| {
                        line.starts_with("matrix_operator_object_ready{")
                            && labels.iter().all(|l| line.contains(l.as_str()))
                            && line.ends_with(" 1")
                    })
                    .then_some(())
            },
        )
        .await;
    }

    /// Sends SIGTERM and waits for the exit: the exit code and how long it took. Fails when the
    /// container is still running after the grace period.
    async fn terminate(&self) -> (i32, Duration) {
        let sent = Instant::now();
        podman(&["kill", "--signal", "TERM", &self.name]);
        let wait = tokio::process::Command::new("podman")
            .args(["wait", &self.name])
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(STOP_GRACE, wait)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} still runs {STOP_GRACE:?} after SIGTERM; its log:\n{}",
                    self.name,
                    self.log()
                )
            })
            .expect("run podman wait");
        let elapsed = sent.elapsed();
        let code = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("podman wait {}: {e}: {output:?}", self.name));
        (code, elapsed)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("log of {} ({}):\n{}", self.name, self.operator, self.log());
        }
        let _ = Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.name])
            .output();
    }
}

/// One test's namespace, the charts installed there (namespaced RBAC), the operators running from
/// their images as the charts' ServiceAccounts. Dropped before [`Scenario::finish`] (a failing
/// test), it removes the containers, the releases and the namespace all the same.
struct Scenario {
    client: Client,
    ns: Option<TestNamespace>,
    namespace: String,
    releases: Vec<Release>,
    containers: Vec<Container>,
    example: Option<PathBuf>,
    dir: PathBuf,
}

impl Scenario {
    async fn start(prefix: &str, operators: &[&str]) -> Self {
        let client = e2e::client().await;
        install_crds(&client).await;
        // Built before anything is created in the plane: a first build takes minutes.
        tokio::task::spawn_blocking(images)
            .await
            .expect("build the images");
        let ns = restricted_namespace(&client, prefix).await;
        let namespace = ns.name.clone();
        let dir = std::env::temp_dir().join(format!("e2e-images-{namespace}"));
        let mut scenario = Self {
            client,
            ns: Some(ns),
            namespace,
            releases: Vec::new(),
            containers: Vec::new(),
            example: None,
            dir,
        };
        for operator in operators {
            let values = [
                ("crds.install", "false"),
                ("rbac.namespaced", "true"),
                ("watchNamespace", scenario.namespace.as_str()),
            ];
            // Contains the chart name, so the release name is the full name: short enough.
            let name = format!("{}-{operator}", scenario.namespace);
            let release = Release::install(operator, &name, &scenario.namespace, &values).await;
            let account = release.service_account();
            scenario.releases.push(release);
            let kubeconfig = service_account_kubeconfig(
                &scenario.client,
                &scenario.namespace,
                &account,
                &scenario.dir,
            )
            .await;
            let container = Container::start(operator, &scenario.namespace, &kubeconfig).await;
            scenario.containers.push(container);
        }
        scenario
    }

    fn container(&self, operator: &str) -> &Container {
        self.containers
            .iter()
            .find(|c| c.operator == operator)
            .unwrap_or_else(|| panic!("no container of {operator}"))
    }

    /// `kubectl apply` of an example into the namespace, as the README shows it.
    async fn apply_example(&mut self, file: &str) {
        let path = repo_root().join("examples").join(file);
        self.kubectl_example("apply", &path, &[]).await;
        self.example = Some(path);
    }

    async fn kubectl_example(&self, verb: &str, path: &Path, extra: &[&str]) {
        let path = path.display().to_string();
        let mut args = vec!["--namespace", &self.namespace, verb, "--filename", &path];
        args.extend(extra);
        e2e::run("kubectl", &args).await;
    }

    async fn lease_holder(&self, operator: &str) -> Option<String> {
        Api::<Lease>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(&format!("{operator}-leader"))
            .await
            .expect("read the Lease")
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity)
            .filter(|holder| !holder.is_empty())
    }

    /// Checks each operator's endpoints and that it holds its Lease as PID 1 of its container;
    /// deletes the example while the operators run (a bridge's finalizer is its operator's to
    /// remove); then stops each operator with SIGTERM, the last started first, and checks its
    /// exit and that it released its Lease; then removes the releases and the namespace.
    async fn finish(mut self) {
        for container in &self.containers {
            container.check_endpoints();
            let holder = self.lease_holder(&container.operator).await;
            assert!(
                holder
                    .as_deref()
                    .is_some_and(|h| h.starts_with(&format!("{}_1_", container.name))),
                "{}'s Lease is held by {holder:?}, not by PID 1 of {}",
                container.operator,
                container.name
            );
        }
        if let Some(example) = self.example.take() {
            self.kubectl_example("delete", &example, &["--wait", "--timeout=60s"])
                .await;
        }
        while let Some(container) = self.containers.pop() {
            let (code, elapsed) = container.terminate().await;
            eprintln!("{} exited {code} {elapsed:?} after SIGTERM", container.name);
            let log = container.log();
            assert_eq!(
                code, 0,
                "{} exit code after SIGTERM; its log:\n{log}",
                container.name
            );
            assert_eq!(
                self.lease_holder(&container.operator).await,
                None,
                "{} did not release its Lease; its log:\n{log}",
                container.name
            );
            assert!(
                log.contains("released the leader Lease"),
                "{}:\n{log}",
                container.name
            );
        }
        for release in std::mem::take(&mut self.releases) {
            release.uninstall().await;
        }
        if let Some(ns) = self.ns.take() {
            ns.delete().await;
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // The containers first: they must not act on what is being deleted. Without its
        // operator, a bridge's finalizer would keep the namespace terminating for ever.
        self.containers.clear();
        if self.ns.is_some() {
            let kubectl = |args: &[&str]| {
                Command::new("kubectl")
                    .arg("--namespace")
                    .arg(&self.namespace)
                    .args(args)
                    .output()
            };
            let bridges = "heisenbridges.synapse.opdev.io,mautrixsignals.synapse.opdev.io";
            if let Ok(output) = kubectl(&["get", bridges, "--output", "name"]) {
                for bridge in String::from_utf8_lossy(&output.stdout).lines() {
                    let unfinalized = r#"{"metadata":{"finalizers":null}}"#;
                    let _ = kubectl(&["patch", bridge, "--type=merge", "--patch", unfinalized]);
                }
            }
        }
        for release in &self.releases {
            let _ = Command::new("helm")
                .args([
                    "uninstall",
                    &release.name,
                    "--namespace",
                    &release.namespace,
                ])
                .output();
        }
        if self.ns.is_some() {
            let _ = Command::new("kubectl")
                .args(["delete", "namespace", &self.namespace, "--wait=false"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn synapse_operator_from_its_image_runs_a_synapse() {
    let mut scenario = Scenario::start("img-syn", &["synapse-operator"]).await;
    scenario.apply_example("synapse-values.yaml").await;
    wait_running(&synapses(&scenario.client, &scenario.namespace), "example").await;
    scenario
        .container("synapse-operator")
        .wait_object_ready_metric("Synapse", "example")
        .await;
    scenario.finish().await;
}

/// Waits until the bridge is Registered and Ready (reason Running).
async fn wait_bridge(scenario: &Scenario, kind: &str, name: &str) {
    let api = namespaced(&scenario.client, &scenario.namespace, kind);
    wait_object(&api, name, "Registered and Ready", |bridge| {
        condition_state(bridge, "Registered") == ("True".into(), "Registered".into())
            && condition_state(bridge, "Ready") == ("True".into(), "Running".into())
    })
    .await;
}

#[tokio::test]
async fn heisenbridge_operator_from_its_image_registers_a_bridge() {
    let mut scenario =
        Scenario::start("img-irc", &["synapse-operator", "heisenbridge-operator"]).await;
    scenario.apply_example("heisenbridge.yaml").await;
    wait_running(&synapses(&scenario.client, &scenario.namespace), "example").await;
    wait_bridge(&scenario, "Heisenbridge", "irc").await;
    scenario
        .container("heisenbridge-operator")
        .wait_object_ready_metric("Heisenbridge", "irc")
        .await;
    scenario.finish().await;
}

#[tokio::test]
async fn signal_operator_from_its_image_registers_a_bridge() {
    let mut scenario = Scenario::start("img-sig", &["synapse-operator", "signal-operator"]).await;
    scenario.apply_example("mautrix-signal.yaml").await;
    wait_running(&synapses(&scenario.client, &scenario.namespace), "matrix").await;
    wait_bridge(&scenario, "MautrixSignal", "signal").await;
    scenario
        .container("signal-operator")
        .wait_object_ready_metric("MautrixSignal", "signal")
        .await;
    scenario.finish().await;
}

/// The files of a directory tree, relative to it.
fn files_under(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                files.push(relative.display().to_string());
            }
        }
    }
    files.sort();
    files
}

#[test]
fn each_image_holds_the_operator_and_a_ca_bundle_only_and_runs_as_65532() {
    for (operator, image) in images() {
        let config: serde_json::Value = serde_json::from_str(&podman(&["image", "inspect", image]))
            .expect("podman image inspect prints JSON");
        let config = &config[0];
        let size = config["Size"].as_u64().expect("an image size");
        assert!(
            size < MAX_IMAGE_BYTES,
            "{image} is {size} bytes, over {MAX_IMAGE_BYTES}"
        );
        assert_eq!(config["Config"]["User"], "65532:65532", "{image}");
        assert_eq!(
            config["Config"]["Entrypoint"],
            serde_json::json!(["/operator"]),
            "{image}"
        );
        assert_eq!(
            config["Config"]["Cmd"],
            serde_json::json!(["run"]),
            "{image}"
        );
        let labels = &config["Config"]["Labels"];
        let tag = image.rsplit_once(':').expect("a tag").1;
        assert_eq!(
            labels["org.opencontainers.image.title"],
            operator.as_str(),
            "{image}"
        );
        assert_eq!(labels["org.opencontainers.image.version"], tag, "{image}");
        for label in [
            "org.opencontainers.image.revision",
            "org.opencontainers.image.source",
            "org.opencontainers.image.licenses",
        ] {
            assert!(
                labels[label]
                    .as_str()
                    .is_some_and(|v| !v.is_empty() && v != "unknown"),
                "{image}: label {label} is {}",
                labels[label]
            );
        }
        let root = podman(&["image", "mount", image]);
        let files = files_under(Path::new(root.trim()));
        podman(&["image", "unmount", image]);
        assert_eq!(
            files,
            ["etc/ssl/certs/ca-certificates.crt", "operator"],
            "{image}: no shell, nothing but the operator and the CA bundle"
        );
    }
}

#[test]
fn hack_image_tags_the_charts_default_images() {
    for (operator, image) in image_names() {
        let chart = e2e::charts::chart_dir(&operator);
        let read = |file: &str| -> serde_yaml::Value {
            let path = chart.join(file);
            serde_yaml::from_str(
                &std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let values = read("values.yaml");
        let app_version = read("Chart.yaml")["appVersion"]
            .as_str()
            .expect("an appVersion")
            .to_owned();
        let repository = values["image"]["repository"]
            .as_str()
            .expect("image.repository");
        let deployment = std::fs::read_to_string(chart.join("templates/deployment.yaml"))
            .expect("read the chart's Deployment template");
        let image_line = concat!(
            "image: \"{{ .Values.image.repository }}:",
            "{{ .Values.image.tag | default .Chart.AppVersion }}\""
        );
        assert!(
            deployment.contains(image_line),
            "{operator}: the Deployment's image is no longer image.repository and image.tag or \
             the appVersion; update this test and hack/image together"
        );
        let tag = values["image"]["tag"]
            .as_str()
            .filter(|t| !t.is_empty())
            .unwrap_or(&app_version);
        assert_eq!(
            image,
            format!("{repository}:{tag}"),
            "{operator}: the chart's default image"
        );
    }
}
