//! Claims from local state: which issues are taken, how many slots are busy, how many attempts
//! each issue has used.
//!
//! The eligibility rules in [`crate::selection`] are pure; this module gathers their inputs from
//! `.maestro/`: held leases (another process is working the issue), guard markers (automatic
//! reselection stopped), queued retries (the daemon owns the issue until it redispatches or
//! releases it), busy slot files, and per-issue attempt counts. The dry run, the live run and
//! the daemon all call [`gather`], so they judge issues the same way.
//!
//! An attempt is alive when its lease is held, or when its bookkeeping names a process that is
//! still running (pid and start time): the agent can delete lease files, it cannot bring back a
//! process. The attempt budget ([`attempts_in_budget`]) counts the consecutive failures of one
//! episode; a handoff, a human outcome or a person moving the issue starts a new one.

use std::collections::{BTreeMap, HashMap};

use crate::selection::{Claims, Slots};
use crate::tracker::Issue;
use crate::workflow::{Execution, TrackerPolicy, same_state};
use crate::workspace::record::{self, IssueRef, RunStatus};
use crate::workspace::{Layout, lock, retry_queue};

/// What local state says, ready for selection.
#[derive(Debug, Clone, Default)]
pub struct LocalClaims {
    pub claims: Claims,
    /// Issue id → attempts already used in the current attempt budget.
    pub prior_attempts: HashMap<String, u32>,
    /// Issue ids with a live lease (a process is working them now).
    pub leased: Vec<String>,
    /// Problems reading state files (reported, never fatal).
    pub problems: Vec<String>,
}

/// Reads leases, guards, the retry queue, slot files and bookkeeping. `issues` are the
/// candidates just listed, used to charge per-state caps for issues being worked now.
/// `include_retry_queue` is false for the daemon, which handles its own queue first.
pub fn gather(
    layout: &Layout,
    execution: &Execution,
    issues: &[Issue],
    include_retry_queue: bool,
) -> LocalClaims {
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut leased = Vec::new();
    let mut problems = Vec::new();

    let leases = lock::held_leases(layout).unwrap_or_else(|error| {
        problems.push(error.to_string());
        Vec::new()
    });
    for (_, owner) in leases {
        held.insert(
            owner.issue_id.clone(),
            format!("leased by run {} (pid {})", owner.run_id, owner.pid),
        );
        leased.push(owner.issue_id);
    }

    let bookkeeping = record::list_issue_states(layout);
    problems.extend(bookkeeping.errors.iter().map(ToString::to_string));
    let mut prior_attempts = HashMap::new();
    for state in &bookkeeping.items {
        if state.owner_alive() && !leased.contains(&state.issue_id) {
            // The lease file is gone or was replaced, but the attempt's process still runs.
            let pid = state.owner.map_or(0, |owner| owner.pid);
            held.entry(state.issue_id.clone()).or_insert_with(|| {
                format!(
                    "running in run {} (pid {pid}; its lease file is missing)",
                    state.last_run_id.as_deref().unwrap_or("unknown")
                )
            });
            leased.push(state.issue_id.clone());
        }
        if let Some(guard) = &state.guard {
            held.entry(state.issue_id.clone())
                .or_insert_with(|| format!("guard marker: {}", guard.reason));
        }
        let current = issues
            .iter()
            .find(|issue| issue.id == state.issue_id)
            .map(|issue| issue.state.name.as_str());
        prior_attempts.insert(state.issue_id.clone(), attempts_in_budget(state, current));
    }

    if include_retry_queue {
        match retry_queue::load(layout) {
            Ok(queue) => {
                for entry in queue.entries {
                    held.entry(entry.issue_id.clone()).or_insert_with(|| {
                        format!(
                            "queued for retry by the daemon (attempt {}, due {})",
                            entry.attempt, entry.due_at
                        )
                    });
                }
            }
            Err(error) => problems.push(error.to_string()),
        }
    }

    let mut slots = Slots::all_free(execution);
    let busy = (0..execution.max_concurrent_agents as usize)
        .filter(|index| lock::slot_is_held(layout, *index).unwrap_or(false))
        .count();
    slots.free = slots
        .limit
        .saturating_sub(u32::try_from(busy).unwrap_or(u32::MAX));
    for issue in issues.iter().filter(|issue| leased.contains(&issue.id)) {
        if let Some(cap) = slots
            .by_state
            .iter_mut()
            .find(|cap| same_state(&cap.state, &issue.state.name))
        {
            cap.free = cap.free.saturating_sub(1);
        }
    }
    LocalClaims {
        claims: Claims { held, slots },
        prior_attempts,
        leased,
        problems,
    }
}

