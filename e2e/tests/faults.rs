//! The fault suite (issue 19): Synapses each with a Heisenbridge, their operators SIGKILLed at
//! random moments, an apiserver killed and restarted, a leader killed mid-reconcile. Each time
//! everything must converge with no generated secret or token changed, no child recreated,
//! duplicated or orphaned, no finalizer left once the objects are deleted, and no operator
//! panicked or exited by itself.
//!
//! The random moments come from a seed printed at the start; `E2E_FAULTS_SEED=<seed>` replays
//! a run's choices (the timing of the plane itself still varies). The apiserver that is killed is
//! the test's own (`e2e::private_apiserver`), on the plane's etcd: other tests use the plane's
//! apiserver meanwhile. Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use e2e::matrix_fleet::{BRIDGE_OPERATOR, Fleet, SYNAPSE_OPERATOR};
use e2e::object_history::{ObjectHistory, Version};
use e2e::operator_process::OperatorProcess;
use e2e::operator_restarts::{RestartingOperator, incarnation_problem};
use e2e::operators::install_crds;
use e2e::private_apiserver::PrivateApiserver;
use e2e::seeded_rng::SeededRng;
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::Api;

const SEED_VARIABLE: &str = "E2E_FAULTS_SEED";
const PAIRS: usize = 20;
/// SIGKILLs of each operator per phase.
const KILLS: usize = 10;
/// Between two kills: from before the restarted process has synced its caches to well into
/// its reconciles.
const KILL_DELAY: Range<Duration> = Duration::from_millis(200)..Duration::from_millis(2500);
/// Long enough for a loaded 2-core machine running other tests; a quiet run needs far less.
const CONVERGE: Duration = Duration::from_secs(120);
const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";

/// What each test starts from: the CRDs, its random generator, its namespace, and the history
/// of the operators' objects in that namespace, recorded from before there are any.
async fn start(prefix: &str) -> (Client, SeededRng, TestNamespace, ObjectHistory) {
    let client = e2e::client().await;
    install_crds(&client).await;
    let rng = SeededRng::from_env(SEED_VARIABLE, prefix);
    let ns = TestNamespace::create(&client, prefix, &[]).await;
    let operators = [SYNAPSE_OPERATOR, BRIDGE_OPERATOR];
    let history = ObjectHistory::record(&client, &ns.name, &operators).await;
    (client, rng, ns, history)
}

#[tokio::test]
async fn operators_killed_and_apiserver_restarted_converge_keeping_everything() {
    let (client, mut rng, ns, history) = start("e2e-faults").await;
    let mut apiserver = PrivateApiserver::start("faults").await;
    let through_private_apiserver = |operator| {
        let builder =
            OperatorProcess::builder(operator, &ns.name).kubeconfig(apiserver.kubeconfig());
        RestartingOperator::start(operator, builder)
    };
    let mut synapse_operator = through_private_apiserver(SYNAPSE_OPERATOR);
    let mut bridge_operator = through_private_apiserver(BRIDGE_OPERATOR);
    let fleet = Fleet::new(&client, &ns.name, PAIRS);
    let started = tokio::time::Instant::now();
    fleet.create().await;

    // During creation: both operators killed at random moments, and once the apiserver.
    let (mut synapse_rng, mut bridge_rng, mut apiserver_rng) = (rng.fork(), rng.fork(), rng.fork());
    tokio::join!(
        synapse_operator.kill_series(&mut synapse_rng, KILLS, KILL_DELAY),
        bridge_operator.kill_series(&mut bridge_rng, KILLS, KILL_DELAY),
        restart_apiserver(&mut apiserver, &mut apiserver_rng),
    );
    eprintln!(
        "{} kills during creation in {:?}; then {} children of {} existed, {} objects not \
         converged",
        synapse_operator.kills() + bridge_operator.kills(),
        started.elapsed(),
        history.latest().values().filter(|v| !v.deleted).count(),
        fleet.children_expected(),
        fleet.unconverged().await.len()
    );
    fleet
        .wait_converged(CONVERGE, "after the kills during creation")
        .await;
    fleet.assert_invariants(&history).await;

    // After convergence: every child and Secret must come through the kills as it is.
    let converged = history.latest();
    tokio::join!(
        synapse_operator.kill_series(&mut synapse_rng, KILLS, KILL_DELAY),
        bridge_operator.kill_series(&mut bridge_rng, KILLS, KILL_DELAY),
    );
    // The last processes must have reconciled every object: a converged status alone was
    // written before the kills.
    for operator in [&mut synapse_operator, &mut bridge_operator] {
        wait_reconciled(operator.current(), PAIRS).await;
    }
    fleet
        .wait_converged(CONVERGE, "after the kills after convergence")
        .await;
    fleet.assert_invariants(&history).await;
    assert_unchanged(&converged, &history.latest());

    fleet.delete_all(CONVERGE).await;
    assert_eq!(synapse_operator.kills(), 2 * KILLS);
    assert_eq!(bridge_operator.kills(), 2 * KILLS);
    synapse_operator.assert_only_killed();
    bridge_operator.assert_only_killed();
    eprintln!("the fault run took {:?}", started.elapsed());
    drop((synapse_operator, bridge_operator, apiserver));
    ns.delete().await;
}

