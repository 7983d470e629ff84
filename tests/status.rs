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
    assert_eq!(snapshot.active.len(), 4);
    assert_eq!(snapshot.retrying.len(), 2);
    let none = status::build_at(&config, 0, NOW_MS);
    assert!(none.recent.is_empty());
    assert_eq!(none.active.len(), 4);
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
    assert!(text.contains("RETRYING (2)"), "{text}");
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
    assert_eq!(json["active"].as_array().unwrap().len(), 4);
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
        if let Some(run) = snapshot["active"].as_array().and_then(|a| a.first()) {
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
