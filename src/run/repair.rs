//! A review repair (`run --once --repair`, started by the daemon; docs/spec/review.md): the
//! retained lane of an issue in review re-entered to address the PR's feedback, under the same
//! slot, lease and lane-lock discipline as any attempt.
//!
//! What differs from an attempt: the job comes from the lane's review record (the repair the
//! daemon recorded, with this run's id) and the feedback file the daemon wrote beside it; the
//! lane must already exist (a fresh clone would not hold the PR branch's work); the issue must
//! stay in `success_state`; the agent gets the repair's tools and its first turn is the
//! feedback itself; a repair that pushes no new head, or fails validation, is a failed repair;
//! and the end writes no state to the tracker (the issue stays in review), only a comment when
//! a new head was pushed and validated. The daemon reads this run's record and writes the
//! outcome into the review record; a repair never counts against `max_attempts`.

use std::sync::Arc;

use super::progress::Progress;
use super::tools::IssueTools;
use super::verdict::{self, Declared, Failure};
use super::{Ending, LaneRun, Outcome, Summary, redact, repair_prompt, tracker_failure};
use crate::app_server::Session;
use crate::review::{Phase as ReviewPhase, ReviewRecord};
use crate::selection;
use crate::tracker::Issue;
use crate::workspace::Layout;
use crate::workspace::lane::Lane;
use crate::workspace::record::{
    self, Disposition, ErrorClass, IssueRef, IssueState, Phase, RetryDecision, RunStatus,
};
use crate::{clock, workflow::ReviewPolicy};

/// What one repair works from.
#[derive(Debug, Clone)]
pub struct Job {
    pub record: ReviewRecord,
    /// 1-based, as the review record numbers it.
    pub attempt: u32,
    /// The first turn's input: the feedback, as `review::texts::repair_input` wrote it.
    pub feedback: String,
}

/// The repair the daemon asked for: the issue's review record must be in `review_repair` with
/// its current repair started as `run_id`, and the feedback file must be there. `Err` says why
/// there is nothing to repair (the run then does nothing, exit 3).
pub fn job(layout: &Layout, issue_id: &str, run_id: &str) -> Result<Job, String> {
    let key = record::issue_key(issue_id);
    let record = ReviewRecord::load(layout, &key)
        .map_err(|error| format!("the review record cannot be read: {error}"))?
        .ok_or_else(|| "the issue has no review record".to_string())?;
    if record.phase != ReviewPhase::ReviewRepair {
        return Err(format!(
            "the review record is in {}, not review_repair",
            record.phase
        ));
    }
    let repair = record
        .current_repair()
        .filter(|repair| repair.run_id.as_deref() == Some(run_id))
        .ok_or_else(|| format!("the review record names no unfinished repair run {run_id}"))?;
    let attempt = repair.attempt;
    let path = layout.review_repair_input_file(&key, attempt);
    let feedback = std::fs::read_to_string(&path).map_err(|error| {
        format!(
            "the repair's feedback {} cannot be read: {error}",
            path.display()
        )
    })?;
    Ok(Job {
        record,
        attempt,
        feedback,
    })
}

