//! The `/etc/hosts` a harnessed pod sees: the cluster's Service names resolve to 127.0.0.1, the
//! loopback of the network namespace its scenario shares with the other pods it talks to.

use std::fmt::Write as _;

/// The cluster DNS domain kube-dns/CoreDNS serve by default.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// A Service a pod of the scenario may reach by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
}

impl ServiceName {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The names a pod in `pod_namespace` can use for this Service. The bare name resolves only
    /// from the Service's own namespace (through the pod's DNS search list), as in a cluster.
    pub fn dns_names(&self, pod_namespace: &str) -> Vec<String> {
        let Self { namespace, name } = self;
        let mut names = Vec::with_capacity(4);
        if namespace == pod_namespace {
            names.push(name.clone());
        }
        names.push(format!("{name}.{namespace}"));
        names.push(format!("{name}.{namespace}.svc"));
        names.push(format!("{name}.{namespace}.svc.{CLUSTER_DOMAIN}"));
        names
    }
}

/// Renders the hosts file for a pod named `hostname` in `pod_namespace`.
pub fn render(hostname: &str, pod_namespace: &str, services: &[ServiceName]) -> String {
    let mut out = String::from(
        "# Written by the e2e pod harness: Service names resolve to this network namespace.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    // The kubelet maps the pod's own hostname too.
    let _ = writeln!(out, "127.0.0.1\t{hostname}");
    let mut services = services.to_vec();
    services.sort();
    services.dedup();
    for service in &services {
        let _ = writeln!(
            out,
            "127.0.0.1\t{}",
            service.dns_names(pod_namespace).join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_service_name_only_in_its_own_namespace() {
        let hosts = render(
            "synapse-0",
            "ns",
            &[
                ServiceName::new("ns", "synapse-x"),
                ServiceName::new("other", "pg"),
                ServiceName::new("ns", "synapse-x"),
            ],
        );
        assert_eq!(
            hosts.lines().skip(3).collect::<Vec<_>>(),
            [
                "127.0.0.1\tsynapse-0",
                "127.0.0.1\tsynapse-x synapse-x.ns synapse-x.ns.svc synapse-x.ns.svc.cluster.local",
                "127.0.0.1\tpg.other pg.other.svc pg.other.svc.cluster.local",
            ]
        );
    }
}
