//! A TLS-terminating reverse proxy in a scenario's network namespace, standing in for a cluster's
//! Gateway (or Ingress controller): Debian's nginx, provided by `hack/debian-tool nginx`.
//!
//! - [`TestCa`] mints a throwaway CA and leaf certificates for host names with the `openssl` CLI.
//! - [`render_nginx_conf`] turns a small route description ([`VirtualHost`]s of [`Location`]s,
//!   independent of the Gateway API or Ingress) into nginx.conf: a `server` per host name, chosen
//!   by SNI; a name no host has is refused during the handshake; requests go to the upstream with
//!   their URI untouched and `X-Forwarded-*` headers.
//! - [`TlsProxy::start`] runs nginx inside a [`NetNs`] on 127.0.0.1, as nobody, until dropped.
//! - [`exec_with_hosts`] runs a client (curl) in a scenario's namespace resolving names through
//!   the scenario's `/etc/hosts`, as its pods do ([`Scenario::add_host`]).
//!
//! Files live in directories `/var/tmp/podh-<pid>-{ca,nginx}-<n>` (`ScratchDir`, which
//! [`crate::prometheus`] uses too, for `podh-<pid>-prometheus-<n>`), not under the harness's state
//! directory: that may be under `/root` (mode 700), which nobody (nginx) and pods' users cannot
//! traverse. Directories of test processes that are gone are removed by the next one.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::images::debian::{Tree, debian_root};
use super::{Error, NetNs, Scenario, hosts, netns};

/// nobody and nogroup: nginx runs as them.
const NOBODY: u32 = 65534;
/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const SCRATCH_ROOT: &str = "/var/tmp";

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// The nginx binary `hack/debian-tool nginx` provides (the one the nginx image maps to).
pub fn nginx_binary() -> Result<PathBuf, Error> {
    let tree = Tree::read(&debian_root(), "nginx")?;
    let binary = tree.dir.join("usr/sbin/nginx");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(Error::Setup(format!(
            "{} is missing: run hack/debian-tool nginx (hack/test does)",
            binary.display()
        )))
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    fs::write(path, contents).map_err(io_err(format!("write {}", path.display())))?;
    set_mode(path, mode)
}

fn read_file(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(io_err(format!("read {}", path.display())))
}

/// The kinds of [`ScratchDir`]: the `<kind>` in their names.
const SCRATCH_KINDS: &[&str] = &["ca", "nginx", "prometheus"];

/// A fresh directory `/var/tmp/podh-<pid>-<kind>-<n>` (mode 0755), removed on drop. `kind` is
/// one of [`SCRATCH_KINDS`].
pub(crate) struct ScratchDir {
    pub(crate) path: PathBuf,
    /// Keep it, for its logs, when dropped while the thread panics.
    keep_on_panic: bool,
}

