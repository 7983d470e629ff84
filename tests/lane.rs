//! Lanes against real git: clone, branch, origin, hooks, reuse, and unsafe metadata refused.

use std::path::Path;

use maestro::workflow::Hooks;
use maestro::workspace::lane::{self, LaneSpec};
use maestro::workspace::{Error, Layout};

use crate::support::dir::TestDir;
use crate::support::git::{git, repos};

fn spec<'a>(layout: &'a Layout, source: &'a Path, hooks: &'a Hooks) -> LaneSpec<'a> {
    LaneSpec {
        layout,
        repo_root: source,
        key: "ABC-1",
        branch: "x/demo-abc-1",
        hooks,
        remove_env: &[],
    }
}

#[test]
fn a_new_lane_is_a_clone_on_its_branch_with_the_sources_origin() {
    let dir = TestDir::new("lane-new");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks {
        after_create: Some("echo created > ../after-create.txt".into()),
        ..Hooks::default()
    };
    let lane = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap();
    assert!(lane.created);
    assert_eq!(lane.path, dir.join("workspaces/ABC-1"));
    assert_eq!(
        std::fs::read_to_string(lane.path.join("README.md")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        git(&lane.path, &["branch", "--show-current"]),
        "x/demo-abc-1"
    );
    assert_eq!(
        lane::origin_url(&lane.path).unwrap(),
        repos.origin.display().to_string()
    );
    assert_eq!(
        lane::head_sha(&lane.path).unwrap(),
        git(&repos.source, &["rev-parse", "HEAD"])
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("workspaces/after-create.txt")).unwrap(),
        "created\n"
    );
    lane::verify_git_metadata(&lane.path).unwrap();
    // No staging directory is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.join("workspaces"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.contains("cloning")),
        "{names:?}"
    );
}

#[test]
fn an_existing_lane_is_reused_without_losing_work() {
    let dir = TestDir::new("lane-reuse");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks::default();
    let first = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap();
    std::fs::write(first.path.join("work.txt"), "in progress\n").unwrap();
    let second = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap();
    assert!(!second.created);
    assert_eq!(second.path, first.path);
    assert_eq!(
        std::fs::read_to_string(second.path.join("work.txt")).unwrap(),
        "in progress\n"
    );
}

#[test]
fn a_failing_after_create_hook_aborts_with_its_output() {
    let dir = TestDir::new("lane-hook");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks {
        after_create: Some("echo setup broke; exit 7".into()),
        ..Hooks::default()
    };
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Hook {
                hook: "after_create",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("exit code Some(7)"), "{message}");
    assert!(message.contains("setup broke"), "{message}");
    assert!(
        !dir.join("workspaces/ABC-1").exists(),
        "a half-set-up lane is not left for reuse"
    );
}

#[test]
fn a_hook_past_its_timeout_is_killed() {
    let dir = TestDir::new("lane-hook-timeout");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks {
        after_create: Some("sleep 30".into()),
        timeout_ms: 200,
        ..Hooks::default()
    };
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(error.to_string().contains("timed out after"), "{error}");
}

#[test]
fn a_lane_whose_git_dir_is_a_symlink_outside_is_refused() {
    let dir = TestDir::new("lane-symlink");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let lane_dir = dir.join("workspaces/ABC-1");
    std::fs::create_dir_all(&lane_dir).unwrap();
    std::os::unix::fs::symlink(repos.source.join(".git"), lane_dir.join(".git")).unwrap();
    let hooks = Hooks::default();
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error:?}");
    assert!(error.to_string().contains(".git is a symlink"), "{error}");
}

#[test]
fn a_lane_with_a_gitfile_pointing_outside_is_refused() {
    let dir = TestDir::new("lane-gitfile");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let lane_dir = dir.join("workspaces/ABC-1");
    std::fs::create_dir_all(&lane_dir).unwrap();
    std::fs::write(
        lane_dir.join(".git"),
        format!("gitdir: {}\n", repos.source.join(".git").display()),
    )
    .unwrap();
    let hooks = Hooks::default();
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(
        error.to_string().contains("resolves outside the lane"),
        "{error}"
    );
}

#[test]
fn a_lane_that_is_a_symlink_is_refused_and_no_hook_runs() {
    let dir = TestDir::new("lane-is-symlink");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let outside = dir.join("outside");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            repos.source.to_str().unwrap(),
            outside.to_str().unwrap(),
        ],
    );
    let layout = Layout::new(&dir.join("workspaces"));
    std::fs::create_dir_all(layout.root()).unwrap();
    std::os::unix::fs::symlink(&outside, layout.lane_dir("ABC-1")).unwrap();
    let hooks = Hooks {
        after_create: Some("touch after-create-ran".into()),
        ..Hooks::default()
    };
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error:?}");
    assert!(
        error.to_string().contains("the lane is a symlink"),
        "{error}"
    );
    // Hooks refuse it too, and removal keeps it (and what it points at).
    let hook = lane::run_hook(
        "before_run",
        "touch before-run-ran",
        &layout.lane_dir("ABC-1"),
        &hooks,
        &[],
    );
    assert!(matches!(hook, Err(Error::Unsafe { .. })), "{hook:?}");
    let removal = lane::remove(&layout, "ABC-1", &hooks, &[]).unwrap_err();
    assert!(matches!(removal, Error::NotOwned { .. }), "{removal:?}");
    assert!(!outside.join("before-run-ran").exists());
    assert!(!outside.join("after-create-ran").exists());
    assert!(outside.join(".git").is_dir());
}

#[test]
fn a_failed_checkout_removes_the_staging_clone() {
    let dir = TestDir::new("lane-checkout-fails");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    // The source's checked-out branch is the lane branch, so the clone already has it and
    // `git checkout -b` fails after a complete clone.
    git(
        &repos.source,
        &["checkout", "--quiet", "-b", "x/demo-abc-1"],
    );
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks::default();
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(matches!(error, Error::Git { .. }), "{error:?}");
    let names: Vec<String> = std::fs::read_dir(layout.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![".maestro".to_string()],
        "nothing but state is left"
    );
    assert!(!layout.lane_marker_file("ABC-1").exists());
}

#[test]
fn a_lane_maestro_created_is_removed_and_a_replaced_one_is_refused() {
    let dir = TestDir::new("lane-ownership");
    let repos = repos(dir.path(), &[("README.md", "hello\n")]);
    let layout = Layout::new(&dir.join("workspaces"));
    let hooks = Hooks {
        before_remove: Some("echo removing > ../before-remove.txt".into()),
        ..Hooks::default()
    };
    let lane = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap();
    assert!(layout.lane_marker_file("ABC-1").is_file());
    lane::remove(&layout, "ABC-1", &hooks, &[]).unwrap();
    assert!(!lane.path.exists());
    assert!(!layout.lane_marker_file("ABC-1").exists());
    assert!(dir.join("workspaces/before-remove.txt").is_file());

    // Made again, then replaced behind Maestro's back: reuse and removal both refuse it.
    let lane = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap();
    std::fs::rename(&lane.path, dir.join("moved-away")).unwrap();
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            repos.source.to_str().unwrap(),
            lane.path.to_str().unwrap(),
        ],
    );
    let error = lane::prepare(&spec(&layout, &repos.source, &hooks)).unwrap_err();
    assert!(matches!(error, Error::Unsafe { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("not the directory maestro created"),
        "{error}"
    );
    let error = lane::remove(&layout, "ABC-1", &hooks, &[]).unwrap_err();
    assert!(matches!(error, Error::NotOwned { .. }), "{error:?}");
    assert!(lane.path.join(".git").is_dir());
}
