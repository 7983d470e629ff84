//! Helpers for the post-review lifecycle's end-to-end tests (`tests/landing.rs`): WORKFLOW.md
//! with `[review]` on, a `maestro daemon` over a [`RunWorld`] with its log kept in a file (a
//! piped log could fill and block the daemon in a long test), the review record as the daemon
//! wrote it, and the PR's state in the fake GitHub.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use maestro::review::ReviewRecord;
use maestro::workspace::record;

use super::git::git;
use super::run_world::{REPO, RunWorld};

/// Front matter with the lifecycle on, reading the PR every second.
pub fn review_front_matter(review: &str) -> String {
    format!(
        "version = 1\n\n[execution]\nmax_attempts = 3\nvalidation_commands = [\"test -f feature.txt\"]\nvalidation_timeout_ms = 60000\n\n[review]\nenabled = true\npoll_interval_s = 1\n{review}\n"
    )
}

/// How long a lifecycle step may take in these tests (real codex, a 1 s poll).
pub const LIFECYCLE: Duration = Duration::from_secs(120);

/// A `maestro daemon --poll-interval-s 1` over a run world, logging to a file.
pub struct Daemon {
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl Daemon {
    /// Starts a daemon; every daemon of a world appends to the same log.
    pub fn start(world: &RunWorld) -> Daemon {
        let log_path = world.dir.join("daemon.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let child = world
            .command(&["daemon", "--poll-interval-s", "1"])
            .env("RUST_LOG", "info,maestro::daemon::tick=debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            log_path,
        }
    }

    /// Waits (bounded) until this daemon has finished a tick: its signal handlers are
    /// installed by then, so a SIGTERM is a clean stop, not a kill.
    pub fn wait_ticked(&self, starts: usize) {
        self.wait_for("the daemon's first tick", LIFECYCLE, || {
            let log = self.log();
            let started = log.matches("daemon starting").count() >= starts;
            let last = log.rfind("daemon starting")?;
            (started && log[last..].contains("tick finished")).then_some(())
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `kill -9`: no chance to record or clean anything up; its children keep running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then its exit code (bounded).
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        maestro::signals::signal_process(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon did not stop within 40 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `check` until it returns `Some`, at most `timeout`; panics with the daemon log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The review record of `identifier` (stored under its issue id), when there is one.
pub fn review_record(world: &RunWorld, identifier: &str) -> Option<ReviewRecord> {
    let id = world.linear.issue(identifier).id;
    ReviewRecord::load(&world.layout(), &record::issue_key(&id)).unwrap()
}

/// The review record's phase name, `-` without a record.
pub fn phase(world: &RunWorld, identifier: &str) -> String {
    review_record(world, identifier).map_or_else(|| "-".into(), |r| r.phase.to_string())
}

/// The tip of `branch` in the bare origin.
pub fn head(world: &RunWorld, branch: &str) -> String {
    let output = std::process::Command::new("git")
        .args(["rev-parse", &format!("refs/heads/{branch}")])
        .current_dir(&world.origin)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// PR `number` approved by bob, with a green check run on `sha`.
pub fn approve(world: &RunWorld, number: u64, sha: &str) {
    world.github.update(REPO, number, |pull| {
        pull.review("bob", "APPROVED", "Looks good.")
    });
    world
        .github
        .check_run(sha, "ci", "completed", Some("success"));
}

/// A second commit pushed to the lane branch behind Maestro's back (a person's push).
pub fn push_behind_maestros_back(world: &RunWorld, branch: &str) {
    let clone = world.dir.join("intruder");
    git(
        world.dir.path(),
        &[
            "clone",
            "--quiet",
            "--branch",
            branch,
            world.origin.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    std::fs::write(clone.join("intruder.txt"), "pushed by a person\n").unwrap();
    git(&clone, &["add", "intruder.txt"]);
    git(
        &clone,
        &[
            "-c",
            "user.name=A Person",
            "-c",
            "user.email=person@example.invalid",
            "commit",
            "--quiet",
            "-m",
            "a person's change",
        ],
    );
    git(&clone, &["push", "--quiet", "origin", branch]);
}

/// Comments on `identifier` that start with `title`.
pub fn comments_titled(world: &RunWorld, identifier: &str, title: &str) -> Vec<String> {
    world
        .comments(identifier)
        .into_iter()
        .filter(|comment| comment.starts_with(title))
        .collect()
}
