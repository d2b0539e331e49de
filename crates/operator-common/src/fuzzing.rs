//! What the property tests fuzzing the parsers of user input share (the `testing` feature): the
//! seed corpus each target keeps under `<crate>/fuzz/corpus/<target>/`, mutations of those
//! seeds, YAML documents built from the scalars YAML 1.1 and 1.2 read differently, and the size
//! of a run. docs/development.md, Fuzzing, says how to run a longer campaign.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::Config;

/// Cases per property in a plain `cargo test`: small enough for CI, where the fuzz tests of all
/// crates together take well under a minute. `PROPTEST_CASES` overrides it for a longer run.
pub const DEFAULT_CASES: u32 = 512;

/// The runner configuration of a fuzz property: the run's cases (`PROPTEST_CASES`, else
/// [`DEFAULT_CASES`]) divided by `divisor`, for a property whose cases cost more than most.
pub fn config(divisor: u32) -> Config {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    Config {
        cases: (cases / divisor).max(1),
        ..Config::default()
    }
}

/// The three properties of a fuzz target: `$check` (a function of `&str` that panics when an
/// invariant breaks) holds for any text, for documents built from `$vocabulary`, and for the
/// mutated seeds of the calling crate's corpus `$target`. The caller depends on proptest.
#[macro_export]
macro_rules! fuzz_text_properties {
    ($check:path, $vocabulary:expr, $target:literal) => {
        proptest::proptest! {
            #![proptest_config($crate::fuzzing::config(1))]

            #[test]
            fn any_text(text in $crate::fuzzing::text()) {
                $check(&text);
            }

            #[test]
            fn generated_documents(text in $crate::fuzzing::document($vocabulary)) {
                $check(&text);
            }

            #[test]
            fn mutated_seeds(
                text in $crate::fuzzing::mutated(
                    $crate::fuzzing::corpus(env!("CARGO_MANIFEST_DIR"), $target)
                )
            ) {
                $check(&text);
            }
        }
    };
}

/// The seed documents of a target, from `<crate_dir>/fuzz/corpus/<target>/` (pass
/// `env!("CARGO_MANIFEST_DIR")`), in file-name order. Panics when there are none: a property
/// without its seeds would pass without testing what it claims to.
pub fn corpus(crate_dir: &str, target: &str) -> Vec<String> {
    let dir = Path::new(crate_dir).join("fuzz/corpus").join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    paths.sort();
    let seeds: Vec<String> = paths
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()))
        })
        .collect();
    assert!(!seeds.is_empty(), "the corpus {} is empty", dir.display());
    seeds
}

/// Plain and quoted scalars whose meaning depends on the YAML version or on the reader: the
/// values a parser of user files gets wrong first.
pub const ODD_SCALARS: &[&str] = &[
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "True",
    "FALSE",
    "~",
    "null",
    "NULL",
    "''",
    "\"\"",
    "0",
    "-0",
    "017",
    "0o17",
    "0x1F",
    "0b101",
    "-0b1_01",
    "1_000",
    "1:30",
    "190:20:30.15",
    "8008",
    "65535",
    "65536",
    "-1",
    "99999999999999999999999999999999999999999",
    "1.5",
    "-.5",
    "1e3",
    "1.0e+20",
    "1e20",
    ".inf",
    "-.Inf",
    ".NaN",
    "2001-12-14",
    "2001-12-14 21:59:43.10 -5",
    "!!str 1",
    "!!int '0x10'",
    "!!float 1",
    "!!bool on",
    "!!null ''",
    "!!binary aGk=",
    "!!timestamp 2001-12-14",
    "! yes",
    "! 'no'",
    "!custom x",
    "!!map {}",
    "<<",
    "*nope",
    "'it''s'",
    "\"\\u0085\\x7f\\ud7ff\"",
    "\"\\t\\n\\\\\"",
    "é✓𝄞",
    "example.com",
    "example.com:8448",
    "'[::1]:8448'",
    "'@irc_.*'",
    "'@(a'",
    "signal_{{.}}",
    "'{{ . }}'",
    "mxc://example.org/a",
    "postgres://u:p@h/db",
    "sqlite:///x.db",
    "generate",
];

/// Pieces of YAML structure that mutations insert.
const STRUCTURE: &[&str] = &[
    "\n",
    "\n  ",
    ": ",
    "- ",
    "&a ",
    "*a",
    "<<: *a\n",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "#",
    "'",
    "\"",
    "\t",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "|\n",
    ">-\n",
    "!!",
    "! ",
    "\\",
    "\r\n",
    "\u{feff}",
];

