//! Proof that a directory under `workspace_root` is a lane Maestro made, and removal that never
//! follows a symlink.
//!
//! Maestro creates every lane directory itself: it makes the hidden staging directory, records
//! that directory's identity (device, inode and, where the filesystem reports one, its birth
//! time) in `.maestro/lanes/<key>.json`, clones into it and renames it into place (a rename keeps
//! the identity). Before anything is removed, the directory at the lane's path must still be
//! that directory. A lane without a marker (made by an older Maestro, by hand, or swapped in by
//! the agent) is kept and reported, never removed: deleting is the one mistake that cannot be
//! undone. The marker lives under `.maestro/`, outside the lane's tree, so the agent never sees
//! it and nothing in a lane can forge it.
//!
//! Removal works through directory descriptors: the lane is opened with `O_NOFOLLOW`, its
//! identity is checked on that descriptor, and everything inside is unlinked relative to the
//! descriptors of verified directories. A symlink anywhere in the tree is unlinked, never
//! traversed, and a directory swapped in after the check is never entered.
//!
//! This module decides nothing about *when* a lane goes (the daemon does) and runs no hook or git.

use std::ffi::{CStr, CString};
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Error, Layout, io_error};
use crate::{atomic_file, clock};

/// How deep a lane's tree may nest before removal gives up (each level holds a descriptor).
/// Real repositories stay far below this; a deeper tree is the agent's doing and is kept.
const MAX_DEPTH: usize = 256;

/// The identity of one directory: stable across renames, different for any other directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub device: u64,
    pub inode: u64,
    /// Birth time in nanoseconds since the epoch, when the filesystem reports one: it tells a
    /// new directory that reused a freed inode number from the one Maestro made.
    pub birth_ns: Option<u64>,
}

impl Identity {
    fn of(metadata: &Metadata) -> Identity {
        let birth_ns = metadata
            .created()
            .ok()
            .and_then(|born| born.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|since| u64::try_from(since.as_nanos()).ok());
        Identity {
            device: metadata.dev(),
            inode: metadata.ino(),
            birth_ns,
        }
    }

    /// Same directory: device and inode equal, and birth times equal when both are known.
    fn matches(&self, other: &Identity) -> bool {
        self.device == other.device
            && self.inode == other.inode
            && match (self.birth_ns, other.birth_ns) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }
}

/// `.maestro/lanes/<key>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Marker {
    schema_version: u32,
    key: String,
    #[serde(flatten)]
    identity: Identity,
    /// The process that created the directory, for operators.
    pid: u32,
    created_at: String,
}

/// What is at a lane's path, judged without following a symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Nothing is there.
    Absent,
    /// The directory Maestro created for this key.
    Owned,
    /// Something Maestro cannot prove it made, and why.
    Unproven(String),
}

/// Records `dir` (a directory Maestro has just created) as the directory of lane `key`.
pub fn claim(layout: &Layout, key: &str, dir: &Path) -> Result<(), Error> {
    let metadata = std::fs::symlink_metadata(dir).map_err(io_error(dir, "inspect new lane"))?;
    if !metadata.is_dir() {
        return Err(Error::Unsafe {
            lane: dir.to_path_buf(),
            reason: "the new lane directory is not a directory".into(),
        });
    }
    let marker = Marker {
        schema_version: super::record::SCHEMA_VERSION,
        key: key.to_string(),
        identity: Identity::of(&metadata),
        pid: std::process::id(),
        created_at: clock::now_rfc3339(),
    };
    let path = layout.lane_marker_file(key);
    atomic_file::write_json(&path, &marker).map_err(io_error(&path, "write lane marker"))
}

/// Whether the directory at `path` (a direct child of `workspace_root`) is lane `key` as
/// Maestro created it.
pub fn prove(layout: &Layout, key: &str, path: &Path) -> Result<Proof, Error> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Proof::Absent),
        Err(error) => return Err(io_error(path, "inspect lane")(error)),
    };
    if metadata.file_type().is_symlink() {
        return Ok(Proof::Unproven(
            "it is a symlink, and maestro never follows one".into(),
        ));
    }
    if !metadata.is_dir() {
        return Ok(Proof::Unproven("it is not a directory".into()));
    }
    judge(layout, key, &Identity::of(&metadata))
}

