//! The post-review lanes in the status snapshot (docs/spec/status.md, `review`): each lane's
//! phase and what it waits for, from `.maestro/review/` only, and the counts `/metrics` serves.
//!
//! A lane is listed while the lifecycle still works on it or a person must act (`human`);
//! lanes that are done, cancelled or released are only counted. When to read the PR next comes
//! from the record (`next_read_at`, written by the daemon), because `status` reads no
//! WORKFLOW.md.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use crate::clock;
use crate::escape::text;
use crate::review::{Phase, RepairResult, ReviewRecord, texts};
use crate::workspace::Layout;

/// One post-review lane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewLane {
    /// The record's file key (the issue's stable id).
    pub key: String,
    pub issue_id: String,
    pub issue_identifier: String,
    pub pr_url: String,
    /// `review_wait`, `review_repair`, `ready_to_land`, `landing`, `delivery_closeout`,
    /// `cleanup`, or `human`.
    pub phase: Phase,
    pub since: String,
    pub reason: String,
    /// What the lane waits for (`0/1 approvals, checks 2/3 green`); empty when nothing.
    pub waiting_for: String,
    pub validated_head: String,
    /// Repairs used, failed ones included.
    pub repairs: u32,
    pub next_read_at: Option<String>,
    pub next_read_in_seconds: Option<u64>,
    /// The one line `status` prints: `ENG-10 review_wait: 0/1 approvals, …, next read in 41 s`.
    pub summary: String,
}

/// Every review record on disk, counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewTotals {
    /// Records by phase; every phase is listed, zero included.
    pub lanes_by_phase: BTreeMap<String, u64>,
    pub merged_by_maestro: u64,
    pub merged_by_person: u64,
    pub repairs_pushed: u64,
    pub repairs_failed: u64,
    pub repairs_running: u64,
}

/// The listed lanes and the totals (`None` when there is no record at all); unreadable
/// records go to `problems`.
pub fn build(
    layout: &Layout,
    now_ms: u64,
    problems: &mut Vec<String>,
) -> (Vec<ReviewLane>, Option<ReviewTotals>) {
    let (records, errors) = ReviewRecord::list(layout);
    problems.extend(errors.iter().map(ToString::to_string));
    if records.is_empty() {
        return (Vec::new(), None);
    }
    let mut totals = ReviewTotals::default();
    for phase in Phase::ALL {
        totals.lanes_by_phase.insert(phase.as_str().to_string(), 0);
    }
    let mut lanes = Vec::new();
    for record in &records {
        *totals
            .lanes_by_phase
            .entry(record.phase.as_str().to_string())
            .or_insert(0) += 1;
        match &record.merge {
            Some(merge) if merge.by_maestro => totals.merged_by_maestro += 1,
            Some(_) => totals.merged_by_person += 1,
            None => {}
        }
        for repair in &record.repairs {
            match &repair.result {
                Some(RepairResult::Pushed { .. }) => totals.repairs_pushed += 1,
                Some(RepairResult::Failed { .. }) => totals.repairs_failed += 1,
                None => totals.repairs_running += 1,
            }
        }
        if record.is_open() || record.phase == Phase::Human {
            lanes.push(lane(record, now_ms));
        }
    }
    (lanes, Some(totals))
}

fn lane(record: &ReviewRecord, now_ms: u64) -> ReviewLane {
    let next_read_in = record
        .next_read_at
        .as_deref()
        .and_then(clock::parse_rfc3339)
        .filter(|_| record.phase.reads_signals())
        .map(|at| Duration::from_millis(at.saturating_sub(now_ms)));
    ReviewLane {
        key: record.key.clone(),
        issue_id: record.issue_id.clone(),
        issue_identifier: record.identifier.clone(),
        pr_url: record.pr_url.clone(),
        phase: record.phase,
        since: record.since.clone(),
        reason: record.reason.clone(),
        waiting_for: record.waiting_for.clone(),
        validated_head: record.validated_head.clone(),
        repairs: u32::try_from(record.repairs.len()).unwrap_or(u32::MAX),
        next_read_at: record.next_read_at.clone(),
        next_read_in_seconds: next_read_in.map(|wait| wait.as_secs()),
        summary: texts::summary_line(record, next_read_in),
    }
}

/// The `REVIEW` section of the text view: one line per lane, `!!` when a person must act.
pub fn render_text(out: &mut String, lanes: &[ReviewLane]) {
    if lanes.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nREVIEW ({})", lanes.len());
    for lane in lanes {
        let mark = if lane.phase == Phase::Human {
            "!!"
        } else {
            "  "
        };
        let _ = writeln!(out, "{mark}{}", text(&lane.summary));
        let _ = writeln!(out, "    {}", text(&lane.pr_url));
    }
}
