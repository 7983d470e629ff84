//! Lane lifecycle gaps an operator hits in the first week (#13, items 3, 4 and 7): a turn's
//! wall-clock limit, timeouts that say why (and stop retrying a cause that will not go away),
//! and WORKFLOW.md files written for the peer implementation.
//!
//! Agent tests run the real `maestro` and the real codex with the scripted mock model (or, for
//! an unreachable model, a loopback port nothing listens on), the fake Linear and GitHub.

use std::path::Path;
use std::time::Duration;

use maestro::app_server::{self, CauseKind, NoopObserver, Session, TurnEnd, TurnLimits};
use maestro::mock_model::{CodexConfig, MockModel, Step};
use maestro::workspace::record::{RunRecord, RunStatus};
use serde_json::Value;

use crate::codex_or_skip;
use crate::support::app_server::{RecordingTools, received, sent};
use crate::support::codex::{CodexWorld, unattended};
use crate::support::fake_linear::FakeIssue;
use crate::support::ports::DeadPort;
use crate::support::run_world::{RUN_DEADLINE, RunWorld, summary_line, wait_until};
use crate::support::{stderr, stdout};

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

/// The journal of `record`'s attempt.
fn journal(world: &RunWorld, record: &RunRecord) -> Vec<app_server::JournalEntry> {
    app_server::read_journal(&world.layout().journal_file(&record.run_id))
        .unwrap()
        .entries
}

/// How many streaming deltas the journal's coalesced lines stand for.
fn deltas_journaled(entries: &[app_server::JournalEntry]) -> u64 {
    entries
        .iter()
        .filter_map(|entry| entry.deltas.as_ref())
        .map(|run| run.count)
        .sum()
}

/// Item 3: a turn that streams forever never goes idle; the turn timeout interrupts it.
#[test]
fn a_session_turn_that_streams_forever_ends_at_its_turn_timeout() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![Step::endless_deltas()]).unwrap();
    let world = CodexWorld::new("life-endless", &codex, &mock.codex_config());
    // The idle timeout is far away: only the wall-clock limit can end this turn.
    let mut config = world.session_config();
    config.turn_idle_timeout = Duration::from_secs(120);
    let mut session = Session::start(config).unwrap();
    let limits = TurnLimits {
        turn_timeout: Some(Duration::from_secs(3)),
        ..TurnLimits::default()
    };
    let outcome = session.run_turn(
        "keep busy",
        &RecordingTools::echo(),
        &mut NoopObserver,
        limits,
    );
    assert_eq!(
        outcome.end,
        TurnEnd::TurnTimeout {
            limit: Duration::from_secs(3)
        },
        "{outcome:?}"
    );
    assert!(!outcome.session_ended, "turn/interrupt ended it; no kill");
    let interrupt = sent(&world.journal)
        .into_iter()
        .find(|m| m["method"] == "turn/interrupt")
        .expect("turn/interrupt sent");
    assert_eq!(
        interrupt["params"]["turnId"],
        serde_json::json!(outcome.turn_id)
    );
    let completed = received(&world.journal)
        .into_iter()
        .find(|m| m["method"] == "turn/completed")
        .expect("turn/completed received");
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    // It was busy all along: the deltas kept coming until the interrupt.
    let entries = app_server::read_journal(&world.journal).unwrap().entries;
    assert!(deltas_journaled(&entries) >= 10, "{entries:#?}");
    assert!(session.is_alive());
    session.shutdown();
}

/// Item 3, end to end: `[agent] turn_timeout_ms` in WORKFLOW.md, the attempt recorded as
/// `turn_timeout` and retried (the retry comment, exit 4). The file also names the peer's
/// transport (item 7).
#[test]
fn run_once_interrupts_a_busy_turn_at_turn_timeout_ms_and_schedules_a_retry() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("life-turn-timeout", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(
            "version = 1\n\n[agent]\ntransport = \"stdio://\"\nturn_timeout_ms = 3000\n\n[execution]\nmax_attempts = 3\n",
        )
        .steps(vec![Step::endless_deltas()])
        .build();
    let output = world.run_once();
    let line = assert_exit(&output, 4);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=retry_scheduled error=turn_timeout next=\"retry attempt 2\"",
            record.run_id
        )
    );
    assert_eq!(record.status, RunStatus::RetryScheduled);
    assert_eq!(
        record
            .error_class
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("turn_timeout")
    );
    let message = record.error_message.clone().unwrap_or_default();
    assert!(message.contains("its whole limit of 3 s"), "{message}");
    let entries = journal(&world, &record);
    assert!(
        entries
            .iter()
            .any(|entry| entry.method() == Some("turn/interrupt")),
        "turn/interrupt sent"
    );
    let outcome = entries
        .iter()
        .find(|entry| entry.event.as_deref() == Some("turn_outcome"))
        .expect("turn outcome journaled");
    assert_eq!(outcome.detail["outcome"], "turn_timeout");
    assert!(deltas_journaled(&entries) >= 10, "the turn was busy");
    let comments = world.comments("ABC-1");
    let retry = comments
        .iter()
        .find(|body| body.starts_with("**Maestro: attempt 1 failed, retrying**"))
        .unwrap_or_else(|| panic!("no retry comment in {comments:#?}"));
    assert!(retry.contains("- error_class: `turn_timeout`"), "{retry}");
    world.assert_comments_clean();
}

