//! The one reconciliation skeleton of a bridge, for both bridge operators: a bridge being deleted
//! withdraws its announcement (from the Synapse it names and from the one it was announced to
//! before) and then lets its finalizer go; otherwise the operator's own steps run with a
//! [`Handshake`], which stores the registration (leaving a Synapse the bridge moved away from)
//! and announces it, and the outcome is published by the shared pipeline.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use synapse_types::Synapse;
use synapse_types::contract::{
    AppServiceSource, LABEL_REGISTERED_WITH, REGISTRATION_SECRET_KEY, registration_content_hash,
};

use super::announcement::{Announcement, add_finalizer, has_finalizer, remove_finalizer};
use super::kind::{Bridge, CrossNamespaceSynapse, synapse_name};
use super::registration::{RegistrationState, registration_state};
use crate::error::{Error, ErrorKind, Refusal};
use crate::pipeline::{Converged, Pipeline};
use crate::reconciled::Reconciled;
use crate::subject::{Lifetime, Subject};
use crate::watch::cached;

/// What every bridge reconciliation runs with.
pub struct BridgeContext {
    pub pipeline: Pipeline,
    /// The Synapses of the watched namespaces.
    pub synapses: Store<Synapse>,
    /// The operator's own Secrets, the registration Secrets among them.
    pub secrets: Store<Secret>,
}

impl BridgeContext {
    /// The context of a bridge operator: its pipeline, the Synapses and its own Secrets.
    pub fn new(pipeline: Pipeline, synapses: Store<Synapse>, secrets: Store<Secret>) -> Self {
        Self {
            pipeline,
            synapses,
            secrets,
        }
    }
}

/// Reconciles `bridge`, labelled as `app`, whose registration Secret is `secret_name`: on
/// deletion, withdraws and releases it; otherwise runs `converge` and publishes its outcome.
pub async fn reconcile<'a, B, F, Fut>(
    bridge: &'a B,
    ctx: &'a BridgeContext,
    app: &'static str,
    secret_name: String,
    converge: F,
) -> Result<Action, Error>
where
    B: Bridge,
    F: FnOnce(Handshake<'a, B>) -> Fut,
    Fut: Future<Output = Result<Converged<<B as Reconciled>::Status>, Error>>,
{
    let field_manager = ctx.pipeline.applier.field_manager();
    let handshake = match Subject::of(bridge, app, field_manager)
        .and_then(|subject| Handshake::new(bridge, subject, secret_name, ctx))
    {
        Ok(handshake) => handshake,
        Err(error) => return ctx.pipeline.finish(bridge, Err(error)).await,
    };
    if bridge.meta().deletion_timestamp.is_some() {
        return handshake.withdraw().await.map(|()| Action::await_change());
    }
    let outcome = converge(handshake).await;
    ctx.pipeline.finish(bridge, outcome).await
}

/// One bridge's side of the app-service handshake during a reconciliation.
pub struct Handshake<'a, B> {
    pub subject: Subject,
    bridge: &'a B,
    announcement: Announcement,
    secret_name: String,
    /// The registration Secret as last stored, if any.
    stored: Option<Arc<Secret>>,
    ctx: &'a BridgeContext,
}

impl<'a, B: Bridge> Handshake<'a, B> {
    fn new(
        bridge: &'a B,
        subject: Subject,
        secret_name: String,
        ctx: &'a BridgeContext,
    ) -> Result<Self, Error> {
        let field_manager = ctx.pipeline.applier.field_manager();
        // A name no annotation key can hold (over 63 characters) is the user's to change.
        let announcement = Announcement::new(field_manager, B::KIND, &subject.name, &secret_name)
            .map_err(|e| {
            Error::Refused(Refusal {
                kind: ErrorKind::Invalid,
                action: format!("announce {} {} to its Synapse", B::KIND, subject.name),
                message: e.to_string(),
            })
        })?;
        Ok(Self {
            stored: cached(&ctx.secrets, &subject.namespace, &secret_name),
            subject,
            bridge,
            announcement,
            secret_name,
            ctx,
        })
    }

    /// The name of the Synapse `spec.synapse` names, or the problem of a reference to another
    /// namespace.
    pub fn synapse_name(&self) -> Result<String, CrossNamespaceSynapse> {
        synapse_name(&self.subject.namespace, self.bridge.synapse_reference()).map(str::to_owned)
    }

