//! What a review repair's agent is told (docs/spec/review.md, "Feedback and repairs"): the
//! standing instructions with the repair's tool contract, the four tools it has, its first
//! turn (the review feedback, as the daemon wrote it), continuation guidance, and the comment
//! Maestro posts when a repair pushed and validated a new head.
//!
//! A repair is not an attempt: the issue stays in review, the PR is already handed off, and it
//! ends with `issue_review_repair_complete` and the `review_repair` path. So its agent gets no
//! `issue_transition` and no `issue_review_handoff` (the tools refuse them too). The reviewers'
//! words reach it only as `review::texts` quoted and bounded them; every text here still
//! leaves through [`Secrets::scrub`].

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::prompt::{Instructions, TOOL_COMMENT, TOOL_FINALIZE, TOOL_LABEL};
use super::redact::Secrets;
use super::tools::{Handoff, PATH_MANUAL, PATH_REPAIR, TOOL_REPAIR_COMPLETE};
use super::writeback::{scrub, validation_summary};
use crate::app_server::DynamicTool;
use crate::bounds::{
    self, MAX_BODY_BYTES, MAX_LABELS_PER_ATTEMPT, MAX_SHORT_BYTES, MAX_SUMMARY_BYTES,
};
use crate::clock;
use crate::workflow::Workflow;
use crate::workspace::record::RunRecord;

/// WORKFLOW.md's body, the read_first files (under the rules of `run::context`) and the repair's
/// tool contract, secret values scrubbed.
pub fn instructions(
    workflow: &Workflow,
    lane: &Path,
    identifier: &str,
    max_repairs: u32,
    secrets: &Secrets,
) -> Instructions {
    super::prompt::with_contract(
        workflow,
        super::context::read_all(lane, &workflow.read_first),
        identifier,
        &contract(workflow, identifier, max_repairs),
        secrets,
    )
}

fn contract(workflow: &Workflow, identifier: &str, max_repairs: u32) -> String {
    let policy = &workflow.tracker;
    format!(
        "## Maestro tool contract (review repair)\n\n\
You are repairing the pull request of exactly one issue, {identifier}, in this lane (a git clone \
on the pull request's branch, with the work already handed off). Reviewers or checks asked for \
changes; the first message lists them. A repair is limited ({max_repairs} per issue); the issue \
stays in \"{review}\" throughout. Maestro gives you four tools, all bound to {identifier}; naming \
any other issue is a policy violation that fails the repair.\n\n\
- `{TOOL_COMMENT}(body)`: post a Markdown comment (at most {MAX_BODY_BYTES} bytes), \
repository-relative paths only.\n\
- `{TOOL_LABEL}(label)`: add a label the issue's team already has, at most \
{MAX_LABELS_PER_ATTEMPT} per repair.\n\
- `{TOOL_REPAIR_COMPLETE}(pr_url, summary)`: record that the repair is pushed. Commit and push \
this lane's branch first: Maestro checks now that the pull request is still open, with this \
lane's branch as head and this lane's new HEAD commit. The summary is at most \
{MAX_SUMMARY_BYTES} bytes.\n\
- `{TOOL_FINALIZE}(path)`: declare how you finished, exactly once, as your last action.\n\n\
There are exactly two legal ways to finish:\n\
1. `{PATH_REPAIR}`: the feedback is addressed, committed and pushed; call \
`{TOOL_REPAIR_COMPLETE}` successfully, then `{TOOL_FINALIZE}(\"{PATH_REPAIR}\")`. Maestro then \
runs the validation commands and watches the pull request again. A repair that pushes no new \
commit, or fails validation, counts as a failed repair.\n\
2. `{PATH_MANUAL}`: you cannot address the feedback without a human; add the label \
\"{attention}\" with `{TOOL_LABEL}`, explain what is needed with `{TOOL_COMMENT}`, then \
`{TOOL_FINALIZE}(\"{PATH_MANUAL}\")`.\n\n\
Do not move the issue and do not open another pull request. Tool results are JSON; \
`success: false` explains what went wrong. Other arguments are at most {MAX_SHORT_BYTES} bytes \
each; a longer one is refused.\n",
        review = policy.success_state,
        attention = policy.needs_attention_label,
    )
}

