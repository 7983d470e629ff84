//! The issue-scoped dynamic tools the agent calls: transition, comment, label, review handoff,
//! finalize. Every call is bound to the leased issue and recorded.
//!
//! A call that names another issue is a policy violation: it is refused, recorded, and the turn
//! is stopped so the attempt fails promptly. Tracker errors come back to the agent as
//! `success: false` with the reason; they are the agent's to handle, not the run's. Results are
//! JSON text so the model can read them reliably.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use super::prompt::{TOOL_COMMENT, TOOL_FINALIZE, TOOL_HANDOFF, TOOL_LABEL, TOOL_TRANSITION};
use crate::app_server::{DynamicTool, ToolCall, ToolDispatch, ToolResult};
use crate::config::GithubConfig;
use crate::github;
use crate::tracker::{self, Issue, Tracker};
use crate::workflow::{TrackerPolicy, same_state};
use crate::workspace::lane;
use crate::workspace::record::ToolCallRecord;
use crate::{clock, tracker::normalize_label};

/// The two legal ways to finish.
pub const PATH_REVIEW: &str = "review_handoff";
pub const PATH_MANUAL: &str = "manual_attention";

/// A validated review handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub pr_url: String,
    pub summary: String,
    pub repo: github::RepoRef,
    pub number: u64,
    /// The lane HEAD the PR was checked against.
    pub head_sha: String,
}

/// Everything the agent did through the tools.
#[derive(Debug, Clone, Default)]
pub struct ToolState {
    /// The agent moved the issue to the in-progress state.
    pub claimed: bool,
    /// Comments posted successfully.
    pub comments: u32,
    /// Labels added (normalized).
    pub labels: Vec<String>,
    pub handoff: Option<Handoff>,
    /// Every finalize path declared, in order.
    pub finalized: Vec<String>,
    /// The first policy violation, when one happened.
    pub violation: Option<String>,
    /// Set when the handoff could not be checked because the GitHub token is missing.
    pub github_credentials: Option<(&'static str, String)>,
    /// Every call, for the run record.
    pub calls: Vec<ToolCallRecord>,
}

/// What the tools need to act on the one issue.
#[derive(Debug)]
pub struct ToolContext<'a> {
    pub tracker: &'a dyn Tracker,
    pub issue: &'a Issue,
    pub policy: &'a TrackerPolicy,
    pub lane: &'a Path,
    pub branch: &'a str,
    pub github: &'a GithubConfig,
    /// Absolute host paths that must not appear in comments.
    pub host_paths: Vec<PathBuf>,
    /// Set on a policy violation so the session interrupts the turn.
    pub stop: Arc<AtomicBool>,
}

/// The tools for one attempt, with what the agent has done through them.
#[derive(Debug)]
pub struct IssueTools<'a> {
    context: ToolContext<'a>,
    state: Mutex<ToolState>,
}

