//! Carrying out the post-review lifecycle's steps (docs/spec/review.md, "Executing a
//! decision"): every side effect is recorded in the lane's review record as an intent before it
//! is taken and as done after, so a `kill -9` at any point converges on restart: one merge (a
//! merge request whose answer was lost is judged from the next read), one closeout comment and
//! one human-path comment (an interrupted post is looked for by its marker line before posting
//! again), no orphaned lane (cleanup and a cancelled lane's removal resume), one child per
//! repair (its run id is recorded before it is spawned).
//!
//! A step that fails (GitHub or the tracker unreachable, no slot) leaves the record where it
//! is, logged; the next tick tries again. What to do was decided before, by `review.rs` and
//! `review::decide`.

use super::Daemon;
use super::action::RepairEnd;
use super::action::{ReviewStep, Step, Verb};
use super::children::{self, Child, SpawnSpec, StopReason};
use super::review;
use crate::review::{
    self as lifecycle, Action as LaneAction, Decision, IssueState, LaneFacts, Phase, RepairResult,
    ReviewRecord, texts,
};
use crate::workspace::record::{self, ErrorClass, IssueRef, RunRecord, RunStatus};
use crate::workspace::{Error as WorkspaceError, lane, lock};
use crate::{atomic_file, clock, github, tracker};

/// Decisions one step may chain (merge → closeout → cleanup), so a tick can land a ready PR.
const MAX_CHAIN: usize = 4;

impl Daemon {
    /// Carries out one review step. `dispatching` says whether this tick may still take a
    /// slot; false back means a repair found no free slot (later dispatches wait).
    pub(super) fn review_step(&mut self, step: ReviewStep, dispatching: bool) -> bool {
        let ReviewStep {
            mut record,
            issue,
            step,
        } = step;
        match step {
            Step::Decide(decision) => self.carry_out(&mut record, &issue, decision, dispatching),
            Step::RepairEnded { run_id, end } => {
                self.repair_ended(&mut record, &run_id, end, dispatching)
            }
            Step::SpawnRepair { run_id } if dispatching => self.spawn_repair(&mut record, run_id),
            Step::SpawnRepair { .. } => false,
            Step::Notify => {
                self.notify(&mut record);
                true
            }
            Step::RemoveLane => {
                self.remove_cancelled(&mut record);
                true
            }
        }
    }

