//! `maestro show ISSUE|RUN_ID`: one attempt, everything an operator otherwise digs out of
//! `.maestro/` by hand — its run record, the timeline of its steps, what the agent did (from
//! the protocol journal: commands with exit codes, tool calls, messages), the validation
//! output, the writeback, and where every file is.
//!
//! A run id names its run; anything else is an issue (identifier or id) and names that issue's
//! latest run. Built from local state only, like `status` (records, the journal's tail, the
//! bookkeeping, the status snapshot for a live run's liveness), so it works from another
//! process while the run goes and on an air-gapped host. `text.rs` renders it for terminals;
//! the JSON (`--json`) is the [`Shown`] document. Reads only; decides nothing.

mod agent;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use agent::{Action, Digest};
pub use text::render_text;

use crate::config::ServiceConfig;
use crate::run::redact::Secrets;
use crate::status::ActiveRun;
use crate::workspace::record::{self, Guard, IssueRef, Phase, RunRecord, RunStatus};
use crate::workspace::{self, Layout, lane};

/// Version of the `show --json` document.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `maestro show` prints about one attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub schema_version: u32,
    /// The run record as it is on disk (its `timeline` holds the steps with their times).
    pub run: RunRecord,
    /// While the record says `running`: the lane as `status` sees it (phase, idle time,
    /// events, whether its process is alive).
    pub live: Option<ActiveRun>,
    /// What the agent did, from the journal; `null` when the attempt has no journal (the agent
    /// never started, or retention removed it).
    pub agent: Option<Digest>,
    pub writeback: Writeback,
    pub files: Files,
    /// The issue's other attempts on record, newest first.
    pub other_attempts: Vec<Attempt>,
}

/// The outcome as it was written back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Writeback {
    /// When the writeback began (the timeline's `writing_back` step).
    pub at: Option<String>,
    pub status: RunStatus,
    pub retry: Option<bool>,
    pub next_action: Option<String>,
    /// The tracker state the outcome left the issue in, from the bookkeeping (while it still
    /// names this run).
    pub outcome_state: Option<String>,
    /// A guard that stops automatic reselection of the issue.
    pub guard: Option<Guard>,
}

/// Where the attempt's files are (absolute paths on this host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Files {
    pub run_record: String,
    pub journal: Option<File>,
    /// The child's own stderr, for runs the daemon started.
    pub log: Option<File>,
    /// The lane directory, when it is still there.
    pub lane: Option<String>,
    pub issue_bookkeeping: Option<String>,
}

/// A file that exists, and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    pub path: String,
    pub bytes: u64,
}

/// Another attempt of the same issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub run_id: String,
    pub attempt: u32,
    pub status: RunStatus,
    pub started_at: String,
    pub error_class: Option<String>,
}