impl<'a> IssueTools<'a> {
    pub fn new(context: ToolContext<'a>) -> IssueTools<'a> {
        IssueTools {
            context,
            state: Mutex::new(ToolState::default()),
        }
    }

    /// A copy of what the agent has done so far.
    pub fn state(&self) -> ToolState {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, ToolState> {
        // A panic while holding the lock cannot leave ToolState half-updated in a way that
        // matters (every update is a single push or assignment), so recover the data.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, tool: &str, success: bool, detail: String) {
        self.lock().calls.push(ToolCallRecord {
            at: clock::now_rfc3339(),
            tool: tool.to_string(),
            success,
            detail,
        });
    }

    /// Refuses a call that names another issue.
    fn check_scope(&self, call: &ToolCall) -> Option<ToolResult> {
        let named = call.arguments.get("issue").and_then(Value::as_str)?;
        let ours = named
            .trim()
            .eq_ignore_ascii_case(&self.context.issue.identifier)
            || named.trim() == self.context.issue.id;
        if ours {
            return None;
        }
        let reason = format!(
            "{} named issue {named}, but this lane is bound to {}",
            call.tool, self.context.issue.identifier
        );
        {
            let mut state = self.lock();
            if state.violation.is_none() {
                state.violation = Some(reason.clone());
            }
        }
        self.context.stop.store(true, Ordering::SeqCst);
        log::warn!(
            "policy violation: tool call for another issue issue={} tool={} named={named}",
            self.context.issue.identifier,
            call.tool
        );
        Some(failure(&format!(
            "policy violation: {reason}; the attempt is stopped"
        )))
    }

    fn transition(&self, arguments: &Value) -> ToolResult {
        let Some(target) = string_arg(arguments, "state") else {
            return failure("missing argument `state`");
        };
        if same_state(target, &self.context.policy.success_state) {
            return failure(&format!(
                "refused: \"{}\" is set by Maestro after it validates your handoff; call {TOOL_HANDOFF} and {TOOL_FINALIZE} instead",
                self.context.policy.success_state
            ));
        }
        if !same_state(target, &self.context.policy.in_progress_state) {
            return failure(&format!(
                "refused: the only state you may set is \"{}\"",
                self.context.policy.in_progress_state
            ));
        }
        match self
            .context
            .tracker
            .transition(&self.context.issue.id, target)
        {
            Ok(state) => {
                self.lock().claimed = true;
                ok(json!({"issue": self.context.issue.identifier, "state": state.name}))
            }
            Err(error) => tracker_failure(&error),
        }
    }

    fn comment(&self, arguments: &Value) -> ToolResult {
        let Some(body) = string_arg(arguments, "body") else {
            return failure("missing argument `body`");
        };
        if body.trim().is_empty() {
            return failure("the comment body is empty");
        }
        if let Some(path) = self
            .context
            .host_paths
            .iter()
            .map(|path| path.display().to_string())
            .find(|path| path.len() > 1 && body.contains(path.as_str()))
        {
            return failure(&format!(
                "refused: the comment contains the absolute host path {path}; use repository-relative paths"
            ));
        }
        match self
            .context
            .tracker
            .add_comment(&self.context.issue.id, body)
        {
            Ok(comment) => {
                self.lock().comments += 1;
                ok(
                    json!({"issue": self.context.issue.identifier, "comment_id": comment.id, "url": comment.url}),
                )
            }
            Err(error) => tracker_failure(&error),
        }
    }

    fn label(&self, arguments: &Value) -> ToolResult {
        let Some(label) = string_arg(arguments, "label") else {
            return failure("missing argument `label`");
        };
        match self
            .context
            .tracker
            .add_label(&self.context.issue.id, label)
        {
            Ok(()) => {
                let normalized = normalize_label(label);
                let mut state = self.lock();
                if !state.labels.contains(&normalized) {
                    state.labels.push(normalized);
                }
                ok(json!({"issue": self.context.issue.identifier, "label": label.trim()}))
            }
            Err(error) => tracker_failure(&error),
        }
    }

    fn handoff(&self, arguments: &Value) -> ToolResult {
        let (Some(pr_url), Some(summary)) = (
            string_arg(arguments, "pr_url"),
            string_arg(arguments, "summary"),
        ) else {
            return failure("missing argument `pr_url` or `summary`");
        };
        match self.check_pr(pr_url) {
            Ok(handoff) => {
                let result = ok(json!({
                    "issue": self.context.issue.identifier,
                    "pr_url": handoff.pr_url,
                    "head_sha": handoff.head_sha,
                    "recorded": true,
                }));
                self.lock().handoff = Some(Handoff {
                    summary: summary.trim().to_string(),
                    ..handoff
                });
                result
            }
            Err(HandoffProblem::Credentials {
                error_class,
                message,
            }) => {
                self.lock().github_credentials = Some((error_class, message.clone()));
                failure(&format!("cannot check the pull request: {message}"))
            }
            Err(HandoffProblem::Rejected(reasons)) => {
                failure(&format!("handoff not recorded: {}", reasons.join("; ")))
            }
        }
    }

    /// Checks the PR against the lane now (repository, head ref, head SHA, open, not draft).
    pub fn check_pr(&self, pr_url: &str) -> Result<Handoff, HandoffProblem> {
        let rejected = |reason: String| HandoffProblem::Rejected(vec![reason]);
        let (pr_repo, number) = github::parse_pr_url(pr_url, &self.context.github.api_url)
            .map_err(|error| rejected(error.to_string()))?;
        let origin =
            lane::origin_url(self.context.lane).map_err(|error| rejected(error.to_string()))?;
        let repo = github::parse_remote(&origin).ok_or_else(|| {
            rejected(
                github::Error::UnknownRemote {
                    url: origin.clone(),
                }
                .to_string(),
            )
        })?;
        let head_sha =
            lane::head_sha(self.context.lane).map_err(|error| rejected(error.to_string()))?;
        let client = github::Client::from_config(self.context.github).map_err(|error| {
            HandoffProblem::Credentials {
                error_class: "github_token_missing",
                message: error.to_string(),
            }
        })?;
        let pr = client
            .pull_request(&pr_repo, number)
            .map_err(|error| match error {
                github::Error::Auth { .. } => HandoffProblem::Credentials {
                    error_class: "github_auth",
                    message: error.to_string(),
                },
                other => rejected(other.to_string()),
            })?;
        let expected = github::Expectation {
            repo: repo.clone(),
            branch: self.context.branch.to_string(),
            head_sha: head_sha.clone(),
        };
        let problems = github::mismatches(&pr, &expected);
        if !problems.is_empty() {
            return Err(HandoffProblem::Rejected(problems));
        }
        Ok(Handoff {
            // GitHub's own, checked URL: the agent's text is never posted or printed.
            pr_url: pr.html_url,
            summary: String::new(),
            repo,
            number,
            head_sha,
        })
    }

    fn finalize(&self, arguments: &Value) -> ToolResult {
        let Some(path) = string_arg(arguments, "path") else {
            return failure("missing argument `path`");
        };
        let path = path.trim();
        if path != PATH_REVIEW && path != PATH_MANUAL {
            return failure(&format!(
                "unknown path `{path}`; expected \"{PATH_REVIEW}\" or \"{PATH_MANUAL}\""
            ));
        }
        self.lock().finalized.push(path.to_string());
        ok(json!({"issue": self.context.issue.identifier, "finalized": path}))
    }
}

/// Why a handoff could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffProblem {
    /// The GitHub credential is unusable (variable unset or empty, or the token refused): a
    /// human must fix the host; `error_class` says which.
    Credentials {
        error_class: &'static str,
        message: String,
    },
    /// The PR does not match the lane (or could not be read); the agent can fix and retry.
    Rejected(Vec<String>),
}

impl ToolDispatch for IssueTools<'_> {
    fn call(&self, call: &ToolCall) -> ToolResult {
        let result = match self.check_scope(call) {
            Some(refusal) => refusal,
            None => match call.tool.as_str() {
                TOOL_TRANSITION => self.transition(&call.arguments),
                TOOL_COMMENT => self.comment(&call.arguments),
                TOOL_LABEL => self.label(&call.arguments),
                TOOL_HANDOFF => self.handoff(&call.arguments),
                TOOL_FINALIZE => self.finalize(&call.arguments),
                other => failure(&format!("unknown tool `{other}`")),
            },
        };
        let detail = describe(call, &result);
        log::info!(
            "tool call issue={} tool={} success={}",
            self.context.issue.identifier,
            call.tool,
            result.success
        );
        self.record(&call.tool, result.success, detail);
        result
    }
}

