//! The coordination contract between the operators (DESIGN section 5), defined once.
//!
//! The operators never call each other. A bridge operator keeps its bridge's app-service
//! registration in a Secret it owns and announces it with an annotation on the Synapse object;
//! the synapse-operator validates each announced registration, mounts the accepted ones and
//! publishes the outcome in `Synapse.status.appServices`. Bridges read the server name and the
//! client URL only from `Synapse.status`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Key, in the registration Secret, of the app-service registration file (YAML, as Synapse reads
/// it from `app_service_config_files`).
pub const REGISTRATION_SECRET_KEY: &str = "registration.yaml";

/// Finalizer a bridge operator puts on its bridge object so that, on deletion, it removes its
/// app-service annotation from the Synapse before the bridge goes away.
pub const BRIDGE_FINALIZER: &str = "synapse.opdev.io/appservice-registration";

/// Suffix of the annotation-key prefix; the full prefix is `<bridge kind>.` followed by it.
pub const APP_SERVICE_ANNOTATION_DOMAIN: &str = "appservice.synapse.opdev.io";

/// Label on a registration Secret naming the Synapse it is announced to, so the synapse-operator
/// can watch exactly those Secrets.
pub const LABEL_REGISTERED_WITH: &str = "synapse.opdev.io/synapse";

/// Longest name part of a qualified annotation key (Kubernetes limit).
const MAX_NAME_PART: usize = 63;

/// The standard `app.kubernetes.io` label keys every operator sets on the objects it creates.
pub mod labels {
    /// The application's name, e.g. `synapse` or `heisenbridge`.
    pub const NAME: &str = "app.kubernetes.io/name";
    /// The instance: the name of the custom resource the object belongs to.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// The object's role within the application, e.g. `homeserver` or `registration`.
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// The operator that manages the object (its field manager name).
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The higher-level application: always [`PART_OF_VALUE`].
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    /// Value of [`PART_OF`] on everything the operators create.
    pub const PART_OF_VALUE: &str = "matrix";
}

/// The bridge kinds that announce app services to a Synapse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BridgeKind {
    /// `Heisenbridge` (IRC).
    Heisenbridge,
    /// `MautrixSignal` (Signal).
    MautrixSignal,
}

impl BridgeKind {
    /// Every bridge kind.
    pub const ALL: [BridgeKind; 2] = [BridgeKind::Heisenbridge, BridgeKind::MautrixSignal];

    /// The Kubernetes kind, e.g. `MautrixSignal`.
    pub fn kind(self) -> &'static str {
        match self {
            BridgeKind::Heisenbridge => "Heisenbridge",
            BridgeKind::MautrixSignal => "MautrixSignal",
        }
    }

    /// The kind in lower case, as used in annotation keys: `heisenbridge`, `mautrixsignal`.
    pub fn label(self) -> &'static str {
        match self {
            BridgeKind::Heisenbridge => "heisenbridge",
            BridgeKind::MautrixSignal => "mautrixsignal",
        }
    }

    /// Looks a bridge kind up by its Kubernetes kind.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.kind() == kind)
    }
}

impl fmt::Display for BridgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// A bridge name that cannot be written into an app-service annotation key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnotationKeyError {
    /// The name is longer than an annotation key's name part allows.
    #[error(
        "bridge name {0:?} is longer than 63 characters, so it cannot name an app-service \
         annotation on the Synapse: use a shorter name"
    )]
    NameTooLong(String),
    /// The name has characters an annotation key cannot hold (object names never do).
    #[error("bridge name {0:?} is not a valid Kubernetes object name")]
    InvalidName(String),
}

/// The annotation on a Synapse object through which one bridge announces its registration.
///
/// Key: `<bridge kind in lower case>.appservice.synapse.opdev.io/<bridge name>`, for example
/// `heisenbridge.appservice.synapse.opdev.io/irc`. The kind sits in the key's prefix (a DNS
/// subdomain of up to 253 characters) so that the name part holds the whole bridge name: any
/// bridge name of up to 63 characters fits. The bridge lives in the Synapse's namespace.
///
/// Value: the name of the Secret, in the Synapse's namespace, that holds the registration under
/// [`REGISTRATION_SECRET_KEY`].
///
/// Each bridge operator writes only its own annotation, with server-side apply under its own
/// field manager, and removes it when the bridge is deleted (see [`BRIDGE_FINALIZER`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppServiceAnnotation {
    bridge_kind: BridgeKind,
    bridge_name: String,
}

impl AppServiceAnnotation {
    /// The annotation for the bridge `bridge_name` of kind `bridge_kind`.
    pub fn new(bridge_kind: BridgeKind, bridge_name: &str) -> Result<Self, AnnotationKeyError> {
        if bridge_name.len() > MAX_NAME_PART {
            return Err(AnnotationKeyError::NameTooLong(bridge_name.to_owned()));
        }
        if !is_qualified_name_part(bridge_name) {
            return Err(AnnotationKeyError::InvalidName(bridge_name.to_owned()));
        }
        Ok(Self {
            bridge_kind,
            bridge_name: bridge_name.to_owned(),
        })
    }

