//! Dispatch slots and per-issue leases: `fs2` advisory locks on files under `.maestro/`.
//!
//! A process that runs a lane holds one **slot** for its whole life, so at most
//! `max_concurrent_agents` lanes run at once across every process on the host. It also holds the
//! issue's **lease**, so a shell `run --once` and the daemon can never work the same issue. Both
//! are `flock` locks: the kernel drops them when the last descriptor closes, so a crashed process
//! never leaves a stale lock behind, and a descriptor handed to a child keeps the lock alive
//! after the parent exits (the daemon relies on that).
//!
//! Lock files are never deleted by Maestro: unlinking a locked file would let a second process
//! lock a new file at the same path while the first still holds the old one. The agent can delete
//! them all the same (it runs as the same user), so a lease is never judged by its file alone:
//! the holder re-checks that its descriptor still locks the file at the path and re-takes it when
//! the file was replaced ([`Lease::verify`]), it also locks its lane directory ([`lock_lane`]),
//! and whoever asks "is this attempt alive?" also checks the recorded process ([`OwnerProcess`]:
//! pid plus its start time, so a reused pid never counts).
//!
//! The short **issue lock** (`issues/<key>.lock`) serialises read-modify-write of an issue's
//! bookkeeping between processes; it is held for milliseconds, never for an attempt.
//!
//! **Invariant:** this is the only module that calls fs2.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use super::{Error, Layout, io_error, record};
use crate::atomic_file;

