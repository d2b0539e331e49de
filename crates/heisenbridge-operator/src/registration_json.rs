//! A registration file as the operator writes it: JSON, which is YAML too. Synapse reads it with
//! PyYAML (YAML 1.1) and Heisenbridge with ruamel.yaml (YAML 1.2), and JSON means the same to
//! both. Pure.

use operator_common::yaml11::{Value, escape_unprintable};

/// A part of a registration JSON cannot carry (a timestamp, binary data, a non-string key,
/// NaN...).
#[derive(Clone, Debug, PartialEq)]
pub struct Unrepresentable {
    /// Where it is.
    pub path: String,
    /// What it is.
    pub what: String,
}

/// A registration as JSON: a YAML 1.1 value without what JSON cannot carry, keys in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i128),
    /// Always finite.
    Float(f64),
    Str(String),
    Seq(Vec<Json>),
    Map(Vec<(String, Json)>),
}

impl Json {
    /// `value` (found at `path`) as JSON, or the first part of it JSON cannot carry.
    pub fn from_yaml(value: &Value, path: &str) -> Result<Self, Unrepresentable> {
        let unrepresentable = |what: String| Unrepresentable {
            path: if path.is_empty() {
                "(top level)".into()
            } else {
                path.to_owned()
            },
            what,
        };
        Ok(match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::Int(*i),
            Value::Float(f) if f.is_finite() => Json::Float(*f),
            Value::Float(f) => return Err(unrepresentable(format!("the float {f}"))),
            Value::Str(s) => Json::Str(s.clone()),
            Value::Other(what) => return Err(unrepresentable(format!("a {what}"))),
            Value::Seq(items) => Json::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| Json::from_yaml(item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Map(entries) => Json::Map(
                entries
                    .iter()
                    .map(|(key, item)| {
                        let Value::Str(key) = key else {
                            return Err(unrepresentable(format!(
                                "a key that is a {}, not a string",
                                key.type_name()
                            )));
                        };
                        let child = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        Ok((key.clone(), Json::from_yaml(item, &child)?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// The file: indented JSON ending with a newline.
pub fn render(registration: &Json) -> String {
    let mut out = String::new();
    write_json(registration, 0, &mut out);
    out.push('\n');
    out
}

fn write_json(value: &Json, depth: usize, out: &mut String) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(i) => out.push_str(&i.to_string()),
        Json::Float(f) => out.push_str(&python_float(*f)),
        Json::Str(s) => out.push_str(&json_string(s)),
        Json::Seq(items) if items.is_empty() => out.push_str("[]"),
        Json::Seq(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push(']');
        }
        Json::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Json::Map(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                out.push_str(&json_string(key));
                out.push_str(": ");
                write_json(item, depth + 1, out);
            }
            indent(out, depth);
            out.push('}');
        }
    }
}

/// A JSON string PyYAML reads back as `s`: what its reader refuses or folds is escaped.
fn json_string(s: &str) -> String {
    escape_unprintable(&serde_json::Value::String(s.to_owned()).to_string())
}

/// A finite float written so that PyYAML reads it back as the same float: YAML 1.1 wants a
/// `.` in the mantissa and a sign in the exponent (`1.0e+20`, not `1e20`).
pub(crate) fn python_float(f: f64) -> String {
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let dot = if mantissa.contains('.') { "" } else { ".0" };
            let sign = if exponent.starts_with('-') { "" } else { "+" };
            format!("{mantissa}{dot}e{sign}{exponent}")
        }
        None => text,
    }
}
