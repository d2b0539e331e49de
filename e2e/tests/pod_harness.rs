//! The pod harness (`e2e::pod_harness`): planning a fixture Pod (pure), running that fixture's
//! process for real in its namespaces (root and `hack/python-env` needed), and Synapse booting
//! from exactly the objects its Deployment mounts in the local plane (`hack/cluster` needed).
//! Nothing here skips: a missing plane, venv or root fails the test with the fix.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::pod_harness::plan::{self, FileEntry, Sources, TokenKey, VolumeContent};
use e2e::pod_harness::{Program, Programs, Scenario, ServiceName, hosts};
use e2e::{TestNamespace, client};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::PostParams;
use serde_json::{Value, json};

const FIXTURE_POD: &str = include_str!("../testdata/pod-harness/fixture-pod.yaml");
const CHECK_PY: &str = include_str!("../testdata/pod-harness/check.py");
const HOMESERVER: &str = include_str!("../testdata/pod-harness/homeserver.yaml");
const LOG_CONFIG: &str = include_str!("../testdata/pod-harness/log.yaml");
/// MATRIX-NOTES' known answer: seed 0x00..0x1f, and the verify key Synapse must publish for it.
const SIGNING_KEY: &str = "ed25519 a_abCD AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n";
const VERIFY_KEY: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
const TIMEOUT: Duration = Duration::from_secs(90);

fn from_json<T: k8s_openapi::serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("test object matches its Kubernetes type")
}

fn fixture_pod() -> Pod {
    serde_yaml::from_str(FIXTURE_POD).expect("fixture-pod.yaml is a Pod")
}

/// The objects the fixture pod references, as the API would return them.
fn fixture_sources(claim_uid: &str) -> Sources {
    let mut sources = Sources::default();
    sources.config_maps.insert(
        "app-config".into(),
        from_json(json!({"data": {"app.yaml": "greeting: hi\n", "check.py": CHECK_PY}})),
    );
    sources.config_maps.insert(
        "kube-root-ca.crt".into(),
        from_json(json!({"data": {"ca.crt": "fixture CA\n"}})),
    );
    // Secret data travels base64-encoded in JSON.
    sources.secrets.insert(
        "app-secret".into(),
        from_json(json!({"data": {
            "signing.key": "ZWQyNTUxOSBhX2FiQ0QgQUFFQ0F3UUZCZ2NJQ1FvTERBME9EeEFSRWhNVUZSWVhHQmthR3h3ZEhoOAo=",
            "password": "aHVudGVyMg==",
        }})),
    );
    sources.claims.insert(
        "data".into(),
        from_json(json!({"metadata": {"name": "data", "uid": claim_uid}})),
    );
    sources.tokens.insert(
        TokenKey {
            service_account: "runner".into(),
            audience: None,
            expiration_seconds: 3607,
        },
        "fixture-token".into(),
    );
    sources
}

fn fake_programs() -> Programs {
    Programs::from_programs([
        Program {
            name: "synapse".into(),
            version: "1.163.2".into(),
            venv: "/venvs/synapse-1.163.2".into(),
        },
        Program {
            name: "heisenbridge".into(),
            version: "1.15.4".into(),
            venv: "/venvs/heisenbridge-1.15.4".into(),
        },
    ])
}

fn files(content: &VolumeContent) -> Vec<(String, String, u32)> {
    match content {
        VolumeContent::Files(files) => files
            .iter()
            .map(|FileEntry { path, data, mode }| {
                (path.clone(), String::from_utf8_lossy(data).into(), *mode)
            })
            .collect(),
        other => panic!("expected files, got {other:?}"),
    }
}

