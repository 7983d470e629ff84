//! Settings: a service config and its repository's WORKFLOW.md, loaded together and
//! cross-checked.
//!
//! Every command that acts on a project starts here. The two contracts are validated on their
//! own by [`crate::config`] and [`crate::workflow`]; this module adds the rules that need both
//! (one project slug, one provider) and the config rules that need the disk: a `repo_root`
//! that is a git checkout, a `workspace_root` that, symlinks resolved, never overlaps the
//! repository's tracked tree, and (for the commands that write) local issue files outside it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Lookup, ServiceConfig};
use crate::shell;
use crate::workflow::{self, Workflow};

/// Time limit for the git commands that check where `workspace_root` lies.
const GIT_CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// A service config plus the workflow snapshot it points at.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: ServiceConfig,
    pub workflow: Workflow,
    /// The project slug, from maestro.toml or WORKFLOW.md (they may not disagree).
    pub project_slug: String,
}

/// Why settings could not be assembled.
#[derive(Debug)]
pub enum Error {
    Config(config::Error),
    Workflow(workflow::Error),
    /// maestro.toml and WORKFLOW.md name different projects.
    SlugConflict {
        config_path: PathBuf,
        config_slug: String,
        workflow_path: PathBuf,
        workflow_slug: String,
    },
    /// Neither file names the project.
    SlugMissing {
        config_path: PathBuf,
        workflow_path: PathBuf,
    },
    /// `workspace_root`, with symlinks resolved, is the repository, contains it, or lies in
    /// its tracked tree: removing lanes there could delete the repository's files.
    WorkspaceRoot {
        config_path: PathBuf,
        workspace_root: PathBuf,
        reason: String,
    },
    /// `repo_root` does not exist, is not a directory, or is not the top of a git checkout.
    RepoRoot {
        config_path: PathBuf,
        repo_root: PathBuf,
        reason: String,
    },
    /// The local tracker's `issues_dir` holds files git tracks in the repository: a live run
    /// writes issue states and comments there and would dirty the checkout.
    TrackedIssues {
        config_path: PathBuf,
        issues_dir: PathBuf,
        relative: String,
    },
    /// `[worker] ssh_hosts` with WORKFLOW.md's `[review] repair`: a review repair re-enters
    /// the retained lane, which this version keeps only for local lanes.
    RemoteRepairs {
        config_path: PathBuf,
        workflow_path: PathBuf,
    },
    /// maestro.toml and WORKFLOW.md name different tracker providers.
    ProviderConflict {
        config_path: PathBuf,
        config_provider: String,
        workflow_path: PathBuf,
        workflow_provider: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(error) => error.fmt(f),
            Error::Workflow(error) => error.fmt(f),
            Error::SlugConflict {
                config_path,
                config_slug,
                workflow_path,
                workflow_slug,
            } => write!(
                f,
                "project slug conflict: {} says tracker.project_slug = \"{config_slug}\" but {} says \"{workflow_slug}\"; keep one of them",
                config_path.display(),
                workflow_path.display()
            ),
            Error::SlugMissing {
                config_path,
                workflow_path,
            } => write!(
                f,
                "no project slug: set tracker.project_slug in {} or in the front matter of {}",
                config_path.display(),
                workflow_path.display()
            ),
            Error::WorkspaceRoot {
                config_path,
                workspace_root,
                reason,
            } => write!(
                f,
                "invalid config {}: field `workspace_root` ({}) {reason}",
                config_path.display(),
                workspace_root.display()
            ),
            Error::RepoRoot {
                config_path,
                repo_root,
                reason,
            } => write!(
                f,
                "invalid config {}: field `repo_root` ({}) {reason}",
                config_path.display(),
                repo_root.display()
            ),
            Error::TrackedIssues {
                config_path,
                issues_dir,
                relative,
            } => write!(
                f,
                "invalid config {config}: field `tracker.issues_dir` ({}) holds files git tracks in repo_root (`{relative}`); a live run writes issue states, labels and comments into them and would dirty the checkout: copy the directory somewhere untracked (for example `cp -r {relative} tmp/issues`) and point issues_dir at the copy, or use `run --once --dry-run`, which writes nothing",
                issues_dir.display(),
                config = config_path.display(),
            ),
            Error::RemoteRepairs {
                config_path,
                workflow_path,
            } => write!(
                f,
                "{config} runs lanes on [worker] ssh_hosts but {workflow} turns on review repairs ([review] enabled = true with repair = true); repairs re-enter a retained lane, which this version supports only for local lanes: set repair = false under [review] in {workflow}, or remove [worker] ssh_hosts from {config}",
                config = config_path.display(),
                workflow = workflow_path.display()
            ),
            Error::ProviderConflict {
                config_path,
                config_provider,
                workflow_path,
                workflow_provider,
            } => write!(
                f,
                "tracker provider conflict: {config} says provider = \"{config_provider}\" but {workflow} says \"{workflow_provider}\"; either set provider = \"{workflow_provider}\" in the [tracker] table of {config}, or remove `provider` from the [tracker] front matter of {workflow} so that {config} decides (to leave a committed WORKFLOW.md alone, copy it to an untracked path such as tmp/WORKFLOW.md, edit the copy, and set workflow_path to it)",
                config = config_path.display(),
                workflow = workflow_path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(error) => Some(error),
            Error::Workflow(error) => Some(error),
            _ => None,
        }
    }
}

