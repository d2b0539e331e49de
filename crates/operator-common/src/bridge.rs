//! The bridge side of the app-service handshake (DESIGN section 5), shared by the bridge
//! operators: which Synapse a bridge belongs to, announcing and withdrawing its registration on
//! that Synapse, the finalizer that guarantees the withdrawal, and reading from `Synapse.status`
//! whether the registration is live.
//!
//! The keys and shapes of the contract itself live in [`synapse_types::contract`]; this module
//! is how a bridge operator acts on them.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use synapse_types::contract::{
    AnnotationKeyError, AppServiceAnnotation, AppServiceSource, AppServiceState, BRIDGE_FINALIZER,
    BridgeKind,
};
use synapse_types::{
    CONDITION_READY, ConfigMapReference, Heisenbridge, MautrixSignal, Synapse, SynapseReference,
};

use crate::conditions::is_condition_true;
pub use crate::rollout::{Rollout, rollout};

/// A bridge kind: an object that registers one app service with one Synapse of its namespace.
pub trait Bridge:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Which bridge kind this is, for the annotation key and the app-service source.
    const KIND: BridgeKind;

    /// The Synapse the bridge registers with (`spec.synapse`).
    fn synapse_reference(&self) -> &SynapseReference;

    /// The user's input ConfigMap (`spec.configMap`), if any.
    fn config_map_reference(&self) -> Option<&ConfigMapReference>;
}

impl Bridge for Heisenbridge {
    const KIND: BridgeKind = BridgeKind::Heisenbridge;

    fn synapse_reference(&self) -> &SynapseReference {
        &self.spec.synapse
    }

    fn config_map_reference(&self) -> Option<&ConfigMapReference> {
        self.spec.config_map.as_ref()
    }
}

impl Bridge for MautrixSignal {
    const KIND: BridgeKind = BridgeKind::MautrixSignal;

    fn synapse_reference(&self) -> &SynapseReference {
        &self.spec.synapse
    }

    fn config_map_reference(&self) -> Option<&ConfigMapReference> {
        self.spec.config_map.as_ref()
    }
}

/// Condition reasons of the handshake, shared by the bridge operators.
pub mod reasons {
    /// The bridge's registration is live on a ready Synapse.
    pub const REGISTERED: &str = "Registered";
    /// The Synapse named by `spec.synapse` does not exist.
    pub const SYNAPSE_NOT_FOUND: &str = "SynapseNotFound";
    /// The Synapse exists but is not ready, or has not published what the bridge needs yet.
    pub const SYNAPSE_NOT_READY: &str = "SynapseNotReady";
    /// The Synapse has not taken up the bridge's current registration yet.
    pub const REGISTRATION_PENDING: &str = "RegistrationPending";
    /// The synapse-operator rejected the registration.
    pub const REGISTRATION_REJECTED: &str = "RegistrationRejected";
    /// `spec.synapse` names a Synapse in another namespace.
    pub const CROSS_NAMESPACE_SYNAPSE: &str = "CrossNamespaceSynapse";
}

/// `spec.synapse` names a Synapse in another namespace than the bridge's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "spec.synapse names Synapse {name} in namespace {namespace}, but cross-namespace Synapse \
     references are not supported: put the bridge in the Synapse's namespace ({namespace})"
)]
pub struct CrossNamespaceSynapse {
    /// The namespace the reference names.
    pub namespace: String,
    /// The Synapse name the reference names.
    pub name: String,
}

/// The name of the Synapse a bridge in `bridge_namespace` registers with. A reference to
/// another namespace is refused: the handshake (annotation, Secret, status) lives in one
/// namespace, and matching across namespaces by name was a defect of the original operator.
pub fn synapse_name<'a>(
    bridge_namespace: &str,
    reference: &'a SynapseReference,
) -> Result<&'a str, CrossNamespaceSynapse> {
    match reference.namespace.as_deref() {
        Some(namespace) if !namespace.is_empty() && namespace != bridge_namespace => {
            Err(CrossNamespaceSynapse {
                namespace: namespace.to_owned(),
                name: reference.name.clone(),
            })
        }
        _ => Ok(&reference.name),
    }
}

/// The bridges of `synapse`'s namespace whose `spec.synapse` names it: what a change of that
/// Synapse (appearing, its status, its deletion) must reconcile.
pub fn bridges_of_synapse<B: Bridge>(bridges: &Store<B>, synapse: &Synapse) -> Vec<ObjectRef<B>> {
    let (Some(name), Some(namespace)) = (synapse.metadata.name.as_deref(), synapse.namespace())
    else {
        return Vec::new();
    };
    bridges
        .state()
        .iter()
        .filter(|bridge| {
            bridge.namespace().as_deref() == Some(namespace.as_str())
                && synapse_name(&namespace, bridge.synapse_reference()) == Ok(name)
        })
        .map(|bridge| ObjectRef::from_obj(bridge.as_ref()))
        .collect()
}

