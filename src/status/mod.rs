//! The status snapshot: what every lane is doing, built only from local state.
//!
//! Inputs are the files under `.maestro/` (run records, activity markers, issue bookkeeping, the
//! retry queue, the daemon's tracker budget report) and lock probes — no network, so `status` is instant and works on an air-gapped
//! host. The one [`Snapshot`] is rendered four ways: text (`text.rs`), JSON (`status --json`),
//! `GET /state` and the HTML dashboard. Every field is a compatibility promise
//! (`schema_version`), documented in docs/spec/status.md.
//!
//! **Invariant:** no secret can appear here: records hold none, and this module reads nothing else.

mod retry;
mod review;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::clock;
use crate::config::ServiceConfig;
use crate::intake::budget as tracker_budget;
use crate::workspace::record::{self, ActivityMarker, Phase, RunRecord, RunStatus, Tokens};
use crate::workspace::retry_queue::{self, RetryKind};
use crate::workspace::{Layout, lane, lock};

pub use retry::{RETRY_BACKOFF, ScheduledBy};
pub use review::{ReviewLane, ReviewTotals};
pub use text::render_text;

/// Version of the snapshot document.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole status document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub schema_version: u32,
    pub generated_at: String,
    pub project_id: String,
    /// Every leased or still-running attempt, then every issue waiting for a retry (phase
    /// `retry_backoff`); never truncated.
    pub active: Vec<ActiveRun>,
    /// Retries: the daemon's queue, and those a `run --once` scheduled that no daemon queued.
    pub retrying: Vec<QueuedRetry>,
    /// Finished attempts, newest first, truncated to `--limit`.
    pub recent: Vec<FinishedRun>,
    /// Retained lanes.
    pub lanes: Vec<LaneState>,
    pub totals: Totals,
    /// What the daemon's tracker requests cost and the key's budget left, as the daemon last
    /// wrote it; `None` when no daemon has run.
    pub tracker_budget: Option<tracker_budget::Report>,
    /// The ssh hosts lanes run on (`[worker]`): health and slots; absent without hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostState>,
    /// State files that could not be read (each names the file and what to do).
    pub problems: Vec<String>,
    /// Post-review lanes the lifecycle works on or a person must act on (docs/spec/review.md);
    /// left out of the JSON when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<ReviewLane>,
    /// Every review record counted by phase, merges and repairs; left out when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_totals: Option<ReviewTotals>,
}

/// A live (or orphaned) attempt, or an issue waiting for its retry (`retry_backoff`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveRun {
    pub run_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    pub issue_url: Option<String>,
    pub thread_id: Option<String>,
    pub branch: String,
    pub workspace_path: String,
    /// The ssh host the attempt runs on; absent for a local lane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub attempt: u32,
    /// `preparing`, `executing`, `waiting_continuation`, `validating`, `writing_back`, or
    /// `stalled` when no progress was seen for the stall timeout, or `orphaned` when the owner
    /// process is gone; `retry_backoff` for an issue waiting for its retry (then `run_id` is
    /// the run it follows, `attempt` the one it will run, and nothing runs).
    pub phase: String,
    /// When the retry is due, for `retry_backoff`; `null` for a running attempt.
    pub retry_at: Option<String>,
    pub wait_reason: Option<String>,
    pub started_at: String,
    pub last_run_activity_at: Option<String>,
    pub last_protocol_activity_at: Option<String>,
    pub idle_for_seconds: u64,
    pub event_count: u64,
    pub last_event_type: Option<String>,
    pub last_event_at: Option<String>,
    pub turn_count: u32,
    pub tokens: Tokens,
    /// Whether the lease lock is still held (the owning process is alive).
    pub owner_alive: bool,
    pub pid: u32,
}

/// A queued retry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedRetry {
    pub issue_id: String,
    pub issue_identifier: String,
    pub attempt: u32,
    pub retry_kind: RetryKind,
    pub next_retry_at: String,
    pub last_error_class: Option<String>,
    /// `daemon` (its queue) or `run` (only the run record: no daemon queued it).
    pub scheduled_by: ScheduledBy,
    /// The run the retry follows; `null` when its child ended before recording one.
    pub last_run_id: Option<String>,
}

impl ActiveRun {
    /// Whether this is an issue waiting for its retry rather than a running attempt.
    pub fn is_retry(&self) -> bool {
        self.phase == RETRY_BACKOFF
    }
}

