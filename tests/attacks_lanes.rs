//! Attacks on lanes and containment (issue #11): the agent, or whoever writes an issue, is
//! hostile. A `workspace_root` that overlaps the repository is refused at startup; only lanes
//! Maestro can prove it created are ever removed; a symlinked lane never takes hooks or the agent
//! outside `workspace_root` and a swapped `.git` never gets validation commands run against
//! another repository; hostile identifiers make valid branches; failed and abandoned clones
//! never pile up. Rows in docs/spec/faults.md, "Attacks: lanes and containment".

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use maestro::mock_model::Step;
use serde_json::{Value, json};

use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
use crate::support::fake_linear::FakeIssue;
use crate::support::git::git;
use crate::support::procs;
use crate::support::run_world::{
    RunWorld, bounded, commit_and_push, pr_url, summary_line, wait_until,
};

const LONG: Duration = Duration::from_secs(60);

fn scripts() -> Value {
    json!({"*": manual_attention_script()})
}

/// `maestro run --once` against `world`, logging at info, bounded.
fn run_once(world: &DaemonWorld, extra_env: &[(&str, &Path)]) -> Output {
    let mut command = world.maestro(&["run", "--once"], &scripts());
    command.env("RUST_LOG", "info");
    for (name, value) in extra_env {
        command.env(name, value);
    }
    bounded(command, LONG)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Names in `dir` that look like staging clones.
fn staging_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".cloning-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Rewrites maestro.toml's `workspace_root` line.
fn set_workspace_root(world: &DaemonWorld, workspace_root: &Path) {
    let config = std::fs::read_to_string(&world.config_path).unwrap();
    let config: String = config
        .lines()
        .map(|line| {
            if line.starts_with("workspace_root") {
                format!("workspace_root = \"{}\"\n", workspace_root.display())
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&world.config_path, config).unwrap();
}

fn source(world: &DaemonWorld) -> PathBuf {
    world.dir.join("source")
}

#[test]
fn a_workspace_root_overlapping_the_repository_is_refused_at_startup() {
    let mut world = DaemonWorld::new(Setup {
        name: "attack-root-overlap",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    let source = source(&world);
    std::fs::create_dir_all(source.join("docs")).unwrap();
    std::fs::write(source.join("docs/guide.md"), "guide\n").unwrap();
    std::fs::write(source.join(".gitignore"), "/ignored-lanes/\n").unwrap();
    git(&source, &["add", "-A"]);
    git(&source, &["commit", "--quiet", "-m", "docs"]);
    let link = world.dir.join("link-to-source");
    std::os::unix::fs::symlink(&source, &link).unwrap();

    // (workspace_root, refused, what the message must say)
    let cases: Vec<(PathBuf, bool, &str)> = vec![
        (source.clone(), true, "is repo_root itself"),
        (world.dir.path().to_path_buf(), true, "contains repo_root"),
        (
            link.clone(),
            true,
            "(symlinks followed), which is repo_root itself",
        ),
        (source.join("docs"), true, "git tracks files under `docs`"),
        (link.join("docs"), true, "git tracks files under `docs`"),
        (
            source.join("lanes"),
            true,
            "is not git-ignored; add `/lanes/`",
        ),
        (source.join(".workspaces"), false, ""),
        (source.join("ignored-lanes"), false, ""),
        (world.dir.join("elsewhere"), false, ""),
    ];
    for (workspace_root, refused, expected) in &cases {
        set_workspace_root(&world, workspace_root);
        let output = bounded(
            world.maestro(&["run", "--once", "--dry-run"], &scripts()),
            LONG,
        );
        let stderr = text(&output.stderr);
        if *refused {
            assert_eq!(
                output.status.code(),
                Some(2),
                "{} must be refused: {stderr}",
                workspace_root.display()
            );
            assert!(stderr.contains(expected), "{expected}\nnot in\n{stderr}");
            assert!(
                stderr.contains(&world.config_path.display().to_string())
                    && stderr.contains("workspace_root"),
                "names the file and the field: {stderr}"
            );
            assert!(
                stderr.contains("set workspace_root to a directory outside the repository"),
                "says what to do: {stderr}"
            );
        } else {
            assert_eq!(
                output.status.code(),
                Some(0),
                "{} must be accepted: {stderr}",
                workspace_root.display()
            );
        }
    }

    // The live run and the daemon refuse the same way, before touching anything.
    set_workspace_root(&world, &source);
    let output = run_once(&world, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(!source.join(".maestro").exists(), "nothing was written");
    world.start_daemon(&scripts());
    world.wait_for("the daemon to refuse", LONG, || {
        world.log().contains("is repo_root itself").then_some(())
    });
    // Its signal handlers are in place before the config is read, so the exit code is the
    // refusal's whether or not this SIGTERM arrives first.
    assert_eq!(world.stop_daemon(), Some(2), "{}", world.log());
    assert!(!source.join(".maestro").exists(), "nothing was written");
}

#[test]
fn the_daemon_removes_only_lanes_it_can_prove_it_created() {
    let mut world = DaemonWorld::new(Setup {
        name: "attack-remove-proof",
        issues: vec![
            FakeIssue::new("docs", "Todo"),
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
            FakeIssue::new("ABC-3", "Todo"),
        ],
        execution: "",
        agent: "",
    });
    let root = world.workspace_root.clone();
    // A directory of the operator's that happens to carry an issue's identifier.
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/guide.md"), "the operator's\n").unwrap();
    for _ in 0..4 {
        let output = run_once(&world, &[]);
        assert_eq!(output.status.code(), Some(5), "{}", text(&output.stderr));
    }
    let docs_run = run_records(&world.state_dir())
        .into_iter()
        .find(|record| record["issue_identifier"] == "docs")
        .expect("docs was recorded");
    assert_eq!(docs_run["error_class"], "policy_violation", "{docs_run:#}");
    for key in ["ABC-1", "ABC-2", "ABC-3"] {
        assert!(root.join(key).join(".git").is_dir(), "{key} lane made");
    }
    // The agent swaps ABC-1's lane for another directory and turns ABC-2's into a symlink to
    // a directory outside the root.
    let swapped_away = world.dir.join("swapped-away");
    std::fs::rename(root.join("ABC-1"), &swapped_away).unwrap();
    std::fs::create_dir(root.join("ABC-1")).unwrap();
    std::fs::write(root.join("ABC-1/precious.txt"), "not maestro's\n").unwrap();
    let outside = world.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious.txt"), "outside\n").unwrap();
    std::fs::remove_dir_all(root.join("ABC-2")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("ABC-2")).unwrap();

    world.linear.edit(|w| {
        for issue in &mut w.issues {
            issue.state = "Done".into();
        }
    });
    world.start_daemon(&scripts());
    let log = world.wait_for("every lane judged by the startup sweep", LONG, || {
        let log = world.log();
        let kept = ["docs", "ABC-1", "ABC-2"]
            .iter()
            .all(|key| log.contains(&format!("cannot remove lane issue={key} ")));
        (kept && log.contains("lane removed issue=ABC-3")).then_some(log)
    });
    assert!(!root.join("ABC-3").exists());
    for key in ["docs", "ABC-1", "ABC-2"] {
        assert!(
            !log.contains(&format!("lane removed issue={key} ")),
            "{key}: {log}"
        );
    }
    assert!(log.contains("no ownership marker"), "{log}");
    assert!(log.contains("not the directory maestro created"), "{log}");
    assert_eq!(
        std::fs::read_to_string(root.join("docs/guide.md")).unwrap(),
        "the operator's\n"
    );
    assert!(root.join("ABC-1/precious.txt").is_file());
    assert!(swapped_away.join(".git").is_dir());
    assert!(
        std::fs::symlink_metadata(root.join("ABC-2"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("precious.txt")).unwrap(),
        "outside\n"
    );
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn a_symlinked_lane_is_refused_before_any_hook_or_agent_runs() {
    let world = DaemonWorld::new(Setup {
        name: "attack-symlinked-lane",
        issues: vec![FakeIssue::new("SEC-1", "Todo")],
        execution: "\n[hooks]\nbefore_run = \"touch before-run-ran\"",
        agent: "",
    });
    let outside = world.dir.join("outside-clone");
    git(
        world.dir.path(),
        &[
            "clone",
            "--quiet",
            source(&world).to_str().unwrap(),
            outside.to_str().unwrap(),
        ],
    );
    std::fs::create_dir_all(&world.workspace_root).unwrap();
    std::os::unix::fs::symlink(&outside, world.workspace_root.join("SEC-1")).unwrap();
    let output = run_once(&world, &[]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(5),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains("outcome=human_required error=policy_violation"),
        "{stdout}"
    );
    assert!(
        !outside.join("before-run-ran").exists(),
        "before_run ran outside workspace_root"
    );
    let records = run_records(&world.state_dir());
    assert_eq!(records.len(), 1);
    assert!(records[0]["thread_id"].is_null(), "the agent never started");
    let message = records[0]["error_message"].as_str().unwrap();
    assert!(message.contains("the lane is a symlink"), "{message}");
    assert!(
        !message.contains(&outside.display().to_string()),
        "no host path outside the root is shown: {message}"
    );
}

#[test]
fn hostile_identifiers_get_valid_branches_and_leave_no_clones_behind() {
    let identifiers = ["ABC-1.lock", "ABC-2.", "ABC-3..x", "../../ABC-4"];
    let world = DaemonWorld::new(Setup {
        name: "attack-identifiers",
        issues: identifiers
            .iter()
            .map(|identifier| FakeIssue::new(identifier, "Todo"))
            .collect(),
        execution: "",
        agent: "",
    });
    for _ in &identifiers {
        let output = run_once(&world, &[]);
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(5),
            "{stdout}{}",
            text(&output.stderr)
        );
        assert!(
            stdout.contains("outcome=human_required error=manual_attention"),
            "the agent ran and asked for a human: {stdout}"
        );
    }
    let records = run_records(&world.state_dir());
    assert_eq!(records.len(), identifiers.len(), "{records:#?}");
    for record in &records {
        let branch = record["branch"].as_str().unwrap();
        let check = std::process::Command::new("git")
            .args(["check-ref-format", "--branch", branch])
            .output()
            .unwrap();
        assert!(check.status.success(), "invalid branch {branch}");
        let lane = world.workspace_root.join(
            Path::new(record["workspace_path"].as_str().unwrap())
                .file_name()
                .unwrap(),
        );
        assert_eq!(git(&lane, &["branch", "--show-current"]), branch);
    }
    assert_eq!(staging_dirs(&world.workspace_root), Vec::<String>::new());
}

/// A git template whose `post-checkout` hook (run by `git clone`) executes `script`.
fn clone_hook(world: &DaemonWorld, script: &str) -> PathBuf {
    let template = world.dir.join("git-template");
    std::fs::create_dir_all(template.join("hooks")).unwrap();
    let hook = template.join("hooks/post-checkout");
    std::fs::write(&hook, format!("#!/bin/sh\n{script}\n")).unwrap();
    let mut permissions = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&hook, permissions).unwrap();
    template
}

#[test]
fn a_clone_that_fails_leaves_no_staging_directory() {
    let world = DaemonWorld::new(Setup {
        name: "attack-clone-fails",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    // The clone completes, then git fails it: a full clone sits in the staging directory.
    let template = clone_hook(&world, "echo checkout refused >&2; exit 3");
    let output = run_once(&world, &[("GIT_TEMPLATE_DIR", &template)]);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(4),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("error=lane_setup_failed"), "{stdout}");
    assert_eq!(staging_dirs(&world.workspace_root), Vec::<String>::new());
    assert!(!world.workspace_root.join("ABC-1").exists());
}

/// Kills `run --once` from inside its own `git clone` and waits until that clone has ended:
/// the staging clone of a dead process is left behind, as after a crash or `kill -9`.
fn abandon_a_clone(world: &DaemonWorld) {
    let git_pid = world.dir.join("git-pid");
    let template = clone_hook(
        world,
        &format!(
            "echo $PPID > {}\nd=$(pwd -P)\nkill -9 \"${{d##*.cloning-}}\"\nexit 0",
            git_pid.display()
        ),
    );
    let output = run_once(world, &[("GIT_TEMPLATE_DIR", &template)]);
    assert_eq!(output.status.code(), None, "killed by SIGKILL");
    let pid: u32 = std::fs::read_to_string(&git_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        wait_until(LONG, || !procs::is_alive(pid)),
        "the abandoned git clone ends"
    );
    assert_eq!(
        staging_dirs(&world.workspace_root).len(),
        1,
        "the abandoned clone is on disk"
    );
}

#[test]
fn a_clone_abandoned_by_a_dead_process_is_swept_by_the_next_run() {
    let world = DaemonWorld::new(Setup {
        name: "attack-sweep-run",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    abandon_a_clone(&world);
    let output = run_once(&world, &[]);
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("stale staging clone removed lane=ABC-1"),
        "{stderr}"
    );
    assert_eq!(staging_dirs(&world.workspace_root), Vec::<String>::new());
    assert!(world.workspace_root.join("ABC-1/.git").is_dir(), "{stderr}");
}

#[test]
fn a_clone_abandoned_by_a_dead_process_is_swept_at_daemon_startup() {
    let mut world = DaemonWorld::new(Setup {
        name: "attack-sweep-daemon",
        issues: vec![FakeIssue::new("ABC-1", "Todo")],
        execution: "",
        agent: "",
    });
    abandon_a_clone(&world);
    // Nothing is dispatched: only the startup sweep can remove it.
    world.linear.edit(|w| w.issues[0].state = "Backlog".into());
    world.start_daemon(&scripts());
    world.wait_for("the startup sweep", LONG, || {
        world
            .log()
            .contains("stale staging clone removed lane=ABC-1")
            .then_some(())
    });
    assert_eq!(staging_dirs(&world.workspace_root), Vec::<String>::new());
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
}

#[test]
fn lane_branches_pass_git_check_ref_format_for_hostile_identifiers() {
    let identifiers = [
        "ABC-1",
        "v1.2_x",
        "ABC-1.lock",
        "ABC-5.LOCK",
        "ABC-2.",
        "ABC-3..x",
        "../../ABC-4",
        ".hidden",
        "..",
        ".",
        "",
        "a b",
        "a:b",
        "a~1",
        "a^2",
        "a?b",
        "a*b",
        "a[b",
        "a\\b",
        "a@{1}",
        "@",
        "-x",
        "a/b",
        "a//b",
        "a.lock/b",
        "x.",
        "ü-1",
        "tab\there",
        "del\u{7f}",
        "new\nline",
        &"A".repeat(300),
        &"A.".repeat(80),
    ];
    let mut seen = std::collections::HashMap::new();
    for identifier in identifiers {
        let branch = maestro::workspace::lane::branch_name("demo", identifier);
        let check = std::process::Command::new("git")
            .args(["check-ref-format", "--branch", &branch])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            check.success(),
            "{identifier:?} gave invalid branch {branch:?}"
        );
        if let Some(other) = seen.insert(branch.clone(), identifier) {
            panic!("{other:?} and {identifier:?} share branch {branch}");
        }
    }
    // Identifiers that were already valid keep the branch they always had.
    assert_eq!(
        maestro::workspace::lane::branch_name("demo", "ABC-12"),
        "x/demo-abc-12"
    );
    assert_eq!(
        maestro::workspace::lane::branch_name("demo", "v1.2_x"),
        "x/demo-v1.2_x"
    );
}

#[test]
fn a_huge_concurrency_cap_is_refused_not_capped() {
    let parse = |front: &str| {
        maestro::workflow::parse(
            Path::new("/repo/WORKFLOW.md"),
            &format!("+++\nversion = 1\n[execution]\n{front}\n+++\n"),
            Path::new(env!("CARGO_MANIFEST_DIR")),
        )
    };
    let message = parse("max_concurrent_agents = 1000000000000")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "field `execution.max_concurrent_agents`: must be between 1 and 256 (each slot is a lock file scanned at every dispatch), got 1000000000000"
        ),
        "{message}"
    );
    let message = parse("max_concurrent_agents = 257")
        .unwrap_err()
        .to_string();
    assert!(message.contains("got 257"), "{message}");
    // A rejected global cap is reported once; per-state caps are held to the bound alone.
    let message = parse(
        "max_concurrent_agents = 5000\nmax_concurrent_agents_by_state = { Todo = 300, Ready = 4 }",
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains(
            "field `execution.max_concurrent_agents_by_state.Todo`: must be at most 256, got 300"
        ),
        "{message}"
    );
    assert!(!message.contains("Ready"), "{message}");
    assert!(message.contains("(2 problems)"), "{message}");
    let workflow =
        parse("max_concurrent_agents = 256\nmax_concurrent_agents_by_state = { Todo = 256 }")
            .unwrap();
    assert_eq!(workflow.execution.max_concurrent_agents, 256);
}

#[test]
fn git_metadata_swapped_by_the_agent_is_refused_before_validation_runs() {
    let codex = crate::codex_or_skip!();
    let branch = "x/demo-abc-1";
    let world = RunWorld::builder("attack-git-swap", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps_from(move |source| {
            vec![
                Step::tool_call(
                    "call_claim",
                    "issue_transition",
                    json!({"state": "In Progress"}),
                ),
                Step::exec_command("call_work", &commit_and_push("feature.txt", branch)),
                Step::tool_call(
                    "call_handoff",
                    "issue_review_handoff",
                    json!({"pr_url": pr_url(7), "summary": "Added feature.txt."}),
                ),
                // After the handoff check: the lane's git metadata now points at the
                // operator's own repository.
                Step::exec_command(
                    "call_swap",
                    &format!(
                        "mv .git .git-moved && ln -s {} .git && echo swapped",
                        source.join(".git").display()
                    ),
                ),
                Step::tool_call(
                    "call_finalize",
                    "issue_terminal_finalize",
                    json!({"path": "review_handoff"}),
                ),
                Step::message("Handed off for review."),
            ]
        })
        .build();
    world.open_pull(7, branch);
    let output = world.run_once();
    let line = summary_line(&output);
    assert_eq!(
        output.status.code(),
        Some(5),
        "{line}\n{}",
        text(&output.stderr)
    );
    assert!(line.contains("error=policy_violation"), "{line}");
    assert!(
        world.tool_output("call_swap").contains("swapped"),
        "the agent really swapped .git"
    );
    let record = world.only_run();
    assert!(
        record.validation.is_empty(),
        "no validation command ran: {:?}",
        record.validation
    );
    assert!(
        record
            .error_message
            .unwrap_or_default()
            .contains(".git is a symlink")
    );
    world.assert_comments_clean();
}
