//! The pod harness: runs the process of a Pod the local cluster created, for real, on this
//! machine.
//!
//! kwok makes Pods "Running" without running anything, and no image can be pulled here. To prove
//! that what an operator writes really works, a test hands the harness a Pod (or a Deployment,
//! whose ready pod of the newest ReplicaSet is taken): the harness reads the Pod and the objects
//! its volumes and env reference through the API, lays the volumes out as the kubelet would,
//! and runs the container's `command` + `args` with a local program standing in for the image
//! (see [`images`]: the pinned PyPI programs, Debian's redis-server and nginx):
//!
//! - in a network namespace per [`Scenario`] (`ip netns add`, loopback only): the pods of one
//!   scenario reach each other on 127.0.0.1, parallel scenarios never collide on ports;
//! - in a private mount (and UTS) namespace, chrooted into a view of the host's `/` where every
//!   volume is bind-mounted at its `mountPath` (`subPath`, `readOnly` honoured) and `/etc/hosts`
//!   maps the scenario's Service names to 127.0.0.1 (see [`rootfs`]: mount points missing on the
//!   host are made on a tmpfs in the view, never on the host);
//! - as the securityContext's `runAsUser`/`runAsGroup` (the image's user, root, otherwise), with
//!   `fsGroup` applied to the volumes and the default container capabilities, via `setpriv`.
//!
//! What is not emulated: init containers, probes, lifecycle hooks, resource limits, the image's
//! own files and environment (the program's tree and the host's `/` stand in), Service-link env
//! vars (they would hold ClusterIPs, which nothing routes to), `/etc/resolv.conf` and
//! `/dev/termination-log`.
//!
//! Every process, mount and namespace is gone after [`PodProcess`] and [`Scenario`] are dropped,
//! also when a test panics; a run killed before its Drop ran is cleaned up by the next
//! [`Scenario::new`]. Needs root. State lives outside the repo, see [`state_dir`].

pub mod fetch;
pub mod hosts;
pub mod images;
pub mod materialize;
pub mod netns;
pub mod plan;
pub mod proxy;
pub mod relay;
pub mod rootfs;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub use hosts::ServiceName;
pub use images::{Program, Programs};
pub use netns::{NetNs, Request, Response};
pub use plan::RunPlan;
pub use relay::PortForward;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pod, or an object it references, asks for something the harness cannot run.
    #[error("{0}")]
    Spec(String),
    /// This machine is not ready (not root, venv or Debian tree missing...).
    #[error("{0}")]
    Setup(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("timed out after {after:?} waiting for {what}{context}")]
    Timeout {
        what: String,
        after: Duration,
        context: String,
    },
    #[error("{pod} exited ({status}) while waiting for {what}; its output ends with:\n{tail}")]
    Exited {
        pod: String,
        status: ExitStatus,
        what: String,
        tail: String,
    },
    #[error("HTTP {detail}")]
    Http { detail: String },
}

/// Where the harness keeps run directories and claim data: `$POD_HARNESS_STATE_DIR`, else
/// `$XDG_STATE_HOME/synapse-operators/pod-harness`, else `~/.local/state/...`. Processes reach
/// their volumes through bind mounts, so this may sit under a private home directory.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("POD_HARNESS_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    base.join("synapse-operators/pod-harness")
}

fn claims_root() -> PathBuf {
    state_dir().join("claims")
}

fn runs_root() -> PathBuf {
    state_dir().join("runs")
}

