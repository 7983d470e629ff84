//! Where an attempt's lane lives — here or on a host — behind one set of operations, so the
//! order of an attempt (`crate::run`) is the same either way: prepare the lane, run hooks and
//! validation commands in it, read its `HEAD`, start the agent in it.
//!
//! [`Place::Local`] is exactly the local lane code (`workspace::lane`, `shell`, a local
//! app-server). [`Place::Remote`] does each through `worker::lane` on the assigned host and
//! starts codex there over ssh stdio ([`Place::launcher`]); the session, its readers and its
//! tools stay in the controller. This module picks neither the host (`assign`) nor what a
//! failure means for the attempt (`run`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::Error;
use super::lane::{self as remote_lane, RemoteLaneSpec};
use super::ssh::{self, Mode, Remote};
use crate::app_server::{Launcher, RemoteLaunch, TurnEnd};
use crate::shell::{self, ShellOutcome};
use crate::workflow::Hooks;
use crate::workspace::lane::{self, Lane, LaneSpec};

/// How long ending an agent's remote side may take (one ssh round trip).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Where an attempt's lane lives.
#[derive(Debug, Clone, Default)]
pub enum Place {
    /// Under the controller's `workspace_root`.
    #[default]
    Local,
    /// On an ssh host, under its workspace root.
    Remote(Remote),
}

impl Place {
    /// The host, for a remote lane.
    pub fn host(&self) -> Option<&str> {
        match self {
            Place::Local => None,
            Place::Remote(remote) => Some(&remote.host),
        }
    }

    /// Creates or reuses the lane, then checks its git metadata (see `workspace::lane` and
    /// `worker::lane`). A remote lane's `path` is its resolved path on the host.
    pub fn prepare(&self, spec: &LaneSpec<'_>) -> Result<Lane, Error> {
        match self {
            Place::Local => {
                let lane = lane::prepare(spec)?;
                lane::verify_git_metadata(&lane.path)?;
                Ok(lane)
            }
            Place::Remote(remote) => {
                let prepared = remote_lane::prepare(&RemoteLaneSpec {
                    remote,
                    layout: spec.layout,
                    repo_root: spec.repo_root,
                    key: spec.key,
                    branch: spec.branch,
                    hooks: spec.hooks,
                })?;
                Ok(Lane {
                    key: prepared.key,
                    path: PathBuf::from(prepared.path),
                    branch: prepared.branch,
                    created: prepared.created,
                })
            }
        }
    }

    /// The lane is still contained and its git metadata inside it (the agent had it).
    pub fn verify_git_metadata(&self, lane: &Lane) -> Result<(), Error> {
        match self {
            Place::Local => Ok(lane::verify_git_metadata(&lane.path)?),
            Place::Remote(remote) => remote_lane::verify_git_metadata(remote, &lane.key),
        }
    }

    /// Runs one hook in the lane under the hook timeout.
    pub fn run_hook(
        &self,
        hook: &'static str,
        script: &str,
        lane: &Lane,
        hooks: &Hooks,
        remove_env: &[String],
    ) -> Result<ShellOutcome, Error> {
        match self {
            Place::Local => Ok(lane::run_hook(hook, script, &lane.path, hooks, remove_env)?),
            Place::Remote(remote) => remote_lane::run_hook(remote, hook, script, &lane.key, hooks),
        }
    }

    /// The error for a hook that had to succeed and did not.
    pub fn hook_error(&self, hook: &'static str, lane: &Lane, outcome: &ShellOutcome) -> Error {
        match self {
            Place::Local => Error::Workspace(lane::hook_error(hook, &lane.path, outcome)),
            Place::Remote(remote) => remote_lane::hook_error(remote, hook, outcome),
        }
    }

    /// Runs a validation command with `sh -c` in the lane, bounded by `timeout` and `stop`.
    pub fn run_command(
        &self,
        script: &str,
        lane: &Lane,
        remove_env: &[String],
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<ShellOutcome, Error> {
        match self {
            Place::Local => shell::run_stoppable(script, &lane.path, remove_env, timeout, stop)
                .map_err(|source| {
                    Error::Workspace(crate::workspace::Error::Io {
                        path: lane.path.clone(),
                        action: "start command",
                        source,
                    })
                }),
            Place::Remote(remote) => {
                remote_lane::run_in_lane(remote, &lane.key, script, timeout, Some(stop))
            }
        }
    }

    /// The lane's `HEAD` commit (`lane` is the lane's path: local, or on the host).
    pub fn head_sha(&self, lane: &Path) -> Result<String, Error> {
        match self {
            Place::Local => Ok(lane::head_sha(lane)?),
            Place::Remote(remote) => {
                let key = lane
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or_default();
                remote_lane::head_sha(remote, key)
            }
        }
    }

    /// How the agent's session is started in `lane`: here, or on the host through ssh with
    /// `agent_command` (`[agent] command`) run by the remote wrapper in the lane.
    pub fn launcher(&self, lane: &Lane, agent_command: &[String]) -> Launcher {
        let Place::Remote(remote) = self else {
            return Launcher::Local;
        };
        let words: Vec<&str> = agent_command.iter().map(String::as_str).collect();
        let remote_command = remote.wrapped(Mode::Agent, Some(&lane.key), &words);
        let cleaner = remote.clone();
        Launcher::Remote(RemoteLaunch {
            host: remote.host.clone(),
            argv: remote.argv(&remote_command, true),
            local_cwd: remote.local_cwd().to_path_buf(),
            remove_env: ssh::env_to_remove(),
            id_prefix: ssh::PGID_PREFIX.to_string(),
            cleanup: Arc::new(move |identity: &str| end_remote(&cleaner, identity)),
        })
    }

    /// Whether a turn's end means the connection to the host dropped: ssh exits 255 for its
    /// own failures, which a remote codex never does.
    pub fn disconnected(&self, end: &TurnEnd) -> bool {
        matches!(
            (self, end),
            (Place::Remote(_), TurnEnd::ProcessExited { exit: Some(exit), .. })
                if exit == "exit code 255"
        )
    }
}

/// Ends what is left of an agent's remote side (`identity`: its session id and run value).
fn end_remote(remote: &Remote, identity: &str) {
    let mut words = identity.split_whitespace();
    let (Some(group), Some(run)) = (words.next(), words.next()) else {
        return;
    };
    match remote.run_args(None, ssh::CLEANUP, &[group, run], CLEANUP_TIMEOUT, None) {
        Ok(ssh::Ran::Done(outcome)) if outcome.success() => {
            log::debug!("remote agent cleaned up host={} group={group}", remote.host);
        }
        Ok(other) => log::warn!(
            "cannot clean up the remote agent host={} group={group} result={other:?}; its own watchdog ends it once the connection is gone",
            remote.host
        ),
        Err(error) => log::warn!(
            "cannot clean up the remote agent host={} group={group} error={error}",
            remote.host
        ),
    }
}
