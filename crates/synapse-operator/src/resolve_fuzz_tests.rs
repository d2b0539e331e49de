//! Fuzzing of the `homeserver.yaml` resolution (docs/development.md, Fuzzing): whatever a
//! user's ConfigMap or `spec.homeserver.values` holds, it gives a configuration or a problem
//! with a documented reason, never a panic, and a configuration it gives holds together.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use operator_common::fuzzing;
use operator_common::input::Lookup;
use operator_common::yaml11;
use proptest::prelude::*;
use synapse_types::common::ConfigMapReference;
use synapse_types::synapse::{HomeserverValues, SERVER_NAME_RULE};

use super::*;
use crate::render::to_file;

/// Keys and values of a `homeserver.yaml` the operator reads.
const VOCABULARY: &[&str] = &[
    "server_name",
    "report_stats",
    "enable_registration",
    "disable_registration",
    "listeners",
    "port",
    "type",
    "http",
    "metrics",
    "tls",
    "x_forwarded",
    "resources",
    "names",
    "client",
    "federation",
    "app_service_config_files",
    "macaroon_secret_key",
    "registration_shared_secret",
    "form_secret",
    "database",
    "name",
    "sqlite3",
    "psycopg2",
    "args",
    "public_baseurl",
    "serve_server_wellknown",
    "enable_metrics",
    "bind_addresses",
    "example.com",
    "8008",
    "9000",
];

fn resolve_file(text: &str) -> Result<ResolvedConfig, ConfigProblem> {
    let config_map = ConfigMap {
        data: Some(BTreeMap::from([(HOMESERVER_KEY.into(), text.into())])),
        ..ConfigMap::default()
    };
    let input = ConfigMapInput {
        namespace: "ns".into(),
        name: "hs".into(),
        lookup: Lookup::Found(Box::new(config_map)),
    };
    let spec = Homeserver {
        config_map: Some(ConfigMapReference {
            name: "hs".into(),
            namespace: None,
        }),
        values: None,
    };
    resolve(&spec, Some(&input), None)
}

/// What holds for every file: a problem with a documented reason, or facts that agree with
/// each other, and listeners the overlay can copy so that Synapse reads them the same.
fn check(text: &str) {
    let config = match resolve_file(text) {
        Ok(config) => config,
        Err(problem) => {
            assert!(
                ConfigProblem::REASONS.contains(&problem.reason()),
                "{problem}"
            );
            return;
        }
    };
    let facts = &config.facts;
    assert_eq!(config.base_file, text, "the user's bytes are kept");
    assert_eq!(validate_server_name(&facts.server_name), Ok(()));
    assert!(facts.listener_ports.contains(&facts.client_port));
    assert!(!facts.listener_ports.contains(&0));
    if let Some(port) = facts.metrics.listener_port {
        assert!(facts.listener_ports.contains(&port));
    }
    assert!(facts.keys.contains("server_name") && facts.keys.contains("report_stats"));
    if let Some(listeners) = &facts.listeners {
        let overlay = to_file(&serde_json::json!({ "listeners": listeners }));
        assert!(overlay.chars().all(yaml11::printable), "{overlay:?}");
        let read = yaml11::parse(&overlay).unwrap_or_else(|e| panic!("{overlay:?}: {e}"));
        assert_eq!(
            read.get("listeners").and_then(yaml11::Value::to_json),
            Some(serde_json::Value::Array(listeners.clone()))
        );
    }
}

/// Names the CRD's `serverName` rule accepts: its CEL pattern, unescaped, as a generator.
fn crd_server_names() -> impl Strategy<Value = String> {
    let pattern = SERVER_NAME_RULE
        .strip_prefix("self.matches('^")
        .and_then(|rule| rule.strip_suffix("$')"))
        .expect("the rule is one self.matches")
        .replace(r"\\", r"\");
    proptest::string::string_regex(&pattern).expect("the CRD's pattern is a regex")
}

operator_common::fuzz_text_properties!(check, VOCABULARY, "homeserver");

proptest! {
    #![proptest_config(fuzzing::config(1))]

    /// Values mode: the rendered file reads back with the name, or the name is refused.
    #[test]
    fn values_server_names_resolve_or_are_refused(
        server_name in prop_oneof![3 => crd_server_names(), 1 => any::<String>()],
        report_stats in any::<bool>(),
        enable_registration in any::<bool>(),
    ) {
        let spec = Homeserver {
            config_map: None,
            values: Some(HomeserverValues {
                server_name: server_name.clone(),
                report_stats,
                enable_registration,
            }),
        };
        match resolve(&spec, None, None) {
            Ok(config) => {
                prop_assert_eq!(validate_server_name(&server_name), Ok(()));
                prop_assert_eq!(config.status().server_name, Some(server_name));
                prop_assert_eq!(config.facts.report_stats, report_stats);
                prop_assert_eq!(config.facts.registration_enabled, enable_registration);
            }
            Err(problem) => {
                prop_assert_eq!(problem.reason(), "InvalidServerName");
                prop_assert!(validate_server_name(&server_name).is_err());
            }
        }
    }
}

#[test]
fn every_seed_resolves() {
    // The mutations start from files the operator accepts, so that they reach past the first
    // check.
    for seed in fuzzing::corpus(env!("CARGO_MANIFEST_DIR"), "homeserver") {
        if let Err(problem) = resolve_file(&seed) {
            panic!("{problem}:\n{seed}");
        }
    }
}
