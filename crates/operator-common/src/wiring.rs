//! The watches the operators share, each set built once here and wired into a controller with
//! the mapping it needs: the objects an operator owns (Deployments, Services, its Secrets), the
//! objects of a workload with a data volume and perhaps a database (its PVCs, database Secrets
//! and CloudNativePG Clusters, by name or label), the Synapses a bridge reads, and the
//! ConfigMaps a spec names with the ReferenceGrants that let it name another namespace's.

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt as _};
use synapse_types::Synapse;
use synapse_types::contract::labels;

use crate::cached_deployment::CachedDeployment;
use crate::controller::Caches;
use crate::database::{Source, cluster_resource, secret_triggers};
use crate::events::Events;
use crate::grant::ReferenceGrant;
use crate::input::{referring_into, referring_to};
use crate::labels::named_by_label;
use crate::reconciled::Reconciled;
use crate::runtime::Runtime;
use crate::watch::{
    Triggers, applied_cache, dynamic_triggers, metadata_cache, metadata_triggers, resource_of,
    tolerant,
};

/// The object of kind `K` an object of ours belongs to, by its instance label: how objects
/// without an owner reference (retained ones) are mapped back.
pub fn by_instance_label<K: Resource<DynamicType = ()>, O: Resource>(
    object: O,
) -> Option<ObjectRef<K>> {
    named_by_label(&object, labels::INSTANCE)
}

/// The caches of what an operator owns: its Deployments, Services and Secrets (labelled as
/// managed by it).
#[derive(Clone)]
pub struct Owned {
    pub deployments: Store<CachedDeployment>,
    pub services: Store<Service>,
    pub secrets: Store<Secret>,
}

/// The triggers of [`Owned`], to wire into the controller.
pub struct OwnedTriggers {
    deployments: Triggers<CachedDeployment>,
    services: Triggers<Service>,
    secrets: Triggers<Secret>,
}

impl Owned {
    /// Watches what the operator of `runtime` owns; the caches join `caches`.
    pub fn watch(runtime: &Runtime, caches: &mut Caches) -> (Self, OwnedTriggers) {
        let managed = runtime.managed_objects();
        let unseen = &runtime.unseen;
        let (deployments, deployment_triggers) =
            applied_cache(runtime.api::<CachedDeployment>(), managed.clone(), unseen);
        let (services, service_triggers) =
            applied_cache(runtime.api::<Service>(), managed.clone(), unseen);
        let (secrets, secret_triggers) = applied_cache(runtime.api::<Secret>(), managed, unseen);
        caches.add(&deployments);
        caches.add(&services);
        caches.add(&secrets);
        let triggers = OwnedTriggers {
            deployments: deployment_triggers,
            services: service_triggers,
            secrets: secret_triggers,
        };
        (
            Self {
                deployments,
                services,
                secrets,
            },
            triggers,
        )
    }
}

impl OwnedTriggers {
    pub fn wire<K: Reconciled>(self, controller: Controller<K>) -> Controller<K> {
        controller
            .owns_stream(self.deployments)
            .owns_stream(self.services)
            // Retained Secrets carry no owner reference: all are mapped by instance label.
            .watches_stream(self.secrets, by_instance_label::<K, _>)
    }
}

/// The triggers of what a workload with data and perhaps a PostgreSQL database adds: its PVCs,
/// the Secrets its database may be named in (any Secret, by name), its CloudNativePG Clusters.
pub struct StorageTriggers {
    claims: Triggers<PartialObjectMeta<PersistentVolumeClaim>>,
    secrets: Triggers<PartialObjectMeta<Secret>>,
    clusters: Triggers<DynamicObject>,
}

/// Watches the storage of the workloads of `runtime`: the cache of their PVCs (metadata only)
/// joins `caches`.
pub fn storage(
    runtime: &Runtime,
    caches: &mut Caches,
) -> (
    Store<PartialObjectMeta<PersistentVolumeClaim>>,
    StorageTriggers,
) {
    let managed = runtime.managed_objects();
    let (claims, claim_triggers) = metadata_cache(
        runtime.api::<PartialObjectMeta<PersistentVolumeClaim>>(),
        managed.clone(),
    );
    caches.add(&claims);
    let triggers = StorageTriggers {
        claims: claim_triggers,
        // Any Secret may be a database Secret (the user's, or CloudNativePG's).
        secrets: metadata_triggers(
            runtime.api::<PartialObjectMeta<Secret>>(),
            watcher::Config::default(),
        ),
        // A missing CloudNativePG CRD makes this watch fail and back off on its own; the
        // objects that need it look again by themselves (database::CRD_RETRY).
        clusters: dynamic_triggers(
            runtime.dynamic_api(&cluster_resource()),
            &cluster_resource(),
            managed,
        ),
    };
    (claims, triggers)
}

impl StorageTriggers {
    /// Wires the triggers into `controller`; `source_of` reads the database an object's spec
    /// asks for.
    pub fn wire<K: Reconciled>(
        self,
        controller: Controller<K>,
        source_of: fn(&K) -> Option<Source>,
    ) -> Controller<K> {
        let objects = controller.store();
        controller
            .watches_stream(self.claims, by_instance_label::<K, _>)
            .watches_stream_with(self.clusters, by_instance_label::<K, _>, cluster_resource())
            .watches_stream(self.secrets, move |secret| {
                secret_triggers(&objects, &secret, source_of)
            })
    }
}

/// The Synapses of the watched namespaces, for a bridge operator: one that cannot be read is
/// skipped, not a stall of every bridge.
pub fn synapses(runtime: &Runtime, caches: &mut Caches) -> (Store<Synapse>, Triggers<Synapse>) {
    let (synapses, triggers) = tolerant::<Synapse>(
        runtime.dynamic_api(&resource_of::<Synapse>()),
        watcher::Config::default(),
        Events::new(runtime.client.clone(), runtime.field_manager),
    );
    caches.add(&synapses);
    (synapses, triggers)
}

/// The triggers of the inputs a spec names: its ConfigMap, and the ReferenceGrants that let it
/// be in another namespace.
pub struct InputTriggers {
    config_maps: Triggers<PartialObjectMeta<ConfigMap>>,
    /// `None` when the operator is installed for one namespace: it never reads across.
    grants: Option<Triggers<PartialObjectMeta<ReferenceGrant>>>,
}

/// Watches the ConfigMaps of the watched namespaces by metadata (what a spec names is read when
/// needed) and, installed for all namespaces, the ReferenceGrants. A missing ReferenceGrant CRD
/// makes that watch fail and back off on its own; it recovers once the CRD is installed.
pub fn inputs(runtime: &Runtime) -> InputTriggers {
    let grants = runtime.namespace.is_none().then(|| {
        metadata_triggers(
            runtime.api::<PartialObjectMeta<ReferenceGrant>>(),
            watcher::Config::default(),
        )
    });
    InputTriggers {
        config_maps: metadata_triggers(
            runtime.api::<PartialObjectMeta<ConfigMap>>(),
            watcher::Config::default(),
        ),
        grants,
    }
}

impl InputTriggers {
    pub fn wire<K: Reconciled>(self, controller: Controller<K>) -> Controller<K> {
        let objects = controller.store();
        let for_grants = objects.clone();
        let controller =
            controller.watches_stream(self.config_maps, move |cm| referring_to(&objects, &cm));
        match self.grants {
            Some(grants) => controller.watches_stream(grants, move |grant| {
                referring_into(&for_grants, &grant.namespace().unwrap_or_default())
            }),
            None => controller,
        }
    }
}
