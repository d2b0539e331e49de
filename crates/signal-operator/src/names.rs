//! The names of what a MautrixSignal is made of, and the fixed values the config, the
//! registration and the workload must agree on. A leaf module: every step reads it, it reads
//! nothing.

use synapse_types::mautrix_signal::{DATABASE_CLUSTER_SUFFIX, SERVICE_SUFFIX};

/// `app.kubernetes.io/name` of a MautrixSignal's objects.
pub const APP_NAME: &str = "mautrix-signal";

/// The key of the user's config in the input ConfigMap (the original operator's), and the
/// config's file name.
pub const CONFIG_MAP_KEY: &str = "config.yaml";
/// `appservice.id`.
pub const APPSERVICE_ID: &str = "signal";
/// The port the bridge listens on for Synapse's transactions (mautrix-signal's own default).
pub const PORT: u16 = 29328;
/// The bridge's SQLite database, on its own data volume.
pub const SQLITE_URI: &str = "file:/data/mautrix-signal.db?_txlock=immediate";
/// The database type mautrix requires for SQLite.
pub const SQLITE_TYPE: &str = "sqlite3-fk-wal";
/// The `database.type` of mautrix's PostgreSQL support.
pub const POSTGRES_TYPE: &str = "postgres";
/// Database and owner role in the provisioned Cluster.
pub const DATABASE_NAME: &str = "mautrix_signal";

/// The Deployment and the Service.
pub fn workload(bridge: &str) -> String {
    // The CRD checks names against this suffix.
    format!("{bridge}{SERVICE_SUFFIX}")
}

/// The registration Secret, announced to the Synapse.
pub fn registration_secret(bridge: &str) -> String {
    format!("{bridge}-mautrix-signal-registration")
}

/// The config Secret: config.yaml holds tokens and perhaps database credentials.
pub fn config_secret(bridge: &str) -> String {
    format!("{bridge}-mautrix-signal-config")
}

/// The generated secrets, kept like the data volume.
pub fn keys_secret(bridge: &str) -> String {
    format!("{bridge}-mautrix-signal-keys")
}

/// The data volume.
pub fn data_claim(bridge: &str) -> String {
    format!("{bridge}-mautrix-signal-data")
}

/// The CloudNativePG Cluster of `createNewPostgreSQL`.
pub fn database_cluster(bridge: &str) -> String {
    format!("{bridge}{DATABASE_CLUSTER_SUFFIX}")
}

/// The URL Synapse sends the bridge's transactions to: its Service.
pub fn service_url(bridge: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{PORT}", workload(bridge))
}
