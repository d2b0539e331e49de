//! The database of a Synapse: which one its spec asks for, and where it stands (a step with
//! writes: a provisioned CloudNativePG Cluster is created once).

use kube::ResourceExt as _;
use operator_common::apply::Applier;
use operator_common::database::{self, ProvisionedDatabase, Readiness, Source};
use operator_common::error::Error;
use operator_common::subject::{Lifetime, Subject};
use synapse_types::Synapse;

use crate::names;
use crate::resolve::ResolvedConfig;

/// The PostgreSQL database the spec asks for, if any.
pub fn database_source(synapse: &Synapse) -> Option<Source> {
    Source::from_spec(
        synapse.spec.create_new_postgresql,
        synapse.spec.external_postgresql.as_ref(),
        || ProvisionedDatabase {
            cluster: names::database_cluster(&synapse.name_any()),
            database: names::DATABASE_NAME.to_owned(),
            owner: names::DATABASE_NAME.to_owned(),
            storage_class: synapse
                .spec
                .storage
                .as_ref()
                .and_then(|s| s.storage_class_name.clone()),
        },
    )
}

/// Where the database of `synapse` stands: SQLite, the user's own file's, or the PostgreSQL
/// of the spec (its Cluster created once, its Secret read).
pub async fn readiness(
    synapse: &Synapse,
    subject: &Subject,
    config: &ResolvedConfig,
    applier: &Applier,
) -> Result<Readiness, Error> {
    match database_source(synapse) {
        None if !config.generated && config.facts.has_database => Ok(Readiness::OwnConfiguration),
        None => Ok(Readiness::Sqlite),
        Some(source) => {
            let lifetime = Lifetime::of_data(synapse.spec.deletion_policy);
            let meta =
                || subject.meta(names::database_cluster(&subject.name), "database", lifetime);
            database::observe(applier, subject, &source, meta).await
        }
    }
}
