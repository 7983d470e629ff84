//! Claims from local state: the facts the eligibility rules need, read from `.maestro/`.
//!
//! The rules live in [`crate::selection`] and are pure; this module gathers their inputs: held
//! leases (another process is working the issue), bookkeeping naming a live process, guard
//! markers (automatic reselection stopped), queued retries (the daemon owns the issue until it
//! redispatches or releases it), busy slot files, per-issue attempts used, and the bookkeeping
//! and lanes recovery is judged from, and the lanes kept on disk with who works in them (for
//! the terminal-lane rule). The dry run, the live run and the daemon all call
//! [`gather`] and [`recovery_candidate`], so they judge issues the same way. It decides nothing
//! itself: each fact becomes a [`Hold`] or a count, and selection says what it means.
//!
//! An attempt is alive when its lease is held, or when its bookkeeping names a process that is
//! still running (pid and start time): the agent can delete lease files, it cannot bring back a
//! process.

use std::collections::{BTreeMap, HashMap};

use crate::review::ReviewRecord;
use crate::selection::{self, Bookkeeping, Claims, Hold, Slots};
use crate::tracker::Issue;
use crate::workflow::{Execution, TrackerPolicy};
use crate::workspace::record::{self, IssueRef, IssueState, TerminalLane};
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
    let mut claims = Claims {
        held: BTreeMap::new(),
        slots: Slots::all_free(execution),
    };
    let mut leased = Vec::new();
    let mut problems = Vec::new();

    let leases = lock::held_leases(layout).unwrap_or_else(|error| {
        problems.push(error.to_string());
        Vec::new()
    });
    for (_, owner) in leases {
        claims.hold(
            &owner.issue_id,
            Hold::Leased {
                run_id: owner.run_id,
                pid: owner.pid,
            },
        );
        leased.push(owner.issue_id);
    }

    let bookkeeping = record::list_issue_states(layout);
    problems.extend(bookkeeping.errors.iter().map(ToString::to_string));
    let mut prior_attempts = HashMap::new();
    for state in &bookkeeping.items {
        if state.owner_alive() && !leased.contains(&state.issue_id) {
            // The lease file is gone or was replaced, but the attempt's process still runs.
            claims.hold(
                &state.issue_id,
                Hold::Running {
                    run_id: state.last_run_id.clone(),
                    pid: state.owner.map_or(0, |owner| owner.pid),
                },
            );
            leased.push(state.issue_id.clone());
        }
        if let Some(guard) = &state.guard {
            claims.hold(
                &state.issue_id,
                Hold::Guard {
                    reason: guard.reason.clone(),
                },
            );
        }
        let current = issues
            .iter()
            .find(|issue| issue.id == state.issue_id)
            .map(|issue| issue.state.name.as_str());
        prior_attempts.insert(
            state.issue_id.clone(),
            selection::attempts_in_budget(state, current),
        );
    }

    if include_retry_queue {
        match retry_queue::load(layout) {
            Ok(queue) => {
                for entry in queue.entries {
                    claims.hold(
                        &entry.issue_id,
                        Hold::QueuedRetry {
                            attempt: entry.attempt,
                            due_at: entry.due_at,
                        },
                    );
                }
            }
            Err(error) => problems.push(error.to_string()),
        }
    }

    let busy = (0..execution.max_concurrent_agents as usize)
        .filter(|index| lock::slot_is_held(layout, *index).unwrap_or(false))
        .count();
    let slots = &mut claims.slots;
    slots.free = slots
        .limit
        .saturating_sub(u32::try_from(busy).unwrap_or(u32::MAX));
    for issue in issues.iter().filter(|issue| leased.contains(&issue.id)) {
        slots.charge_state(&issue.state.name);
    }
    LocalClaims {
        claims,
        prior_attempts,
        leased,
        problems,
    }
}

/// What the disk says about an issue a recovery decision needs: its bookkeeping (found by
/// issue id), whether the process that bookkeeping names still runs, and whether it has a lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryFacts {
    pub state: Option<IssueState>,
    pub owner_alive: bool,
    pub lane_on_disk: bool,
}

impl RecoveryFacts {
    /// The bookkeeping as [`selection::recovery`] reads it.
    pub fn bookkeeping(&self) -> Option<Bookkeeping<'_>> {
        self.state.as_ref().map(|state| Bookkeeping {
            state,
            owner_alive: self.owner_alive,
        })
    }
}

