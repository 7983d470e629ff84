//! Finding maestro.toml: `--config PATH`, else `./tmp/maestro.toml`, else the XDG path; and
//! loading the one found. The environment is read once, into a [`Lookup`], so tests need not
//! touch the process environment.

use std::path::{Path, PathBuf};

use super::{Error, ServiceConfig, parse};

/// What config resolution may look at; a struct so tests need not touch the process environment.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub cwd: PathBuf,
    pub xdg_config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Lookup {
    /// The real process environment.
    pub fn from_env() -> Lookup {
        let non_empty = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Lookup {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            xdg_config_home: non_empty("XDG_CONFIG_HOME"),
            home: non_empty("HOME"),
        }
    }

    /// Candidate paths in resolution order (without `--config`).
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cwd.join("tmp").join("maestro.toml")];
        let config_home = self
            .xdg_config_home
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".config")));
        if let Some(config_home) = config_home {
            paths.push(config_home.join("maestro").join("maestro.toml"));
        }
        paths
    }
}

/// Finds the config file: `--config PATH` when given (it must exist), else the first candidate
/// that exists.
pub fn resolve(explicit: Option<&Path>, lookup: &Lookup) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        let path = lookup.cwd.join(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotFound { tried: vec![path] })
        };
    }
    let tried = lookup.candidates();
    tried
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or(Error::NotFound { tried })
}

/// Resolves and loads the config in one step.
pub fn load(explicit: Option<&Path>, lookup: &Lookup) -> Result<ServiceConfig, Error> {
    let path = resolve(explicit, lookup)?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    parse(&path, &text, lookup.home.as_deref())
}
