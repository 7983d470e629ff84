//! The phase machine: from a lane's record, its issue's state and the PR's signals to one
//! [`Decision`] — the phase the lane is in now, the one action to take, why, and what it waits
//! for. Pure functions: no I/O, no clock, no GitHub; the caller reads, decides, records the
//! decision, then acts (docs/spec/review.md, "Executing a decision").
//!
//! The order of the rules is the contract: contradictions go to a human before anything else;
//! a merge is honoured before the issue's state is judged; a person's terminal state cancels
//! before Maestro would repair or merge; a head Maestro did not validate is never landed.

use crate::github::{self, MergeMethod, shown};
use crate::workflow::{MergeMode, ReviewPolicy};

use super::phase::Phase;
use super::record::{MergeFacts, RepairResult, ReviewRecord};
use super::signals::{CheckState, Feedback, FeedbackItem, Signals};

/// The issue's state in the tracker, as the lifecycle sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueState {
    /// In `success_state`, where the handoff left it.
    InReview,
    /// In a terminal state (named).
    Terminal(String),
    /// Any other state (named), or gone from the project.
    Elsewhere(String),
}

/// What the phase machine is told about a lane besides the PR's signals.
#[derive(Debug, Clone, Copy)]
pub struct LaneFacts<'a> {
    pub record: &'a ReviewRecord,
    pub issue: &'a IssueState,
    /// A repair child for this lane is alive (the daemon supervises it).
    pub repair_running: bool,
}

/// One step of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The phase to record.
    pub phase: Phase,
    pub action: Action,
    /// Why, in one line, for the record, the log and `status`.
    pub reason: String,
    /// What the lane waits for, e.g. `0/1 approvals, checks 2/3 green`; empty when it waits
    /// for nothing.
    pub waiting_for: String,
}

/// The one thing to do after recording a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the next read.
    Wait,
    /// Start repair `attempt` (1-based) with this feedback as its turn input.
    Repair {
        attempt: u32,
        feedback: Vec<Feedback>,
    },
    /// Merge the PR with `method`, pinned to `sha` (the validated head).
    Merge { sha: String, method: MergeMethod },
    /// Move the issue to `completed_state` (when `move_state`) and post the closeout comment
    /// (when `post_comment`).
    Closeout {
        merge: MergeFacts,
        move_state: bool,
        post_comment: bool,
    },
    /// Delete the remote branch (when `delete_branch`), then remove the lane (`before_remove`
    /// first) when `remove_lane`. Records are kept.
    Cleanup {
        delete_branch: bool,
        remove_lane: bool,
    },
    /// The needs-attention label and a comment that lists the open feedback.
    Human { open_feedback: Vec<Feedback> },
    /// Stop a running repair, remove the lane; the PR and its branch stay as they are.
    Cancel,
    /// Let go of the lane: it is kept, and ordinary eligibility decides what comes next.
    Release,
}

impl Decision {
    fn new(phase: Phase, action: Action, reason: impl Into<String>) -> Decision {
        Decision {
            phase,
            action,
            reason: reason.into(),
            waiting_for: String::new(),
        }
    }

    fn waiting(phase: Phase, reason: impl Into<String>, waiting_for: impl Into<String>) -> Self {
        Decision {
            waiting_for: waiting_for.into(),
            ..Decision::new(phase, Action::Wait, reason)
        }
    }

    /// The lane stays as the record says, doing nothing.
    fn hold(record: &ReviewRecord) -> Decision {
        Decision::waiting(record.phase, &record.reason, &record.waiting_for)
    }
}

/// The next step for a lane. `reading` is this tick's read of the PR's signals, `None` when
/// none was due ([`super::read_due`]); phases that do not read signals ignore it.
pub fn decide(
    policy: &ReviewPolicy,
    lane: &LaneFacts<'_>,
    reading: Option<&Result<Signals, github::Error>>,
) -> Decision {
    let record = lane.record;
    match record.phase {
        phase if phase.is_ending() => Decision::hold(record),
        Phase::DeliveryCloseout => closeout(lane),
        Phase::Cleanup => Decision::new(
            Phase::Cleanup,
            Action::Cleanup {
                delete_branch: policy.delete_branch && record.cleanup.branch.is_none(),
                remove_lane: !record.cleanup.lane_removed,
            },
            "closed out; cleaning up",
        ),
        _ => match reading {
            None => Decision::hold(record),
            Some(Err(error)) => read_failed(record, error),
            Some(Ok(signals)) => on_signals(policy, lane, signals),
        },
    }
}

