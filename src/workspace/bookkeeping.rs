//! Per-issue bookkeeping on disk: where an issue's file is, how it is found and how it is
//! changed, plus the disk reserve that lets an attempt's final records land on a full disk.
//!
//! An issue's bookkeeping, lease and activity marker are stored under its **file key**
//! ([`issue_key`]), made from the tracker's stable issue id. Versions before that stored them
//! under the identifier; such files are still read — by the current identifier first, then by
//! the `issue_id` inside any bookkeeping file (an identifier may have changed since) — and a
//! file found that way is moved to the id's key by the next write ([`update_issue_state`]).
//! Every write by Maestro is a read-modify-write under the issue's bookkeeping lock.
//!
//! The types are [`super::record`]'s (re-exported there); this module decides where they live.

use std::path::{Path, PathBuf};

use super::record::{IssueState, RunRecord, save_run};
use super::{Error, Layout, lane, lock, state_file};

/// The file key of an issue under `.maestro/` (bookkeeping, lease, activity marker): the
/// tracker's stable id, made safe as a file name by the lane-key rule. Identifiers are display
/// names; they change when an issue moves to another team, ids do not.
pub fn issue_key(issue_id: &str) -> String {
    lane::lane_key(issue_id)
}

/// Maestro saw the issue in a terminal state while its lane was on disk (docs/spec/daemon.md,
/// "Terminal lanes"): the lane is removed as soon as nothing works in it. While the lane stays,
/// `kept` says why and `status` lists it as pending removal. The next attempt clears it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalLane {
    /// The terminal state the issue was seen in.
    pub state: String,
    /// When Maestro first saw it there.
    pub seen_at: String,
    /// Why the lane is still on disk (a process works in it, Maestro cannot prove it created
    /// it, the removal failed); absent once it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// Which issue a bookkeeping lookup is for: the stable id, and the identifier it has now (the
/// name files of older versions were stored under).
#[derive(Debug, Clone, Copy)]
pub struct IssueRef<'a> {
    pub id: &'a str,
    pub identifier: &'a str,
}

/// An issue's bookkeeping, found by its id: the file under the id's key, else a file of an
/// older version stored under an identifier (the current one first, then any file whose
/// `issue_id` matches, for an identifier that changed since).
pub fn find_issue_state(layout: &Layout, issue: IssueRef<'_>) -> Result<Option<IssueState>, Error> {
    locate_issue_state(layout, issue).map(|found| found.map(|(state, _)| state))
}

/// Read-modify-write of an issue's bookkeeping under its bookkeeping lock, so two processes
/// never interleave and a writer always changes what is on disk now (never a copy it read
/// earlier). `change` gets the current state and returns the new one (`None`: write nothing)
/// and a result for the caller. The file is written under the id's key; a file of an older
/// version it was read from is removed once the new one is in place. When the write fails and
/// `reserve` still holds space, the space is given back and the write tried once more.
pub fn update_issue_state<T>(
    layout: &Layout,
    issue: IssueRef<'_>,
    reserve: Option<&mut Reserve>,
    change: impl FnOnce(Option<IssueState>) -> (Option<IssueState>, T),
) -> Result<T, Error> {
    let key = issue_key(issue.id);
    let _lock = lock::lock_issue(layout, &key)?;
    let found = locate_issue_state(layout, issue)?;
    let source = found.as_ref().map(|(_, path)| path.clone());
    let (next, result) = change(found.map(|(state, _)| state));
    let Some(next) = next else {
        return Ok(result);
    };
    let path = layout.issue_file(&key);
    let mut written = state_file::write(&path, &next);
    if written.is_err() {
        if let Some(reserve) = reserve {
            if reserve.release() {
                written = state_file::write(&path, &next);
            }
        }
    }
    written?;
    if let Some(source) = source.filter(|source| *source != path) {
        // The old file held this issue's id (checked when it was read): Maestro's own file.
        if let Err(error) = std::fs::remove_file(&source) {
            log::warn!(
                "cannot remove migrated bookkeeping path={} error={error}",
                source.display()
            );
        }
    }
    Ok(result)
}

fn locate_issue_state(
    layout: &Layout,
    issue: IssueRef<'_>,
) -> Result<Option<(IssueState, PathBuf)>, Error> {
    let primary = layout.issue_file(&issue_key(issue.id));
    if primary.exists() {
        return read_issue_state(&primary).map(|state| Some((state, primary)));
    }
    let legacy = layout.issue_file(&lane::lane_key(issue.identifier));
    if legacy.exists() {
        if let Ok(state) = read_issue_state(&legacy) {
            if state.issue_id == issue.id {
                return Ok(Some((state, legacy)));
            }
        }
    }
    // An older version's file under an identifier the issue no longer has.
    let mut matches: Vec<(IssueState, PathBuf)> = issue_state_files(layout)
        .into_iter()
        .filter(|path| *path != legacy)
        .filter_map(|path| read_issue_state(&path).ok().map(|state| (state, path)))
        .filter(|(state, _)| state.issue_id == issue.id)
        .collect();
    matches.sort_by(|a, b| b.0.updated_at.cmp(&a.0.updated_at));
    Ok(matches.into_iter().next())
}

fn issue_state_files(layout: &Layout) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(layout.issues_dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(Layout::is_state_file)
        })
        .collect();
    paths.sort();
    paths
}

/// Reads one bookkeeping file; a file of an older version gets its lane key from its name.
pub(super) fn read_issue_state(path: &Path) -> Result<IssueState, Error> {
    let mut state: IssueState = state_file::read(path)?;
    if state.lane_key.is_none() {
        state.lane_key = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .map(str::to_string);
    }
    Ok(state)
}