pub use super::record::LeaseOwner;

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

    /// Arranges for the child spawned by `command` to inherit this slot's lock descriptor (at
    /// the same number, returned here). Only that descriptor loses close-on-exec, and only in
    /// the child, so no other process the parent spawns can keep the slot alive by accident.
    /// The parent may drop its `Slot` once the child is spawned: the child's copy holds the lock.
    pub fn pass_to(&self, command: &mut Command) -> RawFd {
        let fd = self.file.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls fcntl(2),
        // which is async-signal-safe; it touches no memory shared with the parent.
        unsafe {
            command.pre_exec(move || {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        fd
    }

    /// Takes over slot `index` from an inherited descriptor `fd` (a daemon child does this).
    /// The descriptor must be the slot's lock file; it is re-locked (a no-op when the lock came
    /// with it) and marked close-on-exec again so the agent and hooks never inherit it.
    pub fn adopt(layout: &Layout, index: usize, fd: RawFd) -> Result<Slot, Error> {
        let path = layout.slot_file(index);
        let not_slot = |reason: &str| Error::Corrupt {
            path: path.clone(),
            reason: format!("inherited descriptor {fd} {reason}"),
        };
        // SAFETY: fcntl(F_GETFD) only inspects the descriptor table; a closed or invalid
        // descriptor returns -1 and is rejected before anything takes ownership of it.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(not_slot("is not open"));
        }
        // SAFETY: the descriptor is open (checked above) and was handed to this process for
        // exactly this purpose; from here on the File owns and will close it.
        let file = unsafe { File::from_raw_fd(fd) };
        let inherited = file
            .metadata()
            .map_err(io_error(&path, "inspect inherited slot"))?;
        let on_disk = std::fs::metadata(&path).map_err(io_error(&path, "inspect slot file"))?;
        if inherited.dev() != on_disk.dev() || inherited.ino() != on_disk.ino() {
            return Err(not_slot("is not this slot's lock file"));
        }
        if !try_lock(&file, &path)? {
            return Err(not_slot("does not hold the slot lock"));
        }
        // SAFETY: as above, fcntl(F_SETFD) on a descriptor this File owns.
        unsafe {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
        Ok(Slot { file, index })
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

/// Takes the first free of `count` slots of the SSH worker host with file key `host_key`, or
/// `None` when all are held. Held like a dispatch slot, for the attempt's whole life.
pub fn acquire_host_slot(
    layout: &Layout,
    host_key: &str,
    count: usize,
) -> Result<Option<Slot>, Error> {
    for index in 0..count {
        let path = layout.host_slot_file(host_key, index);
        let file = open_lock_file(&path)?;
        if try_lock(&file, &path)? {
            return Ok(Some(Slot { file, index }));
        }
    }
    Ok(None)
}

/// How many of `count` slots of host `host_key` are held right now.
pub fn host_slots_held(layout: &Layout, host_key: &str, count: usize) -> Result<usize, Error> {
    let mut held = 0;
    for index in 0..count {
        if is_held(&layout.host_slot_file(host_key, index))? {
            held += 1;
        }
    }
    Ok(held)
}

/// The one daemon per workspace root. Held for the daemon's life; a second daemon refuses to
/// start instead of racing the first over the retry queue.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// Takes the daemon lock. Another daemon holding it is [`Error::DaemonRunning`], with the pid
/// it recorded.
pub fn acquire_daemon_lock(layout: &Layout) -> Result<DaemonLock, Error> {
    let path = layout.daemon_lock_file();
    let file = open_lock_file(&path)?;
    if !try_lock(&file, &path)? {
        let pid = std::fs::read_to_string(layout.daemon_pid_file())
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0);
        return Err(Error::DaemonRunning {
            pid,
            workspace_root: layout.root().to_path_buf(),
        });
    }
    let pid_path = layout.daemon_pid_file();
    atomic_file::write(&pid_path, format!("{}\n", std::process::id()).as_bytes())
        .map_err(io_error(&pid_path, "write"))?;
    Ok(DaemonLock { _file: file })
}

/// A held per-issue lease, released on drop.
#[derive(Debug)]
pub struct Lease {
    file: File,
    layout: Layout,
    key: String,
    path: PathBuf,
    owner: LeaseOwner,
}

/// What [`Lease::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseCheck {
    /// The descriptor still locks the file at the lease path.
    Intact,
    /// The file at the path was removed or replaced; the lease was taken again on the new file.
    Restored,
    /// The file at the path was replaced and someone else locks the new one.
    Lost { holder: Option<LeaseOwner> },
}

impl Lease {
    /// The file key the lease is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Who the lease says holds it.
    pub fn owner(&self) -> &LeaseOwner {
        &self.owner
    }

    /// Rewrites the owner file (the run id can change once the attempt number is settled).
    pub fn set_owner(&mut self, owner: LeaseOwner) -> Result<(), Error> {
        self.owner = owner;
        record::save_lease_owner(&self.layout, &self.key, &self.owner)
    }

    /// Checks that the held descriptor still locks the file at the lease path. Anyone who can
    /// write `.maestro/` (the agent included) can unlink the lock file; a second process would
    /// then lock a new file at the same path. When the path no longer names the locked file,
    /// the lease is taken again on whatever is there now, so other processes see it held.
    pub fn verify(&mut self) -> LeaseCheck {
        let held = self.file.metadata();
        let on_disk = std::fs::metadata(&self.path);
        if let (Ok(held), Ok(on_disk)) = (&held, &on_disk) {
            if held.dev() == on_disk.dev() && held.ino() == on_disk.ino() {
                return LeaseCheck::Intact;
            }
        }
        let retaken = open_lock_file(&self.path)
            .and_then(|file| try_lock(&file, &self.path).map(|locked| locked.then_some(file)));
        match retaken {
            Ok(Some(file)) => {
                self.file = file;
                if let Err(error) = record::save_lease_owner(&self.layout, &self.key, &self.owner) {
                    // The lock is what holds the lease; the owner file only explains it.
                    log::warn!("lease taken again but its owner file was not written: {error}");
                }
                LeaseCheck::Restored
            }
            _ => LeaseCheck::Lost {
                holder: record::load_lease_owner(&self.layout, &self.key),
            },
        }
    }
}

/// Takes the lease for issue file key `key`, or `None` when another process holds it.
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
    // The path may have been replaced between open and lock; only a lock on the file the path
    // names now is a lease.
    let locked = file
        .metadata()
        .map_err(io_error(&path, "inspect lock file"))?;
    let current = std::fs::metadata(&path).map_err(io_error(&path, "inspect lock file"))?;
    if locked.dev() != current.dev() || locked.ino() != current.ino() {
        return Ok(None);
    }
    record::save_lease_owner(layout, key, owner)?;
    Ok(Some(Lease {
        file,
        layout: layout.clone(),
        key: key.to_string(),
        path,
        owner: owner.clone(),
    }))
}

/// The owner of lane `key`'s lease when it is held right now.
pub fn lease_holder(layout: &Layout, key: &str) -> Result<Option<LeaseOwner>, Error> {
    let path = layout.lease_file(key);
    if !path.exists() || !is_held(&path)? {
        return Ok(None);
    }
    let owner = record::load_lease_owner(layout, key);
    Ok(Some(owner.unwrap_or_else(|| LeaseOwner {
        run_id: "unknown".into(),
        pid: 0,
        issue_id: String::new(),
        issue_identifier: key.to_string(),
        acquired_at: String::new(),
    })))
}

/// Every lease held right now, as (lane key, owner), in key order.
pub fn held_leases(layout: &Layout) -> Result<Vec<(String, LeaseOwner)>, Error> {
    let dir = layout.leases_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(&dir, "list leases")(error)),
    };
    let mut keys: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(Layout::lease_key)
                .map(str::to_string)
        })
        .collect();
    keys.sort();
    let mut held = Vec::new();
    for key in keys {
        if let Some(owner) = lease_holder(layout, &key)? {
            held.push((key, owner));
        }
    }
    Ok(held)
}

