//! The one authoritative outcome written to the tracker: state, label and comment.
//!
//! Comments carry the facts an operator needs (run id, attempt, time, branch, PR or remote and
//! commit, lane path relative to the repository, error class, next action) and never an absolute host path or a
//! secret: messages pass through [`scrub`] first. Text that the agent wrote or influenced (its
//! handoff summary, a failure message quoting validation output or the agent's arguments)
//! appears only inside a bounded, escaped block quote ([`bounds::quote`]), so it can never
//! grow a comment without limit or pass for a block of Maestro's own. Order matters where a
//! partial write is possible; each function documents what it does when the tracker fails
//! half way.

use std::fmt::Write;
use std::path::PathBuf;

use super::handoff::{Handoff, Review};
use crate::bounds;
use crate::clock;
use crate::tracker::{self, Issue, Tracker};
use crate::workflow::TrackerPolicy;
use crate::workspace::record::{ErrorClass, RunRecord, ValidationRecord};

/// The most of a cause a comment shows (the cause itself quotes at most 240 characters of
/// codex's text inside its own sentence).
const MAX_CAUSE_CHARS: usize = 400;

/// Where and for whom the outcome is written.
#[derive(Debug)]
pub struct Target<'a> {
    pub tracker: &'a dyn Tracker,
    pub issue: &'a Issue,
    pub policy: &'a TrackerPolicy,
    /// Absolute host paths to rewrite before anything is posted: (absolute, replacement).
    pub host_paths: &'a [(PathBuf, String)],
}

/// Absolute host paths and what they become in anything posted or shown to others: the
/// repository root `.`, a workspace root outside it `<workspace_root>`, `$HOME` `~`; longest
/// first, so a path under another is rewritten whole.
pub fn host_paths(config: &crate::config::ServiceConfig) -> Vec<(PathBuf, String)> {
    let mut paths = vec![(config.repo_root.clone(), ".".to_string())];
    if !config.workspace_root.starts_with(&config.repo_root) {
        paths.push((
            config.workspace_root.clone(),
            "<workspace_root>".to_string(),
        ));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|home| home.len() > 1) {
        paths.push((PathBuf::from(home), "~".to_string()));
    }
    paths.sort_by_key(|(path, _)| std::cmp::Reverse(path.as_os_str().len()));
    paths
}

/// Replaces absolute host paths with their repository-relative (or placeholder) forms.
pub fn scrub(text: &str, host_paths: &[(PathBuf, String)]) -> String {
    let mut text = text.to_string();
    for (absolute, replacement) in host_paths {
        let absolute = absolute.display().to_string();
        if absolute.len() > 1 {
            text = text.replace(&format!("{absolute}/"), &format!("{replacement}/"));
            text = text.replace(&absolute, replacement);
        }
    }
    text
}

/// The agent never claimed the issue: move it to the in-progress state and say so, so the
/// tracker shows who is working on it. The move only from a startable state, the note only
/// while the issue is still active (an issue someone moved on gets nothing).
pub fn claim_fallback(
    target: &Target<'_>,
    record: &RunRecord,
    agent_commented: bool,
) -> Result<(), tracker::Error> {
    let fresh = target
        .tracker
        .refresh(std::slice::from_ref(&target.issue.id))?;
    let Some(state) = fresh.first().map(|issue| issue.state.name.clone()) else {
        return Ok(());
    };
    let still_startable = target.policy.is_startable(&state);
    if !still_startable && !target.policy.is_in_progress(&state) {
        return Ok(());
    }
    if still_startable {
        target
            .tracker
            .transition(&target.issue.id, &target.policy.in_progress_state)?;
        log::info!(
            "claim fallback: moved to {} issue={} run_id={}",
            target.policy.in_progress_state,
            target.issue.identifier,
            record.run_id
        );
    }
    if !agent_commented {
        let body = agent_start_comment(record);
        target.tracker.add_comment(&target.issue.id, &body)?;
    }
    Ok(())
}

/// The agent-start comment, with the fields the peer implementation's carries (`started_at`,
/// `transport`, run id, attempt, branch) and the lane.
fn agent_start_comment(record: &RunRecord) -> String {
    let mut body = String::from("**Maestro: working on this issue**\n\n");
    let _ = writeln!(body, "- run_id: `{}`", record.run_id);
    let _ = writeln!(body, "- attempt: {}", record.attempt);
    let _ = writeln!(body, "- started_at: {}", record.started_at);
    let _ = writeln!(body, "- transport: `{}`", crate::config::STDIO_TRANSPORT);
    let _ = writeln!(body, "- branch: `{}`", record.branch);
    let _ = writeln!(body, "- workspace_path: `{}`", record.workspace_path);
    body
}

/// Why a completed handoff could not be written.
#[derive(Debug)]
pub enum HandoffWriteError {
    /// The state did not change: nothing was written, another attempt may succeed.
    StateNotWritten(tracker::Error),
    /// The state is `success_state` but the completion comment failed: a human must look (no
    /// automatic retry, which would post a second outcome).
    CommentFailed(tracker::Error),
}

