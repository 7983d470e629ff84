//! `maestro run --once` end to end: the real binary and the real codex, a scripted model, the
//! fake Linear and GitHub, and a bare git origin the agent really pushes to. Each test asserts
//! what an operator sees (the summary line, the exit code), what Linear received, and what is
//! on disk under `.maestro/`.

use std::process::Output;

use serde_json::{Value, json};

use maestro::mock_model::Step;
use maestro::workspace::record::{Disposition, Phase, RunRecord, RunStatus};

use crate::codex_or_skip;
use crate::support::fake_github::Pull;
use crate::support::fake_linear::FakeIssue;
use crate::support::git::git;
use crate::support::run_world::{
    self, GITHUB_TOKEN, GITHUB_VAR, REPO, RunWorld, commit_and_push, handoff_steps, pr_url,
    read_json, summary_line,
};
use crate::support::stderr;

pub(crate) const BRANCH: &str = "x/demo-abc-1";
pub(crate) const ATTENTION: &str = "maestro:needs-attention";
pub(crate) const HUMAN_NEXT: &str =
    "human: read the failure comment, fix, then remove the needs-attention label";

/// The exit code, with the line and the log when it is not the expected one.
pub(crate) fn assert_exit(output: &Output, code: i32) -> String {
    let line = summary_line(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{line}\n--- stderr ---\n{}",
        stderr(output)
    );
    line
}

fn step_claim() -> Step {
    Step::tool_call(
        "call_claim",
        "issue_transition",
        json!({"state": "In Progress"}),
    )
}

fn step_push(call_id: &str) -> Step {
    Step::exec_command(call_id, &commit_and_push("feature.txt", BRANCH))
}

fn step_handoff(call_id: &str, number: u64) -> Step {
    Step::tool_call(
        call_id,
        "issue_review_handoff",
        json!({"pr_url": pr_url(number), "summary": "Added feature.txt."}),
    )
}

fn step_finalize(call_id: &str, path: &str) -> Step {
    Step::tool_call(call_id, "issue_terminal_finalize", json!({"path": path}))
}

