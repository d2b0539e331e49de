//! The exposure step within a reconciliation: what it applies, deletes and reports.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use kube::runtime::controller::Action;
use operator_common::testing::{Bodies, Exchange, scripted};
use serde_json::{Value, json};

use super::*;
use crate::http_route::HTTPRoute;
use crate::reconcile::reconcile;

const ROUTE: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/hs";

fn exposed() -> Value {
    let mut spec = values();
    spec["expose"] = json!({
        "host": "matrix.example.com",
        "gateway": {"parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}]},
    });
    spec
}

const CERTIFICATE: &str = "/apis/cert-manager.io/v1/namespaces/ns/certificates/hs";
const INGRESS: &str = "/apis/networking.k8s.io/v1/namespaces/ns/ingresses/hs";

#[tokio::test]
async fn an_exposed_synapse_is_routed_through_the_gateway_and_says_where() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let route = Exchange::patch(ROUTE).capture(&written).echo();
    let script = creation_with(&written, vec![route], None);
    let (ctx, config) = secrets_context(client, &synapse(exposed())).await;
    api.play(script, reconcile(Arc::new(synapse(exposed())), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let (config, route, status) = (&config, &written[3], &written[4]);
    let files: BTreeMap<String, String> = config["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap();
            (k.clone(), String::from_utf8(bytes).unwrap())
        })
        .collect();
    assert!(
        files["operator-overlay.yaml"]
            .contains(r#""public_baseurl": "https://matrix.example.com/""#)
            && files["operator-overlay.yaml"].contains(r#""serve_server_wellknown": true"#),
        "{files:#?}"
    );
    assert_eq!(
        route["spec"]["hostnames"],
        json!(["matrix.example.com", "example.com"])
    );
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"name": "public", "namespace": "gateways", "sectionName": "https"}])
    );
    let rule = &route["spec"]["rules"][0];
    assert_eq!(rule["backendRefs"], json!([{"name": "hs", "port": 8008}]));
    let paths: Vec<&Value> = rule["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["path"]["value"])
        .collect();
    assert_eq!(
        paths,
        [
            &json!("/_matrix"),
            &json!("/_synapse/client"),
            &json!("/.well-known/matrix")
        ]
    );
    assert_eq!(route["metadata"]["ownerReferences"][0]["uid"], "u1");
    assert_eq!(condition(status, "Exposed")["reason"], "Routed");
    assert_eq!(
        status["status"]["publicClientUrl"],
        "https://matrix.example.com/"
    );
    assert_eq!(status["status"]["federationEndpoint"], "example.com:443");
}

#[tokio::test]
async fn without_the_gateway_api_the_synapse_runs_and_says_what_is_missing() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let missing = Exchange::patch(ROUTE).reply(404, not_served());
    let warning = Some(("GatewayAPIMissing", "Warning"));
    let script = creation_with(&written, vec![missing], warning);
    let (ctx, _config) = secrets_context(client, &synapse(exposed())).await;
    let action = api
        .play(script, reconcile(Arc::new(synapse(exposed())), ctx))
        .await
        .expect("a missing CRD is no error");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));
    let written = written.lock().unwrap().clone();
    let status = written.last().unwrap();
    assert_eq!(condition(status, "Exposed")["status"], "False");
    assert_eq!(
        condition(status, "Ready")["reason"],
        "RollingOut",
        "Synapse itself goes on"
    );
    assert!(status["status"]["publicClientUrl"].is_null());
}

