//! Whole-directory helpers: copy a fixture tree into a test dir, and snapshot a tree (every
//! directory and file with its bytes) to prove that something changed nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Copies `from` (recursively) to `to`, creating `to`.
pub fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy target");
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Every path under `root` (relative), with the bytes of files (`None` for directories).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut entries = BTreeMap::new();
    walk(root, root, &mut entries);
    entries
}

fn walk(root: &Path, dir: &Path, entries: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read {
        let entry = entry.expect("dir entry");
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("under root").to_path_buf();
        if entry.file_type().expect("file type").is_dir() {
            entries.insert(relative, None);
            walk(root, &path, entries);
        } else {
            entries.insert(relative, Some(std::fs::read(&path).expect("read file")));
        }
    }
}
