//! The end of an attempt: the one outcome written to the tracker, the final run record, the
//! issue's bookkeeping and the summary line.
//!
//! Every ending maps to exactly one tracker outcome (handoff, retry, human path) or to none
//! (interrupted, skipped). A tracker that refuses the write leaves the run retryable with the
//! error recorded, so nothing is lost. The bookkeeping written here is what the next claim
//! reads: attempts used, last status and error, the guard marker, the state the outcome left
//! the issue in. It is a read-modify-write under the issue's bookkeeping lock that only
//! changes bookkeeping still naming this run: an attempt that was superseded (its lease was
//! stolen after the agent deleted the lease file) never overwrites a newer attempt's state,
//! though a guard it produced is still added.

use super::cause;
use super::progress::Progress;
use super::verdict::{self, Failure};
use super::{Ending, LaneRun, Outcome, Summary, tracker_failure, writeback};
use crate::clock;
use crate::tracker;
use std::time::Duration;

use crate::workspace::record::{
    self, ErrorClass, Guard, IssueRef, IssueState, Phase, RetryDecision, RetryKind, RunStatus,
};
use crate::workspace::retry_queue;

impl LaneRun<'_> {
    /// Writes the one outcome, finishes the record and the bookkeeping.
    pub(super) fn conclude(&self, progress: &mut Progress, ending: Ending) -> Summary {
        let max_attempts = self.settings.workflow.execution.max_attempts;
        let target = self.writeback_target();
        progress.phase(Phase::WritingBack);
        let mut guard = None;
        let mut moved_by_person = false;
        // Cleared when the tracker refused the outcome write.
        let mut outcome_written = true;
        let mut handed_off = None;
        let policy = &self.settings.workflow.tracker;
        let (status, outcome, next_action) = match ending {
            Ending::Validated(handoff) => {
                match writeback::handoff(&target, &progress.record, &handoff) {
                    Ok(()) => {
                        handed_off = Some(handoff.handed_off());
                        progress.record.head_sha = Some(handoff.head_sha.clone());
                        self.start_review(&progress.record, &handoff);
                        (
                            RunStatus::Handoff,
                            Outcome::Handoff {
                                review: handoff.outcome_field(),
                            },
                            handoff.next_action(),
                        )
                    }
                    Err(writeback::HandoffWriteError::StateNotWritten(error)) => {
                        let failure = verdict::with_budget(
                            tracker_failure(&error),
                            self.attempt,
                            max_attempts,
                        );
                        self.fail(progress, &target, failure, &mut guard, &mut outcome_written)
                    }
                    Err(writeback::HandoffWriteError::CommentFailed(error)) => {
                        let failure = Failure::human(
                            ErrorClass::CompletionCommentFailed,
                            format!(
                                "the issue moved to {} but the completion comment failed: {error}",
                                self.settings.workflow.tracker.success_state
                            ),
                        );
                        progress.record.error_class = Some(failure.error_class.clone());
                        progress.record.error_message = Some(failure.message.clone());
                        (
                            RunStatus::HumanRequired,
                            Outcome::HumanRequired {
                                error_class: failure.error_class,
                            },
                            "human: post the completion comment; no automatic retry".to_string(),
                        )
                    }
                }
            }
            Ending::ManualAttention => {
                let failure = Failure::human(
                    ErrorClass::ManualAttention,
                    "the agent asked for a human; see its comment",
                );
                self.fail(progress, &target, failure, &mut guard, &mut outcome_written)
            }
            Ending::Failed(failure) => {
                let failure = verdict::with_budget(failure, self.attempt, max_attempts);
                self.fail(progress, &target, failure, &mut guard, &mut outcome_written)
            }
            Ending::Interrupted => (
                RunStatus::Interrupted,
                Outcome::Interrupted,
                "the daemon or the next run --once continues it".to_string(),
            ),
            Ending::Skipped(reason) => (
                RunStatus::Skipped,
                Outcome::Skipped {
                    reason: reason.clone(),
                },
                format!("none: {reason}"),
            ),
            Ending::Left { status, reason } => {
                moved_by_person = true;
                // The same classes the daemon records when it stops a lane for these reasons.
                let class = if status == RunStatus::Terminated {
                    ErrorClass::IssueTerminal
                } else {
                    ErrorClass::IssueLeftActiveStates
                };
                progress.record.error_class = Some(class);
                progress.record.error_message = Some(reason.clone());
                (
                    status,
                    Outcome::Skipped {
                        reason: reason.clone(),
                    },
                    format!("none: {reason}"),
                )
            }
        };
        let (kind, due_at) = self.retry_due(status, progress.record.error_class.as_ref());
        progress.record.retry = Some(RetryDecision {
            retry: status == RunStatus::RetryScheduled,
            next_action: next_action.clone(),
            reason: progress
                .record
                .error_class
                .as_ref()
                .map_or_else(|| "none".to_string(), ToString::to_string),
            kind,
            due_at,
        });
        progress.finish(status);
        // Where the written outcome left the issue: a person who moves it elsewhere starts a new
        // attempt budget. Unknown when no outcome was written.
        let outcome_state = match status {
            RunStatus::Handoff => Some(policy.success_state.clone()),
            RunStatus::RetryScheduled if outcome_written => Some(policy.in_progress_state.clone()),
            RunStatus::HumanRequired if guard.is_some() => Some(policy.in_progress_state.clone()),
            RunStatus::HumanRequired => Some(policy.failure_state.clone()),
            _ => None,
        };
        self.save_bookkeeping(
            progress,
            status,
            &next_action,
            guard,
            outcome_state,
            moved_by_person,
        );
        let summary = Summary {
            issue: Some(self.issue.identifier.clone()),
            run_id: Some(progress.record.run_id.clone()),
            outcome,
            next_action,
            record: Some(Box::new(progress.record.clone())),
            handoff: handed_off,
        };
        log::info!(
            "attempt finished issue={} run_id={} attempt={} status={:?}",
            self.issue.identifier,
            progress.record.run_id,
            self.attempt,
            status
        );
        summary
    }

    /// The retry or the human path, written to the tracker. A tracker that cannot take the
    /// write leaves the run `failed` with the error recorded (the daemon retries next tick).
    fn fail(
        &self,
        progress: &mut Progress,
        target: &writeback::Target<'_>,
        failure: Failure,
        guard: &mut Option<Guard>,
        outcome_written: &mut bool,
    ) -> (RunStatus, Outcome, String) {
        progress.record.error_class = Some(failure.error_class.clone());
        progress.record.error_message = Some(writeback::scrub(&failure.message, &self.host_paths));
        log::warn!(
            "attempt failed issue={} run_id={} attempt={} error_class={} retryable={}",
            self.issue.identifier,
            progress.record.run_id,
            self.attempt,
            failure.error_class,
            failure.retryable
        );
        if failure.retryable {
            let next_action = if failure.error_class == ErrorClass::ContinuationPending {
                format!("continue in attempt {}", self.attempt + 1)
            } else {
                format!("retry attempt {}", self.attempt + 1)
            };
            match writeback::retry(
                target,
                &progress.record,
                &failure.error_class.to_string(),
                &failure.message,
                &next_action,
            ) {
                Ok(()) => (
                    RunStatus::RetryScheduled,
                    Outcome::RetryScheduled {
                        error_class: failure.error_class,
                    },
                    next_action,
                ),
                Err(error) => {
                    *outcome_written = false;
                    self.writeback_failed(progress, &error)
                }
            }
        } else {
            let next_action =
                "human: read the failure comment, fix, then remove the needs-attention label"
                    .to_string();
            match writeback::human(
                target,
                &progress.record,
                &failure.error_class.to_string(),
                &failure.message,
                &next_action,
            ) {
                Ok(write) => {
                    *guard = write.guard_reason.map(|reason| Guard {
                        reason,
                        run_id: progress.record.run_id.clone(),
                        at: clock::now_rfc3339(),
                    });
                    (
                        RunStatus::HumanRequired,
                        Outcome::HumanRequired {
                            error_class: failure.error_class,
                        },
                        next_action,
                    )
                }
                Err(write) if write.placed => {
                    let message = format!(
                        "{}; the issue is flagged for a human but the failure comment could not be posted: {}",
                        failure.message, write.error
                    );
                    progress.record.error_message =
                        Some(writeback::scrub(&message, &self.host_paths));
                    (
                        RunStatus::HumanRequired,
                        Outcome::HumanRequired {
                            error_class: failure.error_class,
                        },
                        "human: the failure comment could not be posted; read the run record"
                            .to_string(),
                    )
                }
                Err(write) => {
                    *outcome_written = false;
                    self.writeback_failed(progress, &write.error)
                }
            }
        }
    }

    /// A retry's kind and when the daemon's backoff makes it due (the same rule the daemon
    /// queues it by), so `status` shows a retry that no daemon queued.
    fn retry_due(
        &self,
        status: RunStatus,
        class: Option<&ErrorClass>,
    ) -> (Option<RetryKind>, Option<String>) {
        if status != RunStatus::RetryScheduled {
            return (None, None);
        }
        let kind = if class == Some(&ErrorClass::ContinuationPending) {
            RetryKind::Continuation
        } else {
            RetryKind::Failure
        };
        let cap = Duration::from_millis(self.settings.workflow.execution.max_retry_backoff_ms);
        let delay = retry_queue::backoff(kind, self.attempt, cap);
        let due_ms = clock::now_ms() + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        (Some(kind), Some(clock::format_ms(due_ms)))
    }

    fn writeback_failed(
        &self,
        progress: &mut Progress,
        error: &tracker::Error,
    ) -> (RunStatus, Outcome, String) {
        let message = format!(
            "{}; the outcome could not be written to the tracker: {error}",
            progress.record.error_message.clone().unwrap_or_default()
        );
        progress.record.error_message = Some(writeback::scrub(&message, &self.host_paths));
        let class = progress
            .record
            .error_class
            .clone()
            .unwrap_or(ErrorClass::TrackerWritebackFailed);
        (
            RunStatus::RetryScheduled,
            Outcome::RetryScheduled { error_class: class },
            format!("retry attempt {} (tracker write failed)", self.attempt + 1),
        )
    }

    /// The final bookkeeping, as a read-modify-write that only changes bookkeeping still naming
    /// this run (see the module docs).
    fn save_bookkeeping(
        &self,
        progress: &mut Progress,
        status: RunStatus,
        next_action: &str,
        guard: Option<Guard>,
        outcome_state: Option<String>,
        moved_by_person: bool,
    ) {
        let run_id = progress.record.run_id.clone();
        let error_class = progress.record.error_class.clone();
        let cause = progress.record.cause.clone();
        let previous = self.previous_state.clone();
        let issue = IssueRef {
            id: &self.issue.id,
            identifier: &self.issue.identifier,
        };
        let written = record::update_issue_state(
            self.layout,
            issue,
            progress.reserve(),
            |current| {
                // Missing bookkeeping (deleted under the attempt) names no newer attempt.
                let current = current.unwrap_or_else(|| IssueState {
                    last_run_id: Some(run_id.clone()),
                    ..IssueState::default()
                });
                if current.last_run_id.as_deref() != Some(run_id.as_str()) {
                    // Another attempt started after this one: its state stands. A guard this
                    // attempt produced still stops automatic reselection.
                    log::warn!(
                        "bookkeeping names a newer attempt, not overwriting it issue={} run_id={run_id} newer_run_id={}",
                        self.issue.identifier,
                        current.last_run_id.as_deref().unwrap_or("none")
                    );
                    return match guard {
                        Some(guard) if current.guard.is_none() && !current.issue_id.is_empty() => (
                            Some(IssueState {
                                guard: Some(guard),
                                updated_at: clock::now_rfc3339(),
                                ..current
                            }),
                            (),
                        ),
                        _ => (None, ()),
                    };
                }
                // Attempts the agent could not finish through no fault of its own do not count; a
                // person moving the issue during the attempt starts a new budget.
                let counts = !matches!(
                    status,
                    RunStatus::Skipped | RunStatus::Interrupted | RunStatus::Terminated
                );
                let attempts_used = if moved_by_person {
                    0
                } else if counts {
                    self.attempt
                } else {
                    // What the budget had used before this attempt (the claim numbered it next).
                    self.attempt.saturating_sub(1)
                };
                let outcome_state = if moved_by_person || counts {
                    outcome_state
                } else {
                    previous
                        .as_ref()
                        .and_then(|state| state.outcome_state.clone())
                };
                let idle_timeouts = cause::next_streak(
                    error_class.as_ref(),
                    cause.as_ref(),
                    previous.as_ref(),
                    self.attempt,
                    counts,
                    moved_by_person,
                );
                let state = IssueState {
                    issue_id: self.issue.id.clone(),
                    issue_identifier: self.issue.identifier.clone(),
                    attempts_used,
                    last_run_id: Some(run_id.clone()),
                    last_status: Some(status),
                    last_error_class: error_class,
                    next_action: Some(next_action.to_string()),
                    guard: guard.or(current.guard),
                    updated_at: clock::now_rfc3339(),
                    lane_key: Some(self.lane_key.to_string()),
                    owner: None,
                    outcome_state,
                    idle_timeouts,
                    ..IssueState::default()
                };
                (Some(state), ())
            },
        );
        if let Err(error) = written {
            log::error!(
                "cannot write issue bookkeeping issue={} error={error}",
                self.issue.identifier
            );
        }
    }
}
