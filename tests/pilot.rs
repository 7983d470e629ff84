//! The operator runbook (docs/guide/pilot.md), step by step, against real processes: the
//! `maestro` binary, the real codex 0.169.0 with a scripted model, the fake Linear and GitHub,
//! and a bare git origin the agent pushes to. Each step asserts what the operator would see
//! (stdout, exit code, `/state`) and what Linear received.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use maestro::mock_model::Step;
use serde_json::{Value, json};

use crate::codex_or_skip;
use crate::support::fake_linear::FakeIssue;
use crate::support::run_world::{
    Background, RunWorld, bounded, handoff_steps, summary_line, wait_until,
};

const STEP_DEADLINE: Duration = Duration::from_secs(120);

fn manual_attention_steps() -> Vec<Step> {
    vec![
        Step::tool_call(
            "call_claim_3",
            "issue_transition",
            json!({"state": "In Progress"}),
        ),
        Step::tool_call(
            "call_label_3",
            "issue_label_add",
            json!({"label": "maestro:needs-attention"}),
        ),
        Step::tool_call(
            "call_comment_3",
            "issue_comment",
            json!({"body": "The spec contradicts itself; a human must decide."}),
        ),
        Step::tool_call(
            "call_finalize_3",
            "issue_terminal_finalize",
            json!({"path": "manual_attention"}),
        ),
        Step::message("Asked for a human."),
    ]
}

fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[test]
fn the_pilot_runbook_end_to_end() {
    let codex = codex_or_skip!();
    let mut steps = handoff_steps("x/demo-abc-1", 1);
    steps.extend(handoff_steps("x/demo-abc-2", 2));
    steps.extend(manual_attention_steps());
    let world = RunWorld::builder("pilot", &codex)
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
            FakeIssue::new("ABC-3", "Todo"),
        ])
        .steps(steps)
        .build();
    world.open_pull(1, "x/demo-abc-1");
    world.open_pull(2, "x/demo-abc-2");
    let port = crate::support::ports::free_port();
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&world.config)
        .unwrap();
    writeln!(
        config,
        "\n[operator_http]\nlisten_address = \"127.0.0.1:{port}\""
    )
    .unwrap();

    // 1. Probe the agent boundary.
    let probe = bounded(world.command(&["protocol", "probe"]), STEP_DEADLINE);
    let probe_out = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(probe.status.code(), Some(0), "{probe_out}");
    assert!(probe_out.ends_with("PROBE_OK\n"), "{probe_out}");

    // 2. Local state: nothing yet.
    let status = bounded(world.command(&["status"]), STEP_DEADLINE);
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains("no lane is running"));

    // 3. Dry run: ABC-1 is selected, the others wait; nothing reaches Linear but reads.
    let dry = bounded(
        world.command(&["run", "--once", "--dry-run"]),
        STEP_DEADLINE,
    );
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(dry.status.code(), Some(0), "{dry_out}");
    assert!(dry_out.contains("selected: ABC-1"), "{dry_out}");
    assert!(
        dry_out.contains("dry run: nothing was changed"),
        "{dry_out}"
    );
    assert!(world.linear.mutations().is_empty());

    // 4. One live lane: ABC-1 reaches In Review with a completion comment and a PR check.
    let run = world.run_once();
    let line = summary_line(&run);
    assert_eq!(run.status.code(), Some(0), "{line}");
    assert!(
        line.contains("issue=ABC-1") && line.contains("outcome=handoff"),
        "{line}"
    );
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
    assert!(
        world
            .comments("ABC-1")
            .iter()
            .any(|c| c.starts_with("**Maestro: ready for review**")),
        "{:?}",
        world.comments("ABC-1")
    );
    assert!(
        world
            .github
            .requests()
            .iter()
            .any(|r| r.path() == "/repos/acme/widgets/pulls/1")
    );

    // 5. The daemon takes ABC-2 (handoff) and ABC-3 (needs attention), then stops on SIGTERM.
    let daemon = Background::start(world.command(&["daemon", "--poll-interval-s", "1"]));
    let converged = wait_until(STEP_DEADLINE, || {
        world.linear.issue("ABC-2").state == "In Review"
            && world
                .comments("ABC-3")
                .iter()
                .any(|c| c.starts_with("**Maestro: needs attention**"))
    });
    assert!(converged, "ABC-2 and ABC-3 did not converge");
    let abc3 = world.linear.issue("ABC-3");
    assert_eq!(abc3.state, "Todo");
    assert!(abc3.labels.iter().any(|l| l == "maestro:needs-attention"));

    // What the operator reads remotely: /state is the status document.
    let state: Value = wait_until_state(port, |state| {
        state["recent"]
            .as_array()
            .is_some_and(|recent| recent.len() == 3)
    });
    let outcomes: Vec<(&str, &str)> = state["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["issue_identifier"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("ABC-1", "handoff"),
        ("ABC-2", "handoff"),
        ("ABC-3", "human_required"),
    ] {
        assert!(outcomes.contains(&expected), "{outcomes:?}");
    }
    assert_eq!(get(port, "/healthz").0, 200);

    daemon.signal(libc::SIGTERM);
    let stopped = daemon.finish(Duration::from_secs(40));
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        log.contains("action=dispatch") && log.contains("issue=ABC-2"),
        "{log}"
    );

    // Linear received one outcome per issue, and never the success state from the agent.
    for identifier in ["ABC-1", "ABC-2", "ABC-3"] {
        let outcomes = world
            .comments(identifier)
            .iter()
            .filter(|c| {
                c.starts_with("**Maestro: ready for review**")
                    || c.starts_with("**Maestro: needs attention**")
            })
            .count();
        assert_eq!(outcomes, 1, "{identifier}");
    }
}

fn wait_until_state(port: u16, mut ready: impl FnMut(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = wait_until(STEP_DEADLINE, || {
        let (status, body) = get(port, "/state");
        if status != 200 {
            return false;
        }
        last = serde_json::from_str(&body).unwrap();
        ready(&last)
    });
    assert!(found, "/state never showed the expected runs: {last:#}");
    last
}
