//! `maestro doctor`: everything a live run needs, checked in the order a run needs it, one line
//! per check (`ok`, `FAIL` with the fix, or `skip` with the reason).
//!
//! `local.rs` holds the checks that need no network (config, repository, WORKFLOW.md,
//! `workspace_root`, codex, secrets, the operator address); `remote.rs` the ones that ask the
//! tracker and GitHub (skipped with `--offline`, except a local tracker, which is files);
//! `hosts.rs` five per `[worker] ssh_hosts` host (ssh, git, codex, its workspace root, origin
//! from there; skipped with `--offline` too, so a host that is down never stops a unit's
//! `ExecStartPre` — the daemon sidelines such a host itself). Each
//! check is a function returning an [`Outcome`]; this file runs them, prints them and returns
//! the [`Tally`] (`commands` exits 0 when nothing failed, 1 otherwise).
//!
//! It changes nothing: it reads both files, asks git, runs `codex --version`, binds and releases
//! the operator address, and sends Linear and GitHub read-only queries. The one thing it writes
//! is a probe file proving `workspace_root` (or the parent that will hold it) writable, removed
//! at once, here and under each ssh host's root. Secret values are read only to be sent where the
//! run would send them; never printed.

mod hosts;
mod local;
mod remote;

use std::io::Write;

use crate::cli::DoctorArgs;
use crate::config::{self, Lookup, ServiceConfig};
use crate::escape;
use crate::settings::Settings;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed; the detail says what was seen.
    Ok(String),
    /// Failed: what is wrong and what to do about it (`None` when the problem's own text,
    /// such as a config diagnostic, already says).
    Fail {
        problem: String,
        fix: Option<String>,
    },
    /// Not checked, and why (an earlier check failed, `--offline`, not configured).
    Skip(String),
}

impl Outcome {
    fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Outcome {
        Outcome::Fail {
            problem: problem.into(),
            fix: Some(fix.into()),
        }
    }

    fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }
}

/// How many checks passed, failed and were skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The checks after `config`, in order: what is listed as skipped when there is no config.
const AFTER_CONFIG: [&str; 11] = [
    "repo_root",
    "workflow",
    "workspace_root",
    "codex",
    "secrets",
    "operator_http",
    "linear key",
    "project",
    "states",
    "labels",
    "github",
];

/// Runs every check, printing each line as it completes (the network checks can take seconds).
pub fn run(args: &DoctorArgs, lookup: &Lookup) -> Tally {
    let mut printer = Printer::default();
    let config = match config::load(args.config.as_deref(), lookup) {
        Ok(config) => config,
        Err(error) => {
            printer.header("no usable maestro.toml");
            printer.check("config", config_failure(&error));
            for name in AFTER_CONFIG {
                printer.check(name, Outcome::Skip("needs a valid maestro.toml".into()));
            }
            return printer.finish();
        }
    };
    printer.header(&config.path.display().to_string());
    printer.check(
        "config",
        Outcome::Ok(format!(
            "valid (project {}, {} tracker)",
            config.id,
            config.tracker.provider.name()
        )),
    );
    let repo = local::repo_root(&config);
    printer.check("repo_root", repo.outcome);
    let (outcome, settings) = if repo.exists {
        local::workflow(&config)
    } else {
        (
            Outcome::Skip("needs repo_root, where WORKFLOW.md is read".into()),
            None,
        )
    };
    printer.check("workflow", outcome);
    printer.check(
        "workspace_root",
        local::workspace_root(&config, repo.exists),
    );
    printer.check("codex", local_codex(&config));
    let handoff = settings.as_ref().map(|settings| settings.workflow.handoff);
    for (variable, outcome) in local::secrets(&config, handoff) {
        printer.check(&format!("secret {variable}"), outcome);
    }
    printer.check("operator_http", local::operator_http(&config));
    let facts = remote::Facts {
        config: &config,
        settings: settings.as_ref(),
        origin: repo.origin.as_deref(),
        offline: args.offline,
    };
    for (name, outcome) in remote::tracker(&facts) {
        printer.check(name, outcome);
    }
    // A lane on a host comes after the tracker and before the handoff, as in a run.
    hosts::check(
        &config,
        repo.origin.as_deref(),
        args.offline,
        &mut |name, outcome| printer.check(name, outcome),
    );
    printer.check("github", remote::github(&facts));
    printer.finish()
}

