//! Lanes: one git clone per issue under `workspace_root`, on the issue's own branch.
//!
//! A new lane is cloned into a hidden staging directory that Maestro creates and claims first
//! (its identity goes into the lane's ownership marker, see [`super::ownership`]), then renamed
//! into place, so a crash mid-clone never leaves a half-made lane that a later run would mistake
//! for a real one; a failed clone is removed at once, and one left by a dead process is swept at
//! the next startup. An existing lane is reused as it is: fetched, never reset, because it may
//! hold the previous attempt's work. The lane path is checked with symlinks resolved (it must be
//! a real directory directly inside `workspace_root`), and before the agent starts the lane's git
//! metadata must resolve inside the lane (a symlinked or shared `.git` would let the agent write
//! into another repository). A lane is removed only when Maestro can prove it created it.
//!
//! Hooks from WORKFLOW.md run here with `sh -c`, bounded by `hooks.timeout_ms`, with secret
//! variables removed from their environment. This module does not decide when a lane is removed
//! (the daemon does) and writes nothing inside a lane's work tree.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Layout, io_error, ownership};
use crate::shell::{self, ShellOutcome};
use crate::workflow::Hooks;

/// Time limit for one git command Maestro runs itself (clone, fetch, rev-parse).
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// A prepared lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    pub key: String,
    pub path: PathBuf,
    pub branch: String,
    /// Whether this run created the lane (false: an earlier attempt's lane was reused).
    pub created: bool,
}

/// What preparing a lane needs.
#[derive(Debug, Clone, Copy)]
pub struct LaneSpec<'a> {
    pub layout: &'a Layout,
    pub repo_root: &'a Path,
    pub key: &'a str,
    pub branch: &'a str,
    pub hooks: &'a Hooks,
    /// Secret variable names removed from hook environments.
    pub remove_env: &'a [String],
}

/// The directory name for an issue: the identifier itself when it is made of
/// `[A-Za-z0-9._-]` (and does not start with a dot), otherwise a sanitized form plus a stable
/// hash of the original, so distinct identifiers never share a lane.
pub fn lane_key(identifier: &str) -> String {
    let plain = !identifier.is_empty()
        && identifier.len() <= 100
        && !identifier.starts_with('.')
        && identifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        return identifier.to_string();
    }
    let sanitized: String = identifier
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .chars()
        .take(60)
        .collect();
    let sanitized = if sanitized.is_empty() {
        "issue".to_string()
    } else {
        sanitized
    };
    format!("{sanitized}-{:016x}", fnv1a64(identifier.as_bytes()))
}

/// The lane branch: `x/<project id>-<identifier lowercased>`, valid for `git check-ref-format
/// --branch` whatever the identifier. An identifier that is not safe in a ref name as it is
/// (`ABC-1.lock`, `ABC-2.`, `ABC-3..x`, `../../ABC-4`, spaces, `@{`) becomes its characters
/// outside `[a-z0-9_-]` replaced by `_` (at most 60) plus the 16-hex-digit hash of the original,
/// so distinct identifiers never share a branch.
pub fn branch_name(project_id: &str, identifier: &str) -> String {
    let key = lane_key(identifier).to_ascii_lowercase();
    let component = if is_ref_safe(&key) {
        key
    } else {
        let sanitized: String = identifier
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(60)
            .collect();
        format!("{sanitized}-{:016x}", fnv1a64(identifier.as_bytes()))
    };
    format!("x/{project_id}-{component}")
}

/// Whether `component` (made of `[a-z0-9._-]`) is a valid ref name component that needs no
/// hash: not empty, no `..`, no leading or trailing `.`, no `.lock` suffix.
fn is_ref_safe(component: &str) -> bool {
    !component.is_empty()
        && component
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && !component.contains("..")
        && !component.starts_with('.')
        && !component.ends_with('.')
        && !component.ends_with(".lock")
}

