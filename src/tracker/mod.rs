//! The tracker boundary: what Maestro needs from an issue tracker, as one object-safe trait
//! ([`Tracker`]) over normalized types ([`Issue`], [`Blocker`], [`ProjectScope`],
//! [`TeamMetadata`]) and one [`Error`] with stable categories.
//!
//! Two implementations: [`linear::Client`] (Linear's GraphQL API) and [`local::LocalTracker`]
//! (Markdown issue files, for demos and scripts). [`open`] picks one from the service config.
//! Besides the full reads a run needs, the trait offers the cheap ones the daemon's intake polls
//! with ([`Tracker::changed_since`], [`Tracker::stamps_in_states`], [`Tracker::summaries`]) and
//! what the tracker says each answer cost ([`Tracker::usage`]).
//! Only this module knows GraphQL, HTTP status codes or issue-file syntax; callers see plain
//! data. It deliberately decides nothing: eligibility lives in [`crate::selection`], and when
//! to transition, comment or label belongs to the run.

mod error;
pub mod linear;
pub mod local;
mod usage;

use std::sync::Arc;

use crate::config::{Provider, ServiceConfig};

pub use error::{Category, Error, RateLimit};
pub use usage::{Allowance, Budget, Usage};

/// What the rest of Maestro needs from an issue tracker.
///
/// Object safe, so a run holds a `Box<dyn Tracker>` and tests swap implementations. `Send +
/// Sync` because the agent's tool calls reach the tracker from other threads. Every method is a
/// complete answer or an error: a list never comes back partial.
pub trait Tracker: Send + Sync + std::fmt::Debug {
    /// Which tracker this is, for logs and reports: `"linear"` or `"local"`.
    fn provider(&self) -> Provider;

    /// The configured project: its id, name and teams. Resolved once, then cached for the run.
    fn project(&self) -> Result<ProjectScope, Error>;

    /// Every issue of the project whose workflow state name is one of `state_names`, across all
    /// pages, in the tracker's order (callers sort).
    fn issues_in_states(&self, state_names: &[String]) -> Result<Vec<Issue>, Error>;

    /// Fresh, complete snapshots of the issues with these ids. Ids that do not exist, are not
    /// visible, or belong to another project are absent from the answer, never an error.
    fn refresh(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error>;

    /// The stamps of the project's issues updated after `since_ms` (ms since the epoch, in the
    /// tracker's clock), in any state, archived ones included, across all pages. The stamps of
    /// issues that did not change may be included too (callers compare versions).
    fn changed_since(&self, since_ms: u64) -> Result<Stamps, Error>;

    /// The stamps of every issue of the project in one of these workflow states, all pages.
    fn stamps_in_states(&self, state_names: &[String]) -> Result<Stamps, Error>;

    /// Like [`Tracker::refresh`], but only what eligibility reads, priced for polling: the
    /// description may be empty; state, labels, blockers, priority, team and project are whole.
    fn summaries(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error>;

    /// What this tracker's answers said they cost, since it was opened, and the budget the
    /// latest answer reported. Zero for a tracker without a budget.
    fn usage(&self) -> Usage {
        Usage::default()
    }

    /// Moves an issue to the workflow state called `state_name` (trimmed, case-insensitive)
    /// and returns the state it is now in. An unknown name is [`Error::UnknownState`].
    fn transition(&self, issue_id: &str, state_name: &str) -> Result<IssueState, Error>;

    /// Posts a Markdown comment on an issue.
    fn add_comment(&self, issue_id: &str, body: &str) -> Result<CommentRef, Error>;

    /// The comments of an issue whose body contains `text` (compared exactly), oldest first,
    /// all pages. Maestro finds a comment of its own by its marker line this way before it
    /// posts it again (a closeout interrupted between posting and recording it), so the read
    /// asks only for the matching comments, not the whole thread.
    fn comments_containing(&self, issue_id: &str, text: &str) -> Result<Vec<Comment>, Error>;

    /// Adds the label called `label_name` (trimmed, case-insensitive), keeping the issue's
    /// other labels; adding a label the issue already has succeeds. An unknown name is
    /// [`Error::UnknownLabel`], so the caller can fall back to another marker.
    fn add_label(&self, issue_id: &str, label_name: &str) -> Result<(), Error>;

    /// The team's workflow states and the labels usable on its issues (team and workspace
    /// labels). Fetched once per team, then cached for the run.
    fn team_metadata(&self, team_id: &str) -> Result<Arc<TeamMetadata>, Error>;
}

/// The configured project as the tracker knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectScope {
    /// The tracker's id for the project (Linear: a UUID; local: the slug).
    pub id: String,
    pub name: String,
    /// The slug id issues are matched against (Linear's `slugId`).
    pub slug_id: String,
    pub url: Option<String>,
    pub teams: Vec<Team>,
}

/// A team the project belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: String,
    /// Short key that prefixes identifiers, like `ABC` in `ABC-12`.
    pub key: String,
    pub name: String,
}

