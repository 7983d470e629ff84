//! The child process: spawn in its own process group, observe its exit, kill the group.
//!
//! Owns the `std::process::Child` of a session; signals go through [`crate::signals`].
//! It does not read or write the pipes (the reader threads and the session do) and does not
//! decide *when* to stop the child (the session's shutdown sequence does).
//!
//! This is also the spawn seam for remote sessions ([`Launcher::Remote`]): the local child is
//! then the command that carries the app-server's stdio from another host (ssh, built by
//! `crate::worker`), and the only remote-specific work here is reading the first stdout line,
//! which names the remote process group, before the session reads the protocol, and asking
//! the launcher to end that group when the local command did not end cleanly.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Error, SessionConfig};

/// How often a bounded wait checks whether the child has exited. There is no portable way to
/// wait on a child with a timeout in std, and a waiter thread per session would outlive the
/// child in the common case; a 5 ms poll costs nothing measurable.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// How a session's command is started.
#[derive(Debug, Clone, Default)]
pub enum Launcher {
    /// `SessionConfig.command` here, in `SessionConfig.cwd`.
    #[default]
    Local,
    /// A local command (ssh) that runs the app-server on another host; the session still runs
    /// here, over that command's stdio.
    Remote(RemoteLaunch),
}

/// A remote start: the local command line and how to clean up after it.
#[derive(Clone)]
pub struct RemoteLaunch {
    /// Where the app-server runs, for logs and the journal.
    pub host: String,
    /// The local command line (program first) that runs the app-server on the host; the
    /// app-server command is already inside it.
    pub argv: Vec<String>,
    /// The local command's working directory.
    pub local_cwd: PathBuf,
    /// Variables removed from the local command's environment besides the session's own.
    pub remove_env: Vec<String>,
    /// The first stdout line the remote side prints starts with this; the rest of the line
    /// identifies its process group for `cleanup`. Other lines before it (a login banner) are
    /// skipped.
    pub id_prefix: String,
    /// Ends what is left of the remote side, given that identity: called (bounded by the
    /// launcher) when the local command did not exit cleanly by itself.
    pub cleanup: Arc<dyn Fn(&str) + Send + Sync>,
}

impl std::fmt::Debug for RemoteLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLaunch")
            .field("host", &self.host)
            .field("argv", &self.argv)
            .field("local_cwd", &self.local_cwd)
            .field("id_prefix", &self.id_prefix)
            .finish_non_exhaustive()
    }
}

/// At most this many stdout lines (of at most [`ID_LINE_BYTES`]) may come before the remote
/// side's identity line: a login banner, not a protocol.
const ID_LINES: usize = 16;
const ID_LINE_BYTES: usize = 4096;

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
    /// For a remote session: the host, the remote group's identity and the launch.
    remote: Option<(String, RemoteLaunch)>,
}

