//! `maestro doctor` (issue #16, item 3) as an operator runs it: the real binary against a real
//! git checkout, the fake Linear and the fake GitHub, one line per check, the exit code.

use std::path::PathBuf;
use std::process::Output;

use serde_json::json;

use crate::support::app_server::fake_app_server;
use crate::support::dir::TestDir;
use crate::support::fake_github::FakeGithub;
use crate::support::fake_http::{FakeHttp, Reply};
use crate::support::fake_linear::{API_KEY, FakeLinear, SLUG_ID, VIEWER_NAME, World};
use crate::support::git::{git, repos};
use crate::support::{maestro_command, stderr, stdout};

const KEY_VAR: &str = "MAESTRO_TEST_LINEAR_KEY";
const TOKEN_VAR: &str = "MAESTRO_TEST_GITHUB_TOKEN";
pub(crate) const TOKEN: &str = "ghp_doctor_test_token_never_printed";

/// A project whose every check can pass: a checkout with WORKFLOW.md and a GitHub-shaped
/// origin, the fakes, and a maestro.toml naming them.
pub(crate) struct Project {
    pub(crate) dir: TestDir,
    linear: FakeLinear,
    github: FakeGithub,
    pub(crate) config: PathBuf,
    pub(crate) source: PathBuf,
}

/// `workflow` is extra WORKFLOW.md front matter; `config` replaces lines of maestro.toml.
fn project(name: &str, workflow: &str, edit: impl Fn(String) -> String) -> Project {
    let dir = TestDir::new(name);
    let front = format!(
        "+++\nversion = 1\n[tracker]\nproject_slug = \"{SLUG_ID}\"\n{workflow}+++\nWork on the issue.\n"
    );
    let repos = repos(
        dir.path(),
        &[
            ("README.md", "demo\n"),
            ("WORKFLOW.md", &front),
            (".gitignore", "/.workspaces/\n"),
        ],
    );
    // The handoff check reads the repository from origin; doctor never fetches from it.
    git(
        &repos.source,
        &[
            "remote",
            "set-url",
            "origin",
            "git@github.com:acme/widgets.git",
        ],
    );
    let linear = FakeLinear::start(World::standard());
    let github = FakeGithub::start();
    github.add_repo("acme/widgets");
    let port = crate::support::ports::free_port();
    let text = format!(
        "id = \"demo\"\nrepo_root = \"{}\"\n\
         [tracker]\napi_key_env_var = \"{KEY_VAR}\"\napi_url = \"{}\"\n\
         [github]\ntoken_env_var = \"{TOKEN_VAR}\"\napi_url = \"{}\"\n\
         [agent]\ncommand = \"{} app-server\"\n\
         [operator_http]\nlisten_address = \"127.0.0.1:{port}\"\n",
        repos.source.display(),
        linear.url(),
        github.url(),
        fake_app_server().display(),
    );
    let config = dir.write("maestro.toml", &edit(text));
    Project {
        dir,
        linear,
        github,
        config,
        source: repos.source,
    }
}

pub(crate) fn plain(name: &str) -> Project {
    project(name, "", |text| text)
}

/// Runs `maestro doctor --config <config> <extra>` with the key and token set as given.
pub(crate) fn doctor(
    project: &Project,
    extra: &[&str],
    key: Option<&str>,
    token: Option<&str>,
) -> Output {
    let config = project.config.display().to_string();
    let mut args = vec!["doctor", "--config", config.as_str()];
    args.extend(extra);
    let mut command = maestro_command(project.dir.path(), &args);
    command.env_remove(KEY_VAR).env_remove(TOKEN_VAR);
    if let Some(key) = key {
        command.env(KEY_VAR, key);
    }
    if let Some(token) = token {
        command.env(TOKEN_VAR, token);
    }
    command.output().unwrap()
}

/// The line of check `name` (`"ok    name: …"`), and the `fix:` line under it, if any.
pub(crate) fn check<'a>(text: &'a str, name: &str) -> (&'a str, Option<&'a str>) {
    let lines: Vec<&str> = text.lines().collect();
    let index = lines
        .iter()
        .position(|line| {
            line.get(6..)
                .is_some_and(|rest| rest.starts_with(&format!("{name}: ")))
        })
        .unwrap_or_else(|| panic!("no line for check `{name}` in:\n{text}"));
    let fix = lines
        .get(index + 1)
        .and_then(|line| line.strip_prefix("      fix: "));
    (lines[index], fix)
}

pub(crate) fn assert_status(text: &str, name: &str, status: &str) {
    let (line, _) = check(text, name);
    assert!(
        line.starts_with(&format!("{status:<5} {name}: ")),
        "`{name}` should be {status}: {line}\n{text}"
    );
}

