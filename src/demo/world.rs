//! The demo's throwaway world, built from nothing in one directory the demo owns.
//!
//! ```text
//! DIR/.maestro-demo     the ownership marker (a DIR without it is never wiped)
//! DIR/origin.git        a bare git origin: where the agent pushes its lane branches
//! DIR/source/           the repository (repo_root): greetings.txt, test.sh, WORKFLOW.md
//! DIR/issues/           the local tracker: DEMO-1..3.md, team.toml, *.comments.md
//! DIR/workspaces/       lanes and Maestro's state (.maestro/: records, journals, logs)
//! DIR/codex-home/       CODEX_HOME: every model call goes to the built-in mock
//! DIR/gitconfig         the only git config the world uses (GIT_CONFIG_GLOBAL)
//! DIR/maestro.toml      the service config tying it together
//! DIR/daemon.log        the daemon's stderr
//! ```
//!
//! Nothing outside DIR is written. A DIR that exists, is not empty and has no marker is refused
//! (Maestro never deletes what it cannot prove it made); one with the marker is wiped and
//! rebuilt, so every run starts fresh.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Error;
use super::script::{DemoIssue, ISSUES, NEEDS_ATTENTION, PROJECT_ID, PROJECT_SLUG};
use crate::mock_model::MockModel;
use crate::shell;
use crate::workspace::{Layout, lock};

/// The ownership marker's name and first line.
pub const MARKER: &str = ".maestro-demo";
const MARKER_TEXT: &str =
    "This directory was built by `maestro demo`, which wipes and rebuilds it on every run.\n";
/// Time limit for one git command while building the world.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Variables that would point git somewhere else than the world's repositories.
const GIT_LOCATION_VARS: [&str; 4] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
];

/// What is at DIR before the demo starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// Missing or empty: the demo may build there.
    Fresh,
    /// A world of an earlier demo run (it has the marker): wiped and rebuilt.
    Ours,
}

/// Where everything of one world is.
#[derive(Debug, Clone)]
pub struct World {
    pub dir: PathBuf,
    pub origin: PathBuf,
    pub source: PathBuf,
    pub issues: PathBuf,
    pub workspace_root: PathBuf,
    pub codex_home: PathBuf,
    pub gitconfig: PathBuf,
    pub config: PathBuf,
    pub daemon_log: PathBuf,
    /// The operator endpoint's port on 127.0.0.1.
    pub port: u16,
}

impl World {
    /// The paths of a world in `dir` (absolute).
    pub fn at(dir: &Path, port: u16) -> World {
        World {
            dir: dir.to_path_buf(),
            origin: dir.join("origin.git"),
            source: dir.join("source"),
            issues: dir.join("issues"),
            workspace_root: dir.join("workspaces"),
            codex_home: dir.join("codex-home"),
            gitconfig: dir.join("gitconfig"),
            config: dir.join("maestro.toml"),
            daemon_log: dir.join("daemon.log"),
            port,
        }
    }

    /// The state layout under the world's workspace root.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.workspace_root)
    }

    /// The environment every git (and so every lane) of the world runs with: the world's own
    /// git config only, so the operator's signing, hooks or URL rewrites never interfere.
    pub fn git_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GIT_CONFIG_GLOBAL", self.gitconfig.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_string()),
            ("GIT_TERMINAL_PROMPT", "0".to_string()),
        ]
    }

    /// Variables to remove from the daemon's and git's environment.
    pub fn removed_env() -> Vec<String> {
        GIT_LOCATION_VARS
            .iter()
            .map(|name| name.to_string())
            .collect()
    }
}

/// Judges DIR without changing anything: fresh, ours, or refused (with how to proceed).
pub fn check_dir(dir: &Path) -> Result<DirState, Error> {
    let metadata = match std::fs::symlink_metadata(dir) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Fresh),
        Err(source) => return Err(Error::io(dir, "inspect", source)),
        Ok(metadata) => metadata,
    };
    let refuse = |reason: &str| Error::DirNotOurs {
        dir: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    if metadata.file_type().is_symlink() {
        return Err(refuse("it is a symlink"));
    }
    if !metadata.is_dir() {
        return Err(refuse("it is not a directory"));
    }
    let mut entries = std::fs::read_dir(dir).map_err(|source| Error::io(dir, "read", source))?;
    if entries.next().is_none() {
        return Ok(DirState::Fresh);
    }
    let marker = dir.join(MARKER);
    let ours = std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file())
        && std::fs::read_to_string(&marker).is_ok_and(|text| text == MARKER_TEXT);
    if !ours {
        return Err(refuse(&format!(
            "it is not empty and has no {MARKER} marker"
        )));
    }
    // A repository's own top level is never a demo world, whatever marker it holds.
    if dir.join(".git").exists() {
        return Err(refuse("it is the top of a git repository"));
    }
    Ok(DirState::Ours)
}

