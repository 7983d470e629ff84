//! What an attempt and a review repair share when they put the agent to work: the session's
//! configuration, the issue-scoped tools' context, one turn (its limits, record, log line and
//! the endings every turn shares), and the end of the session (shutdown, the needs-attention
//! label read as a human ending, the tool calls recorded).
//!
//! The two differ in their instructions, tool set, thread and what happens between turns and
//! after the last, which their callers (`mod.rs`, `repair.rs`) keep.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::progress::Progress;
use super::redact::Secrets;
use super::tools::{IssueTools, ToolContext};
use super::verdict::{self, Failure};
use super::{Ending, LaneRun, cause};
use crate::app_server::{DynamicTool, Session, SessionConfig, TurnEnd, TurnLimits};
use crate::tracker::Issue;
use crate::worker::Place;
use crate::workspace::lane::Lane;
use crate::workspace::record::{ErrorClass, Phase};

impl LaneRun<'_> {
    /// The app-server session for `lane`: the configured command, the secret variables
    /// removed, this attempt's journal, `instructions` and `dynamic_tools`, and `stop`.
    pub(super) fn session_config(
        &self,
        progress: &Progress,
        lane: &Lane,
        instructions: String,
        dynamic_tools: Vec<DynamicTool>,
        stop: &Arc<AtomicBool>,
    ) -> SessionConfig {
        let workflow = &self.settings.workflow;
        let config = &self.settings.config;
        SessionConfig {
            command: config.agent.command.clone(),
            cwd: lane.path.clone(),
            remove_env: self.secrets(),
            extra_env: Vec::new(),
            developer_instructions: instructions,
            personality: workflow.agent.personality.map(|p| p.as_str().to_string()),
            service_tier: workflow.agent.service_tier.clone(),
            dynamic_tools,
            journal_path: self.layout.journal_file(&progress.record.run_id),
            read_timeout: Duration::from_millis(config.agent.read_timeout_ms),
            turn_idle_timeout: Duration::from_millis(config.agent.turn_idle_timeout_ms),
            stop: Some(Arc::clone(stop)),
        }
    }

    /// The issue-scoped tools' context for `issue` in `lane` on `place`. `repair_of` is the PR a
    /// review repair works on (`None` for an attempt).
    pub(super) fn tool_context<'a>(
        &'a self,
        issue: &'a Issue,
        lane: &'a Lane,
        place: &'a Place,
        stop: &Arc<AtomicBool>,
        secrets: &Secrets,
        repair_of: Option<String>,
    ) -> ToolContext<'a> {
        let workflow = &self.settings.workflow;
        let config = &self.settings.config;
        ToolContext {
            tracker: self.tracker,
            issue,
            policy: &workflow.tracker,
            lane: &lane.path,
            place,
            repo_root: &config.repo_root,
            branch: self.branch,
            handoff: workflow.handoff,
            github: &config.github,
            remove_env: self.secrets(),
            host_paths: self
                .host_paths
                .iter()
                .map(|(path, _)| path.clone())
                .collect(),
            stop: Arc::clone(stop),
            secrets: secrets.clone(),
            repair_of,
        }
    }

    /// Runs turn `turn` of `input` within the workflow's limits (what is left of the token
    /// budget, the turn timeout), keeps the tool calls in the record and logs the turn (`what`:
    /// `turn` or `repair turn`). `Some` ending every turn shares: a policy violation,
    /// an interruption by a stop, or a failed turn (a dropped ssh connection is the host's
    /// failure, codex's cause goes into the record, and an attempt's streak of idle timeouts
    /// with one cause ends in a human). `None` to go on.
    #[allow(clippy::too_many_arguments)] // One turn's context; a struct would only rename it.
    pub(super) fn turn(
        &self,
        progress: &mut Progress,
        session: &mut Session,
        tools: &IssueTools<'_>,
        issue: &Issue,
        input: &str,
        turn: u32,
        what: &str,
    ) -> Option<Ending> {
        let workflow = &self.settings.workflow;
        let execution = &workflow.execution;
        let spent = session.accounting().thread_tokens.total;
        let limits = TurnLimits {
            token_budget: execution
                .token_budget
                .map(|budget| budget.saturating_sub(spent)),
            turn_timeout: Some(Duration::from_millis(workflow.agent.turn_timeout_ms)),
        };
        progress.step(
            Phase::Executing,
            &format!("{what} {turn}/{}", execution.max_turns),
        );
        let outcome = session.run_turn(input, tools, progress, limits);
        progress.record.tool_calls = tools.state().calls;
        progress.save_record();
        log::info!(
            "{what} ended issue={} run_id={} thread_id={} turn={turn} end={} tokens={}",
            issue.identifier,
            progress.record.run_id,
            session.thread_id(),
            outcome.end.kind(),
            outcome.usage.total
        );
        if let Some(violation) = tools.state().violation {
            return Some(Ending::Failed(Failure::human(
                ErrorClass::PolicyViolation,
                violation,
            )));
        }
        if matches!(outcome.end, TurnEnd::Interrupted) && self.options.stop.load(Ordering::SeqCst) {
            return Some(Ending::Interrupted);
        }
        let failure = verdict::turn_failure(&outcome.end)?;
        let failure = self.turn_failure(failure, &outcome.end);
        // What codex said while the turn went wrong: in the record, and so in the comment and
        // status.
        progress.record.cause = outcome.cause().as_ref().map(cause::recorded);
        if let Some(cause) = &progress.record.cause {
            log::warn!(
                "{what} failed issue={} run_id={} error_class={} cause=\"{}\"",
                issue.identifier,
                progress.record.run_id,
                failure.error_class,
                cause.message
            );
        }
        // A repair never counts against the attempt budget, nor towards the idle streak.
        if self.repair.is_some() {
            return Some(Ending::Failed(failure));
        }
        Some(Ending::Failed(cause::escalate(
            failure,
            progress.record.cause.as_ref(),
            self.previous_state.as_ref(),
            self.attempt,
        )))
    }

    /// Ends the agent's session after its turns ended with `ending`: codex stopped, the
    /// needs-attention label the agent added read as the human path, every tool call recorded.
    pub(super) fn end_session(
        &self,
        progress: &mut Progress,
        session: Session,
        tools: &IssueTools<'_>,
        ending: Ending,
    ) -> Ending {
        let _ = session.shutdown();
        let state = tools.state();
        let ending = ending.flagged(&state.labels, &self.settings.workflow.tracker);
        progress.record.tool_calls = state.calls;
        progress.save_record();
        ending
    }
}
