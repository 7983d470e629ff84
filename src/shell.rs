//! Bounded commands in a lane: hooks, validation commands and git.
//!
//! A command runs as `sh -c SCRIPT` in its own process group, with stdout and stderr merged into
//! one pipe that is drained while it runs (so a chatty command can never block on a full pipe),
//! keeping only the tail for records and logs. When the timeout passes, the whole group is
//! killed — a `make` that forked a test server does not outlive its budget. Secret variables are
//! removed from the environment: lane commands run code the agent may have written.
//!
//! The timeout bounds the wait, not the child's exit. Something the command started can leave
//! its group (`setsid`) and keep the output pipe open; reading stops once the command is gone
//! and a short grace has passed, so such an escapee never holds Maestro up. It is reported
//! ([`ShellOutcome::escaped`]), and in a process that took [`crate::custody`] it is found among
//! the orphans reparented to Maestro and killed.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How much of a command's output is kept.
pub const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellOutcome {
    /// The exit code; `None` when killed by a signal or by the timeout.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Killed because the caller's stop flag was raised (SIGTERM to Maestro).
    pub stopped: bool,
    /// Something the command started outlived it: it still held the output pipe open after the
    /// command's group was gone, or it had left the group and was killed as an orphan.
    pub escaped: bool,
    /// Escaped processes found and killed (only under [`crate::custody`]).
    pub escapees_killed: usize,
    pub duration: Duration,
    /// The last [`OUTPUT_TAIL_BYTES`] of merged stdout and stderr, lossily decoded.
    pub output_tail: String,
}

impl ShellOutcome {
    /// Exit code 0 within the time limit. An escape does not change the command's own result;
    /// callers report it.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.stopped
    }
}

/// Runs `script` with `sh -c` in `cwd`, without the variables named in `remove_env`, for at most
/// `timeout`. Fails only when the command cannot be started at all.
pub fn run(
    script: &str,
    cwd: &Path,
    remove_env: &[String],
    timeout: Duration,
) -> std::io::Result<ShellOutcome> {
    run_program("sh", &["-c", script], cwd, remove_env, &[], timeout)
}

/// Like [`run`], and also killed (group and all) soon after `stop` is raised, so a long
/// validation command does not hold up a graceful shutdown.
pub fn run_stoppable(
    script: &str,
    cwd: &Path,
    remove_env: &[String],
    timeout: Duration,
    stop: &AtomicBool,
) -> std::io::Result<ShellOutcome> {
    run_inner(
        "sh",
        &["-c", script],
        cwd,
        remove_env,
        &[],
        timeout,
        Some(stop),
        OUTPUT_TAIL_BYTES,
    )
}

