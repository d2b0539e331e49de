//! The charts' RBAC is exactly what the operators need (issue 8). Each test installs the chart(s)
//! into its own namespace (namespaced mode: a Role there), then runs the operator binary locally
//! as the chart's ServiceAccount (a TokenRequest token in a kubeconfig) through representative
//! scenarios, with kube-client logging every request. It fails when a request is forbidden, and
//! when the chart grants a permission the scenarios never used (apart from the few listed in
//! `NOT_EXERCISED`, each with the reason), so the rules cannot drift from the code either way.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use e2e::charts::{Grant, Release, granted, requested, service_account_kubeconfig, template};
use e2e::objects::namespaced;
use e2e::operator_process::OperatorProcess;
use e2e::postgres::{self, Postgres};
use e2e::{TestNamespace, wait_for};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::api::rbac::v1::Role;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use synapse_support::{
    TIMEOUT, condition_state, create_config_map, create_synapse, get_opt, patch_spec, random_token,
    restricted_namespace, set_config_map_data, synapses, wait_event, wait_failed, wait_running,
    wait_synapse,
};

/// Granted, but not used by a scenario here: kube's event recorder patches an Event only when
/// the same event is published twice for one version of an object (a series); the pods of a
/// configuration check are listed only when Synapse rejected a configuration, which needs the
/// real loader (e2e synapse_config_check), while kwok passes every check here.
const NOT_EXERCISED: &[(&str, &str, &str)] =
    &[("events.k8s.io", "events", "patch"), ("", "pods", "list")];

/// A chart installed in the test namespace and an operator process running as its identity.
struct UnderChart {
    release: Release,
    operator: OperatorProcess,
    granted: BTreeSet<Grant>,
    dir: PathBuf,
}

impl UnderChart {
    async fn start(client: &Client, ns: &TestNamespace, operator: &str) -> Self {
        let values = [
            ("crds.install", "false"),
            ("rbac.namespaced", "true"),
            ("watchNamespace", ns.name.as_str()),
        ];
        // Contains the chart name, so the release name is the full name: short enough.
        let name = format!("{}-{operator}", ns.name);
        let release = Release::install(operator, &name, &ns.name, &values).await;
        let granted = granted(&template(operator, &name, &ns.name, &values).await);
        let dir = std::env::temp_dir().join(format!("e2e-chart-rbac-{name}"));
        let kubeconfig =
            service_account_kubeconfig(client, &ns.name, &release.service_account(), &dir).await;
        let mut process = OperatorProcess::builder(operator, &ns.name)
            .kubeconfig(&kubeconfig)
            .leader_elect(true)
            .log_level("info,kube_client=debug")
            .start();
        process.wait_ready(TIMEOUT).await;
        Self {
            release,
            operator: process,
            granted,
            dir,
        }
    }

    /// Waits until the operator renewed its Lease at least once (a patch of the Lease), then
    /// checks its requests against the chart's rules and stops it. `exhaustive`: the scenarios
    /// were meant to use every rule of the chart.
    async fn finish(mut self, exhaustive: bool) {
        let name = self.release.operator.clone();
        wait_for(
            Duration::from_secs(30),
            &format!("{name} renews its Lease"),
            || async {
                requested(&self.operator.log_text())
                    .contains(&grant("coordination.k8s.io", "leases", "patch"))
                    .then_some(())
            },
        )
        .await;
        self.operator.assert_running();
        let log = self.operator.log_text();
        assert!(
            !log.to_lowercase().contains("forbidden"),
            "{name}: a request was forbidden:\n{log}"
        );
        let errors = "matrix_operator_reconciliation_errors_total";
        assert_eq!(self.operator.metric(errors), Some(0.0), "{name}:\n{log}");
        let used = requested(&log);
        let beyond: Vec<_> = used.difference(&self.granted).collect();
        assert!(
            beyond.is_empty(),
            "{name} used what its chart does not grant: {beyond:?}"
        );
        let unused: Vec<_> = self
            .granted
            .difference(&used)
            .filter(|_| exhaustive)
            .filter(|g| !NOT_EXERCISED.contains(&(g.0.as_str(), g.1.as_str(), g.2.as_str())))
            .collect();
        assert!(
            unused.is_empty(),
            "{name}'s chart grants what the scenarios never used (remove the rule, or add the \
             scenario that needs it): {unused:?}"
        );
        self.operator.stop();
        self.release.uninstall().await;
        std::fs::remove_dir_all(&self.dir).expect("remove the kubeconfig");
    }
}

