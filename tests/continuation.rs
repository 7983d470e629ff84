//! Turns that run out are a continuation, not a page (#13 item 2): an agent that used all of
//! an attempt's `max_turns` without finalizing ends `continuation_pending` (retryable, counted
//! against `max_attempts`), and the next attempt resumes the same codex thread in the same lane
//! (`thread/resume`), from `run --once` and from the daemon's 1 s continuation. Only the last
//! attempt's budget sends it to a human.
//!
//! Real `maestro`, the real codex with the scripted mock model, the fake Linear and GitHub.

use maestro::mock_model::Step;
use maestro::workspace::record::{RetryKind, RunRecord, RunStatus};

use crate::codex_or_skip;
use crate::support::fake_linear::FakeIssue;
use crate::support::landing::{Daemon, LIFECYCLE};
use crate::support::run_world::{RunWorld, handoff_steps, summary_line};
use crate::support::stderr;

const BRANCH: &str = "x/demo-abc-1";

/// One turn per attempt, three attempts, validation that the handoff steps satisfy.
const ONE_TURN: &str = "version = 1\n\n[execution]\nmax_turns = 1\nmax_attempts = 3\nvalidation_commands = [\"test -f feature.txt\"]\nvalidation_timeout_ms = 60000\n";

/// The exit code, with the summary line and the log when it is not the expected one.
fn assert_exit(output: &std::process::Output, code: i32) -> String {
    let line = summary_line(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{line}\n--- stderr ---\n{}",
        stderr(output)
    );
    line
}

/// Attempt 1: one message and the turn ends without a finalize (1,100 tokens). Attempt 2: the
/// handoff, each model call reporting 11 tokens.
fn out_of_turns_then_handoff() -> Vec<Step> {
    let mut steps =
        vec![Step::message("Still reading the code; more to do.").with_usage(1000, 100)];
    steps.extend(
        handoff_steps(BRANCH, 7)
            .into_iter()
            .map(|step| step.with_usage(10, 1)),
    );
    steps
}

/// Asserts that `second` resumed `first`'s thread: same thread id, the resumption recorded,
/// and its own tokens only (five calls of 11), though codex counts the whole thread.
fn assert_resumed(world: &RunWorld, first: &RunRecord, second: &RunRecord, first_calls: usize) {
    let thread = first
        .thread_id
        .as_deref()
        .expect("attempt 1 recorded its thread");
    assert_eq!(second.thread_id.as_deref(), Some(thread), "{second:#?}");
    let resumed = second.resumed.as_ref().expect("attempt 2 says it resumed");
    assert_eq!(resumed.from_run_id, first.run_id);
    assert_eq!(resumed.tokens_before.total, 1100);
    assert_eq!(first.tokens.total, 1100);
    assert_eq!(second.tokens.total, 55, "this attempt's tokens only");
    // The model saw attempt 1's conversation again: the history came back with the thread, and
    // the new attempt was told to continue instead of being handed the issue a second time.
    let calls = world.model_calls();
    let resumed_call = &calls[first_calls].body;
    assert!(
        resumed_call.contains("Still reading the code; more to do."),
        "attempt 1's history is in attempt 2's first model call"
    );
    assert!(resumed_call.contains("Maestro continues your work on ABC-1"));
    assert!(resumed_call.contains("attempt 2 of 3"));
    assert_eq!(
        resumed_call.matches("- Attempt: 1 of 3").count(),
        1,
        "the issue brief is in the history once, not sent again"
    );
    assert!(!resumed_call.contains("- Attempt: 2 of 3"));
}

#[test]
fn run_once_out_of_turns_schedules_a_continuation_that_resumes_the_thread() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("cont-run-once", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(ONE_TURN)
        .steps(out_of_turns_then_handoff())
        .build();
    world.open_pull(7, BRANCH);

    let first = world.run_once();
    let line = assert_exit(&first, 4);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=retry_scheduled error=continuation_pending next=\"continue in attempt 2\"",
            record.run_id
        )
    );
    assert_eq!(record.status, RunStatus::RetryScheduled);
    assert_eq!(record.disposition, None, "nothing was declared yet");
    let retry = record.retry.clone().unwrap();
    assert!(retry.retry);
    assert_eq!(retry.kind, Some(RetryKind::Continuation));
    assert!(retry.due_at.is_some());
    assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
    assert!(world.linear.issue("ABC-1").labels.is_empty(), "no page");
    let state = world.issue_state("ABC-1").unwrap();
    assert_eq!(state.attempts_used, 1, "a continuation counts");
    let first_calls = world.model_calls().len();
    assert_eq!(first_calls, 1);

    let second = world.run_once();
    let line = assert_exit(&second, 0);
    assert!(line.contains("outcome=handoff"), "{line}");
    let runs = world.runs();
    assert_eq!(runs.len(), 2);
    let (first, second) = (&runs[0], &runs[1]);
    assert_eq!(second.attempt, 2);
    assert_resumed(&world, first, second, first_calls);
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
}

