//! The Linear adapter: [`Client`] implements [`Tracker`] over Linear's GraphQL API.
//!
//! Operations are `.graphql` files next to this module, compiled in with `include_str!` and
//! validated against Linear's published schema by `.ci/run`. This file sequences them
//! (pagination, name-to-id resolution, per-run caches); `poll.rs` holds the cheap reads the
//! daemon polls with; `http.rs` owns one call, its retries and the cost headers; `wire.rs`
//! owns the payload types. It holds no state beyond one run's caches and what the answers said
//! they cost, and writes nothing to disk.

mod comments;
mod http;
mod poll;
mod viewer;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

pub use http::ApiKey;
pub use viewer::Viewer;

use self::http::Transport;
use self::wire::{Connection, Invalid, WireIssue, WireName, WireRelation};
use crate::config::Provider;
use crate::tracker::{
    Comment, CommentRef, Error, Issue, IssueState, Label, ProjectScope, Stamps, TeamMetadata,
    TeamRef, Tracker, Usage, WorkflowState,
};
use crate::workflow::same_state;

/// The operations, by the name sent as `operationName`.
mod documents {
    pub const PROJECT_BY_SLUG_ID: &str = include_str!("graphql/project_by_slug_id.graphql");
    pub const PROJECT_ISSUES_BY_STATE_NAMES: &str =
        include_str!("graphql/project_issues_by_state_names.graphql");
    pub const ISSUES_BY_IDS: &str = include_str!("graphql/issues_by_ids.graphql");
    pub const ISSUE_LABELS: &str = include_str!("graphql/issue_labels.graphql");
    pub const ISSUE_INVERSE_RELATIONS: &str =
        include_str!("graphql/issue_inverse_relations.graphql");
    pub const TEAM_WORKFLOW_STATES: &str = include_str!("graphql/team_workflow_states.graphql");
    pub const LABELS_USABLE_BY_TEAM: &str = include_str!("graphql/labels_usable_by_team.graphql");
    pub const ISSUE_SET_STATE: &str = include_str!("graphql/issue_set_state.graphql");
    pub const COMMENT_CREATE: &str = include_str!("graphql/comment_create.graphql");
    pub const ISSUE_ADD_LABEL: &str = include_str!("graphql/issue_add_label.graphql");
    pub const ISSUE_CHANGES: &str = include_str!("graphql/issue_changes.graphql");
    pub const PROJECT_ISSUE_STAMPS: &str = include_str!("graphql/project_issue_stamps.graphql");
    pub const ISSUE_SUMMARIES_BY_IDS: &str = include_str!("graphql/issue_summaries_by_ids.graphql");
    pub const ISSUE_COMMENTS: &str = include_str!("graphql/issue_comments.graphql");
}

/// Linear's largest page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Issues per page by default. Each issue selects its first 20 labels and 20 relations, which
/// Linear's complexity model (0.1 per property, 1 per object, nested pages multiplied by their
/// size; 10,000 points at most per query) prices at about 145 points, so a page of 25 costs
/// about 3,600 points of the hourly budget.
pub const DEFAULT_PAGE_SIZE: u32 = 25;

/// The most issues one listing or refresh page may ask for: 50 issues cost about 7,200 points,
/// safely under Linear's 10,000-point ceiling for one query (`tracker_linear` checks every
/// document at its largest variables).
pub const MAX_ISSUE_PAGE_SIZE: u32 = 50;

/// A ceiling on pages per listing, so a server that never stops paging cannot loop us forever.
const MAX_PAGES: usize = 10_000;

/// How a [`Client`] talks to Linear.
#[derive(Debug, Clone)]
pub struct Options {
    /// The GraphQL endpoint (`[tracker] api_url`).
    pub api_url: String,
    pub api_key: ApiKey,
    /// The whole budget of one call, retries and waits included.
    pub call_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts per call (first try included) for rate limits and 5xx answers.
    pub max_attempts: u32,
    /// First backoff when the server gives no reset time; doubles per retry (capped at 8 s).
    pub retry_base: Duration,
    /// Issues per page, clamped to 1..=[`MAX_ISSUE_PAGE_SIZE`].
    pub page_size: u32,
}

