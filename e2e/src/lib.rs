//! Shared helpers for the end-to-end tests. They need the local control plane: run them through
//! `hack/test`, which starts it and exports `KUBECONFIG` and a `PATH` holding the pinned binaries.

use std::path::PathBuf;

pub mod bench;
pub mod charts;
pub mod lease;
pub mod matrix_fleet;
pub mod monitoring;
pub mod object_history;
pub mod objects;
pub mod operator_process;
pub mod operator_restarts;
pub mod operators;
pub mod pod_harness;
pub mod postgres;
pub mod private_apiserver;
pub mod prometheus;
pub mod seeded_rng;

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

/// A version pinned in `hack/versions.env` (e.g. `KUBERNETES_VERSION`), the one place the local
/// plane's tool versions are set.
pub fn pinned_version(key: &str) -> String {
    let path = repo_root().join("hack/versions.env");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} is not set in {}", path.display()))
        .trim()
        .to_string()
}

/// Polls `check` every 250 ms until it yields a value, which is returned. Panics naming `what`
/// once `timeout` has passed.
pub async fn wait_for<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A namespace that belongs to one test, so tests running in parallel never share objects.
pub struct TestNamespace {
    /// The generated name: the prefix and a suffix unique to this process and call.
    pub name: String,
    client: kube::Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<unique suffix>` with the given labels.
    pub async fn create(client: &kube::Client, prefix: &str, labels: &[(&str, &str)]) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let name = format!(
            "{prefix}-{:x}{:x}{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = k8s_openapi::api::core::v1::Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
            .create(&kube::api::PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
        Self {
            name,
            client: client.clone(),
        }
    }

    /// An API for namespaced objects of type `K` in this namespace.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace and everything in it (without waiting for it to be gone).
    pub async fn delete(self) {
        kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(self.client)
            .delete(&self.name, &kube::api::DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete namespace {}: {e}", self.name));
    }
}

/// Runs `program` (found on `PATH`: `hack/test` puts the pinned kubectl and helm first) and
/// returns its standard output. Panics with both output streams unless it succeeds.
pub async fn run(program: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\n{stdout}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
