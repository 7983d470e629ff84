//! `maestro run --once` beyond one clean attempt, end to end like `run_once`: a retry in the
//! same lane, a lane or a guard a later attempt finds, a second run while the first holds the
//! slot and the lease, secrets across every output, the daemon's target flags, recovery of a
//! dead attempt, continuation turns, and issues that change underneath an attempt.

use std::time::Duration;

use serde_json::{Value, json};

use maestro::mock_model::Step;
use maestro::workspace::record::RunStatus;

use crate::codex_or_skip;
use crate::run_once::{ATTENTION, BRANCH, assert_exit, assert_human_path, human_line, states_set};
use crate::support::fake_linear::{API_KEY, FakeIssue};
use crate::support::git::git;
use crate::support::run_world::{
    self, CANARY_VALUE, CANARY_VAR, GITHUB_TOKEN, GITHUB_VAR, LINEAR_VAR, RunWorld, handoff_steps,
    pr_url, read_json, wait_until,
};
use crate::support::{stderr, stdout};

#[test]
fn a_retryable_failure_is_picked_up_again_as_attempt_two_in_the_same_lane() {
    let codex = codex_or_skip!();
    let mut steps = vec![
        // Attempt 1: some work in the lane, then the model fails the turn.
        Step::exec_command("call_draft", "echo draft > work.txt"),
        Step::http_error(500, "the model is overloaded"),
        // Attempt 2: the earlier work is still there.
        Step::exec_command("call_look", "cat work.txt"),
    ];
    steps.extend(handoff_steps(BRANCH, 7));
    let world = RunWorld::builder("run-retry-reuse", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);

    let first = world.run_once();
    let line = assert_exit(&first, 4);
    assert!(
        line.contains("outcome=retry_scheduled error=codex_turn_failed next=\"retry attempt 2\""),
        "{line}"
    );
    assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
    let calls_in_first = world.model_calls().len();

    let second = world.run_once();
    let line = assert_exit(&second, 0);
    assert!(line.contains("outcome=handoff"), "{line}");
    let runs = world.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].attempt, runs[0].status),
        (1, RunStatus::RetryScheduled)
    );
    assert_eq!((runs[1].attempt, runs[1].status), (2, RunStatus::Handoff));
    assert_eq!(runs[0].error_class, Some("codex_turn_failed".into()));
    assert!(runs[1].run_id.contains("-a2-"), "{}", runs[1].run_id);

    // The second attempt's first prompt says so, and the lane still held the first's work.
    let prompt = &world.model_calls()[calls_in_first].body;
    assert!(prompt.contains("Attempt: 2 of 3"), "attempt in the prompt");
    assert!(
        prompt.contains("The previous attempt failed: codex_turn_failed"),
        "previous failure in the prompt"
    );
    assert!(world.tool_output("call_look").contains("draft"));
    let state = world.issue_state("ABC-1").unwrap();
    assert_eq!(state.attempts_used, 2);
    assert_eq!(state.last_status, Some(RunStatus::Handoff));
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
}

#[test]
fn a_lane_whose_git_metadata_is_a_symlink_outside_is_refused() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-symlinked-git", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .build();
    // Another checkout's .git, linked into the lane path before Maestro gets there.
    let elsewhere = world.dir.join("elsewhere");
    git(
        world.dir.path(),
        &[
            "clone",
            "--quiet",
            world.source.to_str().unwrap(),
            elsewhere.to_str().unwrap(),
        ],
    );
    let lane = world.lane("ABC-1");
    std::fs::create_dir_all(&lane).unwrap();
    std::os::unix::fs::symlink(elsewhere.join(".git"), lane.join(".git")).unwrap();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "policy_violation"));
    assert_human_path(&world, &record, "policy_violation", ".git is a symlink");
    assert!(world.model_calls().is_empty(), "codex never started");
    assert!(record.thread_id.is_none());
}

