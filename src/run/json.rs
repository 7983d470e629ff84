//! `run --once --json`: the one JSON object a script reads when the run ends.
//!
//! Built from the [`Summary`] (outcome, next action, the final run record, the handoff) and the
//! exit code the caller chose for it; fields take the run record's and `status --json`'s names
//! (docs/spec/cli.md shows an example, `fixtures/run/*.golden.json` pin the shape). A usage,
//! configuration or runtime error that ends the command before an outcome is the same kind of
//! object with an `error` member instead ([`error_document`]), so stdout always parses. This
//! module renders; it decides no exit code and writes nothing.

use serde::Serialize;

use super::{HandedOff, NotClaimed, Outcome, Summary};
use crate::clock;
use crate::workspace::Layout;
use crate::workspace::record::{Disposition, FailureCause, RunStatus, Tokens};

/// Version of the document; bumped when a field is removed or changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `run --once --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// `handoff`, `retry_scheduled`, `human_required`, `interrupted`, `skipped` or
    /// `nothing_to_do`: the summary line's outcome, which the exit code follows.
    pub outcome: &'static str,
    pub exit_code: u8,
    /// The run record's `status`; `null` when nothing was claimed.
    pub status: Option<RunStatus>,
    pub issue_id: Option<String>,
    pub issue_identifier: Option<String>,
    pub issue_url: Option<String>,
    pub run_id: Option<String>,
    pub attempt: Option<u32>,
    pub branch: Option<String>,
    /// The lane, relative to the repository root (as in the record).
    pub workspace_path: Option<String>,
    pub thread_id: Option<String>,
    pub disposition: Option<Disposition>,
    pub pr_url: Option<String>,
    /// What was handed off: `{"mode": "pull_request", "pr_url"}` or `{"mode": "branch",
    /// "branch", "commit", "remote"}`; `null` without a handoff.
    pub handoff: Option<Handoff>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<u64>,
    pub turn_count: Option<u32>,
    pub tokens: Option<Tokens>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    /// What codex said about the failing turn (`kind`, `message`), as in the record.
    pub cause: Option<FailureCause>,
    /// Why nothing ran or the issue was skipped (the summary line's `reason`).
    pub reason: Option<String>,
    /// The eligibility rule behind `reason`, by the dry run's name (`blocked`, `held`, …).
    pub rule: Option<&'static str>,
    pub next_action: String,
    /// The run record and the protocol journal, absolute paths on this host; the journal is
    /// `null` when the agent never started.
    pub run_record_path: Option<String>,
    pub journal_path: Option<String>,
}

/// The handed-off review, by mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Handoff {
    PullRequest {
        pr_url: String,
    },
    Branch {
        branch: String,
        commit: String,
        remote: String,
    },
}

/// The report for `summary`, which ends the command with `exit_code`.
pub fn report(summary: &Summary, exit_code: u8, layout: &Layout) -> Report {
    let record = summary.record.as_deref();
    let (reason, rule, named) = match &summary.outcome {
        Outcome::Skipped { reason } => (Some(reason.clone()), None, None),
        Outcome::NothingToDo { reason } => {
            (Some(reason.to_string()), reason.rule(), named_issue(reason))
        }
        _ => (None, None, None),
    };
    let duration_seconds = record.and_then(|record| {
        let started = clock::parse_rfc3339(&record.started_at)?;
        let finished = clock::parse_rfc3339(record.finished_at.as_deref()?)?;
        Some(finished.saturating_sub(started) / 1000)
    });
    let journal = record
        .map(|record| layout.journal_file(&record.run_id))
        .filter(|path| path.is_file());
    Report {
        schema_version: SCHEMA_VERSION,
        outcome: outcome_name(&summary.outcome),
        exit_code,
        status: record.map(|record| record.status),
        issue_id: record.map(|record| record.issue_id.clone()),
        issue_identifier: record
            .map(|record| record.issue_identifier.clone())
            .or(named),
        issue_url: record.and_then(|record| record.issue_url.clone()),
        run_id: summary.run_id.clone(),
        attempt: record.map(|record| record.attempt),
        branch: record.map(|record| record.branch.clone()),
        workspace_path: record.map(|record| record.workspace_path.clone()),
        thread_id: record.and_then(|record| record.thread_id.clone()),
        disposition: record.and_then(|record| record.disposition),
        pr_url: record.and_then(|record| record.pr_url.clone()),
        handoff: summary.handoff.as_ref().map(|handoff| match handoff {
            HandedOff::PullRequest { url } => Handoff::PullRequest {
                pr_url: url.clone(),
            },
            HandedOff::Branch {
                branch,
                commit,
                remote,
            } => Handoff::Branch {
                branch: branch.clone(),
                commit: commit.clone(),
                remote: remote.clone(),
            },
        }),
        started_at: record.map(|record| record.started_at.clone()),
        finished_at: record.and_then(|record| record.finished_at.clone()),
        duration_seconds,
        turn_count: record.map(|record| record.turn_count),
        tokens: record.map(|record| record.tokens),
        error_class: record
            .and_then(|record| record.error_class.as_ref())
            .map(ToString::to_string),
        error_message: record.and_then(|record| record.error_message.clone()),
        cause: record.and_then(|record| record.cause.clone()),
        reason,
        rule,
        next_action: summary.next_action.clone(),
        run_record_path: record
            .map(|record| layout.run_record_file(&record.run_id).display().to_string()),
        journal_path: journal.map(|path| path.display().to_string()),
    }
}

