//! `maestro run --once --dry-run`: ask the tracker, apply eligibility, explain every verdict.
//!
//! [`build`] gathers a [`Report`] through the [`Tracker`] trait's read methods only;
//! [`render_text`] and [`render_json`] print it. The text view escapes every control character
//! in what the tracker sent (titles, identifiers, states); the JSON view leaves that to serde.
//! Nothing here writes: no tracker mutation, no directory, no lock file, no record. Leases and
//! prior attempts arrive as plain data ([`Claims`], [`Inputs::prior_attempts`]) from whoever
//! knows them.

use std::collections::HashMap;

use serde::Serialize;

use crate::escape::text;
use crate::selection::{self, Claims, Rule, Selection};
use crate::settings::Settings;
use crate::tracker::{self, Issue, Tracker};
use crate::workflow::{TrackerPolicy, same_state};
use crate::workspace::{Layout, lane};

/// What the dry run knows beyond the tracker.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub claims: Claims,
    /// Issue id → attempts already made; absent means none, so the next is attempt 1.
    pub prior_attempts: HashMap<String, u32>,
}

/// Everything the dry run prints, in the JSON shape `--json` emits.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub dry_run: bool,
    pub project: ProjectSummary,
    /// The state names whose issues were listed.
    pub states_queried: Vec<String>,
    pub slots: SlotSummary,
    pub selected: Option<Selected>,
    /// Every candidate in dispatch order.
    pub candidates: Vec<Row>,
    /// `--issue IDENT`: the one issue asked about; `candidates` then holds it alone (or
    /// nothing, when no listed issue has that identifier). Absent without `--issue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
    /// Post-review lanes (docs/spec/review.md): each one's phase and what it waits for, from
    /// its review record; left out when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub review: Vec<ReviewRow>,
}

/// A post-review lane the daemon drives.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReviewRow {
    pub identifier: String,
    pub phase: &'static str,
    pub pr_url: String,
    pub waiting_for: String,
    /// Seconds until the daemon reads the PR again (`null`: this phase reads nothing).
    pub next_read_in_seconds: Option<u64>,
    /// `ENG-10 review_wait: 0/1 approvals, checks 2/3 green, next read in 41 s`.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProjectSummary {
    /// maestro.toml `id`.
    pub id: String,
    /// The tracker's project name.
    pub name: String,
    pub slug: String,
    pub tracker: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SlotSummary {
    pub limit: u32,
    pub free: u32,
}

/// The issue `run --once` would take and where its lane would be.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Selected {
    pub id: String,
    pub identifier: String,
    pub title: String,
    pub url: Option<String>,
    pub branch: String,
    /// Relative to the repository root when the workspace root is inside it.
    pub workspace: String,
    pub attempt: u32,
    pub max_attempts: u32,
}

/// One candidate and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub identifier: String,
    pub title: String,
    pub state: String,
    pub state_type: String,
    pub priority: &'static str,
    pub created_at: String,
    pub labels: Vec<String>,
    pub blockers: Vec<BlockerRow>,
    /// `selected`; `eligible` (holds a slot after the selected one, for a daemon pass);
    /// `waiting` (passes every rule but no slot is free); or `skipped`.
    pub verdict: &'static str,
    /// The first rule the issue fails (see docs/spec/eligibility.md), `null` when eligible.
    pub rule: Option<&'static str>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BlockerRow {
    pub identifier: String,
    pub state: String,
}

/// The states whose issues the dry run lists: the startable ones (candidates) plus the
/// in-progress and success states, so an issue a lane already holds or that awaits review is
/// shown with its reason instead of silently missing. Terminal states are left out: they hold
/// the project's whole history and can never run.
pub fn candidate_states(policy: &TrackerPolicy) -> Vec<String> {
    let mut states: Vec<String> = Vec::new();
    let wanted = policy
        .startable_states
        .iter()
        .chain([&policy.in_progress_state, &policy.success_state]);
    for state in wanted {
        if !states.iter().any(|have| same_state(have, state)) && !policy.is_terminal(state) {
            states.push(state.clone());
        }
    }
    states
}

/// Queries the tracker (reads only) and judges every candidate with fixed `inputs`.
pub fn build(
    settings: &Settings,
    tracker: &dyn Tracker,
    inputs: &Inputs,
) -> Result<Report, tracker::Error> {
    build_with(settings, tracker, |_| inputs.clone())
}

/// Like [`build`], with the inputs computed from the listed issues (local leases charge the
/// per-state caps of the issues they hold, so they need the list).
pub fn build_with(
    settings: &Settings,
    tracker: &dyn Tracker,
    inputs_for: impl FnOnce(&[Issue]) -> Inputs,
) -> Result<Report, tracker::Error> {
    build_filtered(settings, tracker, None, inputs_for)
}

/// `--dry-run --issue IDENT`: the issue called `identifier` judged alone, as `run --once
/// --issue IDENT` judges it (the claims still come from every listed issue).
pub fn build_one(
    settings: &Settings,
    tracker: &dyn Tracker,
    identifier: &str,
    inputs_for: impl FnOnce(&[Issue]) -> Inputs,
) -> Result<Report, tracker::Error> {
    build_filtered(settings, tracker, Some(identifier), inputs_for)
}

