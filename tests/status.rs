//! `maestro status` from fixture state: every phase, retry kinds, `--limit`, the golden JSON
//! schema, the text view, and no secret anywhere.

use std::path::Path;

use maestro::clock;
use maestro::config::{self, ServiceConfig};
use maestro::status;
use maestro::workspace::Layout;
use maestro::workspace::lock::{self, LeaseOwner};
use maestro::workspace::record::{
    self, ActivityMarker, Disposition, Guard, IssueState, Phase, RetryDecision, RunRecord,
    RunStatus, Tokens,
};
use maestro::workspace::retry_queue::{self, RetryEntry, RetryKind, RetryQueue};

use crate::support::dir::TestDir;
use crate::support::{maestro, stdout};

/// "Now" for snapshots built in-process: 2026-11-26T00:10:00Z.
const NOW_MS: u64 = 1_795_651_800_000;

fn config_for(dir: &TestDir) -> ServiceConfig {
    let text = format!(
        "id = \"demo\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"MAESTRO_STATUS_SECRET\"\n[agent]\nstall_timeout_ms = 120000\n",
        dir.path().display()
    );
    let path = dir.write("tmp/maestro.toml", &text);
    config::parse(&path, &text, None).unwrap()
}

fn at(seconds_before_now: u64) -> String {
    clock::format_ms(NOW_MS - seconds_before_now * 1000)
}

fn run(run_id: &str, identifier: &str, attempt: u32, started: u64, status: RunStatus) -> RunRecord {
    RunRecord {
        schema_version: record::SCHEMA_VERSION,
        run_id: run_id.into(),
        project_id: "demo".into(),
        issue_id: format!("id-{identifier}"),
        issue_identifier: identifier.into(),
        issue_url: Some(format!("https://linear.app/acme/issue/{identifier}")),
        attempt,
        branch: format!("x/demo-{}", identifier.to_lowercase()),
        workspace_path: format!(".workspaces/{identifier}"),
        started_at: at(started),
        finished_at: (status != RunStatus::Running).then(|| at(started - 60)),
        phase: if status == RunStatus::Running {
            Phase::Executing
        } else {
            Phase::Finished
        },
        status,
        thread_id: None,
        turn_count: 1,
        tokens: Tokens {
            input: 1000,
            output: 200,
            total: 1200,
        },
        disposition: (status == RunStatus::Handoff).then_some(Disposition::ReviewHandoff),
        error_class: (status == RunStatus::HumanRequired).then(|| "validation_failed".into()),
        error_message: None,
        tool_calls: Vec::new(),
        validation: Vec::new(),
        pr_url: (status == RunStatus::Handoff)
            .then(|| format!("https://github.com/acme/widgets/pull/{attempt}")),
        retry: None,
        pid: 4242,
    }
}

fn marker(record: &RunRecord, phase: Phase, idle_seconds: u64) -> ActivityMarker {
    ActivityMarker {
        schema_version: record::SCHEMA_VERSION,
        run_id: record.run_id.clone(),
        issue_id: record.issue_id.clone(),
        issue_identifier: record.issue_identifier.clone(),
        attempt: record.attempt,
        phase,
        pid: record.pid,
        thread_id: Some(format!("thread-{}", record.issue_identifier)),
        turn_count: 1,
        event_count: 57,
        last_event_type: Some("item/agentMessage/delta".into()),
        last_event_at: Some(at(idle_seconds)),
        last_progress_at: at(idle_seconds),
        tokens: Tokens {
            input: 3000,
            output: 400,
            total: 3400,
        },
        rate_limits: Some(serde_json::json!({"primary": {"usedPercent": 43}})),
        updated_at: at(idle_seconds),
    }
}

