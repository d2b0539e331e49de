//! Paths into a YAML document of nested mappings, as the bridge's config is written.
//!
//! mautrix-signal reads its config with Go's yaml.v3, which follows YAML 1.2 like serde_yaml,
//! so a user's `config.yaml` can be parsed into a [`Value`], edited and written out again
//! without changing what any value means to the bridge (unlike Synapse's YAML 1.1 files, which
//! are never re-serialised).

use serde_yaml::{Mapping, Value};

/// The value at `path`, if every step is a mapping holding the next key. A key set to null
/// counts as absent, as it does for the bridge's config upgrader.
pub fn get<'a>(root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = root;
    for key in path {
        node = node.as_mapping()?.get(*key)?;
    }
    (!node.is_null()).then_some(node)
}

/// The string at `path`, if there is one.
pub fn get_str<'a>(root: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(root, path)?.as_str()
}

/// Sets `path` to `value`, creating the mappings on the way and replacing whatever is not a
/// mapping there.
pub fn set(root: &mut Mapping, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = root;
    for key in parents {
        let entry = node
            .entry(Value::from(*key))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !entry.is_mapping() {
            *entry = Value::Mapping(Mapping::new());
        }
        node = entry.as_mapping_mut().expect("just made a mapping");
    }
    node.insert(Value::from(*last), value);
}

/// A string value.
pub fn string(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// The dotted form of a path, as messages show it: `appservice.bot.username`.
pub fn dotted(path: &[&str]) -> String {
    path.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_and_write_nested_mappings() {
        let mut root: Mapping = serde_yaml::from_str("a:\n  b: 1\n  n: null\nc: scalar\n").unwrap();
        let value = Value::Mapping(root.clone());
        assert_eq!(get(&value, &["a", "b"]), Some(&Value::from(1)));
        assert_eq!(get(&value, &["a", "n"]), None);
        assert_eq!(get(&value, &["a", "missing"]), None);
        assert_eq!(get(&value, &["c", "deeper"]), None);
        assert_eq!(get_str(&value, &["c"]), Some("scalar"));

        set(&mut root, &["a", "x", "y"], string("new"));
        set(&mut root, &["c", "z"], Value::Bool(true));
        let value = Value::Mapping(root);
        assert_eq!(get_str(&value, &["a", "x", "y"]), Some("new"));
        assert_eq!(get(&value, &["a", "b"]), Some(&Value::from(1)));
        assert_eq!(get(&value, &["c", "z"]), Some(&Value::Bool(true)));
        assert_eq!(dotted(&["a", "b"]), "a.b");
    }
}
