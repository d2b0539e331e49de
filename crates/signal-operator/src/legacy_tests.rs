use super::*;

fn mapping(text: &str) -> Mapping {
    serde_yaml::from_str(text).unwrap()
}

/// The file the original operator rendered (mautrix-signal v0.4 on signald), with every key
/// of its template, as users of that operator hold it in their ConfigMaps.
pub(crate) const PYTHON_FIXTURE: &str =
    include_str!("../../../e2e/testdata/signal/legacy-signald.yaml");

/// The original operator's own example for a ConfigMap: the same format, with the unedited
/// example values, permissions only the template's `*`, `example.com`, `@admin:example.com`.
pub(crate) const EXAMPLE_FIXTURE: &str =
    include_str!("../../../e2e/testdata/signal/legacy-signald-example.yaml");

/// The Synapse's server name the tests migrate for.
const SERVER: &str = "matrix.example.org";

#[test]
fn formats_are_detected_by_their_markers() {
    assert_eq!(detect(&mapping(PYTHON_FIXTURE)), Some(LegacyFormat::Python));
    for (file, format) in [
        (
            "appservice:\n  database: postgres://x@y/z\n",
            Some(LegacyFormat::Python),
        ),
        (
            "appservice:\n  bot_username: signalbot\n",
            Some(LegacyFormat::Python),
        ),
        (
            "signal:\n  socket_path: /signald/signald.sock\n",
            Some(LegacyFormat::Python),
        ),
        (
            "logging:\n  version: 1\n  root: {level: DEBUG}\n",
            Some(LegacyFormat::Python),
        ),
        (
            "bridge:\n  username_template: signal_{userid}\n",
            Some(LegacyFormat::Python),
        ),
        (
            "appservice:\n  database:\n    type: sqlite3\n    uri: x.db\n",
            Some(LegacyFormat::Go),
        ),
        (
            "bridge:\n  username_template: signal_{{.}}\n",
            Some(LegacyFormat::Go),
        ),
        ("appservice:\n  username_template: signal_{{.}}\n", None),
        (
            "logging:\n  min_level: debug\n  writers: [{type: stdout}]\n",
            None,
        ),
        ("homeserver: {}\n", None),
    ] {
        assert_eq!(detect(&mapping(file)), format, "{file}");
    }
}

fn at<'a>(doc: &'a Mapping, path: &str) -> Option<&'a Value> {
    let path: Vec<&str> = path.split('.').collect();
    get_ref(doc, &path)
}

fn get_ref<'a>(doc: &'a Mapping, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = doc.get(*first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        get_ref(value.as_mapping()?, rest)
    }
}