#[test]
fn a_missing_needs_attention_label_leaves_a_guard_instead() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-guard", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .linear(|linear| {
            linear
                .workspace_labels
                .retain(|(_, name)| name != ATTENTION)
        })
        // A finalize that matches nothing recorded: the human path, whose label is missing.
        .steps(vec![
            Step::tool_call(
                "call_finalize",
                "issue_terminal_finalize",
                serde_json::json!({"path": "review_handoff"}),
            ),
            Step::message("Finalized."),
        ])
        .build();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(line, human_line(&record, "invalid_disposition"));
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Progress", "stays in progress");
    assert!(issue.labels.is_empty());
    let comments = world.comments("ABC-1");
    let failure = comments.last().unwrap();
    assert!(
        failure.starts_with("**Maestro: needs attention**"),
        "{failure}"
    );
    assert!(
        failure.contains("- guard: the issue stays in In Progress and Maestro will not pick it up again automatically"),
        "{failure}"
    );
    assert!(failure.contains(&format!("label {ATTENTION} does not exist on team ABC")));
    world.assert_comments_clean();
    let guard = world
        .issue_state("ABC-1")
        .unwrap()
        .guard
        .expect("guard marker");
    assert_eq!(guard.run_id, record.run_id);

    // The guard stops the next run from taking the issue, and says so.
    let again = world.run_once();
    let line = assert_exit(&again, 3);
    assert!(
        line.contains("outcome=nothing_to_do reason=\"no eligible issue; held: ABC-1 guard marker: label maestro:needs-attention does not exist on team ABC"),
        "{line}"
    );
    assert_eq!(world.runs().len(), 1);
}

#[test]
fn a_second_run_skips_cleanly_while_the_first_holds_the_slot_and_the_lease() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-concurrent", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![Step::stall()])
        .build();
    let first = world.spawn_run_once();
    let first_pid = first.pid();

    // Another process sees the live run: status, the lease owner, the activity marker.
    let layout = world.layout();
    let mut status = Value::Null;
    let live = wait_until(Duration::from_secs(60), || {
        let output = run_world::bounded(
            world.command(&["status", "--json"]),
            Duration::from_secs(30),
        );
        status = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
        status["active"][0]["thread_id"].is_string() && !world.model_calls().is_empty()
    });
    assert!(live, "the first run never showed up live: {status:#}");
    let active = &status["active"][0];
    assert_eq!(active["issue_identifier"], "ABC-1");
    assert_eq!(active["phase"], "executing");
    assert_eq!(active["owner_alive"], true);
    assert_eq!(active["pid"], json!(first_pid));
    let run_id = active["run_id"].as_str().unwrap().to_string();
    let owner = read_json(&layout.lease_owner_file("id-ABC-1"));
    assert_eq!(owner["run_id"], json!(run_id));
    assert_eq!(owner["pid"], json!(first_pid));
    let record = read_json(&layout.run_record_file(&run_id));
    assert_eq!(record["status"], "running");
    assert_eq!(record["thread_id"], active["thread_id"]);
    let marker = read_json(&layout.activity_file("id-ABC-1"));
    assert_eq!(marker["thread_id"], active["thread_id"]);

    // One slot, held: a clean skip.
    let second = run_world::bounded(world.command(&["run", "--once"]), Duration::from_secs(30));
    let line = assert_exit(&second, 3);
    assert_eq!(
        line,
        "run --once: issue=- run_id=- outcome=nothing_to_do reason=\"all 1 dispatch slots are busy\" next=\"none\""
    );

    // Two slots: the second process gets one, and the lease keeps it off ABC-1.
    let workflow = world.source.join("WORKFLOW.md");
    let text = std::fs::read_to_string(&workflow).unwrap();
    std::fs::write(
        &workflow,
        text.replace("[execution]\n", "[execution]\nmax_concurrent_agents = 2\n"),
    )
    .unwrap();
    let third = run_world::bounded(world.command(&["run", "--once"]), Duration::from_secs(30));
    let line = assert_exit(&third, 3);
    assert_eq!(
        line,
        format!(
            "run --once: issue=- run_id=- outcome=nothing_to_do reason=\"no eligible issue; held: ABC-1 leased by run {run_id} (pid {first_pid})\" next=\"none\""
        )
    );
    // The daemon's way in (hidden flags) loses the same race just as cleanly.
    let targeted = run_world::bounded(
        world.command(&[
            "run",
            "--once",
            "--issue",
            "id-ABC-1",
            "--run-id",
            "daemon-run-1",
            "--attempt",
            "1",
        ]),
        Duration::from_secs(30),
    );
    let line = assert_exit(&targeted, 3);
    assert!(
        line.contains(&format!(
            "reason=\"ABC-1 is leased by run {run_id} (pid {first_pid})\""
        )),
        "{line}"
    );
    assert_eq!(world.runs().len(), 1, "the skips wrote no run record");

    // SIGTERM: the first run stops its turn, records the interruption and frees the lease.
    first.signal(libc::SIGTERM);
    let output = first.finish(Duration::from_secs(60));
    let line = assert_exit(&output, 1);
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={run_id} outcome=interrupted next=\"the daemon or the next run --once continues it\""
        )
    );
    let record = world.only_run();
    assert_eq!(record.status, RunStatus::Interrupted);
    assert_eq!(
        maestro::workspace::lock::lease_holder(&layout, "id-ABC-1").unwrap(),
        None
    );
}

