//! Helpers for tests of the CRDs and the operator binaries: install `crds/`, build and locate an
//! operator binary, read its HTTP endpoints.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use crate::{repo_root, wait_for};

/// Applies every CRD under `crds/` (server-side, so repeated calls are harmless), waits until
/// each is Established and returns their names.
pub async fn install_crds(client: &Client) -> Vec<String> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut files: Vec<_> = std::fs::read_dir(repo_root().join("crds"))
        .expect("read crds/")
        .map(|entry| entry.expect("read crds/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "expected three CRDs under crds/: {files:?}");
    let mut names = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a CRD file");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", file.display()));
        let name = crd.metadata.name.clone().expect("a CRD has a name");
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {}: {e}", file.display()));
        names.push(name);
    }
    for name in &names {
        wait_for(
            Duration::from_secs(30),
            &format!("CRD {name} Established"),
            || async {
                let crd = api.get(name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            },
        )
        .await;
    }
    names
}

/// Removes from `command`'s environment the variables cargo sets for the package under test,
/// which a test process inherits. Build scripts that read them (ring's does) would see them
/// "changed", rebuild, and make this and the next ordinary build recompile half the workspace.
pub fn without_cargo_test_env(command: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CFG_",
            "CARGO_BIN_EXE_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if set_by_cargo {
            command.env_remove(name.as_ref());
        }
    }
    command
}

/// Builds the binary `name` of the workspace package of the same name (a no-op when it is up to
/// date) and returns its path.
pub fn operator_binary(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    without_cargo_test_env(&mut command);
    let output = command
        .current_dir(repo_root())
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            name,
            "--bin",
            name,
        ])
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build -p {name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo build -p {name} reported no executable"))
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it right after).
///
/// Not one the kernel picks: a port bound to `:0` and released can be handed out again at once,
/// to a parallel test's operator (whose `/readyz` then answers for one that could not listen) or
/// to an outgoing connection. So the ports come from below Linux's ephemeral range (32768–60999)
/// and above the plane's own (up to 25432), never the same twice in one test process, starting
/// at an offset of its pid so that concurrent processes start apart.
pub fn free_local_port() -> u16 {
    const FIRST: u32 = 26_000;
    const COUNT: u32 = 6_700;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    for _ in 0..COUNT {
        let offset = (std::process::id().wrapping_mul(97))
            .wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        let port = u16::try_from(FIRST + offset % COUNT).expect("the range fits a port");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT)
}

/// `GET path` from a loopback HTTP/1.1 endpoint: the status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    assert!(
        addr.ip().is_loopback(),
        "only loopback endpoints may be queried"
    );
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let malformed = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed response");
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(malformed)?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(malformed)?;
    Ok((code, body.to_owned()))
}
