//! `GET /api/v1/<identifier>`: one issue in Symphony's shape (SPEC §13.7.2), filled from the
//! status snapshot plus, for the current or last attempt, its logs and recent events.
//!
//! The events are the last [`RECENT_EVENTS`] lines of that attempt's journal, read from its
//! tail only (`crate::app_server::recent_events`), so a request costs the same for a minute-old
//! attempt and a two-hour one. Their text came from codex, the model and the agent: it is
//! published only after host paths are rewritten as every comment rewrites them and the
//! secret values the service config names are scrubbed. Paths are shown as status shows
//! workspace paths (relative to the repository root, or under `<workspace_root>`).

use serde_json::{Value, json};

use super::render::tokens;
use crate::app_server;
use crate::config::ServiceConfig;
use crate::run::redact::Secrets;
use crate::run::writeback;
use crate::status::Snapshot;
use crate::workspace::Layout;

/// How many of the attempt's latest journal events the answer carries.
pub const RECENT_EVENTS: usize = 50;

/// The issue's detail, or `None` when nothing is known about it.
pub fn api_issue(snapshot: &Snapshot, identifier: &str, config: &ServiceConfig) -> Option<Value> {
    let same = |other: &str| other.eq_ignore_ascii_case(identifier);
    let active = snapshot
        .active
        .iter()
        .find(|run| same(&run.issue_identifier) && !run.is_retry());
    let retry = snapshot
        .retrying
        .iter()
        .find(|retry| same(&retry.issue_identifier));
    let recent: Vec<_> = snapshot
        .recent
        .iter()
        .filter(|run| same(&run.issue_identifier))
        .collect();
    let lane = snapshot
        .lanes
        .iter()
        .find(|lane| lane.issue_identifier.as_deref().is_some_and(same));
    if active.is_none() && retry.is_none() && recent.is_empty() && lane.is_none() {
        return None;
    }
    let issue_id = active
        .map(|run| run.issue_id.clone())
        .or_else(|| retry.map(|r| r.issue_id.clone()))
        .or_else(|| recent.first().map(|run| run.issue_id.clone()));
    let status = if active.is_some() {
        "running"
    } else if retry.is_some() {
        "retrying"
    } else {
        "idle"
    };
    let workspace_path = active
        .map(|run| run.workspace_path.clone())
        .or_else(|| lane.map(|lane| lane.workspace_path.clone()));
    let last_error = recent
        .iter()
        .find_map(|run| run.error_class.clone())
        .or_else(|| retry.and_then(|r| r.last_error_class.clone()));
    // The current attempt, else the last one (`recent` is newest first).
    let run_id = active
        .map(|run| run.run_id.as_str())
        .or_else(|| recent.first().map(|run| run.run_id.as_str()));
    let (logs, recent_events) = match run_id {
        Some(run_id) => attempt_files(config, run_id),
        None => (Vec::new(), Vec::new()),
    };
    Some(json!({
        "issue_identifier": active.map(|r| r.issue_identifier.clone())
            .or_else(|| recent.first().map(|r| r.issue_identifier.clone()))
            .unwrap_or_else(|| identifier.to_string()),
        "issue_id": issue_id,
        "status": status,
        "workspace": {"path": workspace_path},
        "attempts": {
            "restart_count": lane.map_or(0, |lane| lane.attempts_used.saturating_sub(1)),
            "current_retry_attempt": active.map(|r| r.attempt).or_else(|| retry.map(|r| r.attempt)),
        },
        "running": active.map(|run| json!({
            "session_id": run.thread_id,
            "turn_count": run.turn_count,
            "state": run.phase,
            "started_at": run.started_at,
            "last_event": run.last_event_type,
            "last_message": run.wait_reason,
            "last_event_at": run.last_event_at,
            "tokens": tokens(run.tokens),
            "run_id": run.run_id,
            "owner_alive": run.owner_alive,
        })),
        "retry": retry.map(|retry| json!({
            "attempt": retry.attempt,
            "due_at": retry.next_retry_at,
            "retry_kind": retry.retry_kind,
            "error": retry.last_error_class,
        })),
        "logs": {"codex_session_logs": logs},
        "recent_events": recent_events,
        "recent_runs": recent,
        "guard": lane.and_then(|lane| lane.guard.clone()),
        "last_error": last_error,
        "tracked": {},
    }))
}

/// The attempt's log files that exist (its journal, and the daemon child's log when the daemon
/// ran it) and the journal's latest events, scrubbed.
fn attempt_files(config: &ServiceConfig, run_id: &str) -> (Vec<Value>, Vec<Value>) {
    let layout = Layout::new(&config.workspace_root);
    let journal = layout.journal_file(run_id);
    let files = [
        ("journal", journal.clone()),
        ("child_log", layout.log_file(run_id)),
    ];
    let logs = files
        .iter()
        .filter(|(_, path)| path.is_file())
        .map(|(label, path)| {
            json!({
                "label": label,
                "path": Layout::relative_to(path, &config.repo_root),
                "url": null,
                "run_id": run_id,
            })
        })
        .collect();
    let host_paths = writeback::host_paths(config);
    let secrets = Secrets::from_env(&config.secret_env_vars());
    let scrub = |text: &str| writeback::scrub(&secrets.scrub(text), &host_paths);
    // A journal that cannot be read (not there yet, removed by retention) has no events.
    let events = app_server::recent_events(&journal, RECENT_EVENTS, &scrub)
        .unwrap_or_default()
        .into_iter()
        .map(|event| json!({"at": event.at, "event": event.event, "message": event.message}))
        .collect();
    (logs, events)
}
