//! The reconciliation of a Heisenbridge: the bridge skeleton of `operator_common::bridge` around
//! a short pipeline of this operator's steps.

use std::sync::Arc;

use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use operator_common::bridge::{self, Handshake};
use operator_common::error::Error;
use operator_common::pipeline::{Converged, now};
use operator_common::rollout::Rollout;
use operator_common::subject::Subject;
use synapse_types::{Heisenbridge, HeisenbridgeStatus};

use crate::build::{self, Children};
use crate::context::Context;
use crate::names::{self, APP_NAME};
use crate::status::{Outcome, SynapseSide, converged};
use crate::validate;

/// Reconciles one Heisenbridge: fetch → validate → store and announce → build → apply → status.
pub async fn reconcile(bridge: Arc<Heisenbridge>, ctx: Arc<Context>) -> Result<Action, Error> {
    let bridge = ctx.bridge.pipeline.current(bridge);
    let secret = names::registration_secret(&bridge.name_any());
    bridge::reconcile(
        bridge.as_ref(),
        &ctx.bridge,
        APP_NAME,
        secret,
        |handshake| converge(&bridge, handshake, &ctx),
    )
    .await
}

async fn converge(
    bridge: &Heisenbridge,
    handshake: Handshake<'_, Heisenbridge>,
    ctx: &Context,
) -> Result<Converged<HeisenbridgeStatus>, Error> {
    let problem = |problem| Ok(converged(bridge, &Outcome::Problem(problem), now()));
    let synapse_name = match handshake.synapse_name() {
        Ok(name) => name,
        Err(cross_namespace) => return problem(cross_namespace.into()),
    };
    let subject = &handshake.subject;
    let config_maps = &ctx.bridge.pipeline.config_maps;
    let input = config_maps.read(bridge, &subject.namespace).await?;
    let url = names::service_url(&subject.name, &subject.namespace);
    let file = match validate::registration(input.as_ref(), handshake.stored_file(), &url)? {
        Ok(file) => file,
        Err(invalid) => return problem(invalid),
    };
    handshake.store(&synapse_name, &file).await?;
    let Some(synapse) = handshake.synapse(&synapse_name) else {
        let not_found = SynapseSide::NotFound { name: synapse_name };
        let outcome = Outcome::Applied {
            synapse: not_found,
            rollout: None,
        };
        return Ok(converged(bridge, &outcome, now()));
    };
    let registration = handshake.announce(&synapse, &file).await?;
    let client_url = synapse.status.as_ref().and_then(|s| s.client_url.clone());
    let desired = build::children(bridge, subject, &file, client_url.as_deref());
    let rollout = apply(ctx, subject, &desired).await?;
    let found = SynapseSide::Found {
        name: synapse_name,
        client_url: client_url.is_some(),
        registration,
    };
    Ok(converged(
        bridge,
        &Outcome::Applied {
            synapse: found,
            rollout,
        },
        now(),
    ))
}

/// Applies the Service, and the Deployment once there is one; returns its rollout.
async fn apply(
    ctx: &Context,
    subject: &Subject,
    desired: &Children,
) -> Result<Option<Rollout>, Error> {
    let applier = &ctx.bridge.pipeline.applier;
    let service = ctx.service(subject);
    applier.apply(&desired.service, service.as_deref()).await?;
    let Some(deployment) = &desired.deployment else {
        return Ok(None);
    };
    let existing = ctx.deployment(subject);
    Ok(Some(
        applier
            .apply_deployment(deployment, existing.as_deref())
            .await?,
    ))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
