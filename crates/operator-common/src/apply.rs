//! Server-side apply: the one way the operators write objects and statuses.

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The object to apply has no name.
    #[error("cannot apply a {kind} without a name")]
    MissingName {
        /// Kind of the object.
        kind: String,
    },
    /// The API server refused the apply.
    #[error("cannot apply {kind} {name}: {error}")]
    Api {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The API server's answer.
        #[source]
        error: kube::Error,
    },
}

/// Applies `object` as `field_manager`, taking over fields another manager set (the operator owns
/// what it applies). Returns the object as stored.
pub async fn apply<K>(api: &Api<K>, field_manager: &str, object: &K) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let kind = K::kind(&()).into_owned();
    let name = object
        .meta()
        .name
        .clone()
        .ok_or_else(|| ApplyError::MissingName { kind: kind.clone() })?;
    api.patch(
        &name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|error| ApplyError::Api { kind, name, error })
}

/// Applies `status` to the status subresource of the `K` named `name`, as `field_manager`;
/// `None` when the object is gone (deleted while it was reconciled).
pub async fn apply_status<K, S>(
    api: &Api<K>,
    field_manager: &str,
    name: &str,
    status: &S,
) -> Result<Option<K>, ApplyError>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
    S: Serialize,
{
    let kind = K::kind(&()).into_owned();
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "status": status,
    });
    match api
        .patch_status(
            name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(object) => Ok(Some(object)),
        // Deleted while it was being reconciled: there is nothing left to report on.
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
        Err(error) => Err(ApplyError::Api {
            kind,
            name: name.to_owned(),
            error,
        }),
    }
}

/// Whether `existing` already holds everything `desired` sets, so applying `desired` would change
/// nothing: every field of `desired` is present in `existing` with the same value (fields the API
/// server defaulted are ignored), and lists have the same length and matching items in order.
/// The operators apply only when this is false, so a steady-state reconcile writes nothing. A
/// map key the operator stops setting stays until the next apply that changes something else.
pub fn is_applied<K: Serialize>(desired: &K, existing: &K) -> bool {
    match (
        serde_json::to_value(desired),
        serde_json::to_value(existing),
    ) {
        (Ok(desired), Ok(existing)) => is_subset(&desired, &existing),
        _ => false,
    }
}

fn is_subset(desired: &serde_json::Value, existing: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, existing) {
        (Value::Object(d), Value::Object(e)) => d
            .iter()
            .all(|(key, value)| e.get(key).is_some_and(|found| is_subset(value, found))),
        (Value::Array(d), Value::Array(e)) => {
            d.len() == e.len() && d.iter().zip(e).all(|(d, e)| is_subset(d, e))
        }
        (d, e) => d == e,
    }
}

/// Applies `desired` unless `existing` (the cached object) already matches it; returns the
/// object as stored.
pub async fn apply_if_changed<K>(
    api: &Api<K>,
    field_manager: &str,
    desired: &K,
    existing: Option<&K>,
) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    match existing {
        Some(existing) if is_applied(desired, existing) => Ok(existing.clone()),
        _ => apply(api, field_manager, desired).await,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::is_subset;

    #[test]
    fn defaulted_fields_do_not_count_but_changes_and_list_lengths_do() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 8008}]}});
        let existing = json!({"spec": {"replicas": 1, "paused": false,
            "ports": [{"port": 8008, "protocol": "TCP"}]}, "status": {}});
        assert!(is_subset(&desired, &existing));
        let changed = json!({"spec": {"replicas": 2, "ports": [{"port": 8008}]}});
        assert!(!is_subset(&changed, &existing));
        let more = json!({"spec": {"ports": [{"port": 8008}, {"port": 9000}]}});
        assert!(!is_subset(&more, &existing));
        let fewer = json!({"spec": {"ports": []}});
        assert!(!is_subset(&fewer, &existing));
        assert!(!is_subset(&json!({"new": 1}), &existing));
    }
}
