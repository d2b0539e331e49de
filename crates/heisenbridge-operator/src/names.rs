//! The names of what a Heisenbridge is made of. A leaf module: every step reads it, it reads
//! nothing.

use synapse_types::heisenbridge::SERVICE_SUFFIX;

use crate::workload::PORT;

/// `app.kubernetes.io/name` of a Heisenbridge's objects.
pub const APP_NAME: &str = "heisenbridge";

/// The Deployment and the Service.
pub fn workload(bridge: &str) -> String {
    // The CRD checks names against this suffix.
    format!("{bridge}{SERVICE_SUFFIX}")
}

/// The registration Secret.
pub fn registration_secret(bridge: &str) -> String {
    format!("{bridge}-heisenbridge-registration")
}

/// The URL Synapse sends the bridge's transactions to: its Service.
pub fn service_url(bridge: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{PORT}", workload(bridge))
}
