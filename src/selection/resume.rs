//! The rules for issues Maestro already works on or worked on: where a state puts a running
//! lane ([`standing`]), whether a chosen issue may still run ([`runnable`]), whether an
//! in-progress issue is left for another try ([`recovery`]), whether a due retry still runs
//! ([`retry_due`]) and whether bookkeeping lets a claim go ahead ([`claimable`]).
//!
//! Pure functions like the fresh-work rules beside them: the issue, the WORKFLOW.md policy and
//! the bookkeeping come in as plain data (`claims` and the callers read the files and probe the
//! locks), a [`Reason`] or [`Hold`] comes out.

use std::collections::BTreeMap;

use super::{Hold, Reason, check};
use crate::tracker::Issue;
use crate::workflow::TrackerPolicy;
use crate::workspace::record::{IssueState, RunStatus};

/// Where an issue's state puts the lane working on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Startable or in progress: the lane goes on.
    Active,
    /// Terminal: the lane stops and is removed.
    Terminal,
    /// Neither: a person moved the issue on; the lane stops and is kept.
    Inactive,
}

/// Where `state` puts a running lane. Terminal wins over startable, so a policy built by hand
/// with a state in both can never keep a finished issue running.
pub fn standing(policy: &TrackerPolicy, state: &str) -> Standing {
    if policy.is_terminal(state) {
        Standing::Terminal
    } else if policy.is_startable(state) || policy.is_in_progress(state) {
        Standing::Active
    } else {
        Standing::Inactive
    }
}

/// An issue's bookkeeping as the rules read it: the file, and whether the process it names
/// still runs (pid and start time — the one fact that needs a look at `/proc`).
#[derive(Debug, Clone, Copy)]
pub struct Bookkeeping<'a> {
    pub state: &'a IssueState,
    pub owner_alive: bool,
}

/// Whether an issue chosen earlier (the daemon's target, the lane's refresh before the agent
/// starts) may still run: a startable issue by rules 1–6, an in-progress one by the project
/// and label rules (its lane is Maestro's own work in progress).
pub fn runnable(issue: &Issue, policy: &TrackerPolicy, project_slug: &str) -> Result<(), Reason> {
    if policy.is_in_progress(&issue.state.name) {
        in_project(issue, project_slug)?;
        return labels(issue, policy);
    }
    check(issue, policy, project_slug, &BTreeMap::new())
}

/// Whether a review repair (docs/spec/review.md) may work on `issue`: in the project, still in
/// `success_state` where the handoff left it (a person who moved it on takes the lane back),
/// without the opt-out or needs-attention label. A repair has its own budget, `[review]
/// max_repairs`, kept in the lane's review record; it never counts against `max_attempts`.
pub fn repairable(issue: &Issue, policy: &TrackerPolicy, project_slug: &str) -> Result<(), Reason> {
    in_project(issue, project_slug)?;
    let state = &issue.state.name;
    if policy.is_terminal(state) {
        return Err(Reason::Terminal {
            state: state.clone(),
        });
    }
    if !crate::workflow::same_state(state, &policy.success_state) {
        return Err(Reason::NotInReview {
            state: state.clone(),
        });
    }
    labels(issue, policy)
}

