//! The issue-scoped dynamic tools the agent calls: transition, comment, label, review handoff,
//! finalize. Every call is bound to the leased issue and recorded.
//!
//! A call that names another issue is a policy violation: it is refused, recorded, and the turn
//! is stopped so the attempt fails promptly. Tracker errors come back to the agent as
//! `success: false` with the reason; they are the agent's to handle, not the run's. Results are
//! JSON text so the model can read them reliably.
//!
//! The agent is hostile, so what it hands in is bounded here ([`bounds`]): every argument has a
//! size limit, an attempt adds at most [`bounds::MAX_LABELS_PER_ATTEMPT`] labels and only
//! labels the team has, the record keeps excerpts, and comment bodies lose secret values and
//! HTML comments (which could forge the local tracker's comment header) before they are posted.
//! Every result is scrubbed of secret values before it goes back to the agent. Whether a
//! handoff matches the lane is `handoff`'s to decide.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

pub use super::handoff::Handoff;
use super::handoff::{Checker, HandoffProblem, Review};
use super::prompt::{TOOL_COMMENT, TOOL_FINALIZE, TOOL_HANDOFF, TOOL_LABEL, TOOL_TRANSITION};
use super::redact::Secrets;
use super::verdict::Failure;
use crate::app_server::{ToolCall, ToolDispatch, ToolResult};
use crate::bounds::{self, INLINE_EXCERPT_CHARS, MAX_LABELS_PER_ATTEMPT, RECORD_EXCERPT_CHARS};
use crate::config::GithubConfig;
use crate::github;
use crate::tracker::{self, Issue, Tracker};
use crate::workflow::{HandoffMode, TrackerPolicy, same_state};
use crate::workspace::record::{ErrorClass, ToolCallRecord};
use crate::{clock, tracker::normalize_label};

/// The two legal ways to finish an attempt, and the one that ends a review repair (with
/// `manual_attention`).
pub const PATH_REVIEW: &str = "review_handoff";
pub const PATH_MANUAL: &str = "manual_attention";
/// The tool that ends a review repair.
pub const TOOL_REPAIR_COMPLETE: &str = "issue_review_repair_complete";
pub const PATH_REPAIR: &str = "review_repair";

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
    pub github_credentials: Option<(ErrorClass, String)>,
    /// Every call, for the run record (at most [`bounds::MAX_RECORDED_CALLS`] entries).
    pub calls: Vec<ToolCallRecord>,
    /// Calls made after the record filled up, counted in its last entry.
    pub calls_not_recorded: u64,
}

/// What the tools need to act on the one issue.
#[derive(Debug)]
pub struct ToolContext<'a> {
    pub tracker: &'a dyn Tracker,
    pub issue: &'a Issue,
    pub policy: &'a TrackerPolicy,
    pub lane: &'a Path,
    /// Where the lane lives (here or on an ssh host); the tools themselves always run here.
    pub place: &'a crate::worker::Place,
    /// The source checkout. Its `origin` names the repository a handoff must be in: the lane's
    /// own `origin` is the agent's to rewrite (`git remote set-url`), so it proves nothing.
    pub repo_root: &'a Path,
    pub branch: &'a str,
    /// `[handoff] mode`: a pull request or a branch pushed to origin.
    pub handoff: HandoffMode,
    pub github: &'a GithubConfig,
    /// Secret variable names, removed from the environment of the git Maestro runs.
    pub remove_env: Vec<String>,
    /// Absolute host paths that must not appear in comments.
    pub host_paths: Vec<PathBuf>,
    /// Set on a policy violation so the session interrupts the turn.
    pub stop: Arc<AtomicBool>,
    /// Secret values scrubbed from results, records and comment bodies.
    pub secrets: Secrets,
    /// Set on a review repair: the PR under review (its `html_url`, as the lane's review
    /// record holds it). The repair finishes with `issue_review_repair_complete` for that PR,
    /// never hands off again, and leaves the issue's state alone.
    pub repair_of: Option<String>,
}

