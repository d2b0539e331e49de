//! The CloudNativePG Cluster of a provisioned database: created once, afterwards only its labels
//! and owner follow the deletion policy; ready when CloudNativePG says so.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::core::Status;
use serde_json::json;

use super::connection::{
    CNPG_CLUSTER_KIND, CNPG_CLUSTER_PLURAL, CNPG_GROUP, CNPG_VERSION, CRD_RETRY, Problem,
    ProvisionedDatabase, Readiness, Source,
};
use super::secret::read_secret;
use crate::apply::Applier;
use crate::error::{Error, api_error};
use crate::retained::metadata_patch;
use crate::subject::Subject;

/// The CloudNativePG `Cluster` resource.
pub fn cluster_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(CNPG_GROUP, CNPG_VERSION, CNPG_CLUSTER_KIND),
        CNPG_CLUSTER_PLURAL,
    )
}

/// The Cluster for `db`: one instance, the database owned by its role, UTF8 with collation and
/// ctype C as Synapse requires. `meta` carries name, namespace, labels and owner.
pub fn desired_cluster(meta: ObjectMeta, db: &ProvisionedDatabase) -> DynamicObject {
    let mut storage = json!({"size": "10Gi"});
    if let Some(class) = &db.storage_class {
        storage["storageClass"] = json!(class);
    }
    let mut cluster = DynamicObject::new("", &cluster_resource()).data(json!({
        "spec": {
            "instances": 1,
            "storage": storage,
            "bootstrap": {"initdb": {
                "database": db.database,
                "owner": db.owner,
                "encoding": "UTF8",
                "localeCollate": "C",
                "localeCType": "C",
            }},
        }
    }));
    cluster.metadata = meta;
    cluster
}

/// Whether CloudNativePG reports the Cluster ready (its `Ready` condition), else what it says.
pub fn cluster_readiness(cluster: &DynamicObject) -> Result<(), String> {
    let status = &cluster.data["status"];
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    if ready.is_some_and(|c| c["status"] == "True") {
        return Ok(());
    }
    let phase = status["phase"].as_str().unwrap_or("no status yet");
    let detail = ready
        .and_then(|c| c["message"].as_str())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    Err(format!("phase {phase:?}{detail}"))
}

/// The API server answered 404 without a Status naming an object: the resource type itself is
/// unknown (its CRD is not installed).
fn is_unknown_resource(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if unknown_resource_status(status))
}

pub(super) fn unknown_resource_status(status: &Status) -> bool {
    status.code == 404 && status.reason != "NotFound"
}

/// Where the workload's PostgreSQL from `source` stands: when provisioning, the Cluster is
/// created once (`cluster_meta` names it; later only its labels and owner follow), then the
/// connection Secret is read. The Cluster and the Secret are read from the API server: neither
/// is cached (a missing CloudNativePG CRD cannot be watched, and the Secret is not ours).
pub async fn observe(
    applier: &Applier,
    subject: &Subject,
    source: &Source,
    cluster_meta: impl FnOnce() -> ObjectMeta,
) -> Result<Readiness, Error> {
    if let Source::Provisioned(db) = source
        && let Err(problem) = ensure_cluster(applier, subject, db, cluster_meta()).await?
    {
        return Ok(Readiness::NotReady(problem));
    }
    let namespace = &subject.namespace;
    let name = source.secret_name();
    let secret = Api::<Secret>::namespaced(applier.client().clone(), namespace)
        .get_opt(&name)
        .await
        .map_err(api_error(format!("read Secret {namespace}/{name}")))?;
    let connection = match (source, secret) {
        (Source::Provisioned(db), None) => {
            return Ok(Readiness::NotReady(Problem::new(
                "ClusterNotReady",
                format!(
                    "the CloudNativePG Cluster {} is ready but its Secret {name} does not exist yet",
                    db.cluster
                ),
            )));
        }
        (_, secret) => read_secret(&name, secret.as_ref(), source.spec_field()),
    };
    Ok(match connection {
        Ok(connection) => Readiness::Ready {
            source: source.clone(),
            connection,
        },
        Err(problem) => Readiness::NotReady(problem),
    })
}

/// Creates the Cluster once and waits for it to be ready: `Err(problem)` while it is not (or
/// while CloudNativePG is not installed).
async fn ensure_cluster(
    applier: &Applier,
    subject: &Subject,
    db: &ProvisionedDatabase,
    meta: ObjectMeta,
) -> Result<Result<(), Problem>, Error> {
    let resource = cluster_resource();
    let namespace = &subject.namespace;
    let api = Api::<DynamicObject>::namespaced_with(applier.client().clone(), namespace, &resource);
    let name = &db.cluster;
    let missing_operator = || {
        Ok(Err(Problem {
            reason: "CloudNativePGMissing",
            message: format!(
                "the CloudNativePG operator is not installed (no CRD {CNPG_CLUSTER_PLURAL}.\
                 {CNPG_GROUP}): install CloudNativePG, or use externalPostgreSQL; looking again \
                 every {}s",
                CRD_RETRY.as_secs()
            ),
            retry_after: Some(CRD_RETRY),
        }))
    };
    let existing = match api.get(name).await {
        Ok(cluster) => Some(cluster),
        Err(kube::Error::Api(status)) if unknown_resource_status(&status) => {
            return missing_operator();
        }
        Err(kube::Error::Api(status)) if status.is_not_found() => None,
        Err(e) => return Err(api_error(format!("read Cluster {namespace}/{name}"))(e)),
    };
    let Some(existing) = existing else {
        let desired = desired_cluster(meta, db);
        return match api.create(&PostParams::default(), &desired).await {
            Ok(_) => Ok(Err(Problem::new(
                "ClusterNotReady",
                format!("created the CloudNativePG Cluster {name}; waiting for it to be ready"),
            ))),
            Err(e) if is_unknown_resource(&e) => missing_operator(),
            Err(e) => Err(api_error(format!("create Cluster {namespace}/{name}"))(e)),
        };
    };
    if let Some(patch) = metadata_patch(subject, &meta, &existing.metadata) {
        api.patch(
            name,
            &applier.merge_params(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(api_error(format!(
            "set the labels and owner of Cluster {namespace}/{name}"
        )))?;
    }
    Ok(cluster_readiness(&existing).map_err(|detail| {
        Problem::new(
            "ClusterNotReady",
            format!("the CloudNativePG Cluster {name} is not ready yet ({detail})"),
        )
    }))
}
