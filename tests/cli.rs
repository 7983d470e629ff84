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
            stdout(&output).contains("Usage: maestro <COMMAND>"),
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
    let cases: [(&[&str], &str); 5] = [
        (&["protocol", "--help"], "maestro protocol - "),
        (
            &["protocol", "probe", "--help"],
            "maestro protocol probe - ",
        ),
        (&["status", "--help"], "maestro status - "),
        (&["run", "--help"], "maestro run --once - "),
        (&["daemon", "--help"], "maestro daemon - "),
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
            "maestro: unknown command 'frobnicate'; expected one of: protocol, status, run, daemon, demo (see 'maestro --help')\n",
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
