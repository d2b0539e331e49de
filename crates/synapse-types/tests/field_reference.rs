//! The field reference under `docs/reference/` must describe exactly the API the types generate.
//! Offline: the schema comes from `Synapse::crd()` and its siblings.
//!
//! The convention the pages follow (and this test reads):
//!
//! - Each field of `spec` and `status` has one row in a Markdown table whose columns are
//!   `| Field | Type | Default | Description |`. The Field cell is the backticked full path, e.g.
//!   `` `spec.homeserver.values.serverName` ``; items of a list add `[]`, e.g.
//!   `` `status.appServices[].source.kind` ``.
//! - Fields inside an embedded Kubernetes type (the generic fields of `status.conditions` items,
//!   `spec.resources` which is a ResourceRequirements) are documented at their top path only.
//! - Type is the schema's: `string`, `boolean`, `integer`, `object`, `quantity` (int-or-string),
//!   or `[]` and the item type for a list.
//! - A Default cell that begins with a backticked value states the default the API server fills
//!   in, which must be the schema's `default`; a field with a schema default must state it that
//!   way. Defaults the operator applies without writing them into the object are written as
//!   text (e.g. "none; the operator uses `10Gi`").
//! - Every enum value appears backticked in its row, every `maxLength`, `maxItems` and
//!   `maximum` in its row, and every CEL rule's message verbatim somewhere on the page.
//! - Any backticked `spec.…` or `status.…` path on a page must exist in that page's kind, and
//!   any backticked `Synapse.spec.…`, `Heisenbridge.status.…` (kind-prefixed) path in README.md
//!   or docs/ must exist in that kind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;
use synapse_types::{Heisenbridge, MautrixSignal, Synapse};

/// Fields whose inside is an embedded Kubernetes type, documented at this path only.
const OPAQUE: &[&str] = &[
    "status.conditions",
    "spec.resources",
    "spec.workers.generic.resources",
    "spec.workers.federationSender.resources",
    "spec.workers.pusher.resources",
    "spec.workers.mediaRepository.resources",
    "spec.workers.background.resources",
];

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The kinds: (kind, reference page, root schema).
fn kinds() -> Vec<(&'static str, &'static str, Value)> {
    let schema = |crd: CustomResourceDefinition| {
        let schema = crd.spec.versions[0]
            .schema
            .clone()
            .and_then(|s| s.open_api_v3_schema)
            .expect("a generated CRD has a schema");
        serde_json::to_value(schema).expect("a schema serialises")
    };
    vec![
        (
            "Synapse",
            "docs/reference/synapse.md",
            schema(Synapse::crd()),
        ),
        (
            "Heisenbridge",
            "docs/reference/heisenbridge.md",
            schema(Heisenbridge::crd()),
        ),
        (
            "MautrixSignal",
            "docs/reference/mautrixsignal.md",
            schema(MautrixSignal::crd()),
        ),
    ]
}

/// One field of the schema.
#[derive(Debug)]
struct Field {
    type_name: String,
    default: Option<Value>,
    enum_values: Vec<String>,
    /// `maxLength`, `maxItems`, `maximum`: each must appear in the row.
    bounds: Vec<String>,
}

/// A bound as the docs write it: `3`, not the schema's `3.0`.
fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{}", n as i64),
        _ => value.to_string(),
    }
}

fn type_name(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        return "quantity".into();
    }
    match schema["type"].as_str() {
        Some("array") => format!("[]{}", type_name(&schema["items"])),
        Some(other) => other.to_owned(),
        None => "object".into(),
    }
}

/// Every documented path of `schema` below `path`, into `fields`.
fn walk(schema: &Value, path: &str, fields: &mut BTreeMap<String, Field>) {
    let bounds = ["maxLength", "maxItems", "maximum"]
        .iter()
        .filter_map(|k| schema.get(*k).map(number))
        .chain(schema["items"].get("maxLength").map(number))
        .collect();
    fields.insert(
        path.to_owned(),
        Field {
            type_name: type_name(schema),
            default: schema.get("default").cloned(),
            enum_values: schema["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            bounds,
        },
    );
    if OPAQUE.contains(&path) {
        return;
    }
    children(schema, path, fields);
}

fn children(schema: &Value, path: &str, fields: &mut BTreeMap<String, Field>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, child) in properties {
            walk(child, &format!("{path}.{name}"), fields);
        }
    }
    if schema["items"]["properties"].is_object() {
        children(&schema["items"], &format!("{path}[]"), fields);
    }
}

