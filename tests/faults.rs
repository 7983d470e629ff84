//! Fault matrix rows that need whole processes: concurrency between daemons and shell runs,
//! a full disk, a lane deleted under a live run, a clock jump in the retry queue. Each converges
//! to a clear error or a recorded outcome, within a bound, without running an issue twice.
//! The full table (fault → convergence → test) is docs/spec/faults.md.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
use crate::support::fake_linear::FakeIssue;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn a_second_daemon_on_the_same_workspace_refuses_to_start() {
    let mut world = DaemonWorld::new(Setup {
        name: "fault-two-daemons",
        issues: vec![],
        execution: "",
        agent: "",
    });
    world.start_daemon(&json!({}));
    world.wait_for("the first daemon", LONG, || {
        world.log().contains("daemon starting").then_some(())
    });
    let second = world.maestro(&["daemon"], &json!({})).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!(
            "another daemon (pid {}) already runs on workspace root",
            world.daemon_pid()
        )),
        "{stderr}"
    );
    assert_eq!(
        world.stop_daemon(),
        Some(0),
        "the first daemon is unaffected: {}",
        world.log()
    );
}

#[test]
fn a_shell_run_while_the_daemon_runs_never_takes_the_same_issue() {
    let mut world = DaemonWorld::new(Setup {
        name: "fault-shell-and-daemon",
        issues: vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ],
        execution: "max_concurrent_agents = 2",
        agent: "",
    });
    // ABC-1 waits in its turn under the daemon; ABC-2 asks for a human.
    let scripts = json!({"ABC-1": "wait", "*": manual_attention_script()});
    world.start_daemon(&scripts);
    world.wait_for("the daemon's first lane", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["issue_identifier"] == "ABC-1")
            .then_some(())
    });
    // Whatever the shell run picks, it is never ABC-1 (leased by the daemon's child).
    let shell = world
        .maestro(&["run", "--once"], &scripts)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&shell.stdout).to_string();
    assert!(!line.contains("issue=ABC-1"), "{line}");
    world.wait_for("ABC-2 to finish once", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["issue_identifier"] == "ABC-2" && r["status"] == "human_required")
            .then_some(())
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    let records = run_records(&world.state_dir());
    for identifier in ["ABC-1", "ABC-2"] {
        let runs = records
            .iter()
            .filter(|r| r["issue_identifier"] == identifier)
            .count();
        assert_eq!(runs, 1, "{identifier} ran {runs} times: {records:#?}");
    }
}

