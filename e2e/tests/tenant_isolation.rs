//! A namespace is a tenant (issue 14), on the real apiserver. Two tenants, each a ServiceAccount
//! with the built-in `edit` role in its own namespace only (which the charts' aggregated roles
//! extend to our kinds), and the three operators installed cluster-wide by their charts, running
//! as the charts' ServiceAccounts. Tenant A points every reference field of all three kinds at
//! tenant B's objects; nothing of B's appears in anything A can read or in the operators' logs,
//! and every refusal shows on A's own object and in A's Events. Then B grants one reference with
//! a ReferenceGrant: that one is followed, the others stay refused; B revokes it: refused again.
//!
//! The operators watch all namespaces, so this binary holds one test: `cargo test` runs test
//! binaries one after another, and no other test's objects are in flight meanwhile.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::path::{Path, PathBuf};

use e2e::charts::{Release, requested, service_account_kubeconfig};
use e2e::objects::{namespaced, resource};
use e2e::operator_process::OperatorProcess;
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use synapse_support::{TIMEOUT, random_token, restricted_namespace, secret_needles, secret_text};

const OPERATORS: [&str; 3] = [
    "synapse-operator",
    "heisenbridge-operator",
    "signal-operator",
];
const GRANTS: &str = "gateway.networking.k8s.io";

/// A tenant: its namespace, and a client acting as its ServiceAccount `tenant`, which may edit
/// that namespace and nothing else.
struct Tenant {
    ns: TestNamespace,
    client: Client,
}

impl Tenant {
    async fn set_up(admin: &Client, prefix: &str, dir: &Path) -> Self {
        let ns = restricted_namespace(admin, prefix).await;
        let account: ServiceAccount = from(json!({"metadata": {"name": "tenant"}}));
        Api::<ServiceAccount>::namespaced(admin.clone(), &ns.name)
            .create(&PostParams::default(), &account)
            .await
            .expect("create the tenant's ServiceAccount");
        bind(admin, &ns.name, "tenant-edit", "ClusterRole", "edit").await;
        let kubeconfig = service_account_kubeconfig(admin, &ns.name, "tenant", dir).await;
        let config = Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig).expect("read the tenant's kubeconfig"),
            &KubeConfigOptions::default(),
        )
        .await
        .expect("a client configuration");
        let client = Client::try_from(config).expect("a client");
        Self { ns, client }
    }

    fn api(&self, kind: &str) -> Api<DynamicObject> {
        namespaced(&self.client, &self.ns.name, kind)
    }

    async fn create(&self, kind: &str, name: &str, spec: Value) {
        let object: DynamicObject = from(json!({
            "apiVersion": resource(kind).api_version,
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }));
        self.api(kind)
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("tenant {} creates {kind} {name}: {e}", self.ns.name));
    }

    async fn config_map(&self, name: &str, key: &str, text: &str) {
        let cm: ConfigMap = from(json!({"metadata": {"name": name}, "data": {key: text}}));
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns.name)
            .create(&PostParams::default(), &cm)
            .await
            .unwrap_or_else(|e| panic!("create ConfigMap {name}: {e}"));
    }

    /// Whether the tenant may `verb` the `resource` of `group` in `namespace`.
    async fn may(&self, verb: &str, group: &str, resource: &str, namespace: &str) -> bool {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    namespace: Some(namespace.into()),
                    verb: Some(verb.into()),
                    group: Some(group.into()),
                    resource: Some(resource.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        Api::<SelfSubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .expect("a self-subject access review")
            .status
            .is_some_and(|s| s.allowed)
    }

    /// Everything of the namespace the tenant reads, as text: Secrets (whole), ConfigMaps, our
    /// three kinds (status and annotations included), Events, workloads.
    async fn readable(&self) -> Vec<(String, String)> {
        let mut documents = Vec::new();
        let mut add = |kind: &str, items: Vec<Value>| {
            for item in items {
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                documents.push((format!("{kind} {name}"), item.to_string()));
            }
        };
        add("Secret", self.list::<Secret>().await);
        add("ConfigMap", self.list::<ConfigMap>().await);
        add("Event", self.list::<Event>().await);
        add(
            "Deployment",
            self.list::<k8s_openapi::api::apps::v1::Deployment>().await,
        );
        add(
            "Service",
            self.list::<k8s_openapi::api::core::v1::Service>().await,
        );
        for kind in ["Synapse", "Heisenbridge", "MautrixSignal"] {
            let items = self.api(kind).list(&ListParams::default()).await;
            let items = items.unwrap_or_else(|e| panic!("list {kind}: {e}")).items;
            add(kind, items.into_iter().map(to_value).collect());
        }
        documents
    }

    async fn list<K>(&self) -> Vec<Value>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + k8s_openapi::serde::Serialize
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), &self.ns.name)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("tenant lists {}: {e}", K::kind(&())))
            .items
            .into_iter()
            .map(to_value)
            .collect()
    }

    /// Waits until the tenant sees `condition` of its `kind` `name` False with `reason`, for
    /// the object's current generation, and a Warning Event with that reason on it; returns
    /// the condition's message.
    async fn wait_refused(&self, kind: &str, name: &str, condition: &str, reason: &str) -> String {
        let api = self.api(kind);
        let message = wait_for(
            TIMEOUT,
            &format!("{kind} {name}: {condition}=False {reason}"),
            || async {
                let object = to_value(api.get(name).await.ok()?);
                let status = &object["status"];
                let found = status["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == condition)?;
                (found["status"] == "False"
                    && found["reason"] == reason
                    && status["observedGeneration"] == object["metadata"]["generation"])
                    .then(|| found["message"].as_str().unwrap_or_default().to_owned())
            },
        )
        .await;
        let events = Api::<Event>::namespaced(self.client.clone(), &self.ns.name);
        wait_for(
            TIMEOUT,
            &format!("a Warning Event {reason} on {kind} {name}"),
            || async {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items.into_iter().find(|e| {
                    e.involved_object.kind.as_deref() == Some(kind)
                        && e.involved_object.name.as_deref() == Some(name)
                        && e.type_.as_deref() == Some("Warning")
                        && e.reason.as_deref() == Some(reason)
                })
            },
        )
        .await;
        message
    }
}

