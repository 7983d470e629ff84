//! What a finished child means, as a pure function: [`decide`] turns its [`ExitFacts`] (why the
//! daemon stopped it, its run record, its exit code) into the [`Action`]s that follow.
//!
//! A record still `running` means the child could not finish it; its exit code then says what
//! it wrote to the tracker (0 handoff, 5 human path, 3 nothing), so a finished outcome is never
//! mistaken for a crash and retried. A child that ended before it recorded anything did not
//! start an attempt: the same attempt is retried after a growing backoff, never at once. The
//! executor carries the actions out (records, lanes, the queue, the tracker for a stall).

use std::time::Duration;

use super::action::{Action, ChildRef, Note};
use super::children::StopReason;
use crate::clock;
use crate::exit::Written;
use crate::selection;
use crate::workspace::record::{
    ErrorClass, IssueState, Phase, RetryDecision, RetryEntry, RetryKind, RunRecord, RunStatus,
};
use crate::workspace::retry_queue;

/// Everything the decision about one finished child needs.
#[derive(Debug, Clone)]
pub struct ExitFacts {
    pub child: ChildRef,
    /// Why the daemon asked it to stop, if it did.
    pub stop: Option<StopReason>,
    /// Its run record, when it wrote one.
    pub record: Option<RunRecord>,
    /// Its exit code (`None`: killed by a signal, or an adopted child whose lease freed).
    pub code: Option<i32>,
    pub max_attempts: u32,
    pub max_retry_backoff: Duration,
    pub stall_timeout: Duration,
    /// Children of this issue in a row that ended before recording anything, before this one.
    pub early_exits: u32,
    /// Now, as milliseconds since the epoch (due times and finish times).
    pub now_ms: u64,
}

/// The actions that follow a finished child, in order.
pub fn decide(facts: &ExitFacts) -> Vec<Action> {
    let child = &facts.child;
    let mark = |status, class, message: &str| {
        facts.record.as_ref().map(|record| {
            Action::SaveRecord(Box::new(marked(
                record,
                status,
                class,
                message,
                facts.now_ms,
            )))
        })
    };
    match &facts.stop {
        Some(StopReason::Terminal) => {
            // The lane goes first: a `terminated` record means the lane is gone.
            let mut actions = vec![Action::RemoveLane(child.clone())];
            actions.extend(mark(
                RunStatus::Terminated,
                Some(ErrorClass::IssueTerminal),
                "the issue became terminal",
            ));
            actions
        }
        Some(StopReason::Inactive) => {
            let mut actions: Vec<Action> = mark(
                RunStatus::Interrupted,
                Some(ErrorClass::IssueLeftActiveStates),
                "the issue left the active states",
            )
            .into_iter()
            .collect();
            actions.push(note(child, child.attempt, Note::LaneKept));
            actions
        }
        Some(StopReason::Stalled { idle }) => vec![stalled(facts, *idle)],
        Some(StopReason::Shutdown) => Vec::new(),
        None => finished(facts),
    }
}

