//! The command line: what the operator typed, validated, with no I/O.
//!
//! Parsing is the first of two stages (as in ripgrep's `lowargs`): this module turns argv into a
//! [`Command`] or a [`UsageError`] and never reads a file. `--help` and `--version` return here,
//! before any config is looked at, so they work on a host with no maestro.toml. Resolving config
//! paths and loading files is the second stage, done by each command.

mod duration;
mod help;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;

pub use help::{help_text, version_text};

/// What `maestro` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Print help for a topic and exit 0.
    Help(Topic),
    /// Print the version and exit 0.
    Version,
    /// `maestro protocol probe`.
    Probe(ProbeArgs),
    /// `maestro status`.
    Status(StatusArgs),
    /// `maestro show`.
    Show(ShowArgs),
    /// `maestro run --once`.
    Run(RunArgs),
    /// `maestro daemon`.
    Daemon(DaemonArgs),
    /// `maestro demo`.
    Demo(DemoArgs),
    /// `maestro doctor`.
    Doctor(DoctorArgs),
    /// `maestro init`.
    Init,
}

/// Which help page to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Main,
    Protocol,
    Probe,
    Status,
    Show,
    Run,
    Daemon,
    Demo,
    Doctor,
    Init,
}

impl Topic {
    /// The words that name this topic on the command line, for error hints.
    pub fn command_words(self) -> &'static str {
        match self {
            Topic::Main => "maestro",
            Topic::Protocol => "maestro protocol",
            Topic::Probe => "maestro protocol probe",
            Topic::Status => "maestro status",
            Topic::Show => "maestro show",
            Topic::Run => "maestro run",
            Topic::Daemon => "maestro daemon",
            Topic::Demo => "maestro demo",
            Topic::Doctor => "maestro doctor",
            Topic::Init => "maestro init",
        }
    }
}

/// Options of `maestro protocol probe`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeArgs {
    pub config: Option<PathBuf>,
    /// Use the operator's real Codex configuration and model (costs tokens).
    pub live: bool,
}

/// Options of `maestro status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArgs {
    pub config: Option<PathBuf>,
    pub json: bool,
    /// How many finished runs the `recent` section keeps.
    pub limit: usize,
}

/// Options of `maestro show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShowArgs {
    pub config: Option<PathBuf>,
    pub json: bool,
    /// An issue identifier (its latest run) or a run id.
    pub query: String,
}

/// Default for `status --limit`.
pub const DEFAULT_STATUS_LIMIT: usize = 10;

/// Options of `maestro run --once`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunArgs {
    pub config: Option<PathBuf>,
    pub dry_run: bool,
    pub json: bool,
    /// `--issue IDENT`: take (or, with `--dry-run`, explain) exactly this issue.
    pub issue: Option<String>,
    /// `--deadline DURATION`: the wall-clock bound of the whole run.
    pub deadline: Option<Duration>,
    /// Set by the daemon (hidden flags, docs/spec/daemon.md): run exactly this issue.
    pub target: Option<TargetArgs>,
}

/// The daemon's hidden `run --once` flags: which issue, under which run id and attempt, and
/// the inherited dispatch-slot descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetArgs {
    pub issue_id: String,
    pub run_id: String,
    pub attempt: u32,
    /// `(slot index, inherited descriptor)`.
    pub slot: Option<(usize, i32)>,
    /// The daemon's last known good WORKFLOW.md, used instead of the repository's file.
    pub workflow_snapshot: Option<PathBuf>,
    /// `--repair`: this run is a review repair of the issue's retained lane
    /// (docs/spec/review.md); `attempt` is then the repair's number.
    pub repair: bool,
}

/// Options of `maestro daemon`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonArgs {
    pub config: Option<PathBuf>,
    pub poll_interval_s: u64,
}

/// Options of `maestro demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// The directory the demo world is built in (and owns).
    pub dir: PathBuf,
}

/// Options of `maestro doctor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorArgs {
    pub config: Option<PathBuf>,
    /// Skip the checks that need the network (Linear, GitHub).
    pub offline: bool,
}

/// Default for `demo --dir`, relative to the current directory.
pub const DEFAULT_DEMO_DIR: &str = "tmp/demo";

/// Default for `daemon --poll-interval-s`.
pub const DEFAULT_POLL_INTERVAL_S: u64 = 60;