    /// Records `decision`, then acts on it; a merge or a closeout that succeeds goes on to the
    /// next phase's decision in the same tick.
    fn carry_out(
        &mut self,
        record: &mut ReviewRecord,
        issue: &IssueState,
        decision: Decision,
        dispatching: bool,
    ) -> bool {
        let policy = self.store.current().review.clone();
        let mut decision = decision;
        for _ in 0..MAX_CHAIN {
            let now = clock::now_rfc3339();
            if decision.phase != record.phase || decision.action != LaneAction::Wait {
                log::info!(
                    "review step issue={} phase={} next={} action={} reason=\"{}\"",
                    record.identifier,
                    record.phase,
                    decision.phase,
                    Verb::Review.as_str(),
                    crate::escape::text(&decision.reason)
                );
            }
            match decision.action.clone() {
                LaneAction::Wait => {
                    record.apply(&decision, &now);
                    self.save_review(record);
                    return true;
                }
                LaneAction::Repair { attempt, feedback } => {
                    let input = texts::repair_input(record, attempt, policy.max_repairs, &feedback);
                    let path = self.layout.review_repair_input_file(&record.key, attempt);
                    if let Err(error) = atomic_file::write(&path, input.as_bytes()) {
                        log::error!(
                            "cannot write the repair's feedback issue={} path={} error={error}",
                            record.identifier,
                            path.display()
                        );
                        return true;
                    }
                    record.apply(&decision, &now);
                    if !self.save_review(record) {
                        return true;
                    }
                    return dispatching && self.spawn_repair(record, None);
                }
                LaneAction::Merge { sha, method } => {
                    record.apply(&decision, &now);
                    if !self.save_review(record) {
                        return true;
                    }
                    let answer = self.merge(record, method, &sha);
                    match &answer {
                        Ok(merged) => log::info!(
                            "merged issue={} pr={} head={sha} merge_commit={} action={}",
                            record.identifier,
                            record.pr_url,
                            merged.sha,
                            Verb::Review.as_str()
                        ),
                        Err(error) => log::warn!(
                            "merge not done issue={} pr={} head={sha} error={error}",
                            record.identifier,
                            record.pr_url
                        ),
                    }
                    record.finish_merge(&policy, &answer, &clock::now_rfc3339());
                    if !self.save_review(record) || record.phase != Phase::DeliveryCloseout {
                        return true;
                    }
                }
                LaneAction::Closeout {
                    move_state,
                    post_comment,
                    ..
                } => {
                    record.apply(&decision, &now);
                    if !self.save_review(record)
                        || !self.close_out(record, move_state, post_comment)
                    {
                        return true;
                    }
                    record.finish_closeout(&clock::now_rfc3339());
                    log::info!(
                        "closed out issue={} pr={} action={}",
                        record.identifier,
                        record.pr_url,
                        Verb::Review.as_str()
                    );
                    if !self.save_review(record) {
                        return true;
                    }
                }
                LaneAction::Cleanup {
                    delete_branch,
                    remove_lane,
                } => {
                    record.apply(&decision, &now);
                    if self.save_review(record) {
                        self.clean_up(record, &policy, delete_branch, remove_lane);
                    }
                    return true;
                }
                LaneAction::Human { open_feedback } => {
                    self.hand_to_person(record, &decision, &open_feedback);
                    return true;
                }
                LaneAction::Cancel => {
                    record.apply(&decision, &now);
                    if self.save_review(record) {
                        self.remove_cancelled(record);
                    }
                    return true;
                }
                LaneAction::Release => {
                    record.apply(&decision, &now);
                    if self.save_review(record) && !self.stop_repair(record, StopReason::Inactive) {
                        record.close_repair(RepairResult::Failed {
                            reason: "the issue left review before the repair ran".into(),
                        });
                        self.save_review(record);
                    }
                    return true;
                }
            }
            // Merged or closed out: the next phase's step follows at once.
            let facts = LaneFacts {
                record,
                issue,
                repair_running: false,
            };
            decision = lifecycle::decide(&policy, &facts, None);
        }
        true
    }

    /// The merge request, pinned to the validated head, through this tick's GitHub client.
    fn merge(
        &mut self,
        record: &ReviewRecord,
        method: github::MergeMethod,
        sha: &str,
    ) -> Result<github::Merged, github::Error> {
        let repo = record.repo_ref().ok_or_else(|| github::Error::Untrusted {
            url: record.pr_url.clone(),
            message: "the review record names no owner/name repository".into(),
        })?;
        let config = self.config.github.clone();
        self.github(&config)?
            .merge(&repo, record.number, method, sha)
    }

    /// The closeout's tracker steps: the issue to `completed_state` (when `move_state`), then
    /// the closeout comment, each recorded as done before the next. An attempted comment is
    /// looked for by its marker line first. False when a step failed (the next tick resumes).
    fn close_out(
        &mut self,
        record: &mut ReviewRecord,
        move_state: bool,
        post_comment: bool,
    ) -> bool {
        let completed = match self.store.current().completed_state() {
            Ok(state) => state.to_string(),
            Err(error) => {
                log::error!(
                    "closeout not possible issue={} error={error}",
                    record.identifier
                );
                return false;
            }
        };
        let Some(tracker) = self.take_tracker() else {
            return false;
        };
        let done = self.closeout_steps(
            tracker.as_ref(),
            record,
            &completed,
            move_state,
            post_comment,
        );
        self.review_clients.tracker = Some(tracker);
        done
    }

