//! Lanes on ssh hosts against real sshd and real git: clone from origin, reuse, hooks on the
//! host, containment with resolved paths, removal guarded by the creation marker.

use std::path::Path;
use std::time::Duration;

use maestro::worker::lane::{self, RemoteLaneSpec};
use maestro::worker::{Error, HostConfig, Remote, WorkerConfig};
use maestro::workflow::Hooks;
use maestro::workspace::Layout;

use crate::support::dir::TestDir;
use crate::support::git::{git, repos};
use crate::support::sshd::{HostSpec, SshWorld};

struct World {
    _dir: TestDir,
    world: SshWorld,
    layout: Layout,
    source: std::path::PathBuf,
    remote: Remote,
}

fn world(name: &str) -> Option<World> {
    let sshd = crate::support::sshd::require_sshd()?;
    let dir = TestDir::new(name);
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let worker = WorkerConfig {
        hosts: vec![HostConfig {
            name: "host-a".into(),
            workspace_root: world.host("host-a").root.display().to_string(),
        }],
        max_concurrent_agents_per_host: None,
        ssh_command: vec![
            "ssh".into(),
            "-F".into(),
            world.ssh_config.display().to_string(),
        ],
    };
    let layout = Layout::new(&dir.join("controller"));
    let remote = Remote::new(&worker, &worker.hosts[0], dir.path()).with_health(&layout);
    Some(World {
        layout,
        source: repos.source,
        remote,
        world,
        _dir: dir,
    })
}

fn spec<'a>(world: &'a World, key: &'a str, hooks: &'a Hooks) -> RemoteLaneSpec<'a> {
    RemoteLaneSpec {
        remote: &world.remote,
        layout: &world.layout,
        repo_root: &world.source,
        key,
        branch: "x/demo-abc-1",
        hooks,
    }
}

fn root(world: &World) -> &Path {
    &world.world.host("host-a").root
}

/// A new lane is a clone of origin on the host, on its branch, with after_create run there and
/// the creation marker on the controller; a second prepare reuses it without losing work.
#[test]
fn a_remote_lane_is_cloned_on_the_host_and_reused() {
    let Some(world) = world("remote-lane-new") else {
        return;
    };
    let hooks = Hooks {
        after_create: Some("echo created > .after-create-ran".into()),
        ..Hooks::default()
    };
    let lane = lane::prepare(&spec(&world, "ABC-1", &hooks)).unwrap();
    assert!(lane.created);
    let path = root(&world).join("ABC-1");
    assert_eq!(Path::new(&lane.path), path.canonicalize().unwrap());
    assert_eq!(
        git(&path, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "x/demo-abc-1"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert!(
        path.join(".after-create-ran").exists(),
        "after_create ran on the host"
    );
    assert!(lane::has_marker(&world.layout, "host-a", "ABC-1"));
    std::fs::write(path.join("work.txt"), "in progress").unwrap();
    let again = lane::prepare(&spec(&world, "ABC-1", &hooks)).unwrap();
    assert!(!again.created);
    assert_eq!(
        std::fs::read_to_string(path.join("work.txt")).unwrap(),
        "in progress"
    );
    let head = lane::head_sha(&world.remote, "ABC-1").unwrap();
    assert_eq!(head, git(&path, &["rev-parse", "HEAD"]));
    // Nothing staged is left beside the lane.
    let names: Vec<String> = std::fs::read_dir(root(&world))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ABC-1"]);
}

/// A symlinked lane is refused as a policy violation before anything runs in it, whether it
/// was there before the prepare or swapped in afterwards; a lane whose git metadata leads out
/// is refused too.
#[test]
fn a_symlinked_remote_lane_is_refused() {
    let Some(world) = world("remote-lane-symlink") else {
        return;
    };
    let hooks = Hooks::default();
    let outside = root(&world).parent().unwrap().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root(&world).join("ABC-2")).unwrap();
    let error = lane::prepare(&spec(&world, "ABC-2", &hooks)).unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error}");
    assert!(error.to_string().contains("symlink"), "{error}");
    // Swapped after preparing: the wrapper refuses to run anything in it.
    lane::prepare(&spec(&world, "ABC-3", &hooks)).unwrap();
    let lane_dir = root(&world).join("ABC-3");
    std::fs::rename(&lane_dir, root(&world).join("moved")).unwrap();
    std::os::unix::fs::symlink(&outside, &lane_dir).unwrap();
    let error = lane::run_in_lane(
        &world.remote,
        "ABC-3",
        "touch escaped",
        Duration::from_secs(30),
        None,
    )
    .unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error}");
    assert!(
        !outside.join("escaped").exists(),
        "nothing ran outside the lane"
    );
    // Git metadata that leads out of the lane.
    lane::prepare(&spec(&world, "ABC-4", &hooks)).unwrap();
    let lane_dir = root(&world).join("ABC-4");
    let git_dir = lane_dir.join(".git");
    std::fs::rename(&git_dir, outside.join("stolen.git")).unwrap();
    std::fs::write(
        &git_dir,
        format!("gitdir: {}\n", outside.join("stolen.git").display()),
    )
    .unwrap();
    let error = lane::verify_git_metadata(&world.remote, "ABC-4").unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error}");
}