/// The codex config of a world whose model endpoint is a port nothing listens on, with codex's
/// retry-forever default on: every turn ends at Maestro's idle timeout. The port stays dead
/// while the returned guard lives.
#[must_use]
fn unreachable_model(world: &RunWorld) -> DeadPort {
    let dead = DeadPort::new();
    let mut config: CodexConfig = unattended(&format!("http://127.0.0.1:{}/v1", dead.port()));
    config.unbounded_connection_retries = true;
    std::fs::write(world.codex_home.join("config.toml"), config.to_toml()).unwrap();
    dead
}

fn assert_unreachable_cause(cause: &str) {
    assert!(
        cause.starts_with("model endpoint unreachable (codex: ")
            && cause.ends_with("); check network or codex login"),
        "{cause}"
    );
}

/// Item 4, in the session: the turn that times out keeps codex's notices and names the cause.
#[test]
fn an_idle_timeout_against_an_unreachable_model_carries_its_cause() {
    let codex = codex_or_skip!();
    let dead = DeadPort::new();
    let mut config = CodexConfig::new(&format!("http://127.0.0.1:{}/v1", dead.port()));
    config.unbounded_connection_retries = true;
    let world = CodexWorld::new("life-unreachable-session", &codex, &config);
    let mut session_config = world.session_config();
    session_config.turn_idle_timeout = Duration::from_secs(4);
    let mut session = Session::start(session_config).unwrap();
    let outcome = session.run_turn(
        "hello?",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    assert!(
        matches!(outcome.end, TurnEnd::IdleTimeout { .. }),
        "{outcome:?}"
    );
    assert!(!outcome.notices.is_empty(), "codex's retry notes are kept");
    assert!(outcome.notices.iter().all(|notice| notice.will_retry));
    let cause = outcome.cause().expect("a cause");
    assert_eq!(cause.kind, CauseKind::ModelUnreachable);
    assert_unreachable_cause(&cause.text);
    // The journal's outcome line says it too.
    let entries = app_server::read_journal(&world.journal).unwrap().entries;
    let journaled = entries
        .iter()
        .find(|entry| entry.event.as_deref() == Some("turn_outcome"))
        .unwrap();
    assert_eq!(journaled.detail["cause"], Value::from(cause.text));
    session.shutdown();
}

/// Item 4, end to end: each idle timeout says why in the record, the retry comment, status and
/// the log; the third in a row with the same cause goes to a human with that cause.
#[test]
fn idle_timeouts_say_why_and_the_third_with_one_cause_goes_to_a_human() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("life-unreachable", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        // Attempts are left after the third: only the streak can send it to a human.
        .front_matter("version = 1\n\n[execution]\nmax_attempts = 5\n")
        .turn_idle_timeout_ms(4000)
        .build();
    let _dead = unreachable_model(&world);
    for attempt in 1..=2u32 {
        let output = world.run_once();
        let line = assert_exit(&output, 4);
        assert!(
            line.contains("outcome=retry_scheduled error=turn_idle_timeout"),
            "{line}"
        );
        let record = world.runs().pop().unwrap();
        assert_eq!(record.attempt, attempt);
        let cause = record.cause.clone().expect("the record keeps the cause");
        assert_eq!(cause.kind, "model_unreachable");
        assert_unreachable_cause(&cause.message);
        assert!(
            stderr(&output).contains(&format!("cause=\"{}\"", cause.message)),
            "the log names the cause:\n{}",
            stderr(&output)
        );
        let comments = world.comments("ABC-1");
        let retry = comments.last().unwrap();
        assert!(
            retry.starts_with(&format!("**Maestro: attempt {attempt} failed, retrying**")),
            "{retry}"
        );
        assert!(
            retry.contains(&format!("- cause: {}\n", cause.message)),
            "{retry}"
        );
        let streak = world.issue_state("ABC-1").unwrap().idle_timeouts.unwrap();
        assert_eq!(
            (streak.cause.as_str(), streak.count),
            ("model_unreachable", attempt)
        );
    }
    // Status shows it: JSON and text.
    let json = world.command(&["status", "--json"]).output().unwrap();
    let snapshot: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_unreachable_cause(snapshot["recent"][0]["cause"].as_str().unwrap());
    let text = stdout(&world.command(&["status"]).output().unwrap());
    assert!(text.contains("cause: model endpoint unreachable"), "{text}");

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    assert!(
        line.contains("outcome=human_required error=turn_idle_timeout"),
        "{line}"
    );
    let record = world.runs().pop().unwrap();
    assert_eq!(
        (record.attempt, record.status),
        (3, RunStatus::HumanRequired)
    );
    let cause = record.cause.clone().unwrap();
    let comments = world.comments("ABC-1");
    let human = comments.last().unwrap();
    assert!(human.starts_with("**Maestro: needs attention**"), "{human}");
    assert!(
        human.contains(&format!("- cause: {}\n", cause.message)),
        "{human}"
    );
    assert!(
        human.contains("3 idle timeouts in a row with the same cause (model_unreachable)"),
        "{human}"
    );
    let issue = world.linear.issue("ABC-1");
    assert!(
        issue
            .labels
            .contains(&"maestro:needs-attention".to_string())
    );
    world.assert_comments_clean();
}

/// Item 4's streak survives a crash: a `run --once` killed (SIGKILL) between two idle timeouts
/// leaves the streak in the bookkeeping, so the next idle timeout with the same cause is still
/// the third in a row and goes to a human.
#[test]
fn a_run_killed_between_idle_timeouts_does_not_restart_the_streak() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("life-streak-crash", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n\n[execution]\nmax_attempts = 6\n")
        .turn_idle_timeout_ms(4000)
        .build();
    let _dead = unreachable_model(&world);
    for _ in 1..=2 {
        let line = assert_exit(&world.run_once(), 4);
        assert!(line.contains("error=turn_idle_timeout"), "{line}");
    }
    let before = world.issue_state("ABC-1").unwrap();
    assert_eq!(before.idle_timeouts.as_ref().map(|s| s.count), Some(2));

    let running = world.spawn_run_once();
    let started = wait_until(RUN_DEADLINE, || {
        world.issue_state("ABC-1").is_some_and(|state| {
            state.last_status == Some(RunStatus::Running) && state.last_run_id != before.last_run_id
        })
    });
    assert!(started, "the third attempt started");
    running.signal(libc::SIGKILL);
    let _ = running.finish(RUN_DEADLINE);
    let crashed = world.issue_state("ABC-1").unwrap();
    assert_eq!(
        crashed.idle_timeouts, before.idle_timeouts,
        "the streak is kept while an attempt runs, and so survives its crash"
    );

    let output = world.run_once();
    let line = summary_line(&output);
    assert!(
        line.contains("outcome=human_required error=turn_idle_timeout"),
        "{line}\n{}",
        stderr(&output)
    );
    let human = world.comments("ABC-1").pop().unwrap();
    assert!(
        human.contains("3 idle timeouts in a row with the same cause (model_unreachable)"),
        "{human}"
    );
}

/// Item 7: a WORKFLOW.md written for the peer implementation (`[agent] transport =
/// "stdio://"`) loads, and the agent-start comment carries the peer's fields.
#[test]
fn a_peer_workflow_loads_and_the_agent_start_comment_has_the_peer_fields() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("life-peer", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n\n[agent]\ntransport = \"stdio://\"\n")
        // The agent neither claims, comments nor finalizes: Maestro's fallback posts the
        // agent-start comment after the turn (and the attempt is a continuation, item 2).
        .steps(vec![Step::message("Looking around first.")])
        .build();
    let output = world.run_once();
    assert_exit(&output, 4);
    let record = world.only_run();
    let comments = world.comments("ABC-1");
    let start = &comments[0];
    assert!(
        start.starts_with("**Maestro: working on this issue**"),
        "{comments:#?}"
    );
    for field in [
        format!("- run_id: `{}`\n", record.run_id),
        "- attempt: 1\n".to_string(),
        format!("- started_at: {}\n", record.started_at),
        "- transport: `stdio://`\n".to_string(),
        "- branch: `x/demo-abc-1`\n".to_string(),
        "- workspace_path: `.workspaces/ABC-1`\n".to_string(),
    ] {
        assert!(start.contains(&field), "{field:?} missing from:\n{start}");
    }
}