/// A command line that cannot be run: one line for the operator, plus where help lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    /// What was wrong and what was expected.
    pub message: String,
    /// The help topic that explains the fix.
    pub topic: Topic,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (see '{} --help')",
            self.message,
            self.topic.command_words()
        )
    }
}

impl std::error::Error for UsageError {}

/// The commands, in the order an operator meets them; what `maestro --help` lists.
pub const COMMANDS: [&str; 8] = [
    "init", "doctor", "protocol", "status", "show", "run", "daemon", "demo",
];

/// Parses the arguments after the program name.
///
/// Options that every project command takes (`--config PATH`) may also come before the
/// command (`maestro --config PATH status`), since that is where people put global options.
pub fn parse<I>(args: I) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut parser = lexopt::Parser::from_args(args);
    let topic = Topic::Main;
    let mut global_config = None;
    loop {
        let Some(arg) = next(&mut parser, topic)? else {
            return match global_config {
                None => Ok(Command::Help(Topic::Main)),
                Some(_) => Err(usage(
                    topic,
                    "--config needs a command after it, e.g. 'maestro --config PATH status'"
                        .to_string(),
                )),
            };
        };
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Topic::Main)),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long("config") => {
                if global_config.is_some() {
                    return Err(usage(topic, "--config is given twice".to_string()));
                }
                global_config = Some(path_value(&mut parser, "--config", topic)?);
            }
            Value(word) => {
                let command = parse_command(&string(word, topic)?, &mut parser)?;
                return with_global_config(command, global_config);
            }
            other => {
                return Err(unexpected(
                    other,
                    topic,
                    &["--config", "--help", "--version"],
                ));
            }
        }
    }
}

fn parse_command(word: &str, parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    match word {
        "protocol" => parse_protocol(parser),
        "status" => parse_status(parser),
        "show" => parse_show(parser),
        "run" => parse_run(parser),
        "daemon" => parse_daemon(parser),
        "demo" => parse_demo(parser),
        "doctor" => parse_doctor(parser),
        "init" => parse_init(parser),
        "help" => parse_help(parser),
        other => Err(usage(
            Topic::Main,
            format!(
                "unknown command '{other}'{}; expected one of: {}",
                did_you_mean(other, &COMMANDS),
                COMMANDS.join(", ")
            ),
        )),
    }
}

/// Puts a `--config` given before the command into the command's own arguments.
fn with_global_config(
    mut command: Command,
    config: Option<PathBuf>,
) -> Result<Command, UsageError> {
    let Some(config) = config else {
        return Ok(command);
    };
    let topic = command_topic(&command);
    match command {
        // `maestro --config X status --help` still asks for help.
        Command::Help(_) | Command::Version => return Ok(command),
        Command::Demo(_) | Command::Init => return Err(no_config_option(topic)),
        _ => {}
    }
    let slot = match &mut command {
        Command::Probe(args) => &mut args.config,
        Command::Status(args) => &mut args.config,
        Command::Show(args) => &mut args.config,
        Command::Run(args) => &mut args.config,
        Command::Daemon(args) => &mut args.config,
        Command::Doctor(args) => &mut args.config,
        Command::Help(_) | Command::Version | Command::Demo(_) | Command::Init => {
            return Err(no_config_option(topic));
        }
    };
    if slot.is_some() {
        return Err(usage(
            topic,
            "--config is given twice (before and after the command); give it once".to_string(),
        ));
    }
    *slot = Some(config);
    Ok(command)
}

fn no_config_option(topic: Topic) -> UsageError {
    usage(
        topic,
        format!(
            "'--config' does not apply to '{}'; it reads no maestro.toml",
            topic.command_words()
        ),
    )
}

fn command_topic(command: &Command) -> Topic {
    match command {
        Command::Help(topic) => *topic,
        Command::Version => Topic::Main,
        Command::Probe(_) => Topic::Probe,
        Command::Status(_) => Topic::Status,
        Command::Show(_) => Topic::Show,
        Command::Run(_) => Topic::Run,
        Command::Daemon(_) => Topic::Daemon,
        Command::Demo(_) => Topic::Demo,
        Command::Doctor(_) => Topic::Doctor,
        Command::Init => Topic::Init,
    }
}

/// ` (did you mean 'x'?)` when `word` is a likely typo of one of `candidates`, else nothing.
fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    crate::toml_fields::closest(word, candidates)
        .map(|candidate| format!(" (did you mean '{candidate}'?)"))
        .unwrap_or_default()
}

