//! The command line as an operator meets it: the real binary, its stdout, stderr and exit code.

use maestro::exit::Exit;

use crate::support::dir::TestDir;
use crate::support::{maestro, maestro_command, stderr, stdout};

#[test]
fn help_and_version_exit_zero() {
    let dir = TestDir::new("cli-help");
    for args in [&["--help"][..], &["-h"], &[]] {
        let output = maestro(dir.path(), args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(
            stdout(&output).contains("Usage: maestro [--config PATH] <COMMAND>"),
            "{args:?}"
        );
        assert!(stdout(&output).contains("Exit codes:"));
    }
    let output = maestro(dir.path(), &["--version"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stdout(&output).starts_with(&format!("maestro {}", env!("CARGO_PKG_VERSION"))),
        "{}",
        stdout(&output)
    );
}

#[test]
fn every_subcommand_has_help_with_purpose_options_and_example() {
    let dir = TestDir::new("cli-sub-help");
    let cases: [(&[&str], &str); 6] = [
        (&["protocol", "--help"], "maestro protocol - "),
        (
            &["protocol", "probe", "--help"],
            "maestro protocol probe - ",
        ),
        (&["status", "--help"], "maestro status - "),
        (&["run", "--help"], "maestro run --once - "),
        (&["daemon", "--help"], "maestro daemon - "),
        (&["show", "--help"], "maestro show - "),
    ];
    for (args, purpose) in cases {
        let output = maestro(dir.path(), args);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(text.starts_with(purpose), "{args:?}: {text}");
        assert!(
            text.contains("Options:") || text.contains("Subcommands:"),
            "{args:?}"
        );
        assert!(text.contains("Example:"), "{args:?}");
    }
}

#[test]
fn usage_errors_are_one_line_and_exit_two() {
    let dir = TestDir::new("cli-usage");
    let cases: [(&[&str], &str); 6] = [
        (
            &["frobnicate"],
            "maestro: unknown command 'frobnicate'; expected one of: init, doctor, protocol, status, show, run, daemon, demo (see 'maestro --help')\n",
        ),
        (
            &["status", "--verbose"],
            "maestro: unknown option '--verbose' for 'maestro status'; expected one of: --config, --json, --limit (see 'maestro status --help')\n",
        ),
        (
            &["status", "--limit"],
            "maestro: --limit needs a value: a whole number (see 'maestro status --help')\n",
        ),
        (
            &["status", "--limit", "ten"],
            "maestro: --limit expects a whole number, got 'ten' (see 'maestro status --help')\n",
        ),
        (
            &["run"],
            "maestro: 'run' needs --once (for continuous operation use 'maestro daemon') (see 'maestro run --help')\n",
        ),
        (
            &["daemon", "--poll-interval-s", "-1"],
            "maestro: --poll-interval-s expects a whole number, got '-1' (see 'maestro daemon --help')\n",
        ),
    ];
    for (args, expected) in cases {
        let output = maestro(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&output), expected, "{args:?}");
        assert_eq!(stdout(&output), "", "{args:?}");
    }
}

#[test]
fn missing_config_names_the_paths_tried_and_exits_two() {
    let dir = TestDir::new("cli-no-config");
    let output = maestro(dir.path(), &["status"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("no maestro config found (tried: "), "{text}");
    assert!(text.contains("tmp/maestro.toml"), "{text}");
    assert!(text.contains("xdg-config/maestro/maestro.toml"), "{text}");
}

#[test]
fn invalid_config_is_reported_with_file_line_and_field() {
    let dir = TestDir::new("cli-bad-config");
    let path = dir.write(
        "tmp/maestro.toml",
        "id = \"demo\"\nrepo_root = \"/srv/demo\"\n[tracker]\napi_key_env_var = \"K\"\napi_ulr = \"x\"\n",
    );
    let output = maestro(dir.path(), &["daemon"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(&format!(
            "{}:5:1: field `tracker.api_ulr`: unknown key `api_ulr` in [tracker]; did you mean `api_url`?",
            path.display()
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn readme_documents_every_exit_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for exit in Exit::ALL {
        let row = format!("| {} | {} |", exit.code(), exit.meaning());
        assert!(readme.contains(&row), "README.md lacks the row: {row}");
    }
}

/// `/dev/full`, opened for writing: every write fails with ENOSPC.
fn full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// Issue #11, item 8: printing the usage error to a full stderr panicked
/// (`failed printing to stderr`, exit 101).
#[test]
fn an_unwritable_stderr_never_panics() {
    let dir = TestDir::new("cli-stderr-full");
    let cases: [(&[&str], Exit); 3] = [
        (&["--bogus"], Exit::Usage),
        (&["status"], Exit::Usage),
        (
            &["run", "--once", "--dry-run", "--config", "missing.toml"],
            Exit::Usage,
        ),
    ];
    for (args, exit) in cases {
        let output = maestro_command(dir.path(), args)
            .stderr(full())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(exit.code().into()), "{args:?}");
    }
    // Both streams full: the stdout failure is reported to a stderr that cannot take it either.
    let output = maestro_command(dir.path(), &["--version"])
        .stdout(full())
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(Exit::Failure.code().into()));
}

/// A closed stdout is success (`maestro --help | head -0`), and a full stdout is a reported
/// failure, never a panic.
#[test]
fn a_closed_stdout_is_success_and_a_full_one_a_failure() {
    let dir = TestDir::new("cli-stdout-closed");
    let mut child = maestro_command(dir.path(), &["--help"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");

    let output = maestro_command(dir.path(), &["--version"])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(Exit::Failure.code().into()));
    assert!(
        stderr(&output).starts_with("maestro: cannot write to stdout: "),
        "{}",
        stderr(&output)
    );
}

/// The logger writes to stderr too: a full stderr loses the log lines, never the command.
#[test]
fn logging_to_an_unwritable_stderr_never_panics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = maestro_command(
        root,
        &[
            "run",
            "--once",
            "--dry-run",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    )
    .env("RUST_LOG", "trace")
    .stderr(full())
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).ends_with("dry run: nothing was changed\n"));
}

// Issue #16, item 5: rough edges an operator met in the first hour. Each test failed on main.

/// A git checkout with a WORKFLOW.md and a config at `tmp/maestro.toml` for the local tracker
/// (one issue file), `[tracker]` lines replaced by `tracker`.
fn local_project(name: &str, workflow: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write(
        "repo/WORKFLOW.md",
        &format!("+++\nversion = 1\n{workflow}+++\nWork carefully.\n"),
    );
    dir.write(
        "issues/DEMO-1.md",
        "+++\nidentifier = \"DEMO-1\"\ntitle = \"One\"\nstate = \"Todo\"\ncreated = \"2026-01-03T09:00:00Z\"\n+++\n",
    );
    crate::support::git::git(&dir.join("repo"), &["init", "--quiet"]);
    dir.write(
        "repo/tmp/maestro.toml",
        "id = \"demo\"\nrepo_root = \"..\"\n[tracker]\nprovider = \"local\"\nproject_slug = \"demo\"\nissues_dir = \"../../issues\"\n",
    );
    dir
}

/// `status` against paths that do not exist said nothing and exited 0: an empty table looked
/// like a healthy project.
#[test]
fn status_warns_about_missing_repo_root_and_workspace_root() {
    let dir = TestDir::new("cli-status-paths");
    dir.write(
        "tmp/maestro.toml",
        "id = \"demo\"\nrepo_root = \"/nonexistent/repo\"\nworkspace_root = \"/nonexistent/lanes\"\n[tracker]\napi_key_env_var = \"K\"\n",
    );
    let output = maestro(dir.path(), &["status"]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "a missing repo_root is a config error"
    );
    let config = dir.join("tmp/maestro.toml");
    assert_eq!(
        stderr(&output),
        format!(
            "maestro: warning: repo_root /nonexistent/repo (from {0}) does not exist or is not a directory; run, dry run and daemon will refuse this config (check it with 'maestro doctor')\n\
             maestro: warning: workspace_root /nonexistent/lanes (from {0}) does not exist: nothing has run with this config yet, or the path is wrong\n",
            config.display()
        )
    );
    assert!(
        stdout(&output).contains("no lane is running"),
        "the snapshot still prints"
    );

    // A real repository whose workspace_root does not exist yet: a warning, exit 0.
    std::fs::create_dir_all(dir.join("repo")).unwrap();
    dir.write(
        "tmp/maestro.toml",
        "id = \"demo\"\nrepo_root = \"../repo\"\n[tracker]\napi_key_env_var = \"K\"\n",
    );
    let output = maestro(dir.path(), &["status", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        stderr(&output).contains("/repo/.workspaces (from "),
        "{}",
        stderr(&output)
    );
    serde_json::from_str::<serde_json::Value>(&stdout(&output)).expect("stdout stays JSON");
}

/// The dry run accepted a repo_root that is not a git repository, and a missing repo_root was
/// reported as a missing WORKFLOW.md.
#[test]
fn the_dry_run_refuses_a_repo_root_that_is_no_checkout_or_missing() {
    let dir = local_project("cli-repo-root", "");
    let config = dir.join("repo/tmp/maestro.toml");
    std::fs::remove_dir_all(dir.join("repo/.git")).unwrap();
    let output = maestro(&dir.join("repo"), &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "maestro: invalid config {}: field `repo_root` ({}) is not the top of a git checkout (it has no .git); set repo_root to the directory `git clone` made (lanes are cloned from it)\n",
            config.display(),
            dir.join("repo").display()
        )
    );
    assert_eq!(stdout(&output), "");

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("repo_root = \"..\"", "repo_root = \"../gone\""),
    )
    .unwrap();
    let output = maestro(&dir.join("repo"), &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("field `repo_root` (") && message.contains("/repo/gone) does not exist"),
        "{message}"
    );
    assert!(!message.contains("WORKFLOW.md"), "{message}");
}

/// `--config /nope/maestro.toml` said "no maestro config found … pass --config PATH", as if no
/// path had been given.
#[test]
fn a_config_path_that_does_not_exist_is_named_as_such() {
    let dir = TestDir::new("cli-config-missing");
    let output = maestro(dir.path(), &["status", "--config", "/nope/maestro.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "maestro: config file /nope/maestro.toml (given with --config) does not exist; check the path, or run 'maestro init' to write tmp/maestro.toml\n"
    );
    let output = maestro(dir.path(), &["status", "--config", "."]);
    assert!(
        stderr(&output).contains(
            "(given with --config) is a directory; pass the path of the maestro.toml file"
        ),
        "{}",
        stderr(&output)
    );
}

/// An unreachable Linear (`Name or service not known`, a refused connection) came without a
/// hint of what to check.
#[test]
fn an_unreachable_linear_says_what_to_check() {
    let dir = TestDir::new("cli-linear-unreachable");
    let dead = crate::support::ports::DeadPort::new();
    let port = dead.port();
    dir.write("repo/WORKFLOW.md", "+++\nversion = 1\n+++\nWork.\n");
    crate::support::git::git(&dir.join("repo"), &["init", "--quiet"]);
    dir.write(
        "repo/tmp/maestro.toml",
        &format!(
            "id = \"demo\"\nrepo_root = \"..\"\n[tracker]\nproject_slug = \"abc\"\napi_key_env_var = \"MAESTRO_TEST_LINEAR_KEY\"\napi_url = \"http://127.0.0.1:{port}/graphql\"\n"
        ),
    );
    let output = maestro_command(&dir.join("repo"), &["run", "--once", "--dry-run"])
        .env("MAESTRO_TEST_LINEAR_KEY", "lin_test_key")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with("maestro: cannot reach linear for ProjectBySlugId: ")
            && message.ends_with(
                "; check this host's network and DNS, the proxy variables (HTTPS_PROXY, ALL_PROXY, NO_PROXY) and tracker.api_url\n"
            ),
        "{message}"
    );
}

/// `stauts` got no did-you-mean, and `maestro --config X status` was rejected.
#[test]
fn typos_get_a_suggestion_and_global_options_come_first_too() {
    let dir = TestDir::new("cli-typos");
    let output = maestro(dir.path(), &["stauts"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "maestro: unknown command 'stauts' (did you mean 'status'?); expected one of: init, doctor, protocol, status, show, run, daemon, demo (see 'maestro --help')\n"
    );
    let output = maestro(dir.path(), &["status", "--jsno"]);
    assert!(
        stderr(&output).starts_with(
            "maestro: unknown option '--jsno' (did you mean '--json'?) for 'maestro status'"
        ),
        "{}",
        stderr(&output)
    );

    dir.write(
        "elsewhere/maestro.toml",
        &format!(
            "id = \"demo\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"K\"\n",
            dir.path().display()
        ),
    );
    let output = maestro(
        dir.path(),
        &["--config", "elsewhere/maestro.toml", "status", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let snapshot: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(snapshot["project_id"], "demo");
    let output = maestro(
        dir.path(),
        &["--config", "a.toml", "status", "--config", "b.toml"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "maestro: --config is given twice (before and after the command); give it once (see 'maestro status --help')\n"
    );
    let output = maestro(dir.path(), &["--config", "a.toml", "demo"]);
    assert_eq!(
        stderr(&output),
        "maestro: '--config' does not apply to 'maestro demo'; it reads no maestro.toml (see 'maestro demo --help')\n"
    );
}

/// Switching maestro.toml to `provider = "local"` collided with a WORKFLOW.md saying `linear`,
/// and the error only said "make them agree".
#[test]
fn a_provider_conflict_names_both_ways_out() {
    let dir = local_project("cli-provider", "[tracker]\nprovider = \"linear\"\n");
    let output = maestro(&dir.join("repo"), &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2));
    let config = dir.join("repo/tmp/maestro.toml");
    let workflow = dir.join("repo/WORKFLOW.md");
    assert_eq!(
        stderr(&output),
        format!(
            "maestro: tracker provider conflict: {0} says provider = \"local\" but {1} says \"linear\"; either set provider = \"linear\" in the [tracker] table of {0}, or remove `provider` from the [tracker] front matter of {1} so that {0} decides (to leave a committed WORKFLOW.md alone, copy it to an untracked path such as tmp/WORKFLOW.md, edit the copy, and set workflow_path to it)\n",
            config.display(),
            workflow.display()
        )
    );
}

/// Review repairs re-enter the retained lane, which only local lanes keep: SSH worker hosts
/// with `[review] repair` is refused at load, naming both ways out, instead of failing every
/// repair later.
#[test]
fn review_repairs_with_ssh_hosts_are_refused_at_load() {
    let dir = local_project(
        "cli-remote-repairs",
        "[review]\nenabled = true\n[tracker]\nterminal_states = [\"Done\"]\n",
    );
    let config = dir.join("repo/tmp/maestro.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}[worker]\nssh_hosts = [\"build-1\"]\nworkspace_root = \"/srv/lanes\"\n"),
    )
    .unwrap();
    let output = maestro(&dir.join("repo"), &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("runs lanes on [worker] ssh_hosts")
            && text.contains("set repair = false under [review]")
            && text.contains("remove [worker] ssh_hosts"),
        "{text}"
    );
}

/// `MAESTRO_CODEX_BIN` worked for the tests but not for the binary. It now names the codex to
/// run wherever `[agent] command`'s program is the bare word `codex`; an explicit path wins.
#[test]
fn maestro_codex_bin_stands_in_for_a_bare_codex() {
    let fake = crate::support::app_server::fake_app_server();
    let dir = local_project("cli-codex-bin", "");
    let doctor = |dir: &TestDir| {
        let output = maestro_command(&dir.join("repo"), &["doctor", "--offline"])
            .env("MAESTRO_CODEX_BIN", &fake)
            .output()
            .unwrap();
        stdout(&output)
            .lines()
            .find(|line| {
                line.get(6..)
                    .is_some_and(|rest| rest.starts_with("codex: "))
            })
            .unwrap()
            .to_string()
    };
    assert_eq!(
        doctor(&dir),
        format!(
            "ok    codex: `{}` is codex-cli 0.0.0-fake; Maestro is built and tested for codex-cli 0.169.0",
            fake.display()
        )
    );
    let config = dir.join("repo/tmp/maestro.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}[agent]\ncommand = \"/opt/codex/bin/codex app-server\"\n"),
    )
    .unwrap();
    assert_eq!(
        doctor(&dir),
        "FAIL  codex: cannot run '/opt/codex/bin/codex': No such file or directory (os error 2)"
    );
}

/// `run --once` on `fixtures/demo/maestro.toml` wrote state changes into tracked files under
/// `fixtures/demo/issues/`. Live runs now refuse local issue files that git tracks; the dry run
/// still works on them.
#[test]
fn a_live_run_refuses_issue_files_that_git_tracks() {
    let dir = local_project("cli-tracked-issues", "");
    let repo = dir.join("repo");
    // Move the issues into the repository and track them, as fixtures/demo/issues is.
    crate::support::tree::copy(&dir.join("issues"), &repo.join("issues"));
    let config = repo.join("tmp/maestro.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("../../issues", "../issues")).unwrap();
    crate::support::git::git(&repo, &["add", "issues", "WORKFLOW.md"]);
    for args in [&["run", "--once"][..], &["daemon"]] {
        let output = maestro(&repo, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            stderr(&output),
            format!(
                "maestro: invalid config {}: field `tracker.issues_dir` ({}) holds files git tracks in repo_root (`issues`); a live run writes issue states, labels and comments into them and would dirty the checkout: copy the directory somewhere untracked (for example `cp -r issues tmp/issues`) and point issues_dir at the copy, or use `run --once --dry-run`, which writes nothing\n",
                config.display(),
                repo.join("issues").display()
            ),
            "{args:?}"
        );
    }
    assert_eq!(
        crate::support::git::git(&repo, &["status", "--porcelain", "--", "issues"]),
        "A  issues/DEMO-1.md"
    );
    let output = maestro(&repo, &["run", "--once", "--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}
