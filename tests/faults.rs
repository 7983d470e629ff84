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
    world.wait_for("the lane to exist", LONG, || {
        lane.join(".git").is_dir().then_some(())
    });
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
