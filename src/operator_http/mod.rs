//! The read-only operator HTTP endpoint served by `maestro daemon`.
//!
//! Routes (GET, and HEAD answered as GET without the body; anything else is 405 with
//! `Allow: GET, HEAD`, unknown paths 404, both as JSON): `/` dashboard (server-rendered HTML,
//! meta refresh), `/state` (exactly `status --json`), `/api/v1/state` and
//! `/api/v1/<identifier>` (Symphony-compatible shapes), `/healthz` (daemon loop liveness, 503
//! when wedged) and `/metrics` (Prometheus text).
//!
//! The listener is a small HTTP/1.x reader of our own (`server.rs`, with the head parser in
//! `head.rs` and the connection table in `slots.rs`) rather than tiny_http: tiny_http 0.12 has
//! no per-connection read timeout, and its connection pool can queue a new request behind
//! clients that never finish sending (a test here reproduced it). Every connection gets its own
//! short-lived thread, a total deadline for its head and one for its answer, and a header size
//! limit; the number of connections is capped, and a newcomer evicts the client that has waited
//! longest for its head, so slow or idle clients can never lock out another reader, nor ever
//! stall the daemon loop.
//!
//! **Invariant:** read-only. Nothing served here changes state, and no secret is in any of it.

mod html;
mod issue;
mod render;
mod review;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::clock;
use crate::config::ServiceConfig;
use crate::status::{self, Snapshot};

/// What the daemon loop reports about itself, shared with the endpoint.
#[derive(Debug, Default)]
pub struct Health {
    /// When the last tick finished, ms since the epoch (0 before the first tick).
    pub last_tick_at_ms: AtomicU64,
    pub last_tick_duration_ms: AtomicU64,
    pub ticks: AtomicU64,
    /// Tracker requests that failed, since start.
    pub tracker_errors: AtomicU64,
    /// 1 while the tracker reports a rate limit, else 0.
    pub tracker_rate_limited: AtomicU64,
    /// The poll interval, to judge whether the loop is wedged.
    pub poll_interval_ms: AtomicU64,
    /// The last snapshot built for a request, reused for [`SNAPSHOT_MAX_AGE`]: a burst of
    /// requests costs one read of `.maestro/`, not one per request.
    snapshot: Mutex<Option<(Instant, Arc<Snapshot>)>>,
}

/// How long a built snapshot is served before the state files are read again.
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_millis(500);

impl Health {
    /// Records a finished tick.
    pub fn tick_finished(&self, duration: Duration) {
        self.last_tick_at_ms
            .store(clock::now_ms(), Ordering::SeqCst);
        self.last_tick_duration_ms.store(
            u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
        self.ticks.fetch_add(1, Ordering::SeqCst);
    }

    /// The snapshot as of at most [`SNAPSHOT_MAX_AGE`] ago, with `recent` cut to `limit`.
    fn snapshot(&self, config: &ServiceConfig, limit: usize) -> Snapshot {
        let mut cache = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = cache
            .as_ref()
            .filter(|(built, _)| built.elapsed() < SNAPSHOT_MAX_AGE)
            .map(|(_, snapshot)| Arc::clone(snapshot));
        let full = fresh.unwrap_or_else(|| {
            let built = Arc::new(status::build_at(config, usize::MAX, clock::now_ms()));
            *cache = Some((Instant::now(), Arc::clone(&built)));
            built
        });
        drop(cache);
        let mut snapshot = (*full).clone();
        snapshot.recent.truncate(limit);
        snapshot
    }

    /// The loop is wedged when no tick finished for three poll intervals plus 30 s.
    pub fn is_wedged(&self, now_ms: u64) -> bool {
        let last = self.last_tick_at_ms.load(Ordering::SeqCst);
        let allowance = self
            .poll_interval_ms
            .load(Ordering::SeqCst)
            .saturating_mul(3)
            .saturating_add(30_000);
        last == 0 || now_ms.saturating_sub(last) > allowance
    }
}

mod head;
mod server;
mod slots;

pub use head::MAX_HEAD_BYTES;
#[doc(hidden)]
pub use server::respond;
pub use server::{
    BindError, HEAD_DEADLINE, LINGER, Limits, MAX_CONNECTIONS, RETRY_AFTER_SECONDS, Server,
    WRITE_DEADLINE, start, start_with,
};

/// One answer: status, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(status: u16, body: String) -> Answer {
        Answer {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }

    pub(crate) fn error(status: u16, code: &str, message: &str) -> Answer {
        let body = serde_json::json!({"error": {"code": code, "message": message}});
        Answer::json(status, body.to_string())
    }
}

/// Routes one request (public so tests can drive it without sockets). `HEAD` gets the same
/// answer as `GET`, body included; the server leaves the body out when it writes the answer.
pub fn route(method: &str, url: &str, config: &ServiceConfig, health: &Health) -> Answer {
    let path = url.split('?').next().unwrap_or(url);
    let known = matches!(
        path,
        "/" | "/state" | "/healthz" | "/metrics" | "/api/v1/state"
    ) || path.starts_with("/api/v1/");
    if !matches!(method, "GET" | "HEAD") {
        if !known {
            return Answer::error(404, "not_found", &format!("no route {path}"));
        }
        let mut answer = Answer::error(
            405,
            "method_not_allowed",
            &format!("{method} is not allowed; this endpoint is read-only (GET, HEAD)"),
        );
        answer.headers.push(("Allow".into(), "GET, HEAD".into()));
        return answer;
    }
    let now_ms = clock::now_ms();
    match path {
        "/" => {
            let snapshot = health.snapshot(config, crate::cli::DEFAULT_STATUS_LIMIT);
            Answer {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
                body: render::dashboard(&snapshot).into_bytes(),
            }
        }
        "/state" => {
            let snapshot = health.snapshot(config, crate::cli::DEFAULT_STATUS_LIMIT);
            Answer::json(200, format!("{}\n", status::to_json(&snapshot)))
        }
        "/api/v1/state" => {
            let snapshot = health.snapshot(config, usize::MAX);
            Answer::json(200, render::api_state(&snapshot).to_string())
        }
        "/healthz" => {
            let wedged = health.is_wedged(now_ms);
            let last = health.last_tick_at_ms.load(Ordering::SeqCst);
            let body = serde_json::json!({
                "status": if wedged { "wedged" } else { "ok" },
                "last_tick_at": (last > 0).then(|| clock::format_ms(last)),
                "seconds_since_last_tick": (last > 0).then(|| now_ms.saturating_sub(last) / 1000),
                "ticks": health.ticks.load(Ordering::SeqCst),
            });
            Answer::json(if wedged { 503 } else { 200 }, body.to_string())
        }
        "/metrics" => {
            let snapshot = health.snapshot(config, usize::MAX);
            Answer {
                status: 200,
                headers: vec![(
                    "Content-Type".into(),
                    "text/plain; version=0.0.4; charset=utf-8".into(),
                )],
                body: render::metrics(&snapshot, health).into_bytes(),
            }
        }
        _ => match path.strip_prefix("/api/v1/") {
            Some(identifier) if !identifier.is_empty() && !identifier.contains('/') => {
                let snapshot = health.snapshot(config, usize::MAX);
                match issue::api_issue(&snapshot, identifier, config) {
                    Some(body) => Answer::json(200, body.to_string()),
                    None => Answer::error(
                        404,
                        "issue_not_found",
                        &format!("no run, retry or lane is known for issue {identifier}"),
                    ),
                }
            }
            _ => Answer::error(404, "not_found", &format!("no route {path}")),
        },
    }
}
