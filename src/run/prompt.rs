//! What the agent is told: standing instructions, the issue, and continuation guidance.
//!
//! Developer instructions are WORKFLOW.md's body, then each `context.read_first` file, then
//! Maestro's tool contract. The first turn's input is the issue itself; later turns only say
//! how to continue. Nothing here may contain a secret: it is built from the issue, the lane and
//! repository files, never from the environment.

use std::fmt::Write;
use std::path::Path;

use crate::tracker::Issue;
use crate::workflow::Workflow;

/// Names of the issue-scoped tools, as advertised to the model.
pub const TOOL_TRANSITION: &str = "issue_transition";
pub const TOOL_COMMENT: &str = "issue_comment";
pub const TOOL_LABEL: &str = "issue_label_add";
pub const TOOL_HANDOFF: &str = "issue_review_handoff";
pub const TOOL_FINALIZE: &str = "issue_terminal_finalize";

/// Why a read_first file could not be added.
#[derive(Debug)]
pub struct ContextError {
    pub path: std::path::PathBuf,
    pub source: std::io::Error,
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read context file {} (context.read_first in WORKFLOW.md): {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for ContextError {}

/// WORKFLOW.md body + read_first files (read from the lane, which is the agent's view of the
/// repository) + the tool contract.
pub fn developer_instructions(
    workflow: &Workflow,
    lane: &Path,
    issue_identifier: &str,
) -> Result<String, ContextError> {
    let mut text = String::new();
    if !workflow.body.is_empty() {
        text.push_str(&workflow.body);
        text.push_str("\n\n");
    }
    for relative in &workflow.read_first {
        let path = lane.join(relative);
        let contents = std::fs::read_to_string(&path).map_err(|source| ContextError {
            path: path.clone(),
            source,
        })?;
        let _ = write!(
            text,
            "## Context: {}\n\n{}\n\n",
            relative.display(),
            contents.trim_end()
        );
    }
    text.push_str(&tool_contract(workflow, issue_identifier));
    Ok(text)
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
- `{TOOL_COMMENT}(body)`: post a Markdown comment. Refer to files by repository-relative paths; \
comments containing absolute host paths are rejected.\n\
- `{TOOL_LABEL}(label)`: add a label to the issue.\n\
- `{TOOL_HANDOFF}(pr_url, summary)`: record your pull request for review. Commit, push this \
lane's branch and open the pull request first: Maestro checks now that the PR is open, not a \
draft, in this repository, with this lane's branch as head and this lane's HEAD commit.\n\
- `{TOOL_FINALIZE}(path)`: declare how you finished, exactly once, as your last action.\n\n\
There are exactly two legal ways to finish:\n\
1. `review_handoff`: the work is done and pushed; call `{TOOL_HANDOFF}` successfully, then \
`{TOOL_FINALIZE}(\"review_handoff\")`. Maestro then runs the validation commands and moves the \
issue to \"{success}\".\n\
2. `manual_attention`: you cannot finish without a human; add the label \"{attention}\" with \
`{TOOL_LABEL}`, explain what is needed with `{TOOL_COMMENT}`, then \
`{TOOL_FINALIZE}(\"manual_attention\")`.\n\n\
Anything else (no finalize, both paths, or a finalize that does not match what you recorded) \
fails the attempt. Tool results are JSON; `success: false` explains what went wrong.\n",
        in_progress = policy.in_progress_state,
        success = policy.success_state,
        attention = policy.needs_attention_label,
    )
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

/// The first turn's input.
pub fn first_turn(brief: &IssueBrief<'_>) -> String {
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
    text
}

/// A continuation turn's input.
pub fn continuation(turn: u32, max_turns: u32) -> String {
    format!(
        "Continue working on the issue (turn {turn} of {max_turns}). You have not finalized yet. \
         When the work is done, push, record the handoff and finalize with review_handoff; if you \
         need a human, take the manual_attention path. This is your turn {turn} of {max_turns}."
    )
}
