//! What the operator needs to know about a user's `homeserver.yaml`, read with Synapse's own
//! meaning (YAML 1.1 via `operator_common::yaml11`, Synapse's truthiness and `strtobool` rules). The file
//! itself is never rewritten: it is mounted verbatim and the operator's overlay goes beside it.

use operator_common::yaml11::{self, Value};

/// The port Synapse's sample config and our rendered config listen on.
pub const DEFAULT_CLIENT_PORT: u16 = 8008;

/// Facts read from a user's `homeserver.yaml`.
#[derive(Clone, Debug, PartialEq)]
pub struct HomeserverFacts {
    pub server_name: String,
    /// `report_stats` as Synapse uses it: Python truthiness of the YAML 1.1 value.
    pub report_stats: bool,
    /// `enable_registration` (or the inverse of `disable_registration`), parsed like Synapse.
    pub registration_enabled: bool,
    /// The port of the plain-HTTP listener serving the client API: Service, probes and the client
    /// URL follow it.
    pub client_port: u16,
    /// The user's own app-service registration files, kept ahead of the bridges' in the overlay.
    pub app_service_config_files: Vec<String>,
    /// Secrets the user set inline: the overlay must not add a `*_path` for these, since Synapse
    /// refuses both at once.
    pub inline_secrets: InlineSecrets,
    /// Whether the file has its own `database` section (used as written when it does).
    pub has_database: bool,
    /// Whether that section is SQLite's (or absent: the operator then writes SQLite's).
    pub sqlite: bool,
    /// The public settings the file sets itself, which `spec.expose` must agree with.
    pub public: PublicSettings,
    /// What the file says about Synapse's metrics.
    pub metrics: MetricsSettings,
    /// Every TCP port a listener of the file takes.
    pub listener_ports: Vec<u16>,
    /// The file's top-level keys.
    pub keys: std::collections::BTreeSet<String>,
    /// The file's listeners as JSON, for an overlay that adds one (Synapse replaces a top-level
    /// key of an earlier file, lists included); `None` when they hold what JSON cannot.
    pub listeners: Option<Vec<serde_json::Value>>,
}

/// Synapse's metrics as a user's file sets them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// The port of its own metrics listener: `type: metrics`, or plain HTTP with the `metrics`
    /// resource.
    pub listener_port: Option<u16>,
    /// `enable_metrics` (Python truthiness), when the file sets it.
    pub enable_metrics: Option<bool>,
}

/// `public_baseurl` and `serve_server_wellknown` as a user's file sets them (`None`: unset), and
/// whether its client listener trusts `X-Forwarded-For` from the proxy in front of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublicSettings {
    pub public_baseurl: Option<String>,
    pub serve_server_wellknown: Option<bool>,
    pub x_forwarded: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineSecrets {
    pub macaroon_secret_key: bool,
    pub registration_shared_secret: bool,
    pub form_secret: bool,
}

/// Why a `homeserver.yaml` cannot be used. Each message says what is wrong and what to change.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum HomeserverFileError {
    #[error("homeserver.yaml is not valid YAML: {0}")]
    Syntax(#[from] yaml11::Yaml11Error),
    #[error("homeserver.yaml must be a mapping of option names to values, but it is {0}")]
    NotAMapping(&'static str),
    #[error("homeserver.yaml has no server_name: set it to the domain of your Matrix server")]
    MissingServerName,
    #[error("server_name in homeserver.yaml must be a string, but it is {0}: quote it")]
    ServerNameNotString(&'static str),
    #[error("{0}")]
    InvalidServerName(#[from] ServerNameError),
    #[error(
        "homeserver.yaml has no report_stats: Synapse refuses to start without it; set it to yes or no"
    )]
    MissingReportStats,
    #[error("{key} in homeserver.yaml must be a boolean (yes/no, true/false), not {value:?}")]
    NotABoolean { key: &'static str, value: String },
    #[error("app_service_config_files in homeserver.yaml must be a list of file paths")]
    AppServiceFilesNotList,
    #[error("listeners in homeserver.yaml must be a list of listener mappings")]
    ListenersNotList,
    #[error(
        "listener {index} in homeserver.yaml has an invalid port: it must be an integer 1-65535"
    )]
    BadListenerPort { index: usize },
    #[error(
        "homeserver.yaml has no plain-HTTP listener on a TCP port: add one with type: http, a port and the client resource"
    )]
    NoHttpListener,
}

