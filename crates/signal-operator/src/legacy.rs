//! Legacy mautrix-signal configs, which today's bridge refuses to start with, migrated to the
//! bridgev2 format. Pure.
//!
//! Two legacy formats exist: the Python bridge's (mautrix-signal v0.4 and older, which talked
//! to signald; the original operator rendered it) and the Go bridge's before bridgev2 (v0.5 to
//! v0.7). The bridgev2 framework recognises both by `appservice.database` (a URI string, or a
//! mapping with `uri`) and migrates them only when the network connector provides a migrator;
//! mautrix-signal v26 provides none and exits 1. This module does that migration instead, key
//! by key as the framework's own migration does: every key that has a bridgev2 equivalent is
//! carried over to it, the rest is dropped and reported.

use std::collections::BTreeSet;
use std::fmt;

use serde_yaml::{Mapping, Value};

use crate::config::{ConfigProblem, SQLITE_TYPE};
use crate::yaml::{dotted, get, get_str, set, string};

/// Which legacy format a file is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyFormat {
    /// The Python bridge of the signald era (mautrix-signal v0.4 and older).
    Python,
    /// The Go bridge before bridgev2 (mautrix-signal v0.5 to v0.7).
    Go,
}

impl fmt::Display for LegacyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LegacyFormat::Python => "signald-era (Python mautrix-signal v0.4 and older)",
            LegacyFormat::Go => "pre-bridgev2 (mautrix-signal v0.5 to v0.7)",
        })
    }
}

/// What a migration did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub format: LegacyFormat,
    /// Keys of the legacy file that have no bridgev2 equivalent, as dotted paths; a section
    /// dropped as a whole is listed once.
    pub dropped: Vec<String>,
    /// What else the user should know about the result.
    pub notes: Vec<String>,
}

/// The legacy format of `root`, if it is in one. Besides the framework's own marker
/// (`appservice.database`), the other keys only legacy files have count too: a file carrying
/// them would otherwise run with those settings silently ignored.
pub fn detect(root: &Mapping) -> Option<LegacyFormat> {
    let root = Value::Mapping(root.clone());
    match get(&root, &["appservice", "database"]) {
        Some(Value::String(_)) => return Some(LegacyFormat::Python),
        Some(Value::Mapping(_)) => return Some(LegacyFormat::Go),
        _ => {}
    }
    let python_logging = get(&root, &["logging", "writers"]).is_none()
        && ["version", "handlers", "formatters", "loggers", "root"]
            .iter()
            .any(|k| get(&root, &["logging", k]).is_some());
    if get(&root, &["appservice", "bot_username"]).is_some()
        || get(&root, &["signal", "socket_path"]).is_some()
        || python_logging
    {
        return Some(LegacyFormat::Python);
    }
    match get_str(&root, &["bridge", "username_template"]) {
        Some(template) if template.contains("{{") => Some(LegacyFormat::Go),
        Some(_) => Some(LegacyFormat::Python),
        None => None,
    }
}

