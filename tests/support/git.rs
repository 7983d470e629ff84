//! Real git fixtures: a bare "origin" standing in for GitHub and a source checkout cloned from
//! it (what `repo_root` points at), as cargo's `git.rs` does for its tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs git in `dir` with a fixed identity and no user or system config, panicking on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Maestro Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Maestro Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A bare origin plus a source checkout whose `origin` is that bare repository.
pub struct Repos {
    pub origin: PathBuf,
    pub source: PathBuf,
}

/// Creates `<dir>/origin.git` and `<dir>/source` with one commit holding `files`.
pub fn repos(dir: &Path, files: &[(&str, &str)]) -> Repos {
    let origin = dir.join("origin.git");
    let source = dir.join("source");
    std::fs::create_dir_all(&origin).unwrap();
    git(
        &origin,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    std::fs::create_dir_all(&source).unwrap();
    git(&source, &["init", "--quiet", "--initial-branch=main"]);
    for (path, contents) in files {
        let full = source.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    git(&source, &["add", "-A"]);
    git(&source, &["commit", "--quiet", "-m", "initial"]);
    git(
        &source,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&source, &["push", "--quiet", "origin", "main"]);
    Repos { origin, source }
}
