//! The operators' Helm charts (`charts/`) on the local plane: render, install and uninstall a
//! chart, act as the ServiceAccount it creates (a TokenRequest token in a kubeconfig), and
//! compare the rules it grants with the requests an operator really sent.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::{repo_root, run};

/// The directory of `operator`'s chart.
pub fn chart_dir(operator: &str) -> PathBuf {
    repo_root().join("charts").join(operator)
}

/// `--set` arguments for `values` (`key=value` pairs).
fn set_args(values: &[(&str, &str)]) -> Vec<String> {
    values
        .iter()
        .flat_map(|(k, v)| ["--set".to_owned(), format!("{k}={v}")])
        .collect()
}

/// `helm template` of `operator`'s chart as release `release` in `namespace`: the documents.
pub async fn template(
    operator: &str,
    release: &str,
    namespace: &str,
    values: &[(&str, &str)],
) -> Vec<serde_json::Value> {
    let chart = chart_dir(operator).display().to_string();
    let mut args = vec!["template", release, &chart, "--namespace", namespace];
    let sets = set_args(values);
    args.extend(sets.iter().map(String::as_str));
    documents(&run("helm", &args).await)
}

/// The YAML documents of a multi-document stream, empty ones left out.
pub fn documents(text: &str) -> Vec<serde_json::Value> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
        .iter()
        .map(|d| serde_yaml::from_str::<serde_json::Value>(d).expect("a YAML document"))
        .filter(|value| !value.is_null())
        .collect()
}

/// A release of one chart, installed with `--wait` (its Pods Ready under kwok).
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub operator: String,
}

impl Release {
    /// `helm install --wait` of `operator`'s chart as `name` in `namespace` with `values`.
    pub async fn install(
        operator: &str,
        name: &str,
        namespace: &str,
        values: &[(&str, &str)],
    ) -> Self {
        let release = Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            operator: operator.to_owned(),
        };
        release.helm("install", values, &[]).await;
        release
    }

    /// `helm install|upgrade <name> <chart> --namespace … --wait` with `values` and `extra`
    /// arguments; returns helm's output.
    pub async fn helm(&self, verb: &str, values: &[(&str, &str)], extra: &[&str]) -> String {
        let chart = chart_dir(&self.operator).display().to_string();
        let mut args = vec![
            verb,
            &self.name,
            &chart,
            "--namespace",
            &self.namespace,
            "--wait",
            "--timeout",
            "2m",
        ];
        let sets = set_args(values);
        args.extend(sets.iter().map(String::as_str));
        args.extend(extra);
        run("helm", &args).await
    }

    /// The ServiceAccount the chart runs the operator as (the release's full name).
    pub fn service_account(&self) -> String {
        if self.name.contains(&self.operator) {
            self.name.clone()
        } else {
            format!("{}-{}", self.name, self.operator)
        }
    }

    /// `helm uninstall --wait`.
    pub async fn uninstall(self) {
        run(
            "helm",
            &[
                "uninstall",
                &self.name,
                "--namespace",
                &self.namespace,
                "--wait",
            ],
        )
        .await;
    }
}

