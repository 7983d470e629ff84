//! Eligibility and dispatch order: which issues may run now, in what order, and for every
//! other issue the first rule it fails. The one home of every rule that decides whether
//! Maestro works an issue: fresh work (here), issues it already worked on (`resume.rs`:
//! recovery, due retries, a running lane's standing, a claim's bookkeeping check) and the
//! attempt budget (`budget.rs`). `reason.rs` names and renders the answers.
//!
//! Pure functions over plain data: normalized [`Issue`]s, the WORKFLOW.md tracker policy,
//! [`Claims`] (issues Maestro holds, free dispatch slots) and bookkeeping. It does no I/O and
//! knows no tracker: leases, processes and slot files are probed by their owners (`claims`,
//! `run::claim`, the daemon) and passed in, so the dry run, the live run, the daemon and
//! `status` judge issues the same way and say why in the same words.

mod budget;
mod reason;
mod resume;

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::tracker::Issue;
use crate::workflow::{Execution, TrackerPolicy, same_state};

pub use budget::{NextAttempt, attempts_in_budget, next_attempt, within_budget};
pub use reason::{Hold, Reason, Rule};
pub use resume::{
    Bookkeeping, LaneFate, Standing, claimable, lane_fate, recovery, repairable, retry_due,
    runnable, standing,
};

/// What is already taken, as plain data from whoever tracks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Issue id → why Maestro holds it (see [`Claims::hold`]).
    pub held: BTreeMap<String, Hold>,
    pub slots: Slots,
}

/// Dispatch slots: the global cap and any per-state caps, with how many are free now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    /// `execution.max_concurrent_agents`.
    pub limit: u32,
    /// Global slots free now.
    pub free: u32,
    /// Per-state caps from `execution.max_concurrent_agents_by_state`.
    pub by_state: Vec<StateSlots>,
}

/// A per-state cap and how much of it is free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSlots {
    pub state: String,
    pub limit: u32,
    pub free: u32,
}

impl Slots {
    /// Every slot free: what a process that holds no leases sees.
    pub fn all_free(execution: &Execution) -> Slots {
        Slots {
            limit: execution.max_concurrent_agents,
            free: execution.max_concurrent_agents,
            by_state: execution
                .max_concurrent_agents_by_state
                .iter()
                .map(|(state, limit)| StateSlots {
                    state: state.clone(),
                    limit: *limit,
                    free: *limit,
                })
                .collect(),
        }
    }

    /// Takes one slot for an issue in `state`: a global one and, when `state` has a cap, one
    /// of that (rule 8).
    pub fn take(&mut self, state: &str) -> Result<(), Reason> {
        if self.free == 0 {
            return Err(Reason::NoSlot {
                limit: self.limit,
                state: None,
            });
        }
        self.state_allows(state)?;
        self.charge_state(state);
        self.free -= 1;
        Ok(())
    }

    /// Whether the per-state cap of `state` (if any) has room.
    pub fn state_allows(&self, state: &str) -> Result<(), Reason> {
        match self.cap(state) {
            Some(cap) if cap.free == 0 => Err(Reason::NoSlot {
                limit: cap.limit,
                state: Some(cap.state.clone()),
            }),
            _ => Ok(()),
        }
    }

    /// Charges the per-state cap of `state` (if any) for an issue being worked in it.
    pub fn charge_state(&mut self, state: &str) {
        if let Some(cap) = self
            .by_state
            .iter_mut()
            .find(|cap| same_state(&cap.state, state))
        {
            cap.free = cap.free.saturating_sub(1);
        }
    }

    fn cap(&self, state: &str) -> Option<&StateSlots> {
        self.by_state
            .iter()
            .find(|cap| same_state(&cap.state, state))
    }
}

impl Claims {
    /// Nothing held, every slot free.
    pub fn unclaimed(execution: &Execution) -> Claims {
        Claims {
            held: BTreeMap::new(),
            slots: Slots::all_free(execution),
        }
    }

    /// Records that Maestro holds `issue_id`. When several holds apply, the one reported is
    /// the first by [`Hold::rank`] (a lease before a live process, a guard, a queued retry).
    pub fn hold(&mut self, issue_id: &str, hold: Hold) {
        match self.held.get(issue_id) {
            Some(have) if have.rank() <= hold.rank() => {}
            _ => {
                self.held.insert(issue_id.to_string(), hold);
            }
        }
    }
}

/// One issue with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub issue: Issue,
    /// `Ok(())` when the issue may run now (it holds a slot in this pass).
    pub verdict: Result<(), Reason>,
}

impl Candidate {
    pub fn is_eligible(&self) -> bool {
        self.verdict.is_ok()
    }
}

/// Every candidate in dispatch order, each with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub candidates: Vec<Candidate>,
}

impl Selection {
    /// The issue `run --once` would take: the first eligible one in dispatch order.
    pub fn selected(&self) -> Option<&Candidate> {
        self.candidates
            .iter()
            .find(|candidate| candidate.is_eligible())
    }

