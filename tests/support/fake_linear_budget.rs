//! The fake Linear's API budget: the two hourly allowances of a key as leaky buckets (Linear
//! refills them at a constant rate of limit per hour), what every answer cost, and the headers
//! Linear sends with every answer (`X-Complexity`, `X-RateLimit-{Requests,Complexity}-{Limit,
//! Remaining,Reset}`, `Date`). Charging always happens; refusing a request the buckets cannot
//! pay for (`RATELIMITED`) only when a test asks for it, so ordinary tests never trip on it.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Milliseconds since the epoch: the fake's clock (the real one, or a test's virtual one).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Linear's allowances for an API key at the time of writing.
pub const REQUESTS_PER_HOUR: u64 = 5_000;
pub const POINTS_PER_HOUR: u64 = 250_000;

const HOUR_MS: f64 = 3_600_000.0;

/// One allowance as a leaky bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub limit: u64,
    level: f64,
    at_ms: u64,
}

impl Bucket {
    pub fn full(limit: u64, now_ms: u64) -> Bucket {
        Bucket {
            limit,
            level: limit as f64,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        self.level = (self.level + elapsed * self.limit as f64 / HOUR_MS).min(self.limit as f64);
        self.at_ms = self.at_ms.max(now_ms);
    }

    pub fn remaining(&self) -> u64 {
        self.level.max(0.0).floor() as u64
    }

    /// When the bucket is full again, epoch ms.
    fn reset_at(&self) -> u64 {
        let missing = (self.limit as f64 - self.level).max(0.0);
        self.at_ms + (missing * HOUR_MS / self.limit.max(1) as f64).ceil() as u64
    }
}

/// What one operation cost in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub requests: u64,
    pub points: u64,
}

/// The key's budget as the fake keeps it.
#[derive(Debug, Clone)]
pub struct Budget {
    pub requests: Bucket,
    pub points: Bucket,
    /// Refuse what the buckets cannot pay for, as Linear does.
    pub enforce: bool,
    /// Requests refused for the budget.
    pub refused: u64,
    /// Everything charged, by operation name.
    pub by_operation: BTreeMap<String, Cost>,
}

impl Budget {
    pub fn new(now_ms: u64) -> Budget {
        Budget {
            requests: Bucket::full(REQUESTS_PER_HOUR, now_ms),
            points: Bucket::full(POINTS_PER_HOUR, now_ms),
            enforce: false,
            refused: 0,
            by_operation: BTreeMap::new(),
        }
    }

    /// Charges one request of `points` (rounded up, as Linear reports it). `false` when the
    /// budget is enforced and cannot pay: the request is refused and charged nothing.
    pub fn charge(&mut self, now_ms: u64, operation: &str, points: f64) -> bool {
        self.requests.refill(now_ms);
        self.points.refill(now_ms);
        let points = points.ceil();
        if self.enforce && (self.requests.level < 1.0 || self.points.level < points) {
            self.refused += 1;
            return false;
        }
        self.requests.level -= 1.0;
        self.points.level -= points;
        let cost = self.by_operation.entry(operation.to_string()).or_default();
        cost.requests += 1;
        cost.points += points as u64;
        true
    }

    /// Everything charged so far.
    pub fn total(&self) -> Cost {
        self.by_operation
            .values()
            .fold(Cost::default(), |total, cost| Cost {
                requests: total.requests + cost.requests,
                points: total.points + cost.points,
            })
    }

    /// The headers Linear sends with an answer; `complexity` is the query's cost when it was
    /// scored.
    pub fn headers(&self, now_ms: u64, complexity: Option<f64>) -> Vec<(String, String)> {
        let mut headers = vec![("Date".to_string(), http_date(now_ms))];
        if let Some(points) = complexity {
            headers.push(("X-Complexity".into(), format!("{}", points.ceil() as u64)));
        }
        for (kind, bucket) in [("Requests", &self.requests), ("Complexity", &self.points)] {
            headers.push((
                format!("X-RateLimit-{kind}-Limit"),
                bucket.limit.to_string(),
            ));
            headers.push((
                format!("X-RateLimit-{kind}-Remaining"),
                bucket.remaining().to_string(),
            ));
            headers.push((
                format!("X-RateLimit-{kind}-Reset"),
                bucket.reset_at().to_string(),
            ));
        }
        headers
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for epoch milliseconds.
pub fn http_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // Reuse Maestro's RFC 3339 formatter for the calendar arithmetic.
    let rfc = maestro::clock::format_ms(ms);
    let days = ms / 86_400_000;
    let month: usize = rfc[5..7].parse().expect("month");
    format!(
        "{}, {} {} {} {} GMT",
        DAYS[(days % 7) as usize],
        &rfc[8..10],
        MONTHS[month - 1],
        &rfc[0..4],
        &rfc[11..19]
    )
}

#[test]
fn http_dates_and_buckets() {
    assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
    let mut budget = Budget::new(0);
    budget.enforce = true;
    budget.points = Bucket::full(1_000, 0);
    assert!(budget.charge(0, "Q", 600.2));
    assert_eq!(budget.points.remaining(), 399);
    assert!(!budget.charge(0, "Q", 500.0), "cannot pay");
    // 1,000 points an hour refill 101 in 6 minutes and 3.6 seconds.
    assert!(budget.charge(363_600, "Q", 500.0));
    assert_eq!(
        budget.total(),
        Cost {
            requests: 2,
            points: 1101
        }
    );
    assert_eq!(budget.refused, 1);
}

/// A clock a test or benchmark moves by hand, shared by the fake (stamps, `Date`, refills) and
/// Maestro's intake (its schedules and the times it sends), so an hour of polls takes seconds.
#[derive(Debug)]
pub struct VirtualClock {
    start: std::time::Instant,
    start_ms: u64,
    offset_ms: std::sync::atomic::AtomicU64,
}

impl VirtualClock {
    /// A clock that reads `start_ms` (epoch ms) until it is advanced.
    pub fn new(start_ms: u64) -> Arc<VirtualClock> {
        Arc::new(VirtualClock {
            start: std::time::Instant::now(),
            start_ms,
            offset_ms: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }

    /// Now, epoch ms.
    pub fn ms(&self) -> u64 {
        self.start_ms + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Milliseconds since the clock was made.
    pub fn elapsed_ms(&self) -> u64 {
        self.offset_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The same clock as the fake Linear reads it.
    pub fn for_fake(self: &Arc<Self>) -> Clock {
        let clock = Arc::clone(self);
        Arc::new(move || clock.ms())
    }
}

impl maestro::intake::Clock for VirtualClock {
    fn now(&self) -> std::time::Instant {
        self.start + std::time::Duration::from_millis(self.elapsed_ms())
    }

    fn wall_ms(&self) -> u64 {
        self.ms()
    }
}
