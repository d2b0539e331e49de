//! The watches an operator's controller runs: its own kind read object by object, so that one
//! object that cannot be read is reported and skipped instead of stalling the controller; caches
//! of the objects whose content a reconciliation reads (so it reads them without a request);
//! metadata-only watches of the objects that only map events to custom resources. Each watch
//! backs off on its own and logs its errors, so that one failing watch (a CRD not installed)
//! does not slow the others.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use kube::api::{Api, ApiResource, DynamicObject, PartialObjectMeta};
use kube::core::ObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

use crate::events::Events;
use crate::reconciled::Reconciled;
use crate::unseen::Unseen;
use synapse_types::contract::labels;

/// A stream of objects that changed, for a controller's `owns_stream`/`watches_stream`.
pub type Triggers<K> = BoxStream<'static, Result<K, watcher::Error>>;

/// Reason of the Warning Event on an object the operator cannot read.
pub const REASON_UNREADABLE: &str = "UnreadableObject";

/// How many objects a page of a watch's initial list holds: a page is read whole (with every
/// object's managedFields) before its objects reach the cache, so a small page bounds the
/// memory an operator needs at start and after a re-list.
const LIST_PAGE: u32 = 50;

/// How many unreadable object versions are remembered, so each is reported once.
const REPORTED_LIMIT: usize = 1024;

/// Watches the custom resources of `K` as untyped objects and reads each on its own: one that
/// does not fit `K` (stored under an older or foreign CRD) is logged, reported with a Warning
/// Event on it, and left out of the store and the triggers, so the others go on. Deletions
/// trigger too: a bridge must see its Synapse go.
pub fn tolerant<K: Reconciled>(
    api: Api<DynamicObject>,
    config: watcher::Config,
    events: Events,
) -> (Store<K>, Triggers<K>) {
    let (reader, writer) = reflector::store();
    let reported = Arc::new(Mutex::new(HashSet::new()));
    let stream = watcher::watcher(api, config.page_size(LIST_PAGE))
        .filter_map(move |event| {
            let read = event.map(|event| read_event::<K>(event, &events, &reported));
            std::future::ready(match read {
                Ok(None) => None,
                Ok(Some(event)) => Some(Ok(event)),
                Err(error) => Some(Err(error)),
            })
        })
        .modify(strip_managed_fields)
        .reflect(writer)
        .touched_objects();
    (reader, logged(stream, K::kind(&()).into_owned()))
}

/// The API resource of `K`, for [`tolerant`].
pub fn resource_of<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// `event` with its object read as `K`; `None` when it cannot be (reported once per version).
fn read_event<K: Reconciled>(
    event: Event<DynamicObject>,
    events: &Events,
    reported: &Mutex<HashSet<(String, String)>>,
) -> Option<Event<K>> {
    let read = |object: DynamicObject| -> Option<K> {
        let meta = object.metadata.clone();
        // The path of the field that does not fit tells the user what to fix.
        let read = serde_json::to_value(object)
            .map_err(|e| e.to_string())
            .and_then(|value| {
                serde_path_to_error::deserialize::<_, K>(value).map_err(|e| e.to_string())
            });
        match read {
            Ok(object) => Some(object),
            Err(error) => {
                report_unreadable::<K>(meta, &error, events, reported);
                None
            }
        }
    };
    Some(match event {
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
        Event::InitApply(object) => Event::InitApply(read(object)?),
        Event::Apply(object) => Event::Apply(read(object)?),
        Event::Delete(object) => Event::Delete(read(object)?),
    })
}

fn report_unreadable<K: Reconciled>(
    meta: ObjectMeta,
    error: &str,
    events: &Events,
    reported: &Mutex<HashSet<(String, String)>>,
) {
    let version = (
        meta.uid.clone().unwrap_or_default(),
        meta.resource_version.clone().unwrap_or_default(),
    );
    {
        let mut reported = reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported.len() >= REPORTED_LIMIT {
            reported.clear();
        }
        if !reported.insert(version) {
            return;
        }
    }
    let kind = K::kind(&());
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    tracing::warn!(%kind, namespace, name, error, "cannot read the object: skipped until it changes");
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(kind.clone().into_owned()),
        name: meta.name,
        namespace: meta.namespace,
        uid: meta.uid,
        resource_version: meta.resource_version,
        field_path: None,
    };
    let note = format!(
        "the operator cannot read this {kind}: {error}. It is skipped until it is fixed (kubectl \
         edit, or re-apply it) or the CRD is upgraded to match the operator"
    );
    let events = events.clone();
    tokio::spawn(async move { events.warning_on(&reference, REASON_UNREADABLE, note).await });
}

