//! The CRDs' validation, checked offline: manifests in the original operator's shape deserialize
//! and pass the CEL rules; invalid ones fail with our messages. The same fixtures are applied to
//! a real apiserver by the e2e tests (`e2e/tests/crds.rs`), which also cover the OpenAPI checks
//! (required fields, bounds) that the offline CEL evaluator does not run.

use std::path::PathBuf;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use kube::core::cel::Validator;
use serde_json::{Value, json};
use synapse_types::{Heisenbridge, MautrixSignal, Synapse};

fn fixture(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../e2e/testdata/original-api")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

fn root_schema(crd: &CustomResourceDefinition) -> JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.clone())
        .expect("a generated CRD has a schema")
}

/// The messages of the CEL rules of `schema` that `object` breaks, given its previous state
/// `old`.
fn schema_failures(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    match Validator::new().validate(schema, object, old) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .as_slice()
            .iter()
            .map(|e| e.message.clone())
            .collect(),
    }
}

/// The messages of the CEL rules `object` breaks, given its previous state `old`.
fn cel_failures(
    crd: &CustomResourceDefinition,
    object: &Value,
    old: Option<&Value>,
) -> Vec<String> {
    schema_failures(
        &serde_json::to_value(root_schema(crd)).unwrap(),
        object,
        old,
    )
}

fn crd_for(kind: &str) -> CustomResourceDefinition {
    match kind {
        "Synapse" => Synapse::crd(),
        "Heisenbridge" => Heisenbridge::crd(),
        "MautrixSignal" => MautrixSignal::crd(),
        other => panic!("unexpected kind {other}"),
    }
}

#[test]
fn original_manifests_deserialize_and_pass_the_rules() {
    for path in [
        "synapse-values.yaml",
        "synapse-values-postgresql.yaml",
        "synapse-configmap.yaml",
        "synapse-configmap-namespace.yaml",
        "heisenbridge-default.yaml",
        "heisenbridge-configmap.yaml",
        "heisenbridge-verbose.yaml",
        "mautrixsignal-default.yaml",
        "mautrixsignal-configmap.yaml",
    ] {
        let object = fixture(path);
        let kind = object["kind"].as_str().unwrap().to_owned();
        let typed = match kind.as_str() {
            "Synapse" => serde_json::from_value::<Synapse>(object.clone()).map(|_| ()),
            "Heisenbridge" => serde_json::from_value::<Heisenbridge>(object.clone()).map(|_| ()),
            _ => serde_json::from_value::<MautrixSignal>(object.clone()).map(|_| ()),
        };
        typed.unwrap_or_else(|e| panic!("{path} does not deserialize: {e}"));
        assert_eq!(
            cel_failures(&crd_for(&kind), &object, None),
            Vec::<String>::new(),
            "{path}"
        );
    }
}

#[test]
fn original_fields_keep_their_meaning() {
    let synapse: Synapse =
        serde_json::from_value(fixture("synapse-values-postgresql.yaml")).unwrap();
    assert!(synapse.spec.create_new_postgresql);
    let values = synapse.spec.homeserver.values.unwrap();
    assert_eq!(values.server_name, "my.matrix.host");
    assert!(!values.report_stats);
    assert!(
        !values.enable_registration,
        "registration is off unless asked for"
    );

    let synapse: Synapse =
        serde_json::from_value(fixture("synapse-configmap-namespace.yaml")).unwrap();
    let config_map = synapse.spec.homeserver.config_map.unwrap();
    assert_eq!(config_map.name, "my-custom-homeserver");
    assert_eq!(config_map.namespace.as_deref(), Some("default"));

    let bridge: Heisenbridge =
        serde_json::from_value(fixture("heisenbridge-verbose.yaml")).unwrap();
    assert_eq!(bridge.spec.verbose_level, 2);
    assert_eq!(bridge.spec.synapse.name, "values");
}

#[test]
fn homeserver_needs_exactly_one_source() {
    let both = cel_failures(&Synapse::crd(), &fixture("invalid/synapse-both.yaml"), None);
    assert_eq!(both.len(), 1, "{both:?}");
    assert!(both[0].contains("mutually exclusive"), "{both:?}");

    let neither = cel_failures(
        &Synapse::crd(),
        &fixture("invalid/synapse-neither.yaml"),
        None,
    );
    assert_eq!(neither.len(), 1, "{neither:?}");
    assert!(neither[0].contains("needs one of values"), "{neither:?}");
}