    /// Every eligible candidate, in order (as many as there were free slots at most).
    pub fn eligible(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates
            .iter()
            .filter(|candidate| candidate.is_eligible())
    }
}

/// Sorts `issues` into dispatch order and judges each one. Slots are handed out in that order,
/// so an issue that passes every other rule but comes after the free slots are gone gets
/// [`Reason::NoSlot`].
pub fn select(
    mut issues: Vec<Issue>,
    policy: &TrackerPolicy,
    project_slug: &str,
    claims: &Claims,
) -> Selection {
    issues.sort_by(dispatch_order);
    let mut slots = claims.slots.clone();
    let candidates = issues
        .into_iter()
        .map(|issue| {
            let verdict = check(&issue, policy, project_slug, &claims.held)
                .and_then(|()| slots.take(&issue.state.name));
            Candidate { issue, verdict }
        })
        .collect();
    Selection { candidates }
}

/// Rules 1–7 (every fresh-work rule except the slot rule), first failure wins.
pub fn check(
    issue: &Issue,
    policy: &TrackerPolicy,
    project_slug: &str,
    held: &BTreeMap<String, Hold>,
) -> Result<(), Reason> {
    resume::in_project(issue, project_slug)?;
    if !policy.is_startable(&issue.state.name) {
        return Err(Reason::NotStartable {
            state: issue.state.name.clone(),
        });
    }
    // Unreachable while WORKFLOW.md forbids a state that is both startable and terminal; kept
    // so a policy bug can never dispatch a finished issue.
    if policy.is_terminal(&issue.state.name) {
        return Err(Reason::Terminal {
            state: issue.state.name.clone(),
        });
    }
    resume::labels(issue, policy)?;
    let open_blockers: Vec<(String, String)> = issue
        .blockers
        .iter()
        .filter(|blocker| !is_finished(policy, &blocker.state.name, &blocker.state.kind))
        .map(|blocker| (blocker.identifier.clone(), blocker.state.name.clone()))
        .collect();
    if !open_blockers.is_empty() {
        return Err(Reason::BlockedBy {
            blockers: open_blockers,
        });
    }
    if let Some(hold) = held.get(&issue.id) {
        return Err(Reason::Held(hold.clone()));
    }
    Ok(())
}

/// A blocker no longer blocks once its state is terminal by WORKFLOW.md's names, or by type:
/// blockers may live in other teams whose finished states have other names.
fn is_finished(policy: &TrackerPolicy, state: &str, kind: &str) -> bool {
    policy.is_terminal(state) || matches!(kind, "completed" | "canceled" | "duplicate")
}

/// Dispatch order: priority 1 (urgent) to 4 (low), then no priority; then oldest created
/// first; then identifier, with the numeric part compared as a number (`ABC-9` < `ABC-10`).
pub fn dispatch_order(left: &Issue, right: &Issue) -> Ordering {
    let rank = |issue: &Issue| issue.priority.unwrap_or(u8::MAX);
    rank(left)
        .cmp(&rank(right))
        .then(left.created_ms.cmp(&right.created_ms))
        .then_with(|| identifier_order(&left.identifier, &right.identifier))
}

fn identifier_order(left: &str, right: &str) -> Ordering {
    let split = |identifier: &str| -> (String, Option<u64>) {
        match identifier.rsplit_once('-') {
            Some((prefix, number)) => match number.parse::<u64>() {
                Ok(number) => (prefix.to_string(), Some(number)),
                Err(_) => (identifier.to_string(), None),
            },
            None => (identifier.to_string(), None),
        }
    };
    let (left_prefix, left_number) = split(left);
    let (right_prefix, right_number) = split(right);
    left_prefix
        .cmp(&right_prefix)
        .then(left_number.cmp(&right_number))
        .then_with(|| left.cmp(right))
}

/// Priority as operators read it.
pub fn priority_name(priority: Option<u8>) -> &'static str {
    match priority {
        Some(1) => "urgent",
        Some(2) => "high",
        Some(3) => "medium",
        Some(4) => "low",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_compare_numerically() {
        assert_eq!(identifier_order("ABC-9", "ABC-10"), Ordering::Less);
        assert_eq!(identifier_order("ABC-10", "ABD-1"), Ordering::Less);
        assert_eq!(identifier_order("X", "X-1"), Ordering::Less);
    }

    #[test]
    fn reasons_read_like_the_issue_says() {
        let blocked = Reason::BlockedBy {
            blockers: vec![("ABC-12".into(), "In Progress".into())],
        };
        assert_eq!(blocked.to_string(), "blocked by ABC-12 (In Progress)");
        let label = Reason::NeedsAttention {
            label: "maestro:needs-attention".into(),
        };
        assert_eq!(label.to_string(), "label maestro:needs-attention");
        assert_eq!(label.rule().as_str(), "needs_attention");
    }
}
