//! `maestro demo`: the main job, offline, in one command.
//!
//! It builds a throwaway world in `--dir` (`world`: a bare origin, a source clone of a tiny
//! project, a local-tracker project with three issues, a WORKFLOW.md with branch handoff and a
//! validation command, a maestro.toml), starts the built-in mock model as a scripted agent
//! (`script`: one script per issue, all lanes sharing the one mock), and runs the real `maestro
//! daemon` over it as a child process with the real codex. It prints one line per decision as
//! the records show it (`watch`), stops the daemon with SIGTERM once every issue reached its
//! expected outcome (or something went wrong, or the deadline passed), checks the tracker, and
//! prints the status table and where to look. Exit 0 when all three issues ended as expected,
//! 1 otherwise with what went wrong, 2 when `--dir` is a directory the demo will not use.
//!
//! It writes nothing outside its directory and never touches the repository's tracked files.

mod script;
mod watch;
mod world;

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::DemoArgs;
use crate::config::{self, Lookup};
use crate::mock_model::MockModel;
use crate::{app_server, signals, status, tracker};

use watch::Watcher;
use world::World;

/// The codex version the demo (and Maestro) is built and tested against.
pub const PINNED_CODEX: &str = "0.169.0";
/// All three issues normally finish in well under a minute; this only stops a stuck demo.
const DEADLINE: Duration = Duration::from_secs(300);
/// How often the records are read.
const POLL: Duration = Duration::from_millis(250);
/// The daemon waits up to 25 s for its children on SIGTERM; then its group is killed.
const DAEMON_STOP_GRACE: Duration = Duration::from_secs(40);
/// `codex --version` takes well under a second; this only catches a hang.
const VERSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the demo could not run.
#[derive(Debug)]
pub enum Error {
    /// `--dir` exists, is not empty and was not made by the demo (or is a symlink, a file…).
    DirNotOurs { dir: PathBuf, reason: String },
    /// A daemon of an earlier demo still runs in `--dir`.
    DirInUse { dir: PathBuf, pid: u32 },
    /// No usable codex.
    CodexMissing { detail: String },
    /// A codex path `[agent] command` cannot name (it holds whitespace).
    CodexPath { path: PathBuf },
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    Git {
        command: String,
        dir: PathBuf,
        output: String,
    },
}

