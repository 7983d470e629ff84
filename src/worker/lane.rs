//! Lanes on a host: a clone under the host's workspace root, made, checked, used and removed
//! from the controller over ssh.
//!
//! The rules are the local lanes' (`workspace::lane`), applied on the host with resolved paths:
//! the lane is `<root>/<key>` with the key one plain directory name, and it must be a real
//! directory (never a symlink) whose `readlink -e` is exactly the resolved root plus the key; a
//! symlinked or escaping lane is a policy violation and nothing runs in it. A new lane is
//! cloned on the host from the repository's configured `origin` URL (the controller's checkout
//! is not reachable from a host), into a hidden staging directory that Maestro makes first and
//! whose identity (`stat -c %d:%i:%W`: device, inode, birth) it records in the lane's creation
//! marker — on the controller, `.maestro/hosts/<host>/lanes/<key>.json`, where nothing on the
//! host can forge it — then moved into place. Removal is guarded by that marker: the lane must
//! still be that very directory, it is first renamed out of the way and checked again, and
//! `rm -rf --one-file-system` never follows a symlink. A lane without a marker is reused but
//! never removed.
//!
//! This module does not decide when a lane is removed (the daemon does) and writes nothing of
//! Maestro's inside a lane's work tree.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ssh::{Ran, Remote};
use super::{Error, host_key, last_line};
use crate::clock;
use crate::shell::ShellOutcome;
use crate::workflow::Hooks;
use crate::workspace::state_file::{self, SCHEMA_VERSION, StateFile};
use crate::workspace::{Layout, lane};

/// Time limit for one git step on the host (clone, fetch, checkout), as for local lanes.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);
/// Time limit for the small steps (stat, mkdir, rev-parse, rename).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A prepared lane on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLane {
    pub key: String,
    /// The lane's resolved path on the host.
    pub path: String,
    pub branch: String,
    /// Whether this attempt created it.
    pub created: bool,
}

/// What preparing a lane on a host needs.
#[derive(Debug, Clone, Copy)]
pub struct RemoteLaneSpec<'a> {
    pub remote: &'a Remote,
    /// The controller's workspace (the creation markers).
    pub layout: &'a Layout,
    /// The controller's checkout, whose configured `origin` the host clones.
    pub repo_root: &'a Path,
    pub key: &'a str,
    pub branch: &'a str,
    pub hooks: &'a Hooks,
}

/// The creation marker of a lane on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteLaneMarker {
    pub schema_version: u32,
    pub host: String,
    /// The host's workspace root, resolved on the host when the lane was made.
    pub root: String,
    pub key: String,
    /// `device:inode:birth` of the directory Maestro made (`stat -c %d:%i:%W`).
    pub identity: String,
    /// The staging directory's name while the clone is not in place yet; absent once it is.
    #[serde(default)]
    pub staging: Option<String>,
    /// The controller process that made it.
    pub pid: u32,
    pub created_at: String,
}

impl StateFile for RemoteLaneMarker {
    const WRITE: &'static str = "write remote lane marker";

    fn schema_version(&self) -> u32 {
        self.schema_version
    }
}

/// Makes the staging directory of a new lane, or reports what stands at the lane's path. Also
/// removes the staging directory an earlier attempt left (`$4`, proven by `$5`).
const STAGE: &str = r#"root=$1 key=$2 staging=$3 old=$4 old_identity=$5
mkdir -p -- "$root" && base=$(readlink -e -- "$root") || exit 1
if [ -n "$old" ] && [ -d "$base/$old" ] && [ ! -L "$base/$old" ] \
  && [ "$(stat -c %d:%i:%W -- "$base/$old")" = "$old_identity" ]; then
  rm -rf --one-file-system -- "$base/$old"
fi
lane=$base/$key
if [ -L "$lane" ]; then echo "maestro-lane=symlink $base"; exit 0; fi
if [ -e "$lane" ]; then
  [ -d "$lane" ] || { echo "maestro-lane=notdir $base"; exit 0; }
  echo "maestro-lane=exists $(stat -c %d:%i:%W -- "$lane") $base"; exit 0