const ALL: [&str; 13] = [
    "config",
    "repo_root",
    "workflow",
    "workspace_root",
    "codex",
    "secret MAESTRO_TEST_LINEAR_KEY",
    "secret MAESTRO_TEST_GITHUB_TOKEN",
    "operator_http",
    "linear key",
    "project",
    "states",
    "labels",
    "github",
];

#[test]
fn every_check_passes_against_the_fake_linear_and_github() {
    let project = plain("doctor-ok");
    let output = doctor(&project, &[], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    for name in ALL {
        assert_status(&text, name, "ok");
    }
    assert_eq!(
        check(&text, "linear key").0,
        format!("ok    linear key: valid: {KEY_VAR} authenticates as {VIEWER_NAME}")
    );
    assert_eq!(
        check(&text, "project").0,
        format!("ok    project: Demo (slug id {SLUG_ID}; teams ABC)")
    );
    assert_eq!(
        check(&text, "states").0,
        "ok    states: all 6 states WORKFLOW.md names exist in team ABC"
    );
    assert_eq!(
        check(&text, "github").0,
        format!("ok    github: {TOKEN_VAR} can read acme/widgets")
    );
    assert_eq!(
        check(&text, "codex").0,
        format!(
            "ok    codex: `{}` is codex-cli 0.0.0-fake; Maestro is built and tested for codex-cli 0.169.0",
            fake_app_server().display()
        )
    );
    assert!(check(&text, "repo_root").0.ends_with(&format!(
        "{} is a git checkout (origin git@github.com:acme/widgets.git)",
        project.source.display()
    )));
    assert!(
        text.ends_with("maestro doctor: no check failed (13 ok, 0 skipped)\n"),
        "{text}"
    );
    // Secret values are sent where a run sends them and shown nowhere.
    let everything = format!("{text}{}", stderr(&output));
    assert!(!everything.contains(API_KEY) && !everything.contains(TOKEN));
    // Read-only: the Linear key was proven with `viewer`, nothing was changed anywhere.
    let operations = project.linear.operations();
    assert_eq!(operations.first().map(String::as_str), Some("Viewer"));
    for expected in [
        "ProjectBySlugId",
        "TeamWorkflowStates",
        "LabelsUsableByTeam",
    ] {
        assert!(operations.iter().any(|op| op == expected), "{operations:?}");
    }
    assert!(project.linear.mutations().is_empty());
    assert!(
        project.linear.violations().is_empty(),
        "{:?}",
        project.linear.violations()
    );
    let github: Vec<String> = project
        .github
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.path()))
        .collect();
    assert_eq!(github, ["GET /repos/acme/widgets"]);
    assert!(!project.dir.join("workspaces").exists());
}

#[test]
fn misspelled_states_and_labels_get_a_did_you_mean_and_the_fix() {
    let project = project(
        "doctor-names",
        "success_state = \"In Reveiw\"\nneeds_attention_label = \"maestro:needs-atention\"\n",
        |text| text,
    );
    let output = doctor(&project, &[], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "states");
    assert_eq!(
        line,
        "FAIL  states: team ABC has no state \"In Reveiw\" (tracker.success_state); did you mean \"In Review\"?"
    );
    assert_eq!(
        fix,
        Some(
            "correct the name in WORKFLOW.md, or create the state in the team's workflow settings"
        )
    );
    let (line, fix) = check(&text, "labels");
    assert_eq!(
        line,
        "FAIL  labels: no label \"maestro:needs-atention\" (tracker.needs_attention_label) is usable on team ABC's issues; did you mean \"maestro:needs-attention\"?"
    );
    assert!(fix.unwrap().starts_with("create the label"), "{text}");
    for name in ["linear key", "project", "github", "operator_http"] {
        assert_status(&text, name, "ok");
    }
    assert!(
        text.ends_with(
            "maestro doctor: 2 FAILED (11 ok, 0 skipped); fix them in order, the first may cause the others\n"
        ),
        "{text}"
    );
}