/// The bridges whose `spec.configMap` names `config_map`.
pub fn bridges_of_config_map<B: Bridge>(
    bridges: &Store<B>,
    config_map: &ConfigMap,
) -> Vec<ObjectRef<B>> {
    let (Some(name), Some(namespace)) =
        (config_map.metadata.name.as_deref(), config_map.namespace())
    else {
        return Vec::new();
    };
    bridges
        .state()
        .iter()
        .filter(|bridge| {
            bridge.config_map_reference().is_some_and(|reference| {
                let wanted = reference
                    .namespace
                    .clone()
                    .filter(|ns| !ns.is_empty())
                    .or_else(|| bridge.namespace());
                reference.name == name && wanted.as_deref() == Some(namespace.as_str())
            })
        })
        .map(|bridge| ObjectRef::from_obj(bridge.as_ref()))
        .collect()
}

/// A handshake write failed; the reconciliation is retried.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The Synapse could not be read.
    #[error("cannot read Synapse {namespace}/{name}: {source}")]
    ReadSynapse {
        /// Namespace of the Synapse.
        namespace: String,
        /// Name of the Synapse.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The annotation could not be written or removed.
    #[error("cannot {action} the app-service annotation {key} on Synapse {synapse}: {source}")]
    Annotation {
        /// `write` or `remove`.
        action: &'static str,
        /// The annotation key.
        key: String,
        /// Name of the Synapse.
        synapse: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The bridge's finalizer could not be added or removed.
    #[error("cannot {action} the finalizer of {kind} {name}: {source}")]
    Finalizer {
        /// `add` or `remove`.
        action: &'static str,
        /// Kind of the bridge.
        kind: BridgeKind,
        /// Name of the bridge.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
}

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
    fn patch(&self, synapse: &str, namespace: &str, announced: bool) -> serde_json::Value {
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
    pub async fn announce(
        &self,
        api: &Api<Synapse>,
        synapse: &Synapse,
    ) -> Result<bool, BridgeError> {
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
        .map_err(|source| BridgeError::Annotation {
            action: "write",
            key: self.key(),
            synapse: name,
            source,
        })?;
        Ok(true)
    }

    /// Withdraws the registration from the Synapse `name`, if that Synapse exists and still
    /// carries the annotation. Returns whether it wrote.
    pub async fn withdraw(&self, api: &Api<Synapse>, name: &str) -> Result<bool, BridgeError> {
        let namespace = api_namespace(api);
        let synapse = api
            .get_opt(name)
            .await
            .map_err(|source| BridgeError::ReadSynapse {
                namespace: namespace.clone(),
                name: name.to_owned(),
                source,
            })?;
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
            Err(source) => Err(BridgeError::Annotation {
                action: "remove",
                key: self.key(),
                synapse: name.to_owned(),
                source,
            }),
        }
    }
}

/// The namespace an `Api<Synapse>` was made for; the handshake only uses namespaced ones.
fn api_namespace(api: &Api<Synapse>) -> String {
    api.namespace().unwrap_or_default().to_owned()
}

/// Whether the bridge carries the handshake's finalizer.
pub fn has_finalizer<B: Bridge>(bridge: &B) -> bool {
    bridge.finalizers().iter().any(|f| f == BRIDGE_FINALIZER)
}

/// The server-side apply patch owning (or, with `keep` false, releasing) the finalizer.
fn finalizer_patch<B: Bridge>(bridge: &B, keep: bool) -> serde_json::Value {
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
/// entry and leaves the others alone.
pub async fn add_finalizer<B: Bridge>(
    api: &Api<B>,
    bridge: &B,
    field_manager: &str,
) -> Result<(), BridgeError> {
    if has_finalizer(bridge) {
        return Ok(());
    }
    api.patch(
        &bridge.name_any(),
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(finalizer_patch(bridge, true)),
    )
    .await
    .map_err(|source| BridgeError::Finalizer {
        action: "add",
        kind: B::KIND,
        name: bridge.name_any(),
        source,
    })?;
    Ok(())
}

/// Removes the finalizer once the announcement is withdrawn.
pub async fn remove_finalizer<B: Bridge>(
    api: &Api<B>,
    bridge: &B,
    field_manager: &str,
) -> Result<(), BridgeError> {
    let name = bridge.name_any();
    let error = |source| BridgeError::Finalizer {
        action: "remove",
        kind: B::KIND,
        name: name.clone(),
        source,
    };
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher;
    use synapse_types::contract::{AppServiceStatus, registration_content_hash};
    use synapse_types::synapse::SynapseStatus;

    use super::*;

    fn reference(name: &str, namespace: Option<&str>) -> SynapseReference {
        SynapseReference {
            name: name.into(),
            namespace: namespace.map(Into::into),
        }
    }

    #[test]
    fn only_same_namespace_synapses_are_accepted() {
        assert_eq!(synapse_name("ns", &reference("hs", None)), Ok("hs"));
        assert_eq!(synapse_name("ns", &reference("hs", Some(""))), Ok("hs"));
        assert_eq!(synapse_name("ns", &reference("hs", Some("ns"))), Ok("hs"));
        let err = synapse_name("ns", &reference("hs", Some("other"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("cross-namespace Synapse references are not supported"),
            "{err}"
        );
        assert!(err.to_string().contains("(other)"), "{err}");
    }

    fn bridge(
        namespace: &str,
        name: &str,
        synapse: SynapseReference,
        cm: Option<&str>,
    ) -> Heisenbridge {
        let mut bridge = Heisenbridge::new(
            name,
            synapse_types::HeisenbridgeSpec {
                config_map: cm.map(|n| ConfigMapReference {
                    name: n.into(),
                    namespace: None,
                }),
                verbose_level: 0,
                synapse,
                owner: None,
                image: None,
            },
        );
        bridge.metadata.namespace = Some(namespace.into());
        bridge
    }

    fn store_of(bridges: Vec<Heisenbridge>) -> Store<Heisenbridge> {
        let (reader, mut writer) = store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for b in bridges {
            writer.apply_watcher_event(&watcher::Event::InitApply(b));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        reader
    }

    fn names<B: Bridge>(refs: Vec<ObjectRef<B>>) -> Vec<String> {
        let mut names: Vec<_> = refs
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_synapse_maps_to_the_bridges_of_its_namespace_that_name_it() {
        let bridges = store_of(vec![
            bridge("a", "one", reference("hs", None), None),
            bridge("a", "two", reference("hs", Some("a")), None),
            bridge("a", "other", reference("hs2", None), None),
            bridge("b", "same-name", reference("hs", None), None),
            bridge("b", "cross", reference("hs", Some("a")), None),
        ]);
        let mut synapse = Synapse::new(
            "hs",
            serde_json::from_value(json!({
                "homeserver": {"values": {"serverName": "x", "reportStats": false}}
            }))
            .unwrap(),
        );
        synapse.metadata.namespace = Some("a".into());
        assert_eq!(
            names(bridges_of_synapse(&bridges, &synapse)),
            ["a/one", "a/two"]
        );
    }

    #[test]
    fn a_config_map_maps_to_the_bridges_naming_it() {
        let mut elsewhere = bridge("b", "elsewhere", reference("hs", None), Some("cfg"));
        elsewhere.spec.config_map.as_mut().unwrap().namespace = Some("a".into());
        let bridges = store_of(vec![
            bridge("a", "uses", reference("hs", None), Some("cfg")),
            bridge("a", "other", reference("hs", None), Some("cfg2")),
            bridge("a", "none", reference("hs", None), None),
            bridge("b", "same-name", reference("hs", None), Some("cfg")),
            elsewhere,
        ]);
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cfg".into()),
                namespace: Some("a".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        assert_eq!(
            names(bridges_of_config_map(&bridges, &cm)),
            ["a/uses", "b/elsewhere"]
        );
    }

    fn synapse_with(status: Option<SynapseStatus>, annotations: &[(&str, &str)]) -> Synapse {
        let mut synapse = Synapse::new(
            "hs",
            serde_json::from_value(json!({
                "homeserver": {"values": {"serverName": "x", "reportStats": false}}
            }))
            .unwrap(),
        );
        synapse.metadata.namespace = Some("ns".into());
        synapse.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        synapse.status = status;
        synapse
    }

    #[test]
    fn the_announcement_has_a_per_bridge_manager_and_removes_by_omission() {
        let a = Announcement::new(
            "heisenbridge-operator",
            BridgeKind::Heisenbridge,
            "irc",
            "irc-heisenbridge-registration",
        )
        .unwrap();
        assert_eq!(a.key(), "heisenbridge.appservice.synapse.opdev.io/irc");
        assert_eq!(a.field_manager(), "heisenbridge-operator/irc");
        assert_eq!(
            a.patch("hs", "ns", true),
            json!({
                "apiVersion": "synapse.opdev.io/v1alpha1",
                "kind": "Synapse",
                "metadata": {
                    "name": "hs",
                    "namespace": "ns",
                    "annotations": {
                        "heisenbridge.appservice.synapse.opdev.io/irc":
                            "irc-heisenbridge-registration"
                    },
                },
            })
        );
        assert_eq!(
            a.patch("hs", "ns", false)["metadata"],
            json!({"name": "hs", "namespace": "ns"})
        );

        let key = a.key();
        assert!(a.is_on(&synapse_with(
            None,
            &[(&key, "irc-heisenbridge-registration")]
        )));
        assert!(!a.is_on(&synapse_with(None, &[(&key, "another-secret")])));
        assert!(!a.is_on(&synapse_with(None, &[])));
    }

    #[test]
    fn finalizer_patch_owns_only_the_finalizer() {
        let b = bridge("ns", "irc", reference("hs", None), None);
        assert_eq!(
            finalizer_patch(&b, true),
            json!({
                "apiVersion": "synapse.opdev.io/v1alpha1",
                "kind": "Heisenbridge",
                "metadata": {
                    "name": "irc",
                    "namespace": "ns",
                    "finalizers": ["synapse.opdev.io/appservice-registration"],
                },
            })
        );
        assert!(
            finalizer_patch(&b, false)["metadata"]
                .get("finalizers")
                .is_none()
        );
        assert!(!has_finalizer(&b));
    }

    fn ready(status: bool) -> Condition {
        Condition {
            type_: "Ready".into(),
            status: if status { "True" } else { "False" }.into(),
            reason: "Test".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    fn source() -> AppServiceSource {
        AppServiceSource {
            kind: "Heisenbridge".into(),
            namespace: "ns".into(),
            name: "irc".into(),
        }
    }

    fn entry(state: AppServiceState, hash: &str, reason: Option<&str>) -> AppServiceStatus {
        AppServiceStatus {
            source: source(),
            id: Some("heisenbridge".into()),
            state,
            content_hash: Some(hash.into()),
            reason: reason.map(Into::into),
        }
    }

    fn status(ready_now: bool, app_services: Vec<AppServiceStatus>) -> SynapseStatus {
        SynapseStatus {
            conditions: vec![ready(ready_now)],
            app_services,
            ..SynapseStatus::default()
        }
    }

    fn reason_of(state: RegistrationState) -> &'static str {
        match state {
            RegistrationState::Live => reasons::REGISTERED,
            RegistrationState::NotLive { reason, .. } => reason,
        }
    }

    #[test]
    fn registered_only_when_the_current_registration_is_live_on_a_ready_synapse() {
        let hash = registration_content_hash(b"current");
        let old = registration_content_hash(b"old");
        let check = |status: Option<SynapseStatus>| {
            reason_of(registration_state(
                &synapse_with(status, &[]),
                &source(),
                &hash,
            ))
        };
        let registered = |h: &str| entry(AppServiceState::Registered, h, None);

        assert_eq!(
            check(Some(status(true, vec![registered(&hash)]))),
            reasons::REGISTERED
        );
        assert_eq!(check(None), reasons::SYNAPSE_NOT_READY);
        assert_eq!(
            check(Some(status(true, vec![]))),
            reasons::REGISTRATION_PENDING
        );
        assert_eq!(
            check(Some(status(true, vec![registered(&old)]))),
            reasons::REGISTRATION_PENDING
        );
        assert_eq!(
            check(Some(status(false, vec![registered(&hash)]))),
            reasons::SYNAPSE_NOT_READY
        );
        let mut elsewhere = registered(&hash);
        elsewhere.source.namespace = "other".into();
        assert_eq!(
            check(Some(status(true, vec![elsewhere]))),
            reasons::REGISTRATION_PENDING
        );

        let rejected = entry(
            AppServiceState::Rejected,
            &hash,
            Some("id heisenbridge is already used by Heisenbridge ns/first"),
        );
        let state = registration_state(
            &synapse_with(Some(status(true, vec![rejected])), &[]),
            &source(),
            &hash,
        );
        let RegistrationState::NotLive { reason, message } = state else {
            panic!("a rejected registration is not live");
        };
        assert_eq!(reason, reasons::REGISTRATION_REJECTED);
        assert!(
            message.contains("already used by Heisenbridge ns/first"),
            "{message}"
        );
    }
}
