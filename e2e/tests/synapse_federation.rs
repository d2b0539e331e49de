//! Issue 15's proof: two Synapses exposed by the operator federate through the routes it wrote.
//! `a.test` and `b.test` (ConfigMap mode, for the test-only settings below) are exposed as
//! `matrix.a.test` and `matrix.b.test` through a Gateway `public`. No Gateway controller runs:
//! the test translates the HTTPRoutes the operator wrote (and the Gateway's certificates, read
//! from their `kubernetes.io/tls` Secrets) into the pod harness's TLS proxy, nginx on 443 in the
//! scenario's network namespace, where the four names resolve. It fails on any route it cannot
//! translate: no route here is written by hand. Then alice@a.test invites bob@b.test, who joins
//! and reads her message, every request (client and federation) going through the proxy.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), root, `hack/python-env` and
//! `hack/debian-tool nginx`. Nothing leaves the namespace.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use e2e::pod_harness::proxy::{self, Leaf, Location, TestCa, TlsProxy, VirtualHost};
use e2e::pod_harness::{PodProcess, Scenario};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt as _;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use synapse_support::{
    Plane, TIMEOUT, boot_synapse, condition_state, create_config_map, create_synapse, get,
    is_running, secret_text, wait_synapse,
};

/// One of the two homeservers: the Synapse `name`, its server name, public host and port.
struct Homeserver {
    name: &'static str,
    server_name: &'static str,
    host: &'static str,
    port: u16,
}

const A: Homeserver = Homeserver {
    name: "a",
    server_name: "a.test",
    host: "matrix.a.test",
    port: 8008,
};
const B: Homeserver = Homeserver {
    name: "b",
    server_name: "b.test",
    host: "matrix.b.test",
    port: 8009,
};
const GATEWAY: &str = "public";
/// Where the test CA lands on each data volume (the Synapse spec has no extra mounts).
const CA_FILE: &str = "federation-ca.pem";

/// The user's homeserver.yaml, with the settings a test federation needs:
/// - `ip_range_whitelist`: every name resolves to 127.0.0.1, which Synapse blocks by default;
/// - `federation_custom_ca_list`: trust the test CA (verification stays on);
/// - no notary (matrix.org), keys are fetched from the servers themselves;
/// - short federation backoff, so one early miss cannot stall the test for minutes.
fn homeserver_yaml(hs: &Homeserver) -> String {
    format!(
        "server_name: {server}\nreport_stats: false\n\
         listeners:\n  - port: {port}\n    type: http\n    tls: false\n    x_forwarded: true\n    \
         bind_addresses: ['0.0.0.0']\n    resources: [{{names: [client, federation], compress: false}}]\n\
         trusted_key_servers: []\nsuppress_key_server_warning: true\n\
         ip_range_whitelist: ['127.0.0.1/32']\n\
         federation_custom_ca_list: [/data/{CA_FILE}]\n\
         federation:\n  destination_min_retry_interval: 2s\n  destination_max_retry_interval: 10s\n",
        server = hs.server_name,
        port = hs.port,
    )
}

fn api(plane: &Plane, kind: &str) -> Api<DynamicObject> {
    e2e::objects::namespaced(&plane.client, &plane.ns.name, kind)
}

fn tls_secret_name(host: &str) -> String {
    format!("{}-tls", host.replace('.', "-"))
}

/// The certificate of each public name in a `kubernetes.io/tls` Secret, and a Gateway with an
/// HTTPS listener per name naming it, as a cluster admin would set up.
async fn create_gateway(plane: &Plane, leaves: &[Leaf]) {
    let secrets = Api::<Secret>::namespaced(plane.client.clone(), &plane.ns.name);
    let mut listeners = Vec::new();
    for leaf in leaves {
        let name = tls_secret_name(&leaf.host);
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem},
        }))
        .expect("a Secret");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create Secret {name}: {e}"));
        listeners.push(json!({
            "name": leaf.host.replace('.', "-"), "hostname": leaf.host, "port": 443,
            "protocol": "HTTPS", "tls": {"mode": "Terminate", "certificateRefs": [{"name": name}]},
        }));
    }
    let gateway: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": GATEWAY},
        "spec": {"gatewayClassName": "e2e", "listeners": listeners},
    }))
    .expect("a Gateway");
    api(plane, "Gateway")
        .create(&PostParams::default(), &gateway)
        .await
        .unwrap_or_else(|e| panic!("create the Gateway: {e}"));
}

