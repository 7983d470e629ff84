//! The attempt's ssh host (`[worker]`), threaded through the order of operations: which host
//! it takes (the issue's last host first), the host and lane as the run record names them, the
//! lane prepared there with a host swapped for another when it fails before the attempt had
//! side effects, and the failure a lane step on a host means. Hosts, slots, health and the
//! lane steps themselves are `crate::worker`'s; this file only applies them to one attempt.

use std::cell::RefCell;

use std::path::PathBuf;

use super::progress::Progress;
use super::verdict::Failure;
use super::{Ending, LaneRun, NotClaimed, lane_failure};
use crate::app_server::TurnEnd;
use crate::settings::Settings;
use crate::worker::{self, Place, assign::AttemptHost};
use crate::workspace::Layout;
use crate::workspace::lane::{Lane, LaneSpec};
use crate::workspace::record::{self, ErrorClass, IssueState};

/// Why a run takes no issue when `[worker]` names hosts and none is up with room: nothing is
/// claimed then, so nothing waits holding an issue.
pub(super) fn hosts_busy(settings: &Settings, layout: &Layout) -> Option<NotClaimed> {
    let worker = settings.config.worker.as_ref()?;
    let cap = worker::assign::cap(worker, settings.workflow.execution.max_concurrent_agents);
    let busy = !worker::assign::has_capacity(layout, worker, cap, crate::clock::now_ms());
    busy.then_some(NotClaimed::HostsBusy {
        hosts: worker.hosts.len(),
    })
}

/// `host_paths` plus every host's workspace root: a host's own paths never reach a comment
/// either.
pub(super) fn with_hosts(
    mut host_paths: Vec<(PathBuf, String)>,
    settings: &Settings,
) -> Vec<(PathBuf, String)> {
    if let Some(worker) = &settings.config.worker {
        for host in &worker.hosts {
            host_paths.push((
                PathBuf::from(&host.workspace_root),
                "<workspace_root>".into(),
            ));
        }
        host_paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.as_os_str().len()));
    }
    host_paths
}

/// The failure for an agent session that did not start: ssh's own exit (255) is the host, not
/// codex.
pub(super) fn start_failure(place: &Place, error: &crate::app_server::Error) -> Failure {
    let class = match error {
        crate::app_server::Error::Spawn { source, .. }
            if place.host().is_some() && source.kind() == std::io::ErrorKind::NotConnected =>
        {
            ErrorClass::AgentDisconnected
        }
        _ => ErrorClass::AppServerStartFailed,
    };
    Failure::retryable(class, error.to_string())
}

/// The ssh host for an attempt when `[worker]` names hosts: the issue's last host first while it
/// is up with room. An assignment failure (local I/O) is logged and leaves the attempt without
/// a host, which then waits for one like a full house.
pub(super) fn assign_host(
    settings: &Settings,
    layout: &Layout,
    previous: Option<&IssueState>,
) -> Option<RefCell<AttemptHost>> {
    let worker = settings.config.worker.as_ref()?;
    let cap = worker::assign::cap(worker, settings.workflow.execution.max_concurrent_agents);
    let preferred = previous
        .and_then(|state| state.last_run_id.as_deref())
        .and_then(|run_id| record::load_run(layout, run_id).ok())
        .and_then(|record| record.host);
    let config_dir = settings
        .config
        .path
        .parent()
        .unwrap_or(std::path::Path::new("."));
    match AttemptHost::assign(layout, worker, cap, config_dir, preferred.as_deref()) {
        Ok(host) => Some(RefCell::new(host)),
        Err(error) => {
            log::error!("cannot take a host slot error={error}");
            None
        }
    }
}