#[test]
fn a_lane_deleted_under_a_live_run_still_ends_with_a_recorded_outcome() {
    let world = DaemonWorld::new(Setup {
        name: "fault-lane-deleted",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    let mut script = vec![json!({"sleep_ms": 1500})];
    script.extend(
        manual_attention_script()
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    let mut run = world
        .maestro(&["run", "--once"], &json!({"*": script}))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lane = world.workspace_root.join("ABC-1");
    // Deleted mid-turn, not mid-setup: the agent's 1.5 s sleep is the window.
    world.wait_for("the agent's turn in the lane", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["phase"] == "executing")
            .then_some(())
    });
    assert!(lane.join(".git").is_dir());
    std::fs::remove_dir_all(&lane).unwrap();
    let status = world.wait_for("the run to end", LONG, || run.try_wait().unwrap());
    let mut stdout = String::new();
    std::io::Read::read_to_string(run.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("outcome=human_required"), "{stdout}");
    let records = run_records(&world.state_dir());
    assert_eq!(records[0]["status"], "human_required");
}

#[test]
fn a_retry_due_far_in_the_future_after_a_clock_jump_runs_within_the_cap() {
    let mut world = DaemonWorld::new(Setup {
        name: "fault-clock-jump",
        issues: vec![FakeIssue::new("ABC-1", "In Progress")],
        execution: "max_retry_backoff_ms = 1000",
        agent: "",
    });
    // A queue written by a daemon whose clock was far ahead: due in 2099.
    let queue = json!({"schema_version": 1, "entries": [{
        "issue_id": "id-ABC-1", "issue_identifier": "ABC-1", "lane_key": "ABC-1",
        "attempt": 2, "kind": "failure", "due_at_ms": 4_102_444_800_000u64,
        "due_at": "2100-01-01T00:00:00.000Z", "last_error_class": "validation_failed",
        "last_run_id": null}]});
    std::fs::create_dir_all(world.state_dir()).unwrap();
    std::fs::write(
        world.state_dir().join("retry-queue.json"),
        queue.to_string(),
    )
    .unwrap();
    world.start_daemon(&json!({"*": manual_attention_script()}));
    let record = world.wait_for("the restored retry to run", Duration::from_secs(20), || {
        run_records(&world.state_dir()).into_iter().next()
    });
    assert_eq!(record["attempt"], 2);
    assert!(world.log().contains("due in 1 s"), "{}", world.log());
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_full_disk_gives_a_clear_error_and_no_torn_record() {
    // A private mount namespace with a tiny tmpfs as workspace_root, nearly filled up front.
    let probe = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output();
    if !probe.is_ok_and(|output| output.status.success()) {
        println!("skipped: cannot mount a tmpfs in a private namespace here");
        return;
    }
    let world = DaemonWorld::new(Setup {
        name: "fault-disk-full",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    let workspace = world.workspace_root.display().to_string();
    let command = world.maestro(&["run", "--once"], &json!({"*": manual_attention_script()}));
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<String> = command
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let script = format!(
        "mkdir -p {workspace} && mount -t tmpfs -o size=256k tmpfs {workspace} && \
         mkdir -p {workspace}/.maestro && head -c 240000 /dev/zero > {workspace}/fill && \
         {program} {} ; echo \"exit=$?\"; \
         for f in {workspace}/.maestro/runs/*.json; do [ -e \"$f\" ] && printf 'record=%s\\n' \"$(tr -d '\\n' < \"$f\")\"; done; true",
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut shell = std::process::Command::new("unshare");
    shell.args(["-rm", "sh", "-c", &script]);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    let output = shell.current_dir(world.dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let exit = stdout
        .lines()
        .find_map(|l| l.strip_prefix("exit="))
        .unwrap_or("");
    assert_eq!(
        exit, "4",
        "the lane could not be set up: a retry; stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("outcome=retry_scheduled error=lane_setup_failed"),
        "{stdout}"
    );
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("record="))
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn record ({e}): {line}"))
        })
        .collect();
    assert_eq!(records.len(), 1, "{stdout}");
    let message = records[0]["error_message"].as_str().unwrap();
    assert!(message.contains("No space left on device"), "{message}");
}

mod github_at_the_review_boundary {
    //! GitHub failing between the handoff check and the final check after validation.

    use crate::codex_or_skip;
    use crate::support::fake_github::Later;
    use crate::support::fake_linear::FakeIssue;
    use crate::support::run_world::{RunWorld, handoff_steps, summary_line};

    fn world(name: &str, later: Later) -> Option<RunWorld> {
        let codex = codex_or_skip!(None);
        let world = RunWorld::builder(name, &codex)
            .issues(vec![FakeIssue::new("ABC-1", "Todo")])
            .steps(handoff_steps("x/demo-abc-1", 7))
            .build();
        world.open_pull(7, "x/demo-abc-1");
        // The handoff tool reads the PR once; everything after that sees `later`.
        world.github.after_reads(1, later);
        Some(world)
    }

    #[test]
    fn a_pr_closed_before_the_final_check_is_a_retry() {
        let Some(world) = world("fault-pr-closed", Later::Closed) else {
            return;
        };
        let output = world.run_once();
        let line = summary_line(&output);
        assert_eq!(output.status.code(), Some(4), "{line}");
        assert!(line.contains("error=pr_check_failed"), "{line}");
        assert!(
            world
                .only_run()
                .error_message
                .unwrap()
                .contains("PR is closed, expected open")
        );
        assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
    }

    #[test]
    fn a_github_5xx_at_the_final_check_is_a_retry() {
        let Some(world) = world("fault-pr-5xx", Later::Status(502)) else {
            return;
        };
        let output = world.run_once();
        let line = summary_line(&output);
        assert_eq!(output.status.code(), Some(4), "{line}");
        assert!(line.contains("error=pr_check_failed"), "{line}");
        assert!(
            world
                .only_run()
                .error_message
                .unwrap()
                .contains("GitHub answered 502")
        );
    }

    #[test]
    fn a_token_refused_at_the_final_check_goes_to_a_human() {
        let Some(world) = world("fault-pr-401", Later::Status(401)) else {
            return;
        };
        let output = world.run_once();
        let line = summary_line(&output);
        assert_eq!(output.status.code(), Some(5), "{line}");
        assert!(line.contains("error=github_auth"), "{line}");
        let issue = world.linear.issue("ABC-1");
        assert!(issue.labels.iter().any(|l| l == "maestro:needs-attention"));
        assert!(
            !world.everything_written().contains("gh-test-token"),
            "the token never leaks"
        );
    }

    #[test]
    fn a_pr_that_does_not_exist_is_refused_at_handoff() {
        let Some(world) = world("fault-pr-404", Later::Status(404)) else {
            return;
        };
        // Only PR 8 exists: the agent names PR 7, which GitHub does not know.
        world.github.after_reads(0, Later::Status(404));
        let output = world.run_once();
        let line = summary_line(&output);
        assert_eq!(output.status.code(), Some(5), "{line}");
        assert!(line.contains("error=invalid_disposition"), "{line}");
        let refusal = world.tool_output("call_handoff");
        assert!(
            refusal.contains("GitHub has no such pull request"),
            "{refusal}"
        );
    }
}

mod linear_during_a_run {
    //! Linear failing under a live run (fake agent, fast).

    use super::*;
    use crate::support::fake_linear::Fault;

    #[test]
    fn an_unauthorized_key_is_a_clear_error_before_anything_starts() {
        let world = DaemonWorld::new(Setup {
            name: "fault-linear-401",
            issues: vec![FakeIssue::new("ABC-1", "Todo")],
            execution: "",
            agent: "",
        });
        world.linear.inject("*", Fault::Status(401));
        let output = world
            .maestro(&["run", "--once"], &json!({}))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("maestro: tracker:"), "{stderr}");
        assert!(stderr.to_lowercase().contains("auth"), "{stderr}");
        assert!(
            run_records(&world.state_dir()).is_empty(),
            "nothing started"
        );
        assert!(world.linear.mutations().is_empty());
    }

    #[test]
    fn a_rate_limit_with_a_reset_header_is_waited_out() {
        let world = DaemonWorld::new(Setup {
            name: "fault-linear-ratelimited",
            issues: vec![FakeIssue::new("ABC-1", "Todo")],
            execution: "",
            agent: "",
        });
        let reset = maestro::clock::now_ms() + 1_000;
        world.linear.inject(
            "*",
            Fault::RateLimitedBody {
                reset_at_ms: Some(reset),
            },
        );
        world.linear.inject(
            "*",
            Fault::RateLimited {
                retry_after: Some(1),
                reset_at_ms: None,
            },
        );
        let output = world
            .maestro(&["run", "--once"], &json!({"*": manual_attention_script()}))
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(5),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            maestro::clock::now_ms() >= reset,
            "the reset time was honoured"
        );
        assert_eq!(
            run_records(&world.state_dir())[0]["status"],
            "human_required"
        );
    }

    #[test]
    fn a_failure_comment_that_fails_after_the_state_landed_is_still_human_required() {
        let world = DaemonWorld::new(Setup {
            name: "fault-linear-comment",
            issues: vec![FakeIssue::new("ABC-1", "Todo")],
            execution: "",
            agent: "",
        });
        // The agent flags and finalizes without a comment (an invalid manual_attention), so the
        // first comment is Maestro's failure comment; every try of it fails.
        let script = json!({"*": [
            {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
            {"tool": "issue_terminal_finalize", "arguments": {"path": "manual_attention"}},
        ]});
        for _ in 0..4 {
            world.linear.inject("CommentCreate", Fault::Status(500));
        }
        let output = world.maestro(&["run", "--once"], &script).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(5), "{stdout}");
        assert!(stdout.contains("outcome=human_required"), "{stdout}");
        let issue = world.linear.issue("ABC-1");
        assert_eq!(issue.state, "Todo");
        assert!(issue.labels.iter().any(|l| l == "maestro:needs-attention"));
        let record = &run_records(&world.state_dir())[0];
        assert!(
            record["error_message"]
                .as_str()
                .unwrap()
                .contains("the failure comment could not be posted"),
            "{record:#}"
        );
    }
}