/// The fields of `spec` and `status` of a root schema.
fn fields_of(root: &Value) -> BTreeMap<String, Field> {
    let mut fields = BTreeMap::new();
    for top in ["spec", "status"] {
        children(&root["properties"][top], top, &mut fields);
    }
    fields
}

/// Every CEL message of a schema, at any depth.
fn cel_messages(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "x-kubernetes-validations" {
                    for rule in value.as_array().into_iter().flatten() {
                        if let Some(message) = rule["message"].as_str() {
                            out.push(message.to_owned());
                        }
                    }
                } else {
                    cel_messages(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| cel_messages(v, out)),
        _ => {}
    }
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The cells of a table row, `|` inside backticks or escaped as `\|` not splitting.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = Vec::new();
    let mut current = String::new();
    let (mut in_code, mut escaped) = (false, false);
    for c in inner.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' => {
                current.push(c);
                escaped = true;
            }
            '`' => {
                current.push(c);
                in_code = !in_code;
            }
            '|' if !in_code => cells.push(std::mem::take(&mut current).trim().to_owned()),
            _ => current.push(c),
        }
    }
    cells.push(current.trim().to_owned());
    cells
}

/// The backticked spans of a text.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_owned())
        .collect()
}

/// Whether `token` is shaped like a field path below `spec` or `status`.
fn is_path(token: &str) -> bool {
    let Some(rest) = token
        .strip_prefix("spec")
        .or_else(|| token.strip_prefix("status"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest.split('.').skip(1).all(|segment| {
            let name = segment.strip_suffix("[]").unwrap_or(segment);
            name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric())
        })
        && rest.starts_with('.')
}

/// Whether `path` is a field of `fields` (`[]` at its end naming the items of a list) or lies
/// inside an opaque one.
fn exists(fields: &BTreeMap<String, Field>, path: &str) -> bool {
    let path = path.strip_suffix("[]").unwrap_or(path);
    fields.contains_key(path)
        || OPAQUE.iter().any(|opaque| {
            fields.contains_key(*opaque)
                && (path.starts_with(&format!("{opaque}."))
                    || path.starts_with(&format!("{opaque}[]")))
        })
}

/// A documented field row: its path and cells.
struct Row {
    path: String,
    cells: Vec<String>,
    line: usize,
}

fn field_rows(page: &str) -> Vec<Row> {
    page.lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with('|'))
        .filter_map(|(index, line)| {
            let cells = cells(line);
            let first = cells.first()?;
            let path = first.strip_prefix('`')?.strip_suffix('`')?.to_owned();
            is_path(&path).then_some(Row {
                path,
                cells,
                line: index + 1,
            })
        })
        .collect()
}

fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rendering of a default as the docs write it: strings bare, the rest as JSON.
fn rendered(default: &Value) -> String {
    default
        .as_str()
        .map_or_else(|| default.to_string(), str::to_owned)
}

