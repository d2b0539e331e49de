//! Synapse with workers (issue 17), against the real plane, a real PostgreSQL (`hack/postgres`),
//! and real processes booted by the pod harness from exactly the files their pods mount: Redis
//! (Debian's redis-server for the pinned image), the main process, a generic worker, a federation
//! sender and a media repository (Synapse), and the router (Debian's nginx for the pinned image).
//!
//! Through the router a user is registered (main) and logs in; `/sync` and `/messages` are
//! answered by the generic worker (its access log says so), a message sent through it is read
//! back from the main process (replication over Redis), and an upload lands in the media
//! repository. Then scaling the generic workers from 1 to 2 adds a worker and a routed backend
//! without touching the main Deployment's pod template; the disruption budgets are in place.
//!
//! Needs the plane (`hack/cluster up`, `eval "$(hack/cluster env)"`), `hack/postgres up`, root,
//! `hack/python-env` and `hack/debian-tool nginx redis-server`.

#[allow(dead_code)]
mod synapse_support;

use e2e::pod_harness::{PodProcess, Request, Scenario};
use e2e::postgres::{self, CNPG_PORT, Postgres};
use e2e::wait_for;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{Value, json};
use synapse_support::{
    Plane, TIMEOUT, boot_synapse, create_synapse, get, get_opt, hmac_sha1_hex, patch_spec,
    random_token, secret_text, template_hash, wait_synapse,
};

const ROUTER_PORT: u16 = 8080;
const MAIN_PORT: u16 = 8008;

/// A request through the router; the answer's status and JSON body.
async fn call(scenario: &Scenario, request: Request) -> (u16, Value) {
    let response = scenario
        .netns()
        .http(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response.status, response.json().unwrap_or(Value::Null))
}

fn authorized(request: Request, token: &str) -> Request {
    request.header("Authorization", &format!("Bearer {token}"))
}

