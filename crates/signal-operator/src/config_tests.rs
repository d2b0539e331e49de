use super::*;
use crate::keys::Keys;
use crate::yaml::get;

pub(crate) fn keys() -> Keys {
    Keys {
        as_token: "as-token-value".into(),
        hs_token: "hs-token-value".into(),
        pickle_key: "pickle-key-value".into(),
        provisioning_secret: "provisioning-value".into(),
        public_media_key: "public-media-value".into(),
        direct_media_key: "ed25519 a_abCD AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8".into(),
    }
}

pub(crate) fn owned<'a>(keys: &'a Keys, admins: &'a [String]) -> Owned<'a> {
    Owned {
        homeserver_url: "http://hs.ns.svc:8008",
        domain: "matrix.example.org",
        appservice_url: "http://sig-mautrix-signal.ns.svc:29328",
        keys,
        admins,
    }
}

/// The config with the operator's SQLite database.
fn sqlite(prepared: Result<Prepared, ConfigProblem>) -> BridgeConfig {
    prepared.unwrap().finish(OperatorDatabase::Sqlite)
}

fn parsed(config: &BridgeConfig) -> Value {
    serde_yaml::from_str(&config.file).unwrap()
}

fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
    let path: Vec<&str> = path.split('.').collect();
    get(doc, &path).unwrap_or_else(|| panic!("{} is not set", path.join(".")))
}

#[test]
fn default_config_has_every_owned_key_and_nothing_the_bridge_refuses() {
    let keys = keys();
    let admins = vec!["@alice:matrix.example.org".to_owned()];
    let config = sqlite(default_config(&owned(&keys, &admins)));
    let doc = parsed(&config);
    for (path, want) in [
        ("homeserver.address", "http://hs.ns.svc:8008"),
        ("homeserver.domain", "matrix.example.org"),
        ("homeserver.software", "standard"),
        (
            "appservice.address",
            "http://sig-mautrix-signal.ns.svc:29328",
        ),
        ("appservice.hostname", "0.0.0.0"),
        ("appservice.id", "signal"),
        ("appservice.bot.username", "signalbot"),
        ("appservice.as_token", "as-token-value"),
        ("appservice.hs_token", "hs-token-value"),
        ("appservice.username_template", "signal_{{.}}"),
        ("database.type", "sqlite3-fk-wal"),
        (
            "database.uri",
            "file:/data/mautrix-signal.db?_txlock=immediate",
        ),
        ("encryption.pickle_key", "pickle-key-value"),
        ("provisioning.shared_secret", "provisioning-value"),
        ("public_media.signing_key", "public-media-value"),
        ("direct_media.server_key", keys.direct_media_key.as_str()),
        ("logging.writers", ""),
    ] {
        let found = at(&doc, path);
        if !want.is_empty() {
            assert_eq!(found.as_str(), Some(want), "{path}");
        }
    }
    assert_eq!(at(&doc, "appservice.port"), &Value::from(29328));
    assert_eq!(
        at(&doc, "logging.writers")[0]["type"].as_str(),
        Some("stdout")
    );
    let permissions: Mapping =
        serde_yaml::from_value(at(&doc, "bridge.permissions").clone()).unwrap();
    let expected: Mapping = serde_yaml::from_str(
        "'*': relay\nmatrix.example.org: user\n'@alice:matrix.example.org': admin\n",
    )
    .unwrap();
    assert_eq!(permissions, expected);
    assert_eq!(config.bot_username, "signalbot");
    assert_eq!(config.database, Database::Managed);
    assert!(config.ephemeral_events && !config.msc3202 && !config.msc4190);
    assert_eq!(config.migration, None);
    assert!(config.file.starts_with("# mautrix-signal configuration"));
    // Stable: the same inputs give the same bytes, so a steady state writes nothing.
    assert_eq!(
        config.file,
        sqlite(default_config(&owned(&keys, &admins))).file
    );
    assert!(!format!("{config:?}").contains("as-token-value"));
}

#[test]
fn without_admins_the_domain_entry_still_configures_permissions() {
    let keys = keys();
    let config = sqlite(default_config(&owned(&keys, &[])));
    let doc = parsed(&config);
    assert_eq!(
        at(&doc, "bridge.permissions").as_mapping().unwrap().len(),
        2
    );
}

