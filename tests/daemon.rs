//! `maestro daemon` with the fake app-server and the fake Linear: dispatch, reconciliation,
//! retries, concurrency caps, stall detection, WORKFLOW.md reload, crash safety, SIGTERM.

use std::time::Duration;

use serde_json::json;

use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
use crate::support::fake_linear::FakeIssue;
use crate::support::procs;

const LONG: Duration = Duration::from_secs(60);

#[test]
fn dispatches_an_eligible_issue_and_stops_cleanly_on_sigterm() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-dispatch",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    world.start_daemon(&json!({"*": manual_attention_script()}));
    world.wait_for("ABC-1 to reach the human path", LONG, || {
        world
            .linear
            .comments()
            .iter()
            .any(|c| c.body.starts_with("**Maestro: needs attention**"))
            .then_some(())
    });
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "Todo", "failure_state after manual attention");
    assert!(issue.labels.iter().any(|l| l == "maestro:needs-attention"));
    let records = world.wait_for("the run record to finish", LONG, || {
        let records = run_records(&world.state_dir());
        records
            .iter()
            .any(|r| r["status"] == "human_required")
            .then_some(records)
    });
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["error_class"], "manual_attention");
    let log = world.log();
    assert!(log.contains("action=dispatch"), "{log}");
    let pid = world.daemon_pid();
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    assert!(procs::live_in_group(pid).is_empty());
}

fn record_of<'a>(records: &'a [serde_json::Value], identifier: &str) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|record| record["issue_identifier"] == identifier)
        .collect()
}

fn lease_count(world: &DaemonWorld) -> usize {
    let layout = maestro::workspace::Layout::new(&world.workspace_root);
    let Ok(entries) = std::fs::read_dir(layout.leases_dir()) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.strip_suffix(".lock"))
                .map(str::to_string)
        })
        .filter(|key| {
            maestro::workspace::lock::lease_holder(&layout, key)
                .ok()
                .flatten()
                .is_some()
        })
        .count()
}

/// Lanes whose activity marker names a codex thread (the agent's turn has begun).
fn threads_started(world: &DaemonWorld) -> usize {
    let Ok(entries) = std::fs::read_dir(world.state_dir().join("activity")) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter(|marker| marker["thread_id"].is_string() && marker["phase"] == "executing")
        .count()
}

