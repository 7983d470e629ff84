//! The local tracker: one Markdown file per issue in a directory, behind the same [`Tracker`]
//! trait as Linear, so Maestro can be tried, demoed and scripted without an account.
//!
//! Reads are fresh on every call (an operator may edit a file between two runs). Write-backs
//! (state, labels) edit the one value in place and replace the file atomically; comments go to
//! a sibling `<stem>.comments.md`. It deliberately does not lock across processes: it is a demo
//! and scripting backend, and two processes writing one issue file at the same instant may lose
//! one update (never tear the file). The format is documented in `docs/spec/tracker.md`.
//!
//! Reads cost nothing here, so the polling reads are full reads: every issue counts as changed,
//! its version a digest of the whole normalized issue, so a hand edit that leaves `updated`
//! alone, or a blocker's move, is still a new version.

mod file;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use self::file::{IssueFile, comments_path, toml_string, toml_string_list};
use crate::config::Provider;
use crate::tracker::{
    Blocker, Comment, CommentRef, Error, Issue, IssueState, Label, ProjectScope, Stamp, Stamps,
    Team, TeamMetadata, TeamRef, Tracker, WorkflowState, normalize_label, normalize_labels,
};

/// The optional team description inside the issues directory.
pub const TEAM_FILE: &str = "team.toml";

/// The local team's id (there is exactly one team).
const TEAM_ID: &str = "local";

/// Workflow states when `team.toml` lists none: Linear's defaults for a new team.
const DEFAULT_STATES: [(&str, &str); 7] = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
    ("Canceled", "canceled"),
    ("Duplicate", "duplicate"),
];

