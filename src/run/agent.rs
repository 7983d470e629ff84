//! What an attempt and a review repair share when they put the agent to work: the session's
//! configuration, the issue-scoped tools' context, and the end of the session (shutdown, the
//! needs-attention label read as a human ending, the tool calls recorded).
//!
//! The two differ only in their instructions, tool set, thread and turns, which their callers
//! (`mod.rs`, `repair.rs`) keep; nothing here decides an outcome.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::progress::Progress;
use super::redact::Secrets;
use super::tools::{IssueTools, ToolContext};
use super::{Ending, LaneRun};
use crate::app_server::{DynamicTool, Session, SessionConfig};
use crate::tracker::Issue;
use crate::worker::Place;
use crate::workspace::lane::Lane;

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