/// The state names Linear was asked to set, in order.
pub(crate) fn states_set(world: &RunWorld) -> Vec<String> {
    world
        .linear
        .mutations()
        .iter()
        .filter(|request| request.json()["operationName"] == "IssueSetState")
        .map(|request| {
            request.json()["variables"]["stateId"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Asserts the needs-attention path in Linear: label, failure state, one failure comment with
/// every field, mentioning `reason`. Returns that comment.
pub(crate) fn assert_human_path(
    world: &RunWorld,
    record: &RunRecord,
    error_class: &str,
    reason: &str,
) {
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "Todo", "failure_state");
    assert!(issue.labels.contains(&ATTENTION.to_string()), "{issue:?}");
    let comments = world.comments("ABC-1");
    let failure = comments
        .iter()
        .find(|body| body.starts_with("**Maestro: needs attention**"))
        .unwrap_or_else(|| panic!("no failure comment in {comments:#?}"));
    for field in [
        format!("- run_id: `{}`", record.run_id),
        format!("- attempt: {}", record.attempt),
        "- failed_at: ".to_string(),
        format!("- error_class: `{error_class}`"),
        format!("- next_action: {HUMAN_NEXT}"),
        "- workspace_path: `.workspaces/ABC-1`".to_string(),
    ] {
        assert!(
            failure.contains(&field),
            "{field:?} missing from:\n{failure}"
        );
    }
    assert!(
        failure.contains(reason),
        "{reason:?} missing from:\n{failure}"
    );
    assert_eq!(record.status, RunStatus::HumanRequired);
    assert_eq!(record.error_class, Some(error_class.into()));
    assert_eq!(record.phase, Phase::Finished);
    world.assert_comments_clean();
}

pub(crate) fn human_line(record: &RunRecord, error_class: &str) -> String {
    format!(
        "run --once: issue=ABC-1 run_id={} outcome=human_required error={error_class} next=\"{HUMAN_NEXT}\"",
        record.run_id
    )
}

#[test]
fn happy_path_hands_off_a_pushed_pr_and_moves_the_issue_to_review() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-happy", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    let line = assert_exit(&output, 0);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=handoff pr={} next=\"review the pull request\"",
            record.run_id,
            pr_url(7)
        )
    );

    // The agent's commit is in the bare origin on the lane branch, and it is the lane's HEAD.
    let lane = world.lane("ABC-1");
    let head = git(&lane, &["rev-parse", "HEAD"]);
    assert_eq!(
        git(
            &world.origin,
            &["rev-parse", &format!("refs/heads/{BRANCH}")]
        ),
        head
    );
    assert_eq!(git(&lane, &["branch", "--show-current"]), BRANCH);
    assert_eq!(
        git(&lane, &["config", "--get", "remote.origin.url"]),
        run_world::ORIGIN_URL
    );
    // Nothing of Maestro's in the lane's work tree.
    assert_eq!(git(&lane, &["status", "--porcelain", "--ignored"]), "");

    // Linear: claimed by the agent, then In Review from Maestro, one completion comment.
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Review");
    assert!(issue.labels.is_empty());
    assert_eq!(states_set(&world), ["state-in-progress", "state-in-review"]);
    let comments = world.comments("ABC-1");
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let completion = &comments[0];
    assert!(completion.starts_with("**Maestro: ready for review**"));
    for field in [
        format!("- run_id: `{}`", record.run_id),
        "- attempt: 1".to_string(),
        "- finished_at: 20".to_string(),
        format!("- branch: `{BRANCH}`"),
        format!("- pr_url: {}", pr_url(7)),
        "- workspace_path: `.workspaces/ABC-1`".to_string(),
        "- validation_result: passed (1 command)".to_string(),
        "Added feature.txt.".to_string(),
    ] {
        assert!(
            completion.contains(&field),
            "{field:?} missing from:\n{completion}"
        );
    }
    world.assert_comments_clean();
    assert!(world.linear.violations().is_empty());
    // GitHub was asked with the token from the named variable.
    let github = world.github.requests();
    assert!(!github.is_empty());
    assert!(
        github
            .iter()
            .all(|request| request.header("authorization")
                == Some(&format!("Bearer {GITHUB_TOKEN}")))
    );

    // The run record says everything that happened.
    assert_eq!(record.status, RunStatus::Handoff);
    assert_eq!(record.phase, Phase::Finished);
    assert_eq!(record.disposition, Some(Disposition::ReviewHandoff));
    assert_eq!(record.attempt, 1);
    assert_eq!(record.branch, BRANCH);
    assert_eq!(record.workspace_path, ".workspaces/ABC-1");
    assert_eq!(record.pr_url.as_deref(), Some(pr_url(7).as_str()));
    assert_eq!(record.turn_count, 1);
    assert!(record.finished_at.is_some());
    assert!(record.error_class.is_none());
    let thread_id = record.thread_id.clone().expect("thread id recorded");
    let tools: Vec<(&str, bool)> = record
        .tool_calls
        .iter()
        .map(|call| (call.tool.as_str(), call.success))
        .collect();
    assert_eq!(
        tools,
        [
            ("issue_transition", true),
            ("issue_review_handoff", true),
            ("issue_terminal_finalize", true)
        ]
    );
    assert_eq!(record.validation.len(), 1);
    assert_eq!(record.validation[0].command, "test -f feature.txt");
    assert_eq!(record.validation[0].exit_code, Some(0));
    let retry = record.retry.clone().expect("retry decision");
    assert!(!retry.retry);
    assert_eq!(retry.next_action, "review the pull request");

    // Journal, activity marker and bookkeeping beside it.
    let layout = world.layout();
    let journal = std::fs::read_to_string(layout.journal_file(&record.run_id)).unwrap();
    assert!(journal.contains("\"initialize\""));
    assert!(journal.contains("issue_review_handoff"));
    let marker = read_json(&layout.activity_file("id-ABC-1"));
    assert_eq!(marker["run_id"], json!(record.run_id));
    assert_eq!(marker["phase"], "finished");
    assert_eq!(marker["thread_id"], json!(thread_id));
    assert!(marker["event_count"].as_u64().unwrap() > 0);
    let state = world.issue_state("ABC-1").unwrap();
    assert_eq!(state.attempts_used, 1);
    assert_eq!(state.last_status, Some(RunStatus::Handoff));
    assert!(state.guard.is_none());
    // The lease is free again.
    assert_eq!(
        maestro::workspace::lock::lease_holder(&layout, "id-ABC-1").unwrap(),
        None
    );

    // The model saw the tool contract, the issue, and the tools' JSON results.
    let calls = world.model_calls();
    let first = &calls[0];
    assert!(first.body.contains("Maestro tool contract"));
    assert!(first.body.contains("# ABC-1: Issue ABC-1"));
    assert!(first.body.contains(&format!("- Branch: {BRANCH}")));
    for tool in [
        "issue_transition",
        "issue_comment",
        "issue_label_add",
        "issue_review_handoff",
        "issue_terminal_finalize",
    ] {
        assert!(
            first.tool_names().contains(&tool.to_string()),
            "{tool} advertised"
        );
    }
    let handoff: Value = serde_json::from_str(&world.tool_output("call_handoff")).unwrap();
    assert_eq!(handoff["success"], true);
    assert_eq!(handoff["head_sha"], json!(head));
}

