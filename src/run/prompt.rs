//! What the agent is told: standing instructions, the issue, continuation guidance, and the
//! five tools as advertised (their names, descriptions and argument schemas; what they do is
//! `tools`). The handoff tool's argument and contract follow WORKFLOW.md's `[handoff] mode`.
//!
//! Developer instructions are WORKFLOW.md's body, then each `context.read_first` file, then
//! Maestro's tool contract. The first turn's input is the issue itself; later turns only say
//! how to continue. Nothing here may contain a secret: it is built from the issue, the lane and
//! repository files, never from the environment, and every text leaves through
//! [`Secrets::scrub`] as well, in case a file or an issue holds a token.

use std::fmt::Write;
use std::path::Path;

use crate::bounds::{MAX_BODY_BYTES, MAX_LABELS_PER_ATTEMPT, MAX_SHORT_BYTES, MAX_SUMMARY_BYTES};
use serde_json::{Value, json};

use super::context::ContextEntry;
use super::redact::Secrets;
use super::tools::{PATH_MANUAL, PATH_REVIEW};
use crate::app_server::DynamicTool;
use crate::tracker::Issue;
use crate::workflow::{HandoffMode, Workflow};
use crate::workspace::record::ContextSkip;

/// Names of the issue-scoped tools, as advertised to the model.
pub const TOOL_TRANSITION: &str = "issue_transition";
pub const TOOL_COMMENT: &str = "issue_comment";
pub const TOOL_LABEL: &str = "issue_label_add";
pub const TOOL_HANDOFF: &str = "issue_review_handoff";
pub const TOOL_FINALIZE: &str = "issue_terminal_finalize";

/// The developer instructions of one attempt, and the read_first files left out of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instructions {
    pub text: String,
    /// For the run record: each read_first file that was not read, and why.
    pub skipped: Vec<ContextSkip>,
}

/// WORKFLOW.md body + read_first files (`context`, read from the lane, which is the agent's view
/// of the repository: by `context::read_all` here or `remote_context::read_all` on an ssh
/// host) + the tool contract, with every secret value scrubbed. A read_first file that could not
/// be read safely is skipped: the text says so where the file would have been, so the agent
/// knows it is missing rather than empty.
pub fn developer_instructions(
    workflow: &Workflow,
    context: Vec<ContextEntry>,
    issue_identifier: &str,
    secrets: &Secrets,
) -> Instructions {
    with_contract(
        workflow,
        context,
        issue_identifier,
        &tool_contract(workflow, issue_identifier),
        secrets,
    )
}

/// WORKFLOW.md body + read_first files + `contract`, scrubbed: the developer instructions of
/// an attempt ([`developer_instructions`]) and of a review repair, which differ only in their
/// tool contract.
pub(super) fn with_contract(
    workflow: &Workflow,
    context: Vec<ContextEntry>,
    issue_identifier: &str,
    contract: &str,
    secrets: &Secrets,
) -> Instructions {
    let mut text = String::new();
    let mut skipped = Vec::new();
    if !workflow.body.is_empty() {
        text.push_str(&workflow.body);
        text.push_str("\n\n");
    }
    for entry in context {
        match entry {
            ContextEntry::Read {
                path,
                text: contents,
            } => {
                let _ = write!(
                    text,
                    "## Context: {}\n\n{}\n\n",
                    path.display(),
                    contents.trim_end()
                );
            }
            ContextEntry::Skipped(skip) => {
                log::warn!(
                    "read_first file skipped issue={issue_identifier} path=\"{}\" reason=\"{}\"",
                    skip.path,
                    skip.reason
                );
                let _ = write!(
                    text,
                    "## Context: {}\n\n(Maestro skipped this file: it {}. Its contents are not part of these instructions.)\n\n",
                    skip.path, skip.reason
                );
                skipped.push(skip);
            }
        }
    }
    text.push_str(contract);
    Instructions {
        text: secrets.scrub(&text).into_owned(),
        skipped,
    }
}

fn tool_contract(workflow: &Workflow, identifier: &str) -> String {
    let policy = &workflow.tracker;
    format!(
        "## Maestro tool contract\n\n\
You are working on exactly one issue, {identifier}, in this lane (a git clone on its own branch). \
Maestro gives you five tools, all bound to {identifier}; naming any other issue is a policy \
violation that fails the attempt.\n\n\
- `{TOOL_TRANSITION}(state)`: move the issue. The only allowed target is \"{in_progress}\" \
(claim the issue when you start). \"{success}\" is set by Maestro after it validates your handoff; \
never try to set it.\n\
- `{TOOL_COMMENT}(body)`: post a Markdown comment (at most {MAX_BODY_BYTES} bytes). Refer to \
files by repository-relative paths; comments containing absolute host paths are rejected.\n\
- `{TOOL_LABEL}(label)`: add a label the issue's team already has, at most \
{MAX_LABELS_PER_ATTEMPT} labels per attempt.\n\
{handoff}\
- `{TOOL_FINALIZE}(path)`: declare how you finished, exactly once, as your last action.\n\n\
There are exactly two legal ways to finish:\n\
1. `review_handoff`: the work is done and pushed; call `{TOOL_HANDOFF}` successfully, then \
`{TOOL_FINALIZE}(\"review_handoff\")`. Maestro then runs the validation commands and moves the \
issue to \"{success}\".\n\
2. `manual_attention`: you cannot finish without a human; add the label \"{attention}\" with \
`{TOOL_LABEL}`, explain what is needed with `{TOOL_COMMENT}`, then \
`{TOOL_FINALIZE}(\"manual_attention\")`.\n\n\
Running out of turns without finalizing continues the work in a new attempt (it counts \
against the attempts); anything else (both paths, or a finalize that does not match what you \
recorded) fails the attempt. Tool results are JSON; `success: false` explains what went wrong. Other \
arguments are at most {MAX_SHORT_BYTES} bytes each; a longer one is refused.\n",
        in_progress = policy.in_progress_state,
        success = policy.success_state,
        attention = policy.needs_attention_label,
        handoff = handoff_contract(workflow.handoff),
    )
}

