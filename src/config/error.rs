//! The config boundary's one error: no file, an unreadable file, or a file that breaks the
//! contract (every problem listed with line and column).

use std::fmt;
use std::path::PathBuf;

use crate::toml_fields::{self, Diagnostic};

/// Why a config could not be used.
#[derive(Debug)]
pub enum Error {
    /// No config file exists at any candidate path (no `--config` was given).
    NotFound { tried: Vec<PathBuf> },
    /// The file `--config` names does not exist, or is not a file.
    Missing { path: PathBuf, is_dir: bool },
    /// The file exists but could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but breaks the contract; every problem is listed.
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { tried } => {
                let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "no maestro config found (tried: {}); run 'maestro init' in the repository's checkout to write tmp/maestro.toml, or pass --config PATH",
                    tried.join(", ")
                )
            }
            Error::Missing { path, is_dir } if *is_dir => write!(
                f,
                "config {} (given with --config) is a directory; pass the path of the maestro.toml file",
                path.display()
            ),
            Error::Missing { path, .. } => write!(
                f,
                "config file {} (given with --config) does not exist; check the path, or run 'maestro init' to write tmp/maestro.toml",
                path.display()
            ),
            Error::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            Error::Invalid { path, diagnostics } => {
                let count = diagnostics.len();
                let noun = if count == 1 { "problem" } else { "problems" };
                write!(
                    f,
                    "invalid config {} ({count} {noun}):\n{}",
                    path.display(),
                    toml_fields::format_diagnostics(path, diagnostics)
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
