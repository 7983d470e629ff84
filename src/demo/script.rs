//! The demo's story: three issues, what each should end with, and the scripted agent that works
//! them through the built-in mock model.
//!
//! Every lane's codex talks to the one mock, so each issue's script is a [`Route`] keyed by the
//! heading Maestro's first turn gives the issue (`# DEMO-1: <title>`, see
//! `run::prompt::first_turn`) and, for the issue worked twice, by its `- Attempt: N of` line.
//! The agent really works: it edits `greetings.txt` with a shell command (`exec_command`),
//! commits, pushes its lane branch to origin and hands the branch off (`[handoff] mode =
//! "branch"`, no GitHub). This module holds text and steps only; building the world is `world`,
//! judging the records is `watch`.

use serde_json::{Value, json};

use crate::mock_model::{Route, Step};
use crate::workspace::lane;
use crate::workspace::record::RunStatus;

/// maestro.toml's `id`: lane branches are `x/demo-<identifier>`.
pub const PROJECT_ID: &str = "demo";
/// The local tracker's project slug.
pub const PROJECT_SLUG: &str = "demo";
/// The label the human path sets (WORKFLOW.md's default `needs_attention_label`).
pub const NEEDS_ATTENTION: &str = "maestro:needs-attention";

/// One issue of the demo project.
#[derive(Debug, Clone, Copy)]
pub struct DemoIssue {
    pub identifier: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// Linear-style priority (1 urgent … 4 low): the dispatch order.
    pub priority: u8,
    /// The status each attempt's run record should end with, in order.
    pub expected: &'static [RunStatus],
    /// The tracker state the issue should end in.
    pub final_state: &'static str,
    /// Whether it should end with the needs-attention label.
    pub needs_attention: bool,
    /// The expected outcome in words, for the progress and the final report.
    pub story: &'static str,
}

/// The three issues: one handed off, one for a human, one that fails validation once.
pub const ISSUES: [DemoIssue; 3] = [
    DemoIssue {
        identifier: "DEMO-1",
        title: "Greet Spanish speakers",
        description: "Add a Spanish greeting to `greetings.txt`: `es: hola`. \
                      `sh test.sh` must pass.",
        priority: 2,
        expected: &[RunStatus::Handoff],
        final_state: "In Review",
        needs_attention: false,
        story: "handed off for review",
    },
    DemoIssue {
        identifier: "DEMO-2",
        title: "Choose the greeting for the launch page",
        description: "The launch page shows one greeting. Which language comes first is a \
                      product decision; ask before changing anything.",
        priority: 2,
        expected: &[RunStatus::HumanRequired],
        final_state: "Todo",
        needs_attention: true,
        story: "needs a human, because the agent asks for one",
    },
    DemoIssue {
        identifier: "DEMO-3",
        title: "Greet German speakers",
        description: "Add a German greeting to `greetings.txt`: `de: hallo`. \
                      `sh test.sh` must pass.",
        priority: 3,
        expected: &[RunStatus::RetryScheduled, RunStatus::Handoff],
        final_state: "In Review",
        needs_attention: false,
        story: "fails validation once, is retried, then handed off",
    },
];

/// The issue called `identifier`, if it is one of the demo's.
pub fn issue(identifier: &str) -> Option<&'static DemoIssue> {
    ISSUES.iter().find(|issue| issue.identifier == identifier)
}

/// The lane branch of `identifier` (what the agent pushes and hands off).
pub fn branch(identifier: &str) -> String {
    lane::branch_name(PROJECT_ID, identifier)
}

/// The scripted agent: one route per issue attempt.
pub fn routes() -> Vec<Route> {
    vec![
        route(&["# DEMO-1: "], demo_1()),
        route(&["# DEMO-2: "], demo_2()),
        route(&["# DEMO-3: ", "- Attempt: 1 of"], demo_3_first_attempt()),
        route(&["# DEMO-3: ", "- Attempt: 2 of"], demo_3_second_attempt()),
    ]
}

/// A route whose every model call reports token usage, so the status table and the dashboard
/// have figures to show: the input grows with the conversation, as a real model's would.
fn route(markers: &[&str], steps: Vec<Step>) -> Route {
    Route {
        markers: markers.iter().map(|marker| marker.to_string()).collect(),
        steps: steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| step.with_usage(2_400 + 600 * index as u64, 120))
            .collect(),
    }
}

