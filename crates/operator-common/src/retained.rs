//! Objects that outlive their owner by default (`deletionPolicy: Retain`): generated Secrets, data
//! volumes, database Clusters. The one policy for them: created once (never replaced, so a stale
//! read can never swap generated secrets or a volume for new ones), afterwards only their labels
//! and owner reference follow the deletion policy, and a generated Secret only gets back the keys
//! that went missing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt as _;

use crate::apply::{Applicable, Applier};
use crate::error::Error;
use crate::subject::Subject;

/// Creates `desired` when `existing` (the cached metadata) says it does not exist yet;
/// otherwise brings only its labels and owner reference in line with `desired`.
pub async fn ensure<K: Applicable>(
    applier: &Applier,
    subject: &Subject,
    desired: &K,
    existing: Option<&ObjectMeta>,
) -> Result<(), Error> {
    match existing {
        None => applier.create(desired).await.map(drop),
        Some(existing) => match metadata_patch(subject, desired.meta(), existing) {
            None => Ok(()),
            Some(patch) => applier
                .merge::<K>(
                    &subject.namespace,
                    &desired.name_any(),
                    &patch,
                    "set the labels and owner",
                )
                .await
                .map(drop),
        },
    }
}

/// A Secret of generated values (`meta` names it), created once with `generate(&{})`;
/// afterwards `generate(current)` may only add the keys that went missing, which are written
/// guarded by the version that was read. Returns the Secret's data.
pub async fn ensure_generated_secret<E>(
    applier: &Applier,
    subject: &Subject,
    meta: ObjectMeta,
    existing: Option<&Secret>,
    generate: impl Fn(&BTreeMap<String, Vec<u8>>) -> Result<BTreeMap<String, Vec<u8>>, E>,
) -> Result<BTreeMap<String, Vec<u8>>, Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let name = meta.name.clone().unwrap_or_default();
    let generated = |current: &BTreeMap<String, Vec<u8>>| {
        generate(current)
            .map_err(|e| Error::transient(format!("generate the keys of Secret {name}"), e))
    };
    let Some(existing) = existing else {
        let data = generated(&BTreeMap::new())?;
        let secret = Secret {
            metadata: meta,
            data: Some(bytes(&data)),
            ..Secret::default()
        };
        applier.create(&secret).await?;
        return Ok(data);
    };
    let current: BTreeMap<String, Vec<u8>> = existing
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    let complete = generated(&current)?;
    // Someone removed or emptied a key: add back only those.
    let missing: BTreeMap<String, Vec<u8>> = complete
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !missing.is_empty() {
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": existing.metadata.resource_version},
            "data": bytes(&missing),
        });
        applier
            .merge::<Secret>(&subject.namespace, &name, &patch, "add the missing keys")
            .await?;
    }
    let desired = Secret {
        metadata: meta,
        ..Secret::default()
    };
    ensure(applier, subject, &desired, Some(&existing.metadata)).await?;
    Ok(complete)
}