/// A process as other processes can recognise it: its pid and its start time (clock ticks
/// since boot, from `/proc/<pid>/stat`), so a pid the kernel reused for another process never
/// passes for the original. Where `/proc` is missing there is no identity and nothing is
/// judged alive from a pid alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerProcess {
    pub pid: u32,
    pub start_time: u64,
}

impl OwnerProcess {
    /// This process.
    pub fn current() -> Option<OwnerProcess> {
        OwnerProcess::of(std::process::id())
    }

    /// Process `pid` as it is now, when it exists and is not a zombie.
    pub fn of(pid: u32) -> Option<OwnerProcess> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so split after the
        // last `)`. Field 22 (starttime) is the 20th field after it.
        let fields: Vec<&str> = stat
            .get(stat.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        if matches!(fields.first(), Some(&"Z" | &"X")) {
            return None;
        }
        let start_time = fields.get(19)?.parse().ok()?;
        Some(OwnerProcess { pid, start_time })
    }

    /// Whether this very process is still running.
    pub fn is_alive(&self) -> bool {
        OwnerProcess::of(self.pid) == Some(*self)
    }
}

/// A lane directory locked by the attempt working in it: a second proof of ownership that does
/// not live under `.maestro/`. Released on drop.
#[derive(Debug)]
pub struct LaneLock {
    _file: File,
}

/// What [`lock_lane`] found.
#[derive(Debug)]
pub enum LaneClaim {
    Locked(LaneLock),
    /// Another process holds the lane.
    Busy,
    /// There is no lane directory (yet).
    Absent,
}

/// Locks lane `key`'s directory (never through a symlink).
pub fn lock_lane(layout: &Layout, key: &str) -> Result<LaneClaim, Error> {
    let path = layout.lane_dir(key);
    let Some(file) = open_lane(&path)? else {
        return Ok(LaneClaim::Absent);
    };
    if try_lock(&file, &path)? {
        Ok(LaneClaim::Locked(LaneLock { _file: file }))
    } else {
        Ok(LaneClaim::Busy)
    }
}

/// Whether some process holds lane `key`'s directory lock right now.
pub fn lane_is_locked(layout: &Layout, key: &str) -> bool {
    let path = layout.lane_dir(key);
    match open_lane(&path) {
        Ok(Some(file)) => probe(&file, &path).unwrap_or(false),
        _ => false,
    }
}

fn open_lane(path: &Path) -> Result<Option<File>, Error> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(error)
            if error.kind() == ErrorKind::NotFound
                || error.raw_os_error() == Some(libc::ENOTDIR)
                || error.raw_os_error() == Some(libc::ELOOP) =>
        {
            Ok(None)
        }
        Err(error) => Err(io_error(path, "open lane directory")(error)),
    }
}

/// The bookkeeping lock of one issue, held while its file is read, changed and written.
#[derive(Debug)]
pub struct IssueLock {
    _file: File,
}

/// How long a bookkeeping writer waits for another one (they hold the lock for milliseconds).
const ISSUE_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Takes issue file key `key`'s bookkeeping lock, waiting (bounded) for another writer.
pub fn lock_issue(layout: &Layout, key: &str) -> Result<IssueLock, Error> {
    let path = layout.issue_lock_file(key);
    let file = open_lock_file(&path)?;
    let deadline = Instant::now() + ISSUE_LOCK_WAIT;
    loop {
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => return Ok(IssueLock { _file: file }),
            Err(error) if is_contended(&error) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => return Err(io_error(&path, "lock issue bookkeeping")(error)),
        }
    }
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
    probe(&file, path)
}