#[test]
fn manual_attention_sends_the_issue_to_a_human_with_the_agents_comment() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-manual", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps_from(|repo_root| {
            vec![
            step_claim(),
            // Comments must not carry host paths: refused, and the agent says it again.
            Step::tool_call(
                "call_absolute",
                "issue_comment",
                json!({"body": format!("Stuck in {}/src/sync.rs", repo_root.display())}),
            ),
            Step::tool_call("call_label", "issue_label_add", json!({"label": ATTENTION})),
            Step::tool_call(
                "call_comment",
                "issue_comment",
                json!({"body": "I need staging credentials to reproduce this; see `src/sync.rs`."}),
            ),
            step_finalize("call_finalize", "manual_attention"),
            Step::message("Waiting for a human."),
        ]
        })
        .build();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "manual_attention"));
    assert_eq!(record.disposition, Some(Disposition::ManualAttention));
    assert_human_path(&world, &record, "manual_attention", "see its comment");
    let comments = world.comments("ABC-1");
    assert_eq!(
        comments.len(),
        2,
        "the agent's and Maestro's: {comments:#?}"
    );
    assert!(comments[0].contains("staging credentials"));
    let refused: Value = serde_json::from_str(&world.tool_output("call_absolute")).unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("refused: the comment contains the absolute host path"),
        "{refused}"
    );
    assert!(
        world.github.requests().is_empty(),
        "no PR check without a handoff"
    );

    // The label keeps the issue from being picked up again.
    let again = world.run_once();
    let line = assert_exit(&again, 3);
    assert!(line.contains("outcome=nothing_to_do"), "{line}");
    assert_eq!(world.runs().len(), 1);
}

/// Runs a world whose agent finishes with an invalid disposition and checks the human path.
fn invalid_disposition(name: &str, steps: Vec<Step>, reason: &str) -> Option<RunWorld> {
    let codex = crate::support::codex::require_codex()?;
    let world = RunWorld::builder(name, &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);
    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "invalid_disposition"));
    assert_eq!(record.disposition, Some(Disposition::Invalid));
    assert_human_path(&world, &record, "invalid_disposition", reason);
    assert!(
        !states_set(&world).contains(&"state-in-review".to_string()),
        "never In Review"
    );
    assert!(
        record.validation.is_empty(),
        "no validation without a valid handoff"
    );
    Some(world)
}

#[test]
fn an_agent_that_never_finalizes_continues_in_the_next_attempt() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-invalid-none", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            step_push("call_work"),
            Step::message("I think I am done."),
        ])
        .build();
    world.open_pull(7, BRANCH);
    let output = world.run_once();
    // Out of turns without a finalize is a continuation, not a page (#13 item 2).
    let line = assert_exit(&output, 4);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=retry_scheduled error=continuation_pending next=\"continue in attempt 2\"",
            record.run_id
        )
    );
    assert_eq!(record.disposition, None);
    // The agent never claimed the issue: Maestro's fallback did, after the turn.
    assert_eq!(states_set(&world), ["state-in-progress"]);
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Progress");
    assert!(issue.labels.is_empty(), "no needs-attention label");
    let comments = world.comments("ABC-1");
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert!(comments[0].starts_with("**Maestro: working on this issue**"));
    assert!(comments[0].contains("- branch: `x/demo-abc-1`"));
    assert!(
        comments[1].starts_with("**Maestro: attempt 1 ran out of turns, continuing**"),
        "{}",
        comments[1]
    );
    assert!(comments[1].contains("- error_class: `continuation_pending`"));
    assert!(comments[1].contains("- next_action: continue in attempt 2"));
    world.assert_comments_clean();
}

#[test]
fn an_agent_that_finalizes_both_ways_fails_the_attempt() {
    let _ = invalid_disposition(
        "run-invalid-both",
        vec![
            step_claim(),
            step_push("call_work"),
            step_handoff("call_handoff", 7),
            step_finalize("call_review", "review_handoff"),
            step_finalize("call_manual", "manual_attention"),
            Step::message("Both."),
        ],
        "finalized more than one way (review_handoff, manual_attention)",
    );
}