/// A finished attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinishedRun {
    pub run_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    /// The ssh host the attempt ran on; absent for a local lane.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub attempt: u32,
    pub outcome: RunStatus,
    pub thread_id: Option<String>,
    pub branch: String,
    /// The lane, relative to the repository root.
    pub workspace_path: String,
    pub disposition: Option<record::Disposition>,
    pub error_class: Option<String>,
    pub pr_url: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_seconds: u64,
    pub tokens: Tokens,
    pub next_action: Option<String>,
    /// What codex said about why the failing turn failed (the record's `cause.message`);
    /// absent when it said nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// A retained lane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaneState {
    pub key: String,
    pub issue_identifier: Option<String>,
    pub workspace_path: String,
    pub attempts_used: u32,
    pub last_status: Option<RunStatus>,
    pub last_run_id: Option<String>,
    pub next_action: Option<String>,
    pub guard: Option<record::Guard>,
    /// Its issue was seen in a terminal state and the lane is still on disk: `state`,
    /// `seen_at`, and `kept` (why it is still there); `null` otherwise.
    pub pending_removal: Option<record::TerminalLane>,
}

/// An ssh host's health and slots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostState {
    pub host: String,
    /// `up`, or `down` while the host is in its backoff after connect failures.
    pub health: String,
    /// Connect failures in a row.
    pub failures: u32,
    /// When a down host is tried again.
    pub down_until: Option<String>,
    pub last_error: Option<String>,
    /// Per-host slots held now, and how many there are.
    pub slots_busy: usize,
    pub slots: usize,
}

/// Sums over every record on disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub tokens: Tokens,
    /// Runtime of every attempt, live ones up to now.
    pub runtime_seconds: u64,
    pub runs_by_outcome: BTreeMap<String, u64>,
    /// The most recent codex rate-limit snapshot seen by any lane.
    pub rate_limits: Option<serde_json::Value>,
}

/// Builds the snapshot for `config` as of now. `limit` truncates `recent` only.
pub fn build(config: &ServiceConfig, limit: usize) -> Snapshot {
    build_at(config, limit, clock::now_ms())
}

/// [`build`] with an explicit "now", for tests.
pub fn build_at(config: &ServiceConfig, limit: usize, now_ms: u64) -> Snapshot {
    let layout = Layout::new(&config.workspace_root);
    let mut problems = Vec::new();
    let runs = record::list_runs(&layout);
    problems.extend(runs.errors.iter().map(ToString::to_string));
    let markers = record::list_markers(&layout);
    problems.extend(markers.errors.iter().map(ToString::to_string));
    let issues = record::list_issue_states(&layout);
    problems.extend(issues.errors.iter().map(ToString::to_string));
    let queue = retry_queue::load(&layout).unwrap_or_else(|error| {
        problems.push(error.to_string());
        retry_queue::RetryQueue::default()
    });
    let budget = tracker_budget::load(&layout).unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });

    let markers_by_run: HashMap<&str, &ActivityMarker> = markers
        .items
        .iter()
        .map(|marker| (marker.run_id.as_str(), marker))
        .collect();
    let stall_ms = config.agent.stall_timeout_ms;

    let mut active = Vec::new();
    let mut finished = Vec::new();
    let mut totals = Totals::default();
    for run in &runs.items {
        let marker = markers_by_run.get(run.run_id.as_str()).copied();
        let live = run.status == RunStatus::Running;
        let tokens = marker.filter(|_| live).map_or(run.tokens, |m| m.tokens);
        totals.tokens.input += tokens.input;
        totals.tokens.output += tokens.output;
        totals.tokens.total += tokens.total;
        let outcome = run.status.as_str().to_string();
        *totals.runs_by_outcome.entry(outcome).or_insert(0) += 1;
        let started = clock::parse_rfc3339(&run.started_at).unwrap_or(now_ms);
        let ended = run
            .finished_at
            .as_deref()
            .and_then(clock::parse_rfc3339)
            .unwrap_or(now_ms);
        let duration_seconds = ended.saturating_sub(started) / 1000;
        totals.runtime_seconds += duration_seconds;
        if live {
            let owner_alive = owner_alive(&layout, run, &mut problems);
            active.push(active_run(run, marker, owner_alive, stall_ms, now_ms));
        } else {
            let next_action = run.retry.as_ref().map(|retry| retry.next_action.clone());
            finished.push(FinishedRun {
                run_id: run.run_id.clone(),
                issue_id: run.issue_id.clone(),
                issue_identifier: run.issue_identifier.clone(),
                host: run.host.clone(),
                attempt: run.attempt,
                outcome: run.status,
                thread_id: run.thread_id.clone(),
                branch: run.branch.clone(),
                workspace_path: run.workspace_path.clone(),
                disposition: run.disposition,
                error_class: run.error_class.as_ref().map(ToString::to_string),
                pr_url: run.pr_url.clone(),
                started_at: run.started_at.clone(),
                finished_at: run.finished_at.clone(),
                duration_seconds,
                tokens: run.tokens,
                next_action,
                cause: run.cause.as_ref().map(|cause| cause.message.clone()),
            });
        }
    }
    totals.rate_limits = markers
        .items
        .iter()
        .filter(|marker| marker.rate_limits.is_some())
        .max_by(|a, b| a.updated_at.cmp(&b.updated_at))
        .and_then(|marker| marker.rate_limits.clone());

    finished.sort_by(|a, b| {
        let a_key = a.finished_at.as_deref().unwrap_or(&a.started_at);
        let b_key = b.finished_at.as_deref().unwrap_or(&b.started_at);
        b_key.cmp(a_key).then_with(|| b.run_id.cmp(&a.run_id))
    });
    finished.truncate(limit);
    active.sort_by(|a, b| a.started_at.cmp(&b.started_at));

    let retrying = retry::list(&queue, &runs.items, &issues.items, &active);
    active.extend(retry::in_backoff(
        &retrying,
        &runs.items,
        &queue,
        &layout,
        &config.repo_root,
        &config.id,
        now_ms,
    ));

    let lanes = lanes(&layout, &config.repo_root, &issues.items);
    let hosts = hosts(config, &layout, now_ms, &mut problems);
    let (review, review_totals) = review::build(&layout, now_ms, &mut problems);
    Snapshot {
        schema_version: SCHEMA_VERSION,
        generated_at: clock::format_ms(now_ms),
        project_id: config.id.clone(),
        active,
        retrying,
        recent: finished,
        lanes,
        totals,
        tracker_budget: budget,
        hosts,
        problems,
        review,
        review_totals,
    }
}

