//! Why an issue may not run now: the rule it fails ([`Rule`]), the typed [`Reason`] with what
//! made it fail, and the [`Hold`] Maestro itself has on it.
//!
//! Every "why not" Maestro states — the dry run's table, the live run's skip line, the daemon's
//! released retries — is one of these values rendered by its `Display`, so the same fact reads
//! the same wherever it is reported. This module only names and renders; the rules that produce
//! these values are in the sibling modules.

use std::fmt;

use crate::workspace::record::RunStatus;

/// The rules, each with the stable name the dry run's JSON uses. [`Rule::ALL`] lists the
/// fresh-work rules in the order they are checked; the others judge issues Maestro already
/// worked on (a due retry, an attempt past its budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Project,
    Startable,
    Terminal,
    OptOut,
    NeedsAttention,
    Blocked,
    Held,
    Slot,
    /// The issue left the active states (neither startable nor in progress).
    Active,
    /// The episode ended (handoff, human outcome) after a retry was queued.
    Episode,
    /// The attempt budget (`max_attempts`) is spent.
    Budget,
}

impl Rule {
    /// The fresh-work rules in checking order.
    pub const ALL: [Rule; 8] = [
        Rule::Project,
        Rule::Startable,
        Rule::Terminal,
        Rule::OptOut,
        Rule::NeedsAttention,
        Rule::Blocked,
        Rule::Held,
        Rule::Slot,
    ];

    /// The stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Project => "project",
            Rule::Startable => "startable",
            Rule::Terminal => "terminal",
            Rule::OptOut => "opt_out",
            Rule::NeedsAttention => "needs_attention",
            Rule::Blocked => "blocked",
            Rule::Held => "held",
            Rule::Slot => "slot",
            Rule::Active => "active",
            Rule::Episode => "episode",
            Rule::Budget => "budget",
        }
    }
}

/// Why Maestro itself holds an issue (rule 7), from the facts whoever looked saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Its lease lock is held by a live process.
    Leased { run_id: String, pid: u32 },
    /// Its lease lock is held, and nothing readable says by whom.
    LeasedElsewhere,
    /// Its bookkeeping names a running attempt whose process still runs, though its lease file
    /// is gone (the agent can delete a file, not bring back a process).
    Running { run_id: Option<String>, pid: u32 },
    /// A guard marker in its bookkeeping stops automatic work.
    Guard { reason: String },
    /// The daemon's retry queue owns it until the retry runs or is released.
    QueuedRetry { attempt: u32, due_at: String },
    /// A child the daemon started works it (and may not hold its lease yet).
    DaemonChild { run_id: String },
    /// Its lane directory is locked by another process, though its lease was free.
    LaneBusy { lane: String },
}

impl Hold {
    /// Which hold is reported when several apply: a lease first, then a live process, a
    /// guard, a queued retry, the daemon's own child, a busy lane.
    pub fn rank(&self) -> u8 {
        match self {
            Hold::Leased { .. } | Hold::LeasedElsewhere => 0,
            Hold::Running { .. } => 1,
            Hold::Guard { .. } => 2,
            Hold::QueuedRetry { .. } => 3,
            Hold::DaemonChild { .. } => 4,
            Hold::LaneBusy { .. } => 5,
        }
    }

    /// The sentence a claim that lost `identifier` to this hold reports:
    /// `ABC-1 is leased by run … (pid …)`.
    pub fn refusal(&self, identifier: &str) -> String {
        match self {
            Hold::Guard { reason } => format!("{identifier} is held by a guard marker: {reason}"),
            Hold::LaneBusy { lane } => format!(
                "{identifier} has its lane {lane} locked by another process (its lease file was removed or replaced)"
            ),
            other => format!("{identifier} is {other}"),
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Leased { run_id, pid } => write!(f, "leased by run {run_id} (pid {pid})"),
            Hold::LeasedElsewhere => write!(f, "leased by another process"),
            Hold::Running { run_id, pid } => write!(
                f,
                "running in run {} (pid {pid}; its lease file is missing)",
                run_id.as_deref().unwrap_or("unknown")
            ),
            Hold::Guard { reason } => write!(f, "guard marker: {reason}"),
            Hold::QueuedRetry { attempt, due_at } => write!(
                f,
                "queued for retry by the daemon (attempt {attempt}, due {due_at})"
            ),
            Hold::DaemonChild { run_id } => write!(f, "running in daemon child run {run_id}"),
            Hold::LaneBusy { lane } => write!(f, "its lane {lane} is locked by another process"),
        }
    }
}

