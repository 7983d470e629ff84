//! Conditional requests: the ETag and the (already trimmed) answer of every REST GET, per URL.
//!
//! GitHub answers `If-None-Match` with `304 Not Modified` when nothing changed, and a 304 does
//! not count against the rate limit. The review lifecycle reads every waiting PR each
//! `poll_interval_s`, so most reads are 304s and cost nothing, as long as the ETags outlive the
//! process that got them: a `run --once` child and a restarted daemon load the cache from
//! `.maestro/github-etags.json` ([`crate::workspace::Layout::github_etag_cache_file`]).
//!
//! What is kept is not GitHub's raw body but the fields Maestro reads, already cut to their
//! bounds, so the file stays small (a PR's raw JSON is tens of KiB, its trimmed form a few
//! hundred bytes). The file is a cache, never a source of truth: a missing, corrupt or
//! older-schema file is an empty cache, and a lost entry only costs one full read. It holds no
//! secret: the token is never part of a URL or an answer.
//!
//! It deliberately does not decide what to ask GitHub or what an answer means.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file;

/// The version of the file's shape; another version is ignored (an empty cache).
pub const SCHEMA_VERSION: u32 = 1;

/// At most this many URLs are kept; the least recently stored go first. Ten lanes in review
/// use about forty (the PR, its reviews, check runs and statuses, a page each).
const MAX_ENTRIES: usize = 512;

/// A trimmed answer larger than this is not kept (it would be read in full next time).
const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// One remembered answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub etag: String,
    /// The trimmed answer, as Maestro's wire type serialized it.
    pub value: serde_json::Value,
    /// Whether GitHub's `Link` header named a next page.
    pub has_next: bool,
    /// When it was stored (milliseconds since the epoch): for eviction only.
    pub stored_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    schema_version: u32,
    entries: BTreeMap<String, Entry>,
}

/// The ETag cache of one client: in memory, optionally backed by a file.
#[derive(Debug, Default)]
pub struct EtagCache {
    entries: BTreeMap<String, Entry>,
    /// URLs stored since the file was loaded: on save they win over the file's entries.
    changed: HashSet<String>,
    path: Option<PathBuf>,
}

impl EtagCache {
    /// A cache that lives as long as the process.
    pub fn in_memory() -> EtagCache {
        EtagCache::default()
    }

    /// The cache persisted at `path`; unreadable or of another schema: empty, with a warning.
    pub fn load(path: &Path) -> EtagCache {
        EtagCache {
            entries: read_file(path),
            changed: HashSet::new(),
            path: Some(path.to_path_buf()),
        }
    }

    /// How many URLs are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn get(&self, url: &str) -> Option<&Entry> {
        self.entries.get(url)
    }

    pub(super) fn forget(&mut self, url: &str) {
        if self.entries.remove(url).is_some() {
            self.changed.insert(url.to_string());
        }
    }

    pub(super) fn put(&mut self, url: &str, etag: &str, value: serde_json::Value, has_next: bool) {
        let size = serde_json::to_vec(&value).map_or(usize::MAX, |bytes| bytes.len());
        if etag.is_empty() || etag.len() > 256 || size > MAX_ENTRY_BYTES {
            self.forget(url);
            return;
        }
        self.entries.insert(
            url.to_string(),
            Entry {
                etag: etag.to_string(),
                value,
                has_next,
                stored_ms: crate::clock::now_ms(),
            },
        );
        self.changed.insert(url.to_string());
        evict(&mut self.entries);
    }

    /// Writes the cache to its file, atomically, when anything changed since the last save.
    /// Entries another process saved meanwhile are kept (this process's own win for the same
    /// URL), so a daemon and its children do not erase each other's ETags. `Ok(false)`: nothing
    /// to write (no change, or an in-memory cache).
    pub fn save(&mut self) -> std::io::Result<bool> {
        let Some(path) = self.path.clone() else {
            return Ok(false);
        };
        if self.changed.is_empty() {
            return Ok(false);
        }
        let mut merged = read_file(&path);
        for url in &self.changed {
            match self.entries.get(url) {
                Some(entry) => {
                    merged.insert(url.clone(), entry.clone());
                }
                None => {
                    merged.remove(url);
                }
            }
        }
        evict(&mut merged);
        atomic_file::write_json(
            &path,
            &CacheFile {
                schema_version: SCHEMA_VERSION,
                entries: merged.clone(),
            },
        )?;
        self.entries = merged;
        self.changed.clear();
        Ok(true)
    }
}

fn read_file(path: &Path) -> BTreeMap<String, Entry> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(error) => {
            log::warn!(
                "github etag cache unreadable, starting empty path={} error=\"{error}\"",
                path.display()
            );
            return BTreeMap::new();
        }
    };
    match serde_json::from_str::<CacheFile>(&text) {
        Ok(file) if file.schema_version == SCHEMA_VERSION => file.entries,
        Ok(file) => {
            log::warn!(
                "github etag cache of schema {} ignored (this maestro writes {SCHEMA_VERSION}) path={}",
                file.schema_version,
                path.display()
            );
            BTreeMap::new()
        }
        Err(error) => {
            log::warn!(
                "github etag cache corrupt, starting empty path={} error=\"{error}\"",
                path.display()
            );
            BTreeMap::new()
        }
    }
}

fn evict(entries: &mut BTreeMap<String, Entry>) {
    while entries.len() > MAX_ENTRIES {
        let oldest = entries
            .iter()
            .min_by_key(|(_, entry)| entry.stored_ms)
            .map(|(url, _)| url.clone());
        match oldest {
            Some(url) => {
                entries.remove(&url);
            }
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("maestro-etag-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("github-etags.json")
    }

    #[test]
    fn a_saved_cache_loads_in_another_process_and_keeps_its_entries() {
        let path = scratch("roundtrip");
        let mut first = EtagCache::load(&path);
        first.put("http://x/a", "\"e1\"", json!({"n": 1}), false);
        assert!(first.save().unwrap());
        assert!(!first.save().unwrap(), "nothing changed since");
        // A second process stores another URL; the first process's entry survives its save.
        let mut second = EtagCache::load(&path);
        assert_eq!(second.get("http://x/a").unwrap().etag, "\"e1\"");
        second.put("http://x/b", "\"e2\"", json!([1, 2]), true);
        first.put("http://x/c", "\"e3\"", json!(null), false);
        assert!(second.save().unwrap());
        assert!(first.save().unwrap());
        let third = EtagCache::load(&path);
        assert_eq!(third.len(), 3);
        assert!(third.get("http://x/b").unwrap().has_next);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"schema_version\": 1"), "{text}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_an_empty_cache() {
        let path = scratch("corrupt");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"schema_version\": 1, \"entr").unwrap();
        assert!(EtagCache::load(&path).is_empty());
        std::fs::write(&path, "{\"schema_version\": 99, \"entries\": {}}").unwrap();
        assert!(EtagCache::load(&path).is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_entry_size() {
        let mut cache = EtagCache::in_memory();
        for n in 0..MAX_ENTRIES + 10 {
            cache.put(&format!("http://x/{n}"), "\"e\"", json!(n), false);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.put(
            "http://x/huge",
            "\"e\"",
            json!("x".repeat(MAX_ENTRY_BYTES)),
            false,
        );
        assert!(cache.get("http://x/huge").is_none());
        assert!(!cache.save().unwrap(), "an in-memory cache has no file");
    }
}
