//! Linear's payloads as serde types, and their conversion into the tracker's plain types.
//!
//! These structs mirror the selections in `graphql/*.graphql` field for field and exist only
//! at this edge; nothing outside `linear/` sees them. Normalization rules (priority, labels,
//! blockers, timestamps) are the ones `docs/spec/tracker.md` promises.

use serde::Deserialize;

use crate::tracker::{
    Blocker, Issue, IssueState, Label, ProjectScope, Team, TeamRef, WorkflowState, normalize_labels,
};

/// A connection page: `nodes` plus, where selected, `pageInfo`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Connection<T> {
    #[serde(default)]
    pub page_info: Option<PageInfo>,
    pub nodes: Vec<T>,
}

impl<T> Connection<T> {
    /// A list known to be whole (read to its last page), so it no longer counts as truncated.
    pub fn complete(nodes: Vec<T>) -> Connection<T> {
        Connection {
            page_info: None,
            nodes,
        }
    }

    /// Whether the server holds more nodes than this page.
    pub fn truncated(&self) -> bool {
        self.page_info
            .as_ref()
            .is_some_and(|info| info.has_next_page)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PageInfo {
    pub has_next_page: bool,
    #[serde(default)]
    pub end_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProjectsData {
    pub projects: Connection<WireProject>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireProject {
    pub id: String,
    pub name: String,
    pub slug_id: String,
    #[serde(default)]
    pub url: Option<String>,
    pub teams: Connection<WireTeam>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireTeam {
    pub id: String,
    pub key: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct IssuesData {
    pub issues: Connection<WireIssue>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireIssue {
    pub id: String,
    pub identifier: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub branch_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub state: WireState,
    pub labels: Connection<WireName>,
    pub team: WireTeamRef,
    #[serde(default)]
    pub project: Option<WireProjectRef>,
    pub inverse_relations: Connection<WireRelation>,
}

/// `IssueChanges` and `ProjectIssueStamps`: one page of bare stamps.
#[derive(Debug, Deserialize)]
pub(super) struct StampsData {
    pub issues: Connection<WireStamp>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireStamp {
    pub id: String,
    pub updated_at: String,
}

/// `IssueSummariesByIds`: issues as eligibility reads them, labels by id.
#[derive(Debug, Deserialize)]
pub(super) struct SummariesData {
    pub issues: Connection<WireSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireSummary {
    pub id: String,
    pub identifier: String,
    pub title: String,
    #[serde(default)]
    pub priority: Option<f64>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub branch_name: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub label_ids: Vec<String>,
    pub state: WireState,
    pub team: WireTeamRef,
    #[serde(default)]
    pub project: Option<WireProjectRef>,
    pub inverse_relations: Connection<WireRelation>,
}

impl WireSummary {
    /// The summary as a listed issue whose labels are `labels` (already whole), so both go
    /// through one normalization. The description was not asked for and stays empty.
    pub fn into_issue(self, labels: Vec<WireName>) -> WireIssue {
        WireIssue {
            id: self.id,
            identifier: self.identifier,
            title: self.title,
            description: None,
            priority: self.priority,
            url: self.url,
            branch_name: self.branch_name,
            created_at: self.created_at,
            updated_at: self.updated_at,
            state: self.state,
            labels: Connection::complete(labels),
            team: self.team,
            project: self.project,
            inverse_relations: self.inverse_relations,
        }
    }
}

/// `IssueLabels`: the issue (absent when it vanished) with one page of its labels.
#[derive(Debug, Deserialize)]
pub(super) struct IssueLabelsData {
    pub issues: Connection<WireIssueLabels>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireIssueLabels {
    pub id: String,
    pub labels: Connection<WireName>,
}

/// `IssueInverseRelations`: the issue (absent when it vanished) with one page of its inverse
/// relations.
#[derive(Debug, Deserialize)]
pub(super) struct IssueRelationsData {
    pub issues: Connection<WireIssueRelations>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireIssueRelations {
    pub id: String,
    pub inverse_relations: Connection<WireRelation>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireState {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl From<WireState> for IssueState {
    fn from(state: WireState) -> Self {
        IssueState {
            name: state.name,
            kind: state.kind,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct WireName {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireTeamRef {
    pub id: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireProjectRef {
    pub slug_id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRelation {
    #[serde(rename = "type")]
    pub kind: String,
    pub issue: WireRelated,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireRelated {
    pub id: String,
    pub identifier: String,
    pub state: WireState,
}

#[derive(Debug, Deserialize)]
pub(super) struct TeamStatesData {
    pub team: Option<WireTeamStates>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireTeamStates {
    pub id: String,
    pub key: String,
    pub states: Connection<WireWorkflowState>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireWorkflowState {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LabelsData {
    pub issue_labels: Connection<WireLabel>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireLabel {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub is_group: bool,
    #[serde(default)]
    pub team: Option<WireId>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireId {
    #[allow(dead_code)] // Selected so the label's scope is explicit; only presence matters.
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IssueUpdateData {
    pub issue_update: MutationPayload<WireUpdatedIssue>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireUpdatedIssue {
    #[serde(default)]
    pub state: Option<WireState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CommentCreateData {
    pub comment_create: MutationPayload<WireComment>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireComment {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct IssueAddLabelData {
    pub issue_add_label: MutationPayload<serde::de::IgnoredAny>,
}

/// The `{ success, <entity> }` payload every mutation returns.
#[derive(Debug, Deserialize)]
pub(super) struct MutationPayload<T> {
    pub success: bool,
    // Missing and null both read as None (serde's rule for Option fields).
    #[serde(alias = "issue", alias = "comment")]
    pub entity: Option<T>,
}

impl WireProject {
    pub fn into_scope(self) -> ProjectScope {
        ProjectScope {
            id: self.id,
            name: self.name,
            slug_id: self.slug_id,
            url: self.url,
            teams: self
                .teams
                .nodes
                .into_iter()
                .map(|team| Team {
                    id: team.id,
                    key: team.key,
                    name: team.name,
                })
                .collect(),
        }
    }
}

/// Why a wire issue could not become an [`Issue`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Invalid {
    /// A field has a value the contract does not allow.
    Field(String),
    /// A nested list was cut off by its page size.
    Truncated(String),
}

impl WireIssue {
    /// Normalizes one issue. Truncated label or relation lists are refused rather than used:
    /// eligibility checked against half the labels could pick an opted-out issue. The client
    /// completes them first (`Client::complete`), so this refusal is a guard, not a path.
    pub fn normalize(self) -> Result<Issue, Invalid> {
        if self.labels.truncated() {
            return Err(Invalid::Truncated(format!(
                "issue {} has more labels than one page holds",
                self.identifier
            )));
        }
        if self.inverse_relations.truncated() {
            return Err(Invalid::Truncated(format!(
                "issue {} has more relations than one page holds",
                self.identifier
            )));
        }
        let Some(created_ms) = crate::clock::parse_rfc3339(&self.created_at) else {
            return Err(Invalid::Field(format!(
                "issue {} has createdAt `{}`, not an RFC 3339 timestamp",
                self.identifier, self.created_at
            )));
        };
        let labels = normalize_labels(self.labels.nodes.iter().map(|label| label.name.as_str()));
        let blockers = self
            .inverse_relations
            .nodes
            .into_iter()
            .filter(|relation| relation.kind == "blocks")
            .map(|relation| Blocker {
                id: relation.issue.id,
                identifier: relation.issue.identifier,
                state: relation.issue.state.into(),
            })
            .collect();
        Ok(Issue {
            id: self.id,
            identifier: self.identifier,
            title: self.title,
            description: self.description.unwrap_or_default(),
            priority: priority(self.priority),
            state: self.state.into(),
            labels,
            blockers,
            url: self.url,
            branch_name: self.branch_name.filter(|name| !name.trim().is_empty()),
            created_at: self.created_at,
            created_ms,
            updated_at: self.updated_at,
            team: TeamRef {
                id: self.team.id,
                key: self.team.key,
            },
            project_slug: self.project.map(|project| project.slug_id),
        })
    }
}

/// Linear priorities are 0 (none), 1 urgent … 4 low, sent as a float; anything else is
/// treated as none so it sorts last rather than first.
pub(super) fn priority(value: Option<f64>) -> Option<u8> {
    let value = value?;
    [1u8, 2, 3, 4]
        .into_iter()
        .find(|level| (value - f64::from(*level)).abs() < f64::EPSILON)
}

impl From<WireWorkflowState> for WorkflowState {
    fn from(state: WireWorkflowState) -> Self {
        WorkflowState {
            id: state.id,
            name: state.name,
            kind: state.kind,
        }
    }
}

impl From<WireLabel> for Label {
    fn from(label: WireLabel) -> Self {
        Label {
            id: label.id,
            name: label.name,
            workspace: label.team.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(extra: serde_json::Value) -> WireIssue {
        let mut value = serde_json::json!({
            "id": "uuid-1",
            "identifier": "ABC-1",
            "title": "Fix",
            "description": null,
            "priority": 2.0,
            "url": "https://linear.app/x/issue/ABC-1",
            "branchName": "abc-1-fix",
            "createdAt": "2026-01-02T03:04:05.000Z",
            "updatedAt": "2026-01-03T03:04:05.000Z",
            "state": {"name": "Todo", "type": "unstarted"},
            "labels": {"pageInfo": {"hasNextPage": false}, "nodes": [{"name": " Bug "}, {"name": "bug"}, {"name": "Maestro:Manual-Only"}]},
            "team": {"id": "team-1", "key": "ABC"},
            "project": {"slugId": "p1"},
            "inverseRelations": {"pageInfo": {"hasNextPage": false}, "nodes": [
                {"type": "blocks", "issue": {"id": "uuid-2", "identifier": "ABC-2", "state": {"name": "In Progress", "type": "started"}}},
                {"type": "related", "issue": {"id": "uuid-3", "identifier": "ABC-3", "state": {"name": "Todo", "type": "unstarted"}}}
            ]}
        });
        if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            for (key, field) in extra {
                target.insert(key.clone(), field.clone());
            }
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn normalizes_an_issue() {
        let issue = issue(serde_json::json!({})).normalize().unwrap();
        assert_eq!(issue.description, "");
        assert_eq!(issue.priority, Some(2));
        assert_eq!(issue.labels, vec!["bug", "maestro:manual-only"]);
        assert_eq!(issue.blockers.len(), 1);
        assert_eq!(issue.blockers[0].identifier, "ABC-2");
        assert_eq!(issue.blockers[0].state.name, "In Progress");
        assert_eq!(issue.created_ms, 1_767_323_045_000);
        assert_eq!(issue.project_slug.as_deref(), Some("p1"));
        assert_eq!(issue.team.key, "ABC");
    }

    #[test]
    fn priorities() {
        assert_eq!(priority(Some(0.0)), None);
        assert_eq!(priority(Some(4.0)), Some(4));
        assert_eq!(priority(Some(2.5)), None);
        assert_eq!(priority(Some(7.0)), None);
        assert_eq!(priority(None), None);
    }

    #[test]
    fn truncated_lists_and_bad_dates_are_refused() {
        let truncated = issue(serde_json::json!({
            "labels": {"pageInfo": {"hasNextPage": true}, "nodes": []}
        }));
        assert!(matches!(truncated.normalize(), Err(Invalid::Truncated(_))));
        let bad_date = issue(serde_json::json!({"createdAt": "yesterday"}));
        assert!(matches!(bad_date.normalize(), Err(Invalid::Field(_))));
    }
}
