//! The child process: spawn in its own process group, observe its exit, kill the group.
//!
//! Owns the `std::process::Child` of a session; signals go through [`crate::signals`].
//! It does not read or write the pipes (the reader threads and the session do) and does not
//! decide *when* to stop the child (the session's shutdown sequence does).

use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Error, SessionConfig};

/// How often a bounded wait checks whether the child has exited. There is no portable way to
/// wait on a child with a timeout in std, and a waiter thread per session would outlive the
/// child in the common case; a 5 ms poll costs nothing measurable.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// A spawned child and its pipes, before the session takes them apart.
pub(crate) struct Spawned {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// The child process, leader of its own process group.
#[derive(Debug)]
pub(crate) struct Child {
    inner: std::process::Child,
    exit: Option<ExitStatus>,
}

/// Starts `config.command` in `config.cwd`, in a new process group, with every variable named
/// in `remove_env` absent and `extra_env` added.
pub(crate) fn spawn(config: &SessionConfig) -> Result<Spawned, Error> {
    let (program, args) = config.command.split_first().ok_or(Error::EmptyCommand)?;
    if !config.cwd.is_dir() {
        // Otherwise the spawn fails with a bare ENOENT that reads as "codex is missing".
        return Err(Error::Spawn {
            program: program.clone(),
            cwd: config.cwd.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the working directory does not exist",
            ),
        });
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&config.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A group of its own lets shutdown reach whatever the child spawned (the npm wrapper's
    // native binary, shells the model started) with one signal, and keeps a terminal's
    // Ctrl-C aimed at Maestro from hitting codex before Maestro has decided what to do.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    for name in &config.remove_env {
        command.env_remove(name);
    }
    for (name, value) in &config.extra_env {
        command.env(name, value);
    }
    let spawn_error = |source| Error::Spawn {
        program: program.clone(),
        cwd: config.cwd.clone(),
        source,
    };
    let mut inner = crate::custody::spawn(&mut command).map_err(spawn_error)?;
    let pipes = (inner.stdin.take(), inner.stdout.take(), inner.stderr.take());
    let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
        // Unreachable with Stdio::piped(); handled rather than unwrapped so a std change
        // cannot leave an unreaped child behind.
        let _ = inner.kill();
        let _ = inner.wait();
        return Err(spawn_error(std::io::Error::other("child pipes missing")));
    };
    Ok(Spawned {
        child: Child { inner, exit: None },
        stdin,
        stdout,
        stderr,
    })
}

impl Child {
    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// The exit status if the child has exited (reaping it), without blocking.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.inner.try_wait() {
                self.exit = Some(status);
            }
        }
        self.exit
    }

    /// Waits until the child exits or `deadline` passes.
    pub fn wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.try_exit() {
                return Some(status);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::sleep(EXIT_POLL.min(deadline - now));
        }
    }

    /// Sends `signal` to every process in the child's group. A group that is already gone is
    /// not an error: the point is that nothing in it survives.
    pub fn signal_group(&self, signal: libc::c_int) {
        crate::signals::signal_group(self.pid(), signal);
    }
}

/// A short human description of an exit status: `exit code 3`, `killed by signal 9`.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "exited".to_string(),
    }
}

/// The child's stdin, written without ever blocking past a deadline.
///
/// The pipe is switched to non-blocking mode: a child that stops reading would otherwise
/// freeze the session thread in `write` once the pipe buffer (64 KiB) fills, and no timeout
/// could fire. Writes wait for room with `poll(2)` until the caller's deadline instead.
#[derive(Debug)]
pub(crate) struct Stdin {
    pipe: ChildStdin,
}

impl Stdin {
    pub fn new(pipe: ChildStdin) -> Stdin {
        use std::os::fd::AsRawFd;
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl(2) on a descriptor we own; F_GETFL/F_SETFL touch no memory.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            }
        }
        Stdin { pipe }
    }

    /// Writes all of `bytes`, waiting for pipe space until `deadline`.
    pub fn write_all(&mut self, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
        use std::io::{ErrorKind, Write};
        while !bytes.is_empty() {
            match self.pipe.write(bytes) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    self.wait_writable(deadline)?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn wait_writable(&self, deadline: Instant) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the app-server stopped reading its stdin",
            ));
        }
        let mut poll_fd = libc::pollfd {
            fd: self.pipe.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        let timeout_ms = libc::c_int::try_from(remaining.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, timeout_ms) };
        if ready < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        // Ready, timed out or interrupted: the next write (or the deadline check) decides.
        Ok(())
    }
}
