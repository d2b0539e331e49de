//! Reads a YAML file the way Synapse does: PyYAML's `safe_load`, which resolves plain scalars by
//! the YAML 1.1 rules (`no`, `off` and `yes` are booleans, `0o17` is not an integer but `017` is).
//! A YAML 1.2 parser would give a different meaning to the same file, so the operator never uses
//! one on a user's `homeserver.yaml`; it only reads the few keys it needs through this module.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How deeply collections may nest. A config file needs a handful of levels; without a limit a
/// deeply indented file exhausts the stack (the parser limits flow collections only).
pub const MAX_DEPTH: usize = 128;

/// How many values a document may expand to, aliases counted as the copies they become: more
/// than a ConfigMap's 1 MiB can hold without aliases, far less than an alias bomb ("billion
/// laughs") would build.
pub const MAX_VALUES: usize = 1_000_000;

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
    /// mapping key that is no string; or a float JSON writes in a form YAML 1.1 reads as a
    /// string (`1e20`: YAML 1.1 floats need a `.` and a signed exponent).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        use serde_json::Value as Json;
        Some(match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(i64::try_from(*i).ok()?),
            Value::Float(f) => {
                let number = serde_json::Number::from_f64(*f)?;
                FLOAT.is_match(&number.to_string()).then_some(())?;
                Json::Number(number)
            }
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
    #[error(
        "the document nests lists and mappings deeper than {MAX_DEPTH} levels (at line {line}): flatten it"
    )]
    TooDeep { line: usize },
    #[error(
        "the document expands to more than {MAX_VALUES} values (at line {line}; an alias counts as a copy of what it names): make it smaller"
    )]
    TooLarge { line: usize },
}

/// Parses one YAML document with PyYAML `safe_load` semantics. An empty file is `Value::Null`.
pub fn parse(text: &str) -> Result<Value, Yaml11Error> {
    let mut builder = Builder::default();
    // The events are pulled one by one rather than through `Parser::load`, which recurses once
    // per nesting level: the builder keeps its own stack and limits it.
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| match e.info() {
            // The scanner's own limit on flow collections, which it may meet first.
            "recursion limit exceeded" => Yaml11Error::TooDeep {
                line: e.marker().line(),
            },
            info => Yaml11Error::Syntax {
                line: e.marker().line(),
                column: e.marker().col() + 1,
                message: info.to_string(),
            },
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.handle(event, mark)?;
    }
    match builder.documents.len() {
        0 => Ok(Value::Null),
        1 => Ok(builder.documents.pop().unwrap_or(Value::Null)),
        n => Err(Yaml11Error::MultipleDocuments(n)),
    }
}

/// A collection being built: its anchor id, the count of values built before it started (so
/// its size is known when it ends), and its content.
enum Frame {
    Seq(usize, usize, Vec<Value>),
    Map(usize, usize, Vec<(Value, Value)>, Option<Key>),
}

/// A mapping key waiting for its value; a plain `<<` is PyYAML's merge key.
enum Key {
    Value(Value),
    Merge,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored values by id, with the number of values each expands to.
    anchors: HashMap<usize, (Value, usize)>,
    documents: Vec<Value>,
    /// Values built so far, each alias counted as the copy it becomes.
    values: usize,
}

impl Builder {
    fn handle(&mut self, event: Event, mark: Marker) -> Result<(), Yaml11Error> {
        match event {
            Event::SequenceStart(anchor, _) => {
                let start = self.open(mark)?;
                self.stack.push(Frame::Seq(anchor, start, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                let start = self.open(mark)?;
                self.stack.push(Frame::Map(anchor, start, Vec::new(), None));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(anchor, start, items)) = self.stack.pop() {
                    self.complete(anchor, Value::Seq(items), start, mark)?;
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(anchor, start, entries, _)) = self.stack.pop() {
                    self.complete(anchor, Value::Map(entries), start, mark)?;
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if style == TScalarStyle::Plain
                    && tag.is_none()
                    && text == "<<"
                    && let Some(Frame::Map(_, _, _, pending @ None)) = self.stack.last_mut()
                {
                    *pending = Some(Key::Merge);
                    return Ok(());
                }
                let start = self.values;
                self.count(1, mark)?;
                let value = resolve_scalar(text, style, tag.as_ref(), mark)?;
                self.complete(anchor, value, start, mark)?;
            }
            Event::Alias(id) => {
                let size = self
                    .anchors
                    .get(&id)
                    .map(|(_, size)| *size)
                    .ok_or(Yaml11Error::UnknownAlias { line: mark.line() })?;
                // Counted before the copy is made: that is what keeps an alias bomb bounded.
                self.count(size, mark)?;
                let value = self.anchors[&id].0.clone();
                self.push(value, mark)?;
            }
            // An alias never reaches into another document (PyYAML's rule too).
            Event::DocumentStart => self.anchors.clear(),
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// A collection starts: one more value, one more level. Returns the count before it.
    fn open(&mut self, mark: Marker) -> Result<usize, Yaml11Error> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Yaml11Error::TooDeep { line: mark.line() });
        }
        let start = self.values;
        self.count(1, mark)?;
        Ok(start)
    }

    fn count(&mut self, values: usize, mark: Marker) -> Result<(), Yaml11Error> {
        self.values = self.values.saturating_add(values);
        if self.values > MAX_VALUES {
            return Err(Yaml11Error::TooLarge { line: mark.line() });
        }
        Ok(())
    }

    /// `value` is built; it holds the values counted since `start`.
    fn complete(
        &mut self,
        anchor: usize,
        value: Value,
        start: usize,
        mark: Marker,
    ) -> Result<(), Yaml11Error> {
        if anchor != 0 {
            self.anchors
                .insert(anchor, (value.clone(), self.values - start));
        }
        self.push(value, mark)
    }

    fn push(&mut self, value: Value, mark: Marker) -> Result<(), Yaml11Error> {
        match self.stack.last_mut() {
            None => self.documents.push(value),
            Some(Frame::Seq(_, _, items)) => items.push(value),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
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

/// Whether PyYAML's reader accepts `c` anywhere in a stream (its `NON_PRINTABLE` set): Synapse
/// fails to start on a file holding any other character, even inside a quoted string.
pub fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// JSON text with every character PyYAML refuses, and the line breaks besides `\n` it folds into
/// a space inside a quoted string (`\u{85}`, and `\u{2028}` and `\u{2029}` for YAML 1.2
/// readers), written as a `\u` escape, which means the same to any JSON or YAML reader. Outside
/// its strings JSON text is ASCII: only strings change.
pub fn escape_unprintable(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if printable(c) && !matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
            out.push(c);
        } else {
            // Every such character is in the Basic Multilingual Plane: one escape.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        }
    }
    out
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
    // PyYAML resolves a scalar with the non-specific tag `!` as if it were plain, quoted or not.
    let non_specific = tag.is_some_and(|tag| format!("{}{}", tag.handle, tag.suffix) == "!");
    if let Some(tag) = tag.filter(|_| !non_specific) {
        let name = if tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:" {
            tag.suffix.as_str()
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
    if style != TScalarStyle::Plain && !non_specific {
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

#[cfg(test)]
#[path = "yaml11_fuzz_tests.rs"]
mod fuzz_tests;
