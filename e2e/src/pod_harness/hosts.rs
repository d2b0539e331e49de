//! The `/etc/hosts` a harnessed pod sees: the cluster's Service names resolve to 127.0.0.1, the
//! loopback of the network namespace its scenario shares with the other pods it talks to. So do
//! the scenario's extra host names ([`super::Scenario::add_host`]): public names that external DNS
//! would point at the cluster's Gateway, served in the scenario by a proxy on 127.0.0.1.

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

/// Whether `name` may go into a hosts file: a DNS name of letters, digits, `-` and `.` (glibc
/// would split anything else, or read the rest of the line as a comment).
pub fn valid_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Renders the hosts file for a pod named `hostname` in `pod_namespace`: its Services' names and
/// the scenario's extra `hosts` resolve to 127.0.0.1.
pub fn render(
    hostname: &str,
    pod_namespace: &str,
    services: &[ServiceName],
    hosts: &[String],
) -> String {
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
    // One name a line: glibc caps the aliases of one line.
    let mut hosts = hosts.to_vec();
    hosts.sort();
    hosts.dedup();
    for host in &hosts {
        let _ = writeln!(out, "127.0.0.1\t{host}");
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
            &[],
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

    #[test]
    fn extra_host_names_resolve_to_loopback_whatever_the_pod_namespace() {
        let hosts = ["matrix.b.test", "a.test", "matrix.a.test", "a.test"].map(String::from);
        let services = [ServiceName::new("ns", "hs")];
        for namespace in ["ns", "other"] {
            let file = render("synapse-0", namespace, &services, &hosts);
            let lines: Vec<_> = file.lines().collect();
            // After the Services, sorted, each once.
            assert_eq!(
                lines[lines.len() - 3..],
                [
                    "127.0.0.1\ta.test",
                    "127.0.0.1\tmatrix.a.test",
                    "127.0.0.1\tmatrix.b.test",
                ],
                "{file}"
            );
            assert!(
                lines[..lines.len() - 3]
                    .iter()
                    .any(|l| l.contains("hs.ns.svc"))
            );
        }
        assert_eq!(render("p", "ns", &[], &[]).lines().count(), 4);
    }

    #[test]
    fn only_dns_names_go_into_the_file() {
        for good in ["a.test", "matrix.a.test", "x", "a-b.c9", "localhost"] {
            assert!(valid_host_name(good), "{good}");
        }
        let long_label = "a".repeat(64);
        for bad in [
            "",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a\tb",
            "a#b",
            "a\nb",
            "-a.test",
            "a-.test",
            "*.a.test",
            "a_b.test",
            &long_label,
        ] {
            assert!(!valid_host_name(bad), "{bad:?}");
        }
    }
}
