//! One poll tick: reload, reconcile, stall detection, due retries, new work.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::Daemon;
use super::children::{self, SpawnSpec, StopReason};
use crate::intake;
use crate::tracker::Issue;
use crate::workflow::Workflow;
use crate::workspace::record::{self, IssueRef, RunStatus};
use crate::workspace::{lane, lock, retry_queue};
use crate::{claims, clock, selection, tracker};

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
        // One cheap question brings the intake's mirror up to date; everything below reads it.
        match self.intake.sync(&active_states(&workflow)) {
            Ok(intake::Outcome::Fresh) => {
                self.reconcile(&workflow);
                self.detect_stalls();
                self.dispatch_due_retries(&workflow);
                self.dispatch_new_work(&workflow);
            }
            // Paced or failed: the mirror is not fresh, so nothing is stopped or dispatched on
            // it; children keep running and the next tick asks again.
            Ok(intake::Outcome::Paced { .. }) => self.detect_stalls(),
            Err(error) => {
                self.tracker_error("sync of the project's issues", &error);
                self.detect_stalls();
            }
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

    /// Looks every running lane's issue up in the fresh mirror and stops the ones that left.
    fn reconcile(&mut self, workflow: &Workflow) {
        let ids: Vec<String> = self
            .children
            .iter()
            .filter(|child| child.stop.is_none())
            .map(|child| child.issue_id.clone())
            .collect();
        if ids.is_empty() {
            return;
        }
        let fresh = match self.intake.issues(&ids) {
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
                Some(issue) if policy.is_terminal(&issue.state.name) => (
                    StopReason::Terminal,
                    format!("issue is {}", issue.state.name),
                ),
                Some(issue)
                    if !policy.is_startable(&issue.state.name)
                        && !policy.is_in_progress(&issue.state.name) =>
                {
                    (
                        StopReason::Inactive,
                        format!("issue moved to {}", issue.state.name),
                    )
                }
                Some(_) => continue,
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
    fn dispatch_due_retries(&mut self, workflow: &Workflow) {
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
        let fresh = match self.intake.confirm(&ids) {
            Ok(fresh) => fresh,
            Err(error) => return self.tracker_error("refresh of due retries", &error),
        };
        for entry in due {
            let issue = fresh.iter().find(|issue| issue.id == entry.issue_id);
            let verdict = issue.map(|issue| {
                routable(workflow, &self.project_slug, issue)
                    .and_then(|()| self.still_wanted(&entry, issue))
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

    /// Whether the issue's bookkeeping still wants this retry: a guard marker stops it, and so
    /// does an outcome that ended the episode (human path, stalled, handoff) recorded by the
    /// run the retry follows or by a later one. A retry queued without a run (its child ended
    /// before recording anything) is stopped by a guard only.
    fn still_wanted(&self, entry: &retry_queue::RetryEntry, issue: &Issue) -> Result<(), String> {
        let state = record::find_issue_state(
            &self.layout,
            IssueRef {
                id: &issue.id,
                identifier: &issue.identifier,
            },
        )
        .ok()
        .flatten();
        let Some(state) = state else {
            return Ok(());
        };
        if let Some(guard) = &state.guard {
            return Err(format!("guard marker: {}", guard.reason));
        }
        let ended = matches!(
            state.last_status,
            Some(RunStatus::HumanRequired | RunStatus::Stalled | RunStatus::Handoff)
        );
        if ended && entry.last_run_id.is_some() {
            let status = state.last_status.map_or("", RunStatus::as_str);
            return Err(format!(
                "run {} already recorded {status}",
                state.last_run_id.as_deref().unwrap_or("unknown")
            ));
        }
        Ok(())
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
    fn dispatch_new_work(&mut self, workflow: &Workflow) {
        let policy = &workflow.tracker;
        let issues = self.intake.candidates(&active_states(workflow));
        let mut local = claims::gather(&self.layout, &workflow.execution, &issues, true);
        for problem in &local.problems {
            log::warn!("state file problem: {problem}");
        }
        // The daemon's own queue owns its issues even when the queue file could not be written
        // (a full disk): recovery must never run an issue whose retry is still waiting.
        for entry in &self.queue.entries {
            local
                .claims
                .held
                .entry(entry.issue_id.clone())
                .or_insert_with(|| {
                    format!(
                        "queued for retry by the daemon (attempt {}, due {})",
                        entry.attempt, entry.due_at
                    )
                });
        }
        // Children this daemon started may not hold their lease yet; they are taken all the same.
        let ours: HashSet<&str> = self
            .children
            .iter()
            .map(|child| child.issue_id.as_str())
            .collect();
        for child in &self.children {
            local
                .claims
                .held
                .entry(child.issue_id.clone())
                .or_insert_with(|| format!("running in daemon child run {}", child.run_id));
            if !local.leased.contains(&child.issue_id) {
                if let Some(issue) = issues.iter().find(|issue| issue.id == child.issue_id) {
                    if let Some(cap) = local
                        .claims
                        .slots
                        .by_state
                        .iter_mut()
                        .find(|cap| crate::workflow::same_state(&cap.state, &issue.state.name))
                    {
                        cap.free = cap.free.saturating_sub(1);
                    }
                }
            }
        }
        let mut recovery: Vec<Issue> = issues
            .iter()
            .filter(|issue| !ours.contains(issue.id.as_str()))
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
        let slug = self.project_slug.clone();
        for issue in recovery {
            // No slot, no read: a recovery candidate waiting for one must not cost a request a tick.
            if local.claims.slots.free == 0 {
                break;
            }
            if !self.by_state_allows(&local.claims.slots, &issue) {
                continue;
            }
            let attempt = local.prior_attempts.get(&issue.id).copied().unwrap_or(0) + 1;
            if attempt > workflow.execution.max_attempts {
                continue;
            }
            let Some(issue) = self.reread(&issue, |fresh| routable(workflow, &slug, fresh)) else {
                continue;
            };
            if !self.dispatch(
                &issue,
                attempt,
                "recovered in-progress lane with no live owner",
            ) {
                return;
            }
            take_state_slot(&mut local.claims.slots, &issue);
            local.claims.slots.free = local.claims.slots.free.saturating_sub(1);
        }
        let selection = selection::select(issues, policy, &self.project_slug, &local.claims);
        let eligible: Vec<Issue> = selection
            .eligible()
            .map(|candidate| candidate.issue.clone())
            .collect();
        for issue in eligible {
            let attempt = local.prior_attempts.get(&issue.id).copied().unwrap_or(0) + 1;
            let still_eligible = |fresh: &Issue| {
                selection::check(fresh, policy, &slug, &local.claims.held)
                    .map_err(|reason| reason.to_string())
            };
            let Some(issue) = self.reread(&issue, still_eligible) else {
                continue;
            };
            if !self.dispatch(&issue, attempt, "eligible, first in dispatch order") {
                return;
            }
        }
    }

    /// Reads `issue` again right before its dispatch and returns the fresh copy when `still`
    /// accepts it. The mirror may be a poll old, and a blocking relation can be added without
    /// the issue's stamp moving; the child re-checks too, but a child that only finds out
    /// costs a process and a slot.
    fn reread(
        &mut self,
        issue: &Issue,
        still: impl Fn(&Issue) -> Result<(), String>,
    ) -> Option<Issue> {
        let fresh = match self.intake.confirm(std::slice::from_ref(&issue.id)) {
            Ok(fresh) => fresh.into_iter().next(),
            Err(error) => {
                self.tracker_error("read before dispatch", &error);
                return None;
            }
        };
        let verdict = match &fresh {
            Some(fresh) => still(fresh),
            None => Err("the issue is no longer visible in the project".to_string()),
        };
        match verdict {
            Ok(()) => fresh,
            Err(reason) => {
                log::info!(
                    "not dispatched issue={} reason=\"{reason}\" (read again before dispatch)",
                    issue.identifier
                );
                None
            }
        }
    }

    fn by_state_allows(&self, slots: &selection::Slots, issue: &Issue) -> bool {
        slots
            .by_state
            .iter()
            .find(|cap| crate::workflow::same_state(&cap.state, &issue.state.name))
            .is_none_or(|cap| cap.free > 0)
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

/// The states whose issues the intake mirrors: startable plus in progress.
fn active_states(workflow: &Workflow) -> Vec<String> {
    let policy = &workflow.tracker;
    let mut states = policy.startable_states.clone();
    states.push(policy.in_progress_state.clone());
    states
}

fn take_state_slot(slots: &mut selection::Slots, issue: &Issue) {
    if let Some(cap) = slots
        .by_state
        .iter_mut()
        .find(|cap| crate::workflow::same_state(&cap.state, &issue.state.name))
    {
        cap.free = cap.free.saturating_sub(1);
    }
}

/// Whether an issue may still be worked: in the project, startable or in progress, not
/// terminal, not opted out, not flagged for a human.
pub(super) fn routable(
    workflow: &Workflow,
    project_slug: &str,
    issue: &Issue,
) -> Result<(), String> {
    let policy = &workflow.tracker;
    if issue.project_slug.as_deref() != Some(project_slug) {
        return Err("the issue is in another project".into());
    }
    if policy.is_terminal(&issue.state.name) {
        return Err(format!("issue is {}", issue.state.name));
    }
    if !policy.is_startable(&issue.state.name) && !policy.is_in_progress(&issue.state.name) {
        return Err(format!("issue moved to {}", issue.state.name));
    }
    if issue.has_label(&policy.opt_out_label) {
        return Err(format!("label {}", policy.opt_out_label));
    }
    if issue.has_label(&policy.needs_attention_label) {
        return Err(format!("label {}", policy.needs_attention_label));
    }
    Ok(())
}
