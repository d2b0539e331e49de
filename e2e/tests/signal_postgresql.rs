//! mautrix-signal on PostgreSQL (issue 7), against the real plane and the real PostgreSQL 15 of
//! `hack/postgres`. The bridge binary cannot be built here, so the proof that it works with the
//! database the operator gives it is mautrix-go itself: the config checker
//! (hack/tools/mautrix-config-check) reads the config.yaml the operator wrote, takes the password
//! from PGPASSWORD as the container would (from the Secret the Deployment names), opens the
//! database through mautrix-go's dbutil and lib/pq and runs the bridgev2 schema upgrade; psql
//! then finds the bridge's tables in the bridge's database and none in the Synapse's.
//!
//! - `createNewPostgreSQL`: the Cluster is created and awaited (the test plays CloudNativePG:
//!   it writes the `-app` Secret and marks the Cluster ready), the bridge connects, a password
//!   rotation rolls it, the deletion policy decides the Cluster's owner;
//! - `externalPostgreSQL`: a missing Secret and missing keys are named, the Secret's sslmode is
//!   used, a running bridge survives its database faltering;
//! - the Synapse's own database is refused;
//! - a config.yaml with its own database is used as written and refused next to an operator
//!   database; the default is SQLite;
//! - without the CloudNativePG CRD the condition names it and the bridge converges once it is
//!   installed.
//!
//! No password ever appears in a ConfigMap, a status, an annotation, the rendered config or the
//! operator's log. Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`),
//! `hack/postgres up` and Go with a C compiler for the checker.

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod signal_support;
#[allow(dead_code)]
mod synapse_support;

use std::sync::LazyLock;

use e2e::objects::resource;
use e2e::operator_process::OperatorProcess;
use e2e::operators::install_crds;
use e2e::postgres::{self, Postgres, cluster_api};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use serde_json::{Value, json};
use signal_support::{run_checker, settle};
use synapse_support::{
    TIMEOUT, condition, condition_state, create_config_map, create_synapse, get_opt, patch_spec,
    random_token, restricted_namespace, secret_text, synapses,
};
use tokio::sync::RwLock;

const OPERATOR: &str = "signal-operator";
const HASH_ANNOTATION: &str = "synapse.opdev.io/config-hash";

/// The CloudNativePG CRD is shared by the plane: the test that uninstalls it holds this for
/// writing, every other test of this binary for reading. (Test binaries run one at a time.)
static CRD: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

/// One test's namespace (Pod Security `restricted`), a signal-operator watching it, and a
/// Synapse `hs` whose status the test writes as the synapse-operator would.
struct Plane {
    client: Client,
    ns: TestNamespace,
    operator: OperatorProcess,
}

impl Plane {
    async fn start(prefix: &str) -> Self {
        let client = e2e::client().await;
        install_crds(&client).await;
        let ns = restricted_namespace(&client, prefix).await;
        let mut operator = OperatorProcess::builder(OPERATOR, &ns.name).start();
        operator.wait_ready(TIMEOUT).await;
        let plane = Self {
            client,
            ns,
            operator,
        };
        let spec = json!({"homeserver": {"values": {"serverName": "pg.signal.test", "reportStats": false}}});
        create_synapse(&synapses(&plane.client, plane.ns()), "hs", spec).await;
        plane.set_synapse_database(None).await;
        plane
    }

    fn ns(&self) -> &str {
        &self.ns.name
    }

