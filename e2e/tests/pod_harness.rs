//! The pod harness (`e2e::pod_harness`): planning a fixture Pod (pure), running that fixture's
//! process for real in its namespaces (root and `hack/python-env` needed), Synapse booting from
//! exactly the objects its Deployment mounts in the local plane (`hack/cluster` needed), and
//! Debian's redis-server and nginx standing in for the redis and nginx images in Deployments
//! shaped as Pod Security `restricted` demands (`hack/debian-tool` needed). Nothing here skips: a
//! missing plane, venv, Debian tree or root fails the test with the fix.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::pod_harness::plan::{self, FileEntry, Sources, TokenKey, VolumeContent};
use e2e::pod_harness::{Program, Programs, Scenario, ServiceName, hosts, images};
use e2e::{TestNamespace, client};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::PostParams;
use serde_json::{Value, json};

mod upstream_support;
use upstream_support::Upstream;

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
        Program::venv("synapse", "1.163.2", "/venvs/synapse-1.163.2"),
        Program::venv("heisenbridge", "1.15.4", "/venvs/heisenbridge-1.15.4"),
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
fn plans_a_debian_image_with_its_tree_first_on_the_paths() {
    let tree = "/cache/redis-server-5_7.0.15-1~deb12u10";
    let programs = Programs::from_programs([Program {
        name: "redis-server".into(),
        version: "7.0.15".into(),
        install: images::Install::Debian(images::debian::Tree {
            package: "redis-server".into(),
            dir: tree.into(),
            version: "5:7.0.15-1~deb12u10".into(),
            library_dirs: vec![format!("{tree}/usr/lib/x86_64-linux-gnu").into()],
        }),
    }]);
    let pod = |env: Value| -> Pod {
        from_json(json!({
            "metadata": {"name": "redis", "namespace": "r"},
            "spec": {"containers": [{
                "name": "redis", "image": "redis:7.0.15",
                "command": ["redis-server", "/config/redis.conf"], "env": env,
            }]},
        }))
    };
    let plan = plan::plan(&pod(json!([])), None, &Sources::default(), &programs)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.argv, ["redis-server", "/config/redis.conf"]);
    assert_eq!(
        plan.env.get("PATH"),
        Some(
            format!(
                "{tree}/usr/sbin:{tree}/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:\
                 /sbin:/bin"
            )
            .as_str()
        )
    );
    let libraries = format!("{tree}/usr/lib/x86_64-linux-gnu");
    assert_eq!(plan.env.get("LD_LIBRARY_PATH"), Some(libraries.as_str()));

    // The pod's own paths come after the tree's.
    let env = json!([{"name": "PATH", "value": "/opt/bin"}, {"name": "LD_LIBRARY_PATH", "value": "/opt/lib"}]);
    let plan = plan::plan(&pod(env), None, &Sources::default(), &programs)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.env.get("PATH"),
        Some(format!("{tree}/usr/sbin:{tree}/usr/bin:/opt/bin").as_str())
    );
    assert_eq!(
        plan.env.get("LD_LIBRARY_PATH"),
        Some(format!("{libraries}:/opt/lib").as_str())
    );

    // A venv has no libraries of its own: LD_LIBRARY_PATH stays unset.
    let plan = plan::plan(
        &fixture_pod(),
        Some("main"),
        &fixture_sources("u1"),
        &fake_programs(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.env.get("LD_LIBRARY_PATH"), None);
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
    unknown_image.spec.as_mut().unwrap().containers[1].image = Some("busybox:1.36".into());
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
    let venv_bin = plan.program.bin_dirs()[0].clone();
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
        venv_bin.join("python").display().to_string()
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

/// The securityContexts Pod Security `restricted` demands, as the synapse-operator will write
/// them for Redis and the worker router: a non-root `uid`, a read-only root filesystem, and an
/// emptyDir at /tmp for whatever the program writes. `container` gets them and the /tmp mount.
fn restricted_pod_spec(uid: i64, mut container: Value, mut volumes: Vec<Value>) -> Value {
    container["securityContext"] = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    });
    container["volumeMounts"]
        .as_array_mut()
        .expect("volumeMounts")
        .push(json!({"name": "tmp", "mountPath": "/tmp"}));
    volumes.push(json!({"name": "tmp", "emptyDir": {}}));
    json!({
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    })
}