/// A child that ended on its own: queue a retry, or nothing.
fn finished(facts: &ExitFacts) -> Vec<Action> {
    let child = &facts.child;
    let record = facts.record.as_ref();
    // The record's attempt is authoritative: the child may have started a new budget.
    let attempt = record.map_or(child.attempt, |record| record.attempt);
    let mut actions = Vec::new();
    if record.is_some() {
        actions.push(Action::EarlyExits {
            issue_id: child.issue_id.clone(),
            count: None,
        });
    }
    let error_class = record.and_then(|record| record.error_class.clone());
    let run_id = record.map(|record| record.run_id.clone());
    match record.map(|record| record.status) {
        Some(status @ (RunStatus::Handoff | RunStatus::HumanRequired | RunStatus::Skipped)) => {
            actions.push(note(
                child,
                attempt,
                Note::Finished {
                    run_id: run_id.unwrap_or_default(),
                    status,
                },
            ));
        }
        Some(RunStatus::RetryScheduled | RunStatus::Failed) => {
            let next = attempt + 1;
            // Out of turns is not a failure: the next attempt continues after 1 s.
            let kind = if error_class == Some(ErrorClass::ContinuationPending) {
                RetryKind::Continuation
            } else {
                RetryKind::Failure
            };
            actions.push(match selection::within_budget(next, facts.max_attempts) {
                Ok(()) => queue(facts, next, kind, attempt, error_class, run_id),
                Err(_) => note(
                    child,
                    next,
                    Note::BudgetSpent {
                        max_attempts: facts.max_attempts,
                    },
                ),
            });
        }
        Some(RunStatus::Interrupted) if error_class == Some(ErrorClass::IssueLeftActiveStates) => {
            actions.push(note(child, attempt, Note::IssueLeft));
        }
        // The child saw the issue become terminal before the daemon did.
        Some(RunStatus::Terminated) => actions.push(Action::RemoveLane(child.clone())),
        Some(RunStatus::Interrupted) => {
            // The attempt did not count; the next one runs under the same number.
            if selection::within_budget(attempt, facts.max_attempts).is_ok() {
                let failures = attempt.saturating_sub(1);
                let kind = RetryKind::Continuation;
                actions.push(queue(facts, attempt, kind, failures, error_class, run_id));
            } else {
                actions.push(note(
                    child,
                    attempt,
                    Note::BudgetSpent {
                        max_attempts: facts.max_attempts,
                    },
                ));
            }
        }
        Some(RunStatus::Running) => actions.extend(unfinished(facts, attempt)),
        Some(RunStatus::Stalled) => {}
        None if Written::from_code(facts.code) == Some(Written::Nothing) => {
            actions.push(note(child, attempt, Note::NothingToDo));
        }
        None => {
            // Nothing was recorded, so no attempt started: the same attempt again, after a
            // backoff that grows with each such exit (a full disk, a tracker that fails the
            // claim) instead of a redispatch every tick.
            let early = facts.early_exits + 1;
            actions.push(Action::EarlyExits {
                issue_id: child.issue_id.clone(),
                count: Some(early),
            });
            let class = ErrorClass::ChildFailedBeforeRecord(facts.code);
            let failures = attempt - 1 + early;
            actions.push(queue(
                facts,
                attempt,
                RetryKind::Failure,
                failures,
                Some(class),
                None,
            ));
        }
    }
    actions
}

/// The child ended with its record still `running`. Its exit code says what it did.
fn unfinished(facts: &ExitFacts, attempt: u32) -> Vec<Action> {
    let child = &facts.child;
    let Some(record) = &facts.record else {
        return Vec::new();
    };
    if let Some(status) = finished_as(facts.code) {
        // The outcome reached the tracker; only the record write failed (a full disk).
        let message = format!(
            "the run --once process exited {} ({}) but could not finish its record",
            facts.code.unwrap_or_default(),
            status.as_str()
        );
        return vec![
            note(
                child,
                attempt,
                Note::FinishedWithoutRecord {
                    run_id: record.run_id.clone(),
                    status,
                },
            ),
            Action::SaveRecord(Box::new(marked(
                record,
                status,
                None,
                &message,
                facts.now_ms,
            ))),
        ];
    }
    // The child died without finishing its record (killed, crashed).
    let class = ErrorClass::ChildExited(facts.code);
    let message = "the run --once process ended without recording an outcome";
    let died = marked(
        record,
        RunStatus::Failed,
        Some(class.clone()),
        message,
        facts.now_ms,
    );
    // Queued even past the budget: the next child then takes the human path
    // (`attempts_exhausted`) without running the agent, so the issue is not left in progress
    // with nobody owning it.
    let run_id = Some(record.run_id.clone());
    vec![
        Action::SaveRecord(Box::new(died)),
        queue(
            facts,
            attempt + 1,
            RetryKind::Failure,
            attempt,
            Some(class),
            run_id,
        ),
    ]
}

/// Queues attempt `attempt` after the backoff for `failures` failures.
fn queue(
    facts: &ExitFacts,
    attempt: u32,
    kind: RetryKind,
    failures: u32,
    last_error_class: Option<ErrorClass>,
    last_run_id: Option<String>,
) -> Action {
    let child = &facts.child;
    let delay = retry_queue::backoff(kind, failures, facts.max_retry_backoff);
    let due_at_ms = facts.now_ms + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    Action::Queue {
        entry: RetryEntry {
            issue_id: child.issue_id.clone(),
            issue_identifier: child.identifier.clone(),
            lane_key: child.lane_key.clone(),
            attempt,
            kind,
            due_at_ms,
            due_at: clock::format_ms(due_at_ms),
            last_error_class,
            last_run_id,
        },
        delay,
    }
}