impl From<config::Error> for Error {
    fn from(error: config::Error) -> Self {
        Error::Config(error)
    }
}

impl From<workflow::Error> for Error {
    fn from(error: workflow::Error) -> Self {
        Error::Workflow(error)
    }
}

/// Resolves maestro.toml, loads it and its WORKFLOW.md, and cross-checks them.
pub fn load(explicit: Option<&Path>, lookup: &Lookup) -> Result<Settings, Error> {
    load_with_workflow(explicit, lookup, None)
}

/// Like [`load`], reading the workflow from `workflow_snapshot` instead of the repository's
/// WORKFLOW.md when given: the daemon hands each child the last known good snapshot, so a
/// broken edit in the repository never reaches a lane.
pub fn load_with_workflow(
    explicit: Option<&Path>,
    lookup: &Lookup,
    workflow_snapshot: Option<&Path>,
) -> Result<Settings, Error> {
    let config = config::load(explicit, lookup)?;
    // Before WORKFLOW.md: a wrong repo_root must be reported as such, not as a missing file.
    check_repo_root(&config)?;
    let workflow_path = workflow_snapshot
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.workflow_file());
    let workflow = workflow::load(&workflow_path, &config.repo_root)?;
    check_workspace_root(&config)?;
    combine(config, workflow)
}