/// Starts the session's command — `config.command` in `config.cwd`, or the launcher's remote
/// command line — in a new process group, with every variable named in `remove_env` absent
/// and (locally) `extra_env` added.
pub(crate) fn spawn(config: &SessionConfig, launcher: &Launcher) -> Result<Spawned, Error> {
    let Launcher::Remote(launch) = launcher else {
        return spawn_local(config);
    };
    let (program, args) = launch.argv.split_first().ok_or(Error::EmptyCommand)?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(&launch.local_cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    for name in config.remove_env.iter().chain(&launch.remove_env) {
        command.env_remove(name);
    }
    let spawn_error = |source| Error::Spawn {
        program: program.clone(),
        cwd: launch.local_cwd.clone(),
        source,
    };
    let inner = crate::custody::spawn(&mut command).map_err(spawn_error)?;
    let mut spawned = take_pipes(inner).map_err(spawn_error)?;
    let deadline = Instant::now() + config.read_timeout;
    match read_identity(&mut spawned, &launch.id_prefix, deadline) {
        Ok(identity) => {
            spawned.child.remote = Some((identity, launch.clone()));
            Ok(spawned)
        }
        Err(reason) => {
            // Nothing runs remotely that needs cleaning (no identity came back), and the local
            // command is stopped and reaped here.
            spawned.child.signal_group(libc::SIGKILL);
            let status = spawned
                .child
                .wait_until(Instant::now() + Duration::from_secs(5));
            let stderr = drain(&mut spawned.stderr, Instant::now() + Duration::from_secs(1));
            let last = stderr
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            // ssh exits 255 for its own failures (connect, authentication, a dropped
            // connection); that is the host, not codex.
            let kind = if status.and_then(|s| s.code()) == Some(255) {
                std::io::ErrorKind::NotConnected
            } else {
                std::io::ErrorKind::Other
            };
            let exit = status.map_or_else(|| "still running".to_string(), describe_exit);
            Err(spawn_error(std::io::Error::new(
                kind,
                format!(
                    "the app-server did not start on host {} ({reason}; {exit}): {}",
                    launch.host,
                    crate::escape::text(&last)
                ),
            )))
        }
    }
}

fn spawn_local(config: &SessionConfig) -> Result<Spawned, Error> {
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
    let inner = crate::custody::spawn(&mut command).map_err(spawn_error)?;
    take_pipes(inner).map_err(spawn_error)
}

fn take_pipes(mut inner: std::process::Child) -> std::io::Result<Spawned> {
    let pipes = (inner.stdin.take(), inner.stdout.take(), inner.stderr.take());
    let (Some(stdin), Some(stdout), Some(stderr)) = pipes else {
        // Unreachable with Stdio::piped(); handled rather than unwrapped so a std change
        // cannot leave an unreaped child behind.
        let _ = inner.kill();
        let _ = inner.wait();
        return Err(std::io::Error::other("child pipes missing"));
    };
    Ok(Spawned {
        child: Child {
            inner,
            exit: None,
            remote: None,
        },
        stdin,
        stdout,
        stderr,
    })
}

/// Reads stdout lines, one byte at a time so nothing after the identity line is consumed, until
/// the line starting with `prefix`; the rest of that line is the identity.
fn read_identity(spawned: &mut Spawned, prefix: &str, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut lines = 0;
    loop {
        let mut byte = [0u8; 1];
        if !wait_readable(spawned.stdout.as_raw_fd(), deadline) {
            return Err("no answer before the read timeout".into());
        }
        match spawned.stdout.read(&mut byte) {
            Ok(0) => return Err("its output closed before it started".into()),
            Ok(_) if byte[0] == b'\n' => {
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if let Some(identity) = text.strip_prefix(prefix) {
                    return Ok(identity.trim().to_string());
                }
                log::debug!(
                    "remote output before the app-server started: {}",
                    crate::escape::text(&text)
                );
                lines += 1;
                line.clear();
                if lines >= ID_LINES {
                    return Err(format!("{ID_LINES} lines of output without the start line"));
                }
            }
            Ok(_) => {
                line.push(byte[0]);
                if line.len() > ID_LINE_BYTES {
                    return Err("a line of output too long to be the start line".into());
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// Whether `fd` became readable (or hung up) before `deadline`.
fn wait_readable(fd: i32, deadline: Instant) -> bool {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return false;
        }
        let mut poll_fd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout_ms = libc::c_int::try_from(remaining.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, timeout_ms) };
        if ready > 0 {
            return true;
        }
        if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// What a pipe holds until it closes or `deadline` passes (at most 16 KiB).
fn drain(pipe: &mut ChildStderr, deadline: Instant) -> String {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    while bytes.len() < 16 * 1024 && wait_readable(pipe.as_raw_fd(), deadline) {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Child {
    /// The host a remote session runs on; `None` for a local one.
    pub fn host(&self) -> Option<&str> {
        self.remote.as_ref().map(|(_, launch)| launch.host.as_str())
    }

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

impl Drop for Child {
    /// A remote session whose local command did not exit cleanly by itself (killed, the
    /// connection dropped) may have left its remote side running: the launcher ends it.
    fn drop(&mut self) {
        let Some((identity, launch)) = self.remote.take() else {
            return;
        };
        if self.try_exit().is_some_and(|status| status.success()) {
            return;
        }
        (launch.cleanup)(&identity);
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