fn from<T: k8s_openapi::serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

fn to_value<T: k8s_openapi::serde::Serialize>(object: T) -> Value {
    serde_json::to_value(object).expect("serializable")
}

/// A RoleBinding of the namespace's ServiceAccount `tenant` to `role`.
async fn bind(admin: &Client, namespace: &str, name: &str, role_kind: &str, role: &str) {
    let binding: RoleBinding = from(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }));
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap_or_else(|e| panic!("bind {role} in {namespace}: {e}"));
}

/// The three charts installed cluster-wide into their own namespace, each operator running as a
/// local process with its chart's identity.
struct Operators {
    ns: TestNamespace,
    releases: Vec<Release>,
    processes: Vec<OperatorProcess>,
}

impl Operators {
    async fn start(admin: &Client, dir: &Path) -> Self {
        let ns = TestNamespace::create(admin, "tenancy-ops", &[]).await;
        let values = [("crds.install", "false"), ("rbac.namespaced", "false")];
        let mut releases = Vec::new();
        let mut processes = Vec::new();
        for operator in OPERATORS {
            let name = format!("{}-{operator}", ns.name);
            let release = Release::install(operator, &name, &ns.name, &values).await;
            let kubeconfig =
                service_account_kubeconfig(admin, &ns.name, &release.service_account(), dir).await;
            let mut process = OperatorProcess::builder(operator, &ns.name)
                .kubeconfig(&kubeconfig)
                .all_namespaces()
                .log_level("info,kube_client=debug")
                .start();
            process.wait_ready(TIMEOUT).await;
            releases.push(release);
            processes.push(process);
        }
        Self {
            ns,
            releases,
            processes,
        }
    }

