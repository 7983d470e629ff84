//! The workspace boundary: everything Maestro keeps under `workspace_root`.
//!
//! ```text
//! <workspace_root>/
//!   <LANE-KEY>/                      one git clone per issue (the lane)
//!   .<LANE-KEY>.cloning-<pid>/       a new lane being cloned by process <pid>
//!   .maestro/
//!     lanes/<key>.json               ownership marker: the identity of the lane Maestro made
//!     slots/slot-<n>.lock            dispatch slots (fs2 locks)
//!     leases/<key>.lock, <key>.json  per-issue leases and their last owner
//!     runs/<run_id>.json             run records (one per attempt)
//!     runs/<run_id>.journal.jsonl    the app-server protocol journal of that attempt
//!     activity/<key>.json            live lane activity markers
//!     issues/<key>.json              per-issue bookkeeping: attempts, last error, guard, lane
//!     issues/<key>.lock              short lock for read-modify-write of that bookkeeping
//!     reserve/<run_id>               disk space a live attempt keeps for its final records
//!     retry-queue.json               the daemon's persisted retry queue
//!     retry-queue.corrupt-<ms>       an unreadable queue the daemon moved aside at startup
//!     review/<key>.json              post-review lifecycle: the lane's phase record
//!     github-etags.json              ETags and trimmed answers of GitHub GETs (a cache)
//!     tracker-budget.json            what the daemon's tracker requests cost (intake report)
//!     workflow-snapshot.md           the daemon's last known good WORKFLOW.md, read by children
//!     logs/<run_id>.log              stdout and stderr of each daemon child
//!     daemon.lock, daemon.pid        the one daemon per workspace root, and its pid
//!     hosts/<host>/health.json       an SSH worker host's health (connect failures, backoff)
//!     hosts/<host>/slot-<n>.lock     per-host slots ([worker] max_concurrent_agents_per_host)
//!     hosts/<host>/lanes/<key>.json  the creation marker of a lane Maestro made on that host
//! ```
//!
//! `<key>` under `.maestro/` is the issue's file key ([`record::issue_key`]): the tracker's stable
//! issue id, never the identifier, which changes when an issue moves to another team. Lanes
//! keep the name they were first created under (the bookkeeping remembers it).
//!
//! [`Layout`] is the only place these paths and file names are spelled. `lock` owns the fs2
//! calls, `record` the JSON on disk (written through `state_file`), `retention` what of it is
//! deleted, `lane` the git clones. Nothing here talks to the tracker or the agent, and
//! nothing of Maestro's is ever written inside a lane's git work tree.

mod bookkeeping;
pub mod error_class;
pub mod lane;
pub mod lock;
pub mod ownership;
pub mod record;
pub mod retention;
pub mod retry_queue;
pub mod state_file;
pub mod sweep;

use std::fmt;
use std::path::{Path, PathBuf};

/// What separates the lane key from the pid in a staging directory's name.
const STAGING_INFIX: &str = ".cloning-";

