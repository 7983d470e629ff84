//! What a tracker's answers say about its API budget: the cost of each answer and the budget
//! left, as plain data.
//!
//! Linear sends `X-Complexity` (the points one query cost) and, for each of its two limits
//! (requests and complexity points per hour), the limit, what remains and when it resets (epoch
//! milliseconds). The adapter sums and keeps them here; the daemon's intake turns them into a
//! per-hour ledger and pacing. Nothing here decides anything or talks to the network.

/// What a tracker has spent since it was opened, as its answers said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// HTTP exchanges that got an answer, retries included.
    pub requests: u64,
    /// Complexity points charged: the sum of each answer's `X-Complexity`.
    pub points: u64,
    /// Answers that named no cost; their points are not in `points`.
    pub unpriced: u64,
    /// The budget as the latest answer that reported one said.
    pub budget: Budget,
}

impl Usage {
    /// What was spent between `earlier` and `self` (same tracker), with `self`'s budget.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            requests: self.requests.saturating_sub(earlier.requests),
            points: self.points.saturating_sub(earlier.points),
            unpriced: self.unpriced.saturating_sub(earlier.unpriced),
            budget: self.budget,
        }
    }
}

/// The two hourly allowances of an API key, each known once an answer reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub requests: Option<Allowance>,
    pub points: Option<Allowance>,
}

/// One allowance: its limit, what remains, and when it is whole again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u64,
    pub remaining: u64,
    /// Milliseconds since the epoch, when the answer said.
    pub reset_at_ms: Option<u64>,
}