    fn closeout_steps(
        &self,
        tracker: &dyn tracker::Tracker,
        record: &mut ReviewRecord,
        completed: &str,
        move_state: bool,
        post_comment: bool,
    ) -> bool {
        let issue_id = record.issue_id.clone();
        if move_state && !record.closeout.state_moved {
            if let Err(error) = tracker.transition(&issue_id, completed) {
                self.tracker_error("closeout transition", &error);
                return false;
            }
            record.closeout.state_moved = true;
            if !self.save_review(record) {
                return false;
            }
        }
        if post_comment && !record.closeout.comment_posted {
            let marker = texts::closeout_marker(record);
            match self.posted_before(
                tracker,
                &issue_id,
                &marker,
                record.closeout.comment_attempted,
            ) {
                Some(true) => {}
                Some(false) => {
                    record.closeout.comment_attempted = true;
                    if !self.save_review(record) {
                        return false;
                    }
                    if let Err(error) =
                        tracker.add_comment(&issue_id, &texts::closeout_comment(record))
                    {
                        self.tracker_error("closeout comment", &error);
                        return false;
                    }
                }
                None => return false,
            }
        }
        true
    }

    /// Whether a comment with `marker` is already on the issue: asked only when a post was
    /// attempted before (else it cannot be there). `None` when the tracker could not say.
    fn posted_before(
        &self,
        tracker: &dyn tracker::Tracker,
        issue_id: &str,
        marker: &str,
        attempted: bool,
    ) -> Option<bool> {
        if !attempted {
            return Some(false);
        }
        match tracker.comments_containing(issue_id, marker) {
            Ok(found) => {
                if !found.is_empty() {
                    log::info!(
                        "comment found on the issue, not posted again issue={issue_id} marker=\"{marker}\""
                    );
                }
                Some(!found.is_empty())
            }
            Err(error) => {
                self.tracker_error("read of the issue's comments", &error);
                None
            }
        }
    }

    /// Cleanup: the remote branch (when `delete_branch`; already gone is fine), then the lane
    /// once no process works in it. Each step recorded when done.
    fn clean_up(
        &mut self,
        record: &mut ReviewRecord,
        policy: &crate::workflow::ReviewPolicy,
        delete_branch: bool,
        remove_lane: bool,
    ) {
        if delete_branch && record.cleanup.branch.is_none() {
            let Some(repo) = record.repo_ref() else {
                log::warn!(
                    "branch not deleted issue={}: no repository in the record",
                    record.identifier
                );
                return;
            };
            let config = self.config.github.clone();
            let deleted = self
                .github(&config)
                .and_then(|client| client.delete_branch(&repo, &record.branch));
            match deleted {
                Ok(deletion) => {
                    record.branch_cleaned(Some(deletion));
                    log::info!(
                        "branch deleted issue={} branch={} result={:?}",
                        record.identifier,
                        record.branch,
                        deletion
                    );
                }
                Err(error) => {
                    log::warn!(
                        "branch not deleted, next tick tries again issue={} branch={} error={error}",
                        record.identifier,
                        record.branch
                    );
                    return;
                }
            }
            if !self.save_review(record) {
                return;
            }
        } else if record.cleanup.branch.is_none() && !policy.delete_branch {
            record.branch_cleaned(None);
            if !self.save_review(record) {
                return;
            }
        }
        if remove_lane && !record.cleanup.lane_removed {
            if self.works_on(&record.issue_id) {
                log::debug!(
                    "lane removal waits for its process issue={}",
                    record.identifier
                );
                return;
            }
            if self.remove_review_lane(record) {
                record.finish_cleanup(&clock::now_rfc3339());
                if self.save_review(record) {
                    log::info!(
                        "lane done issue={} pr={} action={} reason=\"merged, closed out and cleaned up\"",
                        record.identifier,
                        record.pr_url,
                        Verb::Review.as_str()
                    );
                }
            }
        }
    }

    /// Removes the lane (`before_remove` first), under the name the bookkeeping remembers.
    /// A directory Maestro cannot prove it created is kept and counts as done (logged): it is
    /// not Maestro's to delete.
    fn remove_review_lane(&self, record: &ReviewRecord) -> bool {
        let workflow = self.store.current();
        let issue = IssueRef {
            id: &record.issue_id,
            identifier: &record.identifier,
        };
        let lane_key = record::find_issue_state(&self.layout, issue)
            .ok()
            .flatten()
            .map_or_else(|| record.lane(), |state| state.lane());
        match lane::remove(
            &self.layout,
            &lane_key,
            &workflow.hooks,
            &self.config.secret_env_vars(),
        ) {
            Ok(()) => {
                log::info!("lane removed issue={} lane={lane_key}", record.identifier);
                true
            }
            Err(error @ WorkspaceError::NotOwned { .. }) => {
                log::warn!(
                    "lane kept, not provably maestro's issue={} error={error}",
                    record.identifier
                );
                true
            }
            Err(error) => {
                log::warn!(
                    "cannot remove lane, next tick tries again issue={} error={error}",
                    record.identifier
                );
                false
            }
        }
    }

