//! SIGTERM and SIGINT as a channel message, through a self-pipe.
//!
//! The handler only writes one byte to a pipe (async-signal-safe); a small thread blocks on the
//! pipe's read end and calls the caller's closure, which typically sets a stop flag or sends a
//! shutdown event on the daemon's channel. No polling, and nothing unsafe runs in the handler.

use std::io::Read;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Write end of the self-pipe, read by the signal handler.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = u8::try_from(signal).unwrap_or(0);
        // SAFETY: write(2) is async-signal-safe; the buffer is a local byte. A full pipe drops
        // the byte, which is fine: one pending byte is enough to wake the reader.
        unsafe {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
    }
}

/// Installs handlers for SIGTERM and SIGINT that call `on_stop(signal)` on a helper thread,
/// once per signal received. Call once per process.
pub fn on_termination(on_stop: impl Fn(i32) + Send + 'static) -> std::io::Result<()> {
    let mut fds: [RawFd; 2] = [-1, -1];
    // SAFETY: pipe2 writes two descriptors into the array we own; CLOEXEC keeps children (the
    // agent, hooks, run --once children) from inheriting either end.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    PIPE_WRITE.store(write_fd, Ordering::SeqCst);
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: sigaction with a zeroed struct, our extern "C" handler and SA_RESTART so
        // interrupted blocking calls resume; the handler only touches an atomic and write(2).
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: read_fd came from pipe2 above and is owned by nothing else.
    let mut reader = unsafe { std::fs::File::from_raw_fd(read_fd) };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut byte = [0u8; 1];
            while let Ok(1) = reader.read(&mut byte) {
                on_stop(i32::from(byte[0]));
            }
        })?;
    Ok(())
}

/// Sends `signal` to the process group led by `pid` (the children Maestro starts lead their
/// own groups, so this reaches the agent and hooks too). A group that is gone is not an error.
pub fn signal_group(pid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) only delivers a signal; ESRCH for a finished group is expected.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Sends `signal` to one process.
pub fn signal_process(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: as above.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Whether process `pid` exists (it may be a zombie until reaped).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 performs only the existence and permission check.
    unsafe { libc::kill(pid, 0) == 0 }
}