/// Keys carried over unchanged in both formats: (legacy path, bridgev2 path).
const COMMON: &[(&[&str], &[&str])] = &[
    (&["homeserver", "address"], &["homeserver", "address"]),
    (&["homeserver", "domain"], &["homeserver", "domain"]),
    (
        &["homeserver", "status_endpoint"],
        &["homeserver", "status_endpoint"],
    ),
    (
        &["homeserver", "message_send_checkpoint_endpoint"],
        &["homeserver", "message_send_checkpoint_endpoint"],
    ),
    (
        &["homeserver", "async_media"],
        &["homeserver", "async_media"],
    ),
    (&["appservice", "address"], &["appservice", "address"]),
    (&["appservice", "hostname"], &["appservice", "hostname"]),
    (&["appservice", "port"], &["appservice", "port"]),
    (&["appservice", "id"], &["appservice", "id"]),
    (
        &["appservice", "ephemeral_events"],
        &["appservice", "ephemeral_events"],
    ),
    (&["appservice", "as_token"], &["appservice", "as_token"]),
    (&["appservice", "hs_token"], &["appservice", "hs_token"]),
    (&["bridge", "command_prefix"], &["bridge", "command_prefix"]),
    (&["bridge", "permissions"], &["bridge", "permissions"]),
    (
        &["bridge", "resend_bridge_info"],
        &["bridge", "resend_bridge_info"],
    ),
    (
        &["bridge", "bridge_matrix_leave"],
        &["bridge", "bridge_matrix_leave"],
    ),
    (
        &["bridge", "relay", "enabled"],
        &["bridge", "relay", "enabled"],
    ),
    (&["bridge", "federate_rooms"], &["matrix", "federate_rooms"]),
    (
        &["bridge", "sync_direct_chat_list"],
        &["matrix", "sync_direct_chat_list"],
    ),
    (
        &["bridge", "delivery_receipts"],
        &["matrix", "delivery_receipts"],
    ),
    (
        &["bridge", "message_status_events"],
        &["matrix", "message_status_events"],
    ),
    (
        &["bridge", "double_puppet_allow_discovery"],
        &["double_puppet", "allow_discovery"],
    ),
    (
        &["bridge", "double_puppet_server_map"],
        &["double_puppet", "servers"],
    ),
    (
        &["bridge", "login_shared_secret_map"],
        &["double_puppet", "secrets"],
    ),
    (&["bridge", "encryption", "allow"], &["encryption", "allow"]),
    (
        &["bridge", "encryption", "default"],
        &["encryption", "default"],
    ),
];

/// Keys only the Python format has an equivalent for.
const PYTHON: &[(&[&str], &[&str])] = &[
    (
        &["homeserver", "http_retry_count"],
        &["homeserver", "retry_limit"],
    ),
    (
        &["appservice", "bot_username"],
        &["appservice", "bot", "username"],
    ),
    (
        &["appservice", "bot_displayname"],
        &["appservice", "bot", "displayname"],
    ),
    (
        &["appservice", "bot_avatar"],
        &["appservice", "bot", "avatar"],
    ),
    (
        &["bridge", "encryption", "key_sharing", "allow"],
        &["encryption", "allow_key_sharing"],
    ),
];

