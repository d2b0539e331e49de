//! An operator that a fault test SIGKILLs and starts again, as a Deployment's controller would
//! restart it, keeping the exit status and log of every incarnation: killed is expected, any other
//! exit (a panic's 101, an error's 1) or a panic in any log fails the test.

use std::ops::Range;
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::operator_process::{OperatorBuilder, OperatorProcess};
use crate::seeded_rng::SeededRng;

/// What a process left behind.
struct Incarnation {
    pid: u32,
    exit: ExitStatus,
    log: String,
}

pub struct RestartingOperator {
    name: String,
    builder: OperatorBuilder,
    current: OperatorProcess,
    past: Vec<Incarnation>,
}

impl RestartingOperator {
    pub fn start(name: &str, builder: OperatorBuilder) -> Self {
        let current = builder.clone().start();
        Self {
            name: name.to_owned(),
            builder,
            current,
            past: Vec::new(),
        }
    }

    pub fn current(&mut self) -> &mut OperatorProcess {
        &mut self.current
    }

    /// How many times it was killed.
    pub fn kills(&self) -> usize {
        self.past.len()
    }

    /// SIGKILLs the running process and starts a new one at once.
    pub fn kill_and_restart(&mut self) {
        let pid = self.current.pid();
        let exit = self.current.kill();
        let log = self.current.log_text();
        self.past.push(Incarnation { pid, exit, log });
        self.current = self.builder.clone().start();
    }

    /// `kills` times: waits a random delay drawn from `delay` (the process starting, syncing,
    /// reconciling meanwhile), then kills and restarts it.
    pub async fn kill_series(&mut self, rng: &mut SeededRng, kills: usize, delay: Range<Duration>) {
        for _ in 0..kills {
            tokio::time::sleep(rng.duration(delay.clone())).await;
            self.kill_and_restart();
        }
    }

    /// Fails unless every past process died of SIGKILL, the current one runs, and no log
    /// mentions a panic.
    pub fn assert_only_killed(&mut self) {
        let mut problems: Vec<String> = self
            .past
            .iter()
            .filter_map(|i| incarnation_problem(&self.name, i.pid, Some(i.exit), &i.log))
            .collect();
        let exit = self.current.try_exit();
        problems.extend(incarnation_problem(
            &self.name,
            self.current.pid(),
            exit,
            &self.current.log_text(),
        ));
        if let Some(status) = exit {
            problems.push(format!("the last {} process exited ({status})", self.name));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    }
}

/// What is wrong with a process that was either SIGKILLed (`exit`) or still runs (`None`): any
/// other exit, or a panic in its log (its lines quoted).
pub fn incarnation_problem(
    name: &str,
    pid: u32,
    exit: Option<ExitStatus>,
    log: &str,
) -> Option<String> {
    let mut problems = Vec::new();
    if let Some(status) = exit.filter(|s| s.signal() != Some(Signal::SIGKILL as i32)) {
        problems.push(format!("exited with {status}, not by SIGKILL"));
    }
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    if !panics.is_empty() {
        problems.push(format!("panicked:\n{}", panics.join("\n")));
    }
    (!problems.is_empty()).then(|| {
        let tail: Vec<&str> = log.lines().collect();
        format!(
            "{name} (pid {pid}) {}; its log ends with:\n{}",
            problems.join("; "),
            tail[tail.len().saturating_sub(15)..].join("\n")
        )
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::ExitStatus;

    use super::incarnation_problem;

    const LOG: &str = "{\"level\":\"INFO\",\"fields\":{\"message\":\"starting\"}}\n";

    #[test]
    fn killed_or_running_without_a_panic_is_fine() {
        let killed = ExitStatus::from_raw(9);
        assert_eq!(incarnation_problem("op", 1, Some(killed), LOG), None);
        assert_eq!(incarnation_problem("op", 1, None, LOG), None);
    }

    #[test]
    fn another_exit_or_a_panic_is_reported() {
        let panicked = format!("{LOG}thread 'main' panicked at src/x.rs:1:1:\nboom\n");
        let exit_101 = ExitStatus::from_raw(101 << 8);
        let report = incarnation_problem("op", 7, Some(exit_101), &panicked).expect("a problem");
        assert!(
            report.contains("op (pid 7) exited with exit status: 101"),
            "{report}"
        );
        assert!(
            report.contains("thread 'main' panicked at src/x.rs:1:1:"),
            "{report}"
        );
        let report = incarnation_problem("op", 7, None, &panicked).expect("a problem");
        assert!(!report.contains("exited"), "{report}");
        let terminated = ExitStatus::from_raw(15);
        assert!(incarnation_problem("op", 7, Some(terminated), LOG).is_some());
    }
}