/// Moves the issue to `success_state` and posts the completion comment.
pub fn handoff(
    target: &Target<'_>,
    record: &RunRecord,
    handoff: &Handoff,
) -> Result<(), HandoffWriteError> {
    target
        .tracker
        .transition(&target.issue.id, &target.policy.success_state)
        .map_err(HandoffWriteError::StateNotWritten)?;
    let body = completion_comment(record, handoff, target.host_paths);
    target
        .tracker
        .add_comment(&target.issue.id, &body)
        .map_err(HandoffWriteError::CommentFailed)?;
    Ok(())
}

fn completion_comment(
    record: &RunRecord,
    handoff: &Handoff,
    host_paths: &[(PathBuf, String)],
) -> String {
    let mut body = String::from("**Maestro: ready for review**\n\n");
    let _ = writeln!(body, "- run_id: `{}`", record.run_id);
    let _ = writeln!(body, "- attempt: {}", record.attempt);
    let _ = writeln!(body, "- finished_at: {}", clock::now_rfc3339());
    let _ = writeln!(body, "- branch: `{}`", record.branch);
    match &handoff.review {
        Review::PullRequest { url, .. } => {
            let _ = writeln!(
                body,
                "- pr_url: {}",
                bounds::excerpt(url, bounds::MAX_SHORT_BYTES)
            );
        }
        Review::Branch { remote, .. } => {
            // Already shown without credentials and without an absolute host path; the host
            // paths are rewritten once more in case origin is a path under one of them.
            let _ = writeln!(body, "- remote: `{}`", scrub(remote, host_paths));
            let _ = writeln!(body, "- commit: `{}`", handoff.head_sha);
        }
    }
    let _ = writeln!(body, "- workspace_path: `{}`", record.workspace_path);
    let _ = writeln!(
        body,
        "- validation_result: {}",
        validation_summary(&record.validation)
    );
    let _ = write!(
        body,
        "\n**Summary** (the agent's)\n\n{}",
        bounds::quote(&scrub(handoff.summary.trim(), host_paths))
    );
    body
}

/// `passed (2 commands)`, `no validation commands configured`, or the first failure.
pub fn validation_summary(results: &[ValidationRecord]) -> String {
    if results.is_empty() {
        return "no validation commands configured".to_string();
    }
    match results
        .iter()
        .find(|r| r.exit_code != Some(0) || r.timed_out)
    {
        None => format!(
            "passed ({} command{})",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        ),
        Some(failed) if failed.timed_out => format!("failed: `{}` timed out", failed.command),
        Some(failed) => format!(
            "failed: `{}` exited with {}",
            failed.command,
            failed
                .exit_code
                .map_or("a signal".to_string(), |code| code.to_string())
        ),
    }
}

/// A retryable failure with attempts left: keep (or put) the issue in the in-progress state and
/// say what happens next.
pub fn retry(
    target: &Target<'_>,
    record: &RunRecord,
    error_class: &str,
    message: &str,
    next_action: &str,
) -> Result<(), tracker::Error> {
    ensure_in_progress(target)?;
    // Running out of turns is not a failure: the work continues (run/continuation.rs).
    let title = if error_class == ErrorClass::ContinuationPending.to_string() {
        format!("attempt {} ran out of turns, continuing", record.attempt)
    } else {
        format!("attempt {} failed, retrying", record.attempt)
    };
    let mut body = failure_facts(&title, record, error_class, next_action, target.host_paths);
    body.push_str(&failure_message(message, target.host_paths));
    target.tracker.add_comment(&target.issue.id, &body)?;
    Ok(())
}

/// The message that ends a failure comment, as a block quote: it can carry text the agent
/// wrote or influenced (validation output from the lane, the command an approval asked for, an
/// excerpt of an argument), which must stay bounded and visibly apart from Maestro's facts.
fn failure_message(message: &str, host_paths: &[(PathBuf, String)]) -> String {
    format!("\n{}", bounds::quote(&scrub(message, host_paths)))
}

/// The title and fact list every failure comment starts with. The cause, when codex gave one,
/// quotes codex's words: one bounded line, escaped, host paths rewritten.
fn failure_facts(
    title: &str,
    record: &RunRecord,
    error_class: &str,
    next_action: &str,
    host_paths: &[(PathBuf, String)],
) -> String {
    let mut body = format!("**Maestro: {title}**\n\n");
    let _ = writeln!(body, "- run_id: `{}`", record.run_id);
    let _ = writeln!(body, "- attempt: {}", record.attempt);
    let _ = writeln!(body, "- failed_at: {}", clock::now_rfc3339());
    let _ = writeln!(body, "- error_class: `{error_class}`");
    if let Some(cause) = &record.cause {
        let _ = writeln!(
            body,
            "- cause: {}",
            bounds::excerpt(&scrub(&cause.message, host_paths), MAX_CAUSE_CHARS)
        );
    }
    let _ = writeln!(body, "- next_action: {next_action}");
    let _ = writeln!(body, "- workspace_path: `{}`", record.workspace_path);
    body
}

/// What the human path managed to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanWrite {
    /// Set when the needs-attention label does not exist on the team: the issue stays in the
    /// in-progress state and a guard marker must stop automatic reselection.
    pub guard_reason: Option<String>,
}

