//! The legacy values the migration rewrites rather than carries (database URIs, display name
//! templates), and the report of the keys it dropped. Pure.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::yaml::dotted;

/// A PostgreSQL URI as the framework's migration leaves it: a socket directory when it names
/// no host, else `sslmode=disable` unless it sets an sslmode.
pub fn postgres_uri(uri: &str) -> String {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let has = |key: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(key))
    };
    let authority = base
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let addition = if host.is_empty() && !has("host") {
        "host=/var/run/postgresql"
    } else if !host.is_empty() && !has("sslmode") {
        "sslmode=disable"
    } else {
        return uri.to_owned();
    };
    if query.is_empty() {
        format!("{base}?{addition}")
    } else {
        format!("{base}?{query}&{addition}")
    }
}

/// The Go template for a Python display name template, or `None` when it uses something with
/// no equivalent in the Signal connector's template variables.
pub fn convert_displayname(
    template: &str,
    preference: &[String],
    contact_names: Option<&str>,
) -> Option<String> {
    let field = |name: &str| match name {
        "full_name" | "first_name" => Some(".ProfileName"),
        "phone" => Some(".PhoneNumber"),
        "uuid" => Some(".UUID"),
        _ => None,
    };
    let mut choices: Vec<&str> = Vec::new();
    for name in preference {
        if let Some(f) = field(name)
            && !choices.contains(&f)
        {
            choices.push(f);
        }
    }
    match contact_names {
        Some("prefer") => choices.insert(0, ".ContactName"),
        Some("allow") => {
            let at = usize::from(choices.first() == Some(&".ProfileName"));
            choices.insert(at, ".ContactName");
        }
        _ => {}
    }
    let displayname = format!("{{{{or {} \"Unknown user\"}}}}", choices.join(" "));

    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let (literal, tail) = rest.split_at(open);
        out.push_str(literal);
        let close = tail.find('}')?;
        if !tail.starts_with('{') {
            return None;
        }
        let name = &tail[1..close];
        if name == "displayname" {
            out.push_str(&displayname);
        } else {
            out.push_str(&format!("{{{{{}}}}}", field(name)?));
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Sections whose keys are listed one by one even when none was carried: they exist in the
/// bridgev2 format too, so "all of `bridge`" would say too little.
const LISTED_BY_KEY: [&str; 3] = ["homeserver", "appservice", "bridge"];

/// Appends to `out` every path under `node` that no migration used. Any other mapping none of
/// whose keys was used is listed once; keys set to nothing carried nothing and are not listed.
pub fn dropped_paths(
    node: &Value,
    path: &mut Vec<String>,
    used: &BTreeSet<Vec<String>>,
    out: &mut Vec<String>,
) {
    if (1..=path.len()).any(|n| used.contains(&path[..n])) || node.is_null() {
        return;
    }
    let touched = used.iter().any(|u| u.starts_with(path))
        || (path.len() == 1 && LISTED_BY_KEY.contains(&path[0].as_str()));
    match node {
        Value::Mapping(map) if path.is_empty() || touched => {
            for (key, child) in map {
                let key = match key {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .map(|s| s.trim_end().to_owned())
                        .unwrap_or_default(),
                };
                path.push(key);
                dropped_paths(child, path, used, out);
                path.pop();
            }
        }
        _ => out.push(dotted(&path.iter().map(String::as_str).collect::<Vec<_>>())),
    }
}
