//! Settings: a service config and its repository's WORKFLOW.md, loaded together and
//! cross-checked.
//!
//! Every command that acts on a project starts here. The two contracts are validated on their
//! own by [`crate::config`] and [`crate::workflow`]; this module adds the rules that need both
//! (one project slug, one provider) and nothing else.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{self, Lookup, ServiceConfig};
use crate::workflow::{self, Workflow};

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
            Error::ProviderConflict {
                config_path,
                config_provider,
                workflow_path,
                workflow_provider,
            } => write!(
                f,
                "tracker provider conflict: {} says \"{config_provider}\" but {} says \"{workflow_provider}\"; make them agree",
                config_path.display(),
                workflow_path.display()
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
    let workflow_path = workflow_snapshot
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.workflow_file());
    let workflow = workflow::load(&workflow_path, &config.repo_root)?;
    combine(config, workflow)
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
