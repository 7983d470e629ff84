//! The path rules of maestro.toml: `~/` expansion, lexical normalization, repository-relative
//! paths, and the overlap of `workspace_root` with `repo_root` judged on the paths as written.
//! No filesystem access: [`crate::settings`] judges the same with symlinks resolved.

use std::path::{Component, Path, PathBuf};

/// Why `workspace_root` may not be used with `repo_root`, judged on the paths as written: it is
/// the repository itself or contains it. Maestro removes lanes under `workspace_root`, so the
/// two must never share a tree ([`crate::settings`] checks the same with symlinks resolved,
/// and that a root inside the repository is outside its tracked tree).
pub fn workspace_overlap(workspace_root: &Path, repo_root: &Path) -> Option<String> {
    let fix = "set workspace_root to a directory outside the repository, or omit it to use <repo_root>/.workspaces";
    if workspace_root == repo_root {
        Some(format!(
            "is repo_root itself; lanes would be created and removed among the repository's own files: {fix}"
        ))
    } else if repo_root.starts_with(workspace_root) {
        Some(format!(
            "contains repo_root ({}); lanes would be created and removed around the repository: {fix}",
            repo_root.display()
        ))
    } else {
        None
    }
}

/// Expands a leading `~` or `~/` using `home`.
pub fn expand_home(value: &str, home: Option<&Path>) -> PathBuf {
    match (value.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.to_path_buf(),
        (Some(rest), Some(home)) if rest.starts_with('/') => home.join(&rest[1..]),
        _ => PathBuf::from(value),
    }
}

/// Checks that `value` is a relative path that stays inside its base directory.
pub fn repo_relative(value: &str) -> Result<PathBuf, String> {
    let path = Path::new(value.trim());
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if path.is_absolute() || value.trim().starts_with('~') {
        return Err(format!(
            "`{value}` is absolute; give a path relative to the repository root"
        ));
    }
    if path
        .components()
        .any(|component| matches!(component, Component::ParentDir))
    {
        return Err(format!(
            "`{value}` leaves the repository ('..' is not allowed); give a path inside it"
        ));
    }
    Ok(path.to_path_buf())
}

/// Removes `.` and resolves `..` lexically (no filesystem access, symlinks untouched).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_home_forms() {
        let home = Path::new("/home/op");
        assert_eq!(expand_home("~", Some(home)), PathBuf::from("/home/op"));
        assert_eq!(expand_home("~/w", Some(home)), PathBuf::from("/home/op/w"));
        assert_eq!(expand_home("~x/w", Some(home)), PathBuf::from("~x/w"));
        assert_eq!(expand_home("/abs", Some(home)), PathBuf::from("/abs"));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
