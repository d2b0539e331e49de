//! The YAML 1.1 reading of user files, on fixtures.

use super::*;

fn top(text: &str, key: &str) -> Value {
    parse(text).unwrap().get(key).cloned().unwrap()
}

#[test]
fn yaml_1_1_booleans_are_booleans() {
    for (text, want) in [
        ("no", false),
        ("No", false),
        ("off", false),
        ("OFF", false),
        ("false", false),
        ("yes", true),
        ("on", true),
        ("True", true),
    ] {
        assert_eq!(top(&format!("k: {text}"), "k"), Value::Bool(want), "{text}");
    }
}

#[test]
fn quoted_and_non_boolean_words_stay_strings() {
    assert_eq!(top("k: 'no'", "k"), Value::Str("no".into()));
    assert_eq!(top("k: \"off\"", "k"), Value::Str("off".into()));
    // PyYAML has no y/n booleans.
    assert_eq!(top("k: n", "k"), Value::Str("n".into()));
    assert_eq!(top("k: !!str yes", "k"), Value::Str("yes".into()));
    assert!(top("k: 'no'", "k").is_truthy());
}

#[test]
fn integers_follow_yaml_1_1() {
    assert_eq!(top("k: 8008", "k"), Value::Int(8008));
    assert_eq!(top("k: 0x1F", "k"), Value::Int(31));
    assert_eq!(top("k: 017", "k"), Value::Int(15));
    assert_eq!(top("k: 1:30", "k"), Value::Int(90));
    assert_eq!(top("k: 1_000", "k"), Value::Int(1000));
    assert_eq!(top("k: -0b101", "k"), Value::Int(-5));
    assert_eq!(top("k: 0o17", "k"), Value::Str("0o17".into()));
    assert_eq!(top("k: 1.5", "k"), Value::Float(1.5));
}

#[test]
fn empty_values_are_null() {
    let doc = parse("presence_router:\nredis: ~\nk: null\n").unwrap();
    assert_eq!(doc.get("presence_router"), Some(&Value::Null));
    assert_eq!(doc.get("redis"), Some(&Value::Null));
    assert_eq!(doc.get("k"), Some(&Value::Null));
    assert_eq!(parse("").unwrap(), Value::Null);
    assert_eq!(parse("# only a comment\n").unwrap(), Value::Null);
}

#[test]
fn server_names_with_ports_and_dates() {
    assert_eq!(
        top("k: example.com:8448", "k"),
        Value::Str("example.com:8448".into())
    );
    assert_eq!(top("k: 2001-12-14", "k"), Value::Other("timestamp"));
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let doc = parse(
        "base: &b {port: 8008, type: http}\nl: *b\nm:\n  <<: *b\n  port: 9000\nn:\n  port: 1\n  <<: [*b]\n",
    )
    .unwrap();
    assert_eq!(doc.get("l").unwrap().get("port"), Some(&Value::Int(8008)));
    let m = doc.get("m").unwrap();
    assert_eq!(m.get("port"), Some(&Value::Int(9000)));
    assert_eq!(m.get("type"), Some(&Value::Str("http".into())));
    assert_eq!(doc.get("n").unwrap().get("port"), Some(&Value::Int(1)));
}

#[test]
fn quoted_merge_key_is_an_ordinary_key() {
    let doc = parse("m:\n  '<<': {a: 1}\n").unwrap();
    assert!(doc.get("m").unwrap().get("<<").is_some());
    assert_eq!(doc.get("m").unwrap().get("a"), None);
}

#[test]
fn repeated_key_keeps_the_last_value() {
    assert_eq!(top("k: 1\nk: 2\n", "k"), Value::Int(2));
}

