//! The compact form in which an operator caches the Deployments it owns. A k8s-openapi
//! `Deployment` takes about 23 KB of memory (every Volume and Container struct holds all its
//! optional fields inline), a thousand of them most of an operator's memory; yet an operator
//! only reads a cached Deployment's metadata and rollout status, and compares its spec with what
//! it would apply. So the spec is kept as the JSON text the API server sent, parsed only for a
//! comparison: about a fifth of the memory.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::DeploymentStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::rollout::{Rollout, rollout_of};

/// A Deployment as cached: metadata, the spec as JSON text, the status.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedDeployment {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<DeploymentStatus>,
}

impl CachedDeployment {
    /// Where its rollout stands.
    pub fn rollout(&self) -> Rollout {
        #[derive(Deserialize)]
        struct Replicas {
            replicas: Option<i32>,
        }
        let replicas = self
            .spec
            .as_ref()
            .and_then(|spec| serde_json::from_str::<Replicas>(spec.get()).ok())
            .and_then(|spec| spec.replicas);
        rollout_of(self.metadata.generation, replicas, self.status.as_ref())
    }
}

impl k8s_openapi::Resource for CachedDeployment {
    const API_VERSION: &'static str = "apps/v1";
    const GROUP: &'static str = "apps";
    const KIND: &'static str = "Deployment";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "deployments";
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CachedDeployment {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use serde_json::json;

    use super::*;
    use crate::apply::is_applied;

    #[test]
    fn a_cached_deployment_compares_and_rolls_out_like_the_full_one() {
        let stored = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hs", "namespace": "ns", "generation": 2,
                         "labels": {"app": "x"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i",
                                  "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1},
        });
        let full: Deployment = serde_json::from_value(stored.clone()).unwrap();
        let cached: CachedDeployment = serde_json::from_str(&stored.to_string()).unwrap();
        assert_eq!(cached.rollout(), Rollout::Ready);
        assert_eq!(cached.rollout(), crate::rollout::rollout(&full));

        let mut desired: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "hs", "namespace": "ns", "labels": {"app": "x"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "x"}},
                     "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
        }))
        .unwrap();
        assert!(
            is_applied(&desired, &cached),
            "defaulted fields do not count"
        );
        desired.spec = Some(DeploymentSpec {
            replicas: Some(2),
            ..desired.spec.clone().unwrap()
        });
        assert!(!is_applied(&desired, &cached));
    }
}