/// Item 7: any other transport is refused with the reason, exit 2, before anything runs.
#[test]
fn another_transport_is_refused_with_the_reason() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("life-peer-ws", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n\n[agent]\ntransport = \"ws://127.0.0.1:4500\"\n")
        .build();
    let output = world.run_once();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("WORKFLOW.md:5:13: field `agent.transport`: unsupported transport \"ws://127.0.0.1:4500\""),
        "{error}"
    );
    assert!(
        error.contains("write \"stdio://\" or remove the key"),
        "{error}"
    );
    assert!(world.runs().is_empty(), "nothing ran");
}

/// `[agent] turn_timeout_ms`: Symphony's default, and at least 1.
#[test]
fn turn_timeout_ms_defaults_to_an_hour_and_must_be_positive() {
    let parse = |text: &str| {
        maestro::workflow::parse(Path::new("/repo/WORKFLOW.md"), text, Path::new("/repo"))
    };
    let default = parse("+++\nversion = 1\n+++\nbody\n").unwrap();
    assert_eq!(default.agent.turn_timeout_ms, 3_600_000);
    let set = parse("+++\nversion = 1\n[agent]\nturn_timeout_ms = 5000\n+++\nbody\n").unwrap();
    assert_eq!(set.agent.turn_timeout_ms, 5000);
    let zero = parse("+++\nversion = 1\n[agent]\nturn_timeout_ms = 0\n+++\nbody\n")
        .unwrap_err()
        .to_string();
    assert!(
        zero.contains("field `agent.turn_timeout_ms`: must be at least 1, got 0"),
        "{zero}"
    );
}