/// The tools for one attempt, with what the agent has done through them.
#[derive(Debug)]
pub struct IssueTools<'a> {
    context: ToolContext<'a>,
    state: Mutex<ToolState>,
    /// Held for the whole of a label call, so parallel calls cannot both pass the per-attempt
    /// cap before either has counted.
    label_gate: Mutex<()>,
}

impl<'a> IssueTools<'a> {
    pub fn new(context: ToolContext<'a>) -> IssueTools<'a> {
        IssueTools {
            context,
            state: Mutex::new(ToolState::default()),
            label_gate: Mutex::new(()),
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

    /// Records one call; past [`bounds::MAX_RECORDED_CALLS`] the last entry only counts the
    /// calls that were left out, so an agent that calls in a loop cannot grow the record.
    fn record(&self, tool: &str, success: bool, detail: String) {
        let mut state = self.lock();
        let room = bounds::MAX_RECORDED_CALLS.saturating_sub(1);
        if state.calls.len() < room {
            state.calls.push(ToolCallRecord {
                at: clock::now_rfc3339(),
                tool: tool.to_string(),
                success,
                detail,
            });
            return;
        }
        state.calls_not_recorded += 1;
        let left_out = state.calls_not_recorded;
        let summary = ToolCallRecord {
            at: clock::now_rfc3339(),
            tool: NOT_RECORDED.to_string(),
            success: false,
            detail: format!(
                "{left_out} more tool calls were not recorded (a record keeps {})",
                bounds::MAX_RECORDED_CALLS
            ),
        };
        state.calls.truncate(room);
        state.calls.push(summary);
    }

    /// Refuses a call that names another issue. The name is the agent's text: only a bounded,
    /// escaped excerpt of it reaches the reason (and from there the failure comment and the
    /// log), so it can neither grow them nor start a line of its own.
    fn check_scope(&self, call: &ToolCall) -> Option<ToolResult> {
        let named = call.arguments.get("issue").and_then(Value::as_str)?;
        let ours = named
            .trim()
            .eq_ignore_ascii_case(&self.context.issue.identifier)
            || named.trim() == self.context.issue.id;
        if ours {
            return None;
        }
        let named = bounds::excerpt(named.trim(), INLINE_EXCERPT_CHARS);
        let reason = format!(
            "{} named issue {named}, but this lane is bound to {}",
            bounds::excerpt(&call.tool, INLINE_EXCERPT_CHARS),
            self.context.issue.identifier
        );
        {
            let mut state = self.lock();
            if state.violation.is_none() {
                state.violation = Some(reason.clone());
            }
        }
        self.context.stop.store(true, Ordering::SeqCst);
        log::warn!(
            "policy violation: tool call for another issue issue={} tool={} named=\"{named}\"",
            self.context.issue.identifier,
            bounds::excerpt(&call.tool, INLINE_EXCERPT_CHARS)
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
        // The body is the agent's: it goes out whole (within its size limit), but without a
        // secret value and without an HTML comment that could pass for Maestro's.
        let body = bounds::neutralize_markers(&self.context.secrets.scrub(body));
        match self
            .context
            .tracker
            .add_comment(&self.context.issue.id, &body)
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

    /// Adds a label the team has, at most [`MAX_LABELS_PER_ATTEMPT`] distinct ones per attempt:
    /// an agent that labels without limit can push its issue past what the tracker lists in one
    /// page and so break the listing for the whole project.
    fn label(&self, arguments: &Value) -> ToolResult {
        let Some(label) = string_arg(arguments, "label") else {
            return failure("missing argument `label`");
        };
        let normalized = normalize_label(label);
        if normalized.is_empty() {
            return failure("the label is empty");
        }
        let _gate = self
            .label_gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let added = self.lock().labels.clone();
        if added.contains(&normalized) {
            // Already added in this attempt: nothing to write, nothing to count.
            return ok(json!({"issue": self.context.issue.identifier, "label": label.trim()}));
        }
        let metadata = match self
            .context
            .tracker
            .team_metadata(&self.context.issue.team.id)
        {
            Ok(metadata) => metadata,
            Err(error) => return tracker_failure(&error),
        };
        let name = match metadata.label(label) {
            Ok(found) => found.name.clone(),
            Err(tracker::Error::UnknownLabel { team, known, .. }) => {
                return failure(&unknown_label(label, &team, &known));
            }
            Err(error) => return tracker_failure(&error),
        };
        if added.len() >= MAX_LABELS_PER_ATTEMPT {
            return failure(&format!(
                "refused: an attempt may add at most {MAX_LABELS_PER_ATTEMPT} labels, and this one added {}",
                added.join(", ")
            ));
        }
        match self
            .context
            .tracker
            .add_label(&self.context.issue.id, &name)
        {
            Ok(()) => {
                self.lock().labels.push(normalized);
                ok(json!({"issue": self.context.issue.identifier, "label": name}))
            }
            Err(error) => tracker_failure(&error),
        }
    }

    /// The handoff checker for this lane and mode.
    fn checker(&self) -> Checker<'_> {
        Checker {
            mode: self.context.handoff,
            lane: self.context.lane,
            place: self.context.place,
            repo_root: self.context.repo_root,
            branch: self.context.branch,
            github: self.context.github,
            remove_env: &self.context.remove_env,
        }
    }

    fn handoff(&self, arguments: &Value) -> ToolResult {
        let checker = self.checker();
        let key = checker.argument();
        let (Some(named), Some(summary)) =
            (string_arg(arguments, key), string_arg(arguments, "summary"))
        else {
            return failure(&format!("missing argument `{key}` or `summary`"));
        };
        let summary = self.context.secrets.scrub(summary);
        match checker.check(named) {
            Ok(handoff) => {
                let mut result = json!({
                    "issue": self.context.issue.identifier,
                    "head_sha": handoff.head_sha,
                    "recorded": true,
                });
                match &handoff.review {
                    Review::PullRequest { url, .. } => result["pr_url"] = json!(url),
                    Review::Branch { remote, branch } => {
                        result["branch"] = json!(branch);
                        result["remote"] = json!(remote);
                    }
                }
                self.lock().handoff = Some(Handoff {
                    summary: summary.trim().to_string(),
                    ..handoff
                });
                ok(result)
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

    /// After validation: the recorded handoff checked again against the lane's `HEAD` now.
    pub fn recheck(&self, handoff: &Handoff) -> Result<(), Failure> {
        self.checker().recheck(handoff)
    }

    /// A review repair's end: the PR (the one under review) checked against the lane now, as
    /// a handoff is, and recorded for validation.
    fn repair_complete(&self, arguments: &Value) -> ToolResult {
        let Some(expected) = &self.context.repair_of else {
            return failure(&format!(
                "refused: {TOOL_REPAIR_COMPLETE} ends a review repair, and this is not one; call {TOOL_HANDOFF}"
            ));
        };
        let (Some(named), Some(summary)) = (
            string_arg(arguments, "pr_url"),
            string_arg(arguments, "summary"),
        ) else {
            return failure("missing argument `pr_url` or `summary`");
        };
        let summary = self.context.secrets.scrub(summary);
        match self.checker().check(named) {
            Ok(handoff) if handoff.pr_url() != Some(expected.as_str()) => failure(&format!(
                "refused: this repair is for the pull request {expected}, not the one named"
            )),
            Ok(handoff) => {
                let result = json!({
                    "issue": self.context.issue.identifier,
                    "pr_url": expected,
                    "head_sha": handoff.head_sha,
                    "recorded": true,
                });
                self.lock().handoff = Some(Handoff {
                    summary: summary.trim().to_string(),
                    ..handoff
                });
                ok(result)
            }
            Err(HandoffProblem::Credentials {
                error_class,
                message,
            }) => {
                self.lock().github_credentials = Some((error_class, message.clone()));
                failure(&format!("cannot check the pull request: {message}"))
            }
            Err(HandoffProblem::Rejected(reasons)) => {
                failure(&format!("repair not recorded: {}", reasons.join("; ")))
            }
        }
    }

    fn finalize(&self, arguments: &Value) -> ToolResult {
        let Some(path) = string_arg(arguments, "path") else {
            return failure("missing argument `path`");
        };
        let path = path.trim();
        let (finish, other) = if self.context.repair_of.is_some() {
            (PATH_REPAIR, PATH_MANUAL)
        } else {
            (PATH_REVIEW, PATH_MANUAL)
        };
        if path != finish && path != other {
            return failure(&format!(
                "unknown path `{path}`; expected \"{finish}\" or \"{other}\""
            ));
        }
        self.lock().finalized.push(path.to_string());
        ok(json!({"issue": self.context.issue.identifier, "finalized": path}))
    }
}

impl ToolDispatch for IssueTools<'_> {
    fn call(&self, call: &ToolCall) -> ToolResult {
        let result = match self.check_scope(call) {
            Some(refusal) => refusal,
            None => match bounds::oversized_argument(&call.arguments) {
                Some(refusal) => failure(&refusal),
                None => match call.tool.as_str() {
                    TOOL_TRANSITION | TOOL_HANDOFF if self.context.repair_of.is_some() => {
                        failure(REFUSED_IN_REPAIR)
                    }
                    TOOL_TRANSITION => self.transition(&call.arguments),
                    TOOL_COMMENT => self.comment(&call.arguments),
                    TOOL_LABEL => self.label(&call.arguments),
                    TOOL_HANDOFF => self.handoff(&call.arguments),
                    TOOL_REPAIR_COMPLETE => self.repair_complete(&call.arguments),
                    TOOL_FINALIZE => self.finalize(&call.arguments),
                    other => failure(&format!(
                        "unknown tool `{}`",
                        bounds::excerpt(other, INLINE_EXCERPT_CHARS)
                    )),
                },
            },
        };
        let result = ToolResult {
            text: self.context.secrets.scrub(&result.text).into_owned(),
            ..result
        };
        let tool = bounds::excerpt(&call.tool, INLINE_EXCERPT_CHARS);
        let detail = self
            .context
            .secrets
            .scrub(&describe(call, &result))
            .into_owned();
        log::info!(
            "tool call issue={} tool={tool} success={}",
            self.context.issue.identifier,
            result.success
        );
        self.record(&tool, result.success, detail);
        result
    }
}

/// What a review repair's agent hears when it asks to hand off again or to move the issue.
const REFUSED_IN_REPAIR: &str = "refused: this is a review repair; the issue stays in review and the pull request is already handed off. Push your fix to the lane branch, then call issue_review_repair_complete and finalize with review_repair";

/// The tool name of the run record's last entry once calls stop being recorded one by one.
pub const NOT_RECORDED: &str = "(not recorded)";

/// A short, secret-free line for the run record: an excerpt of the argument that says what
/// the call was about (its original size noted when cut), and for a failure an excerpt of the
/// reason. A comment body is recorded by size only.
fn describe(call: &ToolCall, result: &ToolResult) -> String {
    let argument = ["state", "label", "path", "pr_url", "branch"]
        .iter()
        .find_map(|key| call.arguments.get(*key).and_then(Value::as_str))
        .map(|value| bounds::excerpt(&github::without_userinfo(value), RECORD_EXCERPT_CHARS))
        .or_else(|| {
            call.arguments
                .get("body")
                .and_then(Value::as_str)
                .map(|body| format!("{} bytes", body.len()))
        })
        .unwrap_or_default();
    if result.success {
        argument
    } else {
        let reason = serde_json::from_str::<Value>(&result.text)
            .ok()
            .and_then(|value| {
                value
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| result.text.clone());
        format!("{argument}: {}", bounds::excerpt(&reason, 300))
    }
}

/// The refusal of a label the team does not have, naming (some of) the ones it does.
fn unknown_label(label: &str, team: &str, known: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = format!(
        "refused: team {team} has no label \"{}\"; add one of its labels",
        bounds::excerpt(label.trim(), INLINE_EXCERPT_CHARS)
    );
    if known.is_empty() {
        text.push_str(" (it has none)");
    } else {
        text.push_str(": ");
        text.push_str(
            &known
                .iter()
                .take(SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        );
        if known.len() > SHOWN {
            text.push_str(&format!(" and {} more", known.len() - SHOWN));
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::tracker::{
        CommentRef, IssueState, Label, ProjectScope, TeamMetadata, TeamRef, WorkflowState,
    };

    /// A tracker that knows twelve team labels, counts label writes and refuses comments
    /// with a message that echoes a secret.
    #[derive(Debug, Default)]
    struct Stub {
        labels_added: AtomicUsize,
    }

    const SECRET: &str = "lin_api_stub_secret_0123";

    fn team() -> TeamRef {
        TeamRef {
            id: "team-1".into(),
            key: "ABC".into(),
        }
    }

    impl Tracker for Stub {
        fn provider(&self) -> crate::config::Provider {
            crate::config::Provider::Local
        }
        fn project(&self) -> Result<ProjectScope, tracker::Error> {
            Err(tracker::Error::ProjectNotFound { slug: "x".into() })
        }
        fn issues_in_states(&self, _: &[String]) -> Result<Vec<Issue>, tracker::Error> {
            Ok(Vec::new())
        }
        fn refresh(&self, _: &[String]) -> Result<Vec<Issue>, tracker::Error> {
            Ok(Vec::new())
        }
        fn changed_since(&self, _: u64) -> Result<tracker::Stamps, tracker::Error> {
            Ok(tracker::Stamps::default())
        }
        fn stamps_in_states(&self, _: &[String]) -> Result<tracker::Stamps, tracker::Error> {
            Ok(tracker::Stamps::default())
        }
        fn summaries(&self, _: &[String]) -> Result<Vec<Issue>, tracker::Error> {
            Ok(Vec::new())
        }
        fn transition(&self, _: &str, name: &str) -> Result<IssueState, tracker::Error> {
            Ok(IssueState {
                name: name.into(),
                kind: "started".into(),
            })
        }
        fn add_comment(&self, _: &str, _: &str) -> Result<CommentRef, tracker::Error> {
            Err(tracker::Error::GraphQl {
                operation: "CommentCreate",
                messages: vec![format!("key {SECRET} refused")],
            })
        }
        fn comments_containing(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<tracker::Comment>, tracker::Error> {
            Ok(Vec::new())
        }
        fn add_label(&self, _: &str, _: &str) -> Result<(), tracker::Error> {
            self.labels_added.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn team_metadata(&self, _: &str) -> Result<Arc<TeamMetadata>, tracker::Error> {
            Ok(Arc::new(TeamMetadata {
                team: team(),
                states: vec![WorkflowState {
                    id: "s".into(),
                    name: "In Progress".into(),
                    kind: "started".into(),
                }],
                labels: (1..=12)
                    .map(|n| Label {
                        id: format!("l{n}"),
                        name: format!("Area {n}"),
                        workspace: false,
                    })
                    .collect(),
            }))
        }
    }

    fn issue() -> Issue {
        Issue {
            id: "id-1".into(),
            identifier: "ABC-1".into(),
            title: "t".into(),
            description: String::new(),
            priority: None,
            state: IssueState {
                name: "Todo".into(),
                kind: "unstarted".into(),
            },
            labels: Vec::new(),
            blockers: Vec::new(),
            url: None,
            branch_name: None,
            created_at: String::new(),
            created_ms: 0,
            updated_at: String::new(),
            team: team(),
            project_slug: None,
        }
    }

    fn with_tools(check: impl FnOnce(&IssueTools<'_>, &Stub)) {
        let stub = Stub::default();
        let issue = issue();
        let policy = crate::workflow::parse(Path::new("/w/WORKFLOW.md"), "body", Path::new("/w"))
            .unwrap()
            .tracker;
        let github = GithubConfig {
            token_env_var: None,
            api_url: "http://127.0.0.1:9".into(),
        };
        let tools = IssueTools::new(ToolContext {
            tracker: &stub,
            issue: &issue,
            policy: &policy,
            lane: Path::new("/nonexistent"),
            place: &crate::worker::Place::Local,
            repo_root: Path::new("/nonexistent"),
            branch: "x/demo-abc-1",
            handoff: HandoffMode::PullRequest,
            github: &github,
            remove_env: Vec::new(),
            host_paths: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            secrets: Secrets::from_values([SECRET.to_string()]),
            repair_of: None,
        });
        check(&tools, &stub);
    }

    fn call(tool: &str, arguments: Value) -> ToolCall {
        ToolCall {
            call_id: "c".into(),
            turn_id: "t".into(),
            tool: tool.into(),
            arguments,
        }
    }

    #[test]
    fn parallel_label_calls_never_pass_the_cap_together() {
        with_tools(|tools, stub| {
            let successes = AtomicUsize::new(0);
            std::thread::scope(|scope| {
                for n in 1..=12 {
                    let successes = &successes;
                    scope.spawn(move || {
                        let result =
                            tools.call(&call(TOOL_LABEL, json!({"label": format!("area {n}")})));
                        if result.success {
                            successes.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            assert_eq!(successes.load(Ordering::SeqCst), MAX_LABELS_PER_ATTEMPT);
            assert_eq!(
                stub.labels_added.load(Ordering::SeqCst),
                MAX_LABELS_PER_ATTEMPT
            );
            // A label already added is not written or counted again; an unknown one is refused
            // before the tracker is asked.
            let again = tools.state().labels[0].clone();
            assert!(
                tools
                    .call(&call(TOOL_LABEL, json!({"label": again})))
                    .success
            );
            let unknown = tools.call(&call(TOOL_LABEL, json!({"label": "Nope"})));
            assert!(
                unknown.text.contains("has no label \\\"Nope\\\""),
                "{}",
                unknown.text
            );
            assert_eq!(
                stub.labels_added.load(Ordering::SeqCst),
                MAX_LABELS_PER_ATTEMPT
            );
        });
    }

    #[test]
    fn the_record_stops_growing_at_its_limit_and_counts_the_rest() {
        with_tools(|tools, _| {
            for _ in 0..bounds::MAX_RECORDED_CALLS + 5 {
                tools.call(&call(TOOL_FINALIZE, json!({"path": "x".repeat(200)})));
            }
            let state = tools.state();
            assert_eq!(state.calls.len(), bounds::MAX_RECORDED_CALLS);
            let last = state.calls.last().unwrap();
            assert_eq!(last.tool, NOT_RECORDED);
            assert_eq!(
                last.detail,
                "6 more tool calls were not recorded (a record keeps 1000)"
            );
            assert!(
                state.calls[0].detail.len() < 600,
                "{}",
                state.calls[0].detail
            );
        });
    }

    #[test]
    fn secret_values_never_come_back_in_a_result_or_the_record() {
        with_tools(|tools, _| {
            let result = tools.call(&call(TOOL_COMMENT, json!({"body": "hello"})));
            assert!(!result.success);
            assert!(
                result.text.contains("key [redacted] refused"),
                "{}",
                result.text
            );
            let detail = &tools.state().calls[0].detail;
            assert!(!detail.contains(SECRET), "{detail}");
        });
    }
}