/// Keys only the Go format has an equivalent for.
const GO: &[(&[&str], &[&str])] = &[
    (&["homeserver", "software"], &["homeserver", "software"]),
    (
        &["homeserver", "websocket_proxy"],
        &["homeserver", "websocket_proxy"],
    ),
    (&["homeserver", "websocket"], &["homeserver", "websocket"]),
    (
        &["homeserver", "ping_interval_seconds"],
        &["homeserver", "ping_interval_seconds"],
    ),
    (
        &["appservice", "async_transactions"],
        &["appservice", "async_transactions"],
    ),
    (&["appservice", "bot"], &["appservice", "bot"]),
    (&["appservice", "database", "uri"], &["database", "uri"]),
    (
        &["appservice", "database", "max_open_conns"],
        &["database", "max_open_conns"],
    ),
    (
        &["appservice", "database", "max_idle_conns"],
        &["database", "max_idle_conns"],
    ),
    (
        &["appservice", "database", "max_conn_idle_time"],
        &["database", "max_conn_idle_time"],
    ),
    (
        &["appservice", "database", "max_conn_lifetime"],
        &["database", "max_conn_lifetime"],
    ),
    (
        &["appservice", "provisioning", "shared_secret"],
        &["provisioning", "shared_secret"],
    ),
    (
        &["bridge", "username_template"],
        &["appservice", "username_template"],
    ),
    (
        &["bridge", "personal_filtering_spaces"],
        &["bridge", "personal_filtering_spaces"],
    ),
    (
        &["bridge", "relay", "admin_only"],
        &["bridge", "relay", "admin_only"],
    ),
    (
        &["bridge", "message_error_notices"],
        &["matrix", "message_error_notices"],
    ),
    (
        &["bridge", "provisioning", "shared_secret"],
        &["provisioning", "shared_secret"],
    ),
    (
        &["bridge", "provisioning", "debug_endpoints"],
        &["provisioning", "debug_endpoints"],
    ),
    (
        &["bridge", "encryption", "require"],
        &["encryption", "require"],
    ),
    (
        &["bridge", "encryption", "appservice"],
        &["encryption", "appservice"],
    ),
    (
        &["bridge", "encryption", "msc4190"],
        &["encryption", "msc4190"],
    ),
    (
        &["bridge", "encryption", "self_sign"],
        &["encryption", "self_sign"],
    ),
    (
        &["bridge", "encryption", "allow_key_sharing"],
        &["encryption", "allow_key_sharing"],
    ),
    (
        &["bridge", "encryption", "delete_keys"],
        &["encryption", "delete_keys"],
    ),
    (
        &["bridge", "encryption", "verification_levels"],
        &["encryption", "verification_levels"],
    ),
    (
        &["bridge", "encryption", "rotation"],
        &["encryption", "rotation"],
    ),
    // The Signal connector's own settings moved to the `network` section.
    (
        &["bridge", "displayname_template"],
        &["network", "displayname_template"],
    ),
    (
        &["bridge", "note_to_self_avatar"],
        &["network", "note_to_self_avatar"],
    ),
    (
        &["bridge", "location_format"],
        &["network", "location_format"],
    ),
    (
        &["bridge", "use_contact_avatars"],
        &["network", "use_contact_avatars"],
    ),
    (
        &["bridge", "use_outdated_profiles"],
        &["network", "use_outdated_profiles"],
    ),
    (
        &["bridge", "number_in_topic"],
        &["network", "number_in_topic"],
    ),
    (&["signal", "device_name"], &["network", "device_name"]),
];

/// Migrates a legacy file to a bridgev2-format mapping.
pub fn migrate(
    root: &Mapping,
    format: LegacyFormat,
) -> Result<(Mapping, Migration), ConfigProblem> {
    let mut m = Migrator {
        old: Value::Mapping(root.clone()),
        new: Mapping::new(),
        used: BTreeSet::new(),
        notes: Vec::new(),
    };
    let table = match format {
        LegacyFormat::Python => PYTHON,
        LegacyFormat::Go => GO,
    };
    for (from, to) in COMMON.iter().chain(table) {
        m.carry(from, to);
    }
    m.private_chat_portal_meta();
    match format {
        LegacyFormat::Python => {
            m.python_software();
            m.python_database()?;
            m.python_username_template();
            m.python_displayname_template();
            m.python_provisioning();
        }
        LegacyFormat::Go => {
            m.go_database_type();
            m.go_logging();
        }
    }
    let mut dropped = Vec::new();
    dropped_paths(&m.old, &mut Vec::new(), &m.used, &mut dropped);
    Ok((
        m.new,
        Migration {
            format,
            dropped,
            notes: m.notes,
        },
    ))
}

struct Migrator {
    old: Value,
    new: Mapping,
    /// Legacy paths whose content went somewhere (or had nothing to carry).
    used: BTreeSet<Vec<String>>,
    notes: Vec<String>,
}

impl Migrator {
    /// The legacy value at `path`, null included (a key set to nothing is present).
    fn raw(&self, path: &[&str]) -> Option<&Value> {
        let mut node = &self.old;
        for key in path {
            node = node.as_mapping()?.get(*key)?;
        }
        Some(node)
    }

    fn mark(&mut self, path: &[&str]) {
        self.used
            .insert(path.iter().map(|s| (*s).to_owned()).collect());
    }

    fn carry(&mut self, from: &[&str], to: &[&str]) {
        let Some(value) = self.raw(from).cloned() else {
            return;
        };
        if !value.is_null() {
            set(&mut self.new, to, value);
        }
        self.mark(from);
    }