#[test]
fn a_finalize_that_does_not_match_what_was_recorded_fails_the_attempt() {
    let _ = invalid_disposition(
        "run-invalid-mismatch",
        vec![
            step_claim(),
            step_push("call_work"),
            step_finalize("call_review", "review_handoff"),
            Step::message("Finalized without a handoff."),
        ],
        "finalized review_handoff without a recorded handoff",
    );
}

#[test]
fn failing_validation_keeps_the_issue_in_progress_and_schedules_a_retry() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-validation-fails", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(
            "version = 1\n[execution]\nvalidation_commands = [\"test -f feature.txt\", \"echo checking; echo 'tests failed: 2' >&2; exit 3\"]\n",
        )
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    let line = assert_exit(&output, 4);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=retry_scheduled error=validation_failed next=\"retry attempt 2\"",
            record.run_id
        )
    );
    assert_eq!(record.status, RunStatus::RetryScheduled);
    assert_eq!(record.disposition, Some(Disposition::ReviewHandoff));
    let exits: Vec<Option<i32>> = record.validation.iter().map(|v| v.exit_code).collect();
    assert_eq!(exits, [Some(0), Some(3)]);
    assert!(
        record.validation[1].output_tail.contains("tests failed: 2"),
        "{:?}",
        record.validation[1]
    );
    let retry = record.retry.clone().unwrap();
    assert!(retry.retry);
    assert_eq!(retry.next_action, "retry attempt 2");
    assert_eq!(retry.reason, "validation_failed");

    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Progress");
    assert!(issue.labels.is_empty());
    let comments = world.comments("ABC-1");
    let retry_comment = comments.last().unwrap();
    for field in [
        "**Maestro: attempt 1 failed, retrying**",
        &format!("- run_id: `{}`", record.run_id),
        "- error_class: `validation_failed`",
        "- next_action: retry attempt 2",
        "- workspace_path: `.workspaces/ABC-1`",
        "tests failed: 2",
    ] {
        assert!(
            retry_comment.contains(field),
            "{field:?} missing from:\n{retry_comment}"
        );
    }
    world.assert_comments_clean();
    let state = world.issue_state("ABC-1").unwrap();
    assert_eq!(state.attempts_used, 1);
    assert_eq!(state.last_status, Some(RunStatus::RetryScheduled));
    assert_eq!(state.last_error_class, Some("validation_failed".into()));
}

#[test]
fn a_pr_whose_head_is_not_the_lane_head_is_refused_until_the_agent_pushes() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-head-mismatch", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            step_claim(),
            step_push("call_work"),
            // A second commit that is not pushed: the PR head is now behind the lane.
            Step::exec_command(
                "call_more",
                "echo more > more.txt && git add more.txt && git commit -q -m more",
            ),
            step_handoff("call_handoff_early", 7),
            Step::exec_command(
                "call_push",
                &format!("git push -q origin HEAD:refs/heads/{BRANCH}"),
            ),
            step_handoff("call_handoff", 7),
            step_finalize("call_finalize", "review_handoff"),
            Step::message("Handed off."),
        ])
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    assert_exit(&output, 0);
    let refused: Value = serde_json::from_str(&world.tool_output("call_handoff_early")).unwrap();
    assert_eq!(refused["success"], false);
    let reason = refused["error"].as_str().unwrap();
    assert!(
        reason.starts_with("handoff not recorded: PR head is ")
            && reason.contains("push the lane branch"),
        "{reason}"
    );
    let record = world.only_run();
    let handoffs: Vec<bool> = record
        .tool_calls
        .iter()
        .filter(|call| call.tool == "issue_review_handoff")
        .map(|call| call.success)
        .collect();
    assert_eq!(handoffs, [false, true]);
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
}

