//! Attacks on "exactly once, nothing lost" (issues #11 and #19): a full disk while a lane
//! finishes, a hostile agent deleting its lease files, an older attempt overwriting a newer
//! one's bookkeeping, attempt budgets that never reset, identifiers that change, and a retry
//! comment that never retries. Whole processes: `maestro run --once` and `maestro daemon` with
//! the fake app-server and the fake Linear (and the fake GitHub for handoffs). The rows are in
//! docs/spec/faults.md, "Attacks: exactly once, nothing lost".

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app_server::fake_app_server;
use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
use crate::support::fake_linear::{FakeIssue, Fault};
use crate::support::git::git;
use crate::support::run_world::{self, RunWorld, wait_until};

const LONG: Duration = Duration::from_secs(60);
const NEEDS_ATTENTION: &str = "**Maestro: needs attention**";

fn world(
    name: &str,
    issues: Vec<FakeIssue>,
    execution: &'static str,
    agent: &'static str,
) -> DaemonWorld {
    DaemonWorld::new(Setup {
        name,
        issues,
        execution,
        agent,
    })
}

/// `run --once` against `world` with the fake agent's `scripts`, to completion (bounded).
fn run_once(world: &DaemonWorld, scripts: &Value) -> Output {
    run_world::bounded(world.maestro(&["run", "--once"], scripts), LONG)
}