/// Runs `program` with `args` (no shell) under the same rules as [`run`], with `set_env` added
/// to the environment.
pub fn run_program(
    program: &str,
    args: &[&str],
    cwd: &Path,
    remove_env: &[String],
    set_env: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<ShellOutcome> {
    run_inner(
        program,
        args,
        cwd,
        remove_env,
        set_env,
        timeout,
        None,
        OUTPUT_TAIL_BYTES,
    )
}

/// Like [`run_program`], also killed (group and all) soon after `stop` is raised (a remote
/// command through ssh: killing the ssh client ends it on the host too), keeping the last
/// `keep` bytes of output: [`OUTPUT_TAIL_BYTES`] for a log tail, more for a command whose
/// output is the answer (files read on an ssh host). Memory stays bounded by twice `keep`.
pub fn run_program_stoppable(
    program: &str,
    args: &[&str],
    cwd: &Path,
    remove_env: &[String],
    timeout: Duration,
    stop: Option<&AtomicBool>,
    keep: usize,
) -> std::io::Result<ShellOutcome> {
    run_inner(program, args, cwd, remove_env, &[], timeout, stop, keep)
}

/// How long the output may wait quietly before the loop looks at the child and the clocks again
/// (the child's exit usually closes the pipe and wakes the loop at once).
const CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Once the command has exited and its group was killed, how long the output pipe may stay
/// open before whatever holds it counts as escaped and reading stops.
pub const EOF_GRACE: Duration = Duration::from_secs(1);
/// After SIGKILL, the longest wait for the child to be reaped (it may be in uninterruptible
/// sleep; the caller is not held up by that).
const KILL_WAIT: Duration = Duration::from_secs(5);

#[allow(clippy::too_many_arguments)] // The public entry points each fix some of these.
fn run_inner(
    program: &str,
    args: &[&str],
    cwd: &Path,
    remove_env: &[String],
    set_env: &[(&str, &str)],
    timeout: Duration,
    stop: Option<&AtomicBool>,
    keep: usize,
) -> std::io::Result<ShellOutcome> {
    let started = Instant::now();
    let deadline = started + timeout;
    let (mut reader, writer) = std::io::pipe()?;
    let writer_for_stderr = writer.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer_for_stderr)
        .process_group(0);
    for name in remove_env {
        command.env_remove(name);
    }
    for (name, value) in set_env {
        command.env(name, value);
    }
    let mut child = crate::custody::spawn(&mut command)?;
    // The parent's copies of the write end went into `command`; drop it so EOF arrives when the
    // last process holding the pipe exits.
    drop(command);
    let pid = child.id();

    let mut tail = Tail {
        bytes: Vec::new(),
        keep,
    };
    let mut exit: Option<(ExitStatus, Instant)> = None;
    let mut eof = false;
    let mut killed_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut stopped = false;
    let mut pipe_held = false;
    let mut escapees_killed = 0;
    let mut quiet = Duration::from_millis(1);
    loop {
        if exit.is_none() {
            let status = child.try_wait().inspect_err(|_| kill_group(pid))?;
            if let Some(status) = status {
                exit = Some((status, Instant::now()));
                // Stragglers left in the group are killed; a finished command owns nothing.
                kill_group(pid);
                escapees_killed += crate::custody::sweep_between_sessions(Some(pid))
                    .killed
                    .len();
            }
        }
        let now = Instant::now();
        match exit {
            Some((_, exited_at)) => {
                if eof {
                    break;
                }
                if now >= exited_at + EOF_GRACE {
                    // Something outside the group still holds the pipe; stop reading.
                    pipe_held = true;
                    break;
                }
            }
            None => match killed_at {
                None => {
                    if stop.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
                        stopped = true;
                    } else if now >= deadline {
                        timed_out = true;
                    } else {
                        // Still running within its budget.
                    }
                    if stopped || timed_out {
                        kill_group(pid);
                        killed_at = Some(now);
                    }
                }
                Some(at) if now >= at + KILL_WAIT => {
                    log::warn!(
                        "command did not die after SIGKILL pid={pid} waited_ms={}",
                        KILL_WAIT.as_millis()
                    );
                    break;
                }
                Some(_) => {}
            },
        }
        if eof {
            // The pipe is closed but the child has not been reaped yet (it usually is within a
            // millisecond; a command that closed its output early may run on).
            std::thread::sleep(quiet);
            quiet = (quiet * 2).min(CHECK_INTERVAL);
            continue;
        }
        let mut wait = CHECK_INTERVAL;
        if killed_at.is_none() && exit.is_none() {
            wait = wait.min(deadline.saturating_duration_since(now));
        }
        if let Some((_, exited_at)) = exit {
            wait = wait.min((exited_at + EOF_GRACE).saturating_duration_since(now));
        }
        // An error reading our own pipe is not the command's; it still may not outlive us.
        match read_some(&mut reader, &mut tail, wait).inspect_err(|_| kill_group(pid))? {
            Drained::Data | Drained::Quiet => {}
            Drained::Eof => eof = true,
        }
    }
    // The read end closes here: an escapee still writing gets EPIPE, not Maestro's attention.
    drop(reader);
    let escaped = pipe_held || escapees_killed > 0;
    let exit_code = match exit {
        Some((status, _)) if !timed_out && !stopped => status.code(),
        _ => None,
    };
    if escaped {
        log::warn!(
            "command left processes behind program={program} pid={pid} pipe_held={pipe_held} escapees_killed={escapees_killed}"
        );
    }
    Ok(ShellOutcome {
        exit_code,
        timed_out,
        stopped,
        escaped,
        escapees_killed,
        duration: started.elapsed(),
        output_tail: tail.into_string(),
    })
}

/// Sends SIGKILL to every process in the group led by `pid`. A group that is already gone is
/// not an error.
pub fn kill_group(pid: u32) {
    crate::signals::signal_group(pid, libc::SIGKILL);
}

/// What one wait on the output pipe brought.
enum Drained {
    Data,
    Quiet,
    Eof,
}

/// Waits up to `wait` for output and reads what is there into `tail`.
fn read_some(
    reader: &mut std::io::PipeReader,
    tail: &mut Tail,
    wait: Duration,
) -> std::io::Result<Drained> {
    let mut poll_fd = libc::pollfd {
        fd: reader.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout_ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd on a descriptor we own, for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll_fd, 1, timeout_ms) };
    if ready < 0 {
        let error = std::io::Error::last_os_error();
        return if error.kind() == std::io::ErrorKind::Interrupted {
            Ok(Drained::Quiet)
        } else {
            Err(error)
        };
    }
    if ready == 0 {
        return Ok(Drained::Quiet);
    }
    // Readable or hung up: a read does not block now.
    let mut buffer = [0u8; 8192];
    match reader.read(&mut buffer) {
        Ok(0) => Ok(Drained::Eof),
        Ok(n) => {
            tail.push(&buffer[..n]);
            Ok(Drained::Data)
        }
        Err(error) if error.kind() == std::io::ErrorKind::Interrupted => Ok(Drained::Quiet),
        Err(error) => Err(error),
    }
}

