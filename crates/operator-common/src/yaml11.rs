//! Reads a YAML file the way Synapse does: PyYAML's `safe_load`, which resolves plain scalars by
//! the YAML 1.1 rules (`no`, `off` and `yes` are booleans, `0o17` is not an integer but `017` is).
//! A YAML 1.2 parser would give a different meaning to the same file, so the operator never uses
//! one on a user's `homeserver.yaml`; it only reads the few keys it needs through this module.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A value as PyYAML's safe loader builds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// Timestamps, binary data and integers too large for `i128`: values the operator never
    /// interprets, kept only so their presence and type can be reported.
    Other(&'static str),
    Seq(Vec<Value>),
    /// Entries in file order; a repeated key keeps its last value, as in PyYAML.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The value of `key` in a mapping (the last one when a key repeats).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as JSON, which Synapse reads back the same (JSON is YAML); `None` when it holds
    /// what JSON cannot: [`Value::Other`], a non-finite float, an integer beyond 64 bits or a
    /// mapping key that is no string.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value as Json;
        Some(match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(i64::try_from(*i).ok()?),
            Value::Float(f) => Json::Number(serde_json::Number::from_f64(*f)?),
            Value::Str(s) => Json::String(s.clone()),
            Value::Other(_) => return None,
            Value::Seq(items) => {
                Json::Array(items.iter().map(Value::to_json).collect::<Option<_>>()?)
            }
            Value::Map(entries) => {
                let mut map = serde_json::Map::new();
                for (key, value) in entries {
                    let Value::Str(key) = key else { return None };
                    map.insert(key.clone(), value.to_json()?);
                }
                Json::Object(map)
            }
        })
    }

    /// Python's truthiness of the value, which is how Synapse reads flags like `report_stats`.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Other(_) => true,
            Value::Seq(items) => !items.is_empty(),
            Value::Map(entries) => !entries.is_empty(),
        }
    }

    /// The Python type name, for error messages a user reads.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Other(name) => name,
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
        }
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum Yaml11Error {
    #[error("YAML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("the file holds {0} YAML documents; a config file holds exactly one")]
    MultipleDocuments(usize),
    #[error("unknown alias at line {line}: no anchor with that name was defined before it")]
    UnknownAlias { line: usize },
    #[error("invalid value for tag {tag} at line {line}")]
    BadTaggedValue { tag: String, line: usize },
    #[error("`<<` merge key at line {line} must hold a mapping or a list of mappings")]
    BadMerge { line: usize },
}

/// Parses one YAML document with PyYAML `safe_load` semantics. An empty file is `Value::Null`.
pub fn parse(text: &str) -> Result<Value, Yaml11Error> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| Yaml11Error::Syntax {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    match builder.documents.len() {
        0 => Ok(Value::Null),
        1 => Ok(builder.documents.pop().unwrap_or(Value::Null)),
        n => Err(Yaml11Error::MultipleDocuments(n)),
    }
}

enum Frame {
    Seq(usize, Vec<Value>),
    Map(usize, Vec<(Value, Value)>, Option<Key>),
}

/// A mapping key waiting for its value; a plain `<<` is PyYAML's merge key.
enum Key {
    Value(Value),
    Merge,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    documents: Vec<Value>,
    error: Option<Yaml11Error>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if let Err(err) = self.handle(event, mark) {
            self.error = Some(err);
        }
    }
}

impl Builder {
    fn handle(&mut self, event: Event, mark: Marker) -> Result<(), Yaml11Error> {
        match event {
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(anchor, Vec::new(), None));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(anchor, items)) = self.stack.pop() {
                    self.complete(anchor, Value::Seq(items), mark)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(anchor, entries, _)) = self.stack.pop() {
                    self.complete(anchor, Value::Map(entries), mark)?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if style == TScalarStyle::Plain
                    && tag.is_none()
                    && text == "<<"
                    && let Some(Frame::Map(_, _, pending @ None)) = self.stack.last_mut()
                {
                    *pending = Some(Key::Merge);
                    return Ok(());
                }
                let value = resolve_scalar(text, style, tag.as_ref(), mark)?;
                self.complete(anchor, value, mark)?;
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or(Yaml11Error::UnknownAlias { line: mark.line() })?;
                self.push(value, mark)?;
            }
            Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd
            | Event::Nothing => {}
        }
        Ok(())
    }

    fn complete(&mut self, anchor: usize, value: Value, mark: Marker) -> Result<(), Yaml11Error> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        self.push(value, mark)
    }

    fn push(&mut self, value: Value, mark: Marker) -> Result<(), Yaml11Error> {
        match self.stack.last_mut() {
            None => self.documents.push(value),
            Some(Frame::Seq(_, items)) => items.push(value),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => *pending = Some(Key::Value(value)),
                Some(Key::Merge) => merge_into(entries, value, mark)?,
                Some(Key::Value(key)) => entries.push((key, value)),
            },
        }
        Ok(())
    }
}

