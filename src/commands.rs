//! Command dispatch: from a parsed [`Command`] to an [`Exit`].
//!
//! Each command loads what it needs (the second parsing stage), does its work through the
//! library modules and reports one outcome. Errors are printed once, here, as
//! `maestro: <message>`, and mapped to the documented exit codes.

use std::io::Write;

use crate::cli::Command;
use crate::config::Lookup;
use crate::exit::Exit;
use crate::settings;

/// Runs one command to completion.
pub fn execute(command: Command) -> Exit {
    let lookup = Lookup::from_env();
    match command {
        Command::Help(_) | Command::Version => Exit::Success,
        Command::Probe(args) => crate::probe::run(&args, &lookup),
        Command::Status(args) => with_settings(args.config.as_deref(), &lookup, "status"),
        Command::Run(args) => with_settings(args.config.as_deref(), &lookup, "run --once"),
        Command::Daemon(args) => with_settings(args.config.as_deref(), &lookup, "daemon"),
    }
}

/// Validates the settings, then reports that the command's machinery has not landed yet.
fn with_settings(explicit: Option<&std::path::Path>, lookup: &Lookup, name: &str) -> Exit {
    match settings::load(explicit, lookup) {
        Ok(settings) => {
            for warning in &settings.workflow.warnings {
                log::warn!(
                    "workflow warning: {warning} path={}",
                    settings.workflow.path.display()
                );
            }
            not_implemented(name)
        }
        Err(error) => {
            report(&error);
            Exit::Usage
        }
    }
}

fn not_implemented(name: &str) -> Exit {
    eprintln!("maestro: '{name}' is not implemented yet in this build");
    Exit::Failure
}

/// Prints an error (and its source chain) once, to stderr.
pub fn report(error: &dyn std::error::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "maestro: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !error.to_string().contains(&text) {
            let _ = writeln!(stderr, "  caused by: {text}");
        }
        source = cause.source();
    }
}
