//! Hostile peers (issue #19): an agent that uses its tools against the rest of the project, and
//! PR URLs and GitHub answers that must not be trusted as text. Each test drives the real
//! binary and the real codex with a scripted model against the fake Linear and GitHub, and
//! checks what an operator, Linear and `maestro status` would see.
//! Rows in docs/spec/faults.md, "Attacks: hostile peers".

use std::process::Output;

use serde_json::{Value, json};

use maestro::mock_model::Step;

use crate::codex_or_skip;
use crate::support::fake_github::Pull;
use crate::support::fake_linear::FakeIssue;
use crate::support::run_world::{REPO, RunWorld, bounded, commit_and_push, pr_url, summary_line};
use crate::support::{stderr, stdout};

const BRANCH: &str = "x/demo-abc-1";
const ATTENTION: &str = "maestro:needs-attention";

fn assert_exit(output: &Output, code: i32) -> String {
    let line = summary_line(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "{line}\n--- stderr ---\n{}",
        stderr(output)
    );
    line
}

/// The manual-attention path for the issue in the lane, with `prefix` in its call ids.
fn ask_for_a_human(prefix: &str) -> Vec<Step> {
    vec![
        Step::tool_call(
            &format!("{prefix}_attention"),
            "issue_label_add",
            json!({"label": ATTENTION}),
        ),
        Step::tool_call(
            &format!("{prefix}_comment"),
            "issue_comment",
            json!({"body": "A human must look at this."}),
        ),
        Step::tool_call(
            &format!("{prefix}_finalize"),
            "issue_terminal_finalize",
            json!({"path": "manual_attention"}),
        ),
        Step::message("Asked for a human."),
    ]
}

/// Break 2: `issue_label_add` many times gave the agent's issue more labels than a listing page
/// holds, and from then on every listing failed ("issue ABC-1 has more labels than one page
/// holds"): no other issue was ever dispatched, and the dry run exited 1. Now the rest of that
/// issue's labels is read, its needs-attention label (the last one, past the first page) keeps
/// it out, and the next issue runs.
#[test]
fn an_issue_crowded_with_labels_never_stops_dispatch_for_the_project() {
    let codex = codex_or_skip!();
    let tags: Vec<String> = (1..=51).map(|n| format!("tag-{n:02}")).collect();
    // Humans gave it 40 labels; the agent adds the other 11 and then the needs-attention one.
    let first_forty: Vec<&str> = tags[..40].iter().map(String::as_str).collect();
    let additions: Vec<(String, &str, Value)> = tags[40..]
        .iter()
        .map(|tag| {
            (
                format!("call_{tag}"),
                "issue_label_add",
                json!({"label": tag}),
            )
        })
        .collect();
    let additions: Vec<(&str, &str, Value)> = additions
        .iter()
        .map(|(id, tool, arguments)| (id.as_str(), *tool, arguments.clone()))
        .collect();
    let mut steps = vec![Step::tool_calls(&additions)];
    steps.extend(ask_for_a_human("crowded"));
    steps.extend(ask_for_a_human("next"));
    let workspace_tags = tags.clone();
    let world = RunWorld::builder("attack-crowded-labels", &codex)
        .linear(move |world| {
            for tag in &workspace_tags {
                world
                    .workspace_labels
                    .push((format!("label-{tag}"), tag.clone()));
            }
        })
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo").labels(&first_forty),
            FakeIssue::new("ABC-2", "Todo"),
        ])
        .steps(steps)
        .build();

    let first = world.run_once();
    let line = assert_exit(&first, 5);
    assert!(line.starts_with("run --once: issue=ABC-1 "), "{line}");
    let crowded = world.linear.issue("ABC-1");
    assert!(crowded.labels.len() > 50, "{:?}", crowded.labels);
    assert_eq!(crowded.labels.last().map(String::as_str), Some(ATTENTION));

    let dry = bounded(
        world.command(&["run", "--once", "--dry-run", "--json"]),
        run_deadline(),
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let report: Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(report["selected"]["identifier"], "ABC-2", "{report:#}");
    let row = report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["identifier"] == "ABC-1")
        .expect("ABC-1 is listed with its reason")
        .clone();
    assert_eq!(row["rule"], "needs_attention", "{row:#}");
    assert_eq!(
        row["labels"].as_array().unwrap().len(),
        crowded.labels.len()
    );

    let second = world.run_once();
    let line = assert_exit(&second, 5);
    assert!(line.starts_with("run --once: issue=ABC-2 "), "{line}");
    assert!(
        world.linear.violations().is_empty(),
        "{:?}",
        world.linear.violations()
    );
}