fn bytes(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, ByteString> {
    data.iter()
        .map(|(k, v)| (k.clone(), ByteString(v.clone())))
        .collect()
}

/// The merge patch giving an existing object of `subject` the labels and owner of `desired`.
pub fn metadata_patch(
    subject: &Subject,
    desired: &ObjectMeta,
    existing: &ObjectMeta,
) -> Option<serde_json::Value> {
    let owner = subject.owner();
    retained_metadata_patch(desired, existing, &owner.kind, &owner.api_version)
}

/// The JSON merge patch that gives an existing retained object (generated Secret, data PVC,
/// database Cluster) the labels and the owner reference (of kind `owner_kind`) of `desired`, or `None` when it has them.
///
/// A merge patch replaces the whole owner list, so switching `deletionPolicy` from Delete to
/// Retain really removes the owner reference, whichever request wrote it (the object was
/// created by a plain create, so server-side apply does not own that reference and could not
/// remove it). Owner references of other kinds are kept; the resourceVersion guards against a
/// concurrent change.
pub fn retained_metadata_patch(
    desired: &ObjectMeta,
    existing: &ObjectMeta,
    owner_kind: &str,
    owner_api_version: &str,
) -> Option<serde_json::Value> {
    let is_ours = |o: &&OwnerReference| o.kind == owner_kind && o.api_version == owner_api_version;
    let current_owners = existing.owner_references.clone().unwrap_or_default();
    let owners: Vec<_> = current_owners
        .iter()
        .filter(|o| !is_ours(o))
        .chain(desired.owner_references.iter().flatten().filter(is_ours))
        .cloned()
        .collect();
    let current_labels = existing.labels.clone().unwrap_or_default();
    let labels = desired.labels.clone().unwrap_or_default();
    let labels_set = labels.iter().all(|(k, v)| current_labels.get(k) == Some(v));
    if labels_set && owners == current_owners {
        return None;
    }
    Some(serde_json::json!({
        "metadata": {
            "resourceVersion": existing.resource_version,
            "labels": labels,
            "ownerReferences": if owners.is_empty() { None } else { Some(owners) },
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_for(desired: &ObjectMeta, existing: &ObjectMeta) -> Option<serde_json::Value> {
        retained_metadata_patch(desired, existing, "Synapse", "synapse.opdev.io/v1alpha1")
    }

    fn owner(kind: &str, api_version: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "hs".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    fn synapse_owner(uid: &str) -> OwnerReference {
        owner("Synapse", "synapse.opdev.io/v1alpha1", uid)
    }

    fn meta(owners: Vec<OwnerReference>, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            resource_version: Some("7".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            owner_references: Some(owners),
            ..ObjectMeta::default()
        }
    }

    const LABELS: &[(&str, &str)] = &[("app.kubernetes.io/instance", "hs")];

    #[test]
    fn retained_metadata_in_place_needs_no_write() {
        // The API server omits an empty owner list; an empty desired list means the same.
        let existing = ObjectMeta {
            owner_references: None,
            ..meta(
                vec![],
                &[("app.kubernetes.io/instance", "hs"), ("other", "x")],
            )
        };
        assert_eq!(patch_for(&meta(vec![], LABELS), &existing), None);
        let owned = meta(vec![synapse_owner("u1")], LABELS);
        assert_eq!(patch_for(&owned, &owned), None);
    }

    #[test]
    fn switching_to_retain_removes_the_synapse_owner_and_keeps_others() {
        let foreign = owner("Backup", "example.org/v1", "b1");
        let existing = meta(vec![synapse_owner("u1"), foreign.clone()], LABELS);
        let patch = patch_for(&meta(vec![], LABELS), &existing).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![foreign]).unwrap()
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let only_ours = meta(vec![synapse_owner("u1")], LABELS);
        let patch = patch_for(&meta(vec![], LABELS), &only_ours).unwrap();
        assert!(patch["metadata"]["ownerReferences"].is_null());
        assert!(
            patch["metadata"]
                .as_object()
                .unwrap()
                .contains_key("ownerReferences"),
            "null deletes the list in a merge patch"
        );
    }

    #[test]
    fn switching_to_delete_or_a_new_synapse_sets_its_owner_and_labels() {
        let desired = meta(vec![synapse_owner("u2")], LABELS);
        let patch = patch_for(&desired, &meta(vec![], &[])).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![synapse_owner("u2")]).unwrap()
        );
        assert_eq!(
            patch["metadata"]["labels"]["app.kubernetes.io/instance"],
            "hs"
        );
        // A reference to a former Synapse of the same name is replaced.
        let patch = patch_for(&desired, &meta(vec![synapse_owner("u1")], LABELS)).unwrap();
        assert_eq!(
            patch["metadata"]["ownerReferences"],
            serde_json::to_value(vec![synapse_owner("u2")]).unwrap()
        );
    }
}
