//! The reconciliation of a MautrixSignal: the bridge skeleton of `operator_common::bridge`
//! around a short pipeline of this operator's steps.

use std::sync::Arc;

use kube::ResourceExt as _;
use kube::runtime::controller::Action;
use operator_common::bridge::{self, Handshake};
use operator_common::database::Readiness;
use operator_common::error::Error;
use operator_common::pipeline::{Converged, now};
use synapse_types::{MautrixSignal, MautrixSignalStatus};

use crate::config::{Database, OperatorDatabase, Owned};
use crate::context::{Context, Existing};
use crate::fetch::{Fetched, Target};
use crate::keys::Keys;
use crate::names::{self, APP_NAME};
use crate::registration::render_registration;
use crate::status::{Outcome, Running, converged};
use crate::{apply, build, database, fetch, validate};

/// Reconciles one MautrixSignal: fetch → validate → keys → database → build → apply → announce
/// → status.
pub async fn reconcile(bridge: Arc<MautrixSignal>, ctx: Arc<Context>) -> Result<Action, Error> {
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
    bridge: &MautrixSignal,
    handshake: Handshake<'_, MautrixSignal>,
    ctx: &Context,
) -> Result<Converged<MautrixSignalStatus>, Error> {
    let done =
        |outcome: Outcome, domain: Option<&str>| Ok(converged(bridge, &outcome, domain, now()));
    let Fetched { file, target } = match fetch::inputs(bridge, &handshake, ctx).await? {
        Ok(fetched) => fetched,
        Err((outcome, domain)) => return done(outcome, domain.as_deref()),
    };
    let (subject, domain) = (&handshake.subject, Some(target.domain.as_str()));
    let existing = ctx.existing(subject);
    let keys = apply::keys(ctx, bridge, subject, &existing).await?;
    let appservice_url = names::service_url(&subject.name, &subject.namespace);
    let owned = owned(bridge, &target, &appservice_url, &keys);
    let (origin, prepared) = validate::config(file.as_ref(), &owned);
    let prepared = match prepared {
        Ok(prepared) => prepared,
        Err(problem) => return done(Outcome::Problem(problem), domain),
    };
    let own = *prepared.database() == Database::User;
    let readiness = database::readiness(
        ctx.applier(),
        bridge,
        subject,
        &target.synapse,
        &origin,
        own,
    );
    let database = match readiness.await? {
        Ok(database) => database,
        Err(problem) => return done(Outcome::Problem(problem), domain),
    };
    if let Readiness::NotReady(_) = database {
        return done(waiting(database, &target, &existing, &handshake), domain);
    }
    let config = prepared.finish(match database.connection() {
        Some(connection) => OperatorDatabase::Postgres(connection),
        None => OperatorDatabase::Sqlite,
    });
    let registration = render_registration(&config.registration_input(&owned));
    let desired = build::children(bridge, subject, &config, &registration, &database);
    let (rollout, registration) =
        apply::workload(ctx, &handshake, &target, &registration, &desired, &existing).await?;
    let applied = Outcome::Applied {
        synapse: target.name.clone(),
        registration,
        rollout,
        migration: config.migration,
        database,
    };
    done(applied, domain)
}

/// What the operator puts into the config of `bridge` for `target`.
fn owned<'a>(
    bridge: &'a MautrixSignal,
    target: &'a Target,
    appservice_url: &'a str,
    keys: &'a Keys,
) -> Owned<'a> {
    Owned {
        homeserver_url: &target.homeserver_url,
        domain: &target.domain,
        appservice_url,
        keys,
        admins: &bridge.spec.admins,
    }
}

/// The outcome while the database cannot be used: nothing is started against it, and a bridge
/// already running stays as it is.
fn waiting(
    database: Readiness,
    target: &Target,
    existing: &Existing,
    handshake: &Handshake<'_, MautrixSignal>,
) -> Outcome {
    let running = existing.deployment.as_deref().map(|deployment| Running {
        rollout: deployment.rollout(),
        registration: handshake.stored_state(&target.synapse),
    });
    Outcome::WaitingForDatabase {
        synapse: target.name.clone(),
        database,
        running,
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