/// `maestro help [COMMAND]` is an alias for `--help`, because people type it.
fn parse_help(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Main;
    let Some(arg) = next(parser, topic)? else {
        return Ok(Command::Help(Topic::Main));
    };
    let Value(word) = arg else {
        return Err(unexpected(arg, topic, &[]));
    };
    let found = match string(word, topic)?.as_str() {
        "protocol" => Topic::Protocol,
        "probe" => Topic::Probe,
        "status" => Topic::Status,
        "show" => Topic::Show,
        "run" => Topic::Run,
        "daemon" => Topic::Daemon,
        "demo" => Topic::Demo,
        "doctor" => Topic::Doctor,
        "init" => Topic::Init,
        other => {
            return Err(usage(
                topic,
                format!(
                    "no help for '{other}'{}; expected one of: {}",
                    did_you_mean(other, &COMMANDS),
                    COMMANDS.join(", ")
                ),
            ));
        }
    };
    expect_end(parser, found)?;
    Ok(Command::Help(found))
}

fn parse_protocol(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Protocol;
    let Some(arg) = next(parser, topic)? else {
        return Err(usage(
            topic,
            "'protocol' needs a subcommand; expected: probe".to_string(),
        ));
    };
    match arg {
        Short('h') | Long("help") => Ok(Command::Help(Topic::Protocol)),
        Value(word) => match string(word, topic)?.as_str() {
            "probe" => parse_probe(parser),
            other => Err(usage(
                topic,
                format!("unknown protocol subcommand '{other}'; expected: probe"),
            )),
        },
        other => Err(unexpected(other, topic, &["--help"])),
    }
}

fn parse_probe(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Probe;
    let mut args = ProbeArgs::default();
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("config") => args.config = Some(path_value(parser, "--config", topic)?),
            Long("live") => args.live = true,
            other => return Err(unexpected(other, topic, &["--config", "--live"])),
        }
    }
    Ok(Command::Probe(args))
}

fn parse_status(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Status;
    let mut args = StatusArgs {
        config: None,
        json: false,
        limit: DEFAULT_STATUS_LIMIT,
    };
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("config") => args.config = Some(path_value(parser, "--config", topic)?),
            Long("json") => args.json = true,
            Long("limit") => {
                args.limit = number_value(parser, "--limit", topic, 0)? as usize;
            }
            other => return Err(unexpected(other, topic, &["--config", "--json", "--limit"])),
        }
    }
    Ok(Command::Status(args))
}

fn parse_run(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Run;
    let mut args = RunArgs::default();
    let mut once = false;
    let (mut issue_id, mut run_id, mut attempt, mut slot_fd, mut slot_index) =
        (None, None, None, None, None);
    let mut workflow_snapshot = None;
    let mut repair = false;
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("once") => once = true,
            Long("dry-run") => args.dry_run = true,
            Long("json") => args.json = true,
            Long("config") => args.config = Some(path_value(parser, "--config", topic)?),
            Long("issue") => args.issue = Some(text_value(parser, "--issue", topic)?),
            Long("deadline") => args.deadline = Some(duration_value(parser, "--deadline", topic)?),
            // The daemon's hidden flags (docs/spec/runtime.md, "Hidden daemon flags").
            Long("issue-id") => issue_id = Some(text_value(parser, "--issue-id", topic)?),
            Long("run-id") => run_id = Some(text_value(parser, "--run-id", topic)?),
            Long("attempt") => attempt = Some(number_value(parser, "--attempt", topic, 1)?),
            Long("slot-fd") => slot_fd = Some(number_value(parser, "--slot-fd", topic, 0)?),
            Long("slot-index") => {
                slot_index = Some(number_value(parser, "--slot-index", topic, 0)?);
            }
            Long("workflow-snapshot") => {
                workflow_snapshot = Some(path_value(parser, "--workflow-snapshot", topic)?);
            }
            Long("repair") => repair = true,
            other => {
                return Err(unexpected(
                    other,
                    topic,
                    &[
                        "--once",
                        "--dry-run",
                        "--json",
                        "--issue",
                        "--deadline",
                        "--config",
                    ],
                ));
            }
        }
    }
    if !once {
        return Err(usage(
            topic,
            "'run' needs --once (for continuous operation use 'maestro daemon')".to_string(),
        ));
    }
    // A daemon started before `--issue-id` existed passes the issue id as `--issue`, always with
    // --run-id and --attempt: that form still means the daemon's target.
    if issue_id.is_none() && run_id.is_some() && attempt.is_some() {
        issue_id = args.issue.take();
    }
    args.target = match (issue_id, run_id, attempt) {
        (None, None, None)
            if slot_fd.is_none()
                && slot_index.is_none()
                && workflow_snapshot.is_none()
                && !repair =>
        {
            None
        }
        (Some(issue_id), Some(run_id), Some(attempt)) => {
            let slot = match (slot_index, slot_fd) {
                (Some(index), Some(fd)) => Some((
                    usize::try_from(index).unwrap_or(usize::MAX),
                    i32::try_from(fd).unwrap_or(i32::MAX),
                )),
                (None, None) => None,
                _ => {
                    return Err(usage(
                        topic,
                        "--slot-fd and --slot-index go together".to_string(),
                    ));
                }
            };
            Some(TargetArgs {
                issue_id,
                run_id,
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                slot,
                workflow_snapshot,
                repair,
            })
        }
        _ => {
            return Err(usage(
                topic,
                "--issue-id, --run-id and --attempt go together (they are set by the daemon; to run one issue, use --issue IDENTIFIER)"
                    .to_string(),
            ));
        }
    };
    if args.target.is_some() && args.issue.is_some() {
        return Err(usage(
            topic,
            "--issue cannot be combined with the daemon's --issue-id".to_string(),
        ));
    }
    if args.target.is_some() && args.dry_run {
        return Err(usage(
            topic,
            "--dry-run cannot be combined with the daemon's --issue-id".to_string(),
        ));
    }
    if args.deadline.is_some() && args.dry_run {
        return Err(usage(
            topic,
            "--deadline bounds a live run; a --dry-run changes nothing and needs none".to_string(),
        ));
    }
    Ok(Command::Run(args))
}