/// The handoff tool's line of the contract, by `[handoff] mode`.
fn handoff_contract(mode: HandoffMode) -> String {
    match mode {
        HandoffMode::PullRequest => format!(
            "- `{TOOL_HANDOFF}(pr_url, summary)`: record your pull request for review. Commit, push \
this lane's branch and open the pull request first: Maestro checks now that the PR is open, not a \
draft, in this repository, with this lane's branch as head and this lane's HEAD commit. The \
summary is at most {MAX_SUMMARY_BYTES} bytes.\n"
        ),
        HandoffMode::Branch => format!(
            "- `{TOOL_HANDOFF}(branch, summary)`: record this lane's branch for review (there is \
no pull request in this repository). Commit and push this lane's branch to origin first \
(`git push origin HEAD:refs/heads/<branch>`): Maestro checks now that `branch` is this lane's \
branch and that its tip on the repository's origin is exactly this lane's HEAD commit. The \
summary is at most {MAX_SUMMARY_BYTES} bytes.\n"
        ),
    }
}

/// What the first turn says: the issue and where to work.
#[derive(Debug, Clone)]
pub struct IssueBrief<'a> {
    pub issue: &'a Issue,
    pub attempt: u32,
    pub max_attempts: u32,
    pub branch: &'a str,
    pub lane: &'a Path,
    /// The previous attempt's failure, when this is a retry.
    pub previous_failure: Option<String>,
}

/// The first turn's input, secret values scrubbed.
pub fn first_turn(brief: &IssueBrief<'_>, secrets: &Secrets) -> String {
    let issue = brief.issue;
    let mut text = format!("# {}: {}\n\n", issue.identifier, issue.title);
    if let Some(url) = &issue.url {
        let _ = writeln!(text, "- URL: {url}");
    }
    let _ = writeln!(text, "- State: {}", issue.state.name);
    if !issue.labels.is_empty() {
        let _ = writeln!(text, "- Labels: {}", issue.labels.join(", "));
    }
    if !issue.blockers.is_empty() {
        let blockers: Vec<String> = issue
            .blockers
            .iter()
            .map(|blocker| format!("{} ({})", blocker.identifier, blocker.state.name))
            .collect();
        let _ = writeln!(text, "- Blocked by: {}", blockers.join(", "));
    }
    let _ = writeln!(
        text,
        "- Attempt: {} of {}",
        brief.attempt, brief.max_attempts
    );
    let _ = writeln!(text, "- Branch: {}", brief.branch);
    let _ = writeln!(text, "- Lane: {}", brief.lane.display());
    if let Some(failure) = &brief.previous_failure {
        let _ = writeln!(
            text,
            "\nThe previous attempt failed: {failure}\nThe lane still holds that attempt's work; continue from it."
        );
    }
    text.push_str("\n## Description\n\n");
    if issue.description.trim().is_empty() {
        text.push_str("(no description)\n");
    } else {
        text.push_str(issue.description.trim());
        text.push('\n');
    }
    secrets.scrub(&text).into_owned()
}

/// The first turn of an attempt that resumed the previous attempt's thread (it ran out of
/// turns without finalizing): the thread already holds the issue and the work so far, so this
/// says only where the attempt stands and how to finish, secret values scrubbed.
pub fn resumed(brief: &IssueBrief<'_>, max_turns: u32, secrets: &Secrets) -> String {
    let text = format!(
        "Maestro continues your work on {identifier} in a new attempt (attempt {attempt} of \
         {max_attempts}, {max_turns} turn(s)): the previous attempt used all its turns before you \
         finalized. The lane and this conversation are as you left them; the issue is now in \
         state {state}. Continue from where you stopped. When the work is done, push, record the \
         handoff and finalize with review_handoff; if you need a human, take the \
         manual_attention path.",
        identifier = brief.issue.identifier,
        attempt = brief.attempt,
        max_attempts = brief.max_attempts,
        state = brief.issue.state.name,
    );
    secrets.scrub(&text).into_owned()
}

