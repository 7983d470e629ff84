//! The app-server client against the real codex 0.169.0 and the scripted mock model.
//!
//! Each test starts codex with a throwaway `CODEX_HOME` whose config points at a
//! [`MockModel`]; the mock's script decides what "the model" does, and its recorded requests
//! show what codex sent back. Every wait is bounded by the session's read and idle timeouts.

use std::time::Duration;

use maestro::app_server::{ActivityKind, NoopObserver, Session, ToolResult, TurnEnd, TurnLimits};
use maestro::mock_model::{CodexConfig, MockModel, Step};
use serde_json::{Value, json};

use crate::codex_or_skip;
use crate::support::app_server::{
    RecordingObserver, RecordingTools, journal, received, sent, tool,
};
use crate::support::codex::{CodexWorld, unattended};
use crate::support::procs;
use crate::support::run_world::wait_until;

#[test]
fn handshake_and_dynamic_tool_round_trip() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::tool_call("call_echo", "echo", json!({"text": "ping"})),
        Step::message("All done."),
    ])
    .unwrap();
    let world = CodexWorld::new("real-roundtrip", &codex, &mock.codex_config());
    let mut config = world.session_config();
    config.dynamic_tools = vec![tool("echo")];
    config.developer_instructions = "Maestro test instructions 7f3a".into();
    let mut session = Session::start(config).expect("session starts");
    assert!(!session.thread_id().is_empty());
    assert_eq!(session.model(), Some("mock-model"));

    let tools = RecordingTools::echo();
    let mut observer = RecordingObserver::default();
    let outcome = session.run_turn("say hi", &tools, &mut observer, TurnLimits::default());
    assert_eq!(
        outcome.end,
        TurnEnd::Completed {
            final_message: Some("All done.".into())
        },
        "{outcome:?}"
    );
    assert!(outcome.turn_id.is_some());
    let calls = tools.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call_id, "call_echo");
    assert_eq!(calls[0].tool, "echo");
    assert_eq!(calls[0].arguments, json!({"text": "ping"}));
    assert_eq!(calls[0].turn_id, outcome.turn_id.clone().unwrap());

    // What the model saw: our tool advertised, our instructions, and the tool's answer.
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].tool_names().contains(&"echo".to_string()));
    assert!(requests[0].body.contains("Maestro test instructions 7f3a"));
    assert_eq!(
        requests[1].function_call_output("call_echo").as_deref(),
        Some("echo: ping")
    );

    // The journal holds the handshake as sent, without sandbox or approval overrides.
    let sent = sent(&world.journal);
    let methods: Vec<&str> = sent.iter().filter_map(|m| m["method"].as_str()).collect();
    assert_eq!(
        &methods[..4],
        ["initialize", "initialized", "thread/start", "turn/start"]
    );
    assert_eq!(sent[0]["params"]["capabilities"]["experimentalApi"], true);
    assert_eq!(sent[0]["params"]["clientInfo"]["name"], "maestro");
    let thread_start = &sent[2]["params"];
    assert_eq!(thread_start["dynamicTools"][0]["name"], "echo");
    assert_eq!(thread_start["cwd"], json!(world.lane));
    assert!(thread_start.get("sandbox").is_none() && thread_start.get("approvalPolicy").is_none());

    let kinds = observer.kinds();
    assert_eq!(kinds.first(), Some(&ActivityKind::ThreadStarted));
    assert!(kinds.contains(&ActivityKind::TurnStarted));
    assert_eq!(kinds.last(), Some(&ActivityKind::TurnCompleted));
    let last = observer.activities.last().unwrap();
    assert_eq!(last.thread_id, session.thread_id());
    assert_eq!(last.turn_count, 1);
    assert!(last.event_count > 5);
    session.shutdown();
}

/// A dispatcher whose `slow` call returns only once the journal shows that `fast` was already
/// answered, so the replies must go out in the opposite order to the requests.
struct OutOfOrder {
    journal: std::path::PathBuf,
}