/// Why an issue may not run now: the first rule it fails, with what made it fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    OtherProject {
        project: Option<String>,
    },
    NotStartable {
        state: String,
    },
    Terminal {
        state: String,
    },
    OptOut {
        label: String,
    },
    NeedsAttention {
        label: String,
    },
    /// Non-terminal blockers as (identifier, state name), in the tracker's order.
    BlockedBy {
        blockers: Vec<(String, String)>,
    },
    Held(Hold),
    /// No slot left; `state` names the per-state cap when that is what ran out.
    NoSlot {
        limit: u32,
        state: Option<String>,
    },
    /// Neither startable nor in progress (and not terminal): a person moved it on.
    Inactive {
        state: String,
    },
    /// A review repair's issue is no longer in `success_state` (and not terminal).
    NotInReview {
        state: String,
    },
    /// The run a queued retry follows, or a later one, recorded an outcome that ended the
    /// episode (`handoff`, `human_required`, `stalled`).
    EpisodeEnded {
        run_id: Option<String>,
        status: RunStatus,
    },
    /// Attempt `attempt` would pass `max_attempts`.
    BudgetSpent {
        max_attempts: u32,
    },
}

impl Reason {
    pub fn rule(&self) -> Rule {
        match self {
            Reason::OtherProject { .. } => Rule::Project,
            Reason::NotStartable { .. } => Rule::Startable,
            Reason::Terminal { .. } => Rule::Terminal,
            Reason::OptOut { .. } => Rule::OptOut,
            Reason::NeedsAttention { .. } => Rule::NeedsAttention,
            Reason::BlockedBy { .. } => Rule::Blocked,
            Reason::Held(_) => Rule::Held,
            Reason::NoSlot { .. } => Rule::Slot,
            Reason::Inactive { .. } | Reason::NotInReview { .. } => Rule::Active,
            Reason::EpisodeEnded { .. } => Rule::Episode,
            Reason::BudgetSpent { .. } => Rule::Budget,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::OtherProject {
                project: Some(slug),
            } => {
                write!(f, "in another project ({slug})")
            }
            Reason::OtherProject { project: None } => write!(f, "in no project"),
            Reason::NotStartable { state } => write!(f, "state {state} is not startable"),
            Reason::Terminal { state } => write!(f, "state {state} is terminal"),
            Reason::OptOut { label } | Reason::NeedsAttention { label } => {
                write!(f, "label {label}")
            }
            Reason::BlockedBy { blockers } => {
                let list: Vec<String> = blockers
                    .iter()
                    .map(|(identifier, state)| format!("{identifier} ({state})"))
                    .collect();
                write!(f, "blocked by {}", list.join(", "))
            }
            Reason::Held(hold) => hold.fmt(f),
            Reason::NoSlot {
                limit,
                state: Some(state),
            } => write!(
                f,
                "no free dispatch slot for state {state} (max_concurrent_agents_by_state = {limit})"
            ),
            Reason::NoSlot { limit, state: None } => {
                write!(f, "no free dispatch slot (max_concurrent_agents = {limit})")
            }
            Reason::Inactive { state } => {
                write!(f, "state {state} is neither startable nor in progress")
            }
            Reason::NotInReview { state } => {
                write!(f, "state {state} is not the review state a repair works in")
            }
            Reason::EpisodeEnded { run_id, status } => write!(
                f,
                "run {} already recorded {}",
                run_id.as_deref().unwrap_or("unknown"),
                status.as_str()
            ),
            Reason::BudgetSpent { max_attempts } => {
                write!(f, "attempt budget of {max_attempts} spent")
            }
        }
    }
}
