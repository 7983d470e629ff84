//! Process custody: Maestro as the subreaper of everything it starts.
//!
//! A command can leave its process group (`setsid`, `setpgid`) or double-fork, and then the
//! group kill that ends it misses what it left behind. A process that calls [`take`] becomes a
//! child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`): whatever is orphaned below it is
//! reparented to it instead of to init, so [`sweep`] finds those orphans among its own children,
//! kills them and reaps them. [`spawn`] registers the children Maestro starts on purpose (bounded
//! commands, the app-server, the daemon's `run --once` children), so a sweep never touches them
//! and never steals their exit status from `std::process::Child::wait`: it reaps by pid, never
//! with `waitpid(-1)`.
//!
//! Custody is opt-in per process. `run --once` and the daemon take it at startup; a library user
//! (the tests, `protocol probe`, `status`) does not, and then nothing is reparented to it,
//! nothing is registered and a sweep does nothing. Everything a custody process spawns must go
//! through [`spawn`]: an unregistered child would be taken for an orphan and killed. (Sparing
//! children in Maestro's own process group would be a loophole: an escapee in the same session
//! can join that group with `setpgid`.)
//!
//! **Invariant:** only unregistered children of this process are ever signalled or reaped here.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set once this process is a subreaper.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// Pids of the children this process spawned on purpose. The lock is held across `spawn` so a
/// sweep never sees a new child before it is registered.
static REGISTER: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

/// App-server sessions alive in this process. While one is, an orphan reparented here may be
/// the agent's own background process (a dev server it started for its tests); it is the
/// agent's to use until the session ends, so sweeps after other commands leave it alone and
/// the session's own stop sweeps.
static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// The longest a sweep keeps killing and reaping (a process in uninterruptible sleep cannot be
/// reaped at once; the sweep does not wait for it forever).
const SWEEP_WAIT: Duration = Duration::from_secs(2);
/// Between two rounds of a sweep: killed processes need a moment to become reapable.
const SWEEP_ROUND: Duration = Duration::from_millis(2);

/// Makes this process the subreaper of everything it starts from now on.
pub fn take() -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes integer arguments only and touches no
    // memory of ours.
    let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    TAKEN.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether this process took custody (escapees are then reparented to it and swept).
pub fn is_taken() -> bool {
    TAKEN.load(Ordering::SeqCst)
}

/// Spawns `command`, registering the child so sweeps leave it to its owner.
pub fn spawn(command: &mut Command) -> std::io::Result<Child> {
    if !is_taken() {
        return command.spawn();
    }
    let mut register = lock_register();
    let child = command.spawn()?;
    register.insert(child.id());
    Ok(child)
}

/// Held by a live app-server session: defers [`sweep_between_sessions`] until it is dropped.
#[derive(Debug)]
pub(crate) struct SessionHold(());

impl SessionHold {
    pub(crate) fn new() -> SessionHold {
        SESSIONS.fetch_add(1, Ordering::SeqCst);
        SessionHold(())
    }
}

impl Drop for SessionHold {
    fn drop(&mut self) {
        SESSIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`sweep`] after a command, unless an app-server session is alive (then its stop sweeps).
pub fn sweep_between_sessions(spare_group: Option<u32>) -> Sweep {
    if SESSIONS.load(Ordering::SeqCst) > 0 {
        return Sweep::default();
    }
    sweep(spare_group)
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Live orphans that were killed (outside the spared group), by pid.
    pub killed: Vec<u32>,
    /// Orphans reaped (killed ones included).
    pub reaped: usize,
}

/// Kills and reaps every orphan reparented to this process (its unregistered children), and
/// their descendants as they are reparented in turn. Processes in `spare_group` (a command's
/// own group, killed by its owner just before) are reaped but not counted as killed. Does
/// nothing unless [`take`] was called.
pub fn sweep(spare_group: Option<u32>) -> Sweep {
    let mut sweep = Sweep::default();
    if !is_taken() {
        return sweep;
    }
    let me = std::process::id();
    let mut register = lock_register();
    let deadline = Instant::now() + SWEEP_WAIT;
    let mut signalled: BTreeSet<u32> = BTreeSet::new();
    loop {
        // A registered child that is no longer ours was reaped by its owner. Judged pid by pid:
        // a listing of children may miss one that exists, and a registered child taken for a
        // stray would be killed.
        register.retain(|pid| process(*pid).is_some_and(|child| child.ppid == me));
        let children = children_of(me);
        let strays: Vec<&Process> = children
            .iter()
            .filter(|child| !register.contains(&child.pid))
            .collect();
        if strays.is_empty() {
            break;
        }
        for stray in strays {
            if stray.zombie {
                if reap(stray.pid) {
                    sweep.reaped += 1;
                }
                continue;
            }
            if signalled.insert(stray.pid) && Some(stray.group) != spare_group {
                sweep.killed.push(stray.pid);
            }
            crate::signals::signal_process(stray.pid, libc::SIGKILL);
            if stray.group == stray.pid {
                // A group leader (a `setsid` escapee): its whole group goes with it.
                crate::signals::signal_group(stray.pid, libc::SIGKILL);
            }
        }
        if Instant::now() >= deadline {
            log::warn!(
                "orphans still alive after {} ms; leaving them to the next sweep",
                SWEEP_WAIT.as_millis()
            );
            break;
        }
        std::thread::sleep(SWEEP_ROUND);
    }
    if !sweep.killed.is_empty() {
        log::warn!(
            "killed processes that outlived their command pids={:?}",
            sweep.killed
        );
    }
    sweep
}

fn lock_register() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    // A panic while the lock was held cannot leave the set inconsistent (inserts are atomic).
    REGISTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reaps child `pid` if it has exited; true when it did.
fn reap(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid on one specific pid with WNOHANG; `status` is a local we own.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) == pid }
}

/// One process from `/proc/<pid>/stat`.
#[derive(Debug)]
struct Process {
    pid: u32,
    ppid: u32,
    group: u32,
    zombie: bool,
}

/// Process `pid`, if it exists.
fn process(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (state, ppid, group) = parse_stat(&stat)?;
    Some(Process {
        pid,
        ppid,
        group,
        zombie: matches!(state, 'Z' | 'X'),
    })
}

/// The children of `parent` (this process): from each thread's `children` list, which costs a
/// few reads (a sweep runs after every command), else from a scan of all of `/proc`. A child
/// missed here is found by the next sweep.
fn children_of(parent: u32) -> Vec<Process> {
    let mut pids: BTreeSet<u32> = BTreeSet::new();
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                listed = true;
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|pid| pid.parse::<u32>().ok()),
                );
            }
        }
    }
    if !listed {
        // Kernels without CONFIG_PROC_CHILDREN.
        if let Ok(entries) = std::fs::read_dir("/proc") {
            pids.extend(
                entries
                    .flatten()
                    .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok()),
            );
        }
    }
    pids.into_iter()
        .filter_map(process)
        .filter(|child| child.ppid == parent)
        .collect()
}

/// State, parent pid and process group from a `/proc/<pid>/stat` line
/// (`pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses).
fn parse_stat(stat: &str) -> Option<(char, u32, u32)> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, ppid, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        assert_eq!(parse_stat("42 (sh) S 7 42 42 0 -1"), Some(('S', 7, 42)));
        assert_eq!(parse_stat("43 (a (b) c) Z 1 40 40 0"), Some(('Z', 1, 40)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn without_custody_a_sweep_does_nothing() {
        // The test binary never takes custody: its own children are not ours to judge.
        assert!(!is_taken());
        assert_eq!(sweep(None), Sweep::default());
    }
}