/// Reads the facts the operator needs from the text of a user's `homeserver.yaml`.
pub fn read_homeserver_file(text: &str) -> Result<HomeserverFacts, HomeserverFileError> {
    let doc = yaml11::parse(text)?;
    if !matches!(doc, Value::Map(_)) {
        return Err(HomeserverFileError::NotAMapping(match doc {
            Value::Null => "empty",
            other => other.type_name(),
        }));
    }
    let server_name = match doc.get("server_name") {
        None | Some(Value::Null) => return Err(HomeserverFileError::MissingServerName),
        Some(Value::Str(name)) => name.clone(),
        Some(other) => return Err(HomeserverFileError::ServerNameNotString(other.type_name())),
    };
    validate_server_name(&server_name)?;
    let report_stats = match doc.get("report_stats") {
        // Synapse checks only that the key is present; a null value then reads as false.
        None => return Err(HomeserverFileError::MissingReportStats),
        Some(value) => value.is_truthy(),
    };
    let registration_enabled = match doc.get("disable_registration") {
        Some(value) => !strtobool(value, "disable_registration")?,
        None => doc
            .get("enable_registration")
            .map(|v| strtobool(v, "enable_registration"))
            .transpose()?
            .unwrap_or(false),
    };
    let app_service_config_files = match doc.get("app_service_config_files") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Seq(items)) => items
            .iter()
            .map(|item| match item {
                Value::Str(path) => Ok(path.clone()),
                _ => Err(HomeserverFileError::AppServiceFilesNotList),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(HomeserverFileError::AppServiceFilesNotList),
    };
    let listeners = read_listeners(doc.get("listeners"))?;
    let client = listeners.client;
    Ok(HomeserverFacts {
        server_name,
        report_stats,
        registration_enabled,
        client_port: client.port,
        app_service_config_files,
        inline_secrets: InlineSecrets {
            macaroon_secret_key: doc.get("macaroon_secret_key").is_some_and(Value::is_truthy),
            registration_shared_secret: doc
                .get("registration_shared_secret")
                .is_some_and(Value::is_truthy),
            form_secret: doc.get("form_secret").is_some_and(Value::is_truthy),
        },
        has_database: doc
            .get("database")
            .is_some_and(|v| !matches!(v, Value::Null)),
        sqlite: match doc.get("database").and_then(|d| d.get("name")) {
            Some(Value::Str(name)) => name == "sqlite3" || name == "sqlite",
            _ => true,
        },
        public: PublicSettings {
            public_baseurl: match doc.get("public_baseurl") {
                Some(Value::Str(url)) => Some(url.clone()),
                _ => None,
            },
            // Synapse reads it with Python truthiness.
            serve_server_wellknown: doc.get("serve_server_wellknown").map(Value::is_truthy),
            x_forwarded: client.x_forwarded,
        },
        metrics: MetricsSettings {
            listener_port: listeners.metrics_port,
            enable_metrics: doc.get("enable_metrics").map(Value::is_truthy),
        },
        listener_ports: listeners.ports,
        keys: match &doc {
            Value::Map(entries) => entries
                .iter()
                .filter_map(|(k, _)| match k {
                    Value::Str(key) => Some(key.clone()),
                    _ => None,
                })
                .collect(),
            _ => Default::default(),
        },
        listeners: doc
            .get("listeners")
            .and_then(Value::to_json)
            .and_then(|json| match json {
                serde_json::Value::Array(items) => Some(items),
                _ => None,
            }),
    })
}

/// Synapse's `strtobool(str(value))`.
fn strtobool(value: &Value, key: &'static str) -> Result<bool, HomeserverFileError> {
    let text = match value {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
        other => other.type_name().to_string(),
    };
    match text.to_ascii_lowercase().as_str() {
        "y" | "yes" | "t" | "true" | "on" | "1" => Ok(true),
        "n" | "no" | "f" | "false" | "off" | "0" => Ok(false),
        _ => Err(HomeserverFileError::NotABoolean { key, value: text }),
    }
}

/// The plain-HTTP listener the client API is reached on: the first plain-HTTP TCP listener
/// serving the client API, else the first plain-HTTP TCP listener (`/health` is on every one).
struct ClientListener {
    port: u16,
    x_forwarded: bool,
}

/// What the operator reads from the listeners.
struct Listeners {
    client: ClientListener,
    metrics_port: Option<u16>,
    ports: Vec<u16>,
}

fn has_resource(listener: &Value, resource: &str) -> bool {
    match listener.get("resources") {
        Some(Value::Seq(resources)) => resources.iter().any(|r| {
            matches!(r.get("names"), Some(Value::Seq(names))
                if names.iter().any(|n| matches!(n, Value::Str(s) if s == resource)))
        }),
        _ => false,
    }
}

