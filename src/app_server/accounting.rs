//! Accounting: token totals, rate limits, event and progress clocks, and the activity feed.
//!
//! Owns the numbers a caller persists about a session (what [`Accounting`] and [`Activity`]
//! carry) and the rule for what counts as *progress*, which the idle timeout is measured on.
//! It does not write anything itself: the caller's [`Observer`] decides where activity goes.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// Token counts, as codex reports them per thread (`tokenUsage.total`) or derived per turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
    pub reasoning_output: u64,
    pub total: u64,
}

impl TokenUsage {
    /// Reads a `TokenUsageBreakdown` (`{totalTokens, inputTokens, …}`).
    pub(crate) fn from_breakdown(value: &Value) -> Option<TokenUsage> {
        let field = |name: &str| value.get(name).and_then(Value::as_u64).unwrap_or(0);
        value.get("totalTokens")?.as_u64()?;
        Some(TokenUsage {
            input: field("inputTokens"),
            cached_input: field("cachedInputTokens"),
            output: field("outputTokens"),
            reasoning_output: field("reasoningOutputTokens"),
            total: field("totalTokens"),
        })
    }

    /// What was spent since `earlier` (both are cumulative thread totals).
    pub fn since(self, earlier: TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_sub(earlier.input),
            cached_input: self.cached_input.saturating_sub(earlier.cached_input),
            output: self.output.saturating_sub(earlier.output),
            reasoning_output: self
                .reasoning_output
                .saturating_sub(earlier.reasoning_output),
            total: self.total.saturating_sub(earlier.total),
        }
    }
}

/// One rate-limit window (`primary` or `secondary`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitWindow {
    pub used_percent: Option<f64>,
    pub window_minutes: Option<u64>,
    /// Unix seconds.
    pub resets_at: Option<i64>,
}

/// The latest `account/rateLimits/updated` snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateLimitSnapshot {
    pub limit_id: Option<String>,
    pub primary: Option<RateLimitWindow>,
    pub secondary: Option<RateLimitWindow>,
    pub plan_type: Option<String>,
    /// `rateLimitReachedType` when a limit has been hit.
    pub reached: Option<String>,
}

impl RateLimitSnapshot {
    pub(crate) fn from_params(params: &Value) -> Option<RateLimitSnapshot> {
        let limits = params.get("rateLimits")?;
        let text = |name: &str| limits.get(name).and_then(Value::as_str).map(str::to_string);
        let window = |name: &str| {
            let window = limits.get(name).filter(|w| w.is_object())?;
            Some(RateLimitWindow {
                used_percent: window.get("usedPercent").and_then(Value::as_f64),
                window_minutes: window.get("windowDurationMins").and_then(Value::as_u64),
                resets_at: window.get("resetsAt").and_then(Value::as_i64),
            })
        };
        Some(RateLimitSnapshot {
            limit_id: text("limitId"),
            primary: window("primary"),
            secondary: window("secondary"),
            plan_type: text("planType"),
            reached: text("rateLimitReachedType"),
        })
    }
}

/// Everything counted over a session's life.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Accounting {
    /// Cumulative for the thread in this session, from `thread/tokenUsage/updated` `total`
    /// (never a sum of `last`, which codex re-sends unchanged when a response had no usage),
    /// less what a resumed thread had spent before it.
    pub thread_tokens: TokenUsage,
    pub model_context_window: Option<u64>,
    pub rate_limits: Option<RateLimitSnapshot>,
    /// Turns started on this thread.
    pub turn_count: u64,
    /// Notifications and server requests received.
    pub event_count: u64,
    pub last_event_type: Option<String>,
    pub last_event_at_ms: Option<u64>,
    /// The last event that counted as progress (see [`is_progress`]).
    pub last_progress_at_ms: Option<u64>,
    /// What a resumed thread had spent before this session: codex's totals include it, this
    /// session's [`Accounting::thread_tokens`] do not.
    #[serde(skip)]
    pub(crate) tokens_before: TokenUsage,
}

