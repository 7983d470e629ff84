//! Issue #19, second attack pass: bounds on time, memory and disk. Each test reproduces one
//! break — a command that outlives its timeout, app-server output piling up in memory, tool
//! calls without a concurrency limit, child logs and journals that are never pruned — and
//! asserts the bound now holds. docs/spec/faults.md ("Attacks: bounds on time, memory and
//! disk") lists them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use maestro::app_server::{
    NoopObserver, Session, ToolCall, ToolDispatch, ToolResult, TurnEnd, TurnLimits,
};
use maestro::workspace::Layout;
use maestro::workspace::lock::{self, LeaseOwner};
use maestro::workspace::record::{self, Phase, RunRecord, RunStatus};
use serde_json::json;

use crate::codex_or_skip;
use crate::support::app_server::{fake_config, journal, sent};
use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
use crate::support::dir::TestDir;
use crate::support::fake_linear::FakeIssue;
use crate::support::procs;
use crate::support::run_world::{RunWorld, bounded, handoff_steps, wait_until};
use crate::support::stderr;

/// No `run --once` here may take longer (the breaks made them take minutes, or forever).
const RUN_BOUND: Duration = Duration::from_secs(90);

/// A hook or validation script that starts a `setsid` escapee holding the command's output
/// open for ten minutes, waits until it has written its pid to `../escapee.pid` (the workspace
/// root, beside the lane), and prints `started`.
const ESCAPE_SCRIPT: &str = "setsid sh -c 'echo $$ > ../escapee.pid; exec sleep 600' & \
    while [ ! -s ../escapee.pid ]; do sleep 0.01; done; echo started";

fn escapee_pid(workspace_root: &Path) -> u32 {
    std::fs::read_to_string(workspace_root.join("escapee.pid"))
        .expect("the escapee wrote its pid")
        .trim()
        .parse()
        .expect("a pid")
}

/// Kills the escapee if it is still alive (it is when the fix is missing) and says whether it
/// had to.
fn reap_escapee(pid: u32) -> bool {
    let alive = procs::is_alive(pid);
    if alive {
        maestro::signals::signal_process(pid, libc::SIGKILL);
    }
    alive
}

fn daemon_world(name: &str, extra: &str) -> DaemonWorld {
    DaemonWorld::new(Setup {
        name,
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: extra,
        agent: "",
    })
}

/// Break 5: a `before_run` hook whose escapee holds its output made `run --once` wait for the
/// escapee's whole life (forever, for one that never exits).
#[test]
fn a_hook_escapee_is_killed_and_the_run_goes_on() {
    let world = daemon_world(
        "attack-hook-escape",
        &format!("\n[hooks]\ntimeout_ms = 3000\nbefore_run = '''{ESCAPE_SCRIPT}'''\n"),
    );
    let scripts = json!({"*": manual_attention_script()});
    let output = bounded(world.maestro(&["run", "--once"], &scripts), RUN_BOUND);
    let pid = escapee_pid(&world.workspace_root);
    // run --once is the escapee's subreaper: it found it and killed it before exiting.
    let gone = wait_until(Duration::from_secs(10), || !procs::is_alive(pid));
    assert!(!reap_escapee(pid) && gone, "escapee {pid} survived the run");
    let log = stderr(&output);
    assert!(
        log.contains("hook left processes behind hook=before_run")
            && log.contains("escapees_killed=1"),
        "{log}"
    );
    let records = run_records(&world.state_dir());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["status"], "human_required", "{log}");
}