/// A short, secret-free line for the run record.
fn describe(call: &ToolCall, result: &ToolResult) -> String {
    let argument = ["state", "label", "path", "pr_url"]
        .iter()
        .find_map(|key| call.arguments.get(*key).and_then(Value::as_str))
        .map(github::without_userinfo)
        .or_else(|| {
            call.arguments
                .get("body")
                .and_then(Value::as_str)
                .map(|body| format!("{} chars", body.chars().count()))
        })
        .unwrap_or_default();
    if result.success {
        argument
    } else {
        let reason: String = result.text.chars().take(300).collect();
        format!("{argument}: {reason}")
    }
}

fn string_arg<'v>(arguments: &'v Value, key: &str) -> Option<&'v str> {
    arguments.get(key).and_then(Value::as_str)
}

fn ok(value: Value) -> ToolResult {
    let mut value = value;
    if let Some(object) = value.as_object_mut() {
        object.insert("success".into(), Value::Bool(true));
    }
    ToolResult::ok(value.to_string())
}

fn failure(reason: &str) -> ToolResult {
    ToolResult::failure(json!({"success": false, "error": reason}).to_string())
}

fn tracker_failure(error: &tracker::Error) -> ToolResult {
    ToolResult::failure(
        json!({"success": false, "error": error.to_string(), "category": error.category().as_str()})
            .to_string(),
    )
}

/// The five tools as advertised on `thread/start`.
pub fn definitions(policy: &TrackerPolicy) -> Vec<DynamicTool> {
    let issue_arg = json!({
        "type": "string",
        "description": "Optional. The issue identifier; only the issue of this lane is allowed."
    });
    let tool = |name: &str, description: String, properties: Value, required: &[&str]| {
        let mut properties = properties;
        if let Some(object) = properties.as_object_mut() {
            object.insert("issue".into(), issue_arg.clone());
        }
        DynamicTool {
            name: name.to_string(),
            description,
            input_schema: json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }),
        }
    };
    vec![
        tool(
            TOOL_TRANSITION,
            format!(
                "Move this lane's issue to a workflow state. Allowed: \"{}\" (claim the issue).",
                policy.in_progress_state
            ),
            json!({"state": {"type": "string"}}),
            &["state"],
        ),
        tool(
            TOOL_COMMENT,
            "Post a Markdown comment on this lane's issue. Use repository-relative paths.".into(),
            json!({"body": {"type": "string"}}),
            &["body"],
        ),
        tool(
            TOOL_LABEL,
            "Add a label to this lane's issue.".into(),
            json!({"label": {"type": "string"}}),
            &["label"],
        ),
        tool(
            TOOL_HANDOFF,
            "Record the pull request for review. Push the lane branch and open the PR first; it must be open, not a draft, with this lane's branch and HEAD.".into(),
            json!({"pr_url": {"type": "string"}, "summary": {"type": "string"}}),
            &["pr_url", "summary"],
        ),
        tool(
            TOOL_FINALIZE,
            "Declare how you finished, once, as your last action.".into(),
            json!({"path": {"type": "string", "enum": [PATH_REVIEW, PATH_MANUAL]}}),
            &["path"],
        ),
    ]
}
