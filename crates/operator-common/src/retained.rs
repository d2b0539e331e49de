//! Objects that outlive their owner by default (`deletionPolicy: Retain`): generated Secrets, data
//! volumes, database Clusters. They are created once without an owner; afterwards only their
//! labels and owner reference are brought in line with the policy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

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