    fn bridges(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.ns(), &resource("MautrixSignal"))
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    /// Writes the Synapse's status as a ready synapse-operator does, with its own PostgreSQL
    /// database (`databaseConnectionInfo`) when given.
    async fn set_synapse_database(&self, database: Option<Value>) {
        let status = json!({
            "clientUrl": format!("http://hs.{}.svc:8008", self.ns()),
            "homeserverConfiguration": {"serverName": "pg.signal.test"},
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Running", "message": "test",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }],
            "appServices": [],
            "databaseConnectionInfo": database,
        });
        synapses(&self.client, self.ns())
            .patch_status(
                "hs",
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
            .unwrap_or_else(|e| panic!("patch the status of Synapse hs: {e}"));
    }

    async fn create_bridge(&self, name: &str, spec: Value) {
        let mut spec = spec;
        spec["synapse"] = json!({"name": "hs"});
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "MautrixSignal",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a MautrixSignal");
        self.bridges()
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create MautrixSignal {name}: {e}"));
    }

    /// Waits until the bridge's DatabaseReady and Ready conditions are as given for its current
    /// generation; returns it.
    async fn wait_bridge(&self, name: &str, database: (&str, &str), ready: (&str, &str)) -> Value {
        let want = |c: (&str, &str)| (c.0.to_owned(), c.1.to_owned());
        self.wait_bridge_until(
            name,
            &format!("DatabaseReady={database:?} Ready={ready:?}"),
            |b| {
                condition_state(b, "DatabaseReady") == want(database)
                    && condition_state(b, "Ready") == want(ready)
            },
        )
        .await
    }

    /// Waits until `check` holds for the bridge, with a status of its current generation;
    /// returns it. The panic shows the last status.
    async fn wait_bridge_until(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let bridges = self.bridges();
        let mut last = Value::Null;
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(Some(bridge)) = bridges.get_opt(name).await {
                last = serde_json::to_value(bridge).expect("serialise");
                if check(&last)
                    && last["status"]["observedGeneration"] == last["metadata"]["generation"]
                {
                    return last;
                }
            }
            assert!(
                started.elapsed() < TIMEOUT,
                "timed out waiting for {name}: {what}; last status: {:#}",
                last["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Waits for an Event of `type_` and `reason` regarding the MautrixSignal, from the operator.
    async fn wait_event(&self, name: &str, type_: &str, reason: &str) -> String {
        let events: Api<Event> = self.api();
        wait_for(
            TIMEOUT,
            &format!("a {type_} Event {reason} regarding MautrixSignal {name}"),
            || async {
                events
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .find(|e| {
                        e.regarding.as_ref().is_some_and(|r| {
                            r.kind.as_deref() == Some("MautrixSignal")
                                && r.name.as_deref() == Some(name)
                        }) && e.type_.as_deref() == Some(type_)
                            && e.reason.as_deref() == Some(reason)
                            && e.reporting_controller.as_deref() == Some(OPERATOR)
                    })
                    .map(|e| e.note.unwrap_or_default())
            },
        )
        .await
    }

    async fn deployment(&self, bridge: &str) -> Option<Deployment> {
        get_opt(&self.client, self.ns(), &format!("{bridge}-mautrix-signal")).await
    }

    /// The config.yaml the operator wrote for `bridge`.
    async fn config(&self, bridge: &str) -> String {
        let name = format!("{bridge}-mautrix-signal-config");
        let secret: Secret = get_opt(&self.client, self.ns(), &name)
            .await
            .unwrap_or_else(|| panic!("the config Secret {name}"));
        secret_text(&secret)
            .remove("config.yaml")
            .expect("config.yaml in the config Secret")
    }

    /// Deletes the bridges while the operator runs (their finalizers need it), checks that no
    /// reconciliation failed, then deletes the namespace.
    async fn finish(mut self) {
        let bridges = self.bridges();
        for bridge in bridges
            .list(&ListParams::default())
            .await
            .expect("list the bridges")
            .items
        {
            let name = bridge.name_any();
            bridges
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("delete MautrixSignal {name}: {e}"));
            wait_for(TIMEOUT, &format!("MautrixSignal {name} gone"), || async {
                bridges.get_opt(&name).await.ok()?.is_none().then_some(())
            })
            .await;
        }
        self.operator.assert_running();
        assert_eq!(
            self.operator
                .metric("matrix_operator_reconciliation_errors_total"),
            Some(0.0),
            "reconciliation errors"
        );
        e2e::pod_harness::forget_claims(self.ns()).expect("forget the claim data");
        self.ns.delete().await;
    }
}

fn is<'a>(status: &'a str, reason: &'a str) -> (&'a str, &'a str) {
    (status, reason)
}

fn yaml(config: &str) -> serde_yaml::Value {
    serde_yaml::from_str(config).expect("config.yaml is YAML")
}

fn database_section(config: &str) -> (String, String) {
    let doc = yaml(config);
    let text = |key: &str| doc["database"][key].as_str().unwrap_or_default().to_owned();
    (text("type"), text("uri"))
}

/// The container's PGPASSWORD: from `secret`'s `password` key, never a literal.
fn assert_password_from(deployment: &Deployment, secret: &str) {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    let env = pod.containers[0].env.clone().unwrap_or_default();
    assert_eq!(env.len(), 1, "only PGPASSWORD: {env:?}");
    assert_eq!(env[0].name, "PGPASSWORD");
    assert_eq!(env[0].value, None);
    let key = env[0]
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref())
        .expect("PGPASSWORD from a Secret");
    assert_eq!((key.name.as_str(), key.key.as_str()), (secret, "password"));
}

fn template_hash(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(HASH_ANNOTATION))
        .cloned()
        .expect("the config hash on the pod template")
}

