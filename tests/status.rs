//! `maestro status` from fixture state: every phase, retry kinds, `--limit`, the golden JSON
//! schema, the text view, and no secret anywhere.

use std::path::Path;

use maestro::status;
use maestro::workspace::retry_queue::RetryKind;

use crate::support::dir::TestDir;
use crate::support::run_world;
use crate::support::state::{NOW_MS, config_for, populate};
use crate::support::{maestro, stdout};

#[test]
fn snapshot_covers_every_section_and_phase() {
    let dir = TestDir::new("status-sections");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let snapshot = status::build_at(&config, 10, NOW_MS);

    let phases: Vec<(&str, &str, bool)> = snapshot
        .active
        .iter()
        .map(|run| {
            (
                run.issue_identifier.as_str(),
                run.phase.as_str(),
                run.owner_alive,
            )
        })
        .collect();
    assert_eq!(
        phases,
        vec![
            ("ABC-1", "executing", true),
            ("ABC-2", "validating", true),
            ("ABC-3", "stalled", true),
            ("ABC-4", "orphaned", false),
            // The queued retries, soonest first, each on its issue's entry (#13 item 5).
            ("ABC-8", "retry_backoff", false),
            ("ABC-7", "retry_backoff", false),
        ]
    );
    let first = &snapshot.active[0];
    assert_eq!(first.thread_id.as_deref(), Some("thread-ABC-1"));
    assert_eq!(first.event_count, 57);
    assert_eq!(first.idle_for_seconds, 5);
    assert_eq!(first.tokens.total, 3400, "live tokens come from the marker");
    assert!(
        snapshot.active[2]
            .wait_reason
            .as_deref()
            .unwrap()
            .starts_with("no progress for 10m")
    );

    let kinds: Vec<RetryKind> = snapshot.retrying.iter().map(|r| r.retry_kind).collect();
    assert_eq!(kinds, vec![RetryKind::Failure, RetryKind::Continuation]);

    assert_eq!(snapshot.recent.len(), 10, "--limit 10 of 12 finished runs");
    assert_eq!(snapshot.recent[0].run_id, "done-11", "newest first");
    assert_eq!(snapshot.totals.runs_by_outcome["running"], 4);
    assert_eq!(snapshot.totals.runs_by_outcome["handoff"], 2);
    assert_eq!(snapshot.totals.tokens.total, 4 * 3400 + 12 * 1200);
    assert!(snapshot.totals.rate_limits.is_some());

    let guarded: Vec<&str> = snapshot
        .lanes
        .iter()
        .filter(|lane| lane.guard.is_some())
        .map(|lane| lane.key.as_str())
        .collect();
    assert_eq!(guarded, vec!["ABC-9"]);
    assert_eq!(snapshot.lanes.len(), 5);
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
}

#[test]
fn limit_truncates_only_recent() {
    let dir = TestDir::new("status-limit");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let snapshot = status::build_at(&config, 2, NOW_MS);
    assert_eq!(snapshot.recent.len(), 2);
    assert_eq!(
        snapshot.active.len(),
        6,
        "four running, two in retry backoff"
    );
    assert_eq!(snapshot.retrying.len(), 2);
    let none = status::build_at(&config, 0, NOW_MS);
    assert!(none.recent.is_empty());
    assert_eq!(none.active.len(), 6);
}

#[test]
fn json_matches_the_golden_schema() {
    let dir = TestDir::new("status-golden");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let snapshot = status::build_at(&config, 3, NOW_MS);
    let actual = status::to_json(&snapshot);
    let golden_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/status/snapshot.golden.json");
    if std::env::var_os("MAESTRO_BLESS").is_some() {
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        std::fs::write(&golden_path, format!("{actual}\n")).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path)
        .expect("golden file exists (regenerate with MAESTRO_BLESS=1 cargo test status)");
    assert_eq!(
        actual.trim_end(),
        golden.trim_end(),
        "status JSON changed: bump schema_version and re-bless deliberately"
    );
}

#[test]
fn text_view_fits_80_columns_and_marks_trouble() {
    let dir = TestDir::new("status-text");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let text = status::render_text(&status::build_at(&config, 10, NOW_MS));
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line}");
    }
    assert!(text.contains("!!ABC-3"), "stalled lane marked:\n{text}");
    assert!(text.contains("STALLED"), "{text}");
    assert!(text.contains("ORPHANED"), "{text}");
    assert!(text.contains("!! GUARD"), "{text}");
    assert!(text.contains("Retrying (2)"), "{text}");
    assert!(text.contains("10m 0s"), "idle humanized: {text}");
}