/// Creates the lane (clone, branch, origin, `after_create`) or reuses an existing one (fetch).
///
/// The lane path is checked with symlinks resolved first: a lane that is a symlink, or that
/// resolves anywhere but directly inside `workspace_root`, is refused as a policy violation,
/// so hooks and the agent never run outside the root.
pub fn prepare(spec: &LaneSpec<'_>) -> Result<Lane, Error> {
    let root = spec.layout.root();
    std::fs::create_dir_all(root).map_err(io_error(root, "create"))?;
    let path = confine(spec.layout, spec.key)?;
    if std::fs::symlink_metadata(&path).is_ok() {
        return reuse(spec, path);
    }
    let staging = spec.layout.staging_dir(spec.key, std::process::id());
    if std::fs::symlink_metadata(&staging).is_ok() {
        // Left by an earlier process that had this pid; only a proven clone of ours goes.
        ownership::remove(spec.layout, spec.key, &staging)?;
    }
    std::fs::create_dir(&staging).map_err(io_error(&staging, "create staging directory"))?;
    let created = ownership::claim(spec.layout, spec.key, &staging)
        .and_then(|()| fill_staging(spec, &staging))
        .and_then(|()| {
            std::fs::rename(&staging, &path).map_err(io_error(&path, "move new lane into place"))
        });
    if let Err(error) = created {
        discard(spec.layout, spec.key, &staging);
        return Err(error);
    }
    if let Some(script) = &spec.hooks.after_create {
        let outcome = run_hook("after_create", script, &path, spec.hooks, spec.remove_env)?;
        if !outcome.success() {
            // The lane is brand new and holds no work; removing it means the next attempt
            // creates it again and reruns after_create instead of reusing a half-set-up lane.
            discard(spec.layout, spec.key, &path);
            return Err(hook_error("after_create", &path, &outcome));
        }
    }
    Ok(Lane {
        key: spec.key.to_string(),
        path,
        branch: spec.branch.to_string(),
        created: true,
    })
}

/// Sweeps staging clones left by processes that died mid-clone (run at every startup).
pub fn sweep_staging(layout: &Layout) {
    ownership::sweep_staging(layout);
}

/// Reuses the lane already at `path`: never reset (it may hold the previous attempt's work),
/// only fetched.
fn reuse(spec: &LaneSpec<'_>, path: PathBuf) -> Result<Lane, Error> {
    match ownership::prove(spec.layout, spec.key, &path)? {
        ownership::Proof::Owned | ownership::Proof::Absent => {}
        ownership::Proof::Unproven(reason) if spec.layout.lane_marker_file(spec.key).exists() => {
            // Maestro made a lane here and something else stands in its place now.
            return Err(Error::Unsafe {
                lane: path,
                reason: format!(
                    "{reason}; remove it so maestro can re-clone the lane (policy violation)"
                ),
            });
        }
        ownership::Proof::Unproven(reason) => log::info!(
            "lane reused without proof of ownership; it will be kept, never removed lane={} reason=\"{reason}\"",
            spec.key
        ),
    }
    verify_git_metadata(&path)?;
    // A failed fetch (network down) is not worth failing the attempt over: the lane holds
    // everything the agent needs, and the push at handoff will surface real problems.
    if has_origin(&path) {
        if let Err(error) = git(&path, &["fetch", "--quiet", "origin"]) {
            log::warn!(
                "lane fetch failed, continuing lane={} error={error}",
                spec.key
            );
        }
    }
    Ok(Lane {
        key: spec.key.to_string(),
        path,
        branch: spec.branch.to_string(),
        created: false,
    })
}

/// Clones the source into the (empty, claimed) staging directory, on the lane branch, with the
/// source's own origin.
fn fill_staging(spec: &LaneSpec<'_>, staging: &Path) -> Result<(), Error> {
    let source = spec.repo_root.display().to_string();
    let staging_text = staging.display().to_string();
    git(
        spec.layout.root(),
        &["clone", "--quiet", &source, &staging_text],
    )?;
    git(staging, &["checkout", "--quiet", "-b", spec.branch])?;
    // The configured URL, not `remote get-url` (which applies `insteadOf` rewrites): the lane
    // must carry the repository's real identity for the PR check.
    match git(spec.repo_root, &["config", "--get", "remote.origin.url"]) {
        Ok(url) => {
            git(staging, &["remote", "set-url", "origin", &last_line(&url)])?;
        }
        Err(_) => log::warn!(
            "source repository has no origin remote; the lane's origin stays the local checkout lane={} repo_root={}",
            spec.key,
            spec.repo_root.display()
        ),
    }
    Ok(())
}

/// Removes a directory this process has just created for lane `key` (a failed clone, a lane
/// whose `after_create` failed); a failure to remove it is logged, never hidden.
fn discard(layout: &Layout, key: &str, path: &Path) {
    if let Err(error) = ownership::remove(layout, key, path) {
        log::warn!(
            "cannot remove a failed new lane lane={key} path={} error={error}",
            path.display()
        );
    }
}

