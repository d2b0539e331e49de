//! The connection Secret: read into a [`Connection`], and mapped back to the objects it matters
//! to.

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt as _};
use sha2::{Digest, Sha256};

use super::connection::{Connection, Problem, REQUIRED_KEYS, SSL_MODES, Source};

/// The objects whose database Secret `secret` is (`source_of` reads an object's spec): a
/// user's database Secret or CloudNativePG's carries no label of ours, so it is found by name.
pub fn secret_triggers<K>(
    objects: &Store<K>,
    secret: &impl Resource,
    source_of: impl Fn(&K) -> Option<Source>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let (Some(name), Some(namespace)) = (secret.meta().name.as_deref(), secret.namespace()) else {
        return Vec::new();
    };
    objects
        .state()
        .iter()
        .filter(|object| object.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|object| source_of(object).is_some_and(|s| s.secret_name() == name))
        .map(|object| ObjectRef::from_obj(object.as_ref()))
        .collect()
}

/// Reads a connection Secret (`None`: it does not exist). `field` names where the Secret comes
/// from, for the messages.
pub fn read_secret(
    name: &str,
    secret: Option<&Secret>,
    field: &str,
) -> Result<Connection, Problem> {
    let Some(secret) = secret else {
        return Err(Problem::new(
            "SecretNotFound",
            format!(
                "Secret {name} ({field}) does not exist in this namespace (a database Secret \
                 is always read from the object's own): create it with the keys {}",
                REQUIRED_KEYS.join(", ")
            ),
        ));
    };
    let data = secret.data.clone().unwrap_or_default();
    let missing: Vec<&str> = REQUIRED_KEYS
        .into_iter()
        .filter(|key| data.get(*key).is_none_or(|v| v.0.is_empty()))
        .collect();
    if !missing.is_empty() {
        return Err(Problem::new(
            "SecretKeyMissing",
            format!(
                "Secret {name} ({field}) lacks the key{} {}: a connection Secret needs {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                REQUIRED_KEYS.join(", ")
            ),
        ));
    }
    let text = |key: &str| -> Result<String, Problem> {
        String::from_utf8(data[key].0.clone())
            .map(|v| v.trim().to_owned())
            .map_err(|_| {
                Problem::new(
                    "SecretInvalid",
                    format!("Secret {name} ({field}): the value of {key} is not UTF-8 text"),
                )
            })
    };
    let port_text = text("port")?;
    let port = port_text
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            Problem::new(
                "SecretInvalid",
                format!("Secret {name} ({field}): port {port_text:?} is not a TCP port number"),
            )
        })?;
    let sslmode = match data.get("sslmode").filter(|v| !v.0.is_empty()) {
        None => None,
        Some(_) => {
            let mode = text("sslmode")?;
            if !SSL_MODES.contains(&mode.as_str()) {
                return Err(Problem::new(
                    "SecretInvalid",
                    format!(
                        "Secret {name} ({field}): sslmode {mode:?} is not one of {}",
                        SSL_MODES.join(", ")
                    ),
                ));
            }
            Some(mode)
        }
    };
    let host = text("host")?;
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(Problem::new(
            "SecretInvalid",
            format!("Secret {name} ({field}): host {host:?} is not a host name or address"),
        ));
    }
    Ok(Connection {
        secret: name.to_owned(),
        host,
        port,
        dbname: text("dbname")?,
        username: text("username")?,
        sslmode,
        password_fingerprint: Sha256::digest(&data["password"].0).into(),
    })
}
