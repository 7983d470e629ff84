//! The JSON Maestro keeps on disk: run records, lane activity markers, per-issue bookkeeping,
//! lease owners and the daemon's retry queue.
//!
//! Each type here is a compatibility promise: `status`, `GET /state` and the daemon read these
//! files from other processes, possibly other versions. Every file carries `schema_version`,
//! is written atomically through [`super::state_file`], and unknown fields are ignored on read.
//! A file that does not parse is reported, never fatal for readers of the whole directory.
//!
//! **Invariant:** only this module (and `status`, which renders it) decides the JSON on disk;
//! the lane ownership marker is `ownership`'s.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lock::OwnerProcess;
use super::state_file::{self, StateFile};
use super::{Error, Layout, bookkeeping, io_error, lane};

pub use super::error_class::ErrorClass;
pub use super::state_file::SCHEMA_VERSION;

pub use super::bookkeeping::{
    IssueRef, Reserve, TerminalLane, find_issue_state, issue_key, list_issue_states,
    save_run_reserving, update_issue_state,
};
use crate::clock;

/// Where an attempt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Lease taken; preparing the lane (clone, hooks, refresh).
    Preparing,
    /// A codex turn is running.
    Executing,
    /// Between turns, deciding whether to continue.
    WaitingContinuation,
    /// Running validation commands and the PR check.
    Validating,
    /// Writing the outcome to the tracker.
    WritingBack,
    /// Done; `status` holds the outcome.
    Finished,
}

/// The outcome of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (or the process died without finishing; see the lease).
    Running,
    /// Review handoff validated and written back.
    Handoff,
    /// Failed with attempts left; the issue stays in progress for another attempt.
    RetryScheduled,
    /// Sent down the needs-attention path.
    HumanRequired,
    /// Stopped because the issue left the active states, or on a graceful shutdown.
    Interrupted,
    /// Stopped because the issue became terminal.
    Terminated,
    /// Stopped by the daemon after no progress for `stall_timeout`.
    Stalled,
    /// Not run: the issue became ineligible before the agent started.
    Skipped,
    /// Maestro itself failed (tracker unreachable, I/O error) before an outcome could be written.
    Failed,
}

impl RunStatus {
    /// The snake_case name, as written on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Handoff => "handoff",
            RunStatus::RetryScheduled => "retry_scheduled",
            RunStatus::HumanRequired => "human_required",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Terminated => "terminated",
            RunStatus::Stalled => "stalled",
            RunStatus::Skipped => "skipped",
            RunStatus::Failed => "failed",
        }
    }
}

/// What the agent declared as the way it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    ReviewHandoff,
    /// A review repair finished: `issue_review_repair_complete`, then the `review_repair`
    /// path (docs/spec/review.md).
    ReviewRepair,
    ManualAttention,
    /// Neither, both, or a finalize that does not match what was recorded.
    Invalid,
}

/// Token totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub total: u64,
}

/// One dynamic tool call the agent made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub at: String,
    pub tool: String,
    pub success: bool,
    /// Short description of the arguments or the refusal reason (never a secret).
    pub detail: String,
}

/// A `context.read_first` file the attempt did not hand to the agent, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextSkip {
    /// As configured, relative to the lane.
    pub path: String,
    /// A short sentence without a host path: `leads outside the lane (through a symlink)`.
    pub reason: String,
}

/// One validation command's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationRecord {
    pub command: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub output_tail: String,
    /// Something the command started outlived it (kept its output open or left its process
    /// group); Maestro stopped waiting for it and killed it when it could find it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escaped: bool,
}

/// What codex said about why a turn failed or timed out: its most telling error notice, as
/// `crate::app_server::Cause` words it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCause {
    /// `model_unreachable`, `model_auth`, `model_rate_limited`, `model_http_error` or
    /// `codex_error`; causes of attempts are compared by it.
    pub kind: String,
    /// One line for the operator: what it means, codex's words, what to check.
    pub message: String,
}

/// Consecutive idle timeouts of one issue with the same cause (see `run::cause`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleTimeoutStreak {
    /// The [`FailureCause::kind`] they share.
    pub cause: String,
    pub count: u32,
}

/// One step of an attempt as it happened: the phase it belongs to and what it was (`lane`,
/// `turn 2/3`, `validation 1/2: cargo test`, `PR check`, `writeback`, the final status). The
/// record keeps them in order, so another process can show the attempt's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: String,
    pub phase: Phase,
    pub step: String,
}