#[test]
fn plans_the_fixture_pod_like_the_kubelet() {
    let pod = fixture_pod();
    let plan = plan::plan(&pod, Some("main"), &fixture_sources("u1"), &fake_programs())
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        plan.argv,
        ["python", "-c", CHECK_PY, "--name=fixture", "$(POD_NAME)"]
    );
    assert_eq!(plan.working_dir.as_deref(), Some("/app/work"));
    assert_eq!(plan.hostname, "fixture");
    assert_eq!(plan.grace_period, Duration::from_secs(5));
    let env = |name| plan.env.get(name);
    assert_eq!(env("MESSAGE"), Some("hello from fixture"));
    assert_eq!(env("POD_IP"), Some("127.0.0.1"));
    assert_eq!(env("PASSWORD"), Some("hunter2"));
    assert_eq!(env("CFG_app.yaml"), Some("greeting: hi\n"));
    assert_eq!(
        env("MAYBE"),
        None,
        "optional missing secret leaves it unset"
    );
    assert_eq!(env("HOSTNAME"), Some("fixture"));
    assert!(
        env("PATH").is_some_and(|p| p.starts_with("/venvs/synapse-1.163.2/bin:")),
        "the image's venv comes first on PATH"
    );
    assert!(
        !format!("{:?}", plan.env).contains("hunter2"),
        "Debug of the env must not show values"
    );

    assert_eq!(plan.user.uid, 991);
    assert_eq!(plan.user.gid, 992);
    assert_eq!(plan.user.groups, [993, 994]);
    assert_eq!(plan.user.fs_group, Some(993));
    assert!(plan.user.no_new_privs);
    assert_eq!(plan.user.capabilities, ["net_bind_service"]);

    let volume = |name: &str| {
        &plan
            .volumes
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("volume {name} planned"))
            .content
    };
    assert_eq!(
        files(volume("config")),
        [
            ("conf/app.yaml".into(), "greeting: hi\n".into(), 0o644),
            ("check.py".into(), CHECK_PY.into(), 0o755),
        ]
    );
    let keys = files(volume("keys"));
    assert_eq!(
        keys.iter()
            .map(|(p, _, m)| (p.as_str(), *m))
            .collect::<Vec<_>>(),
        [("password", 0o400), ("signing.key", 0o400)]
    );
    assert_eq!(keys[1].1, SIGNING_KEY);
    assert_eq!(
        volume("data"),
        &VolumeContent::Claim {
            claim: "data".into(),
            uid: "u1".into()
        }
    );
    assert_eq!(volume("scratch"), &VolumeContent::EmptyDir);
    assert_eq!(
        files(volume("api")),
        [
            ("token".into(), "fixture-token".into(), 0o644),
            ("ca.crt".into(), "fixture CA\n".into(), 0o644),
            ("namespace".into(), "fx".into(), 0o644),
            (
                "labels".into(),
                "app=\"fixture\"\ntier=\"test\"".into(),
                0o644
            ),
        ]
    );
    assert!(
        plan.volumes.iter().all(|v| v.name != "sidecar-only"),
        "volumes the container does not mount are not planned"
    );

    let mounts: Vec<_> = plan
        .mounts
        .iter()
        .map(|m| {
            (
                m.mount_path.as_str(),
                m.volume.as_str(),
                m.sub_path.as_deref(),
                m.read_only,
            )
        })
        .collect();
    assert_eq!(
        mounts,
        [
            ("/config", "config", None, true),
            ("/secrets", "keys", None, true),
            ("/data", "data", None, false),
            ("/data/tmp", "scratch", None, false),
            ("/etc/app/signing.key", "keys", Some("signing.key"), true),
            (
                "/var/run/secrets/kubernetes.io/serviceaccount",
                "api",
                None,
                true
            ),
        ]
    );
}

#[test]
fn renders_the_hosts_file_for_the_fixture_pod() {
    let hosts = hosts::render(
        "fixture",
        "fx",
        &[
            ServiceName::new("fx", "synapse"),
            ServiceName::new("db", "pg"),
        ],
        &[],
    );
    let lines: Vec<_> = hosts.lines().collect();
    assert!(lines.contains(&"127.0.0.1\tlocalhost"), "{hosts}");
    assert!(lines.contains(&"127.0.0.1\tfixture"), "{hosts}");
    assert!(lines.contains(&"127.0.0.1\tpg.db pg.db.svc pg.db.svc.cluster.local"));
    assert!(
        lines
            .contains(&"127.0.0.1\tsynapse synapse.fx synapse.fx.svc synapse.fx.svc.cluster.local")
    );
}