    /// The Python bridge's boolean, or the Go bridge's `default`/`always`/`never`, becomes
    /// bridgev2's boolean.
    fn private_chat_portal_meta(&mut self) {
        let path = ["bridge", "private_chat_portal_meta"];
        let value = match self.raw(&path) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "default" || s == "always",
            _ => return,
        };
        set(&mut self.new, &path, Value::Bool(value));
        self.mark(&path);
    }

    /// `homeserver.asmux: true` was the Python bridge's way to say `software: asmux`.
    fn python_software(&mut self) {
        let path = ["homeserver", "asmux"];
        if let Some(Value::Bool(asmux)) = self.raw(&path) {
            let software = if *asmux { "asmux" } else { "standard" };
            set(&mut self.new, &["homeserver", "software"], string(software));
            self.mark(&path);
        }
    }

    /// `appservice.database` (a URI) becomes `database.type` and `.uri` as the framework's
    /// own migration converts it; the pool sizes follow a PostgreSQL database.
    fn python_database(&mut self) -> Result<(), ConfigProblem> {
        let Some(Value::String(uri)) = self.raw(&["appservice", "database"]).cloned() else {
            return Ok(());
        };
        if uri.starts_with("postgres") {
            set(&mut self.new, &["database", "type"], string("postgres"));
            set(
                &mut self.new,
                &["database", "uri"],
                string(postgres_uri(&uri)),
            );
            for (from, to) in [
                ("min_size", "max_idle_conns"),
                ("max_size", "max_open_conns"),
            ] {
                self.carry(&["appservice", "database_opts", from], &["database", to]);
            }
            self.notes.push(
                "the PostgreSQL database of the old file is kept: mautrix-signal v26 cannot \
                 upgrade a database of the Python bridge, so it must be a new, empty one"
                    .to_owned(),
            );
        } else if let Some(path) = uri.strip_prefix("sqlite:") {
            let path = path.strip_prefix("///").unwrap_or(path);
            set(&mut self.new, &["database", "type"], string(SQLITE_TYPE));
            set(
                &mut self.new,
                &["database", "uri"],
                string(format!("file:{path}?_txlock=immediate")),
            );
        } else {
            let scheme = uri.split(':').next().unwrap_or_default();
            return Err(ConfigProblem::LegacyDatabase(scheme.to_owned()));
        }
        self.mark(&["appservice", "database"]);
        Ok(())
    }

    /// `{userid}` becomes `{{.}}`; a template without it has no equivalent.
    fn python_username_template(&mut self) {
        let path = ["bridge", "username_template"];
        if let Some(Value::String(template)) = self.raw(&path).cloned()
            && template.contains("{userid}")
        {
            set(
                &mut self.new,
                &["appservice", "username_template"],
                string(template.replace("{userid}", "{{.}}")),
            );
            self.mark(&path);
        }
    }

    /// The Python display name template becomes the Signal connector's Go template, with the
    /// `displayname_preference` and `contact_list_names` it depended on folded in.
    fn python_displayname_template(&mut self) {
        let template_path = ["bridge", "displayname_template"];
        let Some(Value::String(template)) = self.raw(&template_path).cloned() else {
            return;
        };
        let preference: Vec<String> = match self.raw(&["bridge", "displayname_preference"]) {
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => vec!["full_name".to_owned(), "phone".to_owned()],
        };
        let contact_names =
            get_str(&self.old, &["bridge", "contact_list_names"]).map(str::to_owned);
        let Some(converted) = convert_displayname(&template, &preference, contact_names.as_deref())
        else {
            return;
        };
        set(
            &mut self.new,
            &["network", "displayname_template"],
            string(converted),
        );
        for path in [
            &template_path[..],
            &["bridge", "displayname_preference"],
            &["bridge", "contact_list_names"],
        ] {
            if self.raw(path).is_some() {
                self.mark(path);
            }
        }
    }

    /// The Python bridge kept provisioning under `bridge`; disabling it is bridgev2's
    /// `shared_secret: disable`, and `generate` is left to the operator's generated secret.
    fn python_provisioning(&mut self) {
        let enabled = ["bridge", "provisioning", "enabled"];
        let secret = ["bridge", "provisioning", "shared_secret"];
        if let Some(Value::Bool(false)) = self.raw(&enabled) {
            set(
                &mut self.new,
                &["provisioning", "shared_secret"],
                string("disable"),
            );
            self.mark(&enabled);
            self.mark(&secret);
            return;
        }
        if self.raw(&enabled).is_some() {
            self.mark(&enabled);
        }
        match self.raw(&secret).cloned() {
            Some(Value::String(s)) if s == "generate" => self.mark(&secret),
            Some(_) => self.carry(&secret, &["provisioning", "shared_secret"]),
            None => {}
        }
    }

    /// The Go bridge's `sqlite3` is bridgev2's `sqlite3-fk-wal`.
    fn go_database_type(&mut self) {
        let path = ["appservice", "database", "type"];
        if let Some(Value::String(kind)) = self.raw(&path).cloned() {
            let kind = if kind == "sqlite3" {
                SQLITE_TYPE
            } else {
                &kind
            };
            set(&mut self.new, &["database", "type"], string(kind));
            self.mark(&path);
            if kind == "postgres" {
                self.notes.push(
                    "the PostgreSQL database of the old file is kept: mautrix-signal v26 no \
                     longer upgrades a pre-bridgev2 database, so it must be a new, empty one"
                        .to_owned(),
                );
            }
        }
    }

    /// The Go bridge's zeroconfig logging is the same format; its older maulogger one is not.
    fn go_logging(&mut self) {
        if get(&self.old, &["logging", "writers"]).is_some() {
            self.carry(&["logging"], &["logging"]);
        }
    }
}