async fn create_homeserver(plane: &Plane, hs: &Homeserver) {
    let config = format!("{}-homeserver", hs.name);
    let file = homeserver_yaml(hs);
    create_config_map(
        &plane.client,
        &plane.ns.name,
        &config,
        &[("homeserver.yaml", &file)],
    )
    .await;
    let expose = json!({"host": hs.host, "gateway": {"parentRefs": [{"name": GATEWAY}]}});
    // Both Synapses share the harness's loopback: each its own metrics port too.
    let metrics = json!({"port": hs.port + 1000});
    create_synapse(
        &plane.synapses(),
        hs.name,
        json!({"homeserver": {"configMap": {"name": config}}, "expose": expose, "metrics": metrics}),
    )
    .await;
}

/// Waits until the Synapse runs and is routed, and checks what its status publishes.
async fn wait_exposed(plane: &Plane, hs: &Homeserver) {
    let synapse = wait_synapse(&plane.synapses(), hs.name, "running and routed", |s| {
        is_running(s) && condition_state(s, "Exposed") == ("True".into(), "Routed".into())
    })
    .await;
    let status = &synapse["status"];
    assert_eq!(status["publicClientUrl"], format!("https://{}/", hs.host));
    assert_eq!(
        status["federationEndpoint"],
        format!("{}:443", hs.server_name)
    );
}

/// Fails the test on a field the translation does not understand.
fn only_keys(object: &Value, allowed: &[&str], what: &str) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what} is no object: {object}"));
    for key in map.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "{what} has {key:?}, which the translation does not understand: {object}"
        );
    }
}

/// The port a Service port leads to: its targetPort, a named one looked up in the Service's
/// pods (as kube-proxy does). Every Service resolves to 127.0.0.1 in the scenario.
async fn backend_upstream(plane: &Plane, backend: &Value) -> SocketAddr {
    only_keys(
        backend,
        &["group", "kind", "name", "port", "weight"],
        "backendRef",
    );
    assert!(
        matches!(backend["group"].as_str(), None | Some(""))
            && matches!(backend["kind"].as_str(), None | Some("Service"))
            && matches!(backend["weight"].as_u64(), None | Some(1)),
        "only a core Service with the whole weight is translated: {backend}"
    );
    let name = backend["name"].as_str().expect("a backend name");
    let port = backend["port"].as_i64().expect("a backend port");
    let service: Service = get(&plane.client, &plane.ns.name, name).await;
    let spec = service.spec.expect("a Service spec");
    let target = spec
        .ports
        .iter()
        .flatten()
        .find(|p| i64::from(p.port) == port)
        .unwrap_or_else(|| panic!("Service {name} has no port {port}"))
        .target_port
        .clone();
    let port = match target {
        Some(IntOrString::Int(port)) => port,
        Some(IntOrString::String(named)) => named_pod_port(plane, &spec.selector, &named).await,
        None => i32::try_from(port).expect("a port"),
    };
    SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).expect("a port")))
}

async fn named_pod_port(
    plane: &Plane,
    selector: &Option<std::collections::BTreeMap<String, String>>,
    named: &str,
) -> i32 {
    let labels: Vec<String> = selector
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let pods = Api::<Pod>::namespaced(plane.client.clone(), &plane.ns.name)
        .list(&ListParams::default().labels(&labels.join(",")))
        .await
        .expect("list the Service's pods");
    pods.items
        .iter()
        .filter_map(|p| p.spec.as_ref())
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(named))
        .map(|p| p.container_port)
        .unwrap_or_else(|| panic!("no pod of {labels:?} has a port named {named}"))
}

/// The proxy locations of an HTTPRoute's rules: path matches to their one backend.
async fn route_locations(plane: &Plane, spec: &Value) -> Vec<Location> {
    let mut locations = Vec::new();
    for rule in spec["rules"].as_array().expect("rules") {
        only_keys(rule, &["matches", "backendRefs"], "a rule");
        let backends = rule["backendRefs"].as_array().expect("backendRefs");
        assert_eq!(backends.len(), 1, "one backend per rule: {rule}");
        let upstream = backend_upstream(plane, &backends[0]).await;
        for matched in rule["matches"].as_array().expect("matches") {
            only_keys(matched, &["path"], "a match");
            let value = matched["path"]["value"].as_str().expect("a path value");
            locations.push(match matched["path"]["type"].as_str() {
                Some("PathPrefix") => Location::prefix(value, upstream),
                Some("Exact") => Location::exact(value, upstream),
                other => panic!("path match type {other:?} is not translated: {rule}"),
            });
        }
    }
    locations
}

