//! Host health: a host ssh could not reach is marked down for a while, with backoff, so a dead
//! or unreachable host shrinks capacity instead of costing every dispatch a failed connection.
//!
//! The health of each host lives on the controller in `.maestro/hosts/<host>/health.json`,
//! written atomically and versioned, so the daemon (which gates dispatch on it), its children
//! (which record what their connections met) and `status` share it. Only connect failures count
//! (ssh could not connect, authenticate or verify the host key; the connection dropped): a
//! command that fails on a reachable host says nothing about the host. Any successful
//! connection clears the record. Concurrent writers may lose one count to each other, which only
//! shortens one backoff step.
//!
//! This module keeps the record and the rule; who is asked to try a host is `assign`'s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::workspace::state_file::{self, SCHEMA_VERSION, StateFile};
use crate::workspace::{Error, Layout};

/// The first backoff after a connect failure; it doubles with each failure in a row.
pub const BASE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest a host stays down before it is tried again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// One host's health on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHealth {
    pub schema_version: u32,
    /// The host as configured.
    pub host: String,
    /// Connect failures in a row (0: healthy).
    #[serde(default)]
    pub failures: u32,
    /// Unix milliseconds until which the host is not tried (0: up).
    #[serde(default)]
    pub down_until_ms: u64,
    /// ssh's last line about the last failure (no secret: ssh never prints one).
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_failure_at: Option<String>,
    #[serde(default)]
    pub last_ok_at: Option<String>,
}

impl StateFile for HostHealth {
    const WRITE: &'static str = "write host health";

    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

impl HostHealth {
    /// Whether the host is in its backoff at `now_ms`.
    pub fn is_down(&self, now_ms: u64) -> bool {
        self.failures > 0 && now_ms < self.down_until_ms
    }
}

/// The backoff after `failures` connect failures in a row: 10 s, 20 s, 40 s, … at most 300 s.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BASE_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Host `host`'s health; a missing or unreadable file is a healthy host (an unreadable one is
/// logged: health only ever delays a host, it must never stop Maestro).
pub fn load(layout: &Layout, host: &str) -> HostHealth {
    let path = layout.host_health_file(&super::host_key(host));
    match state_file::read::<HostHealth>(&path) {
        Ok(health) => health,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            fresh(host)
        }
        Err(error) => {
            log::warn!("host health unreadable, taking the host as up host={host} error={error}");
            fresh(host)
        }
    }
}

fn fresh(host: &str) -> HostHealth {
    HostHealth {
        schema_version: SCHEMA_VERSION,
        host: host.to_string(),
        ..HostHealth::default()
    }
}

/// Records a connect failure of `host` at `now_ms`: the host is down for the next backoff.
pub fn record_failure(layout: &Layout, host: &str, detail: &str, now_ms: u64) -> HostHealth {
    let mut health = load(layout, host);
    health.schema_version = SCHEMA_VERSION;
    health.failures = health.failures.saturating_add(1);
    let wait = u64::try_from(backoff(health.failures).as_millis()).unwrap_or(u64::MAX);
    health.down_until_ms = now_ms.saturating_add(wait);
    health.last_error = Some(detail.chars().take(300).collect());
    health.last_failure_at = Some(clock::now_rfc3339());
    save(layout, &health);
    log::warn!(
        "host marked down host={host} failures={} backoff_s={} error=\"{}\"",
        health.failures,
        wait / 1000,
        crate::escape::text(detail)
    );
    health
}

/// Records a successful connection to `host`: a host that was failing is up again.
pub fn record_success(layout: &Layout, host: &str) {
    let mut health = load(layout, host);
    let was_failing = health.failures > 0;
    // A healthy host's file is rewritten only when it changes, not on every connection.
    if !was_failing && health.last_ok_at.is_some() {
        return;
    }
    health.schema_version = SCHEMA_VERSION;
    health.failures = 0;
    health.down_until_ms = 0;
    health.last_ok_at = Some(clock::now_rfc3339());
    save(layout, &health);
    if was_failing {
        log::info!("host up again host={host}");
    }
}

fn save(layout: &Layout, health: &HostHealth) {
    let path = layout.host_health_file(&super::host_key(&health.host));
    let written = path
        .parent()
        .map_or(Ok(()), |dir| {
            std::fs::create_dir_all(dir).map_err(crate::workspace::io_error(dir, "create"))
        })
        .and_then(|()| state_file::write(&path, health));
    if let Err(error) = written {
        log::warn!(
            "cannot write host health host={} error={error}",
            health.host
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_failure_takes_a_host_down_until_its_backoff_passes_and_success_clears_it() {
        let dir = std::env::temp_dir().join(format!("maestro-health-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = Layout::new(&dir);
        assert!(!load(&layout, "build-1").is_down(0));
        let health = record_failure(&layout, "build-1", "Connection refused", 1_000);
        assert_eq!(health.failures, 1);
        assert!(load(&layout, "build-1").is_down(1_000));
        assert!(load(&layout, "build-1").is_down(10_999));
        assert!(!load(&layout, "build-1").is_down(11_000));
        let again = record_failure(&layout, "build-1", "Connection refused", 11_000);
        assert_eq!(again.down_until_ms, 31_000);
        assert!(!load(&layout, "build-2").is_down(11_000), "per host");
        record_success(&layout, "build-1");
        let healed = load(&layout, "build-1");
        assert_eq!(healed.failures, 0);
        assert!(!healed.is_down(11_000));
        assert!(healed.last_ok_at.is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
