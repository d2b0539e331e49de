use std::collections::BTreeMap;

use k8s_openapi::ByteString;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use kube::core::Status;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use synapse_types::ExternalPostgreSQL;
use synapse_types::common::DatabaseConnectionInfo;

use super::cluster::unknown_resource_status;
use super::*;

fn secret(pairs: &[(&str, &str)]) -> Secret {
    Secret {
        data: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Secret::default()
    }
}

const COMPLETE: &[(&str, &str)] = &[
    ("host", "db.example.org"),
    ("port", "5432"),
    ("dbname", "synapse"),
    ("username", "synapse"),
    ("password", "s3cret-pw"),
];

#[test]
fn a_complete_secret_gives_a_connection_without_the_password() {
    let connection = read_secret("db", Some(&secret(COMPLETE)), "spec.x").unwrap();
    assert_eq!(connection.host, "db.example.org");
    assert_eq!(connection.port, 5432);
    assert_eq!(connection.dbname, "synapse");
    assert_eq!(connection.username, "synapse");
    assert_eq!(connection.sslmode, None);
    assert!(!format!("{connection:?}").contains("s3cret-pw"));
    let info = serde_json::to_string(&connection.info(true)).unwrap();
    assert!(!info.contains("s3cret-pw"), "{info}");
    assert!(info.contains("db.example.org:5432"), "{info}");

    let env = connection.password_env();
    assert_eq!(env.name, "PGPASSWORD");
    assert_eq!(
        env.value, None,
        "the value comes from the Secret, not the spec"
    );
    let key = env.value_from.unwrap().secret_key_ref.unwrap();
    assert_eq!((key.name.as_str(), key.key.as_str()), ("db", "password"));
}

#[test]
fn a_rotated_password_changes_only_the_fingerprint() {
    let before = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
    let mut rotated: Vec<_> = COMPLETE.to_vec();
    rotated[4] = ("password", "another");
    let after = read_secret("db", Some(&secret(&rotated)), "f").unwrap();
    assert_ne!(before.password_fingerprint, after.password_fingerprint);
    assert_eq!(
        Connection {
            password_fingerprint: [0; 32],
            ..before
        },
        Connection {
            password_fingerprint: [0; 32],
            ..after
        }
    );
}

#[test]
fn missing_secret_and_keys_are_named() {
    let problem = read_secret("db", None, "spec.externalPostgreSQL.secretName").unwrap_err();
    assert_eq!(problem.reason, "SecretNotFound");
    assert!(problem.message.contains("Secret db"), "{}", problem.message);
    assert!(
        problem
            .message
            .contains("host, port, dbname, username, password")
    );

    let partial = secret(&[("host", "h"), ("port", "5432"), ("password", "")]);
    let problem = read_secret("db", Some(&partial), "f").unwrap_err();
    assert_eq!(problem.reason, "SecretKeyMissing");
    assert!(
        problem
            .message
            .contains("lacks the keys dbname, username, password"),
        "{}",
        problem.message
    );
}

#[test]
fn invalid_values_are_refused_with_the_key() {
    for (key, value, expected) in [
        ("port", "postgres", "port \"postgres\""),
        ("port", "70000", "port \"70000\""),
        ("host", "db host", "host \"db host\""),
    ] {
        let mut pairs = COMPLETE.to_vec();
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        let problem = read_secret("db", Some(&secret(&pairs)), "f").unwrap_err();
        assert_eq!(problem.reason, "SecretInvalid");
        assert!(problem.message.contains(expected), "{}", problem.message);
    }
    let mut pairs = COMPLETE.to_vec();
    pairs.push(("sslmode", "sometimes"));
    let problem = read_secret("db", Some(&secret(&pairs)), "f").unwrap_err();
    assert!(problem.message.contains("sslmode \"sometimes\""));
    pairs.pop();
    pairs.push(("sslmode", "verify-full"));
    let connection = read_secret("db", Some(&secret(&pairs)), "f").unwrap();
    assert_eq!(connection.sslmode.as_deref(), Some("verify-full"));
}

#[test]
fn the_cluster_asks_for_a_c_collated_utf8_database_owned_by_its_role() {
    let db = ProvisionedDatabase {
        cluster: "hs-pgsql".into(),
        database: "synapse".into(),
        owner: "synapse".into(),
        storage_class: Some("fast".into()),
    };
    let meta = ObjectMeta {
        name: Some("hs-pgsql".into()),
        namespace: Some("ns".into()),
        ..ObjectMeta::default()
    };
    let cluster = serde_json::to_value(desired_cluster(meta, &db)).unwrap();
    assert_eq!(cluster["apiVersion"], "postgresql.cnpg.io/v1");
    assert_eq!(cluster["kind"], "Cluster");
    assert_eq!(cluster["metadata"]["name"], "hs-pgsql");
    let initdb = &cluster["spec"]["bootstrap"]["initdb"];
    assert_eq!(
        initdb,
        &json!({"database": "synapse", "owner": "synapse", "encoding": "UTF8",
                "localeCollate": "C", "localeCType": "C"})
    );
    assert_eq!(cluster["spec"]["storage"]["storageClass"], "fast");
    assert_eq!(app_secret_name("hs-pgsql"), "hs-pgsql-app");
}

