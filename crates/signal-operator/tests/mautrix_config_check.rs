//! Every config the operator renders passes the start-up checks of the bridgev2 framework
//! itself: the config checker of hack/tools/mautrix-config-check runs mautrix-go's
//! `BridgeMain.PreInit` and `Init` (config upgrade, legacy detection, the "Configuration error"
//! checks on example placeholders, logging, database handle, Matrix connector) on each file.
//!
//! Needs Go and a C compiler (the framework's SQLite driver is cgo); the first build fetches
//! the pinned mautrix-go from the Go module proxy and takes about two minutes, later ones are
//! served from the Go build cache. Missing tools fail the test: it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use operator_common::database::read_secret;
use signal_operator::config::{
    BridgeConfig, OperatorDatabase, Owned, Prepared, default_config, user_config,
};
use signal_operator::keys::{Keys, complete};
use signal_operator::problems::ConfigProblem;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate lives two levels below the repository root")
        .to_path_buf()
}

/// Builds the checker once per test process into the target directory.
fn checker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mautrix-config-check");
        let output = Command::new("go")
            .current_dir(repo_root().join("hack/tools/mautrix-config-check"))
            // The framework's SQLite driver is cgo; goolm is mautrix-go's pure-Go olm, so no
            // libolm is needed (encryption is not started by the checks).
            .env("CGO_ENABLED", "1")
            .args(["build", "-tags", "goolm", "-o"])
            .arg(&out)
            .arg(".")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `go` ({e}): the config check needs Go (see MATRIX-NOTES.md)")
            });
        assert!(
            output.status.success(),
            "building hack/tools/mautrix-config-check failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// Runs the checker on `file` in a directory of its own (a file log writer with a relative
/// path writes there). Returns its output.
fn check(label: &str, file: &str) -> Output {
    run_checker(label, file, &[], &[])
}

/// [`check`] with more arguments and environment variables.
fn run_checker(label: &str, file: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("mautrix-config-check-runs")
        .join(label);
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let path = dir.join("config.yaml");
    std::fs::write(&path, file).expect("write the config");
    let output = Command::new(checker())
        .current_dir(&dir)
        .args(["-c", "config.yaml", "-r", "registration.yaml"])
        .args(args)
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .output()
        .expect("run the config checker");
    // The file is the bridge's to read only (-n): the checker never rewrites it.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file);
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_accepted(label: &str, file: &str) {
    let output = check(label, file);
    assert!(
        output.status.success() && text(&output).contains("config accepted"),
        "mautrix-go refuses the {label} config ({}):\n{}\n--- config:\n{file}",
        output.status,
        text(&output)
    );
}

fn assert_refused(label: &str, file: &str, code: i32, message: &str) {
    let output = check(label, file);
    assert_eq!(
        output.status.code(),
        Some(code),
        "the {label} config: {}",
        text(&output)
    );
    assert!(
        text(&output).contains(message),
        "the {label} config: expected {message:?} in:\n{}",
        text(&output)
    );
}

fn keys() -> Keys {
    Keys::from_data(&complete(&Default::default()).unwrap()).unwrap()
}

fn owned<'a>(keys: &'a Keys, admins: &'a [String]) -> Owned<'a> {
    Owned {
        homeserver_url: "http://hs.matrix.svc:8008",
        domain: "matrix.example.org",
        appservice_url: "http://sig-mautrix-signal.matrix.svc:29328",
        keys,
        admins,
    }
}

/// The config with the operator's SQLite database.
fn sqlite(prepared: Result<Prepared, ConfigProblem>) -> BridgeConfig {
    prepared.unwrap().finish(OperatorDatabase::Sqlite)
}

fn fixture(name: &str) -> String {
    let path = repo_root().join("e2e/testdata/signal").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn every_rendered_config_passes_the_bridge_frameworks_checks() {
    let keys = keys();
    let admins = vec!["@alice:matrix.example.org".to_owned()];

    let default = sqlite(default_config(&owned(&keys, &[])));
    assert_accepted("default", &default.file);
    let with_admins = sqlite(default_config(&owned(&keys, &admins)));
    assert_accepted("default-with-admins", &with_admins.file);

    let modern = sqlite(user_config(&fixture("modern.yaml"), &owned(&keys, &[])));
    assert_eq!(modern.migration, None);
    assert_accepted("configmap-modern", &modern.file);

    let legacy = sqlite(user_config(
        &fixture("legacy-signald.yaml"),
        &owned(&keys, &admins),
    ));
    assert!(legacy.migration.is_some());
    assert_accepted("configmap-legacy-signald", &legacy.file);

    let postgres = "appservice:\n  database: postgres://signal:pw@db.matrix.svc/signal\n  bot_username: signalbot\nbridge:\n  username_template: 'signal_{userid}'\n  permissions:\n    matrix.example.org: user\n";
    let migrated = sqlite(user_config(postgres, &owned(&keys, &[])));
    assert_accepted("configmap-legacy-postgres", &migrated.file);

    let go_legacy = "appservice:\n  database:\n    type: sqlite3\n    uri: file:signal.db\n  bot:\n    username: signalbot\nbridge:\n  username_template: signal_{{.}}\n  displayname_template: '{{.ProfileName}} (Signal)'\n  permissions:\n    '*': relay\n    matrix.example.org: admin\nlogging:\n  min_level: info\n  writers:\n    - type: stdout\n      format: json\n";
    let migrated = sqlite(user_config(go_legacy, &owned(&keys, &[])));
    assert_accepted("configmap-legacy-go", &migrated.file);
}

/// The checker is able to fail, with the framework's own messages: on the legacy file as the
/// user holds it, and on the operator's own output with an example placeholder put back.
#[test]
fn the_checker_refuses_what_the_bridge_refuses() {
    assert_refused(
        "raw-legacy-signald",
        &fixture("legacy-signald.yaml"),
        1,
        "Legacy bridge config detected, but hacky network config migrator is not set",
    );
    let keys = keys();
    let file = sqlite(default_config(&owned(&keys, &[]))).file;
    for (label, from, to, message) in [
        (
            "example-domain",
            "domain: matrix.example.org",
            "domain: example.com",
            "homeserver.domain not configured",
        ),
        (
            "template-without-placeholder",
            "username_template: signal_{{.}}",
            "username_template: signal_",
            "username template is missing user ID placeholder",
        ),
        (
            "example-as-token",
            &format!("as_token: {}", keys.as_token),
            "as_token: This value is generated when generating the registration",
            "appservice.as_token not configured",
        ),
    ] {
        assert!(file.contains(from), "{from:?} not in:\n{file}");
        assert_refused(label, &file.replace(from, to), 11, message);
    }
}

/// A PostgreSQL database the operator was given, with values that need escaping, passes the
/// framework's checks, and lib/pq (the driver of mautrix's `type: postgres`) reads from the URI
/// exactly the Secret's user, host, port, database and sslmode, and the password from
/// PGPASSWORD. Nothing listens on port 1, so the schema upgrade that follows fails as the
/// bridge's would, with exit status 15.
#[test]
fn lib_pq_reads_the_rendered_uri_as_the_secret_says() {
    let secret = Secret {
        data: Some(
            [
                ("host", "127.0.0.1"),
                ("port", "1"),
                ("dbname", "signal db/?x=1#é"),
                ("username", "sig:nal@x"),
                ("password", "s3cret:@/?"),
                ("sslmode", "disable"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect(),
        ),
        ..Secret::default()
    };
    let connection = read_secret("db", Some(&secret), "spec.externalPostgreSQL.secretName")
        .expect("a complete Secret");
    let keys = keys();
    let config = default_config(&owned(&keys, &[]))
        .unwrap()
        .finish(OperatorDatabase::Postgres(&connection));
    assert!(!config.file.contains("s3cret"));
    assert_accepted("postgres", &config.file);

    let output = run_checker(
        "postgres-upgrade",
        &config.file,
        &["--upgrade-database"],
        &[("PGPASSWORD", "s3cret:@/?")],
    );
    let text = text(&output);
    assert!(
        text.contains(
            r#"lib/pq connects to host="127.0.0.1" port=1 dbname="signal db/?x=1#é" user="sig:nal@x" sslmode="disable", password from PGPASSWORD"#
        ),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(15), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}
