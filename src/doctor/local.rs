//! The doctor's checks that need no network: the repository, WORKFLOW.md, `workspace_root`,
//! codex, the named secret variables and the operator address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Outcome;
use crate::config::{Provider, ServiceConfig};
use crate::settings::{self, Settings};
use crate::workflow::{self, HandoffMode};

/// `git` questions and `codex --version` answer in well under a second; this only stops a hang.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the operator-address probe waits for whatever already listens there.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the repository check found, for the checks after it.
#[derive(Debug)]
pub struct Repo {
    pub outcome: Outcome,
    /// `repo_root` is a directory (WORKFLOW.md can be looked for).
    pub exists: bool,
    /// `origin`'s configured URL.
    pub origin: Option<String>,
}

/// `repo_root` exists, is the top of a git checkout, and has an `origin` (lanes are clones of
/// it, and push their branches to its origin).
pub fn repo_root(config: &ServiceConfig) -> Repo {
    let repo_root = &config.repo_root;
    let exists = repo_root.is_dir();
    let fail = |outcome| Repo {
        outcome,
        exists,
        origin: None,
    };
    if let Err(error) = settings::check_repo_root(config) {
        return fail(Outcome::Fail {
            problem: error.to_string(),
            fix: None,
        });
    }
    match git(repo_root, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => {
            let top = PathBuf::from(top);
            if same_dir(&top, repo_root) == Some(false) {
                return fail(Outcome::fail(
                    format!(
                        "{} is inside the checkout at {}, not its top",
                        repo_root.display(),
                        top.display()
                    ),
                    format!(
                        "set repo_root in {} to {}",
                        config.path.display(),
                        top.display()
                    ),
                ));
            }
        }
        Err(output) => {
            return fail(Outcome::fail(
                format!(
                    "git does not see a repository at {}: {output}",
                    repo_root.display()
                ),
                "set repo_root to a working git clone of the repository",
            ));
        }
    }
    match crate::workspace::lane::origin_url(repo_root) {
        Ok(origin) if !origin.is_empty() => {
            // A remote URL may carry a user name and token; the line shows neither.
            let shown = crate::github::without_userinfo(&origin);
            Repo {
                outcome: Outcome::Ok(format!(
                    "{} is a git checkout (origin {shown})",
                    repo_root.display()
                )),
                exists,
                origin: Some(origin),
            }
        }
        _ => fail(Outcome::fail(
            format!("{} has no `origin` remote", repo_root.display()),
            format!(
                "git -C {} remote add origin <URL of the shared repository>: lanes push their branches there",
                repo_root.display()
            ),
        )),
    }
}

/// WORKFLOW.md parses, and agrees with maestro.toml (one project slug, one provider).
pub fn workflow(config: &ServiceConfig) -> (Outcome, Option<Settings>) {
    let path = config.workflow_file();
    let workflow = match workflow::load(&path, &config.repo_root) {
        Ok(workflow) => workflow,
        Err(error @ workflow::Error::Read { .. }) => {
            return (
                Outcome::fail(
                    error.to_string(),
                    format!(
                        "commit a WORKFLOW.md at the top of the repository (docs/spec/workflow.md), or set workflow_path in {}",
                        config.path.display()
                    ),
                ),
                None,
            );
        }
        Err(error) => {
            return (
                Outcome::fail(
                    error.to_string(),
                    "edit WORKFLOW.md as each line above says",
                ),
                None,
            );
        }
    };
    match settings::combine(config.clone(), workflow) {
        Ok(settings) => {
            let workflow = &settings.workflow;
            let mut detail = format!(
                "{} is valid (project slug {}, handoff {}, startable {})",
                workflow.path.display(),
                settings.project_slug,
                workflow.handoff.as_str(),
                workflow.tracker.startable_states.join(", ")
            );
            for warning in &workflow.warnings {
                detail.push_str(&format!("; warning: {warning}"));
            }
            (Outcome::Ok(detail), Some(settings))
        }
        Err(error) => (
            Outcome::Fail {
                problem: error.to_string(),
                fix: None,
            },
            None,
        ),
    }
}

/// `workspace_root` may be created and written, and (when the repository is there to ask) lies
/// outside the repository's tracked tree.
pub fn workspace_root(config: &ServiceConfig, repo_exists: bool) -> Outcome {
    if repo_exists {
        if let Err(error) = settings::check_workspace_root(config) {
            return Outcome::Fail {
                problem: error.to_string(),
                fix: None,
            };
        }
    }
    let root = &config.workspace_root;
    let Some(existing) = root.ancestors().find(|dir| dir.exists()) else {
        return Outcome::fail(
            format!("no part of {} exists", root.display()),
            "set workspace_root to a directory on a mounted filesystem",
        );
    };
    if !existing.is_dir() {
        return Outcome::fail(
            format!("{} is a file, not a directory", existing.display()),
            format!(
                "remove it or set workspace_root in {} elsewhere",
                config.path.display()
            ),
        );
    }
    if let Err(error) = probe_write(existing) {
        return Outcome::fail(
            format!("cannot write in {}: {error}", existing.display()),
            format!(
                "give this user write access to {}, or set workspace_root elsewhere",
                existing.display()
            ),
        );
    }
    let where_ = if config.repo_root.is_dir() && root.starts_with(&config.repo_root) {
        "inside the repository, outside its tracked tree"
    } else {
        "outside the repository"
    };
    if existing == root.as_path() {
        Outcome::Ok(format!("{} is writable ({where_})", root.display()))
    } else {
        Outcome::Ok(format!(
            "{} does not exist yet; {} is writable, so the first run can create it ({where_})",
            root.display(),
            existing.display()
        ))
    }
}

