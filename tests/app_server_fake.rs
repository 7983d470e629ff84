//! The app-server client against the fake app-server (`examples/fake_app_server.rs`): the
//! faults the real codex will not produce on demand, each converging to the right outcome
//! inside its timeout, with no process or reader thread left behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use maestro::app_server::{
    Activity, ActivityKind, Error, NoopObserver, Observer, Session, ToolResult, TurnEnd, TurnLimits,
};
use serde_json::json;

use crate::support::app_server::{RecordingTools, fake_config, journal, received, sent};
use crate::support::dir::TestDir;
use crate::support::procs;
use crate::support::run_world::wait_until;

/// Shuts the session down and asserts that nothing is left: child reaped, reader threads
/// joined, no live process in its group.
fn finish(session: Session) -> maestro::app_server::ShutdownReport {
    let pid = session.pid();
    let report = session.shutdown();
    assert!(report.readers_joined, "{report:?}");
    assert!(report.exit.is_some(), "{report:?}");
    assert_eq!(
        procs::wait_group_gone(pid, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    report
}

fn turn(session: &mut Session) -> maestro::app_server::TurnOutcome {
    session.run_turn(
        "go",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    )
}

fn completed(text: &str) -> TurnEnd {
    TurnEnd::Completed {
        final_message: Some(text.into()),
    }
}

#[test]
fn happy_turns_repeat_on_one_thread() {
    let dir = TestDir::new("fake-happy");
    let mut session = Session::start(fake_config(dir.path(), "happy")).unwrap();
    assert_eq!(session.thread_id(), "thr_fake");
    assert_eq!(turn(&mut session).end, completed("fake done 1"));
    let second = turn(&mut session);
    assert_eq!(second.end, completed("fake done 2"));
    assert_eq!(
        second.usage.total, 10,
        "totals 10 then 20: the turn spent the difference"
    );
    assert_eq!(session.accounting().thread_tokens.total, 20);
    let report = finish(session);
    assert!(!report.forced);
    assert_eq!(report.exit.as_deref(), Some("exit code 0"));
}

#[test]
fn garbage_lines_are_recorded_and_not_fatal() {
    let dir = TestDir::new("fake-garbage");
    let mut session = Session::start(fake_config(dir.path(), "garbage")).unwrap();
    assert_eq!(turn(&mut session).end, completed("fake done 1"));
    let garbage: Vec<String> = journal(&dir.join("journal.jsonl"))
        .into_iter()
        .filter_map(|entry| entry.garbage)
        .collect();
    // Blank lines carry nothing; valid JSON that is not a message is journaled as a message.
    assert_eq!(
        garbage,
        [
            "this is not json",
            "\u{1b}[31mERROR\u{1b}[0m coloured",
            "{\"broken\":"
        ]
    );
    let odd = received(&dir.join("journal.jsonl"));
    assert!(odd.contains(&json!([1, 2, 3])) && odd.contains(&json!(42)));
    finish(session);
}

#[test]
fn a_line_over_ten_mib_is_a_protocol_error_and_reading_resynchronises() {
    let dir = TestDir::new("fake-huge");
    let mut session = Session::start(fake_config(dir.path(), "huge_line")).unwrap();
    let first = turn(&mut session);
    let TurnEnd::ProtocolError { detail } = &first.end else {
        panic!("{first:?}")
    };
    assert!(
        detail.contains("11534") && detail.contains("limit"),
        "{detail}"
    );
    assert!(!first.session_ended);
    // The next line after the huge one was read normally: the session still works.
    assert_eq!(turn(&mut session).end, completed("fake done 2"));
    let oversized = journal(&dir.join("journal.jsonl"))
        .into_iter()
        .find(|e| e.event.as_deref() == Some("oversized_line"))
        .unwrap();
    assert!(oversized.detail["bytes"].as_u64().unwrap() > 11 * 1024 * 1024);
    finish(session);
}

#[test]
fn a_line_under_ten_mib_is_accepted() {
    let dir = TestDir::new("fake-big");
    let mut session = Session::start(fake_config(dir.path(), "big_line")).unwrap();
    let outcome = turn(&mut session);
    let TurnEnd::Completed { final_message } = &outcome.end else {
        panic!("{:?}", outcome.end.kind())
    };
    assert_eq!(
        final_message.as_ref().map(String::len),
        Some(9 * 1024 * 1024)
    );
    finish(session);
}

#[test]
fn a_crash_mid_turn_is_process_exited_with_the_stderr_tail() {
    let dir = TestDir::new("fake-crash");
    let mut session = Session::start(fake_config(dir.path(), "crash")).unwrap();
    let outcome = turn(&mut session);
    assert!(outcome.session_ended);
    let TurnEnd::ProcessExited { exit, stderr_tail } = &outcome.end else {
        panic!("{outcome:?}")
    };
    assert_eq!(exit.as_deref(), Some("exit code 3"));
    // ANSI colour stripped.
    assert_eq!(
        stderr_tail.last().map(String::as_str),
        Some("fake: fatal error mid-turn")
    );
    // Later turns report the same without touching the dead child.
    let again = turn(&mut session);
    assert!(
        matches!(again.end, TurnEnd::ProcessExited { .. }),
        "{again:?}"
    );
    assert_eq!(again.turn_id, None);
    let report = finish(session);
    assert_eq!(report.exit.as_deref(), Some("exit code 3"));
}

#[test]
fn silence_mid_turn_times_out_then_escalates_to_a_kill() {
    let dir = TestDir::new("fake-silence");
    let mut config = fake_config(dir.path(), "silence");
    config.turn_idle_timeout = Duration::from_millis(500);
    // Also the interrupt grace (capped at 10 s): the time the silent fake gets to answer.
    config.read_timeout = Duration::from_secs(1);
    let mut session = Session::start(config).unwrap();
    let pid = session.pid();
    let outcome = turn(&mut session);
    assert_eq!(
        outcome.end,
        TurnEnd::IdleTimeout {
            idle: Duration::from_millis(500)
        }
    );
    // turn/interrupt went unanswered, so the group was killed.
    assert!(outcome.session_ended);
    assert!(
        sent(&dir.join("journal.jsonl"))
            .iter()
            .any(|m| m["method"] == "turn/interrupt")
    );
    assert_eq!(
        procs::wait_group_gone(pid, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    finish(session);
}

#[test]
fn silence_at_start_is_a_timeout_error_and_the_child_is_stopped() {
    let dir = TestDir::new("fake-silent-start");
    let mut config = fake_config(dir.path(), "silent_start");
    config.read_timeout = Duration::from_millis(300);
    let error = Session::start(config).unwrap_err();
    assert!(
        matches!(&error, Error::Timeout { method, .. } if method == "initialize"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "app-server did not answer initialize within 300 ms"
    );
    let spawned = journal(&dir.join("journal.jsonl"))
        .into_iter()
        .find(|e| e.event.as_deref() == Some("spawned"))
        .unwrap();
    let pid = spawned.detail["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        procs::wait_group_gone(pid, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn an_early_exit_names_the_exit_and_the_last_stderr_line() {
    let dir = TestDir::new("fake-exit-early");
    let error = Session::start(fake_config(dir.path(), "exit_early")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "app-server exited during initialize (exit code 2); last stderr line: fake: cannot start: config error"
    );
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let dir = TestDir::new("fake-missing");
    let mut config = fake_config(dir.path(), "happy");
    config.command = vec!["/nonexistent/codex".into(), "app-server".into()];
    let error = Session::start(config).unwrap_err();
    assert!(matches!(error, Error::Spawn { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("cannot start app-server '/nonexistent/codex' in ")
    );
    let mut config = fake_config(dir.path(), "happy");
    config.cwd = dir.join("no-such-lane");
    let error = Session::start(config).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no-such-lane: the working directory does not exist;"),
        "{error}"
    );
}

#[test]
fn every_approval_and_user_input_request_is_a_policy_violation() {
    let cases = [
        (
            "item/commandExecution/requestApproval",
            json!({"decision": "cancel"}),
            "run command `rm -rf /` in /lane; reason: fake reason",
        ),
        (
            "item/fileChange/requestApproval",
            json!({"decision": "cancel"}),
            "change src/main.rs; reason: fake reason",
        ),
        (
            "item/permissions/requestApproval",
            json!({"permissions": {}}),
            "grant permissions null; reason: fake reason",
        ),
        (
            "mcpServer/elicitation/request",
            json!({"action": "cancel"}),
            "answer MCP server `fake-mcp`: pick one",
        ),
        (
            "item/tool/requestUserInput",
            json!({"answers": {}}),
            "answer questions \"Color?\"",
        ),
    ];
    for (method, reply, summary) in cases {
        let dir = TestDir::new("fake-policy");
        let mut session =
            Session::start(fake_config(dir.path(), &format!("request:{method}"))).unwrap();
        let outcome = turn(&mut session);
        assert_eq!(
            outcome.end,
            TurnEnd::PolicyViolation {
                method: method.into(),
                summary: summary.into()
            },
            "{method}"
        );
        assert!(!outcome.session_ended, "{method}");
        let sent = sent(&dir.join("journal.jsonl"));
        assert!(
            sent.contains(&json!({"id": 0, "result": reply})),
            "{method}: {sent:?}"
        );
        // The session takes another turn after a violation.
        assert!(matches!(
            turn(&mut session).end,
            TurnEnd::PolicyViolation { .. }
        ));
        finish(session);
    }
}

#[test]
fn an_unknown_server_request_gets_method_not_found_and_the_turn_continues() {
    let dir = TestDir::new("fake-unknown");
    let mut session = Session::start(fake_config(dir.path(), "unknown_request")).unwrap();
    assert_eq!(turn(&mut session).end, completed("5=error -32601"));
    finish(session);
}

#[test]
fn interleaved_requests_are_each_answered_by_id() {
    let dir = TestDir::new("fake-interleaved");
    let mut session = Session::start(fake_config(dir.path(), "interleaved")).unwrap();
    let tools = RecordingTools::echo();
    let outcome = session.run_turn("go", &tools, &mut NoopObserver, TurnLimits::default());
    // 99 came during the handshake (no turn: refused); 11 is currentTime/read; 13 names a tool
    // that was never advertised; "s-14" has a string id.
    assert_eq!(
        outcome.end,
        completed(
            "10=ok:echo: a|11=time|12=ok:echo: b|13=fail:unknown tool `nope`; available tools: echo|99=fail:no maestro turn is running|s-14=ok:echo: d"
        ),
        "{outcome:?}"
    );
    let mut texts: Vec<String> = tools
        .calls()
        .iter()
        .map(|c| c.arguments["text"].as_str().unwrap().to_string())
        .collect();
    texts.sort();
    assert_eq!(
        texts,
        ["a", "b", "d"],
        "unknown tools never reach the dispatcher"
    );
    finish(session);
}

/// Sets the stop flag as soon as the turn starts.
struct StopOnTurnStart(Arc<AtomicBool>);

impl Observer for StopOnTurnStart {
    fn on_activity(&mut self, activity: &Activity) {
        if activity.kind == ActivityKind::TurnStarted {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn the_stop_flag_interrupts_the_turn() {
    let dir = TestDir::new("fake-stop");
    let stop = Arc::new(AtomicBool::new(false));
    let mut config = fake_config(dir.path(), "wait");
    config.stop = Some(Arc::clone(&stop));
    config.turn_idle_timeout = Duration::from_secs(30);
    let mut session = Session::start(config).unwrap();
    let outcome = session.run_turn(
        "go",
        &RecordingTools::echo(),
        &mut StopOnTurnStart(Arc::clone(&stop)),
        TurnLimits::default(),
    );
    assert_eq!(outcome.end, TurnEnd::Interrupted);
    assert!(!outcome.session_ended);
    // Still set: the next turn does not start at all.
    let again = session.run_turn(
        "go",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    assert_eq!(again.end, TurnEnd::Interrupted);
    assert_eq!(again.turn_id, None);
    finish(session);
}

#[test]
fn exceeding_the_token_budget_interrupts_the_turn() {
    let dir = TestDir::new("fake-budget");
    let mut session = Session::start(fake_config(dir.path(), "budget")).unwrap();
    let outcome = session.run_turn(
        "go",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits {
            token_budget: Some(500),
            ..TurnLimits::default()
        },
    );
    assert_eq!(
        outcome.end,
        TurnEnd::TokenBudgetExceeded {
            budget: 500,
            used: 1000
        }
    );
    assert_eq!(outcome.usage.total, 1000);
    finish(session);
}

#[test]
fn a_slow_tool_does_not_count_as_idle() {
    let dir = TestDir::new("fake-slow-tool");
    let mut config = fake_config(dir.path(), "slow_tool");
    config.turn_idle_timeout = Duration::from_millis(500);
    let mut session = Session::start(config).unwrap();
    // The tool takes three idle timeouts; the turn waits on Maestro, not on codex.
    let tools = RecordingTools::new(|_| {
        crate::support::pause(Duration::from_millis(1500));
        ToolResult::ok("finally")
    });
    let outcome = session.run_turn("go", &tools, &mut NoopObserver, TurnLimits::default());
    assert_eq!(outcome.end, completed("20=ok:finally"));
    finish(session);
}

#[test]
fn a_rejected_turn_start_is_a_protocol_error() {
    let dir = TestDir::new("fake-turn-error");
    let mut session = Session::start(fake_config(dir.path(), "turn_start_error")).unwrap();
    assert_eq!(
        turn(&mut session).end,
        TurnEnd::ProtocolError {
            detail: "turn/start rejected: Invalid request: fake refusal (code -32600)".into()
        }
    );
    finish(session);
}

#[test]
fn the_child_environment_drops_named_variables_and_adds_extra_ones() {
    let dir = TestDir::new("fake-env");
    // Cargo sets this for the test process, so the child would inherit it.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let mut config = fake_config(dir.path(), "env");
    config.remove_env = vec!["CARGO_MANIFEST_DIR".into()];
    config
        .extra_env
        .push(("MAESTRO_FAKE_EXTRA".into(), "1".into()));
    let mut session = Session::start(config).unwrap();
    let TurnEnd::Completed {
        final_message: Some(names),
    } = turn(&mut session).end
    else {
        panic!()
    };
    let names: Vec<&str> = names.split(',').collect();
    assert!(!names.contains(&"CARGO_MANIFEST_DIR"), "{names:?}");
    assert!(names.contains(&"MAESTRO_FAKE_EXTRA") && names.contains(&"PATH"));
    let spawned = journal(&dir.join("journal.jsonl"))
        .into_iter()
        .find(|e| e.event.as_deref() == Some("spawned"))
        .unwrap();
    assert_eq!(spawned.detail["removed_env"], json!(["CARGO_MANIFEST_DIR"]));
    finish(session);
}

#[test]
fn a_child_ignoring_stdin_close_and_sigterm_is_killed_with_its_group() {
    let dir = TestDir::new("fake-stubborn");
    let session = Session::start(fake_config(dir.path(), "ignore_stdin_close")).unwrap();
    let pid = session.pid();
    // The fake started `sleep 600` in its group.
    wait_until(Duration::from_secs(5), || {
        procs::live_in_group(pid).len() >= 2
    });
    assert_eq!(procs::live_in_group(pid).len(), 2);
    let report = finish(session);
    assert!(report.forced);
    assert_eq!(report.exit.as_deref(), Some("killed by signal 9"));
}

#[test]
fn dropping_a_session_stops_the_child() {
    let dir = TestDir::new("fake-drop");
    let session = Session::start(fake_config(dir.path(), "happy")).unwrap();
    let pid = session.pid();
    assert!(procs::is_alive(pid));
    drop(session);
    assert_eq!(
        procs::wait_group_gone(pid, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    let stopped = journal(&dir.join("journal.jsonl"))
        .into_iter()
        .find(|e| e.event.as_deref() == Some("stopped"))
        .unwrap();
    assert_eq!(stopped.detail["exit"], "exit code 0");
}