/// The needs-attention path: label, `failure_state`, failure comment. When the label does not
/// exist on the team, the issue stays in the in-progress state instead (moving it to a
/// startable failure state without the label would let it be picked up again), the caller
/// writes a guard marker, and the comment says so.
pub fn human(
    target: &Target<'_>,
    record: &RunRecord,
    error_class: &str,
    message: &str,
    next_action: &str,
) -> Result<HumanWrite, HumanWriteError> {
    let not_placed = |error| HumanWriteError {
        error,
        placed: false,
    };
    let label = &target.policy.needs_attention_label;
    let guard_reason = match target.tracker.add_label(&target.issue.id, label) {
        Ok(()) => {
            target
                .tracker
                .transition(&target.issue.id, &target.policy.failure_state)
                .map_err(not_placed)?;
            None
        }
        Err(tracker::Error::UnknownLabel { team, .. }) => {
            ensure_in_progress(target).map_err(not_placed)?;
            Some(format!(
                "label {label} does not exist on team {team}; create it, then remove this guard"
            ))
        }
        Err(error) => return Err(not_placed(error)),
    };
    let mut body = failure_facts(
        "needs attention",
        record,
        error_class,
        next_action,
        target.host_paths,
    );
    if let Some(reason) = &guard_reason {
        let _ = writeln!(
            body,
            "- guard: the issue stays in {} and Maestro will not pick it up again automatically ({reason}; the guard is `{}`)",
            target.policy.in_progress_state,
            crate::workspace::Layout::relative()
                .issue_file("<lane>")
                .display()
        );
    }
    body.push_str(&failure_message(message, target.host_paths));
    // The label and state are already written: the issue is out of automatic selection, so a
    // failed comment must not turn into a retry that would run the agent again.
    target
        .tracker
        .add_comment(&target.issue.id, &body)
        .map_err(|error| HumanWriteError {
            error,
            placed: true,
        })?;
    Ok(HumanWrite { guard_reason })
}

/// A needs-attention write that did not complete.
#[derive(Debug)]
pub struct HumanWriteError {
    pub error: tracker::Error,
    /// The label (or guard path) and the state were written; only the comment failed.
    pub placed: bool,
}

fn ensure_in_progress(target: &Target<'_>) -> Result<(), tracker::Error> {
    let fresh = target
        .tracker
        .refresh(std::slice::from_ref(&target.issue.id))?;
    let in_progress = fresh
        .first()
        .is_some_and(|issue| target.policy.is_in_progress(&issue.state.name));
    if !in_progress {
        target
            .tracker
            .transition(&target.issue.id, &target.policy.in_progress_state)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_rewrites_host_paths() {
        let paths = vec![
            (PathBuf::from("/srv/repo"), ".".to_string()),
            (PathBuf::from("/home/op"), "~".to_string()),
        ];
        assert_eq!(
            scrub(
                "failed in /srv/repo/.workspaces/ABC-1 (see /home/op/log)",
                &paths
            ),
            "failed in ./.workspaces/ABC-1 (see ~/log)"
        );
    }

    #[test]
    fn validation_summaries() {
        let record = |command: &str, exit_code: Option<i32>, timed_out: bool| ValidationRecord {
            command: command.into(),
            exit_code,
            timed_out,
            duration_ms: 1,
            output_tail: String::new(),
            escaped: false,
        };
        assert_eq!(validation_summary(&[]), "no validation commands configured");
        assert_eq!(
            validation_summary(&[record("a", Some(0), false), record("b", Some(0), false)]),
            "passed (2 commands)"
        );
        assert_eq!(
            validation_summary(&[record("a", Some(0), false), record("b", Some(2), false)]),
            "failed: `b` exited with 2"
        );
        assert_eq!(
            validation_summary(&[record("slow", None, true)]),
            "failed: `slow` timed out"
        );
    }

    #[test]
    fn a_branch_handoff_comment_names_remote_branch_and_commit() {
        let record = RunRecord {
            run_id: "r1".into(),
            branch: "x/demo-abc-1".into(),
            workspace_path: "<workspace_root>/ABC-1".into(),
            ..RunRecord::default()
        };
        let handoff = Handoff {
            review: Review::Branch {
                remote: "/srv/demo/origin.git".into(),
                branch: "x/demo-abc-1".into(),
            },
            summary: "Added a greeting.".into(),
            head_sha: "0123abcd".into(),
        };
        let paths = vec![(PathBuf::from("/srv/demo"), "<workspace_root>".to_string())];
        let body = completion_comment(&record, &handoff, &paths);
        assert!(
            body.starts_with("**Maestro: ready for review**\n"),
            "{body}"
        );
        for line in [
            "- branch: `x/demo-abc-1`\n",
            "- remote: `<workspace_root>/origin.git`\n",
            "- commit: `0123abcd`\n",
            "> Added a greeting.",
        ] {
            assert!(body.contains(line), "{line:?} missing from:\n{body}");
        }
        assert!(!body.contains("pr_url"), "{body}");
    }
}
