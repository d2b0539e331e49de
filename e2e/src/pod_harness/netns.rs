//! Network namespaces made by the harness, and talking to processes inside them.
//!
//! Each scenario gets its own namespace with only loopback up: its pods reach each other on
//! 127.0.0.1, and parallel scenarios never collide on ports. Connections from the test are made
//! by a short-lived thread that enters the namespace (`setns`) just to create the socket, so no
//! traffic ever leaves loopback and the test process itself stays in the host namespace.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Error;

/// Prefix of the namespaces the harness names itself: `podh-<owner pid>-<n>`.
pub const PREFIX: &str = "podh-";

/// Runs a host command to completion, failing with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, Error> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            detail: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command,
            detail: format!(
                "{}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A network namespace the harness created; deleted (after killing what still runs in it)
/// when dropped.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    path: PathBuf,
}

impl NetNs {
    /// Creates `name` with loopback up.
    pub fn create(name: &str) -> Result<Self, Error> {
        run("ip", &["netns", "add", name])?;
        // From here on, Drop removes it even if bringing loopback up fails.
        let ns = Self {
            name: name.to_string(),
            path: Path::new("/run/netns").join(name),
        };
        run("ip", &["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file (for `nsenter --net=` or `setns`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command that runs `program` inside the namespace (root's view otherwise unchanged).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg(format!("--net={}", self.path.display()))
            .arg("--")
            .arg(program);
        cmd
    }

    /// Runs `argv` inside the namespace and returns its output (whatever its exit status).
    pub fn exec(&self, argv: &[&str]) -> Result<Output, Error> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::Spec("exec: empty command".into()))?;
        self.command(program)
            .args(args)
            .output()
            .map_err(|source| Error::Io {
                what: format!("run {argv:?} in netns {}", self.name),
                source,
            })
    }

    /// Sends one HTTP request to 127.0.0.1 inside the namespace.
    pub async fn http(&self, request: Request) -> Result<Response, Error> {
        let path = self.path.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || request_blocking(&path, &name, &request))
            .await
            .expect("HTTP request task panicked")
    }

    pub async fn http_get(&self, port: u16, path: &str) -> Result<Response, Error> {
        self.http(Request::get(port, path)).await
    }

    pub async fn http_post(
        &self,
        port: u16,
        path: &str,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Result<Response, Error> {
        self.http(Request::post(port, path).body(content_type, body))
            .await
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Nothing may outlive the scenario: kill what still runs in the namespace.
        if let Ok(pids) = run("ip", &["netns", "pids", &self.name]) {
            for pid in pids
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        if let Err(e) = run("ip", &["netns", "del", &self.name]) {
            eprintln!("pod harness: could not delete netns {}: {e}", self.name);
        }
    }
}

/// Deletes `podh-<pid>-*` namespaces whose owner process is gone (a test run killed before its
/// Drop ran), killing anything left in them.
pub fn reap_stale() -> Result<(), Error> {
    for line in run("ip", &["netns", "list"])?.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(owner) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            drop(NetNs {
                name: name.to_string(),
                path: Path::new("/run/netns").join(name),
            });
        }
    }
    Ok(())
}

/// An HTTP/1.0 request (so no chunked responses) to 127.0.0.1:`port`.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

impl Request {
    pub fn new(method: &str, port: u16, path: &str) -> Self {
        Self {
            method: method.to_string(),
            port,
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn get(port: u16, path: &str) -> Self {
        Self::new("GET", port, path)
    }

    pub fn post(port: u16, path: &str) -> Self {
        Self::new("POST", port, path)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body("application/json", value.to_string())
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Http {
            detail: format!("response is not JSON ({e}): {}", self.text()),
        })
    }
}

/// A TCP connection to 127.0.0.1:`port` inside the namespace at `ns_path`.
fn connect_in(ns_path: &Path, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let ns = File::open(ns_path)?;
    // A fresh thread enters the namespace and ends right after: a pooled thread would stay
    // inside it and make later, unrelated sockets of the test process there.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)?;
                TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
            })
            .join()
            .expect("netns connect thread panicked")
    })
}

fn request_blocking(ns_path: &Path, ns_name: &str, req: &Request) -> Result<Response, Error> {
    let http_err = |detail: String| Error::Http {
        detail: format!(
            "{} 127.0.0.1:{}{} in netns {ns_name}: {detail}",
            req.method, req.port, req.path
        ),
    };
    let mut stream =
        connect_in(ns_path, req.port, req.timeout).map_err(|e| http_err(e.to_string()))?;
    stream
        .set_read_timeout(Some(req.timeout))
        .and_then(|()| stream.set_write_timeout(Some(req.timeout)))
        .map_err(|e| http_err(e.to_string()))?;
    let mut head = format!(
        "{} {} HTTP/1.0\r\nHost: localhost:{}\r\nUser-Agent: e2e-pod-harness\r\nContent-Length: {}\r\n",
        req.method,
        req.path,
        req.port,
        req.body.len()
    );
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = Vec::new();
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&req.body))
        .and_then(|()| stream.read_to_end(&mut raw))
        .map_err(|e| http_err(e.to_string()))?;
    parse_response(&raw).map_err(http_err)
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response ({} bytes)", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Polls `port`/`path` until it answers 200, or fails after `timeout` with the last outcome.
/// `alive` is asked between attempts, so a process that died fails the wait at once.
pub async fn wait_http_ok(
    ns: &NetNs,
    port: u16,
    path: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), Error>,
) -> Result<Response, Error> {
    let start = Instant::now();
    loop {
        alive()?;
        let last = match ns
            .http(Request::get(port, path).timeout(Duration::from_secs(5)))
            .await
        {
            Ok(resp) if resp.status == 200 => return Ok(resp),
            Ok(resp) => format!("HTTP {}: {}", resp.status, resp.text()),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                what: format!(
                    "HTTP 200 from 127.0.0.1:{port}{path} in netns {}",
                    ns.name()
                ),
                after: timeout,
                context: format!("; last outcome: {last}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_and_honours_content_length() {
        let resp =
            parse_response(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nX-A: b\r\n\r\nOKtrailing")
                .unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "OK");
        assert_eq!(resp.header("x-a"), Some("b"));
        assert!(parse_response(b"HTTP/1.0 200 OK\r\n").is_err());
    }
}
