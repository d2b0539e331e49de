//! The reconciliation of a Synapse: a short pipeline of its steps, each in its own module.

use std::sync::Arc;

use kube::runtime::controller::Action;
use operator_common::cached_deployment::CachedDeployment;
use operator_common::database::Readiness;
use operator_common::error::Error;
use operator_common::pipeline::{Converged, now};
use operator_common::retained::{ensure, ensure_generated_secret};
use operator_common::subject::Subject;
use operator_common::watch::cached;
use synapse_types::{Synapse, SynapseStatus};

use crate::appservice::decide;
use crate::config_check::{self, Gate};
use crate::context::Context;
use crate::homeserver_secret::{SIGNING_KEY, complete_homeserver_secrets, rotate, verify_key};
use crate::names::{APP_NAME, client_url, metrics_url};
use crate::status::{Outcome, converged};
use crate::version::Version;
use crate::{build, database, expose, fetch, monitoring, resolve, workers};

/// Reconciles one Synapse: fetch → validate → database → build → apply → workers → expose →
/// monitor → status.
pub async fn reconcile(synapse: Arc<Synapse>, ctx: Arc<Context>) -> Result<Action, Error> {
    let synapse = ctx.pipeline.current(synapse);
    let outcome = match Subject::of(synapse.as_ref(), APP_NAME, ctx.field_manager()) {
        Ok(subject) => converge(&synapse, &subject, &ctx).await,
        Err(error) => Err(error),
    };
    ctx.pipeline.finish(synapse.as_ref(), outcome).await
}

async fn converge(
    synapse: &Synapse,
    subject: &Subject,
    ctx: &Context,
) -> Result<Converged<SynapseStatus>, Error> {
    let inputs = fetch::inputs(synapse, subject, ctx).await?;
    let operator_database = database::database_source(synapse).map(|s| s.spec_field());
    let config = match resolve::config(synapse, &inputs, operator_database) {
        // The running workload keeps its last good configuration.
        Err(problem) => return Ok(converged(synapse, &Outcome::Problem(&problem), now())),
        Ok(config) => config,
    };
    let database = database::readiness(synapse, subject, &config, &ctx.pipeline.applier).await?;
    if let Readiness::NotReady(_) = database {
        // Not started against a database that is not ready; one already running stays.
        let running = inputs.deployment.as_deref().map(CachedDeployment::rollout);
        let waiting = Outcome::WaitingForDatabase {
            database: &database,
            running,
        };
        return Ok(converged(synapse, &waiting, now()));
    }
    let app_services = decide(&subject.name, &subject.namespace, inputs.announced);
    let applier = &ctx.pipeline.applier;
    let secret_meta = build::homeserver_secret_meta(synapse, subject);
    let existing = inputs.homeserver_secret.as_deref();
    let now_ms = k8s_openapi::jiff::Timestamp::now().as_millisecond();
    let secrets = ensure_generated_secret(applier, subject, secret_meta, existing, |current| {
        let rotation = synapse.spec.signing_key_rotation.as_deref();
        rotate(
            current,
            complete_homeserver_secrets(current)?,
            rotation,
            now_ms,
        )
    })
    .await?;
    let redis =
        workers::redis_secret(applier, synapse, subject, inputs.workers.redis_secret()).await?;
    let desired = build::children(
        synapse,
        subject,
        &config,
        &database,
        &app_services,
        &secrets,
        redis.as_ref(),
    );
    let running = inputs.deployment.as_deref();
    let apply_config = || applier.apply(&desired.config_secret, inputs.config_secret.as_deref());
    // Before the first rollout nothing reads the configuration Secret: the check reads it there.
    if running.is_none() {
        apply_config().await?;
    }
    let secrets_cache = &ctx.caches.owned.secrets;
    let has_secret = |name: &str| cached(secrets_cache, &subject.namespace, name).is_some();
    let checking = config_check::Inputs {
        running,
        jobs: &inputs.config_checks,
        has_secret: &has_secret,
        secrets: &secrets,
        generated: config.generated,
    };
    let gate = config_check::gate(
        applier,
        subject,
        &desired.deployment,
        &desired.config_secret,
        checking,
    );
    match gate.await? {
        Gate::RollOut => {}
        Gate::Checking(job) => {
            let running = running.map(CachedDeployment::rollout);
            let checking = Outcome::CheckingConfig { job, running };
            return Ok(converged(synapse, &checking, now()));
        }
        Gate::Rejected(problem) => {
            return Ok(converged(synapse, &Outcome::Problem(&problem), now()));
        }
    }
    if running.is_some() {
        apply_config().await?;
    }
    let claim = inputs.claim.as_ref().map(|c| &c.metadata);
    ensure(applier, subject, &desired.claim, claim).await?;
    let rollout = applier
        .apply_deployment(&desired.deployment, running)
        .await?;
    // Rolled out: its check, and any of an earlier candidate, are done with.
    config_check::delete_all(applier, &inputs.config_checks).await?;
    applier
        .apply(&desired.service, inputs.service.as_deref())
        .await?;
    let declared = workers::declared(synapse);
    let workers_state = workers::step::converge(
        applier,
        desired.workers.as_ref(),
        &inputs.workers,
        &declared,
    )
    .await?;
    let exposure = expose::converge(applier, synapse, subject, &config, inputs.exposure).await?;
    let monitoring =
        monitoring::converge(applier, synapse, subject, &config, inputs.monitors).await?;
    let deployed = Outcome::Deployed {
        exposure: &exposure,
        monitoring,
        config: &config,
        database: &database,
        client_url: client_url(&subject.name, &subject.namespace, config.facts.client_port),
        metrics_url: (config.metrics.as_ref())
            .map(|m| metrics_url(&subject.name, &subject.namespace, m.port)),
        rollout,
        workers: workers_state.as_ref(),
        version: Version::of_image(&resolve::image(synapse)).map(|v| v.to_string()),
        suspended: synapse.spec.suspend,
        signing_key_id: (secrets.get(SIGNING_KEY))
            .and_then(|line| verify_key(&String::from_utf8_lossy(line)))
            .map(|(id, _)| id),
        app_services: &app_services,
    };
    Ok(converged(synapse, &deployed, now()))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
