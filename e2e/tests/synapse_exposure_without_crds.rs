//! `spec.expose` in a cluster without the CRD it needs (issue 15), on the real apiserver: the
//! Synapse runs, its Ingress is applied all the same, `Exposed` names what is missing; once the
//! CRD is installed the operator converges by itself. cert-manager's Certificate CRD is the one
//! removed (an HTTPRoute takes the same path in the operator); it is put back when the test ends,
//! also when it fails.
//!
//! Removing a CRD removes it for the whole plane, so this binary holds one test: `cargo test`
//! runs test binaries one after another.
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

const CRD: &str = "certificates.cert-manager.io";

/// The Certificate CRD as `hack/build-tools` fetched it at the pinned version.
fn crd_file() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache
        .join("synapse-operators/tools")
        .join(format!(
            "certmanager-{}",
            pinned_version("CERT_MANAGER_VERSION")
        ))
        .join("cert-manager.io_certificates.yaml")
}

/// Puts the CRD back, as `hack/cluster up` installs it.
fn install_crd() {
    let status = Command::new("kubectl")
        .args(["apply", "--server-side", "--force-conflicts", "-f"])
        .arg(crd_file())
        .status()
        .expect("run kubectl");
    assert!(status.success(), "kubectl apply of {CRD}");
}

/// Reinstalls the CRD when dropped, so a failing test leaves the plane as it found it.
struct Reinstall;

impl Drop for Reinstall {
    fn drop(&mut self) {
        install_crd();
    }
}

#[tokio::test]
async fn without_cert_manager_the_synapse_runs_says_so_and_converges_once_it_is_installed() {
    assert!(
        crd_file().is_file(),
        "{} (run hack/build-tools)",
        crd_file().display()
    );
    let plane = Plane::start("syn-nocrd", "info").await;
    let crds = Api::<CustomResourceDefinition>::all(plane.client.clone());
    let _reinstall = Reinstall;
    crds.delete(CRD, &DeleteParams::default())
        .await
        .expect("delete the CRD");
    wait_for(TIMEOUT, "the CRD to be gone", || async {
        crds.get_opt(CRD).await.ok()?.is_none().then_some(())
    })
    .await;

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
    assert!(message.contains(CRD), "{message}");
    synapse_support::wait_running(&api, "hs").await;
    let ingresses = Api::<Ingress>::namespaced(plane.client.clone(), &plane.ns.name);
    ingresses
        .get("hs")
        .await
        .expect("the Ingress, applied all the same");

    install_crd();
    wait_synapse(&api, "hs", "Exposed=True once cert-manager is there", |s| {
        condition_state(s, "Exposed") == ("True".into(), "Routed".into())
    })
    .await;
    let certificates = namespaced(&plane.client, &plane.ns.name, "Certificate");
    certificates.get("hs").await.expect("the Certificate");
    plane.finish().await;
}