fn closeout(lane: &LaneFacts<'_>) -> Decision {
    let record = lane.record;
    let Some(merge) = record.merge.clone() else {
        return human(
            "delivery_closeout without merge facts in the record; check the PR by hand",
            Vec::new(),
        );
    };
    // A state a person chose (a terminal one, or completed_state already) is never overwritten.
    let move_state = !record.closeout.state_moved && *lane.issue == IssueState::InReview;
    Decision::new(
        Phase::DeliveryCloseout,
        Action::Closeout {
            merge,
            move_state,
            post_comment: !record.closeout.comment_posted,
        },
        "merged; closing out",
    )
}

fn read_failed(record: &ReviewRecord, error: &github::Error) -> Decision {
    use github::Error as E;
    match error {
        E::NotFound { .. } | E::Redirected { .. } | E::Untrusted { .. } | E::TooMany { .. } => {
            human(format!("the PR cannot be read: {error}"), Vec::new())
        }
        E::Auth { .. } | E::MissingToken { .. } => Decision::waiting(
            record.phase,
            format!("GitHub read failed: {error}"),
            "a GitHub token that can read the PR",
        ),
        _ => Decision::waiting(
            record.phase,
            format!("GitHub read failed, reading again at the next poll: {error}"),
            &record.waiting_for,
        ),
    }
}

fn human(reason: impl Into<String>, open_feedback: Vec<Feedback>) -> Decision {
    Decision::new(Phase::Human, Action::Human { open_feedback }, reason)
}

fn short(sha: &str) -> String {
    shown(sha.get(..12).unwrap_or(sha))
}