/// Why there is nothing to show.
#[derive(Debug)]
pub enum Error {
    /// No run record matches `query`.
    NotFound { query: String, runs_dir: PathBuf },
    /// The matching record could not be read.
    Read(workspace::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { query, runs_dir } => write!(
                f,
                "no run of {query} on record in {}; give an issue identifier (ABC-12) or a run id, as 'maestro status' lists them",
                runs_dir.display()
            ),
            Error::Read(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

/// The attempt `query` names (a run id, else an issue's latest run), with everything about it.
pub fn build(config: &ServiceConfig, query: &str) -> Result<Shown, Error> {
    let layout = Layout::new(&config.workspace_root);
    let query = query.trim();
    let (run, others) = find(&layout, query)?;
    let live = (run.status == RunStatus::Running)
        .then(|| {
            crate::status::build(config, 0)
                .active
                .into_iter()
                .find(|active| active.run_id == run.run_id)
        })
        .flatten();
    let secrets = Secrets::from_env(&config.secret_env_vars());
    let scrub = |text: &str| secrets.scrub(text).into_owned();
    let journal_path = layout.journal_file(&run.run_id);
    let agent = match agent::digest(&journal_path, &scrub) {
        Ok(digest) => digest,
        Err(error) => {
            log::warn!(
                "cannot read the journal path={} error={error}",
                journal_path.display()
            );
            None
        }
    };
    let issue = IssueRef {
        id: &run.issue_id,
        identifier: &run.issue_identifier,
    };
    let bookkeeping = record::find_issue_state(&layout, issue).ok().flatten();
    let ours = bookkeeping
        .as_ref()
        .filter(|state| state.last_run_id.as_deref() == Some(run.run_id.as_str()));
    let writeback = Writeback {
        at: run
            .timeline
            .iter()
            .rev()
            .find(|entry| entry.phase == Phase::WritingBack)
            .map(|entry| entry.at.clone()),
        status: run.status,
        retry: run.retry.as_ref().map(|retry| retry.retry),
        next_action: run.retry.as_ref().map(|retry| retry.next_action.clone()),
        outcome_state: ours.and_then(|state| state.outcome_state.clone()),
        guard: bookkeeping.as_ref().and_then(|state| state.guard.clone()),
    };
    let lane_key = bookkeeping.as_ref().map_or_else(
        || lane::lane_key(&run.issue_identifier),
        |state| state.lane(),
    );
    let lane_dir = layout.lane_dir(&lane_key);
    let issue_file = layout.issue_file(&record::issue_key(&run.issue_id));
    let files = Files {
        run_record: display(&layout.run_record_file(&run.run_id)),
        journal: file(&journal_path),
        log: file(&layout.log_file(&run.run_id)),
        lane: lane_dir.is_dir().then(|| display(&lane_dir)),
        issue_bookkeeping: issue_file.is_file().then(|| display(&issue_file)),
    };
    Ok(Shown {
        schema_version: SCHEMA_VERSION,
        live,
        agent,
        writeback,
        files,
        other_attempts: others,
        run,
    })
}

/// The record `query` names and the issue's other attempts, newest first.
fn find(layout: &Layout, query: &str) -> Result<(RunRecord, Vec<Attempt>), Error> {
    let not_found = || Error::NotFound {
        query: query.to_string(),
        runs_dir: layout.runs_dir(),
    };
    if query.is_empty() {
        return Err(not_found());
    }
    let listing = record::list_runs(layout);
    for problem in &listing.errors {
        log::warn!("state file problem: {problem}");
    }
    let all = listing.items;
    // A run id is a file name under runs/; anything with a path in it is not one.
    let by_run_id = !query.contains(['/', '\\']) && query != "." && query != "..";
    let chosen = if by_run_id && layout.run_record_file(query).is_file() {
        record::load_run(layout, query).map_err(Error::Read)?
    } else {
        all.iter()
            .filter(|run| run.issue_identifier.eq_ignore_ascii_case(query) || run.issue_id == query)
            .min_by(|left, right| newest_first(left, right))
            .cloned()
            .ok_or_else(not_found)?
    };
    let mut others: Vec<&RunRecord> = all
        .iter()
        .filter(|run| run.issue_id == chosen.issue_id && run.run_id != chosen.run_id)
        .collect();
    others.sort_by(|left, right| newest_first(left, right));
    let others = others
        .into_iter()
        .map(|run| Attempt {
            run_id: run.run_id.clone(),
            attempt: run.attempt,
            status: run.status,
            started_at: run.started_at.clone(),
            error_class: run.error_class.as_ref().map(ToString::to_string),
        })
        .collect();
    Ok((chosen, others))
}

fn newest_first(left: &RunRecord, right: &RunRecord) -> std::cmp::Ordering {
    right
        .started_at
        .cmp(&left.started_at)
        .then_with(|| right.run_id.cmp(&left.run_id))
}

fn file(path: &Path) -> Option<File> {
    let metadata = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    Some(File {
        path: display(path),
        bytes: metadata.len(),
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The document as pretty JSON plus a newline.
pub fn to_json(shown: &Shown) -> String {
    let mut text = serde_json::to_string_pretty(shown).unwrap_or_else(|error| {
        format!("{{\"error\": {{\"kind\": \"runtime\", \"message\": \"cannot encode: {error}\"}}}}")
    });
    text.push('\n');
    text
}