impl maestro::app_server::ToolDispatch for OutOfOrder {
    fn call(&self, call: &maestro::app_server::ToolCall) -> ToolResult {
        if call.tool == "fast" {
            return ToolResult::ok("fast result");
        }
        // Polling is the only view the dispatcher has of what the session sent; the session
        // flushes the journal whenever it waits, which it does while this call is running.
        let answered = wait_until(Duration::from_secs(10), || {
            sent(&self.journal).iter().any(|message| {
                message.pointer("/result/contentItems/0/text") == Some(&json!("fast result"))
            })
        });
        if answered {
            ToolResult::ok("slow result")
        } else {
            ToolResult::failure("fast was never answered while slow waited")
        }
    }
}

#[test]
fn parallel_tool_calls_are_answered_out_of_order() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::tool_calls(&[
            ("call_slow", "slow", json!({})),
            ("call_fast", "fast", json!({})),
        ]),
        Step::message("both answered"),
    ])
    .unwrap();
    let world = CodexWorld::new("real-parallel", &codex, &mock.codex_config());
    let mut config = world.session_config();
    config.dynamic_tools = vec![tool("slow"), tool("fast")];
    let mut session = Session::start(config).unwrap();
    let tools = OutOfOrder {
        journal: world.journal.clone(),
    };
    let outcome = session.run_turn("go", &tools, &mut NoopObserver, TurnLimits::default());
    assert!(
        matches!(outcome.end, TurnEnd::Completed { .. }),
        "{outcome:?}"
    );

    // Both requests were outstanding at once, and the later one was answered first.
    let received = received(&world.journal);
    let request_id = |tool: &str| {
        received
            .iter()
            .find(|m| m["method"] == "item/tool/call" && m["params"]["tool"] == tool)
            .map(|m| m["id"].clone())
            .unwrap()
    };
    let (slow_id, fast_id) = (request_id("slow"), request_id("fast"));
    let replies: Vec<Value> = sent(&world.journal)
        .into_iter()
        .filter(|m| m.get("result").is_some())
        .map(|m| m["id"].clone())
        .collect();
    let position = |id: &Value| replies.iter().position(|r| r == id).unwrap();
    assert!(position(&fast_id) < position(&slow_id), "{replies:?}");

    let second = &mock.requests()[1];
    assert_eq!(
        second.function_call_output("call_slow").as_deref(),
        Some("slow result")
    );
    assert_eq!(
        second.function_call_output("call_fast").as_deref(),
        Some("fast result")
    );
}

