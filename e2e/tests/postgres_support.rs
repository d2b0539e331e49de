//! The PostgreSQL test support (`e2e::postgres`, `hack/postgres`, the pod harness's relay):
//! databases made as Synapse needs them on the real server, reached from a scenario's network
//! namespace through the relay with the right password only, and the CloudNativePG stand-ins on
//! the real Cluster CRD. Needs root, the local plane and `hack/postgres up` (hack/test does both).

use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::pod_harness::Scenario;
use e2e::postgres::{
    CNPG_PORT, DatabaseInfo, Login, Postgres, SUPERUSER, cluster_api, create_app_secret,
    install_cnpg_crd, mark_cluster_not_ready, mark_cluster_ready,
};
use e2e::{TestNamespace, client};
use kube::api::{DynamicObject, PostParams};
use serde_json::{Value, json};

#[tokio::test]
async fn a_database_made_for_synapse_is_reached_through_the_relay_with_its_password_only() {
    let pg = Postgres::from_env();
    let db = pg.create_database("support", "support", "horse-battery", "C");
    assert_eq!(
        pg.database_info(&db.name),
        Some(DatabaseInfo {
            encoding: "UTF8".into(),
            collate: "C".into(),
            ctype: "C".into(),
            owner: db.owner.clone(),
        })
    );

    let scenario = Scenario::new("postgres-support").expect("scenario");
    let psql = || scenario.netns().command(pg.psql_path().to_str().unwrap());
    let login = db.login("127.0.0.1", CNPG_PORT);
    // Nothing listens in the namespace before the relay: only it can carry the logins below.
    let refused = pg.psql_as(psql(), &login, "SELECT 1").unwrap_err();
    assert!(
        format!("{refused:#}").contains("Connection refused"),
        "{refused:#}"
    );

    let relay = scenario
        .forward_port(CNPG_PORT, pg.host_addr())
        .expect("relay");
    let who = pg
        .psql_as(psql(), &login, "SELECT current_user, current_database()")
        .expect("the owner logs in with its password");
    assert_eq!(who, format!("{}|{}", db.owner, db.name));
    // The owner may create tables in its database's public schema (PostgreSQL 15 refuses that
    // to a role that does not own the database).
    pg.psql_as(psql(), &login, "CREATE TABLE events (id bigint)")
        .expect("the owner creates a table");
    assert!(pg.table_exists(&db.name, "events"));
    assert!(!pg.table_exists(&db.name, "rooms"));

    let wrong = Login {
        password: "not-the-password".into(),
        ..login.clone()
    };
    let denied = pg.psql_as(psql(), &wrong, "SELECT 1").unwrap_err();
    assert!(
        format!("{denied:#}").contains("password authentication failed"),
        "{denied:#}"
    );
    // Over TCP even the superuser needs a password (it has none).
    let superuser = Login {
        user: SUPERUSER.into(),
        password: String::new(),
        ..login.clone()
    };
    assert!(pg.psql_as(psql(), &superuser, "SELECT 1").is_err());

    pg.set_password(&db.owner, "rotated");
    assert!(pg.psql_as(psql(), &login, "SELECT 1").is_err());
    let rotated = Login {
        password: "rotated".into(),
        ..login.clone()
    };
    pg.psql_as(psql(), &rotated, "SELECT 1")
        .expect("the new password works");
    assert_eq!(relay.accepted(), 6, "every login went through the relay");

    // Dropping the relay cuts a session it carries and stops listening.
    let mut long = psql()
        .args(["-X", "-w", "-h", "127.0.0.1", "-p", &CNPG_PORT.to_string()])
        .args(["-U", &db.owner, "-d", &db.name, "-c", "SELECT pg_sleep(60)"])
        .env("PGPASSWORD", "rotated")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a long query");
    let sleeping = format!(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE usename = {} AND query LIKE 'SELECT pg_sleep%'",
        e2e::postgres::literal(&db.owner)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while pg.psql(SUPERUSER, &sleeping).expect("pg_stat_activity") != "1" {
        assert!(Instant::now() < deadline, "the long query never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cut = Instant::now();
    drop(relay);
    let status = loop {
        if let Some(status) = long.try_wait().expect("wait for psql") {
            break status;
        }
        assert!(
            cut.elapsed() < Duration::from_secs(10),
            "the relayed session outlived the relay"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    assert!(pg.psql_as(psql(), &rotated, "SELECT 1").is_err());

    let (name, owner) = (db.name.clone(), db.owner.clone());
    drop(db);
    assert_eq!(pg.database_info(&name), None);
    assert!(!pg.role_exists(&owner));
}

#[tokio::test]
async fn a_database_with_another_collation_is_made_as_asked() {
    let pg = Postgres::from_env();
    let db = pg.create_database("support_utf8", "support_utf8", "pw", "C.UTF-8");
    let info = pg.database_info(&db.name).expect("the database exists");
    assert_eq!(
        (
            info.encoding.as_str(),
            info.collate.as_str(),
            info.ctype.as_str()
        ),
        ("UTF8", "C.UTF-8", "C.UTF-8")
    );
    let (name, owner) = (db.name.clone(), db.owner.clone());
    db.delete().expect("drop the database and role");
    assert_eq!(pg.database_info(&name), None);
    assert!(!pg.role_exists(&owner));
}

fn ready_condition(cluster: &DynamicObject) -> Value {
    cluster.data["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_cnpg_crd_takes_a_cluster_whose_status_and_app_secret_the_stand_ins_write() {
    let client = client().await;
    install_cnpg_crd(&client).await;
    // Harmless when it is there: every test that needs it installs it.
    install_cnpg_crd(&client).await;
    let ns = TestNamespace::create(&client, "pg-support", &[]).await;
    let clusters = cluster_api(&client, &ns.name);
    let manifest = |instances: Value| {
        serde_json::from_value::<DynamicObject>(json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "synapse-db"},
            "spec": {
                "instances": instances,
                "storage": {"size": "1Gi"},
                "bootstrap": {"initdb": {
                    "database": "synapse",
                    "owner": "synapse",
                    "encoding": "UTF8",
                    "localeCollate": "C",
                    "localeCType": "C",
                }},
            },
        }))
        .expect("a Cluster")
    };
    // The real schema: a wrong type is refused.
    let refused = clusters
        .create(&PostParams::default(), &manifest(json!("one")))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, kube::Error::Api(e) if e.code == 422),
        "{refused}"
    );
    let created = clusters
        .create(&PostParams::default(), &manifest(json!(1)))
        .await
        .expect("the minimal Cluster is accepted");

    mark_cluster_not_ready(&client, &ns.name, "synapse-db").await;
    let cluster = clusters.get("synapse-db").await.unwrap();
    let condition = ready_condition(&cluster);
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "ClusterIsNotReady");
    assert_eq!(cluster.data["status"]["readyInstances"], 0);

    mark_cluster_ready(&client, &ns.name, "synapse-db").await;
    let cluster = clusters.get("synapse-db").await.unwrap();
    let ready = ready_condition(&cluster);
    assert_eq!(ready["status"], "True");
    assert_eq!(ready["reason"], "ClusterIsReady");
    assert_eq!(cluster.data["status"]["phase"], "Cluster in healthy state");
    assert_eq!(cluster.data["status"]["instances"], 1);
    assert_eq!(cluster.data["status"]["readyInstances"], 1);
    assert_eq!(cluster.data["status"]["writeService"], "synapse-db-rw");
    assert_eq!(
        cluster.data["status"]["instancesStatus"],
        json!({"healthy": ["synapse-db-1"]})
    );
    // Unchanged health keeps its transition time.
    mark_cluster_ready(&client, &ns.name, "synapse-db").await;
    let again = ready_condition(&clusters.get("synapse-db").await.unwrap());
    assert_eq!(again["lastTransitionTime"], ready["lastTransitionTime"]);

    let pg = Postgres::from_env();
    let db = pg.create_database("synapse", "synapse", "app-secret-pw", "C");
    let secret = create_app_secret(&client, &ns.name, "synapse-db", &db).await;
    assert_eq!(secret.metadata.name.as_deref(), Some("synapse-db-app"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("cnpg.io/cluster").map(String::as_str),
        Some("synapse-db")
    );
    let owner = &secret.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Cluster", created.metadata.uid.as_deref().unwrap())
    );
    let data: std::collections::BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("UTF-8 value")))
        .collect();
    for key in [
        "username", "password", "dbname", "host", "port", "pgpass", "uri",
    ] {
        assert!(data.contains_key(key), "key {key} missing from {data:?}");
    }
    assert_eq!(data["username"], db.owner);
    assert_eq!(data["password"], "app-secret-pw");
    assert_eq!(data["dbname"], db.name);
    assert_eq!(data["host"], "synapse-db-rw");
    assert_eq!(data["port"], "5432");
    assert_eq!(
        data["pgpass"],
        format!(
            "synapse-db-rw:5432:{}:{}:app-secret-pw\n",
            db.name, db.owner
        )
    );
    assert_eq!(
        data["uri"],
        format!(
            "postgresql://{}:app-secret-pw@synapse-db-rw.{}:5432/{}",
            db.owner, ns.name, db.name
        )
    );

    // The Secret's credentials log in, at its port, from a scenario through the relay.
    let scenario = Scenario::new("postgres-support-cnpg").expect("scenario");
    let _relay = scenario
        .forward_port(data["port"].parse().unwrap(), pg.host_addr())
        .expect("relay");
    let login = Login {
        host: "127.0.0.1".into(),
        port: data["port"].parse().unwrap(),
        user: data["username"].clone(),
        password: data["password"].clone(),
        dbname: data["dbname"].clone(),
    };
    let psql = scenario.netns().command(pg.psql_path().to_str().unwrap());
    assert_eq!(
        pg.psql_as(psql, &login, "SELECT current_database()")
            .expect("the Secret's credentials log in"),
        db.name
    );

    ns.delete().await;
}
