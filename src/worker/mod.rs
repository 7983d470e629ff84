//! SSH workers: lanes on remote build hosts, driven from this controller over OpenSSH.
//!
//! With `[worker] ssh_hosts` set, every attempt is assigned one host (`assign`: a per-host slot
//! taken on the controller before anything runs remotely, health-aware, the last host
//! preferred), its lane is a clone on that host under the host's workspace root (`lane`), its
//! hooks and validation commands run there, and codex app-server runs there over ssh stdio
//! while the session, its reader threads and the issue tools stay here (`place`). The ssh
//! command line, quoting and bounded remote execution are `ssh`'s; host health (connect
//! failures, backoff) is `health`'s; the `[worker]` table is `config::worker`'s.
//!
//! What never leaves the controller: tool calls, tracker and GitHub requests, secrets (no
//! secret value is on a command line or in a host's environment; a host's codex uses its own
//! login), leases, slots and records. What this module does not do: decide eligibility
//! (`selection`), choose when a lane is removed (the daemon) or run the agent's turns
//! (`app_server`).

pub mod assign;
pub mod health;
pub mod lane;
pub mod place;
pub mod ssh;

use std::fmt;

pub use crate::config::worker::{HostConfig, WorkerConfig};
pub use place::Place;
pub use ssh::Remote;

/// The file key of a host under `.maestro/hosts/`: the host name when it is a plain name,
/// otherwise a sanitized form plus a stable hash (the lane-key rule), so distinct hosts never
/// share state.
pub fn host_key(host: &str) -> String {
    crate::workspace::lane::lane_key(host)
}

/// Why something on a host failed.
#[derive(Debug)]
pub enum Error {
    /// The ssh client could not be started at all.
    Start {
        host: String,
        program: String,
        source: std::io::Error,
    },
    /// ssh could not reach the host (`started` false: connect, authentication, host key) or
    /// the connection dropped while the command ran. The host's health records it.
    Ssh {
        host: String,
        started: bool,
        detail: String,
    },
    /// A step Maestro runs on the host failed (git, mkdir, stat).
    Remote {
        host: String,
        step: &'static str,
        output: String,
    },
    /// The lane on the host is unsafe to run in (a symlink, outside the root, swapped).
    Unsafe {
        host: String,
        lane: String,
        reason: String,
    },
    /// A lane Maestro was asked to remove is not provably its own: it is kept.
    NotOwned {
        host: String,
        lane: String,
        reason: String,
    },
    /// A hook that must succeed failed on the host.
    Hook {
        host: String,
        hook: &'static str,
        detail: String,
    },
    /// The repository has no origin for the host to clone from.
    NoOrigin { repo_root: std::path::PathBuf },
    /// Local state (locks, markers) could not be read or written.
    Workspace(crate::workspace::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Start {
                host,
                program,
                source,
            } => write!(
                f,
                "cannot start `{program}` for host {host}: {source}; check [worker] ssh_command"
            ),
            Error::Ssh {
                host,
                started: false,
                detail,
            } => write!(
                f,
                "cannot reach host {host} over ssh: {}; check the host, its ssh_config entry and known_hosts",
                crate::escape::text(detail)
            ),
            Error::Ssh { host, detail, .. } => write!(
                f,
                "the ssh connection to host {host} dropped: {}",
                crate::escape::text(detail)
            ),
            Error::Remote { host, step, output } => write!(
                f,
                "{step} failed on host {host}: {}",
                crate::escape::text(last_line(output))
            ),
            Error::Unsafe { host, lane, reason } => {
                write!(f, "refusing to run in lane {host}:{lane}: {reason}")
            }
            Error::NotOwned { host, lane, reason } => write!(
                f,
                "kept {host}:{lane}: {reason}; maestro removes only directories it can prove it created, so remove it by hand if it is no longer needed"
            ),
            Error::Hook { host, hook, detail } => write!(
                f,
                "hook {hook} failed on host {host}: {detail}; fix the hook in WORKFLOW.md"
            ),
            Error::NoOrigin { repo_root } => write!(
                f,
                "{} has no origin remote; lanes on ssh hosts are cloned from the repository's origin, so add one (git remote add origin URL)",
                repo_root.display()
            ),
            Error::Workspace(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Start { source, .. } => Some(source),
            Error::Workspace(error) => Some(error),
            _ => None,
        }
    }
}

impl From<crate::workspace::Error> for Error {
    fn from(error: crate::workspace::Error) -> Self {
        Error::Workspace(error)
    }
}

/// The last non-empty line of a command's output (stderr warnings come first).
pub(crate) fn last_line(output: &str) -> &str {
    output
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim()
}
