//! One-shot codex commands outside a session: `codex --version` and
//! `codex app-server generate-json-schema`, which `protocol probe` runs before a live session.
//!
//! They live here so that only `app_server` ever decides to start codex; the bounded run itself
//! (own process group, deadline, secrets removed, output tail) is [`crate::shell`]'s.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::shell;

/// Why a one-shot codex command did not produce what was asked.
#[derive(Debug)]
pub enum OneShotError {
    EmptyCommand,
    /// The program could not be started (usually: not installed, not on PATH).
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// It ran past its deadline and was killed.
    TimedOut {
        command: String,
        after: Duration,
    },
    /// It exited unsuccessfully.
    Failed {
        command: String,
        exit: String,
        /// The last non-empty line it printed (ANSI stripped).
        last_line: String,
    },
}

impl fmt::Display for OneShotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OneShotError::EmptyCommand => write!(f, "the app-server command is empty"),
            OneShotError::Spawn { program, source } => {
                write!(f, "cannot run '{program}': {source}")
            }
            OneShotError::TimedOut { command, after } => {
                write!(f, "'{command}' did not finish within {} s", after.as_secs())
            }
            OneShotError::Failed {
                command,
                exit,
                last_line,
            } => {
                write!(f, "'{command}' failed ({exit})")?;
                if !last_line.is_empty() {
                    write!(f, ": {last_line}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for OneShotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OneShotError::Spawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The codex program and global options from an app-server command: everything before the
/// `app-server` word (`codex app-server` gives `codex`), or the program alone without one.
pub fn codex_prefix(command: &[String]) -> &[String] {
    match command.iter().position(|word| word == "app-server") {
        Some(index) if index > 0 => &command[..index],
        _ => command.get(..1).unwrap_or(&[]),
    }
}

/// `<prefix> --version` in `cwd`: the last line it prints, such as `codex-cli 0.169.0`.
pub fn codex_version(
    command: &[String],
    remove_env: &[String],
    cwd: &Path,
    timeout: Duration,
) -> Result<String, OneShotError> {
    let mut words = codex_prefix(command).to_vec();
    words.push("--version".into());
    let output = run(&words, remove_env, cwd, timeout)?;
    Ok(last_line(&output).unwrap_or_else(|| "(no version printed)".to_string()))
}

/// `<prefix> app-server generate-json-schema --experimental --out <out_dir>` in `cwd`.
pub fn generate_schema(
    command: &[String],
    remove_env: &[String],
    out_dir: &Path,
    cwd: &Path,
    timeout: Duration,
) -> Result<(), OneShotError> {
    let mut words = codex_prefix(command).to_vec();
    words.extend(
        [
            "app-server",
            "generate-json-schema",
            "--experimental",
            "--out",
        ]
        .map(String::from),
    );
    words.push(out_dir.display().to_string());
    run(&words, remove_env, cwd, timeout).map(drop)
}

/// Runs `words` to completion within `timeout`; its (merged, tail) output on success.
fn run(
    words: &[String],
    remove_env: &[String],
    cwd: &Path,
    timeout: Duration,
) -> Result<String, OneShotError> {
    let (program, args) = words.split_first().ok_or(OneShotError::EmptyCommand)?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome =
        shell::run_program(program, &args, cwd, remove_env, &[], timeout).map_err(|source| {
            OneShotError::Spawn {
                program: program.clone(),
                source,
            }
        })?;
    let command = words.join(" ");
    if outcome.timed_out {
        return Err(OneShotError::TimedOut {
            command,
            after: timeout,
        });
    }
    if outcome.success() {
        return Ok(outcome.output_tail);
    }
    Err(OneShotError::Failed {
        command,
        exit: outcome.exit_code.map_or_else(
            || "killed by a signal".to_string(),
            |code| format!("exit code {code}"),
        ),
        last_line: last_line(&outcome.output_tail).unwrap_or_default(),
    })
}

/// The last non-blank line, ANSI stripped and trimmed.
fn last_line(output: &str) -> Option<String> {
    output
        .lines()
        .map(|line| super::reader::strip_ansi(line).trim().to_string())
        .rfind(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cwd() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_prefix_is_what_comes_before_app_server() {
        assert_eq!(codex_prefix(&words("codex app-server")), words("codex"));
        assert_eq!(
            codex_prefix(&words("/opt/codex -c x=1 app-server --listen stdio://")),
            words("/opt/codex -c x=1")
        );
        assert_eq!(codex_prefix(&words("my-wrapper")), words("my-wrapper"));
        assert!(codex_prefix(&[]).is_empty());
    }

    #[test]
    fn failures_name_the_command_and_the_last_line() {
        let error = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo out; echo '\u{1b}[31mbad thing\u{1b}[0m' >&2; exit 7".into(),
            ],
            &[],
            cwd(),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("failed (exit code 7): bad thing"),
            "{error}"
        );
        let error = run(
            &words("/nonexistent/codex --version"),
            &[],
            cwd(),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot run '/nonexistent/codex': "),
            "{error}"
        );
        let error = run(&words("sleep 30"), &[], cwd(), Duration::from_millis(100)).unwrap_err();
        assert!(matches!(error, OneShotError::TimedOut { .. }), "{error}");
    }
}