/// A namespace enforcing Pod Security `restricted`, as the operators' namespaces do.
async fn restricted_namespace(client: &kube::Client, prefix: &str) -> TestNamespace {
    TestNamespace::create(
        client,
        prefix,
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await
}

/// Creates a one-replica Deployment of `pod_spec`, once the API server admits that pod (a dry
/// run, whose refusal names the Pod Security violation; the ReplicaSet's would only be an Event).
async fn create_deployment(ns: &TestNamespace, name: &str, pod_spec: Value) {
    let pod: Pod = from_json(json!({"metadata": {"name": name}, "spec": pod_spec}));
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    ns.api::<Pod>()
        .create(&dry_run, &pod)
        .await
        .unwrap_or_else(|e| panic!("the pod of {name} is not admitted: {e}"));
    ns.api::<Deployment>()
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
                },
            })),
        )
        .await
        .unwrap_or_else(|e| panic!("create deployment {name}: {e}"));
}

/// The image of `repository` whose tag is the upstream version of the Debian package standing
/// in for it: the tag the operator must pin.
fn debian_image(repository: &str, package: &str) -> String {
    let debian = images::debian_version(package).unwrap_or_else(|e| panic!("{e}"));
    format!("{repository}:{}", images::upstream_version(&debian))
}

/// Redis as the synapse-operator will configure it: loopback only, no persistence, the password
/// from a Secret the config includes.
const REDIS_CONF: &str = "bind 127.0.0.1\nport 6379\nprotected-mode yes\nsave \"\"\n\
                          appendonly no\ndir /tmp\ninclude /secrets/auth.conf\n";

