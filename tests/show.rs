//! `maestro show ISSUE|RUN_ID` (#18): one run's record, timeline, agent actions from the
//! journal, tool calls, validation output, writeback and files — after a real run, while a run
//! is live in another process, with hostile text escaped, and for what is not there.

use std::time::Duration;

use serde_json::{Value, json};

use maestro::mock_model::Step;
use maestro::workspace::Layout;
use maestro::workspace::record::{self, Phase, RunRecord, RunStatus, TimelineEntry};

use crate::codex_or_skip;
use crate::support::dir::TestDir;
use crate::support::fake_linear::FakeIssue;
use crate::support::run_world::{self, RunWorld, handoff_steps, wait_until};
use crate::support::state::config_for;
use crate::support::{maestro, stderr, stdout};

const BRANCH: &str = "x/demo-abc-1";

fn show(world: &RunWorld, args: &[&str]) -> std::process::Output {
    let mut all = vec!["show"];
    all.extend_from_slice(args);
    run_world::bounded(world.command(&all), Duration::from_secs(30))
}

#[test]
fn show_prints_the_record_timeline_agent_validation_writeback_and_files() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("show-finished", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(
            "version = 1\n[execution]\nvalidation_commands = [\"test -f feature.txt\", \"echo 'tests failed: 2'; exit 3\"]\n",
        )
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);
    let output = world.run_once();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let record = world.only_run();

    let text = show(&world, &["abc-1"]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = stdout(&text);
    let layout = world.layout();
    for expected in [
        format!("maestro show: ABC-1 attempt 1, run {}\n", record.run_id),
        "  status       retry_scheduled (finished ".to_string(),
        "  error        validation_failed: validation failed: ".to_string(),
        "  next         retry attempt 2\n".to_string(),
        "\nTIMELINE\n".to_string(),
        "preparing             lane\n".to_string(),
        "executing             turn 1/".to_string(),
        "validating            validation 1/2: test -f feature.txt\n".to_string(),
        "validating            validation 2/2: echo 'tests failed: 2'; exit 3\n".to_string(),
        "writing_back          writeback\n".to_string(),
        "finished              retry_scheduled\n".to_string(),
        "\nAGENT (".to_string(),
        "tool        issue_transition  (ok, ".to_string(),
        "command     echo change > feature.txt && git add feature.txt".to_string(),
        "(exit 0, ".to_string(),
        "message     Handed off for review.".to_string(),
        "\nTOOL CALLS".to_string(),
        "issue_review_handoff     ok".to_string(),
        "\nVALIDATION\n  test -f feature.txt  exit 0, ".to_string(),
        "  echo 'tests failed: 2'; exit 3  exit 3, ".to_string(),
        "    | tests failed: 2\n".to_string(),
        "\nWRITEBACK\n  retry_scheduled at ".to_string(),
        "; the issue was left in In Progress\n".to_string(),
        "  next: retry attempt 2 (a retry is scheduled)\n".to_string(),
        format!(
            "  record   {}\n",
            layout.run_record_file(&record.run_id).display()
        ),
        format!(
            "  journal  {} (",
            layout.journal_file(&record.run_id).display()
        ),
        format!("  lane     {}\n", world.lane("ABC-1").display()),
    ] {
        assert!(
            text.contains(&expected),
            "{expected:?} missing from:\n{text}"
        );
    }

    // The run id names the same run; the JSON is the record plus what was read around it.
    let json = show(&world, &[&record.run_id, "--json"]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let shown: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(shown["schema_version"], 1);
    assert_eq!(shown["run"], serde_json::to_value(&record).unwrap());
    assert_eq!(shown["live"], Value::Null);
    let actions = shown["agent"]["actions"].as_array().unwrap();
    let command = actions
        .iter()
        .find(|action| action["kind"] == "command")
        .expect("the agent's command");
    assert_eq!(command["exit_code"], 0);
    assert!(
        command["text"]
            .as_str()
            .unwrap()
            .starts_with("echo change > feature.txt"),
        "{command}"
    );
    let tools: Vec<&str> = actions
        .iter()
        .filter(|action| action["kind"] == "tool")
        .map(|action| action["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        [
            "issue_transition",
            "issue_review_handoff",
            "issue_terminal_finalize"
        ]
    );
    assert_eq!(shown["writeback"]["outcome_state"], "In Progress");
    assert_eq!(shown["writeback"]["retry"], true);
}

#[test]
fn show_works_from_another_process_while_the_run_is_live() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("show-live", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            Step::exec_command("call_look", "git status --short"),
            Step::stall(),
        ])
        .turn_idle_timeout_ms(600_000)
        .build();
    let run = world.spawn_run_once();
    // The agent ran its command and the model went quiet: the turn is live.
    assert!(
        wait_until(Duration::from_secs(60), || world.model_calls().len() >= 2),
        "the agent never got to its second step"
    );
    let mut shown = Value::Null;
    let seen = wait_until(Duration::from_secs(30), || {
        let output = show(&world, &["ABC-1", "--json"]);
        if output.status.code() != Some(0) {
            return false;
        }
        shown = serde_json::from_slice(&output.stdout).unwrap();
        shown["agent"]["actions"].as_array().is_some_and(|actions| {
            actions
                .iter()
                .any(|a| a["kind"] == "command" && a["exit_code"] == 0)
        })
    });
    assert!(seen, "show never saw the command: {shown:#}");
    assert_eq!(shown["run"]["status"], "running");
    assert_eq!(shown["live"]["phase"], "executing");
    assert_eq!(shown["live"]["owner_alive"], true);
    assert!(shown["run"]["thread_id"].is_string(), "{shown:#}");
    let steps: Vec<&str> = shown["run"]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["step"].as_str().unwrap())
        .collect();
    assert!(steps.contains(&"lane"), "{steps:?}");
    assert!(
        steps.iter().any(|step| step.starts_with("turn 1/")),
        "{steps:?}"
    );
    let text = stdout(&show(&world, &["ABC-1"]));
    assert!(
        text.contains("  status       running: executing ("),
        "{text}"
    );
    assert!(
        !text.contains("\nWRITEBACK\n"),
        "nothing written back yet:\n{text}"
    );

    run.signal(libc::SIGTERM);
    let output = run.finish(Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&show(&world, &["ABC-1"]));
    assert!(
        text.contains("  status       interrupted (finished "),
        "{text}"
    );
}