#[test]
fn a_wrong_key_and_an_unreadable_repository_fail_with_what_to_do() {
    let project = plain("doctor-refused");
    let fresh = FakeGithub::start();
    let config = std::fs::read_to_string(&project.config)
        .unwrap()
        .replace(&project.github.url(), &fresh.url());
    std::fs::write(&project.config, config).unwrap();
    let output = doctor(
        &project,
        &[],
        Some("lin_api_wrong_key_0123456789abcd"),
        Some(TOKEN),
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "linear key");
    assert!(
        line.starts_with("FAIL  linear key: linear refused the API key in Viewer: "),
        "{line}"
    );
    assert_eq!(
        fix,
        Some(
            "create a personal API key in Linear (Settings, Security & access) and export it as MAESTRO_TEST_LINEAR_KEY"
        )
    );
    for name in ["project", "states", "labels"] {
        assert_eq!(
            check(&text, name).0,
            format!("skip  {name}: needs a working Linear key")
        );
    }
    let (line, fix) = check(&text, "github");
    assert!(
        line.starts_with("FAIL  github: GitHub has no such repository: ")
            && line.ends_with("(the token cannot read acme/widgets)"),
        "{line}"
    );
    assert!(
        fix.unwrap()
            .starts_with("give the token in MAESTRO_TEST_GITHUB_TOKEN read access to acme/widgets"),
        "{text}"
    );
    assert!(!text.contains("lin_api_wrong_key") && !text.contains(TOKEN));
}

#[test]
fn unset_secrets_fail_and_skip_what_needs_them() {
    let project = plain("doctor-unset");
    let output = doctor(&project, &[], None, None);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "secret MAESTRO_TEST_LINEAR_KEY");
    assert_eq!(
        line,
        "FAIL  secret MAESTRO_TEST_LINEAR_KEY: MAESTRO_TEST_LINEAR_KEY (named by tracker.api_key_env_var) is unset or empty"
    );
    assert_eq!(
        fix,
        Some(
            "export MAESTRO_TEST_LINEAR_KEY=<a Linear personal API key> where maestro runs (your shell, or the systemd unit's EnvironmentFile)"
        )
    );
    assert_status(&text, "secret MAESTRO_TEST_GITHUB_TOKEN", "FAIL");
    assert_eq!(
        check(&text, "linear key").0,
        "skip  linear key: MAESTRO_TEST_LINEAR_KEY is unset (see secret MAESTRO_TEST_LINEAR_KEY)"
    );
    assert_status(&text, "github", "skip");
    assert!(project.linear.requests().is_empty());
    assert!(project.github.requests().is_empty());
}