/// Break 5: `setsid sleep 45 & sleep 0.5; echo started` with `validation_timeout_ms = 3000` took
/// 45 s and was recorded as exit 0, with nothing saying anything escaped.
#[test]
fn a_validation_escapee_is_recorded_killed_and_does_not_hold_the_run() {
    let codex = codex_or_skip!();
    let front_matter = format!(
        "version = 1\n[execution]\nvalidation_timeout_ms = 3000\nvalidation_commands = ['''{ESCAPE_SCRIPT}''']\n"
    );
    let world = RunWorld::builder("attack-validation-escape", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(&front_matter)
        .steps(handoff_steps("x/demo-abc-1", 7))
        .build();
    world.open_pull(7, "x/demo-abc-1");
    let output = bounded(world.command(&["run", "--once"]), RUN_BOUND);
    let pid = escapee_pid(&world.workspace_root);
    let gone = wait_until(Duration::from_secs(10), || !procs::is_alive(pid));
    assert!(!reap_escapee(pid) && gone, "escapee {pid} survived the run");
    let records = run_records(&world.layout().state_dir());
    assert_eq!(records.len(), 1, "{}", stderr(&output));
    let validation = &records[0]["validation"][0];
    assert_eq!(validation["exit_code"], 0, "{validation}");
    assert_eq!(validation["escaped"], true, "{validation}");
    assert_eq!(validation["timed_out"], false, "{validation}");
    assert!(
        validation["output_tail"]
            .as_str()
            .unwrap_or("")
            .contains("started"),
        "{validation}"
    );
    // Bounded by the command, not by the escapee's ten minutes.
    assert!(
        validation["duration_ms"].as_u64().unwrap() < 60_000,
        "{validation}"
    );
    assert_eq!(records[0]["status"], "handoff", "{}", stderr(&output));
}

/// Break 5, the agent's side: a process the agent starts with `setsid` outlived the session
/// (reparented to init) and held the app-server's pipes. Under `run --once` it is reparented to
/// Maestro when codex exits, and killed when the session stops.
#[test]
fn an_agent_escapee_dies_with_its_session() {
    let world = daemon_world("attack-agent-escape", "");
    let pid_file = world.dir.join("agent-escapee.pid");
    let scripts = json!({"*": manual_attention_script()});
    let mut command = world.maestro(&["run", "--once"], &scripts);
    command.env("MAESTRO_FAKE_ESCAPEE_FILE", &pid_file);
    let output = bounded(command, RUN_BOUND);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the fake started its escapee")
        .trim()
        .parse()
        .unwrap();
    let gone = wait_until(Duration::from_secs(10), || !procs::is_alive(pid));
    assert!(
        !reap_escapee(pid) && gone,
        "escapee {pid} survived the session"
    );
    let stopped = journal(&only_journal(&world.state_dir()))
        .into_iter()
        .find(|entry| entry.event.as_deref() == Some("stopped"))
        .expect("the session stopped");
    assert_eq!(stopped.detail["escapees_killed"], 1, "{:?}", stopped.detail);
    assert_eq!(
        stopped.detail["readers_joined"], true,
        "{:?}",
        stopped.detail
    );
}

/// The peak resident set of a child (`VmHWM`, its own address space's high-water mark), read
/// from /proc while it runs; and its exit code. `wait4`'s `ru_maxrss` would not do: a child
/// spawned with vfork records the test binary's own high-water mark when it execs.
/// `VmHWM` only grows, so a late read sees any earlier peak.
fn run_measuring_peak_rss(mut command: Command, timeout: Duration) -> (Option<i32>, u64) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("maestro starts");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let mut exit = None;
    wait_until(timeout, || {
        if let Ok(status) = std::fs::read_to_string(&status_path) {
            if let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        exit = child.try_wait().expect("wait for maestro");
        exit.is_some()
    });
    match exit {
        Some(status) => (status.code(), peak_kib),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("maestro did not finish within {timeout:?}");
        }
    }
}

/// Counts every delta a journal accounts for: coalesced ones and ones shed under load.
fn deltas_accounted(path: &Path) -> u64 {
    journal(path)
        .iter()
        .map(|entry| {
            entry.deltas.as_ref().map_or(0, |run| run.count)
                + if entry.event.as_deref() == Some("deltas_dropped") {
                    entry.detail["count"].as_u64().unwrap_or(0)
                } else {
                    0
                }
        })
        .sum()
}

fn only_journal(state_dir: &Path) -> PathBuf {
    let journals: Vec<PathBuf> = std::fs::read_dir(state_dir.join("runs"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".journal.jsonl"))
        .collect();
    assert_eq!(journals.len(), 1, "{journals:?}");
    journals.into_iter().next().unwrap()
}