/// Paths under one workspace root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(workspace_root: &Path) -> Layout {
        Layout {
            root: workspace_root.to_path_buf(),
        }
    }

    /// The layout relative to `workspace_root` (`.maestro/leases`), for text that names a state
    /// path without the host's absolute path.
    pub fn relative() -> Layout {
        Layout {
            root: PathBuf::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(".maestro")
    }

    pub fn slots_dir(&self) -> PathBuf {
        self.state_dir().join("slots")
    }

    pub fn slot_file(&self, index: usize) -> PathBuf {
        self.slots_dir().join(format!("slot-{index}.lock"))
    }

    pub fn leases_dir(&self) -> PathBuf {
        self.state_dir().join("leases")
    }

    pub fn lease_file(&self, key: &str) -> PathBuf {
        self.leases_dir().join(format!("{key}.lock"))
    }

    pub fn lease_owner_file(&self, key: &str) -> PathBuf {
        self.leases_dir().join(format!("{key}.json"))
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.state_dir().join("runs")
    }

    pub fn run_record_file(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(format!("{run_id}.json"))
    }

    pub fn journal_file(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(format!("{run_id}.journal.jsonl"))
    }

    pub fn activity_dir(&self) -> PathBuf {
        self.state_dir().join("activity")
    }

    pub fn activity_file(&self, key: &str) -> PathBuf {
        self.activity_dir().join(format!("{key}.json"))
    }

    pub fn issues_dir(&self) -> PathBuf {
        self.state_dir().join("issues")
    }

    pub fn issue_file(&self, key: &str) -> PathBuf {
        self.issues_dir().join(format!("{key}.json"))
    }

    /// The lock taken while an issue's bookkeeping is read, changed and written.
    pub fn issue_lock_file(&self, key: &str) -> PathBuf {
        self.issues_dir().join(format!("{key}.lock"))
    }

    /// Space a live attempt sets aside so its final record can still be written on a full disk.
    pub fn reserve_file(&self, run_id: &str) -> PathBuf {
        self.state_dir().join("reserve").join(run_id)
    }

    pub fn retry_queue_file(&self) -> PathBuf {
        self.state_dir().join("retry-queue.json")
    }

    /// Where an unreadable retry queue is moved aside (kept for operators, never read).
    pub fn retry_queue_aside_file(&self, at_ms: u64) -> PathBuf {
        self.state_dir()
            .join(format!("retry-queue.corrupt-{at_ms}"))
    }

    /// The lock the one daemon of this workspace root holds for its life.
    pub fn daemon_lock_file(&self) -> PathBuf {
        self.state_dir().join("daemon.lock")
    }

    /// The pid of the daemon holding [`Layout::daemon_lock_file`], for the refusal message.
    pub fn daemon_pid_file(&self) -> PathBuf {
        self.state_dir().join("daemon.pid")
    }

    pub fn review_dir(&self) -> PathBuf {
        self.state_dir().join("review")
    }

    /// The post-review phase record of lane `key` (see `crate::review::record`).
    pub fn review_record_file(&self, key: &str) -> PathBuf {
        self.review_dir().join(format!("{key}.json"))
    }

    /// The turn input of repair `attempt` of lane record `key`: the feedback as
    /// `review::texts::repair_input` wrote it, handed to the repair child. Written before the
    /// repair is recorded, so a daemon restarted between the two still has it.
    pub fn review_repair_input_file(&self, key: &str, attempt: u32) -> PathBuf {
        self.review_dir().join(format!("{key}.repair-{attempt}.md"))
    }

    /// The human-path comment of lane record `key`, written before the phase is recorded so a
    /// restarted daemon posts the same text.
    pub fn review_human_comment_file(&self, key: &str) -> PathBuf {
        self.review_dir().join(format!("{key}.human.md"))
    }

    /// The persisted GitHub ETag cache (see `crate::github::EtagCache`), shared by the daemon
    /// and its children so a restart or a `run --once` still gets free 304s.
    pub fn github_etag_cache_file(&self) -> PathBuf {
        self.state_dir().join("github-etags.json")
    }

    /// The daemon's tracker budget report (written by `intake::budget`).
    pub fn tracker_budget_file(&self) -> PathBuf {
        self.state_dir().join("tracker-budget.json")
    }

    pub fn workflow_snapshot_file(&self) -> PathBuf {
        self.state_dir().join("workflow-snapshot.md")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir().join("logs")
    }

    /// stdout and stderr of the daemon child running `run_id`.
    pub fn log_file(&self, run_id: &str) -> PathBuf {
        self.logs_dir().join(format!("{run_id}.log"))
    }

    /// SSH worker hosts' state on the controller: `hosts/<host key>/` (see `crate::worker`).
    pub fn hosts_dir(&self) -> PathBuf {
        self.state_dir().join("hosts")
    }

    /// The directory of one host, by its file key (`worker::host_key`).
    pub fn host_dir(&self, host_key: &str) -> PathBuf {
        self.hosts_dir().join(host_key)
    }

    /// A host's health: connect failures and the backoff that keeps it out of dispatch.
    pub fn host_health_file(&self, host_key: &str) -> PathBuf {
        self.host_dir(host_key).join("health.json")
    }

    /// Per-host slot `index`: at most `max_concurrent_agents_per_host` lanes run on a host.
    pub fn host_slot_file(&self, host_key: &str, index: usize) -> PathBuf {
        self.host_dir(host_key).join(format!("slot-{index}.lock"))
    }

    /// The creation marker of lane `key` on a host (the remote directory's identity), kept on
    /// the controller where nothing on the host can forge it.
    pub fn remote_lane_marker_file(&self, host_key: &str, key: &str) -> PathBuf {
        self.host_dir(host_key)
            .join("lanes")
            .join(format!("{key}.json"))
    }

    /// The run id a journal's file name in `runs/` stands for (`<run_id>.journal.jsonl`).
    pub fn journal_run_id(file_name: &str) -> Option<&str> {
        file_name.strip_suffix(".journal.jsonl")
    }

    /// The run id a log's file name in `logs/` stands for (`<run_id>.log`).
    pub fn log_run_id(file_name: &str) -> Option<&str> {
        file_name.strip_suffix(".log")
    }

    /// The file key a lease lock file's name stands for (`<key>.lock`), if it is one.
    pub fn lease_key(file_name: &str) -> Option<&str> {
        file_name.strip_suffix(".lock")
    }

    /// Whether a file name in a state directory (`runs/`, `activity/`, `issues/`) is a JSON
    /// state file: `<name>.json`, not hidden (an atomic write's temporary file is).
    pub fn is_state_file(file_name: &str) -> bool {
        !file_name.starts_with('.') && file_name.ends_with(".json")
    }

    /// The lane directory for a lane key (see [`lane::lane_key`]).
    pub fn lane_dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub fn lane_markers_dir(&self) -> PathBuf {
        self.state_dir().join("lanes")
    }

    /// The ownership marker of lane `key` (see [`ownership`]): outside the lane's tree, so the
    /// agent never sees it and a lane's content can never forge it.
    pub fn lane_marker_file(&self, key: &str) -> PathBuf {
        self.lane_markers_dir().join(format!("{key}.json"))
    }

    /// The hidden directory process `pid` clones lane `key` into before moving it into place.
    /// The name of a staging directory for lane `key`, told apart by `unique` (a pid locally;
    /// on an ssh host, where the controller's pid means nothing, any unique token).
    pub fn staging_name(key: &str, unique: &str) -> String {
        format!(".{key}{STAGING_INFIX}{unique}")
    }

    pub fn staging_dir(&self, key: &str, pid: u32) -> PathBuf {
        self.root.join(format!(".{key}{STAGING_INFIX}{pid}"))
    }

    /// The lane key and process id a staging directory's name carries, if it is one.
    pub fn parse_staging_name(name: &str) -> Option<(&str, u32)> {
        let rest = name.strip_prefix('.')?;
        let (key, pid) = rest.rsplit_once(STAGING_INFIX)?;
        let pid = pid.parse::<u32>().ok()?;
        (!key.is_empty()).then_some((key, pid))
    }

    /// `path` as records and comments show it: relative to the repository root when inside it,
    /// `<workspace_root>/…` when inside a workspace root elsewhere (absolute host paths never
    /// leave the host).
    pub fn relative_to(path: &Path, repo_root: &Path) -> String {
        if let Ok(relative) = path.strip_prefix(repo_root) {
            return relative.display().to_string();
        }
        match (path.parent(), path.file_name()) {
            (Some(_), Some(name)) => format!("<workspace_root>/{}", name.to_string_lossy()),
            _ => String::new(),
        }
    }
}