/// A stalled lane: its record as `stalled`, for the human path.
fn stalled(facts: &ExitFacts, idle: Duration) -> Action {
    let child = &facts.child;
    let Some(record) = &facts.record else {
        return note(child, child.attempt, Note::StalledWithoutRecord);
    };
    let message = format!(
        "no progress for {} s (stall timeout {} s); the lane was stopped and kept for inspection",
        idle.as_secs(),
        facts.stall_timeout.as_secs()
    );
    let next_action = "human: inspect the lane, then remove the needs-attention label".to_string();
    let class = ErrorClass::StalledRunDetected;
    let mut record = marked(
        record,
        RunStatus::Stalled,
        Some(class.clone()),
        &message,
        facts.now_ms,
    );
    record.retry = Some(RetryDecision {
        retry: false,
        next_action: next_action.clone(),
        reason: class.to_string(),
        ..RetryDecision::default()
    });
    Action::Stall {
        issue_id: child.issue_id.clone(),
        identifier: child.identifier.clone(),
        record: Box::new(record),
        message,
        next_action,
    }
}

/// The bookkeeping after a stall: a human outcome, which ends the episode. Only bookkeeping
/// that still names the stalled run changes (`None`: leave it as it is).
pub fn stalled_bookkeeping(
    current: Option<IssueState>,
    record: &RunRecord,
    issue_id: &str,
    identifier: &str,
    next_action: &str,
    failure_state: &str,
    now: &str,
) -> Option<IssueState> {
    let current = current.unwrap_or_else(|| IssueState {
        issue_id: issue_id.to_string(),
        last_run_id: Some(record.run_id.clone()),
        ..IssueState::default()
    });
    if current.last_run_id.as_deref() != Some(record.run_id.as_str()) {
        return None;
    }
    Some(IssueState {
        issue_identifier: identifier.to_string(),
        attempts_used: record.attempt,
        last_status: Some(RunStatus::Stalled),
        last_error_class: Some(ErrorClass::StalledRunDetected),
        next_action: Some(next_action.to_string()),
        owner: None,
        outcome_state: Some(failure_state.to_string()),
        updated_at: now.to_string(),
        ..current
    })
}

/// A child's record overridden with the daemon's view of why it ended.
fn marked(
    record: &RunRecord,
    status: RunStatus,
    error_class: Option<ErrorClass>,
    message: &str,
    now_ms: u64,
) -> RunRecord {
    let mut record = record.clone();
    record.status = status;
    record.phase = Phase::Finished;
    if record.finished_at.is_none() {
        record.finished_at = Some(clock::format_ms(now_ms));
    }
    if let Some(class) = error_class {
        record.error_class = Some(class);
        record.error_message = Some(message.to_string());
    } else if record.error_message.is_none() {
        record.error_message = Some(message.to_string());
    }
    record
}

fn note(child: &ChildRef, attempt: u32, note: Note) -> Action {
    Action::Note {
        child: child.clone(),
        attempt,
        note,
    }
}

