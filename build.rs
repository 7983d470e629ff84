//! Embeds the git commit into `maestro --version` when built from a checkout.
//!
//! Builds from a tarball, a vendored tree or a host without `git` must still work, so every
//! failure here degrades to "no commit" instead of failing the build.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit()));
    if let Some(commit) = commit {
        println!("cargo:rustc-env=MAESTRO_GIT_COMMIT={commit}");
    }
    // Re-run when HEAD moves (checkout or commit); the paths are harmless when absent.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    println!("cargo:rerun-if-changed=build.rs");
}
