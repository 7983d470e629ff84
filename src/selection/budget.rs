//! The attempt budget: how many attempts an issue has used, which attempt a claim starts, and
//! whether one more may run.
//!
//! The budget counts the consecutive failed attempts of one *episode*, bounded by
//! `max_attempts`. An episode ends with a handoff, a human outcome (the needs-attention path, a
//! stalled lane) or a person moving the issue — a state other than the one the last written
//! outcome left it in. Pure functions over the issue's bookkeeping; `claims` reads it.

use super::Reason;
use crate::workflow::same_state;
use crate::workspace::record::{IssueState, RunStatus};

/// Attempts used in the current budget. `current_state` is the issue's tracker state when the
/// caller knows it: a state other than `outcome_state` means a person moved the issue.
pub fn attempts_in_budget(state: &IssueState, current_state: Option<&str>) -> u32 {
    let episode_ended = matches!(
        state.last_status,
        Some(RunStatus::Handoff | RunStatus::HumanRequired | RunStatus::Stalled)
    );
    let moved = match (&state.outcome_state, current_state) {
        (Some(left_in), Some(now)) => !same_state(left_in, now),
        _ => false,
    };
    if episode_ended || moved {
        0
    } else {
        state.attempts_used
    }
}

/// The attempt a claim starts, and the attempts the budget had used before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextAttempt {
    pub attempt: u32,
    pub used: u32,
}

/// The attempt a claim of an issue in `current_state` starts: the budget used plus one. The
/// daemon's `requested` number wins when it is higher (the daemon saw a record the
/// bookkeeping did not), unless a new episode began since (then it is 1 again).
pub fn next_attempt(
    previous: Option<&IssueState>,
    current_state: &str,
    requested: Option<u32>,
) -> NextAttempt {
    let used = previous.map_or(0, |state| attempts_in_budget(state, Some(current_state)));
    let episode_restarted = used == 0 && previous.is_some_and(|state| state.attempts_used > 0);
    let attempt = match requested {
        Some(requested) if !episode_restarted => requested.max(used + 1),
        _ => used + 1,
    };
    NextAttempt { attempt, used }
}

/// Whether attempt `attempt` is inside the budget of `max_attempts`.
pub fn within_budget(attempt: u32, max_attempts: u32) -> Result<(), Reason> {
    if attempt > max_attempts {
        Err(Reason::BudgetSpent { max_attempts })
    } else {
        Ok(())
    }
}
