//! Serves the operator dashboard over a fixture workspace, for checking it in a real browser.
//!
//!     cargo run --example dashboard_fixture -- PORT [SECONDS]
//!
//! Builds a workspace with a live lane (its lease held by this process), a stalled lane, a
//! queued retry and finished runs, starts the operator endpoint on 127.0.0.1:PORT, prints
//! `ready http://127.0.0.1:PORT/`, and serves for SECONDS (default 30). `.ci/dashboard-check`
//! drives headless Chromium against it.

use std::sync::Arc;
use std::time::Duration;

use maestro::clock;
use maestro::config;
use maestro::operator_http::{self, Health};
use maestro::workspace::Layout;
use maestro::workspace::lock::{self, LeaseOwner};
use maestro::workspace::record::{self, ActivityMarker, Phase, RunRecord, RunStatus, Tokens};
use maestro::workspace::retry_queue::{self, RetryEntry, RetryKind, RetryQueue};

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8787);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let root = std::env::temp_dir().join(format!("maestro-dashboard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("fixture dir");
    let text = format!(
        "id = \"dashboard-demo\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"K\"\n[agent]\nstall_timeout_ms = 600000\n",
        root.display()
    );
    let path = root.join("maestro.toml");
    std::fs::write(&path, &text).expect("config");
    let config = config::parse(&path, &text, None).expect("config");
    let layout = Layout::new(&config.workspace_root);
    let now = clock::now_ms();
    let mut leases = Vec::new();
    for (identifier, idle_s, status) in [
        ("APP-31", 4, RunStatus::Running),
        ("APP-40", 1800, RunStatus::Running),
        ("APP-9", 0, RunStatus::Handoff),
    ] {
        let run = RunRecord {
            run_id: format!("run-{identifier}"),
            project_id: "dashboard-demo".into(),
            issue_id: format!("id-{identifier}"),
            issue_identifier: identifier.into(),
            attempt: 1,
            branch: format!("x/dashboard-demo-{}", identifier.to_lowercase()),
            workspace_path: format!(".workspaces/{identifier}"),
            started_at: clock::format_ms(now - 3_600_000),
            finished_at: (status != RunStatus::Running).then(|| clock::format_ms(now - 600_000)),
            phase: if status == RunStatus::Running {
                Phase::Executing
            } else {
                Phase::Finished
            },
            status,
            thread_id: Some(format!("thread-{identifier}")),
            turn_count: 2,
            tokens: Tokens {
                input: 16_000,
                output: 2_200,
                total: 18_200,
            },
            pr_url: (status == RunStatus::Handoff)
                .then(|| "https://github.com/acme/app/pull/88".into()),
            pid: std::process::id(),
            ..RunRecord::default()
        };
        record::save_run(&layout, &run).expect("record");
        std::fs::create_dir_all(layout.lane_dir(identifier)).expect("lane");
        if status == RunStatus::Running {
            let marker = ActivityMarker {
                schema_version: record::SCHEMA_VERSION,
                run_id: run.run_id.clone(),
                issue_id: run.issue_id.clone(),
                issue_identifier: identifier.into(),
                attempt: 1,
                phase: Phase::Executing,
                pid: std::process::id(),
                thread_id: run.thread_id.clone(),
                turn_count: 2,
                event_count: 212,
                last_event_type: Some("item/agentMessage/delta".into()),
                last_event_at: Some(clock::format_ms(now - idle_s * 1000)),
                last_progress_at: clock::format_ms(now - idle_s * 1000),
                tokens: run.tokens,
                rate_limits: None,
                updated_at: clock::format_ms(now - idle_s * 1000),
            };
            record::save_marker(&layout, identifier, &marker).expect("marker");
            let owner = LeaseOwner {
                run_id: run.run_id.clone(),
                pid: std::process::id(),
                issue_id: run.issue_id.clone(),
                issue_identifier: identifier.into(),
                acquired_at: run.started_at.clone(),
            };
            leases.push(
                lock::acquire_lease(&layout, identifier, &owner)
                    .expect("lease")
                    .expect("free"),
            );
        }
    }
    retry_queue::save(
        &layout,
        &RetryQueue {
            schema_version: 1,
            entries: vec![RetryEntry {
                issue_id: "id-APP-12".into(),
                issue_identifier: "APP-12".into(),
                lane_key: "APP-12".into(),
                attempt: 2,
                kind: RetryKind::Failure,
                due_at_ms: now + 10_000,
                due_at: clock::format_ms(now + 10_000),
                last_error_class: Some("validation_failed".into()),
                last_run_id: None,
            }],
        },
    )
    .expect("queue");
    let health = Arc::new(Health::default());
    health.tick_finished(Duration::from_millis(12));
    let address = format!("127.0.0.1:{port}").parse().expect("address");
    let server = operator_http::start(address, config, health).expect("endpoint");
    println!("ready http://{}/", server.address());
    std::thread::sleep(Duration::from_secs(seconds));
    drop(server);
    drop(leases);
    let _ = std::fs::remove_dir_all(&root);
}
