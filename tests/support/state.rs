//! Fixture state under `.maestro/`: every phase, outcome, retry kind and a guarded lane, for
//! the status and operator HTTP tests.

use maestro::clock;
use maestro::config::{self, ServiceConfig};
use maestro::workspace::Layout;
use maestro::workspace::lock::{self, LeaseOwner};
use maestro::workspace::record::{
    self, ActivityMarker, Disposition, Guard, IssueState, Phase, RetryDecision, RunRecord,
    RunStatus, Tokens,
};
use maestro::workspace::retry_queue::{self, RetryEntry, RetryKind, RetryQueue};

use super::dir::TestDir;

/// "Now" for snapshots built in-process: 2026-11-26T00:10:00Z.
pub const NOW_MS: u64 = 1_795_651_800_000;

pub fn config_for(dir: &TestDir) -> ServiceConfig {
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
        turn_count: 1,
        tokens: Tokens {
            input: 1000,
            output: 200,
            total: 1200,
        },
        disposition: (status == RunStatus::Handoff).then_some(Disposition::ReviewHandoff),
        error_class: (status == RunStatus::HumanRequired).then(|| "validation_failed".into()),
        pr_url: (status == RunStatus::Handoff)
            .then(|| format!("https://github.com/acme/widgets/pull/{attempt}")),
        pid: 4242,
        thread_id: Some(format!("thread-{run_id}")),
        ..RunRecord::default()
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
pub fn populate(config: &ServiceConfig) -> Vec<lock::Lease> {
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
                ..RetryDecision::default()
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
            ..IssueState::default()
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