/// The most timeline entries one record keeps; later steps replace the last one, so a record
/// stays small whatever `max_turns` says.
pub const MAX_TIMELINE: usize = 200;

/// What happens next to the issue after this attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryDecision {
    pub retry: bool,
    /// Operator-facing next step, e.g. `retry attempt 2` or `human: see the failure comment`.
    pub next_action: String,
    pub reason: String,
    /// A retry's kind: `continuation` after `continuation_pending`, else `failure`. Absent
    /// when there is no retry, and in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RetryKind>,
    /// When the daemon's backoff makes the retry due, counted from the attempt's end (a
    /// `run --once` may take it sooner); `status` shows it for a retry no daemon queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

/// The thread a continuation attempt resumed (docs/spec/runtime.md, "Continuations").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumedThread {
    /// The run whose thread this attempt resumed.
    pub from_run_id: String,
    /// What the thread had spent in earlier attempts: codex counts it in the thread's totals,
    /// this record's `tokens` do not.
    pub tokens_before: Tokens,
}

/// One attempt at one issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub run_id: String,
    pub project_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    #[serde(default)]
    pub issue_url: Option<String>,
    pub attempt: u32,
    pub branch: String,
    /// The lane, relative to the repository root (never an absolute host path); for a lane on
    /// an ssh host, `<host>:<workspace_root>/<key>`.
    pub workspace_path: String,
    /// The ssh host the attempt ran on (`[worker]`); absent for a local lane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub started_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
    pub phase: Phase,
    pub status: RunStatus,
    #[serde(default)]
    pub thread_id: Option<String>,
    #[serde(default)]
    pub turn_count: u32,
    #[serde(default)]
    pub tokens: Tokens,
    #[serde(default)]
    pub disposition: Option<Disposition>,
    #[serde(default)]
    pub error_class: Option<ErrorClass>,
    #[serde(default)]
    pub error_message: Option<String>,
    /// Why the failing turn failed, when codex said (its most telling error notice); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<FailureCause>,
    /// read_first files that were skipped (a symlink out of the lane, not a regular file, over
    /// the size limit, …); empty and absent from the file when every one was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_skipped: Vec<ContextSkip>,
    #[serde(default)]
    pub tool_calls: Vec<ToolCallRecord>,
    #[serde(default)]
    pub validation: Vec<ValidationRecord>,
    #[serde(default)]
    pub pr_url: Option<String>,
    /// The lane `HEAD` the handed-off PR was validated at (a PR handoff or a review repair):
    /// the only commit the post-review lifecycle will merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// Set on a review repair's run: which repair of the lane's review record it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_repair: Option<u32>,
    #[serde(default)]
    pub retry: Option<RetryDecision>,
    /// Set on a continuation that resumed the previous attempt's codex thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<ResumedThread>,
    /// The attempt's steps with their times, oldest first (at most [`MAX_TIMELINE`]); absent in
    /// records of older versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
    /// The process that ran the attempt.
    pub pid: u32,
    /// That process's start time (clock ticks since boot), so liveness checks never mistake a
    /// reused pid for it. Absent where `/proc` is missing, and in records of older versions.
    #[serde(default)]
    pub pid_start_time: Option<u64>,
}

impl Default for RunRecord {
    /// A record that has just started: running, preparing, nothing recorded yet, this process
    /// as its owner. Callers fill in who and what; the rest starts empty.
    fn default() -> Self {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: String::new(),
            project_id: String::new(),
            issue_id: String::new(),
            issue_identifier: String::new(),
            issue_url: None,
            attempt: 1,
            branch: String::new(),
            host: None,
            workspace_path: String::new(),
            started_at: String::new(),
            finished_at: None,
            phase: Phase::Preparing,
            status: RunStatus::Running,
            thread_id: None,
            turn_count: 0,
            tokens: Tokens::default(),
            disposition: None,
            error_class: None,
            error_message: None,
            cause: None,
            context_skipped: Vec::new(),
            tool_calls: Vec::new(),
            validation: Vec::new(),
            pr_url: None,
            head_sha: None,
            review_repair: None,
            retry: None,
            resumed: None,
            timeline: Vec::new(),
            pid: std::process::id(),
            pid_start_time: OwnerProcess::current().map(|process| process.start_time),
        }
    }
}