/// Any text: arbitrary Unicode, and strings of YAML's syntax characters (which arbitrary
/// Unicode rarely hits).
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-:{}\\[\\],&*!|>'\"#%@` \n\t<~.?a-z0-9]{0,200}",
    ]
}

/// Any string, as a double-quoted scalar (JSON's escapes are YAML's).
fn quoted() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| serde_json::Value::String(s).to_string())
}

/// A scalar value: an odd scalar, or any string.
pub fn value() -> impl Strategy<Value = String> {
    prop_oneof![3 => select(ODD_SCALARS).prop_map(str::to_owned), 1 => quoted()]
}

/// A YAML node as the generator builds it, rendered to text by [`render`].
#[derive(Clone, Debug)]
enum Node {
    Scalar(String),
    /// An alias of the n-th anchor defined before it (modulo their count; none: undefined).
    Alias(usize),
    /// A value with an anchor before it.
    Anchored(Box<Node>),
    /// A sequence, in flow style (`[a, b]`) when the flag is set.
    Seq(Vec<Node>, bool),
    Map(Vec<(String, Node)>, bool),
}

/// A YAML document: a mapping whose keys and values come from `vocabulary` (a target's own
/// keys and values) and [`ODD_SCALARS`], nested a few levels, in block and flow style, with
/// anchors, aliases and merge keys.
pub fn document(vocabulary: &'static [&'static str]) -> impl Strategy<Value = String> {
    let word = prop_oneof![select(vocabulary), select(ODD_SCALARS)].prop_map(str::to_owned);
    let scalar = prop_oneof![
        4 => word.clone(),
        1 => quoted(),
        1 => "[a-z0-9][a-z0-9_.@/-]{0,19}",
        1 => (1usize..3000).prop_map(|n| "x".repeat(n)),
    ];
    let leaf = prop_oneof![
        6 => scalar.prop_map(Node::Scalar),
        1 => any::<usize>().prop_map(Node::Alias),
    ];
    let key =
        prop_oneof![4 => select(vocabulary), 1 => select(ODD_SCALARS)].prop_map(str::to_owned);
    let tree = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..6), any::<bool>())
                .prop_map(|(items, flow)| Node::Seq(items, flow)),
            (
                prop::collection::vec((key.clone(), inner.clone()), 0..6),
                any::<bool>()
            )
                .prop_map(|(entries, flow)| Node::Map(entries, flow)),
            inner.prop_map(|node| Node::Anchored(Box::new(node))),
        ]
    });
    let top_key = select(vocabulary).prop_map(str::to_owned);
    prop::collection::vec((top_key, tree), 1..12).prop_map(|entries| {
        let mut out = String::new();
        render(&Node::Map(entries, false), 0, &mut 0, &mut out);
        out
    })
}

/// Writes `node` at `indent` (block style) into `out`; `anchors` counts those defined so far.
fn render(node: &Node, indent: usize, anchors: &mut usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Seq(items, false) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                render_after(item, indent + 2, anchors, out);
            }
        }
        Node::Map(entries, false) if !entries.is_empty() => {
            for (key, value) in entries {
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                render_after(value, indent + 2, anchors, out);
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&inline(node, anchors));
            out.push('\n');
        }
    }
}

/// Writes `node` after a `key:` or `-`: on the same line, or below it when it is a block
/// collection.
fn render_after(node: &Node, indent: usize, anchors: &mut usize, out: &mut String) {
    let (anchored, node) = unanchor(node);
    let mut below = String::new();
    let on_the_line = match node {
        Node::Seq(items, false) if !items.is_empty() => None,
        Node::Map(entries, false) if !entries.is_empty() => None,
        _ => Some(inline(node, anchors)),
    };
    if on_the_line.is_none() {
        render(node, indent, anchors, &mut below);
    }
    // The anchor is numbered after its content: an alias inside it cannot name it.
    if anchored {
        out.push_str(&format!(" &a{anchors}"));
        *anchors += 1;
    }
    match on_the_line {
        Some(text) => {
            out.push(' ');
            out.push_str(&text);
            out.push('\n');
        }
        None => {
            out.push('\n');
            out.push_str(&below);
        }
    }
}

/// Whether `node` has an anchor (one: YAML allows no more), and what it anchors. An alias
/// takes no anchor either.
fn unanchor(node: &Node) -> (bool, &Node) {
    let mut anchored = false;
    let mut node = node;
    while let Node::Anchored(inner) = node {
        anchored = true;
        node = inner;
    }
    (anchored && !matches!(node, Node::Alias(_)), node)
}

