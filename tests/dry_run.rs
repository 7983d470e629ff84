//! `maestro run --once --dry-run` as an operator runs it: the demo's text and JSON output,
//! the no-config and no-eligible cases, exit codes, and proof that a dry run changes nothing
//! (no request to a mutation, no file or directory created or touched).

use std::path::{Path, PathBuf};

use crate::support::dir::TestDir;
use crate::support::fake_linear::{API_KEY, FakeIssue, FakeLinear, Fault, SLUG_ID, World};
use crate::support::{maestro, maestro_command, stderr, stdout, tree};

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

const DEMO_TEXT: &str = "\
dry run: project maestro-demo (local tracker, project demo), 8 candidates in Todo, In Progress, In Review

selected: DEMO-2  Explain the exit codes in run --help
  branch:     x/maestro-demo-demo-2
  workspace:  .workspaces/DEMO-2
  attempt:    1 of 3

ISSUE   PRIORITY  STATE        VERDICT   REASON                                             TITLE
DEMO-4  urgent    Todo         skipped   label maestro:manual-only                          Rotate the release signing key
DEMO-1  urgent    Todo         skipped   blocked by DEMO-6 (In Progress)                    Add --verbose to maestro status
DEMO-6  high      In Progress  skipped   state In Progress is not startable                 Parse HTTP-date retry-after values
DEMO-2  high      Todo         selected  first eligible in dispatch order                   Explain the exit codes in run --help
DEMO-3  high      Todo         waiting   no free dispatch slot (max_concurrent_agents = 1)  Document the local tracker's comments file
DEMO-5  medium    Todo         skipped   label maestro:needs-attention                      Fix the flaky lane cleanup test
DEMO-7  low       In Review    skipped   state In Review is not startable                   Add a changelog
DEMO-8  none      Todo         waiting   no free dispatch slot (max_concurrent_agents = 1)  Tidy the README quick start

dry run: nothing was changed
";

#[test]
fn the_readme_command_explains_the_demo() {
    // Exactly README's first command, from the repository root.
    let before = tree::snapshot(&manifest_dir().join("fixtures"));
    let workspaces = manifest_dir().join(".workspaces/DEMO-2");
    let output = maestro(
        manifest_dir(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), DEMO_TEXT);
    assert_eq!(tree::snapshot(&manifest_dir().join("fixtures")), before);
    assert!(!workspaces.exists(), "a dry run creates no lane");
}

/// The demo config and issues copied into a fresh directory that plays the repository root.
fn demo_copy(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    let demo = manifest_dir().join("fixtures/demo");
    tree::copy(&demo, &dir.join("fixtures/demo"));
    std::fs::copy(manifest_dir().join("README.md"), dir.join("README.md")).unwrap();
    // repo_root must be a git checkout (issue #16); the copy plays one.
    crate::support::git::git(dir.path(), &["init", "--quiet"]);
    dir
}

