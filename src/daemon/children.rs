//! The daemon's children: `maestro run --once` processes it spawned, and lanes it adopted from a
//! previous daemon (or a shell) that still hold their lease.
//!
//! A spawned child gets its dispatch slot as an inherited descriptor (only that descriptor, only
//! in the child), runs in its own process group, and writes stdout/stderr to
//! `.maestro/logs/<run_id>.log`. A waiter thread per spawned child sends its exit on the
//! daemon's channel, so reaping never blocks the loop. Adopted children are not ours to wait
//! for; they are watched through their lease, which the kernel frees when they exit, and
//! through the process their bookkeeping names (pid and start time), which outlives a lease
//! file the agent deleted.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::Event;
use crate::signals;
use crate::workspace::lock::{self, Slot};
use crate::workspace::record::{self, IssueRef};
use crate::workspace::{Layout, lane};

/// Why the daemon asked a child to stop; decides how its run is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The issue became terminal: record `terminated`, remove the lane.
    Terminal,
    /// The issue left the active states: record `interrupted`, keep the lane.
    Inactive,
    /// No progress for the stall timeout: record `stalled`, human path, keep the lane.
    Stalled { idle: Duration },
    /// The daemon is shutting down: the child records `interrupted` itself.
    Shutdown,
}

/// One lane the daemon supervises.
#[derive(Debug)]
pub struct Child {
    pub run_id: String,
    pub issue_id: String,
    pub identifier: String,
    /// The lane's name as the daemon knew it (the bookkeeping's, else from the identifier).
    pub lane_key: String,
    pub attempt: u32,
    pub pid: u32,
    /// False for an adopted child (watched through its lease).
    pub spawned: bool,
    pub started: Instant,
    pub stop: Option<(StopReason, Instant)>,
    /// Set once SIGKILL was sent after the grace period.
    pub killed: bool,
}

/// What a spawn needs.
#[derive(Debug)]
pub struct SpawnSpec<'a> {
    pub config_path: &'a Path,
    pub workflow_snapshot: &'a Path,
    pub issue_id: &'a str,
    pub identifier: &'a str,
    pub run_id: &'a str,
    pub attempt: u32,
    /// A review repair (`--repair`); `attempt` is then the repair's number.
    pub repair: bool,
}