/// An issue's team, as carried on the issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRef {
    pub id: String,
    pub key: String,
}

/// A workflow state as seen on an issue or blocker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    pub name: String,
    /// Linear's state type: `triage`, `backlog`, `unstarted`, `started`, `completed`,
    /// `canceled` or `duplicate`; local issues take theirs from the local team's states.
    pub kind: String,
}

/// One issue, normalized: the same shape whichever tracker it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The tracker's stable id (Linear: a UUID; local: the identifier).
    pub id: String,
    /// Human identifier such as `ABC-12`.
    pub identifier: String,
    pub title: String,
    /// Markdown; empty when the issue has none.
    pub description: String,
    /// `Some(1..=4)` (urgent, high, medium, low); `None` for no priority or an unknown value.
    pub priority: Option<u8>,
    pub state: IssueState,
    /// Trimmed, lowercased, deduplicated, sorted.
    pub labels: Vec<String>,
    /// Issues that block this one, in the tracker's order.
    pub blockers: Vec<Blocker>,
    pub url: Option<String>,
    /// The tracker's suggested git branch name, when it has one.
    pub branch_name: Option<String>,
    /// RFC 3339, as the tracker gave it.
    pub created_at: String,
    /// `created_at` in milliseconds since the epoch, for ordering.
    pub created_ms: u64,
    pub updated_at: String,
    pub team: TeamRef,
    /// The slug id of the project the issue belongs to; `None` when it has no project.
    pub project_slug: Option<String>,
}

impl Issue {
    /// Whether the issue carries `label` (compared trimmed and case-insensitively).
    pub fn has_label(&self, label: &str) -> bool {
        let wanted = normalize_label(label);
        self.labels.contains(&wanted)
    }

    /// Whether `identifier` names this issue (trimmed, case-insensitive: `abc-12` is `ABC-12`),
    /// as `run --once --issue` and the dry run take it.
    pub fn is_named(&self, identifier: &str) -> bool {
        self.identifier.eq_ignore_ascii_case(identifier.trim())
    }
}

/// An issue that blocks another (a `blocks` relation pointing at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub id: String,
    pub identifier: String,
    pub state: IssueState,
}

/// A workflow state of a team, with the id transitions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowState {
    pub id: String,
    pub name: String,
    pub kind: String,
}

/// A label usable on a team's issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub id: String,
    pub name: String,
    /// A workspace label (usable by every team) rather than one of this team's own.
    pub workspace: bool,
}

/// A team's workflow states and usable labels, fetched once per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMetadata {
    pub team: TeamRef,
    pub states: Vec<WorkflowState>,
    pub labels: Vec<Label>,
}

impl TeamMetadata {
    /// The state called `name` (trimmed, case-insensitive), or [`Error::UnknownState`] listing
    /// the team's states.
    pub fn state(&self, name: &str) -> Result<&WorkflowState, Error> {
        self.states
            .iter()
            .find(|state| crate::workflow::same_state(&state.name, name))
            .ok_or_else(|| Error::UnknownState {
                team: self.team.key.clone(),
                name: name.trim().to_string(),
                known: self.states.iter().map(|state| state.name.clone()).collect(),
            })
    }