#[test]
fn a_head_that_moves_after_the_handoff_fails_the_final_pr_check() {
    let codex = codex_or_skip!();
    // A validation command that commits: after it, the PR no longer shows the lane's HEAD.
    let world = RunWorld::builder("run-head-moved", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(
            "version = 1\n[execution]\nvalidation_commands = [\"git commit -q --allow-empty -m 'generated files'\"]\n",
        )
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    let line = assert_exit(&output, 4);
    assert!(
        line.contains("outcome=retry_scheduled error=pr_check_failed"),
        "{line}"
    );
    let record = world.only_run();
    let message = record.error_message.clone().unwrap();
    assert!(
        message.contains("the pull request no longer matches the lane: PR head is"),
        "{message}"
    );
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Progress");
    assert!(
        world
            .comments("ABC-1")
            .last()
            .unwrap()
            .contains("- error_class: `pr_check_failed`")
    );
}

#[test]
fn a_draft_pr_is_refused() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-draft", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            step_claim(),
            step_push("call_work"),
            step_handoff("call_handoff", 7),
            step_finalize("call_finalize", "review_handoff"),
            Step::message("Handed off."),
        ])
        .build();
    world.github.add(Pull {
        draft: true,
        ..Pull::live(REPO, 7, BRANCH, world.origin.clone())
    });

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    assert!(line.contains("error=invalid_disposition"), "{line}");
    let refused: Value = serde_json::from_str(&world.tool_output("call_handoff")).unwrap();
    assert_eq!(
        refused["error"],
        "handoff not recorded: PR is a draft; mark it ready for review"
    );
    let record = world.only_run();
    assert_human_path(
        &world,
        &record,
        "invalid_disposition",
        "without a recorded handoff",
    );
}

#[test]
fn a_tool_call_naming_another_issue_is_a_policy_violation() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-other-issue", &codex)
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ])
        .steps(vec![
            Step::tool_call(
                "call_other",
                "issue_comment",
                json!({"issue": "ABC-2", "body": "Also fixing this one."}),
            ),
            Step::message("Commented."),
        ])
        .build();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(record.issue_identifier, "ABC-1");
    assert_eq!(line, human_line(&record, "policy_violation"));
    assert_human_path(
        &world,
        &record,
        "policy_violation",
        "issue_comment named issue ABC-2, but this lane is bound to ABC-1",
    );
    let other = world.linear.issue("ABC-2");
    assert_eq!(other.state, "Todo");
    assert!(other.labels.is_empty());
    assert!(world.comments("ABC-2").is_empty(), "nothing reached ABC-2");
    assert_eq!(record.tool_calls.len(), 1);
    assert!(!record.tool_calls[0].success);
}

#[test]
fn the_agent_cannot_move_the_issue_to_the_success_state() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-success-refused", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            Step::tool_call(
                "call_review",
                "issue_transition",
                json!({"state": "In Review"}),
            ),
            Step::message("Moved it myself."),
        ])
        .build();

    let output = world.run_once();
    // Refused, and then out of turns without a finalize: a continuation (#13 item 2).
    let line = assert_exit(&output, 4);
    assert!(line.contains("error=continuation_pending"), "{line}");
    let refused: Value = serde_json::from_str(&world.tool_output("call_review")).unwrap();
    assert_eq!(refused["success"], false);
    assert!(
        refused["error"].as_str().unwrap().starts_with(
            "refused: \"In Review\" is set by Maestro after it validates your handoff"
        ),
        "{refused}"
    );
    assert!(
        !states_set(&world).contains(&"state-in-review".to_string()),
        "{:?}",
        states_set(&world)
    );
    assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
}

#[test]
fn a_missing_github_token_takes_the_human_path_and_names_the_variable() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-no-github-token", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(handoff_steps(BRANCH, 7))
        .without_github_token()
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "github_token_missing"));
    assert_human_path(
        &world,
        &record,
        "github_token_missing",
        &format!(
            "the GitHub token variable {GITHUB_VAR} (named by [github] token_env_var) is unset or empty"
        ),
    );
    assert!(
        world.github.requests().is_empty(),
        "no GitHub call without a token"
    );
    let told: Value = serde_json::from_str(&world.tool_output("call_handoff")).unwrap();
    assert!(
        told["error"].as_str().unwrap().contains(GITHUB_VAR),
        "{told}"
    );
}

#[test]
fn spending_over_the_token_budget_stops_the_turn_for_a_human() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-token-budget", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n[execution]\ntoken_budget = 1000\n")
        .steps(vec![
            Step::exec_command("call_work", "echo working").with_usage(4000, 100),
            Step::message("Still going.").with_usage(100, 10),
            Step::message("Still going.").with_usage(100, 10),
        ])
        .build();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "token_budget_exceeded"));
    assert!(record.tokens.total >= 4100, "{:?}", record.tokens);
    assert_human_path(
        &world,
        &record,
        "token_budget_exceeded",
        "over its budget of 1000",
    );
}
