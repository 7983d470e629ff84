//! The workspace boundary: everything Maestro keeps under `workspace_root`.
//!
//! ```text
//! <workspace_root>/
//!   <LANE-KEY>/                      one git clone per issue (the lane)
//!   .maestro/
//!     slots/slot-<n>.lock            dispatch slots (fs2 locks)
//!     leases/<key>.lock, <key>.json  per-issue leases and their last owner
//!     runs/<run_id>.json             run records (one per attempt)
//!     runs/<run_id>.journal.jsonl    the app-server protocol journal of that attempt
//!     activity/<key>.json            live lane activity markers
//!     issues/<key>.json              per-issue bookkeeping: attempts, last error, guard
//!     retry-queue.json               the daemon's persisted retry queue
//!     tracker-budget.json            what the daemon's tracker requests cost (intake report)
//!     workflow-snapshot.md           the daemon's last known good WORKFLOW.md, read by children
//!     logs/<run_id>.log              stdout and stderr of each daemon child
//! ```
//!
//! [`Layout`] is the only place these paths are spelled. `lock` owns the fs2 calls, `record` the
//! JSON on disk, `lane` the git clones. Nothing here talks to the tracker or the agent, and
//! nothing of Maestro's is ever written inside a lane's git work tree.

pub mod lane;
pub mod lock;
pub mod record;
pub mod retry_queue;

use std::fmt;
use std::path::{Path, PathBuf};

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

    pub fn retry_queue_file(&self) -> PathBuf {
        self.state_dir().join("retry-queue.json")
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

    /// The lane directory for a lane key (see [`lane::lane_key`]).
    pub fn lane_dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
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
    /// A hook that must succeed failed.
    Hook {
        hook: &'static str,
        lane: PathBuf,
        detail: String,
    },
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
            Error::Hook { hook, lane, detail } => write!(
                f,
                "hook {hook} failed in {}: {detail}; fix the hook in WORKFLOW.md",
                lane.display()
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
