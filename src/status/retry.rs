//! Retries in the status snapshot (docs/spec/status.md, `retrying[]`): the daemon's queue,
//! and the retries a `run --once` scheduled that no daemon queued (read from the run record's
//! retry decision, which says its kind and when the daemon's backoff makes it due). Each one
//! is also its issue's entry in `active[]`, in phase `retry_backoff`, so the issue shows where
//! its runs show.
//!
//! Local state only, like the rest of `status`: a retry no daemon queued is listed from the
//! issue's bookkeeping and its last run record, until an attempt or a daemon takes it.

use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;

use super::{ActiveRun, QueuedRetry};
use crate::clock;
use crate::workspace::record::{IssueState, RunRecord, RunStatus, Tokens};
use crate::workspace::retry_queue::{RetryKind, RetryQueue};
use crate::workspace::{Layout, lane};

/// The phase of an issue waiting for its retry, in `active[]`.
pub const RETRY_BACKOFF: &str = "retry_backoff";

/// Who holds a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledBy {
    /// The daemon's queue (`.maestro/retry-queue.json`): the daemon runs it when it is due.
    Daemon,
    /// Only the run record says so (a `run --once` with no daemon queueing it): the next
    /// `run --once`, or a daemon, takes the issue as a recovery candidate.
    Run,
}

/// Every retry: the daemon's queue first, then each issue whose last attempt scheduled a retry
/// that the queue does not hold and that no running attempt has taken up yet.
pub fn list(
    queue: &RetryQueue,
    runs: &[RunRecord],
    issues: &[IssueState],
    running: &[ActiveRun],
) -> Vec<QueuedRetry> {
    let mut retries: Vec<QueuedRetry> = queue
        .entries
        .iter()
        .map(|entry| QueuedRetry {
            issue_id: entry.issue_id.clone(),
            issue_identifier: entry.issue_identifier.clone(),
            attempt: entry.attempt,
            retry_kind: entry.kind,
            next_retry_at: entry.due_at.clone(),
            last_error_class: entry.last_error_class.as_ref().map(ToString::to_string),
            scheduled_by: ScheduledBy::Daemon,
            last_run_id: entry.last_run_id.clone(),
        })
        .collect();
    let taken: HashSet<&str> = queue
        .entries
        .iter()
        .map(|entry| entry.issue_id.as_str())
        .chain(running.iter().map(|run| run.issue_id.as_str()))
        .collect();
    for state in issues {
        if taken.contains(state.issue_id.as_str()) {
            continue;
        }
        if let Some(retry) = scheduled_by_run(state, runs) {
            retries.push(retry);
        }
    }
    retries
}

/// The retry an issue's last attempt scheduled, when its bookkeeping still says so: no guard,
/// not seen terminal, and the last run's record decided a retry.
fn scheduled_by_run(state: &IssueState, runs: &[RunRecord]) -> Option<QueuedRetry> {
    if state.last_status != Some(RunStatus::RetryScheduled)
        || state.guard.is_some()
        || state.terminal.is_some()
    {
        return None;
    }
    let run_id = state.last_run_id.as_deref()?;
    let run = runs.iter().find(|run| run.run_id == run_id)?;
    let decision = run.retry.as_ref().filter(|retry| retry.retry)?;
    if run.status != RunStatus::RetryScheduled {
        return None;
    }
    Some(QueuedRetry {
        issue_id: run.issue_id.clone(),
        issue_identifier: run.issue_identifier.clone(),
        attempt: run.attempt + 1,
        retry_kind: decision.kind.unwrap_or(RetryKind::Failure),
        next_retry_at: decision
            .due_at
            .clone()
            .or_else(|| run.finished_at.clone())
            .unwrap_or_default(),
        last_error_class: run.error_class.as_ref().map(ToString::to_string),
        scheduled_by: ScheduledBy::Run,
        last_run_id: Some(run.run_id.clone()),
    })
}

/// Each retry as its issue's `active[]` entry: phase `retry_backoff`, `retry_at`, the attempt
/// it will run; lane, branch and thread from the run it follows (when that record is the same
/// issue's), else the lane the queue names.
pub fn in_backoff(
    retries: &[QueuedRetry],
    runs: &[RunRecord],
    queue: &RetryQueue,
    layout: &Layout,
    repo_root: &Path,
    project_id: &str,
    now_ms: u64,
) -> Vec<ActiveRun> {
    let mut entries: Vec<ActiveRun> = retries
        .iter()
        .map(|retry| {
            let last = retry
                .last_run_id
                .as_deref()
                .and_then(|run_id| runs.iter().find(|run| run.run_id == run_id))
                .filter(|run| run.issue_id == retry.issue_id);
            let lane_key = queue
                .entries
                .iter()
                .find(|entry| entry.issue_id == retry.issue_id)
                .map_or_else(
                    || lane::lane_key(&retry.issue_identifier),
                    |entry| entry.lane_key.clone(),
                );
            let scheduled_at = last
                .and_then(|run| run.finished_at.clone())
                .unwrap_or_else(|| retry.next_retry_at.clone());
            let idle_ms =
                clock::parse_rfc3339(&scheduled_at).map_or(0, |at| now_ms.saturating_sub(at));
            let due = clock::parse_rfc3339(&retry.next_retry_at)
                .map(|due| due.saturating_sub(now_ms) / 1000);
            let cause = retry
                .last_error_class
                .as_deref()
                .map_or_else(|| "a clean exit".to_string(), str::to_string);
            let wait_reason = match due {
                Some(0) | None => format!(
                    "{} retry due now (after {cause})",
                    retry.retry_kind.as_str()
                ),
                Some(seconds) => format!(
                    "{} retry due in {} (after {cause})",
                    retry.retry_kind.as_str(),
                    clock::humanize(std::time::Duration::from_secs(seconds))
                ),
            };
            ActiveRun {
                run_id: retry.last_run_id.clone().unwrap_or_default(),
                issue_id: retry.issue_id.clone(),
                issue_identifier: retry.issue_identifier.clone(),
                issue_url: last.and_then(|run| run.issue_url.clone()),
                // A retry prefers the host its last attempt ran on.
                host: last.and_then(|run| run.host.clone()),
                thread_id: last.and_then(|run| run.thread_id.clone()),
                branch: last.map_or_else(
                    || lane::branch_name(project_id, &lane_key),
                    |run| run.branch.clone(),
                ),
                workspace_path: last.map_or_else(
                    || Layout::relative_to(&layout.lane_dir(&lane_key), repo_root),
                    |run| run.workspace_path.clone(),
                ),
                attempt: retry.attempt,
                phase: RETRY_BACKOFF.to_string(),
                retry_at: Some(retry.next_retry_at.clone()),
                wait_reason: Some(wait_reason),
                started_at: scheduled_at,
                last_run_activity_at: None,
                last_protocol_activity_at: None,
                idle_for_seconds: idle_ms / 1000,
                event_count: 0,
                last_event_type: None,
                last_event_at: None,
                turn_count: 0,
                tokens: Tokens::default(),
                owner_alive: false,
                pid: 0,
            }
        })
        .collect();
    entries.sort_by(|a, b| a.retry_at.cmp(&b.retry_at));
    entries
}