#[test]
fn refuses_what_it_cannot_run() {
    let pod = fixture_pod();
    let sources = fixture_sources("u1");
    let programs = fake_programs();
    let err = |pod: &Pod, container: Option<&str>, sources: &Sources| {
        plan::plan(pod, container, sources, &programs)
            .expect_err("planning must fail")
            .to_string()
    };

    let e = err(&pod, Some("sidecar"), &sources);
    assert!(
        e.contains("\"hostPath\"") && e.contains("sidecar-only"),
        "{e}"
    );
    let e = err(&pod, None, &sources);
    assert!(e.contains("2 containers") && e.contains("main"), "{e}");

    let mut no_command = pod.clone();
    no_command.spec.as_mut().unwrap().containers[1].command = None;
    let e = err(&no_command, Some("main"), &sources);
    assert!(e.contains("no command"), "{e}");

    let mut unknown_image = pod.clone();
    unknown_image.spec.as_mut().unwrap().containers[1].image = Some("nginx:1.27".into());
    let e = err(&unknown_image, Some("main"), &sources);
    assert!(e.contains("no local stand-in"), "{e}");

    let mut missing = fixture_sources("u1");
    missing.config_maps.remove("kube-root-ca.crt");
    let e = err(&pod, Some("main"), &missing);
    assert!(
        e.contains("configmap \"kube-root-ca.crt\" not found"),
        "{e}"
    );
}

/// The process and the network namespace are gone.
fn assert_left_nothing(pid: u32, netns: &str) {
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} still exists"
    );
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines()
            .all(|l| l.split_whitespace().next() != Some(netns)),
        "netns {netns} left behind: {list}"
    );
}

/// Removes the harness's claim data of a namespace when the test ends, passed or not.
struct ForgetClaims(String);