/// Break 7: 5M deltas written in 0.9 s peaked at 715 MB: the reader thread queued them faster
/// than the session journaled them. Now the channel is bounded and deltas are shed (counted)
/// when the session falls behind: the peak stays flat, and every delta is accounted for.
#[test]
fn a_delta_flood_keeps_memory_flat_and_every_delta_is_accounted_for() {
    const DELTAS: u64 = 2_000_000;
    let world = daemon_world("attack-delta-flood", "");
    let mut command = world.maestro(&["run", "--once"], &json!({}));
    command.env("MAESTRO_FAKE_SCENARIO", format!("flood:{DELTAS}"));
    let (code, peak_kib) = run_measuring_peak_rss(command, Duration::from_secs(300));
    assert!(code.is_some(), "run --once was killed");
    println!(
        "run --once peak RSS under {DELTAS} deltas: {} MiB",
        peak_kib / 1024
    );
    // About 10 MB of ordinary footprint; 2M deltas are over 400 MB on the wire.
    assert!(
        peak_kib < 64 * 1024,
        "run --once peaked at {} MiB under a delta flood",
        peak_kib / 1024
    );
    let journal_path = only_journal(&world.state_dir());
    assert_eq!(deltas_accounted(&journal_path), DELTAS);
    let completed = journal(&journal_path)
        .into_iter()
        .filter(|entry| entry.method() == Some("item/completed"))
        .count();
    assert_eq!(completed, 1, "the item itself is journaled whole");
}