fi
mkdir -- "$base/$staging" || exit 1
echo "maestro-lane=staged $(stat -c %d:%i:%W -- "$base/$staging") $base""#;

/// Clones into the proven staging directory, checks out the lane branch and moves the clone into
/// place; on any failure the staging directory is removed.
const FILL: &str = r#"base=$1 key=$2 staging=$3 identity=$4 origin=$5 branch=$6
s=$base/$staging
[ -d "$s" ] && [ ! -L "$s" ] && [ "$(stat -c %d:%i:%W -- "$s")" = "$identity" ] \
  || { echo "the staging directory $s is not the one maestro made"; exit 1; }
discard() { rm -rf --one-file-system -- "$s"; exit 1; }
GIT_TERMINAL_PROMPT=0 git clone --quiet -- "$origin" "$s" || discard
git -C "$s" checkout --quiet -b "$branch" || discard
if [ -e "$base/$key" ] || [ -L "$base/$key" ]; then echo "$base/$key appeared during the clone"; discard; fi
mv -T -- "$s" "$base/$key" || discard
echo "maestro-lane=ready""#;

/// Run in the lane (the wrapper already checked containment): `.git` must be a real directory
/// and the git dir and common dir must resolve inside the lane.
const VERIFY: &str = r#"real=$(pwd -P)
if [ ! -d .git ] || [ -L .git ]; then
  echo "maestro-unsafe=.git is missing or a symlink (shared git metadata is a policy violation); remove the lane so maestro can re-clone it"; exit 0