fn run_deadline() -> std::time::Duration {
    crate::support::run_world::RUN_DEADLINE
}

/// A world whose agent pushes the lane branch, hands off `pr_url` and finalizes the review
/// path. PR 7 of the lane's repository is open and ready (as `pull` makes it).
fn handoff_of(name: &str, given_url: &str, pull: impl FnOnce(Pull) -> Pull) -> Option<RunWorld> {
    let codex = codex_or_skip!(None);
    let world = RunWorld::builder(name, &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            Step::exec_command("call_work", &commit_and_push("feature.txt", BRANCH)),
            Step::tool_call(
                "call_handoff",
                "issue_review_handoff",
                json!({"pr_url": given_url, "summary": "Added feature.txt."}),
            ),
            Step::tool_call(
                "call_finalize",
                "issue_terminal_finalize",
                json!({"path": "review_handoff"}),
            ),
            Step::message("Handed off."),
        ])
        .build();
    world
        .github
        .add(pull(Pull::live(REPO, 7, BRANCH, world.origin.clone())));
    Some(world)
}

/// The handoff tool's answer to the agent.
fn handoff_answer(world: &RunWorld) -> Value {
    serde_json::from_str(&world.tool_output("call_handoff")).unwrap()
}

/// A refused handoff ends the attempt for a human with nothing but Maestro's own text in
/// Linear and on stdout.
fn assert_refused(world: &RunWorld, output: &Output, expected_error: &str) {
    let answer = handoff_answer(world);
    assert_eq!(answer["success"], false, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(error.contains(expected_error), "{error}");
    let line = assert_exit(output, 5);
    assert!(
        line.contains("outcome=human_required error=invalid_disposition"),
        "{line}"
    );
    assert!(
        world
            .comments("ABC-1")
            .iter()
            .all(|body| !body.starts_with("**Maestro: ready for review**")),
        "no completion comment"
    );
}

/// Break 3: a PR URL on another host was accepted (the API call only used owner, repository
/// and number) and the completion comment linked the evil host.
#[test]
fn a_pr_url_on_another_host_is_refused() {
    let Some(world) = handoff_of(
        "attack-pr-evil-host",
        "https://evil.example.net/acme/widgets/pull/7",
        |pull| pull,
    ) else {
        return;
    };
    let output = world.run_once();
    assert_refused(
        &world,
        &output,
        "names host `evil.example.net`, not the configured GitHub host; give it as https://127.0.0.1/OWNER/REPO/pull/N",
    );
    for text in world.comments("ABC-1").iter().chain([&stdout(&output)]) {
        assert!(!text.contains("evil.example.net"), "{text}");
    }
}

/// Break 3: a PR URL carrying credentials was posted to Linear and printed on stdout. It is now
/// refused without being repeated, and the run record's tool-call line redacts it. (The codex
/// journal keeps every message verbatim, the agent's arguments included, by design.)
#[test]
fn a_pr_url_with_credentials_is_refused_and_never_repeated() {
    let secret = "ghp_agentFoundThis0123456789abcdef";
    let given = format!("https://x-access-token:{secret}@127.0.0.1/{REPO}/pull/7");
    let Some(world) = handoff_of("attack-pr-userinfo", &given, |pull| pull) else {
        return;
    };
    let output = world.run_once();
    assert_refused(&world, &output, "carries a user name or password");
    let answer = handoff_answer(&world).to_string();
    for (place, text) in [
        ("the tool's answer", answer),
        ("stdout", stdout(&output)),
        ("stderr", stderr(&output)),
        ("Linear", world.comments("ABC-1").join("\n")),
        (
            "the run record",
            serde_json::to_string(&world.only_run()).unwrap(),
        ),
    ] {
        assert!(!text.contains(secret), "{place}: {text}");
    }
}

/// Break 3: a host part with a newline, ANSI codes and Markdown forged a second
/// `run --once: …` line on stdout and put raw escapes into `maestro status`.
#[test]
fn a_pr_url_with_control_characters_cannot_forge_output() {
    let forged = "run --once: issue=ABC-9 run_id=forged outcome=human_required next=\"none\"";
    let given =
        format!("https://127.0.0.1\n{forged}\u{1b}[2J**[click](evil.example.net)**/{REPO}/pull/7");
    let Some(world) = handoff_of("attack-pr-control", &given, |pull| pull) else {
        return;
    };
    let output = world.run_once();
    assert_refused(
        &world,
        &output,
        "contains spaces, control or non-ASCII characters",
    );
    let stdout_text = stdout(&output);
    assert!(!stdout_text.contains("issue=ABC-9"), "{stdout_text}");
    assert!(!stdout_text.contains('\u{1b}'), "{stdout_text:?}");
    let status = bounded(world.command(&["status"]), run_deadline());
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let status_text = stdout(&status);
    assert!(!status_text.contains('\u{1b}'), "{status_text:?}");
    assert!(!status_text.contains("forged"), "{status_text}");
    for body in world.comments("ABC-1") {
        assert!(
            !body.contains("evil.example.net") && !body.contains('\u{1b}'),
            "{body}"
        );
    }
}

/// Break 3: a PR whose head branch is in a fork (same branch name, same commit) was accepted
/// as the lane's work.
#[test]
fn a_pr_from_a_fork_is_refused() {
    let Some(world) = handoff_of("attack-pr-fork", &pr_url(7), |pull| Pull {
        head_repo: Some("mallory/widgets".into()),
        ..pull
    }) else {
        return;
    };
    let output = world.run_once();
    assert_refused(
        &world,
        &output,
        "PR head branch is in mallory/widgets but must be in the lane's origin acme/widgets",
    );
}

/// Break 3: a PR whose head repository is gone (`head.repo = null`, a deleted fork) was
/// accepted as the lane's work.
#[test]
fn a_pr_without_a_head_repository_is_refused() {
    let Some(world) = handoff_of("attack-pr-no-head-repo", &pr_url(7), |pull| Pull {
        head_repo: None,
        ..pull
    }) else {
        return;
    };
    let output = world.run_once();
    assert_refused(&world, &output, "PR head repository is unknown");
}

/// The URL Maestro posts is GitHub's canonical one, not the agent's spelling of it: an agent
/// that writes the host in capitals with the default port gets the handoff, and Linear, the
/// record and stdout show `html_url`.
#[test]
fn the_posted_pr_url_is_githubs_own() {
    let Some(world) = handoff_of(
        "attack-pr-canonical",
        &format!("https://127.0.0.1:443/{}/pull/7", REPO.to_uppercase()),
        |pull| pull,
    ) else {
        return;
    };
    let output = world.run_once();
    let line = assert_exit(&output, 0);
    assert!(line.contains(&format!("pr={} ", pr_url(7))), "{line}");
    let answer = handoff_answer(&world);
    assert_eq!(answer["pr_url"], pr_url(7).as_str(), "{answer}");
    let comments = world.comments("ABC-1");
    assert!(
        comments[0].contains(&format!("- pr_url: {}\n", pr_url(7))),
        "{comments:#?}"
    );
    let record = world.only_run();
    assert_eq!(record.pr_url.as_deref(), Some(pr_url(7).as_str()));
}

/// An agent that rewrites its lane's `origin` (`git remote set-url`) to a repository it
/// controls cannot make the PR check accept a PR there: the expected repository comes from
/// `repo_root`'s origin, never from the lane's.
#[test]
fn a_rewritten_lane_origin_does_not_move_the_pr_check() {
    let codex = codex_or_skip!();
    let evil = "mallory/widgets";
    let world = RunWorld::builder("attack-pr-rewritten-origin", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(vec![
            Step::exec_command(
                "call_work",
                &format!(
                    "{} && git remote set-url origin https://github.com/{evil}.git",
                    commit_and_push("feature.txt", BRANCH)
                ),
            ),
            Step::tool_call(
                "call_handoff",
                "issue_review_handoff",
                json!({"pr_url": crate::support::fake_github::pull_url(evil, 7), "summary": "Added feature.txt."}),
            ),
            Step::tool_call(
                "call_finalize",
                "issue_terminal_finalize",
                json!({"path": "review_handoff"}),
            ),
            Step::message("Handed off."),
        ])
        .build();
    world
        .github
        .add(Pull::live(evil, 7, BRANCH, world.origin.clone()));
    let output = world.run_once();
    assert_refused(
        &world,
        &output,
        "PR is in mallory/widgets but the lane's origin is acme/widgets",
    );
}
