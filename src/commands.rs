//! Command dispatch: from a parsed [`Command`] to an [`Exit`].
//!
//! Each command loads what it needs (the second parsing stage), does its work through the
//! library modules and reports one outcome. Errors are printed once, here, as
//! `maestro: <message>` (through [`crate::output`]), and mapped to the documented exit codes:
//! the library returns errors and outcomes, and only this file (with `main.rs`) turns them
//! into an [`Exit`].

use crate::cli::{Command, RunArgs};
use crate::config::{self, Lookup};
use crate::exit::Exit;
use crate::output::{self, complain, report};
use crate::tracker::Issue;
use crate::workspace::Layout;
use crate::{claims, dry_run, run, settings, tracker};

/// Runs one command to completion.
pub fn execute(command: Command) -> Exit {
    let lookup = Lookup::from_env();
    match command {
        Command::Help(_) | Command::Version => Exit::Success,
        Command::Probe(args) => probe(&args, &lookup),
        Command::Status(args) => status(&args, &lookup),
        Command::Run(args) if args.dry_run => dry_run(&args, &lookup),
        Command::Run(args) => run_live(&args, &lookup),
        Command::Daemon(args) => daemon(&args, &lookup),
        Command::Demo(args) => demo(&args),
        Command::Doctor(args) => doctor(&args, &lookup),
        Command::Init => init(&lookup),
    }
}

/// `maestro protocol probe`: a config to fix is a usage error, a failed step a failure.
fn probe(args: &crate::cli::ProbeArgs, lookup: &Lookup) -> Exit {
    match crate::probe::run(args, lookup) {
        Ok(()) => Exit::Success,
        Err(error) => {
            report(&error);
            match error {
                crate::probe::Error::Config(_) => Exit::Usage,
                crate::probe::Error::Step { .. } => Exit::Failure,
            }
        }
    }
}

/// `maestro demo`: a directory the demo will not use is a usage error; a missing codex comes
/// with the commands that install the pinned one.
fn demo(args: &crate::cli::DemoArgs) -> Exit {
    use crate::demo::{Error, Verdict};
    match crate::demo::run(args) {
        Ok(Verdict::AsExpected) => Exit::Success,
        Ok(Verdict::NotAsExpected) => Exit::Failure,
        Err(error) => {
            report(&error);
            if matches!(error, Error::CodexMissing { .. }) {
                output::hint(&format!("{}\n", crate::demo::install_hint()));
            }
            match error {
                Error::DirNotOurs { .. } => Exit::Usage,
                _ => Exit::Failure,
            }
        }
    }
}

