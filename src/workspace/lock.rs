//! Dispatch slots and per-issue leases: `fs2` advisory locks on files under `.maestro/`.
//!
//! A process that runs a lane holds one **slot** for its whole life, so at most
//! `max_concurrent_agents` lanes run at once across every process on the host. It also holds the
//! issue's **lease**, so a shell `run --once` and the daemon can never work the same issue. Both
//! are `flock` locks: the kernel drops them when the last descriptor closes, so a crashed process
//! never leaves a stale lock behind, and a descriptor handed to a child keeps the lock alive
//! after the parent exits (the daemon relies on that).
//!
//! Lock files are never deleted: unlinking a locked file would let a second process lock a new
//! file at the same path while the first still holds the old one.
//!
//! **Invariant:** this is the only module that calls fs2.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use super::{Error, Layout, io_error};
use crate::atomic_file;

/// A held dispatch slot. The slot is released when this is dropped (or the process exits).
#[derive(Debug)]
pub struct Slot {
    file: File,
    index: usize,
}

impl Slot {
    /// Which slot (0-based) this is.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The open lock file (for handing its descriptor to a child process).
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Takes the first free slot among `count`, or `None` when all are held.
pub fn acquire_slot(layout: &Layout, count: usize) -> Result<Option<Slot>, Error> {
    for index in 0..count {
        let path = layout.slot_file(index);
        let file = open_lock_file(&path)?;
        if try_lock(&file, &path)? {
            return Ok(Some(Slot { file, index }));
        }
    }
    Ok(None)
}

/// Whether slot `index` is held by some process right now.
pub fn slot_is_held(layout: &Layout, index: usize) -> Result<bool, Error> {
    is_held(&layout.slot_file(index))
}

/// Who took a lease, written beside the lock when it is acquired. The lock is the truth; this
/// file only explains it (and may describe a past owner once the lock is free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseOwner {
    pub run_id: String,
    pub pid: u32,
    pub issue_id: String,
    pub issue_identifier: String,
    pub acquired_at: String,
}

/// A held per-issue lease, released on drop.
#[derive(Debug)]
pub struct Lease {
    _file: File,
    key: String,
}

impl Lease {
    /// The lane key the lease is for.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Takes the lease for lane `key`, or `None` when another process holds it.
pub fn acquire_lease(
    layout: &Layout,
    key: &str,
    owner: &LeaseOwner,
) -> Result<Option<Lease>, Error> {
    let path = layout.lease_file(key);
    let file = open_lock_file(&path)?;
    if !try_lock(&file, &path)? {
        return Ok(None);
    }
    let owner_path = layout.lease_owner_file(key);
    atomic_file::write_json(&owner_path, owner).map_err(io_error(&owner_path, "write"))?;
    Ok(Some(Lease {
        _file: file,
        key: key.to_string(),
    }))
}

/// The owner of lane `key`'s lease when it is held right now.
pub fn lease_holder(layout: &Layout, key: &str) -> Result<Option<LeaseOwner>, Error> {
    let path = layout.lease_file(key);
    if !path.exists() || !is_held(&path)? {
        return Ok(None);
    }
    let owner_path = layout.lease_owner_file(key);
    let owner = std::fs::read(&owner_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LeaseOwner>(&bytes).ok());
    Ok(Some(owner.unwrap_or_else(|| LeaseOwner {
        run_id: "unknown".into(),
        pid: 0,
        issue_id: String::new(),
        issue_identifier: key.to_string(),
        acquired_at: String::new(),
    })))
}

fn open_lock_file(path: &Path) -> Result<File, Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent, "create directory"))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_error(path, "open lock file"))
}

/// Tries to lock `file` exclusively. Another process probing the lock ([`is_held`]) holds it for
/// a moment, so contention is retried briefly before it counts as "held elsewhere".
fn try_lock(file: &File, path: &Path) -> Result<bool, Error> {
    for attempt in 0..3 {
        match FileExt::try_lock_exclusive(file) {
            Ok(()) => return Ok(true),
            Err(error) if is_contended(&error) => {
                if attempt < 2 {
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
            Err(error) => return Err(io_error(path, "lock")(error)),
        }
    }
    Ok(false)
}

fn is_held(path: &Path) -> Result<bool, Error> {
    if !path.exists() {
        return Ok(false);
    }
    let file = File::open(path).map_err(io_error(path, "open lock file"))?;
    match FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            Ok(false)
        }
        Err(error) if is_contended(&error) => Ok(true),
        Err(error) => Err(io_error(path, "probe lock")(error)),
    }
}

fn is_contended(error: &std::io::Error) -> bool {
    error.kind() == ErrorKind::WouldBlock
        || error.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(name: &str) -> (Layout, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("maestro-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Layout::new(&dir), dir)
    }

    fn owner(run_id: &str) -> LeaseOwner {
        LeaseOwner {
            run_id: run_id.into(),
            pid: std::process::id(),
            issue_id: "id-1".into(),
            issue_identifier: "ABC-1".into(),
            acquired_at: "2026-11-26T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn slots_fill_up_and_free_on_drop() {
        let (layout, dir) = layout("slots");
        let first = acquire_slot(&layout, 2).unwrap().unwrap();
        let second = acquire_slot(&layout, 2).unwrap().unwrap();
        assert_eq!((first.index(), second.index()), (0, 1));
        assert!(acquire_slot(&layout, 2).unwrap().is_none());
        assert!(slot_is_held(&layout, 0).unwrap());
        drop(first);
        assert!(!slot_is_held(&layout, 0).unwrap());
        let again = acquire_slot(&layout, 2).unwrap().unwrap();
        assert_eq!(again.index(), 0);
        drop((second, again));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lease_is_exclusive_and_names_its_owner() {
        let (layout, dir) = layout("lease");
        assert_eq!(lease_holder(&layout, "ABC-1").unwrap(), None);
        let lease = acquire_lease(&layout, "ABC-1", &owner("run-1"))
            .unwrap()
            .unwrap();
        assert_eq!(lease.key(), "ABC-1");
        assert!(
            acquire_lease(&layout, "ABC-1", &owner("run-2"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            lease_holder(&layout, "ABC-1").unwrap().map(|o| o.run_id),
            Some("run-1".to_string())
        );
        drop(lease);
        assert_eq!(lease_holder(&layout, "ABC-1").unwrap(), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
