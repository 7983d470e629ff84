//! `context.read_first` files, read from the lane without trusting it.
//!
//! The lane belongs to the agent, and the agent is hostile: between attempts it can replace a
//! read_first file with a symlink to `/proc/self/environ` (Maestro's own environment, secrets
//! included), a FIFO that blocks any reader forever, or a file of gigabytes. So a file is read
//! only when it resolves inside the lane and outside its git metadata, and every component of
//! that resolved path is then opened again with `O_NOFOLLOW` from a descriptor of the lane
//! (a symlink swapped in after the check fails the open instead of being followed); the file
//! must be a regular file of at most [`MAX_FILE_BYTES`], all files together at most
//! [`MAX_TOTAL_BYTES`], and UTF-8. A file that fails any of this is skipped, with a reason,
//! never fatal: the caller names it in the run record and tells the agent.
//! This module reads; it does not decide what the prompt says (`prompt`) or scrub (`redact`).

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::workspace::record::ContextSkip;

/// The largest read_first file Maestro hands to the agent.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;
/// The most all read_first files of one attempt may add up to.
pub const MAX_TOTAL_BYTES: u64 = 256 * 1024;

/// One read_first entry, in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextEntry {
    Read { path: PathBuf, text: String },
    Skipped(ContextSkip),
}

/// Reads every `relative` file from `lane`, in order, within the limits.
pub fn read_all(lane: &Path, relatives: &[PathBuf]) -> Vec<ContextEntry> {
    let mut budget = MAX_TOTAL_BYTES;
    let lane_dir = std::fs::canonicalize(lane).and_then(|canonical| {
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&canonical)?;
        Ok((canonical, dir))
    });
    relatives
        .iter()
        .map(|relative| {
            let read = match &lane_dir {
                Ok((canonical, dir)) => read_one(canonical, dir, relative, budget),
                Err(error) => Err(format!(
                    "cannot be read: the lane cannot be opened ({})",
                    error.kind()
                )),
            };
            match read {
                Ok(text) => {
                    budget = budget.saturating_sub(text.len() as u64);
                    ContextEntry::Read {
                        path: relative.clone(),
                        text,
                    }
                }
                Err(reason) => ContextEntry::Skipped(ContextSkip {
                    path: relative.display().to_string(),
                    reason,
                }),
            }
        })
        .collect()
}