fn build_filtered(
    settings: &Settings,
    tracker: &dyn Tracker,
    only: Option<&str>,
    inputs_for: impl FnOnce(&[Issue]) -> Inputs,
) -> Result<Report, tracker::Error> {
    let policy = &settings.workflow.tracker;
    let scope = tracker.project()?;
    let states = candidate_states(policy);
    let mut issues = tracker.issues_in_states(&states)?;
    let inputs = &inputs_for(&issues);
    if let Some(identifier) = only {
        issues.retain(|issue| issue.is_named(identifier));
    }
    // In-progress issues left for another try are taken before fresh work (the live run's
    // order), so the report shows them first.
    let layout = Layout::new(&settings.config.workspace_root);
    let mut recovery: Vec<&Issue> = issues
        .iter()
        .filter(|issue| {
            crate::claims::recovery_candidate(
                &layout,
                policy,
                &scope.slug_id,
                issue,
                &inputs.claims.held,
            )
        })
        .collect();
    recovery.sort_by(|left, right| selection::dispatch_order(left, right));
    let recovery: Vec<String> = recovery.iter().map(|issue| issue.id.clone()).collect();
    let selection = selection::select(issues, policy, &scope.slug_id, &inputs.claims);
    log::debug!(
        "dry run project={} candidates={} selected={}",
        settings.config.id,
        selection.candidates.len(),
        selection
            .selected()
            .map_or("none", |candidate| candidate.issue.identifier.as_str())
    );
    let mut report = report(
        settings, &scope, tracker, states, &selection, inputs, &recovery,
    );
    report.issue = only.map(|identifier| identifier.trim().to_string());
    Ok(report)
}

fn report(
    settings: &Settings,
    scope: &tracker::ProjectScope,
    tracker: &dyn Tracker,
    states_queried: Vec<String>,
    selection: &Selection,
    inputs: &Inputs,
    recovery: &[String],
) -> Report {
    let config = &settings.config;
    let first_recovery = recovery.first().and_then(|id| {
        selection
            .candidates
            .iter()
            .find(|candidate| &candidate.issue.id == id)
    });
    let chosen = if inputs.claims.slots.free > 0 {
        first_recovery.or_else(|| selection.selected())
    } else {
        None
    };
    let selected = chosen.map(|candidate| {
        let issue = &candidate.issue;
        // The same names the live run gives the lane (workspace::lane), computed, not created.
        let lane = Layout::new(&config.workspace_root).lane_dir(&lane::lane_key(&issue.identifier));
        let workspace = match lane.strip_prefix(&config.repo_root) {
            Ok(relative) => relative.display().to_string(),
            Err(_) => lane.display().to_string(),
        };
        Selected {
            id: issue.id.clone(),
            identifier: issue.identifier.clone(),
            title: issue.title.clone(),
            url: issue.url.clone(),
            branch: lane::branch_name(&config.id, &issue.identifier),
            workspace,
            attempt: inputs
                .prior_attempts
                .get(&issue.id)
                .copied()
                .unwrap_or(0)
                .saturating_add(1),
            max_attempts: settings.workflow.execution.max_attempts,
        }
    });
    let selected_id = selected.as_ref().map(|selected| selected.id.clone());
    let candidates = selection
        .candidates
        .iter()
        .map(|candidate| {
            let issue = &candidate.issue;
            let is_recovery = recovery.contains(&issue.id);
            let (verdict, rule, reason) = match &candidate.verdict {
                _ if is_recovery && selected_id.as_deref() == Some(issue.id.as_str()) => (
                    "selected",
                    None,
                    "recovery: in progress with a pending retry, taken before fresh work"
                        .to_string(),
                ),
                _ if is_recovery => (
                    "recovery",
                    None,
                    "in progress with a pending retry; a later pass takes it".to_string(),
                ),
                Ok(()) if selected_id.as_deref() == Some(issue.id.as_str()) => (
                    "selected",
                    None,
                    "first eligible in dispatch order".to_string(),
                ),
                Ok(()) => (
                    "eligible",
                    None,
                    "eligible; a later pass takes it".to_string(),
                ),
                Err(reason) if reason.rule() == Rule::Slot => {
                    ("waiting", Some(reason.rule().as_str()), reason.to_string())
                }
                Err(reason) => ("skipped", Some(reason.rule().as_str()), reason.to_string()),
            };
            row(issue, verdict, rule, reason)
        })
        .collect();
    Report {
        dry_run: true,
        project: ProjectSummary {
            id: config.id.clone(),
            name: scope.name.clone(),
            slug: scope.slug_id.clone(),
            tracker: tracker.provider().name().to_string(),
        },
        states_queried,
        slots: SlotSummary {
            limit: inputs.claims.slots.limit,
            free: inputs.claims.slots.free,
        },
        selected,
        candidates,
        issue: None,
        review: review_rows(settings),
    }
}