    fn logs(&self) -> Vec<(String, String)> {
        OPERATORS
            .iter()
            .zip(&self.processes)
            .map(|(name, p)| (format!("the {name}'s log"), p.log_text()))
            .collect()
    }

    /// The charts' ClusterRoles let each operator do its work, ReferenceGrant checks included.
    fn assert_chart_rules_sufficed(&self) {
        for (name, log) in self.logs() {
            // An RBAC denial names the identity; other tests' namespaces still being
            // terminated refuse Events with a Forbidden of their own, which is no denial.
            let denied = log.lines().find(|line| line.contains("is forbidden: User"));
            assert!(denied.is_none(), "{name}: {denied:?}");
            let list = (GRANTS.into(), "referencegrants".into(), "list".into());
            assert!(
                requested(&log).contains(&list),
                "{name} never checked a ReferenceGrant"
            );
        }
    }

    async fn stop(mut self) {
        for process in &mut self.processes {
            process.assert_running();
            process.stop();
        }
        for release in self.releases {
            release.uninstall().await;
        }
        self.ns.delete().await;
    }
}

/// Tenant B's secrets, each a marker that must never reach tenant A.
struct Markers {
    homeserver: String,
    registration: String,
    signal: String,
    database: String,
}

fn homeserver_yaml(form_secret: &str) -> String {
    format!(
        "server_name: b.example.org\nreport_stats: false\nform_secret: {form_secret}\n\
         listeners:\n  - port: 8008\n    type: http\n    resources: [{{names: [client]}}]\n"
    )
}

fn registration_yaml(as_token: &str) -> String {
    format!(
        "id: irc\nurl: http://irc:9898\nas_token: {as_token}\nhs_token: {as_token}-hs\n\
         sender_localpart: ircbot\nnamespaces:\n  users:\n  - regex: '@irc_.*'\n    \
         exclusive: true\n"
    )
}

/// Tenant B's objects: its ConfigMaps and database Secret, its Synapse, and the right to grant
/// references into its namespace (ReferenceGrants are not part of `edit`).
async fn tenant_b_objects(admin: &Client, b: &Tenant) -> Markers {
    let markers = Markers {
        homeserver: format!("tenant-b-form-{}", random_token()),
        registration: format!("tenant-b-as-{}", random_token()),
        signal: format!("tenant-b-signal-{}", random_token()),
        database: format!("tenant-b-db-{}", random_token()),
    };
    let homeserver = homeserver_yaml(&markers.homeserver);
    b.config_map("homeserver", "homeserver.yaml", &homeserver)
        .await;
    let registration = registration_yaml(&markers.registration);
    b.config_map("irc", "registration.yaml", &registration)
        .await;
    let signal = format!(
        "appservice:\n  as_token: {0}\n  hs_token: {0}-hs\nbridge:\n  permissions:\n    \
         '*': relay\n",
        markers.signal
    );
    b.config_map("signal", "config.yaml", &signal).await;
    let secret: Secret = from(json!({
        "metadata": {"name": "database"},
        "stringData": {"host": "db.b.svc", "port": "5432", "dbname": "b", "username": "b",
                       "password": markers.database},
    }));
    Api::<Secret>::namespaced(b.client.clone(), &b.ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .expect("tenant B creates its database Secret");
    b.create("Synapse", "hs", values_spec("b.example.org"))
        .await;
    let role: Role = from(json!({
        "metadata": {"name": "grant-references"},
        "rules": [{"apiGroups": [GRANTS], "resources": ["referencegrants"],
                   "verbs": ["create", "delete", "get", "list", "watch"]}],
    }));
    Api::<Role>::namespaced(admin.clone(), &b.ns.name)
        .create(&PostParams::default(), &role)
        .await
        .expect("create the grant Role");
    bind(
        admin,
        &b.ns.name,
        "tenant-grants",
        "Role",
        "grant-references",
    )
    .await;
    markers
}

fn values_spec(server_name: &str) -> Value {
    json!({"homeserver": {"values": {"serverName": server_name, "reportStats": false}}})
}

/// Tenant A's objects: every reference field of the three kinds aimed at tenant B.
async fn tenant_a_objects(a: &Tenant, b: &str) {
    a.create("Synapse", "hs", values_spec("a.example.org"))
        .await;
    a.create(
        "Synapse",
        "hs-cross",
        json!({"homeserver": {"configMap": {"name": "homeserver", "namespace": b}}}),
    )
    .await;
    let mut database = values_spec("db.a.example.org");
    database["externalPostgreSQL"] = json!({"secretName": "database"});
    a.create("Synapse", "hs-database", database).await;
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let cm = if kind == "Heisenbridge" {
            "irc"
        } else {
            "signal"
        };
        let lower = kind.to_lowercase();
        a.create(
            kind,
            &format!("{lower}-config"),
            json!({"synapse": {"name": "hs"}, "configMap": {"name": cm, "namespace": b}}),
        )
        .await;
        a.create(
            kind,
            &format!("{lower}-synapse"),
            json!({"synapse": {"name": "hs", "namespace": b}}),
        )
        .await;
    }
    a.create(
        "MautrixSignal",
        "mautrixsignal-database",
        json!({"synapse": {"name": "hs"}, "externalPostgreSQL": {"secretName": "database"}}),
    )
    .await;
}

