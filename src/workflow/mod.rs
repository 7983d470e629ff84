//! The repository contract, `WORKFLOW.md`: tracker states, execution limits, hooks, the handoff
//! mode and the standing instructions given to the agent.
//!
//! A snapshot ([`Workflow`]) is immutable once parsed. The daemon re-reads the file every tick
//! through [`WorkflowStore::reload`], which keeps the last known good snapshot when an edit is
//! broken, so a typo in WORKFLOW.md never stops running lanes or drops a tick. Parsing lives in
//! `parse.rs`, the `[agent]` table in `agent.rs`, the `[review]` table in `review.rs`; this file
//! holds the snapshot types, their queries and the store.

mod agent;
mod parse;
mod review;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Provider;
use crate::github::MergeMethod;
use crate::toml_fields::{self, Diagnostic};

pub use parse::parse;

/// The only `version` this build understands.
pub const SUPPORTED_VERSION: i64 = 1;

/// One parsed, validated WORKFLOW.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    /// The file this came from.
    pub path: PathBuf,
    pub tracker: TrackerPolicy,
    pub agent: AgentStyle,
    pub execution: Execution,
    /// Repo-relative files appended to the agent's instructions, in order.
    pub read_first: Vec<PathBuf>,
    pub hooks: Hooks,
    /// `[review]`: the post-review lifecycle; off by default.
    pub review: ReviewPolicy,
    /// `[handoff] mode`: what the agent hands off for review.
    pub handoff: HandoffMode,
    /// The Markdown after the front matter, trimmed: standing instructions for the agent.
    pub body: String,
    /// Non-fatal findings (unknown top-level tables), for the caller to log.
    pub warnings: Vec<String>,
    /// The file's text as parsed, so a known-good snapshot can be handed to another process.
    pub source: String,
}

/// `[tracker]`: how issue states map onto Maestro's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerPolicy {
    /// `None` when WORKFLOW.md does not say; then maestro.toml alone decides.
    pub provider: Option<Provider>,
    pub project_slug: Option<String>,
    pub startable_states: Vec<String>,
    pub terminal_states: Vec<String>,
    pub in_progress_state: String,
    pub success_state: String,
    /// `None` when not set and `Done` is not a terminal state: an error when a flow needs it.
    pub completed_state: Option<String>,
    pub failure_state: String,
    pub opt_out_label: String,
    pub needs_attention_label: String,
}

/// `[agent]`: style hints passed to `thread/start`, and the wall-clock limit of one turn.
/// (`transport`, which files written for a peer implementation carry, is validated and has
/// nothing to hold: the only transport is [`crate::config::STDIO_TRANSPORT`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStyle {
    pub personality: Option<Personality>,
    pub service_tier: Option<String>,
    /// The longest one turn may run, busy or not, before it is interrupted and the attempt
    /// fails as `turn_timeout` (retried with backoff). Symphony's default: one hour.
    pub turn_timeout_ms: u64,
}

/// One hour, as in Symphony.
pub const DEFAULT_TURN_TIMEOUT_MS: u64 = 3_600_000;

impl Default for AgentStyle {
    fn default() -> Self {
        AgentStyle {
            personality: None,
            service_tier: None,
            turn_timeout_ms: DEFAULT_TURN_TIMEOUT_MS,
        }
    }
}

/// Codex `personality` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    None,
    Friendly,
    Pragmatic,
}

impl Personality {
    /// The wire value for `thread/start`.
    pub fn as_str(self) -> &'static str {
        match self {
            Personality::None => "none",
            Personality::Friendly => "friendly",
            Personality::Pragmatic => "pragmatic",
        }
    }
}

/// `[execution]`: attempt, turn, concurrency and token limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub max_attempts: u32,
    pub max_turns: u32,
    pub max_retry_backoff_ms: u64,
    pub max_concurrent_agents: u32,
    /// Per-state caps, state names as written; each positive and at most the global cap.
    pub max_concurrent_agents_by_state: Vec<(String, u32)>,
    /// Shell commands run in the lane before a review handoff is accepted.
    pub validation_commands: Vec<String>,
    /// Total tokens one attempt may spend; `None` is unlimited.
    pub token_budget: Option<u64>,
    /// Time limit for each validation command.
    pub validation_timeout_ms: u64,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            max_attempts: 3,
            max_turns: 1,
            max_retry_backoff_ms: 300_000,
            max_concurrent_agents: 1,
            max_concurrent_agents_by_state: Vec::new(),
            validation_commands: Vec::new(),
            token_budget: None,
            validation_timeout_ms: 1_800_000,
        }
    }
}

/// `[hooks]`: shell scripts run with `sh -c` in the lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub after_create: Option<String>,
    pub before_run: Option<String>,
    pub after_run: Option<String>,
    pub before_remove: Option<String>,
    pub timeout_ms: u64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            after_create: None,
            before_run: None,
            after_run: None,
            before_remove: None,
            timeout_ms: 60_000,
        }
    }
}