/// `run --once` in the background, its output piped.
fn spawn_run_once(world: &DaemonWorld, scripts: &Value) -> Child {
    world
        .maestro(&["run", "--once"], scripts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn line(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn needs_attention_comments(world: &DaemonWorld) -> usize {
    world
        .linear
        .comments()
        .iter()
        .filter(|comment| comment.body.starts_with(NEEDS_ATTENTION))
        .count()
}

/// The bookkeeping file of issue `issue_id`, whatever its name, and its content.
fn bookkeeping(state_dir: &Path, issue_id: &str) -> Option<(PathBuf, Value)> {
    let entries = std::fs::read_dir(state_dir.join("issues")).ok()?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .filter_map(|path| {
            let value: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            (value["issue_id"] == issue_id).then_some((path, value))
        })
        .next()
}

/// Replaces `path` the way another process would: a whole new file renamed over it.
fn replace_file(path: &Path, value: &Value) {
    let temp = path.with_extension("json.test-tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

/// A script that claims the issue, stays busy until `go` exists, then asks for a human.
fn manual_attention_after(go: &Path) -> Value {
    json!([
        {"tool": "issue_transition", "arguments": {"state": "In Progress"}},
        {"wait_for_file": go.display().to_string()},
        {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
        {"tool": "issue_comment", "arguments": {"body": "I need a human to decide the API."}},
        {"tool": "issue_terminal_finalize", "arguments": {"path": "manual_attention"}},
    ])
}

mod leases {
    //! #11 item 6: a hostile agent deletes `.maestro/leases/<key>.{lock,json}` while its attempt
    //! runs; liveness must come from what is really held, and an older attempt must never
    //! overwrite a newer attempt's bookkeeping.

    use super::*;

    #[test]
    fn deleted_lease_files_do_not_let_a_second_run_take_a_live_issue() {
        let world = world(
            "attack-lease-deleted",
            vec![FakeIssue::new("SEC-1", "Todo")],
            "max_concurrent_agents = 2",
            "",
        );
        let go = world.dir.join("go");
        let scripts = json!({"*": manual_attention_after(&go)});
        let mut first = spawn_run_once(&world, &scripts);
        world.wait_for("attempt 1 to claim SEC-1 and work", LONG, || {
            (world.linear.issue("SEC-1").state == "In Progress").then_some(())
        });
        // What the agent can do from its lane: delete every lease file.
        let leases = world.state_dir().join("leases");
        for entry in std::fs::read_dir(&leases).unwrap().flatten() {
            std::fs::remove_file(entry.path()).unwrap();
        }
        let status = world
            .maestro(&["status", "--json"], &json!({}))
            .output()
            .unwrap();
        let snapshot: Value = serde_json::from_slice(&status.stdout).unwrap();
        let active = &snapshot["active"][0];
        assert_eq!(active["issue_identifier"], "SEC-1", "{snapshot:#}");
        assert_eq!(active["owner_alive"], true, "{snapshot:#}");
        assert_ne!(active["phase"], "orphaned", "{snapshot:#}");
        // A shell run with a free slot must not start a second attempt of SEC-1.
        let second = run_once(&world, &scripts);
        assert_eq!(second.status.code(), Some(3), "{}", line(&second));
        assert!(!line(&second).contains("issue=SEC-1"), "{}", line(&second));
        assert_eq!(
            run_records(&world.state_dir()).len(),
            1,
            "no second attempt"
        );
        // The live attempt takes its lease again, so every other process sees it held.
        world.wait_for("the lease to be held again", LONG, || {
            let layout = maestro::workspace::Layout::new(&world.workspace_root);
            maestro::workspace::lock::held_leases(&layout)
                .unwrap()
                .into_iter()
                .any(|(_, owner)| owner.issue_identifier == "SEC-1")
                .then_some(())
        });
        std::fs::write(&go, "").unwrap();
        let status = world.wait_for("attempt 1 to end", LONG, || first.try_wait().unwrap());
        assert_eq!(status.code(), Some(5));
        let records = run_records(&world.state_dir());
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(records[0]["status"], "human_required");
        let (_, state) = bookkeeping(&world.state_dir(), "id-SEC-1").unwrap();
        assert_eq!(state["attempts_used"], 1);
        assert_eq!(state["last_status"], "human_required");
        assert_eq!(needs_attention_comments(&world), 1);
    }

    #[test]
    fn an_older_attempt_never_overwrites_a_newer_attempts_bookkeeping() {
        let world = world(
            "attack-stale-bookkeeping",
            vec![FakeIssue::new("SEC-1", "Todo")],
            "",
            "",
        );
        let go = world.dir.join("go");
        let scripts = json!({"*": manual_attention_after(&go)});
        let mut first = spawn_run_once(&world, &scripts);
        world.wait_for("attempt 1 to claim SEC-1 and work", LONG, || {
            (world.linear.issue("SEC-1").state == "In Progress").then_some(())
        });
        // Another process (a newer attempt, as after a stolen lease) rewrote the bookkeeping.
        let (path, mut state) = world.wait_for("attempt 1's bookkeeping", LONG, || {
            bookkeeping(&world.state_dir(), "id-SEC-1")
        });
        let newer = "20991231T000000000Z-sec-1-a2-ffff";
        state["attempts_used"] = json!(2);
        state["last_run_id"] = json!(newer);
        state["last_status"] = json!("human_required");
        state["guard"] = json!({"reason": "label missing on the team", "run_id": newer, "at": "2099-12-31T00:00:00.000Z"});
        replace_file(&path, &state);
        std::fs::write(&go, "").unwrap();
        let status = world.wait_for("attempt 1 to end", LONG, || first.try_wait().unwrap());
        assert_eq!(status.code(), Some(5));
        let (_, after) = bookkeeping(&world.state_dir(), "id-SEC-1").unwrap();
        assert_eq!(after["last_run_id"], newer, "{after:#}");
        assert_eq!(after["attempts_used"], 2, "{after:#}");
        assert_eq!(
            after["guard"]["reason"], "label missing on the team",
            "the guard survives: {after:#}"
        );
        // Attempt 1's own outcome is not lost: its record holds it.
        let records = run_records(&world.state_dir());
        assert_eq!(records[0]["status"], "human_required");
    }
}

mod budget {
    //! #19 item 1: the attempt budget counts the consecutive failures of one episode; a
    //! handoff, a human outcome or a person moving the issue starts a new one.

    use super::*;

    #[test]
    fn a_handoff_starts_a_fresh_attempt_budget() {
        let world = RunWorld::builder("attack-budget-handoff", &fake_app_server())
            .issues(vec![FakeIssue::new("ABC-1", "Todo")])
            .front_matter("version = 1\n\n[execution]\nmax_attempts = 2\n")
            .build();
        // The PR's head is the lane's HEAD: the branch on origin points at main's commit.
        git(
            &world.source,
            &[
                "push",
                "--quiet",
                world.origin.to_str().unwrap(),
                "main:refs/heads/x/demo-abc-1",
            ],
        );
        world.open_pull(7, "x/demo-abc-1");
        let scripts = json!({"*": [
            {"tool": "issue_review_handoff", "arguments": {"pr_url": run_world::pr_url(7), "summary": "Done."}},
            {"tool": "issue_terminal_finalize", "arguments": {"path": "review_handoff"}},
        ]});
        for round in 1..=3 {
            let output = run_world::bounded(
                fake_agent(world.command(&["run", "--once"]), &scripts),
                LONG,
            );
            let summary = line(&output);
            assert_eq!(output.status.code(), Some(0), "round {round}: {summary}");
            assert!(
                summary.contains("outcome=handoff"),
                "round {round}: {summary}"
            );
            assert_eq!(world.linear.issue("ABC-1").state, "In Review");
            // A person sends it back for more work.
            world.linear.edit(|w| w.issues[0].state = "Todo".into());
        }
        let attempts: Vec<u32> = world.runs().iter().map(|run| run.attempt).collect();
        assert_eq!(attempts, vec![1, 1, 1], "each episode starts at attempt 1");
    }

    fn fake_agent(mut command: Command, scripts: &Value) -> Command {
        command
            .env("MAESTRO_FAKE_SCENARIO", "tools")
            .env("MAESTRO_FAKE_TOOLS", scripts.to_string());
        command
    }

    #[test]
    fn a_person_moving_the_issue_starts_a_fresh_attempt_budget() {
        let world = world(
            "attack-budget-moved",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "max_attempts = 2",
            "",
        );
        let crash = json!({"*": "crash"});
        let first = run_once(&world, &crash);
        assert_eq!(first.status.code(), Some(4), "{}", line(&first));
        assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
        // A person moves it back to Todo (say, after rewriting the description).
        world.linear.edit(|w| w.issues[0].state = "Todo".into());
        let second = run_once(&world, &crash);
        assert_eq!(
            second.status.code(),
            Some(4),
            "a fresh budget retries: {}",
            line(&second)
        );
        let mut attempts: Vec<u64> = run_records(&world.state_dir())
            .iter()
            .map(|record| record["attempt"].as_u64().unwrap())
            .collect();
        attempts.sort();
        assert_eq!(attempts, vec![1, 1]);
    }

    #[test]
    fn a_stalled_lane_re_enabled_by_a_person_starts_a_fresh_attempt_budget() {
        let mut world = world(
            "attack-budget-stalled",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "max_attempts = 1",
            "stall_timeout_ms = 1500",
        );
        world.start_daemon(&json!({"*": "silence"}));
        world.wait_for("the stall to reach Linear", LONG, || {
            (needs_attention_comments(&world) == 1).then_some(())
        });
        assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
        // A person looks, removes the label and puts the issue back.
        world.linear.edit(|w| {
            w.issues[0].labels.clear();
            w.issues[0].state = "Todo".into();
        });
        let output = run_once(&world, &json!({"*": manual_attention_script()}));
        assert_eq!(output.status.code(), Some(5), "{}", line(&output));
        assert!(
            line(&output).contains("error=manual_attention"),
            "{}",
            line(&output)
        );
        let records = run_records(&world.state_dir());
        let latest = records
            .iter()
            .find(|record| record["status"] == "human_required")
            .unwrap();
        assert_eq!(latest["attempt"], 1, "{records:#?}");
    }
}

mod identifiers {
    //! #19 item 6: an issue moved to another team gets a new identifier, never a new id.

    use super::*;

    fn rename(world: &DaemonWorld, from: &str, to: &str) {
        let (from, to) = (from.to_string(), to.to_string());
        world.linear.edit(move |w| {
            for issue in &mut w.issues {
                if issue.identifier == from {
                    issue.identifier = to.clone();
                }
            }
        });
    }

    #[test]
    fn a_renamed_issue_is_recovered_in_its_first_lane() {
        let world = world(
            "attack-renamed-recovery",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "",
            "",
        );
        let first = run_once(&world, &json!({"*": "crash"}));
        assert_eq!(first.status.code(), Some(4), "{}", line(&first));
        rename(&world, "ABC-1", "XYZ-1");
        let second = run_once(&world, &json!({"*": manual_attention_script()}));
        assert_eq!(second.status.code(), Some(5), "{}", line(&second));
        assert!(line(&second).contains("issue=XYZ-1"), "{}", line(&second));
        let records = run_records(&world.state_dir());
        let latest = records
            .iter()
            .find(|record| record["issue_identifier"] == "XYZ-1")
            .unwrap();
        assert_eq!(latest["attempt"], 2);
        assert!(
            latest["workspace_path"]
                .as_str()
                .unwrap()
                .ends_with("ABC-1"),
            "the lane keeps its first name: {latest:#}"
        );
        assert!(!world.workspace_root.join("XYZ-1").exists());
        let (_, state) = bookkeeping(&world.state_dir(), "id-ABC-1").unwrap();
        assert_eq!(state["issue_identifier"], "XYZ-1");
        assert_eq!(state["lane_key"], "ABC-1");
    }

    #[test]
    fn bookkeeping_stored_under_an_old_identifier_is_read_and_moved_to_the_id() {
        let world = world(
            "attack-legacy-bookkeeping",
            vec![FakeIssue::new("XYZ-1", "In Progress")],
            "",
            "",
        );
        // What a version that keyed files by identifier left: ABC-1's bookkeeping, a retry
        // due; the issue has since moved team and is XYZ-1 now.
        let issues = world.state_dir().join("issues");
        std::fs::create_dir_all(&issues).unwrap();
        std::fs::write(
            issues.join("ABC-1.json"),
            json!({"schema_version": 1, "issue_id": "id-XYZ-1", "issue_identifier": "ABC-1",
                   "attempts_used": 1, "last_run_id": "r1", "last_status": "retry_scheduled",
                   "last_error_class": "validation_failed", "next_action": "retry attempt 2",
                   "guard": null, "updated_at": "2026-11-26T00:00:00.000Z"})
            .to_string(),
        )
        .unwrap();
        let output = run_once(&world, &json!({"*": manual_attention_script()}));
        assert_eq!(output.status.code(), Some(5), "{}", line(&output));
        let records = run_records(&world.state_dir());
        assert_eq!(records[0]["attempt"], 2, "{records:#?}");
        assert!(
            records[0]["workspace_path"]
                .as_str()
                .unwrap()
                .ends_with("ABC-1")
        );
        assert!(
            !issues.join("ABC-1.json").exists(),
            "the old file was moved"
        );
        let (path, state) = bookkeeping(&world.state_dir(), "id-XYZ-1").unwrap();
        assert_eq!(path, issues.join("id-XYZ-1.json"));
        assert_eq!(state["attempts_used"], 2);
        assert_eq!(state["lane_key"], "ABC-1");
    }

    #[test]
    fn a_lane_renamed_before_its_claim_is_not_taken_for_stalled() {
        let mut world = world(
            "attack-renamed-stall",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "",
            "stall_timeout_ms = 2500",
        );
        // The daemon's first read of the issues (the intake's resync) answers with ABC-1 but
        // arrives late; the issue is renamed in between, so the child it spawns sees XYZ-1
        // when it claims.
        world
            .linear
            .inject("IssueSummariesByIds", Fault::Slow(Duration::from_secs(2)));
        let mut script =
            vec![json!({"tool": "issue_transition", "arguments": {"state": "In Progress"}})];
        script.extend((0..12).map(|_| json!({"sleep_ms": 500})));
        script.extend(
            manual_attention_script()
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        world.start_daemon(&json!({"*": script}));
        world.wait_for("the daemon's first listing", LONG, || {
            world
                .linear
                .operations()
                .iter()
                .any(|operation| operation == "IssueSummariesByIds")
                .then_some(())
        });
        rename(&world, "ABC-1", "XYZ-1");
        let record = world.wait_for("the lane to finish", LONG, || {
            run_records(&world.state_dir())
                .into_iter()
                .find(|record| record["status"] != "running")
        });
        assert_eq!(record["status"], "human_required", "{record:#}");
        assert_eq!(record["error_class"], "manual_attention");
        assert!(!world.log().contains("action=stalled"), "{}", world.log());
        assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    }
}

mod outcomes {
    //! #19 item 10: the outcome and its comment agree.

    use super::*;

    #[test]
    fn the_needs_attention_label_then_a_failed_turn_is_a_human_outcome() {
        let world = world(
            "attack-label-then-crash",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "",
            "",
        );
        let script = json!({"*": [
            {"tool": "issue_transition", "arguments": {"state": "In Progress"}},
            {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
            {"exit": 3},
        ]});
        let output = run_once(&world, &script);
        assert_eq!(output.status.code(), Some(5), "{}", line(&output));
        assert!(
            line(&output).contains("outcome=human_required error=app_server_exited"),
            "{}",
            line(&output)
        );
        let comments: Vec<String> = world
            .linear
            .comments()
            .into_iter()
            .map(|comment| comment.body)
            .collect();
        assert!(
            comments.iter().all(|body| !body.contains("retrying")),
            "no retry is promised: {comments:#?}"
        );
        assert_eq!(needs_attention_comments(&world), 1, "{comments:#?}");
        let issue = world.linear.issue("ABC-1");
        assert_eq!(issue.state, "Todo", "failure_state");
        let record = &run_records(&world.state_dir())[0];
        assert_eq!(record["status"], "human_required");
        assert_eq!(record["retry"]["retry"], false);
    }
}

mod retries {
    //! #11 item 4: a queued retry honours the guard marker and the issue's recorded human
    //! outcome, whatever wrote them after the retry was queued.

    use super::*;

    /// A crashed attempt 1 leaves a retry queued (due in 3 s); `change` edits the bookkeeping
    /// before it falls due; the retry must be released, never run.
    fn released_after(name: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut world = world(
            name,
            vec![FakeIssue::new("ABC-1", "Todo")],
            "max_retry_backoff_ms = 3000",
            "",
        );
        world.start_daemon(&json!({"*": "crash"}));
        world.wait_for("a queued retry", LONG, || {
            world.log().contains("action=retry_scheduled").then_some(())
        });
        let (path, mut state) = bookkeeping(&world.state_dir(), "id-ABC-1").unwrap();
        change(&mut state);
        replace_file(&path, &state);
        // Released, or (the bug) run again: whichever comes first.
        world.wait_for("the due retry to be decided", LONG, || {
            let log = world.log();
            (log.contains("action=released") || log.matches("action=dispatch").count() > 1)
                .then_some(())
        });
        let log = world.log();
        assert_eq!(log.matches("action=dispatch").count(), 1, "{log}");
        assert_eq!(
            run_records(&world.state_dir()).len(),
            1,
            "no second attempt"
        );
        assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
        log
    }

    #[test]
    fn a_retry_queued_before_a_guard_marker_is_released() {
        let log = released_after("attack-retry-guard", |state| {
            state["guard"] = json!({"reason": "label missing on the team", "run_id": "r", "at": "2026-11-26T00:00:00.000Z"});
        });
        assert!(
            log.contains("reason=\"guard marker: label missing"),
            "{log}"
        );
    }

    #[test]
    fn a_retry_queued_before_a_human_outcome_is_released() {
        let log = released_after("attack-retry-human", |state| {
            state["last_run_id"] = json!("20991231T000000000Z-abc-1-a2-ffff");
            state["last_status"] = json!("human_required");
        });
        assert!(log.contains("already recorded human_required"), "{log}");
    }
}

mod disk {
    //! #11 item 4: the disk fills up while a lane finishes, then frees.

    use super::*;

    /// A `maestro daemon` in a private mount namespace whose workspace root is a 3 MB tmpfs,
    /// reachable from the test through `/proc/<pid>/root`.
    struct NamespacedDaemon {
        process: Option<Child>,
        /// The workspace root as the test sees it.
        root: PathBuf,
        log: PathBuf,
    }

    impl NamespacedDaemon {
        fn start(world: &DaemonWorld, scripts: &Value) -> NamespacedDaemon {
            let workspace = world.workspace_root.display().to_string();
            let command = world.maestro(&["daemon", "--poll-interval-s", "1"], scripts);
            let log = world.dir.join("namespaced-daemon.log");
            let log_file = std::fs::File::create(&log).unwrap();
            let mut shell = Command::new("unshare");
            shell
                .args(["-rm", "sh", "-c"])
                .arg(format!(
                    "mkdir -p '{workspace}' && mount -t tmpfs -o size=3m tmpfs '{workspace}' && exec \"$0\" \"$@\""
                ))
                .arg(command.get_program())
                .args(command.get_args());
            for (key, value) in command.get_envs() {
                match value {
                    Some(value) => shell.env(key, value),
                    None => shell.env_remove(key),
                };
            }
            let process = shell
                .env("RUST_LOG", "info,maestro::daemon::tick=debug")
                .current_dir(world.dir.path())
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap();
            let root = PathBuf::from(format!("/proc/{}/root", process.id()))
                .join(world.workspace_root.strip_prefix("/").unwrap());
            NamespacedDaemon {
                process: Some(process),
                root,
                log,
            }
        }

        fn log(&self) -> String {
            std::fs::read_to_string(&self.log).unwrap_or_default()
        }

        fn ticks(&self) -> usize {
            self.log().matches("tick finished").count()
        }

        /// Waits (bounded) for `n` more daemon ticks.
        fn wait_ticks(&self, n: usize) {
            let target = self.ticks() + n;
            assert!(
                wait_until(LONG, || self.ticks() >= target),
                "the daemon stopped ticking:\n{}",
                self.log()
            );
        }

        fn stop(&mut self) -> Option<i32> {
            let mut process = self.process.take()?;
            maestro::signals::signal_process(process.id(), libc::SIGTERM);
            let stopped = wait_until(Duration::from_secs(40), || {
                process.try_wait().unwrap().is_some()
            });
            if !stopped {
                let _ = process.kill();
            }
            process.wait().unwrap().code()
        }
    }

    impl Drop for NamespacedDaemon {
        fn drop(&mut self) {
            // Children lead their own groups; end them before the daemon (they live in its
            // namespace, so their leases are read through it).
            if let Ok(entries) = std::fs::read_dir(self.root.join(".maestro/leases")) {
                for entry in entries.flatten() {
                    let owner: Value = std::fs::read(entry.path())
                        .ok()
                        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                        .unwrap_or(Value::Null);
                    if let Some(pid) = owner["pid"].as_u64() {
                        maestro::signals::signal_group(pid as u32, libc::SIGKILL);
                    }
                }
            }
            if let Some(mut process) = self.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
    }

    /// Writes zeros to `path` until the filesystem refuses more.
    fn fill(path: &Path) {
        use std::io::Write;
        let mut file = std::fs::File::create(path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }

    fn can_mount_tmpfs() -> bool {
        let probe = Command::new("unshare")
            .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
            .output();
        let can = probe.is_ok_and(|output| output.status.success());
        if !can {
            println!("skipped: cannot mount a tmpfs in a private namespace here");
        }
        can
    }

    #[test]
    fn a_full_disk_while_a_lane_finishes_loses_no_outcome_and_redispatches_nothing() {
        if !can_mount_tmpfs() {
            return;
        }
        let world = world(
            "attack-disk-full",
            vec![FakeIssue::new("ABC-1", "Todo")],
            "",
            "",
        );
        // No needs-attention label on the team: the human path keeps the issue in progress
        // behind a guard marker, which only the bookkeeping on the full disk records.
        world.linear.edit(|w| {
            w.workspace_labels
                .retain(|(_, name)| name != "maestro:needs-attention")
        });
        let go = world.dir.join("go");
        let mut daemon =
            NamespacedDaemon::start(&world, &json!({"*": manual_attention_after(&go)}));
        world.wait_for("the lane to claim ABC-1", LONG, || {
            (world.linear.issue("ABC-1").state == "In Progress").then_some(())
        });
        let filler = daemon.root.join("fill");
        fill(&filler);
        std::fs::write(&go, "").unwrap();
        world.wait_for("the human path to reach Linear", LONG, || {
            (needs_attention_comments(&world) >= 1).then_some(())
        });
        // A few ticks on the full disk, then the space comes back and a few more.
        daemon.wait_ticks(4);
        std::fs::remove_file(&filler).unwrap();
        daemon.wait_ticks(4);
        let log = daemon.log();
        assert_eq!(log.matches("action=dispatch").count(), 1, "{log}");
        assert_eq!(
            needs_attention_comments(&world),
            1,
            "{:#?}",
            world.linear.comments()
        );
        let records = run_records(&daemon.root.join(".maestro"));
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(records[0]["status"], "human_required", "{records:#?}");
        let (_, state) = bookkeeping(&daemon.root.join(".maestro"), "id-ABC-1").unwrap();
        assert_eq!(state["last_status"], "human_required", "{state:#}");
        assert!(
            state["guard"].is_object(),
            "the guard was recorded: {state:#}"
        );
        assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    }

    #[test]
    fn a_child_that_cannot_record_is_retried_after_a_backoff_not_every_tick() {
        if !can_mount_tmpfs() {
            return;
        }
        let world = world(
            "attack-disk-full-claim",
            vec![FakeIssue::new("ABC-1", "Backlog")],
            "",
            "",
        );
        let mut daemon = NamespacedDaemon::start(&world, &json!({"*": manual_attention_script()}));
        daemon.wait_ticks(1);
        // The disk is full before the issue becomes eligible: the child cannot even record
        // its claim, so it ends before any attempt starts.
        let filler = daemon.root.join("fill");
        fill(&filler);
        world.linear.edit(|w| w.issues[0].state = "Todo".into());
        let first = |log: &str| log.contains("child_failed_before_record");
        assert!(
            wait_until(LONG, || first(&daemon.log())),
            "{}",
            daemon.log()
        );
        daemon.wait_ticks(4);
        let log = daemon.log();
        assert_eq!(
            log.matches("action=dispatch").count(),
            1,
            "the queued retry owns the issue until it is due: {log}"
        );
        assert!(log.contains("due in 10 s"), "{log}");
        // Space again: the retry runs the attempt once, to its outcome.
        std::fs::remove_file(&filler).unwrap();
        world.wait_for("the retried attempt's outcome", LONG, || {
            run_records(&daemon.root.join(".maestro"))
                .into_iter()
                .find(|record| record["status"] == "human_required")
        });
        assert_eq!(needs_attention_comments(&world), 1);
        let records = run_records(&daemon.root.join(".maestro"));
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(
            records[0]["attempt"], 1,
            "no attempt was spent on the failed claims"
        );
        assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    }
}
