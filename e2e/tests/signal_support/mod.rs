//! Shared by the signal-operator end-to-end tests: the bridgev2 framework's own start-up checks
//! (hack/tools/mautrix-config-check), run on the config.yaml the operator wrote, and waiting for
//! the operator to be idle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use e2e::operator_process::OperatorProcess;

const RECONCILIATIONS: &str = "matrix_operator_reconciliations_total";
/// Long enough for a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until the operator has run no reconciliation for `calm`.
pub async fn settle(operator: &OperatorProcess, calm: Duration) {
    let mut last = operator.metric(RECONCILIATIONS);
    let mut since = tokio::time::Instant::now();
    let started = since;
    while since.elapsed() < calm {
        assert!(started.elapsed() < TIMEOUT, "the operator never settled");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = operator.metric(RECONCILIATIONS);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        }
    }
}

/// The checker, built once per test process. Missing Go fails the test: it never skips.
pub fn config_checker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mautrix-config-check");
        let output = Command::new("go")
            .current_dir(e2e::repo_root().join("hack/tools/mautrix-config-check"))
            // cgo for the framework's SQLite driver; goolm instead of libolm.
            .env("CGO_ENABLED", "1")
            .args(["build", "-tags", "goolm", "-o"])
            .arg(&out)
            .arg(".")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `go` ({e}): the config check needs Go"));
        assert!(
            output.status.success(),
            "building hack/tools/mautrix-config-check failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    })
}

/// Runs the checker on `config` (the text the operator wrote) in a directory of its own, with
/// `args` after `-c config.yaml` and only `env` of the PostgreSQL variables. Returns its output
/// and its stdout and stderr as one text.
pub fn run_checker(
    label: &str,
    config: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, String) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("signal-operator-e2e-configs")
        .join(label);
    std::fs::create_dir_all(&dir).expect("create the check directory");
    std::fs::write(dir.join("config.yaml"), config).expect("write config.yaml");
    let output = Command::new(config_checker())
        .current_dir(&dir)
        .args(["-c", "config.yaml"])
        .args(args)
        .env_remove("PGPASSWORD")
        .env_remove("PGSSLMODE")
        .envs(env.iter().copied())
        .output()
        .expect("run the config checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

/// Asserts that mautrix-signal's framework would start with `config`, printing the checker's
/// verdict.
pub fn assert_bridge_accepts(label: &str, config: &str) {
    let (output, text) = run_checker(label, config, &[], &[]);
    assert!(
        output.status.success() && text.contains("config accepted"),
        "mautrix-go refuses the {label} config ({}):\n{text}",
        output.status
    );
    eprintln!("{label}: {}", text.lines().last().unwrap_or_default());
}
