//! Carrying out the terminal-lane rule (docs/spec/daemon.md, "Terminal lanes"): the lane of an
//! issue seen in a terminal state is removed under the lane directory's lock (`before_remove`
//! first, and only a lane Maestro can prove it created: [`lane::remove`]), and the issue's
//! bookkeeping records that it was seen terminal; a lane that must stay for now gets the
//! reason there instead, which `status` shows as pending removal.
//!
//! The rule is `selection::lane_fate`; the daemon's tick and `run --once` decide with it and
//! call here. What this logs: one line per removal, and one when a kept lane's reason changes
//! (a lane kept for good, one Maestro cannot prove it created, is not logged every tick).

use super::lock::{self, LaneClaim};
use super::record::{self, IssueRef, TerminalLane};
use super::{Error, Layout, lane};
use crate::clock;
use crate::workflow::Hooks;

/// The lane concerned and its issue, as its bookkeeping names them.
#[derive(Debug, Clone, Copy)]
pub struct LaneRef<'a> {
    pub issue_id: &'a str,
    pub identifier: &'a str,
    pub lane_key: &'a str,
}

/// Removes the lane of an issue seen in terminal `state`; true when it is gone. A lane that
/// cannot go (a process holds its lock, Maestro cannot prove it created it, the removal
/// failed) is kept with the reason recorded.
pub fn remove(
    layout: &Layout,
    target: LaneRef<'_>,
    state: &str,
    hooks: &Hooks,
    remove_env: &[String],
) -> bool {
    // The lane's lock, held while it goes: no attempt can start working in it meanwhile.
    let held = match lock::lock_lane(layout, target.lane_key) {
        Ok(LaneClaim::Locked(lock)) => Some(lock),
        // No directory to lock: gone already, or not a directory; `lane::remove` tells which.
        Ok(LaneClaim::Absent) => None,
        Ok(LaneClaim::Busy) => {
            keep(layout, target, state, "a process holds the lane's lock");
            return false;
        }
        Err(error) => {
            kept_after_error(layout, target, state, &error);
            return false;
        }
    };
    match lane::remove(layout, target.lane_key, hooks, remove_env) {
        // Another process removed it first: nothing to announce.
        Ok(()) if held.is_none() => {
            mark(layout, target, Some((state, None)));
            true
        }
        Ok(()) => {
            log::info!(
                "lane removed issue={} lane={} action=terminated reason=\"issue is {state}\"",
                target.identifier,
                target.lane_key
            );
            mark(layout, target, Some((state, None)));
            true
        }
        Err(error) => {
            kept_after_error(layout, target, state, &error);
            false
        }
    }
}

/// Records that the lane of an issue seen in terminal `state` stays for now, and why (logged
/// when the reason is new).
pub fn keep(layout: &Layout, target: LaneRef<'_>, state: &str, why: &str) {
    if mark(layout, target, Some((state, Some(why)))) {
        log::info!(
            "lane kept for now issue={} lane={} action=terminated reason=\"issue is {state}; {why}\"",
            target.identifier,
            target.lane_key
        );
    }
}

/// Forgets that the issue was seen terminal (it is visible again in another state).
pub fn forget(layout: &Layout, target: LaneRef<'_>) {
    if mark(layout, target, None) {
        log::info!(
            "lane no longer pending removal issue={} lane={} reason=\"its issue is not terminal any more\"",
            target.identifier,
            target.lane_key
        );
    }
}

fn kept_after_error(layout: &Layout, target: LaneRef<'_>, state: &str, error: &Error) {
    let why = format!("cannot remove it: {error}");
    if mark(layout, target, Some((state, Some(&why)))) {
        log::warn!(
            "cannot remove lane issue={} lane={} error={error}",
            target.identifier,
            target.lane_key
        );
    }
}

/// Writes the bookkeeping's terminal mark (`None`: clears it); true when it changed. Only
/// existing bookkeeping is changed, under its lock; a write that fails is logged.
fn mark(layout: &Layout, target: LaneRef<'_>, next: Option<(&str, Option<&str>)>) -> bool {
    let issue = IssueRef {
        id: target.issue_id,
        identifier: target.identifier,
    };
    let written = record::update_issue_state(layout, issue, None, |current| {
        let Some(mut current) = current else {
            return (None, false);
        };
        let terminal = next.map(|(state, kept)| TerminalLane {
            seen_at: current
                .terminal
                .as_ref()
                .filter(|seen| seen.state == state)
                .map_or_else(clock::now_rfc3339, |seen| seen.seen_at.clone()),
            state: state.to_string(),
            kept: kept.map(str::to_string),
        });
        if current.terminal == terminal {
            return (None, false);
        }
        current.terminal = terminal;
        current.updated_at = clock::now_rfc3339();
        (Some(current), true)
    });
    written.unwrap_or_else(|error| {
        log::warn!(
            "cannot write issue bookkeeping issue={} error={error}",
            target.identifier
        );
        false
    })
}
