//! Synapse on PostgreSQL (issue 7), against the real plane, a real PostgreSQL 15 (`hack/postgres`)
//! and real Synapse booted from its pod's files by the pod harness:
//!
//! - `createNewPostgreSQL`: the operator creates the CloudNativePG Cluster and waits for it; the
//!   test plays CloudNativePG (it writes the `-app` Secret pointing at a real database and marks
//!   the Cluster ready); Synapse connects and creates its schema; a password rotation rolls it;
//! - `externalPostgreSQL`: missing Secret and keys are named, then Synapse connects;
//! - a homeserver.yaml with its own `database` section is used as written, and is refused next to
//!   an operator database;
//! - a database whose collation is not C is refused by Synapse itself.
//!
//! The missing-CRD case lives in `synapse_postgresql_crd.rs`: it uninstalls the shared CRD.
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`) and `hack/postgres up`.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use e2e::pod_harness::{PodProcess, PortForward, Scenario};
use e2e::postgres::{self, CNPG_PORT, Database, Postgres};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use serde_json::{Value, json};
use synapse_support::{
    Plane, TIMEOUT, assert_no_secret_leak, boot_synapse, condition, condition_state, config_file,
    create_config_map, create_synapse, get, get_opt, random_token, template_hash, wait_event,
    wait_failed, wait_running, wait_synapse,
};

/// A scenario where the Synapse `name` and the PostgreSQL Service `db_host` resolve, the latter
/// relayed to the tests' real server.
fn database_scenario(
    label: &str,
    namespace: &str,
    name: &str,
    db_host: &str,
) -> (Scenario, PortForward) {
    let mut scenario = Scenario::new(label).unwrap_or_else(|e| panic!("{e}"));
    scenario.add_service(namespace, name);
    scenario.add_service(namespace, db_host);
    let relay = scenario
        .forward_port(CNPG_PORT, Postgres::from_env().host_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    (scenario, relay)
}

/// Boots the Synapse's current pod and checks that it created its schema in `database`.
async fn boot_on(
    scenario: &Scenario,
    client: &Client,
    namespace: &str,
    name: &str,
    database: &Database,
) -> PodProcess {
    let synapse = boot_synapse(scenario, client, namespace, name, 8008).await;
    let pg = Postgres::from_env();
    for table in ["users", "events", "schema_version"] {
        assert!(
            pg.table_exists(&database.name, table),
            "Synapse created table {table} in {}",
            database.name
        );
    }
    synapse
}

fn database_reason(synapse: &Value) -> (String, String) {
    condition_state(synapse, "DatabaseReady")
}

async fn wait_database(plane: &Plane, name: &str, status: &str, reason: &str) -> Value {
    wait_synapse(
        &plane.synapses(),
        name,
        &format!("DatabaseReady={status} {reason}"),
        |s| database_reason(s) == (status.into(), reason.into()),
    )
    .await
}

async fn deployment_opt(client: &Client, namespace: &str, name: &str) -> Option<Deployment> {
    get_opt(client, namespace, name).await
}

/// The container's PGPASSWORD: from `secret`'s `password` key, never a literal.
fn assert_password_from(deployment: &Deployment, secret: &str) {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    let env = pod.containers[0].env.clone().unwrap_or_default();
    let password = env
        .iter()
        .find(|e| e.name == "PGPASSWORD")
        .expect("PGPASSWORD in the container's environment");
    assert_eq!(password.value, None);
    let key = password
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .expect("PGPASSWORD from a Secret");
    assert_eq!((key.name.as_str(), key.key.as_str()), (secret, "password"));
}

#[tokio::test]
async fn a_provisioned_cluster_is_awaited_then_synapse_creates_its_schema_and_follows_rotation() {
    let plane = Plane::start("pg-cnpg", "info").await;
    postgres::install_cnpg_crd(&plane.client).await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({
            "createNewPostgreSQL": true,
            "homeserver": {"values": {"serverName": "pg.example.org", "reportStats": false}},
        }),
    )
    .await;

    // The Cluster is created and awaited: Synapse is not started against it.
    let waiting = wait_database(&plane, "hs", "False", "ClusterNotReady").await;
    assert_eq!(
        condition_state(&waiting, "Ready"),
        ("False".into(), "DatabaseNotReady".into())
    );
    let cluster = postgres::cluster_api(&client, &ns)
        .get("hs-pgsql")
        .await
        .expect("the Cluster hs-pgsql");
    assert_eq!(
        cluster.data["spec"]["bootstrap"]["initdb"],
        json!({"database": "synapse", "owner": "synapse", "encoding": "UTF8",
               "localeCollate": "C", "localeCType": "C"})
    );
    assert_eq!(cluster.data["spec"]["instances"], 1);
    assert_eq!(
        cluster.metadata.owner_references.unwrap_or_default(),
        [],
        "retained by default, like the data volume"
    );
    assert_eq!(
        cluster.metadata.labels.unwrap_or_default()["app.kubernetes.io/instance"],
        "hs"
    );
    wait_event(&client, &ns, "hs", "Warning", "ClusterNotReady").await;
    assert!(deployment_opt(&client, &ns, "hs").await.is_none());

    // CloudNativePG's part: the database exists, the Cluster is ready, its Secret written.
    let pg = Postgres::from_env();
    let mut database = pg.create_database("synapse", "synapse", &random_token(), "C");
    postgres::mark_cluster_ready(&client, &ns, "hs-pgsql").await;
    let no_secret = wait_synapse(&api, "hs", "the app Secret is awaited", |s| {
        condition(s, "DatabaseReady")
            .and_then(|c| c["message"].as_str())
            .is_some_and(|m| m.contains("hs-pgsql-app does not exist yet"))
    })
    .await;
    assert_eq!(database_reason(&no_secret).0, "False");
    assert!(deployment_opt(&client, &ns, "hs").await.is_none());
    postgres::create_app_secret(&client, &ns, "hs-pgsql", &database).await;

    let running = wait_running(&api, "hs").await;
    assert_eq!(
        database_reason(&running),
        ("True".into(), "ClusterReady".into())
    );
    assert_eq!(
        running["status"]["databaseConnectionInfo"],
        json!({"connectionURL": "hs-pgsql-rw:5432", "databaseName": database.name,
               "user": database.owner, "State": "READY"})
    );
    wait_event(&client, &ns, "hs", "Normal", "ClusterReady").await;
    let deployment: Deployment = get(&client, &ns, "hs").await;
    assert_password_from(&deployment, "hs-pgsql-app");
    let overlay = config_file(&client, &ns, "hs", "operator-overlay.yaml").await;
    let overlay: Value = serde_json::from_str(
        overlay
            .split_once('\n')
            .map(|(_, body)| body)
            .expect("a header line"),
    )
    .expect("the overlay is JSON");
    assert_eq!(overlay["database"]["name"], "psycopg2");
    assert_eq!(overlay["database"]["args"]["host"], "hs-pgsql-rw");
    assert_eq!(overlay["database"]["args"]["port"], 5432);
    assert_eq!(overlay["database"]["args"]["dbname"], json!(database.name));
    assert_eq!(overlay["database"]["args"]["user"], json!(database.owner));

    // The proof that counts: real Synapse on the real database, through the Service name.
    let (scenario, _relay) = database_scenario("pg-cnpg", &ns, "hs", "hs-pgsql-rw");
    let synapse = boot_on(&scenario, &client, &ns, "hs", &database).await;
    drop(synapse);

    // Rotation: the new password in the Secret rolls Synapse, which logs in with it.
    let before = template_hash(&deployment);
    let first_password = database.password.clone();
    let rotated = random_token();
    pg.set_password(&database.owner, &rotated);
    database.password = rotated.clone();
    postgres::create_app_secret(&client, &ns, "hs-pgsql", &database).await;
    let rolled = e2e::wait_for(TIMEOUT, "the pod template to change", || async {
        let deployment: Deployment = get(&client, &ns, "hs").await;
        (template_hash(&deployment) != before).then_some(deployment)
    })
    .await;
    assert_password_from(&rolled, "hs-pgsql-app");
    wait_running(&api, "hs").await;
    let synapse = boot_on(&scenario, &client, &ns, "hs", &database).await;

    // The Cluster falters: the running Synapse stays, the condition says so.
    postgres::mark_cluster_not_ready(&client, &ns, "hs-pgsql").await;
    let faltering = wait_database(&plane, "hs", "False", "ClusterNotReady").await;
    assert_eq!(
        faltering["status"]["databaseConnectionInfo"]["State"],
        "NOT READY"
    );
    let still: Deployment = get(&client, &ns, "hs").await;
    assert_eq!(template_hash(&still), template_hash(&rolled));
    postgres::mark_cluster_ready(&client, &ns, "hs-pgsql").await;
    wait_database(&plane, "hs", "True", "ClusterReady").await;
    drop(synapse);

    // Neither password appears outside Secrets, nor in the operator's log.
    assert_no_secret_leak(
        &client,
        &ns,
        &[first_password, rotated],
        &plane.operator.log_text(),
    )
    .await;
    plane.finish().await;
}

#[tokio::test]
async fn an_external_database_is_named_by_a_secret_whose_problems_are_reported() {
    let plane = Plane::start("pg-ext", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    // ConfigMap mode, a file without a database section: the operator writes it.
    create_config_map(
        &client,
        &ns,
        "own",
        &[("homeserver.yaml", "server_name: ext.example.org\nreport_stats: false\nlisteners:\n  - port: 8008\n    type: http\n    bind_addresses: ['0.0.0.0']\n    resources:\n      - names: [client, federation]\ntrusted_key_servers: []\nsuppress_key_server_warning: true\n")],
    )
    .await;
    create_synapse(
        &api,
        "ext",
        json!({
            "externalPostgreSQL": {"secretName": "ext-db"},
            "homeserver": {"configMap": {"name": "own"}},
        }),
    )
    .await;
    let missing = wait_database(&plane, "ext", "False", "SecretNotFound").await;
    assert!(
        condition(&missing, "DatabaseReady").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("Secret ext-db"),
        "{missing:#}"
    );
    assert_eq!(
        condition_state(&missing, "Ready"),
        ("False".into(), "DatabaseNotReady".into())
    );
    wait_event(&client, &ns, "ext", "Warning", "SecretNotFound").await;

    let pg = Postgres::from_env();
    let database = pg.create_database("synapse", "synapse", &random_token(), "C");
    postgres::put_secret(
        &client,
        &ns,
        "ext-db",
        &[
            ("host", "pg-external"),
            ("port", "5432"),
            ("dbname", &database.name),
        ],
    )
    .await;
    let incomplete = wait_database(&plane, "ext", "False", "SecretKeyMissing").await;
    let message = condition(&incomplete, "DatabaseReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("username, password"), "{message}");
    assert!(deployment_opt(&client, &ns, "ext").await.is_none());

    postgres::update_secret(
        &client,
        &ns,
        "ext-db",
        &[
            ("username", &database.owner),
            ("password", &database.password),
            ("sslmode", "disable"),
        ],
    )
    .await;
    let running = wait_running(&api, "ext").await;
    assert_eq!(
        database_reason(&running),
        ("True".into(), "SecretReady".into())
    );
    assert_eq!(
        running["status"]["databaseConnectionInfo"]["connectionURL"],
        "pg-external:5432"
    );
    let deployment: Deployment = get(&client, &ns, "ext").await;
    assert_password_from(&deployment, "ext-db");

    let (scenario, _relay) = database_scenario("pg-ext", &ns, "ext", "pg-external");
    let synapse = boot_on(&scenario, &client, &ns, "ext", &database).await;
    drop(synapse);
    assert_no_secret_leak(
        &client,
        &ns,
        std::slice::from_ref(&database.password),
        &plane.operator.log_text(),
    )
    .await;
    plane.finish().await;
}

#[tokio::test]
async fn an_own_database_section_is_used_as_written_and_not_mixed_with_an_operator_database() {
    let plane = Plane::start("pg-own", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    let pg = Postgres::from_env();
    let database = pg.create_database("synapse", "synapse", &random_token(), "C");
    let file = format!(
        "server_name: own.example.org\nreport_stats: false\nlisteners:\n  - port: 8008\n    type: http\n    bind_addresses: ['0.0.0.0']\n    resources:\n      - names: [client, federation]\ntrusted_key_servers: []\nsuppress_key_server_warning: true\ndatabase:\n  name: psycopg2\n  args:\n    host: my-postgres\n    port: 5432\n    user: {}\n    password: {}\n    dbname: {}\n",
        database.owner, database.password, database.name
    );
    create_config_map(&client, &ns, "own", &[("homeserver.yaml", &file)]).await;
    create_synapse(
        &api,
        "own",
        json!({"homeserver": {"configMap": {"name": "own"}}}),
    )
    .await;
    let running = wait_running(&api, "own").await;
    assert_eq!(
        database_reason(&running),
        ("True".into(), "OwnConfiguration".into())
    );
    assert_eq!(running["status"].get("databaseConnectionInfo"), None);
    let overlay = config_file(&client, &ns, "own", "operator-overlay.yaml").await;
    assert!(!overlay.contains("\"database\""), "{overlay}");
    let (scenario, _relay) = database_scenario("pg-own", &ns, "own", "my-postgres");
    drop(boot_on(&scenario, &client, &ns, "own", &database).await);

    // The same file with createNewPostgreSQL: which database is meant? Refused, named.
    create_synapse(
        &api,
        "mixed",
        json!({"createNewPostgreSQL": true, "homeserver": {"configMap": {"name": "own"}}}),
    )
    .await;
    let refused = wait_failed(&api, "mixed", "DatabaseConflict").await;
    assert_eq!(
        database_reason(&refused),
        ("False".into(), "DatabaseConflict".into())
    );
    let message = refused["status"]["reason"].as_str().unwrap();
    assert!(message.contains("remove the database section"), "{message}");
    wait_event(&client, &ns, "mixed", "Warning", "DatabaseConflict").await;
    assert!(deployment_opt(&client, &ns, "mixed").await.is_none());
    assert!(
        postgres::cluster_api(&client, &ns)
            .get_opt("mixed-pgsql")
            .await
            .map(|c| c.is_none())
            .unwrap_or(true),
        "no Cluster for a refused configuration"
    );
    plane.finish().await;
}

#[tokio::test]
async fn synapse_refuses_a_database_not_collated_c() {
    let plane = Plane::start("pg-coll", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let api = plane.synapses();
    let pg = Postgres::from_env();
    let database = pg.create_database("synapse", "synapse", &random_token(), "C.UTF-8");
    postgres::put_secret(
        &client,
        &ns,
        "db",
        &[
            ("host", "pg"),
            ("port", "5432"),
            ("dbname", &database.name),
            ("username", &database.owner),
            ("password", &database.password),
            ("sslmode", "disable"),
        ],
    )
    .await;
    create_synapse(
        &api,
        "coll",
        json!({
            "externalPostgreSQL": {"secretName": "db"},
            "homeserver": {"values": {"serverName": "coll.example.org", "reportStats": false}},
        }),
    )
    .await;
    // kwok reports the pod ready whatever runs in it; the real Synapse is the judge.
    wait_running(&api, "coll").await;
    let (scenario, _relay) = database_scenario("pg-coll", &ns, "coll", "pg");
    let mut synapse = scenario
        .run_deployment(&client, &ns, "coll", None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = synapse
        .wait_exit(TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!status.success());
    let output = synapse.output();
    assert!(
        output.contains("Database has incorrect collation of 'C.UTF-8'. Should be 'C'"),
        "{output}"
    );
    assert!(
        !pg.table_exists(&database.name, "users"),
        "no schema in a refused database"
    );
    plane.finish().await;
}