impl Error {
    fn io(path: &Path, action: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DirNotOurs { dir, reason } => write!(
                f,
                "demo: will not use {}: {reason}; the demo owns its directory and rebuilds it on every run, so pass --dir with a new or empty directory (or remove this one yourself)",
                dir.display()
            ),
            Error::DirInUse { dir, pid } => write!(
                f,
                "demo: a daemon (pid {pid}) still runs in the demo world {}; stop it (kill -TERM {pid}) and run the demo again",
                dir.display()
            ),
            Error::CodexMissing { detail } => write!(f, "demo: codex not found: {detail}"),
            Error::CodexPath { path } => write!(
                f,
                "demo: codex at {} cannot be used: [agent] command is split on whitespace; install codex under a path without spaces",
                path.display()
            ),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "demo: cannot {action} {}: {source}", path.display()),
            Error::Git {
                command,
                dir,
                output,
            } => write!(
                f,
                "demo: `{command}` failed in {}: {}",
                dir.display(),
                output.lines().last().unwrap_or("no output")
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// How a demo that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every issue reached its expected outcome and the tracker agrees.
    AsExpected,
    /// Something went wrong; the report on stdout says what.
    NotAsExpected,
}

/// Runs the demo; progress and the report on stdout. The caller reports an error (and, for a
/// missing codex, [`install_hint`]).
pub fn run(args: &DemoArgs) -> Result<Verdict, Error> {
    demo(args).map(|all_expected| {
        if all_expected {
            Verdict::AsExpected
        } else {
            Verdict::NotAsExpected
        }
    })
}

/// Where the install hint (and README's "Try it") puts the pinned codex.
pub const CODEX_PREFIX: &str = "$HOME/.cache/maestro-codex";

/// How to get the pinned codex, for a machine that has npm: commands to paste.
pub fn install_hint() -> String {
    format!(
        "  install the pinned version:  npm install --prefix \"{CODEX_PREFIX}\" @openai/codex@{PINNED_CODEX}\n\
         \x20 then put it on PATH:         export PATH=\"{CODEX_PREFIX}/node_modules/.bin:$PATH\"\n\
         \x20 (or set MAESTRO_CODEX_BIN to that codex; for your own maestro.toml set\n\
         \x20 [agent] command = \"<prefix>/node_modules/.bin/codex app-server\")"
    )
}

/// Line-oriented stdout that never panics: a closed pipe only stops the output.
struct Out(std::io::Stdout);

impl Out {
    fn line(&mut self, text: &str) {
        let mut lock = self.0.lock();
        let _ = writeln!(lock, "{text}");
        let _ = lock.flush();
    }
}

fn demo(args: &DemoArgs) -> Result<bool, Error> {
    let cwd =
        std::env::current_dir().map_err(|source| Error::io(Path::new("."), "read", source))?;
    let dir = cwd.join(&args.dir);
    // Judged before anything is written, so a refused directory is left exactly as it was.
    let state = world::check_dir(&dir)?;
    let codex = find_codex(&cwd)?;
    let version = app_server::codex_version(
        &[codex.display().to_string(), "app-server".to_string()],
        &[],
        &cwd,
        VERSION_TIMEOUT,
    )
    .map_err(|error| Error::CodexMissing {
        detail: format!("{} does not run: {error}", codex.display()),
    })?;
    let mut out = Out(std::io::stdout());
    out.line(&format!(
        "maestro demo: building a throwaway world in {}",
        dir.display()
    ));
    out.line(&format!("  codex: {} ({version})", codex.display()));
    if !version.contains(PINNED_CODEX) {
        out.line(&format!(
            "  warning: Maestro is built and tested against codex {PINNED_CODEX}; this one may behave differently"
        ));
    }
    world::prepare_dir(&dir, state)?;
    let mock = MockModel::start_routed(script::routes())
        .map_err(|source| Error::io(Path::new("127.0.0.1:0"), "start the mock model on", source))?;
    let world = World::at(&dir, free_port(&dir)?);
    world::build(&world, &codex, &mock)?;
    for issue in &script::ISSUES {
        out.line(&format!(
            "  {}  {} (expected: {})",
            issue.identifier, issue.title, issue.story
        ));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    if let Err(error) = signals::on_termination(move |_| flag.store(true, Ordering::SeqCst)) {
        log::warn!("cannot install signal handlers error={error}");
    }
    let mut daemon = spawn_daemon(&world)?;
    out.line(&format!(
        "maestro demo: daemon started (pid {}); dashboard while it runs: http://127.0.0.1:{}/",
        daemon.id(),
        world.port
    ));
    let started = Instant::now();
    let mut watcher = Watcher::new(world.layout(), started);
    let mut problems = Vec::new();
    loop {
        for line in watcher.poll() {
            out.line(&line);
        }
        if watcher.all_reached() {
            break;
        }
        problems = watcher.wrong();
        if !problems.is_empty() {
            break;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            problems.push(format!(
                "the daemon exited on its own ({status}); see {}",
                world.daemon_log.display()
            ));
            break;
        }
        if stop.load(Ordering::SeqCst) {
            problems.push("interrupted".to_string());
            break;
        }
        if started.elapsed() >= DEADLINE {
            problems.push(format!(
                "not finished after {} s; see {} and the run records",
                DEADLINE.as_secs(),
                world.daemon_log.display()
            ));
            break;
        }
        std::thread::sleep(POLL);
    }
    out.line("maestro demo: stopping the daemon (SIGTERM)");
    stop_daemon(&mut daemon);
    for line in watcher.poll() {
        out.line(&line);
    }
    if problems.is_empty() {
        problems.extend(check_tracker(&world));
    }
    for reason in mock.unanswered() {
        problems.push(format!(
            "the scripted model could not answer a request: {reason}"
        ));
    }
    report(&mut out, &world, &watcher, &problems);
    Ok(problems.is_empty())
}

/// codex from `MAESTRO_CODEX_BIN` when set, else `codex` on PATH (made absolute: lanes run it
/// from their own directory).
fn find_codex(cwd: &Path) -> Result<PathBuf, Error> {
    if let Some(value) = std::env::var_os("MAESTRO_CODEX_BIN").filter(|value| !value.is_empty()) {
        let path = cwd.join(value);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::CodexMissing {
                detail: format!(
                    "MAESTRO_CODEX_BIN={} is not an executable file",
                    path.display()
                ),
            })
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| cwd.join(dir).join("codex"))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Error::CodexMissing {
            detail: "MAESTRO_CODEX_BIN is not set and there is no `codex` on PATH".to_string(),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A port on 127.0.0.1 that is free right now, for the operator endpoint. Another process
/// could take it before the daemon binds it; the daemon then exits and the demo says so.
fn free_port(dir: &Path) -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|source| {
            Error::io(
                dir,
                "find a free loopback port for the dashboard of",
                source,
            )
        })
}

/// `maestro daemon` over the world, as the daemon starts its own children: this executable,
/// its own process group, output to a log file.
fn spawn_daemon(world: &World) -> Result<Child, Error> {
    let program = std::env::current_exe()
        .map_err(|source| Error::io(Path::new("maestro"), "find", source))?;
    let log = std::fs::File::create(&world.daemon_log)
        .map_err(|source| Error::io(&world.daemon_log, "create", source))?;
    let log_err = log
        .try_clone()
        .map_err(|source| Error::io(&world.daemon_log, "open", source))?;
    let mut command = Command::new(program);
    command
        .arg("daemon")
        .arg("--config")
        .arg(&world.config)
        .args(["--poll-interval-s", "1"])
        .current_dir(&world.dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .env("CODEX_HOME", &world.codex_home);
    for (name, value) in world.git_env() {
        command.env(name, value);
    }
    for name in World::removed_env() {
        command.env_remove(name);
    }
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
        .spawn()
        .map_err(|source| Error::io(&world.config, "start the daemon for", source))
}

/// SIGTERM, then the whole group killed if the daemon has not exited within the grace period.
fn stop_daemon(daemon: &mut Child) {
    let pid = daemon.id();
    signals::signal_process(pid, libc::SIGTERM);
    let deadline = Instant::now() + DAEMON_STOP_GRACE;
    while Instant::now() < deadline {
        match daemon.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => std::thread::sleep(POLL),
        }
    }
    log::warn!("the demo's daemon did not stop in time; killing its group pid={pid}");
    signals::signal_group(pid, libc::SIGKILL);
    let _ = daemon.wait();
}

/// The tracker's side of each outcome: the state and label each issue should end with.
fn check_tracker(world: &World) -> Vec<String> {
    let lookup = Lookup::from_env();
    let config = match config::load(Some(&world.config), &lookup) {
        Ok(config) => config,
        Err(error) => return vec![format!("cannot read {}: {error}", world.config.display())],
    };
    let tracker = match tracker::open(&config, script::PROJECT_SLUG) {
        Ok(tracker) => tracker,
        Err(error) => return vec![format!("cannot open the local tracker: {error}")],
    };
    let states: Vec<String> = ["Backlog", "Todo", "In Progress", "In Review", "Done"]
        .iter()
        .map(|state| state.to_string())
        .collect();
    let issues = match tracker.issues_in_states(&states) {
        Ok(issues) => issues,
        Err(error) => return vec![format!("cannot read the local tracker: {error}")],
    };
    let mut problems = Vec::new();
    for expected in &script::ISSUES {
        let Some(issue) = issues
            .iter()
            .find(|issue| issue.identifier == expected.identifier)
        else {
            problems.push(format!(
                "{} is missing from the tracker",
                expected.identifier
            ));
            continue;
        };
        if issue.state.name != expected.final_state {
            problems.push(format!(
                "{} is in {} in the tracker, expected {}",
                expected.identifier, issue.state.name, expected.final_state
            ));
        }
        if issue.has_label(script::NEEDS_ATTENTION) != expected.needs_attention {
            problems.push(format!(
                "{} {} the {} label",
                expected.identifier,
                if expected.needs_attention {
                    "lacks"
                } else {
                    "has"
                },
                script::NEEDS_ATTENTION
            ));
        }
    }
    problems
}

/// The verdict, the status table and the paths to look at.
fn report(out: &mut Out, world: &World, watcher: &Watcher, problems: &[String]) {
    out.line("");
    if problems.is_empty() {
        out.line("maestro demo: all three issues reached their expected outcome");
    } else {
        out.line("maestro demo: FAILED");
    }
    for (issue, standing) in watcher.standings() {
        let mark = match standing {
            watch::Standing::Reached => "ok     ",
            watch::Standing::Pending => "pending",
            watch::Standing::Wrong(_) => "WRONG  ",
        };
        out.line(&format!(
            "  {mark} {}  {}; ends in {}",
            issue.identifier, issue.story, issue.final_state
        ));
    }
    let lookup = Lookup::from_env();
    if let Ok(config) = config::load(Some(&world.config), &lookup) {
        out.line("");
        for line in status::render_text(&status::build(&config, 10)).lines() {
            out.line(line);
        }
    }
    let layout = world.layout();
    let state = layout.state_dir();
    out.line("");
    out.line("Look around (the world stays until the next `maestro demo`):");
    for (what, path) in [
        (
            "records ",
            format!("{}/<run_id>.json", layout.runs_dir().display()),
        ),
        (
            "journals",
            format!(
                "{} (every app-server message)",
                layout.journal_file("<run_id>").display()
            ),
        ),
        (
            "lanes   ",
            format!(
                "{}/DEMO-1, DEMO-2, DEMO-3 (git clones on branches x/demo-…)",
                world.workspace_root.display()
            ),
        ),
        (
            "tracker ",
            format!(
                "{}/ (DEMO-N.md: state and labels; DEMO-N.comments.md: every comment)",
                world.issues.display()
            ),
        ),
        (
            "origin  ",
            format!(
                "{} (git -C {} log --oneline --all)",
                world.origin.display(),
                world.origin.display()
            ),
        ),
        (
            "logs    ",
            format!(
                "{} and {}/logs/",
                world.daemon_log.display(),
                state.display()
            ),
        ),
        (
            "status  ",
            format!("maestro status --config {}", world.config.display()),
        ),
    ] {
        out.line(&format!("  {what}  {path}"));
    }
    if !problems.is_empty() {
        let mut stderr = std::io::stderr().lock();
        for problem in problems {
            let _ = writeln!(stderr, "maestro: demo: {problem}");
        }
    }
}