fn grant(group: &str, resource: &str, verb: &str) -> Grant {
    (group.to_owned(), resource.to_owned(), verb.to_owned())
}

const HOMESERVER: &str = "server_name: chart.example.org\nreport_stats: false\nlisteners:\n  - \
                          port: 8008\n    type: http\n    resources: [{names: [client]}]\n";

#[tokio::test]
async fn synapse_operator_needs_exactly_its_chart_rules() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    postgres::install_cnpg_crd(&client).await;
    let ns = restricted_namespace(&client, "rbac-syn").await;
    let under = UnderChart::start(&client, &ns, "synapse-operator").await;
    let api = synapses(&client, &ns.name);

    // Values mode.
    create_synapse(
        &api,
        "values",
        json!({"homeserver": {"values": {"serverName": "values.example.org", "reportStats": false}}}),
    )
    .await;
    wait_running(&api, "values").await;
    // Exposed through the Gateway API: the HTTPRoute applied (created), then deleted again.
    let expose = json!({"host": "values.example.org", "gateway": {"parentRefs": [{"name": "gw"}]}});
    patch_spec(&api, "values", json!({"expose": expose})).await;
    wait_synapse(&api, "values", "Exposed", |s| {
        condition_state(s, "Exposed") == ("True".into(), "Routed".into())
    })
    .await;
    // Then through an Ingress with a cert-manager Certificate: the route goes, they come.
    let expose = json!({
        "host": "values.example.org", "gateway": null, "ingress": {},
        "tls": {"secretName": "values-tls", "issuer": {"name": "ca"}},
    });
    patch_spec(&api, "values", json!({"expose": expose})).await;
    wait_for(TIMEOUT, "the Ingress and the Certificate", || async {
        let ingress: Option<k8s_openapi::api::networking::v1::Ingress> =
            get_opt(&client, &ns.name, "values").await;
        let route = namespaced(&client, &ns.name, "HTTPRoute")
            .get_opt("values")
            .await
            .ok()?;
        let certificate = namespaced(&client, &ns.name, "Certificate")
            .get_opt("values")
            .await
            .ok()?;
        (ingress.is_some() && route.is_none() && certificate.is_some()).then_some(())
    })
    .await;
    patch_spec(&api, "values", json!({"expose": null})).await;
    wait_synapse(&api, "values", "no longer Exposed", |s| {
        s["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.iter().any(|c| c["type"] == "Exposed"))
    })
    .await;
    // Monitored by a ServiceMonitor, then a PodMonitor (the ServiceMonitor deleted).
    for kind in ["ServiceMonitor", "PodMonitor"] {
        let monitor = json!({"metrics": {"monitor": {"kind": kind}}});
        patch_spec(&api, "values", monitor).await;
        wait_for(TIMEOUT, &format!("the {kind} alone"), || async {
            let other = if kind == "PodMonitor" {
                "ServiceMonitor"
            } else {
                "PodMonitor"
            };
            let this = namespaced(&client, &ns.name, kind)
                .get_opt("values")
                .await
                .ok()?;
            let that = namespaced(&client, &ns.name, other)
                .get_opt("values")
                .await
                .ok()?;
            (this.is_some() && that.is_none()).then_some(())
        })
        .await;
    }
    patch_spec(&api, "values", json!({"metrics": {"monitor": null}})).await;
    wait_for(TIMEOUT, "the PodMonitor to be deleted", || async {
        let monitors = namespaced(&client, &ns.name, "PodMonitor");
        monitors
            .get_opt("values")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // ConfigMap mode, first with bad input: the ConfigMap is missing, then it appears.
    create_synapse(
        &api,
        "cm",
        json!({"homeserver": {"configMap": {"name": "hs-config"}}}),
    )
    .await;
    wait_failed(&api, "cm", "ConfigMapNotFound").await;
    create_config_map(
        &client,
        &ns.name,
        "hs-config",
        &[("homeserver.yaml", HOMESERVER)],
    )
    .await;
    wait_running(&api, "cm").await;
    wait_event(&client, &ns.name, "cm", "Normal", "Running").await;
    // Installed for this namespace only, a ConfigMap elsewhere is refused without a request (a
    // Forbidden would fail the test) and without a ReferenceGrant rule.
    create_synapse(
        &api,
        "elsewhere",
        json!({"homeserver": {"configMap": {"name": "hs-config", "namespace": "default"}}}),
    )
    .await;
    let refused = wait_failed(&api, "elsewhere", "ReferenceNotGranted").await;
    let message = refused["status"]["reason"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("installed for namespace {} only", ns.name)),
        "{message}"
    );
    // Switching the deletion policy gives the retained PVC and Secret their owner.
    patch_spec(&api, "values", json!({"deletionPolicy": "Delete"})).await;
    wait_for(TIMEOUT, "the data PVC owned by its Synapse", || async {
        let claim: PersistentVolumeClaim = get_opt(&client, &ns.name, "values-data").await?;
        (!claim
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty())
        .then_some(())
    })
    .await;

    // PostgreSQL through CloudNativePG (the test plays it): the Cluster created, awaited,
    // then given its owner when the policy changes; and an external database's Secret read.
    let database = Postgres::from_env().create_database("synapse", "synapse", &random_token(), "C");
    create_synapse(
        &api,
        "pg",
        json!({
            "createNewPostgreSQL": true,
            "homeserver": {"values": {"serverName": "pg.example.org", "reportStats": false}},
        }),
    )
    .await;
    wait_synapse(&api, "pg", "waiting for its Cluster", |s| {
        condition_state(s, "DatabaseReady") == ("False".into(), "ClusterNotReady".into())
    })
    .await;
    postgres::mark_cluster_ready(&client, &ns.name, "pg-pgsql").await;
    postgres::create_app_secret(&client, &ns.name, "pg-pgsql", &database).await;
    wait_running(&api, "pg").await;
    patch_spec(&api, "pg", json!({"deletionPolicy": "Delete"})).await;
    wait_for(TIMEOUT, "the Cluster owned by its Synapse", || async {
        let cluster = postgres::cluster_api(&client, &ns.name)
            .get_opt("pg-pgsql")
            .await
            .ok()??;
        (!cluster
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty())
        .then_some(())
    })
    .await;
    let app: Secret = get_opt(&client, &ns.name, "pg-pgsql-app")
        .await
        .expect("the app Secret");
    let mut external = app.clone();
    external.metadata = kube::api::ObjectMeta {
        name: Some("external-db".into()),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), &ns.name)
        .create(&PostParams::default(), &external)
        .await
        .expect("create the external database Secret");
    create_synapse(
        &api,
        "ext",
        json!({
            "externalPostgreSQL": {"secretName": "external-db"},
            "homeserver": {"values": {"serverName": "ext.example.org", "reportStats": false}},
        }),
    )
    .await;
    wait_running(&api, "ext").await;
    // With workers: their objects, the router's, Redis's and the budgets are created; without
    // them again, deleted.
    patch_spec(
        &api,
        "ext",
        json!({"workers": {"generic": {"replicas": 1}}}),
    )
    .await;
    wait_synapse(&api, "ext", "Ready with its worker", |s| {
        s["status"]["workers"]["summary"] == "1/1" && condition_state(s, "Ready").0 == "True"
    })
    .await;
    patch_spec(&api, "ext", json!({"workers": null})).await;
    wait_for(TIMEOUT, "the worker objects to be deleted", || async {
        let deployments =
            Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns.name);
        let budgets = Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(
            client.clone(),
            &ns.name,
        );
        let secrets = Api::<Secret>::namespaced(client.clone(), &ns.name);
        let left = deployments.get_opt("ext-generic-0").await.ok()?.is_some()
            || deployments.get_opt("ext-router").await.ok()?.is_some()
            || budgets.get_opt("ext-generic").await.ok()?.is_some()
            || secrets.get_opt("ext-workers").await.ok()?.is_some()
            || secrets.get_opt("ext-redis").await.ok()?.is_some();
        (!left).then_some(())
    })
    .await;

    under.finish(true).await;
    e2e::pod_harness::forget_claims(&ns.name).expect("forget the claim data");
    ns.delete().await;
}