/// The certificate a parent Gateway's HTTPS listener for `host` serves, from its Secret.
async fn listener_certificate(plane: &Plane, parents: &[Value], host: &str) -> (String, String) {
    for parent in parents {
        only_keys(
            parent,
            &["group", "kind", "name", "sectionName"],
            "parentRef",
        );
        let gateway = api(plane, "Gateway")
            .get(parent["name"].as_str().expect("a parent name"))
            .await
            .unwrap_or_else(|e| panic!("the route's Gateway {parent}: {e}"));
        let listener = gateway.data["spec"]["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| parent["sectionName"].is_null() || l["name"] == parent["sectionName"])
            .find(|l| l["hostname"] == host && l["protocol"] == "HTTPS" && l["port"] == 443);
        let Some(listener) = listener else { continue };
        let reference = &listener["tls"]["certificateRefs"][0];
        assert!(
            matches!(reference["kind"].as_str(), None | Some("Secret"))
                && reference["namespace"].is_null(),
            "{reference}"
        );
        let name = reference["name"].as_str().expect("a Secret name");
        let secret: Secret = get(&plane.client, &plane.ns.name, name).await;
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let data = secret_text(&secret);
        let pem = |key: &str| {
            data.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("{name}: {key}"))
        };
        return (pem("tls.crt"), pem("tls.key"));
    }
    panic!("no HTTPS listener on 443 for {host} in {parents:?}")
}

/// The proxy's virtual hosts for the HTTPRoute `name`, exactly as the operator wrote it.
async fn translate_route(plane: &Plane, name: &str) -> Vec<VirtualHost> {
    let route = api(plane, "HTTPRoute")
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("the HTTPRoute {name}: {e}"));
    let spec = &route.data["spec"];
    only_keys(
        spec,
        &["parentRefs", "hostnames", "rules"],
        "the route spec",
    );
    let parents = spec["parentRefs"].as_array().expect("parentRefs");
    let locations = route_locations(plane, spec).await;
    let mut hosts = Vec::new();
    for host in spec["hostnames"].as_array().expect("hostnames") {
        let host = host.as_str().expect("a host name");
        let (cert_pem, key_pem) = listener_certificate(plane, parents, host).await;
        hosts.push(VirtualHost {
            name: host.to_string(),
            cert_pem,
            key_pem,
            locations: locations.clone(),
        });
    }
    hosts
}

/// Writes the test CA onto the Synapse's data volume before it boots.
async fn seed_ca(plane: &Plane, hs: &Homeserver, pem: &str) {
    let claim: PersistentVolumeClaim =
        get(&plane.client, &plane.ns.name, &format!("{}-data", hs.name)).await;
    let dir = e2e::pod_harness::materialize::claim_dir(
        &e2e::pod_harness::state_dir().join("claims"),
        &plane.ns.name,
        &claim.name_any(),
        claim.metadata.uid.as_deref().expect("a claim uid"),
    );
    std::fs::create_dir_all(&dir).expect("create the claim directory");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(dir.join(CA_FILE))
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .expect("write the CA");
}

/// A client in the scenario reaching the public names through the proxy, trusting the test CA.
struct PublicClient<'a> {
    scenario: &'a Scenario,
    ca: PathBuf,
}

