//! The standard labels on every object an operator creates.

use std::collections::BTreeMap;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use synapse_types::contract::labels;

/// The object of kind `K` that `label` on `object` names, in `object`'s namespace: how retained
/// objects (no owner reference) and other operators' objects are mapped back to a custom resource.
pub fn named_by_label<K>(object: &impl Resource, label: &str) -> Option<ObjectRef<K>>
where
    K: Resource<DynamicType = ()>,
{
    let meta = object.meta();
    let name = meta.labels.as_ref()?.get(label)?;
    Some(ObjectRef::new(name).within(meta.namespace.as_deref()?))
}

/// The object of kind `K` an object of ours belongs to (its instance label), if `field_manager`
/// manages it.
pub fn owning_instance<K>(object: &impl Resource, field_manager: &str) -> Option<ObjectRef<K>>
where
    K: Resource<DynamicType = ()>,
{
    let managed_by = object.meta().labels.as_ref()?.get(labels::MANAGED_BY)?;
    if managed_by != field_manager {
        return None;
    }
    named_by_label(object, labels::INSTANCE)
}

/// Who an object belongs to, for its `app.kubernetes.io` labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppLabels<'a> {
    /// The application, e.g. `synapse`, `heisenbridge`, `mautrix-signal`.
    pub name: &'a str,
    /// The custom resource the object belongs to.
    pub instance: &'a str,
    /// The object's role, e.g. `homeserver`, `registration`, `database`.
    pub component: &'a str,
    /// The operator managing the object.
    pub managed_by: &'a str,
}

impl AppLabels<'_> {
    /// The labels that select this component's pods; stable for the component's lifetime, so
    /// fit for immutable selectors.
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::NAME.to_owned(), self.name.to_owned()),
            (labels::INSTANCE.to_owned(), self.instance.to_owned()),
            (labels::COMPONENT.to_owned(), self.component.to_owned()),
        ])
    }

    /// All standard labels: the selector ones plus `managed-by` and `part-of`.
    pub fn all(&self) -> BTreeMap<String, String> {
        let mut all = self.selector();
        all.insert(labels::MANAGED_BY.to_owned(), self.managed_by.to_owned());
        all.insert(labels::PART_OF.to_owned(), labels::PART_OF_VALUE.to_owned());
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_labels() {
        let labels = AppLabels {
            name: "synapse",
            instance: "my-server",
            component: "homeserver",
            managed_by: "synapse-operator",
        };
        let all = labels.all();
        assert_eq!(all["app.kubernetes.io/name"], "synapse");
        assert_eq!(all["app.kubernetes.io/instance"], "my-server");
        assert_eq!(all["app.kubernetes.io/component"], "homeserver");
        assert_eq!(all["app.kubernetes.io/managed-by"], "synapse-operator");
        assert_eq!(all["app.kubernetes.io/part-of"], "matrix");
        assert_eq!(all.len(), 5);
        assert!(labels.selector().iter().all(|(k, v)| all[k] == *v));
        assert_eq!(labels.selector().len(), 3);
    }
}