#[tokio::test]
async fn redis_image_runs_debians_redis_as_a_restricted_pod() {
    let client = client().await;
    let ns = restricted_namespace(&client, "pod-harness-redis").await;
    let image = debian_image("docker.io/library/redis", "redis-server");
    let password = random_hex(16);
    let pp = PostParams::default();
    ns.api::<ConfigMap>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "redis-config"}, "data": {"redis.conf": REDIS_CONF},
            })),
        )
        .await
        .expect("create configmap");
    ns.api::<Secret>()
        .create(
            &pp,
            &from_json(json!({
                "metadata": {"name": "redis-auth"},
                "stringData": {"auth.conf": format!("requirepass {password}\n")},
            })),
        )
        .await
        .expect("create secret");
    let container = json!({
        "name": "redis",
        "image": image,
        "command": ["redis-server", "/config/redis.conf"],
        "volumeMounts": [
            {"name": "config", "mountPath": "/config", "readOnly": true},
            {"name": "auth", "mountPath": "/secrets", "readOnly": true},
        ],
    });
    let volumes = vec![
        json!({"name": "config", "configMap": {"name": "redis-config"}}),
        json!({"name": "auth", "secret": {"secretName": "redis-auth", "defaultMode": 0o400}}),
    ];
    create_deployment(&ns, "redis", restricted_pod_spec(999, container, volumes)).await;

    let scenario = Scenario::new("redis").unwrap_or_else(|e| panic!("{e}"));
    let mut redis = scenario
        .run_deployment(&client, &ns.name, "redis", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    redis
        .wait_for_log("Ready to accept connections", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status_field(redis.pid(), "Uid"), "999 999 999 999");

    // redis-cli of the same tree, in the pod's network namespace, commands on stdin (so the
    // password is on no command line).
    let program = scenario
        .programs()
        .resolve(&image)
        .unwrap_or_else(|e| panic!("{e}"));
    let cli = program.find("redis-cli").expect("the tree has redis-cli");
    let library_path: Vec<_> = program
        .library_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let redis_cli = |commands: &str| {
        let mut child = scenario
            .netns()
            .command(cli.to_str().expect("a UTF-8 path"))
            .args(["-h", "127.0.0.1", "-p", "6379"])
            .env("LD_LIBRARY_PATH", library_path.join(":"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start redis-cli");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), commands.as_bytes())
            .expect("write to redis-cli");
        let output = child.wait_with_output().expect("run redis-cli");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let answer = redis_cli(&format!("AUTH {password}\nPING\nCONFIG GET dir\n"));
    assert_eq!(answer, "OK\nPONG\ndir\n/tmp\n");
    let refused = redis_cli("AUTH wrong-password\nPING\n");
    assert!(
        refused.contains("WRONGPASS") && refused.contains("NOAUTH") && !refused.contains("PONG"),
        "{refused}"
    );
    assert!(
        redis_cli("PING\n").contains("NOAUTH"),
        "a password is required"
    );

    // SIGTERM, as the kubelet sends: a clean exit with nothing to save.
    // Another tag is refused, naming the version that stands in.
    let err = scenario
        .programs()
        .resolve("redis:7.2.4")
        .expect_err("only the Debian version's tag resolves")
        .to_string();
    let debian = images::debian_version("redis-server").unwrap_or_else(|e| panic!("{e}"));
    assert!(err.contains("\"7.2.4\"") && err.contains(&debian), "{err}");

    let status = redis.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}:\n{}", redis.output());
    assert!(
        redis.output().contains("ready to exit, bye bye"),
        "{}",
        redis.output()
    );
    ns.delete().await;
}

/// The worker router's shape: non-root on 8080, every writable path under /tmp, logs on the
/// container's stdout and stderr, a fixed answer and a proxied path to a Service by name.
const NGINX_CONF: &str = r#"worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr info;
events {
    worker_connections 64;
}
http {
    access_log /dev/stdout;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    server {
        listen 127.0.0.1:8080;
        location = /health {
            return 200 "router ok\n";
        }
        location / {
            proxy_pass http://upstream:8081;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
        }
    }
}
"#;

#[tokio::test]
async fn nginx_image_runs_debians_nginx_as_a_restricted_pod() {
    let client = client().await;
    let ns = restricted_namespace(&client, "pod-harness-nginx").await;
    let image = debian_image("docker.io/library/nginx", "nginx");
    ns.api::<ConfigMap>()
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": "router-config"}, "data": {"nginx.conf": NGINX_CONF},
            })),
        )
        .await
        .expect("create configmap");
    let container = json!({
        "name": "nginx",
        "image": image,
        "command": ["nginx", "-c", "/config/nginx.conf", "-g", "daemon off;"],
        "volumeMounts": [{"name": "config", "mountPath": "/config", "readOnly": true}],
    });
    let volumes = vec![json!({"name": "config", "configMap": {"name": "router-config"}})];
    create_deployment(&ns, "router", restricted_pod_spec(101, container, volumes)).await;

    // The upstream stands in for a Service of the namespace, which nginx resolves at start.
    let mut scenario = Scenario::new("nginx").unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(&ns.name, "upstream");
    let _upstream = Upstream::start(scenario.netns(), 8081, "upstream").await;
    let mut router = scenario
        .run_deployment(&client, &ns.name, "router", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let health = router
        .wait_http_ok(8080, "/health", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(health.text(), "router ok\n");
    assert_eq!(status_field(router.pid(), "Uid"), "101 101 101 101");

    let proxied = router
        .http_get(8080, "/_matrix/client/versions?x=%24")
        .await
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(proxied["upstream"], "upstream");
    assert_eq!(proxied["path"], "/_matrix/client/versions?x=%24");
    assert_eq!(proxied["forwarded_for"], "127.0.0.1");
    // Each request is logged on stdout, as `kubectl logs` would show it.
    let stdout = std::fs::read_to_string(router.stdout_path()).expect("stdout log");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("\"GET /_matrix/client/versions?x=%24 HTTP/")
                && l.contains("\" 200 ")),
        "{}",
        router.output()
    );

    let status = router.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}:\n{}", router.output());
    ns.delete().await;
}
