//! Terminal lanes are cleaned as they go (#13 item 1): a handed-off issue that later moves to
//! Done or Canceled loses its lane at the daemon's next tick (not at its next restart), and at
//! the next `run --once` from a shell; a lane something still works in is kept, shown in
//! `status` as pending removal with the reason, and removed once it is free. One log line per
//! removal.
//!
//! Real `maestro`, the real codex with the scripted mock model, the fake Linear and GitHub.

use maestro::mock_model::Step;
use maestro::workspace::lock::{self, LaneClaim};
use serde_json::Value;

use crate::codex_or_skip;
use crate::support::fake_linear::FakeIssue;
use crate::support::landing::{Daemon, LIFECYCLE};
use crate::support::run_world::{self, RunWorld, handoff_steps, summary_line};
use crate::support::stderr;

/// Issues `identifiers` handed off one `run --once --issue` each (PRs 7, 8, …): their lanes
/// are kept, their issues In Review.
fn handed_off(name: &str, identifiers: &[&str]) -> RunWorld {
    let codex = crate::support::codex::require_codex().expect("the caller checked for codex");
    let steps: Vec<Step> = identifiers
        .iter()
        .zip(7u64..)
        .flat_map(|(identifier, pr)| handoff_steps(&branch(identifier), pr))
        .collect();
    let world = RunWorld::builder(name, &codex)
        .issues(
            identifiers
                .iter()
                .map(|identifier| FakeIssue::new(identifier, "Todo"))
                .collect(),
        )
        .steps(steps)
        .build();
    for (identifier, pr) in identifiers.iter().zip(7u64..) {
        world.open_pull(pr, &branch(identifier));
        let command = world.command(&["run", "--once", "--issue", identifier]);
        let output = run_world::bounded(command, run_world::RUN_DEADLINE);
        let line = summary_line(&output);
        assert!(
            line.contains("outcome=handoff"),
            "{line}\n{}",
            stderr(&output)
        );
        assert!(world.lane(identifier).join(".git").is_dir());
        assert_eq!(world.linear.issue(identifier).state, "In Review");
    }
    world
}

fn branch(identifier: &str) -> String {
    format!("x/demo-{}", identifier.to_lowercase())
}

fn move_issue(world: &RunWorld, identifier: &str, state: &str) {
    world.linear.edit(|linear| {
        for issue in &mut linear.issues {
            if issue.identifier == identifier {
                issue.state = state.to_string();
            }
        }
    });
}

fn status_json(world: &RunWorld) -> Value {
    let output = world.command(&["status", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_daemon_removes_lanes_of_issues_that_become_terminal_at_its_next_tick() {
    let _codex = codex_or_skip!();
    let world = handed_off("terminal-daemon", &["ABC-1", "ABC-2"]);
    let mut daemon = Daemon::start(&world);
    daemon.wait_ticked(1);
    // A person finishes ABC-1 and cancels ABC-2 while the daemon runs; something still holds
    // ABC-2's lane (here the test itself, with the lane's lock).
    let held = match lock::lock_lane(&world.layout(), "ABC-2").unwrap() {
        LaneClaim::Locked(lock) => lock,
        other => panic!("ABC-2's lane is free: {other:?}"),
    };
    move_issue(&world, "ABC-1", "Done");
    move_issue(&world, "ABC-2", "Canceled");

    daemon.wait_for("ABC-1's lane removed", LIFECYCLE, || {
        (!world.lane("ABC-1").exists()).then_some(())
    });
    let pending = daemon.wait_for("ABC-2 shown pending removal", LIFECYCLE, || {
        let json = status_json(&world);
        json["lanes"]
            .as_array()?
            .iter()
            .find(|lane| lane["key"] == "ABC-2" && !lane["pending_removal"].is_null())
            .cloned()
    });
    assert_eq!(pending["pending_removal"]["state"], "Canceled");
    assert_eq!(
        pending["pending_removal"]["kept"],
        "a process holds the lane's lock"
    );
    let text = world.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("pending removal: issue Canceled; a process holds the lane's lock"),
        "{text}"
    );
    assert!(world.lane("ABC-2").join(".git").is_dir(), "kept while held");

    drop(held);
    daemon.wait_for("ABC-2's lane removed", LIFECYCLE, || {
        (!world.lane("ABC-2").exists()).then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let log = daemon.log();
    for (identifier, state) in [("ABC-1", "Done"), ("ABC-2", "Canceled")] {
        let line = format!(
            "lane removed issue={identifier} lane={identifier} action=terminated reason=\"issue is {state}\""
        );
        assert_eq!(log.matches(&line).count(), 1, "{line}\n{log}");
    }
    let json = status_json(&world);
    let lanes = json["lanes"].as_array().unwrap();
    assert!(lanes.is_empty(), "{lanes:#?}");
    // The bookkeeping remembers why, and the records stay.
    let books = world.issue_state("ABC-2").unwrap();
    let mark = books.terminal.expect("seen terminal");
    assert_eq!(mark.state, "Canceled");
    assert_eq!(mark.kept, None);
    assert_eq!(world.runs().len(), 2);
}

#[test]
fn run_once_from_a_shell_removes_the_lanes_of_issues_now_terminal() {
    let _codex = codex_or_skip!();
    let world = handed_off("terminal-run-once", &["ABC-1"]);
    move_issue(&world, "ABC-1", "Done");
    // Nothing is left to work on; the run still looks at the lanes it keeps.
    let output = world.run_once();
    let line = summary_line(&output);
    assert!(line.contains("outcome=nothing_to_do"), "{line}");
    assert!(!world.lane("ABC-1").exists(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output)
            .matches(
                "lane removed issue=ABC-1 lane=ABC-1 action=terminated reason=\"issue is Done\""
            )
            .count(),
        1,
        "{}",
        stderr(&output)
    );
    // An issue in review keeps its lane: only terminal ones go.
    let world = handed_off("terminal-run-once-review", &["ABC-1"]);
    let output = world.run_once();
    assert!(summary_line(&output).contains("outcome=nothing_to_do"));
    assert!(world.lane("ABC-1").join(".git").is_dir());
    assert!(world.issue_state("ABC-1").unwrap().terminal.is_none());
}