/// A live lane's progress, rewritten (throttled) while the attempt runs so another process can
/// see it. The daemon's stall detection reads `last_progress_at` from here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityMarker {
    pub schema_version: u32,
    pub run_id: String,
    pub issue_id: String,
    pub issue_identifier: String,
    pub attempt: u32,
    pub phase: Phase,
    pub pid: u32,
    #[serde(default)]
    pub thread_id: Option<String>,
    #[serde(default)]
    pub turn_count: u32,
    #[serde(default)]
    pub event_count: u64,
    #[serde(default)]
    pub last_event_type: Option<String>,
    #[serde(default)]
    pub last_event_at: Option<String>,
    /// Last time the run made progress (agent events, or a phase change).
    pub last_progress_at: String,
    #[serde(default)]
    pub tokens: Tokens,
    /// The latest codex rate-limit snapshot, as codex sent it.
    #[serde(default)]
    pub rate_limits: Option<serde_json::Value>,
    pub updated_at: String,
}

/// A marker that stops automatic reselection of an issue (for example when the needs-attention
/// label does not exist on the team, so the human path could not be recorded in the tracker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    pub reason: String,
    pub run_id: String,
    pub at: String,
}

/// Per-issue bookkeeping that outlives processes: attempts used, last error, next action, the
/// lane's name. Stored under the issue's stable id ([`issue_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueState {
    pub schema_version: u32,
    pub issue_id: String,
    pub issue_identifier: String,
    pub attempts_used: u32,
    #[serde(default)]
    pub last_run_id: Option<String>,
    #[serde(default)]
    pub last_status: Option<RunStatus>,
    #[serde(default)]
    pub last_error_class: Option<ErrorClass>,
    #[serde(default)]
    pub next_action: Option<String>,
    #[serde(default)]
    pub guard: Option<Guard>,
    pub updated_at: String,
    /// The lane directory's name, fixed when the issue was first claimed: an issue moved to
    /// another team changes identifier, its lane keeps its first name. Files of older versions
    /// lack it; their file name is the lane key, and readers fill it in from there.
    #[serde(default)]
    pub lane_key: Option<String>,
    /// While an attempt runs: the process running it, so its liveness can be checked without
    /// trusting the lease file (which the agent can delete).
    #[serde(default)]
    pub owner: Option<OwnerProcess>,
    /// The tracker state the last written outcome left the issue in. A different state at the
    /// next claim means a person moved the issue, which starts a fresh attempt budget.
    #[serde(default)]
    pub outcome_state: Option<String>,
    /// The idle timeouts in a row this episode, with the cause they share; absent when the last
    /// counted attempt ended otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeouts: Option<IdleTimeoutStreak>,
    /// The issue was seen terminal while its lane was on disk; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<TerminalLane>,
}

impl Default for IssueState {
    fn default() -> Self {
        IssueState {
            schema_version: SCHEMA_VERSION,
            issue_id: String::new(),
            issue_identifier: String::new(),
            attempts_used: 0,
            last_run_id: None,
            last_status: None,
            last_error_class: None,
            next_action: None,
            guard: None,
            updated_at: String::new(),
            lane_key: None,
            owner: None,
            outcome_state: None,
            idle_timeouts: None,
            terminal: None,
        }
    }
}

impl IssueState {
    /// The lane directory's name (see [`IssueState::lane_key`]).
    pub fn lane(&self) -> String {
        self.lane_key
            .clone()
            .unwrap_or_else(|| lane::lane_key(&self.issue_identifier))
    }

    /// Whether an attempt of this issue is running in a live process right now, judged from
    /// the recorded process alone (pid and start time), not from the lease file.
    pub fn owner_alive(&self) -> bool {
        self.last_status == Some(RunStatus::Running)
            && self.owner.is_some_and(|owner| owner.is_alive())
    }
}

/// A new run id: sortable by start time, readable, unique per process and attempt.
pub fn new_run_id(lane_key: &str, attempt: u32) -> String {
    let now = clock::now_rfc3339();
    let compact: String = now.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!(
        "{compact}-{}-a{attempt}-{:04x}",
        lane_key.to_ascii_lowercase(),
        std::process::id() & 0xffff
    )
}