/// Disk: real codex journals about 250 bytes per delta and `item/completed` repeats the whole
/// text, so a two-hour session wrote 89–178 MB. A 20,000-delta turn now journals well under a
/// tenth of what it streamed, and still holds every delta's count and text.
#[test]
fn a_streamed_turn_journals_a_small_fraction_of_the_stream() {
    const DELTAS: u64 = 20_000;
    let dir = TestDir::new("attack-journal-size");
    let mut session = Session::start(fake_config(dir.path(), &format!("flood:{DELTAS}"))).unwrap();
    let outcome = session.run_turn(
        "go",
        &crate::support::app_server::RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    // The fake says how many bytes of deltas it wrote.
    let streamed: u64 = match &outcome.end {
        TurnEnd::Completed {
            final_message: Some(text),
        } => text
            .strip_prefix("flood done: ")
            .and_then(|rest| rest.strip_suffix(" bytes of deltas"))
            .and_then(|bytes| bytes.parse().ok())
            .expect("the fake reports what it wrote"),
        other => panic!("{other:?}"),
    };
    session.shutdown();
    let path = dir.join("journal.jsonl");
    assert_eq!(deltas_accounted(&path), DELTAS);
    let journaled = std::fs::metadata(&path).unwrap().len();
    assert!(
        journaled * 10 <= streamed,
        "journal {journaled} bytes for {streamed} bytes of deltas"
    );
    let text: String = journal(&path)
        .into_iter()
        .filter_map(|entry| entry.deltas)
        .map(|run| run.text)
        .collect();
    // Whatever was not shed kept its text (the fake streams "word " each time).
    assert!(text.chars().all(|c| "word ".contains(c)) && !text.is_empty());
}

/// Answers `echo` and measures how many calls run at once. The first five calls each wait
/// (at most a second) for five to run together, which a pool of four never allows.
#[derive(Default)]
struct Gate {
    active: Mutex<usize>,
    changed: Condvar,
    most: AtomicUsize,
    calls: AtomicUsize,
}

impl ToolDispatch for Gate {
    fn call(&self, call: &ToolCall) -> ToolResult {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let mut active = self.active.lock().unwrap();
        *active += 1;
        self.most.fetch_max(*active, Ordering::SeqCst);
        self.changed.notify_all();
        if n < 5 {
            active = self
                .changed
                .wait_timeout_while(active, Duration::from_secs(1), |active| *active < 5)
                .unwrap()
                .0;
        }
        *active -= 1;
        ToolResult::ok(format!(
            "echo: {}",
            call.arguments["text"].as_str().unwrap_or("")
        ))
    }
}

/// Break 8: 3,000 simultaneous tool calls made 2,877 threads (and as many Linear connections).
/// Now at most four run at once; every call is answered, some with "busy" once the queue is full.
#[test]
fn simultaneous_tool_calls_run_four_at_a_time_and_all_are_answered() {
    const CALLS: usize = 3000;
    let dir = TestDir::new("attack-tool-flood");
    let mut session =
        Session::start(fake_config(dir.path(), &format!("tool_flood:{CALLS}"))).unwrap();
    let gate = Gate::default();
    let outcome = session.run_turn("go", &gate, &mut NoopObserver, TurnLimits::default());
    session.shutdown();
    let ran = gate.calls.load(Ordering::SeqCst);
    assert_eq!(
        outcome.end,
        TurnEnd::Completed {
            final_message: Some(format!("answered={CALLS} ok={ran}"))
        }
    );
    assert!(
        gate.most.load(Ordering::SeqCst) <= 4,
        "{} calls ran at once",
        gate.most.load(Ordering::SeqCst)
    );
    let answered: std::collections::BTreeSet<i64> = sent(&dir.join("journal.jsonl"))
        .iter()
        .filter(|message| message.get("result").is_some())
        .filter_map(|message| message["id"].as_i64())
        .collect();
    assert_eq!(answered, (1000..1000 + CALLS as i64).collect());
    let busy = sent(&dir.join("journal.jsonl"))
        .iter()
        .filter(|m| m["result"]["success"] == false)
        .filter(|m| {
            m["result"]["contentItems"][0]["text"]
                .as_str()
                .is_some_and(|text| text.starts_with("maestro is busy"))
        })
        .count();
    assert_eq!(ran + busy, CALLS);
}

/// A finished run of `identifier` started at `started` (RFC 3339), with a journal and a daemon
/// child log of `bytes` each.
fn seed_run(
    layout: &Layout,
    run_id: &str,
    identifier: &str,
    started: &str,
    status: RunStatus,
    bytes: usize,
) {
    let record = RunRecord {
        run_id: run_id.into(),
        project_id: "demo".into(),
        issue_id: format!("id-{identifier}"),
        issue_identifier: identifier.into(),
        branch: format!("x/demo-{}", identifier.to_lowercase()),
        workspace_path: format!("workspaces/{identifier}"),
        started_at: started.into(),
        finished_at: (status != RunStatus::Running).then(|| started.to_string()),
        phase: if status == RunStatus::Running {
            Phase::Executing
        } else {
            Phase::Finished
        },
        status,
        ..RunRecord::default()
    };
    record::save_run(layout, &record).unwrap();
    std::fs::write(layout.journal_file(run_id), vec![b'j'; bytes]).unwrap();
    std::fs::create_dir_all(layout.logs_dir()).unwrap();
    std::fs::write(log_file(layout, run_id), vec![b'l'; bytes]).unwrap();
}

fn log_file(layout: &Layout, run_id: &str) -> PathBuf {
    layout.logs_dir().join(format!("{run_id}.log"))
}

fn old_run_id(n: usize, key: &str) -> String {
    format!("20250101T0000{n:02}000Z-{key}-a1-0001")
}

/// Break 9: after records were pruned to 100, all 996 daemon child logs stayed. A run's log
/// (and journal) now goes with its record, and logs whose record an earlier version already
/// pruned go once they are older than every record kept.
#[test]
fn child_logs_and_journals_are_pruned_with_their_records() {
    let world = daemon_world("attack-log-retention", "");
    let layout = Layout::new(&world.workspace_root);
    let old: Vec<String> = (0..15).map(|n| old_run_id(n + 10, "old-1")).collect();
    for (n, run_id) in old.iter().enumerate() {
        let started = format!("2025-01-01T00:00:{:02}.000Z", n + 10);
        seed_run(&layout, run_id, "OLD-1", &started, RunStatus::Handoff, 100);
    }
    let stale: Vec<String> = (0..5).map(|n| old_run_id(n, "gone-1")).collect();
    for run_id in &stale {
        std::fs::write(log_file(&layout, run_id), "old child log\n").unwrap();
    }
    // A daemon child that has not written its record yet.
    let fresh = "29990101T000000000Z-new-9-a1-0001";
    std::fs::write(log_file(&layout, fresh), "starting\n").unwrap();

    let scripts = json!({"*": manual_attention_script()});
    let output = bounded(world.maestro(&["run", "--once"], &scripts), RUN_BOUND);
    // The manual-attention script: exit 5, the issue needs a human.
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));

    // The newest 10 of OLD-1 stay whole; the 5 oldest go with their journals and logs.
    for (n, run_id) in old.iter().enumerate() {
        let kept = n >= 5;
        for path in [
            layout.run_record_file(run_id),
            layout.journal_file(run_id),
            log_file(&layout, run_id),
        ] {
            assert_eq!(path.exists(), kept, "{}", path.display());
        }
    }
    for run_id in &stale {
        assert!(!log_file(&layout, run_id).exists(), "{run_id}");
    }
    assert!(log_file(&layout, fresh).exists());
}

