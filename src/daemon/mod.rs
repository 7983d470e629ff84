//! `maestro daemon`: poll, decide, supervise. The daemon never runs an agent itself.
//!
//! Each tick (every `--poll-interval-s`, the first immediately) it reloads WORKFLOW.md (last
//! known good), reconciles running lanes against the tracker, stops stalled lanes, redispatches
//! due retries, and fills free slots with eligible work by spawning `maestro run --once` children
//! that inherit their dispatch slot. Everything it decides from is on disk (records, markers,
//! leases, the persisted retry queue), so a restarted daemon adopts the children of the last one
//! and no issue ever runs twice. The loop takes one closed [`Event`] enum from one channel:
//! child exits and the shutdown signal; ticks and retry due times are its timeouts.
//!
//! Decisions are pure functions over a snapshot, I/O stays at the edge: `tick.rs` reads a
//! [`plan::Snapshot`], `plan.rs` turns it into [`action::Action`]s, `exits.rs` does the same
//! for a finished child, and `execute.rs` carries the actions out. This file is the life cycle:
//! startup, the event loop, shutdown.
//!
//! Unix only: the slot lock travels to the child as an inherited file descriptor.

mod action;
mod children;
mod error;
mod execute;
mod exits;
mod plan;
mod review;
mod review_exec;
mod review_read;
mod tick;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use crate::config::{Lookup, ServiceConfig};
use crate::intake::{self, Intake};
use crate::operator_http::{self, Health};
use crate::workflow::WorkflowStore;
use crate::workspace::retry_queue::{self, RetryQueue};
use crate::workspace::{Layout, lane};
use crate::{atomic_file, settings, signals, tracker};

use children::{Child, StopReason};
pub use error::{Error, Stopped};

/// How long a stopped child may take to record its run and exit before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Whether the loop ticks now: the poll interval is up, or a retry fell due since the last
/// tick. A retry that was already due then (it waits for a free slot) does not tick again: it
/// waits for the next poll or a child's exit, so a full house never spins the loop (every
/// tick asks the tracker).
fn tick_now(
    now: Instant,
    next_tick: Instant,
    last_tick: Option<Instant>,
    mut due: impl Iterator<Item = Instant>,
) -> bool {
    now >= next_tick || due.any(|due| due <= now && last_tick.is_none_or(|last| due > last))
}

/// When the loop wakes at the latest: the next poll, or the first retry falling due after the
/// last tick.
fn wake_at(
    next_tick: Instant,
    last_tick: Option<Instant>,
    due: impl Iterator<Item = Instant>,
) -> Instant {
    due.filter(|due| last_tick.is_none_or(|last| *due > last))
        .fold(next_tick, Instant::min)
}

/// What wakes the loop besides its timers.
#[derive(Debug)]
pub enum Event {
    /// A spawned child exited.
    ChildExited { run_id: String, code: Option<i32> },
    /// SIGTERM or SIGINT.
    Shutdown,
}

/// The daemon's state between ticks.
#[derive(Debug)]
struct Daemon {
    config: ServiceConfig,
    project_slug: String,
    store: WorkflowStore,
    layout: Layout,
    children: Vec<Child>,
    queue: RetryQueue,
    /// Monotonic due times of queue entries, by issue id.
    due: HashMap<String, Instant>,
    /// Children in a row that ended before recording anything, by issue id (their backoff).
    early_exits: HashMap<String, u32>,
    health: Arc<Health>,
    events: Sender<Event>,
    poll_interval: Duration,
    /// The mirror of the project's active issues every tick reads (docs/spec/tracker.md).
    intake: Intake,
    /// The GitHub and tracker clients of this tick's post-review steps.
    review_clients: review_read::Clients,
}

