//! Bounded commands in a lane: hooks, validation commands and git.
//!
//! A command runs as `sh -c SCRIPT` in its own process group, with stdout and stderr merged into
//! one pipe that a reader thread drains (so a chatty command can never block on a full pipe),
//! keeping only the tail for records and logs. When the timeout passes, the whole group is
//! killed — a `make` that forked a test server does not outlive its budget. Secret variables are
//! removed from the environment: lane commands run code the agent may have written.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
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
    pub duration: Duration,
    /// The last [`OUTPUT_TAIL_BYTES`] of merged stdout and stderr, lossily decoded.
    pub output_tail: String,
}

impl ShellOutcome {
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
    run_inner(program, args, cwd, remove_env, set_env, timeout, None)
}

/// How often a stoppable command checks its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

fn run_inner(
    program: &str,
    args: &[&str],
    cwd: &Path,
    remove_env: &[String],
    set_env: &[(&str, &str)],
    timeout: Duration,
    stop: Option<&AtomicBool>,
) -> std::io::Result<ShellOutcome> {
    let started = Instant::now();
    let (reader, writer) = std::io::pipe()?;
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
    let mut child = command.spawn()?;
    // The parent's copies of the write end went into `command`; drop it so EOF arrives when the
    // group exits.
    drop(command);
    let tail_thread = std::thread::spawn(move || read_tail(reader));

    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = done_tx.send(());
        status
    });
    let mut timed_out = false;
    let mut stopped = false;
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        let slice = if stop.is_some() {
            left.min(STOP_CHECK)
        } else {
            left
        };
        match done_rx.recv_timeout(slice) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if stop.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
            stopped = true;
        } else if started.elapsed() >= timeout {
            timed_out = true;
        } else {
            continue;
        }
        kill_group(pid);
        break;
    }
    let status = waiter
        .join()
        .map_err(|_| std::io::Error::other("waiter thread panicked"))??;
    // Descendants that left the group's pipe open would keep the reader alive; the group kill
    // above covers the timeout case, and a finished command's stragglers are killed here too.
    kill_group(pid);
    let output_tail = tail_thread.join().unwrap_or_default();
    Ok(ShellOutcome {
        exit_code: if timed_out || stopped {
            None
        } else {
            status.code()
        },
        timed_out,
        stopped,
        duration: started.elapsed(),
        output_tail,
    })
}

/// Sends SIGKILL to every process in the group led by `pid`. A group that is already gone is
/// not an error.
pub fn kill_group(pid: u32) {
    crate::signals::signal_group(pid, libc::SIGKILL);
}

fn read_tail(mut reader: std::io::PipeReader) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 2 * OUTPUT_TAIL_BYTES {
                    tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
                }
            }
        }
    }
    if tail.len() > OUTPUT_TAIL_BYTES {
        tail.drain(..tail.len() - OUTPUT_TAIL_BYTES);
    }
    String::from_utf8_lossy(&tail).into_owned()
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