/// Makes DIR an empty directory holding only the marker: created, or (when it is ours) wiped
/// first. Refuses while a daemon still runs in it.
pub fn prepare_dir(dir: &Path, state: DirState) -> Result<(), Error> {
    if state == DirState::Ours {
        let layout = Layout::new(&dir.join("workspaces"));
        if layout.state_dir().is_dir() {
            match lock::acquire_daemon_lock(&layout) {
                Ok(held) => drop(held),
                Err(crate::workspace::Error::DaemonRunning { pid, .. }) => {
                    return Err(Error::DirInUse {
                        dir: dir.to_path_buf(),
                        pid,
                    });
                }
                // An unreadable lock is about to be wiped with everything else.
                Err(_) => {}
            }
        }
        std::fs::remove_dir_all(dir).map_err(|source| Error::io(dir, "wipe", source))?;
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::io(dir, "create", source))?;
    write(&dir.join(MARKER), MARKER_TEXT)
}

/// Builds the whole world in the prepared DIR: origin, source, issues, codex home, config.
pub fn build(world: &World, codex: &Path, mock: &MockModel) -> Result<(), Error> {
    write(
        &world.gitconfig,
        "[user]\n\tname = Maestro Demo\n\temail = demo@maestro.invalid\n\
         [init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n",
    )?;
    build_repositories(world)?;
    build_issues(world)?;
    build_codex_home(world, mock)?;
    write(&world.config, &service_config(world, codex)?)
}

fn build_repositories(world: &World) -> Result<(), Error> {
    create(&world.origin)?;
    git(world, &world.origin, &["init", "--quiet", "--bare"])?;
    create(&world.source)?;
    git(world, &world.source, &["init", "--quiet"])?;
    write(&world.source.join("README.md"), README)?;
    write(
        &world.source.join("greetings.txt"),
        "en: hello\nfr: bonjour\n",
    )?;
    write(&world.source.join("test.sh"), TEST_SH)?;
    write(&world.source.join("WORKFLOW.md"), WORKFLOW)?;
    git(world, &world.source, &["add", "-A"])?;
    git(
        world,
        &world.source,
        &["commit", "--quiet", "-m", "The greetings project"],
    )?;
    // An absolute path: each lane's origin is set to this URL, and a lane lives elsewhere.
    let origin = world.origin.display().to_string();
    git(world, &world.source, &["remote", "add", "origin", &origin])?;
    git(world, &world.source, &["push", "--quiet", "origin", "main"])?;
    Ok(())
}

fn build_issues(world: &World) -> Result<(), Error> {
    create(&world.issues)?;
    write(
        &world.issues.join("team.toml"),
        &format!(
            "# The demo team: its key, states (Linear's defaults) and labels.\n\
             key = \"DEMO\"\nname = \"Demo\"\nlabels = [\"docs\", \"{NEEDS_ATTENTION}\"]\n"
        ),
    )?;
    for (index, issue) in ISSUES.iter().enumerate() {
        write(
            &world.issues.join(format!("{}.md", issue.identifier)),
            &issue_file(issue, index),
        )?;
    }
    Ok(())
}

fn issue_file(issue: &DemoIssue, index: usize) -> String {
    format!(
        "+++\nidentifier = \"{}\"\ntitle = \"{}\"\nstate = \"Todo\"\npriority = {}\n\
         created = \"2026-01-0{}T09:00:00Z\"\n+++\n\n{}\n",
        issue.identifier,
        issue.title,
        issue.priority,
        index + 1,
        issue.description
    )
}

fn build_codex_home(world: &World, mock: &MockModel) -> Result<(), Error> {
    create(&world.codex_home)?;
    let mut config = mock.codex_config();
    // Runs must never wait on a person, and the agent pushes to origin.git, outside its lane:
    // the scripted agent runs only the demo's own commands, in a throwaway world.
    config.approval_policy = Some("never".into());
    config.sandbox_mode = Some("danger-full-access".into());
    let mut text = config.to_toml();
    // The lane's commands need GIT_CONFIG_GLOBAL (the world's git identity) from the daemon.
    text.push_str("\n[shell_environment_policy]\ninherit = \"all\"\n");
    write(&world.codex_home.join("config.toml"), &text)
}

