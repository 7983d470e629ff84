//! `run --once --deadline DURATION`: one wall-clock bound for the whole run, so a cron job's
//! runs never overlap.
//!
//! The deadline counts from when `run --once` starts. The work (claim, lane setup, turns,
//! validation) is stopped a *reserve* before it: the run's stop flag is raised, exactly as
//! SIGTERM raises it, so the turn is interrupted, a validation command is killed with its
//! process group and codex is shut down. The reserve is what is left for that and for the one
//! outcome the attempt writes back: a tenth of the deadline, at least 30 s and at most 2 min,
//! and never more than half of it (the tracker's calls are bounded by their own 30 s each).
//! An attempt whose work was stopped this way is not `interrupted` but failed as
//! `deadline_exceeded`, retried like any retryable failure.
//!
//! Lane setup commands (clone, fetch, hooks) are not cut short: they are bounded by their own
//! timeouts, and the agent never starts once the work's time is up. This module owns the clock,
//! the rule, and what an attempt the deadline stopped becomes ([`judge`]); the run calls it once
//! its work has ended.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Ending;
use super::verdict::Failure;
use crate::workspace::record::{ErrorClass, Phase};

/// The reserve's bounds (see the module docs).
const RESERVE_MIN: Duration = Duration::from_secs(30);
const RESERVE_MAX: Duration = Duration::from_secs(120);

/// A running deadline: when the work stops, and whether it did.
#[derive(Clone)]
pub struct Deadline {
    total: Duration,
    work_until: Instant,
    /// Raised by the watcher when it stopped the work (and SIGTERM had not already).
    stopped: Arc<AtomicBool>,
    /// Raised once the watcher's moment came, whoever had raised the stop flag.
    fired: Arc<AtomicBool>,
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("total", &self.total)
            .field("stopped", &self.stopped.load(Ordering::SeqCst))
            .finish()
    }
}

impl Deadline {
    /// Starts the clock now: at `total` minus [`reserve`], `stop` is raised (once; a thread
    /// waits for the moment and ends). When the thread cannot be started the deadline is
    /// logged as not enforced and the run goes on without it.
    pub fn arm(total: Duration, stop: Arc<AtomicBool>) -> Deadline {
        let started = Instant::now();
        let work_until = started + total.saturating_sub(reserve(total));
        let stopped = Arc::new(AtomicBool::new(false));
        let fired = Arc::new(AtomicBool::new(false));
        let deadline = Deadline {
            total,
            work_until,
            stopped: Arc::clone(&stopped),
            fired: Arc::clone(&fired),
        };
        let spawned = std::thread::Builder::new()
            .name("deadline".into())
            .spawn(move || {
                // park_timeout may wake early; the loop waits out the rest.
                loop {
                    let now = Instant::now();
                    if now >= work_until {
                        break;
                    }
                    std::thread::park_timeout(work_until - now);
                }
                // A stop raised already (SIGTERM, a policy violation) is not the deadline's.
                if !stop.swap(true, Ordering::SeqCst) {
                    stopped.store(true, Ordering::SeqCst);
                    log::warn!(
                        "deadline reached, stopping the work deadline={} reserve={}",
                        crate::clock::humanize(total),
                        crate::clock::humanize(reserve(total))
                    );
                }
                fired.store(true, Ordering::SeqCst);
            });
        if let Err(error) = spawned {
            log::error!("cannot start the deadline's clock; the run has no deadline error={error}");
        }
        deadline
    }

    /// Whether the deadline stopped the work (the run's stop flag was raised by it).
    pub fn stopped_work(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// The `deadline_exceeded` failure message: what the deadline was and where the work was.
    pub fn message(&self, phase: &str) -> String {
        format!(
            "the run's --deadline of {} was reached while {phase}; the work was stopped {} before it to leave time for the writeback, and the issue is retried",
            crate::clock::humanize(self.total),
            crate::clock::humanize(reserve(self.total)),
        )
    }

    /// When the work stops, for tests.
    #[doc(hidden)]
    pub fn work_until(&self) -> Instant {
        self.work_until
    }

    /// Whether the moment to stop the work has come and gone, for tests.
    #[doc(hidden)]
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

/// Work the deadline stopped (the attempt ended interrupted, and not by a signal) is a
/// retryable `deadline_exceeded` failure, not an interruption: nothing else will continue it.
pub(super) fn judge(ending: Ending, deadline: Option<&Deadline>, phase: Phase) -> Ending {
    match (ending, deadline) {
        (Ending::Interrupted, Some(deadline)) if deadline.stopped_work() => {
            let doing = match phase {
                Phase::Preparing => "preparing the lane",
                Phase::Executing => "the agent worked",
                Phase::WaitingContinuation => "deciding on a continuation turn",
                Phase::Validating => "validating",
                Phase::WritingBack | Phase::Finished => "writing back",
            };
            Ending::Failed(Failure::retryable(
                ErrorClass::DeadlineExceeded,
                deadline.message(doing),
            ))
        }
        (ending, _) => ending,
    }
}

/// The time kept for stopping and the writeback: a tenth of `total`, at least 30 s and at most
/// 2 min, never more than half of `total`.
pub fn reserve(total: Duration) -> Duration {
    (total / 10).clamp(RESERVE_MIN, RESERVE_MAX).min(total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_tenth_within_its_bounds() {
        let secs = Duration::from_secs;
        assert_eq!(reserve(secs(45 * 60)), secs(120));
        assert_eq!(reserve(secs(10 * 60)), secs(60));
        assert_eq!(reserve(secs(5 * 60)), secs(30));
        assert_eq!(reserve(secs(40)), secs(20), "never more than half");
        assert_eq!(reserve(secs(3 * 3600)), secs(120));
    }

    #[test]
    fn the_deadline_raises_the_stop_flag_and_says_it_did() {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Deadline::arm(Duration::from_millis(200), Arc::clone(&stop));
        assert!(deadline.work_until() <= Instant::now() + Duration::from_millis(100));
        let until = Instant::now() + Duration::from_secs(10);
        while !stop.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        assert!(stop.load(Ordering::SeqCst));
        let until = Instant::now() + Duration::from_secs(10);
        while !deadline.fired() && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        assert!(deadline.stopped_work());
    }

    #[test]
    fn a_stop_raised_before_is_not_the_deadlines() {
        let stop = Arc::new(AtomicBool::new(true));
        let deadline = Deadline::arm(Duration::from_millis(50), Arc::clone(&stop));
        let until = Instant::now() + Duration::from_secs(10);
        while !deadline.fired() && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        assert!(deadline.fired(), "the clock ran out");
        assert!(!deadline.stopped_work());
    }
}