/// Who took a lease, written beside the lock when it is acquired. The lock is the truth; this
/// file only explains it (and may describe a past owner once the lock is free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOwner {
    pub run_id: String,
    pub pid: u32,
    pub issue_id: String,
    pub issue_identifier: String,
    pub acquired_at: String,
}

/// `leases/<key>.json`: a [`LeaseOwner`] with the schema version. Files of versions before
/// the version was written lack it and read as version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseFile {
    #[serde(default = "first_version")]
    pub schema_version: u32,
    #[serde(flatten)]
    pub owner: LeaseOwner,
}

fn first_version() -> u32 {
    1
}

impl From<LeaseOwner> for LeaseFile {
    fn from(owner: LeaseOwner) -> Self {
        LeaseFile {
            schema_version: SCHEMA_VERSION,
            owner,
        }
    }
}

/// Why an issue is in the daemon's retry queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    Continuation,
    Failure,
}

impl RetryKind {
    /// The snake_case name, as written on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryKind::Continuation => "continuation",
            RetryKind::Failure => "failure",
        }
    }
}

/// One queued retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryEntry {
    pub issue_id: String,
    pub issue_identifier: String,
    pub lane_key: String,
    /// The attempt number the retry will run.
    pub attempt: u32,
    pub kind: RetryKind,
    /// When the retry is due, milliseconds since the epoch.
    pub due_at_ms: u64,
    /// The same instant as RFC 3339, for people reading the file.
    pub due_at: String,
    #[serde(default)]
    pub last_error_class: Option<ErrorClass>,
    #[serde(default)]
    pub last_run_id: Option<String>,
}

/// `retry-queue.json`: the daemon's whole queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryQueue {
    pub schema_version: u32,
    pub entries: Vec<RetryEntry>,
}

impl Default for RetryQueue {
    /// An empty queue of the current version.
    fn default() -> Self {
        RetryQueue {
            schema_version: SCHEMA_VERSION,
            entries: Vec::new(),
        }
    }
}

impl StateFile for RunRecord {
    const WRITE: &'static str = "write run record";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl StateFile for ActivityMarker {
    const WRITE: &'static str = "write activity marker";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl StateFile for IssueState {
    const WRITE: &'static str = "write issue state";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl StateFile for LeaseFile {
    const WRITE: &'static str = "write";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl StateFile for RetryQueue {
    const WRITE: &'static str = "write retry queue";
    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// Writes a run record.
pub fn save_run(layout: &Layout, record: &RunRecord) -> Result<(), Error> {
    state_file::write(&layout.run_record_file(&record.run_id), record)
}

/// Reads one run record.
pub fn load_run(layout: &Layout, run_id: &str) -> Result<RunRecord, Error> {
    state_file::read(&layout.run_record_file(run_id))
}

/// Writes a lane activity marker.
pub fn save_marker(layout: &Layout, lane_key: &str, marker: &ActivityMarker) -> Result<(), Error> {
    state_file::write(&layout.activity_file(lane_key), marker)
}

/// Reads a lane's activity marker, when there is one.
pub fn load_marker(layout: &Layout, lane_key: &str) -> Result<Option<ActivityMarker>, Error> {
    let path = layout.activity_file(lane_key);
    if !path.exists() {
        return Ok(None);
    }
    state_file::read(&path).map(Some)
}

/// Writes bookkeeping at file key `key` as it is (no lock, no comparison): for fixtures and
/// tools. Maestro itself writes through [`update_issue_state`].
pub fn save_issue_state(layout: &Layout, key: &str, state: &IssueState) -> Result<(), Error> {
    state_file::write(&layout.issue_file(key), state)
}

/// Writes who holds lease `key` beside its lock file.
pub fn save_lease_owner(layout: &Layout, key: &str, owner: &LeaseOwner) -> Result<(), Error> {
    state_file::write(
        &layout.lease_owner_file(key),
        &LeaseFile::from(owner.clone()),
    )
}

/// Who the owner file of lease `key` names, when it is there and readable.
pub fn load_lease_owner(layout: &Layout, key: &str) -> Option<LeaseOwner> {
    state_file::read::<LeaseFile>(&layout.lease_owner_file(key))
        .ok()
        .map(|file| file.owner)
}

/// Writes the daemon's retry queue.
pub fn save_retry_queue(layout: &Layout, queue: &RetryQueue) -> Result<(), Error> {
    state_file::write(&layout.retry_queue_file(), queue)
}

/// Reads the daemon's retry queue; a missing file is an empty queue.
pub fn load_retry_queue(layout: &Layout) -> Result<RetryQueue, Error> {
    let path = layout.retry_queue_file();
    match state_file::read(&path) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(RetryQueue::default())
        }
        read => read,
    }
}