/// Why a workspace operation failed.
#[derive(Debug)]
pub enum Error {
    /// A file or directory under the workspace could not be read or written.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A state file exists but is not what Maestro wrote.
    Corrupt { path: PathBuf, reason: String },
    /// A git command failed while preparing the lane.
    Git {
        lane: PathBuf,
        command: String,
        output: String,
    },
    /// The lane is unsafe to run in (shared or symlinked git metadata, path escaping the root).
    Unsafe { lane: PathBuf, reason: String },
    /// A directory Maestro was asked to remove is not provably its own (no ownership marker,
    /// a different directory than the one it created, a symlink): it is kept.
    NotOwned { path: PathBuf, reason: String },
    /// A hook that must succeed failed.
    Hook {
        hook: &'static str,
        lane: PathBuf,
        detail: String,
    },
    /// Another daemon (the pid it recorded) holds the workspace root's daemon lock.
    DaemonRunning { pid: u32, workspace_root: PathBuf },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            Error::Corrupt { path, reason } => write!(
                f,
                "state file {} is unreadable ({reason}); move it aside to let maestro rebuild it",
                path.display()
            ),
            Error::Git {
                lane,
                command,
                output,
            } => write!(
                f,
                "git failed in {}: `{command}`: {}",
                lane.display(),
                output.trim()
            ),
            Error::Unsafe { lane, reason } => {
                write!(f, "refusing to run in lane {}: {reason}", lane.display())
            }
            Error::NotOwned { path, reason } => write!(
                f,
                "kept {}: {reason}; maestro removes only directories it can prove it created, so remove it by hand if it is no longer needed",
                path.display()
            ),
            Error::Hook { hook, lane, detail } => write!(
                f,
                "hook {hook} failed in {}: {detail}; fix the hook in WORKFLOW.md",
                lane.display()
            ),
            Error::DaemonRunning {
                pid,
                workspace_root,
            } => write!(
                f,
                "another daemon (pid {pid}) already runs on workspace root {}; stop it first or use another workspace_root",
                workspace_root.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for wrapping an I/O error with its path and action.
pub(crate) fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io {
        path,
        action,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_path_is_spelled_here() {
        let layout = Layout::new(Path::new("/w"));
        let cases = [
            (layout.daemon_lock_file(), "/w/.maestro/daemon.lock"),
            (layout.daemon_pid_file(), "/w/.maestro/daemon.pid"),
            (layout.log_file("r1"), "/w/.maestro/logs/r1.log"),
            (
                layout.retry_queue_aside_file(7),
                "/w/.maestro/retry-queue.corrupt-7",
            ),
            (
                layout.lease_owner_file("id-1"),
                "/w/.maestro/leases/id-1.json",
            ),
            (
                layout.host_health_file("build-1"),
                "/w/.maestro/hosts/build-1/health.json",
            ),
            (
                layout.host_slot_file("build-1", 0),
                "/w/.maestro/hosts/build-1/slot-0.lock",
            ),
            (
                layout.remote_lane_marker_file("build-1", "ABC-1"),
                "/w/.maestro/hosts/build-1/lanes/ABC-1.json",
            ),
            (Layout::relative().leases_dir(), ".maestro/leases"),
            (
                Layout::relative().issue_file("<lane>"),
                ".maestro/issues/<lane>.json",
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(path, Path::new(expected));
        }
        assert_eq!(Layout::lease_key("id-1.lock"), Some("id-1"));
        assert_eq!(Layout::lease_key("id-1.json"), None);
        assert!(Layout::is_state_file("r1.json"));
        assert!(!Layout::is_state_file("r1.journal.jsonl"));
        assert!(!Layout::is_state_file(".r1.json.tmp"));
        let journal = layout.journal_file("r1");
        let journal = journal.file_name().and_then(|name| name.to_str());
        assert_eq!(journal.and_then(Layout::journal_run_id), Some("r1"));
        assert_eq!(Layout::log_run_id("r1.log"), Some("r1"));
        assert_eq!(Layout::journal_run_id("r1.json"), None);
    }
}
