//! The phase machine's tests: every transition and every fallback of docs/spec/review.md
//! (`transitions.rs`), then the record's intents, the poll clock and the texts
//! (`lifecycle.rs`). Shared fixtures live here.

mod lifecycle;
mod transitions;

use crate::github::{self, ReviewState, ReviewThread, ThreadComment};
use crate::workflow::ReviewPolicy;

pub(super) use super::record::{self, Handoff, RepairResult, ReviewRecord};
use super::signals::tests::{pr, review};
use super::signals::{Check, CheckState, Signals};
use super::*;
use crate::review::signals;

pub(super) const HEAD: &str = "1111111111111111111111111111111111111111";
pub(super) const OTHER: &str = "2222222222222222222222222222222222222222";
pub(super) const MERGE: &str = "3333333333333333333333333333333333333333";
pub(super) const NOW: &str = "2026-07-01T10:00:00.000Z";

pub(super) fn policy() -> ReviewPolicy {
    ReviewPolicy {
        enabled: true,
        ..ReviewPolicy::default()
    }
}

pub(super) fn record() -> ReviewRecord {
    let repo = github::parse_remote("git@github.com:acme/widgets.git").unwrap();
    ReviewRecord::from_handoff(
        &Handoff {
            issue_id: "id-10",
            identifier: "ENG-10",
            key: "ENG-10",
            pr_url: "https://github.com/acme/widgets/pull/7",
            repo: &repo,
            number: 7,
            branch: "x/demo-eng-10",
            validated_head: HEAD,
            run_id: "run-handoff",
        },
        NOW,
    )
}

pub(super) fn green(name: &str) -> Check {
    Check {
        name: name.into(),
        state: CheckState::Green,
        detail: "success".into(),
        summary: String::new(),
    }
}

/// A PR ready to land: one approval, one green check, clean, head = the validated head.
pub(super) fn ready() -> Signals {
    Signals {
        pr: pr(HEAD),
        approvals: vec!["bob".into()],
        change_requests: Vec::new(),
        threads: Vec::new(),
        checks: vec![green("ci")],
    }
}

pub(super) fn thread(id: &str, comments: u64) -> ReviewThread {
    ReviewThread {
        id: id.into(),
        resolved: false,
        outdated: false,
        path: "src/lib.rs".into(),
        line: Some(12),
        comments: vec![ThreadComment {
            author: "carol".into(),
            body: "Rename this.".into(),
            created_at: NOW.into(),
        }],
        total_comments: comments,
    }
}

pub(super) fn change_request(signals: &mut Signals) {
    signals.approvals.clear();
    let alice = review(41, "alice", ReviewState::ChangesRequested);
    signals.change_requests.push(signals::ChangeRequest {
        reviewer: alice.reviewer,
        review_id: alice.id,
        body: "Please add a test.".into(),
    });
}

pub(super) fn merged(signals: &mut Signals) {
    signals.pr.merged = true;
    signals.pr.state = "closed".into();
    signals.pr.merge_commit_sha = Some(MERGE.into());
    signals.pr.merged_by = Some("dana".into());
}

/// The action's variant name, for the table.
pub(super) fn kind(action: &Action) -> &'static str {
    match action {
        Action::Wait => "wait",
        Action::Repair { .. } => "repair",
        Action::Merge { .. } => "merge",
        Action::Closeout { .. } => "closeout",
        Action::Cleanup { .. } => "cleanup",
        Action::Human { .. } => "human",
        Action::Cancel => "cancel",
        Action::Release => "release",
    }
}

pub(super) struct Case {
    pub(super) name: &'static str,
    pub(super) policy: fn(&mut ReviewPolicy),
    pub(super) record: fn(&mut ReviewRecord),
    pub(super) issue: IssueState,
    pub(super) running: bool,
    pub(super) signals: fn(&mut Signals),
    pub(super) phase: Phase,
    pub(super) action: &'static str,
    /// Found in the reason or in what it waits for.
    pub(super) says: &'static str,
}

pub(super) fn none<T>(_: &mut T) {}

pub(super) fn case(name: &'static str) -> Case {
    Case {
        name,
        policy: none,
        record: none,
        issue: IssueState::InReview,
        running: false,
        signals: none,
        phase: Phase::ReviewWait,
        action: "wait",
        says: "",
    }
}

pub(super) fn run(case: &Case) -> Decision {
    let mut policy = policy();
    (case.policy)(&mut policy);
    let mut record = record();
    (case.record)(&mut record);
    let mut signals = ready();
    (case.signals)(&mut signals);
    let lane = LaneFacts {
        record: &record,
        issue: &case.issue,
        repair_running: case.running,
    };
    decide(&policy, &lane, Some(&Ok(signals)))
}

/// One repair of the change request `review:41` that pushed a new validated head.
pub(super) fn repaired(record: &mut ReviewRecord) {
    record.repairs.push(record::Repair {
        attempt: 1,
        feedback_keys: vec!["review:41".into()],
        started_at: NOW.into(),
        run_id: Some("run-repair-1".into()),
        result: Some(RepairResult::Pushed { head: HEAD.into() }),
    });
}

pub(super) fn repairs_spent(record: &mut ReviewRecord) {
    for attempt in 1..=3 {
        record.repairs.push(record::Repair {
            attempt,
            feedback_keys: vec![format!("old:{attempt}")],
            started_at: NOW.into(),
            run_id: Some(format!("run-repair-{attempt}")),
            result: Some(RepairResult::Pushed { head: HEAD.into() }),
        });
    }
}
