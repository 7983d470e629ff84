//! Why a session could not be started or kept going.
//!
//! Turn-level results are not errors: they are [`super::TurnOutcome`]s. This enum covers what
//! stops a session as a whole (spawn, handshake, journal), with the context kept as data.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A session-level failure.
#[derive(Debug)]
pub enum Error {
    /// `agent.command` is empty.
    EmptyCommand,
    /// The program could not be started (missing, not executable, bad cwd).
    Spawn {
        program: String,
        cwd: PathBuf,
        source: std::io::Error,
    },
    /// A reader thread could not be started.
    ReaderThread(std::io::Error),
    /// The journal could not be opened or written.
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No reply to `method` within the read timeout.
    Timeout {
        method: String,
        after: Duration,
        stderr_tail: Vec<String>,
    },
    /// The app-server answered `method` with a JSON-RPC error.
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    /// The reply to `method` lacks something Maestro needs.
    Protocol { method: String, detail: String },
    /// The child exited (or closed stdout) while `method` was outstanding.
    ChildExited {
        method: String,
        exit: Option<String>,
        stderr_tail: Vec<String>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::EmptyCommand => write!(
                f,
                "the app-server command is empty; set [agent] command in maestro.toml (default: codex app-server)"
            ),
            Error::Spawn {
                program,
                cwd,
                source,
            } => write!(
                f,
                "cannot start app-server '{program}' in {}: {source}; check [agent] command in maestro.toml and that codex is installed",
                cwd.display()
            ),
            Error::ReaderThread(source) => {
                write!(f, "cannot start an app-server reader thread: {source}")
            }
            Error::Journal { path, source } => {
                write!(f, "cannot write journal {}: {source}", path.display())
            }
            Error::Timeout {
                method,
                after,
                stderr_tail,
            } => {
                write!(
                    f,
                    "app-server did not answer {method} within {} ms",
                    after.as_millis()
                )?;
                write_tail(f, stderr_tail)
            }
            Error::Rpc {
                method,
                code,
                message,
            } => write!(f, "app-server rejected {method}: {message} (code {code})"),
            Error::Protocol { method, detail } => {
                write!(f, "unexpected app-server reply to {method}: {detail}")
            }
            Error::ChildExited {
                method,
                exit,
                stderr_tail,
            } => {
                let exit = exit.as_deref().unwrap_or("still running, stdout closed");
                write!(f, "app-server exited during {method} ({exit})")?;
                write_tail(f, stderr_tail)
            }
        }
    }
}

/// Appends the last stderr line, the part an operator usually needs.
fn write_tail(f: &mut fmt::Formatter<'_>, stderr_tail: &[String]) -> fmt::Result {
    match stderr_tail
        .iter()
        .rev()
        .find(|line| !line.trim().is_empty())
    {
        Some(line) => write!(f, "; last stderr line: {}", line.trim()),
        None => Ok(()),
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. }
            | Error::Journal { source, .. }
            | Error::ReaderThread(source) => Some(source),
            _ => None,
        }
    }
}