#[test]
fn the_daemon_continues_an_attempt_that_ran_out_of_turns_after_one_second() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("cont-daemon", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(ONE_TURN)
        .steps(out_of_turns_then_handoff())
        .build();
    world.open_pull(7, BRANCH);

    let mut daemon = Daemon::start(&world);
    daemon.wait_for("ABC-1 handed off", LIFECYCLE, || {
        (world.linear.issue("ABC-1").state == "In Review").then_some(())
    });
    daemon.wait_for("both records finished", LIFECYCLE, || {
        let runs = world.runs();
        (runs.len() == 2 && runs.iter().all(|run| run.status != RunStatus::Running)).then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let log = daemon.log();
    assert!(
        log.contains(
            "retry queued issue=ABC-1 attempt=2 action=retry_scheduled reason=\"Continuation after continuation_pending, due in 1 s\""
        ),
        "{log}"
    );
    let runs = world.runs();
    assert_eq!(runs[0].error_class, Some("continuation_pending".into()));
    assert_eq!(runs[1].status, RunStatus::Handoff);
    assert_resumed(&world, &runs[0], &runs[1], 1);
}

#[test]
fn only_the_attempt_budget_running_out_sends_an_unfinished_agent_to_a_human() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("cont-budget", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n\n[execution]\nmax_turns = 1\nmax_attempts = 2\n")
        .steps(vec![
            Step::message("Thinking."),
            Step::message("Still thinking."),
        ])
        .build();

    let first = world.run_once();
    let line = assert_exit(&first, 4);
    assert!(line.contains("error=continuation_pending"), "{line}");
    let second = world.run_once();
    let line = assert_exit(&second, 5);
    assert!(
        line.contains("outcome=human_required error=continuation_pending"),
        "{line}"
    );
    let runs = world.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].thread_id, runs[0].thread_id, "resumed, then paged");
    let message = runs[1].error_message.clone().unwrap_or_default();
    assert!(
        message.contains("(attempt 2 of 2: no attempts left)"),
        "{message}"
    );
    let issue = world.linear.issue("ABC-1");
    assert!(
        issue
            .labels
            .iter()
            .any(|label| label == "maestro:needs-attention"),
        "{issue:?}"
    );
}

#[test]
fn a_thread_codex_cannot_resume_falls_back_to_a_new_thread_with_the_issue() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("cont-fallback", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(ONE_TURN)
        .steps(out_of_turns_then_handoff())
        .build();
    world.open_pull(7, BRANCH);
    assert_exit(&world.run_once(), 4);
    // Codex's rollouts are gone (another CODEX_HOME, pruned sessions): nothing to resume.
    std::fs::remove_dir_all(world.codex_home.join("sessions")).unwrap();

    let second = world.run_once();
    assert_exit(&second, 0);
    let runs = world.runs();
    assert_ne!(runs[1].thread_id, runs[0].thread_id, "a new thread");
    assert!(runs[1].resumed.is_none());
    let fresh = &world.model_calls()[1].body;
    assert!(
        fresh.contains("- Attempt: 2 of 3"),
        "the full issue brief again"
    );
    assert!(
        fresh.contains("The previous attempt failed: continuation_pending"),
        "it says why there is a second attempt"
    );
    assert!(!fresh.contains("Still reading the code; more to do."));
    assert!(
        stderr(&second).contains("refused to resume the thread"),
        "{}",
        stderr(&second)
    );
    let journal = std::fs::read_to_string(world.layout().journal_file(&runs[1].run_id)).unwrap();
    assert!(journal.contains("thread_resume_refused"), "{journal}");
}