#[test]
fn cluster_readiness_follows_its_ready_condition() {
    let cluster = |status: serde_json::Value| {
        DynamicObject::new("c", &cluster_resource()).data(json!({"status": status}))
    };
    assert_eq!(
        cluster_readiness(&cluster(json!({}))),
        Err("phase \"no status yet\"".into())
    );
    let unhealthy = cluster(json!({
        "phase": "Setting up primary",
        "conditions": [{"type": "Ready", "status": "False", "message": "Cluster Is Not Ready"}]
    }));
    assert_eq!(
        cluster_readiness(&unhealthy),
        Err("phase \"Setting up primary\": Cluster Is Not Ready".into())
    );
    let healthy = cluster(json!({
        "phase": "Cluster in healthy state",
        "conditions": [{"type": "Ready", "status": "True"}]
    }));
    assert_eq!(cluster_readiness(&healthy), Ok(()));
}

#[test]
fn only_a_404_without_an_object_means_an_unknown_resource() {
    let page_not_found =
        Status::failure("404 page not found", "Failed to parse error data").with_code(404);
    assert!(unknown_resource_status(&page_not_found));
    let object_not_found = Status::failure("clusters \"x\" not found", "NotFound").with_code(404);
    assert!(!unknown_resource_status(&object_not_found));
}

#[test]
fn published_info_is_compared_by_server_and_database() {
    let connection = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
    let info = |url: &str, db: &str| DatabaseConnectionInfo {
        connection_url: Some(url.into()),
        database_name: Some(db.into()),
        ..DatabaseConnectionInfo::default()
    };
    assert!(connection.same_database_as(&connection.info(false)));
    assert!(connection.same_database_as(&info("DB.example.org:5432", "synapse")));
    assert!(!connection.same_database_as(&info("db.example.org:5433", "synapse")));
    assert!(!connection.same_database_as(&info("db.example.org:5432", "other")));
    assert!(!connection.same_database_as(&info("other.example.org:5432", "synapse")));
    assert!(!connection.same_database_as(&info("db.example.org", "synapse")));
    assert!(!connection.same_database_as(&DatabaseConnectionInfo::default()));
    let mut pairs = COMPLETE.to_vec();
    pairs[0] = ("host", "::1");
    let v6 = read_secret("db", Some(&secret(&pairs)), "f").unwrap();
    assert!(v6.same_database_as(&v6.info(true)));
}

#[test]
fn connection_info_follows_readiness_and_keeps_where_it_was() {
    let connection = read_secret("db", Some(&secret(COMPLETE)), "f").unwrap();
    let ready = Readiness::Ready {
        source: Source::External {
            secret: "db".into(),
        },
        connection: connection.clone(),
    };
    let published = ready.connection_info(None).unwrap();
    assert_eq!(published, connection.info(true));
    assert_eq!(published.state.as_deref(), Some("READY"));
    let not_ready = Readiness::NotReady(Problem::new("SecretNotFound", "gone".into()));
    let faltering = not_ready.connection_info(Some(published)).unwrap();
    assert_eq!(faltering.state.as_deref(), Some("NOT READY"));
    assert_eq!(
        faltering.connection_url.as_deref(),
        Some("db.example.org:5432")
    );
    assert_eq!(not_ready.connection_info(None), None);
    assert_eq!(Readiness::Sqlite.connection_info(Some(faltering)), None);
}

#[test]
fn the_spec_picks_the_source() {
    let provisioned = || ProvisionedDatabase {
        cluster: "c".into(),
        database: "d".into(),
        owner: "o".into(),
        storage_class: None,
    };
    assert_eq!(Source::from_spec(false, None, provisioned), None);
    let external = ExternalPostgreSQL {
        secret_name: "ext".into(),
    };
    let source = Source::from_spec(false, Some(&external), provisioned).unwrap();
    assert_eq!(source.secret_name(), "ext");
    assert_eq!(source.spec_field(), "spec.externalPostgreSQL.secretName");
    let source = Source::from_spec(true, None, provisioned).unwrap();
    assert_eq!(source.secret_name(), "c-app");
    assert_eq!(source.spec_field(), "spec.createNewPostgreSQL");
}

#[test]
fn a_secret_triggers_the_objects_whose_database_it_is() {
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;
    use synapse_types::{Synapse, SynapseSpec};

    let synapse = |name: &str, namespace: &str, external: Option<&str>| {
        let mut synapse = Synapse::new(
            name,
            SynapseSpec {
                homeserver: Default::default(),
                create_new_postgresql: false,
                external_postgresql: external.map(|s| ExternalPostgreSQL {
                    secret_name: s.into(),
                }),
                is_openshift: false,
                allow_downgrade: false,
                suspend: false,
                signing_key_rotation: None,
                image: None,
                storage: None,
                resources: None,
                deletion_policy: Default::default(),
                expose: None,
                metrics: Default::default(),
                workers: None,
            },
        );
        synapse.metadata.namespace = Some(namespace.into());
        synapse
    };
    let (reader, mut writer) = store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for s in [
        synapse("a", "ns", Some("db")),
        synapse("b", "ns", None),
        synapse("c", "other", Some("db")),
    ] {
        writer.apply_watcher_event(&watcher::Event::InitApply(s));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let source = |s: &Synapse| {
        Source::from_spec(
            false,
            s.spec.external_postgresql.as_ref(),
            || unreachable!(),
        )
    };
    let secret = |name: &str, labels: &[(&str, &str)]| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    let names = |refs: Vec<ObjectRef<Synapse>>| -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    };
    let triggered = |s: &Secret| names(secret_triggers(&reader, s, source));
    assert_eq!(triggered(&secret("db", &[])), ["a"]);
    // Labels do not count: the operator's own Secrets are mapped by a watch of their own.
    let ours = [
        ("app.kubernetes.io/instance", "b"),
        ("app.kubernetes.io/managed-by", "op"),
    ];
    assert!(triggered(&secret("b-secrets", &ours)).is_empty());
}