#[test]
fn exec_command_runs_in_the_lane_and_its_output_reaches_the_model() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::exec_command(
            "call_sh",
            "echo hi > file.txt && echo lane-output-$((6*7)) && pwd",
        ),
        Step::message("ran it"),
    ])
    .unwrap();
    let world = CodexWorld::new("real-exec", &codex, &unattended(&mock.base_url()));
    let mut session = Session::start(world.session_config()).unwrap();
    let tools = RecordingTools::echo();
    let outcome = session.run_turn("run", &tools, &mut NoopObserver, TurnLimits::default());
    assert!(
        matches!(outcome.end, TurnEnd::Completed { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        std::fs::read_to_string(world.lane.join("file.txt")).unwrap(),
        "hi\n"
    );
    let output = mock.requests()[1].function_call_output("call_sh").unwrap();
    assert!(output.contains("lane-output-42"), "{output}");
    assert!(
        output.contains(&world.lane.display().to_string()),
        "{output}"
    );
    assert!(tools.calls().is_empty(), "exec_command is codex's own tool");
}

#[test]
fn token_totals_accumulate_across_two_turns_on_one_thread() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::message("one")
            .with_usage(100, 20)
            .with_header("x-codex-primary-used-percent", "42.5")
            .with_header("x-codex-primary-window-minutes", "300"),
        Step::message("two").with_usage(300, 30),
    ])
    .unwrap();
    let world = CodexWorld::new("real-tokens", &codex, &mock.codex_config());
    let mut session = Session::start(world.session_config()).unwrap();
    let tools = RecordingTools::echo();
    let first = session.run_turn("first", &tools, &mut NoopObserver, TurnLimits::default());
    let second = session.run_turn("second", &tools, &mut NoopObserver, TurnLimits::default());
    assert_eq!(
        first.end,
        TurnEnd::Completed {
            final_message: Some("one".into())
        }
    );
    assert_eq!(
        second.end,
        TurnEnd::Completed {
            final_message: Some("two".into())
        }
    );
    assert_eq!(
        (first.usage.input, first.usage.output, first.usage.total),
        (100, 20, 120)
    );
    assert_eq!(
        (second.usage.input, second.usage.output, second.usage.total),
        (300, 30, 330)
    );
    let accounting = session.accounting();
    assert_eq!(accounting.thread_tokens.total, 450);
    assert_eq!(accounting.turn_count, 2);
    // The second response had no limit headers, so the latest snapshot is empty again; the
    // first one's value was seen on the way (journal).
    let primary_seen = received(&world.journal).iter().any(|m| {
        m["method"] == "account/rateLimits/updated"
            && m["params"]["rateLimits"]["primary"]["usedPercent"] == 43
    });
    assert!(primary_seen);
    assert!(accounting.rate_limits.is_some());
    assert_eq!(mock.requests().len(), 2);
    let second_input = mock.requests()[1].json().unwrap();
    assert!(
        second_input.to_string().contains("first"),
        "one thread: history carried"
    );
}

#[test]
fn model_http_errors_fail_the_turn_before_the_idle_timeout() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::http_error(500, "mock says boom"),
        Step::http_error(400, "mock says bad request"),
    ])
    .unwrap();
    let world = CodexWorld::new("real-500", &codex, &mock.codex_config());
    let mut session = Session::start(world.session_config()).unwrap();
    let tools = RecordingTools::echo();
    let outcome = session.run_turn("fail", &tools, &mut NoopObserver, TurnLimits::default());
    let TurnEnd::Failed { error } = &outcome.end else {
        panic!("{outcome:?}")
    };
    assert_eq!(error.codex_error_info, Some(json!("internalServerError")));
    assert!(!outcome.session_ended);
    assert_eq!(mock.requests().len(), 1, "retries are off");
    let outcome = session.run_turn("again", &tools, &mut NoopObserver, TurnLimits::default());
    let TurnEnd::Failed { error } = &outcome.end else {
        panic!("{outcome:?}")
    };
    assert!(error.message.contains("mock says bad request"), "{error:?}");
    assert_eq!(error.codex_error_info, Some(json!("other")));
}

#[test]
fn a_stalled_stream_fails_at_codex_stream_idle_timeout() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![Step::stall()]).unwrap();
    let mut config = mock.codex_config();
    config.stream_idle_timeout_ms = Some(1000);
    let world = CodexWorld::new("real-stall", &codex, &config);
    let mut session = Session::start(world.session_config()).unwrap();
    let outcome = session.run_turn(
        "stall",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    assert!(matches!(outcome.end, TurnEnd::Failed { .. }), "{outcome:?}");
    assert!(!outcome.session_ended);
}