    /// Reads an annotation key; `None` when the key is not an app-service announcement.
    pub fn parse(key: &str) -> Option<Self> {
        let (prefix, name) = key.split_once('/')?;
        let kind = prefix
            .strip_suffix(APP_SERVICE_ANNOTATION_DOMAIN)?
            .strip_suffix('.')?;
        let bridge_kind = BridgeKind::ALL.into_iter().find(|k| k.label() == kind)?;
        Self::new(bridge_kind, name).ok()
    }

    /// The annotation key.
    pub fn key(&self) -> String {
        format!(
            "{}.{APP_SERVICE_ANNOTATION_DOMAIN}/{}",
            self.bridge_kind.label(),
            self.bridge_name
        )
    }

    /// The kind of the announcing bridge.
    pub fn bridge_kind(&self) -> BridgeKind {
        self.bridge_kind
    }

    /// The name of the announcing bridge object.
    pub fn bridge_name(&self) -> &str {
        &self.bridge_name
    }
}

/// Whether `s` is a valid name part of a qualified key: alphanumerics, `-`, `_`, `.`, starting
/// and ending with an alphanumeric.
fn is_qualified_name_part(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// The content hash published in [`AppServiceStatus::content_hash`]: `sha256:` and the
/// lowercase hex SHA-256 of the registration file's bytes. A bridge compares it with the hash of
/// its own current registration to know whether that registration is live.
pub fn registration_content_hash(registration: &[u8]) -> String {
    let digest = Sha256::digest(registration);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Outcome of the synapse-operator's validation of one announced registration.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum AppServiceState {
    /// Valid and mounted: Synapse loads it (once its pod runs the current configuration).
    Registered,
    /// Invalid or conflicting with another registration: not mounted; `reason` says why.
    Rejected,
}

/// The object that announced an app service.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AppServiceSource {
    /// Kind of the announcing object, e.g. Heisenbridge.
    pub kind: String,
    /// Namespace of the announcing object.
    pub namespace: String,
    /// Name of the announcing object.
    pub name: String,
}

/// One app-service registration announced to a Synapse and what became of it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppServiceStatus {
    /// The bridge object that announced the registration.
    pub source: AppServiceSource,

    /// The registration's `id`, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,

    /// registered (valid and mounted) or rejected (not mounted).
    pub state: AppServiceState,

    /// Hash of the registration file this entry describes: `sha256:` followed by the lowercase
    /// hex SHA-256 of the file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,

    /// Why the registration was rejected, or a note on its registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_key_round_trips() {
        let a = AppServiceAnnotation::new(BridgeKind::Heisenbridge, "irc").unwrap();
        assert_eq!(a.key(), "heisenbridge.appservice.synapse.opdev.io/irc");
        assert_eq!(AppServiceAnnotation::parse(&a.key()), Some(a));

        let s = AppServiceAnnotation::new(BridgeKind::MautrixSignal, "signal.bridge-1").unwrap();
        assert_eq!(
            s.key(),
            "mautrixsignal.appservice.synapse.opdev.io/signal.bridge-1"
        );
        assert_eq!(AppServiceAnnotation::parse(&s.key()), Some(s));
    }

    #[test]
    fn any_name_up_to_63_characters_fits() {
        let name = "a".repeat(63);
        let a = AppServiceAnnotation::new(BridgeKind::MautrixSignal, &name).unwrap();
        let key = a.key();
        let (prefix, part) = key.split_once('/').unwrap();
        assert_eq!(part.len(), 63);
        assert!(prefix.len() <= 253);
        assert_eq!(
            AppServiceAnnotation::new(BridgeKind::MautrixSignal, &"a".repeat(64)),
            Err(AnnotationKeyError::NameTooLong("a".repeat(64)))
        );
    }

    #[test]
    fn foreign_or_malformed_keys_are_not_announcements() {
        for key in [
            "kubectl.kubernetes.io/last-applied-configuration",
            "appservice.synapse.opdev.io/irc",
            "telegram.appservice.synapse.opdev.io/tg",
            "heisenbridge.appservice.synapse.opdev.io/",
            "heisenbridge.appservice.synapse.opdev.io/-bad",
            "xheisenbridge.appservice.synapse.opdev.io/irc",
            "no-slash",
        ] {
            assert_eq!(AppServiceAnnotation::parse(key), None, "{key}");
        }
    }

    #[test]
    fn bridge_kinds_map_both_ways() {
        for kind in BridgeKind::ALL {
            assert_eq!(BridgeKind::from_kind(kind.kind()), Some(kind));
        }
        assert_eq!(BridgeKind::from_kind("Synapse"), None);
    }

    #[test]
    fn content_hash_is_sha256_hex() {
        assert_eq!(
            registration_content_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