#[test]
fn syntax_errors_say_where() {
    let err = parse("server_name: [unclosed\n").unwrap_err();
    assert!(matches!(err, Yaml11Error::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("line"), "{err}");
    assert_eq!(
        parse("a: 1\n---\nb: 2\n").unwrap_err(),
        Yaml11Error::MultipleDocuments(2)
    );
    assert!(matches!(
        parse("k: *nope\n").unwrap_err(),
        Yaml11Error::Syntax { .. } | Yaml11Error::UnknownAlias { .. }
    ));
}

#[test]
fn to_json_keeps_the_yaml_1_1_meaning_or_refuses() {
    let listeners = top(
        "listeners:\n  - port: 8008\n    tls: off\n    bind_addresses: ['::', 0.0.0.0]\n    x_forwarded: yes\n    resources: [{names: [client, 'no'], compress: false}]\n",
        "listeners",
    );
    assert_eq!(
        listeners.to_json(),
        Some(serde_json::json!([{
            "port": 8008,
            "tls": false,
            "bind_addresses": ["::", "0.0.0.0"],
            "x_forwarded": true,
            "resources": [{"names": ["client", "no"], "compress": false}],
        }]))
    );
    assert_eq!(top("k: 2001-12-14", "k").to_json(), None);
    assert_eq!(top("k: {1: a}", "k").to_json(), None);
    assert_eq!(top("k: .nan", "k").to_json(), None);
}

// Regression tests of what the fuzzing (yaml11_fuzz_tests.rs) found.

#[test]
fn deep_block_nesting_is_refused_not_a_stack_overflow() {
    // Parser::load recursed once per level: a thousand indented levels overflowed the stack.
    let indented: String = (0..1000)
        .map(|i| format!("{}- \n", " ".repeat(i * 2)))
        .collect();
    let one_line = "- ".repeat(100_000) + "x";
    let flow = "{a: ".repeat(100_000);
    for text in [indented, one_line, flow] {
        let err = parse(&text).unwrap_err();
        assert!(matches!(err, Yaml11Error::TooDeep { .. }), "{err:?}");
        assert!(err.to_string().contains("deeper than 128 levels"), "{err}");
    }
    let at_the_limit = "- ".repeat(MAX_DEPTH) + "x";
    assert!(parse(&at_the_limit).is_ok());
}

#[test]
fn a_billion_laughs_is_refused_before_it_is_built() {
    // Each alias was a full copy: nine levels of ten aliases built 10^9 values.
    let bomb = include_str!("../fuzz/dos/alias-bomb.yaml");
    let started = std::time::Instant::now();
    let err = parse(bomb).unwrap_err();
    assert!(matches!(err, Yaml11Error::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().contains("an alias counts as a copy"),
        "{err}"
    );
    // Bounded work: well under what building it would take, even in a debug build.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    // Aliases within the limit still read, merge keys included.
    let small = "a: &a [x, y]\nb: [*a, *a]\nc: &c {k: 1}\nd: {<<: [*c, *c]}\n";
    assert!(parse(small).is_ok());
}

#[test]
fn the_non_specific_tag_resolves_like_a_plain_scalar() {
    // PyYAML gives `! yes` and even `! 'yes'` the plain scalar's meaning: True, not "yes".
    assert_eq!(top("k: ! yes", "k"), Value::Bool(true));
    assert_eq!(top("k: ! 'no'", "k"), Value::Bool(false));
    assert_eq!(top("k: ! \"12\"", "k"), Value::Int(12));
    assert_eq!(top("k: ! 0o17", "k"), Value::Str("0o17".into()));
}

#[test]
fn floats_json_writes_with_an_exponent_are_not_copied() {
    // serde_json writes 1e20 as `1e20`, which YAML 1.1 reads as a string.
    assert_eq!(top("k: 1.0e+20", "k").to_json(), None);
    assert_eq!(top("k: 1.0e-7", "k").to_json(), None);
    assert_eq!(top("k: 1.5", "k").to_json(), Some(serde_json::json!(1.5)));
}

#[test]
fn json_for_pyyaml_escapes_what_it_refuses_or_folds() {
    let json = serde_json::to_string(&serde_json::json!({"k": "a\u{80}b\u{85}c\u{7f}d\u{fffe}é"}))
        .unwrap();
    let escaped = escape_unprintable(&json);
    assert_eq!(escaped, r#"{"k":"a\u0080b\u0085c\u007fd\ufffeé"}"#);
    assert_eq!(
        parse(&escaped).unwrap().get("k"),
        Some(&Value::Str("a\u{80}b\u{85}c\u{7f}d\u{fffe}é".into()))
    );
    for c in ['a', '\n', '\u{85}', 'é', '𝄞'] {
        assert!(printable(c), "{c:?}");
    }
    for c in ['\0', '\u{7f}', '\u{80}', '\u{9f}', '\u{fffe}', '\u{1b}'] {
        assert!(!printable(c), "{c:?}");
    }
}