#[test]
fn reconciliation_stops_terminal_and_inactive_lanes_and_leaves_early_ones() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-reconcile",
        issues: vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
            FakeIssue::new("ABC-3", "Todo"),
        ],
        // A slow `before_remove`: a `terminated` record must still mean the lane is gone.
        execution: "max_concurrent_agents = 3\n[hooks]\nbefore_remove = \"sleep 1\"",
        agent: "",
    });
    world.start_daemon(&json!({"*": "wait"}));
    world.wait_for("three lanes in their turn", LONG, || {
        (threads_started(&world) == 3).then_some(())
    });
    // ABC-1 becomes terminal, ABC-2 leaves the active states, ABC-3 stays startable (its child
    // has not claimed it): only the first two are stopped.
    world.linear.edit(|w| {
        for issue in &mut w.issues {
            match issue.identifier.as_str() {
                "ABC-1" => issue.state = "Done".into(),
                "ABC-2" => issue.state = "Backlog".into(),
                _ => {}
            }
        }
    });
    let records = world.wait_for("ABC-1 terminated and ABC-2 interrupted", LONG, || {
        let records = run_records(&world.state_dir());
        let done = |id: &str, status: &str| {
            record_of(&records, id)
                .iter()
                .any(|r| r["status"] == status)
        };
        (done("ABC-1", "terminated") && done("ABC-2", "interrupted")).then_some(records)
    });
    assert_eq!(
        record_of(&records, "ABC-3")[0]["status"],
        "running",
        "ABC-3 left alone"
    );
    // Wait for the removal itself rather than inferring it from the record.
    world.wait_for("the terminal lane to be removed", LONG, || {
        (!world.workspace_root.join("ABC-1").exists()).then_some(())
    });
    assert!(
        world.workspace_root.join("ABC-2").exists(),
        "inactive lane kept"
    );
    assert!(world.workspace_root.join("ABC-3").exists());
    let log = world.log();
    assert!(
        log.contains("issue=ABC-1") && log.contains("action=terminated"),
        "{log}"
    );
    assert!(
        log.contains("issue=ABC-2") && log.contains("action=interrupted"),
        "{log}"
    );
    // Nothing was written to Linear for the stopped lanes: the daemon only reads here.
    assert!(
        world.linear.comments().is_empty(),
        "{:?}",
        world.linear.comments()
    );
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_failed_refresh_keeps_children_running() {
    use crate::support::fake_linear::Fault;
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-refresh-fail",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    world.start_daemon(&json!({"*": "wait"}));
    world.wait_for("a live lane", LONG, || {
        (lease_count(&world) == 1).then_some(())
    });
    world.wait_for("the lane's turn", LONG, || {
        (threads_started(&world) == 1).then_some(())
    });
    // Four 500s exhaust the client's bounded retries for one poll's "what changed?".
    for _ in 0..4 {
        world.linear.inject("IssueChanges", Fault::Status(500));
    }
    world.linear.edit(|w| w.issues[0].state = "Done".into());
    world.wait_for("the sync failure to be logged", LONG, || {
        world
            .log()
            .contains("sync of the project's issues failed")
            .then_some(())
    });
    assert_eq!(
        lease_count(&world),
        1,
        "the child keeps running while the tracker fails"
    );
    world.wait_for("the next good refresh to terminate it", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["status"] == "terminated")
            .then_some(())
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn failures_retry_with_backoff_until_the_budget_is_spent() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-retries",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "max_attempts = 3\nmax_retry_backoff_ms = 1000",
        agent: "",
    });
    world.start_daemon(&json!({"*": "crash"}));
    let records = world.wait_for("three attempts and the human path", LONG, || {
        let records = run_records(&world.state_dir());
        records
            .iter()
            .any(|r| r["attempt"] == 3 && r["status"] == "human_required")
            .then_some(records)
    });
    let mut attempts: Vec<(u64, String)> = records
        .iter()
        .map(|r| {
            (
                r["attempt"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            (1, "retry_scheduled".to_string()),
            (2, "retry_scheduled".to_string()),
            (3, "human_required".to_string()),
        ]
    );
    let log = world.log();
    assert_eq!(log.matches("action=retry_scheduled").count(), 2, "{log}");
    assert!(
        log.contains("budget") || !log.contains("attempt=4"),
        "{log}"
    );
    let issue = world.linear.issue("ABC-1");
    assert!(issue.labels.iter().any(|l| l == "maestro:needs-attention"));
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_retry_is_released_when_the_issue_leaves() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-release",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "max_attempts = 3\nmax_retry_backoff_ms = 3000",
        agent: "",
    });
    world.start_daemon(&json!({"*": "crash"}));
    world.wait_for("a queued retry", LONG, || {
        world.log().contains("action=retry_scheduled").then_some(())
    });
    world.linear.edit(|w| w.issues[0].state = "Canceled".into());
    world.wait_for("the retry to be released", LONG, || {
        world.log().contains("action=released").then_some(())
    });
    let queue: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.state_dir().join("retry-queue.json")).unwrap())
            .unwrap();
    assert_eq!(queue["entries"], json!([]));
    assert_eq!(
        run_records(&world.state_dir()).len(),
        1,
        "no second attempt"
    );
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn the_retry_queue_survives_a_daemon_restart() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-queue-restart",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "max_attempts = 3\nmax_retry_backoff_ms = 4000",
        agent: "",
    });
    world.start_daemon(&json!({"*": "crash"}));
    world.wait_for("a persisted retry", LONG, || {
        let text = std::fs::read_to_string(world.state_dir().join("retry-queue.json")).ok()?;
        text.contains("\"attempt\": 2").then_some(())
    });
    world.kill_daemon();
    world.start_daemon(&json!({"*": "crash"}));
    world.wait_for("the restored retry to run attempt 2", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["attempt"] == 2)
            .then_some(())
    });
    assert!(
        world.log().contains("retry restored issue=ABC-1 attempt=2"),
        "{}",
        world.log()
    );
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn concurrency_caps_hold_at_every_instant() {
    let issues: Vec<FakeIssue> = (1..=5)
        .map(|n| FakeIssue::new(&format!("ABC-{n}"), "Todo"))
        .collect();
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-caps",
        issues,
        execution: "max_concurrent_agents = 3\nmax_concurrent_agents_by_state = { Todo = 2 }",
        agent: "",
    });
    // Each lane stays busy for a while, then asks for a human (which frees its slot).
    let script = json!([
        {"sleep_ms": 600},
        {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
        {"tool": "issue_comment", "arguments": {"body": "needs a human"}},
        {"tool": "issue_terminal_finalize", "arguments": {"path": "manual_attention"}},
    ]);
    world.start_daemon(&json!({"*": script}));
    let mut peak = 0;
    world.wait_for("all five issues to converge", LONG, || {
        let live = lease_count(&world);
        assert!(live <= 2, "by-state cap of 2 exceeded: {live} live lanes");
        peak = peak.max(live);
        let records = run_records(&world.state_dir());
        (records.len() == 5 && records.iter().all(|r| r["status"] == "human_required"))
            .then_some(())
    });
    assert_eq!(peak, 2, "the cap was reached");
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn the_global_cap_holds_without_state_caps() {
    let issues: Vec<FakeIssue> = (1..=5)
        .map(|n| FakeIssue::new(&format!("ABC-{n}"), "Todo"))
        .collect();
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-global-cap",
        issues,
        execution: "max_concurrent_agents = 3",
        agent: "",
    });
    world.start_daemon(&json!({"*": "wait"}));
    world.wait_for("three live lanes", LONG, || {
        (lease_count(&world) == 3).then_some(())
    });
    // Two more ticks: still three.
    let dispatches = |log: &str| log.matches("action=dispatch").count();
    assert_eq!(dispatches(&world.log()), 3);
    world.wait_ticks(2);
    assert_eq!(lease_count(&world), 3);
    assert_eq!(dispatches(&world.log()), 3, "no dispatch beyond the cap");
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_silent_lane_is_stopped_as_stalled_and_sent_to_a_human() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-stall",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "stall_timeout_ms = 1500",
    });
    world.start_daemon(&json!({"*": "silence"}));
    let record = world.wait_for("a stalled record", LONG, || {
        run_records(&world.state_dir())
            .into_iter()
            .find(|r| r["status"] == "stalled")
    });
    assert_eq!(record["error_class"], "stalled_run_detected");
    // The label lands before the comment: wait for both, the whole human path.
    let issue = world.wait_for("the human path in Linear", LONG, || {
        let issue = world.linear.issue("ABC-1");
        let labelled = issue.labels.iter().any(|l| l == "maestro:needs-attention");
        let commented = world
            .linear
            .comments()
            .iter()
            .any(|c| c.body.contains("stalled_run_detected"));
        (labelled && commented).then_some(issue)
    });
    assert_eq!(issue.state, "Todo");
    assert!(
        world.workspace_root.join("ABC-1").exists(),
        "the lane is kept"
    );
    assert!(world.log().contains("action=stalled"), "{}", world.log());
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_broken_workflow_edit_keeps_the_last_good_one_until_fixed() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-reload",
        issues: vec![],
        execution: "",
        agent: "",
    });
    world.start_daemon(&json!({"*": manual_attention_script()}));
    world.wait_for("the first tick", LONG, || {
        world.log().contains("daemon starting").then_some(())
    });
    let workflow = world.dir.join("source/WORKFLOW.md");
    let good = std::fs::read_to_string(&workflow).unwrap();
    std::fs::write(
        &workflow,
        good.replace("version = 1", "version = 1\nbogus_key = 3"),
    )
    .unwrap();
    world.wait_for("the rejection", LONG, || {
        world
            .log()
            .contains("workflow edit rejected, keeping the last known good snapshot")
            .then_some(())
    });
    // New work still runs on the last good snapshot.
    world
        .linear
        .edit(|w| w.issues.push(FakeIssue::new("ABC-1", "Todo")));
    world.wait_for("ABC-1 to run on the snapshot", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["status"] == "human_required")
            .then_some(())
    });
    std::fs::write(
        &workflow,
        good.replace("[execution]\n", "[execution]\nmax_attempts = 5\n"),
    )
    .unwrap();
    // The log line and the snapshot file are two steps: wait for the file children read.
    world.wait_for("the fixed file to be applied", LONG, || {
        let snapshot =
            std::fs::read_to_string(world.state_dir().join("workflow-snapshot.md")).ok()?;
        snapshot.contains("max_attempts = 5").then_some(())
    });
    assert!(world.log().contains("workflow reloaded"), "{}", world.log());
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn sigterm_stops_children_and_leaves_no_orphans() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-sigterm",
        issues: vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ],
        execution: "max_concurrent_agents = 2",
        agent: "",
    });
    world.start_daemon(&json!({"*": "wait"}));
    world.wait_for("two live lanes", LONG, || {
        (lease_count(&world) == 2).then_some(())
    });
    let child_pids: Vec<u32> = run_records(&world.state_dir())
        .iter()
        .map(|r| r["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    for pid in child_pids {
        let left = procs::wait_group_gone(pid, Duration::from_secs(10));
        assert!(left.is_empty(), "orphans in group {pid}: {left:?}");
    }
    let records = run_records(&world.state_dir());
    assert!(
        records.iter().all(|r| r["status"] == "interrupted"),
        "{records:#?}"
    );
    assert_eq!(lease_count(&world), 0);
}

