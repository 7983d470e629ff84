//! `maestro init` (issue #16, item 4): the first config for a real git checkout, never an
//! overwrite, and a clone whose `git status` stays clean.

use std::path::Path;

use maestro::config;

use crate::support::dir::TestDir;
use crate::support::git::{git, repos};
use crate::support::{maestro_command, stderr, stdout};

fn init(cwd: &Path) -> std::process::Output {
    maestro_command(cwd, &["init"]).output().unwrap()
}

fn exclude_file(source: &Path) -> String {
    std::fs::read_to_string(source.join(".git/info/exclude")).unwrap_or_default()
}

#[test]
fn init_writes_a_config_for_the_checkout_and_git_status_stays_clean() {
    let dir = TestDir::new("init-ok");
    let repos = repos(dir.path(), &[("README.md", "demo\n")]);
    let output = init(&repos.source);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let real = repos.source.canonicalize().unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!(
                "maestro init: wrote tmp/maestro.toml (id source, repo_root {})",
                real.display()
            )
            .as_str(),
            "maestro init: added /tmp/ and /.workspaces/ to .git/info/exclude, so git status stays clean",
            "",
            "Next:",
            "  \"${EDITOR:-vi}\" tmp/maestro.toml   # set [tracker] project_slug; check the variable names",
            "  export LINEAR_API_KEY=... GITHUB_TOKEN=...   # the variables it names",
            "  maestro doctor   # checks everything a live run needs, one line per check",
        ]
    );
    let path = repos.source.join("tmp/maestro.toml");
    let written = std::fs::read_to_string(&path).unwrap();
    let config = config::parse(&path, &written, None).unwrap();
    assert_eq!(config.id, "source");
    assert_eq!(config.repo_root, real);
    assert_eq!(config.workspace_root, real.join(".workspaces"));
    assert_eq!(config.tracker.project_slug, None, "no made-up slug");
    assert_eq!(config.secret_env_vars(), ["GITHUB_TOKEN", "LINEAR_API_KEY"]);
    assert!(written.contains("# Every key is documented in docs/spec/config.md."));
    assert!(
        exclude_file(&repos.source).ends_with(
            "# Maestro's config and lanes (added by maestro init)\n/tmp/\n/.workspaces/\n"
        )
    );
    assert_eq!(git(&repos.source, &["status", "--porcelain"]), "");

    // The next command it prints finds the file.
    let output = maestro_command(&repos.source, &["doctor", "--offline"])
        .output()
        .unwrap();
    assert!(
        stdout(&output).starts_with(&format!(
            "maestro doctor: {}\nok    config: valid (project source, linear tracker)\n",
            repos.source.join("tmp/maestro.toml").display()
        )),
        "{}",
        stdout(&output)
    );
}

#[test]
fn init_never_overwrites_and_adds_nothing_twice() {
    let dir = TestDir::new("init-twice");
    let repos = repos(dir.path(), &[("README.md", "demo\n")]);
    assert_eq!(init(&repos.source).status.code(), Some(0));
    let path = repos.source.join("tmp/maestro.toml");
    std::fs::write(&path, "# mine\n").unwrap();
    let exclude = exclude_file(&repos.source);
    let output = init(&repos.source);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "maestro: init: {} already exists and is left as it is; edit it, or move it away and run init again\n",
            repos
                .source
                .canonicalize()
                .unwrap()
                .join("tmp/maestro.toml")
                .display()
        )
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    assert_eq!(exclude_file(&repos.source), exclude);
}

#[test]
fn init_leaves_exclude_alone_when_git_already_ignores_both() {
    let dir = TestDir::new("init-ignored");
    let repos = repos(
        dir.path(),
        &[
            ("README.md", "demo\n"),
            (".gitignore", "/tmp\n/.workspaces/\n"),
        ],
    );
    let before = exclude_file(&repos.source);
    let output = init(&repos.source);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("maestro init: git already ignores tmp/ and .workspaces/\n"),
        "{}",
        stdout(&output)
    );
    assert_eq!(exclude_file(&repos.source), before);
    assert_eq!(git(&repos.source, &["status", "--porcelain"]), "");
}

#[test]
fn init_from_a_subdirectory_writes_at_the_top_and_names_the_path() {
    let dir = TestDir::new("init-subdir");
    let repos = repos(dir.path(), &[("src/lib.rs", "\n")]);
    let output = init(&repos.source.join("src"));
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    let path = repos
        .source
        .canonicalize()
        .unwrap()
        .join("tmp/maestro.toml");
    assert!(path.is_file());
    assert!(!repos.source.join("src/tmp").exists());
    assert!(
        text.contains(&format!("  maestro doctor --config {}   #", path.display())),
        "{text}"
    );
}

#[test]
fn init_outside_a_checkout_changes_nothing() {
    let dir = TestDir::new("init-no-git");
    std::fs::create_dir_all(dir.join("plain")).unwrap();
    // Keep git from finding the checkout the tests themselves run in.
    let output = maestro_command(&dir.join("plain"), &["init"])
        .env("GIT_CEILING_DIRECTORIES", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "maestro: init: {} is not in a git checkout (",
            dir.join("plain").display()
        )) && message.ends_with("); run it inside a clone of the repository Maestro will serve\n"),
        "{message}"
    );
    assert!(!dir.join("plain/tmp").exists());
}
