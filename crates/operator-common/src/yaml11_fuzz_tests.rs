//! Fuzzing of the YAML 1.1 reader (docs/development.md, Fuzzing): it returns a value or an
//! error for any text, never panics, bounds the depth and size of what it builds, and what it
//! reads as JSON reads back the same.

use proptest::prelude::*;

use super::*;
use crate::fuzzing;

/// Keys and values of the files the operators read with this reader.
const VOCABULARY: &[&str] = &[
    "server_name",
    "report_stats",
    "listeners",
    "port",
    "type",
    "http",
    "resources",
    "names",
    "client",
    "tls",
    "id",
    "url",
    "as_token",
    "namespaces",
    "users",
    "regex",
    "exclusive",
    "<<",
];

/// The number of values in `value`, counted as the reader counts them.
fn size(value: &Value) -> usize {
    1 + match value {
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(k, v)| size(k) + size(v)).sum(),
        _ => 0,
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// What holds for every text: a value within the limits or an error, and a value JSON can
/// carry reads back the same from the JSON written for it (which is how the operator copies
/// a user's values into its own files).
fn check(text: &str) {
    let Ok(value) = parse(text) else { return };
    assert!(depth(&value) <= MAX_DEPTH);
    if let Some(json) = value.to_json() {
        let written = escape_unprintable(&serde_json::to_string_pretty(&json).unwrap());
        assert!(written.chars().all(printable), "{written:?}");
        let read = parse(&written).unwrap_or_else(|e| panic!("{written:?}: {e}"));
        assert_eq!(read.to_json(), Some(json), "{written:?}");
    }
}

crate::fuzz_text_properties!(check, VOCABULARY, "yaml11");

proptest! {
    #![proptest_config(fuzzing::config(1))]

    /// Nesting up to the limit reads, deeper is refused (flow, block, and block on one line).
    #[test]
    fn nesting_is_refused_past_the_limit(levels in 1usize..400, style in 0..3) {
        let text = match style {
            0 => "[".repeat(levels) + &"]".repeat(levels),
            1 => (0..levels).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
            _ => "- ".repeat(levels) + "x",
        };
        match parse(&text) {
            Ok(value) => {
                prop_assert!(levels <= MAX_DEPTH);
                prop_assert_eq!(depth(&value), levels);
            }
            Err(e) => {
                prop_assert!(matches!(e, Yaml11Error::TooDeep { .. }), "{e}");
                prop_assert!(levels > MAX_DEPTH);
            }
        }
    }

}

proptest! {
    // Fewer cases: one near the limit builds a million values.
    #![proptest_config(fuzzing::config(8))]

    /// An alias bomb of any shape reads exactly when it expands to at most [`MAX_VALUES`].
    #[test]
    fn alias_expansion_is_bounded(width in 2usize..12, levels in 1usize..10) {
        let mut text = format!("l0: &l0 [{}]\n", vec!["lol"; width].join(", "));
        for level in 1..levels {
            let aliases = vec![format!("*l{}", level - 1); width].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{aliases}]\n"));
        }
        // The mapping, then each level's key and list: 1 + width × the list below it.
        let mut list = 1 + width;
        let mut total = 1 + 1 + list;
        for _ in 1..levels {
            list = list.saturating_mul(width).saturating_add(1);
            total = total.saturating_add(1 + list);
        }
        match parse(&text) {
            Ok(value) => prop_assert_eq!(size(&value), total),
            Err(e) => {
                prop_assert!(matches!(e, Yaml11Error::TooLarge { .. }), "{e}");
                prop_assert!(total > MAX_VALUES);
            }
        }
    }
}