/// A continuation turn's input, secret values scrubbed.
pub fn continuation(turn: u32, max_turns: u32, secrets: &Secrets) -> String {
    let text = format!(
        "Continue working on the issue (turn {turn} of {max_turns}). You have not finalized yet. \
         When the work is done, push, record the handoff and finalize with review_handoff; if you \
         need a human, take the manual_attention path. This is your turn {turn} of {max_turns}."
    );
    secrets.scrub(&text).into_owned()
}

/// One issue-scoped tool as advertised on `thread/start`: `properties` plus the optional
/// `issue` argument every tool takes (only the lane's own issue is allowed), no others.
pub(super) fn issue_tool(
    name: &str,
    description: String,
    properties: Value,
    required: &[&str],
) -> DynamicTool {
    let mut properties = properties;
    if let Some(object) = properties.as_object_mut() {
        object.insert(
            "issue".into(),
            json!({
                "type": "string",
                "description": "Optional. The issue identifier; only the issue of this lane is allowed.",
                "maxLength": MAX_SHORT_BYTES
            }),
        );
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
}

/// The comment tool, the same for an attempt and a repair.
pub(super) fn comment_tool() -> DynamicTool {
    issue_tool(
        TOOL_COMMENT,
        format!(
            "Post a Markdown comment on this lane's issue (at most {MAX_BODY_BYTES} bytes). Use repository-relative paths."
        ),
        json!({"body": {"type": "string", "maxLength": MAX_BODY_BYTES}}),
        &["body"],
    )
}

/// The label tool; `per` is what the cap counts (`attempt` or `repair`).
pub(super) fn label_tool(per: &str) -> DynamicTool {
    issue_tool(
        TOOL_LABEL,
        format!(
            "Add one of the team's labels to this lane's issue; at most {MAX_LABELS_PER_ATTEMPT} labels per {per}."
        ),
        json!({"label": {"type": "string", "maxLength": MAX_SHORT_BYTES}}),
        &["label"],
    )
}

/// The five tools as advertised on `thread/start`; the handoff tool takes a PR URL or a
/// branch, by `[handoff] mode`.
pub fn definitions(workflow: &Workflow) -> Vec<DynamicTool> {
    let policy = &workflow.tracker;
    let tool = issue_tool;
    vec![
        tool(
            TOOL_TRANSITION,
            format!(
                "Move this lane's issue to a workflow state. Allowed: \"{}\" (claim the issue).",
                policy.in_progress_state
            ),
            json!({"state": {"type": "string", "maxLength": MAX_SHORT_BYTES}}),
            &["state"],
        ),
        comment_tool(),
        label_tool("attempt"),
        match workflow.handoff {
            HandoffMode::PullRequest => tool(
                TOOL_HANDOFF,
                "Record the pull request for review. Push the lane branch and open the PR first; it must be open, not a draft, with this lane's branch and HEAD.".into(),
                json!({
                    "pr_url": {"type": "string", "maxLength": MAX_SHORT_BYTES},
                    "summary": {"type": "string", "maxLength": MAX_SUMMARY_BYTES},
                }),
                &["pr_url", "summary"],
            ),
            HandoffMode::Branch => tool(
                TOOL_HANDOFF,
                "Record this lane's branch for review. Commit and push the lane branch to origin first; its tip on origin must be this lane's HEAD.".into(),
                json!({
                    "branch": {"type": "string", "maxLength": MAX_SHORT_BYTES, "description": "This lane's branch name."},
                    "summary": {"type": "string", "maxLength": MAX_SUMMARY_BYTES},
                }),
                &["branch", "summary"],
            ),
        },
        tool(
            TOOL_FINALIZE,
            "Declare how you finished, once, as your last action.".into(),
            json!({"path": {"type": "string", "enum": [PATH_REVIEW, PATH_MANUAL]}}),
            &["path"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(front_matter: &str) -> Workflow {
        crate::workflow::parse(
            Path::new("/w/WORKFLOW.md"),
            &format!("+++\nversion = 1\n{front_matter}+++\nbody\n"),
            Path::new("/w"),
        )
        .unwrap()
    }

    fn handoff_schema(workflow: &Workflow) -> Value {
        definitions(workflow)
            .into_iter()
            .find(|tool| tool.name == TOOL_HANDOFF)
            .unwrap()
            .input_schema
    }

    #[test]
    fn the_handoff_tool_takes_a_pr_url_or_a_branch_by_mode() {
        let pull_request = workflow("");
        assert_eq!(
            handoff_schema(&pull_request)["required"],
            json!(["pr_url", "summary"])
        );
        let contract = tool_contract(&pull_request, "ABC-1");
        assert!(
            contract.contains("`issue_review_handoff(pr_url, summary)`"),
            "{contract}"
        );

        let branch = workflow("[handoff]\nmode = \"branch\"\n");
        let schema = handoff_schema(&branch);
        assert_eq!(schema["required"], json!(["branch", "summary"]));
        assert!(schema["properties"].get("pr_url").is_none(), "{schema}");
        let contract = tool_contract(&branch, "ABC-1");
        assert!(
            contract.contains("`issue_review_handoff(branch, summary)`"),
            "{contract}"
        );
        assert!(contract.contains("no pull request"), "{contract}");
        assert!(!contract.contains("open the pull request"), "{contract}");
    }
}
