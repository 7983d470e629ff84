//! Which host an attempt runs on, and the per-host slot it holds there.
//!
//! An attempt is assigned one host before anything runs remotely, on the controller: it takes
//! one of the host's `max_concurrent_agents_per_host` slot locks (fs2, through
//! `workspace::lock`, at paths `Layout` spells) and holds it for its whole life, like its
//! dispatch slot, so the cap holds across every process of the controller whatever crashes.
//! The order hosts are tried in is a pure function ([`order`]): the preferred host (the one the
//! issue's last attempt ran on) first while it is up and has room, then the other hosts that are
//! up, least busy first, in configuration order on ties. A host in its health backoff is never
//! tried; when no host is up with room there is no assignment and the caller waits — there is
//! no fallback to local execution.

use std::path::{Path, PathBuf};

use super::place::Place;
use super::ssh::Remote;
use super::{health, host_key};
use crate::config::worker::{HostConfig, WorkerConfig};
use crate::workspace::lock::{self, Slot};
use crate::workspace::{Error, Layout};

/// A host as dispatch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    pub name: String,
    /// Not in its health backoff.
    pub up: bool,
    /// Slots held now.
    pub busy: usize,
    /// Slots it has.
    pub cap: usize,
}

impl HostView {
    fn has_room(&self) -> bool {
        self.up && self.busy < self.cap
    }
}

/// An attempt's host and the slot it holds there (released on drop).
#[derive(Debug)]
pub struct Assignment {
    pub host: HostConfig,
    pub slot: Slot,
}

/// Slots per host: `max_concurrent_agents_per_host`, or `max_concurrent_agents` when unset
/// (a host never needs more slots than the controller runs lanes).
pub fn cap(worker: &WorkerConfig, max_concurrent_agents: u32) -> usize {
    let cap = worker
        .max_concurrent_agents_per_host
        .map_or(max_concurrent_agents, |per_host| {
            per_host.min(max_concurrent_agents)
        });
    cap.max(1) as usize
}

/// The hosts in the order to try them (see the module docs); hosts without room are left out.
pub fn order<'a>(hosts: &'a [HostView], preferred: Option<&str>) -> Vec<&'a str> {
    let mut ranked: Vec<(usize, &HostView)> = hosts
        .iter()
        .enumerate()
        .filter(|(_, host)| host.has_room())
        .collect();
    ranked.sort_by_key(|(position, host)| {
        let not_preferred = preferred != Some(host.name.as_str());
        (not_preferred, host.busy, *position)
    });
    ranked
        .into_iter()
        .map(|(_, host)| host.name.as_str())
        .collect()
}

/// Every configured host with its health and slots now.
pub fn view(
    layout: &Layout,
    worker: &WorkerConfig,
    cap: usize,
    now_ms: u64,
) -> Result<Vec<HostView>, Error> {
    worker
        .hosts
        .iter()
        .map(|host| {
            Ok(HostView {
                name: host.name.clone(),
                up: !health::load(layout, &host.name).is_down(now_ms),
                busy: lock::host_slots_held(layout, &host_key(&host.name), cap)?,
                cap,
            })
        })
        .collect()
}

/// Whether some host is up with a free slot.
pub fn has_capacity(layout: &Layout, worker: &WorkerConfig, cap: usize, now_ms: u64) -> bool {
    free_slots(layout, worker, cap, now_ms) > 0
}

/// The free slots of the hosts that are up, summed: how many more lanes could take a host now.
/// The daemon dispatches only while this exceeds the children it started that hold no host
/// slot yet (a child takes its slot itself, a moment after it starts). 0 when the slots
/// cannot be read.
pub fn free_slots(layout: &Layout, worker: &WorkerConfig, cap: usize, now_ms: u64) -> usize {
    match view(layout, worker, cap, now_ms) {
        Ok(hosts) => hosts
            .iter()
            .filter(|host| host.has_room())
            .map(|host| host.cap - host.busy)
            .sum(),
        Err(error) => {
            log::warn!("cannot read host slots error={error}");
            0
        }
    }
}

/// Takes a slot on the first host in [`order`] that still has one, skipping `excluded` hosts
/// (ones that already failed this attempt). `None`: every host is down, full or excluded.
pub fn assign(
    layout: &Layout,
    worker: &WorkerConfig,
    cap: usize,
    preferred: Option<&str>,
    excluded: &[String],
    now_ms: u64,
) -> Result<Option<Assignment>, Error> {
    let hosts: Vec<HostView> = view(layout, worker, cap, now_ms)?
        .into_iter()
        .filter(|host| !excluded.contains(&host.name))
        .collect();
    for name in order(&hosts, preferred) {
        let Some(host) = worker.host(name) else {
            continue;
        };
        // Another process may have taken the last slot since the view: try the next host.
        if let Some(slot) = lock::acquire_host_slot(layout, &host_key(name), cap)? {
            return Ok(Some(Assignment {
                host: host.clone(),
                slot,
            }));
        }
    }
    Ok(None)
}

