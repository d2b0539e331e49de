//! Two replicas of one operator against the local plane: exactly one holds the Lease and
//! reconciles, the other waits ready; when the leader is killed, the other takes over within
//! about 15 s; a replica stopped with SIGTERM exits cleanly and releases the Lease.

use std::time::{Duration, Instant};

use e2e::lease::held_by;
use e2e::operator_process::OperatorProcess;
use e2e::operators::install_crds;
use e2e::{TestNamespace, client, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};

const OPERATOR: &str = "heisenbridge-operator";
const LEASE: &str = "heisenbridge-operator-leader";
const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";
const LEADER: &str = "matrix_operator_leader";

/// The value of the metric `name`, which must be exposed; `None` while /metrics does not answer.
fn metric(replica: &OperatorProcess, name: &str) -> Option<f64> {
    let text = replica.metrics_text()?;
    assert!(text.contains(name), "no {name} in /metrics:\n{text}");
    Some(e2e::operator_process::metric_sum(&text, name))
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    e2e::lease::holder(leases, LEASE).await
}

#[tokio::test]
async fn one_leader_and_a_takeover_within_about_15_seconds() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::create(&client, "e2e-leader", &[]).await;
    let mut replicas: Vec<OperatorProcess> = (0..2)
        .map(|n| {
            OperatorProcess::builder(OPERATOR, &ns.name)
                .leader_elect(true)
                .label(&format!("replica-{n}"))
                .start()
        })
        .collect();
    let leases: Api<Lease> = ns.api();

    let first = wait_for(Duration::from_secs(30), "a Lease holder", || {
        holder(&leases)
    })
    .await;
    let leader = replicas
        .iter()
        .position(|r| held_by(&first, r.pid()))
        .unwrap_or_else(|| panic!("the holder {first} is neither replica"));
    let standby = 1 - leader;
    eprintln!("leader: replica {leader} ({first})");

    // Both are live and ready: the leader once its cache is synced, the standby while it
    // watches the Lease.
    for replica in &replicas {
        wait_for(Duration::from_secs(30), "/readyz and /healthz", || async {
            (replica.health_ok("/readyz") && replica.health_ok("/healthz")).then_some(())
        })
        .await;
    }
    assert_eq!(metric(&replicas[leader], LEADER), Some(1.0));
    assert_eq!(metric(&replicas[standby], LEADER), Some(0.0));

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
        || async { metric(&replicas[leader], RECONCILIATIONS).filter(|n| *n >= 1.0) },
    )
    .await;
    assert_eq!(metric(&replicas[standby], RECONCILIATIONS), Some(0.0));

    // Kill the leader outright: it gets no chance to release the Lease.
    replicas[leader].kill();
    let killed = Instant::now();
    wait_for(
        Duration::from_secs(30),
        "the standby to take the Lease",
        || async {
            let pid = replicas[standby].pid();
            holder(&leases).await.filter(|h| held_by(h, pid))
        },
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
            let ready = replicas[standby].health_ok("/readyz");
            let reconciled = metric(&replicas[standby], RECONCILIATIONS).is_some_and(|n| n >= 1.0);
            (ready && reconciled).then_some(())
        },
    )
    .await;
    assert_eq!(metric(&replicas[standby], LEADER), Some(1.0));

    // SIGTERM: a clean exit that gives the Lease up.
    let mut survivor = replicas.remove(standby);
    let stopped = Instant::now();
    // SIGKILLed when it has not exited 15 s after SIGTERM: no success then.
    let status = survivor.stop();
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
}