fn synapse_named(server_name: &str) -> Value {
    json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "Synapse",
        "metadata": {"name": "s"},
        "spec": {"homeserver": {"values": {"serverName": server_name, "reportStats": false}}},
    })
}

#[test]
fn server_name_must_be_a_matrix_server_name() {
    for valid in [
        "example.com",
        "matrix.example.com:8448",
        "localhost",
        "synapse-1.my-ns.svc",
        "1.2.3.4",
        "1.2.3.4:1234",
        "[1234:5678::abcd]",
        "[::1]:8008",
        "[2001:db8::1.2.3.4]",
        "EXAMPLE.org",
    ] {
        let failures = cel_failures(&Synapse::crd(), &synapse_named(valid), None);
        assert!(failures.is_empty(), "{valid} rejected: {failures:?}");
    }
    for invalid in [
        "https://example.com",
        "example.com/",
        "example..com",
        "-example.com",
        "example-.com",
        "example.com.",
        "example.com:",
        "example.com:123456",
        "exa mple.com",
        "user@example.com",
        "[::1",
        "[example.com]",
        "ex_ample.com",
    ] {
        let failures = cel_failures(&Synapse::crd(), &synapse_named(invalid), None);
        assert!(
            failures
                .iter()
                .any(|m| m.contains("must be a Matrix server name")),
            "{invalid} accepted: {failures:?}"
        );
    }
}

#[test]
fn server_name_is_immutable() {
    let old = synapse_named("example.com");
    let changed = cel_failures(&Synapse::crd(), &synapse_named("example.org"), Some(&old));
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert!(
        changed[0].contains("serverName is immutable"),
        "{changed:?}"
    );
    assert!(changed[0].contains("breaks the homeserver"), "{changed:?}");

    let unchanged = cel_failures(&Synapse::crd(), &synapse_named("example.com"), Some(&old));
    assert!(unchanged.is_empty(), "{unchanged:?}");
}

/// Follows `path` (property names) from the root schema.
fn schema_at(crd: &CustomResourceDefinition, path: &[&str]) -> JSONSchemaProps {
    path.iter().fold(root_schema(crd), |schema, name| {
        schema
            .properties
            .and_then(|mut p| p.remove(*name))
            .unwrap_or_else(|| panic!("no property {name} in {path:?}"))
    })
}

#[test]
fn openapi_bounds_and_required_fields() {
    let verbose = schema_at(&Heisenbridge::crd(), &["spec", "verboseLevel"]);
    assert_eq!((verbose.minimum, verbose.maximum), (Some(0.0), Some(3.0)));

    for crd in [Heisenbridge::crd(), MautrixSignal::crd()] {
        let spec = schema_at(&crd, &["spec"]);
        assert_eq!(spec.required, Some(vec!["synapse".to_owned()]));
        let synapse = schema_at(&crd, &["spec", "synapse"]);
        assert_eq!(synapse.required, Some(vec!["name".to_owned()]));
    }
    let spec = schema_at(&Synapse::crd(), &["spec"]);
    assert_eq!(spec.required, Some(vec!["homeserver".to_owned()]));
}

#[test]
fn conditions_are_a_map_keyed_by_type() {
    for crd in [Synapse::crd(), Heisenbridge::crd(), MautrixSignal::crd()] {
        let conditions = schema_at(&crd, &["status", "conditions"]);
        assert_eq!(conditions.x_kubernetes_list_type.as_deref(), Some("map"));
        assert_eq!(
            conditions.x_kubernetes_list_map_keys,
            Some(vec!["type".to_owned()])
        );
        assert!(
            crd.spec.versions[0]
                .subresources
                .as_ref()
                .unwrap()
                .status
                .is_some()
        );
    }
}

/// `kubectl explain` shows these descriptions: every property must have one.
#[test]
fn every_field_is_described() {
    fn walk(schema: &JSONSchemaProps, path: &str, missing: &mut Vec<String>) {
        if schema.description.as_deref().is_none_or(str::is_empty) {
            missing.push(path.to_owned());
        }
        for (name, child) in schema.properties.iter().flatten() {
            walk(child, &format!("{path}.{name}"), missing);
        }
        if let Some(items) = &schema.items {
            let k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items) = items else {
                panic!("{path}: tuple arrays are not used");
            };
            for (name, child) in items.properties.iter().flatten() {
                walk(child, &format!("{path}[].{name}"), missing);
            }
        }
    }
    for crd in [Synapse::crd(), Heisenbridge::crd(), MautrixSignal::crd()] {
        let mut missing = Vec::new();
        walk(&root_schema(&crd), &crd.spec.names.kind, &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }
}