    /// The human path: the comment's text kept first (it lists the feedback this read saw),
    /// then the phase recorded, a running repair stopped, the label and the comment.
    fn hand_to_person(
        &mut self,
        record: &mut ReviewRecord,
        decision: &Decision,
        open: &[lifecycle::Feedback],
    ) {
        let text = texts::human_comment(record, &decision.reason, open);
        let path = self.layout.review_human_comment_file(&record.key);
        if let Err(error) = atomic_file::write(&path, text.as_bytes()) {
            log::error!(
                "cannot write the human-path comment issue={} path={} error={error}",
                record.identifier,
                path.display()
            );
            return;
        }
        record.apply(decision, &clock::now_rfc3339());
        if !self.save_review(record) {
            return;
        }
        log::warn!(
            "lane needs a person issue={} pr={} action={} reason=\"{}\"",
            record.identifier,
            record.pr_url,
            Verb::Review.as_str(),
            crate::escape::text(&decision.reason)
        );
        if !self.stop_repair(record, StopReason::Inactive) && record.current_repair().is_some() {
            record.close_repair(RepairResult::Failed {
                reason: "the lane went to a person before the repair ran".into(),
            });
            self.save_review(record);
        }
        self.notify(record);
    }

    /// The human path's tracker steps: the needs-attention label, then the comment (looked for
    /// by its marker when a post was attempted before), each recorded when done.
    fn notify(&mut self, record: &mut ReviewRecord) {
        let Some(tracker) = self.take_tracker() else {
            return;
        };
        self.notify_steps(tracker.as_ref(), record);
        self.review_clients.tracker = Some(tracker);
    }

    fn notify_steps(&self, tracker: &dyn tracker::Tracker, record: &mut ReviewRecord) {
        let issue_id = record.issue_id.clone();
        if !record.notice.label_added {
            let label = self.store.current().tracker.needs_attention_label.clone();
            match tracker.add_label(&issue_id, &label) {
                Ok(()) => {}
                Err(error @ tracker::Error::UnknownLabel { .. }) => log::warn!(
                    "needs-attention label missing on the team, comment only issue={} error={error}",
                    record.identifier
                ),
                Err(error) => {
                    self.tracker_error("needs-attention label", &error);
                    return;
                }
            }
            record.notice.label_added = true;
            if !self.save_review(record) {
                return;
            }
        }
        if !record.notice.comment_posted {
            let marker = texts::human_marker(record);
            match self.posted_before(tracker, &issue_id, &marker, record.notice.comment_attempted) {
                Some(true) => {}
                Some(false) => {
                    let path = self.layout.review_human_comment_file(&record.key);
                    let body = std::fs::read_to_string(&path)
                        .ok()
                        .filter(|body| body.contains(&marker))
                        .unwrap_or_else(|| texts::human_comment(record, &record.reason, &[]));
                    record.notice.comment_attempted = true;
                    if !self.save_review(record) {
                        return;
                    }
                    if let Err(error) = tracker.add_comment(&issue_id, &body) {
                        self.tracker_error("human-path comment", &error);
                        return;
                    }
                }
                None => return,
            }
            record.notice.comment_posted = true;
            self.save_review(record);
        }
    }

    /// A cancelled lane: its repair stopped first, then the lane removed (the PR and its branch
    /// are left as they are).
    fn remove_cancelled(&mut self, record: &mut ReviewRecord) {
        if self.stop_repair(record, StopReason::Terminal) {
            return;
        }
        if record.current_repair().is_some() {
            record.close_repair(RepairResult::Failed {
                reason: "the issue was cancelled".into(),
            });
        }
        if self.remove_review_lane(record) {
            record.cleanup.lane_removed = true;
            self.save_review(record);
        }
    }

