//! WORKFLOW.md: front matter, defaults, every validation rule, last-known-good reload, and the
//! cross-checks with maestro.toml.

use std::path::{Path, PathBuf};

use maestro::github::MergeMethod;
use maestro::workflow::{self, MergeMode, Personality, ReviewPolicy, WorkflowStore};
use maestro::{config, settings};

use crate::support::dir::TestDir;

fn parse(text: &str) -> Result<workflow::Workflow, workflow::Error> {
    // The manifest dir is a real repository root, so read_first can point at real files.
    workflow::parse(
        Path::new("/repo/WORKFLOW.md"),
        text,
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
}

fn check_error(text: &str, expected: &str) {
    let message = parse(text)
        .expect_err("workflow should be rejected")
        .to_string();
    assert!(
        message.contains(expected),
        "expected to find\n  {expected}\nin\n  {message}"
    );
}

#[test]
fn without_front_matter_the_whole_file_is_the_body_and_defaults_apply() {
    let workflow = parse("\n  Fix the issue carefully.\n\n").unwrap();
    assert_eq!(workflow.body, "Fix the issue carefully.");
    let tracker = &workflow.tracker;
    assert_eq!(tracker.provider, None, "unset: maestro.toml alone decides");
    assert_eq!(tracker.startable_states, vec!["Todo"]);
    assert_eq!(
        tracker.terminal_states,
        vec!["Done", "Canceled", "Duplicate"]
    );
    assert_eq!(tracker.in_progress_state, "In Progress");
    assert_eq!(tracker.success_state, "In Review");
    assert_eq!(tracker.completed_state.as_deref(), Some("Done"));
    assert_eq!(tracker.failure_state, "Todo");
    assert_eq!(tracker.opt_out_label, "maestro:manual-only");
    assert_eq!(tracker.needs_attention_label, "maestro:needs-attention");
    let execution = &workflow.execution;
    assert_eq!(execution.max_attempts, 3);
    assert_eq!(execution.max_turns, 1);
    assert_eq!(execution.max_retry_backoff_ms, 300_000);
    assert_eq!(execution.max_concurrent_agents, 1);
    assert!(execution.max_concurrent_agents_by_state.is_empty());
    assert!(execution.validation_commands.is_empty());
    assert_eq!(execution.token_budget, None);
    assert!(workflow.read_first.is_empty());
    assert_eq!(workflow.hooks.timeout_ms, 60_000);
    assert_eq!(workflow.agent.personality, None);
}

#[test]
fn front_matter_fields_are_read() {
    let workflow = parse(
        r#"+++
version = 1
[tracker]
project_slug = "abc123"
startable_states = ["Todo", "Ready"]
terminal_states = ["Shipped", "Canceled"]
completed_state = "Shipped"
[agent]
personality = "pragmatic"
service_tier = "priority"
[execution]
max_attempts = 5
max_turns = 4
max_concurrent_agents = 3
max_concurrent_agents_by_state = { "Ready" = 2 }
validation_commands = ["cargo test"]
token_budget = 200000
[context]
read_first = ["README.md"]
[hooks]
after_create = "make setup"
timeout_ms = 5000
+++
Body text.
"#,
    )
    .unwrap();
    assert_eq!(workflow.tracker.project_slug.as_deref(), Some("abc123"));
    assert!(workflow.tracker.is_startable("  ready "));
    assert!(workflow.tracker.is_terminal("SHIPPED"));
    assert_eq!(workflow.completed_state().unwrap(), "Shipped");
    assert_eq!(workflow.agent.personality, Some(Personality::Pragmatic));
    assert_eq!(workflow.agent.service_tier.as_deref(), Some("priority"));
    assert_eq!(workflow.execution.max_attempts, 5);
    assert_eq!(workflow.execution.max_turns, 4);
    assert_eq!(
        workflow.execution.max_concurrent_agents_by_state,
        vec![("Ready".to_string(), 2)]
    );
    assert_eq!(workflow.execution.token_budget, Some(200_000));
    assert_eq!(workflow.read_first, vec![PathBuf::from("README.md")]);
    assert_eq!(workflow.hooks.after_create.as_deref(), Some("make setup"));
    assert_eq!(workflow.hooks.timeout_ms, 5000);
    assert_eq!(workflow.body, "Body text.");
}

#[test]
fn completed_state_without_done_is_an_error_when_used() {
    let workflow =
        parse("+++\nversion = 1\n[tracker]\nterminal_states = [\"Shipped\"]\n+++\nx\n").unwrap();
    let error = workflow.completed_state().unwrap_err();
    assert!(
        error
            .to_string()
            .contains("field `tracker.completed_state` is needed but unset"),
        "{error}"
    );
}

#[test]
fn the_projects_own_workflow_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = workflow::load(&root.join("WORKFLOW.md"), root).unwrap();
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
    assert!(workflow.body.starts_with("# Working on Maestro"));
    assert!(!workflow.execution.validation_commands.is_empty());
}