/// Every configured ssh host with its health and per-host slots, from `.maestro/hosts/`.
fn hosts(
    config: &ServiceConfig,
    layout: &Layout,
    now_ms: u64,
    problems: &mut Vec<String>,
) -> Vec<HostState> {
    let Some(worker) = &config.worker else {
        return Vec::new();
    };
    // The slot count needs WORKFLOW.md's cap when the per-host one is unset; status reads no
    // WORKFLOW.md, so it counts the slot files that exist.
    worker
        .hosts
        .iter()
        .map(|host| {
            let health = crate::worker::health::load(layout, &host.name);
            let key = crate::worker::host_key(&host.name);
            let slots = worker
                .max_concurrent_agents_per_host
                .map_or_else(|| slot_files(layout, &key), |cap| cap as usize);
            let slots_busy = lock::host_slots_held(layout, &key, slots).unwrap_or_else(|error| {
                problems.push(error.to_string());
                0
            });
            let down = health.is_down(now_ms);
            HostState {
                host: host.name.clone(),
                health: if down { "down" } else { "up" }.to_string(),
                failures: health.failures,
                down_until: down.then(|| clock::format_ms(health.down_until_ms)),
                last_error: health.last_error,
                slots_busy,
                slots,
            }
        })
        .collect()
}

/// How many per-host slot files host `key` has on disk.
fn slot_files(layout: &Layout, key: &str) -> usize {
    std::fs::read_dir(layout.host_dir(key)).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                name.starts_with("slot-") && name.ends_with(".lock")
            })
            .count()
    })
}

/// Whether the process running `run` is alive: its lease is held (under the issue's id, or the
/// lane key older versions used), or the process the record names still runs (pid and start
/// time). The second catches a lease file the agent deleted; that is reported as a problem.
fn owner_alive(layout: &Layout, run: &RunRecord, problems: &mut Vec<String>) -> bool {
    let keys = [
        record::issue_key(&run.issue_id),
        lane::lane_key(&run.issue_identifier),
    ];
    let leased = keys.iter().any(|key| {
        lock::lease_holder(layout, key)
            .ok()
            .flatten()
            .is_some_and(|owner| owner.run_id == run.run_id || owner.run_id == "unknown")
    });
    if leased {
        return true;
    }
    let process = run.pid_start_time.map(|start_time| lock::OwnerProcess {
        pid: run.pid,
        start_time,
    });
    if process.is_some_and(|process| process.is_alive()) {
        problems.push(format!(
            "{} (run {}): its lease is not held but its process (pid {}) is alive; its lease file under {}/ was removed or replaced",
            run.issue_identifier,
            run.run_id,
            run.pid,
            Layout::relative().leases_dir().display(),
        ));
        return true;
    }
    false
}

