//! The one way Maestro's JSON state under `.maestro/` is written and read.
//!
//! Every state file is a [`StateFile`]: it carries `schema_version`, is written atomically
//! through [`crate::atomic_file`] (temp file, fsync, rename), and a file that does not parse is
//! reported as [`Error::Corrupt`] naming it. The types themselves and their JSON shape are
//! `record`'s; this module only moves them between memory and disk, so no other code calls
//! `serde_json` or `atomic_file` for state. Four files keep their own atomic, versioned writer
//! (docs/index.md, `workspace/`; `tests/tidy.rs` holds the list): the lane ownership marker
//! (`ownership`'s own promise), the intake's budget report, review records and the GitHub ETag
//! cache.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Error, io_error};
use crate::atomic_file;

/// Version of every state file Maestro writes.
pub const SCHEMA_VERSION: u32 = 1;

/// A JSON file under `.maestro/`.
pub trait StateFile: Serialize + DeserializeOwned {
    /// What a failed write says it was doing: `write run record`.
    const WRITE: &'static str;

    /// The schema version the value carries (every state type has one; a test checks it is
    /// [`SCHEMA_VERSION`] for values Maestro builds).
    fn schema_version(&self) -> u32;
}

/// Writes `value` to `path` atomically: readers see the old file or the new one, never a mix.
pub fn write<T: StateFile>(path: &Path, value: &T) -> Result<(), Error> {
    atomic_file::write_json(path, value).map_err(io_error(path, T::WRITE))
}

/// Reads the state file at `path`.
pub fn read<T: StateFile>(path: &Path) -> Result<T, Error> {
    let bytes = std::fs::read(path).map_err(io_error(path, "read"))?;
    serde_json::from_slice(&bytes).map_err(|error| Error::Corrupt {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::{
        ActivityMarker, IssueState, LeaseFile, LeaseOwner, Phase, RetryQueue, RunRecord,
    };

    fn versioned<T: StateFile>(value: &T) -> serde_json::Value {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(json["schema_version"], SCHEMA_VERSION, "{json}");
        json
    }

    #[test]
    fn every_state_file_carries_the_schema_version() {
        versioned(&RunRecord::default());
        versioned(&IssueState::default());
        versioned(&RetryQueue::default());
        versioned(&ActivityMarker {
            schema_version: SCHEMA_VERSION,
            run_id: "r".into(),
            issue_id: "i".into(),
            issue_identifier: "ABC-1".into(),
            attempt: 1,
            phase: Phase::Preparing,
            pid: 1,
            thread_id: None,
            turn_count: 0,
            event_count: 0,
            last_event_type: None,
            last_event_at: None,
            last_progress_at: String::new(),
            tokens: Default::default(),
            rate_limits: None,
            updated_at: String::new(),
        });
        let owner = LeaseOwner {
            run_id: "r".into(),
            pid: 1,
            issue_id: "i".into(),
            issue_identifier: "ABC-1".into(),
            acquired_at: String::new(),
        };
        let json = versioned(&LeaseFile::from(owner.clone()));
        assert_eq!(json["run_id"], "r", "the owner's fields stay flat: {json}");
    }

    #[test]
    fn a_lease_owner_file_of_an_older_version_still_reads() {
        let old = r#"{"run_id": "r", "pid": 4, "issue_id": "i", "issue_identifier": "ABC-1", "acquired_at": ""}"#;
        let file: LeaseFile = serde_json::from_str(old).unwrap();
        assert_eq!((file.schema_version, file.owner.pid), (1, 4));
    }

    #[test]
    fn a_state_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("maestro-state-file-{}", std::process::id()));
        let path = dir.join("queue.json");
        write(&path, &RetryQueue::default()).unwrap();
        assert_eq!(read::<RetryQueue>(&path).unwrap(), RetryQueue::default());
        std::fs::write(&path, "{\"schema_version\": 1, \"entr").unwrap();
        let error = read::<RetryQueue>(&path).unwrap_err();
        assert!(
            error.to_string().contains("queue.json is unreadable"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