/// `[review]`: what happens after a PR-backed handoff (docs/spec/review.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPolicy {
    /// Off: the lane ends at the handoff, the issue in `success_state`, as before.
    pub enabled: bool,
    pub merge: MergeMode,
    pub merge_method: MergeMethod,
    /// Approvals needed, with no outstanding change request.
    pub required_approvals: u32,
    /// Every check run and commit status on the head must be success, neutral or skipped.
    pub require_checks: bool,
    /// Re-enter the lane to address review feedback and failing checks.
    pub repair: bool,
    /// Repairs before the human path.
    pub max_repairs: u32,
    /// Delete the lane branch on the remote after the merge.
    pub delete_branch: bool,
    /// How often the daemon reads a waiting PR's signals.
    pub poll_interval_s: u64,
}

impl Default for ReviewPolicy {
    fn default() -> Self {
        ReviewPolicy {
            enabled: false,
            merge: MergeMode::Auto,
            merge_method: MergeMethod::Squash,
            required_approvals: 1,
            require_checks: true,
            repair: true,
            max_repairs: 3,
            delete_branch: true,
            poll_interval_s: 60,
        }
    }
}

/// Who merges a ready PR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// Maestro merges once the PR is ready to land.
    Auto,
    /// A person merges; Maestro closes out once it sees the merge.
    Manual,
}

impl MergeMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::Auto => "auto",
            MergeMode::Manual => "manual",
        }
    }
}

/// `[handoff] mode`: what a review handoff names and how Maestro checks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HandoffMode {
    /// A GitHub pull request, checked through the GitHub API (needs the token). The post-review
    /// lifecycle (review waiting, repair, merge) builds on it.
    #[default]
    PullRequest,
    /// A branch pushed to the source repository's `origin`, checked with `git ls-remote`: any
    /// git server, no GitHub API and no token.
    Branch,
}

impl HandoffMode {
    /// The value as written in WORKFLOW.md.
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffMode::PullRequest => "pull_request",
            HandoffMode::Branch => "branch",
        }
    }

    /// The mode called `name` (trimmed, exact case).
    pub fn from_name(name: &str) -> Option<HandoffMode> {
        [HandoffMode::PullRequest, HandoffMode::Branch]
            .into_iter()
            .find(|mode| mode.as_str() == name.trim())
    }
}

/// Compares state names the way the contract says: trimmed and case-insensitively.
pub fn same_state(left: &str, right: &str) -> bool {
    left.trim().eq_ignore_ascii_case(right.trim())
}

impl TrackerPolicy {
    pub fn is_startable(&self, state: &str) -> bool {
        self.startable_states.iter().any(|s| same_state(s, state))
    }

    pub fn is_terminal(&self, state: &str) -> bool {
        self.terminal_states.iter().any(|s| same_state(s, state))
    }

    pub fn is_in_progress(&self, state: &str) -> bool {
        same_state(&self.in_progress_state, state)
    }
}

impl Workflow {
    /// The state an issue moves to when its work is finished outright; an error names the field
    /// when the flow needs it and WORKFLOW.md leaves it undetermined.
    pub fn completed_state(&self) -> Result<&str, Error> {
        self.tracker
            .completed_state
            .as_deref()
            .ok_or_else(|| Error::CompletedStateUnset {
                path: self.path.clone(),
            })
    }
}

/// Why WORKFLOW.md could not be used.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file breaks the contract; every problem is listed with line and column.
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
    /// A flow needs `tracker.completed_state` and it is neither set nor defaultable.
    CompletedStateUnset { path: PathBuf },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => {
                write!(f, "cannot read workflow {}: {source}", path.display())
            }
            Error::Invalid { path, diagnostics } => {
                let count = diagnostics.len();
                let noun = if count == 1 { "problem" } else { "problems" };
                write!(
                    f,
                    "invalid workflow {} ({count} {noun}):\n{}",
                    path.display(),
                    toml_fields::format_diagnostics(path, diagnostics)
                )
            }
            Error::CompletedStateUnset { path } => write!(
                f,
                "{}: field `tracker.completed_state` is needed but unset, and \"Done\" is not among terminal_states; set it to the state that means finished",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Reads and parses WORKFLOW.md at `path`; `repo_root` anchors `context.read_first`.
pub fn load(path: &Path, repo_root: &Path) -> Result<Workflow, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, repo_root)
}

/// The daemon's view of WORKFLOW.md: the current snapshot plus the reload primitive.
#[derive(Debug)]
pub struct WorkflowStore {
    path: PathBuf,
    repo_root: PathBuf,
    current: Arc<Workflow>,
}

impl WorkflowStore {
    /// Loads the first snapshot; a broken file here is a startup error.
    pub fn open(path: &Path, repo_root: &Path) -> Result<WorkflowStore, Error> {
        let workflow = load(path, repo_root)?;
        Ok(WorkflowStore {
            path: path.to_path_buf(),
            repo_root: repo_root.to_path_buf(),
            current: Arc::new(workflow),
        })
    }

    /// The last known good snapshot. Holders keep theirs across reloads.
    pub fn current(&self) -> Arc<Workflow> {
        Arc::clone(&self.current)
    }

    /// Re-reads the file. On success the new snapshot replaces the current one and the result
    /// says whether anything changed; on failure the current snapshot stays and the error is
    /// returned for the caller to log.
    pub fn reload(&mut self) -> Result<bool, Error> {
        let fresh = load(&self.path, &self.repo_root)?;
        let changed = fresh != *self.current;
        if changed {
            self.current = Arc::new(fresh);
        }
        Ok(changed)
    }
}
