//! One poll tick: reload, reconcile, stall detection, due retries, new work.

use std::time::{Duration, Instant};

use super::Daemon;
use super::children::{self, SpawnSpec, StopReason};
use crate::selection::{self, Hold, Standing};
use crate::tracker::{Issue, Tracker};
use crate::workflow::Workflow;
use crate::workspace::record::{self, IssueRef};
use crate::workspace::{lane, lock, retry_queue};
use crate::{claims, clock, tracker};

impl Daemon {
    /// One tick. Tracker failures skip the rest of the tick; children keep running.
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
        match tracker::open(&self.config, &self.project_slug) {
            Ok(tracker) => {
                self.reconcile(tracker.as_ref(), &workflow);
                self.detect_stalls();
                self.dispatch_due_retries(tracker.as_ref(), &workflow);
                self.dispatch_new_work(tracker.as_ref(), &workflow);
            }
            Err(error) => self.tracker_error("open", &error),
        }
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

    /// Refreshes every running lane's issue in one call and stops the ones that left.
    fn reconcile(&mut self, tracker: &dyn Tracker, workflow: &Workflow) {
        let ids: Vec<String> = self
            .children
            .iter()
            .filter(|child| child.stop.is_none())
            .map(|child| child.issue_id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        let fresh = match tracker.refresh(&ids) {
            Ok(fresh) => fresh,
            Err(error) => return self.tracker_error("refresh of running lanes", &error),
        };
        let policy = &workflow.tracker;
        for child in self
            .children
            .iter_mut()
            .filter(|child| child.stop.is_none())
        {
            let issue = fresh.iter().find(|issue| issue.id == child.issue_id);
            let (reason, why) = match issue {
                None => (
                    StopReason::Inactive,
                    "the issue is no longer visible in the project".to_string(),
                ),
                Some(issue) => match selection::standing(policy, &issue.state.name) {
                    Standing::Active => continue,
                    Standing::Terminal => (
                        StopReason::Terminal,
                        format!("issue is {}", issue.state.name),
                    ),
                    Standing::Inactive => (
                        StopReason::Inactive,
                        format!("issue moved to {}", issue.state.name),
                    ),
                },
            };
            let action = if reason == StopReason::Terminal {
                "terminated"
            } else {
                "interrupted"
            };
            log::info!(
                "stopping lane issue={} run_id={} attempt={} action={action} reason=\"{why}\"",
                child.identifier,
                child.run_id,
                child.attempt
            );
            children::request_stop(child, reason);
        }
    }

    /// Lanes whose activity marker shows no progress for the stall timeout are stopped.
    fn detect_stalls(&mut self) {
        let stall = Duration::from_millis(self.config.agent.stall_timeout_ms);
        let now_ms = clock::now_ms();
        for child in self
            .children
            .iter_mut()
            .filter(|child| child.stop.is_none())
        {
            // Markers live under the issue's id; a lane of an older version under its lane key.
            let marker = [record::issue_key(&child.issue_id), child.lane_key.clone()]
                .iter()
                .filter_map(|key| record::load_marker(&self.layout, key).ok().flatten())
                .find(|marker| marker.run_id == child.run_id);
            let idle = match marker {
                Some(marker) => clock::parse_rfc3339(&marker.last_progress_at)
                    .map_or(Duration::ZERO, |at| {
                        Duration::from_millis(now_ms.saturating_sub(at))
                    }),
                // No marker yet: the child has not started its record; count from its start.
                None => child.started.elapsed(),
            };
            if idle >= stall {
                log::warn!(
                    "lane stalled issue={} run_id={} attempt={} action=stalled reason=\"no progress for {} s\"",
                    child.identifier,
                    child.run_id,
                    child.attempt,
                    idle.as_secs()
                );
                children::request_stop(child, StopReason::Stalled { idle });
            }
        }
    }

    /// Retries own their claim: refresh that exact issue, redispatch if still routable, else
    /// release.
    fn dispatch_due_retries(&mut self, tracker: &dyn Tracker, workflow: &Workflow) {
        let now = Instant::now();
        let due: Vec<retry_queue::RetryEntry> = self
            .queue
            .entries
            .iter()
            .filter(|entry| self.due.get(&entry.issue_id).is_some_and(|at| *at <= now))
            .cloned()
            .collect();
        if due.is_empty() {
            return;
        }
        let ids: Vec<String> = due.iter().map(|entry| entry.issue_id.clone()).collect();
        let fresh = match tracker.refresh(&ids) {
            Ok(fresh) => fresh,
            Err(error) => return self.tracker_error("refresh of due retries", &error),
        };
        for entry in due {
            let issue = fresh.iter().find(|issue| issue.id == entry.issue_id);
            let verdict = issue.map(|issue| {
                let bookkeeping = self.bookkeeping(issue);
                selection::retry_due(
                    issue,
                    &workflow.tracker,
                    &self.project_slug,
                    bookkeeping.as_ref(),
                    entry.last_run_id.is_some(),
                )
            });
            match verdict {
                Some(Ok(())) => {
                    let issue = issue.cloned();
                    if let Some(issue) = issue {
                        if self.children.iter().any(|child| child.issue_id == issue.id) {
                            continue;
                        }
                        if !self.dispatch(&issue, entry.attempt, "retry due") {
                            // No free slot: the retry keeps its claim and waits for the next tick.
                            return;
                        }
                        self.forget_retry(&entry.issue_id);
                    }
                }
                // The queue is saved before the decision is logged: a log line never announces
                // state that is not on disk yet.
                Some(Err(reason)) => {
                    self.forget_retry(&entry.issue_id);
                    log::info!(
                        "retry released issue={} attempt={} action=released reason=\"{reason}\"",
                        entry.issue_identifier,
                        entry.attempt
                    );
                }
                None => {
                    self.forget_retry(&entry.issue_id);
                    log::info!(
                        "retry released issue={} attempt={} action=released reason=\"the issue is no longer visible\"",
                        entry.issue_identifier,
                        entry.attempt
                    );
                }
            }
        }
    }

    /// The issue's bookkeeping, for the retry rule (an unreadable file is logged and read as
    /// none: only a guard or a recorded outcome it would hold can stop a retry).
    fn bookkeeping(&self, issue: &Issue) -> Option<record::IssueState> {
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

    pub(super) fn forget_retry(&mut self, issue_id: &str) {
        self.queue
            .entries
            .retain(|entry| entry.issue_id != issue_id);
        self.due.remove(issue_id);
        self.save_queue();
    }

    pub(super) fn save_queue(&self) {
        if let Err(error) = retry_queue::save(&self.layout, &self.queue) {
            log::error!("cannot save retry queue error={error}");
        }
    }

    /// Free slots to recovery candidates first, then fresh eligible work in dispatch order.
    fn dispatch_new_work(&mut self, tracker: &dyn Tracker, workflow: &Workflow) {
        let policy = &workflow.tracker;
        let mut states = policy.startable_states.clone();
        states.push(policy.in_progress_state.clone());
        let issues = match tracker.issues_in_states(&states) {
            Ok(issues) => issues,
            Err(error) => return self.tracker_error("listing candidates", &error),
        };
        let mut local = claims::gather(&self.layout, &workflow.execution, &issues, true);
        for problem in &local.problems {
            log::warn!("state file problem: {problem}");
        }
        // The daemon's own queue owns its issues even when the queue file could not be written
        // (a full disk): recovery must never run an issue whose retry is still waiting.
        for entry in &self.queue.entries {
            local.claims.hold(
                &entry.issue_id,
                Hold::QueuedRetry {
                    attempt: entry.attempt,
                    due_at: entry.due_at.clone(),
                },
            );
        }
        // Children this daemon started may not hold their lease yet; they are taken all the same.
        for child in &self.children {
            local.claims.hold(
                &child.issue_id,
                Hold::DaemonChild {
                    run_id: child.run_id.clone(),
                },
            );
            if !local.leased.contains(&child.issue_id) {
                if let Some(issue) = issues.iter().find(|issue| issue.id == child.issue_id) {
                    local.claims.slots.charge_state(&issue.state.name);
                }
            }
        }
        let mut recovery: Vec<Issue> = issues
            .iter()
            .filter(|issue| {
                claims::recovery_candidate(
                    &self.layout,
                    policy,
                    &self.project_slug,
                    issue,
                    &local.claims.held,
                )
            })
            .cloned()
            .collect();
        recovery.sort_by(selection::dispatch_order);
        for issue in recovery {
            if local.claims.slots.state_allows(&issue.state.name).is_err() {
                continue;
            }
            let attempt = local.prior_attempts.get(&issue.id).copied().unwrap_or(0) + 1;
            if selection::within_budget(attempt, workflow.execution.max_attempts).is_err() {
                continue;
            }
            if !self.dispatch(
                &issue,
                attempt,
                "recovered in-progress lane with no live owner",
            ) {
                return;
            }
            local.claims.slots.charge_state(&issue.state.name);
            local.claims.slots.free = local.claims.slots.free.saturating_sub(1);
        }
        let selection = selection::select(issues, policy, &self.project_slug, &local.claims);
        let eligible: Vec<Issue> = selection
            .eligible()
            .map(|candidate| candidate.issue.clone())
            .collect();
        for issue in eligible {
            let attempt = local.prior_attempts.get(&issue.id).copied().unwrap_or(0) + 1;
            if !self.dispatch(&issue, attempt, "eligible, first in dispatch order") {
                return;
            }
        }
    }

    /// Takes a slot and spawns a child for `issue`. False when no slot is free or the spawn
    /// failed (logged; the issue stays eligible for the next tick).
    fn dispatch(&mut self, issue: &Issue, attempt: u32, reason: &str) -> bool {
        let max = self.store.current().execution.max_concurrent_agents as usize;
        let slot = match lock::acquire_slot(&self.layout, max) {
            Ok(Some(slot)) => slot,
            Ok(None) => return false,
            Err(error) => {
                log::error!("cannot take a dispatch slot error={error}");
                return false;
            }
        };
        let key = lane::lane_key(&issue.identifier);
        let run_id = record::new_run_id(&key, attempt);
        let snapshot = self.snapshot_path();
        let spec = SpawnSpec {
            config_path: &self.config.path,
            workflow_snapshot: &snapshot,
            issue_id: &issue.id,
            identifier: &issue.identifier,
            run_id: &run_id,
            attempt,
        };
        match children::spawn(&self.layout, &spec, slot, &self.events) {
            Ok(child) => {
                log::info!(
                    "dispatched issue={} run_id={run_id} attempt={attempt} pid={} action=dispatch reason=\"{reason}\" log={}",
                    issue.identifier,
                    child.pid,
                    children::log_path(&self.layout, &run_id).display()
                );
                self.children.push(child);
                true
            }
            Err(error) => {
                log::error!(
                    "cannot spawn run --once issue={} run_id={run_id} error={error}",
                    issue.identifier
                );
                false
            }
        }
    }
}