#[test]
fn kill_9_at_random_points_never_runs_an_issue_twice() {
    let issues: Vec<FakeIssue> = (1..=4)
        .map(|n| FakeIssue::new(&format!("ABC-{n}"), "Todo"))
        .collect();
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-crash-safety",
        issues,
        execution: "max_concurrent_agents = 2",
        agent: "",
    });
    let script = json!({"*": [
        {"sleep_ms": 300},
        {"tool": "issue_transition", "arguments": {"state": "In Progress"}},
        {"sleep_ms": 300},
        {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
        {"tool": "issue_comment", "arguments": {"body": "needs a human"}},
        {"tool": "issue_terminal_finalize", "arguments": {"path": "manual_attention"}},
    ]});
    // A fixed pseudo-random sequence of kill points (a linear congruential generator), so a
    // failure reproduces.
    let mut seed: u64 = 0x5eed_1234;
    for _ in 0..8 {
        world.start_daemon(&script);
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let pause = 100 + (seed >> 33) % 900;
        crate::support::pause(Duration::from_millis(pause)); // the kill point is the test input
        world.kill_daemon();
        // Every record on disk parses at every kill point.
        let _ = run_records(&world.state_dir());
    }
    world.start_daemon(&script);
    world.wait_for("the last daemon to start", LONG, || {
        (world.log().matches("daemon starting").count() == 9).then_some(())
    });
    let records = world.wait_for("all four issues to converge", LONG, || {
        let records = run_records(&world.state_dir());
        let converged = (1..=4).all(|n| {
            record_of(&records, &format!("ABC-{n}"))
                .iter()
                .any(|r| r["status"] == "human_required")
        });
        converged.then_some(records)
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    for n in 1..=4 {
        let identifier = format!("ABC-{n}");
        // Linear received exactly one outcome per issue.
        let outcomes = world
            .linear
            .comments()
            .iter()
            .filter(|c| {
                c.issue_id == format!("id-{identifier}")
                    && c.body.starts_with("**Maestro: needs attention**")
            })
            .count();
        assert_eq!(outcomes, 1, "{identifier} got {outcomes} outcomes");
        // No two attempts of one issue overlapped in time.
        let mut spans: Vec<(String, String)> = record_of(&records, &identifier)
            .iter()
            .map(|r| {
                (
                    r["started_at"].as_str().unwrap().to_string(),
                    r["finished_at"].as_str().unwrap_or("9999").to_string(),
                )
            })
            .collect();
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{identifier}: overlapping attempts {pair:?}"
            );
        }
    }
}