/// The summary line's name for an outcome.
pub fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Handoff { .. } => "handoff",
        Outcome::RetryScheduled { .. } => "retry_scheduled",
        Outcome::HumanRequired { .. } => "human_required",
        Outcome::Interrupted => "interrupted",
        Outcome::Skipped { .. } => "skipped",
        Outcome::NothingToDo { .. } => "nothing_to_do",
    }
}

/// The issue a refusal names, when it names one.
fn named_issue(reason: &NotClaimed) -> Option<String> {
    match reason {
        NotClaimed::NotRunnable { identifier, .. }
        | NotClaimed::Held { identifier, .. }
        | NotClaimed::NotFound { identifier, .. }
        | NotClaimed::NotEligible { identifier, .. }
        | NotClaimed::NoRepair { identifier, .. } => Some(identifier.clone()),
        NotClaimed::SlotsBusy { .. }
        | NotClaimed::HostsBusy { .. }
        | NotClaimed::NoEligible { .. }
        | NotClaimed::DeadlinePassed => None,
    }
}

/// The report as pretty JSON plus a newline.
pub fn render(report: &Report) -> String {
    to_text(report)
}

/// Why the command ended before an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command line (exit 2).
    Usage,
    /// maestro.toml or WORKFLOW.md (exit 2).
    Config,
    /// The tracker, git or the disk failed before an attempt started (exit 1).
    Runtime,
    /// `show`: no run matches what was asked for (exit 1).
    NotFound,
}

#[derive(Serialize)]
struct ErrorDocument<'a> {
    schema_version: u32,
    outcome: &'static str,
    exit_code: u8,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    kind: ErrorKind,
    message: &'a str,
}

/// `{"schema_version": 1, "outcome": "error", "exit_code": N, "error": {"kind", "message"}}`
/// plus a newline: what `--json` prints when the command fails before an outcome.
pub fn error_document(kind: ErrorKind, message: &str, exit_code: u8) -> String {
    to_text(&ErrorDocument {
        schema_version: SCHEMA_VERSION,
        outcome: "error",
        exit_code,
        error: ErrorBody { kind, message },
    })
}

fn to_text(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|error| {
        // Only strings and numbers: this cannot fail, but output never panics.
        format!("{{\"error\": {{\"kind\": \"runtime\", \"message\": \"cannot encode: {error}\"}}}}")
    });
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selection::{Hold, Reason};

    #[test]
    fn a_refusal_names_its_issue_and_rule() {
        let summary = Summary {
            issue: None,
            run_id: None,
            outcome: Outcome::NothingToDo {
                reason: NotClaimed::NotEligible {
                    identifier: "ABC-2".into(),
                    reason: Reason::BlockedBy {
                        blockers: vec![("ABC-1".into(), "In Progress".into())],
                    },
                },
            },
            next_action: "none".into(),
            record: None,
            handoff: None,
        };
        let report = report(&summary, 3, &Layout::new(std::path::Path::new("/w")));
        assert_eq!(report.outcome, "nothing_to_do");
        assert_eq!(report.issue_identifier.as_deref(), Some("ABC-2"));
        assert_eq!(report.rule, Some("blocked"));
        assert_eq!(
            report.reason.as_deref(),
            Some("ABC-2 is not eligible: blocked by ABC-1 (In Progress)")
        );
        assert_eq!(report.run_record_path, None);
        let held = NotClaimed::Held {
            identifier: "ABC-1".into(),
            hold: Hold::LeasedElsewhere,
        };
        assert_eq!(held.rule(), Some("held"));
    }

    #[test]
    fn an_error_document_parses() {
        let text = error_document(ErrorKind::Usage, "bad \"flag\"\n", 2);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["error"]["kind"], "usage");
        assert_eq!(value["error"]["message"], "bad \"flag\"\n");
        assert_eq!(value["exit_code"], 2);
        assert_eq!(value["outcome"], "error");
    }
}