fi
for flag in --git-dir --git-common-dir; do
  d=$(git rev-parse "$flag") || exit 1
  r=$(cd -- "$d" && pwd -P) || exit 1
  case "$r/" in
    "$real"/*) ;;
    *) echo "maestro-unsafe=\`git rev-parse $flag\` resolves outside the lane ($r); shared git metadata is a policy violation"; exit 0 ;;
  esac
done
echo "maestro-verified""#;

/// The identity of the lane at its path, for the proof before `before_remove`.
const PROVE: &str = r#"root=$1 key=$2
base=$(readlink -e -- "$root") || { echo "maestro-lane=absent"; exit 0; }
lane=$base/$key
if [ -L "$lane" ]; then echo "maestro-lane=symlink"; exit 0; fi
[ -e "$lane" ] || { echo "maestro-lane=absent"; exit 0; }
echo "maestro-lane=exists $(stat -c %d:%i:%W -- "$lane")""#;

/// Removes the lane when it is still the directory the marker names: renamed out of the way,
/// checked again, removed without crossing filesystems or following symlinks.
const REMOVE: &str = r#"root=$1 key=$2 identity=$3 trash=$4
base=$(readlink -e -- "$root") || { echo "maestro-lane=absent"; exit 0; }
lane=$base/$key
if [ -L "$lane" ]; then echo "maestro-kept=it is a symlink, which maestro never follows or removes"; exit 0; fi
[ -e "$lane" ] || { echo "maestro-lane=absent"; exit 0; }
if [ ! -d "$lane" ] || [ "$(stat -c %d:%i:%W -- "$lane")" != "$identity" ]; then
  echo "maestro-kept=it is not the directory maestro created (device, inode or birth time differ)"; exit 0
fi
mv -T -- "$lane" "$base/$trash" || exit 1
if [ "$(stat -c %d:%i:%W -- "$base/$trash")" != "$identity" ]; then
  mv -T -- "$base/$trash" "$lane"
  echo "maestro-kept=it was swapped while maestro removed it"; exit 0
fi
rm -rf --one-file-system -- "$base/$trash" || exit 1
echo "maestro-lane=removed""#;

/// Creates the lane on the host (staging, marker, clone, branch, move, `after_create`) or
/// reuses the one there (fetched, never reset), then checks its git metadata.
pub fn prepare(spec: &RemoteLaneSpec<'_>) -> Result<RemoteLane, Error> {
    let remote = spec.remote;
    if !is_single_name(spec.key) {
        return Err(unsafe_lane(
            remote,
            spec.key,
            "the lane key is not a single directory name, so the lane path leaves the workspace root",
        ));
    }
    let origin = lane::origin_url(spec.repo_root).map_err(|_| Error::NoOrigin {
        repo_root: spec.repo_root.to_path_buf(),
    })?;
    let marker_path = spec
        .layout
        .remote_lane_marker_file(&host_key(&remote.host), spec.key);
    let marker = load_marker(&marker_path);
    let staging = Layout::staging_name(spec.key, &unique());
    let (old_staging, old_identity) = marker
        .as_ref()
        .and_then(|marker| marker.staging.clone().map(|s| (s, marker.identity.clone())))
        .unwrap_or_default();
    let output = step(
        remote,
        "preparing the lane",
        None,
        STAGE,
        &[
            &remote.root,
            spec.key,
            &staging,
            &old_staging,
            &old_identity,
        ],
        STEP_TIMEOUT,
    )?;
    let report = marker_value(&output, "maestro-lane=").ok_or_else(|| Error::Remote {
        host: remote.host.clone(),
        step: "preparing the lane",
        output: output.clone(),
    })?;
    let (what, rest) = report.split_once(' ').unwrap_or((report.as_str(), ""));
    match what {
        "symlink" => Err(unsafe_lane(
            remote,
            spec.key,
            "the lane is a symlink; a lane must be a real directory inside the workspace root (policy violation), so remove the symlink",
        )),
        "notdir" => Err(unsafe_lane(
            remote,
            spec.key,
            "the lane path is not a directory; remove it so maestro can clone the lane",
        )),
        "exists" => {
            let (identity, base) = rest.split_once(' ').unwrap_or((rest, ""));
            reuse(spec, marker.as_ref(), identity, base)
        }
        "staged" => {
            let (identity, base) = rest.split_once(' ').unwrap_or((rest, ""));
            create(spec, &marker_path, &origin, &staging, identity, base)
        }
        _ => Err(Error::Remote {
            host: remote.host.clone(),
            step: "preparing the lane",
            output,
        }),
    }
}

fn create(
    spec: &RemoteLaneSpec<'_>,
    marker_path: &Path,
    origin: &str,
    staging: &str,
    identity: &str,
    base: &str,
) -> Result<RemoteLane, Error> {
    let remote = spec.remote;
    let mut marker = RemoteLaneMarker {
        schema_version: SCHEMA_VERSION,
        host: remote.host.clone(),
        root: base.to_string(),
        key: spec.key.to_string(),
        identity: identity.to_string(),
        staging: Some(staging.to_string()),
        pid: std::process::id(),
        created_at: clock::now_rfc3339(),
    };
    // The marker is written before anything is cloned: a crash from here on leaves a staging
    // directory the next attempt can prove is Maestro's and remove.
    save_marker(marker_path, &marker)?;
    step(
        remote,
        "cloning the lane",
        None,
        FILL,
        &[base, spec.key, staging, identity, origin, spec.branch],
        GIT_TIMEOUT,
    )?;
    marker.staging = None;
    save_marker(marker_path, &marker)?;
    let lane = RemoteLane {
        key: spec.key.to_string(),
        path: format!("{base}/{}", spec.key),
        branch: spec.branch.to_string(),
        created: true,
    };
    if let Some(script) = &spec.hooks.after_create {
        let outcome = run_hook(remote, "after_create", script, spec.key, spec.hooks)?;
        if !outcome.success() {
            // Brand new and holding no work: removed, so the next attempt reruns after_create.
            if let Err(error) = remove(spec.layout, remote, spec.key, &Hooks::default()) {
                log::warn!(
                    "cannot remove a failed new lane host={} lane={} error={error}",
                    remote.host,
                    spec.key
                );
            }
            return Err(hook_error(remote, "after_create", &outcome));
        }
    }
    verify_git_metadata(remote, spec.key)?;
    Ok(lane)
}

fn reuse(
    spec: &RemoteLaneSpec<'_>,
    marker: Option<&RemoteLaneMarker>,
    identity: &str,
    base: &str,
) -> Result<RemoteLane, Error> {
    let remote = spec.remote;
    match marker {
        // A marker still naming its staging directory belongs to a clone that never reached
        // its place; the lane there now is not that clone unless its identity says so.
        Some(marker) if marker.identity != identity => {
            return Err(unsafe_lane(
                remote,
                spec.key,
                "it is not the directory maestro created (device, inode or birth time differ); remove it so maestro can re-clone the lane (policy violation)",
            ));
        }
        Some(marker) if marker.staging.is_some() => {
            // The clone was moved into place but the marker not rewritten (a crash between).
            let mut settled = marker.clone();
            settled.staging = None;
            save_marker(
                &spec
                    .layout
                    .remote_lane_marker_file(&host_key(&remote.host), spec.key),
                &settled,
            )?;
        }
        Some(_) => {}
        None => log::info!(
            "lane reused without proof of ownership; it will be kept, never removed host={} lane={}",
            remote.host,
            spec.key
        ),
    }
    match remote.run(
        Some(spec.key),
        "GIT_TERMINAL_PROMPT=0 git fetch --quiet origin",
        GIT_TIMEOUT,
        None,
    )? {
        Ran::Done(outcome) if outcome.success() => {}
        Ran::Ssh { started, detail } => {
            return Err(Error::Ssh {
                host: remote.host.clone(),
                started,
                detail,
            });
        }
        other => log::warn!(
            "lane fetch failed, continuing host={} lane={} result={other:?}",
            remote.host,
            spec.key
        ),
    }
    verify_git_metadata(remote, spec.key)?;
    Ok(RemoteLane {
        key: spec.key.to_string(),
        path: format!("{base}/{}", spec.key),
        branch: spec.branch.to_string(),
        created: false,
    })
}

/// Checks on the host that the lane is contained (the wrapper) and that its git metadata
/// resolves inside it.
pub fn verify_git_metadata(remote: &Remote, key: &str) -> Result<(), Error> {
    let outcome = run_in_lane(remote, key, VERIFY, STEP_TIMEOUT, None)?;
    if let Some(reason) = marker_value(&outcome.output_tail, "maestro-unsafe=") {
        return Err(unsafe_lane(remote, key, &reason));
    }
    if outcome.success() && last_line(&outcome.output_tail) == "maestro-verified" {
        Ok(())
    } else {
        Err(Error::Remote {
            host: remote.host.clone(),
            step: "checking the lane's git metadata",
            output: outcome.output_tail,
        })
    }
}

/// The lane's `HEAD` commit, read on the host.
pub fn head_sha(remote: &Remote, key: &str) -> Result<String, Error> {
    let outcome = run_in_lane(remote, key, "git rev-parse HEAD", STEP_TIMEOUT, None)?;
    let sha = last_line(&outcome.output_tail).to_string();
    if outcome.success() && sha.len() >= 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(sha)
    } else {
        Err(Error::Remote {
            host: remote.host.clone(),
            step: "git rev-parse HEAD",
            output: outcome.output_tail,
        })
    }
}

/// Runs a hook in the lane on the host under the hook timeout, logged as local hooks are.
pub fn run_hook(
    remote: &Remote,
    hook: &'static str,
    script: &str,
    key: &str,
    hooks: &Hooks,
) -> Result<ShellOutcome, Error> {
    let outcome = run_in_lane(
        remote,
        key,
        script,
        Duration::from_millis(hooks.timeout_ms),
        None,
    )?;
    let lines: Vec<&str> = outcome.output_tail.lines().collect();
    let tail = lines[lines.len().saturating_sub(20)..].join(" | ");
    if outcome.success() {
        log::info!(
            "hook finished hook={hook} host={} lane={key} duration_ms={}",
            remote.host,
            outcome.duration.as_millis()
        );
        log::debug!("hook output hook={hook} tail={tail}");
    } else {
        log::warn!(
            "hook failed hook={hook} host={} lane={key} exit_code={:?} timed_out={} tail={tail}",
            remote.host,
            outcome.exit_code,
            outcome.timed_out
        );
    }
    Ok(outcome)
}

/// The error for a hook on the host that had to succeed and did not.
pub fn hook_error(remote: &Remote, hook: &'static str, outcome: &ShellOutcome) -> Error {
    let detail = if outcome.timed_out {
        format!("timed out after {} ms", outcome.duration.as_millis())
    } else {
        format!(
            "exit code {:?}; last output: {}",
            outcome.exit_code,
            last_line(&outcome.output_tail)
        )
    };
    Error::Hook {
        host: remote.host.clone(),
        hook,
        detail,
    }
}

/// Runs `script` with `sh -c` in the lane on the host (a validation command), bounded by
/// `timeout` and `stop`. A lane the wrapper refuses is [`Error::Unsafe`]; a dropped connection
/// is [`Error::Ssh`].
pub fn run_in_lane(
    remote: &Remote,
    key: &str,
    script: &str,
    timeout: Duration,
    stop: Option<&AtomicBool>,
) -> Result<ShellOutcome, Error> {
    match remote.run(Some(key), script, timeout, stop)? {
        Ran::Done(outcome) => Ok(outcome),
        Ran::Refused(reason) => Err(unsafe_lane(remote, key, &reason)),
        Ran::Missing => Err(Error::Remote {
            host: remote.host.clone(),
            step: "entering the lane",
            output: format!("the lane {key} does not exist on the host"),
        }),
        Ran::Ssh { started, detail } => Err(Error::Ssh {
            host: remote.host.clone(),
            started,
            detail,
        }),
    }
}

/// Removes lane `key` from the host: only when its creation marker proves Maestro made it (a
/// lane without one, a directory swapped in, a symlink is kept and the error says why), after
/// `before_remove` (a failure is logged). The marker goes with the lane.
pub fn remove(layout: &Layout, remote: &Remote, key: &str, hooks: &Hooks) -> Result<(), Error> {
    let lane_text = format!("{}/{key}", remote.root);
    if !is_single_name(key) {
        return Err(Error::NotOwned {
            host: remote.host.clone(),
            lane: lane_text,
            reason: "the lane key is not a single directory name inside the workspace root".into(),
        });
    }
    let marker_path = layout.remote_lane_marker_file(&host_key(&remote.host), key);
    let Some(marker) = load_marker(&marker_path) else {
        return Err(Error::NotOwned {
            host: remote.host.clone(),
            lane: lane_text,
            reason:
                "it has no creation marker (maestro did not make it, or made it before markers)"
                    .into(),
        });
    };
    if hooks.before_remove.is_some() {
        let output = step(
            remote,
            "checking the lane before removal",
            None,
            PROVE,
            &[&remote.root, key],
            STEP_TIMEOUT,
        )?;
        let report = marker_value(&output, "maestro-lane=").unwrap_or_default();
        if report == "absent" {
            forget_marker(&marker_path);
            return Ok(());
        }
        if report == format!("exists {}", marker.identity) {
            if let Some(script) = &hooks.before_remove {
                let _ = run_hook(remote, "before_remove", script, key, hooks);
            }
        }
    }
    let trash = format!(".{key}.removing-{}", unique());
    let output = step(
        remote,
        "removing the lane",
        None,
        REMOVE,
        &[&remote.root, key, &marker.identity, &trash],
        GIT_TIMEOUT,
    )?;
    if let Some(reason) = marker_value(&output, "maestro-kept=") {
        return Err(Error::NotOwned {
            host: remote.host.clone(),
            lane: lane_text,
            reason,
        });
    }
    match marker_value(&output, "maestro-lane=").as_deref() {
        Some("removed") | Some("absent") => {
            forget_marker(&marker_path);
            Ok(())
        }
        _ => Err(Error::Remote {
            host: remote.host.clone(),
            step: "removing the lane",
            output,
        }),
    }
}

/// Removes lane `key` from every configured host (`config.worker`) that holds one Maestro made
/// there (its creation marker is on the controller), each under [`remove`]'s rules; what was
/// kept or failed is logged with its host. The daemon calls this beside the local lane's removal.
pub fn remove_everywhere(
    layout: &Layout,
    config: &crate::config::ServiceConfig,
    key: &str,
    hooks: &Hooks,
) {
    let Some(worker) = &config.worker else {
        return;
    };
    let config_dir = config.path.parent().unwrap_or(Path::new("."));
    for host in &worker.hosts {
        if !has_marker(layout, &host.name, key) {
            continue;
        }
        let remote = Remote::new(worker, host, config_dir).with_health(layout);
        match remove(layout, &remote, key, hooks) {
            Ok(()) => log::info!("remote lane removed host={} lane={key}", host.name),
            Err(error) => log::warn!(
                "cannot remove remote lane host={} lane={key} error={error}",
                host.name
            ),
        }
    }
}

/// Whether some configured host holds lane `key` by Maestro's creation marker (the daemon's
/// startup sweep looks for lanes there as well as under the local workspace root).
pub fn on_some_host(layout: &Layout, worker: Option<&super::WorkerConfig>, key: &str) -> bool {
    worker.is_some_and(|worker| {
        worker
            .hosts
            .iter()
            .any(|host| has_marker(layout, &host.name, key))
    })
}

/// Whether the controller holds a creation marker for lane `key` on `host`.
pub fn has_marker(layout: &Layout, host: &str, key: &str) -> bool {
    layout
        .remote_lane_marker_file(&host_key(host), key)
        .exists()
}

/// Runs a Maestro step script (no lane) and returns its output when it exited 0.
fn step(
    remote: &Remote,
    name: &'static str,
    key: Option<&str>,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<String, Error> {
    match remote.run_args(key, script, args, timeout, None)? {
        Ran::Done(outcome) if outcome.success() => Ok(outcome.output_tail),
        Ran::Done(outcome) => Err(Error::Remote {
            host: remote.host.clone(),
            step: name,
            output: if outcome.timed_out {
                format!("timed out after {} s", timeout.as_secs())
            } else {
                outcome.output_tail
            },
        }),
        Ran::Refused(reason) => Err(Error::Unsafe {
            host: remote.host.clone(),
            lane: format!("{}/{}", remote.root, key.unwrap_or("")),
            reason,
        }),
        Ran::Missing => Err(Error::Remote {
            host: remote.host.clone(),
            step: name,
            output: "the lane does not exist on the host".into(),
        }),
        Ran::Ssh { started, detail } => Err(Error::Ssh {
            host: remote.host.clone(),
            started,
            detail,
        }),
    }
}

/// The value after the last line starting with `prefix`.
fn marker_value(output: &str, prefix: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_string))
}

fn unsafe_lane(remote: &Remote, key: &str, reason: &str) -> Error {
    Error::Unsafe {
        host: remote.host.clone(),
        lane: format!("{}/{key}", remote.root),
        reason: reason.to_string(),
    }
}

fn load_marker(path: &Path) -> Option<RemoteLaneMarker> {
    match state_file::read::<RemoteLaneMarker>(path) {
        Ok(marker) => Some(marker),
        Err(crate::workspace::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(error) => {
            log::warn!("remote lane marker unreadable, treated as absent error={error}");
            None
        }
    }
}

fn save_marker(path: &Path, marker: &RemoteLaneMarker) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(crate::workspace::io_error(dir, "create"))?;
    }
    state_file::write(path, marker).map_err(Error::Workspace)
}

fn forget_marker(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            log::warn!(
                "cannot remove remote lane marker path={} error={error}",
                path.display()
            );
        }
    }
}

/// A lane key is one plain directory name (the local rule).
fn is_single_name(key: &str) -> bool {
    let mut components = Path::new(key).components();
    matches!(components.next(), Some(std::path::Component::Normal(_)))
        && components.next().is_none()
        && !key.starts_with('.')
        && !key.contains('/')
}

/// A name part no other staging or trash directory of this controller shares.
fn unique() -> String {
    format!("{}-{}", std::process::id(), clock::now_ms())
}