/// A retry that falls due while every slot is busy waits for a slot without spinning: the
/// daemon ticks once per poll interval (each tick asks Linear), not in a loop, and the retry
/// runs as soon as a slot frees.
#[test]
fn a_due_retry_waiting_for_a_slot_does_not_spin_the_tick_loop() {
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-retry-waits",
        issues: vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ],
        execution: "max_retry_backoff_ms = 1000",
        agent: "",
    });
    // ABC-1 crashes (a retry due in 1 s); ABC-2 then takes the only slot and keeps it.
    world.start_daemon(&json!({"ABC-1": "crash", "*": "wait"}));
    world.wait_for("ABC-2 in its turn while ABC-1 waits to retry", LONG, || {
        (threads_started(&world) == 1 && world.log().contains("action=retry_scheduled"))
            .then_some(())
    });
    let queue_path = world.state_dir().join("retry-queue.json");
    world.wait_for("the retry to fall due", LONG, || {
        let queue: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&queue_path).ok()?).ok()?;
        let due = queue["entries"][0]["due_at_ms"].as_u64()?;
        (due + 100 <= maestro::clock::now_ms()).then_some(())
    });
    let ticks = || world.log().matches("tick finished").count();
    let start = (ticks(), std::time::Instant::now());
    world.wait_for("four more ticks", LONG, || {
        (ticks() >= start.0 + 4).then_some(())
    });
    let elapsed = start.1.elapsed();
    // Four ticks at the 1 s poll interval take at least two seconds (one may be the due time's
    // own); a loop that ticks whenever a retry is due takes a few dozen milliseconds.
    assert!(
        elapsed >= Duration::from_secs(2),
        "four ticks in {elapsed:?} while the retry waited for a slot"
    );
    // The slot frees when ABC-2 leaves; the waiting retry then runs.
    world.linear.edit(|w| {
        for issue in &mut w.issues {
            if issue.identifier == "ABC-2" {
                issue.state = "Backlog".into();
            }
        }
    });
    world.wait_for("the retry to run attempt 2", LONG, || {
        run_records(&world.state_dir())
            .iter()
            .any(|r| r["issue_identifier"] == "ABC-1" && r["attempt"] == 2)
            .then_some(())
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}