impl ScratchDir {
    pub(crate) fn new(kind: &str, keep_on_panic: bool) -> Result<Self, Error> {
        debug_assert!(SCRATCH_KINDS.contains(&kind), "unknown scratch kind {kind}");
        reap_stale_dirs();
        let path = Path::new(SCRATCH_ROOT).join(format!(
            "{}{}-{kind}-{}",
            netns::PREFIX,
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover of an earlier process that had the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).map_err(io_err(format!("create {}", path.display())))?;
        let dir = Self {
            path,
            keep_on_panic,
        };
        set_mode(&dir.path, 0o755)?;
        Ok(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep_on_panic && std::thread::panicking() {
            eprintln!("pod harness: files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Removes the scratch directories of test processes that are gone.
fn reap_stale_dirs() {
    let Ok(entries) = fs::read_dir(SCRATCH_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(netns::PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !SCRATCH_KINDS.contains(&kind) {
            continue;
        }
        if pid
            .parse::<u32>()
            .is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A file name for a host name (`*.a.test` becomes `_.a.test`).
fn file_stem(host: &str) -> String {
    host.replace('*', "_")
}

/// A host name nginx and a certificate accept: a DNS name, optionally `*.` and a DNS name.
fn valid_server_name(name: &str) -> bool {
    hosts::valid_host_name(name.strip_prefix("*.").unwrap_or(name))
}

/// `openssl req` with a new P-256 key into `key`, writing `out` (a request, or with `-x509` in
/// `extra` a self-signed certificate) for `subject`.
fn openssl_req(key: &Path, out: &Path, subject: &str, extra: &[&str]) -> Result<(), Error> {
    let (key, out) = (key.display().to_string(), out.display().to_string());
    let mut args = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &out,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    netns::run("openssl", &args).map(drop)
}

/// A throwaway certificate authority (P-256, valid two days) for the tests' TLS: its directory,
/// with the CA's key, is removed on drop. Certificates there are world-readable (a pod's process
/// sees the host's `/` and can be pointed at [`TestCa::cert_path`]), keys readable by root only.
pub struct TestCa {
    dir: ScratchDir,
    cert_pem: String,
}

/// A leaf certificate of a [`TestCa`] for one host name. The files stay until the CA is dropped;
/// the PEM text is what a `kubernetes.io/tls` Secret holds (`tls.crt`, `tls.key`).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub host: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    /// A new CA, `CN=e2e test CA <pid>-<n>` (distinct, so a failure names the CA it met).
    pub fn new() -> Result<Self, Error> {
        let dir = ScratchDir::new("ca", false)?;
        let name = dir
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (key, cert) = (dir.path.join("ca.key"), dir.path.join("ca.pem"));
        openssl_req(
            &key,
            &cert,
            &format!("/CN=e2e test CA {name}"),
            &[
                "-x509",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        set_mode(&key, 0o600)?;
        set_mode(&cert, 0o644)?;
        Ok(Self {
            cert_pem: read_file(&cert)?,
            dir,
        })
    }

    /// The CA certificate (for `curl --cacert`, Synapse's `federation_custom_ca_list`).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.path.join("ca.pem")
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a server certificate for `host` (a DNS name, or `*.` and one), its only name.
    pub fn issue(&self, host: &str) -> Result<Leaf, Error> {
        if !valid_server_name(host) {
            return Err(Error::Spec(format!(
                "{host:?} is not a host name for a certificate"
            )));
        }
        let stem = file_stem(host);
        let path = |ext: &str| self.dir.path.join(format!("{stem}.{ext}"));
        let (key, csr, ext, cert, serial) = (
            path("key"),
            path("csr"),
            path("ext"),
            path("pem"),
            path("srl"),
        );
        // The key identifiers are what strict verifiers (Python's VERIFY_X509_STRICT) demand.
        write_file(
            &ext,
            &format!(
                "subjectAltName=DNS:{host}\nextendedKeyUsage=serverAuth\n\
                 keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n\
                 subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
            ),
            0o644,
        )?;
        let display = |p: &Path| p.display().to_string();
        openssl_req(&key, &csr, &format!("/CN={host}"), &[])?;
        // A serial file per leaf, created with a random serial: no shared state between leaves.
        netns::run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &display(&csr),
                "-CA",
                &display(&self.cert_path()),
                "-CAkey",
                &display(&self.dir.path.join("ca.key")),
                "-CAserial",
                &display(&serial),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &display(&ext),
                "-out",
                &display(&cert),
            ],
        )?;
        for leftover in [&csr, &ext, &serial] {
            let _ = fs::remove_file(leftover);
        }
        set_mode(&key, 0o600)?;
        set_mode(&cert, 0o644)?;
        Ok(Leaf {
            host: host.to_string(),
            cert_pem: read_file(&cert)?,
            key_pem: read_file(&key)?,
            cert_path: cert,
            key_path: key,
        })
    }
}

/// Which request paths a [`Location`] takes, with the Gateway API's (and Ingress's) semantics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `PathPrefix` / `Prefix`: matches by path element, so `/abc` takes `/abc` and `/abc/…`
    /// but not `/abcd`; a trailing `/` is ignored.
    Prefix(String),
    /// `Exact`: this path only.
    Exact(String),
}

/// Requests whose path matches go to `upstream` (plain HTTP, in the proxy's namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathMatch,
    pub upstream: SocketAddr,
}

impl Location {
    pub fn prefix(path: &str, upstream: SocketAddr) -> Self {
        Self {
            path: PathMatch::Prefix(path.to_string()),
            upstream,
        }
    }

    pub fn exact(path: &str, upstream: SocketAddr) -> Self {
        Self {
            path: PathMatch::Exact(path.to_string()),
            upstream,
        }
    }
}

/// One host name the proxy serves with its own certificate (PEM text, as a `kubernetes.io/tls`
/// Secret holds it) and routes. Among the locations, as on a Gateway, an exact match wins, then
/// the longest prefix; a path nothing matches gets nginx's 404.
#[derive(Debug, Clone)]
pub struct VirtualHost {
    /// A DNS name, or `*.` and one.
    pub name: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub locations: Vec<Location>,
}

/// Where nginx reads a host's certificate and key under `prefix` (written by [`TlsProxy::start`]).
fn tls_paths(prefix: &Path, host: &str) -> (PathBuf, PathBuf) {
    let stem = file_stem(host);
    let tls = prefix.join("tls");
    (
        tls.join(format!("{stem}.crt")),
        tls.join(format!("{stem}.key")),
    )
}

/// A path nginx reads literally inside a directive: no space, quote, `;`, braces or `#`.
fn plain_config_word(word: &str) -> bool {
    !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | ';' | '{' | '}' | '#' | '\\')
        })
}

/// The nginx `location` arguments for one match: a prefix `/abc` is `= /abc` and `/abc/` (element
/// by element, as the Gateway API and Ingress match), `/` stays `/`.
fn location_args(path: &PathMatch) -> Result<Vec<String>, String> {
    let (PathMatch::Prefix(p) | PathMatch::Exact(p)) = path;
    if !p.starts_with('/') || !plain_config_word(p) {
        return Err(format!(
            "path {p:?} must start with / and hold no space, quote, ;, braces or #"
        ));
    }
    Ok(match path {
        PathMatch::Exact(p) => vec![format!("= {p}")],
        PathMatch::Prefix(p) => match p.trim_end_matches('/') {
            "" => vec!["/".to_string()],
            p => vec![format!("= {p}"), format!("{p}/")],
        },
    })
}

/// The `server` block of one virtual host, or why it cannot be rendered.
fn render_server(
    out: &mut String,
    prefix: &Path,
    ports: &[u16],
    host: &VirtualHost,
) -> Result<(), String> {
    if !valid_server_name(&host.name) {
        return Err(format!("{:?} is not a host name", host.name));
    }
    if host.locations.is_empty() {
        return Err(format!("{} has no locations", host.name));
    }
    // An exact match written for a path overrides the `= path` half of a prefix on it, as an
    // Exact rule takes precedence over a PathPrefix one.
    let exact: Vec<String> = host
        .locations
        .iter()
        .filter(|l| matches!(l.path, PathMatch::Exact(_)))
        .map(|l| location_args(&l.path).map(|mut a| a.remove(0)))
        .collect::<Result<_, _>>()?;
    let mut seen = Vec::new();
    let mut blocks = String::new();
    for location in &host.locations {
        for args in location_args(&location.path)? {
            let overridden = matches!(location.path, PathMatch::Prefix(_)) && exact.contains(&args);
            if overridden {
                continue;
            }
            if seen.contains(&args) {
                return Err(format!("{}: two locations match `{args}`", host.name));
            }
            let _ = write!(
                blocks,
                "        location {args} {{\n            proxy_pass http://{};\n        }}\n",
                location.upstream
            );
            seen.push(args);
        }
    }
    let (cert, key) = tls_paths(prefix, &host.name);
    out.push_str("    server {\n");
    for port in ports {
        let _ = writeln!(out, "        listen 127.0.0.1:{port} ssl;");
    }
    let _ = write!(
        out,
        "        server_name {};\n        ssl_certificate {};\n        ssl_certificate_key {};\n{blocks}    }}\n",
        host.name,
        cert.display(),
        key.display()
    );
    Ok(())
}

/// nginx.conf for a proxy on 127.0.0.1:`ports` serving `hosts`, with every file under `prefix`
/// (an absolute path). nginx runs in the foreground, logs errors to stderr and each request to
/// `prefix/access.log` (`server=<server_name> sni=<SNI> "<request line>" <status> <bytes>
/// upstream=<address>`). `proxy_pass` names no URI, so the request URI reaches the upstream
/// byte for byte (`%24` in Matrix IDs stays); the upstream sees `Host`, `X-Forwarded-For` and
/// `X-Forwarded-Proto: https`, as from a Gateway.
pub fn render_nginx_conf(
    prefix: &Path,
    ports: &[u16],
    hosts: &[VirtualHost],
) -> Result<String, Error> {
    let invalid = |detail: String| Error::Spec(format!("proxy configuration: {detail}"));
    let dir = prefix.display().to_string();
    if !prefix.is_absolute() || !plain_config_word(&dir) {
        return Err(invalid(format!(
            "prefix {dir:?} must be absolute and plain"
        )));
    }
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != ports.len() || ports.is_empty() || ports.contains(&0) {
        return Err(invalid(format!(
            "ports {ports:?} must be distinct, non-zero, at least one"
        )));
    }
    let mut names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(invalid(format!("host {} is given twice", pair[0])));
    }

    let mut out = format!(
        "# Written by the e2e pod harness (e2e/src/pod_harness/proxy.rs).\n\
         daemon off;\n\
         worker_processes 1;\n\
         pid {dir}/nginx.pid;\n\
         error_log stderr info;\n\
         events {{\n    worker_connections 256;\n}}\n\
         http {{\n\
         \x20   log_format routes '$remote_addr [$time_local] server=$server_name \
         sni=$ssl_server_name \"$request\" $status $body_bytes_sent upstream=$upstream_addr';\n\
         \x20   access_log {dir}/access.log routes;\n\
         \x20   # Away from the compiled-in /var/lib/nginx, which nobody may not write.\n\
         \x20   client_body_temp_path {dir}/client_body_temp;\n\
         \x20   proxy_temp_path {dir}/proxy_temp;\n\
         \x20   fastcgi_temp_path {dir}/fastcgi_temp;\n\
         \x20   uwsgi_temp_path {dir}/uwsgi_temp;\n\
         \x20   scgi_temp_path {dir}/scgi_temp;\n\
         \x20   client_max_body_size 50m;\n\
         \x20   proxy_http_version 1.1;\n\
         \x20   proxy_redirect off;\n\
         \x20   proxy_set_header Host $host;\n\
         \x20   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20   proxy_set_header X-Forwarded-Proto https;\n\
         \x20   # A name no server has is refused in the handshake, as by a Gateway without it.\n\
         \x20   server {{\n"
    );
    for port in ports {
        let _ = writeln!(out, "        listen 127.0.0.1:{port} ssl default_server;");
    }
    out.push_str("        ssl_reject_handshake on;\n    }\n");
    for host in hosts {
        render_server(&mut out, prefix, ports, host).map_err(invalid)?;
    }
    out.push_str("}\n");
    Ok(out)
}

/// Whether a `/proc/<pid>/net/tcp` table has a socket listening on 127.0.0.1:`port`.
fn listens_on_loopback(table: &str, port: u16) -> bool {
    // The kernel prints the address as the u32 it holds in network order, in native byte order.
    let local = format!(
        "{:08X}:{port:04X}",
        u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets())
    );
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
    })
}

