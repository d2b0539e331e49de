//! PostgreSQL for a workload (Synapse, mautrix-signal): a database provisioned through
//! CloudNativePG ([`cluster`]), or an existing server named by a Secret with CloudNativePG's keys
//! ([`secret`]).
//!
//! Either way the operator reads the connection from a Secret, puts host, port, database and user
//! into the workload's configuration and hands the password to the container only as the
//! `PGPASSWORD` environment variable (libpq and Go's lib/pq both read it), so it never lands in a
//! configuration file, a status or a log line.

mod cluster;
mod connection;
mod secret;

pub use cluster::{cluster_readiness, cluster_resource, desired_cluster, observe};
pub use connection::*;
pub use secret::{read_secret, secret_triggers};

#[cfg(test)]
mod tests;