/// Runs the bridge's database start on `config` with `password` as the container's
/// PGPASSWORD: mautrix-go opens the database and upgrades its schema. Returns the checker's
/// output; panics unless it succeeded.
fn upgrade_database(label: &str, config: &str, password: &str) -> String {
    let (output, text) = run_checker(
        label,
        config,
        &["--upgrade-database"],
        &[("PGPASSWORD", password)],
    );
    assert!(
        output.status.success() && text.contains("database upgraded"),
        "mautrix-go could not use the database ({}):\n{text}",
        output.status
    );
    text
}

/// The bridgev2 tables (and the Matrix state store's) mautrix-signal's start creates.
const BRIDGE_TABLES: [&str; 6] = [
    "portal",
    "ghost",
    "user_login",
    "message",
    "database_owner",
    "mx_room_state",
];

fn assert_bridge_tables(pg: &Postgres, database: &str, present: bool) {
    for table in BRIDGE_TABLES {
        assert_eq!(
            pg.table_exists(database, table),
            present,
            "table {table} in database {database}"
        );
    }
}

/// Asserts that none of `passwords` appears in the namespace's ConfigMaps, MautrixSignals and
/// Synapses (status included), Deployments, ReplicaSets, Pods, Events, the annotations of its
/// Secrets, the bridges' rendered configs, nor in the operator's log.
async fn assert_no_password_anywhere(plane: &Plane, passwords: &[&str]) {
    let mut documents: Vec<(String, String)> = Vec::new();
    async fn add<K>(plane: &Plane, documents: &mut Vec<(String, String)>)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + k8s_openapi::serde::Serialize
            + std::fmt::Debug,
    {
        for object in plane
            .api::<K>()
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", K::kind(&())))
            .items
        {
            documents.push((
                format!("{} {}", K::kind(&()), object.name_any()),
                serde_json::to_string(&object).expect("serialise"),
            ));
        }
    }
    add::<ConfigMap>(plane, &mut documents).await;
    add::<Deployment>(plane, &mut documents).await;
    add::<ReplicaSet>(plane, &mut documents).await;
    add::<Pod>(plane, &mut documents).await;
    add::<Event>(plane, &mut documents).await;
    add::<k8s_openapi::api::core::v1::Event>(plane, &mut documents).await;
    for (kind, api) in [
        ("MautrixSignal", plane.bridges()),
        ("Synapse", synapses(&plane.client, plane.ns())),
    ] {
        for object in api.list(&ListParams::default()).await.expect("list").items {
            documents.push((
                format!("{kind} {}", object.name_any()),
                serde_json::to_string(&object).expect("serialise"),
            ));
        }
    }
    for secret in plane
        .api::<Secret>()
        .list(&ListParams::default())
        .await
        .expect("list Secrets")
        .items
    {
        let name = secret.name_any();
        documents.push((
            format!("annotations of Secret {name}"),
            serde_json::to_string(&secret.metadata.annotations).expect("serialise"),
        ));
        if name.ends_with("-mautrix-signal-config") {
            documents.push((
                format!("the rendered config in {name}"),
                secret_text(&secret)
                    .remove("config.yaml")
                    .unwrap_or_default(),
            ));
        }
    }
    documents.push(("the operator's log".into(), plane.operator.log_text()));
    assert!(
        documents
            .iter()
            .any(|(what, _)| what.starts_with("the rendered config")),
        "a rendered config was scanned"
    );
    for (what, text) in &documents {
        for password in passwords {
            assert!(
                !text.contains(password),
                "a database password appears in {what}"
            );
        }
    }
}

