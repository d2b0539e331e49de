//! The apply step of a MautrixSignal: its generated keys (created once), then, once its config is
//! finished, the registration (stored, then announced last), the config Secret, the data PVC,
//! the Deployment and the Service.

use operator_common::bridge::{Handshake, RegistrationState};
use operator_common::error::Error;
use operator_common::retained::{ensure, ensure_generated_secret};
use operator_common::rollout::Rollout;
use operator_common::subject::Subject;
use synapse_types::MautrixSignal;

use crate::build::{self, Children};
use crate::context::{Context, Existing};
use crate::fetch::Target;
use crate::keys::{Keys, complete};

/// The bridge's generated keys, created once.
pub async fn keys(
    ctx: &Context,
    bridge: &MautrixSignal,
    subject: &Subject,
    existing: &Existing,
) -> Result<Keys, Error> {
    let meta = build::keys_meta(bridge, subject);
    let stored = existing.keys.as_deref();
    let data = ensure_generated_secret(ctx.applier(), subject, meta, stored, complete).await?;
    Keys::from_data(&data).map_err(|e| Error::transient("read the generated keys", e))
}

/// Stores the `registration`, applies `desired` and announces the registration on the target
/// Synapse; returns where the Deployment's rollout stands and whether the registration is live.
pub async fn workload(
    ctx: &Context,
    handshake: &Handshake<'_, MautrixSignal>,
    target: &Target,
    registration: &str,
    desired: &Children,
    existing: &Existing,
) -> Result<(Rollout, RegistrationState), Error> {
    let (applier, subject) = (ctx.applier(), &handshake.subject);
    handshake.store(&target.name, registration).await?;
    let config = existing.config.as_deref();
    applier.apply(&desired.config_secret, config).await?;
    let claim = existing.claim.as_ref().map(|c| &c.metadata);
    ensure(applier, subject, &desired.claim, claim).await?;
    let deployment = existing.deployment.as_deref();
    let rollout = applier
        .apply_deployment(&desired.deployment, deployment)
        .await?;
    applier
        .apply(&desired.service, existing.service.as_deref())
        .await?;
    let live = handshake.announce(&target.synapse, registration).await?;
    Ok((rollout, live))
}