fn condition(object: &DynamicObject, type_: &str) -> Option<(String, String)> {
    let status = object.data.get("status")?;
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

async fn wait_registered(api: &Api<DynamicObject>, name: &str) {
    wait_for(
        TIMEOUT,
        &format!("Heisenbridge {name} Registered"),
        || async {
            let bridge = api.get_opt(name).await.ok()??;
            (condition(&bridge, "Registered")? == ("True".into(), "Registered".into()))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn heisenbridge_operator_needs_exactly_its_chart_rules() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    let ns = restricted_namespace(&client, "rbac-irc").await;
    // Both charts in one namespace: the handshake runs between the two chart identities.
    let synapse_side = UnderChart::start(&client, &ns, "synapse-operator").await;
    let bridge_side = UnderChart::start(&client, &ns, "heisenbridge-operator").await;
    let api = synapses(&client, &ns.name);
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "irc.example.org", "reportStats": false}}}),
    )
    .await;
    wait_running(&api, "hs").await;

    let bridges = namespaced(&client, &ns.name, "Heisenbridge");
    let pp = PostParams::default();
    let bridge = |name: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .expect("a Heisenbridge")
    };
    // Default registration.
    bridges
        .create(&pp, &bridge("irc", json!({"synapse": {"name": "hs"}})))
        .await
        .expect("create Heisenbridge irc");
    wait_registered(&bridges, "irc").await;
    // ConfigMap mode, then an edit of the user's file re-applies the registration Secret.
    let registration =
        std::fs::read_to_string(e2e::repo_root().join("e2e/testdata/heisenbridge/valid.yaml"))
            .expect("read the registration fixture");
    create_config_map(
        &client,
        &ns.name,
        "irc-registration",
        &[("heisenbridge.yaml", &registration)],
    )
    .await;
    bridges
        .create(
            &pp,
            &bridge(
                "irc-cm",
                json!({"synapse": {"name": "hs"}, "configMap": {"name": "irc-registration"}}),
            ),
        )
        .await
        .expect("create Heisenbridge irc-cm");
    wait_for(TIMEOUT, "the registration Secret of irc-cm", || async {
        let secrets = Api::<Secret>::namespaced(client.clone(), &ns.name);
        let list = secrets.list(&Default::default()).await.ok()?;
        list.items
            .into_iter()
            .any(|s| {
                s.metadata
                    .labels
                    .unwrap_or_default()
                    .get("app.kubernetes.io/instance")
                    .is_some_and(|i| i == "irc-cm")
            })
            .then_some(())
    })
    .await;
    let edited = registration.replace("ircbot", "ircbot2");
    set_config_map_data(
        &client,
        &ns.name,
        "irc-registration",
        &[("heisenbridge.yaml", &edited)],
    )
    .await;
    wait_synapse(&api, "hs", "the edited registration announced", |s| {
        s["status"]["appServices"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    })
    .await;
    // Deletion: the announcement withdrawn, the finalizer released (both bridges, so that the
    // namespace can go too).
    for name in ["irc", "irc-cm"] {
        bridges
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete Heisenbridge {name}: {e}"));
        wait_for(TIMEOUT, &format!("Heisenbridge {name} gone"), || async {
            bridges.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await;
    }

    bridge_side.finish(true).await;
    // Here only the partner of the handshake: its own test uses every rule.
    synapse_side.finish(false).await;
    e2e::pod_harness::forget_claims(&ns.name).expect("forget the claim data");
    ns.delete().await;
}

#[tokio::test]
async fn signal_operator_needs_exactly_its_chart_rules() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    postgres::install_cnpg_crd(&client).await;
    let ns = restricted_namespace(&client, "rbac-sig").await;
    let synapse_side = UnderChart::start(&client, &ns, "synapse-operator").await;
    let bridge_side = UnderChart::start(&client, &ns, "signal-operator").await;
    let api = synapses(&client, &ns.name);
    // The original operator's manifest, pointing at the Synapse "values".
    create_synapse(
        &api,
        "values",
        json!({"homeserver": {"values": {"serverName": "signal.example.org", "reportStats": false}}}),
    )
    .await;
    wait_running(&api, "values").await;
    let manifest = std::fs::read_to_string(
        e2e::repo_root().join("e2e/testdata/original-api/mautrixsignal-default.yaml"),
    )
    .expect("read the MautrixSignal fixture");
    let signal: DynamicObject = serde_yaml::from_str(&manifest).expect("a MautrixSignal");
    let name = signal.metadata.name.clone().expect("a name");
    let bridges = namespaced(&client, &ns.name, "MautrixSignal");
    bridges
        .create(&PostParams::default(), &signal)
        .await
        .expect("create the MautrixSignal");
    wait_for(TIMEOUT, "the MautrixSignal Registered", || async {
        let bridge = bridges.get_opt(&name).await.ok()??;
        (condition(&bridge, "Registered")?.0 == "True").then_some(())
    })
    .await;
    // Switching the deletion policy gives the retained data PVC its owner (patch on PVCs).
    patch_spec(&bridges, &name, json!({"deletionPolicy": "Delete"})).await;
    let claim_name = format!("{name}-mautrix-signal-data");
    wait_for(
        TIMEOUT,
        "the bridge's data PVC owned by its MautrixSignal",
        || async {
            let claim: PersistentVolumeClaim = get_opt(&client, &ns.name, &claim_name).await?;
            (!claim
                .metadata
                .owner_references
                .unwrap_or_default()
                .is_empty())
            .then_some(())
        },
    )
    .await;
    // ConfigMap mode with bad input: the ConfigMap is missing, which becomes a condition.
    let from_config_map: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "MautrixSignal",
        "metadata": {"name": "signal-cm"},
        "spec": {"synapse": {"name": "values"}, "configMap": {"name": "signal-config"}},
    }))
    .expect("a MautrixSignal");
    bridges
        .create(&PostParams::default(), &from_config_map)
        .await
        .expect("create the ConfigMap-mode MautrixSignal");
    wait_for(TIMEOUT, "the missing ConfigMap reported", || async {
        let bridge = bridges.get_opt("signal-cm").await.ok()??;
        (condition(&bridge, "Ready")?.0 == "False").then_some(())
    })
    .await;
    // Its own PostgreSQL through CloudNativePG (the test plays it): the Cluster created and
    // awaited, then given its owner when the policy changes.
    let with_database: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "MautrixSignal",
        "metadata": {"name": "signal-pg"},
        "spec": {"synapse": {"name": "values"}, "createNewPostgreSQL": true},
    }))
    .expect("a MautrixSignal");
    bridges
        .create(&PostParams::default(), &with_database)
        .await
        .expect("create the MautrixSignal with PostgreSQL");
    wait_for(TIMEOUT, "the bridge waiting for its Cluster", || async {
        let bridge = bridges.get_opt("signal-pg").await.ok()??;
        (condition(&bridge, "DatabaseReady")? == ("False".into(), "ClusterNotReady".into()))
            .then_some(())
    })
    .await;
    patch_spec(&bridges, "signal-pg", json!({"deletionPolicy": "Delete"})).await;
    wait_for(
        TIMEOUT,
        "the bridge's Cluster owned by its MautrixSignal",
        || async {
            let cluster = postgres::cluster_api(&client, &ns.name)
                .get_opt("signal-pg-mautrix-signal-pgsql")
                .await
                .ok()??;
            (!cluster
                .metadata
                .owner_references
                .unwrap_or_default()
                .is_empty())
            .then_some(())
        },
    )
    .await;
    // A database Secret of the user's, read where it is named.
    let external: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "MautrixSignal",
        "metadata": {"name": "signal-ext"},
        "spec": {"synapse": {"name": "values"}, "externalPostgreSQL": {"secretName": "signal-db"}},
    }))
    .expect("a MautrixSignal");
    bridges
        .create(&PostParams::default(), &external)
        .await
        .expect("create the MautrixSignal with an external database");
    wait_for(TIMEOUT, "the missing database Secret reported", || async {
        let bridge = bridges.get_opt("signal-ext").await.ok()??;
        (condition(&bridge, "DatabaseReady")? == ("False".into(), "SecretNotFound".into()))
            .then_some(())
    })
    .await;
    // Deletion: the announcement withdrawn, the finalizer released.
    bridges
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the MautrixSignal");
    wait_for(TIMEOUT, "the MautrixSignal gone", || async {
        bridges.get_opt(&name).await.ok()?.is_none().then_some(())
    })
    .await;

    bridge_side.finish(true).await;
    synapse_side.finish(false).await;
    e2e::pod_harness::forget_claims(&ns.name).expect("forget the claim data");
    ns.delete().await;
}