/// Removes a lane: the `before_remove` hook (a failure is logged, never blocking), then the
/// directory, only if Maestro can prove it created it (see [`ownership`]): a lane without an
/// ownership marker, a directory swapped in for it, or a symlink is kept, and the error says
/// so. Nothing inside is followed through a symlink. Records under `.maestro/` are kept.
pub fn remove(
    layout: &Layout,
    key: &str,
    hooks: &Hooks,
    remove_env: &[String],
) -> Result<(), Error> {
    let path = layout.lane_dir(key);
    if !is_single_name(key) {
        return Err(Error::NotOwned {
            path,
            reason: "the lane key is not a single directory name inside workspace_root".into(),
        });
    }
    match ownership::prove(layout, key, &path)? {
        ownership::Proof::Absent => {
            ownership::forget(layout, key);
            return Ok(());
        }
        ownership::Proof::Unproven(reason) => return Err(Error::NotOwned { path, reason }),
        ownership::Proof::Owned => {}
    }
    if let Some(script) = &hooks.before_remove {
        let _ = run_hook("before_remove", script, &path, hooks, remove_env);
    }
    // Proven again on an O_NOFOLLOW descriptor: the hook ran code in the lane.
    ownership::remove(layout, key, &path)
}

/// Refuses a lane that is a symlink, whose `.git` is a symlink, or whose git dir or common dir
/// resolves outside it.
pub fn verify_git_metadata(lane: &Path) -> Result<(), Error> {
    let unsafe_lane = |reason: String| Error::Unsafe {
        lane: lane.to_path_buf(),
        reason,
    };
    refuse_symlink(lane)?;
    let dot_git = lane.join(".git");
    let metadata = std::fs::symlink_metadata(&dot_git).map_err(|_| {
        unsafe_lane(
            "it has no .git directory; remove the directory so maestro can re-clone it".into(),
        )
    })?;
    if metadata.file_type().is_symlink() {
        return Err(unsafe_lane(
            ".git is a symlink (shared git metadata is a policy violation)".into(),
        ));
    }
    let lane_real = lane
        .canonicalize()
        .map_err(io_error(lane, "resolve lane path"))?;
    for flag in ["--git-dir", "--git-common-dir"] {
        let reported = last_line(&git(lane, &["rev-parse", flag])?);
        let resolved = lane.join(&reported);
        let resolved = resolved.canonicalize().unwrap_or(resolved);
        if !resolved.starts_with(&lane_real) {
            return Err(unsafe_lane(format!(
                "`git rev-parse {flag}` resolves outside the lane ({}); shared git metadata is a policy violation",
                resolved.display()
            )));
        }
    }
    Ok(())
}

/// Runs one hook script in the lane under the hook timeout.
pub fn run_hook(
    hook: &'static str,
    script: &str,
    lane: &Path,
    hooks: &Hooks,
    remove_env: &[String],
) -> Result<ShellOutcome, Error> {
    // A hook runs where the lane resolves to; a lane turned into a symlink since it was
    // prepared would take the hook outside workspace_root.
    refuse_symlink(lane)?;
    let outcome = shell::run(
        script,
        lane,
        remove_env,
        Duration::from_millis(hooks.timeout_ms),
    )
    .map_err(io_error(lane, "start hook"))?;
    let lines: Vec<&str> = outcome.output_tail.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join(" | ");
    if outcome.escaped {
        log::warn!(
            "hook left processes behind hook={hook} lane={} escaped=true escapees_killed={}",
            lane.display(),
            outcome.escapees_killed
        );
    }
    if outcome.success() {
        log::info!(
            "hook finished hook={hook} lane={} duration_ms={}",
            lane.display(),
            outcome.duration.as_millis()
        );
        log::debug!("hook output hook={hook} tail={tail}");
    } else {
        log::warn!(
            "hook failed hook={hook} lane={} exit_code={:?} timed_out={} tail={tail}",
            lane.display(),
            outcome.exit_code,
            outcome.timed_out
        );
    }
    Ok(outcome)
}

/// The error for a hook that had to succeed and did not.
pub fn hook_error(hook: &'static str, lane: &Path, outcome: &ShellOutcome) -> Error {
    let detail = if outcome.timed_out {
        format!("timed out after {} ms", outcome.duration.as_millis())
    } else {
        let last = outcome.output_tail.lines().last().unwrap_or("").trim();
        format!("exit code {:?}; last output: {last}", outcome.exit_code)
    };
    Error::Hook {
        hook,
        lane: lane.to_path_buf(),
        detail,
    }
}

