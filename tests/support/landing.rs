//! Helpers for the post-review lifecycle's end-to-end tests (`tests/landing.rs`): WORKFLOW.md
//! with `[review]` on, a `maestro daemon` over a [`RunWorld`] with its log kept in a file (a
//! piped log could fill and block the daemon in a long test), the review record as the daemon
//! wrote it, and the PR's state in the fake GitHub.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use maestro::review::ReviewRecord;
use maestro::workspace::record;

use maestro::mock_model::Step;
use maestro::review::Phase;
use serde_json::json;

use super::fake_linear::FakeIssue;
use super::git::git;
use super::run_world::{REPO, RunWorld, commit_and_push, handoff_steps, pr_url, summary_line};

/// The lane branch of ABC-1 in these worlds.
pub const BRANCH: &str = "x/demo-abc-1";
/// The titles of the lifecycle's own comments.
pub const CLOSEOUT: &str = "**Maestro: merged and closed out**";
pub const HUMAN: &str = "**Maestro: the pull request needs a person**";

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

/// A world with ABC-1 in Todo, PR 1 open on its lane branch, `[review]` as given, and the
/// model's script; ABC-1 is handed off by one `run --once` before it returns.
pub fn handed_off(name: &str, codex: &std::path::Path, review: &str, extra: Vec<Step>) -> RunWorld {
    let mut steps = handoff_steps(BRANCH, 1);
    steps.extend(extra);
    let world = RunWorld::builder(name, codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(&review_front_matter(review))
        .steps(steps)
        .build();
    world.open_pull(1, BRANCH);
    let run = world.run_once();
    let line = summary_line(&run);
    assert_eq!(run.status.code(), Some(0), "{line}");
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
    let record = review_record(&world, "ABC-1").expect("the handoff wrote the review record");
    assert_eq!(record.phase, Phase::ReviewWait);
    assert_eq!(record.validated_head, head(&world, BRANCH));
    assert_eq!(record.pr_url, pr_url(1));
    assert!(
        world.lane("ABC-1").is_dir(),
        "the lane is kept for the lifecycle"
    );
    world
}

/// The repair's script: commit and push a fix, record it, finalize.
pub fn repair_steps(file: &str) -> Vec<Step> {
    vec![
        Step::exec_command("call_fix", &commit_and_push(file, BRANCH)),
        Step::tool_call(
            "call_repaired",
            "issue_review_repair_complete",
            json!({"pr_url": pr_url(1), "summary": "Renamed as asked."}),
        ),
        Step::tool_call(
            "call_repair_finalize",
            "issue_terminal_finalize",
            json!({"path": "review_repair"}),
        ),
        Step::message("Repaired."),
    ]
}

/// ABC-N handed off with PR N, for N in 1..=count, one `run --once` each.
pub fn several_handed_off(
    name: &str,
    codex: &std::path::Path,
    review: &str,
    count: u64,
) -> RunWorld {
    let steps = (1..=count)
        .flat_map(|n| handoff_steps(&format!("x/demo-abc-{n}"), n))
        .collect();
    let world = RunWorld::builder(name, codex)
        .issues(
            (1..=count)
                .map(|n| FakeIssue::new(&format!("ABC-{n}"), "Todo"))
                .collect(),
        )
        .front_matter(&review_front_matter(review))
        .steps(steps)
        .build();
    for n in 1..=count {
        world.open_pull(n, &format!("x/demo-abc-{n}"));
        let run = world.run_once();
        assert_eq!(run.status.code(), Some(0), "{}", summary_line(&run));
        assert_eq!(phase(&world, &format!("ABC-{n}")), "review_wait");
    }
    world
}

/// A lane the lifecycle left to a person: the issue waits in review with the needs-attention
/// label, the lane is kept for the person, and no merge was asked for.
pub fn assert_left_to_a_person(world: &RunWorld) {
    let issue = world.linear.issue("ABC-1");
    assert_eq!(
        issue.state, "In Review",
        "the issue waits for a person in review"
    );
    assert!(
        issue.labels.iter().any(|l| l == "maestro:needs-attention"),
        "{:?}",
        issue.labels
    );
    assert!(
        world.lane("ABC-1").is_dir(),
        "the lane is kept for the person"
    );
    assert_eq!(
        world
            .github
            .requests_on("PUT", "/repos/acme/widgets/pulls/1/merge"),
        0,
        "nothing merged"
    );
}