impl Accounting {
    /// Counts one notification or server request.
    pub(crate) fn record_event(&mut self, method: &str, progress: bool) {
        let now = crate::clock::now_ms();
        self.event_count += 1;
        // Reuses the string's buffer: this runs for every delta.
        match &mut self.last_event_type {
            Some(last) if last == method => {}
            Some(last) => {
                last.clear();
                last.push_str(method);
            }
            None => self.last_event_type = Some(method.to_string()),
        }
        self.last_event_at_ms = Some(now);
        if progress {
            self.last_progress_at_ms = Some(now);
        }
    }

    /// Counts streaming deltas the reader shed unparsed (the session was behind): they were
    /// events, and deltas are progress.
    pub(crate) fn record_dropped_deltas(&mut self, count: u64) {
        let now = crate::clock::now_ms();
        self.event_count += count;
        self.last_event_at_ms = Some(now);
        self.last_progress_at_ms = Some(now);
    }

    /// Applies `thread/tokenUsage/updated`; false when the params carry no usable total.
    pub(crate) fn update_tokens(&mut self, params: &Value) -> bool {
        let Some(usage) = params.get("tokenUsage") else {
            return false;
        };
        if let Some(window) = usage.get("modelContextWindow").and_then(Value::as_u64) {
            self.model_context_window = Some(window);
        }
        match usage.get("total").and_then(TokenUsage::from_breakdown) {
            Some(total) => {
                self.thread_tokens = total.since(self.tokens_before);
                true
            }
            None => false,
        }
    }

    pub(crate) fn update_rate_limits(&mut self, params: &Value) {
        if let Some(snapshot) = RateLimitSnapshot::from_params(params) {
            self.rate_limits = Some(snapshot);
        }
    }
}

/// Whether a notification or server request shows the turn moving. Items, deltas, diffs,
/// plans, token usage and tool calls do; `error{willRetry}` reconnect notes, rate-limit
/// updates, status changes and warnings do not, so an unreachable model cannot keep a turn
/// alive forever. Unknown methods do not count either, for the same reason.
pub(crate) fn is_progress(method: &str) -> bool {
    method.starts_with("item/")
        || matches!(
            method,
            "turn/started"
                | "turn/completed"
                | "turn/diff/updated"
                | "turn/plan/updated"
                | "thread/tokenUsage/updated"
        )
}

/// Why an [`Activity`] was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    ThreadStarted,
    TurnStarted,
    /// Periodic, at most about once per second while events arrive.
    Progress,
    TurnCompleted,
}

/// A snapshot of a session's activity, for lane activity markers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    pub kind: ActivityKind,
    pub thread_id: String,
    pub turn_id: Option<String>,
    pub turn_count: u64,
    pub event_count: u64,
    pub last_event_type: Option<String>,
    pub last_event_at_ms: Option<u64>,
    pub last_progress_at_ms: Option<u64>,
    pub tokens: TokenUsage,
    pub rate_limits: Option<RateLimitSnapshot>,
}

impl Activity {
    pub(crate) fn new(
        kind: ActivityKind,
        thread_id: &str,
        turn_id: Option<&str>,
        accounting: &Accounting,
    ) -> Activity {
        Activity {
            kind,
            thread_id: thread_id.to_string(),
            turn_id: turn_id.map(str::to_string),
            turn_count: accounting.turn_count,
            event_count: accounting.event_count,
            last_event_type: accounting.last_event_type.clone(),
            last_event_at_ms: accounting.last_event_at_ms,
            last_progress_at_ms: accounting.last_progress_at_ms,
            tokens: accounting.thread_tokens,
            rate_limits: accounting.rate_limits.clone(),
        }
    }
}

/// Receives activity while a turn runs: immediately on thread start, turn start and turn
/// completion, and at most about once per second in between. Called on the session thread,
/// so it should be cheap (write a marker file, not one per delta).
pub trait Observer {
    fn on_activity(&mut self, activity: &Activity);

    /// An item the agent started or completed (a command, a tool call, a message, a file
    /// change), as codex sent it: for live views of what the agent is doing now. Called on the
    /// session thread for every `item/started` and `item/completed`; the default ignores it.
    fn on_item(&mut self, _stage: ItemStage, _item: &Value) {}
}