#[tokio::test]
async fn a_provisioned_cluster_is_awaited_then_the_bridge_upgrades_its_own_database() {
    let _crd = CRD.read().await;
    let plane = Plane::start("sig-pg-cnpg").await;
    postgres::install_cnpg_crd(&plane.client).await;
    let pg = Postgres::from_env();
    // The Synapse's own database on the same server, to see that the bridge leaves it alone.
    let synapse_db = pg.create_database("sig_synapse", "sig_synapse", &random_token(), "C");
    plane
        .set_synapse_database(Some(json!({
            "connectionURL": format!("127.0.0.1:{}", pg.port()),
            "databaseName": synapse_db.name, "user": synapse_db.owner, "State": "READY",
        })))
        .await;
    plane
        .create_bridge("sig", json!({"createNewPostgreSQL": true}))
        .await;

    // The Cluster is created as documented, and nothing runs before it is ready.
    let cluster = "sig-mautrix-signal-pgsql";
    let clusters = cluster_api(&plane.client, plane.ns());
    let created = wait_for(TIMEOUT, "the Cluster", || async {
        clusters.get_opt(cluster).await.ok()?
    })
    .await;
    let created = serde_json::to_value(created).expect("serialise");
    assert_eq!(
        created["spec"]["bootstrap"]["initdb"],
        json!({"database": "mautrix_signal", "owner": "mautrix_signal", "encoding": "UTF8",
               "localeCollate": "C", "localeCType": "C"})
    );
    let labels = &created["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/instance"], "sig");
    assert_eq!(labels["app.kubernetes.io/name"], "mautrix-signal");
    assert_eq!(labels["app.kubernetes.io/component"], "database");
    assert_eq!(labels["app.kubernetes.io/managed-by"], OPERATOR);
    assert!(
        created["metadata"]["ownerReferences"].is_null(),
        "retained by default: no owner"
    );
    let waiting = plane
        .wait_bridge(
            "sig",
            is("False", "ClusterNotReady"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    assert_eq!(
        condition_state(&waiting, "Registered").1,
        "DatabaseNotReady"
    );
    assert!(plane.deployment("sig").await.is_none(), "not started yet");

    // Playing CloudNativePG: a real database and the -app Secret, then the Cluster's health.
    // The operator connects the bridge wherever the Secret says; so that the checker on this
    // host reaches the server, the Secret names 127.0.0.1 and its port instead of the
    // cluster's Service, as CloudNativePG would not. CloudNativePG writes no sslmode.
    let password = random_token();
    let db = pg.create_database("sig_bridge", "sig_bridge", &password, "C");
    postgres::create_app_secret(&plane.client, plane.ns(), cluster, &db).await;
    let app_secret = format!("{cluster}-app");
    let port = pg.port().to_string();
    postgres::update_secret(
        &plane.client,
        plane.ns(),
        &app_secret,
        &[("host", "127.0.0.1"), ("port", &port)],
    )
    .await;
    postgres::mark_cluster_not_ready(&plane.client, plane.ns(), cluster).await;
    let not_ready = plane
        .wait_bridge_until("sig", "CloudNativePG's word in the condition", |b| {
            condition(b, "DatabaseReady").is_some_and(|c| {
                c["reason"] == "ClusterNotReady"
                    && c["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Cluster Is Not Ready"))
            })
        })
        .await;
    assert_eq!(condition_state(&not_ready, "Ready").1, "DatabaseNotReady");
    assert!(plane.deployment("sig").await.is_none(), "still not started");
    postgres::mark_cluster_ready(&plane.client, plane.ns(), cluster).await;
    let ready = plane
        .wait_bridge("sig", is("True", "ClusterReady"), is("True", "Running"))
        .await;
    plane.wait_event("sig", "Normal", "ClusterReady").await;
    assert_eq!(
        ready["status"]["databaseConnectionInfo"],
        json!({"connectionURL": format!("127.0.0.1:{port}"), "databaseName": db.name,
               "user": db.owner, "State": "READY"})
    );
    let deployment = plane.deployment("sig").await.expect("the Deployment");
    assert_password_from(&deployment, &app_secret);
    // At steady state nothing is written: not the Cluster, the config, the Deployment or the
    // status.
    let written = || async {
        let config: Secret = get_opt(&plane.client, plane.ns(), "sig-mautrix-signal-config")
            .await
            .expect("the config Secret");
        [
            plane
                .bridges()
                .get("sig")
                .await
                .expect("the bridge")
                .resource_version(),
            clusters
                .get(cluster)
                .await
                .expect("the Cluster")
                .resource_version(),
            config.resource_version(),
            plane
                .deployment("sig")
                .await
                .and_then(|d| d.resource_version()),
        ]
    };
    settle(&plane.operator, std::time::Duration::from_secs(3)).await;
    let before = written().await;
    settle(&plane.operator, std::time::Duration::from_secs(3)).await;
    assert_eq!(written().await, before, "a steady state writes nothing");
    let config = plane.config("sig").await;
    // No sslmode in CloudNativePG's Secret: libpq's default, which the non-TLS server accepts.
    assert_eq!(
        database_section(&config),
        (
            "postgres".to_owned(),
            format!(
                "postgres://{}@127.0.0.1:{port}/{}?sslmode=prefer",
                db.owner, db.name
            )
        )
    );

    // mautrix-go opens that database with the Secret's password and creates the bridge's schema
    // there, and only there.
    assert_bridge_tables(&pg, &db.name, false);
    let text = upgrade_database("cnpg", &config, &password);
    assert!(
        text.contains(&format!(
            "lib/pq connects to host=\"127.0.0.1\" port={port} dbname=\"{}\" user=\"{}\" \
             sslmode=\"prefer\", password from PGPASSWORD",
            db.name, db.owner
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "connected as \"{}\" to database \"{}\"",
            db.owner, db.name
        )),
        "{text}"
    );
    assert_bridge_tables(&pg, &db.name, true);
    assert_bridge_tables(&pg, &synapse_db.name, false);

    // A rotated password (CloudNativePG changes the role and its Secret) rolls the bridge; the
    // config stays as it was, the new password works.
    let hash = template_hash(&deployment);
    let rotated = random_token();
    pg.set_password(&db.owner, &rotated);
    postgres::update_secret(
        &plane.client,
        plane.ns(),
        &app_secret,
        &[("password", &rotated)],
    )
    .await;
    let rolled = wait_for(
        TIMEOUT,
        "the bridge rolled for the new password",
        || async {
            let d = plane.deployment("sig").await?;
            (template_hash(&d) != hash).then_some(d)
        },
    )
    .await;
    assert_password_from(&rolled, &app_secret);
    assert_eq!(plane.config("sig").await, config);
    upgrade_database("cnpg-rotated", &config, &rotated);

    // Delete makes the bridge the Cluster's owner, as it does for the data volume.
    patch_spec(&plane.bridges(), "sig", json!({"deletionPolicy": "Delete"})).await;
    wait_for(TIMEOUT, "the Cluster owned by its bridge", || async {
        let cluster = clusters.get_opt(cluster).await.ok()??;
        let owners = cluster.metadata.owner_references.unwrap_or_default();
        (owners.len() == 1 && owners[0].kind == "MautrixSignal" && owners[0].name == "sig")
            .then_some(())
    })
    .await;

    assert_no_password_anywhere(&plane, &[&password, &rotated]).await;
    plane.finish().await;
}

