//! Validation of a review handoff (an attempt's or a review repair's): the lane checked again,
//! each of WORKFLOW.md's `validation_commands` run in it, then the handoff (PR or branch)
//! checked again against the lane's `HEAD`, which becomes the validated head.

use std::time::Duration;

use super::progress::Progress;
use super::tools::{self, IssueTools};
use super::verdict::Failure;
use super::{Ending, LaneRun, place_failure, writeback};
use crate::worker;
use crate::workspace::lane::Lane;
use crate::workspace::record::{ErrorClass, Phase, ValidationRecord};

impl LaneRun<'_> {
    /// Validation commands in the lane, then the handoff (PR or branch) re-checked against the
    /// lane HEAD.
    pub(super) fn validate(
        &self,
        progress: &mut Progress,
        tools: &IssueTools<'_>,
        lane: &Lane,
        handoff: tools::Handoff,
    ) -> Ending {
        progress.step(Phase::Validating, "lane check");
        progress.record.pr_url = handoff.pr_url().map(str::to_string);
        // The agent had the lane to itself: it is checked again (not a symlink, git metadata
        // inside it) before Maestro runs anything there.
        let Some(place) = self.place() else {
            return Ending::Interrupted;
        };
        if let Err(error) = place.verify_git_metadata(lane) {
            return Ending::Failed(place_failure(&error));
        }
        let execution = &self.settings.workflow.execution;
        let timeout = Duration::from_millis(execution.validation_timeout_ms);
        let total = execution.validation_commands.len();
        for (index, command) in execution.validation_commands.iter().enumerate() {
            progress.step(
                Phase::Validating,
                &format!("validation {}/{total}: {command}", index + 1),
            );
            let result = match place.run_command(
                command,
                lane,
                &self.secrets(),
                timeout,
                &self.options.stop,
            ) {
                Ok(outcome) => ValidationRecord {
                    command: command.clone(),
                    exit_code: outcome.exit_code,
                    timed_out: outcome.timed_out,
                    duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
                    output_tail: writeback::scrub(&outcome.output_tail, &self.host_paths),
                    escaped: outcome.escaped,
                },
                // The host went away or refused the lane: the attempt ends with that cause, not
                // as a failed command.
                Err(error @ (worker::Error::Ssh { .. } | worker::Error::Unsafe { .. })) => {
                    return Ending::Failed(place_failure(&error));
                }
                Err(error) => ValidationRecord {
                    command: command.clone(),
                    exit_code: None,
                    timed_out: false,
                    duration_ms: 0,
                    output_tail: format!("could not start: {error}"),
                    escaped: false,
                },
            };
            if self.options.stop.load(std::sync::atomic::Ordering::SeqCst) {
                // SIGTERM during validation: the command was killed; the attempt is interrupted,
                // not failed, and nothing is written to the tracker.
                progress.record.validation.push(result);
                progress.save_record();
                return Ending::Interrupted;
            }
            let passed = result.exit_code == Some(0) && !result.timed_out;
            log::info!(
                "validation command issue={} command=\"{command}\" exit_code={:?} timed_out={}",
                self.issue.identifier,
                result.exit_code,
                result.timed_out
            );
            progress.record.validation.push(result);
            progress.save_record();
            if !passed {
                let summary = writeback::validation_summary(&progress.record.validation);
                let tail = progress
                    .record
                    .validation
                    .last()
                    .map(|r| {
                        r.output_tail
                            .lines()
                            .rev()
                            .take(15)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                return Ending::Failed(Failure::retryable(
                    ErrorClass::ValidationFailed,
                    format!("validation {summary}\n\n```\n{tail}\n```"),
                ));
            }
        }
        let check = match &handoff.review {
            super::handoff::Review::PullRequest { .. } => "PR check",
            super::handoff::Review::Branch { .. } => "branch check",
        };
        progress.step(Phase::Validating, check);
        match tools.recheck(&handoff) {
            // The head the PR was just checked against is the validated one (the lifecycle
            // merges nothing else).
            Ok(()) => Ending::Validated(tools::Handoff {
                head_sha: place
                    .head_sha(&lane.path)
                    .unwrap_or(handoff.head_sha.clone()),
                ..handoff
            }),
            Err(failure) => Ending::Failed(failure),
        }
    }
}