#[test]
fn secrets_never_reach_the_agent_hooks_records_comments_or_logs() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-secrets", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n[hooks]\nbefore_run = \"env > ../hook-env.txt\"\n")
        .steps(vec![
            Step::exec_command("call_env", "env"),
            Step::message("Looked around."),
        ])
        .build();

    let output = world.run_once();
    assert_exit(&output, 4);
    let agent_env = world.tool_output("call_env");
    let hook_env = std::fs::read_to_string(world.workspace_root.join("hook-env.txt")).unwrap();
    for (what, env) in [("agent", &agent_env), ("hook", &hook_env)] {
        assert!(
            env.contains(&format!("{CANARY_VAR}={CANARY_VALUE}")),
            "{what} env lacks the canary:\n{env}"
        );
        for secret in [LINEAR_VAR, GITHUB_VAR, API_KEY, GITHUB_TOKEN] {
            assert!(!env.contains(secret), "{what} env holds {secret}");
        }
    }
    let written = world.everything_written();
    assert!(written.contains("\"run_id\""), "state was written");
    let log = stderr(&output);
    for secret in [API_KEY, GITHUB_TOKEN] {
        assert!(
            !written.contains(secret),
            "{secret} written to .maestro/ or Linear"
        );
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn the_daemons_target_flags_run_exactly_the_named_issue() {
    let codex = codex_or_skip!();
    let branch = "x/demo-abc-2";
    let world = RunWorld::builder("run-target", &codex)
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ])
        .steps(handoff_steps(branch, 8))
        .build();
    world.open_pull(8, branch);

    let output = run_world::bounded(
        world.command(&[
            "run",
            "--once",
            "--issue",
            "id-ABC-2",
            "--run-id",
            "daemon-run-7",
            "--attempt",
            "2",
        ]),
        run_world::RUN_DEADLINE,
    );
    let line = assert_exit(&output, 0);
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-2 run_id=daemon-run-7 outcome=handoff pr={} next=\"review the pull request\"",
            pr_url(8)
        )
    );
    let record = world.only_run();
    assert_eq!(
        (record.run_id.as_str(), record.attempt),
        ("daemon-run-7", 2)
    );
    assert_eq!(world.linear.issue("ABC-2").state, "In Review");
    assert_eq!(world.linear.issue("ABC-1").state, "Todo");
}