#[tokio::test]
async fn a_route_no_longer_asked_for_is_deleted_and_the_status_forgets_it() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let deleted = json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 200});
    let script = creation_with(
        &written,
        vec![Exchange::delete(ROUTE).reply(200, deleted)],
        None,
    );
    let mut route = HTTPRoute::new("hs", Default::default());
    route.metadata.namespace = Some("ns".into());
    let cached = Cached {
        routes: vec![route],
        ..Cached::default()
    };
    let mut unexposed = synapse(values());
    unexposed.status = Some(from(&json!({
        "publicClientUrl": "https://matrix.example.com/",
        "federationEndpoint": "example.com:443",
        "conditions": [{"type": "Exposed", "status": "True", "reason": "Routed", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })));
    api.play(
        script,
        reconcile(
            Arc::new(unexposed.clone()),
            context(client, with_secrets(&unexposed, cached).await),
        ),
    )
    .await
    .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let status = &written.last().unwrap()["status"];
    assert!(status["publicClientUrl"].is_null(), "{status}");
    assert!(
        !status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Exposed"),
        "{status}"
    );
}

#[tokio::test]
async fn an_ingress_with_a_cert_manager_issuer_gets_its_certificate() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let mut spec = values();
    spec["expose"] = json!({
        "host": "matrix.example.com",
        "ingress": {"className": "nginx", "annotations": {"nginx.org/client-max-body-size": "50m"}},
        "tls": {"secretName": "matrix-tls", "issuer": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
    });
    let exposure = vec![
        Exchange::patch(CERTIFICATE).capture(&written).echo(),
        Exchange::patch(INGRESS).capture(&written).echo(),
    ];
    let script = creation_with(&written, exposure, None);
    let (ctx, _config) = secrets_context(client, &synapse(spec.clone())).await;
    api.play(script, reconcile(Arc::new(synapse(spec)), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let (certificate, ingress) = (&written[3]["spec"], &written[4]);
    assert_eq!(certificate["secretName"], "matrix-tls");
    assert_eq!(
        certificate["dnsNames"],
        json!(["matrix.example.com", "example.com"])
    );
    assert_eq!(
        certificate["issuerRef"],
        json!({"name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(
        ingress["metadata"]["annotations"]["nginx.org/client-max-body-size"],
        "50m"
    );
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["matrix.example.com", "example.com"], "secretName": "matrix-tls"}])
    );
    let rules = ingress["spec"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1]["host"], "example.com");
    let path = &rules[0]["http"]["paths"][2];
    assert_eq!(path["path"], "/.well-known/matrix");
    assert_eq!(path["pathType"], "Prefix");
    assert_eq!(
        path["backend"]["service"],
        json!({"name": "hs", "port": {"number": 8008}})
    );
}

#[tokio::test]
async fn without_cert_manager_the_ingress_is_applied_all_the_same() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let mut spec = values();
    spec["expose"] = json!({
        "host": "matrix.example.com",
        "ingress": {},
        "tls": {"secretName": "matrix-tls", "issuer": {"name": "letsencrypt"}},
    });
    let exposure = vec![
        Exchange::patch(CERTIFICATE).reply(404, not_served()),
        Exchange::patch(INGRESS).capture(&written).echo(),
    ];
    let warning = Some(("CertManagerMissing", "Warning"));
    let script = creation_with(&written, exposure, warning);
    let (ctx, _config) = secrets_context(client, &synapse(spec.clone())).await;
    let action = api
        .play(script, reconcile(Arc::new(synapse(spec)), ctx))
        .await
        .expect("a missing CRD is no error");
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)));
    let written = written.lock().unwrap().clone();
    assert_eq!(written[3]["spec"]["tls"][0]["secretName"], "matrix-tls");
    let status = written.last().unwrap();
    assert_eq!(condition(status, "Exposed")["reason"], "CertManagerMissing");
    assert!(
        condition(status, "Exposed")["message"]
            .as_str()
            .unwrap()
            .contains("certificates.cert-manager.io")
    );
}

#[tokio::test]
async fn a_dedicated_federation_port_gets_a_route_of_its_own_and_no_server_well_known() {
    let (client, api) = scripted();
    let written = Bodies::default();
    let mut spec = exposed();
    spec["expose"]["federation"] = json!("Port8448");
    let exposure = vec![
        Exchange::patch(ROUTE).capture(&written).echo(),
        Exchange::patch(&format!("{ROUTE}-federation"))
            .capture(&written)
            .echo(),
    ];
    let script = creation_with(&written, exposure, None);
    let (ctx, config) = secrets_context(client, &synapse(spec.clone())).await;
    api.play(script, reconcile(Arc::new(synapse(spec)), ctx))
        .await
        .expect("the reconciliation succeeds");
    let written = written.lock().unwrap().clone();
    let (config, route, federation, status) = (&config, &written[3], &written[4], &written[5]);
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"name": "public", "namespace": "gateways", "sectionName": "https"}])
    );
    assert_eq!(
        federation["spec"]["parentRefs"],
        json!([{"name": "public", "namespace": "gateways", "port": 8448}])
    );
    assert_eq!(federation["spec"]["hostnames"], json!(["example.com"]));
    let paths: Vec<&Value> = federation["spec"]["rules"][0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["path"]["value"])
        .collect();
    assert_eq!(
        paths,
        [&json!("/_matrix/federation"), &json!("/_matrix/key")]
    );
    let overlay = base64::engine::general_purpose::STANDARD
        .decode(config["data"]["operator-overlay.yaml"].as_str().unwrap())
        .unwrap();
    let overlay = String::from_utf8(overlay).unwrap();
    assert!(
        overlay.contains(r#""serve_server_wellknown": false"#),
        "{overlay}"
    );
    assert_eq!(status["status"]["federationEndpoint"], "example.com:8448");
}