/// Removes the directory at `path` (a direct child of `workspace_root`) and everything in it,
/// only if it is provably lane `key` as Maestro created it; then forgets the marker. Nothing
/// there is success.
pub fn remove(layout: &Layout, key: &str, path: &Path) -> Result<(), Error> {
    let unproven = |reason: String| Error::NotOwned {
        path: path.to_path_buf(),
        reason,
    };
    let (Some(name), Some(parent)) = (path.file_name(), path.parent()) else {
        return Err(unproven("it is not a directory name".into()));
    };
    if parent != layout.root() {
        return Err(unproven("it is not directly inside workspace_root".into()));
    }
    let name =
        CString::new(name.as_bytes()).map_err(|_| unproven("its name holds a NUL byte".into()))?;
    // The root is the operator's own configuration and may itself be reached through a
    // symlink; everything below it is opened relative to its descriptor.
    let root = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(layout.root())
    {
        Ok(root) => root,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(layout.root(), "open workspace_root")(error)),
    };
    let lane = match open_dir_at(&root, &name) {
        Ok(lane) => lane,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            forget(layout, key);
            return Ok(());
        }
        Err(error) if is_not_a_directory(&error) => {
            return Err(unproven(
                "it is a symlink or not a directory, and maestro never follows one".into(),
            ));
        }
        Err(error) => return Err(io_error(path, "open lane")(error)),
    };
    let metadata = lane.metadata().map_err(io_error(path, "inspect lane"))?;
    match judge(layout, key, &Identity::of(&metadata))? {
        Proof::Owned => {}
        Proof::Unproven(reason) => return Err(unproven(reason)),
        Proof::Absent => return Ok(()),
    }
    empty(&lane, 0).map_err(io_error(path, "remove lane contents"))?;
    drop(lane);
    ignore_not_found(unlink_at(&root, &name, libc::AT_REMOVEDIR))
        .map_err(io_error(path, "remove lane"))?;
    forget(layout, key);
    Ok(())
}

/// Drops lane `key`'s marker (the directory it named is gone).
pub fn forget(layout: &Layout, key: &str) {
    let path = layout.lane_marker_file(key);
    if let Err(error) = std::fs::remove_file(&path) {
        if error.kind() != io::ErrorKind::NotFound {
            log::warn!(
                "cannot remove lane marker path={} error={error}",
                path.display()
            );
        }
    }
}

/// Removes staging directories left by processes that died mid-clone. A live process's clone
/// is left alone; a staging directory Maestro cannot prove it made is kept and reported.
pub fn sweep_staging(layout: &Layout) {
    let Ok(entries) = std::fs::read_dir(layout.root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((key, pid)) = name.to_str().and_then(Layout::parse_staging_name) else {
            continue;
        };
        if pid == std::process::id() || crate::signals::process_exists(pid) {
            continue;
        }
        let path = entry.path();
        match remove(layout, key, &path) {
            Ok(()) => log::info!(
                "stale staging clone removed lane={key} pid={pid} path={}",
                path.display()
            ),
            Err(error) => log::warn!("stale staging clone kept lane={key} pid={pid} error={error}"),
        }
    }
}