fn with_database(mut object: Value, create: Option<bool>, external: Option<&str>) -> Value {
    if let Some(create) = create {
        object["spec"]["createNewPostgreSQL"] = json!(create);
    }
    if let Some(secret) = external {
        object["spec"]["externalPostgreSQL"] = json!({"secretName": secret});
    }
    object
}

fn signal_bridge() -> Value {
    json!({
        "apiVersion": "synapse.opdev.io/v1alpha1",
        "kind": "MautrixSignal",
        "metadata": {"name": "b"},
        "spec": {"synapse": {"name": "s"}},
    })
}

#[test]
fn postgresql_is_provisioned_or_external_not_both() {
    for (crd, base) in [
        (Synapse::crd(), synapse_named("example.com")),
        (MautrixSignal::crd(), signal_bridge()),
    ] {
        let both = cel_failures(
            &crd,
            &with_database(base.clone(), Some(true), Some("db")),
            None,
        );
        assert_eq!(both.len(), 1, "{both:?}");
        assert!(both[0].contains("mutually exclusive"), "{both:?}");
        for (create, external) in [
            (Some(true), None),
            (Some(false), Some("db")),
            (None, Some("db")),
            (None, None),
        ] {
            let object = with_database(base.clone(), create, external);
            assert_eq!(cel_failures(&crd, &object, None), Vec::<String>::new());
        }
    }
}

#[test]
fn the_kind_of_database_cannot_change_after_creation() {
    for (crd, base) in [
        (Synapse::crd(), synapse_named("example.com")),
        (MautrixSignal::crd(), signal_bridge()),
    ] {
        let sqlite = with_database(base.clone(), Some(false), None);
        let sqlite_undefaulted = base.clone();
        let provisioned = with_database(base.clone(), Some(true), None);
        let external = with_database(base.clone(), None, Some("db"));
        let other_external = with_database(base.clone(), None, Some("db2"));
        for (old, new) in [
            (&sqlite, &provisioned),
            (&provisioned, &sqlite),
            (&sqlite, &external),
            (&external, &provisioned),
            (&sqlite_undefaulted, &provisioned),
        ] {
            let failures = cel_failures(&crd, new, Some(old));
            assert_eq!(failures.len(), 1, "{old} -> {new}: {failures:?}");
            assert!(failures[0].contains("cannot be switched"), "{failures:?}");
        }
        for (old, new) in [
            (&sqlite, &sqlite_undefaulted),
            (&provisioned, &provisioned),
            (&external, &other_external),
        ] {
            assert_eq!(
                cel_failures(&crd, new, Some(old)),
                Vec::<String>::new(),
                "{old} -> {new}"
            );
        }
    }
}

/// Prefix of the creation-time rules on `metadata.name`, which carry `optionalOldSelf`.
const ON_CREATION: &str = "oldSelf.hasValue() || ";

/// The root schema as the apiserver evaluates it when an object is created. The apiserver binds
/// `oldSelf` of an `optionalOldSelf` rule to an empty optional on create; kube-cel binds null,
/// on which `hasValue()` fails. So offline each such rule becomes its check, once asserted to
/// have the creation form (the e2e tests in `e2e/tests/crds.rs` run the rules as written).
fn creation_schema(crd: &CustomResourceDefinition) -> Value {
    let mut schema = serde_json::to_value(root_schema(crd)).unwrap();
    for rule in schema["x-kubernetes-validations"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        if rule.get("optionalOldSelf") == Some(&json!(true)) {
            let check = rule["rule"]
                .as_str()
                .and_then(|r| r.strip_prefix(ON_CREATION))
                .unwrap_or_else(|| panic!("an optionalOldSelf rule is a creation rule: {rule}"))
                .to_owned();
            rule["rule"] = json!(check);
            rule.as_object_mut().unwrap().remove("optionalOldSelf");
        }
    }
    schema
}

/// The messages of the CEL rules `object` breaks when it is created.
fn creation_failures(crd: &CustomResourceDefinition, object: &Value) -> Vec<String> {
    schema_failures(&creation_schema(crd), object, None)
}