#[test]
fn status_command_prints_json_and_text_without_secrets() {
    let dir = TestDir::new("status-command");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let secret = "lin_api_status_test_secret_value_123456";
    let output = crate::support::maestro_command(dir.path(), &["status", "--json", "--limit", "1"])
        .env("MAESTRO_STATUS_SECRET", secret)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["active"].as_array().unwrap().len(), 6);
    assert_eq!(json["recent"].as_array().unwrap().len(), 1);
    assert!(!stdout(&output).contains(secret));

    let text = maestro(dir.path(), &["status"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(stdout(&text).starts_with("maestro status: project demo"));
}

#[test]
fn an_empty_workspace_is_a_calm_status() {
    let dir = TestDir::new("status-empty");
    let _config = config_for(&dir);
    let output = maestro(dir.path(), &["status"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("no lane is running"));
}

#[test]
fn another_process_sees_a_live_lane_hydrate() {
    use crate::support::daemon_world::{DaemonWorld, Setup};
    use crate::support::fake_linear::FakeIssue;

    let world = DaemonWorld::new(Setup {
        name: "status-hydration",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    // The fake agent streams a delta, then pauses, twelve times (about five seconds).
    let steps: Vec<serde_json::Value> = (0..12)
        .map(|_| serde_json::json!({"sleep_ms": 400}))
        .collect();
    let mut lane = world
        .maestro(&["run", "--once"], &serde_json::json!({"*": steps}))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut samples: Vec<(String, u64)> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lane.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        let output = world
            .maestro(&["status", "--json"], &serde_json::json!({}))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        let snapshot: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut seen = None;
        // The running attempt; once it ends out of turns, `active` lists the issue again as
        // waiting for its continuation (`retry_backoff`, no events of its own), which is not
        // the lane being watched.
        let running = snapshot["active"].as_array().and_then(|active| {
            active
                .iter()
                .find(|run| run["phase"].as_str() != Some("retry_backoff"))
        });
        if let Some(run) = running {
            if let Some(thread) = run["thread_id"].as_str() {
                let count = run["event_count"].as_u64().unwrap();
                samples.push((thread.to_string(), count));
                seen = Some(count);
            }
        }
        // The next sample when the lane has moved on (or ended), not after a fixed pause.
        let moved = || {
            let marker = marker_event_count(&world.state_dir());
            marker.is_some() && marker != seen
        };
        run_world::wait_until(std::time::Duration::from_secs(10), || {
            moved() || lane.try_wait().ok().flatten().is_some()
        });
    }
    let _ = lane.kill();
    let output = lane.wait_with_output().unwrap();
    assert!(
        !samples.is_empty(),
        "status never saw the thread id; the lane printed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(samples.iter().all(|(thread, _)| thread == "thr_fake"));
    let counts: Vec<u64> = samples.iter().map(|(_, count)| *count).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "event counts never go back: {counts:?}"
    );
    let distinct: std::collections::BTreeSet<u64> = counts.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "event counts rose while the lane ran: {counts:?}"
    );
}

/// The event count of the (only) activity marker under `state_dir`.
fn marker_event_count(state_dir: &std::path::Path) -> Option<u64> {
    let entries = std::fs::read_dir(state_dir.join("activity")).ok()?;
    entries
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .find_map(|marker| marker["event_count"].as_u64())
}

/// #13 item 5: a queued retry is also its issue's entry among the active runs (phase
/// `retry_backoff`, `retry_at`, the attempt it will run), recent runs carry their thread,
/// branch and lane, and the text view's headers read as the spec names the sections.
#[test]
fn a_queued_retry_shows_on_its_issues_entry_and_recent_runs_carry_their_lane() {
    let dir = TestDir::new("status-retry-entry");
    let config = config_for(&dir);
    let _leases = populate(&config);
    let snapshot = status::build_at(&config, 10, NOW_MS);
    let json: serde_json::Value = serde_json::from_str(&status::to_json(&snapshot)).unwrap();
    let entry = |identifier: &str| {
        json["active"]
            .as_array()
            .unwrap()
            .iter()
            .find(|run| run["issue_identifier"] == identifier)
            .cloned()
            .unwrap_or_else(|| panic!("no active entry for {identifier}: {json:#}"))
    };
    let failure = entry("ABC-7");
    assert_eq!(failure["phase"], "retry_backoff");
    assert_eq!(failure["retry_at"], "2026-11-26T00:10:20.000Z");
    assert_eq!(failure["attempt"], 2);
    assert_eq!(failure["owner_alive"], false);
    let continuation = entry("ABC-8");
    assert_eq!(continuation["phase"], "retry_backoff");
    assert_eq!(continuation["retry_at"], "2026-11-26T00:10:01.000Z");
    assert_eq!(entry("ABC-1")["retry_at"], serde_json::Value::Null);
    assert_eq!(
        json["retrying"].as_array().unwrap().len(),
        2,
        "still listed there"
    );
    assert_eq!(json["retrying"][0]["scheduled_by"], "daemon");

    let newest = &json["recent"][0];
    assert_eq!(newest["run_id"], "done-11");
    assert_eq!(newest["thread_id"], "thread-done-11");
    assert_eq!(newest["branch"], "x/demo-abc-9");
    assert_eq!(newest["workspace_path"], ".workspaces/ABC-9");

    let text = status::render_text(&snapshot);
    for header in [
        "\nActive Runs (6)\n",
        "\nRetrying (2)\n",
        "\nRecent Runs (10)\n",
    ] {
        assert!(text.contains(header), "{header:?} missing:\n{text}");
    }
    assert!(
        text.contains("ABC-7        attempt 2  retry_backoff        due 2026-11-26T00:10:20.000Z"),
        "{text}"
    );
}

/// #13 item 5: `run --once` that schedules a retry shows it in `status` although no daemon
/// runs (no queue file): under Retrying and as the issue's active entry, due when the
/// daemon's backoff would make it due.
#[test]
fn a_retry_scheduled_by_run_once_shows_in_status_without_a_daemon() {
    use maestro::mock_model::Step;

    use crate::support::run_world::RunWorld;

    let codex = crate::codex_or_skip!();
    let world = RunWorld::builder("status-run-once-retry", &codex)
        .issues(vec![crate::support::fake_linear::FakeIssue::new(
            "ABC-1", "Todo",
        )])
        .steps(vec![Step::http_error(500, "the model is overloaded")])
        .build();
    let output = world.run_once();
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        crate::support::stderr(&output)
    );
    assert!(
        !world.layout().retry_queue_file().exists(),
        "no daemon queue"
    );
    let record = world.only_run();
    let due = record.retry.as_ref().and_then(|retry| retry.due_at.clone());
    assert!(due.is_some(), "{record:#?}");

    let json = world.command(&["status", "--json"]).output().unwrap();
    assert_eq!(json.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let retrying = json["retrying"].as_array().unwrap();
    assert_eq!(retrying.len(), 1, "{json:#}");
    assert_eq!(retrying[0]["issue_identifier"], "ABC-1");
    assert_eq!(retrying[0]["attempt"], 2);
    assert_eq!(retrying[0]["retry_kind"], "failure");
    assert_eq!(retrying[0]["scheduled_by"], "run");
    assert_eq!(retrying[0]["last_run_id"], record.run_id.as_str());
    assert_eq!(retrying[0]["next_retry_at"], due.as_deref().unwrap());
    assert_eq!(retrying[0]["last_error_class"], "codex_turn_failed");
    let active = json["active"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{json:#}");
    assert_eq!(active[0]["phase"], "retry_backoff");
    assert_eq!(active[0]["attempt"], 2);
    assert_eq!(active[0]["retry_at"], due.as_deref().unwrap());
    assert_eq!(active[0]["workspace_path"], ".workspaces/ABC-1");
    assert_eq!(active[0]["thread_id"], record.thread_id.as_deref().unwrap());

    let text = world.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("\nRetrying (1)\n"), "{text}");
    assert!(text.contains("(run)"), "{text}");

    // The next run takes it: the retry is no longer listed while that attempt is the issue's.
    let again = world.run_once();
    assert_eq!(again.status.code(), Some(4));
    let json = world.command(&["status", "--json"]).output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["retrying"].as_array().unwrap().len(), 1);
    assert_eq!(
        json["retrying"][0]["attempt"], 3,
        "the second attempt's retry"
    );
}