/// Removes `verb` on `resource` from the Roles in `namespace` (the chart's), or puts it back.
async fn set_verb(client: &Client, namespace: &str, resource: &str, verb: &str, granted: bool) {
    let roles = Api::<Role>::namespaced(client.clone(), namespace);
    for mut role in roles
        .list(&ListParams::default())
        .await
        .expect("list Roles")
        .items
    {
        let mut changed = false;
        for rule in role.rules.iter_mut().flatten() {
            if !rule.resources.iter().flatten().any(|r| r == resource) {
                continue;
            }
            let verbs = &mut rule.verbs;
            let has = verbs.iter().any(|v| v == verb);
            if granted && !has {
                verbs.push(verb.to_owned());
                changed = true;
            } else if !granted && has {
                verbs.retain(|v| v != verb);
                changed = true;
            }
        }
        if changed {
            let name = role.metadata.name.clone().expect("a Role name");
            roles
                .replace(&name, &PostParams::default(), &role)
                .await
                .expect("update the Role");
        }
    }
}

#[tokio::test]
async fn a_missing_rule_becomes_a_condition_and_an_event_and_recovers() {
    let client = e2e::client().await;
    e2e::operators::install_crds(&client).await;
    let ns = restricted_namespace(&client, "rbac-deny").await;
    let mut under = UnderChart::start(&client, &ns, "synapse-operator").await;
    set_verb(&client, &ns.name, "deployments", "patch", false).await;
    let api = synapses(&client, &ns.name);
    create_synapse(
        &api,
        "denied",
        json!({"homeserver": {"values": {"serverName": "deny.example.org", "reportStats": false}}}),
    )
    .await;

    let note = wait_event(&client, &ns.name, "denied", "Warning", "Forbidden").await;
    assert!(
        note.contains("deployments"),
        "the Event names the refused request: {note}"
    );
    let synapse = wait_synapse(&api, "denied", "Ready=False with reason Forbidden", |s| {
        synapse_support::condition_state(s, "Ready") == ("False".into(), "Forbidden".into())
    })
    .await;
    let message =
        synapse_support::condition(&synapse, "Ready").expect("a Ready condition")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    assert!(
        message.contains("patch") && message.contains("deployments"),
        "the condition says what is missing: {message}"
    );
    under.operator.assert_running();
    // Counted once the reconciliation returns, just after its status is written.
    let errors = "matrix_operator_reconciliation_errors_total";
    wait_for(TIMEOUT, "the refusal counted as an error", || async {
        (under.operator.metric(errors).unwrap_or_default() >= 1.0).then_some(())
    })
    .await;

    // Granting the permission again recovers without any other step.
    set_verb(&client, &ns.name, "deployments", "patch", true).await;
    wait_running(&api, "denied").await;

    under.operator.stop();
    under.release.uninstall().await;
    std::fs::remove_dir_all(&under.dir).expect("remove the kubeconfig");
    e2e::pod_harness::forget_claims(&ns.name).expect("forget the claim data");
    ns.delete().await;
}
