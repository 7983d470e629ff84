//! One poll tick at the I/O edge: reload WORKFLOW.md, bring the intake's mirror of the
//! project's issues up to date (one cheap "what changed?" question, or the periodic resync),
//! read what the decisions need into a [`Snapshot`] (the mirror, activity markers,
//! bookkeeping, local claims), let [`plan::tick`] decide, and hand its actions to the executor.
//!
//! A tracker call that fails is counted and logged here, and the part of the snapshot it would
//! have filled is left out, so that step waits for the next tick while children keep running.
//! A sync that failed or was paced leaves the mirror stale: then nothing is stopped or
//! dispatched on it, and only stall detection (local facts) runs.

use std::time::{Duration, Instant};

use super::Daemon;
use super::action::ChildRef;
use super::plan::{self, Candidates, ChildView, DueRetry, RetainedView, Snapshot};
use crate::intake;
use crate::tracker::{self, Issue};
use crate::workflow::Workflow;
use crate::workspace::record::{self, IssueRef, IssueState, Phase, RetryEntry};
use crate::{claims, clock};

impl Daemon {
    /// One tick. A failed tracker call skips the steps that need it; children keep running.
    pub(super) fn tick(&mut self) {
        let started = Instant::now();
        match self.store.reload() {
            Ok(true) => {
                log::info!(
                    "workflow reloaded path={}",
                    self.store.current().path.display()
                );
                self.write_snapshot();
            }
            Ok(false) => {}
            Err(error) => {
                log::error!("workflow edit rejected, keeping the last known good snapshot: {error}")
            }
        }
        let workflow = self.store.current();
        self.watch_children();
        let fresh = match self.intake.sync(&active_states(&workflow)) {
            Ok(intake::Outcome::Fresh) => true,
            // Paced: the key's budget is low; the mirror is not fresh, and the next tick asks
            // again.
            Ok(intake::Outcome::Paced { .. }) => false,
            Err(error) => {
                self.tracker_error("sync of the project's issues", &error);
                false
            }
        };
        let queue = self.queue.entries.clone();
        let answers = if fresh {
            self.ask_tracker(&workflow, &queue)
        } else {
            Answers::default()
        };
        let review = if fresh {
            self.review_lanes(&workflow)
        } else {
            None
        };
        let lanes = if fresh { self.retained_lanes() } else { None };
        let mut snapshot = self.snapshot(answers, &workflow, &queue);
        snapshot.review = review;
        snapshot.lanes = lanes;
        let actions = plan::tick(snapshot);
        self.execute(actions);
        self.finish_review_tick();
        self.health.tick_finished(started.elapsed());
        log::debug!(
            "tick finished duration_ms={} children={} retries={}",
            started.elapsed().as_millis(),
            self.children.len(),
            self.queue.entries.len()
        );
    }

    pub(super) fn tracker_error(&self, what: &str, error: &tracker::Error) {
        use std::sync::atomic::Ordering;
        self.health.tracker_errors.fetch_add(1, Ordering::SeqCst);
        let limited = matches!(error, tracker::Error::RateLimited { .. });
        self.health
            .tracker_rate_limited
            .store(u64::from(limited), Ordering::SeqCst);
        log::warn!("tracker {what} failed, children keep running, next tick retries: {error}");
    }

    /// What the tracker says, from the fresh mirror, in the order the steps run: the running
    /// lanes' issues (a lane the mirror does not hold is read), the due retries' issues (read
    /// again: they own their claim), then the candidates (the mirror, no request).
    fn ask_tracker(&mut self, workflow: &Workflow, queue: &[RetryEntry]) -> Answers {
        let running_ids: Vec<String> = self
            .children
            .iter()
            .filter(|child| child.stop.is_none())
            .map(|child| child.issue_id.clone())
            .collect();
        let running = if running_ids.is_empty() {
            None
        } else {
            let answer = self.intake.issues(&running_ids);
            self.ask(answer, "refresh of running lanes")
        };
        let due = self.due_retries(queue);
        let candidates = self.candidates(workflow);
        Answers {
            running,
            due,
            candidates,
        }
    }