/// Disk: retention capped the number of runs but not their size. A `[retention]` byte budget
/// now deletes the oldest finished runs first and never a live one (running, or its lease
/// held).
#[test]
fn the_byte_budget_prunes_oldest_first_and_never_a_live_run() {
    const JOURNAL: usize = 50_000;
    const BUDGET: u64 = 400_000;
    let world = DaemonWorld::new(Setup {
        name: "attack-byte-budget",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: &format!("[retention]\nmax_total_bytes = {BUDGET}"),
    });
    let layout = Layout::new(&world.workspace_root);
    // The oldest two are live: one still running, one finished but its process still holds
    // the lease. Then eight finished runs of different issues, oldest first.
    seed_run(
        &layout,
        &old_run_id(0, "live-1"),
        "LIVE-1",
        "2025-01-01T00:00:00.000Z",
        RunStatus::Running,
        JOURNAL,
    );
    seed_run(
        &layout,
        &old_run_id(1, "held-1"),
        "HELD-1",
        "2025-01-01T00:00:01.000Z",
        RunStatus::Handoff,
        JOURNAL,
    );
    let owner = LeaseOwner {
        run_id: old_run_id(1, "held-1"),
        // No process: the world's cleanup signals lease owners' groups, and this one is ours.
        pid: u32::MAX,
        issue_id: "id-HELD-1".into(),
        issue_identifier: "HELD-1".into(),
        acquired_at: "2025-01-01T00:00:01.000Z".into(),
    };
    let _lease = lock::acquire_lease(&layout, "HELD-1", &owner)
        .unwrap()
        .expect("lease free");
    // Two runs each of four issues: the older four can go whole, the newer four (each issue's
    // last outcome, which `status` shows) lose only their journals and logs.
    let finished: Vec<String> = (0..8)
        .map(|n| old_run_id(n + 2, &format!("done-{}", n % 4)))
        .collect();
    for (n, run_id) in finished.iter().enumerate() {
        let started = format!("2025-01-01T00:00:{:02}.000Z", n + 2);
        seed_run(
            &layout,
            run_id,
            &format!("DONE-{}", n % 4),
            &started,
            RunStatus::Handoff,
            JOURNAL,
        );
    }

    let scripts = json!({"*": manual_attention_script()});
    let output = bounded(world.maestro(&["run", "--once"], &scripts), RUN_BOUND);
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));

    let state = layout.state_dir();
    let weight: u64 = ["runs", "logs"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(state.join(dir)).ok())
        .flat_map(|entries| entries.flatten())
        .map(|entry| entry.metadata().map_or(0, |m| m.len()))
        .sum();
    assert!(weight <= BUDGET, "{weight} bytes kept");
    for live in [old_run_id(0, "live-1"), old_run_id(1, "held-1")] {
        assert!(layout.run_record_file(&live).exists(), "{live}");
        assert!(layout.journal_file(&live).exists(), "{live}");
    }
    // Oldest first: the older run of each issue went whole, then the journals of the oldest
    // last outcomes; what is left of the journals is the newest ones.
    let record_kept: Vec<bool> = finished
        .iter()
        .map(|run_id| layout.run_record_file(run_id).exists())
        .collect();
    assert_eq!(
        record_kept,
        [false, false, false, false, true, true, true, true]
    );
    let journal_kept: Vec<bool> = finished
        .iter()
        .map(|run_id| layout.journal_file(run_id).exists())
        .collect();
    assert!(
        journal_kept.windows(2).all(|pair| pair[0] <= pair[1]) && journal_kept[7],
        "not oldest first: {journal_kept:?}"
    );
    assert!(!journal_kept[4], "{journal_kept:?}");
}