/// A tracker over the issue files in one directory.
#[derive(Debug)]
pub struct LocalTracker {
    dir: PathBuf,
    project_slug: String,
    team: Team,
    states: Vec<WorkflowState>,
    /// Labels `team.toml` declares; labels used on any issue are usable too.
    declared_labels: Vec<String>,
    metadata: Mutex<Option<Arc<TeamMetadata>>>,
    /// Serializes this process's read-modify-write cycles on issue files.
    writes: Mutex<()>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    key: Option<String>,
    name: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    states: Vec<StateEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

impl LocalTracker {
    /// Opens the issues directory `dir` for the project `project_slug`. Reads `team.toml` when
    /// present; creates nothing.
    pub fn open(dir: &Path, project_slug: &str) -> Result<LocalTracker, Error> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the issues directory (tracker.issues_dir) does not exist",
                ),
            });
        }
        let team_path = dir.join(TEAM_FILE);
        let team_file = match std::fs::read_to_string(&team_path) {
            Ok(text) => {
                toml::from_str::<TeamFile>(&text).map_err(|error| Error::InvalidIssueFile {
                    line: error.span().map_or(1, |span| {
                        crate::toml_fields::Position::of(&text, span.start).line
                    }),
                    path: team_path.clone(),
                    message: error.message().trim().to_string(),
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => TeamFile {
                key: None,
                name: None,
                labels: Vec::new(),
                states: Vec::new(),
            },
            Err(source) => {
                return Err(Error::Io {
                    path: team_path,
                    source,
                });
            }
        };
        let states = if team_file.states.is_empty() {
            DEFAULT_STATES
                .iter()
                .map(|(name, kind)| (name.to_string(), kind.to_string()))
                .collect()
        } else {
            team_file
                .states
                .into_iter()
                .map(|state| (state.name.trim().to_string(), state.kind.trim().to_string()))
                .collect::<Vec<_>>()
        };
        let key = team_file.key.unwrap_or_else(|| "LOCAL".to_string());
        Ok(LocalTracker {
            dir: dir.to_path_buf(),
            project_slug: project_slug.trim().to_string(),
            team: Team {
                id: TEAM_ID.to_string(),
                name: team_file.name.unwrap_or_else(|| key.clone()),
                key,
            },
            states: states
                .into_iter()
                .map(|(name, kind)| WorkflowState {
                    id: name.clone(),
                    name,
                    kind,
                })
                .collect(),
            declared_labels: team_file.labels,
            metadata: Mutex::new(None),
            writes: Mutex::new(()),
        })
    }

    /// The issues directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every issue file in the directory, parsed, in file-name order. Issue files are the
    /// `*.md` files other than `README.md` and `*.comments.md`.
    fn read_files(&self) -> Result<Vec<IssueFile>, Error> {
        let io = |source| Error::Io {
            path: self.dir.clone(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let is_issue = name.ends_with(".md")
                && !name.ends_with(".comments.md")
                && !name.eq_ignore_ascii_case("README.md")
                && !name.starts_with('.');
            if is_issue && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for path in paths {
            let file = IssueFile::read(&path)?;
            if let Some(first) = seen.insert(file.identifier.clone(), path.clone()) {
                return Err(Error::InvalidIssueFile {
                    path,
                    line: 1,
                    message: format!(
                        "identifier {} is also used by {}; identifiers must be unique",
                        file.identifier,
                        first.display()
                    ),
                });
            }
            files.push(file);
        }
        Ok(files)
    }

    /// Converts files to issues, resolving blockers against the whole directory.
    fn issues(&self, files: &[IssueFile]) -> Result<Vec<Issue>, Error> {
        let by_identifier: HashMap<&str, &IssueFile> = files
            .iter()
            .map(|file| (file.identifier.as_str(), file))
            .collect();
        files
            .iter()
            .map(|file| {
                let blockers = file
                    .blockers
                    .iter()
                    .map(|identifier| {
                        let blocker = by_identifier.get(identifier.as_str()).ok_or_else(|| {
                            Error::InvalidIssueFile {
                                path: file.path.clone(),
                                line: 1,
                                message: format!(
                                    "blocker {identifier} has no issue file in {}",
                                    self.dir.display()
                                ),
                            }
                        })?;
                        Ok(Blocker {
                            id: blocker.identifier.clone(),
                            identifier: blocker.identifier.clone(),
                            state: self.state_of(blocker)?,
                        })
                    })
                    .collect::<Result<Vec<Blocker>, Error>>()?;
                Ok(Issue {
                    id: file.identifier.clone(),
                    identifier: file.identifier.clone(),
                    title: file.title.clone(),
                    description: file.description.clone(),
                    priority: file.priority,
                    state: self.state_of(file)?,
                    labels: normalize_labels(file.labels.iter().map(String::as_str)),
                    blockers,
                    url: None,
                    branch_name: None,
                    created_at: file.created.clone(),
                    created_ms: file.created_ms,
                    updated_at: file.updated.clone().unwrap_or_else(|| file.created.clone()),
                    team: self.team_ref(),
                    project_slug: Some(
                        file.project
                            .clone()
                            .unwrap_or_else(|| self.project_slug.clone()),
                    ),
                })
            })
            .collect()
    }

    /// The team state a file names; an unknown name is a mistake in the file.
    fn state_of(&self, file: &IssueFile) -> Result<IssueState, Error> {
        self.states
            .iter()
            .find(|state| crate::workflow::same_state(&state.name, &file.state))
            .map(|state| IssueState {
                name: state.name.clone(),
                kind: state.kind.clone(),
            })
            .ok_or_else(|| Error::InvalidIssueFile {
                path: file.path.clone(),
                line: 1,
                message: format!(
                    "state \"{}\" is not a workflow state of team {}; known states: {}",
                    file.state,
                    self.team.key,
                    self.state_names().join(", ")
                ),
            })
    }

    fn state_names(&self) -> Vec<String> {
        self.states.iter().map(|state| state.name.clone()).collect()
    }

    fn team_ref(&self) -> TeamRef {
        TeamRef {
            id: self.team.id.clone(),
            key: self.team.key.clone(),
        }
    }

    fn belongs(&self, file: &IssueFile) -> bool {
        file.project
            .as_deref()
            .is_none_or(|project| project == self.project_slug)
    }

    /// The file of a visible issue of the project.
    fn file_of(&self, issue_id: &str) -> Result<IssueFile, Error> {
        self.read_files()?
            .into_iter()
            .find(|file| file.identifier == issue_id && self.belongs(file))
            .ok_or_else(|| Error::IssueNotFound {
                id: issue_id.to_string(),
            })
    }

    fn write(&self, path: &Path, text: &str) -> Result<(), Error> {
        crate::atomic_file::write(path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Tracker for LocalTracker {
    fn provider(&self) -> Provider {
        Provider::Local
    }

    fn project(&self) -> Result<ProjectScope, Error> {
        Ok(ProjectScope {
            id: self.project_slug.clone(),
            name: self.project_slug.clone(),
            slug_id: self.project_slug.clone(),
            url: None,
            teams: vec![self.team.clone()],
        })
    }

    fn issues_in_states(&self, state_names: &[String]) -> Result<Vec<Issue>, Error> {
        let files = self.read_files()?;
        let mut issues = self.issues(&files)?;
        issues.retain(|issue| {
            issue.project_slug.as_deref() == Some(self.project_slug.as_str())
                && state_names
                    .iter()
                    .any(|name| crate::workflow::same_state(name, &issue.state.name))
        });
        Ok(issues)
    }

    fn refresh(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error> {
        let files = self.read_files()?;
        let mut issues = self.issues(&files)?;
        issues.retain(|issue| {
            issue.project_slug.as_deref() == Some(self.project_slug.as_str())
                && issue_ids.contains(&issue.id)
        });
        Ok(issues)
    }

    fn changed_since(&self, _since_ms: u64) -> Result<Stamps, Error> {
        let files = self.read_files()?;
        let mut issues = self.issues(&files)?;
        issues.retain(|issue| issue.project_slug.as_deref() == Some(self.project_slug.as_str()));
        Ok(stamps(&issues))
    }

    fn stamps_in_states(&self, state_names: &[String]) -> Result<Stamps, Error> {
        Ok(stamps(&self.issues_in_states(state_names)?))
    }

    fn summaries(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error> {
        self.refresh(issue_ids)
    }

    fn transition(&self, issue_id: &str, state_name: &str) -> Result<IssueState, Error> {
        let metadata = self.team_metadata(TEAM_ID)?;
        let state = metadata.state(state_name)?;
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let file = self.file_of(issue_id)?;
        let text = file.with_value("state", &toml_string(&state.name));
        let file = IssueFile::parse(&file.path, text)?;
        let text = file.with_value("updated", &toml_string(&crate::clock::now_rfc3339()));
        self.write(&file.path, &text)?;
        log::info!(
            "tracker transition issue={issue_id} state=\"{}\" action=transition",
            state.name
        );
        Ok(IssueState {
            name: state.name.clone(),
            kind: state.kind.clone(),
        })
    }

    fn add_comment(&self, issue_id: &str, body: &str) -> Result<CommentRef, Error> {
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let file = self.file_of(issue_id)?;
        let path = comments_path(&file.path);
        let mut text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let number = text.matches(COMMENT_MARKER).count() + 1;
        if !text.is_empty() && !text.ends_with("\n\n") {
            text.push_str(if text.ends_with('\n') { "\n" } else { "\n\n" });
        }
        text.push_str(&format!(
            "{COMMENT_MARKER} {number} · {} -->\n\n{}\n",
            crate::clock::now_rfc3339(),
            body.trim_end()
        ));
        self.write(&path, &text)?;
        log::info!("tracker comment issue={issue_id} action=comment");
        Ok(CommentRef {
            id: format!("{issue_id}#comment-{number}"),
            url: Some(format!("file://{}#comment-{number}", path.display())),
        })
    }

    fn comments_containing(&self, issue_id: &str, text: &str) -> Result<Vec<Comment>, Error> {
        let file = self.file_of(issue_id)?;
        let path = comments_path(&file.path);
        let all = match std::fs::read_to_string(&path) {
            Ok(all) => all,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(Error::Io { path, source }),
        };
        Ok(split_comments(issue_id, &all)
            .into_iter()
            .filter(|comment| comment.body.contains(text))
            .collect())
    }

    fn add_label(&self, issue_id: &str, label_name: &str) -> Result<(), Error> {
        let metadata = self.team_metadata(TEAM_ID)?;
        let label = metadata.label(label_name)?;
        let _guard = self.writes.lock().unwrap_or_else(PoisonError::into_inner);
        let file = self.file_of(issue_id)?;
        let wanted = normalize_label(&label.name);
        if file
            .labels
            .iter()
            .any(|have| normalize_label(have) == wanted)
        {
            return Ok(());
        }
        let mut labels = file.labels.clone();
        labels.push(label.name.clone());
        let text = file.with_value("labels", &toml_string_list(&labels));
        let file = IssueFile::parse(&file.path, text)?;
        let text = file.with_value("updated", &toml_string(&crate::clock::now_rfc3339()));
        self.write(&file.path, &text)?;
        log::info!(
            "tracker label issue={issue_id} label=\"{}\" action=label",
            label.name
        );
        Ok(())
    }

    fn team_metadata(&self, team_id: &str) -> Result<Arc<TeamMetadata>, Error> {
        if team_id != TEAM_ID {
            return Err(Error::Malformed {
                operation: "team metadata",
                detail: format!("the local tracker has one team, `{TEAM_ID}`, not `{team_id}`"),
            });
        }
        let mut cached = self.metadata.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(metadata) = cached.as_ref() {
            return Ok(Arc::clone(metadata));
        }
        // Usable labels: the declared ones plus every label already on an issue, each under
        // the spelling first seen.
        let mut names: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        let files = self.read_files()?;
        let used = files.iter().flat_map(|file| file.labels.iter());
        for name in self.declared_labels.iter().chain(used) {
            if seen.insert(normalize_label(name)) {
                names.push(name.trim().to_string());
            }
        }
        let metadata = Arc::new(TeamMetadata {
            team: self.team_ref(),
            states: self.states.clone(),
            labels: names
                .into_iter()
                .map(|name| Label {
                    id: normalize_label(&name),
                    name,
                    workspace: false,
                })
                .collect(),
        });
        *cached = Some(Arc::clone(&metadata));
        Ok(metadata)
    }
}

/// Every issue's stamp, its version a digest of the whole normalized issue (so any edit, or a
/// blocker's move, is a new version). The digest only needs to be stable within one process.
fn stamps(issues: &[Issue]) -> Stamps {
    use std::hash::{Hash, Hasher};
    let stamps = issues
        .iter()
        .map(|issue| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            format!("{issue:?}").hash(&mut hasher);
            Stamp {
                id: issue.id.clone(),
                version: format!("{}#{:016x}", issue.updated_at, hasher.finish()),
            }
        })
        .collect();
    Stamps {
        stamps,
        server_ms: None,
    }
}

/// Opens every comment in a comments file; the number that follows counts them.
const COMMENT_MARKER: &str = "<!-- maestro comment";

/// The comments of a comments file, in order, each body without its header line. A header is
/// only ever written by `add_comment`, which also neutralizes `<!--` in agent text, so a body
/// cannot start a comment of its own.
fn split_comments(issue_id: &str, text: &str) -> Vec<Comment> {
    text.split(COMMENT_MARKER)
        .skip(1)
        .enumerate()
        .map(|(index, chunk)| {
            let body = chunk.split_once("-->").map_or("", |(_, body)| body);
            Comment {
                id: format!("{issue_id}#comment-{}", index + 1),
                body: body.trim().to_string(),
            }
        })
        .collect()
}