/// Reads the bookkeeping stored at file key `key`, when there is any.
pub fn load_issue_state(layout: &Layout, key: &str) -> Result<Option<IssueState>, Error> {
    let path = layout.issue_file(key);
    if !path.exists() {
        return Ok(None);
    }
    bookkeeping::read_issue_state(&path).map(Some)
}

/// Everything of one kind in a directory: the files that parsed, and the errors of those that
/// did not (a reader of the whole directory reports them and goes on).
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub errors: Vec<Error>,
}

/// Every run record, oldest first by start time.
pub fn list_runs(layout: &Layout) -> Listing<RunRecord> {
    let mut listing: Listing<RunRecord> = list_json(&layout.runs_dir());
    listing
        .items
        .sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
    listing
}

/// Every activity marker.
pub fn list_markers(layout: &Layout) -> Listing<ActivityMarker> {
    list_json(&layout.activity_dir())
}

fn list_json<T: StateFile>(dir: &Path) -> Listing<T> {
    let mut listing = Listing {
        items: Vec::new(),
        errors: Vec::new(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return listing,
        Err(error) => {
            listing.errors.push(io_error(dir, "list")(error));
            return listing;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(Layout::is_state_file)
        })
        .collect();
    paths.sort();
    for path in paths {
        match state_file::read(&path) {
            Ok(item) => listing.items.push(item),
            // A record deleted by pruning between listing and reading is not an error.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => listing.errors.push(error),
        }
    }
    listing
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh layout under the temp dir, for this module's tests and `retention`'s.
    pub(crate) fn layout(name: &str) -> (Layout, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("maestro-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Layout::new(&dir), dir)
    }

    /// A finished record of `issue`, started at `started_at`.
    pub(crate) fn record(
        run_id: &str,
        issue: &str,
        started_at: &str,
        status: RunStatus,
    ) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            project_id: "demo".into(),
            issue_id: issue.into(),
            issue_identifier: issue.to_uppercase(),
            branch: "x/demo-abc-1".into(),
            workspace_path: ".workspaces/ABC-1".into(),
            started_at: started_at.into(),
            phase: Phase::Finished,
            status,
            pid: 1,
            ..RunRecord::default()
        }
    }

    #[test]
    fn records_round_trip_and_list_in_start_order() {
        let (layout, dir) = layout("roundtrip");
        let late = record("r2", "a", "2026-11-26T00:00:02.000Z", RunStatus::Handoff);
        let early = record("r1", "a", "2026-11-26T00:00:01.000Z", RunStatus::Failed);
        save_run(&layout, &late).unwrap();
        save_run(&layout, &early).unwrap();
        std::fs::write(layout.journal_file("r1"), "{}\n").unwrap();
        assert_eq!(load_run(&layout, "r2").unwrap(), late);
        let listing = list_runs(&layout);
        assert!(listing.errors.is_empty());
        let ids: Vec<&str> = listing.items.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, vec!["r1", "r2"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_reported_not_fatal() {
        let (layout, dir) = layout("corrupt");
        save_run(
            &layout,
            &record("good", "a", "2026-11-26T00:00:01.000Z", RunStatus::Handoff),
        )
        .unwrap();
        std::fs::write(
            layout.run_record_file("torn"),
            "{\"schema_version\": 1, \"run_",
        )
        .unwrap();
        let listing = list_runs(&layout);
        assert_eq!(listing.items.len(), 1);
        assert_eq!(listing.errors.len(), 1);
        assert!(
            listing.errors[0]
                .to_string()
                .contains("torn.json is unreadable")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn status_names_match_the_serialized_form() {
        for status in [
            RunStatus::Running,
            RunStatus::Handoff,
            RunStatus::RetryScheduled,
            RunStatus::HumanRequired,
            RunStatus::Interrupted,
            RunStatus::Terminated,
            RunStatus::Stalled,
            RunStatus::Skipped,
            RunStatus::Failed,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_lane() {
        let id = new_run_id("ABC-12", 2);
        assert!(id.contains("-abc-12-a2-"), "{id}");
        assert!(id.starts_with("20"), "{id}");
    }
}