#[test]
fn the_example_domain_is_refused() {
    let keys = keys();
    let mut o = owned(&keys, &[]);
    o.domain = "example.com";
    assert_eq!(default_config(&o), Err(ConfigProblem::ExampleDomain));
}

const MODERN: &str = r#"
network:
    displayname_template: '{{.ProfileName}} (Signal)'
    device_name: my-bridge
homeserver:
    address: http://old-synapse:8008
    domain: old.example.org
    software: standard
    async_media: true
appservice:
    address: http://localhost:29328
    hostname: 127.0.0.1
    port: 8080
    id: not-signal
    bot:
        username: sigbot
        displayname: My Signal bot
        avatar: mxc://example.org/abc
    ephemeral_events: false
    as_token: users-as-token
    hs_token: users-hs-token
    username_template: sig_{{.}}
bridge:
    command_prefix: '!sig'
    permissions:
        '*': relay
        matrix.example.org: user
        '@bob:matrix.example.org': admin
encryption:
    allow: true
    appservice: true
    pickle_key: users-own-pickle-key
provisioning:
    shared_secret: generate
database:
    type: postgres
    uri: postgres://signal:pw@db.example.org/signal?sslmode=require
logging:
    min_level: debug
    writers:
        - type: stdout
          format: json
"#;

#[test]
fn a_modern_file_keeps_its_keys_and_gets_the_owned_ones() {
    let keys = keys();
    let admins = vec!["@alice:matrix.example.org".to_owned()];
    let config = sqlite(user_config(MODERN, &owned(&keys, &admins)));
    let doc = parsed(&config);
    // Owned.
    for (path, want) in [
        ("homeserver.address", "http://hs.ns.svc:8008"),
        ("homeserver.domain", "matrix.example.org"),
        (
            "appservice.address",
            "http://sig-mautrix-signal.ns.svc:29328",
        ),
        ("appservice.hostname", "0.0.0.0"),
        ("appservice.id", "signal"),
        ("appservice.as_token", "as-token-value"),
        ("appservice.hs_token", "hs-token-value"),
        // "generate" would make a new secret at every start: the operator's instead.
        ("provisioning.shared_secret", "provisioning-value"),
    ] {
        assert_eq!(at(&doc, path).as_str(), Some(want), "{path}");
    }
    assert_eq!(at(&doc, "appservice.port"), &Value::from(29328));
    // Kept.
    for (path, want) in [
        ("network.displayname_template", "{{.ProfileName}} (Signal)"),
        ("network.device_name", "my-bridge"),
        ("appservice.bot.username", "sigbot"),
        ("appservice.bot.displayname", "My Signal bot"),
        ("appservice.username_template", "sig_{{.}}"),
        ("bridge.command_prefix", "!sig"),
        ("encryption.pickle_key", "users-own-pickle-key"),
        ("database.type", "postgres"),
        (
            "database.uri",
            "postgres://signal:pw@db.example.org/signal?sslmode=require",
        ),
        ("logging.min_level", "debug"),
    ] {
        assert_eq!(at(&doc, path).as_str(), Some(want), "{path}");
    }
    assert_eq!(at(&doc, "homeserver.async_media"), &Value::Bool(true));
    assert_eq!(
        at(&doc, "bridge.permissions")["@bob:matrix.example.org"].as_str(),
        Some("admin")
    );
    assert_eq!(
        at(&doc, "bridge.permissions")["@alice:matrix.example.org"].as_str(),
        Some("admin")
    );
    assert_eq!(config.database, Database::User);
    assert_eq!(config.bot_username, "sigbot");
    assert_eq!(
        config.username_template,
        UsernameTemplate::parse("sig_{{.}}").unwrap()
    );
    assert!(!config.ephemeral_events && config.msc3202 && !config.msc4190);
    assert_eq!(config.migration, None);
}

#[test]
fn an_unconfigured_database_or_sqlite_is_managed_by_the_operator() {
    let keys = keys();
    for database in [
        "database:\n  type: postgres\n  uri: postgres://user:password@host/database?sslmode=disable\n",
        "database:\n  type: sqlite3\n  uri: /somewhere/else.db\n",
        "database:\n  type: sqlite3-fk-wal\n  uri: file:/data/x.db\n",
        "homeserver: {}\n",
    ] {
        let config = sqlite(user_config(database, &owned(&keys, &[])));
        let doc = parsed(&config);
        assert_eq!(config.database, Database::Managed, "{database}");
        assert_eq!(at(&doc, "database.uri").as_str(), Some(SQLITE_URI));
        assert_eq!(at(&doc, "database.type").as_str(), Some(SQLITE_TYPE));
    }
}

