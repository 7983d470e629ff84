//! The daemon's retry queue, persisted so retries survive a daemon restart.
//!
//! An entry is a claim: the issue is owned by its retry until it is redispatched or released,
//! so fresh selection never takes it. Due times are stored as wall-clock milliseconds for
//! people and for restarts; the daemon waits on `Instant`s derived from them, and a restored
//! due time is clamped to at most the backoff cap from now, so a clock jump can delay a retry by
//! at most one cap and never strand it. The file's shape is `record`'s ([`RetryQueue`]).

use std::time::Duration;

use super::{Error, Layout, record};
use crate::clock;

pub use super::record::{RetryEntry, RetryKind, RetryQueue};

/// Delay before a continuation (the previous attempt exited cleanly with work left).
pub const CONTINUATION_DELAY: Duration = Duration::from_secs(1);
/// Base of the failure backoff: 10 s × 2^(n-1).
pub const FAILURE_BASE: Duration = Duration::from_secs(10);

/// The delay before retry `kind` after `failures` failed attempts, capped at `cap`.
pub fn backoff(kind: RetryKind, failures: u32, cap: Duration) -> Duration {
    match kind {
        RetryKind::Continuation => CONTINUATION_DELAY.min(cap),
        RetryKind::Failure => {
            let exponent = failures.saturating_sub(1).min(30);
            FAILURE_BASE
                .checked_mul(1u32 << exponent)
                .unwrap_or(cap)
                .min(cap)
        }
    }
}

/// Reads the queue; a missing file is an empty queue.
pub fn load(layout: &Layout) -> Result<RetryQueue, Error> {
    record::load_retry_queue(layout)
}

/// Writes the queue atomically.
pub fn save(layout: &Layout, queue: &RetryQueue) -> Result<(), Error> {
    record::save_retry_queue(layout, queue)
}

/// How long until `entry` is due, clamped to `[0, cap]` so a wall-clock jump can neither
/// strand nor unboundedly delay it.
pub fn remaining(entry: &RetryEntry, cap: Duration) -> Duration {
    let now = clock::now_ms();
    Duration::from_millis(entry.due_at_ms.saturating_sub(now)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_is_one_second() {
        assert_eq!(
            backoff(RetryKind::Continuation, 0, Duration::from_secs(300)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn failure_backoff_doubles_and_caps() {
        let cap = Duration::from_secs(300);
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff(RetryKind::Failure, n, cap).as_secs())
            .collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(RetryKind::Failure, 1000, cap), cap);
    }

    #[test]
    fn remaining_is_clamped_to_the_cap() {
        let entry = RetryEntry {
            issue_id: "i".into(),
            issue_identifier: "ABC-1".into(),
            lane_key: "ABC-1".into(),
            attempt: 2,
            kind: RetryKind::Failure,
            due_at_ms: clock::now_ms() + 10_000_000,
            due_at: String::new(),
            last_error_class: None,
            last_run_id: None,
        };
        assert_eq!(
            remaining(&entry, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        let past = RetryEntry {
            due_at_ms: 0,
            ..entry
        };
        assert_eq!(remaining(&past, Duration::from_secs(5)), Duration::ZERO);
    }
}
