//! The process table, read from /proc: which processes are alive in a process group.
//! Leak tests assert on this instead of sleeping and hoping.

use std::time::{Duration, Instant};

/// One live process, as `/proc/<pid>/stat` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Every live process (zombies awaiting their reaper excluded).
pub fn live() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut procs = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let (Some(state), Some(ppid), Some(pgrp)) = (fields.first(), fields.get(1), fields.get(2))
        else {
            continue;
        };
        if matches!(*state, "Z" | "X") {
            continue;
        }
        if let (Ok(ppid), Ok(pgrp)) = (ppid.parse::<u32>(), pgrp.parse::<u32>()) {
            procs.push(Proc { pid, ppid, pgrp });
        }
    }
    procs
}

/// Pids of processes in group `pgid` that are alive (zombies awaiting their reaper excluded).
pub fn live_in_group(pgid: u32) -> Vec<u32> {
    live()
        .into_iter()
        .filter(|proc| proc.pgrp == pgid)
        .map(|proc| proc.pid)
        .collect()
}

/// Waits (bounded) until group `pgid` has no live process; returns the survivors otherwise.
/// A killed process needs a moment to be torn down by the kernel, hence the short poll.
pub fn wait_group_gone(pgid: u32, timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let live = live_in_group(pgid);
        if live.is_empty() || Instant::now() >= deadline {
            return live;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a process with this pid exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X"))
    })
}