/// A valid object of `kind` named `name`.
fn object_named(kind: &str, name: &str) -> Value {
    let mut object = match kind {
        "Synapse" => synapse_named("example.com"),
        "Heisenbridge" => json!({
            "apiVersion": "synapse.opdev.io/v1alpha1",
            "kind": "Heisenbridge",
            "spec": {"synapse": {"name": "s"}},
        }),
        _ => signal_bridge(),
    };
    object["metadata"] = json!({"name": name});
    object
}

/// Each kind, the suffix of its Service's name, and for a kind that provisions PostgreSQL the
/// suffix of its CloudNativePG Cluster's name (the operators' `names.rs`).
const DERIVED_NAMES: [(&str, &str, Option<&str>); 3] = [
    ("Synapse", "", Some("-pgsql")),
    ("Heisenbridge", "-heisenbridge", None),
    (
        "MautrixSignal",
        "-mautrix-signal",
        Some("-mautrix-signal-pgsql"),
    ),
];

/// Asserts `object` is accepted on creation.
fn accepted(kind: &str, object: &Value) {
    assert_eq!(
        creation_failures(&crd_for(kind), object),
        Vec::<String>::new(),
        "{kind} {}",
        object["metadata"]["name"]
    );
}

/// Asserts `object` is refused on creation by exactly one rule, whose message has `expected`.
fn refused(kind: &str, object: &Value, expected: &str) {
    let failures = creation_failures(&crd_for(kind), object);
    assert!(
        failures.len() == 1 && failures[0].contains(expected),
        "{kind} {}: {failures:?} is not one failure with {expected:?}",
        object["metadata"]["name"]
    );
}

#[test]
fn names_are_dns_labels_because_they_name_services() {
    for (kind, service, _) in DERIVED_NAMES {
        for valid in ["a", "hs", "irc-bridge-2", "a1-b2"] {
            accepted(kind, &object_named(kind, valid));
        }
        let message = format!(
            "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting \
             with a letter and ending with a letter or digit) because it names the {kind}'s \
             Service, NAME{service}"
        );
        // Object names may hold dots and start with a digit; Service names may not.
        for invalid in ["my.synapse", "1hs", "hs-", "-hs", "h_s", "Hs"] {
            refused(kind, &object_named(kind, invalid), &message);
        }
    }
}

#[test]
fn names_fit_the_service_name() {
    for (kind, service, _) in DERIVED_NAMES {
        let max = 63 - service.len();
        accepted(kind, &object_named(kind, &"a".repeat(max)));
        refused(
            kind,
            &object_named(kind, &"a".repeat(max + 1)),
            &format!(
                "metadata.name must be at most {max} characters because the {kind}'s Service is \
                 named NAME{service} and a Service name is at most 63 characters long"
            ),
        );
    }
}

#[test]
fn with_a_provisioned_database_names_fit_cloudnativepg() {
    for (kind, _, cluster) in DERIVED_NAMES {
        let Some(cluster) = cluster else { continue };
        let max = 50 - cluster.len();
        let provisioned = |name: &str| with_database(object_named(kind, name), Some(true), None);
        accepted(kind, &provisioned(&"a".repeat(max)));
        refused(
            kind,
            &provisioned(&"a".repeat(max + 1)),
            &format!(
                "with createNewPostgreSQL, metadata.name must be at most {max} characters because \
                 the {kind}'s CloudNativePG Cluster is named NAME{cluster} and CloudNativePG \
                 accepts Cluster names of at most 50 characters"
            ),
        );
        // Without a Cluster the longer name is fine.
        for (create, external) in [(Some(false), None), (None, None), (None, Some("db"))] {
            let object = object_named(kind, &"a".repeat(max + 1));
            accepted(kind, &with_database(object, create, external));
        }
    }
}

#[test]
fn storage_size_is_a_quantity_above_zero() {
    for kind in ["Synapse", "MautrixSignal"] {
        let sized = |size: Value| {
            let mut object = object_named(kind, "s");
            object["spec"]["storage"] = json!({"size": size});
            object
        };
        for valid in [
            json!("10Gi"),
            json!("500M"),
            json!("1.5Gi"),
            json!(1073741824),
            json!("1"),
        ] {
            accepted(kind, &sized(valid));
        }
        for invalid in [
            json!("10 GB"),
            json!("10GB"),
            json!("ten"),
            json!(""),
            json!("0"),
            json!(0),
            json!("-1Gi"),
            json!(-5),
        ] {
            refused(
                kind,
                &sized(invalid),
                "spec.storage.size must be a quantity above 0 such as 10Gi or 500M (no space \
                 before the unit): it is what the data volume's PersistentVolumeClaim requests",
            );
        }
    }
}