/// The repair's first turn: the feedback the daemon wrote (already quoted and bounded), with
/// the lane's place, secret values scrubbed.
pub fn first_turn(feedback: &str, lane: &Path, secrets: &Secrets) -> String {
    let mut text = feedback.trim_end().to_string();
    let _ = write!(text, "\n\n- Lane: {}\n", lane.display());
    secrets.scrub(&text).into_owned()
}

/// A continuation turn's input, secret values scrubbed.
pub fn continuation(turn: u32, max_turns: u32, secrets: &Secrets) -> String {
    let text = format!(
        "Continue the review repair (turn {turn} of {max_turns}). You have not finalized yet. \
         When the feedback is addressed, commit and push the lane branch, call \
         {TOOL_REPAIR_COMPLETE} and finalize with {PATH_REPAIR}; if you need a human, take the \
         {PATH_MANUAL} path."
    );
    secrets.scrub(&text).into_owned()
}

/// The four tools of a repair as advertised on `thread/start`.
pub fn definitions() -> Vec<DynamicTool> {
    let tool = super::prompt::issue_tool;
    vec![
        super::prompt::comment_tool(),
        super::prompt::label_tool("repair"),
        tool(
            TOOL_REPAIR_COMPLETE,
            "Record that the review feedback is addressed and pushed. Commit and push the lane branch first; the pull request must be open with this lane's branch and new HEAD.".into(),
            json!({
                "pr_url": {"type": "string", "maxLength": MAX_SHORT_BYTES},
                "summary": {"type": "string", "maxLength": MAX_SUMMARY_BYTES},
            }),
            &["pr_url", "summary"],
        ),
        tool(
            TOOL_FINALIZE,
            "Declare how you finished, once, as your last action.".into(),
            json!({"path": {"type": "string", "enum": [PATH_REPAIR, PATH_MANUAL]}}),
            &["path"],
        ),
    ]
}

/// The comment of a repair that pushed and validated a new head: which repair, the commit,
/// the validation, and the agent's summary as a block quote (it is the agent's text).
pub fn repaired_comment(
    record: &RunRecord,
    max_repairs: u32,
    handoff: &Handoff,
    host_paths: &[(PathBuf, String)],
) -> String {
    let mut body = String::from("**Maestro: review feedback addressed**\n\n");
    let _ = writeln!(body, "- run_id: `{}`", record.run_id);
    let _ = writeln!(
        body,
        "- repair: {} of {max_repairs}",
        record.review_repair.unwrap_or(record.attempt)
    );
    let _ = writeln!(body, "- finished_at: {}", clock::now_rfc3339());
    let _ = writeln!(body, "- branch: `{}`", record.branch);
    if let Some(url) = handoff.pr_url() {
        let _ = writeln!(
            body,
            "- pr_url: {}",
            bounds::excerpt(url, bounds::MAX_SHORT_BYTES)
        );
    }
    let _ = writeln!(body, "- commit: `{}`", handoff.head_sha);
    let _ = writeln!(
        body,
        "- validation_result: {}",
        validation_summary(&record.validation)
    );
    let _ = write!(
        body,
        "\n**Summary** (the agent's)\n\n{}",
        bounds::quote(&scrub(handoff.summary.trim(), host_paths))
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_offers_four_tools_and_finishes_by_review_repair() {
        let names: Vec<String> = definitions().into_iter().map(|tool| tool.name).collect();
        assert_eq!(
            names,
            [
                "issue_comment",
                "issue_label_add",
                "issue_review_repair_complete",
                "issue_terminal_finalize"
            ]
        );
        let finalize = definitions().pop().unwrap();
        assert_eq!(
            finalize.input_schema["properties"]["path"]["enum"],
            json!(["review_repair", "manual_attention"])
        );
        let workflow = crate::workflow::parse(
            Path::new("/w/WORKFLOW.md"),
            "Standing rules.",
            Path::new("/w"),
        )
        .unwrap();
        let text = contract(&workflow, "ABC-1", 3);
        assert!(
            text.contains("issue_review_repair_complete(pr_url, summary)"),
            "{text}"
        );
        assert!(!text.contains("issue_review_handoff"), "{text}");
        assert!(!text.contains("issue_transition"), "{text}");
    }
}