/// Runs the daemon until SIGTERM/SIGINT; an error when it cannot start.
pub fn run(
    explicit: Option<&Path>,
    lookup: &Lookup,
    poll_interval: Duration,
) -> Result<Stopped, Error> {
    // Handlers first: a SIGTERM during startup must still mean a clean stop.
    let (events, inbox) = mpsc::channel();
    let shutdown = events.clone();
    signals::on_termination(move |_| {
        let _ = shutdown.send(Event::Shutdown);
    })
    .map_err(Error::Signals)?;
    let settings = settings::load(explicit, lookup).map_err(Error::Settings)?;
    let store = WorkflowStore::open(&settings.workflow.path, &settings.config.repo_root)
        .map_err(Error::Workflow)?;
    tracker::open(&settings.config, &settings.project_slug).map_err(Error::Tracker)?;
    let layout = Layout::new(&settings.config.workspace_root);
    let _daemon_lock = crate::workspace::lock::acquire_daemon_lock(&layout).map_err(Error::Lock)?;
    let health = Arc::new(Health::default());
    health.poll_interval_ms.store(
        u64::try_from(poll_interval.as_millis()).unwrap_or(u64::MAX),
        std::sync::atomic::Ordering::SeqCst,
    );
    let _http = match settings.config.operator_http {
        Some(address) => Some(
            operator_http::start(address, settings.config.clone(), Arc::clone(&health))
                .map_err(Error::OperatorHttp)?,
        ),
        None => None,
    };
    // Orphans of a child that died without sweeping (a stall kill) are reparented here and
    // killed and reaped by the loop; the children themselves are registered spawns.
    if let Err(error) = crate::custody::take() {
        log::warn!("cannot become the subreaper of lane processes error={error}");
    }
    let intake = {
        let config = settings.config.clone();
        let project_slug = settings.project_slug.clone();
        Intake::new(
            Box::new(move || tracker::open(&config, &project_slug)),
            Arc::new(intake::SystemClock),
            intake::Options {
                resync_interval: Duration::from_millis(settings.config.tracker.resync_interval_ms),
                report_to: Some(layout.clone()),
            },
        )
    };
    let mut daemon = Daemon {
        config: settings.config.clone(),
        project_slug: settings.project_slug.clone(),
        store,
        layout,
        children: Vec::new(),
        queue: RetryQueue::default(),
        due: HashMap::new(),
        early_exits: HashMap::new(),
        health,
        events,
        poll_interval,
        intake,
        review_clients: review_read::Clients::default(),
    };
    daemon.start();
    Ok(daemon.serve(&inbox))
}

impl Daemon {
    /// Restores the retry queue, adopts live lanes, sweeps staging clones of dead processes.
    fn start(&mut self) {
        log::info!(
            "daemon starting project={} poll_interval_s={} workspace_root={}",
            self.config.id,
            self.poll_interval.as_secs(),
            self.config.workspace_root.display()
        );
        self.write_snapshot();
        self.queue = match retry_queue::load(&self.layout) {
            Ok(queue) => queue,
            Err(error) => {
                // A corrupt queue is moved aside, not trusted and not silently dropped.
                let path = self.layout.retry_queue_file();
                let aside = self.layout.retry_queue_aside_file(crate::clock::now_ms());
                match std::fs::rename(&path, &aside) {
                    Ok(()) => log::error!(
                        "retry queue unreadable, moved aside path={} error={error}",
                        aside.display()
                    ),
                    Err(rename) => log::error!(
                        "retry queue unreadable and cannot be moved aside, starting with an empty queue path={} error={error} rename_error={rename}",
                        path.display()
                    ),
                }
                RetryQueue::default()
            }
        };
        let cap = Duration::from_millis(self.store.current().execution.max_retry_backoff_ms);
        for entry in &self.queue.entries {
            let wait = retry_queue::remaining(entry, cap);
            self.due
                .insert(entry.issue_id.clone(), Instant::now() + wait);
            log::info!(
                "retry restored issue={} attempt={} action={} reason=\"restored after restart, due in {} s\"",
                entry.issue_identifier,
                entry.attempt,
                action::Verb::RetryScheduled.as_str(),
                wait.as_secs()
            );
        }
        for child in children::adoptable(&self.layout) {
            log::info!(
                "adopted live lane issue={} run_id={} attempt={} action={} reason=\"its lease is held by pid {}\"",
                child.identifier,
                child.run_id,
                child.attempt,
                action::Verb::Adopted.as_str(),
                child.pid
            );
            self.children.push(child);
        }
        // Lanes of issues already terminal go at the first tick (immediate), as at every tick.
        lane::sweep_staging(&self.layout);
    }