#[test]
fn a_run_that_died_mid_attempt_is_recovered_as_the_next_attempt() {
    let codex = codex_or_skip!();
    let mut steps = vec![Step::stall()];
    steps.extend(handoff_steps(BRANCH, 7));
    let world = RunWorld::builder("run-crash-recovery", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);

    // The first run is mid-turn when it is killed outright: no chance to record anything.
    let first = world.spawn_run_once();
    assert!(
        wait_until(Duration::from_secs(60), || !world.model_calls().is_empty()),
        "the first run never reached the model"
    );
    first.signal(libc::SIGKILL);
    let killed = first.finish(Duration::from_secs(30));
    assert_eq!(killed.status.code(), None, "killed by the signal");
    assert!(
        stdout(&killed).is_empty(),
        "no summary line from a killed run"
    );
    let orphan = world.only_run();
    assert_eq!(orphan.status, RunStatus::Running, "what the dead run left");
    // Codex notices its parent is gone (stdin closes) and exits on its own.
    assert!(
        wait_until(Duration::from_secs(30), || world
            .codex_processes()
            .is_empty()),
        "codex outlived maestro: {:?}",
        world.codex_processes()
    );
    // Had the agent claimed it, the issue would be In Progress, which only the recovery path
    // (bookkeeping still `running`, lease free) picks up again.
    world
        .linear
        .edit(|linear| linear.issues[0].state = "In Progress".to_string());

    let second = world.run_once();
    let line = assert_exit(&second, 0);
    assert!(line.contains("outcome=handoff"), "{line}");
    let runs = world.runs();
    assert_eq!(runs.len(), 2);
    let dead = runs.iter().find(|run| run.run_id == orphan.run_id).unwrap();
    assert_eq!(dead.status, RunStatus::Failed);
    assert_eq!(dead.error_class, Some("process_died".into()));
    let next = runs.iter().find(|run| run.run_id != orphan.run_id).unwrap();
    assert_eq!((next.attempt, next.status), (2, RunStatus::Handoff));
    let prompt = &world.model_calls()[1].body;
    assert!(
        prompt.contains("The previous attempt failed: process_died: the process running this attempt ended without recording an outcome"),
        "previous failure in the prompt"
    );
    assert_eq!(world.issue_state("ABC-1").unwrap().attempts_used, 2);
}

#[test]
fn the_daemons_target_flags_adopt_an_inherited_slot() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-target-slot", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);
    // The only slot is held here, as the daemon holds it, and handed to the child.
    let layout = world.layout();
    let slot = maestro::workspace::lock::acquire_slot(&layout, 1)
        .unwrap()
        .expect("slot 0 free");
    let mut command = world.command(&[
        "run",
        "--once",
        "--issue",
        "id-ABC-1",
        "--run-id",
        "daemon-run-3",
        "--attempt",
        "1",
        "--slot-index",
        "0",
    ]);
    let fd = slot.pass_to(&mut command);
    command.arg("--slot-fd").arg(fd.to_string());
    let output = run_world::bounded(command, run_world::RUN_DEADLINE);
    let line = assert_exit(&output, 0);
    assert!(
        line.contains("run_id=daemon-run-3 outcome=handoff"),
        "{line}"
    );

    // Without the descriptor the same command finds the slot busy.
    let again = world.command(&[
        "run",
        "--once",
        "--issue",
        "id-ABC-1",
        "--run-id",
        "daemon-run-4",
        "--attempt",
        "2",
    ]);
    let output = run_world::bounded(again, Duration::from_secs(30));
    let line = assert_exit(&output, 3);
    assert!(line.contains("all 1 dispatch slots are busy"), "{line}");
    drop(slot);
}