impl Drop for ForgetClaims {
    fn drop(&mut self) {
        e2e::pod_harness::forget_claims(&self.0).expect("forget the claim data");
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

#[tokio::test]
async fn runs_the_fixture_pod_in_its_namespaces_as_its_user() {
    // A namespace of its own, so parallel runs never share the claim directory.
    let mut pod = fixture_pod();
    let namespace = unique("fx");
    pod.metadata.namespace = Some(namespace.clone());
    let _forget = ForgetClaims(namespace.clone());
    let mut scenario = Scenario::new("fixture").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&namespace, "synapse");
    let plan = plan::plan(
        &pod,
        Some("main"),
        &fixture_sources("u1"),
        scenario.programs(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let venv = plan.program.venv.clone();
    let host_paths = ["/app", "/config", "/secrets", "/data", "/etc/app"];
    let host_before = host_paths.map(|p| Path::new(p).exists());

    let mut process = scenario.start(plan).unwrap_or_else(|e| panic!("{e}"));
    let status = process
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}:\n{}", process.output());
    let stdout = std::fs::read_to_string(process.stdout_path()).expect("stdout log");
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("check.py prints JSON ({e}):\n{}", process.output()));

    assert_eq!(report["argv"], json!(["--name=fixture", "$(POD_NAME)"]));
    assert_eq!(
        report["executable"],
        venv.join("bin/python").display().to_string()
    );
    assert_eq!(report["uid"], 991);
    assert_eq!(report["gid"], 992);
    assert_eq!(report["groups"], json!([993, 994]));
    assert_eq!(report["cwd"], "/app/work");
    assert_eq!(report["hostname"], "fixture");
    assert_eq!(
        report["env"],
        json!({"MESSAGE": "hello from fixture", "POD_IP": "127.0.0.1",
               "CFG_app.yaml": "greeting: hi\n", "HOME": "/", "MAYBE": null})
    );
    assert_eq!(report["app"], "greeting: hi\n");
    // Mode 0400 root-owned: readable only through fsGroup, as in a cluster.
    assert_eq!(report["signing_key"], SIGNING_KEY);
    assert_eq!(report["password"], "hunter2");
    assert_eq!(report["token"], "fixture-token");
    assert_eq!(report["namespace"], namespace.as_str());
    assert!(
        report["hosts"].as_str().unwrap().contains(&format!(
            "127.0.0.1\tsynapse synapse.{namespace} synapse.{namespace}.svc \
             synapse.{namespace}.svc.cluster.local\n"
        )),
        "{}",
        report["hosts"]
    );
    assert_eq!(
        report["writable"],
        json!({"config": false, "secrets": false, "data": true, "scratch": true})
    );
    assert_eq!(report["cap_bounding"], json!(["0000000000000400"]));
    assert_eq!(report["no_new_privs"], json!(["1"]));

    let claim = process.volume_dir("data").expect("claim dir").to_path_buf();
    let written = std::fs::metadata(claim.join("new")).expect("the process wrote to its claim");
    assert_eq!(
        (written.uid(), written.gid()),
        (991, 993),
        "setgid claim dir"
    );

    let (pid, netns) = (process.pid(), scenario.netns().name().to_string());
    drop(process);
    drop(scenario);
    assert_left_nothing(pid, &netns);
    assert_eq!(
        host_paths.map(|p| Path::new(p).exists()),
        host_before,
        "mount points are made in the view, never on the host"
    );
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn heisenbridge_image_runs_the_pinned_heisenbridge() {
    let pod: Pod = from_json(json!({
        "metadata": {"name": "bridge", "namespace": "hb"},
        "spec": {"containers": [{
            "name": "heisenbridge",
            "image": "hif1/heisenbridge:1.15.4",
            "command": ["heisenbridge", "--version"],
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
        }]},
    }));
    let scenario = Scenario::new("heisenbridge").unwrap_or_else(|e| panic!("{e}"));
    let plan = plan::plan(&pod, None, &Sources::default(), scenario.programs())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.program.name, "heisenbridge");
    let mut process = scenario.start(plan).unwrap_or_else(|e| panic!("{e}"));
    let status = process
        .wait_exit(Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}:\n{}", process.output());
    assert_eq!(process.output().trim(), "1.15.4");
}

/// The Synapse test's objects: config and keys as an operator would write them, a claim (the
/// plane's default StorageClass provisions it), a Service, and a Deployment whose pod runs as
/// 991 with fsGroup 991.
async fn create_synapse_objects(ns: &TestNamespace) {
    let pp = PostParams::default();
    ns.api::<ConfigMap>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "synapse-config"},
                "data": {"homeserver.yaml": HOMESERVER, "log.yaml": LOG_CONFIG},
            })),
        )
        .await
        .expect("create configmap");
    ns.api::<Secret>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "synapse-keys"},
                "stringData": {"signing.key": SIGNING_KEY, "macaroon": random_hex(32)},
            })),
        )
        .await
        .expect("create secret");
    ns.api::<PersistentVolumeClaim>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "synapse-data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            })),
        )
        .await
        .expect("create claim");
    ns.api::<Service>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "synapse"},
                "spec": {
                    "selector": {"app": "synapse"},
                    "ports": [{"name": "http", "port": 8008}],
                },
            })),
        )
        .await
        .expect("create service");
    let pod_spec = json!({
        "securityContext": {"runAsUser": 991, "runAsGroup": 991, "fsGroup": 991},
        "containers": [{
            "name": "synapse",
            "image": "matrixdotorg/synapse:v1.163.2",
            "command": ["python", "-m", "synapse.app.homeserver"],
            "args": ["-c", "/config/homeserver.yaml"],
            "ports": [{"name": "http", "containerPort": 8008}],
            "volumeMounts": [
                {"name": "config", "mountPath": "/config", "readOnly": true},
                {"name": "keys", "mountPath": "/secrets", "readOnly": true},
                {"name": "keys", "mountPath": "/etc/synapse/signing.key",
                 "subPath": "signing.key", "readOnly": true},
                {"name": "data", "mountPath": "/data"},
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": "synapse-config"}},
            {"name": "keys", "secret": {"secretName": "synapse-keys", "defaultMode": 0o400}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "synapse-data"}},
        ],
    });
    ns.api::<Deployment>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "synapse"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "synapse"}},
                    "strategy": {"type": "Recreate"},
                    "template": {"metadata": {"labels": {"app": "synapse"}}, "spec": pod_spec},
                },
            })),
        )
        .await
        .expect("create deployment");
}

fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn synapse_boots_from_the_files_its_pod_mounts() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "pod-harness", &[]).await;
    let _forget = ForgetClaims(ns.name.clone());
    create_synapse_objects(&ns).await;

    let mut scenario = Scenario::new("synapse").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns.name, "synapse");
    let mut synapse = scenario
        .run_deployment(&client, &ns.name, "synapse", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let health = synapse
        .wait_http_ok(8008, "/health", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "pod harness: Synapse answered /health {:?} after its start",
        synapse.started().elapsed()
    );
    assert_eq!(health.text(), "OK");

    let versions = synapse
        .http_get(8008, "/_matrix/client/versions")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    let list = versions["versions"].as_array().expect("a versions list");
    assert!(
        !list.is_empty() && list.iter().all(Value::is_string),
        "{versions}"
    );
    // The signing key is the one in the Secret, read through the subPath mount.
    let keys = synapse
        .http_get(8008, "/_matrix/key/v2/server")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(keys["server_name"], "pod-harness.test");
    assert_eq!(
        keys["verify_keys"]["ed25519:a_abCD"]["key"], VERIFY_KEY,
        "{keys}"
    );

    // The process sees exactly the pod's objects, and runs as the pod's user.
    let pid = synapse.pid();
    let root = format!("/proc/{pid}/root");
    let read = |p: &str| {
        std::fs::read_to_string(format!("{root}{p}")).unwrap_or_else(|e| panic!("read {p}: {e}"))
    };
    assert_eq!(read("/config/homeserver.yaml"), HOMESERVER);
    assert_eq!(read("/config/log.yaml"), LOG_CONFIG);
    assert!(
        read("/etc/hosts").contains(&format!(
            "synapse synapse.{0} synapse.{0}.svc synapse.{0}.svc.cluster.local\n",
            ns.name
        )),
        "{}",
        read("/etc/hosts")
    );
    assert_eq!(status_field(pid, "Uid"), "991 991 991 991");
    assert_eq!(status_field(pid, "Gid"), "991 991 991 991");
    assert_eq!(status_field(pid, "Groups"), "991");
    let data = synapse.volume_dir("data").expect("claim dir").to_path_buf();
    let db = std::fs::metadata(data.join("homeserver.db")).expect("Synapse made its database");
    assert_eq!((db.uid(), db.gid()), (991, 991));

    // A restarted pod finds the database on its claim.
    let netns = scenario.netns().name().to_string();
    drop(synapse);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "stopped");
    let mut again = scenario
        .run_deployment(&client, &ns.name, "synapse", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    again
        .wait_http_ok(8008, "/health", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "pod harness: restarted Synapse answered /health {:?} after its start",
        again.started().elapsed()
    );
    let reopened = std::fs::metadata(data.join("homeserver.db")).expect("database kept");
    assert_eq!(reopened.ino(), db.ino(), "the same database file");

    let started = Instant::now();
    let pid = again.pid();
    drop(again);
    drop(scenario);
    eprintln!(
        "pod harness: stopped and cleaned up in {:?}",
        started.elapsed()
    );
    assert_left_nothing(pid, &netns);
    ns.delete().await;
}