/// Deletes the persistent claim data the harness kept for `namespace` (call it when a test is
/// done with the namespace; a live pod's claim is never removed by the harness on its own).
pub fn forget_claims(namespace: &str) -> Result<(), Error> {
    let dir = claims_root().join(namespace);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            what: format!("remove {}", dir.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Removes run directories of harness processes that are gone.
fn reap_stale_runs() {
    let Ok(entries) = fs::read_dir(runs_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Pods that talk to each other: one network namespace and one set of Service names.
pub struct Scenario {
    id: String,
    dir: PathBuf,
    netns: Arc<NetNs>,
    services: Vec<ServiceName>,
    /// Extra names that resolve to 127.0.0.1 ([`Scenario::add_host`]).
    hosts: Vec<String>,
    programs: Programs,
    requirements_dir: PathBuf,
    next_pod: AtomicUsize,
}

impl Scenario {
    /// A scenario with a fresh network namespace `podh-<pid>-<n>`. `label` names its run
    /// directory (for humans reading leftovers of a failed test).
    pub fn new(label: &str) -> Result<Self, Error> {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self::with_netns(
            label,
            &format!("{}{}-{n}", netns::PREFIX, std::process::id()),
        )
    }

    /// A scenario whose network namespace has the given name (which must not exist yet), for
    /// a human or a demo script that wants to `ip netns exec` into it.
    pub fn with_netns(label: &str, netns_name: &str) -> Result<Self, Error> {
        if !nix::unistd::geteuid().is_root() {
            return Err(Error::Setup(
                "the pod harness needs root (it makes mount and network namespaces)".into(),
            ));
        }
        netns::reap_stale()?;
        reap_stale_runs();
        let requirements_dir = crate::repo_root().join("hack/python-requirements");
        let programs = Programs::load(
            &requirements_dir,
            &images::venv_root(),
            &images::debian_root(),
        )?;
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}-{label}", std::process::id());
        let dir = runs_root().join(&id);
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
        let netns = NetNs::create(netns_name)?;
        Ok(Self {
            id,
            dir,
            netns: Arc::new(netns),
            services: Vec::new(),
            hosts: Vec::new(),
            programs,
            requirements_dir,
            next_pod: AtomicUsize::new(0),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Makes `name.namespace` (and its longer forms, and `name` for pods of `namespace`)
    /// resolve to 127.0.0.1 in the pods started afterwards.
    pub fn add_service(&mut self, namespace: &str, name: &str) {
        self.services.push(ServiceName::new(namespace, name));
    }

    /// Makes the host name `name` (e.g. `matrix.a.test`) resolve to 127.0.0.1 in the pods started
    /// afterwards: external DNS pointing a public name at the cluster's Gateway, which a proxy on
    /// 127.0.0.1 stands in for (see [`proxy`]).
    pub fn add_host(&mut self, name: &str) -> Result<(), Error> {
        if !hosts::valid_host_name(name) {
            return Err(Error::Spec(format!(
                "{name:?} is not a host name for /etc/hosts"
            )));
        }
        self.hosts.push(name.to_string());
        Ok(())
    }

    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// Relays connections to 127.0.0.1:`port_in_netns` inside this scenario's namespace to
    /// `target`, a loopback address of the host (e.g. the tests' PostgreSQL), until the returned
    /// guard is dropped. With [`Scenario::add_service`], a pod reaches a host server by a
    /// Service's name and port.
    pub fn forward_port(
        &self,
        port_in_netns: u16,
        target: std::net::SocketAddr,
    ) -> Result<PortForward, Error> {
        PortForward::start(&self.netns, port_in_netns, target)
    }

    /// The pinned programs images resolve to (for planning a pod by hand, see [`plan::plan`]).
    pub fn programs(&self) -> &Programs {
        &self.programs
    }

    /// Runs `container` (or the only container) of an existing pod.
    pub async fn run_pod(
        &self,
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
    ) -> Result<PodProcess, Error> {
        let pod = fetch::pod(client, namespace, pod).await?;
        self.run(client, &pod, container).await
    }

    /// Runs `container` of the ready pod of the Deployment's newest ReplicaSet, waiting up to
    /// `timeout` for that pod.
    pub async fn run_deployment(
        &self,
        client: &kube::Client,
        namespace: &str,
        deployment: &str,
        container: Option<&str>,
        timeout: Duration,
    ) -> Result<PodProcess, Error> {
        let pod = fetch::deployment_pod(client, namespace, deployment, timeout).await?;
        self.run(client, &pod, container).await
    }

    /// Plays the kubelet of the pod of the Job `job`, in a namespace where kwok leaves Job pods
    /// to tests (`kubelet-by-test-*`, see hack/cluster-kwok.yaml): runs it for real until it
    /// exits (within `timeout`), then writes how it ended as a kubelet does, with the end of its
    /// output as the termination message (`FallbackToLogsOnError`, which is what a failing
    /// container's message is when it wrote none). Returns its exit status and output.
    pub async fn finish_job(
        &self,
        client: &kube::Client,
        namespace: &str,
        job: &str,
        timeout: Duration,
    ) -> Result<(ExitStatus, String), Error> {
        let pod = fetch::job_pod(client, namespace, job, timeout).await?;
        let mut process = self.run(client, &pod, None).await?;
        let status = process.wait_exit(timeout).await?;
        let output = process.output();
        let code = status.code().unwrap_or(128);
        let (phase, reason) = match code {
            0 => ("Succeeded", "Completed"),
            _ => ("Failed", "Error"),
        };
        // The kubelet's limits on a message taken from the log: 80 lines, 2048 bytes.
        let lines: Vec<&str> = output.lines().collect();
        let message = lines[lines.len().saturating_sub(80)..].join("\n");
        let mut start = message.len().saturating_sub(2048);
        while !message.is_char_boundary(start) {
            start += 1;
        }
        let message = &message[start..];
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        let container = &pod.spec.as_ref().map(|s| s.containers[0].name.clone());
        let ended = serde_json::json!({"status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                            "lastTransitionTime": now}],
            "containerStatuses": [{
                "name": container, "image": pod.spec.as_ref().and_then(|s| s.containers[0].image.clone()),
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "reason": reason, "message": message,
                                         "startedAt": now, "finishedAt": now}},
            }],
        }});
        let name = pod.metadata.name.clone().unwrap_or_default();
        kube::Api::<Pod>::namespaced(client.clone(), namespace)
            .patch_status(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&ended),
            )
            .await
            .map_err(|source| Error::Kube {
                what: format!("write how pod {namespace}/{name} ended"),
                source,
            })?;
        Ok((status, output))
    }

    /// Plans and starts one container of `pod`.
    pub async fn run(
        &self,
        client: &kube::Client,
        pod: &Pod,
        container: Option<&str>,
    ) -> Result<PodProcess, Error> {
        let chosen = plan::select_container(pod, container)?;
        let refs = plan::references(pod, chosen)?;
        let sources = fetch::sources(client, pod, &refs).await?;
        let plan = plan::plan(pod, Some(&chosen.name), &sources, &self.programs)?;
        self.start(plan)
    }

    /// Starts a planned container.
    pub fn start(&self, plan: RunPlan) -> Result<PodProcess, Error> {
        images::check_installed(&plan.program, &self.requirements_dir)?;
        let n = self.next_pod.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .dir
            .join(format!("{n}-{}-{}", plan.pod, plan.container));
        match self.spawn(&plan, &dir) {
            Ok((child, volume_dirs)) => Ok(PodProcess {
                label: format!("{}/{} ({})", plan.namespace, plan.pod, plan.container),
                child,
                exit: None,
                netns: Arc::clone(&self.netns),
                stdout: dir.join("stdout.log"),
                stderr: dir.join("stderr.log"),
                dir,
                volume_dirs,
                plan,
                started: Instant::now(),
            }),
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    fn spawn(
        &self,
        plan: &RunPlan,
        dir: &Path,
    ) -> Result<(Child, BTreeMap<String, PathBuf>), Error> {
        let io = |what: String| move |source| Error::Io { what, source };
        let root = dir.join("root");
        fs::create_dir_all(&root).map_err(io(format!("create {}", root.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", dir.display())))?;

        let hosts = dir.join("hosts");
        fs::write(
            &hosts,
            hosts::render(&plan.hostname, &plan.namespace, &self.services, &self.hosts),
        )
        .map_err(io(format!("write {}", hosts.display())))?;
        fs::set_permissions(&hosts, fs::Permissions::from_mode(0o644))
            .map_err(io(format!("chmod {}", hosts.display())))?;

        let (mut mounts, volume_dirs) = materialize::materialize(plan, dir, &claims_root())?;
        mounts.push(rootfs::ViewMount {
            target: "/etc/hosts".into(),
            source: hosts,
            source_is_dir: false,
            read_only: true,
        });
        let make_dirs: Vec<String> = plan.working_dir.iter().cloned().collect();
        let ops = rootfs::plan_view(&rootfs::RealFs, &mounts, &make_dirs, plan.read_only_root)?;

        // The container's environment goes through a root-only file, not through the shell:
        // dash drops names that are not shell identifiers (Kubernetes allows `a.b`), and values
        // (maybe from Secrets) never appear on a command line. The helper deletes it.
        let env_file = dir.join("env");
        let mut env = Vec::new();
        for (name, value) in &plan.env.0 {
            env.extend_from_slice(format!("{name}={value}\0").as_bytes());
        }
        fs::write(&env_file, env).map_err(io(format!("write {}", env_file.display())))?;
        fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600))
            .map_err(io(format!("chmod {}", env_file.display())))?;
        let mut argv = vec![
            PYTHON.to_string(),
            "-I".into(),
            "-S".into(),
            "-c".into(),
            EXEC_WITH_ENV.into(),
            env_file.display().to_string(),
            plan.working_dir.clone().unwrap_or_default(),
        ];
        argv.extend(exec_argv(plan));

        let script = dir.join("run.sh");
        fs::write(
            &script,
            rootfs::render_script(&root, &plan.hostname, &ops, &argv),
        )
        .map_err(io(format!("write {}", script.display())))?;

        // Owned by the pod's user, as runc hands a container its stdio: a program that reopens
        // them (nginx's `access_log /dev/stdout`) may, as in a cluster.
        let log = |name: &str| {
            let path = dir.join(name);
            let file = File::create(&path).map_err(io(format!("create {}", path.display())))?;
            std::os::unix::fs::fchown(&file, Some(plan.user.uid), None)
                .map_err(io(format!("chown {}", path.display())))?;
            Ok::<_, Error>(file)
        };
        let child = Command::new("/usr/bin/nsenter")
            .arg(format!("--net={}", self.netns.path().display()))
            .args(["--", "/usr/bin/unshare", "--mount", "--uts"])
            .args(["--propagation", "private", "--", "/bin/sh"])
            .arg(&script)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?)
            // Its own process group, so a stop reaches whatever the process started.
            .process_group(0)
            .spawn()
            .map_err(io(format!("start {}", plan.pod)))?;
        Ok((child, volume_dirs))
    }
}

/// Debian's interpreter, which every venv of `hack/python-env` is made from.
const PYTHON: &str = "/usr/bin/python3.11";

/// Replaces itself with `argv[3:]`, in directory `argv[2]` (when not empty), under the
/// environment read from `argv[1]`, which it deletes unless the pod's root filesystem is
/// read-only (the run directory is removed when the process stops anyway).
const EXEC_WITH_ENV: &str = "import os, sys\n\
with open(sys.argv[1], 'rb') as f:\n    data = f.read()\n\
try:\n    os.unlink(sys.argv[1])\nexcept OSError:\n    pass\n\
env = dict(item.split(b'=', 1) for item in data.split(b'\\0') if item)\n\
if sys.argv[2]:\n    os.chdir(sys.argv[2])\n\
os.execve(sys.argv[3], sys.argv[3:], env)\n";

/// The command run chrooted in the view: `setpriv` switches to the pod's identity, then runs
/// the container's argv.
fn exec_argv(plan: &RunPlan) -> Vec<String> {
    let user = &plan.user;
    let mut argv = vec![
        "/usr/bin/setpriv".to_string(),
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
    ];
    if user.groups.is_empty() {
        argv.push("--clear-groups".into());
    } else {
        let groups: Vec<_> = user.groups.iter().map(u32::to_string).collect();
        argv.push(format!("--groups={}", groups.join(",")));
    }
    let mut caps = vec!["-all".to_string()];
    caps.extend(user.capabilities.iter().map(|c| format!("+{c}")));
    argv.push(format!("--bounding-set={}", caps.join(",")));
    if user.no_new_privs {
        argv.push("--no-new-privs".into());
    }
    argv.push("--".into());
    argv.extend(plan.argv.iter().cloned());
    argv
}

/// A running container process. Dropping it stops the process (SIGTERM, then SIGKILL after the
/// pod's grace period) and removes its run directory, keeping the logs when the thread panics.
pub struct PodProcess {
    label: String,
    child: Child,
    exit: Option<ExitStatus>,
    netns: Arc<NetNs>,
    dir: PathBuf,
    stdout: PathBuf,
    stderr: PathBuf,
    volume_dirs: BTreeMap<String, PathBuf>,
    plan: RunPlan,
    started: Instant,
}

impl PodProcess {
    /// The container's process (after the exec chain: the program itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    pub fn stdout_path(&self) -> &Path {
        &self.stdout
    }

    pub fn stderr_path(&self) -> &Path {
        &self.stderr
    }

    /// The host directory behind a volume (a claim's persists across runs).
    pub fn volume_dir(&self, volume: &str) -> Option<&Path> {
        self.volume_dirs.get(volume).map(PathBuf::as_path)
    }

    /// Everything the process wrote so far, stdout then stderr.
    pub fn output(&self) -> String {
        let read = |p: &Path| fs::read(p).unwrap_or_default();
        let mut out = read(&self.stdout);
        out.extend(read(&self.stderr));
        String::from_utf8_lossy(&out).into_owned()
    }

    fn tail(&self) -> String {
        let output = self.output();
        let lines: Vec<_> = output.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Result<Option<ExitStatus>, Error> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().map_err(|source| Error::Io {
                what: format!("wait for {}", self.label),
                source,
            })?;
        }
        Ok(self.exit)
    }

    /// Fails with the end of the output if the process has exited.
    pub fn check_running(&mut self, waiting_for: &str) -> Result<(), Error> {
        match self.try_exit()? {
            None => Ok(()),
            Some(status) => Err(Error::Exited {
                pod: self.label.clone(),
                status,
                what: waiting_for.to_string(),
                tail: self.tail(),
            }),
        }
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, Error> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit()? {
                return Ok(status);
            }
            if start.elapsed() >= timeout {
                return Err(Error::Timeout {
                    what: format!("{} to exit", self.label),
                    after: timeout,
                    context: format!("; its output ends with:\n{}", self.tail()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `needle` appears in stdout or stderr.
    pub async fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<(), Error> {
        let what = format!("log line {needle:?}");
        let start = Instant::now();
        loop {
            if self.output().contains(needle) {
                return Ok(());
            }
            self.check_running(&what)?;
            if start.elapsed() >= timeout {
                return Err(Error::Timeout {
                    what: format!("{what} from {}", self.label),
                    after: timeout,
                    context: format!("; its output ends with:\n{}", self.tail()),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `port`/`path` answers 200, failing at once if the process exits.
    pub async fn wait_http_ok(
        &mut self,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<Response, Error> {
        let netns = Arc::clone(&self.netns);
        let what = format!("HTTP 200 from :{port}{path}");
        let result =
            netns::wait_http_ok(&netns, port, path, timeout, || self.check_running(&what)).await;
        match result {
            Err(Error::Timeout {
                what,
                after,
                context,
            }) => Err(Error::Timeout {
                what,
                after,
                context: format!(
                    "{context}; output of {} ends with:\n{}",
                    self.label,
                    self.tail()
                ),
            }),
            other => other,
        }
    }

    pub async fn http(&self, request: Request) -> Result<Response, Error> {
        self.netns.http(request).await
    }

    pub async fn http_get(&self, port: u16, path: &str) -> Result<Response, Error> {
        self.netns.http_get(port, path).await
    }

    pub async fn http_post(
        &self,
        port: u16,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<Response, Error> {
        self.netns.http_post(port, path, content_type, body).await
    }

    /// Stops the process like the kubelet: SIGTERM to its process group, SIGKILL after the
    /// grace period. Returns its exit status.
    pub fn stop(&mut self) -> Result<ExitStatus, Error> {
        let group = Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
        if self.try_exit()?.is_none() {
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + self.plan.grace_period;
            while self.try_exit()?.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let status = match self.try_exit()? {
            Some(status) => status,
            None => {
                let _ = killpg(group, Signal::SIGKILL);
                let status = self.child.wait().map_err(|source| Error::Io {
                    what: format!("wait for {}", self.label),
                    source,
                })?;
                self.exit = Some(status);
                status
            }
        };
        // Whatever the process started and left behind in its group.
        let _ = killpg(group, Signal::SIGKILL);
        Ok(status)
    }
}

impl Drop for PodProcess {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("pod harness: stopping {}: {e}", self.label);
        }
        if std::thread::panicking() {
            // Keep the logs for the failure, drop the volumes (they may hold secrets).
            let _ = fs::remove_dir_all(self.dir.join("volumes"));
            let _ = fs::remove_dir_all(self.dir.join("root"));
            eprintln!(
                "pod harness: logs of {} kept in {}",
                self.label,
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // Only if empty: a failed run's kept logs stay.
        let _ = fs::remove_dir(&self.dir);
    }
}