fn read_listeners(listeners: Option<&Value>) -> Result<Listeners, HomeserverFileError> {
    let listeners = match listeners {
        None | Some(Value::Null) => return Err(HomeserverFileError::NoHttpListener),
        Some(Value::Seq(items)) => items,
        Some(_) => return Err(HomeserverFileError::ListenersNotList),
    };
    let (mut http, mut metrics_port, mut ports) = (Vec::new(), None, Vec::new());
    for (index, listener) in listeners.iter().enumerate() {
        let kind = match listener.get("type") {
            Some(Value::Str(t)) => t.as_str(),
            _ => "",
        };
        let tls = listener.get("tls").is_some_and(Value::is_truthy);
        let port = match listener.get("port") {
            None | Some(Value::Null) => continue, // a UNIX socket listener
            Some(Value::Int(p)) => {
                u16::try_from(*p).map_err(|_| HomeserverFileError::BadListenerPort { index })?
            }
            Some(_) => return Err(HomeserverFileError::BadListenerPort { index }),
        };
        if port == 0 {
            return Err(HomeserverFileError::BadListenerPort { index });
        }
        ports.push(port);
        let plain_http = kind == "http" && !tls;
        if metrics_port.is_none()
            && (kind == "metrics" || plain_http && has_resource(listener, "metrics"))
        {
            metrics_port = Some(port);
        }
        if plain_http {
            let x_forwarded = listener.get("x_forwarded").is_some_and(Value::is_truthy);
            let client = ClientListener { port, x_forwarded };
            http.push((has_resource(listener, "client"), client));
        }
    }
    let first = http.iter().position(|(client, _)| *client).unwrap_or(0);
    let client = http
        .into_iter()
        .nth(first)
        .map(|(_, listener)| listener)
        .ok_or(HomeserverFileError::NoHttpListener)?;
    Ok(Listeners {
        client,
        metrics_port,
        ports,
    })
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServerNameError {
    #[error(
        "server name {0:?} is not valid: use a DNS name, an IPv4 address or a [bracketed] IPv6 address, optionally followed by :port"
    )]
    Format(String),
    #[error("server name {0:?} has an invalid port: it must be a number 1-65535")]
    Port(String),
}

