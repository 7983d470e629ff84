//! The intake's view of the tracker budget: a ledger of what the daemon spent in the last
//! hour, the pacing rule that keeps a reserve of the key's budget, and the small JSON report
//! (`.maestro/tracker-budget.json`) that `status`, `GET /state` and `/metrics` read.
//!
//! Linear refills both allowances of a key (requests and complexity points per hour) at a
//! constant rate: a leaky bucket. [`pace`] estimates what has refilled since the last answer
//! reported the budget and, when less than the reserve plus the next sync's cost is left,
//! says how long to wait for the bucket to hold it again. The report is the one file this
//! module writes; reading it never fails a caller (a bad file is a reported problem).

use std::collections::VecDeque;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tracker::{Allowance, Budget, Usage};
use crate::workspace::Layout;
use crate::{atomic_file, clock};

/// The ledger's window and the period of Linear's allowances.
pub const HOUR_MS: u64 = 3_600_000;

/// The share of each allowance the daemon leaves alone: the `run --once` children write their
/// outcomes with the same key, and an operator's other tools may use it too.
pub const RESERVE_PERCENT: u64 = 10;

/// Version of the report file.
pub const SCHEMA_VERSION: u32 = 1;

/// What the daemon spent, by when, over the last hour.
#[derive(Debug, Default)]
pub struct Ledger {
    /// (wall ms, requests, points, unpriced answers), oldest first.
    entries: VecDeque<(u64, u64, u64, u64)>,
    /// The budget as the latest answer reported it, and when (wall ms).
    pub latest: Budget,
    pub latest_at_ms: u64,
    /// Everything recorded since the ledger began.
    pub total: Spent,
}

/// Totals over the ledger's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub requests: u64,
    pub points: u64,
    pub unpriced: u64,
}

impl Ledger {
    /// Records what was spent (a difference of two [`Usage`]s) at `at_ms`.
    pub fn record(&mut self, at_ms: u64, spent: &Usage) {
        if spent.budget.requests.is_some() || spent.budget.points.is_some() {
            self.latest = spent.budget;
            self.latest_at_ms = at_ms;
        }
        if spent.requests == 0 && spent.points == 0 && spent.unpriced == 0 {
            return;
        }
        self.total.requests += spent.requests;
        self.total.points += spent.points;
        self.total.unpriced += spent.unpriced;
        self.entries
            .push_back((at_ms, spent.requests, spent.points, spent.unpriced));
        self.prune(at_ms);
    }

    /// What was spent in the hour before `now_ms`.
    pub fn last_hour(&self, now_ms: u64) -> Spent {
        let since = now_ms.saturating_sub(HOUR_MS);
        self.entries.iter().filter(|(at, ..)| *at > since).fold(
            Spent::default(),
            |total, (_, requests, points, unpriced)| Spent {
                requests: total.requests + requests,
                points: total.points + points,
                unpriced: total.unpriced + unpriced,
            },
        )
    }

    fn prune(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(HOUR_MS);
        while self.entries.front().is_some_and(|(at, ..)| *at <= since) {
            self.entries.pop_front();
        }
    }
}

/// When syncing may resume (wall ms), or `None` to sync now: whether both allowances, as last
/// reported at `observed_ms` and refilled at their constant rate since, still hold the reserve
/// plus `need`. An allowance never reported does not pace.
pub fn pace(budget: &Budget, observed_ms: u64, now_ms: u64, need: &Spent) -> Option<u64> {
    let waits = [
        budget.requests.map(|allowance| (allowance, need.requests)),
        budget.points.map(|allowance| (allowance, need.points)),
    ];
    let wait = waits
        .into_iter()
        .flatten()
        .filter_map(|(allowance, need)| wait_for(&allowance, observed_ms, now_ms, need))
        .max()?;
    Some(now_ms + wait)
}

/// How long until `allowance` holds its reserve plus `need`, or `None` when it does now.
fn wait_for(allowance: &Allowance, observed_ms: u64, now_ms: u64, need: u64) -> Option<u64> {
    let limit = allowance.limit.max(1);
    // Past its reset the allowance is whole again, whatever model the tracker uses.
    if allowance.reset_at_ms.is_some_and(|reset| reset <= now_ms) {
        return None;
    }
    let elapsed = now_ms.saturating_sub(observed_ms);
    let refilled = elapsed.saturating_mul(limit) / HOUR_MS;
    let have = allowance.remaining.saturating_add(refilled).min(limit);
    let want = (limit * RESERVE_PERCENT / 100).saturating_add(need);
    if have >= want {
        return None;
    }
    // The bucket refills limit per hour; a reset time, when given, caps the wait.
    let refill_wait = (want - have).saturating_mul(HOUR_MS).div_ceil(limit);
    let wait = match allowance.reset_at_ms {
        Some(reset) => refill_wait.min(reset.saturating_sub(now_ms)),
        None => refill_wait,
    };
    Some(wait.min(HOUR_MS))
}

