//! The `maestro` binary: parse the command line, run one command, exit with its code.
//!
//! All behaviour lives in the library; this file only decides where text goes and which exit
//! code the process gets. A closed stdout (`maestro status | head -1`) counts as success, the
//! usual Unix convention for filters, and an unwritable stderr is ignored: no print path
//! panics (`maestro --bogus 2>/dev/full` still exits 2).

use std::process::ExitCode;

use maestro::cli::{self, Command};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let command = match cli::parse(args.iter().cloned()) {
        Ok(command) => command,
        Err(error) => return maestro::commands::usage_error(&error, &args).into(),
    };
    let exit = match command {
        Command::Help(topic) => maestro::commands::print(&cli::help_text(topic)),
        Command::Version => maestro::commands::print(&format!("{}\n", cli::version_text())),
        command => {
            maestro::logging::init();
            maestro::commands::execute(command)
        }
    };
    exit.into()
}
