//! The processes of a Synapse with workers: the instances each role runs, their names and
//! ports. Pure.
//!
//! Every process gets its own ports, as distinct across the Synapse as its names: in a cluster
//! each pod has its own address anyway, and the e2e tests run all of them on one loopback.

use synapse_types::workers::{WorkerRole, Workers};

/// The main process's replication listener, which workers reach through `instance_map`.
pub const MAIN_REPLICATION_PORT: u16 = 9093;

/// The router's port (the Service `NAME` maps the client port to it).
pub const ROUTER_PORT: u16 = 8080;

/// What a worker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Generic,
    FederationSender,
    Pusher,
    MediaRepository,
    Background,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Generic,
        Role::FederationSender,
        Role::Pusher,
        Role::MediaRepository,
        Role::Background,
    ];

    /// The role's field in `spec.workers`, also its name in the status.
    pub fn field(self) -> &'static str {
        match self {
            Role::Generic => "generic",
            Role::FederationSender => "federationSender",
            Role::Pusher => "pusher",
            Role::MediaRepository => "mediaRepository",
            Role::Background => "background",
        }
    }

    /// The role in object names, worker names and labels.
    pub fn slug(self) -> &'static str {
        match self {
            Role::Generic => "generic",
            Role::FederationSender => "federation",
            Role::Pusher => "pusher",
            Role::MediaRepository => "media",
            Role::Background => "background",
        }
    }

    /// The HTTP port of the role's first worker; the next ones count up from it.
    fn base_port(self) -> u16 {
        match self {
            Role::Generic => 8100,
            Role::FederationSender => 8200,
            Role::Pusher => 8300,
            Role::MediaRepository => 8400,
            Role::Background => 8500,
        }
    }

    pub fn spec(self, workers: &Workers) -> Option<&WorkerRole> {
        match self {
            Role::Generic => workers.generic.as_ref(),
            Role::FederationSender => workers.federation_sender.as_ref(),
            Role::Pusher => workers.pusher.as_ref(),
            Role::MediaRepository => workers.media_repository.as_ref(),
            Role::Background => workers.background.as_ref(),
        }
    }
}

/// One worker process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instance {
    pub role: Role,
    pub index: u16,
}

impl Instance {
    /// Its `worker_name`, e.g. `generic-0`.
    pub fn worker_name(&self) -> String {
        format!("{}-{}", self.role.slug(), self.index)
    }

    /// Its Deployment and Service, e.g. `NAME-generic-0`.
    pub fn object_name(&self, synapse: &str) -> String {
        format!("{synapse}-{}", self.worker_name())
    }

    /// Its HTTP listener: the requests it serves, `/health`, and replication.
    pub fn http_port(&self) -> u16 {
        self.role.base_port() + self.index
    }

    /// Its metrics listener.
    pub fn metrics_port(&self) -> u16 {
        self.http_port() + 1000
    }

    /// Its replication listener, on the workers other processes send requests to (media
    /// repositories).
    pub fn replication_port(&self) -> u16 {
        self.http_port() + 2000
    }
}

/// The worker instances `workers` declares, role by role in [`Role::ALL`] order.
pub fn instances(workers: &Workers) -> Vec<Instance> {
    Role::ALL
        .into_iter()
        .flat_map(|role| {
            let replicas = role.spec(workers).map_or(0, |r| r.replicas.max(0));
            (0..u16::try_from(replicas).unwrap_or(0)).map(move |index| Instance { role, index })
        })
        .collect()
}

/// The instances of `role`.
pub fn of_role(instances: &[Instance], role: Role) -> impl Iterator<Item = &Instance> {
    instances.iter().filter(move |i| i.role == role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn role(replicas: i32) -> Option<WorkerRole> {
        Some(WorkerRole {
            replicas,
            resources: None,
            homeserver: BTreeMap::new(),
        })
    }

    #[test]
    fn instances_have_distinct_names_and_ports() {
        let workers = Workers {
            generic: role(16),
            federation_sender: role(16),
            pusher: role(16),
            media_repository: role(16),
            background: role(1),
            ..Workers::default()
        };
        let all = instances(&workers);
        assert_eq!(all.len(), 65);
        let names: BTreeSet<_> = all.iter().map(Instance::worker_name).collect();
        let mut ports: Vec<u16> = all
            .iter()
            .flat_map(|i| [i.http_port(), i.metrics_port(), i.replication_port()])
            .collect();
        ports.extend([8008, 9000, MAIN_REPLICATION_PORT, ROUTER_PORT]);
        let distinct: BTreeSet<_> = ports.iter().collect();
        assert_eq!((names.len(), distinct.len()), (65, ports.len()));
        assert_eq!(all[0].object_name("hs"), "hs-generic-0");
        assert_eq!(all[16].worker_name(), "federation-0");
    }

    #[test]
    fn zero_replicas_and_absent_roles_run_nothing() {
        let workers = Workers {
            generic: role(0),
            pusher: role(2),
            ..Workers::default()
        };
        let names: Vec<_> = instances(&workers)
            .iter()
            .map(Instance::worker_name)
            .collect();
        assert_eq!(names, ["pusher-0", "pusher-1"]);
    }
}