/// The lane's `HEAD` commit.
pub fn head_sha(lane: &Path) -> Result<String, Error> {
    git(lane, &["rev-parse", "HEAD"]).map(|output| last_line(&output))
}

/// The lane's `origin` URL as configured (before any `insteadOf` rewrite).
pub fn origin_url(lane: &Path) -> Result<String, Error> {
    git(lane, &["config", "--get", "remote.origin.url"]).map(|output| last_line(&output))
}

/// Single-value git output is its last non-empty line (stderr warnings come first).
fn last_line(output: &str) -> String {
    output
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn has_origin(lane: &Path) -> bool {
    origin_url(lane).is_ok()
}

/// The lane directory for `key`, refused unless it resolves, symlinks included, directly
/// inside `workspace_root` (which must exist).
fn confine(layout: &Layout, key: &str) -> Result<PathBuf, Error> {
    let path = layout.lane_dir(key);
    let unsafe_lane = |reason: &str| Error::Unsafe {
        lane: path.clone(),
        reason: reason.to_string(),
    };
    if !is_single_name(key) {
        return Err(unsafe_lane(
            "the lane key is not a single directory name, so the lane path leaves workspace_root",
        ));
    }
    let root = layout
        .root()
        .canonicalize()
        .map_err(io_error(layout.root(), "resolve workspace_root"))?;
    match std::fs::symlink_metadata(&path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(path),
        Err(error) => return Err(io_error(&path, "inspect lane")(error)),
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return Err(unsafe_lane(
                "the lane is a symlink; a lane must be a real directory inside workspace_root (policy violation), so remove the symlink",
            ));
        }
        Ok(metadata) if !metadata.is_dir() => {
            return Err(unsafe_lane(
                "the lane path is not a directory; remove it so maestro can clone the lane",
            ));
        }
        Ok(_) => {}
    }
    let real = path
        .canonicalize()
        .map_err(io_error(&path, "resolve lane path"))?;
    if real.parent() == Some(root.as_path()) {
        Ok(path)
    } else {
        Err(unsafe_lane(
            "the lane resolves outside workspace_root (policy violation)",
        ))
    }
}

/// Refuses to use `lane` when it is a symlink (it may point anywhere).
fn refuse_symlink(lane: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(lane) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(Error::Unsafe {
            lane: lane.to_path_buf(),
            reason: "the lane is a symlink; a lane must be a real directory inside workspace_root (policy violation), so remove the symlink".into(),
        }),
        _ => Ok(()),
    }
}

/// A lane key is one plain directory name: not empty, no separator, not `.` or `..`, not hidden.
fn is_single_name(key: &str) -> bool {
    let mut components = Path::new(key).components();
    matches!(components.next(), Some(std::path::Component::Normal(_)))
        && components.next().is_none()
        && !key.starts_with('.')
        && !key.contains('/')
}

/// Runs git in `dir` and returns its merged output; a failure carries git's own message.
fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let outcome = shell::run_program(
        "git",
        args,
        dir,
        &[],
        &[("GIT_TERMINAL_PROMPT", "0")],
        GIT_TIMEOUT,
    )
    .map_err(io_error(dir, "run git"))?;
    if outcome.success() {
        Ok(outcome.output_tail)
    } else {
        Err(Error::Git {
            lane: dir.to_path_buf(),
            command: format!("git {}", args.join(" ")),
            output: if outcome.timed_out {
                format!("timed out after {} s", GIT_TIMEOUT.as_secs())
            } else {
                outcome.output_tail
            },
        })
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free hash for lane keys (not for security).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_are_their_own_key() {
        assert_eq!(lane_key("ABC-12"), "ABC-12");
        assert_eq!(lane_key("v1.2_x"), "v1.2_x");
    }

    #[test]
    fn other_identifiers_are_sanitized_and_hashed_without_collisions() {
        let a = lane_key("ABC/12");
        let b = lane_key("ABC:12");
        assert!(a.starts_with("ABC_12-"), "{a}");
        assert!(b.starts_with("ABC_12-"), "{b}");
        assert_ne!(a, b);
        assert_eq!(a, lane_key("ABC/12"), "stable");
        let hidden = lane_key(".maestro");
        assert!(!hidden.starts_with('.'), "{hidden}");
        assert!(lane_key("../../etc").chars().all(|c| c != '/'));
        assert!(lane_key("").starts_with("issue-"));
    }

    #[test]
    fn branch_names() {
        assert_eq!(branch_name("demo", "ABC-12"), "x/demo-abc-12");
        assert!(branch_name("demo", "a b").starts_with("x/demo-a_b-"));
    }
}
