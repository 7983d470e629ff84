//! Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over
//! the target, fsync the directory.
//!
//! Every piece of state Maestro writes (run records, markers, the retry queue, local tracker
//! issues) goes through here, so a reader in another process sees either the old file or the new
//! one, never a torn mix, and a `kill -9` or power loss mid-write loses at most the new version.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Atomically replaces `path` with `contents`, creating parent directories as needed.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let temp = temp_path(path);
    let result = write_synced(&temp, contents).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        // Best effort: a leftover temp file is harmless but untidy.
        let _ = fs::remove_file(&temp);
        return result;
    }
    // Make the rename itself durable. Some filesystems refuse to fsync a directory; the data is
    // already safe in that case, so that error is not worth failing the write.
    if let Ok(directory) = File::open(parent) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// Atomically replaces `path` with `value` as pretty JSON plus a trailing newline.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write(path, &bytes)
}

fn write_synced(temp: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// `.<name>.tmp.<pid>.<n>` in the target's directory: same filesystem (so rename is atomic),
/// hidden, and unique per process and call so concurrent writers never share a temp file.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("maestro-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = scratch("replace");
        let path = dir.join("nested").join("record.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["record.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_is_pretty_with_newline() {
        let dir = scratch("json");
        let path = dir.join("value.json");
        write_json(&path, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\n  \"a\": 1\n}\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failure_keeps_the_old_file() {
        let dir = scratch("fail");
        let path = dir.join("target");
        write(&path, b"old").unwrap();
        // A directory where the temp file's parent should be cannot be written into as a file:
        // make the rename fail by turning the target into a non-empty directory.
        fs::remove_file(&path).unwrap();
        fs::create_dir_all(path.join("child")).unwrap();
        assert!(write(&path, b"new").is_err());
        assert!(path.join("child").is_dir());
        let leftovers = fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "temp file cleaned up");
        fs::remove_dir_all(&dir).unwrap();
    }
}
