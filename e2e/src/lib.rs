//! Shared helpers for the end-to-end tests. They need the local control plane: run them through
//! `hack/test`, which starts it and exports `KUBECONFIG` and a `PATH` holding the pinned binaries.

use std::path::PathBuf;

/// The repository root (the e2e crate lives one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e crate has a parent directory")
        .to_path_buf()
}

/// A client for the local plane. Panics with the fix when the plane is not configured, so an
/// end-to-end test never passes or skips silently without a cluster.
pub async fn client() -> kube::Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG is not set: run the end-to-end tests through `hack/test`"
    );
    kube::Client::try_default()
        .await
        .expect("connect to the local control plane named by KUBECONFIG")
}