#[tokio::test]
async fn an_external_database_is_named_by_a_secret_whose_problems_are_reported() {
    let _crd = CRD.read().await;
    let plane = Plane::start("sig-pg-ext").await;
    let pg = Postgres::from_env();
    plane
        .create_bridge(
            "ext",
            json!({"externalPostgreSQL": {"secretName": "signal-db"}}),
        )
        .await;
    let missing = plane
        .wait_bridge(
            "ext",
            is("False", "SecretNotFound"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    assert!(
        condition(&missing, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("Secret signal-db (spec.externalPostgreSQL.secretName) does not exist")
    );
    plane.wait_event("ext", "Warning", "SecretNotFound").await;
    assert!(plane.deployment("ext").await.is_none());

    // The user's Secret carries no label of ours: it is found by its name.
    let port = pg.port().to_string();
    postgres::put_secret(
        &plane.client,
        plane.ns(),
        "signal-db",
        &[("host", "127.0.0.1"), ("port", &port)],
    )
    .await;
    let partial = plane
        .wait_bridge(
            "ext",
            is("False", "SecretKeyMissing"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    assert!(
        condition(&partial, "DatabaseReady").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("lacks the keys dbname, username, password")
    );

    let password = random_token();
    let db = pg.create_database("sig_ext", "sig_ext", &password, "C");
    let complete = |pw: &str| {
        vec![
            ("host".to_owned(), "127.0.0.1".to_owned()),
            ("port".to_owned(), port.clone()),
            ("dbname".to_owned(), db.name.clone()),
            ("username".to_owned(), db.owner.clone()),
            ("password".to_owned(), pw.to_owned()),
            // The tests' server has no TLS.
            ("sslmode".to_owned(), "disable".to_owned()),
        ]
    };
    let pairs = complete(&password);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    postgres::put_secret(&plane.client, plane.ns(), "signal-db", &refs).await;
    let ready = plane
        .wait_bridge("ext", is("True", "SecretReady"), is("True", "Running"))
        .await;
    assert_eq!(ready["status"]["databaseConnectionInfo"]["State"], "READY");
    let deployment = plane.deployment("ext").await.expect("the Deployment");
    assert_password_from(&deployment, "signal-db");
    let config = plane.config("ext").await;
    assert_eq!(
        database_section(&config).1,
        format!(
            "postgres://{}@127.0.0.1:{port}/{}?sslmode=disable",
            db.owner, db.name
        )
    );
    let text = upgrade_database("external", &config, &password);
    assert!(text.contains("sslmode=\"disable\""), "{text}");
    assert_bridge_tables(&pg, &db.name, true);

    // A wrong password is the bridge's failure, not the config's: mautrix-go exits 15.
    let (output, text) = run_checker(
        "external-wrong-password",
        &config,
        &["--upgrade-database"],
        &[("PGPASSWORD", "not-the-password")],
    );
    assert_eq!(output.status.code(), Some(15), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");

    // Rotation in the user's Secret rolls the bridge.
    let hash = template_hash(&deployment);
    let rotated = random_token();
    pg.set_password(&db.owner, &rotated);
    postgres::update_secret(
        &plane.client,
        plane.ns(),
        "signal-db",
        &[("password", &rotated)],
    )
    .await;
    let rolled = wait_for(
        TIMEOUT,
        "the bridge rolled for the new password",
        || async {
            let d = plane.deployment("ext").await?;
            (template_hash(&d) != hash).then_some(d)
        },
    )
    .await;
    upgrade_database("external-rotated", &config, &rotated);

    // The Secret goes: the running bridge is not stopped or changed, only the condition says.
    plane
        .api::<Secret>()
        .delete("signal-db", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let faltering = plane
        .wait_bridge("ext", is("False", "SecretNotFound"), is("True", "Running"))
        .await;
    assert_eq!(
        faltering["status"]["databaseConnectionInfo"]["State"],
        "NOT READY"
    );
    assert_eq!(faltering["status"]["state"], ready["status"]["state"]);
    let kept = plane.deployment("ext").await.expect("still deployed");
    assert_eq!(template_hash(&kept), template_hash(&rolled));
    assert_eq!(plane.config("ext").await, config);

    assert_no_password_anywhere(&plane, &[&password, &rotated]).await;
    plane.finish().await;
}

#[tokio::test]
async fn the_synapses_own_database_is_refused() {
    let _crd = CRD.read().await;
    let plane = Plane::start("sig-pg-shared").await;
    let password = random_token();
    let shared = |db: &str| {
        json!({"connectionURL": "pg.example.org:5432", "databaseName": db, "user": "synapse",
               "State": "READY"})
    };
    plane.set_synapse_database(Some(shared("synapse"))).await;
    postgres::put_secret(
        &plane.client,
        plane.ns(),
        "synapse-db",
        &[
            ("host", "PG.example.org"),
            ("port", "5432"),
            ("dbname", "synapse"),
            ("username", "signal"),
            ("password", &password),
        ],
    )
    .await;
    plane
        .create_bridge(
            "shared",
            json!({"externalPostgreSQL": {"secretName": "synapse-db"}}),
        )
        .await;
    let refused = plane
        .wait_bridge(
            "shared",
            is("False", "SharedWithSynapse"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    let message = condition(&refused, "DatabaseReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("Synapse hs's own database"), "{message}");
    let note = plane
        .wait_event("shared", "Warning", "SharedWithSynapse")
        .await;
    assert_eq!(note, message);
    assert!(plane.deployment("shared").await.is_none(), "never started");
    assert!(
        get_opt::<Secret>(&plane.client, plane.ns(), "shared-mautrix-signal-config")
            .await
            .is_none(),
        "no config written for it"
    );

    // Another database on the same server is the bridge's own.
    postgres::update_secret(
        &plane.client,
        plane.ns(),
        "synapse-db",
        &[("dbname", "signal")],
    )
    .await;
    plane
        .wait_bridge("shared", is("True", "SecretReady"), is("True", "Running"))
        .await;
    let deployment = plane.deployment("shared").await.expect("deployed");

    // The Synapse later reports that very database as its own: refused again, the running bridge
    // left as it was.
    plane.set_synapse_database(Some(shared("signal"))).await;
    plane
        .wait_bridge(
            "shared",
            is("False", "SharedWithSynapse"),
            is("True", "Running"),
        )
        .await;
    let kept = plane.deployment("shared").await.expect("still deployed");
    assert_eq!(template_hash(&kept), template_hash(&deployment));

    assert_no_password_anywhere(&plane, &[&password]).await;
    plane.finish().await;
}

#[tokio::test]
async fn an_own_database_is_used_as_written_and_not_mixed_with_an_operator_database() {
    let _crd = CRD.read().await;
    let plane = Plane::start("sig-pg-own").await;
    postgres::install_cnpg_crd(&plane.client).await;
    let uri = "postgres://signal@db.example.org:5432/signal?sslmode=verify-full";
    let file = format!(
        "database:\n  type: postgres\n  uri: {uri}\nbridge:\n  permissions:\n    \
         pg.signal.test: user\n"
    );
    create_config_map(&plane.client, plane.ns(), "own", &[("config.yaml", &file)]).await;
    plane
        .create_bridge("own", json!({"configMap": {"name": "own"}}))
        .await;
    let own = plane
        .wait_bridge("own", is("True", "OwnConfiguration"), is("True", "Running"))
        .await;
    assert!(own["status"]["databaseConnectionInfo"].is_null());
    let config = plane.config("own").await;
    assert_eq!(database_section(&config), ("postgres".into(), uri.into()));
    let deployment = plane.deployment("own").await.expect("deployed");
    let container = &deployment.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.env, None, "no PGPASSWORD of the operator's");

    // The same file next to createNewPostgreSQL: refused, nothing provisioned or deployed.
    plane
        .create_bridge(
            "mixed",
            json!({"configMap": {"name": "own"}, "createNewPostgreSQL": true}),
        )
        .await;
    let mixed = plane
        .wait_bridge(
            "mixed",
            is("False", "DatabaseConflict"),
            is("False", "DatabaseConflict"),
        )
        .await;
    assert_eq!(mixed["status"]["state"], "FAILED");
    let message = condition(&mixed, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("spec.createNewPostgreSQL"), "{message}");
    assert!(message.contains("ConfigMap"), "{message}");
    plane
        .wait_event("mixed", "Warning", "DatabaseConflict")
        .await;
    assert!(plane.deployment("mixed").await.is_none());
    let clusters = cluster_api(&plane.client, plane.ns());
    assert!(
        clusters
            .get_opt("mixed-mautrix-signal-pgsql")
            .await
            .expect("read Clusters")
            .is_none(),
        "no Cluster provisioned for a refused bridge"
    );

    // Without any of it: SQLite on the data volume.
    plane.create_bridge("plain", json!({})).await;
    plane
        .wait_bridge("plain", is("True", "SQLite"), is("True", "Running"))
        .await;
    let (kind, sqlite) = database_section(&plane.config("plain").await);
    assert_eq!(kind, "sqlite3-fk-wal");
    assert!(sqlite.starts_with("file:/data/"), "{sqlite}");
    plane.finish().await;
}

#[tokio::test]
async fn a_missing_cloudnativepg_is_named_and_the_bridge_converges_once_it_is_installed() {
    let _crd = CRD.write().await;
    let plane = Plane::start("sig-pg-nocrd").await;
    let _reinstall = postgres::ReinstallCrdOnDrop;
    postgres::uninstall_cnpg_crd(&plane.client).await;
    plane
        .create_bridge("nocrd", json!({"createNewPostgreSQL": true}))
        .await;
    let missing = plane
        .wait_bridge(
            "nocrd",
            is("False", "CloudNativePGMissing"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    let message = condition(&missing, "DatabaseReady").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("clusters.postgresql.cnpg.io"), "{message}");
    plane
        .wait_event("nocrd", "Warning", "CloudNativePGMissing")
        .await;
    assert!(plane.deployment("nocrd").await.is_none());

    // Nothing stalls: a SQLite bridge next to it runs.
    plane.create_bridge("plain", json!({})).await;
    plane
        .wait_bridge("plain", is("True", "SQLite"), is("True", "Running"))
        .await;

    // Installed: the bridge looks again by itself (no watch can see a missing CRD) and creates
    // its Cluster.
    postgres::install_cnpg_crd(&plane.client).await;
    plane
        .wait_bridge(
            "nocrd",
            is("False", "ClusterNotReady"),
            is("False", "DatabaseNotReady"),
        )
        .await;
    assert!(
        cluster_api(&plane.client, plane.ns())
            .get_opt("nocrd-mautrix-signal-pgsql")
            .await
            .expect("read Clusters")
            .is_some()
    );
    plane.finish().await;
}
