//! The objects an operator applied that its caches do not show yet. A reconciliation can start
//! before the watch of a child it just applied delivers that apply: the operator's own status
//! write, on another watch, often triggers the next reconciliation first. That one would find
//! the child missing or outdated in its cache and apply the same content again: a write that
//! changes nothing. So the applier remembers each apply (what it wrote, over which version of
//! the cached object) until the watch shows the child again, and does not repeat an identical
//! apply over a cache that still shows the version it wrote over.
//!
//! Only kinds whose watch tells this memory what it sees are remembered ([`Unseen::follow`]),
//! and only objects that watch holds (the applier checks the operator's label): an entry
//! nothing would ever clear would hold back a needed apply. Every event of an object clears its
//! entry (clearing only ever costs a repeated write), and a re-list clears its kind: a deletion
//! during a lost watch is seen by no event.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::{Arc, Mutex};

use kube::Resource;
use kube::runtime::watcher::Event;

/// Bounds the memory: more applies than that waiting for their watch cost repeated writes only.
const MAX_UNSEEN: usize = 10_000;

/// An object by its group, kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    kind: (String, String),
    namespace: String,
    name: String,
}

impl Key {
    /// The key of `object`.
    pub fn of<K: Resource<DynamicType = ()>>(object: &K) -> Self {
        let meta = object.meta();
        Self {
            kind: kind_of::<K>(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> (String, String) {
    (K::group(&()).into_owned(), K::kind(&()).into_owned())
}

/// The fingerprint of what an apply wrote.
pub fn fingerprint(content: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    content.to_string().hash(&mut hasher);
    hasher.finish()
}

/// An apply the cache does not show yet.
struct Write {
    content: u64,
    /// The `resourceVersion` of the object the cache showed when the apply was made; `None`
    /// when it showed none.
    over: Option<String>,
}

#[derive(Default)]
struct State {
    followed: HashSet<(String, String)>,
    writes: HashMap<Key, Write>,
}

/// The applies of one operator its caches do not show yet. Clones share the memory.
#[derive(Clone, Default)]
pub struct Unseen(Arc<Mutex<State>>);

impl Unseen {
    /// Follows a watch of `K`: the returned function is to be called with each of its events
    /// once the cache holds it.
    pub fn follow<K: Resource<DynamicType = ()>>(&self) -> impl Fn(&Event<K>) + Send + use<K> {
        self.lock().followed.insert(kind_of::<K>());
        let unseen = self.clone();
        move |event| match event {
            Event::Apply(object) | Event::Delete(object) | Event::InitApply(object) => {
                unseen.lock().writes.remove(&Key::of(object));
            }
            Event::InitDone => {
                let kind = kind_of::<K>();
                unseen.lock().writes.retain(|key, _| key.kind != kind);
            }
            Event::Init => {}
        }
    }

    /// Whether an apply of `content` to `key` was made over the version `cached` the cache
    /// still shows (`None`: no object), so the same apply again would change nothing.
    pub fn is_pending(&self, key: &Key, content: u64, cached: Option<&str>) -> bool {
        let mut state = self.lock();
        let Some(write) = state.writes.get(key) else {
            return false;
        };
        if write.over.as_deref() != cached {
            // The cache moved on: it shows this apply or a later change.
            state.writes.remove(key);
            return false;
        }
        write.content == content
    }

    /// Remembers an apply of `content` to `key` made over the cached version `over`, when the
    /// kind is followed.
    pub fn applied(&self, key: Key, content: u64, over: Option<String>) {
        let mut state = self.lock();
        if !state.followed.contains(&key.kind) {
            return;
        }
        if state.writes.len() >= MAX_UNSEEN && !state.writes.contains_key(&key) {
            state.writes.clear();
        }
        state.writes.insert(key, Write { content, over });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    use super::*;
    use crate::cached_deployment::CachedDeployment;

    fn deployment(version: &str) -> CachedDeployment {
        CachedDeployment {
            metadata: ObjectMeta {
                name: Some("hs".into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..CachedDeployment::default()
        }
    }

    fn key() -> Key {
        Key::of(&Deployment {
            metadata: deployment("1").metadata,
            ..Deployment::default()
        })
    }

    #[test]
    fn an_apply_is_pending_until_its_watch_shows_the_object() {
        let unseen = Unseen::default();
        let seen = unseen.follow::<CachedDeployment>();
        unseen.applied(key(), 7, None);
        assert!(unseen.is_pending(&key(), 7, None), "nothing cached yet");
        assert!(!unseen.is_pending(&key(), 8, None), "other content");
        seen(&Event::Apply(deployment("2")));
        assert!(!unseen.is_pending(&key(), 7, None), "seen, then deleted");

        unseen.applied(key(), 7, Some("2".into()));
        assert!(unseen.is_pending(&key(), 7, Some("2")));
        assert!(
            !unseen.is_pending(&key(), 7, Some("3")),
            "the cache moved on"
        );
        assert!(!unseen.is_pending(&key(), 7, Some("2")), "and forgot it");
    }

    #[test]
    fn a_relist_forgets_its_kind_and_unfollowed_kinds_are_not_remembered() {
        let unseen = Unseen::default();
        let seen = unseen.follow::<CachedDeployment>();
        unseen.applied(key(), 7, None);
        seen(&Event::Init);
        assert!(unseen.is_pending(&key(), 7, None));
        seen(&Event::InitDone);
        assert!(!unseen.is_pending(&key(), 7, None));

        let service = Key::of(&Service {
            metadata: deployment("1").metadata,
            ..Service::default()
        });
        unseen.applied(service.clone(), 7, None);
        assert!(!unseen.is_pending(&service, 7, None));
    }
}