#[test]
fn version_is_required_and_must_be_supported() {
    check_error(
        "+++\n[tracker]\n+++\n",
        "/repo/WORKFLOW.md:2:1: field `version`: missing required key `version`; add `version = 1`",
    );
    check_error(
        "+++\nversion = 2\n+++\n",
        "/repo/WORKFLOW.md:2:11: field `version`: unsupported version 2; this maestro understands version 1",
    );
    check_error(
        "+++\nversion = \"1\"\n+++\n",
        "field `version`: expected an integer, found string",
    );
}

#[test]
fn front_matter_shape_errors() {
    check_error(
        "+++\nversion = 1\n",
        "/repo/WORKFLOW.md:1:1: front matter opened with +++ is never closed",
    );
    check_error(
        "---\ntitle: x\n---\n",
        "YAML front matter (---) is not supported; put TOML between +++ lines",
    );
    // Front matter that is not a TOML table of keys.
    check_error("+++\njust some words\n+++\n", "/repo/WORKFLOW.md:2:");
    check_error("+++\njust some words\n+++\n", "invalid TOML");
    check_error(
        "+++\nversion = 1\ntracker = \"linear\"\n+++\n",
        "/repo/WORKFLOW.md:3:11: field `tracker`: expected a table, found string",
    );
}

#[test]
fn bad_toml_is_located_in_file_coordinates() {
    check_error(
        "+++\nversion = 1\n[execution]\nmax_turns = = 3\n+++\n",
        "/repo/WORKFLOW.md:4:",
    );
}

#[test]
fn unknown_keys_are_errors_unknown_tables_are_warnings() {
    check_error(
        "+++\nversion = 1\n[tracker]\nstartable_state = [\"Todo\"]\n+++\n",
        "/repo/WORKFLOW.md:4:1: field `tracker.startable_state`: unknown key `startable_state` in [tracker]; did you mean `startable_states`?",
    );
    check_error(
        "+++\nversion = 1\nverison = 1\n+++\n",
        "field `verison`: unknown key `verison` at the top level; did you mean `version`?",
    );
    let workflow = parse("+++\nversion = 1\n[future_feature]\nx = 1\n+++\nbody\n").unwrap();
    assert_eq!(
        workflow.warnings,
        vec![
            "unknown table [future_feature] ignored (known tables: tracker, agent, execution, context, hooks, review, handoff)"
                .to_string()
        ]
    );
}

/// Found by fuzzing (fuzz/ workflow_parse): an unknown key shaped like a token was echoed whole
/// in the error; an unknown table's name likewise in the warning the daemon logs.
#[test]
fn unknown_key_and_table_names_never_echo_a_token() {
    let token = "github_pat_0123456789abcdef_terminal_states";
    let message = parse(&format!("+++\nversion = 1\n[tracker]\n{token} = []\n+++\n"))
        .expect_err("workflow should be rejected")
        .to_string();
    assert!(!message.contains(token), "{message}");
    assert!(
        message.contains("field `tracker.github_pat_…`: unknown key `github_pat_…` in [tracker]"),
        "{message}"
    );
    let workflow = parse(&format!("+++\nversion = 1\n[{token}]\nx = 1\n+++\n")).unwrap();
    assert!(
        workflow.warnings[0].starts_with("unknown table [github_pat_…] ignored"),
        "{:?}",
        workflow.warnings
    );
}

#[test]
fn state_rules() {
    check_error(
        "+++\nversion = 1\n[tracker]\nstartable_states = [\"Todo\", \" \"]\n+++\n",
        "/repo/WORKFLOW.md:4:29: field `tracker.startable_states[1]`: state name must not be empty",
    );
    check_error(
        "+++\nversion = 1\n[tracker]\nin_progress_state = \"\"\n+++\n",
        "field `tracker.in_progress_state`: state name must not be empty",
    );
    check_error(
        "+++\nversion = 1\n[tracker]\nstartable_states = []\n+++\n",
        "field `tracker.startable_states`: must name at least one state",
    );
    check_error(
        "+++\nversion = 1\n[tracker]\nstartable_states = [\"Todo\", \"done\"]\n+++\n",
        "/repo/WORKFLOW.md:4:20: field `tracker.startable_states`: state `done` is both startable and terminal",
    );
    check_error(
        "+++\nversion = 1\n[tracker]\nin_progress_state = \"todo\"\n+++\n",
        "field `tracker.in_progress_state`: `todo` is also a startable or terminal state",
    );
}