impl Options {
    /// Defaults: 30 s per call, 10 s to connect, 4 attempts, 500 ms first backoff, 25 per page.
    pub fn new(api_url: &str, api_key: ApiKey) -> Options {
        Options {
            api_url: api_url.to_string(),
            api_key,
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_attempts: 4,
            retry_base: Duration::from_millis(500),
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// A team and its workflow states, as fetched.
#[derive(Debug)]
struct TeamStates {
    team: TeamRef,
    states: Vec<WorkflowState>,
}

/// A Linear tracker for one project, with caches that live as long as the run.
#[derive(Debug)]
pub struct Client {
    transport: Transport,
    /// The slug id sent to Linear (the last `-` segment of the configured slug).
    slug_id: String,
    page_size: u32,
    project: Mutex<Option<ProjectScope>>,
    teams: Mutex<HashMap<String, Arc<TeamMetadata>>>,
    /// Team id → its workflow states, fetched once (listings need them before any label).
    team_states: Mutex<HashMap<String, Arc<TeamStates>>>,
    /// Issue id → team, learned from listings and refreshes, so mutations need no extra read.
    issue_teams: Mutex<HashMap<String, TeamRef>>,
}

impl Client {
    /// A client for the project `project_slug`: either the bare slug id or the URL's
    /// `<name>-<slugId>` form.
    pub fn new(options: Options, project_slug: &str) -> Client {
        Client {
            transport: Transport::new(&options),
            slug_id: slug_id(project_slug).to_string(),
            page_size: options.page_size.clamp(1, MAX_ISSUE_PAGE_SIZE),
            project: Mutex::new(None),
            teams: Mutex::new(HashMap::new()),
            team_states: Mutex::new(HashMap::new()),
            issue_teams: Mutex::new(HashMap::new()),
        }
    }

    /// The slug id this client filters on.
    pub fn slug_id(&self) -> &str {
        &self.slug_id
    }

    /// Normalizes a page of issues, completing cut-off label and relation lists first and
    /// remembering each issue's team for later mutations.
    fn normalize(
        &self,
        operation: &'static str,
        nodes: Vec<WireIssue>,
        out: &mut Vec<Issue>,
    ) -> Result<(), Error> {
        for node in nodes {
            let identifier = node.identifier.clone();
            let Some(node) = self.complete(node)? else {
                // Deleted (or moved out of sight) between the page and the follow-up read: it
                // is no longer an issue of the project, as a fresh listing would show.
                log::warn!(
                    "tracker issue vanished while its labels or relations were read issue={identifier} operation={operation}"
                );
                continue;
            };
            let issue = node.normalize().map_err(|invalid| match invalid {
                Invalid::Field(detail) => Error::Malformed { operation, detail },
                Invalid::Truncated(detail) => Error::Pagination { operation, detail },
            })?;
            lock(&self.issue_teams).insert(issue.id.clone(), issue.team.clone());
            out.push(issue);
        }
        Ok(())
    }

    /// Reads the whole label or relation list of an issue whose page held only the first
    /// ones. Without this, one issue with many labels (the agent can add them) failed every
    /// listing and stopped dispatch for the whole project; judging it on part of its labels
    /// instead could miss its opt-out label. `None` when the issue vanished meanwhile.
    fn complete(&self, mut node: WireIssue) -> Result<Option<WireIssue>, Error> {
        if node.labels.truncated() {
            let Some(labels) = self.rest_of_labels(&node.id)? else {
                return Ok(None);
            };
            node.labels = Connection::complete(labels);
        }
        if node.inverse_relations.truncated() {
            let Some(relations) = self.rest_of_relations(&node.id)? else {
                return Ok(None);
            };
            node.inverse_relations = Connection::complete(relations);
        }
        Ok(Some(node))
    }

    fn rest_of_labels(&self, issue_id: &str) -> Result<Option<Vec<WireName>>, Error> {
        self.per_issue_pages(
            "IssueLabels",
            documents::ISSUE_LABELS,
            issue_id,
            |data: wire::IssueLabelsData| {
                data.issues
                    .nodes
                    .into_iter()
                    .find(|issue| issue.id == issue_id)
                    .map(|issue| issue.labels)
            },
        )
    }

    fn rest_of_relations(&self, issue_id: &str) -> Result<Option<Vec<WireRelation>>, Error> {
        self.per_issue_pages(
            "IssueInverseRelations",
            documents::ISSUE_INVERSE_RELATIONS,
            issue_id,
            |data: wire::IssueRelationsData| {
                data.issues
                    .nodes
                    .into_iter()
                    .find(|issue| issue.id == issue_id)
                    .map(|issue| issue.inverse_relations)
            },
        )
    }

    /// Every page of one issue's nested list, 100 at a time, through the pager's checks. It
    /// starts again from the first item rather than from the listing's cursor: that cursor
    /// belongs to another query, and one extra small page is cheaper than relying on it.
    fn per_issue_pages<D, T>(
        &self,
        operation: &'static str,
        document: &str,
        issue_id: &str,
        list_of: impl Fn(D) -> Option<Connection<T>>,
    ) -> Result<Option<Vec<T>>, Error>
    where
        D: serde::de::DeserializeOwned,
    {
        let mut items = Vec::new();
        let mut pages = Pager::new(operation);
        while let Some(after) = pages.next_cursor() {
            let data: D = self.transport.call(
                operation,
                document,
                &json!({"issueId": issue_id, "first": MAX_PAGE_SIZE, "after": after}),
            )?;
            let Some(page) = list_of(data) else {
                return Ok(None);
            };
            pages.advance(&page)?;
            items.extend(page.nodes);
        }
        log::debug!(
            "tracker nested list completed operation={operation} issue={issue_id} items={} pages={}",
            items.len(),
            pages.count
        );
        Ok(Some(items))
    }

    /// The team of an issue: from the cache, else from a refresh (which also proves the issue
    /// is a visible issue of the project).
    fn team_of(&self, issue_id: &str) -> Result<TeamRef, Error> {
        if let Some(team) = lock(&self.issue_teams).get(issue_id) {
            return Ok(team.clone());
        }
        let refreshed = self.refresh(&[issue_id.to_string()])?;
        refreshed
            .into_iter()
            .find(|issue| issue.id == issue_id)
            .map(|issue| issue.team)
            .ok_or_else(|| Error::IssueNotFound {
                id: issue_id.to_string(),
            })
    }

    /// A team's workflow states, cached for the run.
    fn states_of(&self, team_id: &str) -> Result<Arc<TeamStates>, Error> {
        if let Some(states) = lock(&self.team_states).get(team_id) {
            return Ok(Arc::clone(states));
        }
        let states = Arc::new(self.fetch_states(team_id)?);
        lock(&self.team_states).insert(team_id.to_string(), Arc::clone(&states));
        Ok(states)
    }

    /// The teams' own spellings of `state_names`. Linear's `in` filter compares exactly, while
    /// WORKFLOW.md names compare case-insensitively; without this, `todo` would silently list
    /// nothing. A name no team of the project has is logged and left out.
    fn exact_state_names(
        &self,
        scope: &ProjectScope,
        state_names: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut exact: Vec<String> = Vec::new();
        let mut found = vec![false; state_names.len()];
        for team in &scope.teams {
            let states = self.states_of(&team.id)?;
            for (index, wanted) in state_names.iter().enumerate() {
                for state in states
                    .states
                    .iter()
                    .filter(|state| same_state(&state.name, wanted))
                {
                    found[index] = true;
                    if !exact.contains(&state.name) {
                        exact.push(state.name.clone());
                    }
                }
            }
        }
        for (wanted, found) in state_names.iter().zip(found) {
            if !found {
                log::warn!(
                    "tracker state unknown state=\"{wanted}\" project={} teams={}",
                    scope.slug_id,
                    scope
                        .teams
                        .iter()
                        .map(|team| team.key.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        Ok(exact)
    }

    fn fetch_states(&self, team_id: &str) -> Result<TeamStates, Error> {
        const OPERATION: &str = "TeamWorkflowStates";
        let mut team = None;
        let mut states = Vec::new();
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let data: wire::TeamStatesData = self.transport.call(
                OPERATION,
                documents::TEAM_WORKFLOW_STATES,
                &json!({"teamId": team_id, "first": MAX_PAGE_SIZE, "after": after}),
            )?;
            let Some(found) = data.team else {
                return Err(Error::Malformed {
                    operation: OPERATION,
                    detail: format!("team {team_id} is missing from the answer"),
                });
            };
            team = Some(TeamRef {
                id: found.id,
                key: found.key,
            });
            pages.advance(&found.states)?;
            states.extend(found.states.nodes.into_iter().map(WorkflowState::from));
        }
        let team = team.ok_or_else(|| Error::Malformed {
            operation: OPERATION,
            detail: format!("team {team_id} is missing from the answer"),
        })?;
        Ok(TeamStates { team, states })
    }

    fn fetch_labels(&self, team_id: &str) -> Result<Vec<Label>, Error> {
        const OPERATION: &str = "LabelsUsableByTeam";
        let mut labels = Vec::new();
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let data: wire::LabelsData = self.transport.call(
                OPERATION,
                documents::LABELS_USABLE_BY_TEAM,
                &json!({"teamId": team_id, "first": MAX_PAGE_SIZE, "after": after}),
            )?;
            pages.advance(&data.issue_labels)?;
            // Group labels only organize other labels; Linear refuses them on issues.
            labels.extend(
                data.issue_labels
                    .nodes
                    .into_iter()
                    .filter(|label| !label.is_group)
                    .map(Label::from),
            );
        }
        Ok(labels)
    }
}

impl Tracker for Client {
    fn provider(&self) -> Provider {
        Provider::Linear
    }

    fn project(&self) -> Result<ProjectScope, Error> {
        const OPERATION: &str = "ProjectBySlugId";
        if let Some(scope) = lock(&self.project).as_ref() {
            return Ok(scope.clone());
        }
        let data: wire::ProjectsData = self.transport.call(
            OPERATION,
            documents::PROJECT_BY_SLUG_ID,
            &json!({"slugId": self.slug_id}),
        )?;
        let Some(project) = data.projects.nodes.into_iter().next() else {
            return Err(Error::ProjectNotFound {
                slug: self.slug_id.clone(),
            });
        };
        if project.teams.truncated() {
            return Err(Error::Pagination {
                operation: OPERATION,
                detail: format!(
                    "project {} has more teams than one page holds",
                    project.name
                ),
            });
        }
        let scope = project.into_scope();
        *lock(&self.project) = Some(scope.clone());
        Ok(scope)
    }

    fn issues_in_states(&self, state_names: &[String]) -> Result<Vec<Issue>, Error> {
        const OPERATION: &str = "ProjectIssuesByStateNames";
        // Resolving the project first turns a wrong slug into an error instead of an empty
        // list that looks like "nothing to do".
        let scope = self.project()?;
        let mut issues = Vec::new();
        let state_names = self.exact_state_names(&scope, state_names)?;
        if state_names.is_empty() {
            return Ok(issues);
        }
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let data: wire::IssuesData = self.transport.call(
                OPERATION,
                documents::PROJECT_ISSUES_BY_STATE_NAMES,
                &json!({
                    "slugId": scope.slug_id,
                    "stateNames": state_names,
                    "first": self.page_size,
                    "after": after,
                }),
            )?;
            pages.advance(&data.issues)?;
            self.normalize(OPERATION, data.issues.nodes, &mut issues)?;
        }
        log::debug!(
            "tracker listing done operation={OPERATION} issues={} pages={}",
            issues.len(),
            pages.count
        );
        Ok(issues)
    }

    fn refresh(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error> {
        const OPERATION: &str = "IssuesByIds";
        let scope = self.project()?;
        let mut wanted: Vec<&String> = Vec::with_capacity(issue_ids.len());
        let mut seen = HashSet::new();
        for id in issue_ids {
            if seen.insert(id.as_str()) {
                wanted.push(id);
            }
        }
        let mut issues = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(self.page_size as usize) {
            let data: wire::IssuesData = self.transport.call(
                OPERATION,
                documents::ISSUES_BY_IDS,
                &json!({"ids": chunk, "first": chunk.len()}),
            )?;
            self.normalize(OPERATION, data.issues.nodes, &mut issues)?;
        }
        // An issue of another project is not ours to act on: treat it as invisible.
        issues.retain(|issue| issue.project_slug.as_deref() == Some(scope.slug_id.as_str()));
        Ok(issues)
    }

    fn changed_since(&self, since_ms: u64) -> Result<Stamps, Error> {
        self.changes(since_ms)
    }

    fn stamps_in_states(&self, state_names: &[String]) -> Result<Stamps, Error> {
        self.stamps(state_names)
    }

    fn summaries(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error> {
        self.summaries_of(issue_ids)
    }

    fn usage(&self) -> Usage {
        self.transport.usage()
    }

    fn transition(&self, issue_id: &str, state_name: &str) -> Result<IssueState, Error> {
        const OPERATION: &str = "IssueSetState";
        let team = self.team_of(issue_id)?;
        let metadata = self.team_metadata(&team.id)?;
        let state = metadata.state(state_name)?;
        let data: wire::IssueUpdateData = self.transport.call(
            OPERATION,
            documents::ISSUE_SET_STATE,
            &json!({"issueId": issue_id, "stateId": state.id}),
        )?;
        if !data.issue_update.success {
            return Err(refused(OPERATION));
        }
        log::info!(
            "tracker transition issue={issue_id} state=\"{}\" action=transition",
            state.name
        );
        Ok(data
            .issue_update
            .entity
            .and_then(|issue| issue.state)
            .map(IssueState::from)
            .unwrap_or_else(|| IssueState {
                name: state.name.clone(),
                kind: state.kind.clone(),
            }))
    }

    fn add_comment(&self, issue_id: &str, body: &str) -> Result<CommentRef, Error> {
        const OPERATION: &str = "CommentCreate";
        let data: wire::CommentCreateData = self.transport.call(
            OPERATION,
            documents::COMMENT_CREATE,
            &json!({"issueId": issue_id, "body": body}),
        )?;
        let payload = data.comment_create;
        match (payload.success, payload.entity) {
            (true, Some(comment)) => {
                log::info!("tracker comment issue={issue_id} action=comment");
                Ok(CommentRef {
                    id: comment.id,
                    url: comment.url,
                })
            }
            (true, None) => Err(Error::Malformed {
                operation: OPERATION,
                detail: "success without a comment".into(),
            }),
            (false, _) => Err(refused(OPERATION)),
        }
    }

    fn comments_containing(&self, issue_id: &str, text: &str) -> Result<Vec<Comment>, Error> {
        self.comments_matching(issue_id, text)
    }

    fn add_label(&self, issue_id: &str, label_name: &str) -> Result<(), Error> {
        const OPERATION: &str = "IssueAddLabel";
        let team = self.team_of(issue_id)?;
        let metadata = self.team_metadata(&team.id)?;
        let label = metadata.label(label_name)?;
        let data: wire::IssueAddLabelData = self.transport.call(
            OPERATION,
            documents::ISSUE_ADD_LABEL,
            &json!({"issueId": issue_id, "labelId": label.id}),
        )?;
        if !data.issue_add_label.success {
            return Err(refused(OPERATION));
        }
        log::info!(
            "tracker label issue={issue_id} label=\"{}\" action=label",
            label.name
        );
        Ok(())
    }

    fn team_metadata(&self, team_id: &str) -> Result<Arc<TeamMetadata>, Error> {
        if let Some(metadata) = lock(&self.teams).get(team_id) {
            return Ok(Arc::clone(metadata));
        }
        let states = self.states_of(team_id)?;
        let labels = self.fetch_labels(team_id)?;
        let metadata = Arc::new(TeamMetadata {
            team: states.team.clone(),
            states: states.states.clone(),
            labels,
        });
        lock(&self.teams).insert(team_id.to_string(), Arc::clone(&metadata));
        Ok(metadata)
    }
}

/// Cursor bookkeeping for one paginated read: stops on `hasNextPage = false` and refuses a
/// missing or repeated cursor, so a broken server yields an error, never a silently short list.
struct Pager {
    operation: &'static str,
    after: Option<Option<String>>,
    seen: HashSet<String>,
    count: usize,
}

impl Pager {
    fn new(operation: &'static str) -> Pager {
        Pager {
            operation,
            after: Some(None),
            seen: HashSet::new(),
            count: 0,
        }
    }

    /// `Some(cursor)` while there is a page to fetch (`Some(None)` for the first).
    fn next_cursor(&mut self) -> Option<Option<String>> {
        self.after.take()
    }

    fn advance<T>(&mut self, page: &Connection<T>) -> Result<(), Error> {
        self.count += 1;
        let Some(info) = &page.page_info else {
            return Err(self.error("the answer has no pageInfo".into()));
        };
        if !info.has_next_page {
            return Ok(());
        }
        let Some(cursor) = info.end_cursor.clone().filter(|cursor| !cursor.is_empty()) else {
            return Err(self.error(format!(
                "page {} says hasNextPage but gives no endCursor",
                self.count
            )));
        };
        if !self.seen.insert(cursor.clone()) {
            return Err(self.error(format!("page {} repeats the cursor `{cursor}`", self.count)));
        }
        if self.count >= MAX_PAGES {
            return Err(self.error(format!("more than {MAX_PAGES} pages")));
        }
        self.after = Some(Some(cursor));
        Ok(())
    }

    fn error(&self, detail: String) -> Error {
        Error::Pagination {
            operation: self.operation,
            detail,
        }
    }
}

fn refused(operation: &'static str) -> Error {
    Error::GraphQl {
        operation,
        messages: vec!["the mutation returned success = false".into()],
    }
}

/// The slug id inside a configured slug: Linear URLs read `.../project/<name>-<slugId>`, and
/// slug ids contain no `-`, so the last segment is the id whichever form was pasted.
pub fn slug_id(project_slug: &str) -> &str {
    let slug = project_slug.trim();
    slug.rsplit('-').next().unwrap_or(slug)
}

/// Caches hold plain data, so a panic elsewhere cannot leave them half-updated; carry on.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_ids_from_either_form() {
        assert_eq!(slug_id("8f2c1a9b3d4e"), "8f2c1a9b3d4e");
        assert_eq!(slug_id("my-app-8f2c1a9b3d4e"), "8f2c1a9b3d4e");
        assert_eq!(slug_id(" demo "), "demo");
    }

    #[test]
    fn documents_name_their_operation() {
        for (name, document) in [
            ("ProjectBySlugId", documents::PROJECT_BY_SLUG_ID),
            (
                "ProjectIssuesByStateNames",
                documents::PROJECT_ISSUES_BY_STATE_NAMES,
            ),
            ("IssuesByIds", documents::ISSUES_BY_IDS),
            ("IssueLabels", documents::ISSUE_LABELS),
            ("IssueInverseRelations", documents::ISSUE_INVERSE_RELATIONS),
            ("TeamWorkflowStates", documents::TEAM_WORKFLOW_STATES),
            ("LabelsUsableByTeam", documents::LABELS_USABLE_BY_TEAM),
            ("IssueSetState", documents::ISSUE_SET_STATE),
            ("CommentCreate", documents::COMMENT_CREATE),
            ("IssueAddLabel", documents::ISSUE_ADD_LABEL),
            ("IssueChanges", documents::ISSUE_CHANGES),
            ("ProjectIssueStamps", documents::PROJECT_ISSUE_STAMPS),
            ("IssueSummariesByIds", documents::ISSUE_SUMMARIES_BY_IDS),
            ("IssueComments", documents::ISSUE_COMMENTS),
        ] {
            assert!(
                document.contains(&format!("query {name}("))
                    || document.contains(&format!("mutation {name}(")),
                "{name}"
            );
        }
    }
}
