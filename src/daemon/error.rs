//! Why the daemon could not start or stop cleanly: the boundary's one error, and how a
//! shutdown ended.
//!
//! Each variant keeps the inner error whole; `Display` and `source` are the inner error's own,
//! so the operator reads the same message as from any other command. Nothing here chooses an
//! exit code: `commands` maps these (a config to fix is a usage error, the rest failures).

use std::fmt;

use crate::{operator_http, settings, tracker, workflow, workspace};

/// What stopped the daemon before its loop ran.
#[derive(Debug)]
pub enum Error {
    /// The SIGTERM/SIGINT handlers could not be installed.
    Signals(std::io::Error),
    /// maestro.toml or WORKFLOW.md is invalid.
    Settings(settings::Error),
    /// WORKFLOW.md could not be opened for reloading.
    Workflow(workflow::Error),
    /// The tracker the config names cannot be opened.
    Tracker(tracker::Error),
    /// The workspace root's daemon lock is held by another daemon, or cannot be taken.
    Lock(workspace::Error),
    /// The operator endpoint cannot listen on its address.
    OperatorHttp(operator_http::BindError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Signals(error) => write!(f, "cannot install signal handlers: {error}"),
            Error::Settings(error) => error.fmt(f),
            Error::Workflow(error) => error.fmt(f),
            Error::Tracker(error) => error.fmt(f),
            Error::Lock(error) => error.fmt(f),
            Error::OperatorHttp(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Signals(error) => Some(error),
            Error::Settings(error) => error.source(),
            Error::Workflow(error) => error.source(),
            Error::Tracker(error) => error.source(),
            Error::Lock(error) => error.source(),
            Error::OperatorHttp(error) => error.source(),
        }
    }
}

/// How the daemon's shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every child stopped within its grace.
    Clean,
    /// A child had to be killed, or the shutdown deadline passed.
    Forced,
}