/// Compares an identity with lane `key`'s marker.
fn judge(layout: &Layout, key: &str, found: &Identity) -> Result<Proof, Error> {
    let path = layout.lane_marker_file(key);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Proof::Unproven(
                "it has no ownership marker (an older maestro or something else made it)".into(),
            ));
        }
        Err(error) => return Err(io_error(&path, "read lane marker")(error)),
    };
    let marker: Marker = serde_json::from_slice(&bytes).map_err(|error| Error::Corrupt {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    if marker.key != key {
        return Ok(Proof::Unproven(format!(
            "its ownership marker names lane `{}`",
            marker.key
        )));
    }
    if marker.identity.matches(found) {
        Ok(Proof::Owned)
    } else {
        Ok(Proof::Unproven(
            "it is not the directory maestro created (device, inode or birth time differ)".into(),
        ))
    }
}

/// `openat(O_NOFOLLOW)` refuses a symlink with `ELOOP`, `O_DIRECTORY` a file with `ENOTDIR`.
fn is_not_a_directory(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
}

/// Unlinks everything inside the directory open as `dir`, relative to its descriptor.
fn empty(dir: &File, depth: usize) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "the tree nests deeper than {MAX_DEPTH} directories"
        )));
    }
    for name in names(dir)? {
        // Files and symlinks go with a plain unlink (a symlink is removed, never followed);
        // only a directory refuses it, and only a real directory is then opened.
        match unlink_at(dir, &name, 0) {
            Ok(()) => continue,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) if matches!(error.raw_os_error(), Some(libc::EISDIR | libc::EPERM)) => {}
            Err(error) => return Err(error),
        }
        // Another process sweeping the same abandoned clone may get there first.
        let child = match open_dir_at(dir, &name) {
            Ok(child) => child,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        empty(&child, depth + 1)?;
        drop(child);
        ignore_not_found(unlink_at(dir, &name, libc::AT_REMOVEDIR))?;
    }
    Ok(())
}