impl PublicClient<'_> {
    /// One request with curl: the status and the JSON body (Null when it is not JSON).
    fn request(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let ca = self.ca.display().to_string();
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let body = body.map(Value::to_string);
        // -q: no ~/.curlrc; --noproxy: no proxy from the environment.
        let mut argv = vec!["curl", "-q", "-sS", "--noproxy", "*", "--max-time", "30"];
        argv.extend(["--cacert", &ca, "-X", method, "-w", "\n%{http_code}"]);
        if let Some(auth) = &auth {
            argv.extend(["-H", auth]);
        }
        if let Some(body) = &body {
            argv.extend([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ]);
        }
        argv.push(url);
        let output = proxy::exec_with_hosts(self.scenario, &argv).unwrap_or_else(|e| panic!("{e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let (text, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        let status = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{method} {url}: {stdout:?} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (status, serde_json::from_str(text).unwrap_or(Value::Null))
    }

    fn get_ok(&self, url: &str) -> Value {
        let (status, body) = self.request("GET", url, None, None);
        assert_eq!(status, 200, "GET {url}: {body}");
        body
    }

    fn send_ok(&self, method: &str, url: &str, token: &str, body: Value) -> Value {
        let (status, reply) = self.request(method, url, Some(token), Some(&body));
        assert_eq!(status, 200, "{method} {url} {body}: {reply}");
        reply
    }
}

/// What each public name answers before any federation: the delegation (with an explicit
/// port, so no SRV lookup), the client discovery and the federation API.
fn check_public_names(client: &PublicClient, hs: &Homeserver) {
    let base = format!("https://{}", hs.server_name);
    let server = client.get_ok(&format!("{base}/.well-known/matrix/server"));
    assert_eq!(
        server,
        json!({"m.server": format!("{}:443", hs.server_name)})
    );
    let discovery = client.get_ok(&format!("{base}/.well-known/matrix/client"));
    assert_eq!(
        discovery["m.homeserver"]["base_url"],
        format!("https://{}/", hs.host)
    );
    let version = client.get_ok(&format!(
        "https://{}/_matrix/federation/v1/version",
        hs.host
    ));
    assert_eq!(version["server"]["name"], "Synapse", "{version}");
}

/// Registers a user through the shared-secret admin API: port and name as arguments, the secret
/// on stdin; prints the access token.
const REGISTER_PY: &str = r#"
import hashlib, hmac, json, sys, urllib.request
port, user = sys.argv[1], sys.argv[2]
secret = sys.stdin.read().strip().encode()
url = f"http://127.0.0.1:{port}/_synapse/admin/v1/register"
nonce = json.load(urllib.request.urlopen(url))["nonce"]
password = "pw-" + user
mac = hmac.new(secret, f"{nonce}\0{user}\0{password}\0notadmin".encode(), hashlib.sha1).hexdigest()
body = {"nonce": nonce, "username": user, "password": password, "admin": False, "mac": mac}
request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["access_token"])
"#;

/// Registers `user` on the Synapse's own port (not routed), from inside the scenario, with the
/// shared secret of the operator's Secret. Returns the access token.
async fn register(scenario: &Scenario, plane: &Plane, hs: &Homeserver, user: &str) -> String {
    let secret: Secret = get(
        &plane.client,
        &plane.ns.name,
        &format!("{}-secrets", hs.name),
    )
    .await;
    let secret = secret_text(&secret)
        .remove("registration_shared_secret")
        .expect("a registration secret");
    let mut child = scenario
        .netns()
        .command("/usr/bin/python3.11")
        .args(["-I", "-c", REGISTER_PY, &hs.port.to_string(), user])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3.11");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(secret.as_bytes())
        .expect("write the secret");
    let output = child.wait_with_output().expect("python's output");
    assert!(
        output.status.success(),
        "register {user} on {}: {}",
        hs.server_name,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("a token")
        .trim()
        .to_owned()
}

/// A room ID in a URL path.
fn encode(id: &str) -> String {
    id.replace('!', "%21").replace(':', "%3A")
}

/// Polls `check` every half second until it gives a value, for up to a minute.
fn poll<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if std::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// alice@a.test invites bob@b.test into a new room; bob joins and reads her message. Everything
/// goes to the public hosts, so client and federation requests all pass the proxy.
fn federate(client: &PublicClient, alice: &str, bob: &str) {
    let a = format!("https://{}/_matrix/client/v3", A.host);
    let b = format!("https://{}/_matrix/client/v3", B.host);
    let room = client.send_ok(
        "POST",
        &format!("{a}/createRoom"),
        alice,
        json!({"preset": "private_chat"}),
    );
    let room = room["room_id"].as_str().expect("a room id").to_owned();
    let path = encode(&room);
    // The invite goes to b.test synchronously: a 200 means A reached B.
    let bob_id = format!("@bob:{}", B.server_name);
    client.send_ok(
        "POST",
        &format!("{a}/rooms/{path}/invite"),
        alice,
        json!({"user_id": bob_id}),
    );
    poll("bob to see the invite", || {
        let (_, sync) = client.request("GET", &format!("{b}/sync?timeout=1000"), Some(bob), None);
        let seen = sync["rooms"]["invite"].get(&room).is_some();
        seen.then_some(()).ok_or_else(|| sync.to_string())
    });
    client.send_ok("POST", &format!("{b}/join/{path}"), bob, json!({}));
    let text = "hello from a.test";
    let message = json!({"msgtype": "m.text", "body": text});
    client.send_ok(
        "PUT",
        &format!("{a}/rooms/{path}/send/m.room.message/t1"),
        alice,
        message,
    );
    poll("bob to read alice's message", || {
        let url = format!("{b}/rooms/{path}/messages?dir=b&limit=20");
        let (_, page) = client.request("GET", &url, Some(bob), None);
        let found = page["chunk"].as_array().into_iter().flatten().any(|e| {
            e["content"]["body"] == text && e["sender"] == format!("@alice:{}", A.server_name)
        });
        found.then_some(()).ok_or_else(|| page.to_string())
    });
}

/// The federation requests the proxy logged after line `skip` (the test's own requests before),
/// by the server block, i.e. the public name, that took them: each Synapse found the other
/// through its well-known, and invite, join and the message went through the routes.
fn assert_federation_went_through(proxy: &TlsProxy, skip: usize) {
    let log = proxy.access_log();
    let lines: Vec<&str> = log.lines().skip(skip).collect();
    for (server, request) in [
        ("a.test", "GET /.well-known/matrix/server "),
        ("b.test", "GET /.well-known/matrix/server "),
        ("b.test", "PUT /_matrix/federation/v2/invite/"),
        ("a.test", "GET /_matrix/federation/v1/make_join/"),
        ("a.test", "PUT /_matrix/federation/v2/send_join/"),
        ("b.test", "PUT /_matrix/federation/v1/send/"),
    ] {
        let sent = format!("server={server} sni={server} \"{request}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&sent) && l.contains("\" 200 ")),
            "no {request:?} to {server} answered 200 in the proxy's access log:\n{log}"
        );
    }
}

