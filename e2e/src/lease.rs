//! Who holds an operator's leader-election Lease, as the tests of leader election read it.

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

/// The holder identity of the Lease `name`, `None` while it is free or absent.
pub async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .expect("read the Lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Whether a holder identity (`<host>_<pid>_<nanos>`, the operators' process identity) names
/// the process `pid`.
pub fn held_by(holder: &str, pid: u32) -> bool {
    holder.split('_').nth_back(1) == Some(pid.to_string().as_str())
}

#[cfg(test)]
mod tests {
    use super::held_by;

    #[test]
    fn the_pid_is_the_second_last_field() {
        assert!(held_by("node_a_42_000000017", 42));
        assert!(!held_by("node_a_42_000000017", 17));
        assert!(!held_by("", 42));
    }
}