/// Reads `issue`'s recovery facts. Only an in-progress issue can be a recovery candidate, so
/// any other gets empty facts without a look at the disk.
pub fn recovery_facts(layout: &Layout, policy: &TrackerPolicy, issue: &Issue) -> RecoveryFacts {
    if !policy.is_in_progress(&issue.state.name) {
        return RecoveryFacts::default();
    }
    let issue_ref = IssueRef {
        id: &issue.id,
        identifier: &issue.identifier,
    };
    // An unreadable file is reported by [`gather`] (its problems); here it reads as none.
    let state = record::find_issue_state(layout, issue_ref).ok().flatten();
    let owner_alive = state.as_ref().is_some_and(IssueState::owner_alive);
    let lane_on_disk = state.is_none()
        && layout
            .lane_dir(&crate::workspace::lane::lane_key(&issue.identifier))
            .is_dir();
    RecoveryFacts {
        state,
        owner_alive,
        lane_on_disk,
    }
}

/// Whether `issue` is a recovery candidate ([`selection::recovery`]), judged from its
/// [`recovery_facts`]. The live run and the dry run ask through here; the daemon reads the
/// facts with its snapshot and asks selection itself.
pub fn recovery_candidate(
    layout: &Layout,
    policy: &TrackerPolicy,
    project_slug: &str,
    issue: &Issue,
    held: &BTreeMap<String, Hold>,
) -> bool {
    // The rules that need no file first: most candidates fail them.
    if !selection::recovery(issue, policy, project_slug, held, None, true) {
        return false;
    }
    let facts = recovery_facts(layout, policy, issue);
    selection::recovery(
        issue,
        policy,
        project_slug,
        held,
        facts.bookkeeping(),
        facts.lane_on_disk,
    )
}

/// A lane kept on disk after its attempts, with what the terminal-lane rule
/// ([`selection::lane_fate`]) needs from local state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedLane {
    pub issue_id: String,
    pub identifier: String,
    pub lane_key: String,
    /// What works in it now, if anything: the holder of its lease, the process its bookkeeping
    /// names, or whoever holds the lane directory's lock.
    pub worked_by: Option<String>,
    /// An open review record names it (an unreadable one counts as open): the post-review
    /// lifecycle's lane.
    pub review_open: bool,
    /// The terminal mark its bookkeeping carries.
    pub mark: Option<TerminalLane>,
}

/// Whether some ssh host holds lane `key`, by the creation markers the controller keeps
/// (`.maestro/hosts/<host>/lanes/<key>.json`, `[worker]`): such a lane is retained like a local
/// one, and removed on its host.
fn on_a_host(layout: &Layout, key: &str) -> bool {
    let Ok(hosts) = std::fs::read_dir(layout.hosts_dir()) else {
        return false;
    };
    hosts.flatten().any(|host| {
        host.file_name()
            .to_str()
            .is_some_and(|host_key| layout.remote_lane_marker_file(host_key, key).exists())
    })
}

/// Every lane directory on disk that an issue's bookkeeping names, with who works in it.
pub fn retained_lanes(layout: &Layout) -> Vec<RetainedLane> {
    record::list_issue_states(layout)
        .items
        .into_iter()
        .filter(|state| {
            !state.issue_id.is_empty()
                && (layout.lane_dir(&state.lane()).is_dir() || on_a_host(layout, &state.lane()))
        })
        .map(|state| {
            let lane_key = state.lane();
            let key = record::issue_key(&state.issue_id);
            let leased = [key.as_str(), lane_key.as_str()]
                .iter()
                .find_map(|key| lock::lease_holder(layout, key).ok().flatten());
            let worked_by = if let Some(owner) = leased {
                Some(format!(
                    "run {} (pid {}) holds its lease",
                    owner.run_id, owner.pid
                ))
            } else if state.owner_alive() {
                Some(format!(
                    "its attempt's process (pid {}) still runs",
                    state.owner.map_or(0, |owner| owner.pid)
                ))
            } else if lock::lane_is_locked(layout, &lane_key) {
                Some("a process holds the lane's lock".to_string())
            } else {
                None
            };
            let review_open = match ReviewRecord::load(layout, &key) {
                Ok(record) => record.is_some_and(|record| record.is_open()),
                Err(_) => true,
            };
            RetainedLane {
                issue_id: state.issue_id.clone(),
                identifier: state.issue_identifier.clone(),
                lane_key,
                worked_by,
                review_open,
                mark: state.terminal,
            }
        })
        .collect()
}