/// Creates and removes an empty file in `dir`: the only test of writability that also holds
/// for root, read-only mounts and ACLs.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".maestro-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// The `[agent] command` runs: `<codex> --version`.
pub fn codex(config: &ServiceConfig) -> Outcome {
    let command = &config.agent.command;
    let prefix = crate::app_server::codex_prefix(command).join(" ");
    match crate::app_server::codex_version(
        command,
        &config.secret_env_vars(),
        &std::env::temp_dir(),
        COMMAND_TIMEOUT,
    ) {
        Ok(version) => {
            let pinned = crate::demo::PINNED_CODEX;
            let note = if version.contains(pinned) {
                String::new()
            } else {
                format!("; Maestro is built and tested for codex-cli {pinned}")
            };
            Outcome::Ok(format!("`{prefix}` is {version}{note}"))
        }
        Err(error) => Outcome::fail(
            error.to_string(),
            format!(
                "install codex (npm install --prefix \"$HOME/.cache/maestro-codex\" @openai/codex@{}) and set [agent] command in {} to \"<that prefix>/node_modules/.bin/codex app-server\" (or, with the bare program `codex`, put it on PATH or set MAESTRO_CODEX_BIN)",
                crate::demo::PINNED_CODEX,
                config.path.display()
            ),
        ),
    }
}

/// Each secret variable maestro.toml names: set (never shown), or not read at all here.
pub fn secrets(config: &ServiceConfig, handoff: Option<HandoffMode>) -> Vec<(String, Outcome)> {
    let mut named: Vec<(&str, &str, Option<&str>, &str)> = Vec::new();
    if let Some(variable) = &config.tracker.api_key_env_var {
        let unused = (config.tracker.provider != Provider::Linear)
            .then_some("the tracker is local, so no Linear key is read");
        named.push((
            variable,
            "tracker.api_key_env_var",
            unused,
            "a Linear personal API key",
        ));
    }
    if let Some(variable) = &config.github.token_env_var {
        let unused = (handoff == Some(HandoffMode::Branch))
            .then_some("WORKFLOW.md says [handoff] mode = \"branch\", so no GitHub token is read");
        named.push((
            variable,
            "github.token_env_var",
            unused,
            "a GitHub token that can read the repository",
        ));
    }
    let mut checks: Vec<(String, Outcome)> = Vec::new();
    for (variable, field, unused, what) in named {
        if checks.iter().any(|(seen, _)| seen == variable) {
            continue;
        }
        let set = std::env::var_os(variable).is_some_and(|value| !value.is_empty());
        let outcome = match (unused, set) {
            (Some(reason), _) => Outcome::Skip(format!("named by {field}, but {reason}")),
            (None, true) => Outcome::Ok(format!("set (named by {field}; never printed)")),
            (None, false) => Outcome::fail(
                format!("{variable} (named by {field}) is unset or empty"),
                format!(
                    "export {variable}=<{what}> where maestro runs (your shell, or the systemd unit's EnvironmentFile)"
                ),
            ),
        };
        checks.push((variable.to_string(), outcome));
    }
    if checks.is_empty() {
        checks.push((
            "variables".to_string(),
            Outcome::Skip("maestro.toml names no secret variable".into()),
        ));
    }
    checks
}

/// The operator endpoint's address can be bound, or a Maestro daemon already serves it.
pub fn operator_http(config: &ServiceConfig) -> Outcome {
    let Some(address) = config.operator_http else {
        return Outcome::Skip(
            "no [operator_http] listen_address: the daemon serves no endpoint".into(),
        );
    };
    match TcpListener::bind(address) {
        Ok(listener) => {
            drop(listener);
            Outcome::Ok(format!("{address} can be bound"))
        }
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
            if maestro_answers(address) {
                Outcome::Ok(format!(
                    "{address} is served by a running maestro daemon (its /healthz answered)"
                ))
            } else {
                Outcome::fail(
                    format!("{address} is in use by another program"),
                    format!(
                        "stop that program, or set [operator_http] listen_address in {} to a free port",
                        config.path.display()
                    ),
                )
            }
        }
        Err(error) => Outcome::fail(
            format!("cannot bind {address}: {error}"),
            format!(
                "set [operator_http] listen_address in {} to an address of this host, such as \"127.0.0.1:8787\" (ports below 1024 need privileges)",
                config.path.display()
            ),
        ),
    }
}

/// Whether what listens on `address` answers `GET /healthz` the way Maestro's endpoint does.
fn maestro_answers(address: SocketAddr) -> bool {
    let mut target = address;
    if target.ip().is_unspecified() {
        target.set_ip(if target.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let Ok(mut stream) = TcpStream::connect_timeout(&target, HEALTH_TIMEOUT) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(HEALTH_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HEALTH_TIMEOUT));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: maestro-doctor\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = Vec::new();
    let _ = stream.take(16 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.starts_with("HTTP/1.") && answer.contains("\"ticks\"")
}

/// Runs `git args` in `dir`; its last output line, or why not.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    match crate::shell::run_program(
        "git",
        args,
        dir,
        &[],
        &[("GIT_TERMINAL_PROMPT", "0")],
        COMMAND_TIMEOUT,
    ) {
        Ok(outcome) => {
            let last = outcome
                .output_tail
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .to_string();
            if outcome.success() {
                Ok(last)
            } else {
                Err(last)
            }
        }
        Err(error) => Err(format!("cannot run git: {error}")),
    }
}

/// Whether two paths name the same directory; `None` when either cannot be resolved.
fn same_dir(left: &Path, right: &Path) -> Option<bool> {
    Some(left.canonicalize().ok()? == right.canonicalize().ok()?)
}