/// A kubeconfig (mode 0600, in `dir`) that authenticates to the plane of `$KUBECONFIG` as the
/// ServiceAccount `account` of `namespace`, with a token from the TokenRequest API.
pub async fn service_account_kubeconfig(
    client: &Client,
    namespace: &str,
    account: &str,
    dir: &Path,
) -> PathBuf {
    let token = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(
            account,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("request a token for {namespace}/{account}: {e}"))
        .status
        .expect("a TokenRequest answers with a token")
        .token;
    let admin = std::env::var("KUBECONFIG").expect("KUBECONFIG is set");
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&admin).expect("read the kubeconfig"))
            .expect("a kubeconfig");
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "plane", "cluster": admin["clusters"][0]["cluster"].clone()}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "plane", "user": account, "namespace": namespace}}],
        "current-context": account,
    });
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(format!("{account}.kubeconfig"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(config.to_string().as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// One permission: API group, resource (with `/subresource`), verb.
pub type Grant = (String, String, String);

/// Every (group, resource, verb) the rendered Roles and ClusterRoles grant the operator.
pub fn granted(documents: &[serde_json::Value]) -> BTreeSet<Grant> {
    documents
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        // The roles aggregated to users' admin, edit and view are not the operator's.
        .filter(|d| {
            d["metadata"]["labels"]
                .as_object()
                .is_none_or(|labels| !labels.keys().any(|k| k.contains("/aggregate-to-")))
        })
        .flat_map(|d| {
            serde_json::from_value::<Vec<PolicyRule>>(d["rules"].clone()).expect("RBAC rules")
        })
        .flat_map(|rule| {
            let mut grants = Vec::new();
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    for verb in &rule.verbs {
                        grants.push((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
            grants
        })
        .collect()
}

/// The (group, resource, verb) of every request in an operator's JSON log at
/// `kube_client=debug`, which logs each request's method and URL, and its status code once
/// answered. A server-side apply answered 201 created its object, which needs `create` too.
pub fn requested(log: &str) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for entry in log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
    {
        let span = &entry["span"];
        let (Some(method), Some(url)) = (span["http.method"].as_str(), span["http.url"].as_str())
        else {
            continue;
        };
        let Some(grant) = request_grant(method, url) else {
            continue;
        };
        if method == "PATCH" && span["http.status_code"] == 201 {
            grants.insert((grant.0.clone(), grant.1.clone(), "create".to_owned()));
        }
        if entry["fields"]["message"] == "requesting" {
            grants.insert(grant);
        }
    }
    grants
}

/// The permission a request needs, from its method and URL (`/api/v1/...` or
/// `/apis/<group>/<version>/...`, namespaced or not, a collection or a named object with an
/// optional subresource).
pub fn request_grant(method: &str, url: &str) -> Option<Grant> {
    // A full URL or only its path.
    let url = match url.split_once("://") {
        Some((_, after_scheme)) => after_scheme.find('/').map_or("", |i| &after_scheme[i..]),
        None => url,
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path.trim_start_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest),
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _namespace, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    let (resource, named) = match rest {
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, subresource] => (format!("{resource}/{subresource}"), true),
        _ => return None,
    };
    let watching = query.split('&').any(|pair| pair == "watch=true");
    let verb = match (method, named) {
        ("GET", _) if watching => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => return None,
    };
    Some((group, resource, verb.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::request_grant;

    fn grant(group: &str, resource: &str, verb: &str) -> Option<super::Grant> {
        Some((group.into(), resource.into(), verb.into()))
    }

    #[test]
    fn requests_map_to_the_permission_they_need() {
        let base = "https://127.0.0.1:16443";
        assert_eq!(
            request_grant(
                "GET",
                &format!("{base}/api/v1/namespaces/ns/secrets?&labelSelector=a%3Db")
            ),
            grant("", "secrets", "list")
        );
        assert_eq!(
            request_grant(
                "GET",
                "/api/v1/namespaces/ns/secrets?&watch=true&timeoutSeconds=290"
            ),
            grant("", "secrets", "watch")
        );
        assert_eq!(
            request_grant("GET", "/api/v1/namespaces/ns/secrets/s"),
            grant("", "secrets", "get")
        );
        assert_eq!(
            request_grant(
                "PATCH",
                "/apis/synapse.opdev.io/v1alpha1/namespaces/ns/synapses/hs/status?&fieldManager=x"
            ),
            grant("synapse.opdev.io", "synapses/status", "patch")
        );
        assert_eq!(
            request_grant("POST", "/apis/events.k8s.io/v1/namespaces/ns/events?"),
            grant("events.k8s.io", "events", "create")
        );
        assert_eq!(
            request_grant(
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/op-leader"
            ),
            grant("coordination.k8s.io", "leases", "update")
        );
        assert_eq!(
            request_grant("GET", "/apis/apps/v1/deployments?&watch=true"),
            grant("apps", "deployments", "watch")
        );
        assert_eq!(request_grant("GET", "/version"), None);
    }
}
