//! Eligibility and dispatch order: which issues may run now, in what order, and for every
//! other issue the first rule it fails.
//!
//! Pure functions over plain data: normalized [`Issue`]s, the WORKFLOW.md tracker policy, and
//! [`Claims`] (issues already held elsewhere, free dispatch slots). It does no I/O and knows
//! no tracker: leases and slot accounting are computed by their owners and passed in, so the
//! dry run and the live run apply exactly the same rules.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use crate::tracker::Issue;
use crate::workflow::{Execution, TrackerPolicy, same_state};

/// What is already taken, as plain data from whoever tracks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Issue id → why it is held, e.g. `leased by run 20260105-0912-ab12`.
    pub held: BTreeMap<String, String>,
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
}

impl Claims {
    /// Nothing held, every slot free.
    pub fn unclaimed(execution: &Execution) -> Claims {
        Claims {
            held: BTreeMap::new(),
            slots: Slots::all_free(execution),
        }
    }
}

/// The eligibility rules, in the order they are checked.
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
}

impl Rule {
    /// Every rule in checking order.
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
    Held {
        reason: String,
    },
    /// No slot left; `state` names the per-state cap when that is what ran out.
    NoSlot {
        limit: u32,
        state: Option<String>,
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
            Reason::Held { .. } => Rule::Held,
            Reason::NoSlot { .. } => Rule::Slot,
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
            Reason::Held { reason } => write!(f, "{reason}"),
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
    let mut free = claims.slots.free;
    let mut free_by_state = claims.slots.by_state.clone();
    let candidates = issues
        .into_iter()
        .map(|issue| {
            let verdict = check(&issue, policy, project_slug, &claims.held).and_then(|()| {
                take_slot(
                    &issue.state.name,
                    claims.slots.limit,
                    &mut free,
                    &mut free_by_state,
                )
            });
            Candidate { issue, verdict }
        })
        .collect();
    Selection { candidates }
}

/// Every rule except the slot rule, first failure wins. The live run calls this on a freshly
/// refreshed issue right before claiming it.
pub fn check(
    issue: &Issue,
    policy: &TrackerPolicy,
    project_slug: &str,
    held: &BTreeMap<String, String>,
) -> Result<(), Reason> {
    if issue.project_slug.as_deref() != Some(project_slug) {
        return Err(Reason::OtherProject {
            project: issue.project_slug.clone(),
        });
    }
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
    if issue.has_label(&policy.opt_out_label) {
        return Err(Reason::OptOut {
            label: policy.opt_out_label.clone(),
        });
    }
    if issue.has_label(&policy.needs_attention_label) {
        return Err(Reason::NeedsAttention {
            label: policy.needs_attention_label.clone(),
        });
    }
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
    if let Some(reason) = held.get(&issue.id) {
        return Err(Reason::Held {
            reason: reason.clone(),
        });
    }
    Ok(())
}

/// A blocker no longer blocks once its state is terminal by WORKFLOW.md's names, or by type:
/// blockers may live in other teams whose finished states have other names.
fn is_finished(policy: &TrackerPolicy, state: &str, kind: &str) -> bool {
    policy.is_terminal(state) || matches!(kind, "completed" | "canceled" | "duplicate")
}

fn take_slot(
    state: &str,
    limit: u32,
    free: &mut u32,
    free_by_state: &mut [StateSlots],
) -> Result<(), Reason> {
    if *free == 0 {
        return Err(Reason::NoSlot { limit, state: None });
    }
    if let Some(cap) = free_by_state
        .iter_mut()
        .find(|cap| same_state(&cap.state, state))
    {
        if cap.free == 0 {
            return Err(Reason::NoSlot {
                limit: cap.limit,
                state: Some(cap.state.clone()),
            });
        }
        cap.free -= 1;
    }
    *free -= 1;
    Ok(())
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