/// The file's text, or why it was skipped (a short sentence without a host path).
fn read_one(lane: &Path, lane_dir: &File, relative: &Path, budget: u64) -> Result<String, String> {
    if relative
        .components()
        .any(|component| !matches!(component, Component::Normal(_) | Component::CurDir))
    {
        return Err("is not a plain path relative to the lane".to_string());
    }
    let resolved = std::fs::canonicalize(lane.join(relative)).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            "does not exist in the lane (or is a symlink to nothing)".to_string()
        } else {
            format!("cannot be resolved in the lane: {}", error.kind())
        }
    })?;
    let inside = resolved
        .strip_prefix(lane)
        .map_err(|_| "leads outside the lane (through a symlink)".to_string())?;
    let components: Vec<&std::ffi::OsStr> = inside
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((file_name, directories)) = components.split_last() else {
        return Err("is the lane itself, not a regular file".to_string());
    };
    if components.iter().any(|name| *name == ".git") {
        return Err("leads into the lane's git metadata".to_string());
    }
    // A cheap look before opening, so a FIFO or device is never opened at all; the check that
    // counts is the fstat of what was actually opened, below.
    let before = std::fs::symlink_metadata(&resolved)
        .map_err(|error| format!("cannot be read: {}", error.kind()))?;
    if !before.file_type().is_file() {
        return Err("is not a regular file".to_string());
    }
    let mut directory = None;
    for name in directories {
        let parent = directory
            .as_ref()
            .map_or(lane_dir.as_raw_fd(), |fd: &OwnedFd| fd.as_raw_fd());
        directory = Some(open_at(parent, name, libc::O_DIRECTORY)?);
    }
    let parent = directory
        .as_ref()
        .map_or(lane_dir.as_raw_fd(), |fd| fd.as_raw_fd());
    let file = File::from(open_at(
        parent,
        file_name,
        libc::O_NONBLOCK | libc::O_NOCTTY,
    )?);
    let metadata = file
        .metadata()
        .map_err(|error| format!("cannot be read: {}", error.kind()))?;
    if !metadata.file_type().is_file() {
        return Err("is not a regular file".to_string());
    }
    if (metadata.dev(), metadata.ino()) != (before.dev(), before.ino()) {
        return Err("changed while Maestro read it".to_string());
    }
    let limit = MAX_FILE_BYTES.min(budget);
    let too_big = |size: u64| {
        if limit < MAX_FILE_BYTES {
            format!(
                "is {size} bytes, more than is left of the {MAX_TOTAL_BYTES}-byte limit for all read_first files"
            )
        } else {
            format!("is {size} bytes, over the {MAX_FILE_BYTES}-byte limit per read_first file")
        }
    };
    if metadata.len() > limit {
        return Err(too_big(metadata.len()));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot be read: {}", error.kind()))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

/// `openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extra)`.
fn open_at(
    parent: libc::c_int,
    name: &std::ffi::OsStr,
    extra: libc::c_int,
) -> Result<OwnedFd, String> {
    let name =
        CString::new(name.as_bytes()).map_err(|_| "has a NUL byte in its name".to_string())?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | extra;
    // SAFETY: `parent` is a descriptor this module holds open for the duration of the call and
    // `name` is a NUL-terminated string that outlives it; openat does not retain either.
    let fd = unsafe { libc::openat(parent, name.as_ptr(), flags) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            // A component turned into a symlink (or a non-directory) after it was resolved.
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => "changed while Maestro read it".to_string(),
            _ => format!("cannot be read: {}", error.kind()),
        });
    }
    // SAFETY: openat just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn lane(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("maestro-context-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("lane/docs")).unwrap();
        dir
    }

    fn skipped(entries: &[ContextEntry]) -> Vec<(String, String)> {
        entries
            .iter()
            .filter_map(|entry| match entry {
                ContextEntry::Skipped(skip) => Some((skip.path.clone(), skip.reason.clone())),
                ContextEntry::Read { .. } => None,
            })
            .collect()
    }

    #[test]
    fn regular_files_inside_the_lane_are_read_even_through_an_inside_symlink() {
        let dir = lane("inside");
        let lane = dir.join("lane");
        std::fs::write(lane.join("docs/guide.md"), "the guide\n").unwrap();
        symlink("docs/guide.md", lane.join("README.md")).unwrap();
        let entries = read_all(
            &lane,
            &[PathBuf::from("docs/guide.md"), PathBuf::from("README.md")],
        );
        assert_eq!(
            entries,
            vec![
                ContextEntry::Read {
                    path: "docs/guide.md".into(),
                    text: "the guide\n".into()
                },
                ContextEntry::Read {
                    path: "README.md".into(),
                    text: "the guide\n".into()
                },
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn symlinks_out_of_the_lane_fifos_directories_and_git_metadata_are_skipped() {
        let dir = lane("hostile");
        let lane = dir.join("lane");
        std::fs::write(dir.join("outside.txt"), "secret").unwrap();
        symlink("/proc/self/environ", lane.join("environ.md")).unwrap();
        symlink("../outside.txt", lane.join("outside.md")).unwrap();
        // A directory symlink in the middle of the path that leaves the lane.
        symlink(&dir, lane.join("up")).unwrap();
        let fifo = CString::new(lane.join("fifo.md").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::create_dir_all(lane.join(".git")).unwrap();
        std::fs::write(lane.join(".git/config"), "[remote]").unwrap();
        symlink(".git/config", lane.join("config.md")).unwrap();
        let names = [
            "environ.md",
            "outside.md",
            "up/outside.txt",
            "fifo.md",
            "docs",
            "config.md",
            "missing.md",
        ];
        let paths: Vec<PathBuf> = names.iter().map(PathBuf::from).collect();
        let skips = skipped(&read_all(&lane, &paths));
        let reasons: Vec<(&str, &str)> = skips
            .iter()
            .map(|(p, r)| (p.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                ("environ.md", "leads outside the lane (through a symlink)"),
                ("outside.md", "leads outside the lane (through a symlink)"),
                (
                    "up/outside.txt",
                    "leads outside the lane (through a symlink)"
                ),
                ("fifo.md", "is not a regular file"),
                ("docs", "is not a regular file"),
                ("config.md", "leads into the lane's git metadata"),
                (
                    "missing.md",
                    "does not exist in the lane (or is a symlink to nothing)"
                ),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn files_over_the_caps_and_non_utf8_files_are_skipped() {
        let dir = lane("caps");
        let lane = dir.join("lane");
        let big = MAX_FILE_BYTES as usize + 1;
        std::fs::write(lane.join("big.md"), "x".repeat(big)).unwrap();
        std::fs::write(lane.join("binary.md"), [0xff, 0xfe, 0x00]).unwrap();
        let full = "y".repeat(MAX_FILE_BYTES as usize);
        for index in 0..4 {
            std::fs::write(lane.join(format!("part{index}.md")), &full).unwrap();
        }
        let mut paths = vec![PathBuf::from("big.md"), PathBuf::from("binary.md")];
        paths.extend((0..4).map(|index| PathBuf::from(format!("part{index}.md"))));
        paths.push(PathBuf::from("binary.md"));
        std::fs::write(lane.join("small.md"), "z").unwrap();
        paths.push(PathBuf::from("small.md"));
        let entries = read_all(&lane, &paths);
        let skips = skipped(&entries);
        assert_eq!(
            skips[0],
            (
                "big.md".into(),
                format!("is {big} bytes, over the 65536-byte limit per read_first file")
            )
        );
        assert_eq!(skips[1], ("binary.md".into(), "is not UTF-8 text".into()));
        // Four full files fill the total budget exactly; the next one no longer fits.
        assert_eq!(skips[2].0, "binary.md");
        assert_eq!(
            skips[3],
            (
                "small.md".into(),
                "is 1 bytes, more than is left of the 262144-byte limit for all read_first files"
                    .into()
            )
        );
        let read: u64 = entries
            .iter()
            .map(|entry| match entry {
                ContextEntry::Read { text, .. } => text.len() as u64,
                ContextEntry::Skipped(_) => 0,
            })
            .sum();
        assert_eq!(read, MAX_TOTAL_BYTES);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
