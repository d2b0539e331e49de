//! A second kube-apiserver on the local plane's etcd, for one test alone: a fault test may kill
//! and restart it without disturbing the other tests, which share the plane's own apiserver
//! (several apiservers on one etcd is an ordinary highly available control plane). It runs the
//! binary and flags of the plane's apiserver as `hack/cluster` started it, read from that
//! process, on a free loopback port; a kubeconfig for it is written beside its log. Killed when
//! dropped.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::operators::free_local_port;

/// Long enough for a loaded 2-core machine; the apiserver is usually ready in a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub struct PrivateApiserver {
    binary: PathBuf,
    args: Vec<OsString>,
    port: u16,
    kubeconfig: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl PrivateApiserver {
    /// Starts it and waits until it is ready.
    pub async fn start(label: &str) -> Self {
        let shared_kubeconfig = PathBuf::from(
            crate::run(
                &crate::repo_root().join("hack/cluster").to_string_lossy(),
                &["kubeconfig"],
            )
            .await
            .trim(),
        );
        let cluster_dir = shared_kubeconfig
            .parent()
            .expect("the plane's kubeconfig is in its state directory");
        let (binary, shared_args) = plane_apiserver_command(cluster_dir);
        let port = free_local_port();
        let args = with_secure_port(&shared_args, port);

        let dir = std::env::temp_dir().join(format!(
            "e2e-apiserver-{label}-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&shared_kubeconfig, &kubeconfig, port);
        let mut apiserver = Self {
            binary,
            args,
            port,
            kubeconfig,
            log: dir.join("kube-apiserver.log"),
            child: None,
        };
        apiserver.spawn();
        apiserver.wait_ready().await;
        eprintln!(
            "private kube-apiserver on 127.0.0.1:{port}, log {}",
            apiserver.log.display()
        );
        apiserver
    }

    /// A kubeconfig with the plane's admin credentials, pointing at this apiserver.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// SIGKILL: the apiserver gets no chance to close its connections or finish requests.
    pub fn kill(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the apiserver runs");
        if let Some(status) = child.try_wait().expect("poll the apiserver") {
            panic!(
                "the private apiserver had exited by itself ({status}); see {}",
                self.log.display()
            );
        }
        child.kill().expect("SIGKILL the apiserver");
        child.wait().expect("reap the apiserver")
    }

    /// Starts it again on the same port and waits until it is ready.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running apiserver");
        self.spawn();
        self.wait_ready().await;
    }

    fn spawn(&mut self) {
        // Appended: the log keeps every incarnation.
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("open {}: {e}", self.log.display()));
        let child = Command::new(&self.binary)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    async fn wait_ready(&mut self) {
        let client = kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read the kubeconfig"),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("a client configuration"),
        )
        .expect("a client");
        let started = tokio::time::Instant::now();
        loop {
            let child = self.child.as_mut().expect("the apiserver runs");
            if let Some(status) = child.try_wait().expect("poll the apiserver") {
                panic!(
                    "the private apiserver exited ({status}) before it was ready:\n{}",
                    self.log_tail()
                );
            }
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a request");
            if client.request_text(request).await.is_ok_and(|t| t == "ok") {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "the private apiserver is not ready after {READY_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PrivateApiserver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("private apiserver log kept in {}", self.log.display());
        } else if let Some(dir) = self.log.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The binary and arguments of the plane's running apiserver, from the pid file `hack/cluster`
/// keeps (`<pid> <binary>`) and the process's command line: the flags are never written twice.
fn plane_apiserver_command(cluster_dir: &Path) -> (PathBuf, Vec<OsString>) {
    let pid_file = cluster_dir.join("run/kube-apiserver.pid");
    let recorded = std::fs::read_to_string(&pid_file)
        .unwrap_or_else(|e| panic!("read {} (is the plane up?): {e}", pid_file.display()));
    let (pid, binary) = recorded
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("{} is not `<pid> <binary>`", pid_file.display()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_else(|e| panic!("read the command line of the plane's apiserver {pid}: {e}"));
    let mut words = cmdline
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| OsString::from(String::from_utf8_lossy(w).into_owned()));
    let program = words.next().expect("a command line names its program");
    assert_eq!(
        Path::new(&program),
        Path::new(binary),
        "pid {pid} no longer runs the plane's apiserver"
    );
    (PathBuf::from(binary), words.collect())
}

/// `args` with `--secure-port` set to `port` (the only listening socket of the apiserver).
fn with_secure_port(args: &[OsString], port: u16) -> Vec<OsString> {
    let mut replaced = 0;
    let out = args
        .iter()
        .map(|arg| {
            if arg.to_string_lossy().starts_with("--secure-port=") {
                replaced += 1;
                OsString::from(format!("--secure-port={port}"))
            } else {
                arg.clone()
            }
        })
        .collect();
    assert_eq!(
        replaced, 1,
        "expected one --secure-port=<port> flag in {args:?}"
    );
    out
}

/// The plane's kubeconfig with every cluster's server set to `https://127.0.0.1:<port>`; the
/// plane's serving certificate names 127.0.0.1, whatever the port.
fn write_kubeconfig(shared: &Path, path: &Path, port: u16) {
    let text = std::fs::read_to_string(shared)
        .unwrap_or_else(|e| panic!("read {}: {e}", shared.display()));
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", shared.display()));
    let clusters = config["clusters"]
        .as_sequence_mut()
        .expect("a kubeconfig lists clusters");
    for cluster in clusters {
        cluster["cluster"]["server"] = format!("https://127.0.0.1:{port}").into();
    }
    std::fs::write(path, serde_yaml::to_string(&config).expect("serialise"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    // It holds the admin's private key.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secure_port_changes() {
        let args: Vec<OsString> = ["--bind-address=127.0.0.1", "--secure-port=16443", "--x=1"]
            .map(OsString::from)
            .to_vec();
        let out = with_secure_port(&args, 20001);
        assert_eq!(
            out,
            ["--bind-address=127.0.0.1", "--secure-port=20001", "--x=1"].map(OsString::from)
        );
    }
}