    /// Everything the tick decides from.
    fn snapshot<'a>(
        &'a self,
        answers: Answers,
        workflow: &'a Workflow,
        queue: &'a [RetryEntry],
    ) -> Snapshot<'a> {
        let children: Vec<ChildView> = self.children.iter().map(|child| self.view(child)).collect();
        let Answers {
            running,
            due,
            candidates,
        } = answers;
        Snapshot {
            policy: &workflow.tracker,
            execution: &workflow.execution,
            project_slug: &self.project_slug,
            stall_timeout: Duration::from_millis(self.config.agent.stall_timeout_ms),
            children,
            running,
            due,
            queue,
            candidates,
            review_policy: &workflow.review,
            review: None,
            lanes: None,
        }
    }

    /// The lanes kept on disk, each with its issue's state from the mirror: an issue outside
    /// the active states (in review, failed to a person, finished) is read once after each
    /// resync and then followed by the every-poll question, so a quiet tick costs nothing
    /// here. A child of this daemon works in its issue's lane even before it holds the lease.
    fn retained_lanes(&mut self) -> Option<Vec<RetainedView>> {
        let lanes = claims::retained_lanes(&self.layout);
        if lanes.is_empty() {
            return Some(Vec::new());
        }
        let ids: Vec<String> = lanes.iter().map(|lane| lane.issue_id.clone()).collect();
        let answer = self.intake.issues(&ids);
        let issues = self.ask(answer, "read of the retained lanes' issues")?;
        let views = lanes
            .into_iter()
            .map(|mut lane| {
                if lane.worked_by.is_none() {
                    lane.worked_by = self
                        .children
                        .iter()
                        .find(|child| child.issue_id == lane.issue_id)
                        .map(|child| format!("run {} of this daemon", child.run_id));
                }
                let state = issues
                    .iter()
                    .find(|issue| issue.id == lane.issue_id)
                    .map(|issue| issue.state.name.clone());
                RetainedView { lane, state }
            })
            .collect();
        Some(views)
    }

    /// A child as the tick sees it: its idle time from its lane's activity marker (not daemon
    /// memory, so it works for adopted lanes), stored under the issue's id, or under the lane
    /// key by older versions.
    fn view(&self, child: &super::children::Child) -> ChildView {
        let marker = [record::issue_key(&child.issue_id), child.lane_key.clone()]
            .iter()
            .filter_map(|key| record::load_marker(&self.layout, key).ok().flatten())
            .find(|marker| marker.run_id == child.run_id);
        let writing_back = marker
            .as_ref()
            .is_some_and(|marker| matches!(marker.phase, Phase::WritingBack | Phase::Finished));
        let idle = match marker {
            Some(marker) => clock::parse_rfc3339(&marker.last_progress_at)
                .map_or(Duration::ZERO, |at| {
                    Duration::from_millis(clock::now_ms().saturating_sub(at))
                }),
            // No marker yet: the child has not started its record; count from its start.
            None => child.started.elapsed(),
        };
        ChildView {
            child: ChildRef {
                run_id: child.run_id.clone(),
                issue_id: child.issue_id.clone(),
                identifier: child.identifier.clone(),
                lane_key: child.lane_key.clone(),
                attempt: child.attempt,
            },
            stopping: child.stop.is_some(),
            idle,
            writing_back,
            repair: self
                .repair_record_of(&child.issue_id, &child.run_id)
                .is_some(),
        }
    }

    /// The retries due now, each with its issue read again and its bookkeeping.
    fn due_retries(&mut self, queue: &[RetryEntry]) -> Option<Vec<DueRetry>> {
        let now = Instant::now();
        let due: Vec<&RetryEntry> = queue
            .iter()
            .filter(|entry| self.due.get(&entry.issue_id).is_some_and(|at| *at <= now))
            .collect();
        if due.is_empty() {
            return Some(Vec::new());
        }
        let ids: Vec<String> = due.iter().map(|entry| entry.issue_id.clone()).collect();
        let answer = self.intake.confirm(&ids);
        let fresh = self.ask(answer, "refresh of due retries")?;
        let due = due
            .into_iter()
            .map(|entry| {
                let issue = fresh
                    .iter()
                    .find(|issue| issue.id == entry.issue_id)
                    .cloned();
                let bookkeeping = issue.as_ref().and_then(|issue| self.bookkeeping(issue));
                DueRetry {
                    entry: entry.clone(),
                    issue,
                    bookkeeping,
                }
            })
            .collect();
        Some(due)
    }

    /// The candidates for new work (from the mirror) with the local claims and each one's
    /// recovery facts.
    fn candidates(&self, workflow: &Workflow) -> Option<Candidates> {
        let policy = &workflow.tracker;
        let issues = self.intake.candidates(&active_states(workflow));
        let local = claims::gather(&self.layout, &workflow.execution, &issues, true);
        for problem in &local.problems {
            log::warn!("state file problem: {problem}");
        }
        let recovery = issues
            .iter()
            .map(|issue| claims::recovery_facts(&self.layout, policy, issue))
            .collect();
        Some(Candidates {
            issues,
            local,
            recovery,
        })
    }

    /// The issue's bookkeeping, for the retry rule (an unreadable file is logged and read as
    /// none: only a guard or a recorded outcome it would hold can stop a retry).
    fn bookkeeping(&self, issue: &Issue) -> Option<IssueState> {
        let issue_ref = IssueRef {
            id: &issue.id,
            identifier: &issue.identifier,
        };
        record::find_issue_state(&self.layout, issue_ref).unwrap_or_else(|error| {
            log::warn!(
                "cannot read issue bookkeeping issue={} error={error}",
                issue.identifier
            );
            None
        })
    }

    /// A tracker answer, or `None` with the failure counted and logged.
    fn ask<T>(&self, answer: Result<T, tracker::Error>, what: &str) -> Option<T> {
        answer
            .map_err(|error| self.tracker_error(what, &error))
            .ok()
    }
}

/// The tracker's part of a snapshot; all `None` when the mirror is not fresh.
#[derive(Debug, Default)]
struct Answers {
    running: Option<Vec<Issue>>,
    due: Option<Vec<DueRetry>>,
    candidates: Option<Candidates>,
}

/// The states whose issues the intake mirrors: startable plus in progress.
pub(super) fn active_states(workflow: &Workflow) -> Vec<String> {
    let policy = &workflow.tracker;
    let mut states = policy.startable_states.clone();
    states.push(policy.in_progress_state.clone());
    states
}