/// Registers `user` through the router with the shared secret (the admin API, which stays on
/// the main process) and logs in through the router (a generic worker); the access token.
async fn register_and_log_in(scenario: &Scenario, shared: &str, user: &str) -> String {
    let path = "/_synapse/admin/v1/register";
    let (status, nonce) = call(scenario, Request::get(ROUTER_PORT, path)).await;
    assert_eq!(status, 200, "{nonce}");
    let nonce = nonce["nonce"].as_str().expect("a nonce").to_owned();
    let password = "correct horse battery staple";
    let mac = hmac_sha1_hex(
        shared,
        format!("{nonce}\0{user}\0{password}\0notadmin").as_bytes(),
    );
    let body =
        json!({"nonce": nonce, "username": user, "password": password, "admin": false, "mac": mac});
    let (status, registered) = call(scenario, Request::post(ROUTER_PORT, path).json(&body)).await;
    assert_eq!(status, 200, "register: {registered}");
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user},
        "password": password,
    });
    let (status, logged_in) = call(
        scenario,
        Request::post(ROUTER_PORT, "/_matrix/client/v3/login").json(&login),
    )
    .await;
    assert_eq!(status, 200, "login: {logged_in}");
    logged_in["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Waits until `process`'s output has a request line for `needle`.
async fn served(process: &PodProcess, what: &str, needle: &str) {
    wait_for(TIMEOUT, &format!("{what} to serve {needle}"), || async {
        process.output().contains(needle).then_some(())
    })
    .await;
}

async fn run(
    scenario: &Scenario,
    plane: &Plane,
    name: &str,
    port: u16,
    health: &str,
) -> PodProcess {
    let mut process = scenario
        .run_deployment(&plane.client, &plane.ns.name, name, None, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if port != 0 {
        process
            .wait_http_ok(port, health, TIMEOUT * 2)
            .await
            .unwrap_or_else(|e| {
                panic!("{name} never answered {health}: {e}\n{}", process.output())
            });
    }
    process
}

fn percent(id: &str) -> String {
    id.replace('!', "%21").replace(':', "%3A")
}

#[tokio::test]
async fn workers_serve_through_the_router_and_scale_without_touching_main() {
    let plane = Plane::start("workers", "info").await;
    let (client, ns) = (plane.client.clone(), plane.ns.name.clone());
    let pg = Postgres::from_env();
    let database = pg.create_database("synapse", "synapse", &random_token(), "C");
    let data = postgres::app_secret_data(
        &ns,
        "db",
        &database.name,
        &database.owner,
        &database.password,
    );
    let data: Vec<(&str, &str)> = data.iter().map(|(k, v)| (*k, v.as_str())).collect();
    postgres::put_secret(&client, &ns, "db", &data).await;
    let api = plane.synapses();
    create_synapse(
        &api,
        "hs",
        json!({
            "homeserver": {"values": {"serverName": "workers.test", "reportStats": false}},
            "externalPostgreSQL": {"secretName": "db"},
            "workers": {
                "generic": {"replicas": 1},
                "federationSender": {"replicas": 1},
                "mediaRepository": {"replicas": 1},
                "router": {"replicas": 1},
            },
        }),
    )
    .await;
    let running = wait_synapse(&api, "hs", "Ready with 3/3 workers", |s| {
        synapse_support::is_running(s) && s["status"]["workers"]["summary"] == "3/3"
    })
    .await;
    assert_eq!(
        running["status"]["workers"]["roles"],
        json!([
            {"role": "generic", "replicas": 1, "ready": 1},
            {"role": "federationSender", "replicas": 1, "ready": 1},
            {"role": "mediaRepository", "replicas": 1, "ready": 1},
        ])
    );
    // Workers and routers leave the rotation before they stop.
    for name in ["hs-generic-0", "hs-router"] {
        let deployment: Deployment = get(&client, &ns, name).await;
        let pod = deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("a pod");
        let pre_stop = pod.containers[0]
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_stop.as_ref());
        assert_eq!(
            pre_stop.and_then(|p| p.sleep.as_ref()).map(|s| s.seconds),
            Some(5),
            "{name}"
        );
    }
    for budget in ["hs-router", "hs-generic", "hs-federation", "hs-media"] {
        let pdb: PodDisruptionBudget = get(&client, &ns, budget).await;
        let spec = pdb.spec.expect("a PDB spec");
        assert_eq!(
            spec.max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
        );
    }

    let mut scenario = Scenario::new("synapse-workers").unwrap_or_else(|e| panic!("{e}"));
    for service in [
        "hs",
        "hs-main",
        "hs-generic-0",
        "hs-media-0",
        "hs-redis",
        "db-rw",
    ] {
        scenario.add_service(&ns, service);
    }
    let _db = scenario
        .forward_port(CNPG_PORT, pg.host_addr())
        .unwrap_or_else(|e| panic!("{e}"));
    let _redis = run(&scenario, &plane, "hs-redis", 0, "").await;
    // The main process first: it prepares the database schema the workers need.
    let main = boot_synapse(&scenario, &client, &ns, "hs", MAIN_PORT).await;
    let generic = run(&scenario, &plane, "hs-generic-0", 8100, "/health").await;
    let sender = run(&scenario, &plane, "hs-federation-0", 8200, "/health").await;
    let media = run(&scenario, &plane, "hs-media-0", 8400, "/health").await;
    let router = run(
        &scenario,
        &plane,
        "hs-router",
        ROUTER_PORT,
        "/_router/health",
    )
    .await;
    for (name, process) in [
        ("generic", &generic),
        ("sender", &sender),
        ("media", &media),
    ] {
        served(process, &format!("the {name} worker"), "Connected to redis").await;
    }

    let secrets: Secret = get(&client, &ns, "hs-secrets").await;
    let shared = secret_text(&secrets)
        .remove("registration_shared_secret")
        .expect("the registration shared secret");
    let token = register_and_log_in(&scenario, shared.trim(), "alice").await;
    served(
        &main,
        "the main process",
        "POST /_synapse/admin/v1/register",
    )
    .await;
    served(
        &generic,
        "the generic worker",
        "POST /_matrix/client/v3/login",
    )
    .await;

    let (status, _) = call(
        &scenario,
        authorized(
            Request::get(ROUTER_PORT, "/_matrix/client/v3/sync?timeout=0"),
            &token,
        ),
    )
    .await;
    assert_eq!(status, 200);
    served(
        &generic,
        "the generic worker",
        "GET /_matrix/client/v3/sync",
    )
    .await;
    let (status, room) = call(
        &scenario,
        authorized(
            Request::post(ROUTER_PORT, "/_matrix/client/v3/createRoom"),
            &token,
        )
        .json(&json!({"name": "workers"})),
    )
    .await;
    assert_eq!(status, 200, "{room}");
    let room = percent(room["room_id"].as_str().expect("a room"));
    let (status, sent) = call(
        &scenario,
        authorized(
            Request::new(
                "PUT",
                ROUTER_PORT,
                &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1"),
            ),
            &token,
        )
        .json(&json!({"msgtype": "m.text", "body": "through the worker"})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let messages = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=5");
    let (status, page) = call(
        &scenario,
        authorized(Request::get(ROUTER_PORT, &messages), &token),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    served(&generic, "the generic worker", "/messages").await;
    // The main process has the worker's event: persisted there through replication.
    let response = main
        .http(authorized(Request::get(MAIN_PORT, &messages), &token))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        response.text().contains("through the worker"),
        "{}",
        response.text()
    );

    let upload = authorized(
        Request::post(ROUTER_PORT, "/_matrix/media/v3/upload?filename=a.txt"),
        &token,
    )
    .body("text/plain", b"hello media".to_vec());
    let (status, uploaded) = call(&scenario, upload).await;
    assert_eq!(status, 200, "{uploaded}");
    assert!(
        uploaded["content_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("mxc://workers.test/"))
    );
    served(
        &media,
        "the media repository",
        "POST /_matrix/media/v3/upload",
    )
    .await;
    assert!(
        !main.output().contains("/_matrix/media/v3/upload"),
        "the main process served media"
    );
    drop(router);

    // Scaling the generic workers adds one and a backend, and leaves the main pod alone.
    let main_before: Deployment = get(&client, &ns, "hs").await;
    patch_spec(&api, "hs", json!({"workers": {"generic": {"replicas": 2}}})).await;
    wait_synapse(&api, "hs", "Ready with 4/4 workers", |s| {
        s["status"]["workers"]["summary"] == "4/4"
    })
    .await;
    let second: Option<Deployment> = get_opt(&client, &ns, "hs-generic-1").await;
    assert!(second.is_some(), "a second generic worker");
    let files: Secret = get(&client, &ns, "hs-workers").await;
    let nginx = secret_text(&files)
        .remove("nginx.conf")
        .expect("the router's configuration");
    assert!(nginx.contains("server hs-generic-1:8101;"), "{nginx}");
    let main_after: Deployment = get(&client, &ns, "hs").await;
    assert_eq!(
        template_hash(&main_after),
        template_hash(&main_before),
        "the main pod was not touched"
    );
    assert_eq!(
        main_after.metadata.generation,
        main_before.metadata.generation
    );

    drop((generic, sender, media, main));
    plane.finish().await;
    let _ = database;
}