/// `node` on one line: a scalar, an alias or a flow collection.
fn inline(node: &Node, anchors: &mut usize) -> String {
    let (anchored, node) = unanchor(node);
    let text = match node {
        Node::Scalar(text) => text.clone(),
        // With no anchor before it, a null: undefined aliases come from the odd scalars.
        Node::Alias(_) if *anchors == 0 => "~".to_owned(),
        Node::Alias(n) => format!("*a{}", n % *anchors),
        Node::Anchored(_) => unreachable!("unanchor removes every anchor"),
        Node::Seq(items, _) => {
            let items: Vec<String> = items.iter().map(|item| inline(item, anchors)).collect();
            format!("[{}]", items.join(", "))
        }
        Node::Map(entries, _) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{key}: {}", inline(value, anchors)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    };
    if !anchored {
        return text;
    }
    *anchors += 1;
    format!("&a{} {text}", *anchors - 1)
}

/// One edit of a seed document.
#[derive(Clone, Debug)]
enum Mutation {
    Insert(Index, String),
    Delete(Index, usize),
    Duplicate(Index, usize),
    /// Replaces the value on the line at the position (after `: ` or `- `).
    ReplaceValue(Index, String),
    /// Indents the line at the position by two more spaces, or two fewer.
    Reindent(Index, bool),
}

/// A seed of `seeds` after a few mutations: mostly still a document of the target's shape,
/// with odd values, broken structure or repeated parts here and there.
pub fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    let snippet = prop_oneof![
        value(),
        select(STRUCTURE).prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    // Replacing values mostly: that keeps the document's shape, so the checks past the
    // syntax get their share.
    let mutation = prop_oneof![
        4 => (any::<Index>(), value()).prop_map(|(at, v)| Mutation::ReplaceValue(at, v)),
        1 => (any::<Index>(), snippet).prop_map(|(at, s)| Mutation::Insert(at, s)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<Index>(), 1usize..256).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(at, deeper)| Mutation::Reindent(at, deeper)),
    ];
    (select(seeds), prop::collection::vec(mutation, 1..5)).prop_map(|(seed, mutations)| {
        let mut text = seed;
        for mutation in &mutations {
            apply(&mut text, mutation);
        }
        text
    })
}

fn apply(text: &mut String, mutation: &Mutation) {
    let at = |index: &Index, text: &str| floor_char(text, index.index(text.len() + 1));
    match mutation {
        Mutation::Insert(index, snippet) => text.insert_str(at(index, text), snippet),
        Mutation::Delete(index, len) => {
            let start = at(index, text);
            let end = floor_char(text, (start + len).min(text.len()));
            text.replace_range(start..end, "");
        }
        Mutation::Duplicate(index, len) => {
            let start = at(index, text);
            let end = floor_char(text, (start + len).min(text.len()));
            let part = text[start..end].to_owned();
            text.insert_str(end, &part);
        }
        Mutation::ReplaceValue(index, value) => {
            let (start, end) = line_at(text, at(index, text));
            let line = &text[start..end];
            if let Some(value_at) = line.find(": ").or_else(|| line.find("- ")) {
                text.replace_range(start + value_at + 2..end, value);
            }
        }
        Mutation::Reindent(index, deeper) => {
            let (start, _) = line_at(text, at(index, text));
            if *deeper {
                text.insert_str(start, "  ");
            } else if text[start..].starts_with("  ") {
                text.replace_range(start..start + 2, "");
            }
        }
    }
}

/// The largest char boundary of `text` at or before `at`.
fn floor_char(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The start and end (before its newline) of the line holding byte `at`.
fn line_at(text: &str, at: usize) -> (usize, usize) {
    let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
    let end = text[at..].find('\n').map_or(text.len(), |n| at + n);
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[test]
    fn generated_documents_are_mostly_yaml_pyyaml_would_read() {
        let mut runner = TestRunner::deterministic();
        let strategy = document(&["server_name", "listeners"]);
        let (mut read, total) = (0, 200);
        for _ in 0..total {
            let text = strategy.new_tree(&mut runner).unwrap().current();
            read += usize::from(crate::yaml11::parse(&text).is_ok());
        }
        // Most must parse, or the properties would only ever test the syntax errors.
        assert!(read > total / 2, "{read} of {total} parsed");
    }

    #[test]
    fn mutations_keep_text_valid_and_change_it() {
        let mut runner = TestRunner::deterministic();
        let seed = "a: 1\nb:\n  - é\n  - x\n".to_owned();
        let strategy = mutated(vec![seed.clone()]);
        let changed = (0..100)
            .filter(|_| strategy.new_tree(&mut runner).unwrap().current() != seed)
            .count();
        assert!(changed > 50, "{changed} of 100 changed");
    }
}