    /// The Synapse `name` of the bridge's namespace, from the cache.
    pub fn synapse(&self, name: &str) -> Option<Arc<Synapse>> {
        cached(&self.ctx.synapses, &self.subject.namespace, name)
    }

    /// The registration file stored before, if any.
    pub fn stored_file(&self) -> Option<&[u8]> {
        self.stored
            .as_ref()?
            .data
            .as_ref()?
            .get(REGISTRATION_SECRET_KEY)
            .map(|file| file.0.as_slice())
    }

    /// How `synapse`'s status shows the stored registration (the one a bridge that is not
    /// changed now announced before).
    pub fn stored_state(&self, synapse: &Synapse) -> RegistrationState {
        let hash = registration_content_hash(self.stored_file().unwrap_or_default());
        registration_state(synapse, &self.source(), &hash)
    }

    /// Stores `file` as the registration offered to the Synapse `synapse`; first withdraws it
    /// from a Synapse it was announced to before. A new Secret is created, never applied over:
    /// a reconciliation that raced another can then never replace generated tokens.
    pub async fn store(&self, synapse: &str, file: &str) -> Result<(), Error> {
        if let Some(previous) = self.previous_synapse().filter(|p| p != synapse) {
            self.announcement
                .withdraw(&self.synapses_api(), &previous)
                .await?;
        }
        let mut meta = self
            .subject
            .meta(&self.secret_name, "registration", Lifetime::Owned);
        meta.labels
            .get_or_insert_default()
            .insert(LABEL_REGISTERED_WITH.to_owned(), synapse.to_owned());
        let mut desired = Secret {
            metadata: meta,
            data: Some(
                [(
                    REGISTRATION_SECRET_KEY.to_owned(),
                    ByteString(file.as_bytes().to_vec()),
                )]
                .into(),
            ),
            ..Secret::default()
        };
        let applier = &self.ctx.pipeline.applier;
        match self.stored.as_deref() {
            None => applier.create(&desired).await.map(drop),
            Some(stored) => {
                // Conditional on the version read: a concurrent change is retried, not lost.
                desired.metadata.resource_version = stored.metadata.resource_version.clone();
                applier.apply(&desired, Some(stored)).await.map(drop)
            }
        }
    }

    /// Announces the registration `file` on `synapse` (the finalizer first: once announced,
    /// the bridge must not go without withdrawing), and says whether it is live.
    pub async fn announce(
        &self,
        synapse: &Synapse,
        file: &str,
    ) -> Result<RegistrationState, Error> {
        let pipeline = &self.ctx.pipeline;
        let made = add_finalizer(
            &self.bridges_api(),
            self.bridge,
            pipeline.applier.field_manager(),
        )
        .await?;
        pipeline.changed(self.bridge, made);
        self.announcement
            .announce(&self.synapses_api(), synapse)
            .await?;
        let hash = registration_content_hash(file.as_bytes());
        Ok(registration_state(synapse, &self.source(), &hash))
    }

    /// On deletion: withdraws the announcement from the Synapse the spec names and from the one
    /// the registration was last announced to, then lets the bridge go. A missing Synapse
    /// blocks nothing.
    async fn withdraw(&self) -> Result<(), Error> {
        if !has_finalizer(self.bridge) {
            return Ok(());
        }
        let mut targets: Vec<String> = self.synapse_name().ok().into_iter().collect();
        targets.extend(self.previous_synapse().filter(|p| !targets.contains(p)));
        for target in &targets {
            if self
                .announcement
                .withdraw(&self.synapses_api(), target)
                .await?
            {
                tracing::info!(synapse = target, "withdrew the app-service registration");
            }
        }
        let field_manager = self.ctx.pipeline.applier.field_manager();
        remove_finalizer(&self.bridges_api(), self.bridge, field_manager).await
    }

    /// The Synapse the stored registration is offered to.
    fn previous_synapse(&self) -> Option<String> {
        self.stored
            .as_ref()?
            .labels()
            .get(LABEL_REGISTERED_WITH)
            .cloned()
    }

    /// How the Synapse's status names this bridge's registration.
    fn source(&self) -> AppServiceSource {
        AppServiceSource {
            kind: B::KIND.kind().to_owned(),
            namespace: self.subject.namespace.clone(),
            name: self.subject.name.clone(),
        }
    }

    fn synapses_api(&self) -> Api<Synapse> {
        self.ctx.pipeline.applier.api(&self.subject.namespace)
    }

    fn bridges_api(&self) -> Api<B> {
        self.ctx.pipeline.applier.api(&self.subject.namespace)
    }
}