#[test]
fn a_turn_without_a_finalize_continues_with_continuation_guidance() {
    let codex = codex_or_skip!();
    let mut steps = vec![Step::message("Still reading the code.")];
    steps.extend(handoff_steps(BRANCH, 7));
    let world = RunWorld::builder("run-continuation", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n[execution]\nmax_turns = 2\n")
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);

    let output = world.run_once();
    assert_exit(&output, 0);
    let record = world.only_run();
    assert_eq!(record.turn_count, 2);
    let calls = world.model_calls();
    assert!(
        calls[1]
            .body
            .contains("Continue working on the issue (turn 2 of 2)"),
        "the second turn's input"
    );
    assert!(!calls[0].body.contains("Continue working"));
    // After turn one: the fallback claim (the agent had not claimed), then the agent's own
    // claim, then Maestro's success state.
    assert_eq!(
        states_set(&world),
        ["state-in-progress", "state-in-progress", "state-in-review"]
    );
    let comments = world.comments("ABC-1");
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert!(comments[0].starts_with("**Maestro: working on this issue**"));
    assert!(comments[1].starts_with("**Maestro: ready for review**"));
}

#[test]
fn a_completion_comment_that_fails_after_the_state_change_goes_to_a_human_without_retry() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("run-comment-fails", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);
    world.linear.inject(
        "CommentCreate",
        crate::support::fake_linear::Fault::GraphQlError("comment rejected".into()),
    );

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=human_required error=completion_comment_failed next=\"human: post the completion comment; no automatic retry\"",
            record.run_id
        )
    );
    let issue = world.linear.issue("ABC-1");
    assert_eq!(issue.state, "In Review", "the state was written");
    assert!(issue.labels.is_empty());
    assert!(world.comments("ABC-1").is_empty());
    assert_eq!(record.status, RunStatus::HumanRequired);
    assert!(
        record
            .error_message
            .as_deref()
            .unwrap()
            .contains("the issue moved to In Review but the completion comment failed"),
        "{record:?}"
    );
    // Not retried: the issue is out of the startable states and the bookkeeping says human.
    assert_eq!(
        world.issue_state("ABC-1").unwrap().last_status,
        Some(RunStatus::HumanRequired)
    );
    let again = world.run_once();
    assert_exit(&again, 3);
    assert_eq!(world.runs().len(), 1);
}

#[test]
fn an_issue_moved_to_done_during_the_attempt_is_left_alone() {
    let codex = codex_or_skip!();
    // The agent's first command waits (bounded) until the test has moved the issue.
    let world = RunWorld::builder("run-moved-on", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter("version = 1\n[execution]\nmax_turns = 2\n")
        .steps(vec![
            Step::exec_command(
                "call_wait",
                "i=0; while [ ! -f ../go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo released",
            ),
            Step::message("Not done yet."),
            Step::message("Never reached."),
        ])
        .build();
    let run = world.spawn_run_once();
    assert!(
        wait_until(Duration::from_secs(60), || !world.model_calls().is_empty()),
        "the run never reached the model"
    );
    world
        .linear
        .edit(|linear| linear.issues[0].state = "Done".to_string());
    std::fs::write(world.workspace_root.join("go"), "").unwrap();

    let output = run.finish(run_world::RUN_DEADLINE);
    let line = assert_exit(&output, 3);
    let record = world.only_run();
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=skipped reason=\"ABC-1 moved to Done during the attempt\" next=\"none: ABC-1 moved to Done during the attempt\"",
            record.run_id
        )
    );
    assert!(world.tool_output("call_wait").contains("released"));
    assert_eq!(record.status, RunStatus::Terminated);
    assert_eq!(record.error_class, Some("issue_terminal".into()));
    assert_eq!(world.model_calls().len(), 2, "no continuation turn");
    // Nothing written to an issue someone else finished, and the attempt is not counted.
    assert_eq!(world.linear.issue("ABC-1").state, "Done");
    assert!(
        world.linear.mutations().is_empty(),
        "{:?}",
        world.linear.operations()
    );
    assert_eq!(world.issue_state("ABC-1").unwrap().attempts_used, 0);
    // Its lane goes with it: the run sweeps the lanes of terminal issues it keeps (#13 item 1).
    assert!(!world.lane("ABC-1").exists(), "{}", stderr(&output));
    assert!(stderr(&output).contains(
        "lane removed issue=ABC-1 lane=ABC-1 action=terminated reason=\"issue is Done\""
    ));
}
