//! The router in front of a Synapse with workers: an nginx configuration that sends each request
//! to the workers that serve it ([`super::routes`]) and everything else to the main process. Pure.
//!
//! Why an nginx the operator deploys rather than routes in the user's Gateway or Ingress: the
//! routing table is some ninety regular expressions with per-user and per-room stickiness, which
//! an HTTPRoute cannot express (no regex matches in its standard channel, no hashing) and an
//! Ingress not portably. Behind the one Service `NAME`, the user's data plane, the bridges and
//! `status.clientUrl` stay as they are without workers.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::routes::{Pool, ROUTES};
use super::topology::{Instance, ROUTER_PORT, Role, of_role};

/// Synapse's default `max_upload_size`: larger uploads are refused by Synapse itself.
const MAX_BODY: &str = "50M";

/// The path of the router's own health check.
pub const HEALTH_PATH: &str = "/_router/health";

/// The nginx configuration of the router: the main process at `main` (host:port), the workers
/// through their Services (`NAME-<worker>`).
pub fn nginx_conf(synapse: &str, main: &str, instances: &[Instance]) -> String {
    let servers = |role: Role| -> Vec<String> {
        of_role(instances, role)
            .map(|i| format!("{}:{}", i.object_name(synapse), i.http_port()))
            .collect()
    };
    let (generic, media) = (servers(Role::Generic), servers(Role::MediaRepository));
    let served = |pool: Pool| {
        if pool.is_generic() {
            !generic.is_empty()
        } else {
            !media.is_empty()
        }
    };
    let pools: BTreeSet<Pool> = ROUTES
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| served(*p))
        .collect();

    let mut conf = format!(
        "# Written by the synapse-operator: the router of the Synapse {synapse}.\n\
         worker_processes 2;\n\
         pid /tmp/nginx.pid;\n\
         error_log stderr warn;\n\
         events {{\n  worker_connections 1024;\n}}\n\
         http {{\n\
         \x20 access_log /dev/stdout;\n\
         \x20 client_body_temp_path /tmp/client_body;\n\
         \x20 proxy_temp_path /tmp/proxy;\n\
         \x20 fastcgi_temp_path /tmp/fastcgi;\n\
         \x20 uwsgi_temp_path /tmp/uwsgi;\n\
         \x20 scgi_temp_path /tmp/scgi;\n\
         \x20 client_max_body_size {MAX_BODY};\n\
         \x20 server_tokens off;\n"
    );
    // The hash keys: the localpart in an access token (`syt_<localpart>_…`, header or query),
    // and the room of a room path.
    conf.push_str(
        "  map $arg_access_token $token_localpart {\n    default $arg_access_token;\n    \
         \"~syt_(?<localpart>.*?)_.*\" $localpart;\n  }\n  \
         map $http_authorization $mxid_localpart {\n    default $http_authorization;\n    \
         \"~Bearer syt_(?<localpart>.*?)_.*\" $localpart;\n    \"\" $token_localpart;\n  }\n  \
         map $uri $room_id {\n    default \"\";\n    \"~/rooms/(?<room>[^/]+)/\" $room;\n  }\n",
    );
    let _ = writeln!(conf, "  upstream main {{\n    server {main};\n  }}");
    for pool in &pools {
        let _ = writeln!(conf, "  upstream {} {{", pool.upstream());
        if let Some(key) = pool.hash() {
            let _ = writeln!(conf, "    hash {key} consistent;");
        }
        for server in if pool.is_generic() { &generic } else { &media } {
            let _ = writeln!(conf, "    server {server};");
        }
        conf.push_str("  }\n");
    }
    conf.push_str("  map $uri $backend {\n    default main;\n");
    for (pattern, pool) in ROUTES.iter().filter(|(_, p)| pools.contains(p)) {
        let _ = writeln!(conf, "    \"~{pattern}\" {};", pool.upstream());
    }
    let _ = write!(
        conf,
        "  }}\n\
         \x20 server {{\n\
         \x20   listen {ROUTER_PORT};\n\
         \x20   location = {HEALTH_PATH} {{\n      return 200 \"OK\";\n    }}\n\
         \x20   location / {{\n\
         \x20     # No URI part: Synapse checks signatures over the path as sent.\n\
         \x20     proxy_pass http://$backend;\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Host $host;\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20     proxy_set_header X-Forwarded-Proto $http_x_forwarded_proto;\n\
         \x20     proxy_read_timeout 600s;\n\
         \x20     proxy_buffering off;\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n"
    );
    conf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(role: Role, index: u16) -> Instance {
        Instance { role, index }
    }

    #[test]
    fn requests_go_to_their_pool_and_the_rest_to_main() {
        let instances = [
            instance(Role::Generic, 0),
            instance(Role::Generic, 1),
            instance(Role::MediaRepository, 0),
            instance(Role::FederationSender, 0),
        ];
        let conf = nginx_conf("hs", "hs-main:8008", &instances);
        for line in [
            "upstream main {\n    server hs-main:8008;\n  }",
            "upstream generic {\n    server hs-generic-0:8100;\n    server hs-generic-1:8101;\n  }",
            "upstream generic_by_user {\n    hash $mxid_localpart consistent;\n",
            "upstream generic_by_room {\n    hash $room_id consistent;\n",
            "upstream media {\n    server hs-media-0:8400;\n  }",
            "\"~^/_matrix/client/(r0|v3)/sync$\" generic_by_user;",
            "\"~^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/messages$\" generic_by_room;",
            "\"~^/_matrix/media/\" media;",
            "\"~^/_matrix/client/(api/v1|r0|v3|unstable)/login$\" generic;",
            "default main;",
            "listen 8080;",
            "proxy_pass http://$backend;",
        ] {
            assert!(conf.contains(line), "no {line:?} in\n{conf}");
        }
        assert!(
            !conf.contains("federation-0"),
            "senders serve no requests:\n{conf}"
        );
        // Media first: its prefixes must win over the generic patterns.
        assert!(conf.find("media;").unwrap() < conf.find("generic;").unwrap());
    }

    #[test]
    fn without_generic_or_media_workers_everything_stays_on_main() {
        let conf = nginx_conf("hs", "hs-main:8008", &[instance(Role::Pusher, 0)]);
        assert!(
            !conf.contains("upstream generic") && !conf.contains("/sync"),
            "{conf}"
        );
        assert!(!conf.contains("upstream media"), "{conf}");
    }
}