/// A PostgreSQL URI as the framework's migration leaves it: a socket directory when it names
/// no host, else `sslmode=disable` unless it sets an sslmode.
fn postgres_uri(uri: &str) -> String {
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
fn convert_displayname(
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
fn dropped_paths(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(text: &str) -> Mapping {
        serde_yaml::from_str(text).unwrap()
    }

    /// The file the original operator rendered (mautrix-signal v0.4 on signald), with every key
    /// of its template, as users of that operator hold it in their ConfigMaps.
    pub(crate) const PYTHON_FIXTURE: &str =
        include_str!("../../../e2e/testdata/signal/legacy-signald.yaml");

    #[test]
    fn formats_are_detected_by_their_markers() {
        assert_eq!(detect(&mapping(PYTHON_FIXTURE)), Some(LegacyFormat::Python));
        for (file, format) in [
            (
                "appservice:\n  database: postgres://x@y/z\n",
                Some(LegacyFormat::Python),
            ),
            (
                "appservice:\n  bot_username: signalbot\n",
                Some(LegacyFormat::Python),
            ),
            (
                "signal:\n  socket_path: /signald/signald.sock\n",
                Some(LegacyFormat::Python),
            ),
            (
                "logging:\n  version: 1\n  root: {level: DEBUG}\n",
                Some(LegacyFormat::Python),
            ),
            (
                "bridge:\n  username_template: signal_{userid}\n",
                Some(LegacyFormat::Python),
            ),
            (
                "appservice:\n  database:\n    type: sqlite3\n    uri: x.db\n",
                Some(LegacyFormat::Go),
            ),
            (
                "bridge:\n  username_template: signal_{{.}}\n",
                Some(LegacyFormat::Go),
            ),
            ("appservice:\n  username_template: signal_{{.}}\n", None),
            (
                "logging:\n  min_level: debug\n  writers: [{type: stdout}]\n",
                None,
            ),
            ("homeserver: {}\n", None),
        ] {
            assert_eq!(detect(&mapping(file)), format, "{file}");
        }
    }

    fn at<'a>(doc: &'a Mapping, path: &str) -> Option<&'a Value> {
        let path: Vec<&str> = path.split('.').collect();
        get_ref(doc, &path)
    }

    fn get_ref<'a>(doc: &'a Mapping, path: &[&str]) -> Option<&'a Value> {
        let (first, rest) = path.split_first()?;
        let value = doc.get(*first)?;
        if rest.is_empty() {
            Some(value)
        } else {
            get_ref(value.as_mapping()?, rest)
        }
    }

    #[test]
    fn the_original_operators_file_is_carried_over_key_by_key() {
        let (new, migration) = migrate(&mapping(PYTHON_FIXTURE), LegacyFormat::Python).unwrap();
        assert_eq!(migration.format, LegacyFormat::Python);
        for (path, want) in [
            (
                "homeserver.address",
                "http://my-synapse.matrix.svc.cluster.local:8008",
            ),
            ("homeserver.domain", "matrix.example.org"),
            ("homeserver.software", "standard"),
            (
                "appservice.address",
                "http://mautrixsignal-configmap.matrix.svc.cluster.local:29328",
            ),
            ("appservice.hostname", "0.0.0.0"),
            ("appservice.id", "signal"),
            ("appservice.bot.username", "signalbot"),
            ("appservice.bot.displayname", "Signal bridge bot"),
            (
                "appservice.bot.avatar",
                "mxc://maunium.net/wPJgTQbZOtpBFmDNkiNEMDUp",
            ),
            (
                "appservice.as_token",
                "This value is generated when generating the registration",
            ),
            ("appservice.username_template", "signal_{{.}}"),
            (
                "network.displayname_template",
                "{{or .ProfileName .PhoneNumber \"Unknown user\"}} (Signal)",
            ),
            ("database.type", "sqlite3-fk-wal"),
            ("database.uri", "file:/data/sqlite.db?_txlock=immediate"),
            ("bridge.command_prefix", "!signal"),
            ("bridge.permissions.*", "relay"),
            ("bridge.permissions.@admin:matrix.example.org", "admin"),
        ] {
            let path: Vec<&str> = match path.split_once(".permissions.") {
                Some((_, key)) => vec!["bridge", "permissions", key],
                None => path.split('.').collect(),
            };
            assert_eq!(
                get_ref(&new, &path).and_then(Value::as_str),
                Some(want),
                "{path:?}"
            );
        }
        for (path, want) in [
            ("appservice.port", Value::from(29328)),
            ("appservice.ephemeral_events", Value::Bool(false)),
            ("homeserver.retry_limit", Value::from(4)),
            ("homeserver.async_media", Value::Bool(false)),
            ("matrix.federate_rooms", Value::Bool(true)),
            ("matrix.sync_direct_chat_list", Value::Bool(false)),
            ("matrix.delivery_receipts", Value::Bool(false)),
            ("matrix.message_status_events", Value::Bool(false)),
            ("bridge.private_chat_portal_meta", Value::Bool(false)),
            ("bridge.bridge_matrix_leave", Value::Bool(true)),
            ("bridge.relay.enabled", Value::Bool(false)),
            ("encryption.allow", Value::Bool(false)),
            ("encryption.allow_key_sharing", Value::Bool(false)),
            ("double_puppet.allow_discovery", Value::Bool(false)),
        ] {
            assert_eq!(at(&new, path), Some(&want), "{path}");
        }
        assert_eq!(
            get_ref(&new, &["double_puppet", "servers", "example.com"]).and_then(Value::as_str),
            Some("https://example.com")
        );
        // signald, Python logging and the rest without an equivalent are gone.
        for gone in [
            "signal",
            "logging",
            "metrics",
            "manhole",
            "appservice.database",
        ] {
            assert_eq!(at(&new, gone), None, "{gone}");
        }
        assert_eq!(
            migration.dropped,
            [
                "homeserver.verify_ssl",
                "homeserver.connection_limit",
                "appservice.tls_cert",
                "appservice.tls_key",
                "appservice.max_body_size",
                "appservice.database_opts",
                "metrics",
                "manhole",
                "signal",
                "bridge.autocreate_group_portal",
                "bridge.autocreate_contact_portal",
                "bridge.sync_with_custom_puppets",
                "bridge.encryption.key_sharing.require_cross_signing",
                "bridge.encryption.key_sharing.require_verification",
                "bridge.delivery_error_reports",
                "bridge.periodic_sync",
                // segment_key is null: nothing to lose.
                "bridge.provisioning.prefix",
                "bridge.management_room_text",
                "bridge.management_room_multiple_messages",
                "bridge.relay.message_formats",
                "logging",
            ]
        );
        assert!(migration.notes.is_empty());
    }

    #[test]
    fn a_postgres_database_is_carried_with_its_pool_and_a_note() {
        let file = "appservice:\n  database: postgres://signal:pw@db.example.org/signal\n  database_opts:\n    min_size: 2\n    max_size: 8\n";
        let (new, migration) = migrate(&mapping(file), LegacyFormat::Python).unwrap();
        assert_eq!(
            at(&new, "database.uri").and_then(Value::as_str),
            Some("postgres://signal:pw@db.example.org/signal?sslmode=disable")
        );
        assert_eq!(
            at(&new, "database.type").and_then(Value::as_str),
            Some("postgres")
        );
        assert_eq!(at(&new, "database.max_idle_conns"), Some(&Value::from(2)));
        assert_eq!(at(&new, "database.max_open_conns"), Some(&Value::from(8)));
        assert!(migration.dropped.is_empty(), "{:?}", migration.dropped);
        assert_eq!(migration.notes.len(), 1);
        let err = migrate(
            &mapping("appservice:\n  database: mysql://signal:s3cr3t@db/signal\n"),
            LegacyFormat::Python,
        )
        .unwrap_err();
        assert_eq!(err, ConfigProblem::LegacyDatabase("mysql".into()));
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn postgres_uris_get_what_the_framework_adds() {
        assert_eq!(
            postgres_uri("postgres://u:p@h/db"),
            "postgres://u:p@h/db?sslmode=disable"
        );
        assert_eq!(
            postgres_uri("postgres://u:p@h/db?sslmode=require"),
            "postgres://u:p@h/db?sslmode=require"
        );
        assert_eq!(
            postgres_uri("postgres://u@h/db?application_name=x"),
            "postgres://u@h/db?application_name=x&sslmode=disable"
        );
        assert_eq!(
            postgres_uri("postgres:///db"),
            "postgres:///db?host=/var/run/postgresql"
        );
        assert_eq!(
            postgres_uri("postgresql:///db?host=/sock"),
            "postgresql:///db?host=/sock"
        );
    }

    #[test]
    fn display_name_templates_become_go_templates() {
        let prefs = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            convert_displayname(
                "{displayname} (Signal)",
                &prefs(&["full_name", "phone"]),
                None
            )
            .as_deref(),
            Some("{{or .ProfileName .PhoneNumber \"Unknown user\"}} (Signal)")
        );
        assert_eq!(
            convert_displayname(
                "{displayname}",
                &prefs(&["full_name", "uuid"]),
                Some("prefer")
            )
            .as_deref(),
            Some("{{or .ContactName .ProfileName .UUID \"Unknown user\"}}")
        );
        assert_eq!(
            convert_displayname(
                "{displayname}",
                &prefs(&["full_name", "phone"]),
                Some("allow")
            )
            .as_deref(),
            Some("{{or .ProfileName .ContactName .PhoneNumber \"Unknown user\"}}")
        );
        assert_eq!(
            convert_displayname("{phone} - {full_name}", &prefs(&[]), None).as_deref(),
            Some("{{.PhoneNumber}} - {{.ProfileName}}")
        );
        for unconvertible in ["{last_name}", "{unknown}", "a } b", "{displayname", "{{x}}"] {
            assert_eq!(
                convert_displayname(unconvertible, &prefs(&["full_name"]), None),
                None,
                "{unconvertible}"
            );
        }
    }

    #[test]
    fn what_cannot_be_converted_is_reported_dropped() {
        let file = "appservice:\n  database: sqlite:///x.db\nbridge:\n  username_template: signal-user\n  displayname_template: '{last_name}'\n  displayname_preference: [full_name]\n";
        let (new, migration) = migrate(&mapping(file), LegacyFormat::Python).unwrap();
        assert_eq!(at(&new, "appservice.username_template"), None);
        assert_eq!(at(&new, "network.displayname_template"), None);
        assert_eq!(
            migration.dropped,
            [
                "bridge.username_template",
                "bridge.displayname_template",
                "bridge.displayname_preference"
            ]
        );
        assert_eq!(
            at(&new, "database.uri").and_then(Value::as_str),
            Some("file:x.db?_txlock=immediate")
        );
    }

    #[test]
    fn provisioning_follows_the_python_switch() {
        let disabled = "bridge:\n  provisioning:\n    enabled: false\n    shared_secret: s3cr3t\n";
        let (new, _) = migrate(&mapping(disabled), LegacyFormat::Python).unwrap();
        assert_eq!(
            at(&new, "provisioning.shared_secret").and_then(Value::as_str),
            Some("disable")
        );
        let own = "bridge:\n  provisioning:\n    enabled: true\n    shared_secret: s3cr3t\n";
        let (new, migration) = migrate(&mapping(own), LegacyFormat::Python).unwrap();
        assert_eq!(
            at(&new, "provisioning.shared_secret").and_then(Value::as_str),
            Some("s3cr3t")
        );
        assert!(migration.dropped.is_empty());
        let generate = "bridge:\n  provisioning:\n    shared_secret: generate\n";
        let (new, _) = migrate(&mapping(generate), LegacyFormat::Python).unwrap();
        assert_eq!(at(&new, "provisioning"), None);
    }

    #[test]
    fn the_go_format_is_carried_over() {
        let file = r#"
homeserver:
    address: http://synapse:8008
    domain: matrix.example.org
    software: standard
appservice:
    address: http://localhost:29328
    hostname: 0.0.0.0
    port: 29328
    database:
        type: sqlite3
        uri: file:mautrix-signal.db?_txlock=immediate
        max_open_conns: 20
    id: signal
    bot:
        username: signalbot
        displayname: Signal bridge bot
    as_token: x
    hs_token: y
signal:
    device_name: mautrix-signal
bridge:
    username_template: signal_{{.}}
    displayname_template: '{{or .ContactName .ProfileName}} (Signal)'
    private_chat_portal_meta: default
    use_contact_avatars: true
    permissions:
        '*': relay
        matrix.example.org: user
    encryption:
        allow: true
        verification_levels:
            receive: unverified
logging:
    min_level: debug
    writers:
        - type: stdout
          format: pretty-colored
"#;
        let root = mapping(file);
        assert_eq!(detect(&root), Some(LegacyFormat::Go));
        let (new, migration) = migrate(&root, LegacyFormat::Go).unwrap();
        for (path, want) in [
            ("database.type", "sqlite3-fk-wal"),
            ("database.uri", "file:mautrix-signal.db?_txlock=immediate"),
            ("appservice.bot.username", "signalbot"),
            ("appservice.username_template", "signal_{{.}}"),
            (
                "network.displayname_template",
                "{{or .ContactName .ProfileName}} (Signal)",
            ),
            ("network.device_name", "mautrix-signal"),
            ("encryption.verification_levels.receive", "unverified"),
            ("logging.min_level", "debug"),
        ] {
            assert_eq!(at(&new, path).and_then(Value::as_str), Some(want), "{path}");
        }
        assert_eq!(at(&new, "database.max_open_conns"), Some(&Value::from(20)));
        assert_eq!(
            at(&new, "network.use_contact_avatars"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            at(&new, "bridge.private_chat_portal_meta"),
            Some(&Value::Bool(true))
        );
        assert!(migration.dropped.is_empty(), "{:?}", migration.dropped);
    }
}