async fn boot(scenario: &Scenario, plane: &Plane, hs: &Homeserver) -> PodProcess {
    boot_synapse(scenario, &plane.client, &plane.ns.name, hs.name, hs.port).await
}

#[tokio::test]
async fn two_exposed_synapses_federate_through_the_routes_the_operator_wrote() {
    let plane = Plane::start("syn-fed", "info").await;
    let ca = TestCa::new().unwrap_or_else(|e| panic!("{e}"));
    let names = [A.server_name, A.host, B.server_name, B.host];
    let leaves: Vec<Leaf> = names
        .iter()
        .map(|n| ca.issue(n).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    create_gateway(&plane, &leaves).await;
    for hs in [&A, &B] {
        create_homeserver(&plane, hs).await;
    }
    let mut hosts = Vec::new();
    for hs in [&A, &B] {
        wait_exposed(&plane, hs).await;
        hosts.extend(translate_route(&plane, hs.name).await);
        seed_ca(&plane, hs, ca.cert_pem()).await;
    }
    let mut served: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    served.sort_unstable();
    assert_eq!(
        served,
        ["a.test", "b.test", "matrix.a.test", "matrix.b.test"]
    );

    let mut scenario = Scenario::new("federation").unwrap_or_else(|e| panic!("{e}"));
    for hs in [&A, &B] {
        scenario.add_service(&plane.ns.name, hs.name);
    }
    for name in names {
        scenario.add_host(name).unwrap_or_else(|e| panic!("{e}"));
    }
    // Before Synapse: a well-known it fails to fetch is cached for minutes.
    let proxy = TlsProxy::start(scenario.netns(), &[443], &hosts).unwrap_or_else(|e| panic!("{e}"));
    let synapse_a = boot(&scenario, &plane, &A).await;
    let synapse_b = boot(&scenario, &plane, &B).await;
    let client = PublicClient {
        scenario: &scenario,
        ca: ca.cert_path(),
    };
    for hs in [&A, &B] {
        check_public_names(&client, hs);
    }
    let skip = proxy.access_log().lines().count();
    let alice = register(&scenario, &plane, &A, "alice").await;
    let bob = register(&scenario, &plane, &B, "bob").await;
    let started = std::time::Instant::now();
    federate(&client, &alice, &bob);
    eprintln!(
        "bob read alice's message {:?} after the room was created",
        started.elapsed()
    );
    assert_federation_went_through(&proxy, skip);
    drop((synapse_a, synapse_b, proxy));
    drop(scenario);
    plane.finish().await;
}
