//! Whether a bridge's registration is live, as its Synapse's status shows it.

use kube::ResourceExt as _;
use synapse_types::contract::{AppServiceSource, AppServiceState};
use synapse_types::{CONDITION_READY, Synapse};

use super::kind::reasons;
use crate::conditions::is_condition_true;

/// Whether a bridge's registration is live, as `Synapse.status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationState {
    /// The current registration is registered on a ready Synapse.
    Live,
    /// It is not (yet); `reason` is one of [`reasons`], `message` says why and what to do.
    NotLive {
        /// CamelCase reason for the `Registered` condition.
        reason: &'static str,
        /// Human-readable detail.
        message: String,
    },
}

/// Reads `synapse`'s status for the app service announced by `source`: live only when the
/// Synapse is Ready and lists that source as registered with exactly `content_hash` (the
/// [`registration_content_hash`](synapse_types::contract::registration_content_hash) of the
/// bridge's current registration file).
pub fn registration_state(
    synapse: &Synapse,
    source: &AppServiceSource,
    content_hash: &str,
) -> RegistrationState {
    let synapse_name = synapse.name_any();
    let not_live = |reason, message: String| RegistrationState::NotLive { reason, message };
    let Some(status) = synapse.status.as_ref() else {
        return not_live(
            reasons::SYNAPSE_NOT_READY,
            format!("waiting for the synapse-operator to report on Synapse {synapse_name}"),
        );
    };
    let Some(entry) = status.app_services.iter().find(|a| a.source == *source) else {
        return not_live(
            reasons::REGISTRATION_PENDING,
            format!(
                "waiting for Synapse {synapse_name} to take up the registration (it is not in \
                 its status.appServices yet; is the synapse-operator running?)"
            ),
        );
    };
    match entry.state {
        AppServiceState::Rejected => not_live(
            reasons::REGISTRATION_REJECTED,
            format!(
                "Synapse {synapse_name} rejected the registration: {}",
                entry.reason.as_deref().unwrap_or("no reason given")
            ),
        ),
        AppServiceState::Registered if entry.content_hash.as_deref() != Some(content_hash) => {
            not_live(
                reasons::REGISTRATION_PENDING,
                format!(
                    "Synapse {synapse_name} has not taken up the current registration yet (it \
                     reports another version of it)"
                ),
            )
        }
        AppServiceState::Registered if synapse.spec.suspend => not_live(
            reasons::SYNAPSE_SUSPENDED,
            format!(
                "Synapse {synapse_name} is suspended (spec.suspend): the bridge is registered \
                 and waits for it to be resumed"
            ),
        ),
        AppServiceState::Registered if !is_condition_true(&status.conditions, CONDITION_READY) => {
            not_live(
                reasons::SYNAPSE_NOT_READY,
                format!(
                    "the registration is accepted; waiting for Synapse {synapse_name} to be ready \
                     with it"
                ),
            )
        }
        AppServiceState::Registered => RegistrationState::Live,
    }
}
