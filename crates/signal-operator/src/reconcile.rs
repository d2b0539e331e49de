//! The reconciliation of a MautrixSignal: the bridge skeleton of `operator_common::bridge`
//! around a short pipeline of this operator's steps.

use std::sync::Arc;

use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use operator_common::bridge::{self, Handshake};
use operator_common::database::Readiness;
use operator_common::error::Error;
use operator_common::input::read_config_map;
use operator_common::pipeline::{Converged, now};
use operator_common::retained::{ensure, ensure_generated_secret};
use operator_common::rollout::rollout;
use synapse_types::{MautrixSignal, MautrixSignalStatus};

use crate::config::{Database, OperatorDatabase, Owned};
use crate::context::Context;
use crate::keys::{Keys, complete};
use crate::names::{self, APP_NAME};
use crate::registration::render_registration;
use crate::status::{Outcome, Running, converged};
use crate::{build, database, validate};

/// Reconciles one MautrixSignal: fetch → validate → keys → database → build → apply → announce
/// → status.
pub async fn reconcile(bridge: Arc<MautrixSignal>, ctx: Arc<Context>) -> Result<Action, Error> {
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
    bridge: &MautrixSignal,
    handshake: Handshake<'_, MautrixSignal>,
    ctx: &Context,
) -> Result<Converged<MautrixSignalStatus>, Error> {
    let done =
        |outcome: Outcome, server: Option<&str>| Ok(converged(bridge, &outcome, server, now()));
    let synapse_name = match handshake.synapse_name() {
        Ok(name) => name,
        Err(cross_namespace) => return done(Outcome::Problem(cross_namespace.into()), None),
    };
    let (subject, applier) = (&handshake.subject, ctx.applier());
    let input = match &bridge.spec.config_map {
        Some(reference) => {
            Some(read_config_map(applier.client(), &subject.namespace, reference).await?)
        }
        None => None,
    };
    let file = match validate::input_file(input.as_ref()) {
        Ok(file) => file,
        Err(problem) => return done(Outcome::Problem(problem), None),
    };
    let Some(synapse) = handshake.synapse(&synapse_name) else {
        return done(
            Outcome::SynapseNotFound {
                synapse: synapse_name,
            },
            None,
        );
    };
    let status = synapse.status.as_ref();
    let server_name = status.and_then(|s| s.homeserver_configuration.as_ref()?.server_name.clone());
    let (Some(domain), Some(homeserver_url)) = (
        server_name.as_deref(),
        status.and_then(|s| s.client_url.as_deref()),
    ) else {
        return done(
            Outcome::SynapseNotReady {
                synapse: synapse_name,
            },
            server_name.as_deref(),
        );
    };
    let existing = ctx.existing(subject);
    let data = ensure_generated_secret(
        applier,
        subject,
        build::keys_meta(bridge, subject),
        existing.keys.as_deref(),
        complete,
    )
    .await?;
    let keys =
        Keys::from_data(&data).map_err(|e| Error::transient("read the generated keys", e))?;
    let appservice_url = names::service_url(&subject.name, &subject.namespace);
    let owned = Owned {
        homeserver_url,
        domain,
        appservice_url: &appservice_url,
        keys: &keys,
        admins: &bridge.spec.admins,
    };
    let (origin, prepared) = validate::config(file.as_ref(), &owned);
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(problem) => return done(Outcome::Problem(problem), Some(domain)),
    };
    let own_database = *prepared.database() == Database::User;
    let readiness = database::readiness(applier, bridge, subject, &synapse, &origin, own_database);
    let database = match readiness.await? {
        Ok(database) => database,
        Err(problem) => return done(Outcome::Problem(problem), Some(domain)),
    };
    if let Readiness::NotReady(_) = database {
        // Not started against a database it cannot use; one already running stays as it is.
        let running = existing.deployment.as_deref().map(|deployment| Running {
            rollout: rollout(deployment),
            registration: handshake.stored_state(&synapse),
        });
        return done(
            Outcome::WaitingForDatabase {
                synapse: synapse_name,
                database,
                running,
            },
            Some(domain),
        );
    }
    let config = prepared.finish(match database.connection() {
        Some(connection) => OperatorDatabase::Postgres(connection),
        None => OperatorDatabase::Sqlite,
    });
    let registration = render_registration(&config.registration_input(&owned));
    handshake.store(&synapse_name, &registration).await?;
    let desired = build::children(bridge, subject, &config, &registration, &database);
    applier
        .apply(&desired.config_secret, existing.config.as_deref())
        .await?;
    ensure(
        applier,
        subject,
        &desired.claim,
        existing.claim.as_ref().map(|c| &c.metadata),
    )
    .await?;
    let deployment = applier
        .apply(&desired.deployment, existing.deployment.as_deref())
        .await?;
    applier
        .apply(&desired.service, existing.service.as_deref())
        .await?;
    let registration = handshake.announce(&synapse, &registration).await?;
    let applied = Outcome::Applied {
        synapse: synapse_name,
        registration,
        rollout: rollout(&deployment),
        migration: config.migration,
        database,
    };
    done(applied, Some(domain))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