#[test]
fn execution_rules() {
    check_error(
        "+++\nversion = 1\n[execution]\nmax_attempts = 0\n+++\n",
        "/repo/WORKFLOW.md:4:16: field `execution.max_attempts`: must be at least 1, got 0",
    );
    check_error(
        "+++\nversion = 1\n[execution]\nmax_concurrent_agents = 2\nmax_concurrent_agents_by_state = { Todo = 3 }\n+++\n",
        "field `execution.max_concurrent_agents_by_state.Todo`: cap 3 exceeds execution.max_concurrent_agents (2)",
    );
    check_error(
        "+++\nversion = 1\n[execution]\nmax_concurrent_agents_by_state = { Todo = 0 }\n+++\n",
        "field `execution.max_concurrent_agents_by_state.Todo`: must be at least 1, got 0",
    );
    check_error(
        "+++\nversion = 1\n[execution]\nvalidation_commands = \"cargo test\"\n+++\n",
        "field `execution.validation_commands`: expected an array of strings, found string",
    );
    check_error(
        "+++\nversion = 1\n[agent]\npersonality = \"grumpy\"\n+++\n",
        "field `agent.personality`: unknown personality `grumpy`; expected one of: none, friendly, pragmatic",
    );
    check_error(
        "+++\nversion = 1\n[hooks]\nbefore_run = \"\"\n+++\n",
        "field `hooks.before_run`: hook script must not be empty",
    );
}

#[test]
fn review_is_off_by_default_with_the_documented_defaults() {
    let workflow = parse("+++\nversion = 1\n+++\nx\n").unwrap();
    assert_eq!(
        workflow.review,
        ReviewPolicy {
            enabled: false,
            merge: MergeMode::Auto,
            merge_method: MergeMethod::Squash,
            required_approvals: 1,
            require_checks: true,
            repair: true,
            max_repairs: 3,
            delete_branch: true,
            poll_interval_s: 60,
        }
    );
    assert_eq!(parse("x\n").unwrap().review, workflow.review);
}

#[test]
fn review_fields_are_read() {
    let workflow = parse(
        r#"+++
version = 1
[tracker]
terminal_states = ["Shipped", "Canceled"]
completed_state = "Shipped"
[review]
enabled = true
merge = "manual"
merge_method = "rebase"
required_approvals = 2
require_checks = false
repair = false
max_repairs = 0
delete_branch = false
poll_interval_s = 120
+++
x
"#,
    )
    .unwrap();
    assert_eq!(
        workflow.review,
        ReviewPolicy {
            enabled: true,
            merge: MergeMode::Manual,
            merge_method: MergeMethod::Rebase,
            required_approvals: 2,
            require_checks: false,
            repair: false,
            max_repairs: 0,
            delete_branch: false,
            poll_interval_s: 120,
        }
    );
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
}

#[test]
fn review_rules() {
    for (line, expected) in [
        (
            "enabled = \"yes\"",
            "/repo/WORKFLOW.md:4:11: field `review.enabled`: expected a boolean (true or false), found string",
        ),
        (
            "merge = \"sometimes\"",
            "/repo/WORKFLOW.md:4:9: field `review.merge`: unknown merge mode `sometimes`; expected \"auto\"",
        ),
        (
            "merge_method = \"fast-forward\"",
            "/repo/WORKFLOW.md:4:16: field `review.merge_method`: unknown merge method `fast-forward`; expected one of: squash, merge, rebase",
        ),
        (
            "required_approvals = -1",
            "/repo/WORKFLOW.md:4:22: field `review.required_approvals`: must be between 0 and 100, got -1",
        ),
        (
            "max_repairs = 1000",
            "/repo/WORKFLOW.md:4:15: field `review.max_repairs`: must be between 0 and 100, got 1000",
        ),
        (
            "poll_interval_s = 0",
            "/repo/WORKFLOW.md:4:19: field `review.poll_interval_s`: must be between 1 and 86400, got 0",
        ),
        (
            "require_checks = 1",
            "field `review.require_checks`: expected a boolean (true or false), found integer",
        ),
        (
            "repair = \"true\"",
            "field `review.repair`: expected a boolean",
        ),
        (
            "delete_branch = 0",
            "field `review.delete_branch`: expected a boolean",
        ),
        (
            "max_repair = 2",
            "/repo/WORKFLOW.md:4:1: field `review.max_repair`: unknown key `max_repair` in [review]; did you mean `max_repairs`?",
        ),
    ] {
        check_error(
            &format!("+++\nversion = 1\n[review]\n{line}\n+++\n"),
            expected,
        );
    }
    check_error(
        "+++\nversion = 1\nreview = true\n+++\n",
        "field `review`: expected a table, found boolean",
    );
}

