use operator_common::registration_file::Violation as SV;

use super::*;
use crate::registration_json::{Json, python_float, render};

const URL: &str = "http://irc-heisenbridge.matrix.svc:9898";

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../e2e/testdata/heisenbridge")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn tokens() -> Tokens {
    Tokens {
        as_token: "a".repeat(64),
        hs_token: "h".repeat(64),
    }
}

/// The rendered file read back with YAML 1.1 meaning, as Synapse reads it, and as JSON.
fn reread(text: &str) -> (Value, serde_json::Value) {
    (
        yaml11::parse(text).expect("the rendered file is YAML"),
        serde_json::from_str(text).expect("the rendered file is JSON"),
    )
}

#[test]
fn the_default_registration_is_heisenbridges_own_shape() {
    let text = default_registration(URL, &tokens());
    let (yaml, json) = reread(&text);
    assert_eq!(
        json,
        serde_json::json!({
            "id": "heisenbridge",
            "url": URL,
            "as_token": "a".repeat(64),
            "hs_token": "h".repeat(64),
            "rate_limited": false,
            "sender_localpart": "heisenbridge",
            "namespaces": {
                "users": [{"regex": "@irc_.*", "exclusive": true}],
                "aliases": [],
                "rooms": [],
            },
        })
    );
    assert_eq!(check(&yaml), Vec::new(), "the default passes its own rules");
    assert!(
        text.starts_with("{\n  \"id\": \"heisenbridge\",\n"),
        "{text}"
    );
    assert!(text.ends_with("}\n"));
    assert_eq!(tokens_of(text.as_bytes()), Some(tokens()));
}

#[test]
fn tokens_are_read_back_only_when_both_are_there() {
    assert_eq!(
        tokens_of(b"as_token: x\nhs_token: y\n").unwrap().as_token,
        "x"
    );
    assert_eq!(tokens_of(b"as_token: x\n"), None);
    assert_eq!(tokens_of(b"as_token: x\nhs_token: ''\n"), None);
    assert_eq!(tokens_of(b"as_token: [x]\nhs_token: y\n"), None);
    assert_eq!(tokens_of(b"{{{"), None);
    assert_eq!(tokens_of(&[0xff, 0xfe]), None);
    assert_eq!(format!("{:?}", tokens()), "Tokens { .. }");
}

#[test]
fn a_valid_user_file_keeps_its_tokens_and_fields_and_gets_our_url() {
    let registration = user_registration(&fixture("valid.yaml"), URL).unwrap();
    let (_, json) = reread(&registration);
    assert_eq!(json["url"], URL);
    assert_eq!(json["id"], "irc-bridge");
    assert_eq!(json["as_token"], "userAsTokenFromTheConfigMap0123456789");
    assert_eq!(json["hs_token"], "userHsTokenFromTheConfigMap0123456789");
    assert_eq!(json["sender_localpart"], "ircbot");
    // YAML 1.1 meaning, as Synapse reads the user's file: `no` is false.
    assert_eq!(json["rate_limited"], false);
    assert_eq!(
        json["namespaces"]["users"],
        serde_json::json!([
            {"regex": "@ircbot:example\\.com", "exclusive": true},
            {"regex": "@ircu/.*", "exclusive": true},
        ])
    );
    assert_eq!(json["de.sorunome.msc2409.push_ephemeral"], true);
}

#[test]
fn a_missing_url_is_added() {
    let file = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                users:\n  - regex: '@x_.*'\n    exclusive: true\n";
    let (yaml, _) = reread(&user_registration(file, URL).unwrap());
    assert_eq!(yaml.get("url"), Some(&Value::Str(URL.into())));
}

fn violations(name: &str) -> Vec<Violation> {
    user_registration(&fixture(name), URL)
        .expect_err("the fixture breaks a rule")
        .0
}

#[test]
fn each_rule_is_named() {
    assert_eq!(
        violations("no-sender-localpart.yaml"),
        [Violation::Synapse(SV::MissingSenderLocalpart)]
    );
    assert_eq!(
        violations("no-users-namespace.yaml"),
        [Violation::MissingUsersNamespace]
    );
    assert_eq!(
        violations("two-users-namespaces.yaml"),
        [Violation::UsersNamespaceCount {
            found: 2,
            bot: "@heisenbridge".into()
        }]
    );
    assert_eq!(
        violations("not-exclusive.yaml"),
        [Violation::NotExclusive("@irc_.*".into())]
    );
    assert_eq!(
        violations("not-a-prefix.yaml"),
        [Violation::NotAPrefix("@irc.*".into())]
    );
    assert_eq!(
        violations("missing-tokens.yaml"),
        [
            Violation::Synapse(SV::RequiredString("as_token")),
            Violation::Synapse(SV::RequiredString("hs_token"))
        ]
    );
    assert_eq!(
        violations("exclusive-not-bool.yaml"),
        [
            Violation::Synapse(SV::BadNamespaceEntry {
                path: "namespaces.users[0]".into()
            }),
            Violation::NotExclusive("@irc_.*".into()),
        ]
    );
}