/// `.maestro/tracker-budget.json`: what the daemon's tracker traffic cost, for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// When the daemon last wrote this file.
    pub updated_at: String,
    pub provider: String,
    /// Requests the daemon sent in the last hour (children and other tools not included).
    pub requests_last_hour: u64,
    /// Complexity points those requests cost, as the tracker's answers said.
    pub points_last_hour: u64,
    /// Answers in the last hour that named no cost (their points are not counted).
    pub unpriced_last_hour: u64,
    /// The key's request allowance as the latest answer reported it (all its users together).
    pub requests: Option<AllowanceReport>,
    /// The key's complexity allowance as the latest answer reported it.
    pub points: Option<AllowanceReport>,
    /// Set while syncing is paced to keep the reserve: when it resumes.
    pub paced_until: Option<String>,
    pub last_sync: Option<SyncRecord>,
    pub next_resync_at: Option<String>,
    /// Issues the daemon's mirror holds.
    pub mirror_issues: usize,
}

/// One allowance, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowanceReport {
    pub limit: u64,
    pub remaining: u64,
    pub reset_at: Option<String>,
}

impl From<Allowance> for AllowanceReport {
    fn from(allowance: Allowance) -> Self {
        AllowanceReport {
            limit: allowance.limit,
            remaining: allowance.remaining,
            reset_at: allowance.reset_at_ms.map(clock::format_ms),
        }
    }
}

/// The last sync: what kind, when, what it cost, what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// `changes` (the every-poll question) or `resync` (the periodic full pass).
    pub kind: String,
    pub at: String,
    pub requests: u64,
    pub points: u64,
    /// Issues read because they were new or changed.
    pub read: usize,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Writes the report atomically.
pub fn save(layout: &Layout, report: &Report) -> std::io::Result<()> {
    atomic_file::write_json(&layout.tracker_budget_file(), report)
}

/// The report, `None` when no daemon wrote one; `Err` names the file and what to do.
pub fn load(layout: &Layout) -> Result<Option<Report>, String> {
    let path = layout.tracker_budget_file();
    read(&path)
}

fn read(path: &Path) -> Result<Option<Report>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|error| {
        format!(
            "state file {} is unreadable ({error}); the daemon rewrites it every poll",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance(limit: u64, remaining: u64, reset_at_ms: Option<u64>) -> Option<Allowance> {
        Some(Allowance {
            limit,
            remaining,
            reset_at_ms,
        })
    }

    fn need(requests: u64, points: u64) -> Spent {
        Spent {
            requests,
            points,
            unpriced: 0,
        }
    }

    #[test]
    fn a_full_budget_does_not_pace() {
        let budget = Budget {
            requests: allowance(5000, 4990, None),
            points: allowance(250_000, 240_000, None),
        };
        assert_eq!(pace(&budget, 0, 0, &need(1, 121)), None);
        assert_eq!(pace(&Budget::default(), 0, 0, &need(1, 121)), None);
    }

    #[test]
    fn a_low_budget_waits_for_the_refill() {
        // 25,000 points are the reserve; 24,000 remain, the next sync needs 1,000 more than
        // that: 2,000 points at 250,000 an hour take 28.8 s to refill.
        let budget = Budget {
            requests: allowance(5000, 4990, None),
            points: allowance(250_000, 24_000, None),
        };
        assert_eq!(pace(&budget, 0, 0, &need(1, 1000)), Some(28_800));
        // Ten seconds after that answer, 694 points have refilled: the same resume time, give
        // or take the rounding.
        let resume = pace(&budget, 0, 10_000, &need(1, 1000)).unwrap();
        assert!((28_800..28_810).contains(&resume), "{resume}");
        // Past the refill, syncing goes on.
        assert_eq!(pace(&budget, 0, 28_800, &need(1, 1000)), None);
    }

    #[test]
    fn the_scarcer_allowance_and_the_reset_decide() {
        let budget = Budget {
            requests: allowance(100, 5, Some(60_000)),
            points: allowance(250_000, 240_000, None),
        };
        // 10 requests of reserve + 1: 6 missing at 100 an hour is 216 s, but the reset in
        // 60 s comes first.
        assert_eq!(pace(&budget, 0, 0, &need(1, 100)), Some(60_000));
        assert_eq!(
            pace(&budget, 0, 60_000, &need(1, 100)),
            None,
            "past the reset"
        );
    }

    #[test]
    fn the_ledger_keeps_one_hour() {
        let mut ledger = Ledger::default();
        let spent = |requests, points| Usage {
            requests,
            points,
            ..Usage::default()
        };
        ledger.record(1_000, &spent(1, 121));
        ledger.record(61_000, &spent(2, 300));
        assert_eq!(ledger.last_hour(61_000), need(3, 421));
        assert_eq!(ledger.last_hour(HOUR_MS + 1_000), need(2, 300));
        ledger.record(HOUR_MS + 70_000, &spent(1, 121));
        assert_eq!(ledger.entries.len(), 1, "older entries pruned");
    }
}