#[test]
fn a_stream_cut_before_completion_fails_the_turn() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![
        Step::cut_stream(),
        Step::streamed_message(&["A", "ll ", "good"]),
    ])
    .unwrap();
    let world = CodexWorld::new("real-cut", &codex, &mock.codex_config());
    let mut session = Session::start(world.session_config()).unwrap();
    let tools = RecordingTools::echo();
    let cut = session.run_turn("one", &tools, &mut NoopObserver, TurnLimits::default());
    assert!(matches!(cut.end, TurnEnd::Failed { .. }), "{cut:?}");
    // The thread takes another turn after a failure; the streamed deltas arrive as deltas.
    let streamed = session.run_turn("two", &tools, &mut NoopObserver, TurnLimits::default());
    assert_eq!(
        streamed.end,
        TurnEnd::Completed {
            final_message: Some("All good".into())
        }
    );
    // The deltas are journaled coalesced, one line per item: the cut stream's one delta, then
    // the streamed message's three, with their text and what they weighed on the wire.
    let runs: Vec<(String, u64)> = journal(&world.journal)
        .into_iter()
        .filter_map(|entry| entry.deltas)
        .inspect(|run| {
            assert_eq!(run.method, "item/agentMessage/delta");
            assert!(run.item_id.is_some() && run.first_ms <= run.last_ms);
            assert!(run.bytes > 100 * run.count, "{run:?}");
        })
        .map(|run| (run.text, run.count))
        .collect();
    assert_eq!(
        runs,
        [("partial ".to_string(), 1), ("All good".to_string(), 3)]
    );
    assert!(
        received(&world.journal)
            .iter()
            .all(|m| m["method"] != "item/agentMessage/delta"),
        "no delta is journaled line by line"
    );
}