impl LaneRun<'_> {
    /// After a PR-backed handoff was written, with `[review] enabled`: the lane's review record
    /// in `review_wait` (the issue stays in review, the lane and its branch are kept), from
    /// which the daemon drives the post-review lifecycle. A record that cannot be written is
    /// logged; the daemon writes it from this run's record when it sees the run end.
    pub(super) fn start_review(&self, run: &record::RunRecord, handoff: &super::tools::Handoff) {
        let policy = self.review_policy();
        let super::handoff::Review::PullRequest { url, repo, number } = &handoff.review else {
            return;
        };
        if !policy.enabled {
            return;
        }
        let key = record::issue_key(&self.issue.id);
        let now_ms = clock::now_ms();
        let mut review = ReviewRecord::from_handoff(
            &crate::review::Handoff {
                issue_id: &self.issue.id,
                identifier: &self.issue.identifier,
                key: &key,
                pr_url: url,
                repo,
                number: *number,
                branch: self.branch,
                validated_head: &handoff.head_sha,
                run_id: &run.run_id,
            },
            &clock::format_ms(now_ms),
        );
        review.lane_key = Some(self.lane_key.to_string());
        review.schedule_read(policy, now_ms);
        match review.save(self.layout) {
            Ok(()) => log::info!(
                "review started issue={} run_id={} phase={} pr={url}",
                self.issue.identifier,
                run.run_id,
                review.phase
            ),
            Err(error) => log::error!(
                "cannot write the review record issue={} error={error}",
                self.issue.identifier
            ),
        }
    }

    /// The review policy in force for this repair.
    fn review_policy(&self) -> &ReviewPolicy {
        &self.settings.workflow.review
    }

    /// The agent session of a repair: turns until finalized or out of turns, then validation
    /// of the repaired head.
    pub(super) fn repair_agent(
        &self,
        progress: &mut Progress,
        lane: &Lane,
        issue: &Issue,
        job: &Job,
    ) -> Ending {
        let workflow = &self.settings.workflow;
        let secrets = redact::Secrets::from_env(&self.secrets());
        let instructions = repair_prompt::instructions(
            workflow,
            &lane.path,
            &issue.identifier,
            self.review_policy().max_repairs,
            &secrets,
        );
        progress.record.context_skipped = instructions.skipped;
        let stop = Arc::clone(&self.options.stop);
        let session_config = self.session_config(
            progress,
            lane,
            instructions.text,
            repair_prompt::definitions(),
            &stop,
        );
        progress.phase(Phase::Executing);
        let mut session = match Session::start(session_config) {
            Ok(session) => session,
            Err(error) => {
                return Ending::Failed(Failure::retryable(
                    ErrorClass::AppServerStartFailed,
                    error.to_string(),
                ));
            }
        };
        // Repairs run in local lanes only (settings refuse `[review] repair` with `[worker]`).
        let place = crate::worker::Place::Local;
        let tools = IssueTools::new(self.tool_context(
            issue,
            lane,
            &place,
            &stop,
            &secrets,
            Some(job.record.pr_url.clone()),
        ));
        let ending = self.repair_turns(progress, &mut session, &tools, lane, issue, job, &secrets);
        self.end_session(progress, session, &tools, ending)
    }

    #[allow(clippy::too_many_arguments)] // One repair's context; a struct would only rename it.
    fn repair_turns(
        &self,
        progress: &mut Progress,
        session: &mut Session,
        tools: &IssueTools<'_>,
        lane: &Lane,
        issue: &Issue,
        job: &Job,
        secrets: &redact::Secrets,
    ) -> Ending {
        let workflow = &self.settings.workflow;
        let execution = &workflow.execution;
        let mut input = repair_prompt::first_turn(&job.feedback, &lane.path, secrets);
        for turn in 1..=execution.max_turns {
            if let Some(ending) =
                self.turn(progress, session, tools, issue, &input, turn, "repair turn")
            {
                return ending;
            }
            let state = tools.state();
            if !state.finalized.is_empty() || turn == execution.max_turns {
                break;
            }
            progress.phase(Phase::WaitingContinuation);
            match self.tracker.refresh(std::slice::from_ref(&issue.id)) {
                Ok(fresh) => {
                    if let Some(ending) = self.left_review(fresh.first(), &issue.identifier) {
                        return ending;
                    }
                }
                Err(error) => return Ending::Failed(tracker_failure(&error)),
            }
            input = repair_prompt::continuation(turn + 1, execution.max_turns, secrets);
        }
        let state = tools.state();
        if let Some((error_class, message)) = &state.github_credentials {
            return Ending::Failed(Failure::human(error_class.clone(), message.clone()));
        }
        let declared = verdict::declared_repair(&state, &workflow.tracker);
        progress.record.disposition = Some(match &declared {
            Declared::ReviewHandoff(_) => Disposition::ReviewRepair,
            other => other.disposition(),
        });
        match declared {
            Declared::Invalid(reason) => {
                Ending::Failed(Failure::human(ErrorClass::InvalidDisposition, reason))
            }
            Declared::ManualAttention => Ending::ManualAttention,
            Declared::ReviewHandoff(handoff) if handoff.head_sha == job.record.validated_head => {
                Ending::Failed(Failure::retryable(
                    ErrorClass::RepairPushedNothing,
                    format!(
                        "the repair recorded the PR at {}, the head maestro had already validated: nothing new was pushed",
                        handoff.head_sha
                    ),
                ))
            }
            Declared::ReviewHandoff(handoff) => self.validate(progress, tools, lane, handoff),
        }
    }

    /// `Some` ending when the issue is no longer where a repair works: gone, terminal, or moved
    /// out of review by a person (then nothing is written, as for an attempt).
    fn left_review(&self, fresh: Option<&Issue>, identifier: &str) -> Option<Ending> {
        let policy = &self.settings.workflow.tracker;
        let Some(fresh) = fresh else {
            return Some(Ending::Left {
                status: RunStatus::Interrupted,
                reason: format!("{identifier} is no longer visible in the project"),
            });
        };
        match selection::repairable(fresh, policy, &self.settings.project_slug) {
            Ok(()) => None,
            Err(selection::Reason::Terminal { state }) => Some(Ending::Left {
                status: RunStatus::Terminated,
                reason: format!("{identifier} moved to {state} during the repair"),
            }),
            Err(reason) => Some(Ending::Left {
                status: RunStatus::Interrupted,
                reason: format!("{identifier} left review during the repair: {reason}"),
            }),
        }
    }

    /// The end of a repair: the comment of a validated new head (the issue's state is never
    /// written), the final record and the bookkeeping. What the outcome means for the lane is
    /// the daemon's to record in the review record.
    pub(super) fn conclude_repair(
        &self,
        progress: &mut Progress,
        ending: Ending,
        job: &Job,
    ) -> Summary {
        progress.phase(Phase::WritingBack);
        let max_repairs = self.review_policy().max_repairs;
        let (status, outcome, next_action) = match ending {
            Ending::Validated(handoff) => {
                progress.record.head_sha = Some(handoff.head_sha.clone());
                let body = repair_prompt::repaired_comment(
                    &progress.record,
                    max_repairs,
                    &handoff,
                    &self.host_paths,
                );
                // The comment is the timeline's note of the new head; the repair's outcome is
                // its record, so a tracker that refuses the note does not fail the repair.
                if let Err(error) = self.tracker.add_comment(&self.issue.id, &body) {
                    log::warn!(
                        "repair comment not posted issue={} run_id={} error={error}",
                        self.issue.identifier,
                        progress.record.run_id
                    );
                }
                (
                    RunStatus::Handoff,
                    Outcome::Handoff {
                        review: format!(
                            "{} commit={} repair={}",
                            handoff.outcome_field(),
                            handoff.head_sha,
                            job.attempt
                        ),
                    },
                    "the daemon reads the pull request again".to_string(),
                )
            }
            Ending::Failed(failure) => {
                progress.record.error_class = Some(failure.error_class.clone());
                progress.record.error_message =
                    Some(super::writeback::scrub(&failure.message, &self.host_paths));
                log::warn!(
                    "repair failed issue={} run_id={} repair={} error_class={}",
                    self.issue.identifier,
                    progress.record.run_id,
                    job.attempt,
                    failure.error_class
                );
                (
                    RunStatus::Failed,
                    Outcome::RetryScheduled {
                        error_class: failure.error_class,
                    },
                    format!(
                        "the daemon decides: another repair (of {max_repairs}) or the human path"
                    ),
                )
            }
            Ending::ManualAttention => {
                let class = ErrorClass::ManualAttention;
                progress.record.error_class = Some(class.clone());
                progress.record.error_message =
                    Some("the repair's agent asked for a human; see its comment".to_string());
                (
                    RunStatus::HumanRequired,
                    Outcome::HumanRequired { error_class: class },
                    "human: read the agent's comment on the issue".to_string(),
                )
            }
            Ending::Interrupted => (
                RunStatus::Interrupted,
                Outcome::Interrupted,
                "the daemon starts the repair again".to_string(),
            ),
            Ending::Skipped(reason) => (
                RunStatus::Skipped,
                Outcome::Skipped {
                    reason: reason.clone(),
                },
                format!("none: {reason}"),
            ),
            Ending::Left { status, reason } => {
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
        progress.record.retry = Some(RetryDecision {
            retry: false,
            next_action: next_action.clone(),
            reason: progress
                .record
                .error_class
                .as_ref()
                .map_or_else(|| "none".to_string(), ToString::to_string),
            ..RetryDecision::default()
        });
        progress.finish(status);
        self.save_repair_bookkeeping(progress, status, &next_action);
        log::info!(
            "repair finished issue={} run_id={} repair={} status={}",
            self.issue.identifier,
            progress.record.run_id,
            job.attempt,
            status.as_str()
        );
        Summary {
            issue: Some(self.issue.identifier.clone()),
            run_id: Some(progress.record.run_id.clone()),
            outcome,
            next_action,
            record: Some(Box::new(progress.record.clone())),
            handoff: None,
        }
    }

    /// The bookkeeping after a repair: this run's status, no owner, the issue still in
    /// `success_state` (so a person who moves it back to work starts a new attempt budget), and
    /// the attempts used as they were (repairs have their own budget in the review record).
    /// Only bookkeeping that still names this run changes.
    fn save_repair_bookkeeping(&self, progress: &mut Progress, status: RunStatus, next: &str) {
        let run_id = progress.record.run_id.clone();
        let error_class = progress.record.error_class.clone();
        let success_state = self.settings.workflow.tracker.success_state.clone();
        let issue = IssueRef {
            id: &self.issue.id,
            identifier: &self.issue.identifier,
        };
        let written =
            record::update_issue_state(self.layout, issue, progress.reserve(), |current| {
                match current {
                    Some(current) if current.last_run_id.as_deref() == Some(run_id.as_str()) => (
                        Some(IssueState {
                            issue_identifier: self.issue.identifier.clone(),
                            last_status: Some(status),
                            last_error_class: error_class,
                            next_action: Some(next.to_string()),
                            updated_at: clock::now_rfc3339(),
                            lane_key: Some(self.lane_key.to_string()),
                            owner: None,
                            outcome_state: Some(success_state),
                            ..current
                        }),
                        (),
                    ),
                    _ => (None, ()),
                }
            });
        if let Err(error) = written {
            log::error!(
                "cannot write issue bookkeeping issue={} error={error}",
                self.issue.identifier
            );
        }
    }
}