/// Removal needs the creation marker: a lane Maestro made goes (with its marker), one swapped
/// in for it is kept, one without a marker is kept, and before_remove runs on the host.
#[test]
fn remote_lanes_are_removed_only_with_proof() {
    let Some(world) = world("remote-lane-remove") else {
        return;
    };
    let hooks = Hooks {
        before_remove: Some(format!(
            "touch {}/before-remove-ran",
            root(&world).parent().unwrap().display()
        )),
        ..Hooks::default()
    };
    lane::prepare(&spec(&world, "ABC-5", &hooks)).unwrap();
    lane::remove(&world.layout, &world.remote, "ABC-5", &hooks).unwrap();
    assert!(!root(&world).join("ABC-5").exists());
    assert!(!lane::has_marker(&world.layout, "host-a", "ABC-5"));
    assert!(
        root(&world)
            .parent()
            .unwrap()
            .join("before-remove-ran")
            .exists()
    );
    // Swapped: same name, another directory.
    lane::prepare(&spec(&world, "ABC-6", &hooks)).unwrap();
    let lane_dir = root(&world).join("ABC-6");
    std::fs::rename(&lane_dir, root(&world).join("original")).unwrap();
    std::fs::create_dir(&lane_dir).unwrap();
    std::fs::write(lane_dir.join("precious"), "keep me").unwrap();
    let error = lane::remove(&world.layout, &world.remote, "ABC-6", &Hooks::default()).unwrap_err();
    assert!(matches!(error, Error::NotOwned { .. }), "{error}");
    assert!(lane_dir.join("precious").exists());
    // A symlink in its place is never followed.
    std::fs::remove_dir_all(&lane_dir).unwrap();
    let victim = root(&world).parent().unwrap().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("file"), "x").unwrap();
    std::os::unix::fs::symlink(&victim, &lane_dir).unwrap();
    let error = lane::remove(&world.layout, &world.remote, "ABC-6", &Hooks::default()).unwrap_err();
    assert!(error.to_string().contains("symlink"), "{error}");
    assert!(victim.join("file").exists());
    // No marker: kept.
    std::fs::create_dir(root(&world).join("ABC-7")).unwrap();
    let error = lane::remove(&world.layout, &world.remote, "ABC-7", &Hooks::default()).unwrap_err();
    assert!(error.to_string().contains("no creation marker"), "{error}");
    assert!(root(&world).join("ABC-7").exists());
}

/// A lane whose marker names another directory is refused at reuse (a policy violation), so
/// Maestro never runs the agent in a directory someone swapped in.
#[test]
fn a_swapped_remote_lane_is_refused_at_reuse() {
    let Some(world) = world("remote-lane-swapped") else {
        return;
    };
    let hooks = Hooks::default();
    lane::prepare(&spec(&world, "ABC-8", &hooks)).unwrap();
    let lane_dir = root(&world).join("ABC-8");
    std::fs::rename(&lane_dir, root(&world).join("elsewhere")).unwrap();
    git(
        root(&world),
        &["clone", "--quiet", world.source.to_str().unwrap(), "ABC-8"],
    );
    let error = lane::prepare(&spec(&world, "ABC-8", &hooks)).unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("not the directory maestro created"),
        "{error}"
    );
}
