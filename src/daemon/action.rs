//! What the daemon does: the [`Action`]s its pure decisions (`plan.rs` for a tick, `exits.rs`
//! for a finished child) return, and the executor (`execute.rs`) carries out in order.
//!
//! An action is data: it names the child, issue, record or queue entry it is about and carries
//! everything the executor needs to act and to log the decision, so a decision can be checked
//! in a unit test without a process, a tracker or a disk.

use std::time::Duration;

use super::children::StopReason;
use crate::claims::RetainedLane;
use crate::review::{Decision, IssueState as ReviewIssueState, RepairResult, ReviewRecord};
use crate::selection::Reason;
use crate::tracker::Issue;
use crate::workspace::record::{RetryEntry, RunRecord, RunStatus};

/// The `action=` field of the daemon's decision log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Dispatch,
    RetryScheduled,
    Released,
    Terminated,
    Interrupted,
    Stalled,
    Adopted,
    /// A step of the post-review lifecycle (merge, closeout, cleanup, human path, …).
    Review,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Dispatch => "dispatch",
            Verb::RetryScheduled => "retry_scheduled",
            Verb::Released => "released",
            Verb::Terminated => "terminated",
            Verb::Interrupted => "interrupted",
            Verb::Stalled => "stalled",
            Verb::Adopted => "adopted",
            Verb::Review => "review",
        }
    }
}

/// A child as decisions name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRef {
    pub run_id: String,
    pub issue_id: String,
    pub identifier: String,
    /// The lane's name as the daemon knew it (the bookkeeping's wins when the lane is removed).
    pub lane_key: String,
    pub attempt: u32,
}

/// Why an issue is dispatched, as the log line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// A queued retry fell due and its issue still wants it.
    Retry,
    /// An in-progress issue left for another try, with no live owner.
    Recovery,
    /// Fresh eligible work.
    Fresh,
}

impl Dispatch {
    pub fn reason(self) -> &'static str {
        match self {
            Dispatch::Retry => "retry due",
            Dispatch::Recovery => "recovered in-progress lane with no live owner",
            Dispatch::Fresh => "eligible, first in dispatch order",
        }
    }
}

/// Why a queued retry is dropped without running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The refresh did not return the issue.
    NotVisible,
    /// A rule says the retry no longer runs.
    Rule(Reason),
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Release::NotVisible => write!(f, "the issue is no longer visible"),
            Release::Rule(reason) => reason.fmt(f),
        }
    }
}

/// A decision that needs nothing but a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The child ended with an outcome that needs nothing more (handoff, human, skipped).
    Finished { run_id: String, status: RunStatus },
    /// No retry: the attempt named would pass the budget.
    BudgetSpent { max_attempts: u32 },
    /// The child stopped itself because its issue left the active states.
    IssueLeft,
    /// The daemon stopped the lane because its issue left; the lane is kept.
    LaneKept,
    /// The child had nothing to do (exit 3 without a record).
    NothingToDo,
    /// The child wrote its outcome to the tracker but could not finish its record.
    FinishedWithoutRecord { run_id: String, status: RunStatus },
    /// A stalled child left no record to mark.
    StalledWithoutRecord,
}

/// One thing the daemon does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Ask a child to stop (SIGTERM to its `run --once` process).
    Stop {
        child: ChildRef,
        reason: StopReason,
        why: String,
    },
    /// Take a slot and spawn a child. When no slot is free (or the spawn fails) the executor
    /// skips every later dispatch of this tick: the issue stays eligible, a retry stays queued.
    Dispatch {
        issue: Box<Issue>,
        attempt: u32,
        why: Dispatch,
    },
    /// Drop a queued retry without running it.
    Release {
        issue_id: String,
        identifier: String,
        attempt: u32,
        why: Release,
    },
    /// Queue (or requeue) a retry: the entry as it is written, due after `delay`.
    Queue { entry: RetryEntry, delay: Duration },
    /// Write a child's run record as the daemon sees it ended.
    SaveRecord(Box<RunRecord>),
    /// Remove a child's lane (`before_remove` hook first); records stay.
    RemoveLane(ChildRef),
    /// A stalled lane: write its `stalled` record, send the issue down the needs-attention
    /// path, end its episode in the bookkeeping.
    Stall {
        issue_id: String,
        identifier: String,
        record: Box<RunRecord>,
        message: String,
        next_action: String,
    },
    /// Children of an issue in a row that ended before recording anything (`None`: forget).
    EarlyExits {
        issue_id: String,
        count: Option<u32>,
    },
    /// Only a log line. `attempt` is the one the line names (the record's, when there is one).
    Note {
        child: ChildRef,
        attempt: u32,
        note: Note,
    },
    /// One step of a post-review lane (`review.rs` decided it; `review_exec.rs` carries it
    /// out, recording each intent before its side effect).
    Review(Box<ReviewStep>),
    /// A retained lane whose issue is terminal, or no longer is (`selection::lane_fate`).
    SweepLane {
        lane: Box<RetainedLane>,
        sweep: Sweep,
    },
}

/// What to do with a retained lane whose issue was seen terminal (docs/spec/daemon.md,
/// "Terminal lanes"); `workspace::sweep` carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sweep {
    /// Nothing works in it: remove it (`before_remove` first; only a lane Maestro can prove it
    /// created), and record that its issue was seen in `state`.
    Remove { state: String },
    /// A process still works in it: record why it stays for now.
    Keep { state: String, why: String },
    /// Its issue is visible again and not terminal: forget the mark.
    Forget,
}

/// A post-review lane's step: its record as the tick read it, its issue's state, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewStep {
    pub record: ReviewRecord,
    pub issue: ReviewIssueState,
    pub step: Step,
}

/// What to do for a post-review lane.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Record the phase machine's decision, then carry out its action.
    Decide(Decision),
    /// Record how the current repair (`run_id`) ended.
    RepairEnded { run_id: String, end: RepairEnd },
    /// Start the current repair's child: under its recorded run id when it has one (it was
    /// recorded but never started), else under a new one.
    SpawnRepair { run_id: Option<String> },
    /// Finish the human path: the needs-attention label and the comment.
    Notify,
    /// Finish a cancelled lane: remove it once no process works in it.
    RemoveLane,
}

/// What a finished repair child means for its lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairEnd {
    /// The repair's result, for [`ReviewRecord::finish_repair`].
    Result(RepairResult),
    /// The repair's agent took the manual-attention path: the lane goes to a person.
    AskedForHuman(String),
    /// It was interrupted (a shutdown): the same repair starts again under a new run.
    Respawn,
}