fn on_signals(policy: &ReviewPolicy, lane: &LaneFacts<'_>, signals: &Signals) -> Decision {
    let record = lane.record;
    let pr = &signals.pr;
    let validated = &record.validated_head;
    // Contradictions first: a guess here could close out or merge the wrong thing.
    if pr.head_ref != record.branch {
        return human(
            format!(
                "contradictory signals: the PR's head branch is `{}`, not the lane branch `{}`",
                shown(&pr.head_ref),
                record.branch
            ),
            Vec::new(),
        );
    }
    if pr.merged {
        let problem = if pr.state == "open" {
            Some("GitHub says merged but the PR is still open".to_string())
        } else if pr.merge_commit_sha.as_deref().is_none_or(str::is_empty) {
            Some("GitHub says merged but names no merge commit".to_string())
        } else if pr.head_sha != *validated {
            Some(format!(
                "merged, but the merged head {} is not the validated head {}",
                short(&pr.head_sha),
                short(validated)
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            return human(format!("contradictory signals: {problem}"), Vec::new());
        }
        // Maestro asked GitHub to merge this very head: the merge is Maestro's (GitHub names the
        // token's account as `merged_by`). Otherwise a person merged.
        let by_maestro = record
            .merge_requested
            .as_ref()
            .is_some_and(|request| request.sha == *validated);
        let merge = MergeFacts {
            sha: pr.merge_commit_sha.clone().unwrap_or_default(),
            method: record
                .merge_requested
                .as_ref()
                .filter(|_| by_maestro)
                .map(|request| request.method),
            merged_by: pr.merged_by.clone(),
            by_maestro,
        };
        return Decision {
            phase: Phase::DeliveryCloseout,
            action: Action::Closeout {
                merge,
                move_state: *lane.issue == IssueState::InReview
                    || matches!(lane.issue, IssueState::Elsewhere(_)),
                post_comment: true,
            },
            reason: format!(
                "merged as {} by {}",
                short(pr.merge_commit_sha.as_deref().unwrap_or_default()),
                pr.merged_by.as_deref().map_or("maestro".to_string(), shown)
            ),
            waiting_for: String::new(),
        };
    }
    match lane.issue {
        IssueState::Terminal(state) => {
            return Decision::new(
                Phase::Cancelled,
                Action::Cancel,
                format!(
                    "the issue was moved to {} before the PR was merged",
                    shown(state)
                ),
            );
        }
        IssueState::Elsewhere(state) => {
            return Decision::new(
                Phase::Released,
                Action::Release,
                format!("the issue was moved out of review to {}", shown(state)),
            );
        }
        IssueState::InReview => {}
    }
    let all_feedback = signals.feedback(policy.require_checks);
    if pr.state != "open" {
        return human(
            format!("the PR was {} without a merge", shown(&pr.state)),
            all_feedback,
        );
    }
    if let Some(repair) = record
        .repairs
        .last()
        .filter(|repair| repair.result.is_none())
    {
        let reason = if lane.repair_running {
            format!(
                "repair {} of {} running{}",
                repair.attempt,
                policy.max_repairs,
                repair
                    .run_id
                    .as_ref()
                    .map_or(String::new(), |run| format!(" (run {run})"))
            )
        } else {
            format!(
                "repair {} has no recorded result yet; its outcome is recorded before anything else",
                repair.attempt
            )
        };
        return Decision::waiting(Phase::ReviewRepair, reason, "the repair to finish");
    }
    if pr.head_sha != *validated {
        return human(
            format!(
                "the PR head {} is not the head maestro validated ({}): someone pushed to the lane branch",
                short(&pr.head_sha),
                short(validated)
            ),
            all_feedback,
        );
    }
    let addressed = record.addressed();
    let fresh: Vec<Feedback> = all_feedback
        .iter()
        .filter(|feedback| !addressed.contains(&feedback.key.as_str()))
        .cloned()
        .collect();
    if !fresh.is_empty() {
        let used = record.repairs.len() as u32;
        let what = describe(&fresh);
        if !policy.repair {
            return human(
                format!("actionable feedback ({what}) and [review] repair = false"),
                all_feedback,
            );
        }
        if used >= policy.max_repairs {
            return human(
                format!(
                    "actionable feedback ({what}) after {used} of {} repairs",
                    policy.max_repairs
                ),
                all_feedback,
            );
        }
        return Decision::new(
            Phase::ReviewRepair,
            Action::Repair {
                attempt: used + 1,
                feedback: fresh,
            },
            format!("repair {} of {}: {what}", used + 1, policy.max_repairs),
        );
    }
    let waiting_for = progress(policy, record, signals);
    if ready(policy, signals) {
        return match policy.merge {
            MergeMode::Auto => Decision {
                phase: Phase::ReadyToLand,
                action: Action::Merge {
                    sha: validated.clone(),
                    method: policy.merge_method,
                },
                reason: format!("ready to land: {waiting_for}"),
                waiting_for: String::new(),
            },
            MergeMode::Manual => Decision::waiting(
                Phase::Landing,
                format!("ready to land: {waiting_for}"),
                "a person to merge the PR (merge = \"manual\")",
            ),
        };
    }
    let reason = match record.phase {
        Phase::ReadyToLand | Phase::Landing => "no longer ready to land",
        _ => "not ready to land",
    };
    Decision::waiting(Phase::ReviewWait, reason, waiting_for)
}

/// Every landing condition but the validated head (checked before): enough approvals and no
/// outstanding change request, green checks when required, clean, not a draft.
fn ready(policy: &ReviewPolicy, signals: &Signals) -> bool {
    let approved = signals.approvals.len() >= policy.required_approvals as usize
        && signals.change_requests.is_empty();
    let checks = !policy.require_checks
        || (!signals.checks.is_empty()
            && signals.checks_in(CheckState::Green) == signals.checks.len());
    // `has_hooks` is GitHub Enterprise Server's `clean` for a repository with pre-receive hooks.
    let clean = matches!(signals.pr.mergeable_state.as_str(), "clean" | "has_hooks")
        && signals.pr.mergeable == Some(true);
    approved && checks && clean && !signals.pr.draft
}

/// What the lane waits for: `0/1 approvals, checks 2/3 green`, then whatever else holds it.
fn progress(policy: &ReviewPolicy, record: &ReviewRecord, signals: &Signals) -> String {
    let mut parts = vec![format!(
        "{}/{} approvals",
        signals.approvals.len(),
        policy.required_approvals
    )];
    if !signals.change_requests.is_empty() {
        let who: Vec<String> = signals
            .change_requests
            .iter()
            .map(|request| shown(&request.reviewer))
            .collect();
        parts.push(format!(
            "changes requested by {} (addressed by repair {}; waiting for a re-review)",
            who.join(", "),
            record.repairs.len()
        ));
    }
    if policy.require_checks {
        if signals.checks.is_empty() {
            parts.push("no checks on the head yet".into());
        } else {
            parts.push(format!(
                "checks {}/{} green",
                signals.checks_in(CheckState::Green),
                signals.checks.len()
            ));
        }
    } else {
        parts.push("checks not required".into());
    }
    let pr = &signals.pr;
    if pr.draft {
        parts.push("the PR is a draft".into());
    }
    match (pr.mergeable, pr.mergeable_state.as_str()) {
        (Some(true), "clean" | "has_hooks") => {}
        (None, _) | (_, "unknown") => parts.push("GitHub is computing mergeability".into()),
        (_, state) => parts.push(format!("mergeable_state {}", shown(state))),
    }
    if !signals.threads.is_empty() {
        parts.push(format!("{} unresolved threads", signals.threads.len()));
    }
    parts.join(", ")
}

/// `a change request by alice, 2 unresolved threads, failing check ci`.
pub(super) fn describe(feedback: &[Feedback]) -> String {
    let mut requests = Vec::new();
    let mut threads = 0;
    let mut checks = Vec::new();
    let mut conflict = false;
    for item in feedback {
        match &item.item {
            FeedbackItem::ChangeRequest(request) => requests.push(shown(&request.reviewer)),
            FeedbackItem::Thread(_) => threads += 1,
            FeedbackItem::FailingCheck(check) => checks.push(shown(&check.name)),
            FeedbackItem::Conflict => conflict = true,
        }
    }
    let mut parts = Vec::new();
    if !requests.is_empty() {
        parts.push(format!("changes requested by {}", requests.join(", ")));
    }
    match threads {
        0 => {}
        1 => parts.push("1 unresolved thread".into()),
        n => parts.push(format!("{n} unresolved threads")),
    }
    if !checks.is_empty() {
        parts.push(format!("failing checks {}", checks.join(", ")));
    }
    if conflict {
        parts.push("conflicts with the base branch".into());
    }
    parts.join(", ")
}

/// What a merge request's answer means. `Ok` is the merge commit; a 405 or 409 returns the
/// lane to `review_wait` with the reason; a transient failure stays in `landing` (the next read
/// shows whether GitHub merged after all, or the merge is asked again).
pub fn after_merge(
    policy: &ReviewPolicy,
    record: &ReviewRecord,
    result: &Result<github::Merged, github::Error>,
) -> Decision {
    match result {
        Ok(merged) => Decision::new(
            Phase::DeliveryCloseout,
            Action::Closeout {
                merge: MergeFacts {
                    sha: merged.sha.clone(),
                    method: Some(policy.merge_method),
                    merged_by: None,
                    by_maestro: true,
                },
                move_state: true,
                post_comment: true,
            },
            format!(
                "merged by maestro ({}) as {}",
                policy.merge_method.as_str(),
                short(&merged.sha)
            ),
        ),
        Err(error @ (github::Error::NotMergeable { .. } | github::Error::HeadMoved { .. })) => {
            Decision::waiting(
                Phase::ReviewWait,
                format!("merge refused: {error}"),
                &record.waiting_for,
            )
        }
        Err(error @ github::Error::NotFound { .. }) => {
            human(format!("the merge failed: {error}"), Vec::new())
        }
        Err(error) => Decision::waiting(
            Phase::Landing,
            format!("the merge request failed, the next read decides again: {error}"),
            "the next read of the PR",
        ),
    }
}

/// What a finished repair means: a pushed and validated head is re-checked in `review_wait`;
/// a repair that pushed nothing or failed validation is a failed attempt whose feedback is open
/// again, so the next read repairs again or, with no repair left, takes the human path with the
/// open feedback listed.
pub fn after_repair(
    policy: &ReviewPolicy,
    record: &ReviewRecord,
    result: &RepairResult,
) -> Decision {
    let used = record.repairs.len() as u32;
    match result {
        RepairResult::Pushed { head } => Decision::waiting(
            Phase::ReviewWait,
            format!(
                "repair {used} pushed {}; checking the PR again",
                short(head)
            ),
            "the next read of the PR",
        ),
        RepairResult::Failed { reason } => Decision::waiting(
            Phase::ReviewWait,
            format!(
                "repair {used} of {} failed ({}); its feedback is open again",
                policy.max_repairs,
                shown(reason)
            ),
            "the next read of the PR",
        ),
    }
}
