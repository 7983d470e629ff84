//! Command dispatch: from a parsed [`Command`] to an [`Exit`].
//!
//! Each command loads what it needs (the second parsing stage), does its work through the
//! library modules and reports one outcome. Errors are printed once, here, as
//! `maestro: <message>` (through [`crate::output`]), and mapped to the documented exit codes:
//! the library returns errors and outcomes, and only this file (with `main.rs`) turns them
//! into an [`Exit`].

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{Command, RunArgs, ShowArgs, UsageError};
use crate::config::{self, Lookup};
use crate::exit::Exit;
use crate::output::{self, complain, report};
use crate::progress_line::{self, ProgressLine};
use crate::run::json::{self as run_json, ErrorKind};
use crate::run::{deadline::Deadline, watch::Watch};
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
        Command::Show(args) => show(&args, &lookup),
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

/// Logs the workflow's warnings and opens the tracker it names.
fn open_tracker(
    settings: &settings::Settings,
) -> Result<Box<dyn tracker::Tracker>, tracker::Error> {
    for warning in &settings.workflow.warnings {
        log::warn!(
            "workflow warning: {warning} path={}",
            settings.workflow.path.display()
        );
    }
    tracker::open(&settings.config, &settings.project_slug)
}

/// `maestro run --once`: one attempt, one summary line (or, with `--json`, one JSON object) on
/// stdout, the progress on stderr, one exit code per outcome.
fn run_live(args: &RunArgs, lookup: &Lookup) -> Exit {
    let stop = Arc::new(AtomicBool::new(false));
    // The deadline bounds the whole run, so its clock starts before anything is loaded.
    let deadline = args
        .deadline
        .map(|total| Deadline::arm(total, Arc::clone(&stop)));
    let progress = progress_mode(args).map(|mode| {
        if mode == progress_line::Mode::Live {
            // The live line replaces the info log; warnings and errors still print above it.
            log::set_max_level(log::LevelFilter::Warn);
        }
        ProgressLine::start(mode)
    });
    // The live line is erased before an error is reported, so the error starts its own line.
    let abandon = || {
        if let Some(progress) = &progress {
            progress.abandon();
        }
    };
    let snapshot = args
        .target
        .as_ref()
        .and_then(|target| target.workflow_snapshot.as_deref());
    let settings = match settings::load_with_workflow(args.config.as_deref(), lookup, snapshot)
        .and_then(|settings| settings::check_tracker_writes(&settings.config).map(|()| settings))
    {
        Ok(settings) => settings,
        Err(error) => {
            abandon();
            return failed(args.json, ErrorKind::Config, &error, Exit::Usage);
        }
    };
    let tracker = match open_tracker(&settings) {
        Ok(tracker) => tracker,
        Err(error) => {
            abandon();
            return tracker_failed(args.json, &error);
        }
    };
    let options = run::Options {
        target: args.target.clone(),
        stop: Arc::clone(&stop),
        issue: args.issue.clone(),
        deadline,
        watch: progress.clone().map(|progress| progress as Arc<dyn Watch>),
    };
    // SIGTERM/SIGINT interrupt the running turn; the attempt is then recorded as interrupted.
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
            if let Some(progress) = &progress {
                progress.finish(&summary);
            }
            let text = if args.json {
                let layout = Layout::new(&settings.config.workspace_root);
                run_json::render(&run_json::report(&summary, exit.code(), &layout))
            } else {
                format!("{}\n", summary.line())
            };
            match print(&text) {
                Exit::Success => exit,
                failure => failure,
            }
        }
        Err(error) => {
            abandon();
            failed(args.json, ErrorKind::Runtime, &error, Exit::Failure)
        }
    }
}

/// How `run --once` shows its progress on stderr: a live line when a person watches a terminal
/// and asked for no logs (`RUST_LOG` unset), else plain lines; none in the daemon's children,
/// whose stderr is their log file.
fn progress_mode(args: &RunArgs) -> Option<progress_line::Mode> {
    if args.target.is_some() {
        return None;
    }
    if crate::terminal::stderr_is_terminal() && std::env::var_os("RUST_LOG").is_none() {
        Some(progress_line::Mode::Live)
    } else {
        Some(progress_line::Mode::Plain)
    }
}

/// Reports `error` on stderr and, when the command line asked for `--json`, as the JSON error
/// document on stdout too (so a script's parser always gets an object); returns `exit`.
fn failed(json: bool, kind: ErrorKind, error: &dyn std::error::Error, exit: Exit) -> Exit {
    report(error);
    if !json {
        return exit;
    }
    match print(&run_json::error_document(
        kind,
        &error.to_string(),
        exit.code(),
    )) {
        Exit::Success => exit,
        failure => failure,
    }
}

/// A usage error: one line on stderr and, when `--json` was asked for a command that prints
/// JSON for scripts (`run`, `show`), the JSON error document on stdout; exit 2.
pub fn usage_error(error: &UsageError, args: &[OsString]) -> Exit {
    complain(&error.to_string());
    if crate::cli::json_wanted(error, args) {
        let _ = print(&run_json::error_document(
            ErrorKind::Usage,
            &error.to_string(),
            Exit::Usage.code(),
        ));
    }
    Exit::Usage
}

/// `maestro show ISSUE|RUN_ID`: needs only maestro.toml, like `status`.
fn show(args: &ShowArgs, lookup: &Lookup) -> Exit {
    let config = match config::load(args.config.as_deref(), lookup) {
        Ok(config) => config,
        Err(error) => return failed(args.json, ErrorKind::Config, &error, Exit::Usage),
    };
    match crate::show::build(&config, &args.query) {
        Ok(shown) if args.json => print(&crate::show::to_json(&shown)),
        Ok(shown) => print(&crate::show::render_text(&shown)),
        Err(error) => failed(args.json, ErrorKind::NotFound, &error, Exit::Failure),
    }
}

/// `run --once --dry-run`: reads only. Without any config it explains that there is nothing to
/// do and succeeds, so a fresh checkout can run it; a `--config` path that does not exist is
/// still a usage error (a typo must not look like success). With `--issue IDENT` it explains
/// that one issue, judged alone as `run --once --issue IDENT` would judge it.
fn dry_run(args: &RunArgs, lookup: &Lookup) -> Exit {
    let settings = match settings::load(args.config.as_deref(), lookup) {
        Ok(settings) => settings,
        Err(settings::Error::Config(config::Error::NotFound { .. })) if args.config.is_none() => {
            return print("dry run: no maestro config found; nothing to execute.\n");
        }
        Err(error) => return failed(args.json, ErrorKind::Config, &error, Exit::Usage),
    };
    let tracker = match open_tracker(&settings) {
        Ok(tracker) => tracker,
        Err(error) => return tracker_failed(args.json, &error),
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
    let built = match &args.issue {
        Some(identifier) => dry_run::build_one(&settings, tracker.as_ref(), identifier, inputs_for),
        None => dry_run::build_with(&settings, tracker.as_ref(), inputs_for),
    };
    match built {
        Ok(report) if args.json => print(&dry_run::render_json(&report)),
        Ok(report) => print(&dry_run::render_text(&report)),
        Err(error) => tracker_failed(args.json, &error),
    }
}

/// Tracker errors the operator fixes in the config exit 2; the rest are runtime failures.
fn tracker_failed(json: bool, error: &tracker::Error) -> Exit {
    if error.is_config() {
        failed(json, ErrorKind::Config, error, Exit::Usage)
    } else {
        failed(json, ErrorKind::Runtime, error, Exit::Failure)
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