    /// The event loop: ticks on schedule, child exits as they come, shutdown on a signal.
    fn serve(&mut self, inbox: &Receiver<Event>) -> Stopped {
        let mut next_tick = Instant::now();
        let mut last_tick: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if tick_now(now, next_tick, last_tick, self.due.values().copied()) {
                last_tick = Some(now);
                self.tick();
                next_tick = Instant::now() + self.poll_interval;
            }
            let mut wake = wake_at(next_tick, last_tick, self.due.values().copied());
            if self
                .children
                .iter()
                .any(|child| child.stop.is_some() || !child.spawned)
            {
                // Stopping children need their grace enforced; adopted ones are watched by lease.
                wake = wake.min(Instant::now() + Duration::from_secs(1));
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            let running = self.children.len();
            match inbox.recv_timeout(timeout) {
                Ok(Event::ChildExited { run_id, code }) => self.child_exited(&run_id, code),
                Ok(Event::Shutdown) => return self.shutdown(inbox),
                Err(mpsc::RecvTimeoutError::Timeout) => self.watch_children(),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.shutdown(inbox),
            }
            // A child that ended freed its slot: a retry already due (waiting for one) runs now
            // instead of at the next poll.
            if self.children.len() < running && self.due.values().any(|due| *due <= now) {
                next_tick = Instant::now();
            }
            crate::custody::sweep(None);
        }
    }

    /// Between ticks: kill children past their grace, reap adopted children whose lease freed.
    fn watch_children(&mut self) {
        for child in &mut self.children {
            children::enforce_grace(child, STOP_GRACE);
        }
        let gone: Vec<String> = self
            .children
            .iter()
            .filter(|child| !child.spawned && !children::adopted_alive(&self.layout, child))
            .map(|child| child.run_id.clone())
            .collect();
        for run_id in gone {
            self.child_exited(&run_id, None);
        }
    }

    /// Writes the last known good WORKFLOW.md where children read it.
    fn write_snapshot(&self) {
        let path = self.layout.workflow_snapshot_file();
        if let Err(error) = atomic_file::write(&path, self.store.current().source.as_bytes()) {
            log::error!(
                "cannot write workflow snapshot path={} error={error}",
                path.display()
            );
        }
    }

    fn snapshot_path(&self) -> PathBuf {
        self.layout.workflow_snapshot_file()
    }

    /// SIGTERM: stop polling, stop our children gracefully, wait (bounded), kill stragglers.
    fn shutdown(&mut self, inbox: &Receiver<Event>) -> Stopped {
        log::info!(
            "daemon stopping: stopping {} child(ren)",
            self.children.iter().filter(|c| c.spawned).count()
        );
        for child in self.children.iter_mut().filter(|child| child.spawned) {
            children::request_stop(child, StopReason::Shutdown);
        }
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(5);
        let mut clean = true;
        while self.children.iter().any(|child| child.spawned) {
            let now = Instant::now();
            if now >= deadline {
                clean = false;
                break;
            }
            match inbox.recv_timeout(Duration::from_secs(1).min(deadline - now)) {
                Ok(Event::ChildExited { run_id, .. }) => {
                    self.children.retain(|child| child.run_id != run_id);
                }
                Ok(Event::Shutdown) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            for child in self.children.iter_mut().filter(|child| child.spawned) {
                if !child.killed
                    && child
                        .stop
                        .as_ref()
                        .is_some_and(|(_, at)| at.elapsed() >= STOP_GRACE)
                {
                    clean = false;
                }
                children::enforce_grace(child, STOP_GRACE);
            }
        }
        if let Err(error) = retry_queue::save(&self.layout, &self.queue) {
            log::error!("cannot save retry queue error={error}");
        }
        log::info!("daemon stopped clean={clean}");
        if clean {
            Stopped::Clean
        } else {
            Stopped::Forced
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_ticks_once_when_it_falls_due_then_waits_for_the_poll() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let next_tick = at(1000);
        // Due at 300 ms, the last tick at 100 ms: tick at 300, wake at 300.
        assert!(!tick_now(
            at(200),
            next_tick,
            Some(at(100)),
            [at(300)].into_iter()
        ));
        assert!(tick_now(
            at(300),
            next_tick,
            Some(at(100)),
            [at(300)].into_iter()
        ));
        assert_eq!(
            wake_at(next_tick, Some(at(100)), [at(300)].into_iter()),
            at(300)
        );
        // Ticked at 300 and still queued (no slot): no tick until the poll, which it wakes for.
        assert!(!tick_now(
            at(301),
            next_tick,
            Some(at(300)),
            [at(300)].into_iter()
        ));
        assert!(!tick_now(
            at(999),
            next_tick,
            Some(at(300)),
            [at(300)].into_iter()
        ));
        assert_eq!(
            wake_at(next_tick, Some(at(300)), [at(300)].into_iter()),
            next_tick
        );
        assert!(tick_now(
            at(1000),
            next_tick,
            Some(at(300)),
            [at(300)].into_iter()
        ));
        // Before the first tick, anything due counts.
        assert!(tick_now(at(5), next_tick, None, [at(0)].into_iter()));
    }
}