/// Disk space set aside by a live attempt (`reserve/<run_id>`), given back when its final run
/// record or bookkeeping cannot be written otherwise: a disk that fills up during an attempt
/// must not lose the attempt's outcome. Removed on drop.
#[derive(Debug)]
pub struct Reserve {
    path: PathBuf,
    held: bool,
}

impl Reserve {
    /// Bytes set aside: several times the largest final record and bookkeeping.
    pub const BYTES: usize = 256 * 1024;

    /// Sets the space aside; on a disk already full it holds nothing (logged).
    pub fn create(layout: &Layout, run_id: &str) -> Reserve {
        let path = layout.reserve_file(run_id);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, vec![0u8; Self::BYTES]));
        let held = match written {
            Ok(()) => true,
            Err(error) => {
                log::warn!(
                    "cannot set disk space aside for the final record path={} error={error}",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                false
            }
        };
        Reserve { path, held }
    }

    /// Gives the space back; true when there was space to give.
    pub fn release(&mut self) -> bool {
        let held = std::mem::replace(&mut self.held, false);
        held && std::fs::remove_file(&self.path).is_ok()
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        if self.held {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes a run record, giving back `reserve`'s space and trying once more when it fails.
pub fn save_run_reserving(
    layout: &Layout,
    record: &RunRecord,
    reserve: &mut Reserve,
) -> Result<(), Error> {
    match save_run(layout, record) {
        Err(_) if reserve.release() => save_run(layout, record),
        result => result,
    }
}

/// Every issue's bookkeeping, one per issue id: the file under the id's key wins over a file
/// of an older version stored under an identifier.
pub fn list_issue_states(layout: &Layout) -> super::record::Listing<IssueState> {
    let mut listing = super::record::Listing {
        items: Vec::new(),
        errors: Vec::new(),
    };
    let mut by_id: std::collections::BTreeMap<String, (bool, IssueState)> =
        std::collections::BTreeMap::new();
    for path in issue_state_files(layout) {
        let state = match read_issue_state(&path) {
            Ok(state) => state,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                continue;
            }
            Err(error) => {
                listing.errors.push(error);
                continue;
            }
        };
        let primary = path.file_stem().and_then(|stem| stem.to_str())
            == Some(issue_key(&state.issue_id).as_str());
        let newer = match by_id.get(&state.issue_id) {
            None => true,
            Some((had_primary, had)) => {
                (primary && !had_primary)
                    || (primary == *had_primary && state.updated_at > had.updated_at)
            }
        };
        if newer {
            by_id.insert(state.issue_id.clone(), (primary, state));
        }
    }
    listing.items = by_id.into_values().map(|(_, state)| state).collect();
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::{RunStatus, save_issue_state};

    fn layout(name: &str) -> (Layout, PathBuf) {
        let dir = std::env::temp_dir().join(format!("maestro-books-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Layout::new(&dir), dir)
    }

    fn state(id: &str, identifier: &str, run_id: &str, attempts: u32) -> IssueState {
        IssueState {
            issue_id: id.into(),
            issue_identifier: identifier.into(),
            attempts_used: attempts,
            last_run_id: Some(run_id.into()),
            last_status: Some(RunStatus::RetryScheduled),
            updated_at: "2026-11-26T00:00:00.000Z".into(),
            ..IssueState::default()
        }
    }

    #[test]
    fn files_of_older_versions_are_found_by_id_and_moved_on_write() {
        let (layout, dir) = layout("legacy");
        // Stored under the identifier the issue had then; it is XYZ-1 now.
        save_issue_state(&layout, "ABC-1", &state("uuid-1", "ABC-1", "r1", 1)).unwrap();
        let issue = IssueRef {
            id: "uuid-1",
            identifier: "XYZ-1",
        };
        let found = find_issue_state(&layout, issue).unwrap().unwrap();
        assert_eq!(
            found.lane_key.as_deref(),
            Some("ABC-1"),
            "the lane key is the file name"
        );
        update_issue_state(&layout, issue, None, |current| {
            let mut next = current.unwrap();
            next.attempts_used = 2;
            (Some(next), ())
        })
        .unwrap();
        assert!(!layout.issue_file("ABC-1").exists());
        let moved = load_issue_state_at(&layout.issue_file("uuid-1")).unwrap();
        assert_eq!(
            (moved.attempts_used, moved.lane_key.as_deref()),
            (2, Some("ABC-1"))
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_listing_has_one_entry_per_issue_and_prefers_the_id_key() {
        let (layout, dir) = layout("listing");
        save_issue_state(&layout, "ABC-1", &state("uuid-1", "ABC-1", "old", 5)).unwrap();
        save_issue_state(&layout, "uuid-1", &state("uuid-1", "XYZ-1", "new", 1)).unwrap();
        save_issue_state(&layout, "uuid-2", &state("uuid-2", "ABC-2", "r", 1)).unwrap();
        let listing = list_issue_states(&layout);
        assert!(listing.errors.is_empty());
        let runs: Vec<&str> = listing
            .items
            .iter()
            .filter_map(|state| state.last_run_id.as_deref())
            .collect();
        assert_eq!(runs, vec!["new", "r"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_reserve_is_set_aside_and_given_back_once() {
        let (layout, dir) = layout("reserve");
        let mut reserve = Reserve::create(&layout, "run-1");
        assert!(layout.reserve_file("run-1").exists());
        assert!(reserve.release());
        assert!(!layout.reserve_file("run-1").exists());
        assert!(!reserve.release(), "the space is given back once");
        drop(reserve);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn load_issue_state_at(path: &Path) -> Option<IssueState> {
        read_issue_state(path).ok()
    }
}