/// `maestro doctor`: 0 when no check failed, 1 otherwise.
fn doctor(args: &crate::cli::DoctorArgs, lookup: &Lookup) -> Exit {
    if crate::doctor::run(args, lookup).failed == 0 {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// `maestro init`: run where it cannot work is a usage error, a failed write a failure.
fn init(lookup: &Lookup) -> Exit {
    match crate::init::run(lookup) {
        Ok(text) => print(&text),
        Err(error) => {
            report(&error);
            match error {
                crate::init::Error::Refused(_) => Exit::Usage,
                crate::init::Error::Failed(_) => Exit::Failure,
            }
        }
    }
}

/// `maestro daemon`: refuses up front what its `run --once` children would each refuse (local
/// issue files git tracks), then hands over to [`crate::daemon::run`], which loads and reports
/// everything else.
fn daemon(args: &crate::cli::DaemonArgs, lookup: &Lookup) -> Exit {
    if let Ok(config) = config::load(args.config.as_deref(), lookup) {
        if let Err(error) = settings::check_tracker_writes(&config) {
            report(&error);
            return Exit::Usage;
        }
    }
    let stopped = crate::daemon::run(
        args.config.as_deref(),
        lookup,
        std::time::Duration::from_secs(args.poll_interval_s),
    );
    match stopped {
        Ok(crate::daemon::Stopped::Clean) => Exit::Success,
        Ok(crate::daemon::Stopped::Forced) => Exit::Failure,
        Err(error) => {
            report(&error);
            daemon_failure(&error)
        }
    }
}

/// A config to fix (maestro.toml, WORKFLOW.md, the tracker's settings) exits 2; the rest are
/// runtime failures.
fn daemon_failure(error: &crate::daemon::Error) -> Exit {
    use crate::daemon::Error;
    match error {
        Error::Settings(_) | Error::Workflow(_) => Exit::Usage,
        Error::Tracker(error) if error.is_config() => Exit::Usage,
        Error::Signals(_) | Error::Tracker(_) | Error::Lock(_) | Error::OperatorHttp(_) => {
            Exit::Failure
        }
    }
}

/// `maestro status`: needs only maestro.toml (a broken WORKFLOW.md must not hide the lanes).
/// The snapshot is printed whatever the paths say; a `repo_root` that does not exist is a
/// configuration error (warned, exit 2 after the snapshot), a `workspace_root` that does not
/// exist only a warning (nothing has run with this config yet, or the path is wrong), so an
/// empty table is never mistaken for a healthy project.
fn status(args: &crate::cli::StatusArgs, lookup: &Lookup) -> Exit {
    let config = match crate::config::load(args.config.as_deref(), lookup) {
        Ok(config) => config,
        Err(error) => {
            report(&error);
            return Exit::Usage;
        }
    };
    let mut exit = Exit::Success;
    if !config.repo_root.is_dir() {
        complain(&format!(
            "warning: repo_root {} (from {}) does not exist or is not a directory; run, dry run and daemon will refuse this config (check it with 'maestro doctor')",
            config.repo_root.display(),
            config.path.display()
        ));
        exit = Exit::Usage;
    }
    if !config.workspace_root.is_dir() {
        complain(&format!(
            "warning: workspace_root {} (from {}) does not exist: nothing has run with this config yet, or the path is wrong",
            config.workspace_root.display(),
            config.path.display()
        ));
    }
    let snapshot = crate::status::build(&config, args.limit);
    let text = if args.json {
        format!("{}\n", crate::status::to_json(&snapshot))
    } else {
        crate::status::render_text(&snapshot)
    };
    match print(&text) {
        Exit::Success => exit,
        failure => failure,
    }
}

/// Writes `text` to stdout ([`output::print`]): a closed pipe is success, any other write
/// error (reported) a failure.
pub fn print(text: &str) -> Exit {
    match output::print(text) {
        Ok(()) => Exit::Success,
        Err(output::Unwritten) => Exit::Failure,
    }
}

/// Logs the workflow's warnings and opens the tracker it names (errors reported, as exit codes).
fn open_tracker(settings: &settings::Settings) -> Result<Box<dyn tracker::Tracker>, Exit> {
    for warning in &settings.workflow.warnings {
        log::warn!(
            "workflow warning: {warning} path={}",
            settings.workflow.path.display()
        );
    }
    tracker::open(&settings.config, &settings.project_slug).map_err(|error| tracker_failure(&error))
}

/// `maestro run --once`: one attempt, one summary line on stdout, one exit code per outcome.
fn run_live(args: &RunArgs, lookup: &Lookup) -> Exit {
    let snapshot = args
        .target
        .as_ref()
        .and_then(|target| target.workflow_snapshot.as_deref());
    let settings = match settings::load_with_workflow(args.config.as_deref(), lookup, snapshot)
        .and_then(|settings| settings::check_tracker_writes(&settings.config).map(|()| settings))
    {
        Ok(settings) => settings,
        Err(error) => {
            report(&error);
            return Exit::Usage;
        }
    };
    let tracker = match open_tracker(&settings) {
        Ok(tracker) => tracker,
        Err(exit) => return exit,
    };
    let options = run::Options {
        target: args.target.clone(),
        ..run::Options::default()
    };
    // SIGTERM/SIGINT interrupt the running turn; the attempt is then recorded as interrupted.
    let stop = std::sync::Arc::clone(&options.stop);
    if let Err(error) = crate::signals::on_termination(move |_| {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }) {
        log::warn!("cannot install signal handlers error={error}");
    }
    // Hooks, validation commands and the agent can leave their process groups; as their
    // subreaper this process finds and kills what they leave behind (`custody`).
    if let Err(error) = crate::custody::take() {
        log::warn!("cannot become the subreaper of lane commands error={error}");
    }
    let result = run::run_once(&settings, tracker.as_ref(), &options);
    crate::custody::sweep(None);
    match result {
        Ok(summary) => {
            let exit = run_exit(&summary.outcome);
            match print(&format!("{}\n", summary.line())) {
                Exit::Success => exit,
                failure => failure,
            }
        }
        Err(error) => {
            report(&error);
            Exit::Failure
        }
    }
}

/// `run --once --dry-run`: reads only. Without any config it explains that there is nothing to
/// do and succeeds, so a fresh checkout can run it; a `--config` path that does not exist is
/// still a usage error (a typo must not look like success).
fn dry_run(args: &RunArgs, lookup: &Lookup) -> Exit {
    let settings = match settings::load(args.config.as_deref(), lookup) {
        Ok(settings) => settings,
        Err(settings::Error::Config(config::Error::NotFound { .. })) if args.config.is_none() => {
            return print("dry run: no maestro config found; nothing to execute.\n");
        }
        Err(error) => {
            report(&error);
            return Exit::Usage;
        }
    };
    let tracker = match open_tracker(&settings) {
        Ok(tracker) => tracker,
        Err(exit) => return exit,
    };
    let layout = Layout::new(&settings.config.workspace_root);
    let execution = &settings.workflow.execution;
    let inputs_for = |issues: &[Issue]| {
        let local = claims::gather(&layout, execution, issues, true);
        for problem in &local.problems {
            log::warn!("state file problem: {problem}");
        }
        dry_run::Inputs {
            claims: local.claims,
            prior_attempts: local.prior_attempts,
        }
    };
    match dry_run::build_with(&settings, tracker.as_ref(), inputs_for) {
        Ok(report) if args.json => print(&dry_run::render_json(&report)),
        Ok(report) => print(&dry_run::render_text(&report)),
        Err(error) => tracker_failure(&error),
    }
}

/// Tracker errors the operator fixes in the config exit 2; the rest are runtime failures.
fn tracker_failure(error: &tracker::Error) -> Exit {
    report(error);
    if error.is_config() {
        Exit::Usage
    } else {
        Exit::Failure
    }
}

/// The exit code of a `run --once` that ended with `outcome` (README's table; the daemon
/// reads the codes back through [`crate::exit::Written`]).
fn run_exit(outcome: &run::Outcome) -> Exit {
    match outcome {
        run::Outcome::Handoff { .. } => Exit::Success,
        run::Outcome::RetryScheduled { .. } => Exit::RetryScheduled,
        run::Outcome::HumanRequired { .. } => Exit::HumanRequired,
        run::Outcome::Interrupted => Exit::Failure,
        run::Outcome::Skipped { .. } | run::Outcome::NothingToDo { .. } => Exit::NothingToDo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Written;
    use crate::workspace::record::ErrorClass;

    /// The daemon decides a finished child's outcome from its code: what `run --once` exits
    /// with must read back as the outcome it wrote, and a retry or an interruption as none.
    #[test]
    fn each_run_outcome_reads_back_from_its_exit_code() {
        let class = ErrorClass::ValidationFailed;
        let cases = [
            (
                run::Outcome::Handoff {
                    review: "pr=x".into(),
                },
                Some(Written::Handoff),
            ),
            (
                run::Outcome::HumanRequired {
                    error_class: class.clone(),
                },
                Some(Written::HumanRequired),
            ),
            (
                run::Outcome::Skipped {
                    reason: "left".into(),
                },
                Some(Written::Nothing),
            ),
            (run::Outcome::RetryScheduled { error_class: class }, None),
            (run::Outcome::Interrupted, None),
        ];
        for (outcome, written) in cases {
            let code = i32::from(run_exit(&outcome).code());
            assert_eq!(Written::from_code(Some(code)), written, "{outcome:?}");
        }
    }
}
