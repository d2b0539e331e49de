//! Two replicas of one operator against the local plane: exactly one holds the Lease and
//! reconciles, the other waits ready; when the leader is killed, the other takes over within
//! about 15 s; a replica stopped with SIGTERM exits cleanly and releases the Lease.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::operators::{free_local_port, http_get, install_crds, operator_binary};
use e2e::{TestNamespace, client, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const OPERATOR: &str = "heisenbridge-operator";
const LEASE: &str = "heisenbridge-operator-leader";
const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";
const LEADER: &str = "matrix_operator_leader";

/// One operator process; killed when dropped so a failing test leaves nothing behind.
struct Replica {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Replica {
    fn start(binary: &Path, namespace: &str, log_dir: &Path, n: usize) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], free_local_port()).into();
        let log = log_dir.join(format!("replica-{n}.log"));
        let child = Command::new(binary)
            .args(["run", "--namespace", namespace, "--leader-elect=true"])
            .args(["--health-addr", &addr.to_string()])
            .args(["--metrics-addr", &addr.to_string()])
            .args(["--log-level", "info", "--log-format", "text"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the replica's log"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        Self { child, addr, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn holds(&self, holder: &str) -> bool {
        e2e::lease::held_by(holder, self.pid())
    }

    /// Whether `path` answers 200.
    fn ok(&self, path: &str) -> bool {
        http_get(self.addr, path).is_ok_and(|(code, _)| code == 200)
    }

    /// The value of the metric `name`; `None` while /metrics does not answer.
    fn metric(&self, name: &str) -> Option<f64> {
        let (code, text) = http_get(self.addr, "/metrics").ok()?;
        assert_eq!(code, 200, "/metrics answered {code}");
        assert!(text.contains(name), "no {name} in /metrics:\n{text}");
        Some(e2e::operator_process::metric_sum(&text, name))
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // Already exited or reaped when the test ended normally; nothing to report then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    e2e::lease::holder(leases, LEASE).await
}

fn terminate(pid: u32) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("a pid fits in i32"));
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
}

#[tokio::test]
async fn one_leader_and_a_takeover_within_about_15_seconds() {
    let client = client().await;
    install_crds(&client).await;
    let binary = operator_binary(OPERATOR);
    let ns = TestNamespace::create(&client, "e2e-leader", &[]).await;
    let log_dir = std::env::temp_dir().join(&ns.name);
    std::fs::create_dir_all(&log_dir).expect("create the log directory");
    eprintln!("replica logs in {}", log_dir.display());

    let mut replicas = vec![
        Replica::start(&binary, &ns.name, &log_dir, 0),
        Replica::start(&binary, &ns.name, &log_dir, 1),
    ];
    let leases: Api<Lease> = ns.api();

    let first = wait_for(Duration::from_secs(30), "a Lease holder", || {
        holder(&leases)
    })
    .await;
    let leader = replicas
        .iter()
        .position(|r| r.holds(&first))
        .unwrap_or_else(|| panic!("the holder {first} is neither replica"));
    let standby = 1 - leader;
    eprintln!("leader: replica {leader} ({first})");

    // Both are live and ready: the leader once its cache is synced, the standby while it
    // watches the Lease.
    for replica in &replicas {
        wait_for(Duration::from_secs(30), "/readyz and /healthz", || async {
            (replica.ok("/readyz") && replica.ok("/healthz")).then_some(())
        })
        .await;
    }
    assert_eq!(replicas[leader].metric(LEADER), Some(1.0));
    assert_eq!(replicas[standby].metric(LEADER), Some(0.0));

    // Only the leader reconciles.
    let gvk = GroupVersionKind::gvk("synapse.opdev.io", "v1alpha1", "Heisenbridge");
    let bridges: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &ApiResource::from_gvk(&gvk));
    let bridge: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Heisenbridge",
        "metadata": {"name": "irc"},
        "spec": {"synapse": {"name": "matrix"}},
    }))
    .expect("a Heisenbridge");
    bridges
        .create(&PostParams::default(), &bridge)
        .await
        .expect("create a Heisenbridge");
    wait_for(
        Duration::from_secs(20),
        "the leader to reconcile",
        || async {
            replicas[leader]
                .metric(RECONCILIATIONS)
                .filter(|n| *n >= 1.0)
        },
    )
    .await;
    assert_eq!(replicas[standby].metric(RECONCILIATIONS), Some(0.0));

    // Kill the leader outright: it gets no chance to release the Lease.
    replicas[leader].child.kill().expect("SIGKILL the leader");
    replicas[leader].child.wait().expect("reap the leader");
    let killed = Instant::now();
    wait_for(
        Duration::from_secs(30),
        "the standby to take the Lease",
        || async { holder(&leases).await.filter(|h| replicas[standby].holds(h)) },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!("takeover {takeover:?} after SIGKILL of the leader");
    assert!(
        takeover <= Duration::from_secs(20),
        "takeover took {takeover:?}, expected about 15 s"
    );
    wait_for(
        Duration::from_secs(30),
        "the new leader to reconcile",
        || async {
            let ready = replicas[standby].ok("/readyz");
            let reconciled = replicas[standby]
                .metric(RECONCILIATIONS)
                .is_some_and(|n| n >= 1.0);
            (ready && reconciled).then_some(())
        },
    )
    .await;
    assert_eq!(replicas[standby].metric(LEADER), Some(1.0));

    // SIGTERM: a clean exit that gives the Lease up.
    let mut survivor = replicas.remove(standby);
    terminate(survivor.pid());
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = survivor.child.try_wait().expect("poll the process") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "no exit within 15 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("exit {status} {:?} after SIGTERM", stopped.elapsed());
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        survivor.log_text()
    );
    assert_eq!(holder(&leases).await, None, "the Lease was not released");
    assert!(survivor.log_text().contains("released the leader Lease"));

    drop(replicas);
    ns.delete().await;
    std::fs::remove_dir_all(&log_dir).expect("remove the logs");
}
