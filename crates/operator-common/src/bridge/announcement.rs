//! One bridge's announcement of its registration on its Synapse (an annotation), and the
//! finalizer that guarantees its withdrawal.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use serde_json::json;
use synapse_types::Synapse;
use synapse_types::contract::{
    AnnotationKeyError, AppServiceAnnotation, BRIDGE_FINALIZER, BridgeKind,
};

use super::kind::Bridge;
use crate::error::{Error, api_error};

/// One bridge's announcement of its registration on a Synapse: the annotation
/// `<kind>.appservice.synapse.opdev.io/<bridge>` whose value names the registration Secret.
///
/// It is written by server-side apply under a field manager of its own per bridge
/// (`<operator>/<bridge>`): each apply then owns exactly this one annotation, so announcing one
/// bridge never drops another bridge's key, and applying no annotation withdraws just this one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    annotation: AppServiceAnnotation,
    secret: String,
    field_manager: String,
}

impl Announcement {
    /// The announcement of the bridge `bridge_name` of `kind`, managed by `operator`, naming the
    /// registration Secret `secret`.
    pub fn new(
        operator: &str,
        kind: BridgeKind,
        bridge_name: &str,
        secret: &str,
    ) -> Result<Self, AnnotationKeyError> {
        Ok(Self {
            annotation: AppServiceAnnotation::new(kind, bridge_name)?,
            secret: secret.to_owned(),
            field_manager: format!("{operator}/{bridge_name}"),
        })
    }

    /// The annotation key.
    pub fn key(&self) -> String {
        self.annotation.key()
    }

    /// The field manager of this bridge's annotation writes.
    pub fn field_manager(&self) -> &str {
        &self.field_manager
    }

    /// Whether `synapse` carries this announcement with this Secret's name.
    pub fn is_on(&self, synapse: &Synapse) -> bool {
        synapse.annotations().get(&self.key()) == Some(&self.secret)
    }

    /// The server-side apply patch: the Synapse's identity and, when `announced`, the
    /// annotation. Without it, applying under the same field manager removes the annotation.
    pub(super) fn patch(
        &self,
        synapse: &str,
        namespace: &str,
        announced: bool,
    ) -> serde_json::Value {
        let mut metadata = json!({"name": synapse, "namespace": namespace});
        if announced {
            metadata["annotations"] = json!({ self.key(): self.secret });
        }
        json!({
            "apiVersion": Synapse::api_version(&()),
            "kind": Synapse::kind(&()),
            "metadata": metadata,
        })
    }

    /// Announces the registration on `synapse` unless it is already there (a steady state
    /// writes nothing). Returns whether it wrote.
    pub async fn announce(&self, api: &Api<Synapse>, synapse: &Synapse) -> Result<bool, Error> {
        if self.is_on(synapse) {
            return Ok(false);
        }
        let name = synapse.name_any();
        let namespace = synapse.namespace().unwrap_or_default();
        // The Synapse exists (it was just read), and a partial object without its spec could
        // not create one if it vanished meanwhile: the apiserver refuses it as invalid.
        api.patch(
            &name,
            &PatchParams::apply(&self.field_manager).force(),
            &Patch::Apply(self.patch(&name, &namespace, true)),
        )
        .await
        .map_err(api_error(format!(
            "write the app-service annotation {} on Synapse {namespace}/{name}",
            self.key()
        )))?;
        Ok(true)
    }

    /// Withdraws the registration from the Synapse `name`, if that Synapse exists and still
    /// carries the annotation. Returns whether it wrote.
    pub async fn withdraw(&self, api: &Api<Synapse>, name: &str) -> Result<bool, Error> {
        let namespace = api.namespace().unwrap_or_default().to_owned();
        let synapse = api
            .get_opt(name)
            .await
            .map_err(api_error(format!("read Synapse {namespace}/{name}")))?;
        let Some(synapse) = synapse else {
            return Ok(false);
        };
        if !synapse.annotations().contains_key(&self.key()) {
            return Ok(false);
        }
        let result = api
            .patch(
                name,
                &PatchParams::apply(&self.field_manager).force(),
                &Patch::Apply(self.patch(name, &namespace, false)),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            // Deleted since it was read: the annotation went with it.
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
            Err(error) => Err(api_error(format!(
                "remove the app-service annotation {} from Synapse {namespace}/{name}",
                self.key()
            ))(error)),
        }
    }
}

/// Whether the bridge carries the handshake's finalizer.
pub fn has_finalizer<B: Bridge>(bridge: &B) -> bool {
    bridge.finalizers().iter().any(|f| f == BRIDGE_FINALIZER)
}

/// The server-side apply patch owning (or, with `keep` false, releasing) the finalizer.
pub(super) fn finalizer_patch<B: Bridge>(bridge: &B, keep: bool) -> serde_json::Value {
    let mut metadata = json!({
        "name": bridge.name_any(),
        "namespace": bridge.namespace(),
    });
    if keep {
        metadata["finalizers"] = json!([BRIDGE_FINALIZER]);
    }
    json!({
        "apiVersion": B::api_version(&()),
        "kind": B::kind(&()),
        "metadata": metadata,
    })
}

/// Adds the finalizer, before the first announcement, so that the bridge cannot go away without
/// withdrawing it. `metadata.finalizers` is a set: the apply under `field_manager` adds this one
/// entry and leaves the others alone. Returns the bridge's version the patch made, if it made one.
pub async fn add_finalizer<B: Bridge>(
    api: &Api<B>,
    bridge: &B,
    field_manager: &str,
) -> Result<Option<String>, Error> {
    if has_finalizer(bridge) {
        return Ok(None);
    }
    let patched = api
        .patch(
            &bridge.name_any(),
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(finalizer_patch(bridge, true)),
        )
        .await
        .map_err(api_error(format!(
            "add the finalizer of {} {}/{}",
            B::KIND,
            bridge.namespace().unwrap_or_default(),
            bridge.name_any()
        )))?;
    Ok(patched.meta().resource_version.clone())
}

/// Removes the finalizer once the announcement is withdrawn.
pub async fn remove_finalizer<B: Bridge>(
    api: &Api<B>,
    bridge: &B,
    field_manager: &str,
) -> Result<(), Error> {
    let name = bridge.name_any();
    let action = format!(
        "remove the finalizer of {} {}/{name}",
        B::KIND,
        bridge.namespace().unwrap_or_default()
    );
    let error = |source| api_error(action.clone())(source);
    // The cached object may be stale: a bridge whose finalizer is already gone may be gone
    // itself, and an apply to a missing object would try to create it.
    let still_held = |current: Option<B>| current.is_some_and(|b| has_finalizer(&b));
    if !has_finalizer(bridge) || !still_held(api.get_opt(&name).await.map_err(error)?) {
        return Ok(());
    }
    let result = api
        .patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(finalizer_patch(bridge, false)),
        )
        .await;
    match result {
        Ok(_) => Ok(()),
        // Released and deleted by someone else meanwhile: the apply was refused as a create.
        Err(source) if !still_held(api.get_opt(&name).await.map_err(error)?) => {
            tracing::debug!(%source, name, "the finalizer was already released");
            Ok(())
        }
        Err(source) => Err(error(source)),
    }
}