/// nginx serving [`VirtualHost`]s on 127.0.0.1 in a network namespace, as nobody with no
/// capabilities. Dropping it stops nginx (also while the thread panics, which keeps its directory
/// with the configuration and logs).
pub struct TlsProxy {
    child: Child,
    dir: ScratchDir,
}

impl TlsProxy {
    /// Writes the configuration and the hosts' certificates into a fresh directory and starts
    /// nginx in `netns`, returning once it listens on every port of `ports`.
    pub fn start(netns: &NetNs, ports: &[u16], hosts: &[VirtualHost]) -> Result<Self, Error> {
        let binary = nginx_binary()?;
        let dir = ScratchDir::new("nginx", true)?;
        let prefix = dir.path.clone();
        let conf = render_nginx_conf(&prefix, ports, hosts)?;

        // nobody owns the directory: nginx makes its temp directories, pid file and logs there.
        let chown = |path: &Path| {
            std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY))
                .map_err(io_err(format!("chown {}", path.display())))
        };
        let tls = prefix.join("tls");
        fs::create_dir(&tls).map_err(io_err(format!("create {}", tls.display())))?;
        set_mode(&prefix, 0o700)?;
        chown(&prefix)?;
        chown(&tls)?;
        for host in hosts {
            let (cert, key) = tls_paths(&prefix, &host.name);
            write_file(&cert, &host.cert_pem, 0o644)?;
            write_file(&key, &host.key_pem, 0o600)?;
            chown(&cert)?;
            chown(&key)?;
        }
        let conf_path = prefix.join("nginx.conf");
        write_file(&conf_path, &conf, 0o644)?;

        // Lets nobody bind ports below 1024 in this namespace only (the host keeps its setting).
        if ports.iter().any(|&p| p < 1024) {
            let sysctl = netns.exec(&[
                "/usr/sbin/sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_unprivileged_port_start=0",
            ])?;
            if !sysctl.status.success() {
                return Err(Error::Command {
                    command: format!("sysctl in netns {}", netns.name()),
                    detail: String::from_utf8_lossy(&sysctl.stderr).into_owned(),
                });
            }
        }

        let stderr_path = prefix.join("nginx.stderr");
        let log = File::create(&stderr_path)
            .map_err(io_err(format!("create {}", stderr_path.display())))?;
        let log_too = log
            .try_clone()
            .map_err(io_err(format!("reopen {}", stderr_path.display())))?;
        let child = netns
            .command("/usr/bin/setpriv")
            .args([
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ])
            .arg(&binary)
            .arg("-p")
            .arg(format!("{}/", prefix.display()))
            .arg("-c")
            .arg(&conf_path)
            // Before the configuration is read, errors would go to the compiled-in log file.
            .args(["-e", "stderr"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too)
            // Its own process group, so a stop reaches the workers too.
            .process_group(0)
            .spawn()
            .map_err(io_err(format!("start {}", binary.display())))?;
        let mut proxy = Self { child, dir };
        proxy.wait_listening(ports)?;
        Ok(proxy)
    }

    /// nginx's master process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory with nginx.conf, the certificates and the logs.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    /// The requests nginx has logged so far, one line each (see [`render_nginx_conf`]).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path.join("access.log")).unwrap_or_default()
    }

    /// What nginx wrote to stderr: its error log, at level info.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.path.join("nginx.stderr")).unwrap_or_default()
    }

    fn wait_listening(&mut self, ports: &[u16]) -> Result<(), Error> {
        let start = Instant::now();
        // The pid file is written after the sockets are bound, by nginx itself: once it is there
        // the pid's /proc view is nginx's, inside the namespace.
        let pid_file = self.dir.path.join("nginx.pid");
        let tcp = format!("/proc/{}/net/tcp", self.pid());
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(io_err("wait for nginx".into()))?
            {
                return Err(Error::Exited {
                    pod: "nginx".into(),
                    status,
                    what: format!("it to listen on {ports:?}"),
                    tail: self.output(),
                });
            }
            let listening = pid_file.exists()
                && fs::read_to_string(&tcp)
                    .is_ok_and(|table| ports.iter().all(|&p| listens_on_loopback(&table, p)));
            if listening {
                return Ok(());
            }
            if start.elapsed() >= START_TIMEOUT {
                return Err(Error::Timeout {
                    what: format!("nginx to listen on 127.0.0.1:{ports:?}"),
                    after: START_TIMEOUT,
                    context: format!("; its output:\n{}", self.output()),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown.
        stop_group(&mut self.child);
    }
}

/// Stops the helper process `child` leads a process group of: SIGTERM, up to 5 s to exit, then
/// SIGKILL, so that nothing of its group remains.
pub(crate) fn stop_group(child: &mut Child) {
    let group = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// Runs `argv` as root in the scenario's network namespace, in a mount namespace of its own where
/// `/etc/hosts` is the scenario's (its Services' and [`Scenario::add_host`] names), and returns
/// its output whatever its exit status: a client that resolves names as the scenario's pods do.
pub fn exec_with_hosts(scenario: &Scenario, argv: &[&str]) -> Result<Output, Error> {
    static NEXT_CLIENT: AtomicUsize = AtomicUsize::new(0);
    let hosts_file = scenario.dir.join(format!(
        "client-hosts-{}",
        NEXT_CLIENT.fetch_add(1, Ordering::Relaxed)
    ));
    // The client is no pod of a namespace: only qualified Service names resolve.
    let text = hosts::render("client", "", &scenario.services, &scenario.hosts);
    write_file(&hosts_file, &text, 0o644)?;
    let output = scenario
        .netns
        .command("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(r#"mount --bind "$0" /etc/hosts && exec "$@""#)
        .arg(&hosts_file)
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err(format!(
            "run {argv:?} in netns {}",
            scenario.netns.name()
        )));
    let _ = fs::remove_file(&hosts_file);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    fn host(name: &str, locations: Vec<Location>) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
            locations,
        }
    }

    fn render(ports: &[u16], hosts: &[VirtualHost]) -> Result<String, String> {
        render_nginx_conf(Path::new("/var/tmp/px"), ports, hosts).map_err(|e| e.to_string())
    }

    #[test]
    fn renders_a_server_per_host_behind_a_default_that_refuses_unknown_names() {
        let conf = render(
            &[443, 8448],
            &[
                host(
                    "matrix.a.test",
                    vec![
                        Location::prefix("/_matrix", addr(8008)),
                        Location::prefix("/_synapse/client/", addr(8008)),
                    ],
                ),
                host(
                    "a.test",
                    vec![Location::exact("/.well-known/matrix/server", addr(8080))],
                ),
            ],
        )
        .unwrap();
        let expected_servers = "    server {
        listen 127.0.0.1:443 ssl default_server;
        listen 127.0.0.1:8448 ssl default_server;
        ssl_reject_handshake on;
    }
    server {
        listen 127.0.0.1:443 ssl;
        listen 127.0.0.1:8448 ssl;
        server_name matrix.a.test;
        ssl_certificate /var/tmp/px/tls/matrix.a.test.crt;
        ssl_certificate_key /var/tmp/px/tls/matrix.a.test.key;
        location = /_matrix {
            proxy_pass http://127.0.0.1:8008;
        }
        location /_matrix/ {
            proxy_pass http://127.0.0.1:8008;
        }
        location = /_synapse/client {
            proxy_pass http://127.0.0.1:8008;
        }
        location /_synapse/client/ {
            proxy_pass http://127.0.0.1:8008;
        }
    }
    server {
        listen 127.0.0.1:443 ssl;
        listen 127.0.0.1:8448 ssl;
        server_name a.test;
        ssl_certificate /var/tmp/px/tls/a.test.crt;
        ssl_certificate_key /var/tmp/px/tls/a.test.key;
        location = /.well-known/matrix/server {
            proxy_pass http://127.0.0.1:8080;
        }
    }
}
";
        assert!(conf.ends_with(expected_servers), "{conf}");
        for line in [
            "daemon off;",
            "pid /var/tmp/px/nginx.pid;",
            "error_log stderr info;",
            "    access_log /var/tmp/px/access.log routes;",
            "    proxy_temp_path /var/tmp/px/proxy_temp;",
            "    client_body_temp_path /var/tmp/px/client_body_temp;",
            "    proxy_set_header Host $host;",
            "    proxy_set_header X-Forwarded-Proto https;",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "{line:?} missing in\n{conf}"
            );
        }
        // No URI after the upstream's address: nginx would then re-encode the request's URI.
        assert!(
            !conf.contains("proxy_pass http://127.0.0.1:8008/"),
            "{conf}"
        );
    }

    #[test]
    fn prefixes_match_by_path_element_and_exact_rules_win() {
        let conf = render(
            &[443],
            &[host(
                "h.test",
                vec![
                    Location::prefix("/", addr(1)),
                    Location::prefix("/x/", addr(2)),
                    Location::exact("/x", addr(3)),
                    Location::prefix("/v6", SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 4))),
                ],
            )],
        )
        .unwrap();
        let locations: Vec<&str> = conf
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("location") || l.starts_with("proxy_pass"))
            .collect();
        assert_eq!(
            locations,
            [
                "location / {",
                "proxy_pass http://127.0.0.1:1;",
                "location /x/ {",
                "proxy_pass http://127.0.0.1:2;",
                "location = /x {",
                "proxy_pass http://127.0.0.1:3;",
                "location = /v6 {",
                "proxy_pass http://[::1]:4;",
                "location /v6/ {",
                "proxy_pass http://[::1]:4;",
            ]
        );
    }

    #[test]
    fn wildcard_hosts_get_a_file_name_without_the_star() {
        let conf = render(
            &[443],
            &[host("*.a.test", vec![Location::prefix("/", addr(1))])],
        )
        .unwrap();
        assert!(conf.contains("server_name *.a.test;"), "{conf}");
        assert!(
            conf.contains("ssl_certificate /var/tmp/px/tls/_.a.test.crt;"),
            "{conf}"
        );
    }

    #[test]
    fn refuses_what_nginx_would_misread_or_reject() {
        let ok = || vec![Location::prefix("/", addr(1))];
        // One host a.test with these locations.
        let a = |locations: &[Location]| vec![host("a.test", locations.to_vec())];
        let (p, e) = (Location::prefix, Location::exact);
        let cases: Vec<(Vec<u16>, Vec<VirtualHost>, &str)> = vec![
            (vec![], a(&ok()), "ports"),
            (vec![443, 443], a(&ok()), "ports"),
            (vec![0], a(&ok()), "ports"),
            (
                vec![443],
                vec![host("a.test", ok()), host("a.test", ok())],
                "a.test is given twice",
            ),
            (vec![443], vec![host("a test", ok())], "not a host name"),
            (vec![443], a(&[]), "no locations"),
            (vec![443], a(&[p("x", addr(1))]), "must start with /"),
            (vec![443], a(&[e("/a;b", addr(1))]), "must start with /"),
            // Locations nginx would see twice (`= /a`), which it refuses.
            (
                vec![443],
                a(&[p("/a", addr(1)), p("/a/", addr(2))]),
                "two locations match `= /a`",
            ),
            (
                vec![443],
                a(&[e("/a", addr(1)), e("/a", addr(2))]),
                "two locations match `= /a`",
            ),
        ];
        for (ports, hosts, expected) in cases {
            let e = render(&ports, &hosts).expect_err(expected);
            assert!(e.contains(expected), "{e:?} lacks {expected:?}");
        }
        let e = render_nginx_conf(Path::new("relative"), &[443], &[]).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
    }

    #[test]
    fn finds_listening_loopback_sockets_in_a_proc_tcp_table() {
        let local = |port: u16| {
            format!(
                "{:08X}:{port:04X}",
                u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets())
            )
        };
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n\
             \x20  0: {} 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534\n\
             \x20  1: {} 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000 0\n\
             \x20  2: 00000000:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n",
            local(443),
            local(8008),
        );
        assert!(listens_on_loopback(&table, 443));
        // Established, not listening.
        assert!(!listens_on_loopback(&table, 8008));
        // Listening, but on 0.0.0.0.
        assert!(!listens_on_loopback(&table, 8443));
        assert!(!listens_on_loopback(&table, 80));
    }
}