#[test]
fn synapse_field_rules() {
    let base = |extra: &str| {
        format!("id: x\nurl: null\nas_token: a\nhs_token: h\nsender_localpart: bot\n{extra}")
    };
    let check_file = |file: &str| match user_registration(file, URL) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    };
    assert_eq!(
        check_file(&base("")),
        [Violation::Synapse(SV::NamespacesNotAMapping)]
    );
    assert_eq!(
        check_file(&base("namespaces: {users: {regex: '@x_.*'}}\n")),
        [Violation::Synapse(SV::NamespaceNotAList("users".into()))]
    );
    assert_eq!(
        check_file(&base(
            "namespaces:\n  users: [{regex: '@x_.*', exclusive: true}]\n  rooms: [1]\n"
        )),
        [Violation::Synapse(SV::BadNamespaceEntry {
            path: "namespaces.rooms[0]".into()
        })]
    );
    assert_eq!(
        check_file(
            "id: 5\nas_token: a\nhs_token: h\nsender_localpart: b%t\nnamespaces:\n  \
             users: [{regex: '@x_.*', exclusive: true}]\n"
        ),
        [
            Violation::Synapse(SV::RequiredString("id")),
            Violation::Synapse(SV::SenderLocalpartNotUrlSafe("b%t".into()))
        ]
    );
    // The bot's own namespace does not count; `yes` is a YAML 1.1 boolean.
    assert_eq!(
        check_file(&base(
            "namespaces:\n  users:\n  - {regex: '@bot:example.com', exclusive: yes}\n  \
             - {regex: '@x/.+:example.com', exclusive: yes}\n"
        )),
        []
    );
}

#[test]
fn files_that_are_not_registrations() {
    let reason = |file: &str| user_registration(file, URL).unwrap_err().to_string();
    assert!(reason("").contains("holds nothing instead of a mapping"));
    assert!(reason("- a\n").contains("holds a list"));
    assert!(reason("key: [unclosed\n").contains("not valid YAML"));
    let stamped = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                   users: [{regex: '@x_.*', exclusive: true}]\ncreated: 2024-01-01\n";
    assert!(
        reason(stamped).contains("`created` holds a timestamp"),
        "{}",
        reason(stamped)
    );
    let int_key = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
                   users: [{regex: '@x_.*', exclusive: true}]\n1: one\n";
    assert!(
        reason(int_key).contains("not a string"),
        "{}",
        reason(int_key)
    );
}

#[test]
fn floats_keep_their_yaml_1_1_meaning() {
    for (f, text) in [
        (1.0, "1.0"),
        (0.5, "0.5"),
        (-2.25, "-2.25"),
        (1e20, "1.0e+20"),
        (1.5e-7, "1.5e-7"),
    ] {
        let rendered = python_float(f);
        assert_eq!(rendered, text);
        assert_eq!(yaml11::parse(&rendered).unwrap(), Value::Float(f), "{text}");
    }
    let nan = "id: x\nas_token: a\nhs_token: h\nsender_localpart: bot\nnamespaces:\n  \
               users: [{regex: '@x_.*', exclusive: true}]\nweight: .nan\n";
    let reason = user_registration(nan, URL).unwrap_err().to_string();
    assert!(reason.contains("`weight` holds the float NaN"), "{reason}");
}

#[test]
fn strings_are_escaped_for_both_readers() {
    let value = Value::Map(vec![(
        Value::Str("k\"ey".into()),
        Value::Str("line\nbreak \\ \u{1} é: #x".into()),
    )]);
    let text = render(&Json::from_yaml(&value, "").unwrap());
    let (yaml, _) = reread(&text);
    assert_eq!(yaml, value);
}

#[test]
fn characters_pyyaml_refuses_or_folds_are_written_escaped() {
    // Found by the fuzzing: a token written `"\x7f"` was copied as the raw character, and
    // Synapse refuses a file holding one ("unacceptable character"); a raw U+0085 it reads
    // as a space.
    let file = fixture("valid.yaml").replace(
        "as_token: userAsTokenFromTheConfigMap0123456789",
        r#"as_token: "a\x7fb\u0085c\x80""#,
    );
    let text = user_registration(&file, URL).unwrap();
    assert!(
        text.contains(r#""as_token": "a\u007fb\u0085c\u0080""#),
        "{text}"
    );
    assert!(text.chars().all(yaml11::printable));
    let (yaml, _) = reread(&text);
    assert_eq!(
        yaml.get("as_token"),
        Some(&Value::Str("a\u{7f}b\u{85}c\u{80}".into()))
    );
}