    /// Asks this daemon's child working on the lane's issue to stop; true while a process
    /// still works on it (ours stopping, or another holding its lease).
    fn stop_repair(&mut self, record: &ReviewRecord, reason: StopReason) -> bool {
        for child in self
            .children
            .iter_mut()
            .filter(|child| child.issue_id == record.issue_id && child.stop.is_none())
        {
            log::info!(
                "stopping repair issue={} run_id={} action={} reason=\"the lane moved to {}\"",
                child.identifier,
                child.run_id,
                Verb::Review.as_str(),
                record.phase
            );
            children::request_stop(child, reason.clone());
        }
        self.works_on(&record.issue_id)
    }

    /// Takes a slot and spawns the current repair's child under `run_id` (or a new one), whose
    /// run id is recorded before the spawn. False when no slot is free or the spawn failed.
    fn spawn_repair(&mut self, record: &mut ReviewRecord, run_id: Option<String>) -> bool {
        let Some(repair) = record.current_repair().cloned() else {
            return true;
        };
        let workflow = self.store.current();
        let input = self
            .layout
            .review_repair_input_file(&record.key, repair.attempt);
        if !input.is_file() {
            let result = RepairResult::Failed {
                reason: format!("the repair's feedback file {} is missing", input.display()),
            };
            record.finish_repair(&workflow.review, result, &clock::now_rfc3339());
            self.save_review(record);
            return true;
        }
        let max = workflow.execution.max_concurrent_agents as usize;
        let slot = match lock::acquire_slot(&self.layout, max) {
            Ok(Some(slot)) => slot,
            Ok(None) => return false,
            Err(error) => {
                log::error!("cannot take a dispatch slot error={error}");
                return false;
            }
        };
        let lane_key = record::find_issue_state(
            &self.layout,
            IssueRef {
                id: &record.issue_id,
                identifier: &record.identifier,
            },
        )
        .ok()
        .flatten()
        .map_or_else(|| record.lane(), |state| state.lane());
        let run_id = run_id
            .unwrap_or_else(|| record::new_run_id(&format!("{lane_key}-repair"), repair.attempt));
        record.repair_started(&run_id);
        if !self.save_review(record) {
            return true;
        }
        let snapshot = self.snapshot_path();
        let spec = SpawnSpec {
            config_path: &self.config.path,
            workflow_snapshot: &snapshot,
            issue_id: &record.issue_id,
            identifier: &record.identifier,
            run_id: &run_id,
            attempt: repair.attempt,
            repair: true,
        };
        match children::spawn(&self.layout, &spec, slot, &self.events) {
            Ok(child) => {
                log::info!(
                    "dispatched issue={} run_id={run_id} attempt={} pid={} action={} reason=\"repair {} of {}\" log={}",
                    record.identifier,
                    repair.attempt,
                    child.pid,
                    Verb::Dispatch.as_str(),
                    repair.attempt,
                    workflow.review.max_repairs,
                    self.layout.log_file(&run_id).display()
                );
                self.children.push(child);
                true
            }
            Err(error) => {
                log::error!(
                    "cannot spawn the repair issue={} run_id={run_id} error={error}",
                    record.identifier
                );
                false
            }
        }
    }

    /// Records how the current repair (`run_id`) ended: its result decides the next phase
    /// while the lane waits for it; a lane that moved on meanwhile only keeps the result.
    fn repair_ended(
        &mut self,
        record: &mut ReviewRecord,
        run_id: &str,
        end: RepairEnd,
        dispatching: bool,
    ) -> bool {
        let current = record
            .current_repair()
            .and_then(|repair| repair.run_id.clone());
        if current.as_deref() != Some(run_id) {
            return true;
        }
        let policy = self.store.current().review.clone();
        let waiting = record.phase == Phase::ReviewRepair;
        match end {
            RepairEnd::Respawn if waiting => dispatching && self.spawn_repair(record, None),
            RepairEnd::Respawn => {
                record.close_repair(RepairResult::Failed {
                    reason: "interrupted".into(),
                });
                self.save_review(record);
                true
            }
            RepairEnd::Result(result) if waiting => {
                let now_ms = clock::now_ms();
                let decision = record.finish_repair(&policy, result, &clock::format_ms(now_ms));
                // The new head (or the reopened feedback) is read at the next tick.
                record.last_read_at = None;
                record.schedule_read(&policy, now_ms);
                if self.save_review(record) {
                    log::info!(
                        "repair ended issue={} run_id={run_id} action={} reason=\"{}\"",
                        record.identifier,
                        Verb::Review.as_str(),
                        crate::escape::text(&decision.reason)
                    );
                }
                true
            }
            RepairEnd::Result(result) => {
                record.close_repair(result);
                self.save_review(record);
                true
            }
            RepairEnd::AskedForHuman(reason) => {
                record.close_repair(RepairResult::Failed {
                    reason: reason.clone(),
                });
                if record.phase.is_ending() {
                    self.save_review(record);
                } else {
                    let decision = Decision {
                        phase: Phase::Human,
                        action: LaneAction::Human {
                            open_feedback: Vec::new(),
                        },
                        reason,
                        waiting_for: String::new(),
                    };
                    self.hand_to_person(record, &decision, &[]);
                }
                true
            }
        }
    }