#[test]
fn completed_state_is_required_and_must_mean_finished_when_review_is_enabled() {
    // Off: an undetermined completed_state is fine until a flow needs it.
    parse("+++\nversion = 1\n[tracker]\nterminal_states = [\"Shipped\"]\n+++\n").unwrap();
    check_error(
        "+++\nversion = 1\n[tracker]\nterminal_states = [\"Shipped\"]\n[review]\nenabled = true\n+++\n",
        "/repo/WORKFLOW.md:6:11: field `tracker.completed_state`: is required when [review] enabled = true and \"Done\" is not among terminal_states",
    );
    // The default "Done" is terminal by default, so enabling review needs nothing more.
    let workflow = parse("+++\nversion = 1\n[review]\nenabled = true\n+++\n").unwrap();
    assert_eq!(workflow.completed_state().unwrap(), "Done");
    for (state, clash) in [
        ("Todo", "a startable state"),
        ("in progress", "the in_progress_state"),
        ("In Review", "the success_state"),
    ] {
        check_error(
            &format!(
                "+++\nversion = 1\n[tracker]\ncompleted_state = \"{state}\"\n[review]\nenabled = true\n+++\n"
            ),
            &format!(
                "/repo/WORKFLOW.md:4:19: field `tracker.completed_state`: `{state}` is {clash}"
            ),
        );
    }
}

#[test]
fn the_review_lifecycle_needs_pull_request_handoffs() {
    parse("+++\nversion = 1\n[handoff]\nmode = \"branch\"\n+++\n").unwrap();
    check_error(
        "+++\nversion = 1\n[handoff]\nmode = \"branch\"\n[review]\nenabled = true\n+++\n",
        "/repo/WORKFLOW.md:4:8: field `handoff.mode`: is \"branch\" but [review] enabled = true needs pull requests",
    );
}

#[test]
fn read_first_paths_must_be_relative_and_exist() {
    check_error(
        "+++\nversion = 1\n[context]\nread_first = [\"/etc/passwd\"]\n+++\n",
        "/repo/WORKFLOW.md:4:15: field `context.read_first[0]`: `/etc/passwd` is absolute; give a path relative to the repository root",
    );
    check_error(
        "+++\nversion = 1\n[context]\nread_first = [\"../secrets.md\"]\n+++\n",
        "field `context.read_first[0]`: `../secrets.md` leaves the repository",
    );
    check_error(
        "+++\nversion = 1\n[context]\nread_first = [\"docs/missing.md\"]\n+++\n",
        "field `context.read_first[0]`: `docs/missing.md` does not exist under",
    );
}

#[test]
fn secret_looking_values_are_rejected() {
    check_error(
        "+++\nversion = 1\n[hooks]\nafter_create = \"curl -H 'Authorization: lin_api_0123456789abcdefghijk'\"\n+++\n",
        "/repo/WORKFLOW.md:4:16: field `hooks.after_create`: looks like a literal token (`lin_api_…`)",
    );
    check_error(
        "+++\nversion = 1\n+++\n\nUse token ghp_0123456789abcdefghijklmn to push.\n",
        "/repo/WORKFLOW.md:5:1: the instructions contain what looks like a literal token (`ghp_…`)",
    );
}

#[test]
fn sandbox_and_approval_keys_are_rejected_with_the_reason() {
    check_error(
        "+++\nversion = 1\n[agent]\napproval_policy = \"never\"\n+++\n",
        "/repo/WORKFLOW.md:4:19: field `agent.approval_policy`: sandbox and approval policy cannot be set in WORKFLOW.md: execution policy is inherited from the Codex runtime's own configuration",
    );
    check_error(
        "+++\nversion = 1\nsandbox = \"danger-full-access\"\n+++\n",
        "field `sandbox`: sandbox and approval policy cannot be set in WORKFLOW.md",
    );
}