fn active_run(
    run: &RunRecord,
    marker: Option<&ActivityMarker>,
    owner_alive: bool,
    stall_ms: u64,
    now_ms: u64,
) -> ActiveRun {
    let phase = marker.map_or(run.phase, |m| m.phase);
    let last_progress = marker
        .map(|m| m.last_progress_at.clone())
        .unwrap_or_else(|| run.started_at.clone());
    let idle_ms = clock::parse_rfc3339(&last_progress).map_or(0, |at| now_ms.saturating_sub(at));
    let phase_name = if !owner_alive {
        "orphaned".to_string()
    } else if idle_ms >= stall_ms {
        "stalled".to_string()
    } else {
        phase_name(phase).to_string()
    };
    let wait_reason = if !owner_alive {
        Some("the owning process is gone; the daemon will recover or retry this issue".into())
    } else if idle_ms >= stall_ms {
        Some(format!(
            "no progress for {}",
            clock::humanize(std::time::Duration::from_millis(idle_ms))
        ))
    } else {
        match phase {
            Phase::Preparing => Some("preparing the lane".into()),
            Phase::Executing => Some("agent turn in progress".into()),
            Phase::WaitingContinuation => Some("deciding on a continuation turn".into()),
            Phase::Validating => Some("running validation commands and the PR check".into()),
            Phase::WritingBack => Some("writing the outcome to the tracker".into()),
            Phase::Finished => None,
        }
    };
    ActiveRun {
        run_id: run.run_id.clone(),
        issue_id: run.issue_id.clone(),
        issue_identifier: run.issue_identifier.clone(),
        issue_url: run.issue_url.clone(),
        thread_id: marker
            .and_then(|m| m.thread_id.clone())
            .or_else(|| run.thread_id.clone()),
        branch: run.branch.clone(),
        workspace_path: run.workspace_path.clone(),
        host: run.host.clone(),
        attempt: run.attempt,
        phase: phase_name,
        retry_at: None,
        wait_reason,
        started_at: run.started_at.clone(),
        last_run_activity_at: marker.map(|m| m.updated_at.clone()),
        last_protocol_activity_at: marker.and_then(|m| m.last_event_at.clone()),
        idle_for_seconds: idle_ms / 1000,
        event_count: marker.map_or(0, |m| m.event_count),
        last_event_type: marker.and_then(|m| m.last_event_type.clone()),
        last_event_at: marker.and_then(|m| m.last_event_at.clone()),
        turn_count: marker.map_or(run.turn_count, |m| m.turn_count),
        tokens: marker.map_or(run.tokens, |m| m.tokens),
        owner_alive,
        pid: run.pid,
    }
}

/// The snake_case name of a phase, as on disk.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Preparing => "preparing",
        Phase::Executing => "executing",
        Phase::WaitingContinuation => "waiting_continuation",
        Phase::Validating => "validating",
        Phase::WritingBack => "writing_back",
        Phase::Finished => "finished",
    }
}

fn lanes(layout: &Layout, repo_root: &Path, issues: &[record::IssueState]) -> Vec<LaneState> {
    let by_key: HashMap<String, &record::IssueState> =
        issues.iter().map(|state| (state.lane(), state)).collect();
    let Ok(entries) = std::fs::read_dir(layout.root()) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|key| {
            let state = by_key.get(&key).copied();
            LaneState {
                workspace_path: Layout::relative_to(&layout.lane_dir(&key), repo_root),
                issue_identifier: state.map(|s| s.issue_identifier.clone()),
                attempts_used: state.map_or(0, |s| s.attempts_used),
                last_status: state.and_then(|s| s.last_status),
                last_run_id: state.and_then(|s| s.last_run_id.clone()),
                next_action: state.and_then(|s| s.next_action.clone()),
                guard: state.and_then(|s| s.guard.clone()),
                pending_removal: state.and_then(|s| s.terminal.clone()),
                key,
            }
        })
        .collect()
}

/// The snapshot as pretty JSON (what `status --json` prints and `GET /state` serves).
pub fn to_json(snapshot: &Snapshot) -> String {
    serde_json::to_string_pretty(snapshot).unwrap_or_else(|error| {
        format!("{{\"error\":{{\"code\":\"serialization\",\"message\":\"{error}\"}}}}")
    })
}