/// Refuses a `repo_root` that does not exist, is not a directory, or has no `.git`: lanes are
/// `git clone`s of it and WORKFLOW.md is read from its work tree, and git cannot clone a
/// subdirectory of a checkout. Checked by looking for `.git` (a directory, or a file in a
/// linked worktree) rather than by running git, so every load stays cheap.
pub fn check_repo_root(config: &ServiceConfig) -> Result<(), Error> {
    let refuse = |reason: &str| Error::RepoRoot {
        config_path: config.path.clone(),
        repo_root: config.repo_root.clone(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(&config.repo_root) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(refuse(
            "does not exist; set repo_root to the path of the repository's git checkout",
        )),
        Err(error) => Err(refuse(&format!(
            "cannot be read ({error}); check its permissions, or set repo_root to another checkout"
        ))),
        Ok(metadata) if !metadata.is_dir() => Err(refuse(
            "is not a directory; set repo_root to the path of the repository's git checkout",
        )),
        Ok(_) if std::fs::symlink_metadata(config.repo_root.join(".git")).is_err() => Err(refuse(
            "is not the top of a git checkout (it has no .git); set repo_root to the directory `git clone` made (lanes are cloned from it)",
        )),
        Ok(_) => Ok(()),
    }
}

/// Refuses local issue files that git tracks in the repository, for the commands that write
/// them (`run --once`, `daemon`): a write-back would modify the operator's checkout. The dry run
/// and `status` write nothing and skip this check.
pub fn check_tracker_writes(config: &ServiceConfig) -> Result<(), Error> {
    let (config::Provider::Local, Some(issues_dir)) =
        (config.tracker.provider, &config.tracker.issues_dir)
    else {
        return Ok(());
    };
    let (Ok(repo_root), Ok(issues)) = (config.repo_root.canonicalize(), issues_dir.canonicalize())
    else {
        return Ok(());
    };
    let Ok(inside) = issues.strip_prefix(&repo_root) else {
        return Ok(());
    };
    let relative = if inside.as_os_str().is_empty() {
        ".".to_string()
    } else {
        inside.display().to_string()
    };
    let tracked = [
        "--literal-pathspecs",
        "ls-files",
        "--error-unmatch",
        "--",
        &relative,
    ];
    match git_check(&repo_root, &tracked) {
        GitAnswer::No => Ok(()),
        // Unsure is refused too: the cost of a wrong yes is a dirty checkout.
        GitAnswer::Yes | GitAnswer::Failed(_) => Err(Error::TrackedIssues {
            config_path: config.path.clone(),
            issues_dir: issues_dir.clone(),
            relative,
        }),
    }
}

/// Refuses a `workspace_root` that, with symlinks resolved, is `repo_root`, contains it, or lies
/// inside the repository other than outside its tracked tree: inside the repository it must
/// hold no tracked file and, unless it is the default `<repo_root>/.workspaces`, be git-ignored.
/// A repository that cannot be resolved is left to the checks that need it.
pub fn check_workspace_root(config: &ServiceConfig) -> Result<(), Error> {
    let Ok(repo_root) = config.repo_root.canonicalize() else {
        return Ok(());
    };
    let workspace_root = resolve_existing(&config.workspace_root);
    let refuse = |reason: String| Error::WorkspaceRoot {
        config_path: config.path.clone(),
        workspace_root: config.workspace_root.clone(),
        reason,
    };
    if let Some(reason) = config::workspace_overlap(&workspace_root, &repo_root) {
        return Err(refuse(format!(
            "resolves to {} (symlinks followed), which {reason}",
            workspace_root.display()
        )));
    }
    let Ok(inside) = workspace_root.strip_prefix(&repo_root) else {
        return Ok(());
    };
    let relative = inside.display().to_string();
    let is_default = inside == Path::new(config::DEFAULT_WORKSPACE_DIR);
    let fix = "set workspace_root to a directory outside the repository, or omit it to use <repo_root>/.workspaces";
    // Literal pathspecs: a directory name with `*` or `[` means itself, not a pattern.
    let tracked = [
        "--literal-pathspecs",
        "ls-files",
        "--error-unmatch",
        "--",
        &relative,
    ];
    match git_check(&repo_root, &tracked) {
        GitAnswer::Yes => {
            return Err(refuse(format!(
                "lies inside the repository and git tracks files under `{relative}`; lanes there would be created and removed among tracked files: {fix}"
            )));
        }
        GitAnswer::No => {}
        GitAnswer::Failed(_) if is_default => return Ok(()),
        GitAnswer::Failed(output) => {
            return Err(refuse(format!(
                "lies inside the repository and git cannot tell whether it is tracked ({output}): {fix}"
            )));
        }
    }
    if is_default {
        return Ok(());
    }
    match git_check(
        &repo_root,
        &["check-ignore", "--quiet", "--", &format!("{relative}/")],
    ) {
        GitAnswer::Yes => Ok(()),
        GitAnswer::No => Err(refuse(format!(
            "lies inside the repository's working tree and is not git-ignored; add `/{relative}/` to {}/.gitignore, or {fix}",
            config.repo_root.display()
        ))),
        GitAnswer::Failed(output) => Err(refuse(format!(
            "lies inside the repository and git cannot tell whether it is ignored ({output}): {fix}"
        ))),
    }
}

/// What a yes/no git query answered (exit 0 / exit 1), or its last output line.
enum GitAnswer {
    Yes,
    No,
    Failed(String),
}

fn git_check(repo_root: &Path, args: &[&str]) -> GitAnswer {
    match shell::run_program(
        "git",
        args,
        repo_root,
        &[],
        &[("GIT_TERMINAL_PROMPT", "0")],
        GIT_CHECK_TIMEOUT,
    ) {
        Ok(outcome) if outcome.exit_code == Some(0) => GitAnswer::Yes,
        Ok(outcome) if outcome.exit_code == Some(1) => GitAnswer::No,
        Ok(outcome) => GitAnswer::Failed(
            outcome
                .output_tail
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("no output")
                .trim()
                .to_string(),
        ),
        Err(error) => GitAnswer::Failed(format!("cannot run git: {error}")),
    }
}

/// `path` with symlinks resolved as far as it exists; the part that does not exist yet is
/// appended as written (the config already removed `.` and `..`).
fn resolve_existing(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(real) = existing.canonicalize() {
            return missing
                .iter()
                .rev()
                .fold(real, |real, name| real.join(name));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Cross-checks an already loaded config and workflow.
pub fn combine(config: ServiceConfig, workflow: Workflow) -> Result<Settings, Error> {
    let project_slug = project_slug(&config, &workflow)?;
    // WORKFLOW.md may leave the provider unset; only an explicit disagreement is an error.
    if let Some(workflow_provider) = workflow.tracker.provider {
        if workflow_provider != config.tracker.provider {
            return Err(Error::ProviderConflict {
                config_path: config.path.clone(),
                config_provider: config.tracker.provider.name().to_string(),
                workflow_path: workflow.path.clone(),
                workflow_provider: workflow_provider.name().to_string(),
            });
        }
    }
    let remote = config
        .worker
        .as_ref()
        .is_some_and(|worker| !worker.hosts.is_empty());
    if remote && workflow.review.enabled && workflow.review.repair {
        return Err(Error::RemoteRepairs {
            config_path: config.path.clone(),
            workflow_path: workflow.path.clone(),
        });
    }
    Ok(Settings {
        config,
        workflow,
        project_slug,
    })
}

/// The one project slug both files agree on.
pub fn project_slug(config: &ServiceConfig, workflow: &Workflow) -> Result<String, Error> {
    match (&config.tracker.project_slug, &workflow.tracker.project_slug) {
        (Some(from_config), Some(from_workflow)) if from_config != from_workflow => {
            Err(Error::SlugConflict {
                config_path: config.path.clone(),
                config_slug: from_config.clone(),
                workflow_path: workflow.path.clone(),
                workflow_slug: from_workflow.clone(),
            })
        }
        (Some(slug), _) | (None, Some(slug)) => Ok(slug.clone()),
        (None, None) => Err(Error::SlugMissing {
            config_path: config.path.clone(),
            workflow_path: workflow.path.clone(),
        }),
    }
}
