//! One tick's decisions as a pure function: [`tick`] turns a [`Snapshot`] of what the tracker
//! and `.maestro/` said into the [`Action`]s the executor carries out.
//!
//! In order: reconcile running lanes (terminal → stop and remove, moved on → stop and keep),
//! stop stalled lanes, redispatch or release due retries, the post-review lanes' steps, then
//! fill free slots with recovery candidates and fresh eligible work, and last remove the
//! retained lanes of issues now terminal. Every rule is [`selection`]'s; this module only puts
//! them in the daemon's order and accounts for what the tick itself dispatches. It does no
//! I/O: a part of the snapshot the tracker could not give is `None`, and that step is skipped.

use std::collections::HashSet;
use std::time::Duration;

use super::action::{Action, ChildRef, Dispatch, Release, Sweep};
use super::children::StopReason;
use super::review::LaneView;
use crate::claims::{LocalClaims, RecoveryFacts, RetainedLane};
use crate::selection::{self, Hold, LaneFate, Standing};
use crate::tracker::Issue;
use crate::workflow::{Execution, ReviewPolicy, TrackerPolicy};
use crate::workspace::record::{IssueState, RetryEntry};

/// A supervised child as the tick sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildView {
    pub child: ChildRef,
    /// The daemon already asked it to stop.
    pub stopping: bool,
    /// Time since its lane last made progress (activity marker, else since it started).
    pub idle: Duration,
    /// Its marker says it is writing its outcome (or has): the state it writes (`success_state`,
    /// `failure_state`) must not read as a person moving the issue away under it.
    pub writing_back: bool,
    /// A review repair: its issue is in review by design, so reconciliation leaves it to the
    /// lifecycle (which stops it when the issue is cancelled or moved on).
    pub repair: bool,
}

/// A retry whose due time has come, with what the tracker and the bookkeeping say now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRetry {
    pub entry: RetryEntry,
    /// `None`: the refresh did not return it (no longer visible in the project).
    pub issue: Option<Issue>,
    pub bookkeeping: Option<IssueState>,
}

/// The candidates listed for new work, with the local claims and recovery facts.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub issues: Vec<Issue>,
    pub local: LocalClaims,
    /// Recovery facts of each listed issue, by position in `issues`.
    pub recovery: Vec<RecoveryFacts>,
}

/// A lane kept on disk after its attempts, with its issue's state as the mirror says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedView {
    pub lane: RetainedLane,
    /// `None`: the tracker does not show the issue (its state is not known).
    pub state: Option<String>,
}

/// Everything one tick decides from.
#[derive(Debug)]
pub struct Snapshot<'a> {
    pub policy: &'a TrackerPolicy,
    pub execution: &'a Execution,
    pub project_slug: &'a str,
    pub stall_timeout: Duration,
    pub children: Vec<ChildView>,
    /// The running lanes' issues, refreshed; `None` when there was nothing to refresh or the
    /// refresh failed (every child keeps running).
    pub running: Option<Vec<Issue>>,
    /// Due retries; `None` when their refresh failed (they wait for the next tick).
    pub due: Option<Vec<DueRetry>>,
    /// Every entry of the daemon's queue (it owns their issues, written to disk or not).
    pub queue: &'a [RetryEntry],
    /// `None` when listing the candidates failed.
    pub candidates: Option<Candidates>,
    pub review_policy: &'a ReviewPolicy,
    /// The open post-review lanes (docs/spec/review.md); `None` when the lifecycle is off or
    /// the mirror is not fresh (nothing is decided on it then).
    pub review: Option<Vec<LaneView>>,
    /// The lanes kept on disk with their issues' states; `None` when the mirror is not fresh or
    /// the read of their issues failed.
    pub lanes: Option<Vec<RetainedView>>,
}