/// Lays out a workspace with every kind of state. Returns the leases that must stay held.
fn populate(config: &ServiceConfig) -> Vec<lock::Lease> {
    let layout = Layout::new(&config.workspace_root);
    let mut leases = Vec::new();
    // Live lanes: executing, validating, stalled (idle past 120 s), and one orphan (no lease).
    let live = [
        ("ABC-1", Phase::Executing, 5),
        ("ABC-2", Phase::Validating, 30),
        ("ABC-3", Phase::Executing, 600),
        ("ABC-4", Phase::WaitingContinuation, 10),
    ];
    for (identifier, phase, idle) in live {
        let record = run(
            &format!("run-{identifier}"),
            identifier,
            1,
            900,
            RunStatus::Running,
        );
        record::save_run(&layout, &record).unwrap();
        record::save_marker(&layout, identifier, &marker(&record, phase, idle)).unwrap();
        std::fs::create_dir_all(layout.lane_dir(identifier)).unwrap();
        if identifier != "ABC-4" {
            let owner = LeaseOwner {
                run_id: record.run_id.clone(),
                pid: 4242,
                issue_id: record.issue_id.clone(),
                issue_identifier: identifier.into(),
                acquired_at: record.started_at.clone(),
            };
            leases.push(
                lock::acquire_lease(&layout, identifier, &owner)
                    .unwrap()
                    .unwrap(),
            );
        }
    }
    // Finished runs with every outcome; twelve in all so --limit has something to cut.
    let outcomes = [
        RunStatus::Handoff,
        RunStatus::RetryScheduled,
        RunStatus::HumanRequired,
        RunStatus::Interrupted,
        RunStatus::Terminated,
        RunStatus::Stalled,
        RunStatus::Skipped,
        RunStatus::Failed,
    ];
    for n in 0..12u64 {
        let status = outcomes[n as usize % outcomes.len()];
        let mut record = run(
            &format!("done-{n:02}"),
            "ABC-9",
            n as u32 + 1,
            3000 - n * 100,
            status,
        );
        if status == RunStatus::RetryScheduled {
            record.retry = Some(RetryDecision {
                retry: true,
                next_action: format!("retry attempt {}", n + 2),
                reason: "validation_failed".into(),
            });
        }
        record::save_run(&layout, &record).unwrap();
    }
    std::fs::create_dir_all(layout.lane_dir("ABC-9")).unwrap();
    record::save_issue_state(
        &layout,
        "ABC-9",
        &IssueState {
            schema_version: record::SCHEMA_VERSION,
            issue_id: "id-ABC-9".into(),
            issue_identifier: "ABC-9".into(),
            attempts_used: 3,
            last_run_id: Some("done-11".into()),
            last_status: Some(RunStatus::HumanRequired),
            last_error_class: Some("validation_failed".into()),
            next_action: Some("human: read the failure comment".into()),
            guard: Some(Guard {
                reason: "label maestro:needs-attention does not exist on the team".into(),
                run_id: "done-11".into(),
                at: at(100),
            }),
            updated_at: at(100),
        },
    )
    .unwrap();
    retry_queue::save(
        &layout,
        &RetryQueue {
            schema_version: 1,
            entries: vec![
                RetryEntry {
                    issue_id: "id-ABC-7".into(),
                    issue_identifier: "ABC-7".into(),
                    lane_key: "ABC-7".into(),
                    attempt: 2,
                    kind: RetryKind::Failure,
                    due_at_ms: NOW_MS + 20_000,
                    due_at: clock::format_ms(NOW_MS + 20_000),
                    last_error_class: Some("codex_turn_failed".into()),
                    last_run_id: Some("done-01".into()),
                },
                RetryEntry {
                    issue_id: "id-ABC-8".into(),
                    issue_identifier: "ABC-8".into(),
                    lane_key: "ABC-8".into(),
                    attempt: 2,
                    kind: RetryKind::Continuation,
                    due_at_ms: NOW_MS + 1_000,
                    due_at: clock::format_ms(NOW_MS + 1_000),
                    last_error_class: None,
                    last_run_id: None,
                },
            ],
        },
    )
    .unwrap();
    leases
}

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
