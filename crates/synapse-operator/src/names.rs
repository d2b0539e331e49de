//! The names of what a Synapse is made of, and of the application its objects are labelled
//! with. A leaf module: every step reads it, it reads nothing.

use synapse_types::metrics::METRICS_PATH;
use synapse_types::synapse::DATABASE_CLUSTER_SUFFIX;

/// `app.kubernetes.io/name` of a Synapse's objects.
pub const APP_NAME: &str = "synapse";

/// The Deployment and the Service: the Synapse's own name.
pub fn workload(synapse: &str) -> String {
    synapse.to_owned()
}

/// With a dedicated federation port, the HTTPRoute of the federation paths on it.
pub fn federation_route(synapse: &str) -> String {
    format!("{synapse}-federation")
}

/// The operator's configuration bundle: base file, overlay, log config.
pub fn config_secret(synapse: &str) -> String {
    format!("{synapse}-config")
}

/// The generated secrets: signing key, macaroon, registration and form secrets.
pub fn homeserver_secret(synapse: &str) -> String {
    format!("{synapse}-secrets")
}

/// The data volume.
pub fn data_claim(synapse: &str) -> String {
    format!("{synapse}-data")
}

/// The CloudNativePG Cluster of `createNewPostgreSQL`.
pub fn database_cluster(synapse: &str) -> String {
    // The CRD checks names against this suffix.
    format!("{synapse}{DATABASE_CLUSTER_SUFFIX}")
}

/// Database and owner role in the provisioned Cluster.
pub const DATABASE_NAME: &str = "synapse";

/// The client URL inside the cluster, as bridges reach it.
pub fn client_url(synapse: &str, namespace: &str, port: u16) -> String {
    format!("http://{synapse}.{namespace}.svc:{port}")
}

/// Where Prometheus scrapes the metrics inside the cluster.
pub fn metrics_url(synapse: &str, namespace: &str, port: u16) -> String {
    format!("http://{synapse}.{namespace}.svc:{port}{METRICS_PATH}")
}
