//! The fetch step of a MautrixSignal: its input file and its Synapse, as that Synapse's status
//! publishes it; or the outcome that stops the reconciliation there.

use std::sync::Arc;

use operator_common::bridge::Handshake;
use operator_common::error::Error;
use synapse_types::{MautrixSignal, Synapse};

use crate::context::Context;
use crate::problems::ConfigSource;
use crate::status::Outcome;
use crate::validate;

/// The Synapse the bridge registers with.
pub struct Target {
    pub name: String,
    pub synapse: Arc<Synapse>,
    /// Its server name, which the bridge's config and registration are made for.
    pub domain: String,
    /// Its client URL, which the bridge connects to.
    pub homeserver_url: String,
}

/// What a reconciliation goes on with: the user's file (`None` without `spec.configMap`) and
/// the Synapse.
pub struct Fetched {
    pub file: Option<(ConfigSource, String)>,
    pub target: Target,
}

/// An outcome that ends the reconciliation early, with the Synapse's server name if it has one.
pub type Stop = (Outcome, Option<String>);

/// Reads what `bridge` is made from.
pub async fn inputs(
    bridge: &MautrixSignal,
    handshake: &Handshake<'_, MautrixSignal>,
    ctx: &Context,
) -> Result<Result<Fetched, Stop>, Error> {
    let name = match handshake.synapse_name() {
        Ok(name) => name,
        Err(cross_namespace) => return Ok(Err((Outcome::Problem(cross_namespace.into()), None))),
    };
    let config_maps = &ctx.bridge.pipeline.config_maps;
    let input = config_maps
        .read(bridge, &handshake.subject.namespace)
        .await?;
    let file = match validate::input_file(input.as_ref()) {
        Ok(file) => file,
        Err(problem) => return Ok(Err((Outcome::Problem(problem), None))),
    };
    let Some(synapse) = handshake.synapse(&name) else {
        return Ok(Err((Outcome::SynapseNotFound { synapse: name }, None)));
    };
    let status = synapse.status.as_ref();
    let domain = status.and_then(|s| s.homeserver_configuration.as_ref()?.server_name.clone());
    let homeserver_url = status.and_then(|s| s.client_url.clone());
    let (Some(domain), Some(homeserver_url)) = (domain.clone(), homeserver_url) else {
        return Ok(Err((Outcome::SynapseNotReady { synapse: name }, domain)));
    };
    Ok(Ok(Fetched {
        file,
        target: Target {
            name,
            synapse,
            domain,
            homeserver_url,
        },
    }))
}
