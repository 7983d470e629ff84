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