/// An in-progress issue that should be picked up again before fresh work: not held, in the
/// project, without the opt-out or needs-attention label, and left for another try — its
/// bookkeeping (found by issue id) says the last attempt was retried, interrupted, failed, or
/// died while running; or it has a lane but no bookkeeping (claimed by a run whose state is
/// gone). The live run, the daemon and the dry run all use this one rule.
pub fn recovery_candidate(
    layout: &Layout,
    policy: &TrackerPolicy,
    project_slug: &str,
    issue: &Issue,
    held: &BTreeMap<String, String>,
) -> bool {
    if !policy.is_in_progress(&issue.state.name)
        || held.contains_key(&issue.id)
        || issue.project_slug.as_deref() != Some(project_slug)
        || issue.has_label(&policy.opt_out_label)
        || issue.has_label(&policy.needs_attention_label)
    {
        return false;
    }
    let issue_ref = IssueRef {
        id: &issue.id,
        identifier: &issue.identifier,
    };
    match record::find_issue_state(layout, issue_ref).ok().flatten() {
        Some(state) => {
            state.guard.is_none()
                && !state.owner_alive()
                && matches!(
                    state.last_status,
                    Some(
                        RunStatus::RetryScheduled
                            | RunStatus::Interrupted
                            | RunStatus::Running
                            | RunStatus::Failed
                    )
                )
        }
        None => layout
            .lane_dir(&crate::workspace::lane::lane_key(&issue.identifier))
            .is_dir(),
    }
}

/// Attempts used in the current budget. The budget counts the consecutive failed attempts of
/// one episode: an episode ends with a handoff, a human outcome (the needs-attention path, a
/// stalled lane) or a person moving the issue — a state other than the one the last written
/// outcome left it in (`current_state`, when the caller knows it). Each starts a fresh budget.
pub fn attempts_in_budget(state: &record::IssueState, current_state: Option<&str>) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::IssueState;

    fn used(status: RunStatus, attempts: u32, left_in: Option<&str>) -> IssueState {
        IssueState {
            attempts_used: attempts,
            last_status: Some(status),
            outcome_state: left_in.map(str::to_string),
            ..IssueState::default()
        }
    }

    #[test]
    fn the_budget_counts_consecutive_failures_of_one_episode() {
        let retried = used(RunStatus::RetryScheduled, 2, Some("In Progress"));
        assert_eq!(attempts_in_budget(&retried, Some("In Progress")), 2);
        assert_eq!(attempts_in_budget(&retried, None), 2);
        assert_eq!(
            attempts_in_budget(&used(RunStatus::Failed, 1, None), Some("Todo")),
            1
        );
        assert_eq!(
            attempts_in_budget(&used(RunStatus::Running, 1, None), Some("Todo")),
            1
        );
    }

    #[test]
    fn a_handoff_a_human_outcome_or_a_move_starts_a_new_episode() {
        for ended in [
            RunStatus::Handoff,
            RunStatus::HumanRequired,
            RunStatus::Stalled,
        ] {
            assert_eq!(attempts_in_budget(&used(ended, 2, None), Some("Todo")), 0);
        }
        let retried = used(RunStatus::RetryScheduled, 2, Some("In Progress"));
        assert_eq!(
            attempts_in_budget(&retried, Some("todo")),
            0,
            "a person moved it back"
        );
        assert_eq!(attempts_in_budget(&retried, Some("in progress")), 2);
    }
}