#[test]
fn reload_keeps_the_last_known_good_snapshot() {
    let dir = TestDir::new("workflow-reload");
    let path = dir.write("WORKFLOW.md", "+++\nversion = 1\n+++\nfirst\n");
    let mut store = WorkflowStore::open(&path, dir.path()).unwrap();
    let before = store.current();
    assert_eq!(before.body, "first");

    assert!(!store.reload().unwrap(), "nothing changed yet");

    dir.write(
        "WORKFLOW.md",
        "+++\nversion = 1\n[execution]\nmax_turns = 0\n+++\nbroken\n",
    );
    let error = store.reload().unwrap_err();
    assert!(
        error.to_string().contains("field `execution.max_turns`"),
        "{error}"
    );
    assert_eq!(store.current().body, "first", "last known good kept");

    dir.write(
        "WORKFLOW.md",
        "+++\nversion = 1\n[execution]\nmax_turns = 3\n+++\nsecond\n",
    );
    assert!(store.reload().unwrap());
    assert_eq!(store.current().body, "second");
    assert_eq!(store.current().execution.max_turns, 3);
    assert_eq!(before.body, "first", "earlier holders keep their snapshot");

    std::fs::remove_file(&path).unwrap();
    assert!(
        store
            .reload()
            .unwrap_err()
            .to_string()
            .contains("cannot read workflow")
    );
    assert_eq!(store.current().body, "second");
}

fn service_config(dir: &TestDir, slug: Option<&str>) -> config::ServiceConfig {
    let slug_line = slug
        .map(|slug| format!("project_slug = \"{slug}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "id = \"demo\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"K\"\n{slug_line}",
        dir.path().display()
    );
    config::parse(&dir.join("maestro.toml"), &text, None).unwrap()
}

#[test]
fn project_slug_may_come_from_either_file_but_not_disagree() {
    let dir = TestDir::new("settings-slug");
    let with_slug =
        parse("+++\nversion = 1\n[tracker]\nproject_slug = \"from-workflow\"\n+++\n").unwrap();
    let without_slug = parse("body only").unwrap();

    let settings = settings::combine(service_config(&dir, None), with_slug.clone()).unwrap();
    assert_eq!(settings.project_slug, "from-workflow");
    let settings = settings::combine(
        service_config(&dir, Some("from-config")),
        without_slug.clone(),
    )
    .unwrap();
    assert_eq!(settings.project_slug, "from-config");
    let settings = settings::combine(
        service_config(&dir, Some("from-workflow")),
        with_slug.clone(),
    )
    .unwrap();
    assert_eq!(settings.project_slug, "from-workflow");

    let error = settings::combine(service_config(&dir, Some("other")), with_slug).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "project slug conflict: {} says tracker.project_slug = \"other\" but /repo/WORKFLOW.md says \"from-workflow\"; keep one of them",
            dir.join("maestro.toml").display()
        )
    );
    let error = settings::combine(service_config(&dir, None), without_slug).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("no project slug: set tracker.project_slug in")
    );
}

#[test]
fn provider_is_checked_only_when_workflow_md_names_one() {
    let dir = TestDir::new("settings-provider");
    let local = parse("+++\nversion = 1\n[tracker]\nprovider = \"local\"\n+++\n").unwrap();
    assert_eq!(local.tracker.provider, Some(config::Provider::Local));
    let unset = parse("body only").unwrap();
    let settings = settings::combine(service_config(&dir, Some("p")), unset).unwrap();
    assert_eq!(settings.config.tracker.provider, config::Provider::Linear);

    let error = settings::combine(service_config(&dir, Some("p")), local).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "tracker provider conflict: {0} says provider = \"linear\" but /repo/WORKFLOW.md says \"local\"; either set provider = \"local\" in the [tracker] table of {0}, or remove `provider` from the [tracker] front matter of /repo/WORKFLOW.md so that {0} decides (to leave a committed WORKFLOW.md alone, copy it to an untracked path such as tmp/WORKFLOW.md, edit the copy, and set workflow_path to it)",
            dir.join("maestro.toml").display()
        )
    );
    check_error(
        "+++\nversion = 1\n[tracker]\nprovider = \"jira\"\n+++\n",
        "field `tracker.provider`: unknown tracker provider `jira`; expected \"linear\" or \"local\"",
    );
}

#[test]
fn the_minimal_fixture_needs_only_a_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = workflow::load(&root.join("fixtures/workflow/minimal.md"), root).unwrap();
    assert_eq!(workflow.execution, workflow::Execution::default());
    assert!(workflow.body.starts_with("Fix the issue you are given."));
}