fn probe(file: &File, path: &Path) -> Result<bool, Error> {
    match FileExt::try_lock_shared(file) {
        Ok(()) => {
            let _ = FileExt::unlock(file);
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

    /// Polls `check` until it holds, for at most 10 s. A lock released by `drop` can stay
    /// held a moment longer: a process that another test of this binary is spawning right
    /// then carries a copy of every descriptor between its fork and its exec (close-on-exec
    /// closes it only at exec).
    fn eventually(mut check: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if check() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
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
        assert!(eventually(|| !slot_is_held(&layout, 0).unwrap()));
        let mut again = None;
        assert!(eventually(|| {
            again = acquire_slot(&layout, 2).unwrap();
            again.is_some()
        }));
        let again = again.unwrap();
        assert_eq!(again.index(), 0);
        drop((second, again));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn host_slots_are_counted_per_host() {
        let (layout, dir) = layout("host-slots");
        let first = acquire_host_slot(&layout, "build-1", 1).unwrap().unwrap();
        assert!(acquire_host_slot(&layout, "build-1", 1).unwrap().is_none());
        assert_eq!(host_slots_held(&layout, "build-1", 1).unwrap(), 1);
        let other = acquire_host_slot(&layout, "build-2", 1).unwrap().unwrap();
        assert_eq!(host_slots_held(&layout, "build-2", 2).unwrap(), 1);
        drop(first);
        assert!(eventually(|| host_slots_held(&layout, "build-1", 1)
            .unwrap()
            == 0));
        drop(other);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_adopted_descriptor_must_be_the_slot_file() {
        let (layout, dir) = layout("adopt");
        let slot = acquire_slot(&layout, 1).unwrap().unwrap();
        let other = File::open(std::env::current_exe().unwrap()).unwrap();
        let error = Slot::adopt(&layout, 0, other.as_raw_fd()).unwrap_err();
        assert!(
            error.to_string().contains("is not this slot's lock file"),
            "{error}"
        );
        std::mem::forget(other); // adopt took ownership of the descriptor and closed it
        assert!(
            Slot::adopt(&layout, 0, 987_654)
                .unwrap_err()
                .to_string()
                .contains("is not open")
        );
        drop(slot);
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
        assert!(eventually(|| lease_holder(&layout, "ABC-1")
            .unwrap()
            .is_none()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_deleted_lease_file_is_taken_again_by_its_holder() {
        let (layout, dir) = layout("lease-deleted");
        let mut lease = acquire_lease(&layout, "id-1", &owner("run-1"))
            .unwrap()
            .unwrap();
        assert_eq!(lease.verify(), LeaseCheck::Intact);
        std::fs::remove_file(layout.lease_file("id-1")).unwrap();
        std::fs::remove_file(layout.lease_owner_file("id-1")).unwrap();
        assert_eq!(
            lease_holder(&layout, "id-1").unwrap(),
            None,
            "the file is gone"
        );
        assert_eq!(lease.verify(), LeaseCheck::Restored);
        assert_eq!(
            lease_holder(&layout, "id-1").unwrap().map(|o| o.run_id),
            Some("run-1".to_string())
        );
        // Replaced and locked by someone else: lost, and said so.
        std::fs::remove_file(layout.lease_file("id-1")).unwrap();
        let thief = acquire_lease(&layout, "id-1", &owner("run-2"))
            .unwrap()
            .unwrap();
        assert!(
            matches!(lease.verify(), LeaseCheck::Lost { holder: Some(h) } if h.run_id == "run-2")
        );
        drop((lease, thief));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_lane_lock_is_exclusive_and_never_follows_a_symlink() {
        let (layout, dir) = layout("lane");
        assert!(matches!(
            lock_lane(&layout, "ABC-1").unwrap(),
            LaneClaim::Absent
        ));
        std::fs::create_dir_all(layout.lane_dir("ABC-1")).unwrap();
        let held = lock_lane(&layout, "ABC-1").unwrap();
        assert!(matches!(held, LaneClaim::Locked(_)));
        assert!(lane_is_locked(&layout, "ABC-1"));
        assert!(matches!(
            lock_lane(&layout, "ABC-1").unwrap(),
            LaneClaim::Busy
        ));
        drop(held);
        assert!(eventually(|| !lane_is_locked(&layout, "ABC-1")));
        std::os::unix::fs::symlink(layout.lane_dir("ABC-1"), layout.lane_dir("LINK")).unwrap();
        assert!(matches!(
            lock_lane(&layout, "LINK").unwrap(),
            LaneClaim::Absent
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_process_is_recognised_by_pid_and_start_time() {
        let me = OwnerProcess::current().expect("/proc is available where the tests run");
        assert!(me.is_alive());
        let reused = OwnerProcess {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(
            !reused.is_alive(),
            "a pid with another start time is another process"
        );
        assert!(OwnerProcess::of(u32::MAX).is_none());
    }

    #[test]
    fn the_issue_lock_serialises_writers() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let (layout, dir) = layout("issue-lock");
        std::fs::create_dir_all(layout.issues_dir()).unwrap();
        let first = lock_issue(&layout, "id-1").unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (layout, released) = (layout.clone(), Arc::clone(&released));
            std::thread::spawn(move || {
                let _second = lock_issue(&layout, "id-1").unwrap();
                // Only after the first writer let go.
                released.load(Ordering::SeqCst)
            })
        };
        std::thread::yield_now();
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(
            waiter.join().unwrap(),
            "the second writer got in while the first held it"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