/// Every problem of one reference page.
fn page_problems(kind: &str, page_path: &str, root: &Value) -> Vec<String> {
    let page = read(page_path);
    let fields = fields_of(root);
    let mut problems = Vec::new();

    let rows = field_rows(&page);
    let mut documented = BTreeSet::new();
    for row in &rows {
        let at = format!("{page_path}:{}", row.line);
        if !documented.insert(row.path.clone()) {
            problems.push(format!("{at}: `{}` has more than one row", row.path));
        }
        let Some(field) = fields.get(&row.path) else {
            problems.push(format!(
                "{at}: `{}` is documented but {kind} has no such field (renamed or removed?)",
                row.path
            ));
            continue;
        };
        if row.cells.len() != 4 {
            problems.push(format!(
                "{at}: the row of `{}` has {} cells, not 4 (Field | Type | Default | Description)",
                row.path,
                row.cells.len()
            ));
            continue;
        }
        let type_cell = row.cells[1].replace('`', "");
        if !type_cell.starts_with(&field.type_name) {
            problems.push(format!(
                "{at}: `{}` is documented as type {:?}, but the schema says {}",
                row.path, row.cells[1], field.type_name
            ));
        }
        let default_cell = &row.cells[2];
        let claimed = default_cell
            .starts_with('`')
            .then(|| code_spans(default_cell).into_iter().next())
            .flatten();
        match (&field.default, claimed) {
            (Some(default), Some(claimed)) if rendered(default) == claimed => {}
            (Some(default), claimed) => problems.push(format!(
                "{at}: `{}` has the schema default `{}`, but its Default cell says {:?}",
                row.path,
                rendered(default),
                claimed.unwrap_or_else(|| default_cell.clone())
            )),
            (None, Some(claimed)) => problems.push(format!(
                "{at}: `{}` has no schema default, but its Default cell begins with `{claimed}` \
                 (write an operator-side default as text, e.g. \"none; the operator uses `x`\")",
                row.path
            )),
            (None, None) => {}
        }
        let row_text = row.cells.join(" | ");
        for value in &field.enum_values {
            if !row_text.contains(&format!("`{value}`")) {
                problems.push(format!(
                    "{at}: `{}` does not list its enum value `{value}`",
                    row.path
                ));
            }
        }
        for bound in &field.bounds {
            if !row_text.contains(bound.as_str()) {
                problems.push(format!(
                    "{at}: `{}` does not state its bound {bound}",
                    row.path
                ));
            }
        }
    }
    for path in fields.keys() {
        if !documented.contains(path) {
            problems.push(format!(
                "{page_path}: {kind} field `{path}` is not documented (add a table row whose \
                 first cell is `{path}`)"
            ));
        }
    }

    for token in code_spans(&page) {
        if is_path(&token) && !exists(&fields, &token) {
            problems.push(format!(
                "{page_path}: mentions `{token}`, which {kind} does not have"
            ));
        }
    }

    let text = normalise(&page);
    let mut messages = Vec::new();
    cel_messages(root, &mut messages);
    for message in messages {
        if !text.contains(&normalise(&message)) {
            problems.push(format!(
                "{page_path}: the CEL message {message:?} does not appear verbatim"
            ));
        }
    }
    problems
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "the field reference is out of step with the API:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn each_reference_page_documents_exactly_its_kinds_fields() {
    let kinds = kinds();
    for opaque in OPAQUE {
        assert!(
            kinds
                .iter()
                .any(|(_, _, root)| fields_of(root).contains_key(*opaque)),
            "the OPAQUE list names {opaque}, which no kind has: update the test"
        );
    }
    let problems: Vec<String> = kinds
        .iter()
        .flat_map(|(kind, page, root)| page_problems(kind, page, root))
        .collect();
    assert_no_problems(&problems);
}

/// Markdown files of README.md and docs/, recursively.
fn documentation_files() -> Vec<PathBuf> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![repo_root().join("README.md")];
    collect(&repo_root().join("docs"), &mut files);
    files.sort();
    files
}

#[test]
fn kind_prefixed_paths_in_the_docs_exist() {
    let fields: BTreeMap<&str, BTreeMap<String, Field>> = kinds()
        .iter()
        .map(|(kind, _, root)| (*kind, fields_of(root)))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documentation_files() {
        let text = std::fs::read_to_string(&file).expect("read a documentation file");
        let name = file
            .strip_prefix(repo_root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for token in code_spans(&text) {
            let Some((kind, path)) = token.split_once('.') else {
                continue;
            };
            let Some(kind_fields) = fields.get(kind) else {
                continue;
            };
            if !is_path(path) {
                continue;
            }
            checked += 1;
            if !exists(kind_fields, path) {
                problems.push(format!(
                    "{name}: mentions `{token}`, which {kind} does not have"
                ));
            }
        }
    }
    assert_no_problems(&problems);
    assert!(
        checked > 0,
        "no kind-prefixed path found: is the convention still used?"
    );
}

#[test]
fn the_reader_of_the_convention_works() {
    assert_eq!(
        cells("| `a` | `x || y` | b \\| c | d |"),
        ["`a`", "`x || y`", "b \\| c", "d"]
    );
    assert!(is_path("spec.homeserver.values.serverName"));
    assert!(is_path("status.appServices[].source.kind"));
    assert!(is_path("status.databaseConnectionInfo.State"));
    assert!(!is_path("spec"));
    assert!(!is_path("spec.homeserver: {values}"));
    assert!(!is_path("specimen.x"));
    let fields = fields_of(&kinds()[0].2);
    assert!(exists(&fields, "spec.resources.requests"));
    assert!(exists(&fields, "status.conditions[].reason"));
    assert!(exists(&fields, "status.appServices[]"));
    assert!(!exists(&fields, "spec.nothing"));
    assert_eq!(rendered(&Value::Bool(false)), "false");
    assert_eq!(rendered(&Value::String("Retain".into())), "Retain");
}