#[test]
fn files_that_cannot_be_understood_say_why() {
    let keys = keys();
    let problem = |file: &str| user_config(file, &owned(&keys, &[])).unwrap_err();
    assert!(matches!(problem("a: [1, 2"), ConfigProblem::Yaml(_)));
    assert!(matches!(problem("a: 1\na: 2\n"), ConfigProblem::Yaml(_)));
    assert_eq!(problem(""), ConfigProblem::Empty);
    assert_eq!(problem("# only a comment\n"), ConfigProblem::Empty);
    assert_eq!(problem("- a\n- b\n"), ConfigProblem::NotAMapping("a list"));
    assert_eq!(
        problem("just some text"),
        ConfigProblem::NotAMapping("a string")
    );
    assert_eq!(
        problem("appservice: 5\n"),
        ConfigProblem::SectionNotAMapping {
            path: "appservice".into(),
            found: "a number"
        }
    );
    assert_eq!(
        problem("bridge:\n  permissions: [relay]\n"),
        ConfigProblem::SectionNotAMapping {
            path: "bridge.permissions".into(),
            found: "a list"
        }
    );
    assert_eq!(
        problem("appservice:\n  bot:\n    username: [a]\n"),
        ConfigProblem::NotAString {
            path: "appservice.bot.username".into(),
            found: "a list"
        }
    );
    assert_eq!(
        problem("appservice:\n  username_template: signal_x\n"),
        ConfigProblem::UsernameTemplate("signal_x".into())
    );
    assert_eq!(
        problem("appservice:\n  bot:\n    username: Signal Bot\n"),
        ConfigProblem::BotUsername("Signal Bot".into())
    );
    assert_eq!(
        problem("appservice:\n  bot:\n    avatar: https://example.org/a.png\n"),
        ConfigProblem::BotAvatar("https://example.org/a.png".into())
    );
    assert_eq!(
        problem("bridge:\n  permissions:\n    '*': superuser\n"),
        ConfigProblem::PermissionLevel {
            key: "*".into(),
            found: "the unknown level \"superuser\"".into()
        }
    );
    assert_eq!(
        problem(
            "bridge:\n  permissions:\n    '*': relay\n    example.com: user\n    '@admin:example.com': admin\n"
        ),
        ConfigProblem::PermissionsOnlyExamples
    );
    // Every message says what to do and names the key.
    let message = problem("appservice:\n  username_template: signal_x\n").to_string();
    assert!(message.contains("{{.}}"), "{message}");
}

#[test]
fn spec_admins_make_an_example_only_permission_map_acceptable() {
    let keys = keys();
    let admins = vec!["@root:matrix.example.org".to_owned()];
    let file = "bridge:\n  permissions:\n    '*': relay\n";
    assert_eq!(
        user_config(file, &owned(&keys, &[])).unwrap_err(),
        ConfigProblem::PermissionsOnlyExamples
    );
    let config = sqlite(user_config(file, &owned(&keys, &admins)));
    let doc = parsed(&config);
    assert_eq!(
        at(&doc, "bridge.permissions").as_mapping().unwrap().len(),
        2
    );
}

#[test]
fn numeric_and_flag_permissions_are_accepted_as_the_bridge_accepts_them() {
    let keys = keys();
    let file = "bridge:\n  permissions:\n    '*': 5\n    matrix.example.org: {commands: true, login: true}\n    '@x:matrix.example.org': ADMIN\n";
    assert!(user_config(file, &owned(&keys, &[])).is_ok());
}