/// A finished record whose texts carry control characters, as a hostile agent or tracker
/// could leave them.
fn evil_record(dir: &TestDir) -> maestro::config::ServiceConfig {
    let config = config_for(dir);
    let layout = Layout::new(&config.workspace_root);
    let record = RunRecord {
        run_id: "run-evil".into(),
        project_id: "demo".into(),
        issue_id: "id-EVIL-1".into(),
        issue_identifier: "EVIL-1".into(),
        branch: "x/demo-evil-1\u{1b}[2J".into(),
        workspace_path: ".workspaces/EVIL-1".into(),
        started_at: "2026-11-26T05:00:00.000Z".into(),
        finished_at: Some("2026-11-26T05:01:00.000Z".into()),
        phase: Phase::Finished,
        status: RunStatus::HumanRequired,
        error_class: Some("manual_attention".into()),
        error_message: Some("the agent said \u{1b}]0;pwned\u{7}\rmaestro: forged".into()),
        timeline: vec![TimelineEntry {
            at: "2026-11-26T05:00:01.000Z".into(),
            phase: Phase::Validating,
            step: "validation 1/1: echo \u{1b}[31m".into(),
        }],
        validation: vec![record::ValidationRecord {
            command: "make \u{9b}31m".into(),
            exit_code: Some(2),
            timed_out: false,
            duration_ms: 10,
            output_tail: "line one\n\u{1b}[2Jline two\r\nline three".into(),
            escaped: false,
        }],
        ..RunRecord::default()
    };
    record::save_run(&layout, &record).unwrap();
    std::fs::create_dir_all(layout.runs_dir()).unwrap();
    std::fs::write(
        layout.journal_file("run-evil"),
        format!(
            "{}\n{}\n",
            json!({"at_ms": 1_795_651_800_000u64, "dir": "in", "msg": {"method": "item/completed",
                "params": {"item": {"type": "commandExecution", "id": "c", "command": "cat \u{1b}[2J secret", "exitCode": 1}}}}),
            json!({"at_ms": 1_795_651_800_001u64, "dir": "in", "msg": {"method": "item/completed",
                "params": {"item": {"type": "agentMessage", "id": "m", "text": "done\n\u{1b}[1mbold"}}}})
        ),
    )
    .unwrap();
    config
}

#[test]
fn show_escapes_control_characters_and_keeps_json_exact() {
    let dir = TestDir::new("show-escapes");
    let config = evil_record(&dir);
    let output = maestro(dir.path(), &["show", "EVIL-1"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    for expected in [
        "  branch       x/demo-evil-1\\u{1b}[2J\n",
        "the agent said \\u{1b}]0;pwned\\u{7}\\rmaestro: forged",
        "validation 1/1: echo \\u{1b}[31m",
        "  make \\u{9b}31m  exit 2, ",
        "    | \\u{1b}[2Jline two\n",
        "command     cat \\u{1b}[2J secret  (exit 1)",
        "message     done \\u{1b}[1mbold",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // No line of the view starts with a forged `maestro:`.
    assert!(!text.lines().any(|line| line.starts_with("maestro: ")));

    let json = maestro(dir.path(), &["show", "run-evil", "--json"]);
    let shown: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(shown["run"]["branch"], "x/demo-evil-1\u{1b}[2J");
    assert_eq!(
        shown["agent"]["actions"][0]["text"], "cat \u{1b}[2J secret",
        "JSON is exact"
    );
    drop(config);
}

#[test]
fn show_of_nothing_on_record_says_where_it_looked() {
    let dir = TestDir::new("show-missing");
    let config = config_for(&dir);
    let output = maestro(dir.path(), &["show", "ABC-404"]);
    assert_eq!(output.status.code(), Some(1));
    let runs = Layout::new(&config.workspace_root).runs_dir();
    assert_eq!(
        stderr(&output),
        format!(
            "maestro: no run of ABC-404 on record in {}; give an issue identifier (ABC-12) or a run id, as 'maestro status' lists them\n",
            runs.display()
        )
    );
    assert_eq!(stdout(&output), "");
    let output = maestro(dir.path(), &["show", "ABC-404", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(error["error"]["kind"], "not_found");
    // A path is never taken for a run id.
    let output = maestro(dir.path(), &["show", "../../etc/passwd"]);
    assert_eq!(output.status.code(), Some(1));
}