/// Spawns `maestro run --once` for one issue with `slot` handed over. The daemon's copy of the
/// slot is dropped once the child holds it.
pub fn spawn(
    layout: &Layout,
    spec: &SpawnSpec<'_>,
    slot: Slot,
    events: &Sender<Event>,
) -> std::io::Result<Child> {
    let program = std::env::current_exe()?;
    let log_path = layout.log_file(spec.run_id);
    std::fs::create_dir_all(layout.logs_dir())?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut command = Command::new(program);
    command
        .arg("run")
        .arg("--once")
        .arg("--config")
        .arg(spec.config_path)
        .arg("--issue-id")
        .arg(spec.issue_id)
        .arg("--run-id")
        .arg(spec.run_id)
        .arg("--attempt")
        .arg(spec.attempt.to_string())
        .arg("--workflow-snapshot")
        .arg(spec.workflow_snapshot)
        .args(spec.repair.then_some("--repair"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let fd = slot.pass_to(&mut command);
    command
        .arg("--slot-fd")
        .arg(fd.to_string())
        .arg("--slot-index")
        .arg(slot.index().to_string());
    let mut process = crate::custody::spawn(&mut command)?;
    drop(slot);
    let pid = process.id();
    let run_id = spec.run_id.to_string();
    let events = events.clone();
    std::thread::Builder::new()
        .name(format!("wait-{pid}"))
        .spawn(move || {
            let code = process.wait().ok().and_then(|status| status.code());
            let _ = events.send(Event::ChildExited { run_id, code });
        })?;
    let lane_key = record::find_issue_state(
        layout,
        IssueRef {
            id: spec.issue_id,
            identifier: spec.identifier,
        },
    )
    .ok()
    .flatten()
    .map_or_else(|| lane::lane_key(spec.identifier), |state| state.lane());
    Ok(Child {
        run_id: spec.run_id.to_string(),
        issue_id: spec.issue_id.to_string(),
        identifier: spec.identifier.to_string(),
        lane_key,
        attempt: spec.attempt,
        pid,
        spawned: true,
        started: Instant::now(),
        stop: None,
        killed: false,
    })
}

/// Lanes worked by a live process: leases held (children of an earlier daemon or shell runs),
/// and attempts whose bookkeeping names a process still running though its lease file is gone.
pub fn adoptable(layout: &Layout) -> Vec<Child> {
    let leases = lock::held_leases(layout).unwrap_or_else(|error| {
        log::warn!("cannot list leases for adoption: {error}");
        Vec::new()
    });
    let states = record::list_issue_states(layout).items;
    let lane_of = |issue_id: &str, identifier: &str| {
        states
            .iter()
            .find(|state| state.issue_id == issue_id)
            .map_or_else(|| lane::lane_key(identifier), record::IssueState::lane)
    };
    let mut adopted: Vec<Child> = leases
        .into_iter()
        .map(|(_, owner)| {
            let attempt = record::load_run(layout, &owner.run_id)
                .map(|record| record.attempt)
                .unwrap_or(1);
            Child {
                lane_key: lane_of(&owner.issue_id, &owner.issue_identifier),
                run_id: owner.run_id,
                issue_id: owner.issue_id,
                identifier: owner.issue_identifier,
                attempt,
                pid: owner.pid,
                spawned: false,
                started: Instant::now(),
                stop: None,
                killed: false,
            }
        })
        .collect();
    for state in states.iter().filter(|state| state.owner_alive()) {
        if adopted.iter().any(|child| child.issue_id == state.issue_id) {
            continue;
        }
        let (Some(run_id), Some(owner)) = (&state.last_run_id, state.owner) else {
            continue;
        };
        adopted.push(Child {
            run_id: run_id.clone(),
            issue_id: state.issue_id.clone(),
            identifier: state.issue_identifier.clone(),
            lane_key: state.lane(),
            attempt: state.attempts_used.max(1),
            pid: owner.pid,
            spawned: false,
            started: Instant::now(),
            stop: None,
            killed: false,
        });
    }
    adopted
}

/// Whether an adopted child is still running: its lease is held under its run id, or its
/// bookkeeping still names it with a live process.
pub fn adopted_alive(layout: &Layout, child: &Child) -> bool {
    let keys = [
        record::issue_key(&child.issue_id),
        lane::lane_key(&child.identifier),
    ];
    let leased = keys.iter().any(|key| {
        lock::lease_holder(layout, key)
            .ok()
            .flatten()
            .is_some_and(|owner| owner.run_id == child.run_id)
    });
    leased
        || record::find_issue_state(
            layout,
            IssueRef {
                id: &child.issue_id,
                identifier: &child.identifier,
            },
        )
        .ok()
        .flatten()
        .is_some_and(|state| {
            state.last_run_id.as_deref() == Some(child.run_id.as_str()) && state.owner_alive()
        })
}

/// Asks a child to stop: SIGTERM to the `run --once` process only, so it interrupts its turn
/// and records the run itself (signalling the whole group would kill codex first and turn a
/// graceful stop into an app-server crash).
pub fn request_stop(child: &mut Child, reason: StopReason) {
    if child.stop.is_none() {
        child.stop = Some((reason, Instant::now()));
        signals::signal_process(child.pid, libc::SIGTERM);
    }
}

/// Kills the child's whole process group once its grace period is over.
pub fn enforce_grace(child: &mut Child, grace: Duration) {
    if let Some((_, asked)) = &child.stop {
        if !child.killed && asked.elapsed() >= grace {
            child.killed = true;
            log::warn!(
                "child did not stop in time, killing its process group issue={} run_id={} pid={}",
                child.identifier,
                child.run_id,
                child.pid
            );
            signals::signal_group(child.pid, libc::SIGKILL);
        }
    }
}
