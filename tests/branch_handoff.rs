//! Branch handoff (`[handoff] mode = "branch"`) end to end: the real binary and the real codex,
//! the scripted model, the fake Linear, a bare origin the agent really pushes to, and no GitHub
//! token (the fake GitHub must never be asked). The branch is checked with `git ls-remote` on
//! the source repository's origin, never through the lane's own git config.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use maestro::mock_model::Step;
use maestro::workspace::record::{Disposition, RunStatus};

use crate::codex_or_skip;
use crate::support::fake_linear::FakeIssue;
use crate::support::git::git;
use crate::support::run_world::{RunWorld, commit_and_push, summary_line};
use crate::support::stderr;

const BRANCH: &str = "x/demo-abc-1";
const BRANCH_MODE: &str = "\
version = 1

[execution]
max_attempts = 3
validation_commands = [\"test -f feature.txt\"]

[handoff]
mode = \"branch\"
";
/// An origin URL with credentials in it: the comment must name the remote without them.
const ORIGIN_WITH_CREDENTIALS: &str =
    "https://deploy:s3cret-pass-77@git.example.invalid/acme/widgets.git";
const ORIGIN_SHOWN: &str = "https://git.example.invalid/acme/widgets.git";

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

fn step_claim() -> Step {
    Step::tool_call(
        "call_claim",
        "issue_transition",
        json!({"state": "In Progress"}),
    )
}

fn step_handoff(call_id: &str, branch: &str) -> Step {
    Step::tool_call(
        call_id,
        "issue_review_handoff",
        json!({"branch": branch, "summary": "Added feature.txt."}),
    )
}

fn step_finalize() -> Step {
    Step::tool_call(
        "call_finalize",
        "issue_terminal_finalize",
        json!({"path": "review_handoff"}),
    )
}

/// A branch-mode world for ABC-1 whose source origin carries credentials (git reaches the bare
/// origin through an `insteadOf` rule in the operator's git config).
fn world(name: &str, codex: &Path, front_matter: &str, steps: Vec<Step>) -> RunWorld {
    let world = RunWorld::builder(name, codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(front_matter)
        .without_github_token()
        .steps(steps)
        .build();
    git(
        &world.source,
        &["remote", "set-url", "origin", ORIGIN_WITH_CREDENTIALS],
    );
    let mut gitconfig = std::fs::read_to_string(&world.gitconfig).unwrap();
    gitconfig.push_str(&format!(
        "[url \"{}\"]\n\tinsteadOf = {ORIGIN_WITH_CREDENTIALS}\n",
        world.origin.display()
    ));
    std::fs::write(&world.gitconfig, gitconfig).unwrap();
    world
}

fn tool_result(world: &RunWorld, call_id: &str) -> Value {
    serde_json::from_str(&world.tool_output(call_id)).unwrap()
}

/// The tip of `BRANCH` in the bare repository `repo`, if it has one.
fn tip(repo: &Path) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--verify", "--quiet"])
        .arg(format!("refs/heads/{BRANCH}"))
        .current_dir(repo)
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[test]
fn a_pushed_branch_is_handed_off_without_github_naming_remote_branch_and_commit() {
    let codex = codex_or_skip!();
    let world = world(
        "branch-happy",
        &codex,
        BRANCH_MODE,
        vec![
            step_claim(),
            Step::exec_command("call_work", &commit_and_push("feature.txt", BRANCH)),
            step_handoff("call_handoff", BRANCH),
            step_finalize(),
            Step::message("Handed off for review."),
        ],
    );

    let output = world.run_once();
    let line = assert_exit(&output, 0);
    let record = world.only_run();
    let head = git(&world.lane("ABC-1"), &["rev-parse", "HEAD"]);
    assert_eq!(tip(&world.origin).as_deref(), Some(head.as_str()));
    assert_eq!(
        line,
        format!(
            "run --once: issue=ABC-1 run_id={} outcome=handoff branch={BRANCH} commit={head} next=\"review branch {BRANCH} on {ORIGIN_SHOWN}\"",
            record.run_id
        )
    );

    // The agent saw what was recorded, the remote without its credentials.
    let result = tool_result(&world, "call_handoff");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["branch"], BRANCH);
    assert_eq!(result["remote"], ORIGIN_SHOWN);
    assert_eq!(result["head_sha"], head.as_str());

    // Linear: In Review, one completion comment naming remote, branch and commit.
    assert_eq!(world.linear.issue("ABC-1").state, "In Review");
    let comments = world.comments("ABC-1");
    assert_eq!(comments.len(), 1, "{comments:#?}");
    let completion = &comments[0];
    assert!(completion.starts_with("**Maestro: ready for review**"));
    for field in [
        format!("- branch: `{BRANCH}`"),
        format!("- remote: `{ORIGIN_SHOWN}`"),
        format!("- commit: `{head}`"),
        "- validation_result: passed (1 command)".to_string(),
        "Added feature.txt.".to_string(),
    ] {
        assert!(
            completion.contains(&field),
            "{field:?} missing from:\n{completion}"
        );
    }
    assert!(!completion.contains("pr_url"), "{completion}");
    assert!(
        !world.everything_written().contains("s3cret-pass-77"),
        "the origin's password leaked into a record or comment"
    );
    world.assert_comments_clean();

    // No token, no GitHub: the fake GitHub was never asked.
    assert!(world.github.requests().is_empty());
    assert_eq!(record.status, RunStatus::Handoff);
    assert_eq!(record.disposition, Some(Disposition::ReviewHandoff));
    assert_eq!(record.pr_url, None);
}

#[test]
fn a_branch_that_is_missing_foreign_or_behind_the_lane_head_is_refused() {
    let codex = codex_or_skip!();
    // Hand off before pushing, then push and commit once more without pushing: the branch on
    // origin is one commit behind the lane HEAD. Naming another branch is refused too.
    let push_then_commit = format!(
        "{} && echo more >> feature.txt && git commit -q -am 'Not pushed'",
        commit_and_push("feature.txt", BRANCH)
    );
    let world = world(
        "branch-mismatch",
        &codex,
        BRANCH_MODE,
        vec![
            step_claim(),
            step_handoff("call_handoff_unpushed", BRANCH),
            Step::exec_command("call_work", &push_then_commit),
            step_handoff("call_handoff_main", "main"),
            step_handoff("call_handoff_behind", BRANCH),
            step_finalize(),
            Step::message("Handed off, I think."),
        ],
    );

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    assert!(
        line.contains("outcome=human_required error=invalid_disposition"),
        "{line}"
    );
    let head = git(&world.lane("ABC-1"), &["rev-parse", "HEAD"]);
    let pushed = tip(&world.origin).expect("the first commit was pushed");
    assert_ne!(pushed, head);

    let refusal = |call_id: &str| {
        let result = tool_result(&world, call_id);
        assert_eq!(result["success"], false, "{result}");
        result["error"].as_str().unwrap().to_string()
    };
    let unpushed = refusal("call_handoff_unpushed");
    assert!(
        unpushed.contains(&format!(
            "origin ({ORIGIN_SHOWN}) has no branch {BRANCH}; push it first"
        )),
        "{unpushed}"
    );
    let foreign = refusal("call_handoff_main");
    assert!(
        foreign.contains(&format!(
            "branch main is not this lane's branch; push and hand off {BRANCH}"
        )),
        "{foreign}"
    );
    let behind = refusal("call_handoff_behind");
    assert!(
        behind.contains(&format!(
            "branch {BRANCH} on origin is at {pushed} but the lane HEAD is {head}"
        )),
        "{behind}"
    );

    let record = world.only_run();
    assert_eq!(record.disposition, Some(Disposition::Invalid));
    assert!(
        record
            .error_message
            .as_deref()
            .unwrap()
            .contains("without a recorded handoff"),
        "{record:?}"
    );
    let issue = world.linear.issue("ABC-1");
    assert_ne!(issue.state, "In Review");
    assert!(world.github.requests().is_empty());
}

#[test]
fn an_agent_that_rewrites_the_lanes_origin_cannot_fool_the_branch_check() {
    let codex = codex_or_skip!();
    // The agent points the lane's origin (and an insteadOf rule for the real URL) at a bare
    // repository of its own, pushes there, and hands off: the real origin has no such branch.
    let world = RunWorld::builder("branch-rewritten-origin", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(BRANCH_MODE)
        .without_github_token()
        .steps_from(|repo_root| {
            let decoy = repo_root.parent().unwrap().join("decoy.git");
            let decoy = decoy.display();
            let attack = format!(
                "git init -q --bare {decoy} && git remote set-url origin {decoy} && git config url.{decoy}.insteadOf {url} && {push}",
                url = crate::support::run_world::ORIGIN_URL,
                push = commit_and_push("feature.txt", BRANCH)
            );
            vec![
                step_claim(),
                Step::exec_command("call_attack", &attack),
                step_handoff("call_handoff", BRANCH),
                step_finalize(),
                Step::message("Handed off."),
            ]
        })
        .build();

    let output = world.run_once();
    let line = assert_exit(&output, 5);
    assert!(
        line.contains("outcome=human_required error=invalid_disposition"),
        "{line}"
    );
    let lane = world.lane("ABC-1");
    let head = git(&lane, &["rev-parse", "HEAD"]);
    let decoy = world.dir.join("decoy.git");
    // The attack itself worked: the decoy holds the lane HEAD, the lane's origin points there.
    assert_eq!(tip(&decoy).as_deref(), Some(head.as_str()));
    assert_eq!(
        git(&lane, &["config", "--get", "remote.origin.url"]),
        decoy.display().to_string()
    );
    // It fooled nothing: the real origin has no such branch, and the handoff was refused.
    assert_eq!(tip(&world.origin), None);
    let result = tool_result(&world, "call_handoff");
    assert_eq!(result["success"], false, "{result}");
    let reason = result["error"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "origin ({}) has no branch {BRANCH}",
            crate::support::run_world::ORIGIN_URL
        )),
        "{reason}"
    );
    assert_ne!(world.linear.issue("ABC-1").state, "In Review");
    assert_eq!(world.only_run().disposition, Some(Disposition::Invalid));
}

#[test]
fn a_branch_that_falls_behind_the_lane_during_validation_fails_the_final_check() {
    let codex = codex_or_skip!();
    // A validation command that commits: after it, origin's branch is behind the lane HEAD.
    let world = world(
        "branch-head-moved",
        &codex,
        "version = 1\n[execution]\nvalidation_commands = [\"git commit -q --allow-empty -m 'generated files'\"]\n[handoff]\nmode = \"branch\"\n",
        vec![
            step_claim(),
            Step::exec_command("call_work", &commit_and_push("feature.txt", BRANCH)),
            step_handoff("call_handoff", BRANCH),
            step_finalize(),
            Step::message("Handed off."),
        ],
    );

    let output = world.run_once();
    let line = assert_exit(&output, 4);
    assert!(
        line.contains("outcome=retry_scheduled error=branch_check_failed"),
        "{line}"
    );
    let record = world.only_run();
    let message = record.error_message.clone().unwrap();
    assert!(
        message.contains(&format!(
            "the branch on origin no longer matches the lane: branch {BRANCH} on origin is at"
        )),
        "{message}"
    );
    assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
    assert!(
        world
            .comments("ABC-1")
            .last()
            .unwrap()
            .contains("- error_class: `branch_check_failed`")
    );
}
