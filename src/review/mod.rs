//! The post-review lifecycle (#14): what happens to a lane after its PR-backed handoff, from
//! In Review to merged, Done and cleaned up (docs/spec/review.md).
//!
//! `phase.rs` names the phases; `signals.rs` normalizes a PR's review signals and reads them
//! through `github`; `decide.rs` is the phase machine as pure functions; `record.rs` the
//! per-lane phase record under `.maestro/review/`; `texts.rs` the repair input and comments.
//! A PR-backed handoff writes the record (`run::repair::start_review`); the daemon's tick
//! drives it (`daemon::review_read`, `daemon::review`, `daemon::review_exec`): per open lane,
//! load the record, read signals when [`read_due`], [`decide`], apply and save the decision,
//! then execute its one action.
//!
//! **Invariant:** no I/O here except reading signals through `github` ([`signals::read`]) and
//! the record's own file; it never touches the tracker, a lane or a process. Reviewer text is
//! hostile input and reaches people or the agent only bounded and quoted.

pub mod decide;
pub mod phase;
pub mod record;
pub mod signals;
pub mod texts;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::workflow::ReviewPolicy;

pub use decide::{Action, Decision, IssueState, LaneFacts, after_merge, after_repair, decide};
pub use phase::Phase;
pub use record::{Handoff, RepairResult, ReviewRecord};
pub use signals::{Feedback, FeedbackItem, Signals, read};

/// How long until the lane's signals are due to be read again, from the record's last read
/// (wall clock, because it must survive a restart) and `poll_interval_s`. Clamped to the
/// interval, so a clock that jumped back delays a read by one interval at most. `None` for a
/// phase that reads no signals.
pub fn next_read_in(record: &ReviewRecord, policy: &ReviewPolicy, now_ms: u64) -> Option<Duration> {
    if !record.phase.reads_signals() {
        return None;
    }
    let interval = policy.poll_interval_s.saturating_mul(1000);
    let last = record
        .last_read_at
        .as_deref()
        .and_then(crate::clock::parse_rfc3339);
    let remaining = match last {
        None => 0,
        Some(last) => (last.saturating_add(interval))
            .saturating_sub(now_ms)
            .min(interval),
    };
    Some(Duration::from_millis(remaining))
}

/// Whether this tick reads the lane's signals: its phase reads them and the poll interval has
/// passed, or the issue left review (a person's move is judged against a fresh read, so a
/// merge is never mistaken for a cancellation).
pub fn read_due(
    record: &ReviewRecord,
    policy: &ReviewPolicy,
    issue: &IssueState,
    now_ms: u64,
) -> bool {
    match next_read_in(record, policy, now_ms) {
        None => false,
        Some(_) if *issue != IssueState::InReview => true,
        Some(wait) => wait.is_zero(),
    }
}