/// A cache of `K` (managedFields dropped: nothing reads them) and the stream of the objects
/// that changed or went away, for `owns_stream` or `watches_stream`.
pub fn cache<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, Triggers<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    K: Send + Sync + 'static,
{
    cache_seen_by(api, config, |_: &Event<K>| {})
}

/// [`cache`] of objects the operator applies, whose events `unseen` follows.
pub fn applied_cache<K>(
    api: Api<K>,
    config: watcher::Config,
    unseen: &Unseen,
) -> (Store<K>, Triggers<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    K: Send + Sync + 'static,
{
    cache_seen_by(api, config, unseen.follow::<K>())
}

fn cache_seen_by<K>(
    api: Api<K>,
    config: watcher::Config,
    seen: impl Fn(&Event<K>) + Send + 'static,
) -> (Store<K>, Triggers<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    K: Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher::watcher(api, config.page_size(LIST_PAGE))
        .modify(strip_managed_fields)
        .reflect(writer)
        .inspect_ok(seen)
        .touched_objects();
    (
        reader,
        logged(stream, <K as Resource>::kind(&()).into_owned()),
    )
}

/// A cache of only the metadata of `K`, and its triggers: for objects whose existence, labels
/// and owners are all a reconciliation needs.
pub fn metadata_cache<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
) -> (Store<PartialObjectMeta<K>>, Triggers<PartialObjectMeta<K>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    cache(api, config)
}

/// The metadata of the `K` that change: for watches that only map events to custom resources
/// (the content is read when a reconciliation needs it).
pub fn metadata_triggers<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
) -> Triggers<PartialObjectMeta<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = watcher::watcher(api, config.page_size(LIST_PAGE))
        .modify(strip_managed_fields)
        .touched_objects();
    logged(stream, K::kind(&()).into_owned())
}

/// The triggers of a watch of a kind known only at run time (another project's CRD), for
/// `watches_stream_with`.
pub fn dynamic_triggers(
    api: Api<DynamicObject>,
    resource: &ApiResource,
    config: watcher::Config,
) -> Triggers<DynamicObject> {
    let stream = watcher::watcher(api, config.page_size(LIST_PAGE))
        .modify(strip_managed_fields)
        .touched_objects();
    logged(stream, resource.kind.clone())
}

fn strip_managed_fields<K: Resource>(object: &mut K) {
    object.managed_fields_mut().clear();
}

/// `stream` with its own backoff, its errors logged and dropped: a failing watch waits on its
/// own instead of holding up the controller's other triggers. The first error of a run is a
/// warning, the repeats are debug lines until the watch recovers.
fn logged<K, S>(stream: S, what: String) -> Triggers<K>
where
    S: Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    let mut failing = false;
    stream
        .default_backoff()
        .filter_map(move |item| {
            let kept = match item {
                Ok(object) => {
                    if failing {
                        tracing::info!(watch = %what, "the watch recovered");
                    }
                    failing = false;
                    Some(Ok(object))
                }
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(watch = %what, %error, "the watch failed; retrying with backoff");
                    None
                }
                Err(error) => {
                    tracing::debug!(watch = %what, %error, "the watch still fails");
                    None
                }
            };
            std::future::ready(kept)
        })
        .boxed()
}

/// The cached object of `store` named `name` in `namespace`.
pub fn cached<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&reflector::ObjectRef::new(name).within(namespace))
}

/// The cached objects of `store` in `namespace` whose instance label names `instance`: the
/// children of one object, whatever their names.
pub fn cached_of_instance<K>(store: &Store<K>, namespace: &str, instance: &str) -> Vec<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store
        .state()
        .into_iter()
        .filter(|object| {
            let meta = object.meta();
            meta.namespace.as_deref() == Some(namespace)
                && meta
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::INSTANCE))
                    .map(String::as_str)
                    == Some(instance)
        })
        .collect()
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
