//! Where a Deployment's rollout of its current template stands: the one readiness rule every
//! operator's `Ready` condition is computed from.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};

/// Where a Deployment stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// The pod of the current template is ready.
    Ready,
    /// Still rolling out; the message says what is awaited.
    Progressing(String),
    /// The Deployment gave up (progress deadline exceeded); the message is its own.
    Failed(String),
}

/// The rollout state of `deployment`: ready only once the Deployment controller has seen the
/// current template and all wanted replicas of it are ready and available, with no old ones left.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
    rollout_of(
        deployment.metadata.generation,
        replicas,
        deployment.status.as_ref(),
    )
}

/// [`rollout`] of a Deployment at `generation` that wants `replicas` (one when unset).
pub fn rollout_of(
    generation: Option<i64>,
    replicas: Option<i32>,
    status: Option<&DeploymentStatus>,
) -> Rollout {
    // One message while the new pod comes up (every change of it is a status write); only a
    // rollout held up by the previous pod says so.
    let waiting = || {
        Rollout::Progressing(
            "waiting for the pod of the current configuration to become ready".into(),
        )
    };
    let Some(status) = status else {
        return waiting();
    };
    if let Some(failed) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Rollout::Failed(failed.message.clone().unwrap_or_default());
    }
    if status.observed_generation.unwrap_or_default() < generation.unwrap_or_default() {
        return waiting();
    }
    let wanted = replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or_default();
    let total = status.replicas.unwrap_or_default();
    let ready = status
        .ready_replicas
        .unwrap_or_default()
        .min(status.available_replicas.unwrap_or_default());
    if updated >= wanted && total > updated {
        Rollout::Progressing("waiting for the previous pod to stop".into())
    } else if updated < wanted || ready < wanted {
        waiting()
    } else {
        Rollout::Ready
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn deployment(generation: i64, status: DeploymentStatus) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                ..DeploymentSpec::default()
            }),
            status: Some(status),
        }
    }

    fn settled(observed: i64, updated: i32, ready: i32, total: i32) -> DeploymentStatus {
        DeploymentStatus {
            observed_generation: Some(observed),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            replicas: Some(total),
            ..DeploymentStatus::default()
        }
    }

    #[test]
    fn rollout_is_ready_only_for_the_current_template() {
        assert_eq!(rollout(&deployment(2, settled(2, 1, 1, 1))), Rollout::Ready);
        for not_yet in [
            settled(1, 1, 1, 1),
            settled(2, 0, 1, 1),
            settled(2, 1, 1, 2),
            settled(2, 1, 0, 1),
        ] {
            assert!(matches!(
                rollout(&deployment(2, not_yet)),
                Rollout::Progressing(_)
            ));
        }
        let mut stuck = settled(2, 1, 0, 1);
        stuck.conditions = Some(vec![DeploymentCondition {
            type_: "Progressing".into(),
            status: "False".into(),
            reason: Some("ProgressDeadlineExceeded".into()),
            message: Some("timed out".into()),
            ..DeploymentCondition::default()
        }]);
        assert_eq!(
            rollout(&deployment(2, stuck)),
            Rollout::Failed("timed out".into())
        );
        assert!(matches!(
            rollout(&Deployment::default()),
            Rollout::Progressing(_)
        ));
    }
}