#[test]
fn the_original_operators_file_is_carried_over_key_by_key() {
    let (new, migration) = migrate(&mapping(PYTHON_FIXTURE), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(migration.format, LegacyFormat::Python);
    for (path, want) in [
        (
            "homeserver.address",
            "http://my-synapse.matrix.svc.cluster.local:8008",
        ),
        ("homeserver.domain", "matrix.example.org"),
        ("homeserver.software", "standard"),
        (
            "appservice.address",
            "http://mautrixsignal-configmap.matrix.svc.cluster.local:29328",
        ),
        ("appservice.hostname", "0.0.0.0"),
        ("appservice.id", "signal"),
        ("appservice.bot.username", "signalbot"),
        ("appservice.bot.displayname", "Signal bridge bot"),
        (
            "appservice.bot.avatar",
            "mxc://maunium.net/wPJgTQbZOtpBFmDNkiNEMDUp",
        ),
        (
            "appservice.as_token",
            "This value is generated when generating the registration",
        ),
        ("appservice.username_template", "signal_{{.}}"),
        (
            "network.displayname_template",
            "{{or .ProfileName .PhoneNumber \"Unknown user\"}} (Signal)",
        ),
        ("database.type", "sqlite3-fk-wal"),
        ("database.uri", "file:/data/sqlite.db?_txlock=immediate"),
        ("bridge.command_prefix", "!signal"),
        ("bridge.permissions.*", "relay"),
        ("bridge.permissions.@admin:matrix.example.org", "admin"),
    ] {
        let path: Vec<&str> = match path.split_once(".permissions.") {
            Some((_, key)) => vec!["bridge", "permissions", key],
            None => path.split('.').collect(),
        };
        assert_eq!(
            get_ref(&new, &path).and_then(Value::as_str),
            Some(want),
            "{path:?}"
        );
    }
    for (path, want) in [
        ("appservice.port", Value::from(29328)),
        ("appservice.ephemeral_events", Value::Bool(false)),
        ("homeserver.retry_limit", Value::from(4)),
        ("homeserver.async_media", Value::Bool(false)),
        ("matrix.federate_rooms", Value::Bool(true)),
        ("matrix.sync_direct_chat_list", Value::Bool(false)),
        ("matrix.delivery_receipts", Value::Bool(false)),
        ("matrix.message_status_events", Value::Bool(false)),
        ("bridge.private_chat_portal_meta", Value::Bool(false)),
        ("bridge.bridge_matrix_leave", Value::Bool(true)),
        ("bridge.relay.enabled", Value::Bool(false)),
        ("encryption.allow", Value::Bool(false)),
        ("encryption.allow_key_sharing", Value::Bool(false)),
        ("double_puppet.allow_discovery", Value::Bool(false)),
    ] {
        assert_eq!(at(&new, path), Some(&want), "{path}");
    }
    assert_eq!(
        get_ref(&new, &["double_puppet", "servers", "example.com"]).and_then(Value::as_str),
        Some("https://example.com")
    );
    // signald, Python logging and the rest without an equivalent are gone.
    for gone in [
        "signal",
        "logging",
        "metrics",
        "manhole",
        "appservice.database",
    ] {
        assert_eq!(at(&new, gone), None, "{gone}");
    }
    assert_eq!(
        migration.dropped,
        [
            "homeserver.verify_ssl",
            "homeserver.connection_limit",
            "appservice.tls_cert",
            "appservice.tls_key",
            "appservice.max_body_size",
            "appservice.database_opts",
            "metrics",
            "manhole",
            "signal",
            "bridge.autocreate_group_portal",
            "bridge.autocreate_contact_portal",
            "bridge.sync_with_custom_puppets",
            "bridge.encryption.key_sharing.require_cross_signing",
            "bridge.encryption.key_sharing.require_verification",
            "bridge.delivery_error_reports",
            "bridge.periodic_sync",
            // segment_key is null: nothing to lose.
            "bridge.provisioning.prefix",
            "bridge.management_room_text",
            "bridge.management_room_multiple_messages",
            "bridge.relay.message_formats",
            "logging",
        ]
    );
    assert!(migration.notes.is_empty());
}

#[test]
fn a_postgres_database_is_carried_with_its_pool_and_a_note() {
    let file = "appservice:\n  database: postgres://signal:pw@db.example.org/signal\n  database_opts:\n    min_size: 2\n    max_size: 8\n";
    let (new, migration) = migrate(&mapping(file), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(
        at(&new, "database.uri").and_then(Value::as_str),
        Some("postgres://signal:pw@db.example.org/signal?sslmode=disable")
    );
    assert_eq!(
        at(&new, "database.type").and_then(Value::as_str),
        Some("postgres")
    );
    assert_eq!(at(&new, "database.max_idle_conns"), Some(&Value::from(2)));
    assert_eq!(at(&new, "database.max_open_conns"), Some(&Value::from(8)));
    assert!(migration.dropped.is_empty(), "{:?}", migration.dropped);
    assert_eq!(migration.notes.len(), 1);
    let err = migrate(
        &mapping("appservice:\n  database: mysql://signal:s3cr3t@db/signal\n"),
        LegacyFormat::Python,
        SERVER,
    )
    .unwrap_err();
    assert_eq!(err, ConfigProblem::LegacyDatabase("mysql".into()));
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
}

#[test]
fn postgres_uris_get_what_the_framework_adds() {
    assert_eq!(
        postgres_uri("postgres://u:p@h/db"),
        "postgres://u:p@h/db?sslmode=disable"
    );
    assert_eq!(
        postgres_uri("postgres://u:p@h/db?sslmode=require"),
        "postgres://u:p@h/db?sslmode=require"
    );
    assert_eq!(
        postgres_uri("postgres://u@h/db?application_name=x"),
        "postgres://u@h/db?application_name=x&sslmode=disable"
    );
    assert_eq!(
        postgres_uri("postgres:///db"),
        "postgres:///db?host=/var/run/postgresql"
    );
    assert_eq!(
        postgres_uri("postgresql:///db?host=/sock"),
        "postgresql:///db?host=/sock"
    );
}

#[test]
fn display_name_templates_become_go_templates() {
    let prefs = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        convert_displayname(
            "{displayname} (Signal)",
            &prefs(&["full_name", "phone"]),
            None
        )
        .as_deref(),
        Some("{{or .ProfileName .PhoneNumber \"Unknown user\"}} (Signal)")
    );
    assert_eq!(
        convert_displayname(
            "{displayname}",
            &prefs(&["full_name", "uuid"]),
            Some("prefer")
        )
        .as_deref(),
        Some("{{or .ContactName .ProfileName .UUID \"Unknown user\"}}")
    );
    assert_eq!(
        convert_displayname(
            "{displayname}",
            &prefs(&["full_name", "phone"]),
            Some("allow")
        )
        .as_deref(),
        Some("{{or .ProfileName .ContactName .PhoneNumber \"Unknown user\"}}")
    );
    assert_eq!(
        convert_displayname("{phone} - {full_name}", &prefs(&[]), None).as_deref(),
        Some("{{.PhoneNumber}} - {{.ProfileName}}")
    );
    for unconvertible in ["{last_name}", "{unknown}", "a } b", "{displayname", "{{x}}"] {
        assert_eq!(
            convert_displayname(unconvertible, &prefs(&["full_name"]), None),
            None,
            "{unconvertible}"
        );
    }
}

#[test]
fn what_cannot_be_converted_is_reported_dropped() {
    let file = "appservice:\n  database: sqlite:///x.db\nbridge:\n  username_template: signal-user\n  displayname_template: '{last_name}'\n  displayname_preference: [full_name]\n";
    let (new, migration) = migrate(&mapping(file), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(at(&new, "appservice.username_template"), None);
    assert_eq!(at(&new, "network.displayname_template"), None);
    assert_eq!(
        migration.dropped,
        [
            "bridge.username_template",
            "bridge.displayname_template",
            "bridge.displayname_preference"
        ]
    );
    assert_eq!(
        at(&new, "database.uri").and_then(Value::as_str),
        Some("file:x.db?_txlock=immediate")
    );
}

#[test]
fn provisioning_follows_the_python_switch() {
    let disabled = "bridge:\n  provisioning:\n    enabled: false\n    shared_secret: s3cr3t\n";
    let (new, _) = migrate(&mapping(disabled), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(
        at(&new, "provisioning.shared_secret").and_then(Value::as_str),
        Some("disable")
    );
    let own = "bridge:\n  provisioning:\n    enabled: true\n    shared_secret: s3cr3t\n";
    let (new, migration) = migrate(&mapping(own), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(
        at(&new, "provisioning.shared_secret").and_then(Value::as_str),
        Some("s3cr3t")
    );
    assert!(migration.dropped.is_empty());
    let generate = "bridge:\n  provisioning:\n    shared_secret: generate\n";
    let (new, _) = migrate(&mapping(generate), LegacyFormat::Python, SERVER).unwrap();
    assert_eq!(at(&new, "provisioning"), None);
}

#[test]
fn the_go_format_is_carried_over() {
    let file = r#"
homeserver:
    address: http://synapse:8008
    domain: matrix.example.org
    software: standard
appservice:
    address: http://localhost:29328
    hostname: 0.0.0.0
    port: 29328
    database:
        type: sqlite3
        uri: file:mautrix-signal.db?_txlock=immediate
        max_open_conns: 20
    id: signal
    bot:
        username: signalbot
        displayname: Signal bridge bot
    as_token: x
    hs_token: y
signal:
    device_name: mautrix-signal
bridge:
    username_template: signal_{{.}}
    displayname_template: '{{or .ContactName .ProfileName}} (Signal)'
    private_chat_portal_meta: default
    use_contact_avatars: true
    permissions:
        '*': relay
        matrix.example.org: user
    encryption:
        allow: true
        verification_levels:
            receive: unverified
logging:
    min_level: debug
    writers:
        - type: stdout
          format: pretty-colored
"#;
    let root = mapping(file);
    assert_eq!(detect(&root), Some(LegacyFormat::Go));
    let (new, migration) = migrate(&root, LegacyFormat::Go, SERVER).unwrap();
    for (path, want) in [
        ("database.type", "sqlite3-fk-wal"),
        ("database.uri", "file:mautrix-signal.db?_txlock=immediate"),
        ("appservice.bot.username", "signalbot"),
        ("appservice.username_template", "signal_{{.}}"),
        (
            "network.displayname_template",
            "{{or .ContactName .ProfileName}} (Signal)",
        ),
        ("network.device_name", "mautrix-signal"),
        ("encryption.verification_levels.receive", "unverified"),
        ("logging.min_level", "debug"),
    ] {
        assert_eq!(at(&new, path).and_then(Value::as_str), Some(want), "{path}");
    }
    assert_eq!(at(&new, "database.max_open_conns"), Some(&Value::from(20)));
    assert_eq!(
        at(&new, "network.use_contact_avatars"),
        Some(&Value::Bool(true))
    );
    assert_eq!(
        at(&new, "bridge.private_chat_portal_meta"),
        Some(&Value::Bool(true))
    );
    assert!(migration.dropped.is_empty(), "{:?}", migration.dropped);
}

fn permissions(doc: &Mapping) -> Vec<(String, String)> {
    let map = get_ref(doc, &["bridge", "permissions"]).and_then(Value::as_mapping);
    map.into_iter()
        .flatten()
        .map(|(k, v)| {
            let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
            (text(k), text(v))
        })
        .collect()
}

fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn example_permissions_become_the_original_operators_for_the_server() {
    let (new, migration) = migrate(
        &mapping(EXAMPLE_FIXTURE),
        LegacyFormat::Python,
        "chat.example.net",
    )
    .unwrap();
    assert_eq!(
        permissions(&new),
        entries(&[
            ("*", "relay"),
            ("chat.example.net", "user"),
            ("@admin:chat.example.net", "admin"),
        ])
    );
    // Reported as a change, not as a dropped key.
    assert!(!migration.dropped.iter().any(|d| d.contains("permissions")));
    assert_eq!(migration.notes.len(), 1, "{:?}", migration.notes);
    let note = &migration.notes[0];
    for named in [
        "*, example.com, @admin:example.com",
        "*: relay, chat.example.net: user, @admin:chat.example.net: admin",
        "original operator",
    ] {
        assert!(note.contains(named), "{named} missing from: {note}");
    }
}

#[test]
fn the_example_entries_are_replaced_whatever_their_levels_in_either_format() {
    for (file, format) in [
        (
            "bridge:\n  permissions:\n    '@admin:example.com': user\n    example.com: block\n    '*': admin\n",
            LegacyFormat::Python,
        ),
        (
            "appservice:\n  database: {type: sqlite3, uri: x.db}\nbridge:\n  permissions:\n    '*': relay\n    example.com: user\n    '@admin:example.com': admin\n",
            LegacyFormat::Go,
        ),
    ] {
        let (new, migration) = migrate(&mapping(file), format, SERVER).unwrap();
        assert_eq!(
            permissions(&new),
            entries(&[
                ("*", "relay"),
                (SERVER, "user"),
                ("@admin:matrix.example.org", "admin"),
            ]),
            "{file}"
        );
        assert_eq!(migration.notes.len(), 1, "{file}");
    }
}

#[test]
fn other_permissions_of_a_legacy_file_are_carried_as_they_are() {
    for kept in [
        // A subset: replacing it would grant what the file left out.
        "bridge:\n  permissions:\n    '*': relay\n    example.com: user\n",
        "bridge:\n  permissions:\n    '*': relay\n",
        // The examples and an entry of the user's own.
        "bridge:\n  permissions:\n    '*': relay\n    example.com: user\n    '@admin:example.com': admin\n    '@bob:matrix.example.org': admin\n",
        "bridge:\n  permissions:\n    '*': relay\n    matrix.example.org: user\n    '@admin:example.com': admin\n",
    ] {
        let old = mapping(kept);
        let (new, migration) = migrate(&old, LegacyFormat::Python, SERVER).unwrap();
        assert_eq!(permissions(&new), permissions(&old), "{kept}");
        assert!(migration.notes.is_empty(), "{kept}");
    }
}