/// The tick's actions, in the order they are carried out. Takes the snapshot: the review lanes
/// move into their steps.
pub fn tick(mut snapshot: Snapshot<'_>) -> Vec<Action> {
    let review = snapshot.review.take();
    let snapshot = &snapshot;
    let mut actions = Vec::new();
    let mut stopping: HashSet<&str> = snapshot
        .children
        .iter()
        .filter(|view| view.stopping)
        .map(|view| view.child.run_id.as_str())
        .collect();
    if let Some(fresh) = &snapshot.running {
        for view in &snapshot.children {
            if stopping.contains(view.child.run_id.as_str()) || view.writing_back || view.repair {
                continue;
            }
            if let Some((reason, why)) = reconcile(snapshot.policy, &view.child, fresh) {
                stopping.insert(&view.child.run_id);
                actions.push(Action::Stop {
                    child: view.child.clone(),
                    reason,
                    why,
                });
            }
        }
    }
    for view in &snapshot.children {
        if !stopping.contains(view.child.run_id.as_str()) && view.idle >= snapshot.stall_timeout {
            actions.push(Action::Stop {
                child: view.child.clone(),
                reason: StopReason::Stalled { idle: view.idle },
                why: format!("no progress for {} s", view.idle.as_secs()),
            });
        }
    }
    if let Some(due) = &snapshot.due {
        due_retries(snapshot, due, &mut actions);
    }
    if let Some(lanes) = review {
        actions.extend(super::review::plan(snapshot.review_policy, lanes));
    }
    if let Some(candidates) = &snapshot.candidates {
        new_work(snapshot, candidates, &mut actions);
    }
    if let Some(lanes) = &snapshot.lanes {
        actions.extend(terminal_lanes(snapshot.policy, lanes));
    }
    actions
}

/// The retained lanes of issues now terminal: removed when nothing works in them, else kept
/// saying why (once: an unchanged reason is not written again); a lane whose issue is back in
/// another state forgets its mark. A lane the post-review lifecycle holds is left to it.
fn terminal_lanes<'a>(
    policy: &'a TrackerPolicy,
    lanes: &'a [RetainedView],
) -> impl Iterator<Item = Action> + 'a {
    lanes.iter().filter_map(|view| {
        let lane = &view.lane;
        let fate = selection::lane_fate(
            policy,
            view.state.as_deref(),
            lane.worked_by.as_deref(),
            lane.review_open,
        );
        let sweep = match fate {
            LaneFate::Remove { state } => Sweep::Remove { state },
            LaneFate::Wait { state, why } => {
                let recorded = lane.mark.as_ref().is_some_and(|mark| {
                    mark.state == state && mark.kept.as_deref() == Some(why.as_str())
                });
                if recorded {
                    return None;
                }
                Sweep::Keep { state, why }
            }
            LaneFate::Stays { visible: true } if lane.mark.is_some() => Sweep::Forget,
            LaneFate::Stays { .. } | LaneFate::Lifecycle => return None,
        };
        Some(Action::SweepLane {
            lane: Box::new(lane.clone()),
            sweep,
        })
    })
}

/// Why a running lane must stop, if it must: its issue is gone, terminal or moved on.
fn reconcile(
    policy: &TrackerPolicy,
    child: &ChildRef,
    fresh: &[Issue],
) -> Option<(StopReason, String)> {
    let Some(issue) = fresh.iter().find(|issue| issue.id == child.issue_id) else {
        return Some((
            StopReason::Inactive,
            "the issue is no longer visible in the project".to_string(),
        ));
    };
    match selection::standing(policy, &issue.state.name) {
        Standing::Active => None,
        Standing::Terminal => Some((
            StopReason::Terminal,
            format!("issue is {}", issue.state.name),
        )),
        Standing::Inactive => Some((
            StopReason::Inactive,
            format!("issue moved to {}", issue.state.name),
        )),
    }
}

/// Due retries own their claim: redispatch those the rules still allow, release the rest.
fn due_retries(snapshot: &Snapshot<'_>, due: &[DueRetry], actions: &mut Vec<Action>) {
    for retry in due {
        let entry = &retry.entry;
        let release = |why: Release| Action::Release {
            issue_id: entry.issue_id.clone(),
            identifier: entry.issue_identifier.clone(),
            attempt: entry.attempt,
            why,
        };
        let Some(issue) = &retry.issue else {
            actions.push(release(Release::NotVisible));
            continue;
        };
        let verdict = selection::retry_due(
            issue,
            snapshot.policy,
            snapshot.project_slug,
            retry.bookkeeping.as_ref(),
            entry.last_run_id.is_some(),
        );
        match verdict {
            Err(reason) => actions.push(release(Release::Rule(reason))),
            // A lane of this issue is still running: the retry keeps its claim.
            Ok(())
                if snapshot
                    .children
                    .iter()
                    .any(|view| view.child.issue_id == issue.id) => {}
            Ok(()) => actions.push(Action::Dispatch {
                issue: Box::new(issue.clone()),
                attempt: entry.attempt,
                why: Dispatch::Retry,
            }),
        }
    }
}

