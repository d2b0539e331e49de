//! Synapse's workers (`spec.workers`): the processes, their configuration, the router in front
//! of them and the Redis they replicate through.

pub mod build;
pub mod config;
pub mod router;
pub mod routes;
pub mod step;
pub mod topology;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use operator_common::apply::Applier;
use operator_common::error::Error;
use operator_common::random::random_alphanumeric;
use operator_common::retained::ensure_generated_secret;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Synapse;
use synapse_types::workers::OPERATOR_WORKER_KEYS;

use self::build::{REDIS, REDIS_ACL_KEY};
use self::topology::Role;

/// Each role the spec declares, with its replicas.
pub fn declared(synapse: &Synapse) -> Vec<(Role, i32)> {
    let Some(workers) = &synapse.spec.workers else {
        return Vec::new();
    };
    Role::ALL
        .into_iter()
        .filter_map(|role| role.spec(workers).map(|r| (role, r.replicas)))
        .collect()
}

/// The first role whose `homeserver` settings set a key the operator writes, and the key.
pub fn operator_key_set(synapse: &Synapse) -> Option<(&'static str, String)> {
    let workers = synapse.spec.workers.as_ref()?;
    Role::ALL.into_iter().find_map(|role| {
        let settings = &role.spec(workers)?.homeserver;
        let key = OPERATOR_WORKER_KEYS
            .iter()
            .find(|k| settings.contains_key(**k))?;
        Some((role.field(), (*key).to_owned()))
    })
}

/// Whether the Synapse runs workers (a role with a replica).
pub fn has_workers(synapse: &Synapse) -> bool {
    declared(synapse).iter().any(|(_, replicas)| *replicas > 0)
}

/// The operator's Redis Secret of a Synapse with workers: a generated password, kept, and the
/// ACL file Redis reads it from. `None` without workers or with an external Redis.
pub async fn redis_secret(
    applier: &Applier,
    synapse: &Synapse,
    subject: &Subject,
    existing: Option<&Secret>,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, Error> {
    let external = (synapse.spec.workers.as_ref())
        .and_then(|w| w.redis.as_ref())
        .is_some_and(|r| r.external.is_some());
    if !has_workers(synapse) || external {
        return Ok(None);
    }
    let meta = subject.meta(build::redis(&subject.name), REDIS, Lifetime::Owned);
    let data =
        ensure_generated_secret(applier, subject, meta, existing, complete_redis_secret).await?;
    Ok(Some(data))
}

/// The Redis Secret's keys: `password` (kept once generated) and the ACL file with it.
pub fn complete_redis_secret(
    existing: &BTreeMap<String, Vec<u8>>,
) -> Result<BTreeMap<String, Vec<u8>>, operator_common::random::RandomError> {
    let password = match existing.get("password") {
        Some(password) if !password.is_empty() => password.clone(),
        _ => random_alphanumeric(48)?.into_bytes(),
    };
    let acl = format!(
        "user default on >{} ~* &* +@all\n",
        String::from_utf8_lossy(&password)
    );
    Ok(BTreeMap::from([
        ("password".to_owned(), password),
        (REDIS_ACL_KEY.to_owned(), acl.into_bytes()),
    ]))
}