fn service_config(world: &World, codex: &Path) -> Result<String, Error> {
    let codex_text = codex.display().to_string();
    if codex_text.chars().any(char::is_whitespace) {
        // `[agent] command` is split on whitespace (no shell), so such a path cannot be named.
        return Err(Error::CodexPath {
            path: codex.to_path_buf(),
        });
    }
    let mut text = String::from(
        "# Written by `maestro demo` (docs/guide/demo.md); rebuilt on every run.\n\
         # Relative paths resolve against this file's directory.\n",
    );
    let _ = write!(
        text,
        "id = \"{PROJECT_ID}\"\nrepo_root = \"source\"\nworkspace_root = \"workspaces\"\n\n\
         [tracker]\nprovider = \"local\"\nproject_slug = \"{PROJECT_SLUG}\"\nissues_dir = \"issues\"\n\n\
         [agent]\ncommand = {}\nturn_idle_timeout_ms = 120000\nstall_timeout_ms = 300000\n\n\
         [operator_http]\nlisten_address = \"127.0.0.1:{}\"\n",
        toml_string(&format!("{codex_text} app-server")),
        world.port
    );
    Ok(text)
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs git in `cwd` with the world's environment; a failure carries git's last lines.
fn git(world: &World, cwd: &Path, args: &[&str]) -> Result<(), Error> {
    let env = world.git_env();
    let set: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let outcome = shell::run_program("git", args, cwd, &World::removed_env(), &set, GIT_TIMEOUT)
        .map_err(|source| Error::io(cwd, "run git in", source))?;
    if outcome.success() {
        Ok(())
    } else {
        Err(Error::Git {
            command: format!("git {}", args.join(" ")),
            dir: cwd.to_path_buf(),
            output: outcome.output_tail.trim().to_string(),
        })
    }
}

fn create(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::io(dir, "create", source))
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::io(path, "write", source))
}

const README: &str = "# Greetings\n\n\
A tiny project for `maestro demo`: one greeting per line in `greetings.txt`, as\n\
`<language code>: <greeting>`. `sh test.sh` checks the format.\n";

const TEST_SH: &str = "#!/bin/sh\n\
# The project's test: every line of greetings.txt is \"<language code>: <greeting>\".\n\
bad=$(grep -nvE '^[a-z][a-z]: [^ ]' greetings.txt)\n\
if [ -n \"$bad\" ]; then\n\
  echo \"greetings.txt: lines not in the form '<code>: <greeting>':\"\n\
  echo \"$bad\"\n\
  exit 1\n\
fi\n\
echo \"greetings.txt: $(wc -l < greetings.txt | tr -d ' ') greetings, all well formed\"\n";

const WORKFLOW: &str = "+++\n\
# The demo's contract (docs/spec/workflow.md), written by `maestro demo`.\n\
version = 1\n\
\n\
[tracker]\n\
provider = \"local\"\n\
startable_states = [\"Todo\"]\n\
in_progress_state = \"In Progress\"\n\
success_state = \"In Review\"\n\
failure_state = \"Todo\"\n\
\n\
[execution]\n\
max_attempts = 3\n\
max_concurrent_agents = 3\n\
# Retry a failed attempt after one second instead of the default ten.\n\
max_retry_backoff_ms = 1000\n\
validation_commands = [\"sh test.sh\"]\n\
validation_timeout_ms = 60000\n\
\n\
[handoff]\n\
# A plain git server, no GitHub: the agent pushes its lane branch to origin and hands it off.\n\
mode = \"branch\"\n\
+++\n\
\n\
# Working on the greetings project\n\
\n\
Keep each change small. Run `sh test.sh` before you hand off, commit, push this lane's branch\n\
to origin and hand the branch off for review.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("maestro-demo-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn only_a_missing_empty_or_marked_dir_is_used() {
        let dir = scratch("dirs");
        assert_eq!(check_dir(&dir).unwrap(), DirState::Fresh);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(check_dir(&dir).unwrap(), DirState::Fresh);
        std::fs::write(dir.join("precious.txt"), "mine").unwrap();
        let error = check_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("has no .maestro-demo marker"), "{error}");
        // A forged marker must say exactly what the demo writes.
        std::fs::write(dir.join(MARKER), "anything").unwrap();
        assert!(check_dir(&dir).is_err());
        std::fs::write(dir.join(MARKER), MARKER_TEXT).unwrap();
        assert_eq!(check_dir(&dir).unwrap(), DirState::Ours);
        prepare_dir(&dir, DirState::Ours).unwrap();
        assert!(!dir.join("precious.txt").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join(MARKER)).unwrap(),
            MARKER_TEXT
        );
        std::fs::create_dir(dir.join(".git")).unwrap();
        assert!(check_dir(&dir).is_err(), "a repository top is never wiped");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_workflow_parses_with_branch_handoff() {
        let workflow =
            crate::workflow::parse(Path::new("/w/WORKFLOW.md"), WORKFLOW, Path::new("/w")).unwrap();
        assert_eq!(workflow.handoff, crate::workflow::HandoffMode::Branch);
        assert_eq!(workflow.execution.validation_commands, ["sh test.sh"]);
        assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
        assert_eq!(toml_string("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
    }
}