#[test]
fn unreachable_model_ends_in_idle_timeout_and_a_clean_interrupt() {
    let codex = codex_or_skip!();
    // A port nothing listens on, with codex's retry-forever default left on: only Maestro's
    // idle timeout can end this turn.
    let dead = crate::support::ports::DeadPort::new();
    let mut config = CodexConfig::new(&format!("http://127.0.0.1:{}/v1", dead.port()));
    config.unbounded_connection_retries = true;
    let world = CodexWorld::new("real-unreachable", &codex, &config);
    let mut session_config = world.session_config();
    session_config.turn_idle_timeout = Duration::from_secs(3);
    let mut session = Session::start(session_config).unwrap();
    let outcome = session.run_turn(
        "hello?",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    assert_eq!(
        outcome.end,
        TurnEnd::IdleTimeout {
            idle: Duration::from_secs(3)
        },
        "{outcome:?}"
    );
    assert!(
        !outcome.session_ended,
        "turn/interrupt ended the turn; no kill needed"
    );
    let interrupt = sent(&world.journal)
        .into_iter()
        .find(|m| m["method"] == "turn/interrupt")
        .expect("turn/interrupt sent");
    assert_eq!(interrupt["params"]["turnId"], json!(outcome.turn_id));
    let completed = received(&world.journal)
        .into_iter()
        .find(|m| m["method"] == "turn/completed")
        .expect("turn/completed received");
    assert_eq!(completed["params"]["turn"]["status"], "interrupted");
    assert!(session.is_alive());
}

#[test]
fn approval_requests_are_refused_as_a_policy_violation() {
    let codex = codex_or_skip!();
    // Under on-request, a command asking to leave the sandbox needs an approval.
    let mock = MockModel::start(vec![
        Step::tool_call(
            "call_sh",
            "exec_command",
            json!({"cmd": "touch should-not-exist", "sandbox_permissions": "require_escalated",
                   "justification": "test escalation"}),
        ),
        Step::message("unreachable"),
    ])
    .unwrap();
    let mut config = mock.codex_config();
    config.approval_policy = Some("on-request".into());
    config.sandbox_mode = Some("workspace-write".into());
    let world = CodexWorld::new("real-approval", &codex, &config);
    let mut session = Session::start(world.session_config()).unwrap();
    let outcome = session.run_turn(
        "try",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    let TurnEnd::PolicyViolation { method, summary } = &outcome.end else {
        panic!("{outcome:?}")
    };
    assert_eq!(method, "item/commandExecution/requestApproval");
    assert!(summary.contains("touch should-not-exist"), "{summary}");
    assert!(!world.lane.join("should-not-exist").exists());
    let cancel = sent(&world.journal)
        .into_iter()
        .any(|m| m["result"] == json!({"decision": "cancel"}));
    assert!(cancel);
    assert!(session.is_alive());
}

#[test]
fn closing_stdin_ends_the_process_and_leaves_nothing_behind() {
    let codex = codex_or_skip!();
    let mock = MockModel::start(vec![]).unwrap();
    let world = CodexWorld::new("real-shutdown", &codex, &mock.codex_config());
    let session = Session::start(world.session_config()).unwrap();
    let pid = session.pid();
    assert!(procs::is_alive(pid));
    let report = session.shutdown();
    assert_eq!(report.exit.as_deref(), Some("exit code 0"), "{report:?}");
    assert!(!report.forced, "codex exits by itself when stdin closes");
    assert!(report.readers_joined);
    assert_eq!(
        procs::wait_group_gone(pid, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

/// Run by [`secret_env_vars_named_in_config_are_absent_from_the_child`] in a child test
/// process that has the secrets in its environment; a no-op otherwise.
#[test]
fn secret_env_child() {
    if std::env::var("MAESTRO_SECRET_ENV_CHILD").is_err() {
        return;
    }
    let codex = crate::support::codex::codex_bin().expect("codex for the child test");
    assert_eq!(
        std::env::var("MAESTRO_TEST_LINEAR_KEY").as_deref(),
        Ok("lin_api_s3cr3t")
    );
    let service = maestro::config::parse(
        std::path::Path::new("/etc/maestro/maestro.toml"),
        "id = \"demo\"\nrepo_root = \"/srv/demo\"\n[tracker]\napi_key_env_var = \"MAESTRO_TEST_LINEAR_KEY\"\n[github]\ntoken_env_var = \"MAESTRO_TEST_GITHUB_TOKEN\"\n",
        None,
    )
    .unwrap();
    let mock = MockModel::start(vec![
        Step::exec_command("call_env", "env"),
        Step::message("ok"),
    ])
    .unwrap();
    let world = CodexWorld::new("real-secret-env", &codex, &unattended(&mock.base_url()));
    let mut config = world.session_config();
    config.remove_env = service.secret_env_vars();
    let mut session = Session::start(config).unwrap();
    let outcome = session.run_turn(
        "env",
        &RecordingTools::echo(),
        &mut NoopObserver,
        TurnLimits::default(),
    );
    assert!(
        matches!(outcome.end, TurnEnd::Completed { .. }),
        "{outcome:?}"
    );
    let env = mock.requests()[1].function_call_output("call_env").unwrap();
    assert!(
        env.contains("MAESTRO_TEST_VISIBLE=plain"),
        "the env output arrived: {env}"
    );
    assert!(!env.contains("MAESTRO_TEST_LINEAR_KEY"), "{env}");
    assert!(!env.contains("MAESTRO_TEST_GITHUB_TOKEN"), "{env}");
    assert!(!env.contains("s3cr3t"), "{env}");
    let journal = std::fs::read_to_string(&world.journal).unwrap();
    assert!(!journal.contains("lin_api_s3cr3t") && !journal.contains("ghp_s3cr3t"));
    println!("secret env child ok");
}

#[test]
fn secret_env_vars_named_in_config_are_absent_from_the_child() {
    let _codex = codex_or_skip!();
    // The secrets must be in *Maestro's* environment to prove they are removed, so the check
    // runs in a child test process that has them (setting them here would race other tests).
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "app_server_real::secret_env_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MAESTRO_SECRET_ENV_CHILD", "1")
        .env("MAESTRO_TEST_LINEAR_KEY", "lin_api_s3cr3t")
        .env("MAESTRO_TEST_GITHUB_TOKEN", "ghp_s3cr3t")
        .env("MAESTRO_TEST_VISIBLE", "plain")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("secret env child ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