/// The Matrix server-name grammar as Synapse checks it: host (DNS name, IPv4, `[IPv6]`) and an
/// optional `:port`.
pub fn validate_server_name(name: &str) -> Result<(), ServerNameError> {
    let format = || ServerNameError::Format(name.to_string());
    let (host, port) = if name.starts_with('[') {
        let end = name.find(']').ok_or_else(format)?;
        let (host, rest) = name.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':').ok_or_else(format)?)),
        }
    } else {
        match name.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (name, None),
        }
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(ServerNameError::Port(name.to_string()));
        }
    }
    let valid_host = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host.len() <= 255
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    };
    if valid_host { Ok(()) } else { Err(format()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "server_name: example.com\nreport_stats: false\nlisteners:\n  - port: 8008\n    type: http\n    resources:\n      - names: [client, federation]\n";

    #[test]
    fn reads_a_minimal_file() {
        let facts = read_homeserver_file(MINIMAL).unwrap();
        assert_eq!(facts.server_name, "example.com");
        assert!(!facts.report_stats);
        assert!(!facts.registration_enabled);
        assert_eq!(facts.client_port, 8008);
        assert!(facts.app_service_config_files.is_empty());
        assert_eq!(facts.inline_secrets, InlineSecrets::default());
        assert!(!facts.has_database);
    }

    #[test]
    fn the_public_settings_are_read_from_the_file_and_its_client_listener() {
        let facts = read_homeserver_file(MINIMAL).unwrap();
        assert_eq!(facts.public, PublicSettings::default());
        let file = MINIMAL.replace("    type: http\n", "    type: http\n    x_forwarded: yes\n")
            + "public_baseurl: https://m.example.com/\nserve_server_wellknown: on\n";
        let public = read_homeserver_file(&file).unwrap().public;
        assert!(public.x_forwarded, "YAML 1.1 yes");
        assert_eq!(
            public.public_baseurl.as_deref(),
            Some("https://m.example.com/")
        );
        assert_eq!(public.serve_server_wellknown, Some(true));
        // The client listener's setting counts, not another listener's.
        let two = "server_name: e.org\nreport_stats: false\nlisteners:\n  - port: 9000\n    type: http\n    x_forwarded: true\n    resources: [{names: [metrics]}]\n  - port: 8008\n    type: http\n    resources: [{names: [client]}]\n";
        let facts = read_homeserver_file(two).unwrap();
        assert_eq!(facts.client_port, 8008);
        assert!(!facts.public.x_forwarded);
    }

    #[test]
    fn report_stats_no_is_false_and_quoted_no_is_true() {
        let with = |v: &str| MINIMAL.replace("report_stats: false", &format!("report_stats: {v}"));
        assert!(!read_homeserver_file(&with("no")).unwrap().report_stats);
        assert!(!read_homeserver_file(&with("off")).unwrap().report_stats);
        assert!(read_homeserver_file(&with("yes")).unwrap().report_stats);
        // Synapse tests truthiness: a quoted "no" is a non-empty string.
        assert!(read_homeserver_file(&with("'no'")).unwrap().report_stats);
        assert_eq!(
            read_homeserver_file(&MINIMAL.replace("report_stats: false\n", "")).unwrap_err(),
            HomeserverFileError::MissingReportStats
        );
    }

    #[test]
    fn registration_uses_strtobool() {
        let with = |line: &str| format!("{MINIMAL}{line}\n");
        assert!(
            read_homeserver_file(&with("enable_registration: yes"))
                .unwrap()
                .registration_enabled
        );
        assert!(
            !read_homeserver_file(&with("enable_registration: 'no'"))
                .unwrap()
                .registration_enabled
        );
        assert!(
            !read_homeserver_file(&with("enable_registration: true\ndisable_registration: on"))
                .unwrap()
                .registration_enabled
        );
        assert!(matches!(
            read_homeserver_file(&with("enable_registration: maybe")).unwrap_err(),
            HomeserverFileError::NotABoolean { .. }
        ));
    }

    #[test]
    fn custom_client_port_and_listener_choice() {
        let text = "server_name: example.com\nreport_stats: no\nlisteners:\n  - port: 9000\n    type: metrics\n  - port: 8448\n    type: http\n    tls: true\n    resources: [{names: [client]}]\n  - port: 8081\n    type: http\n    resources: [{names: [federation]}]\n  - port: 8080\n    type: http\n    resources: [{names: [client]}]\n";
        assert_eq!(read_homeserver_file(text).unwrap().client_port, 8080);
        let no_client = text.replace("names: [client]}]\n", "names: [media]}]\n");
        assert_eq!(read_homeserver_file(&no_client).unwrap().client_port, 8081);
        let no_http = "server_name: example.com\nreport_stats: no\nlisteners:\n  - port: 9000\n    type: metrics\n";
        assert_eq!(
            read_homeserver_file(no_http).unwrap_err(),
            HomeserverFileError::NoHttpListener
        );
        let bad_port = MINIMAL.replace("port: 8008", "port: '8008'");
        assert_eq!(
            read_homeserver_file(&bad_port).unwrap_err(),
            HomeserverFileError::BadListenerPort { index: 0 }
        );
    }

    #[test]
    fn user_app_services_inline_secrets_and_database() {
        let text = format!(
            "{MINIMAL}app_service_config_files:\n  - /etc/as/one.yaml\n  - /etc/as/two.yaml\nmacaroon_secret_key: abc\nform_secret:\nregistration_shared_secret: ''\ndatabase:\n  name: psycopg2\npresence_router:\nredis:\n"
        );
        let facts = read_homeserver_file(&text).unwrap();
        assert_eq!(
            facts.app_service_config_files,
            vec!["/etc/as/one.yaml", "/etc/as/two.yaml"]
        );
        assert_eq!(
            facts.inline_secrets,
            InlineSecrets {
                macaroon_secret_key: true,
                registration_shared_secret: false,
                form_secret: false
            }
        );
        assert!(facts.has_database);
        let bad = format!("{MINIMAL}app_service_config_files: /etc/as/one.yaml\n");
        assert_eq!(
            read_homeserver_file(&bad).unwrap_err(),
            HomeserverFileError::AppServiceFilesNotList
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(matches!(
            read_homeserver_file("server_name: [oops\n").unwrap_err(),
            HomeserverFileError::Syntax(_)
        ));
        assert_eq!(
            read_homeserver_file("").unwrap_err(),
            HomeserverFileError::NotAMapping("empty")
        );
        assert_eq!(
            read_homeserver_file("- a\n").unwrap_err(),
            HomeserverFileError::NotAMapping("list")
        );
        assert_eq!(
            read_homeserver_file("report_stats: no\n").unwrap_err(),
            HomeserverFileError::MissingServerName
        );
        assert_eq!(
            read_homeserver_file("server_name: 1234\nreport_stats: no\n").unwrap_err(),
            HomeserverFileError::ServerNameNotString("integer")
        );
        assert!(matches!(
            read_homeserver_file("server_name: 'bad name'\nreport_stats: no\n").unwrap_err(),
            HomeserverFileError::InvalidServerName(_)
        ));
    }

    #[test]
    fn server_name_grammar() {
        for ok in [
            "example.com",
            "example.com:8448",
            "localhost",
            "1.2.3.4:80",
            "[::1]",
            "[2001:db8::1]:8448",
            "my-server.example",
        ] {
            assert_eq!(validate_server_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "exa mple.com",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:80a",
            "[::1",
            "[nope]",
            "a..b",
            "http://example.com",
            "example.com/path",
        ] {
            assert!(validate_server_name(bad).is_err(), "{bad}");
        }
    }
}
