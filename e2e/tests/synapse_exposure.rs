//! `spec.expose` on the real apiserver (issue 15), with the Gateway API CRDs the plane installs:
//! the HTTPRoute the operator writes is accepted by its real schema, follows the spec, and goes
//! with the section; Synapse's public settings and the status follow; a user's own
//! homeserver.yaml that disagrees is a condition.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`).

// Each test crate uses a different part of the shared helpers.
#[allow(dead_code)]
mod synapse_support;

use e2e::objects::namespaced;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use synapse_support::{
    Plane, TIMEOUT, condition_state, config_file, create_config_map, create_synapse, patch_spec,
    set_config_map_data, wait_synapse,
};

fn routes(plane: &Plane) -> Api<DynamicObject> {
    namespaced(&plane.client, &plane.ns.name, "HTTPRoute")
}

fn expose(host: &str) -> Value {
    json!({
        "host": host,
        "gateway": {"parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}]},
    })
}

async fn wait_exposed(plane: &Plane, name: &str, host: &str) -> Value {
    let url = format!("https://{host}/");
    wait_synapse(&plane.synapses(), name, "Exposed and published", |s| {
        condition_state(s, "Exposed") == ("True".into(), "Routed".into())
            && s["status"]["publicClientUrl"] == url.as_str()
    })
    .await
}

#[tokio::test]
async fn an_exposed_synapse_gets_its_route_which_follows_the_spec_and_goes_with_it() {
    let plane = Plane::start("syn-expose", "info").await;
    let api = plane.synapses();
    let mut spec =
        json!({"homeserver": {"values": {"serverName": "example.com", "reportStats": false}}});
    spec["expose"] = expose("matrix.example.com");
    create_synapse(&api, "hs", spec).await;
    let synapse = wait_exposed(&plane, "hs", "matrix.example.com").await;
    assert_eq!(synapse["status"]["federationEndpoint"], "example.com:443");

    // Stored by the apiserver under the Gateway API's own schema.
    let route = serde_json::to_value(routes(&plane).get("hs").await.expect("the HTTPRoute"))
        .expect("serializable");
    let spec = &route["spec"];
    assert_eq!(
        spec["hostnames"],
        json!(["matrix.example.com", "example.com"])
    );
    assert_eq!(spec["parentRefs"][0]["name"], "public");
    assert_eq!(spec["parentRefs"][0]["namespace"], "gateways");
    assert_eq!(spec["parentRefs"][0]["sectionName"], "https");
    let rule = &spec["rules"][0];
    assert_eq!(rule["backendRefs"][0]["name"], "hs");
    assert_eq!(rule["backendRefs"][0]["port"], 8008);
    assert_eq!(route["metadata"]["ownerReferences"][0]["name"], "hs");
    let overlay = config_file(&plane.client, &plane.ns.name, "hs", "operator-overlay.yaml").await;
    assert!(
        overlay.contains(r#""public_baseurl": "https://matrix.example.com/""#),
        "{overlay}"
    );

    // A new host: the route and the settings follow.
    patch_spec(&api, "hs", json!({"expose": expose("chat.example.com")})).await;
    wait_exposed(&plane, "hs", "chat.example.com").await;
    let route = routes(&plane).get("hs").await.expect("the HTTPRoute");
    assert_eq!(
        route.data["spec"]["hostnames"],
        json!(["chat.example.com", "example.com"])
    );

    // A dedicated federation port: the route also attaches to the Gateway's 8448 listeners.
    let mut dedicated = expose("chat.example.com");
    dedicated["federation"] = json!("Port8448");
    patch_spec(&api, "hs", json!({"expose": dedicated})).await;
    wait_synapse(&api, "hs", "federation on 8448", |s| {
        s["status"]["federationEndpoint"] == "example.com:8448"
    })
    .await;
    let federation = routes(&plane)
        .get("hs-federation")
        .await
        .expect("the federation HTTPRoute");
    assert_eq!(federation.data["spec"]["parentRefs"][0]["port"], 8448);
    assert_eq!(federation.data["spec"]["hostnames"], json!(["example.com"]));
    // Not through an Ingress, which serves 80 and 443 only: refused by the CRD.
    let refused = api
        .patch(
            "hs",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                &json!({"spec": {"expose": {"gateway": null, "ingress": {}}}}),
            ),
        )
        .await
        .expect_err("refused");
    assert!(
        refused
            .to_string()
            .contains("spec.expose.federation Port8448 needs gateway"),
        "{refused}"
    );

    // Back to federation through the well-known: the federation route goes.
    patch_spec(&api, "hs", json!({"expose": {"federation": null}})).await;
    e2e::wait_for(TIMEOUT, "the federation HTTPRoute to go", || async {
        routes(&plane)
            .get_opt("hs-federation")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    // The section removed: the route goes, and the status forgets it.
    patch_spec(&api, "hs", json!({"expose": null})).await;
    let synapse = wait_synapse(&api, "hs", "no longer exposed", |s| {
        s["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.iter().any(|c| c["type"] == "Exposed"))
    })
    .await;
    assert!(synapse["status"]["publicClientUrl"].is_null());
    e2e::wait_for(TIMEOUT, "the HTTPRoute to be deleted", || async {
        routes(&plane)
            .get_opt("hs")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    let overlay = config_file(&plane.client, &plane.ns.name, "hs", "operator-overlay.yaml").await;
    assert!(!overlay.contains("public_baseurl"), "{overlay}");
    plane.finish().await;
}

#[tokio::test]
async fn a_users_file_that_disagrees_is_a_condition() {
    let plane = Plane::start("syn-expose-cm", "info").await;
    let file = "server_name: example.org\nreport_stats: false\npublic_baseurl: https://chat.example.org/\n\
                listeners:\n  - port: 8008\n    type: http\n    x_forwarded: true\n    \
                resources: [{names: [client]}]\n";
    create_config_map(
        &plane.client,
        &plane.ns.name,
        "hs",
        &[("homeserver.yaml", file)],
    )
    .await;
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"configMap": {"name": "hs"}}, "expose": expose("matrix.example.org")}),
    )
    .await;
    let refused = synapse_support::wait_failed(&api, "hs", "ExposureConflict").await;
    let message = refused["status"]["reason"].as_str().unwrap_or_default();
    assert!(
        message.contains("public_baseurl: https://chat.example.org/")
            && message.contains("https://matrix.example.org/"),
        "{message}"
    );
    // Agreeing, it is routed.
    patch_spec(&api, "hs", json!({"expose": expose("chat.example.org")})).await;
    wait_exposed(&plane, "hs", "chat.example.org").await;
    // A client listener that does not trust X-Forwarded-For from the proxy: refused too.
    let direct = file.replace("    x_forwarded: true\n", "");
    set_config_map_data(
        &plane.client,
        &plane.ns.name,
        "hs",
        &[("homeserver.yaml", &direct)],
    )
    .await;
    let refused = synapse_support::wait_failed(&api, "hs", "ExposureConflict").await;
    let message = refused["status"]["reason"].as_str().unwrap_or_default();
    assert!(message.contains("x_forwarded"), "{message}");
    plane.finish().await;
}

fn certificates(plane: &Plane) -> Api<DynamicObject> {
    namespaced(&plane.client, &plane.ns.name, "Certificate")
}

#[tokio::test]
async fn an_ingress_and_its_certificate_are_accepted_and_give_way_to_a_route() {
    let plane = Plane::start("syn-ingress", "info").await;
    let api = plane.synapses();
    let expose = json!({
        "host": "matrix.example.net",
        "ingress": {"className": "nginx", "annotations": {"example.org/body-size": "50m"}},
        "tls": {"secretName": "hs-tls", "issuer": {"name": "letsencrypt", "kind": "ClusterIssuer"}},
    });
    create_synapse(
        &api,
        "hs",
        json!({"homeserver": {"values": {"serverName": "example.net", "reportStats": false}}, "expose": expose}),
    )
    .await;
    wait_exposed(&plane, "hs", "matrix.example.net").await;
    let ingresses = Api::<Ingress>::namespaced(plane.client.clone(), &plane.ns.name);
    let ingress = ingresses.get("hs").await.expect("the Ingress");
    let spec = ingress.spec.expect("a spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let hosts: Vec<_> = spec
        .rules
        .unwrap()
        .into_iter()
        .filter_map(|r| r.host)
        .collect();
    assert_eq!(hosts, ["matrix.example.net", "example.net"]);
    assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("hs-tls"));
    // Stored under cert-manager's own schema.
    let certificate = certificates(&plane)
        .get("hs")
        .await
        .expect("the Certificate");
    assert_eq!(
        certificate.data["spec"]["dnsNames"],
        json!(["matrix.example.net", "example.net"])
    );
    assert_eq!(
        certificate.data["spec"]["issuerRef"]["kind"],
        "ClusterIssuer"
    );

    // Through a Gateway instead, without an issuer: the Ingress and the Certificate go.
    let expose =
        json!({"ingress": null, "tls": null, "gateway": {"parentRefs": [{"name": "public"}]}});
    patch_spec(&api, "hs", json!({"expose": expose})).await;
    e2e::wait_for(TIMEOUT, "the Ingress and the Certificate to go", || async {
        let ingress = ingresses.get_opt("hs").await.ok()?;
        let certificate = certificates(&plane).get_opt("hs").await.ok()?;
        let route = routes(&plane).get_opt("hs").await.ok()?;
        (ingress.is_none() && certificate.is_none() && route.is_some()).then_some(())
    })
    .await;
    plane.finish().await;
}
