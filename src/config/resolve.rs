//! Finding maestro.toml: `--config PATH`, else `./tmp/maestro.toml`, else the XDG path; and
//! loading the one found. The environment is read once, into a [`Lookup`], so tests need not
//! touch the process environment. Loading also applies `MAESTRO_CODEX_BIN`, the one environment
//! override of the file: where the bare program name `codex` of `[agent] command` is found.

use std::path::{Path, PathBuf};

use super::{Error, ServiceConfig, parse};

/// What config resolution may look at; a struct so tests need not touch the process environment.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub cwd: PathBuf,
    pub xdg_config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
    /// `MAESTRO_CODEX_BIN`: the codex to run when `[agent] command`'s program is the bare word
    /// `codex` ([`Lookup::agent_command`]).
    pub codex_bin: Option<PathBuf>,
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
            codex_bin: non_empty(CODEX_BIN_VAR),
        }
    }

    /// `command` with `MAESTRO_CODEX_BIN` in place of its program when that program is the bare
    /// word `codex` (the default), which would otherwise be looked up on PATH; a relative value
    /// is made absolute against the current directory, because lanes run it from their own
    /// directory. An explicit path in `[agent] command` is never overridden: the file says
    /// exactly what runs, and test fakes named there stay what they are.
    pub fn agent_command(&self, mut command: Vec<String>) -> Vec<String> {
        if let (Some(codex_bin), Some(program)) = (&self.codex_bin, command.first_mut()) {
            if program == CODEX_PROGRAM {
                *program = self.cwd.join(codex_bin).display().to_string();
            }
        }
        command
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

/// The environment variable that says where `codex` is.
pub const CODEX_BIN_VAR: &str = "MAESTRO_CODEX_BIN";

/// The program name [`CODEX_BIN_VAR`] stands in for.
const CODEX_PROGRAM: &str = "codex";

/// Finds the config file: `--config PATH` when given (it must exist), else the first candidate
/// that exists.
pub fn resolve(explicit: Option<&Path>, lookup: &Lookup) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        let path = lookup.cwd.join(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::Missing {
                is_dir: path.is_dir(),
                path,
            })
        };
    }
    let tried = lookup.candidates();
    tried
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or(Error::NotFound { tried })
}

/// Resolves and loads the config in one step, with `MAESTRO_CODEX_BIN` applied
/// ([`Lookup::agent_command`]).
pub fn load(explicit: Option<&Path>, lookup: &Lookup) -> Result<ServiceConfig, Error> {
    let path = resolve(explicit, lookup)?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let mut config = parse(&path, &text, lookup.home.as_deref())?;
    config.agent.command = lookup.agent_command(std::mem::take(&mut config.agent.command));
    Ok(config)
}