/// The outcome a `run --once` exit code stands for when it is one the child only exits with
/// after writing that outcome to the tracker (0 handoff, 5 human path, 3 nothing written).
fn finished_as(code: Option<i32>) -> Option<RunStatus> {
    Some(match Written::from_code(code)? {
        Written::Handoff => RunStatus::Handoff,
        Written::HumanRequired => RunStatus::HumanRequired,
        Written::Nothing => RunStatus::Skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_795_651_800_000;

    fn facts(stop: Option<StopReason>, record: Option<RunRecord>, code: Option<i32>) -> ExitFacts {
        ExitFacts {
            child: ChildRef {
                run_id: "run-1".into(),
                issue_id: "id-ABC-1".into(),
                identifier: "ABC-1".into(),
                lane_key: "ABC-1".into(),
                attempt: 1,
            },
            stop,
            record,
            code,
            max_attempts: 3,
            max_retry_backoff: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(600),
            early_exits: 0,
            now_ms: NOW_MS,
        }
    }

    fn record(status: RunStatus, attempt: u32, class: Option<ErrorClass>) -> RunRecord {
        RunRecord {
            run_id: "run-1".into(),
            issue_id: "id-ABC-1".into(),
            issue_identifier: "ABC-1".into(),
            attempt,
            status,
            error_class: class,
            ..RunRecord::default()
        }
    }

    /// Each action in one short line, so a test states the whole decision.
    fn summary(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                Action::SaveRecord(record) => format!(
                    "record {} {}",
                    record.status.as_str(),
                    record
                        .error_class
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string)
                ),
                Action::Queue { entry, delay } => format!(
                    "queue attempt {} {} after {} s ({})",
                    entry.attempt,
                    entry.kind.as_str(),
                    delay.as_secs(),
                    entry
                        .last_error_class
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string)
                ),
                Action::RemoveLane(child) => format!("remove lane {}", child.lane_key),
                Action::Note { attempt, note, .. } => format!("note attempt {attempt} {note:?}"),
                Action::EarlyExits { count, .. } => format!("early exits {count:?}"),
                Action::Stall { record, .. } => format!("stall {}", record.status.as_str()),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_finished_child_is_retried_released_or_left_by_its_record() {
        let class = || Some(ErrorClass::ValidationFailed);
        let left = || Some(ErrorClass::IssueLeftActiveStates);
        let cases: Vec<(RunRecord, Vec<&str>)> = vec![
            (
                record(RunStatus::RetryScheduled, 1, class()),
                vec![
                    "early exits None",
                    "queue attempt 2 failure after 10 s (validation_failed)",
                ],
            ),
            (
                record(RunStatus::Failed, 2, class()),
                vec![
                    "early exits None",
                    "queue attempt 3 failure after 20 s (validation_failed)",
                ],
            ),
            (
                record(RunStatus::RetryScheduled, 3, class()),
                vec![
                    "early exits None",
                    "note attempt 4 BudgetSpent { max_attempts: 3 }",
                ],
            ),
            (
                // Out of turns: the next attempt continues after 1 s, and it counts.
                record(
                    RunStatus::RetryScheduled,
                    2,
                    Some(ErrorClass::ContinuationPending),
                ),
                vec![
                    "early exits None",
                    "queue attempt 3 continuation after 1 s (continuation_pending)",
                ],
            ),
            (
                record(RunStatus::Interrupted, 2, None),
                vec![
                    "early exits None",
                    "queue attempt 2 continuation after 1 s ()",
                ],
            ),
            (
                record(RunStatus::Interrupted, 2, left()),
                vec!["early exits None", "note attempt 2 IssueLeft"],
            ),
            (
                record(RunStatus::Terminated, 1, None),
                vec!["early exits None", "remove lane ABC-1"],
            ),
            (
                record(RunStatus::Stalled, 1, None),
                vec!["early exits None"],
            ),
        ];
        for (record, expected) in cases {
            let status = record.status;
            let actions = decide(&facts(None, Some(record), Some(4)));
            assert_eq!(summary(&actions), expected, "{status:?}");
        }
        for status in [
            RunStatus::Handoff,
            RunStatus::HumanRequired,
            RunStatus::Skipped,
        ] {
            let actions = decide(&facts(None, Some(record(status, 1, None)), Some(0)));
            assert!(
                matches!(&actions[1], Action::Note { note: Note::Finished { status: noted, .. }, .. } if *noted == status),
                "{actions:?}"
            );
            assert_eq!(actions.len(), 2, "nothing more: {actions:?}");
        }
    }

    #[test]
    fn an_unfinished_record_takes_the_outcome_its_exit_code_names() {
        assert_eq!(finished_as(Some(0)), Some(RunStatus::Handoff));
        assert_eq!(finished_as(Some(5)), Some(RunStatus::HumanRequired));
        assert_eq!(finished_as(Some(3)), Some(RunStatus::Skipped));
        // A crash, a panic, a signal or a retry: nothing final reached the tracker.
        for code in [Some(1), Some(4), Some(101), None] {
            assert_eq!(finished_as(code), None, "{code:?}");
        }
        let running = || Some(record(RunStatus::Running, 3, None));
        assert_eq!(
            summary(&decide(&facts(None, running(), Some(5)))),
            [
                "early exits None",
                "note attempt 3 FinishedWithoutRecord { run_id: \"run-1\", status: HumanRequired }",
                "record human_required ",
            ],
            "the outcome reached the tracker: recorded, never retried"
        );
        assert_eq!(
            summary(&decide(&facts(None, running(), None))),
            [
                "early exits None",
                "record failed child_exited_by_signal",
                "queue attempt 4 failure after 40 s (child_exited_by_signal)",
            ],
            "queued past the budget so the next child takes the human path"
        );
    }

    #[test]
    fn a_child_that_recorded_nothing_retries_the_same_attempt_after_a_growing_backoff() {
        let mut first = facts(None, None, Some(1));
        first.child.attempt = 2;
        assert_eq!(
            summary(&decide(&first)),
            [
                "early exits Some(1)",
                "queue attempt 2 failure after 20 s (child_failed_before_record_1)",
            ]
        );
        let again = ExitFacts {
            early_exits: 3,
            ..first.clone()
        };
        assert_eq!(
            summary(&decide(&again)),
            [
                "early exits Some(4)",
                "queue attempt 2 failure after 160 s (child_failed_before_record_1)",
            ]
        );
        let nothing_to_do = ExitFacts {
            code: Some(3),
            ..first
        };
        assert_eq!(
            summary(&decide(&nothing_to_do)),
            ["note attempt 2 NothingToDo"]
        );
    }

    #[test]
    fn a_lane_the_daemon_stopped_is_recorded_with_its_reason() {
        let running = || Some(record(RunStatus::Interrupted, 1, None));
        assert_eq!(
            summary(&decide(&facts(Some(StopReason::Terminal), running(), None))),
            ["remove lane ABC-1", "record terminated issue_terminal"],
            "the lane goes first: a terminated record means the lane is gone"
        );
        assert_eq!(
            summary(&decide(&facts(Some(StopReason::Inactive), running(), None))),
            [
                "record interrupted issue_left_active_states",
                "note attempt 1 LaneKept",
            ]
        );
        assert!(decide(&facts(Some(StopReason::Shutdown), running(), None)).is_empty());
        let stalled = decide(&facts(
            Some(StopReason::Stalled {
                idle: Duration::from_secs(700),
            }),
            running(),
            None,
        ));
        let [
            Action::Stall {
                record, message, ..
            },
        ] = stalled.as_slice()
        else {
            panic!("{stalled:?}");
        };
        assert_eq!(record.status, RunStatus::Stalled);
        assert_eq!(record.error_class, Some(ErrorClass::StalledRunDetected));
        assert_eq!(
            record.finished_at.as_deref(),
            Some("2026-11-26T00:10:00.000Z")
        );
        assert_eq!(
            message,
            "no progress for 700 s (stall timeout 600 s); the lane was stopped and kept for inspection"
        );
        assert_eq!(record.retry.as_ref().map(|retry| retry.retry), Some(false));
    }

    #[test]
    fn a_stall_ends_the_episode_only_in_bookkeeping_that_names_its_run() {
        let stalled = record(RunStatus::Stalled, 2, Some(ErrorClass::StalledRunDetected));
        let books = |run_id: &str| IssueState {
            issue_id: "id-ABC-1".into(),
            attempts_used: 2,
            last_run_id: Some(run_id.into()),
            last_status: Some(RunStatus::Running),
            ..IssueState::default()
        };
        let next = stalled_bookkeeping(
            Some(books("run-1")),
            &stalled,
            "id-ABC-1",
            "ABC-1",
            "human",
            "Todo",
            "now",
        )
        .unwrap();
        assert_eq!(next.last_status, Some(RunStatus::Stalled));
        assert_eq!(next.outcome_state.as_deref(), Some("Todo"));
        assert_eq!(next.owner, None);
        assert_eq!(
            stalled_bookkeeping(
                Some(books("run-2")),
                &stalled,
                "id-ABC-1",
                "ABC-1",
                "human",
                "Todo",
                "now"
            ),
            None,
            "a newer attempt's bookkeeping stands"
        );
        let missing =
            stalled_bookkeeping(None, &stalled, "id-ABC-1", "ABC-1", "human", "Todo", "now");
        assert_eq!(
            missing.map(|state| state.issue_id),
            Some("id-ABC-1".to_string())
        );
    }
}