/// Asserts that none of `needles` is in `documents`.
fn assert_absent(documents: &[(String, String)], needles: &[&str]) {
    assert!(documents.len() > 10, "the scan found objects to scan");
    for (what, text) in documents {
        for needle in needles {
            assert!(
                !text.contains(needle),
                "tenant B's {needle} appears in {what}"
            );
        }
    }
}

/// Every refusal, as tenant A sees it on its own objects.
async fn assert_refusals(a: &Tenant, b: &str) {
    let message = a
        .wait_refused("Synapse", "hs-cross", "Ready", "ReferenceNotGranted")
        .await;
    for part in [
        &format!("ConfigMap {b}/homeserver"),
        &format!("ReferenceGrant (gateway.networking.k8s.io/v1beta1) in namespace {b}"),
        &format!("kind: Synapse, namespace: {}", a.ns.name),
    ] {
        assert!(message.contains(part.as_str()), "{part:?} not in {message}");
    }
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let lower = kind.to_lowercase();
        let config = format!("{lower}-config");
        for condition in ["Ready", "Registered"] {
            let message = a
                .wait_refused(kind, &config, condition, "ReferenceNotGranted")
                .await;
            assert!(message.contains(&format!("kind: {kind}")), "{message}");
        }
        let synapse = format!("{lower}-synapse");
        a.wait_refused(kind, &synapse, "Ready", "CrossNamespaceSynapse")
            .await;
    }
    // A database Secret is only ever looked up in the object's own namespace.
    for kind in ["Synapse", "MautrixSignal"] {
        let name = if kind == "Synapse" {
            "hs-database"
        } else {
            "mautrixsignal-database"
        };
        let message = a
            .wait_refused(kind, name, "DatabaseReady", "SecretNotFound")
            .await;
        assert!(message.contains("in this namespace"), "{message}");
    }
}

/// Tenant B grants Synapses of A its ConfigMap `homeserver`: A's Synapse follows the reference
/// (its config Secret gets the file); the bridges' references stay refused. B revokes it: the
/// Synapse is refused again.
async fn grant_and_revoke(a: &Tenant, b: &Tenant, markers: &Markers) {
    let grant = json!({
        "from": [{"group": "synapse.opdev.io", "kind": "Synapse", "namespace": a.ns.name}],
        "to": [{"group": "", "kind": "ConfigMap", "name": "homeserver"}],
    });
    b.create("ReferenceGrant", "synapses-of-a", grant).await;
    let secrets = Api::<Secret>::namespaced(a.client.clone(), &a.ns.name);
    wait_for(TIMEOUT, "hs-cross to use the granted file", || async {
        let secret = secrets.get_opt("hs-cross-config").await.ok()??;
        secret_text(&secret)
            .values()
            .any(|file| file.contains(&markers.homeserver))
            .then_some(())
    })
    .await;
    let synapse = to_value(
        a.api("Synapse")
            .get("hs-cross")
            .await
            .expect("get hs-cross"),
    );
    assert_ne!(synapse["status"]["reason"], "ReferenceNotGranted");
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let name = format!("{}-config", kind.to_lowercase());
        a.wait_refused(kind, &name, "Ready", "ReferenceNotGranted")
            .await;
    }
    b.api("ReferenceGrant")
        .delete("synapses-of-a", &DeleteParams::default())
        .await
        .expect("tenant B revokes its grant");
    a.wait_refused("Synapse", "hs-cross", "Ready", "ReferenceNotGranted")
        .await;
}

