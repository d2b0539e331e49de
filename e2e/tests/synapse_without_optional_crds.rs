//! A Synapse in a cluster without another project's CRD its spec needs, on the real apiserver:
//! the Synapse runs, a condition names what is missing, and once the CRD is installed the
//! operator converges by itself. For `spec.expose` (issue 15) cert-manager's Certificate CRD is
//! removed (an HTTPRoute takes the same path in the operator) and the Ingress is applied all the
//! same; for `spec.metrics.monitor` (issue 16) the Prometheus Operator's ServiceMonitor CRD (a
//! PodMonitor takes the same path) and Synapse serves its metrics all the same. Each CRD is put
//! back when its test ends, also when it fails.
//!
//! Removing a CRD removes it for the whole plane, so this binary holds only tests that remove
//! CRDs no other of its tests uses: `cargo test` runs test binaries one after another.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use std::path::PathBuf;
use std::process::Command;

use e2e::objects::namespaced;
use e2e::{pinned_version, wait_for};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use serde_json::json;
use synapse_support::{Plane, TIMEOUT, condition_state, create_synapse, wait_synapse};

/// A CRD as `hack/build-tools` fetched it at the pinned version: its name, the tool directory
/// (`<tool>-<version>`, the version from hack/versions.env) and its file there.
struct OptionalCrd {
    name: &'static str,
    tool: &'static str,
    version: &'static str,
    file: &'static str,
}

const CERTIFICATE: OptionalCrd = OptionalCrd {
    name: "certificates.cert-manager.io",
    tool: "certmanager",
    version: "CERT_MANAGER_VERSION",
    file: "cert-manager.io_certificates.yaml",
};

const SERVICE_MONITOR: OptionalCrd = OptionalCrd {
    name: "servicemonitors.monitoring.coreos.com",
    tool: "promoperator",
    version: "PROMETHEUS_OPERATOR_VERSION",
    file: "monitoring.coreos.com_servicemonitors.yaml",
};

impl OptionalCrd {
    fn path(&self) -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
        cache
            .join("synapse-operators/tools")
            .join(format!("{}-{}", self.tool, pinned_version(self.version)))
            .join(self.file)
    }

    /// Puts the CRD back, as `hack/cluster up` installs it.
    fn install(&self) {
        let status = Command::new("kubectl")
            .args(["apply", "--server-side", "--force-conflicts", "-f"])
            .arg(self.path())
            .status()
            .expect("run kubectl");
        assert!(status.success(), "kubectl apply of {}", self.name);
    }

    /// Deletes the CRD until the returned guard is dropped, which puts it back.
    async fn remove(&'static self, client: &kube::Client) -> Reinstall {
        assert!(
            self.path().is_file(),
            "{} (run hack/build-tools)",
            self.path().display()
        );
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        let guard = Reinstall(self);
        crds.delete(self.name, &DeleteParams::default())
            .await
            .expect("delete the CRD");
        wait_for(TIMEOUT, "the CRD to be gone", || async {
            crds.get_opt(self.name).await.ok()?.is_none().then_some(())
        })
        .await;
        guard
    }
}

/// Reinstalls its CRD when dropped, so a failing test leaves the plane as it found it.
struct Reinstall(&'static OptionalCrd);

impl Drop for Reinstall {
    fn drop(&mut self) {
        self.0.install();
    }
}

#[tokio::test]
async fn without_cert_manager_the_synapse_runs_says_so_and_converges_once_it_is_installed() {
    let plane = Plane::start("syn-nocrd", "info").await;
    let _reinstall = CERTIFICATE.remove(&plane.client).await;

    let api = plane.synapses();
    let expose = json!({
        "host": "matrix.example.com",
        "ingress": {},
        "tls": {"secretName": "hs-tls", "issuer": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
    });
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}, "expose": expose}),
    )
    .await;
    let synapse = wait_synapse(&api, "hs", "Exposed=False CertManagerMissing", |s| {
        condition_state(s, "Exposed") == ("False".into(), "CertManagerMissing".into())
    })
    .await;
    let message = synapse_support::condition(&synapse, "Exposed").expect("Exposed")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains(CERTIFICATE.name), "{message}");
    synapse_support::wait_running(&api, "hs").await;
    let ingresses = Api::<Ingress>::namespaced(plane.client.clone(), &plane.ns.name);
    ingresses
        .get("hs")
        .await
        .expect("the Ingress, applied all the same");

    CERTIFICATE.install();
    wait_synapse(&api, "hs", "Exposed=True once cert-manager is there", |s| {
        condition_state(s, "Exposed") == ("True".into(), "Routed".into())
    })
    .await;
    let certificates = namespaced(&plane.client, &plane.ns.name, "Certificate");
    certificates.get("hs").await.expect("the Certificate");
    plane.finish().await;
}

#[tokio::test]
async fn without_the_prometheus_operator_the_synapse_runs_says_so_and_converges_once_it_is_installed()
 {
    let plane = Plane::start("syn-nomon", "info").await;
    let _reinstall = SERVICE_MONITOR.remove(&plane.client).await;
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({
            "homeserver": {"values": {"serverName": "example.com", "reportStats": false}},
            "metrics": {"monitor": {"kind": "ServiceMonitor"}},
        }),
    )
    .await;
    let synapse = wait_synapse(
        &api,
        "hs",
        "Monitored=False PrometheusOperatorMissing",
        |s| condition_state(s, "Monitored") == ("False".into(), "PrometheusOperatorMissing".into()),
    )
    .await;
    let message = synapse_support::condition(&synapse, "Monitored").expect("Monitored")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("ServiceMonitor CRD"), "{message}");
    let synapse = synapse_support::wait_running(&api, "hs").await;
    assert!(
        synapse["status"]["metricsUrl"].is_string(),
        "metrics are served all the same"
    );
    synapse_support::wait_event(
        &plane.client,
        &plane.ns.name,
        "hs",
        "Warning",
        "PrometheusOperatorMissing",
    )
    .await;

    SERVICE_MONITOR.install();
    wait_synapse(
        &api,
        "hs",
        "Monitored=True once the Prometheus Operator's CRD is there",
        |s| condition_state(s, "Monitored") == ("True".into(), "MonitorApplied".into()),
    )
    .await;
    namespaced(&plane.client, &plane.ns.name, "ServiceMonitor")
        .get("hs")
        .await
        .expect("the ServiceMonitor");
    plane.finish().await;
}