/// Claim, add the greeting, commit and push, hand the branch off, finalize.
fn demo_1() -> Vec<Step> {
    vec![
        claim("demo1_claim"),
        Step::exec_command(
            "demo1_edit",
            &add_greeting("es: hola", "Greet Spanish speakers (DEMO-1)"),
        ),
        handoff(
            "demo1_handoff",
            "DEMO-1",
            "Added `es: hola` to greetings.txt; sh test.sh passes.",
        ),
        finalize("demo1_finalize", "review_handoff"),
        Step::message("DEMO-1 is pushed and handed off for review."),
    ]
}

/// A decision only a person can make: label, explain, finalize for a human.
fn demo_2() -> Vec<Step> {
    vec![
        claim("demo2_claim"),
        tool(
            "demo2_label",
            "issue_label_add",
            json!({"label": NEEDS_ATTENTION}),
        ),
        tool(
            "demo2_comment",
            "issue_comment",
            json!({"body": "This needs a product decision, not a code change: which language \
                            should the launch page greet in first? Reply with the language and \
                            remove the needs-attention label; the next attempt will make the \
                            change."}),
        ),
        finalize("demo2_finalize", "manual_attention"),
        Step::message("DEMO-2 needs a decision from a person; I asked in a comment."),
    ]
}

/// The first attempt writes the greeting without the space `test.sh` requires: validation
/// fails and the attempt is retried.
fn demo_3_first_attempt() -> Vec<Step> {
    vec![
        claim("demo3a_claim"),
        Step::exec_command(
            "demo3a_edit",
            &add_greeting("de:hallo", "Greet German speakers (DEMO-3)"),
        ),
        handoff(
            "demo3a_handoff",
            "DEMO-3",
            "Added the German greeting to greetings.txt.",
        ),
        finalize("demo3a_finalize", "review_handoff"),
        Step::message("DEMO-3 is pushed and handed off for review."),
    ]
}

/// The retry continues in the same lane: fix the line the failure comment quoted, check, push.
fn demo_3_second_attempt() -> Vec<Step> {
    let fix = "grep -v '^de:hallo$' greetings.txt > greetings.new && \
               echo 'de: hallo' >> greetings.new && mv greetings.new greetings.txt && \
               sh test.sh && git commit -q -am 'Fix the German greeting format (DEMO-3)' && \
               git push -q origin HEAD && git rev-parse HEAD";
    vec![
        Step::exec_command("demo3b_fix", fix),
        handoff(
            "demo3b_handoff",
            "DEMO-3",
            "Added `de: hallo` to greetings.txt; the first attempt missed the space after the \
             colon, which sh test.sh caught.",
        ),
        finalize("demo3b_finalize", "review_handoff"),
        Step::message("DEMO-3 is fixed, pushed and handed off for review."),
    ]
}

/// Appends `line` to greetings.txt, commits and pushes the lane branch to origin.
fn add_greeting(line: &str, message: &str) -> String {
    format!(
        "echo '{line}' >> greetings.txt && git add greetings.txt && git commit -q -m '{message}' && git push -q origin HEAD && git rev-parse HEAD"
    )
}

fn tool(call_id: &str, name: &str, arguments: Value) -> Step {
    Step::tool_call(call_id, name, arguments)
}

fn claim(call_id: &str) -> Step {
    tool(call_id, "issue_transition", json!({"state": "In Progress"}))
}

fn handoff(call_id: &str, identifier: &str, summary: &str) -> Step {
    tool(
        call_id,
        "issue_review_handoff",
        json!({"branch": branch(identifier), "summary": summary}),
    )
}

fn finalize(call_id: &str, path: &str) -> Step {
    tool(call_id, "issue_terminal_finalize", json!({"path": path}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_has_a_route_and_markers_tell_the_issues_apart() {
        let routes = routes();
        let attempts: usize = ISSUES.iter().map(|issue| issue.expected.len()).sum();
        assert_eq!(routes.len(), attempts);
        // No route's markers all appear in another issue's first-turn heading.
        for issue in ISSUES {
            let heading = format!("# {}: {}", issue.identifier, issue.title);
            let matching: Vec<_> = routes
                .iter()
                .filter(|route| {
                    route
                        .markers
                        .iter()
                        .all(|m| heading.contains(m) || m.starts_with("- Attempt"))
                })
                .collect();
            assert_eq!(matching.len(), issue.expected.len(), "{}", issue.identifier);
        }
        assert_eq!(branch("DEMO-3"), "x/demo-demo-3");
    }
}