/// Bridges go while their operators run (their finalizer withdraws the registration).
async fn remove_bridges(a: &Tenant) {
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let api = a.api(kind);
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .expect("delete the bridges");
        wait_for(TIMEOUT, "the bridges to be gone", || async {
            api.list(&ListParams::default())
                .await
                .ok()?
                .items
                .is_empty()
                .then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_tenant_reads_nothing_of_another_unless_granted() {
    let admin = e2e::client().await;
    e2e::operators::install_crds(&admin).await;
    let dir: PathBuf = std::env::temp_dir().join(format!("e2e-tenancy-{}", std::process::id()));
    let operators = Operators::start(&admin, &dir).await;
    let a = Tenant::set_up(&admin, "tenant-a", &dir.join("a")).await;
    let b = Tenant::set_up(&admin, "tenant-b", &dir.join("b")).await;
    wait_for(TIMEOUT, "edit to include our kinds", || async {
        (a.may("create", "synapse.opdev.io", "mautrixsignals", &a.ns.name)
            .await
            && a.may("create", "synapse.opdev.io", "heisenbridges", &a.ns.name)
                .await
            && b.may("create", "synapse.opdev.io", "synapses", &b.ns.name)
                .await)
            .then_some(())
    })
    .await;
    // The premise: A may not read B's namespace, nor update its objects' status.
    assert!(!a.may("get", "", "configmaps", &b.ns.name).await);
    assert!(
        !a.may("patch", "synapse.opdev.io", "synapses", &b.ns.name)
            .await
    );
    assert!(
        !a.may("patch", "synapse.opdev.io", "synapses/status", &a.ns.name)
            .await
    );

    let markers = tenant_b_objects(&admin, &b).await;
    tenant_a_objects(&a, &b.ns.name).await;
    assert_refusals(&a, &b.ns.name).await;

    // B's Synapse got none of A's bridges: no annotation names A.
    let b_synapse = to_value(b.api("Synapse").get("hs").await.expect("get B's Synapse"));
    assert!(
        !b_synapse["metadata"]["annotations"]
            .to_string()
            .contains(&a.ns.name),
        "{b_synapse:#}"
    );
    let b_generated = Api::<Secret>::namespaced(admin.clone(), &b.ns.name);
    let b_generated = wait_for(TIMEOUT, "B's generated secrets", || async {
        b_generated.get_opt("hs-secrets").await.ok()?
    })
    .await;
    let generated = secret_needles(&b_generated);
    let mut needles: Vec<&str> = vec![
        &markers.homeserver,
        &markers.registration,
        &markers.signal,
        &markers.database,
    ];
    needles.extend(generated.iter().map(String::as_str));
    let mut documents = a.readable().await;
    documents.extend(operators.logs());
    assert_absent(&documents, &needles);

    grant_and_revoke(&a, &b, &markers).await;
    // What was never granted never crossed, before or after.
    let mut documents = a.readable().await;
    documents.extend(operators.logs());
    assert_absent(&documents, &needles[1..]);

    operators.assert_chart_rules_sufficed();
    remove_bridges(&a).await;
    operators.stop().await;
    a.ns.delete().await;
    b.ns.delete().await;
    std::fs::remove_dir_all(&dir).expect("remove the kubeconfigs");
}