fn parse_show(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Show;
    let mut config = None;
    let mut json = false;
    let mut query: Option<String> = None;
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("config") => config = Some(path_value(parser, "--config", topic)?),
            Long("json") => json = true,
            Value(word) if query.is_none() => {
                let word = string(word, topic)?;
                if word.trim().is_empty() {
                    return Err(usage(topic, "the issue or run id is empty".to_string()));
                }
                query = Some(word);
            }
            other => return Err(unexpected(other, topic, &["--config", "--json"])),
        }
    }
    let Some(query) = query else {
        return Err(usage(
            topic,
            "'show' needs an issue identifier (ABC-12) or a run id".to_string(),
        ));
    };
    Ok(Command::Show(ShowArgs {
        config,
        json,
        query,
    }))
}

fn parse_daemon(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Daemon;
    let mut args = DaemonArgs {
        config: None,
        poll_interval_s: DEFAULT_POLL_INTERVAL_S,
    };
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("config") => args.config = Some(path_value(parser, "--config", topic)?),
            Long("poll-interval-s") => {
                args.poll_interval_s = number_value(parser, "--poll-interval-s", topic, 1)?;
            }
            other => return Err(unexpected(other, topic, &["--config", "--poll-interval-s"])),
        }
    }
    Ok(Command::Daemon(args))
}

fn parse_demo(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Demo;
    let mut args = DemoArgs {
        dir: PathBuf::from(DEFAULT_DEMO_DIR),
    };
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("dir") => {
                let value = parser
                    .value()
                    .map_err(|_| usage(topic, "--dir needs a value: a directory".to_string()))?;
                if value.is_empty() {
                    return Err(usage(topic, "--dir needs a non-empty path".to_string()));
                }
                args.dir = PathBuf::from(value);
            }
            other => return Err(unexpected(other, topic, &["--dir"])),
        }
    }
    Ok(Command::Demo(args))
}

fn parse_doctor(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Doctor;
    let mut args = DoctorArgs::default();
    while let Some(arg) = next(parser, topic)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(topic)),
            Long("config") => args.config = Some(path_value(parser, "--config", topic)?),
            Long("offline") => args.offline = true,
            other => return Err(unexpected(other, topic, &["--config", "--offline"])),
        }
    }
    Ok(Command::Doctor(args))
}

fn parse_init(parser: &mut lexopt::Parser) -> Result<Command, UsageError> {
    let topic = Topic::Init;
    match next(parser, topic)? {
        None => Ok(Command::Init),
        Some(Short('h') | Long("help")) => Ok(Command::Help(topic)),
        Some(other) => Err(unexpected(other, topic, &[])),
    }
}