#[test]
fn offline_asks_neither_linear_nor_github() {
    let project = plain("doctor-offline");
    let output = doctor(&project, &["--offline"], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    for name in ["linear key", "project", "states", "labels", "github"] {
        assert_eq!(check(&text, name).0, format!("skip  {name}: --offline"));
    }
    for name in &ALL[..8] {
        assert_status(&text, name, "ok");
    }
    assert!(project.linear.requests().is_empty());
    assert!(project.github.requests().is_empty());
}

#[test]
fn branch_handoff_needs_no_github_token() {
    let project = project("doctor-branch", "[handoff]\nmode = \"branch\"\n", |text| {
        text
    });
    let output = doctor(&project, &[], Some(API_KEY), None);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert_eq!(
        check(&text, "secret MAESTRO_TEST_GITHUB_TOKEN").0,
        "skip  secret MAESTRO_TEST_GITHUB_TOKEN: named by github.token_env_var, but WORKFLOW.md says [handoff] mode = \"branch\", so no GitHub token is read"
    );
    assert_eq!(
        check(&text, "github").0,
        "skip  github: WORKFLOW.md says [handoff] mode = \"branch\": handoffs are checked with git, not GitHub"
    );
    assert!(project.github.requests().is_empty());
}

#[test]
fn an_unreachable_linear_says_what_to_check() {
    let project = plain("doctor-unreachable");
    let dead = crate::support::ports::DeadPort::new();
    let port = dead.port();
    let config = std::fs::read_to_string(&project.config).unwrap().replace(
        &project.linear.url(),
        &format!("http://127.0.0.1:{port}/graphql"),
    );
    std::fs::write(&project.config, config).unwrap();
    let output = doctor(&project, &[], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "linear key");
    assert!(
        line.starts_with("FAIL  linear key: cannot reach linear for Viewer: ")
            && line.ends_with(
                "; check this host's network and DNS, the proxy variables (HTTPS_PROXY, ALL_PROXY, NO_PROXY) and tracker.api_url"
            ),
        "{line}"
    );
    assert!(
        fix.unwrap()
            .contains(&format!("http://127.0.0.1:{port}/graphql"))
    );
}

#[test]
fn the_operator_address_is_free_served_by_maestro_or_taken() {
    let project = plain("doctor-address");
    // Something that answers like a maestro daemon's endpoint.
    let daemon = FakeHttp::start(|_| {
        Reply::json(
            200,
            &json!({"status": "ok", "last_tick_at": null, "seconds_since_last_tick": null, "ticks": 3}),
        )
    });
    let with_address = |address: String| {
        let text = std::fs::read_to_string(&project.config).unwrap();
        let start = text.find("listen_address = ").unwrap();
        let mut text = text[..start].to_string();
        text.push_str(&format!("listen_address = \"{address}\"\n"));
        std::fs::write(&project.config, text).unwrap();
    };
    with_address(daemon.address().to_string());
    let text = stdout(&doctor(
        &project,
        &["--offline"],
        Some(API_KEY),
        Some(TOKEN),
    ));
    assert_eq!(
        check(&text, "operator_http").0,
        format!(
            "ok    operator_http: {} is served by a running maestro daemon (its /healthz answered)",
            daemon.address()
        )
    );
    // Something else holds the port: it never answers, and the doctor says so.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    with_address(other.local_addr().unwrap().to_string());
    let output = doctor(&project, &["--offline"], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "operator_http");
    assert_eq!(
        line,
        format!(
            "FAIL  operator_http: {} is in use by another program",
            other.local_addr().unwrap()
        )
    );
    assert!(
        fix.unwrap()
            .starts_with("stop that program, or set [operator_http] listen_address")
    );
}

#[test]
fn without_a_config_it_points_at_init() {
    let dir = TestDir::new("doctor-no-config");
    let output = maestro_command(dir.path(), &["doctor"]).output().unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let (line, fix) = check(&text, "config");
    assert!(
        line.starts_with("FAIL  config: no maestro config found (tried: "),
        "{line}"
    );
    assert_eq!(
        fix,
        Some("run 'maestro init' in the repository's checkout, or pass --config PATH")
    );
    for name in &ALL[1..] {
        if name.starts_with("secret") {
            continue;
        }
        assert_eq!(
            check(&text, name).0,
            format!("skip  {name}: needs a valid maestro.toml")
        );
    }
}

#[test]
fn repository_workspace_and_codex_problems_are_each_named() {
    // repo_root that does not exist: reported as such, and WORKFLOW.md is not blamed.
    let project = plain("doctor-repo");
    let missing = project.dir.join("nowhere");
    let config = std::fs::read_to_string(&project.config).unwrap();
    std::fs::write(
        &project.config,
        config.replace(
            &project.source.display().to_string(),
            &missing.display().to_string(),
        ),
    )
    .unwrap();
    let text = stdout(&doctor(
        &project,
        &["--offline"],
        Some(API_KEY),
        Some(TOKEN),
    ));
    assert!(
        check(&text, "repo_root").0.ends_with(
            "does not exist; set repo_root to the path of the repository's git checkout"
        ),
        "{text}"
    );
    assert_eq!(
        check(&text, "workflow").0,
        "skip  workflow: needs repo_root, where WORKFLOW.md is read"
    );

    // A plain directory is not a checkout; a checkout without origin has nowhere to push.
    std::fs::create_dir_all(&missing).unwrap();
    let text = stdout(&doctor(
        &project,
        &["--offline"],
        Some(API_KEY),
        Some(TOKEN),
    ));
    assert!(
        check(&text, "repo_root")
            .0
            .contains("is not the top of a git checkout (it has no .git)"),
        "{text}"
    );
    std::fs::write(&project.config, &config).unwrap();
    git(&project.source, &["remote", "remove", "origin"]);
    let text = stdout(&doctor(
        &project,
        &["--offline"],
        Some(API_KEY),
        Some(TOKEN),
    ));
    let (line, fix) = check(&text, "repo_root");
    assert!(line.ends_with("has no `origin` remote"), "{line}");
    assert!(fix.unwrap().contains("remote add origin"), "{text}");

    // A workspace_root in the tracked tree, and a codex that is not there.
    let tracked = project.source.join("docs");
    std::fs::create_dir_all(&tracked).unwrap();
    std::fs::write(tracked.join("a.md"), "a\n").unwrap();
    git(&project.source, &["add", "docs"]);
    git(&project.source, &["commit", "--quiet", "-m", "docs"]);
    std::fs::write(
        &project.config,
        config
            .replace(
                "[tracker]",
                &format!("workspace_root = \"{}\"\n[tracker]", tracked.display()),
            )
            .replace(
                &format!("{} app-server", fake_app_server().display()),
                "/nonexistent/codex app-server",
            ),
    )
    .unwrap();
    let output = doctor(&project, &["--offline"], Some(API_KEY), Some(TOKEN));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        check(&text, "workspace_root")
            .0
            .contains("git tracks files under `docs`"),
        "{text}"
    );
    let (line, fix) = check(&text, "codex");
    assert_eq!(
        line,
        "FAIL  codex: cannot run '/nonexistent/codex': No such file or directory (os error 2)"
    );
    assert!(
        fix.unwrap()
            .starts_with("install codex (npm install --prefix"),
        "{text}"
    );
}