/// PyYAML's merge: keys from the merged mappings apply unless the mapping itself sets them.
fn merge_into(
    entries: &mut Vec<(Value, Value)>,
    merged: Value,
    mark: Marker,
) -> Result<(), Yaml11Error> {
    let sources = match merged {
        Value::Map(m) => vec![m],
        Value::Seq(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Map(m) => Ok(m),
                _ => Err(Yaml11Error::BadMerge { line: mark.line() }),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(Yaml11Error::BadMerge { line: mark.line() }),
    };
    // Earlier sources win over later ones, and explicit keys (already present or added later,
    // since lookups take the last entry) win over all of them: prepend in reverse order.
    for source in sources.into_iter().rev() {
        let mut merged_entries = source;
        merged_entries.append(entries);
        *entries = merged_entries;
    }
    Ok(())
}

static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .expect("valid regex")
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("valid regex")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("valid regex")
});
static NULL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").expect("valid regex"));
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
    .expect("valid regex")
});

fn resolve_scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    mark: Marker,
) -> Result<Value, Yaml11Error> {
    let bad = |tag: &str| Yaml11Error::BadTaggedValue {
        tag: tag.to_string(),
        line: mark.line(),
    };
    if let Some(tag) = tag {
        let name = if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" {
            tag.suffix.as_str()
        } else if tag.handle == "!" && tag.suffix.is_empty() {
            // The non-specific tag `!` makes a plain scalar a string.
            "str"
        } else {
            return Err(bad(&format!("{}{}", tag.handle, tag.suffix)));
        };
        return match name {
            "str" => Ok(Value::Str(text)),
            "null" if NULL.is_match(&text) => Ok(Value::Null),
            "bool" if BOOL.is_match(&text) => Ok(Value::Bool(parse_bool(&text))),
            "int" if INT.is_match(&text) => Ok(parse_int(&text)),
            "float" if FLOAT.is_match(&text) || INT.is_match(&text) => Ok(parse_float(&text)),
            "binary" | "timestamp" => Ok(Value::Other(if name == "binary" {
                "bytes"
            } else {
                "timestamp"
            })),
            other => Err(bad(&format!("!!{other}"))),
        };
    }
    if style != TScalarStyle::Plain {
        return Ok(Value::Str(text));
    }
    Ok(if BOOL.is_match(&text) {
        Value::Bool(parse_bool(&text))
    } else if INT.is_match(&text) {
        parse_int(&text)
    } else if FLOAT.is_match(&text) {
        parse_float(&text)
    } else if NULL.is_match(&text) {
        Value::Null
    } else if TIMESTAMP.is_match(&text) {
        Value::Other("timestamp")
    } else {
        Value::Str(text)
    })
}

fn parse_bool(text: &str) -> bool {
    matches!(text.to_ascii_lowercase().as_str(), "yes" | "true" | "on")
}

/// PyYAML's `construct_yaml_int`: underscores ignored, `0b`, `0x`, a leading `0` for octal, and
/// base-60 (`1:30` is 90).
fn parse_int(text: &str) -> Value {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (sign, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (-1, rest.to_string()),
        None => (1, cleaned.trim_start_matches('+').to_string()),
    };
    let magnitude = if digits == "0" {
        Some(0)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        i128::from_str_radix(bin, 2).ok()
    } else if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix('0') {
        i128::from_str_radix(oct, 8).ok()
    } else if digits.contains(':') {
        digits.split(':').try_fold(0i128, |acc, part| {
            acc.checked_mul(60)?.checked_add(part.parse::<i128>().ok()?)
        })
    } else {
        digits.parse::<i128>().ok()
    };
    match magnitude {
        Some(m) => Value::Int(sign * m),
        None => Value::Other("integer"),
    }
}

fn parse_float(text: &str) -> Value {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let lower = cleaned.to_ascii_lowercase();
    let (sign, body) = match lower.strip_prefix('-') {
        Some(rest) => (-1.0, rest.to_string()),
        None => (1.0, lower.trim_start_matches('+').to_string()),
    };
    let magnitude = if body == ".inf" {
        f64::INFINITY
    } else if body == ".nan" {
        f64::NAN
    } else if body.contains(':') {
        body.split(':').fold(0.0, |acc, part| {
            acc * 60.0 + part.parse::<f64>().unwrap_or(0.0)
        })
    } else {
        body.parse::<f64>().unwrap_or(0.0)
    };
    Value::Float(sign * magnitude)
}

#[cfg(test)]
#[path = "yaml11_tests.rs"]
mod tests;