/// The last [`OUTPUT_TAIL_BYTES`] of a stream.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    /// How many of the last bytes are kept.
    keep: usize,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        // Trim in bulk, not per read, so a chatty command costs one copy per `keep` bytes.
        if self.bytes.len() > 2 * self.keep {
            self.bytes.drain(..self.bytes.len() - self.keep);
        }
    }

    fn into_string(mut self) -> String {
        if self.bytes.len() > self.keep {
            self.bytes.drain(..self.bytes.len() - self.keep);
        }
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cwd() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn captures_exit_code_and_merged_output() {
        let outcome = run(
            "echo out; echo err >&2; exit 3",
            cwd(),
            &[],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(outcome.exit_code, Some(3));
        assert!(!outcome.timed_out);
        assert!(outcome.output_tail.contains("out\n"));
        assert!(outcome.output_tail.contains("err\n"));
        assert!(!outcome.success());
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        // The background sleep holds the pipe open; only a group kill ends it.
        let outcome = run(
            "sleep 30 & sleep 30; echo never",
            cwd(),
            &[],
            Duration::from_millis(200),
        )
        .unwrap();
        assert!(outcome.timed_out);
        assert_eq!(outcome.exit_code, None);
        assert!(!outcome.output_tail.contains("never"));
        assert!(outcome.duration < Duration::from_secs(20));
    }

    #[test]
    fn a_raised_stop_flag_kills_the_command() {
        let stop = AtomicBool::new(false);
        let outcome = std::thread::scope(|scope| {
            let running = scope
                .spawn(|| run_stoppable("sleep 30", cwd(), &[], Duration::from_secs(60), &stop));
            stop.store(true, Ordering::SeqCst);
            running.join().unwrap().unwrap()
        });
        assert!(outcome.stopped);
        assert!(!outcome.timed_out);
        assert!(!outcome.success());
        assert!(outcome.duration < Duration::from_secs(20));
    }

    #[test]
    fn keeps_only_the_tail() {
        let outcome = run(
            "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
            cwd(),
            &[],
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(outcome.success());
        assert!(outcome.output_tail.len() <= OUTPUT_TAIL_BYTES);
        assert!(outcome.output_tail.ends_with("line-2999\n"));
        assert!(!outcome.output_tail.contains("line-0\n"));
    }

    /// A scratch directory for scripts that write files.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("maestro-shell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts a `setsid` escapee that keeps the output pipe open for a minute, and waits until
    /// it has written its pid, so the test can kill it (the test process has no custody).
    const ESCAPE: &str = "setsid sh -c 'echo $$ > escapee.pid; exec sleep 60' & \
        while [ ! -s escapee.pid ]; do sleep 0.01; done; ";

    fn kill_escapee(dir: &Path) {
        let pid: u32 = std::fs::read_to_string(dir.join("escapee.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        crate::signals::signal_process(pid, libc::SIGKILL);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_escapee_holding_the_pipe_does_not_hold_up_a_finished_command() {
        // Issue #19, break 5: this took the escapee's whole life and was recorded as exit 0.
        let dir = scratch("escape-finished");
        let script = format!("{ESCAPE}echo started");
        let outcome = run(&script, &dir, &[], Duration::from_secs(30)).unwrap();
        kill_escapee(&dir);
        assert_eq!(outcome.exit_code, Some(0));
        assert!(outcome.escaped, "{outcome:?}");
        assert!(!outcome.timed_out);
        assert!(outcome.output_tail.contains("started"), "{outcome:?}");
        // The escapee sleeps 60 s; the command is done once its grace has passed.
        assert!(outcome.duration < Duration::from_secs(30), "{outcome:?}");
    }

    #[test]
    fn the_timeout_bounds_the_wait_even_when_an_escapee_holds_the_pipe() {
        let dir = scratch("escape-timeout");
        let script = format!("{ESCAPE}echo started; sleep 60");
        let outcome = run(&script, &dir, &[], Duration::from_millis(500)).unwrap();
        kill_escapee(&dir);
        assert!(outcome.timed_out, "{outcome:?}");
        assert!(outcome.escaped, "{outcome:?}");
        assert_eq!(outcome.exit_code, None);
        assert!(outcome.duration < Duration::from_secs(30), "{outcome:?}");
    }

    #[test]
    fn a_command_that_leaves_nothing_behind_has_not_escaped() {
        let outcome = run("sleep 0.1 & echo done", cwd(), &[], Duration::from_secs(20)).unwrap();
        assert!(outcome.success());
        assert!(!outcome.escaped, "{outcome:?}");
        assert_eq!(outcome.escapees_killed, 0);
    }

    #[test]
    fn removes_secret_variables() {
        // HOME stands in for a secret: it is set in every test environment.
        assert!(std::env::var_os("HOME").is_some());
        let outcome = run(
            "echo \"[${HOME:-absent}]\"",
            cwd(),
            &["HOME".to_string()],
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(outcome.output_tail, "[absent]\n");
    }
}