/// An attempt's host over its life: the assignment it holds, and the hosts that failed it
/// before it had side effects there (swapped for another within the same attempt).
#[derive(Debug)]
pub struct AttemptHost {
    layout: Layout,
    worker: WorkerConfig,
    cap: usize,
    config_dir: PathBuf,
    held: Option<Assignment>,
    failed: Vec<String>,
}

impl AttemptHost {
    /// Takes a slot on the best host now, `preferred` (the last host) first. The result
    /// holds no host when every host is down or full.
    pub fn assign(
        layout: &Layout,
        worker: &WorkerConfig,
        cap: usize,
        config_dir: &Path,
        preferred: Option<&str>,
    ) -> Result<AttemptHost, Error> {
        let held = assign(layout, worker, cap, preferred, &[], crate::clock::now_ms())?;
        Ok(AttemptHost {
            layout: layout.clone(),
            worker: worker.clone(),
            cap,
            config_dir: config_dir.to_path_buf(),
            held,
            failed: Vec::new(),
        })
    }

    /// Where the attempt runs now; `None` when it holds no host.
    pub fn place(&self) -> Option<Place> {
        self.held.as_ref().map(|assignment| {
            Place::Remote(
                Remote::new(&self.worker, &assignment.host, &self.config_dir)
                    .with_health(&self.layout),
            )
        })
    }

    /// The held host failed before the attempt had side effects there: its slot is released
    /// and the next host that is up with room (never one that failed this attempt) is taken.
    pub fn swap(&mut self) -> Result<Option<Place>, Error> {
        if let Some(failed) = self.held.take() {
            self.failed.push(failed.host.name);
        }
        self.held = assign(
            &self.layout,
            &self.worker,
            self.cap,
            None,
            &self.failed,
            crate::clock::now_ms(),
        )?;
        Ok(self.place())
    }

    /// The hosts that failed this attempt, in order.
    pub fn failed(&self) -> &[String] {
        &self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, up: bool, busy: usize) -> HostView {
        HostView {
            name: name.into(),
            up,
            busy,
            cap: 2,
        }
    }

    #[test]
    fn the_preferred_host_comes_first_while_it_is_up_with_room() {
        let hosts = [host("a", true, 1), host("b", true, 0), host("c", true, 0)];
        assert_eq!(order(&hosts, Some("a")), ["a", "b", "c"]);
        assert_eq!(order(&hosts, None), ["b", "c", "a"], "least busy first");
        let full = [host("a", true, 2), host("b", true, 1)];
        assert_eq!(order(&full, Some("a")), ["b"], "a full host is left out");
        let down = [host("a", false, 0), host("b", true, 1)];
        assert_eq!(order(&down, Some("a")), ["b"], "a down host is left out");
        assert!(order(&[host("a", false, 0), host("b", true, 2)], None).is_empty());
    }

    #[test]
    fn free_slots_sum_the_room_of_the_hosts() {
        let dir = std::env::temp_dir().join(format!("maestro-assign-free-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout = Layout::new(&dir);
        let worker = WorkerConfig {
            hosts: ["build-1", "build-2"]
                .iter()
                .map(|name| HostConfig {
                    name: (*name).into(),
                    workspace_root: "/srv/lanes".into(),
                })
                .collect(),
            max_concurrent_agents_per_host: Some(2),
            ssh_command: vec!["ssh".into()],
        };
        let now = crate::clock::now_ms();
        assert_eq!(free_slots(&layout, &worker, 2, now), 4);
        let held = lock::acquire_host_slot(&layout, &host_key("build-1"), 2)
            .unwrap()
            .unwrap();
        assert_eq!(free_slots(&layout, &worker, 2, now), 3);
        assert!(has_capacity(&layout, &worker, 2, now));
        let full = lock::acquire_host_slot(&layout, &host_key("build-1"), 2)
            .unwrap()
            .unwrap();
        assert_eq!(
            free_slots(&layout, &worker, 2, now),
            2,
            "a full host adds nothing"
        );
        crate::worker::health::record_failure(&layout, "build-2", "Connection refused", now);
        assert_eq!(
            free_slots(&layout, &worker, 2, now),
            0,
            "nor one that is down"
        );
        assert!(!has_capacity(&layout, &worker, 2, now));
        drop((held, full));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cap_is_per_host_within_the_controllers_cap() {
        let worker = WorkerConfig {
            hosts: Vec::new(),
            max_concurrent_agents_per_host: Some(2),
            ssh_command: vec!["ssh".into()],
        };
        assert_eq!(cap(&worker, 10), 2);
        assert_eq!(cap(&worker, 1), 1);
        let unset = WorkerConfig {
            max_concurrent_agents_per_host: None,
            ..worker
        };
        assert_eq!(cap(&unset, 4), 4);
    }
}
