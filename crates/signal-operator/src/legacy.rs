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
//!
//! One value is rewritten rather than carried: permissions that are exactly the example
//! entries (`*`, `example.com`, `@admin:example.com`, whatever their levels), which the bridge
//! refuses as unedited. The original operator replaced a file's permissions with `*: relay`,
//! `<server>: user` and `@admin:<server>: admin` for the Synapse's server, so such a file ran
//! there; the migration gives it those entries and reports it. Any other map, a subset of the
//! example entries included, is carried as it is: replacing it would grant what the file left
//! out.

use std::collections::BTreeSet;
use std::fmt;

use serde_yaml::{Mapping, Value};

use crate::config_checks::{EXAMPLE_PERMISSION_KEYS, is_example_permission};
use crate::legacy_paths::{COMMON, GO, PYTHON};
use crate::legacy_values::{convert_displayname, dropped_paths, postgres_uri};
use crate::names::SQLITE_TYPE;
use crate::problems::ConfigProblem;
use crate::yaml::{get, get_str, set, string};

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

/// Migrates a legacy file to a bridgev2-format mapping for the Synapse whose server name is
/// `server`.
pub fn migrate(
    root: &Mapping,
    format: LegacyFormat,
    server: &str,
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
    m.example_permissions(server);
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

    /// Permissions that are exactly the example entries become the original operator's for
    /// `server` (see the module's documentation); they were carried already, so nothing is
    /// reported dropped.
    fn example_permissions(&mut self, server: &str) {
        let path = ["bridge", "permissions"];
        let Some(Value::Mapping(old)) = self.raw(&path) else {
            return;
        };
        // Keys are unique: as many keys as examples, all examples, is the example set.
        let only_examples =
            old.len() == EXAMPLE_PERMISSION_KEYS.len() && old.keys().all(is_example_permission);
        if !only_examples {
            return;
        }
        let admin = format!("@admin:{server}");
        let entries = [("*", "relay"), (server, "user"), (admin.as_str(), "admin")];
        let replacement = entries.iter().map(|(k, v)| (string(*k), string(*v)));
        set(&mut self.new, &path, Value::Mapping(replacement.collect()));
        let listed: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        self.notes.push(format!(
            "`bridge.permissions` had only the example entries ({}), which mautrix-signal v26 \
             refuses; they were replaced by {}, as the original operator set them for the \
             Synapse's server",
            EXAMPLE_PERMISSION_KEYS.join(", "),
            listed.join(", ")
        ));
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

#[cfg(test)]
#[path = "legacy_tests.rs"]
pub(crate) mod tests;