fn ignore_not_found(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens directory `name` inside `parent` without following a symlink.
fn open_dir_at(parent: &File, name: &CStr) -> io::Result<File> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `name` is NUL-terminated and `parent` stays open for the whole call.
    let fd = unsafe { libc::openat(parent.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened here and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `unlinkat(2)` relative to `parent`.
fn unlink_at(parent: &File, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated and `parent` stays open for the whole call.
    if unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The entry names of the directory open as `dir` (without `.` and `..`).
fn names(dir: &File) -> io::Result<Vec<CString>> {
    let fd = dir.try_clone()?.into_raw_fd();
    // SAFETY: on success the stream owns `fd` and `closedir` below closes it.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let error = io::Error::last_os_error();
        // SAFETY: `fdopendir` failed, so `fd` is still ours and is closed exactly once.
        unsafe { libc::close(fd) };
        return Err(error);
    }
    // A duplicate shares the file offset; start from the first entry whatever came before.
    // SAFETY: `stream` is a valid directory stream until `closedir`.
    unsafe { libc::rewinddir(stream) };
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is valid and used by this thread only.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            // The end, or an error: either way a name left behind makes the final rmdir fail,
            // so nothing is silently kept.
            break;
        }
        // SAFETY: `d_name` is a NUL-terminated array inside the entry, valid until the next
        // `readdir` on this stream; it is copied before that.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            names.push(name.to_owned());
        }
    }
    // SAFETY: closes the stream (and `fd`) exactly once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> (PathBuf, Layout) {
        let dir = std::env::temp_dir().join(format!(
            "maestro-ownership-{name}-{}-{}",
            std::process::id(),
            clock::now_ms()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ws")).unwrap();
        let layout = Layout::new(&dir.join("ws"));
        (dir, layout)
    }

    #[test]
    fn a_claimed_lane_is_removed_with_its_marker() {
        let (dir, layout) = scratch("claimed");
        let lane = layout.lane_dir("ABC-1");
        std::fs::create_dir(&lane).unwrap();
        claim(&layout, "ABC-1", &lane).unwrap();
        std::fs::create_dir_all(lane.join("a/b/c")).unwrap();
        std::fs::write(lane.join("a/b/c/file"), "x").unwrap();
        assert_eq!(prove(&layout, "ABC-1", &lane).unwrap(), Proof::Owned);
        remove(&layout, "ABC-1", &lane).unwrap();
        assert!(!lane.exists());
        assert!(!layout.lane_marker_file("ABC-1").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn symlinks_inside_a_lane_are_unlinked_never_followed() {
        let (dir, layout) = scratch("inner-symlink");
        let outside = dir.join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::fs::write(outside.join("deep/keep.txt"), "keep").unwrap();
        let lane = layout.lane_dir("ABC-1");
        std::fs::create_dir(&lane).unwrap();
        claim(&layout, "ABC-1", &lane).unwrap();
        std::fs::create_dir(lane.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, lane.join("to-outside")).unwrap();
        std::os::unix::fs::symlink(outside.join("deep"), lane.join("sub/deep")).unwrap();
        remove(&layout, "ABC-1", &lane).unwrap();
        assert!(!lane.exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("deep/keep.txt")).unwrap(),
            "keep"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unmarked_swapped_and_symlinked_lanes_are_kept() {
        let (dir, layout) = scratch("kept");
        // No marker at all.
        let legacy = layout.lane_dir("OLD-1");
        std::fs::create_dir(&legacy).unwrap();
        let error = remove(&layout, "OLD-1", &legacy).unwrap_err();
        assert!(matches!(error, Error::NotOwned { .. }), "{error:?}");
        assert!(error.to_string().contains("no ownership marker"), "{error}");
        assert!(legacy.exists());

        // Claimed, then swapped for another directory.
        let lane = layout.lane_dir("ABC-1");
        std::fs::create_dir(&lane).unwrap();
        claim(&layout, "ABC-1", &lane).unwrap();
        std::fs::rename(&lane, dir.join("moved")).unwrap();
        std::fs::create_dir(&lane).unwrap();
        std::fs::write(lane.join("precious"), "x").unwrap();
        let error = remove(&layout, "ABC-1", &lane).unwrap_err();
        assert!(error.to_string().contains("not the directory"), "{error}");
        assert!(lane.join("precious").exists());

        // Claimed, then replaced by a symlink to a directory outside.
        std::fs::remove_dir_all(&lane).unwrap();
        std::os::unix::fs::symlink(dir.join("moved"), &lane).unwrap();
        assert!(matches!(
            prove(&layout, "ABC-1", &lane).unwrap(),
            Proof::Unproven(_)
        ));
        let error = remove(&layout, "ABC-1", &lane).unwrap_err();
        assert!(error.to_string().contains("symlink"), "{error}");
        assert!(dir.join("moved").is_dir());
        assert!(std::fs::symlink_metadata(&lane).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_dead_processes_staging_is_swept_and_only_when_proven() {
        let (dir, layout) = scratch("sweep");
        // A process that has certainly exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let proven = layout.staging_dir("ABC-1", dead);
        std::fs::create_dir(&proven).unwrap();
        claim(&layout, "ABC-1", &proven).unwrap();
        std::fs::write(proven.join("half-cloned"), "x").unwrap();
        let unproven = layout.staging_dir("ABC-2", dead);
        std::fs::create_dir(&unproven).unwrap();
        let live = layout.staging_dir("ABC-3", std::process::id());
        std::fs::create_dir(&live).unwrap();
        claim(&layout, "ABC-3", &live).unwrap();
        sweep_staging(&layout);
        assert!(!proven.exists());
        assert!(unproven.exists(), "no marker: kept");
        assert!(live.exists(), "a live process's clone is left alone");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_tree_nested_past_the_depth_bound_is_refused_not_a_crash() {
        let (dir, layout) = scratch("deep");
        let lane = layout.lane_dir("ABC-1");
        std::fs::create_dir(&lane).unwrap();
        claim(&layout, "ABC-1", &lane).unwrap();
        let mut deep = lane.clone();
        for _ in 0..MAX_DEPTH + 5 {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let error = remove(&layout, "ABC-1", &lane).unwrap_err();
        assert!(error.to_string().contains("nests deeper than"), "{error}");
        assert!(lane.exists(), "kept");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn staging_names_round_trip() {
        let layout = Layout::new(Path::new("/ws"));
        for key in ["ABC-1", "ABC-1.lock", "x.cloning-5"] {
            let path = layout.staging_dir(key, 77);
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(Layout::parse_staging_name(name), Some((key, 77)));
        }
        assert_eq!(Layout::parse_staging_name("ABC-1"), None);
        assert_eq!(Layout::parse_staging_name(".maestro"), None);
        assert_eq!(Layout::parse_staging_name(".x.cloning-abc"), None);
    }
}
