//! The pod harness's TLS-terminating proxy (`e2e::pod_harness::proxy`) for real: Debian's nginx
//! from `hack/debian-tool nginx` in a scenario's network namespace, certificates of a test CA
//! minted with openssl, and host names `Scenario::add_host` makes resolve to that namespace's
//! loopback. Needs root and `hack/debian-tool nginx`, not the plane; nothing leaves the namespace.
//! Nothing skips: without nginx the tests fail naming `hack/debian-tool nginx`.

use std::net::SocketAddr;
use std::path::Path;

use e2e::pod_harness::proxy::{self, Leaf, Location, TestCa, TlsProxy, VirtualHost};
use e2e::pod_harness::{Error, Scenario};
use serde_json::Value;

mod upstream_support;
use upstream_support::Upstream;

/// What `curl` made of one request.
#[derive(Debug)]
struct Fetched {
    /// curl's exit code: 0, 35 (TLS handshake failed), 60 (certificate not verified), ...
    exit: Option<i32>,
    /// The HTTP status, 0 without a response.
    status: u16,
    body: String,
    stderr: String,
}

impl Fetched {
    /// The echo server's description of the request it got.
    fn echoed(&self) -> Value {
        assert_eq!((self.exit, self.status), (Some(0), 200), "{self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// GETs `url` with curl in the scenario's namespace, names resolved through its `/etc/hosts`,
/// trusting only the CA certificate `ca`.
fn fetch(scenario: &Scenario, ca: &Path, url: &str) -> Fetched {
    let ca = ca.display().to_string();
    // -q: no ~/.curlrc; --noproxy: a proxy from the environment would take the request away.
    let argv = [
        "curl",
        "-q",
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "10",
        "--cacert",
        &ca,
        "-w",
        "\n%{http_code}",
        url,
    ];
    let output = proxy::exec_with_hosts(scenario, &argv).unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Fetched {
        exit: output.status.code(),
        status: status
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{url}: {stdout:?}")),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn virtual_host(leaf: Result<Leaf, Error>, locations: Vec<Location>) -> VirtualHost {
    let leaf = leaf.unwrap_or_else(|e| panic!("{e}"));
    VirtualHost {
        name: leaf.host,
        cert_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        locations,
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn host_unprivileged_port_start() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .expect("read the host's ip_unprivileged_port_start")
}

#[tokio::test]
async fn nginx_terminates_tls_per_host_name_with_the_test_ca() {
    let host_setting = host_unprivileged_port_start();
    let mut scenario = Scenario::new("tls-proxy").unwrap_or_else(|e| panic!("{e}"));
    for name in [
        "a.test",
        "matrix.a.test",
        "b.test",
        "rogue.test",
        "unknown.test",
    ] {
        scenario.add_host(name).unwrap_or_else(|e| panic!("{e}"));
    }
    let (port_a, port_b) = (18080, 18081);
    let _upstream_a = Upstream::start(scenario.netns(), port_a, "a").await;
    let _upstream_b = Upstream::start(scenario.netns(), port_b, "b").await;

    let ca = TestCa::new().unwrap_or_else(|e| panic!("{e}"));
    // A CA curl is not told to trust.
    let stranger = TestCa::new().unwrap_or_else(|e| panic!("{e}"));
    let hosts = [
        virtual_host(
            ca.issue("matrix.a.test"),
            vec![Location::prefix("/_matrix", loopback(port_a))],
        ),
        virtual_host(
            ca.issue("a.test"),
            vec![
                Location::exact("/.well-known/matrix/server", loopback(port_a)),
                Location::prefix("/", loopback(port_b)),
            ],
        ),
        virtual_host(
            ca.issue("b.test"),
            vec![Location::prefix("/", loopback(port_b))],
        ),
        virtual_host(
            stranger.issue("rogue.test"),
            vec![Location::prefix("/", loopback(port_a))],
        ),
    ];
    let proxy = TlsProxy::start(scenario.netns(), &[443], &hosts).unwrap_or_else(|e| panic!("{e}"));
    let pid = proxy.pid();
    // nginx runs as nobody, without capabilities.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("nginx's status");
    for line in ["Uid: 65534 65534 65534 65534", "CapEff: 0000000000000000"] {
        assert!(
            status
                .lines()
                .any(|l| l.split_whitespace().eq(line.split(' '))),
            "{line:?} not in:\n{status}"
        );
    }
    let ca_pem = ca.cert_path();

    // The host's name picks the server; the upstream gets the URI byte for byte (Matrix IDs
    // are percent-encoded) and the headers a Gateway adds.
    let uri = "/_matrix/client/v3/rooms/%21r%3Aa.test/send/m.room.message/t%241?x=1";
    let echoed = fetch(&scenario, &ca_pem, &format!("https://matrix.a.test{uri}")).echoed();
    assert_eq!(echoed["upstream"], "a", "{echoed}");
    assert_eq!(echoed["path"], uri, "{echoed}");
    assert_eq!(echoed["host"], "matrix.a.test", "{echoed}");
    assert_eq!(echoed["forwarded_proto"], "https", "{echoed}");
    assert_eq!(echoed["forwarded_for"], "127.0.0.1", "{echoed}");
    // Which host and path reach which upstream: a prefix matches by path element (the bare
    // prefix does), an exact path wins over the catch-all prefix of the same host.
    for (host, path, upstream) in [
        ("matrix.a.test", "/_matrix", "a"),
        ("a.test", "/.well-known/matrix/server", "a"),
        ("a.test", "/.well-known/matrix/client", "b"),
        ("b.test", "/some/thing", "b"),
    ] {
        let echoed = fetch(&scenario, &ca_pem, &format!("https://{host}{path}")).echoed();
        assert_eq!(
            [&echoed["host"], &echoed["path"], &echoed["upstream"]],
            [host, path, upstream],
            "{echoed}"
        );
    }
    // ... and a longer word is not under the prefix: nginx's own 404, no upstream.
    let outside = fetch(&scenario, &ca_pem, "https://matrix.a.test/_matrixx");
    assert_eq!(
        (outside.exit, outside.status),
        (Some(0), 404),
        "{outside:?}"
    );
    assert!(
        outside.body.contains("nginx"),
        "404 from nginx: {outside:?}"
    );

    // A name no host has is refused in the handshake: curl's exit 35, no request made.
    let unknown = fetch(&scenario, &ca_pem, "https://unknown.test/");
    assert_eq!((unknown.exit, unknown.status), (Some(35), 0), "{unknown:?}");
    assert!(unknown.stderr.contains("unrecognized name"), "{unknown:?}");
    // A certificate of another CA fails verification (exit 60); trusting that CA instead, the
    // same request goes through, so the refusal was the verification's.
    let rogue = fetch(&scenario, &ca_pem, "https://rogue.test/");
    assert_eq!((rogue.exit, rogue.status), (Some(60), 0), "{rogue:?}");
    let echoed = fetch(&scenario, &stranger.cert_path(), "https://rogue.test/").echoed();
    assert_eq!(echoed["upstream"], "a", "{echoed}");

    // Each request in the access log: which server took it, on which SNI, sent where.
    let log = proxy.access_log();
    for expected in [
        format!("server=matrix.a.test sni=matrix.a.test \"GET {uri} HTTP/1.1\" 200"),
        "server=matrix.a.test sni=matrix.a.test \"GET /_matrixx HTTP/1.1\" 404".to_string(),
        "server=a.test sni=a.test \"GET /.well-known/matrix/server HTTP/1.1\" 200".to_string(),
        "server=b.test sni=b.test \"GET /some/thing HTTP/1.1\" 200".to_string(),
        "server=rogue.test sni=rogue.test \"GET / HTTP/1.1\" 200".to_string(),
    ] {
        assert!(
            log.lines().any(|line| line.contains(&expected)),
            "{expected:?} not in the access log:\n{log}"
        );
    }
    let upstream_of = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .and_then(|l| l.rsplit_once("upstream="))
            .map(|(_, upstream)| upstream.to_string())
    };
    assert_eq!(
        upstream_of(uri).as_deref(),
        Some("127.0.0.1:18080"),
        "{log}"
    );
    assert_eq!(
        upstream_of("/some/thing").as_deref(),
        Some("127.0.0.1:18081"),
        "{log}"
    );
    assert_eq!(upstream_of("/_matrixx").as_deref(), Some("-"), "{log}");
    assert!(!log.contains("unknown.test"), "{log}");
    assert_eq!(
        log.lines().count(),
        7,
        "one line per request that got through:\n{log}"
    );

    // Binding 443 as nobody was allowed in the namespace only.
    assert_eq!(host_unprivileged_port_start(), host_setting);
    let dir = proxy.dir().to_path_buf();
    drop(proxy);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "nginx {pid} survived its drop"
    );
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[tokio::test]
async fn a_proxy_that_cannot_start_says_why() {
    let mut scenario = Scenario::new("tls-proxy-fails").unwrap_or_else(|e| panic!("{e}"));
    let e = scenario.add_host("a.test matrix.a.test").unwrap_err();
    assert!(e.to_string().contains("not a host name"), "{e}");

    let ca = TestCa::new().unwrap_or_else(|e| panic!("{e}"));
    let a = ca.issue("a.test").unwrap_or_else(|e| panic!("{e}"));
    let b = ca.issue("b.test").unwrap_or_else(|e| panic!("{e}"));
    // nginx itself refuses a certificate with another certificate's key: the error carries its
    // words, not just a timeout.
    let mismatched = VirtualHost {
        name: "a.test".into(),
        cert_pem: a.cert_pem,
        key_pem: b.key_pem,
        locations: vec![Location::prefix("/", loopback(1))],
    };
    let e = TlsProxy::start(scenario.netns(), &[443], &[mismatched])
        .err()
        .expect("nginx must refuse a key that is not the certificate's");
    assert!(
        matches!(e, Error::Exited { .. }) && e.to_string().contains("key values mismatch"),
        "{e}"
    );
}
