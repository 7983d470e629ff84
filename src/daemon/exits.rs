//! What the daemon does when a child's run ends: read its outcome from the run record and exit
//! code, override the record when the daemon stopped it, and queue, release or clean up.
//!
//! A record still `running` means the child could not finish it; its exit code then says what
//! it wrote to the tracker (0 handoff, 5 human path, 3 nothing), so a finished outcome is never
//! mistaken for a crash and retried. A child that ended before it recorded anything did not
//! start an attempt: the same attempt is retried after a growing backoff, never at once.

use std::time::{Duration, Instant};

use super::Daemon;
use super::children::{Child, StopReason};
use crate::clock;
use crate::exit::Exit;
use crate::run::writeback;
use crate::tracker;
use crate::workspace::lane;
use crate::workspace::record::{self, ErrorClass, IssueRef, Phase, RunRecord, RunStatus};
use crate::workspace::retry_queue::{self, RetryEntry, RetryKind};

impl Daemon {
    /// Handles one finished child (spawned: from its exit event; adopted: its lease freed).
    pub(super) fn child_exited(&mut self, run_id: &str, code: Option<i32>) {
        let Some(position) = self
            .children
            .iter()
            .position(|child| child.run_id == run_id)
        else {
            return;
        };
        let child = self.children.remove(position);
        let record = match record::load_run(&self.layout, run_id) {
            Ok(record) => Some(record),
            Err(error) => {
                // A missing record means the child ended before it started an attempt; an
                // unreadable one is said so, then treated the same way.
                if !matches!(&error, crate::workspace::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
                {
                    log::warn!(
                        "cannot read the finished child's run record issue={} run_id={run_id} error={error}",
                        child.identifier
                    );
                }
                None
            }
        };
        match child.stop.as_ref().map(|(reason, _)| reason.clone()) {
            Some(StopReason::Terminal) => {
                // The lane goes first: a `terminated` record means the lane is gone.
                self.remove_lane(&child);
                self.mark(
                    record,
                    RunStatus::Terminated,
                    Some(ErrorClass::IssueTerminal),
                    "the issue became terminal",
                );
            }
            Some(StopReason::Inactive) => {
                self.mark(
                    record,
                    RunStatus::Interrupted,
                    Some(ErrorClass::IssueLeftActiveStates),
                    "the issue left the active states",
                );
                log::info!(
                    "lane kept issue={} run_id={run_id} attempt={} action=interrupted reason=\"issue left the active states\"",
                    child.identifier,
                    child.attempt
                );
            }
            Some(StopReason::Stalled { idle }) => {
                self.stalled(&child.issue_id, &child.identifier, record, idle)
            }
            Some(StopReason::Shutdown) => {}
            None => self.finished(&child, record, code),
        }
    }

    /// A child that ended on its own: queue a retry, or nothing.
    fn finished(&mut self, child: &Child, record: Option<RunRecord>, code: Option<i32>) {
        let identifier = child.identifier.as_str();
        // The record's attempt is authoritative: the child may have started a new budget.
        let attempt = record
            .as_ref()
            .map_or(child.attempt, |record| record.attempt);
        if record.is_some() {
            self.early_exits.remove(&child.issue_id);
        }
        let status = record.as_ref().map(|record| record.status);
        let error_class = record
            .as_ref()
            .and_then(|record| record.error_class.clone());
        let run_id = record.as_ref().map(|record| record.run_id.clone());
        match status {
            Some(RunStatus::Handoff | RunStatus::HumanRequired | RunStatus::Skipped) => {
                log::info!(
                    "child finished issue={identifier} run_id={} attempt={attempt} status={:?}",
                    run_id.as_deref().unwrap_or("-"),
                    status
                );
            }
            Some(RunStatus::RetryScheduled | RunStatus::Failed) => {
                self.queue_retry(child, attempt + 1, RetryKind::Failure, error_class, run_id);
            }
            Some(RunStatus::Interrupted)
                if error_class == Some(ErrorClass::IssueLeftActiveStates) =>
            {
                log::info!(
                    "child stopped because its issue left issue={identifier} attempt={attempt} action=released reason=\"issue left the active states\""
                );
            }
            // The child saw the issue become terminal before the daemon did.
            Some(RunStatus::Terminated) => self.remove_lane(child),
            Some(RunStatus::Interrupted) => {
                // The attempt did not count; the next one runs under the same number.
                self.queue_retry(child, attempt, RetryKind::Continuation, error_class, run_id);
            }
            Some(RunStatus::Running) => self.unfinished(child, record, code, attempt),
            Some(RunStatus::Stalled) => {}
            None if code == Some(3) => {
                log::info!(
                    "child had nothing to do issue={identifier} attempt={attempt} action=released reason=\"issue no longer runnable or held elsewhere\""
                );
            }
            None => {
                // Nothing was recorded, so no attempt started: the same attempt again, after a
                // backoff that grows with each such exit (a full disk, a tracker that fails
                // the claim) instead of a redispatch every tick.
                let class = ErrorClass::ChildFailedBeforeRecord(code);
                let early = self.early_exits.entry(child.issue_id.clone()).or_insert(0);
                *early += 1;
                let early = *early;
                self.queue(
                    child,
                    attempt,
                    RetryKind::Failure,
                    attempt - 1 + early,
                    Some(class),
                    None,
                );
            }
        }
    }

    /// The child ended with its record still `running`. Its exit code says what it did.
    fn unfinished(
        &mut self,
        child: &Child,
        record: Option<RunRecord>,
        code: Option<i32>,
        attempt: u32,
    ) {
        let run_id = record.as_ref().map(|record| record.run_id.clone());
        if let Some(status) = finished_as(code) {
            // The outcome reached the tracker; only the record write failed (a full disk).
            let message = format!(
                "the run --once process exited {} ({}) but could not finish its record",
                code.unwrap_or_default(),
                status.as_str()
            );
            log::warn!(
                "child finished without its record issue={} run_id={} attempt={attempt} status={}",
                child.identifier,
                run_id.as_deref().unwrap_or("-"),
                status.as_str()
            );
            self.mark(record, status, None, &message);
            return;
        }
        // The child died without finishing its record (killed, crashed).
        let class = ErrorClass::ChildExited(code);
        self.mark(
            record,
            RunStatus::Failed,
            Some(class.clone()),
            "the run --once process ended without recording an outcome",
        );
        // Queued even past the budget: the next child then takes the human path
        // (`attempts_exhausted`) without running the agent, so the issue is not left in
        // progress with nobody owning it.
        self.queue(
            child,
            attempt + 1,
            RetryKind::Failure,
            attempt,
            Some(class),
            run_id,
        );
    }

    fn queue_retry(
        &mut self,
        child: &Child,
        attempt: u32,
        kind: RetryKind,
        last_error_class: Option<ErrorClass>,
        last_run_id: Option<String>,
    ) {
        let max_attempts = self.store.current().execution.max_attempts;
        if attempt > max_attempts {
            log::info!(
                "retry not queued issue={} attempt={attempt} action=released reason=\"attempt budget of {max_attempts} spent\"",
                child.identifier
            );
            return;
        }
        let failures = attempt.saturating_sub(1);
        self.queue(
            child,
            attempt,
            kind,
            failures,
            last_error_class,
            last_run_id,
        );
    }

    /// Queues attempt `attempt` after the backoff for `failures` failures.
    fn queue(
        &mut self,
        child: &Child,
        attempt: u32,
        kind: RetryKind,
        failures: u32,
        last_error_class: Option<ErrorClass>,
        last_run_id: Option<String>,
    ) {
        let (issue_id, identifier) = (child.issue_id.as_str(), child.identifier.as_str());
        let execution = &self.store.current().execution;
        let cap = Duration::from_millis(execution.max_retry_backoff_ms);
        let delay = retry_queue::backoff(kind, failures, cap);
        let due_at_ms = clock::now_ms() + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.queue
            .entries
            .retain(|entry| entry.issue_id != issue_id);
        self.queue.entries.push(RetryEntry {
            issue_id: issue_id.to_string(),
            issue_identifier: identifier.to_string(),
            lane_key: child.lane_key.clone(),
            attempt,
            kind,
            due_at_ms,
            due_at: clock::format_ms(due_at_ms),
            last_error_class: last_error_class.clone(),
            last_run_id,
        });
        self.due
            .insert(issue_id.to_string(), Instant::now() + delay);
        self.save_queue();
        log::info!(
            "retry queued issue={identifier} attempt={attempt} action=retry_scheduled reason=\"{:?} after {}, due in {} s\"",
            kind,
            last_error_class
                .as_ref()
                .map_or_else(|| "a clean exit".to_string(), ToString::to_string),
            delay.as_secs()
        );
    }

    /// Removes a finished issue's lane (`before_remove` hook first); records stay.
    fn remove_lane(&self, child: &Child) {
        let workflow = self.store.current();
        let secrets = self.config.secret_env_vars();
        // The lane's name is the one the bookkeeping remembers (the child decided it).
        let issue = IssueRef {
            id: &child.issue_id,
            identifier: &child.identifier,
        };
        let lane_key = match record::find_issue_state(&self.layout, issue) {
            Ok(state) => state.map_or_else(|| child.lane_key.clone(), |state| state.lane()),
            Err(error) => {
                log::warn!(
                    "cannot read issue bookkeeping, removing the lane the daemon knew issue={} lane={} error={error}",
                    child.identifier,
                    child.lane_key
                );
                child.lane_key.clone()
            }
        };
        match lane::remove(&self.layout, &lane_key, &workflow.hooks, &secrets) {
            Ok(()) => log::info!(
                "lane removed issue={} run_id={} attempt={} action=terminated reason=\"issue is terminal\"",
                child.identifier,
                child.run_id,
                child.attempt
            ),
            Err(error) => log::warn!(
                "cannot remove lane issue={} error={error}",
                child.identifier
            ),
        }
    }

    /// A stalled lane: record it and send the issue to a human.
    fn stalled(
        &mut self,
        issue_id: &str,
        identifier: &str,
        record: Option<RunRecord>,
        idle: Duration,
    ) {
        let message = format!(
            "no progress for {} s (stall timeout {} s); the lane was stopped and kept for inspection",
            idle.as_secs(),
            self.config.agent.stall_timeout_ms / 1000
        );
        let Some(mut record) = record else {
            log::warn!("stalled child left no record issue={identifier}");
            return;
        };
        record.status = RunStatus::Stalled;
        record.phase = Phase::Finished;
        record.error_class = Some(ErrorClass::StalledRunDetected);
        record.error_message = Some(message.clone());
        if record.finished_at.is_none() {
            record.finished_at = Some(clock::now_rfc3339());
        }
        let next_action =
            "human: inspect the lane, then remove the needs-attention label".to_string();
        record.retry = Some(record::RetryDecision {
            retry: false,
            next_action: next_action.clone(),
            reason: ErrorClass::StalledRunDetected.to_string(),
        });
        if let Err(error) = record::save_run(&self.layout, &record) {
            log::error!("cannot write the stalled record issue={identifier} error={error}");
        }
        let workflow = self.store.current();
        match tracker::open(&self.config, &self.project_slug).and_then(|tracker| {
            tracker
                .refresh(&[issue_id.to_string()])
                .map(|fresh| (tracker, fresh))
        }) {
            Ok((tracker, fresh)) => {
                if let Some(issue) = fresh.first() {
                    let host_paths = vec![(self.config.repo_root.clone(), ".".to_string())];
                    let target = writeback::Target {
                        tracker: tracker.as_ref(),
                        issue,
                        policy: &workflow.tracker,
                        host_paths: &host_paths,
                    };
                    if let Err(error) = writeback::human(
                        &target,
                        &record,
                        &ErrorClass::StalledRunDetected.to_string(),
                        &message,
                        &next_action,
                    ) {
                        log::warn!(
                            "cannot write the stall to the tracker issue={identifier} error={}",
                            error.error
                        );
                    }
                }
            }
            Err(error) => self.tracker_error("stall writeback", &error),
        }
        // A stalled lane went down the needs-attention path: a human outcome, which ends the
        // episode. Only bookkeeping that still names this run changes.
        let issue = IssueRef {
            id: issue_id,
            identifier,
        };
        let written = record::update_issue_state(&self.layout, issue, None, |current| {
            let current = current.unwrap_or_else(|| record::IssueState {
                issue_id: issue_id.to_string(),
                last_run_id: Some(record.run_id.clone()),
                ..record::IssueState::default()
            });
            if current.last_run_id.as_deref() != Some(record.run_id.as_str()) {
                return (None, ());
            }
            let state = record::IssueState {
                issue_identifier: identifier.to_string(),
                attempts_used: record.attempt,
                last_status: Some(RunStatus::Stalled),
                last_error_class: Some(ErrorClass::StalledRunDetected),
                next_action: Some(next_action),
                owner: None,
                outcome_state: Some(workflow.tracker.failure_state.clone()),
                updated_at: clock::now_rfc3339(),
                ..current
            };
            (Some(state), ())
        });
        if let Err(error) = written {
            log::error!("cannot write issue bookkeeping issue={identifier} error={error}");
        }
        log::warn!(
            "lane stopped issue={identifier} run_id={} attempt={} action=stalled reason=\"{message}\"",
            record.run_id,
            record.attempt
        );
    }

    /// Overrides a child's record with the daemon's view of why it ended.
    fn mark(
        &self,
        record: Option<RunRecord>,
        status: RunStatus,
        error_class: Option<ErrorClass>,
        message: &str,
    ) {
        let Some(mut record) = record else {
            return;
        };
        record.status = status;
        record.phase = Phase::Finished;
        if record.finished_at.is_none() {
            record.finished_at = Some(clock::now_rfc3339());
        }
        if let Some(class) = error_class {
            record.error_class = Some(class);
            record.error_message = Some(message.to_string());
        } else if record.error_message.is_none() {
            record.error_message = Some(message.to_string());
        }
        if let Err(error) = record::save_run(&self.layout, &record) {
            log::error!(
                "cannot update run record run_id={} error={error}",
                record.run_id
            );
        }
    }
}

/// The outcome a `run --once` exit code stands for when it is one the child only exits with
/// after writing that outcome to the tracker (0 handoff, 5 human path, 3 nothing written).
fn finished_as(code: Option<i32>) -> Option<RunStatus> {
    let known = |exit: Exit| code == Some(i32::from(exit.code()));
    if known(Exit::Success) {
        Some(RunStatus::Handoff)
    } else if known(Exit::HumanRequired) {
        Some(RunStatus::HumanRequired)
    } else if known(Exit::NothingToDo) {
        Some(RunStatus::Skipped)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_record_takes_the_outcome_its_exit_code_names() {
        assert_eq!(finished_as(Some(0)), Some(RunStatus::Handoff));
        assert_eq!(finished_as(Some(5)), Some(RunStatus::HumanRequired));
        assert_eq!(finished_as(Some(3)), Some(RunStatus::Skipped));
        // A crash, a panic, a signal or a retry: nothing final reached the tracker.
        for code in [Some(1), Some(4), Some(101), None] {
            assert_eq!(finished_as(code), None, "{code:?}");
        }
    }
}