/// Free slots to recovery candidates first, then fresh eligible work in dispatch order.
fn new_work(snapshot: &Snapshot<'_>, candidates: &Candidates, actions: &mut Vec<Action>) {
    let mut claims = candidates.local.claims.clone();
    let issues = &candidates.issues;
    let state_of = |issue_id: &str| {
        issues
            .iter()
            .find(|issue| issue.id == issue_id)
            .map(|issue| issue.state.name.clone())
    };
    // The daemon's own queue owns its issues even when the queue file could not be written (a
    // full disk): recovery must never run an issue whose retry is still waiting.
    for entry in snapshot.queue {
        claims.hold(
            &entry.issue_id,
            Hold::QueuedRetry {
                attempt: entry.attempt,
                due_at: entry.due_at.clone(),
            },
        );
    }
    // Children this daemon started may not hold their lease yet; they are taken all the same.
    for view in &snapshot.children {
        claims.hold(
            &view.child.issue_id,
            Hold::DaemonChild {
                run_id: view.child.run_id.clone(),
            },
        );
        if !candidates.local.leased.contains(&view.child.issue_id) {
            if let Some(state) = state_of(&view.child.issue_id) {
                claims.slots.charge_state(&state);
            }
        }
    }
    // A retry this tick dispatches holds a slot of its own (its queue entry holds the issue),
    // and so does a review repair it starts.
    for action in actions.iter() {
        if let Action::Dispatch { issue, .. } = action {
            claims.slots.free = claims.slots.free.saturating_sub(1);
            claims.slots.charge_state(&issue.state.name);
        }
    }
    claims.slots.free = claims
        .slots
        .free
        .saturating_sub(super::review::slots_taken(actions));
    let attempt_of = |issue: &Issue| {
        candidates
            .local
            .prior_attempts
            .get(&issue.id)
            .copied()
            .unwrap_or(0)
            + 1
    };
    let mut recovery: Vec<&Issue> = issues
        .iter()
        .zip(&candidates.recovery)
        .filter(|(issue, facts)| {
            selection::recovery(
                issue,
                snapshot.policy,
                snapshot.project_slug,
                &claims.held,
                facts.bookkeeping(),
                facts.lane_on_disk,
            )
        })
        .map(|(issue, _)| issue)
        .collect();
    recovery.sort_by(|left, right| selection::dispatch_order(left, right));
    for issue in recovery {
        if claims.slots.state_allows(&issue.state.name).is_err() {
            continue;
        }
        let attempt = attempt_of(issue);
        if selection::within_budget(attempt, snapshot.execution.max_attempts).is_err() {
            continue;
        }
        actions.push(Action::Dispatch {
            issue: Box::new(issue.clone()),
            attempt,
            why: Dispatch::Recovery,
        });
        claims.slots.charge_state(&issue.state.name);
        claims.slots.free = claims.slots.free.saturating_sub(1);
    }
    let selection = selection::select(
        issues.clone(),
        snapshot.policy,
        snapshot.project_slug,
        &claims,
    );
    for candidate in selection.eligible() {
        actions.push(Action::Dispatch {
            issue: Box::new(candidate.issue.clone()),
            attempt: attempt_of(&candidate.issue),
            why: Dispatch::Fresh,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::Claims;
    use crate::tracker::{IssueState as TrackerState, TeamRef};
    use crate::workflow::Workflow;
    use crate::workspace::record::{Guard, RetryKind, RunStatus};

    fn workflow(execution: &str) -> Workflow {
        let text = format!("+++\nversion = 1\n[execution]\n{execution}\n+++\nbody");
        crate::workflow::parse(
            std::path::Path::new("/w/WORKFLOW.md"),
            &text,
            std::path::Path::new("/w"),
        )
        .unwrap()
    }

    fn issue(identifier: &str, state: &str) -> Issue {
        Issue {
            id: format!("id-{identifier}"),
            identifier: identifier.into(),
            title: identifier.into(),
            description: String::new(),
            priority: Some(2),
            state: TrackerState {
                name: state.into(),
                kind: "unstarted".into(),
            },
            labels: Vec::new(),
            blockers: Vec::new(),
            url: None,
            branch_name: None,
            created_at: String::new(),
            created_ms: identifier.len() as u64,
            updated_at: String::new(),
            team: TeamRef {
                id: "t".into(),
                key: "ABC".into(),
            },
            project_slug: Some("proj".into()),
        }
    }

    fn child(identifier: &str, idle_s: u64) -> ChildView {
        ChildView {
            child: ChildRef {
                run_id: format!("run-{identifier}"),
                issue_id: format!("id-{identifier}"),
                identifier: identifier.into(),
                lane_key: identifier.into(),
                attempt: 1,
            },
            stopping: false,
            idle: Duration::from_secs(idle_s),
            writing_back: false,
            repair: false,
        }
    }

    fn entry(identifier: &str, last_run_id: Option<&str>) -> RetryEntry {
        RetryEntry {
            issue_id: format!("id-{identifier}"),
            issue_identifier: identifier.into(),
            lane_key: identifier.into(),
            attempt: 2,
            kind: RetryKind::Failure,
            due_at_ms: 0,
            due_at: "due".into(),
            last_error_class: None,
            last_run_id: last_run_id.map(str::to_string),
        }
    }

    fn candidates(workflow: &Workflow, issues: Vec<Issue>, free: u32) -> Candidates {
        let mut claims = Claims::unclaimed(&workflow.execution);
        claims.slots.free = free;
        let recovery = vec![RecoveryFacts::default(); issues.len()];
        Candidates {
            issues,
            local: LocalClaims {
                claims,
                ..LocalClaims::default()
            },
            recovery,
        }
    }

    fn snapshot<'a>(workflow: &'a Workflow, queue: &'a [RetryEntry]) -> Snapshot<'a> {
        Snapshot {
            policy: &workflow.tracker,
            execution: &workflow.execution,
            project_slug: "proj",
            stall_timeout: Duration::from_secs(300),
            children: Vec::new(),
            running: None,
            due: None,
            queue,
            candidates: None,
            review_policy: &workflow.review,
            review: None,
            lanes: None,
        }
    }

    /// The plan of a snapshot without review lanes (so the test keeps it to change and plan
    /// again).
    fn tick_of(snapshot: &Snapshot<'_>) -> Vec<Action> {
        tick(Snapshot {
            children: snapshot.children.clone(),
            running: snapshot.running.clone(),
            due: snapshot.due.clone(),
            candidates: snapshot.candidates.clone(),
            review: None,
            lanes: snapshot.lanes.clone(),
            ..*snapshot
        })
    }

    /// Each action in one short line, so a test states the whole plan.
    fn summary(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                Action::Stop { child, reason, why } => {
                    format!("stop {} {reason:?}: {why}", child.identifier)
                }
                Action::Dispatch {
                    issue,
                    attempt,
                    why,
                } => {
                    format!("dispatch {} attempt {attempt} ({why:?})", issue.identifier)
                }
                Action::Release {
                    identifier, why, ..
                } => {
                    format!("release {identifier}: {why}")
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn running_lanes_stop_when_their_issue_is_terminal_moved_or_gone() {
        let workflow = workflow("max_concurrent_agents = 5");
        let mut plan = snapshot(&workflow, &[]);
        plan.children = ["ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5"]
            .iter()
            .map(|id| child(id, 0))
            .collect();
        plan.children[4].stopping = true;
        plan.running = Some(vec![
            issue("ABC-1", "Done"),
            issue("ABC-2", "Backlog"),
            issue("ABC-4", "In Progress"),
            issue("ABC-5", "Done"),
        ]);
        assert_eq!(
            summary(&tick_of(&plan)),
            [
                "stop ABC-1 Terminal: issue is Done",
                "stop ABC-2 Inactive: issue moved to Backlog",
                "stop ABC-3 Inactive: the issue is no longer visible in the project",
            ],
            "ABC-4 goes on; ABC-5 is already stopping"
        );
        // A failed refresh stops nothing.
        plan.running = None;
        assert!(tick_of(&plan).is_empty());
    }

    #[test]
    fn a_lane_writing_its_own_outcome_is_never_reconciled_away() {
        // The child moved its issue to In Review itself (the handoff) and is finishing its
        // record: stopping it now would record `interrupted` over a handoff.
        let workflow = workflow("");
        let mut plan = snapshot(&workflow, &[]);
        plan.children = vec![child("ABC-1", 0), child("ABC-2", 0)];
        plan.children[0].writing_back = true;
        plan.running = Some(vec![
            issue("ABC-1", "In Review"),
            issue("ABC-2", "In Review"),
        ]);
        assert_eq!(
            summary(&tick_of(&plan)),
            ["stop ABC-2 Inactive: issue moved to In Review"]
        );
    }

    #[test]
    fn a_lane_without_progress_for_the_stall_timeout_is_stopped_once() {
        let workflow = workflow("");
        let mut plan = snapshot(&workflow, &[]);
        plan.children = vec![
            child("ABC-1", 300),
            child("ABC-2", 299),
            child("ABC-3", 900),
        ];
        plan.running = Some(vec![issue("ABC-1", "Todo"), issue("ABC-2", "Todo")]);
        assert_eq!(
            summary(&tick_of(&plan)),
            [
                "stop ABC-3 Inactive: the issue is no longer visible in the project",
                "stop ABC-1 Stalled { idle: 300s }: no progress for 300 s",
            ]
        );
    }

    #[test]
    fn a_due_retry_runs_while_wanted_and_is_released_otherwise() {
        let workflow = workflow("");
        let queue = [
            entry("ABC-1", Some("r1")),
            entry("ABC-2", Some("r2")),
            entry("ABC-3", Some("r3")),
            entry("ABC-4", Some("r4")),
            entry("ABC-5", Some("r5")),
        ];
        let mut plan = snapshot(&workflow, &queue);
        plan.children = vec![child("ABC-5", 0)];
        let guard = guarded();
        let due = |entry: &RetryEntry, issue: Option<Issue>, bookkeeping| DueRetry {
            entry: entry.clone(),
            issue,
            bookkeeping,
        };
        plan.due = Some(vec![
            due(&queue[0], Some(issue("ABC-1", "In Progress")), None),
            due(&queue[1], None, None),
            due(&queue[2], Some(issue("ABC-3", "Canceled")), None),
            due(&queue[3], Some(issue("ABC-4", "Todo")), Some(guard)),
            due(&queue[4], Some(issue("ABC-5", "Todo")), None),
        ]);
        assert_eq!(
            summary(&tick_of(&plan)),
            [
                "dispatch ABC-1 attempt 2 (Retry)",
                "release ABC-2: the issue is no longer visible",
                "release ABC-3: state Canceled is terminal",
                "release ABC-4: guard marker: label missing",
            ],
            "ABC-5's lane still runs: its retry keeps its claim"
        );
    }

    #[test]
    fn new_work_takes_recovery_first_then_fresh_issues_in_order() {
        let workflow = workflow("max_concurrent_agents = 3\nmax_attempts = 2");
        let mut plan = snapshot(&workflow, &[]);
        let issues = vec![
            issue("ABC-1", "Todo"),
            issue("ABC-22", "In Progress"),
            issue("ABC-333", "In Progress"),
            issue("ABC-4444", "Todo"),
        ];
        let mut listed = candidates(&workflow, issues, 3);
        let retried = books(RunStatus::RetryScheduled, 1);
        let spent = books(RunStatus::Failed, 2);
        listed.recovery[1].state = Some(retried);
        listed.recovery[2].state = Some(spent);
        listed.local.prior_attempts.insert("id-ABC-22".into(), 1);
        listed.local.prior_attempts.insert("id-ABC-333".into(), 2);
        plan.candidates = Some(listed);
        assert_eq!(
            summary(&tick_of(&plan)),
            [
                "dispatch ABC-22 attempt 2 (Recovery)",
                "dispatch ABC-1 attempt 1 (Fresh)",
                "dispatch ABC-4444 attempt 1 (Fresh)",
            ],
            "ABC-333's next attempt would pass max_attempts"
        );
    }

    #[test]
    fn the_daemons_own_queue_and_children_hold_their_issues_and_slots() {
        let workflow = workflow(
            "max_concurrent_agents = 4\nmax_concurrent_agents_by_state = { \"Todo\" = 2 }",
        );
        // ABC-1's retry is only in memory (the queue file could not be written); ABC-2 is
        // worked by a child that does not hold its lease yet; ABC-3's retry is dispatched by
        // this very tick.
        let queue = [entry("ABC-1", Some("r1")), entry("ABC-3", Some("r3"))];
        let mut plan = snapshot(&workflow, &queue);
        plan.children = vec![child("ABC-2", 0)];
        plan.due = Some(vec![DueRetry {
            entry: queue[1].clone(),
            issue: Some(issue("ABC-3", "Todo")),
            bookkeeping: None,
        }]);
        let issues = ["ABC-1", "ABC-2", "ABC-3", "ABC-44", "ABC-55"]
            .iter()
            .map(|id| issue(id, "Todo"))
            .collect();
        plan.candidates = Some(candidates(&workflow, issues, 3));
        assert_eq!(
            summary(&tick_of(&plan)),
            ["dispatch ABC-3 attempt 2 (Retry)"],
            "the Todo cap of 2 is taken by the unleased child and the retry"
        );
        // Without the state cap, the one slot left goes to the first fresh issue.
        let workflow = self::workflow("max_concurrent_agents = 4");
        let mut wider = snapshot(&workflow, &queue);
        wider.children = plan.children.clone();
        wider.due = plan.due.clone();
        let mut listed = plan.candidates.clone().unwrap();
        listed.local.claims = Claims::unclaimed(&workflow.execution);
        listed.local.claims.slots.free = 3;
        wider.candidates = Some(listed);
        assert_eq!(
            summary(&tick_of(&wider)),
            [
                "dispatch ABC-3 attempt 2 (Retry)",
                "dispatch ABC-44 attempt 1 (Fresh)",
                "dispatch ABC-55 attempt 1 (Fresh)",
            ]
        );
    }

    #[test]
    fn retained_lanes_of_terminal_issues_go_unless_worked_or_the_lifecycles() {
        let workflow = workflow("");
        let mut plan = snapshot(&workflow, &[]);
        let lane = |identifier: &str, state: Option<&str>| RetainedView {
            lane: RetainedLane {
                issue_id: format!("id-{identifier}"),
                identifier: identifier.into(),
                lane_key: identifier.into(),
                worked_by: None,
                review_open: false,
                mark: None,
            },
            state: state.map(str::to_string),
        };
        let mut lanes = vec![
            lane("ABC-1", Some("Done")),
            lane("ABC-2", Some("Canceled")),
            lane("ABC-3", Some("Done")),
            lane("ABC-4", Some("Todo")),
            lane("ABC-5", Some("Done")),
            lane("ABC-6", None),
            lane("ABC-7", Some("In Review")),
        ];
        lanes[1].lane.worked_by = Some("run r2 of this daemon".into());
        lanes[2].lane.worked_by = Some("run r3 of this daemon".into());
        let mark = |kept: &str| crate::workspace::record::TerminalLane {
            state: "Done".into(),
            seen_at: "t".into(),
            kept: Some(kept.into()),
        };
        lanes[2].lane.mark = Some(mark("run r3 of this daemon"));
        lanes[3].lane.mark = Some(mark("x"));
        lanes[4].lane.review_open = true;
        lanes[5].lane.mark = Some(mark("x"));
        plan.lanes = Some(lanes);
        let steps: Vec<String> = tick_of(&plan)
            .iter()
            .map(|action| match action {
                Action::SweepLane { lane, sweep } => format!("{} {sweep:?}", lane.identifier),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            steps,
            [
                "ABC-1 Remove { state: \"Done\" }",
                "ABC-2 Keep { state: \"Canceled\", why: \"run r2 of this daemon\" }",
                "ABC-4 Forget",
            ],
            "ABC-3's reason is recorded already; ABC-5 is the lifecycle's; ABC-6's issue is \
             not visible (its mark stays); ABC-7 is not terminal"
        );
        // The mirror was not fresh: no lane is judged.
        plan.lanes = None;
        assert!(tick_of(&plan).is_empty());
    }

    fn books(status: RunStatus, attempts: u32) -> IssueState {
        IssueState {
            attempts_used: attempts,
            last_run_id: Some("r".into()),
            last_status: Some(status),
            ..IssueState::default()
        }
    }

    fn guarded() -> IssueState {
        IssueState {
            guard: Some(Guard {
                reason: "label missing".into(),
                run_id: "r".into(),
                at: String::new(),
            }),
            ..books(RunStatus::HumanRequired, 1)
        }
    }
}
