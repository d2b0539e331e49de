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

/// Applies `status` to the status subresource of the `K` named `name`, as `field_manager`.
pub async fn apply_status<K, S>(
    api: &Api<K>,
    field_manager: &str,
    name: &str,
    status: &S,
) -> Result<K, ApplyError>
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
    api.patch_status(
        name,
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|error| ApplyError::Api {
        kind,
        name: name.to_owned(),
        error,
    })
}
