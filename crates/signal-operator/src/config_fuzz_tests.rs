//! Fuzzing of the mautrix-signal config and its legacy migration (docs/development.md,
//! Fuzzing): any `config.yaml` gives a config or a problem, never a panic; a config it gives is
//! a fixed point (read back, as at every reconciliation, it is neither migrated again nor
//! changed), and the registration made from it keeps Synapse's rules.

use operator_common::fuzzing;
use operator_common::{registration_file, yaml11};

use super::tests::{keys, owned};
use super::*;
use crate::registration::render_registration;

/// Keys and values of bridgev2 and legacy configs.
const VOCABULARY: &[&str] = &[
    "homeserver",
    "appservice",
    "bridge",
    "database",
    "encryption",
    "logging",
    "network",
    "provisioning",
    "public_media",
    "direct_media",
    "permissions",
    "bot",
    "username",
    "avatar",
    "username_template",
    "displayname_template",
    "displayname_preference",
    "contact_list_names",
    "type",
    "uri",
    "writers",
    "min_level",
    "bot_username",
    "signal",
    "socket_path",
    "version",
    "handlers",
    "asmux",
    "shared_secret",
    "enabled",
    "pickle_key",
    "msc4190",
    "ephemeral_events",
    "private_chat_portal_meta",
    "postgres",
    "sqlite3",
    "relay",
    "user",
    "admin",
    "'*'",
    "example.com",
    "'@admin:example.com'",
    "'signal_{{.}}'",
    "'{userid}'",
    "'{displayname}'",
    "sqlite:///data/x.db",
    "postgres://u@/db",
    "prefer",
    "allow",
    "default",
    "always",
];

/// What holds for every file.
fn check(text: &str) {
    let (keys, admins) = (keys(), ["@alice:matrix.example.org".to_owned()]);
    let owned = owned(&keys, &admins);
    let prepared = match user_config(text, &owned) {
        Ok(prepared) => prepared,
        Err(problem) => {
            assert!(!problem.to_string().is_empty());
            return;
        }
    };
    let database = prepared.database().clone();
    let config = prepared.finish(OperatorDatabase::Sqlite);
    let again = user_config(&config.file, &owned)
        .unwrap_or_else(|problem| panic!("{problem}: the written file\n{}", config.file));
    assert_eq!(again.database(), &database);
    let again = again.finish(OperatorDatabase::Sqlite);
    assert_eq!(again.migration, None, "the written file is not legacy");
    assert_eq!(again.file, config.file, "the written file is a fixed point");
    let registration = render_registration(&config.registration_input(&owned));
    assert!(
        registration.chars().all(yaml11::printable),
        "{registration}"
    );
    let doc = registration_file::parse(registration.as_bytes()).expect("the registration reads");
    if let Err(violations) = registration_file::check(&doc) {
        panic!("{violations}: {registration}");
    }
}

operator_common::fuzz_text_properties!(check, VOCABULARY, "config");

#[test]
fn every_seed_gives_a_config() {
    // The mutations start from files the operator accepts, so that they reach past the first
    // check.
    for seed in fuzzing::corpus(env!("CARGO_MANIFEST_DIR"), "config") {
        check(&seed);
        let keys = keys();
        if let Err(problem) = user_config(&seed, &owned(&keys, &[])) {
            panic!("{problem}:\n{seed}");
        }
    }
}