/// Whether an [`Observer::on_item`] item has just started or has completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStage {
    Started,
    Completed,
}

impl ItemStage {
    /// The stage an `item/started` or `item/completed` notification reports.
    pub(crate) fn of(method: &str) -> Option<ItemStage> {
        match method {
            "item/started" => Some(ItemStage::Started),
            "item/completed" => Some(ItemStage::Completed),
            _ => None,
        }
    }
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_activity(&mut self, _activity: &Activity) {}
}

/// The once-per-second gate for periodic activity.
#[derive(Debug)]
pub(crate) struct Throttle {
    period: Duration,
    last: Option<Instant>,
}

impl Throttle {
    pub fn new(period: Duration) -> Throttle {
        Throttle { period, last: None }
    }

    /// True when a periodic report is due now (and counts it as sent).
    pub fn due(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.duration_since(last) < self.period => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }

    /// An immediate report was sent; the next periodic one waits a full period.
    pub fn reset(&mut self, now: Instant) {
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn totals_come_from_total_and_turn_usage_is_the_difference() {
        let mut accounting = Accounting::default();
        let update = |total: u64, last: u64| {
            json!({"threadId": "t", "turnId": "u", "tokenUsage": {
                "total": {"totalTokens": total, "inputTokens": total - 10, "cachedInputTokens": 2,
                          "outputTokens": 10, "reasoningOutputTokens": 1},
                "last": {"totalTokens": last, "inputTokens": 0, "outputTokens": 0},
                "modelContextWindow": 258400}})
        };
        assert!(accounting.update_tokens(&update(100, 100)));
        let before = accounting.thread_tokens;
        assert!(accounting.update_tokens(&update(250, 150)));
        // The same snapshot re-sent must not count twice.
        assert!(accounting.update_tokens(&update(250, 150)));
        assert_eq!(accounting.thread_tokens.total, 250);
        assert_eq!(accounting.model_context_window, Some(258_400));
        let turn = accounting.thread_tokens.since(before);
        assert_eq!(turn.total, 150);
        assert_eq!(turn.input, 150);
        assert_eq!(turn.output, 0);
        assert!(!accounting.update_tokens(&json!({"tokenUsage": {"total": {}}})));
    }

    #[test]
    fn rate_limits_keep_the_latest_snapshot() {
        let mut accounting = Accounting::default();
        accounting.update_rate_limits(&json!({"rateLimits": {
            "limitId": "codex", "primary": {"usedPercent": 43, "windowDurationMins": 300,
            "resetsAt": 1_700_000_000}, "secondary": null, "planType": null}}));
        let snapshot = accounting.rate_limits.clone().unwrap();
        assert_eq!(snapshot.limit_id.as_deref(), Some("codex"));
        let primary = snapshot.primary.unwrap();
        assert_eq!(primary.used_percent, Some(43.0));
        assert_eq!(primary.window_minutes, Some(300));
        assert_eq!(primary.resets_at, Some(1_700_000_000));
        assert_eq!(snapshot.secondary, None);
    }

    #[test]
    fn reconnect_notes_and_rate_limits_are_not_progress() {
        for method in [
            "error",
            "account/rateLimits/updated",
            "thread/status/changed",
            "warning",
        ] {
            assert!(!is_progress(method), "{method}");
        }
        for method in [
            "item/started",
            "item/agentMessage/delta",
            "item/tool/call",
            "thread/tokenUsage/updated",
            "turn/diff/updated",
        ] {
            assert!(is_progress(method), "{method}");
        }
    }

    #[test]
    fn throttle_allows_one_report_per_period() {
        let start = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert!(throttle.due(start));
        assert!(!throttle.due(start + Duration::from_millis(500)));
        assert!(throttle.due(start + Duration::from_millis(1000)));
        throttle.reset(start + Duration::from_millis(1500));
        assert!(!throttle.due(start + Duration::from_millis(2000)));
        assert!(throttle.due(start + Duration::from_millis(2500)));
    }
}