    /// A finished child that was a review repair: its run record finished with the daemon's
    /// view when the child could not, and its end recorded in the review record. False when
    /// the child was no repair (the ordinary exit rules apply).
    pub(super) fn repair_exited(
        &mut self,
        child: &Child,
        run: Option<&RunRecord>,
        code: Option<i32>,
    ) -> bool {
        let Some(mut record) = self.repair_record_of(&child.issue_id, &child.run_id) else {
            return false;
        };
        // The exited child holds nothing any more: a lease held under its run id is another
        // process's (two daemons raced to start this very run, and the other one won it). That
        // one works on and writes the record; nothing has ended.
        if lock::lease_holder(&self.layout, &record::issue_key(&child.issue_id))
            .ok()
            .flatten()
            .is_some_and(|owner| owner.run_id == child.run_id)
        {
            return true;
        }
        let stop = child.stop.as_ref().map(|(reason, _)| reason);
        let mut run = run.cloned();
        if let Some(unfinished) = run.as_mut() {
            let stalled = matches!(stop, Some(StopReason::Stalled { .. }));
            if unfinished.status == RunStatus::Running || stalled {
                let (status, class) = if stalled {
                    (RunStatus::Stalled, ErrorClass::StalledRunDetected)
                } else {
                    (RunStatus::Failed, ErrorClass::ChildExited(code))
                };
                unfinished.status = status;
                unfinished.phase = record::Phase::Finished;
                unfinished
                    .finished_at
                    .get_or_insert_with(clock::now_rfc3339);
                unfinished.error_class = Some(class);
                unfinished.error_message = Some(
                    "the repair process ended without recording an outcome, or was stopped for no progress"
                        .into(),
                );
                if let Err(error) = record::save_run(&self.layout, unfinished) {
                    log::error!(
                        "cannot update run record run_id={} error={error}",
                        child.run_id
                    );
                }
            }
        }
        let end = review::repair_end(run.as_ref(), code, stop);
        self.repair_ended(&mut record, &child.run_id, end, true);
        true
    }

    /// A handoff run whose review record is missing (the run could not write it): written here
    /// from the run record, so the lifecycle starts anyway.
    pub(super) fn review_after_handoff(&self, child: &Child, run: &RunRecord) {
        let workflow = self.store.current();
        let existing = ReviewRecord::load(&self.layout, &record::issue_key(&run.issue_id))
            .ok()
            .flatten();
        let Some(review) = review::missing_after_handoff(
            run,
            existing.as_ref(),
            &workflow.review,
            &self.config.github.api_url,
            &child.lane_key,
            clock::now_ms(),
        ) else {
            return;
        };
        if self.save_review(&review) {
            log::warn!(
                "review record written by the daemon (the run could not) issue={} run_id={}",
                run.issue_identifier,
                run.run_id
            );
        }
    }

    /// Writes the record; false (logged) when it could not be written, and then nothing that
    /// it was to record the intent of may happen.
    fn save_review(&self, record: &ReviewRecord) -> bool {
        match record.save(&self.layout) {
            Ok(()) => true,
            Err(error) => {
                log::error!(
                    "cannot write the review record issue={} error={error}",
                    record.identifier
                );
                false
            }
        }
    }
}