/// Kills the apiserver at a random moment of the creation, leaves it down a random while (the
/// operators' requests and watches fail meanwhile), and starts it again.
async fn restart_apiserver(apiserver: &mut PrivateApiserver, rng: &mut SeededRng) {
    tokio::time::sleep(rng.duration(Duration::from_secs(1)..Duration::from_secs(10))).await;
    let status = apiserver.kill();
    let down = rng.duration(Duration::from_millis(500)..Duration::from_secs(4));
    eprintln!("killed the private apiserver ({status}); down for {down:?}");
    tokio::time::sleep(down).await;
    apiserver.restart().await;
    eprintln!("the private apiserver is ready again");
}

/// Waits until the operator is ready and has reconciled at least `objects` times.
async fn wait_reconciled(operator: &mut OperatorProcess, objects: usize) {
    operator.wait_ready(CONVERGE).await;
    let what = format!("{objects} reconciliations by pid {}", operator.pid());
    wait_for(CONVERGE, &what, || async {
        operator
            .metric(RECONCILIATIONS)
            .filter(|n| *n >= objects as f64)
    })
    .await;
}

/// Fails naming every object whose UID or Secret data differs between two snapshots, or that
/// appeared or disappeared.
fn assert_unchanged(
    before: &BTreeMap<(String, String), Version>,
    after: &BTreeMap<(String, String), Version>,
) {
    let describe = |v: Option<&Version>| {
        v.map(|v| {
            format!(
                "uid {} deleted {} keys {:?}",
                v.uid,
                v.deleted,
                v.data.keys()
            )
        })
    };
    let keys: BTreeSet<_> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key @ (kind, name)| {
            let (was, is) = (before.get(key), after.get(key));
            let data = if was.map(|v| &v.data) == is.map(|v| &v.data) {
                ""
            } else {
                " (data differs)"
            };
            format!(
                "{kind} {name}: before {:?}, after {:?}{data}",
                describe(was),
                describe(is)
            )
        })
        .collect();
    assert!(
        changed.is_empty(),
        "objects changed by the kills after convergence:\n{}",
        changed.join("\n")
    );
}

const LEADER_PAIRS: usize = 10;

#[tokio::test]
async fn the_standby_finishes_what_a_killed_leader_started() {
    let (client, mut rng, ns, history) = start("e2e-faults-leader").await;
    let leases: Api<Lease> = ns.api();
    let mut operators = Vec::new();
    for operator in [SYNAPSE_OPERATOR, BRIDGE_OPERATOR] {
        let replicas = [0, 1].map(|n| {
            OperatorProcess::builder(operator, &ns.name)
                .leader_elect(true)
                .label(&format!("replica-{n}"))
                .start()
        });
        operators.push((operator, replicas));
    }
    // Leaders first, so that the batch is theirs from its start.
    let mut leaders = Vec::new();
    for (operator, replicas) in &operators {
        leaders.push(leader(&leases, operator, replicas).await);
    }
    let fleet = Fleet::new(&client, &ns.name, LEADER_PAIRS);
    let started = tokio::time::Instant::now();
    fleet.create().await;

    // Each leader is killed a random while after its first reconcile, its work unfinished.
    for ((operator, replicas), &leader) in operators.iter_mut().zip(&leaders) {
        let what = format!("the {operator} leader to reconcile");
        wait_for(CONVERGE, &what, || async {
            replicas[leader]
                .metric(RECONCILIATIONS)
                .filter(|n| *n >= 1.0)
        })
        .await;
        tokio::time::sleep(rng.duration(Duration::ZERO..Duration::from_secs(2))).await;
        let unfinished = fleet.unconverged().await.len();
        assert!(
            unfinished > 0,
            "the batch converged before the {operator} leader was killed: nothing left to take over"
        );
        let status = replicas[leader].kill();
        eprintln!(
            "killed the {operator} leader ({status}) {:?} after the batch, {unfinished} objects \
             not converged",
            started.elapsed()
        );
    }
    for ((operator, replicas), &leader) in operators.iter().zip(&leaders) {
        let standby = &replicas[1 - leader];
        let lease = format!("{operator}-leader");
        wait_for(
            CONVERGE,
            &format!("the {operator} standby to take the Lease {lease}"),
            || async {
                e2e::lease::holder(&leases, &lease)
                    .await
                    .filter(|h| e2e::lease::held_by(h, standby.pid()))
            },
        )
        .await;
    }
    fleet
        .wait_converged(CONVERGE, "after the leaders were killed")
        .await;
    fleet.assert_invariants(&history).await;
    fleet.delete_all(CONVERGE).await;

    // The leaders died of SIGKILL, the standbys still run; no one panicked.
    let mut problems = Vec::new();
    for ((operator, replicas), &leader) in operators.iter_mut().zip(&leaders) {
        for (n, replica) in replicas.iter_mut().enumerate() {
            let exit = replica.try_exit();
            if (n == leader) != exit.is_some() {
                problems.push(format!("{operator} replica {n}: exit {exit:?}"));
            }
            problems.extend(incarnation_problem(
                operator,
                replica.pid(),
                exit,
                &replica.log_text(),
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    drop(operators);
    ns.delete().await;
}

/// The index of the replica holding `operator`'s Lease, once one does.
async fn leader(leases: &Api<Lease>, operator: &str, replicas: &[OperatorProcess; 2]) -> usize {
    let lease = format!("{operator}-leader");
    let holder = wait_for(CONVERGE, &format!("a holder of {lease}"), || {
        e2e::lease::holder(leases, &lease)
    })
    .await;
    replicas
        .iter()
        .position(|r| e2e::lease::held_by(&holder, r.pid()))
        .unwrap_or_else(|| panic!("{holder} holds {lease}, neither replica"))
}
