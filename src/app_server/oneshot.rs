//! One-shot codex commands outside a session: `codex --version` and
//! `codex app-server generate-json-schema`, which `protocol probe` runs before a live session.
//!
//! They live here so that only `app_server` ever starts codex. Each runs with a deadline, in
//! its own process group, with the secret variables removed, and its output fully read.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
        /// The last non-empty stderr line (ANSI stripped).
        stderr: String,
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
                stderr,
            } => {
                write!(f, "'{command}' failed ({exit})")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
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

/// `<prefix> --version`: the first line it prints, such as `codex-cli 0.169.0`.
pub fn codex_version(
    command: &[String],
    remove_env: &[String],
    timeout: Duration,
) -> Result<String, OneShotError> {
    let mut words = codex_prefix(command).to_vec();
    words.push("--version".into());
    let stdout = run(&words, remove_env, timeout)?;
    Ok(stdout
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("(no version printed)")
        .to_string())
}

/// `<prefix> app-server generate-json-schema --experimental --out <out_dir>`.
pub fn generate_schema(
    command: &[String],
    remove_env: &[String],
    out_dir: &Path,
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
    run(&words, remove_env, timeout).map(drop)
}

/// Runs `words` to completion within `timeout` and returns its stdout.
fn run(words: &[String], remove_env: &[String], timeout: Duration) -> Result<String, OneShotError> {
    let (program, args) = words.split_first().ok_or(OneShotError::EmptyCommand)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    for name in remove_env {
        command.env_remove(name);
    }
    let mut child = command.spawn().map_err(|source| OneShotError::Spawn {
        program: program.clone(),
        source,
    })?;
    // Both pipes are drained on their own threads so a chatty child cannot block on either.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            _ => break None,
        }
    };
    let display = words.join(" ");
    let Some(status) = status else {
        if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on the process group this child leads; no memory involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = child.wait();
        return Err(OneShotError::TimedOut {
            command: display,
            after: timeout,
        });
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        let last = stderr
            .lines()
            .map(|line| super::reader::strip_ansi(line).trim().to_string())
            .rfind(|line| !line.is_empty())
            .unwrap_or_default();
        Err(OneShotError::Failed {
            command: display,
            exit: super::child::describe_exit(status),
            stderr: last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn failures_name_the_command_and_the_last_stderr_line() {
        let error = run(
            &[
                "sh".into(),
                "-c".into(),
                "echo out; echo '\u{1b}[31mbad thing\u{1b}[0m' >&2; exit 7".into(),
            ],
            &[],
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
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot run '/nonexistent/codex': "),
            "{error}"
        );
        let error = run(&words("sleep 30"), &[], Duration::from_millis(100)).unwrap_err();
        assert!(matches!(error, OneShotError::TimedOut { .. }), "{error}");
    }
}
