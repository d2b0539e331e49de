//! `createNewPostgreSQL` without CloudNativePG installed (issue 7): a condition names the missing
//! operator, nothing crashes or stalls, and the Synapse converges once the CRD appears.
//!
//! Its own test binary, because it uninstalls the shared CRD (cargo runs test binaries one after
//! another); it installs it again whatever happens. Needs the plane and `hack/postgres up`.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::time::Duration;

use e2e::postgres::{self, Postgres};
use serde_json::json;
use synapse_support::{
    Plane, condition, condition_state, create_synapse, random_token, wait_event, wait_running,
    wait_synapse,
};

#[tokio::test]
async fn a_missing_cloudnativepg_is_named_and_the_synapse_converges_once_it_is_installed() {
    let plane = Plane::start("pg-nocrd", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let _reinstall = postgres::ReinstallCrdOnDrop;
    postgres::uninstall_cnpg_crd(&client).await;
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({
            "createNewPostgreSQL": true,
            "homeserver": {"values": {"serverName": "nocrd.example.org", "reportStats": false}},
        }),
    )
    .await;
    let missing = wait_synapse(
        &api,
        "hs",
        "DatabaseReady=False CloudNativePGMissing",
        |s| condition_state(s, "DatabaseReady") == ("False".into(), "CloudNativePGMissing".into()),
    )
    .await;
    let message = condition(&missing, "DatabaseReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("CloudNativePG operator is not installed"),
        "{message}"
    );
    assert!(message.contains("clusters.postgresql.cnpg.io"), "{message}");
    wait_event(&client, &ns, "hs", "Warning", "CloudNativePGMissing").await;

    // Nothing stalls: a SQLite Synapse next to it runs, and the operator is alive and ready.
    create_synapse(
        &api,
        "plain",
        json!({"homeserver": {"values": {"serverName": "plain.example.org", "reportStats": false}}}),
    )
    .await;
    wait_running(&api, "plain").await;
    let mut plane = plane;
    plane.operator.assert_running();
    assert!(plane.operator.health_ok("/readyz"));

    // CloudNativePG arrives: the operator looks again on its own and creates the Cluster.
    postgres::install_cnpg_crd(&client).await;
    let started = std::time::Instant::now();
    let created = wait_synapse(&api, "hs", "DatabaseReady=False ClusterNotReady", |s| {
        condition_state(s, "DatabaseReady") == ("False".into(), "ClusterNotReady".into())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(45));
    assert_eq!(condition_state(&created, "Ready").1, "DatabaseNotReady");
    let database = Postgres::from_env().create_database("synapse", "synapse", &random_token(), "C");
    postgres::mark_cluster_ready(&client, &ns, "hs-pgsql").await;
    postgres::create_app_secret(&client, &ns, "hs-pgsql", &database).await;
    let running = wait_running(&api, "hs").await;
    assert_eq!(
        condition_state(&running, "DatabaseReady"),
        ("True".into(), "ClusterReady".into())
    );
    plane.operator.assert_running();
    plane.finish().await;
}
