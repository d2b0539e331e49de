//! An HTTP upstream for tests of proxies in a scenario's network namespace: it answers every GET
//! with JSON describing the request as it arrived.

use std::process::{Child, Stdio};
use std::time::Duration;

use e2e::pod_harness::{Error, NetNs, netns};

/// Answers every GET with JSON describing the request as it arrived: the upstream's name, the
/// raw request target and the headers a Gateway sets.
const ECHO_PY: &str = r#"
import http.server, json, sys
name = sys.argv[2]
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({
            "upstream": name,
            "path": self.path,
            "host": self.headers.get("Host"),
            "forwarded_for": self.headers.get("X-Forwarded-For"),
            "forwarded_proto": self.headers.get("X-Forwarded-Proto"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"#;

/// An echo server on 127.0.0.1:`port` in a namespace, killed on drop.
pub struct Upstream(Child);

impl Upstream {
    pub async fn start(netns: &NetNs, port: u16, name: &str) -> Self {
        let child = netns
            .command("/usr/bin/python3.11")
            .args(["-I", "-c", ECHO_PY, &port.to_string(), name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start upstream {name}: {e}"));
        let mut upstream = Self(child);
        netns::wait_http_ok(netns, port, "/", Duration::from_secs(30), || match upstream
            .0
            .try_wait()
        {
            Ok(None) => Ok(()),
            other => Err(Error::Setup(format!("upstream {name} ended: {other:?}"))),
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        upstream
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