#[test]
fn a_dry_run_on_the_local_tracker_changes_nothing_anywhere() {
    let dir = demo_copy("dry-run-local-untouched");
    let before = tree::snapshot(dir.path());
    for args in [
        &["run", "--once", "--dry-run"][..],
        &["run", "--once", "--dry-run", "--json"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--config", "fixtures/demo/maestro.toml"]);
        let output = maestro(dir.path(), &args);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }
    assert_eq!(
        tree::snapshot(dir.path()),
        before,
        "no file or directory created or changed"
    );
}

#[test]
fn json_gives_the_same_explanation() {
    let output = maestro(
        manifest_dir(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--json",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["project"],
        serde_json::json!({"id": "maestro-demo", "name": "demo", "slug": "demo", "tracker": "local"})
    );
    assert_eq!(
        report["states_queried"],
        serde_json::json!(["Todo", "In Progress", "In Review"])
    );
    assert_eq!(report["slots"], serde_json::json!({"limit": 1, "free": 1}));
    assert_eq!(
        report["selected"],
        serde_json::json!({
            "id": "DEMO-2",
            "identifier": "DEMO-2",
            "title": "Explain the exit codes in run --help",
            "url": null,
            "branch": "x/maestro-demo-demo-2",
            "workspace": ".workspaces/DEMO-2",
            "attempt": 1,
            "max_attempts": 3,
        })
    );
    let rows: Vec<(String, String, String)> = report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["identifier"].as_str().unwrap().to_string(),
                row["verdict"].as_str().unwrap().to_string(),
                row["rule"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let expected = [
        ("DEMO-4", "skipped", "opt_out"),
        ("DEMO-1", "skipped", "blocked"),
        ("DEMO-6", "skipped", "startable"),
        ("DEMO-2", "selected", "-"),
        ("DEMO-3", "waiting", "slot"),
        ("DEMO-5", "skipped", "needs_attention"),
        ("DEMO-7", "skipped", "startable"),
        ("DEMO-8", "waiting", "slot"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(rows, expected);
    let blocked = &report["candidates"][1];
    assert_eq!(blocked["reason"], "blocked by DEMO-6 (In Progress)");
    assert_eq!(
        blocked["blockers"],
        serde_json::json!([{"identifier": "DEMO-6", "state": "In Progress"}])
    );
    assert_eq!(blocked["priority"], "urgent");
    assert_eq!(blocked["created_at"], "2026-01-02T09:00:00Z");
}

#[test]
fn without_any_config_there_is_nothing_to_execute() {
    let dir = TestDir::new("dry-run-no-config");
    let output = maestro(dir.path(), &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "dry run: no maestro config found; nothing to execute.\n"
    );
    assert_eq!(
        tree::snapshot(dir.path()),
        Default::default(),
        "nothing created"
    );

    let output = maestro(
        dir.path(),
        &["run", "--once", "--dry-run", "--config", "typo.toml"],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "an explicit path that is missing is a mistake"
    );
    assert!(
        stderr(&output).contains("typo.toml (given with --config) does not exist"),
        "{}",
        stderr(&output)
    );
}

/// A repository root with WORKFLOW.md and a maestro.toml pointing at `api_url`.
fn linear_project(name: &str, api_url: &str, max_agents: u32) -> (TestDir, PathBuf) {
    let dir = TestDir::new(name);
    dir.write(
        "repo/WORKFLOW.md",
        &format!("+++\nversion = 1\n[execution]\nmax_concurrent_agents = {max_agents}\n+++\nWork carefully.\n"),
    );
    let config = dir.write(
        "repo/tmp/maestro.toml",
        &format!(
            "id = \"demo\"\nrepo_root = \"..\"\n[tracker]\nproject_slug = \"demo-{SLUG_ID}\"\napi_key_env_var = \"LINEAR_API_KEY\"\napi_url = \"{api_url}\"\n"
        ),
    );
    crate::support::git::git(&dir.join("repo"), &["init", "--quiet"]);
    (dir, config)
}

fn linear_dry_run(dir: &TestDir, key: Option<&str>, json: bool) -> std::process::Output {
    let mut args = vec!["run", "--once", "--dry-run"];
    if json {
        args.push("--json");
    }
    let mut command = maestro_command(&dir.join("repo"), &args);
    command.env_remove("LINEAR_API_KEY");
    if let Some(key) = key {
        command.env("LINEAR_API_KEY", key);
    }
    command.output().unwrap()
}

fn linear_world() -> World {
    World::standard()
        .with(FakeIssue::new("ABC-1", "Todo").priority(2.0))
        .with(
            FakeIssue::new("ABC-2", "Todo")
                .priority(1.0)
                .blocked_by("ABC-3"),
        )
        .with(FakeIssue::new("ABC-3", "In Progress"))
        .with(FakeIssue::new("ABC-4", "Todo").labels(&["Maestro:Manual-Only"]))
        .with(FakeIssue::new("ABC-5", "In Review"))
        .with(FakeIssue::new("ABC-6", "Todo").priority(3.0))
        .with(FakeIssue::new("ABC-7", "Done"))
}

#[test]
fn a_dry_run_against_linear_sends_no_mutation() {
    let fake = FakeLinear::start(linear_world());
    let (dir, _) = linear_project("dry-run-linear", &fake.url(), 2);
    let before = tree::snapshot(dir.path());
    let output = linear_dry_run(&dir, Some(API_KEY), false);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "dry run: project demo (linear tracker, project {SLUG_ID}), 6 candidates in Todo, In Progress, In Review\n\nselected: ABC-1  Issue ABC-1\n  branch:     x/demo-abc-1\n  workspace:  .workspaces/ABC-1\n  attempt:    1 of 3\n  url:        https://linear.app/fake/issue/ABC-1\n"
        )),
        "{text}"
    );
    assert!(
        text.ends_with(
            "
ISSUE  PRIORITY  STATE        VERDICT   REASON                              TITLE
ABC-2  urgent    Todo         skipped   blocked by ABC-3 (In Progress)      Issue ABC-2
ABC-1  high      Todo         selected  first eligible in dispatch order    Issue ABC-1
ABC-6  medium    Todo         eligible  eligible; a later pass takes it     Issue ABC-6
ABC-3  none      In Progress  skipped   state In Progress is not startable  Issue ABC-3
ABC-4  none      Todo         skipped   label maestro:manual-only           Issue ABC-4
ABC-5  none      In Review    skipped   state In Review is not startable    Issue ABC-5

dry run: nothing was changed
"
        ),
        "{text}"
    );
    assert!(fake.mutations().is_empty(), "a dry run sends no mutation");
    assert_eq!(
        fake.operations(),
        [
            "ProjectBySlugId",
            "TeamWorkflowStates",
            "ProjectIssuesByStateNames"
        ],
        "reads only: the project, its team's states and one page of candidates"
    );
    assert_eq!(fake.issue("ABC-1").state, "Todo");
    assert!(fake.comments().is_empty());
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert_eq!(
        tree::snapshot(dir.path()),
        before,
        "no lane, lock or state file created"
    );
}

#[test]
fn no_eligible_issue_is_said_plainly_and_exits_zero() {
    let world = World::standard()
        .with(FakeIssue::new("ABC-1", "Todo").labels(&["maestro:needs-attention"]))
        .with(FakeIssue::new("ABC-2", "In Progress"));
    let fake = FakeLinear::start(world);
    let (dir, _) = linear_project("dry-run-none-eligible", &fake.url(), 1);
    let output = linear_dry_run(&dir, Some(API_KEY), false);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output)
            .contains("\nno eligible issue: every candidate is skipped (reasons below)\n"),
        "{}",
        stdout(&output)
    );
    let output = linear_dry_run(&dir, Some(API_KEY), true);
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["selected"], serde_json::Value::Null);
    assert_eq!(report["candidates"].as_array().unwrap().len(), 2);

    let fake = FakeLinear::start(World::standard());
    let (dir, _) = linear_project("dry-run-empty", &fake.url(), 1);
    let output = linear_dry_run(&dir, Some(API_KEY), false);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).contains("no eligible issue: the project has no issues in those states"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn tracker_problems_exit_with_their_kind() {
    let fake = FakeLinear::start(linear_world());
    let (dir, _) = linear_project("dry-run-errors", &fake.url(), 1);

    let output = linear_dry_run(&dir, None, false);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a missing key is a config problem"
    );
    assert_eq!(
        stderr(&output),
        "maestro: environment variable LINEAR_API_KEY (named by tracker.api_key_env_var) is unset or empty; export it with a Linear API key\n"
    );
    assert!(fake.requests().is_empty(), "nothing is sent without a key");

    let output = linear_dry_run(&dir, Some("lin_api_wrong_key_0123456789"), false);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("linear refused the API key in ProjectBySlugId"),
        "{text}"
    );
    assert!(
        !text.contains("lin_api_wrong_key_0123456789"),
        "the key is never printed"
    );

    fake.inject("ProjectIssuesByStateNames", Fault::MissingCursor);
    let output = linear_dry_run(&dir, Some(API_KEY), false);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "", "no partial report");
    assert!(
        stderr(&output).contains("cannot page through ProjectIssuesByStateNames"),
        "{}",
        stderr(&output)
    );

    let config = dir.join("repo/tmp/maestro.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(SLUG_ID, "0000aaaa0000")).unwrap();
    let output = linear_dry_run(&dir, Some(API_KEY), false);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a wrong slug is a config problem"
    );
    assert!(
        stderr(&output).contains("no project with slug id \"0000aaaa0000\" is visible"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_docs_show_the_real_command_and_output() {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    // "Try it" runs `maestro demo` first; the dry run is its next step, as its own block.
    let blocks: Vec<&str> = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
    assert!(
        blocks.iter().take(2).any(|block| *block
            == "cargo run -- run --once --dry-run --config fixtures/demo/maestro.toml\n"),
        "README's Try it shows the demo dry run as a command of its own: {blocks:?}"
    );
    let spec = std::fs::read_to_string(manifest_dir().join("docs/spec/eligibility.md")).unwrap();
    assert!(
        spec.contains(DEMO_TEXT),
        "docs/spec/eligibility.md shows the demo output as printed"
    );
}

#[test]
fn leases_guards_and_attempt_history_shape_the_verdicts() {
    use maestro::workspace::Layout;
    use maestro::workspace::lock::{self, LeaseOwner};
    use maestro::workspace::record::{self, Guard, IssueState, RunStatus};

    let dir = demo_copy("dry-run-local-state");
    let layout = Layout::new(&dir.join(".workspaces"));
    // DEMO-2 (first in order) is being worked by another process; DEMO-3 is guarded;
    // DEMO-8 has used one attempt, so it is selected as attempt 2.
    let _lease = lock::acquire_lease(
        &layout,
        "DEMO-2",
        &LeaseOwner {
            run_id: "run-elsewhere".into(),
            pid: 4242,
            issue_id: "DEMO-2".into(),
            issue_identifier: "DEMO-2".into(),
            acquired_at: "2026-11-26T00:00:00.000Z".into(),
        },
    )
    .unwrap()
    .unwrap();
    let book = |identifier: &str, attempts: u32, guard: Option<&str>| IssueState {
        schema_version: record::SCHEMA_VERSION,
        issue_id: identifier.into(),
        issue_identifier: identifier.into(),
        attempts_used: attempts,
        last_run_id: Some("r".into()),
        last_status: Some(RunStatus::RetryScheduled),
        last_error_class: Some("validation_failed".into()),
        next_action: None,
        guard: guard.map(|reason| Guard {
            reason: reason.into(),
            run_id: "r".into(),
            at: "2026-11-26T00:00:00.000Z".into(),
        }),
        updated_at: "2026-11-26T00:00:00.000Z".into(),
        ..IssueState::default()
    };
    record::save_issue_state(&layout, "DEMO-3", &book("DEMO-3", 1, Some("label missing"))).unwrap();
    record::save_issue_state(&layout, "DEMO-8", &book("DEMO-8", 1, None)).unwrap();
    let before = tree::snapshot(dir.path());

    let output = maestro(
        dir.path(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--json",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let verdict = |identifier: &str| {
        report["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["identifier"] == identifier)
            .map(|row| {
                (
                    row["verdict"].clone(),
                    row["reason"].as_str().unwrap().to_string(),
                )
            })
            .unwrap()
    };
    let (demo2, reason2) = verdict("DEMO-2");
    assert_eq!(demo2, "skipped");
    assert!(
        reason2.contains("leased by run run-elsewhere (pid 4242)"),
        "{reason2}"
    );
    let (demo3, reason3) = verdict("DEMO-3");
    assert_eq!(demo3, "skipped");
    assert!(reason3.contains("guard marker: label missing"), "{reason3}");
    assert_eq!(report["selected"]["identifier"], "DEMO-8");
    assert_eq!(report["selected"]["attempt"], 2);
    assert_eq!(tree::snapshot(dir.path()), before, "still nothing changed");
}

#[test]
fn an_in_progress_issue_left_for_a_retry_is_selected_before_fresh_work() {
    use maestro::workspace::Layout;
    use maestro::workspace::record::{self, IssueState, RunStatus};

    let dir = demo_copy("dry-run-recovery");
    let layout = Layout::new(&dir.join(".workspaces"));
    record::save_issue_state(
        &layout,
        "DEMO-6",
        &IssueState {
            schema_version: record::SCHEMA_VERSION,
            issue_id: "DEMO-6".into(),
            issue_identifier: "DEMO-6".into(),
            attempts_used: 1,
            last_run_id: Some("r1".into()),
            last_status: Some(RunStatus::RetryScheduled),
            last_error_class: Some("validation_failed".into()),
            next_action: Some("retry attempt 2".into()),
            guard: None,
            updated_at: "2026-11-26T00:00:00.000Z".into(),
            ..IssueState::default()
        },
    )
    .unwrap();
    let output = maestro(
        dir.path(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--json",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["selected"]["identifier"], "DEMO-6");
    assert_eq!(report["selected"]["attempt"], 2);
    let row = report["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["identifier"] == "DEMO-6")
        .unwrap();
    assert_eq!(row["verdict"], "selected");
    assert!(
        row["reason"].as_str().unwrap().starts_with("recovery:"),
        "{row}"
    );
}
