//! Every `maestro` command README.md shows leaves the clone it runs in as it was (issue #16):
//! each one runs, in README's order, in a fresh repository made of this working tree's tracked
//! files, and `git status` must stay clean after it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::dir::TestDir;
use crate::support::git::git;
use crate::support::run_world::wait_until;
use crate::support::{codex, maestro_command};

/// `maestro demo` stops its daemon within 300 s; every other command here ends in seconds.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(360);

/// The arguments of every `maestro` invocation README.md shows, in order, without repeats:
/// lines of its `sh` blocks that run `maestro …` or `cargo run [--release] -- …` (after any
/// `NAME=value` prefixes), and inline code spans that start with `maestro `.
fn readme_commands(readme: &str) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut push = |words: Vec<String>| {
        if !commands.contains(&words) {
            commands.push(words);
        }
    };
    let mut in_sh = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if in_sh {
            let command = trimmed.split(" #").next().unwrap_or("").trim();
            let mut words = command
                .split_whitespace()
                .skip_while(|word| word.contains('=') && !word.starts_with('-'));
            match words.next() {
                Some("maestro") => push(words.map(String::from).collect()),
                Some("cargo") if command.contains("cargo run") => {
                    let rest: Vec<String> = words
                        .skip_while(|word| *word != "--")
                        .skip(1)
                        .map(String::from)
                        .collect();
                    push(rest);
                }
                _ => {}
            }
            continue;
        }
        for (index, span) in line.split('`').enumerate() {
            if index % 2 == 1 {
                if let Some(rest) = span.strip_prefix("maestro ") {
                    push(rest.split_whitespace().map(String::from).collect());
                }
            }
        }
    }
    commands
}

/// A fresh repository holding the tracked files of this working tree as they are now.
fn fresh_copy(dir: &TestDir) -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = dir.join("clone");
    let files = git(root, &["ls-files", "-z"]);
    for file in files.split('\0').filter(|file| !file.is_empty()) {
        let from = root.join(file);
        // A tracked file deleted in the working tree is not part of it.
        if !from.is_file() {
            continue;
        }
        let to = copy.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    git(&copy, &["init", "--quiet", "--initial-branch=main"]);
    git(&copy, &["add", "-A"]);
    git(&copy, &["commit", "--quiet", "-m", "the working tree"]);
    copy
}

#[test]
fn readme_commands_leave_the_clone_clean() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    let listed: Vec<String> = commands.iter().map(|words| words.join(" ")).collect();
    for expected in [
        "demo",
        "run --once --dry-run --config fixtures/demo/maestro.toml",
        "init",
        "doctor",
        "protocol probe",
        "status",
        "run --once",
        "daemon",
    ] {
        assert!(
            listed.iter().any(|command| command == expected),
            "README's `maestro {expected}` was not found; found {listed:?}"
        );
    }
    // What an operator tries right after README's dry run: the same, live. It used to write
    // state changes into the tracked fixtures/demo/issues/; it is refused now.
    let mut commands = commands;
    commands.push(
        ["run", "--once", "--config", "fixtures/demo/maestro.toml"]
            .map(String::from)
            .to_vec(),
    );
    let codex = codex::require_codex();
    let dir = TestDir::new("readme-commands");
    let clone = fresh_copy(&dir);
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    for words in &commands {
        let shown = format!("maestro {}", words.join(" "));
        if words.first().map(String::as_str) == Some("demo") && codex.is_none() {
            println!("skipped: {shown} needs codex");
            continue;
        }
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let log = dir.join("command.log");
        let mut command = maestro_command(&clone, &args);
        command
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env_remove("LINEAR_API_KEY")
            .env_remove("GITHUB_TOKEN")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("command.err")).unwrap());
        match &codex {
            Some(codex) => command.env("MAESTRO_CODEX_BIN", codex),
            None => command.env_remove("MAESTRO_CODEX_BIN"),
        };
        let mut child = command.spawn().unwrap();
        let mut exit = None;
        wait_until(COMMAND_TIMEOUT, || {
            exit = child.try_wait().unwrap();
            exit.is_some()
        });
        let Some(status) = exit else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{shown}` did not finish within {COMMAND_TIMEOUT:?}");
        };
        let output = format!(
            "{}{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(dir.join("command.err")).unwrap_or_default()
        );
        let code = status.code();
        assert!(
            matches!(code, Some(0..=5)),
            "`{shown}` ended with {status}, not a documented exit code:\n{output}"
        );
        let expected_success = ["demo", "init", "--help"].contains(&args[0])
            || args
                == [
                    "run",
                    "--once",
                    "--dry-run",
                    "--config",
                    "fixtures/demo/maestro.toml",
                ];
        if expected_success {
            assert_eq!(code, Some(0), "`{shown}`:\n{output}");
        }
        if args == ["run", "--once", "--config", "fixtures/demo/maestro.toml"] {
            assert_eq!(code, Some(2), "`{shown}`:\n{output}");
            assert!(
                output.contains("holds files git tracks in repo_root (`fixtures/demo/issues`)"),
                "{output}"
            );
        }
        assert_eq!(
            git(&clone, &["status", "--porcelain"]),
            "",
            "`{shown}` changed the clone:\n{output}"
        );
    }
}

#[test]
fn the_command_list_reads_blocks_and_spans() {
    let readme = "Run `maestro status` first.\n\n```sh\nnpm install x\nPATH=\"/x:$PATH\" cargo run --release -- demo\nmaestro init   # a comment\ncargo run -- run --once\n```\n\n```text\nmaestro not-a-command\n```\nAgain `maestro status`.\n";
    let listed: Vec<String> = readme_commands(readme)
        .iter()
        .map(|words| words.join(" "))
        .collect();
    assert_eq!(listed, ["status", "demo", "init", "run --once"]);
}