/// An in-progress issue to pick up again before fresh work: not held, in the project, without
/// the opt-out or needs-attention label, and left for another try — its bookkeeping says the
/// last attempt was retried, interrupted, failed, or died while running (no guard, no live
/// process); or it has a lane on disk but no bookkeeping (claimed by a run whose state is gone).
pub fn recovery(
    issue: &Issue,
    policy: &TrackerPolicy,
    project_slug: &str,
    held: &BTreeMap<String, Hold>,
    bookkeeping: Option<Bookkeeping<'_>>,
    lane_on_disk: bool,
) -> bool {
    if !policy.is_in_progress(&issue.state.name)
        || held.contains_key(&issue.id)
        || in_project(issue, project_slug).is_err()
        || labels(issue, policy).is_err()
    {
        return false;
    }
    match bookkeeping {
        Some(Bookkeeping { state, owner_alive }) => {
            state.guard.is_none()
                && !owner_alive
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
        None => lane_on_disk,
    }
}

/// Whether the daemon's due retry for `issue` still runs: the issue is in the project,
/// startable or in progress (not terminal), without the opt-out or needs-attention label, and
/// its bookkeeping still wants it: no guard marker, and no outcome that ended the episode
/// recorded since. `follows_a_run` is false for a retry queued without a run (its child ended
/// before recording anything): only a guard stops that one.
pub fn retry_due(
    issue: &Issue,
    policy: &TrackerPolicy,
    project_slug: &str,
    bookkeeping: Option<&IssueState>,
    follows_a_run: bool,
) -> Result<(), Reason> {
    in_project(issue, project_slug)?;
    match standing(policy, &issue.state.name) {
        Standing::Active => {}
        Standing::Terminal => {
            return Err(Reason::Terminal {
                state: issue.state.name.clone(),
            });
        }
        Standing::Inactive => {
            return Err(Reason::Inactive {
                state: issue.state.name.clone(),
            });
        }
    }
    labels(issue, policy)?;
    let Some(state) = bookkeeping else {
        return Ok(());
    };
    if let Some(guard) = &state.guard {
        return Err(Reason::Held(Hold::Guard {
            reason: guard.reason.clone(),
        }));
    }
    match state.last_status {
        Some(status @ (RunStatus::HumanRequired | RunStatus::Stalled | RunStatus::Handoff))
            if follows_a_run =>
        {
            Err(Reason::EpisodeEnded {
                run_id: state.last_run_id.clone(),
                status,
            })
        }
        _ => Ok(()),
    }
}

/// Whether an issue's bookkeeping lets a claim go ahead: an attempt running in a live process
/// other than the claimant (`other_owner_alive`) holds it, and a guard stops automatic work
/// whoever asks (a retry queued before the guard was written included).
pub fn claimable(state: &IssueState, other_owner_alive: bool) -> Result<(), Hold> {
    if other_owner_alive {
        return Err(Hold::Running {
            run_id: state.last_run_id.clone(),
            pid: state.owner.map_or(0, |owner| owner.pid),
        });
    }
    if let Some(guard) = &state.guard {
        return Err(Hold::Guard {
            reason: guard.reason.clone(),
        });
    }
    Ok(())
}

/// What becomes of a lane kept on disk after its attempts (docs/spec/daemon.md, "Terminal
/// lanes"), from its issue's state (`None`: the tracker did not show it) and what works in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneFate {
    /// Its issue is not known terminal: the lane stays (a terminal mark it carries is
    /// forgotten when the issue is visible again and not terminal).
    Stays { visible: bool },
    /// Terminal, and nothing works in it: removed (`before_remove` first, and only a lane
    /// Maestro can prove it created).
    Remove { state: String },
    /// Terminal, but a process still works in it: removed once it is done.
    Wait { state: String, why: String },
    /// An open review record names it: the post-review lifecycle removes it in its cleanup
    /// (or keeps it for a person), never this rule.
    Lifecycle,
}

/// The fate of a retained lane: `state` is its issue's state as last read, `worked_by` what
/// works in it now, `review_open` whether the post-review lifecycle holds it.
pub fn lane_fate(
    policy: &TrackerPolicy,
    state: Option<&str>,
    worked_by: Option<&str>,
    review_open: bool,
) -> LaneFate {
    if review_open {
        return LaneFate::Lifecycle;
    }
    let Some(state) = state else {
        return LaneFate::Stays { visible: false };
    };
    if standing(policy, state) != Standing::Terminal {
        return LaneFate::Stays { visible: true };
    }
    match worked_by {
        Some(why) => LaneFate::Wait {
            state: state.to_string(),
            why: why.to_string(),
        },
        None => LaneFate::Remove {
            state: state.to_string(),
        },
    }
}

/// Rule 1: the configured project.
pub(super) fn in_project(issue: &Issue, project_slug: &str) -> Result<(), Reason> {
    if issue.project_slug.as_deref() == Some(project_slug) {
        Ok(())
    } else {
        Err(Reason::OtherProject {
            project: issue.project_slug.clone(),
        })
    }
}

/// Rules 4 and 5: the opt-out and needs-attention labels.
pub(super) fn labels(issue: &Issue, policy: &TrackerPolicy) -> Result<(), Reason> {
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
    Ok(())
}