/// The post-review lanes the lifecycle works on or a person must act on, read from
/// `.maestro/review/` (reads only; an unreadable record is logged).
fn review_rows(settings: &Settings) -> Vec<ReviewRow> {
    let layout = Layout::new(&settings.config.workspace_root);
    let (records, problems) = crate::review::ReviewRecord::list(&layout);
    for problem in &problems {
        log::warn!("review record problem: {problem}");
    }
    let now_ms = crate::clock::now_ms();
    records
        .iter()
        .filter(|record| record.is_open() || record.phase == crate::review::Phase::Human)
        .map(|record| {
            let next = crate::review::next_read_in(record, &settings.workflow.review, now_ms);
            ReviewRow {
                identifier: record.identifier.clone(),
                phase: record.phase.as_str(),
                pr_url: record.pr_url.clone(),
                waiting_for: record.waiting_for.clone(),
                next_read_in_seconds: next.map(|wait| wait.as_secs()),
                summary: crate::review::texts::summary_line(record, next),
            }
        })
        .collect()
}

fn row(issue: &Issue, verdict: &'static str, rule: Option<&'static str>, reason: String) -> Row {
    Row {
        id: issue.id.clone(),
        identifier: issue.identifier.clone(),
        title: issue.title.clone(),
        state: issue.state.name.clone(),
        state_type: issue.state.kind.clone(),
        priority: selection::priority_name(issue.priority),
        created_at: issue.created_at.clone(),
        labels: issue.labels.clone(),
        blockers: issue
            .blockers
            .iter()
            .map(|blocker| BlockerRow {
                identifier: blocker.identifier.clone(),
                state: blocker.state.name.clone(),
            })
            .collect(),
        verdict,
        rule,
        reason,
    }
}

/// The report as operators read it.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let project = &report.project;
    out.push_str(&format!(
        "dry run: project {} ({} tracker, project {}), {} candidate{} in {}\n",
        text(&project.id),
        text(&project.tracker),
        text(&project.slug),
        report.candidates.len(),
        if report.candidates.len() == 1 {
            ""
        } else {
            "s"
        },
        text(&report.states_queried.join(", "))
    ));
    match &report.selected {
        Some(selected) => {
            out.push_str(&format!(
                "\nselected: {}  {}\n",
                text(&selected.identifier),
                text(&selected.title)
            ));
            out.push_str(&format!("  branch:     {}\n", text(&selected.branch)));
            out.push_str(&format!("  workspace:  {}\n", text(&selected.workspace)));
            out.push_str(&format!(
                "  attempt:    {} of {}\n",
                selected.attempt, selected.max_attempts
            ));
            if let Some(url) = &selected.url {
                out.push_str(&format!("  url:        {}\n", text(url)));
            }
        }
        None if report.candidates.is_empty() => match &report.issue {
            Some(identifier) => out.push_str(&format!(
                "\nno issue {} among the project's issues in those states (another state or project, or not an identifier)\n",
                text(identifier)
            )),
            None => {
                out.push_str("\nno eligible issue: the project has no issues in those states\n");
            }
        },
        None => out.push_str("\nno eligible issue: every candidate is skipped (reasons below)\n"),
    }
    if !report.candidates.is_empty() {
        out.push('\n');
        out.push_str(&table(report));
    }
    if !report.review.is_empty() {
        out.push_str("\npost-review lanes (the daemon drives them):\n");
        for row in &report.review {
            out.push_str(&format!("  {}\n", text(&row.summary)));
        }
    }
    out.push_str("\ndry run: nothing was changed\n");
    out
}

/// The candidate table. Cells are escaped before the widths are measured, so a title cannot
/// break a row or move the columns of the rows after it.
fn table(report: &Report) -> String {
    let header = ["ISSUE", "PRIORITY", "STATE", "VERDICT", "REASON", "TITLE"];
    let rows: Vec<[String; 6]> = report
        .candidates
        .iter()
        .map(|row| {
            [
                text(&row.identifier).into_owned(),
                row.priority.to_string(),
                text(&row.state).into_owned(),
                row.verdict.to_string(),
                text(&row.reason).into_owned(),
                text(&row.title).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The report as pretty JSON plus a newline.
pub fn render_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_else(|error| {
        // Report holds only strings and numbers; this cannot fail, but never panic on output.
        format!("{{\"error\": \"cannot encode the dry-run report: {error}\"}}")
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_states_skip_duplicates_and_terminals() {
        let mut policy = crate::workflow::parse(
            std::path::Path::new("/r/WORKFLOW.md"),
            "+++\nversion = 1\n[tracker]\nstartable_states = [\"Todo\", \"Ready\"]\n+++\n",
            std::path::Path::new("/r"),
        )
        .unwrap()
        .tracker;
        assert_eq!(
            candidate_states(&policy),
            vec!["Todo", "Ready", "In Progress", "In Review"]
        );
        policy.success_state = "todo".into();
        assert_eq!(
            candidate_states(&policy),
            vec!["Todo", "Ready", "In Progress"]
        );
        policy.success_state = "Done".into();
        assert_eq!(
            candidate_states(&policy),
            vec!["Todo", "Ready", "In Progress"]
        );
    }
}