fn synapse_with_resources(resources: Value) -> Value {
    let mut object = synapse_named("example.com");
    object["spec"]["resources"] = resources;
    object
}

#[test]
fn resources_are_quantities_and_limits_cover_requests() {
    for valid in [
        json!({"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}),
        json!({"requests": {"cpu": 1}, "limits": {"cpu": "1000m"}}),
        json!({"requests": {"cpu": "500m"}, "limits": {"cpu": 1}}),
        json!({"requests": {"memory": "1Gi"}}),
        json!({"limits": {"memory": "1Gi", "cpu": 0}}),
        json!({}),
    ] {
        accepted("Synapse", &synapse_with_resources(valid));
    }
    for invalid in [
        json!({"requests": {"memory": "1 Gi"}}),
        json!({"requests": {"cpu": "lots"}}),
        json!({"limits": {"cpu": "-1"}}),
        json!({"limits": {"memory": -1}}),
        json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "1 GB"}}),
    ] {
        refused(
            "Synapse",
            &synapse_with_resources(invalid),
            "every value of spec.resources.requests and spec.resources.limits must be a quantity \
             of at least 0 such as 250m, 2, 512Mi or 2Gi (no space before the unit): Kubernetes \
             refuses the Synapse container otherwise",
        );
    }
    for invalid in [
        json!({"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}),
        json!({"requests": {"cpu": 2}, "limits": {"cpu": "1500m"}}),
        json!({"requests": {"cpu": "100m", "memory": "2Gi"}, "limits": {"memory": "2G"}}),
    ] {
        refused(
            "Synapse",
            &synapse_with_resources(invalid),
            "each limit in spec.resources.limits must be at least the request of the same \
             resource in spec.resources.requests: Kubernetes refuses a container whose request \
             exceeds its limit",
        );
    }
}

#[test]
fn a_bridge_names_its_synapse_by_a_synapse_name() {
    for kind in ["Heisenbridge", "MautrixSignal"] {
        let naming = |synapse: &str| {
            let mut object = object_named(kind, "bridge");
            object["spec"]["synapse"] = json!({"name": synapse});
            object
        };
        for valid in ["hs", "matrix-1", &"a".repeat(63)] {
            accepted(kind, &naming(valid));
        }
        for invalid in ["my.synapse", "Matrix", "1hs", "hs-", "a_b"] {
            refused(
                kind,
                &naming(invalid),
                "spec.synapse.name must be a Synapse's name, a DNS-1035 label (lowercase \
                 letters, digits and '-', starting with a letter and ending with a letter or \
                 digit): it is also the value of the label synapse.opdev.io/synapse",
            );
        }
    }
}

#[test]
fn an_exposed_synapse_has_one_way_in_and_a_dedicated_port_only_through_a_gateway() {
    let exposed = |expose: Value| {
        let mut object = object_named("Synapse", "hs");
        object["spec"]["expose"] = expose;
        object
    };
    let gateway = json!({"parentRefs": [{"name": "public"}]});
    for valid in [
        json!({"host": "matrix.example.com", "gateway": gateway}),
        json!({"host": "matrix.example.com", "gateway": gateway, "federation": "Port8448"}),
        json!({"host": "matrix.example.com", "ingress": {}, "federation": "WellKnown"}),
    ] {
        accepted("Synapse", &exposed(valid));
    }
    let one_way = "spec.expose needs exactly one of gateway (an HTTPRoute for your Gateway) or \
                   ingress (an Ingress for your ingress controller)";
    refused(
        "Synapse",
        &exposed(json!({"host": "m.example.com"})),
        one_way,
    );
    refused(
        "Synapse",
        &exposed(json!({"host": "m.example.com", "gateway": gateway, "ingress": {}})),
        one_way,
    );
    refused(
        "Synapse",
        &exposed(json!({"host": "m.example.com", "ingress": {}, "federation": "Port8448"})),
        "spec.expose.federation Port8448 needs gateway: an Ingress serves only ports 80 and 443",
    );
    refused(
        "Synapse",
        &exposed(json!({"host": "https://m.example.com/", "gateway": gateway})),
        "spec.expose.host must be a DNS host name",
    );
}