fn next(parser: &mut lexopt::Parser, topic: Topic) -> Result<Option<lexopt::Arg<'_>>, UsageError> {
    parser
        .next()
        .map_err(|error| usage(topic, lexopt_message(error)))
}

fn expect_end(parser: &mut lexopt::Parser, topic: Topic) -> Result<(), UsageError> {
    match next(parser, topic)? {
        None => Ok(()),
        Some(arg) => Err(unexpected(arg, topic, &[])),
    }
}

fn path_value(
    parser: &mut lexopt::Parser,
    flag: &str,
    topic: Topic,
) -> Result<PathBuf, UsageError> {
    let value = parser.value().map_err(|_| {
        usage(
            topic,
            format!("{flag} needs a value: a path to maestro.toml"),
        )
    })?;
    if value.is_empty() {
        return Err(usage(topic, format!("{flag} needs a non-empty path")));
    }
    Ok(PathBuf::from(value))
}

fn text_value(parser: &mut lexopt::Parser, flag: &str, topic: Topic) -> Result<String, UsageError> {
    let value = parser
        .value()
        .map_err(|_| usage(topic, format!("{flag} needs a value")))?;
    let text = string(value, topic)?;
    if text.trim().is_empty() {
        return Err(usage(topic, format!("{flag} needs a non-empty value")));
    }
    Ok(text)
}

fn duration_value(
    parser: &mut lexopt::Parser,
    flag: &str,
    topic: Topic,
) -> Result<Duration, UsageError> {
    let value = parser.value().map_err(|_| {
        usage(
            topic,
            format!("{flag} needs a value: a duration such as 45m, 90s or 1h30m"),
        )
    })?;
    let text = string(value, topic)?;
    duration::parse_duration(&text).ok_or_else(|| {
        usage(
            topic,
            format!(
                "{flag} expects a duration such as 45m, 90s or 1h30m (whole numbers with s, m or h), got '{text}'"
            ),
        )
    })
}

fn number_value(
    parser: &mut lexopt::Parser,
    flag: &str,
    topic: Topic,
    minimum: u64,
) -> Result<u64, UsageError> {
    let value = parser
        .value()
        .map_err(|_| usage(topic, format!("{flag} needs a value: a whole number")))?;
    let text = string(value, topic)?;
    match text.parse::<u64>() {
        Ok(number) if number >= minimum => Ok(number),
        Ok(_) => Err(usage(
            topic,
            format!("{flag} must be at least {minimum}, got '{text}'"),
        )),
        Err(_) => Err(usage(
            topic,
            format!("{flag} expects a whole number, got '{text}'"),
        )),
    }
}

fn string(value: OsString, topic: Topic) -> Result<String, UsageError> {
    value
        .into_string()
        .map_err(|raw| usage(topic, format!("argument {raw:?} is not valid UTF-8")))
}

fn unexpected(arg: lexopt::Arg<'_>, topic: Topic, expected: &[&str]) -> UsageError {
    let what = match arg {
        Short(c) => format!("unknown option '-{c}'"),
        Long(name) => format!(
            "unknown option '--{name}'{}",
            did_you_mean(&format!("--{name}"), expected)
        ),
        Value(value) => format!("unexpected argument '{}'", value.to_string_lossy()),
    };
    let message = if expected.is_empty() {
        format!("{what} for '{}'", topic.command_words())
    } else {
        format!(
            "{what} for '{}'; expected one of: {}",
            topic.command_words(),
            expected.join(", ")
        )
    };
    usage(topic, message)
}

fn lexopt_message(error: lexopt::Error) -> String {
    match error {
        lexopt::Error::UnexpectedValue { option, value } => format!(
            "option '{option}' does not take a value (got '{}')",
            value.to_string_lossy()
        ),
        other => other.to_string(),
    }
}

fn usage(topic: Topic, message: String) -> UsageError {
    UsageError { message, topic }
}

/// Whether a usage error should also be reported as JSON on stdout: the command line asked for
/// `--json` of a command whose JSON a script reads (`run`, `show`), so a script parsing stdout
/// gets an object even when the command line was wrong.
pub fn json_wanted(error: &UsageError, args: &[OsString]) -> bool {
    matches!(error.topic, Topic::Run | Topic::Show)
        && args
            .iter()
            .take_while(|arg| *arg != "--")
            .any(|arg| arg == "--json")
}

#[cfg(test)]
mod tests;
