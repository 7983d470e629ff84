//! The cheap reads the daemon's intake polls with: which issues changed since a time, the
//! stamps of every issue in the active states, and issue summaries by id.
//!
//! Linear prices a query by what it could return, page sizes multiplied, not by what it did
//! return. So the questions asked every poll select bare stamps (`id`, `updatedAt`), and only
//! the few issues whose stamp moved are read, by [`Client::summaries_of`], which selects
//! what eligibility needs and nothing else: labels come as `labelIds` (one property however
//! many) and are named through the team's label list the client already caches for mutations.
//! This file only sequences those operations; deciding what to ask, and when, is the intake's.

use std::collections::HashSet;

use serde_json::json;

use super::wire::{self, WireName, WireSummary};
use super::{Client, MAX_PAGE_SIZE, Pager, documents, lock};
use crate::tracker::{Error, Issue, Stamp, Stamps, TeamMetadata, Tracker};

/// Stamps per page of `IssueChanges`. Few issues change between two polls; 50 keeps the
/// every-poll question at about 120 points while one page still holds a busy minute.
pub const CHANGES_PAGE_SIZE: u32 = 50;

/// Summaries per `IssueSummariesByIds` request: about 29 points each, 2,941 for a full page.
pub const SUMMARY_PAGE_SIZE: usize = MAX_PAGE_SIZE as usize;

impl Client {
    /// Stamps of the project's issues updated after `since_ms`, archived ones included.
    pub(super) fn changes(&self, since_ms: u64) -> Result<Stamps, Error> {
        const OPERATION: &str = "IssueChanges";
        let scope = self.project()?;
        let since = crate::clock::format_ms(since_ms);
        let mut stamps = Stamps::default();
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let (data, meta): (wire::StampsData, _) = self.transport.call_meta(
                OPERATION,
                documents::ISSUE_CHANGES,
                &json!({
                    "slugId": scope.slug_id,
                    "since": since,
                    "first": CHANGES_PAGE_SIZE,
                    "after": after,
                }),
            )?;
            if pages.count == 0 {
                stamps.server_ms = meta.server_ms;
            }
            pages.advance(&data.issues)?;
            stamps
                .stamps
                .extend(data.issues.nodes.into_iter().map(stamp));
        }
        log::debug!(
            "tracker changes read operation={OPERATION} since={since} issues={} pages={}",
            stamps.stamps.len(),
            pages.count
        );
        Ok(stamps)
    }

    /// Stamps of every project issue in one of `state_names` (resolved as the teams spell them).
    pub(super) fn stamps(&self, state_names: &[String]) -> Result<Stamps, Error> {
        const OPERATION: &str = "ProjectIssueStamps";
        let scope = self.project()?;
        let state_names = self.exact_state_names(&scope, state_names)?;
        let mut stamps = Stamps::default();
        if state_names.is_empty() {
            return Ok(stamps);
        }
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let (data, meta): (wire::StampsData, _) = self.transport.call_meta(
                OPERATION,
                documents::PROJECT_ISSUE_STAMPS,
                &json!({
                    "slugId": scope.slug_id,
                    "stateNames": state_names,
                    "first": MAX_PAGE_SIZE,
                    "after": after,
                }),
            )?;
            if pages.count == 0 {
                stamps.server_ms = meta.server_ms;
            }
            pages.advance(&data.issues)?;
            stamps
                .stamps
                .extend(data.issues.nodes.into_iter().map(stamp));
        }
        Ok(stamps)
    }

    /// Summaries of visible project issues with these ids, labels named and every list whole.
    pub(super) fn summaries_of(&self, issue_ids: &[String]) -> Result<Vec<Issue>, Error> {
        const OPERATION: &str = "IssueSummariesByIds";
        let scope = self.project()?;
        let mut seen = HashSet::new();
        let wanted: Vec<&String> = issue_ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .collect();
        let mut issues = Vec::with_capacity(wanted.len());
        // Teams whose label list was read again during this call: once is enough to learn
        // labels created since it was cached.
        let mut reread = HashSet::new();
        for chunk in wanted.chunks(SUMMARY_PAGE_SIZE) {
            let data: wire::SummariesData = self.transport.call(
                OPERATION,
                documents::ISSUE_SUMMARIES_BY_IDS,
                &json!({"ids": chunk, "first": chunk.len()}),
            )?;
            let mut nodes = Vec::with_capacity(data.issues.nodes.len());
            for summary in data.issues.nodes {
                let identifier = summary.identifier.clone();
                match self.label_names(&summary, &mut reread)? {
                    Some(labels) => nodes.push(summary.into_issue(labels)),
                    None => log::warn!(
                        "tracker issue vanished while its labels were read issue={identifier} operation={OPERATION}"
                    ),
                }
            }
            self.normalize(OPERATION, nodes, &mut issues)?;
        }
        issues.retain(|issue| issue.project_slug.as_deref() == Some(scope.slug_id.as_str()));
        Ok(issues)
    }

    /// The names of a summary's labels, from its team's cached label list. A label id the list
    /// does not hold (created since it was read) reads the team's list again, once per call;
    /// one still unknown (another team's label) reads that issue's labels by name. `None`
    /// when the issue vanished meanwhile.
    fn label_names(
        &self,
        summary: &WireSummary,
        reread: &mut HashSet<String>,
    ) -> Result<Option<Vec<WireName>>, Error> {
        if summary.label_ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let team_id = &summary.team.id;
        let mut metadata = self.team_metadata(team_id)?;
        if !knows_all(&metadata, &summary.label_ids) && reread.insert(team_id.clone()) {
            log::debug!(
                "tracker label list read again team={} issue={}",
                summary.team.key,
                summary.identifier
            );
            lock(&self.teams).remove(team_id);
            metadata = self.team_metadata(team_id)?;
        }
        if !knows_all(&metadata, &summary.label_ids) {
            return self.rest_of_labels(&summary.id);
        }
        Ok(Some(
            summary
                .label_ids
                .iter()
                .filter_map(|id| metadata.labels.iter().find(|label| label.id == *id))
                .map(|label| WireName {
                    name: label.name.clone(),
                })
                .collect(),
        ))
    }
}

fn knows_all(metadata: &TeamMetadata, label_ids: &[String]) -> bool {
    label_ids
        .iter()
        .all(|id| metadata.labels.iter().any(|label| label.id == *id))
}

fn stamp(node: wire::WireStamp) -> Stamp {
    Stamp {
        id: node.id,
        version: node.updated_at,
    }
}