    /// The label called `name` (trimmed, case-insensitive; a team label wins over a workspace
    /// label of the same name), or [`Error::UnknownLabel`] listing the usable labels.
    pub fn label(&self, name: &str) -> Result<&Label, Error> {
        let wanted = normalize_label(name);
        let matching = |label: &&Label| normalize_label(&label.name) == wanted;
        self.labels
            .iter()
            .filter(|label| !label.workspace)
            .find(matching)
            .or_else(|| self.labels.iter().find(matching))
            .ok_or_else(|| Error::UnknownLabel {
                team: self.team.key.clone(),
                name: name.trim().to_string(),
                known: self.labels.iter().map(|label| label.name.clone()).collect(),
            })
    }
}

/// Which version of an issue the tracker holds, without the issue itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub id: String,
    /// Changes whenever the issue does (Linear: `updatedAt`); compared, never parsed.
    pub version: String,
}

/// An answer of stamps, with the tracker's own clock when it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamps {
    pub stamps: Vec<Stamp>,
    /// The tracker's time at its first answer (Linear: the `Date` header), ms since the epoch;
    /// `None` when it did not say.
    pub server_ms: Option<u64>,
}

/// A comment the tracker accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRef {
    pub id: String,
    /// Where a person can read it (Linear: the comment URL; local: the comments file).
    pub url: Option<String>,
}

/// A comment on an issue, as [`Tracker::comments_containing`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: String,
    /// Markdown, as posted.
    pub body: String,
}

/// The one label form Maestro compares: trimmed and lowercased.
pub fn normalize_label(label: &str) -> String {
    label.trim().to_lowercase()
}

/// Normalizes a list of labels: trimmed, lowercased, empty ones dropped, deduplicated, sorted.
pub fn normalize_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut normalized: Vec<String> = labels
        .into_iter()
        .map(normalize_label)
        .filter(|label| !label.is_empty())
        .collect();
    normalized.sort();
    normalized.dedup();
    normalized
}

/// Opens the tracker the config names, for `project_slug`, reading secrets through `env`
/// (a function so tests need not touch the process environment).
pub fn open_with(
    config: &ServiceConfig,
    project_slug: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn Tracker>, Error> {
    match config.tracker.provider {
        Provider::Linear => {
            let var = config
                .tracker
                .api_key_env_var
                .clone()
                .unwrap_or_else(|| "LINEAR_API_KEY".to_string());
            let key = env(&var)
                .filter(|value| !value.trim().is_empty())
                .ok_or(Error::MissingSecret { var })?;
            let options = linear::Options::new(&config.tracker.api_url, linear::ApiKey::new(key));
            Ok(Box::new(linear::Client::new(options, project_slug)))
        }
        Provider::Local => {
            let dir = config
                .tracker
                .issues_dir
                .clone()
                .unwrap_or_else(|| config.repo_root.join("issues"));
            Ok(Box::new(local::LocalTracker::open(&dir, project_slug)?))
        }
    }
}

/// [`open_with`] on the process environment.
pub fn open(config: &ServiceConfig, project_slug: &str) -> Result<Box<dyn Tracker>, Error> {
    open_with(config, project_slug, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> TeamMetadata {
        TeamMetadata {
            team: TeamRef {
                id: "t".into(),
                key: "ABC".into(),
            },
            states: vec![WorkflowState {
                id: "s1".into(),
                name: "In Progress".into(),
                kind: "started".into(),
            }],
            labels: vec![
                Label {
                    id: "w".into(),
                    name: "Bug".into(),
                    workspace: true,
                },
                Label {
                    id: "t".into(),
                    name: "bug".into(),
                    workspace: false,
                },
            ],
        }
    }

    #[test]
    fn names_resolve_trimmed_and_case_insensitively() {
        let metadata = metadata();
        assert_eq!(metadata.state(" in progress ").unwrap().id, "s1");
        assert_eq!(metadata.label("BUG").unwrap().id, "t", "team label wins");
        let error = metadata.state("Doing").unwrap_err();
        assert_eq!(
            error.to_string(),
            "team ABC has no workflow state \"Doing\"; it has: In Progress"
        );
        assert!(matches!(
            metadata.label("x"),
            Err(Error::UnknownLabel { name, .. }) if name == "x"
        ));
    }

    #[test]
    fn labels_normalize() {
        assert_eq!(
            normalize_labels([" Bug", "bug", "", "Maestro:Manual-Only"]),
            vec!["bug", "maestro:manual-only"]
        );
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: Option<&dyn Tracker>) {}
        takes(None);
    }
}