impl LaneRun<'_> {
    /// Where the lane lives now: here, or the attempt's ssh host; `None` when `[worker]` names
    /// hosts and none could be assigned.
    pub(super) fn place(&self) -> Option<Place> {
        match &self.hosts {
            None if self.settings.config.worker.is_some() => None,
            None => Some(Place::Local),
            Some(hosts) => hosts.borrow().place(),
        }
    }

    /// No host is up with room: the attempt ends interrupted — not counted, nothing written to
    /// the tracker — and the daemon continues it once a host has room again.
    pub(super) fn no_host(&self, progress: &mut Progress) -> Ending {
        progress.record.error_message =
            Some("no ssh host is up with a free slot; the attempt waits for one".to_string());
        log::warn!(
            "no host for the attempt issue={} run_id={}",
            self.issue.identifier,
            progress.record.run_id
        );
        Ending::Interrupted
    }

    /// A failed turn on a host whose connection dropped is a disconnect, not a codex crash.
    pub(super) fn turn_failure(&self, failure: Failure, end: &TurnEnd) -> Failure {
        match self.place() {
            Some(place) if place.disconnected(end) => Failure::retryable(
                ErrorClass::AgentDisconnected,
                format!(
                    "the ssh connection to host {} dropped during the turn: {}",
                    place.host().unwrap_or("-"),
                    failure.message
                ),
            ),
            _ => failure,
        }
    }

    /// Records the attempt's host (and the lane as people should name it) in the run record.
    fn record_place(&self, progress: &mut Progress, place: &Place) {
        if let Some(host) = place.host() {
            progress.record.host = Some(host.to_string());
            progress.record.workspace_path = format!("{host}:<workspace_root>/{}", self.lane_key);
            progress.save_record();
            log::info!(
                "attempt assigned issue={} run_id={} attempt={} host={host}",
                self.issue.identifier,
                progress.record.run_id,
                self.attempt
            );
        }
    }

    /// Prepares the lane where the attempt runs. A host that fails before the attempt had side
    /// effects there (it cannot be reached, the clone fails) is swapped for another within the
    /// same attempt. With no host left it waits (`Ok(None)`) when the last one could not be
    /// reached, and fails otherwise; it never runs locally.
    pub(super) fn prepare_lane(
        &self,
        progress: &mut Progress,
        spec: &LaneSpec<'_>,
    ) -> Result<Option<(Place, Lane)>, Failure> {
        let Some(mut place) = self.place() else {
            return Ok(None);
        };
        loop {
            self.record_place(progress, &place);
            let error = match place.prepare(spec) {
                Ok(lane) => return Ok(Some((place, lane))),
                Err(error) => error,
            };
            let swappable = matches!(
                &error,
                worker::Error::Ssh { .. }
                    | worker::Error::Start { .. }
                    | worker::Error::Remote {
                        step: "preparing the lane" | "cloning the lane",
                        ..
                    }
            );
            let Some(hosts) = self.hosts.as_ref().filter(|_| swappable) else {
                return Err(place_failure(&error));
            };
            log::warn!(
                "host failed before the attempt had side effects, trying another issue={} host={} error={error}",
                self.issue.identifier,
                place.host().unwrap_or("-")
            );
            match hosts.borrow_mut().swap() {
                Ok(Some(next)) => place = next,
                // Every host is down now (each refused a connection): the attempt waits for
                // one, uncounted. Had the clone failed everywhere instead, waiting would repeat
                // it forever: that is a failure, counted, and a person sees it in time.
                Ok(None) if matches!(error, worker::Error::Ssh { started: false, .. }) => {
                    return Ok(None);
                }
                Ok(None) => return Err(place_failure(&error)),
                Err(swap_error) => return Err(lane_failure(&swap_error)),
            }
        }
    }
}

/// The failure for a lane step that failed here or on an ssh host.
pub(super) fn place_failure(error: &worker::Error) -> Failure {
    match error {
        worker::Error::Workspace(error) => lane_failure(error),
        worker::Error::Unsafe { .. } => {
            Failure::human(ErrorClass::PolicyViolation, error.to_string())
        }
        worker::Error::Hook { .. } => Failure::retryable(ErrorClass::HookFailed, error.to_string()),
        worker::Error::Ssh { .. } => {
            Failure::retryable(ErrorClass::AgentDisconnected, error.to_string())
        }
        // Retrying cannot add an origin to the repository: a person must.
        worker::Error::NoOrigin { .. } => {
            Failure::human(ErrorClass::LaneSetupFailed, error.to_string())
        }
        worker::Error::Start { .. }
        | worker::Error::Remote { .. }
        | worker::Error::NotOwned { .. } => {
            Failure::retryable(ErrorClass::LaneSetupFailed, error.to_string())
        }
    }
}