/// The controller's own codex, unless lanes run on ssh hosts: then no codex runs here (there is
/// no fallback to local execution) and each host's `codex` line says what its lanes would run.
fn local_codex(config: &ServiceConfig) -> Outcome {
    match &config.worker {
        Some(_) => Outcome::Skip(
            "lanes run on the [worker] ssh_hosts, never here; each host's codex is checked below"
                .into(),
        ),
        None => local::codex(config),
    }
}

fn config_failure(error: &config::Error) -> Outcome {
    match error {
        config::Error::NotFound { .. } | config::Error::Missing { .. } => Outcome::fail(
            error.to_string(),
            "run 'maestro init' in the repository's checkout, or pass --config PATH",
        ),
        config::Error::Read { path, .. } => Outcome::fail(
            error.to_string(),
            format!("make {} readable by this user", path.display()),
        ),
        config::Error::Invalid { .. } => Outcome::Fail {
            problem: error.to_string(),
            fix: Some("edit maestro.toml as each line above says".into()),
        },
    }
}

/// The project slug a tracker check uses: the settings' (both files agreed), else the config's
/// own when WORKFLOW.md could not be read.
fn project_slug<'a>(config: &'a ServiceConfig, settings: Option<&'a Settings>) -> Option<&'a str> {
    settings
        .map(|settings| settings.project_slug.as_str())
        .or(config.tracker.project_slug.as_deref())
}

/// ` (did you mean "X"?)` when `name` is a likely typo of one of `known`.
fn did_you_mean(name: &str, known: &[String]) -> String {
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    crate::toml_fields::closest(name.trim(), &known)
        .map(|candidate| format!("; did you mean \"{candidate}\"?"))
        .unwrap_or_default()
}

/// Prints check lines and counts them. Every value is escaped: check details carry paths,
/// codex's output and the tracker's names, written by anyone. A closed or full stdout is
/// ignored here, as in the probe: the exit code still says whether the checks passed.
#[derive(Default)]
struct Printer {
    tally: Tally,
}

impl Printer {
    fn header(&mut self, config: &str) {
        self.write(&format!("maestro doctor: {}\n", escape::text(config)));
    }

    fn check(&mut self, name: &str, outcome: Outcome) {
        let (status, text) = match outcome {
            Outcome::Ok(detail) => {
                self.tally.passed += 1;
                ("ok", detail)
            }
            Outcome::Fail { problem, fix } => {
                self.tally.failed += 1;
                let text = match fix {
                    Some(fix) => format!("{problem}\nfix: {fix}"),
                    None => problem,
                };
                ("FAIL", text)
            }
            Outcome::Skip(reason) => {
                self.tally.skipped += 1;
                ("skip", reason)
            }
        };
        let mut out = String::new();
        for (index, line) in escape::lines(&text).split('\n').enumerate() {
            if index == 0 {
                out.push_str(&format!("{status:<5} {name}: {line}\n"));
            } else {
                out.push_str(&format!("      {line}\n"));
            }
        }
        self.write(&out);
    }

    fn finish(mut self) -> Tally {
        let Tally {
            passed,
            failed,
            skipped,
        } = self.tally;
        let summary = if failed == 0 {
            format!("maestro doctor: no check failed ({passed} ok, {skipped} skipped)\n")
        } else {
            format!(
                "maestro doctor: {failed} FAILED ({passed} ok, {skipped} skipped); fix them in order, the first may cause the others\n"
            )
        };
        self.write(&summary);
        self.tally
    }

    fn write(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_for_typos_only() {
        let known = vec!["In Review".to_string(), "Todo".to_string()];
        assert_eq!(
            did_you_mean("In Reveiw", &known),
            "; did you mean \"In Review\"?"
        );
        assert_eq!(did_you_mean("Shipped", &known), "");
    }
}