#[test]
fn a_postgresql_database_given_to_the_operator_replaces_sqlite_without_its_password() {
    let keys = keys();
    let connection = crate::database::tests::connection(&[("sslmode", "disable")]);
    for prepared in [
        default_config(&owned(&keys, &[])).unwrap(),
        // A file whose database is SQLite or the example gets the operator's too.
        user_config(
            "database:\n  type: sqlite3-fk-wal\n  uri: file:/data/x.db\n  max_open_conns: 5\n",
            &owned(&keys, &[]),
        )
        .unwrap(),
    ] {
        assert_eq!(prepared.database(), &Database::Managed);
        let config = prepared.finish(OperatorDatabase::Postgres(&connection));
        let doc = parsed(&config);
        assert_eq!(at(&doc, "database.type").as_str(), Some("postgres"));
        assert_eq!(
            at(&doc, "database.uri").as_str(),
            Some("postgres://signal@pg.db.svc:5432/signal?sslmode=disable")
        );
        assert_eq!(at(&doc, "database").as_mapping().unwrap().len(), 2);
        assert!(!config.file.contains("pw-never-shown"), "{}", config.file);
    }
}

#[test]
fn a_file_with_its_own_postgresql_database_keeps_it() {
    let keys = keys();
    let prepared = user_config(MODERN, &owned(&keys, &[])).unwrap();
    assert_eq!(prepared.database(), &Database::User);
    let connection = crate::database::tests::connection(&[]);
    let config = prepared.finish(OperatorDatabase::Postgres(&connection));
    assert_eq!(
        at(&parsed(&config), "database.uri").as_str(),
        Some("postgres://signal:pw@db.example.org/signal?sslmode=require")
    );
}

const EXAMPLE_PERMISSIONS: &str = "bridge:\n  permissions:\n    '*': relay\n    example.com: user\n    '@admin:example.com': admin\n";

fn permissions_of(config: &BridgeConfig) -> Mapping {
    serde_yaml::from_value(at(&parsed(config), "bridge.permissions").clone()).unwrap()
}

#[test]
fn the_original_operators_example_file_gets_its_permissions_for_the_server() {
    let keys = keys();
    let admins = vec!["@alice:matrix.example.org".to_owned()];
    let file = crate::legacy::tests::EXAMPLE_FIXTURE;
    let config = sqlite(user_config(file, &owned(&keys, &admins)));
    let expected: Mapping = serde_yaml::from_str(
        "'*': relay\nmatrix.example.org: user\n'@admin:matrix.example.org': admin\n'@alice:matrix.example.org': admin\n",
    )
    .unwrap();
    assert_eq!(permissions_of(&config), expected);
    let migration = config.migration.expect("a migration");
    assert!(
        migration
            .notes
            .iter()
            .any(|n| n.contains("example entries")),
        "{:?}",
        migration.notes
    );
    assert_eq!(
        at(
            &parsed(&sqlite(user_config(file, &owned(&keys, &[])))),
            "homeserver.domain"
        )
        .as_str(),
        Some("matrix.example.org")
    );
}

#[test]
fn a_bridgev2_file_keeps_its_example_permissions_exactly_or_is_refused() {
    let keys = keys();
    assert_eq!(
        user_config(EXAMPLE_PERMISSIONS, &owned(&keys, &[])).unwrap_err(),
        ConfigProblem::PermissionsOnlyExamples
    );
    // With spec.admins the bridge accepts them: the user's entries stay, none rewritten.
    let admins = vec!["@root:matrix.example.org".to_owned()];
    let config = sqlite(user_config(EXAMPLE_PERMISSIONS, &owned(&keys, &admins)));
    let mut expected: Mapping =
        serde_yaml::from_str("'*': relay\nexample.com: user\n'@admin:example.com': admin\n")
            .unwrap();
    expected.insert(string("@root:matrix.example.org"), string("admin"));
    assert_eq!(permissions_of(&config), expected);
    assert_eq!(config.migration, None);
}

#[test]
fn a_file_serde_yaml_cannot_write_back_is_refused_not_a_panic() {
    // Found by the fuzzing: a tagged mapping key reads, but writing the config failed and
    // `finish` panicked.
    let keys = keys();
    for file in [
        "permissions:\n  ! yes: homeserver\n",
        "network:\n  !foo key: 1\n",
    ] {
        assert_eq!(
            user_config(file, &owned(&keys, &[])).unwrap_err(),
            ConfigProblem::Unwritable,
            "{file}"
        );
    }
    // A tagged value is written back.
    let config = sqlite(user_config(
        "network:\n  key: !foo value\n",
        &owned(&keys, &[]),
    ));
    assert!(config.file.contains("key: !foo value"), "{}", config.file);
}
