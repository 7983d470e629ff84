//! Continuations: an agent that used all of an attempt's turns without finalizing has not
//! failed, it is not done yet. The attempt ends `continuation_pending` (retryable, counted
//! against `max_attempts`), and the next attempt continues in the same lane on the same codex
//! thread (`thread/resume` with the recorded thread id), so the agent keeps its history.
//!
//! This file owns that rule and the choice of the thread to resume; it does not start the
//! session (`app_server`), write the retry (`conclude`), nor schedule it (the daemon queues a
//! continuation after 1 s; without a daemon the next `run --once` recovers the issue).
//! Spec: docs/spec/runtime.md, "Continuations".

use super::verdict::Failure;
use crate::app_server::{Resume, TokenUsage};
use crate::workspace::Layout;
use crate::workspace::record::{self, ErrorClass, IssueState, ResumedThread, RunStatus, Tokens};

/// The failure of an attempt whose turns ran out before the agent finalized.
pub fn out_of_turns(max_turns: u32, attempt: u32) -> Failure {
    Failure::retryable(
        ErrorClass::ContinuationPending,
        format!(
            "the agent used all {max_turns} turn(s) of attempt {attempt} without calling issue_terminal_finalize; the next attempt continues the work in the same lane and codex thread"
        ),
    )
}

/// The thread this attempt resumes, with what it had spent: the previous attempt's, when it
/// ended `continuation_pending` in this very lane and recorded its thread. `None` otherwise
/// (the first attempt, a failure retry, a lane of another name, a record that cannot be read).
pub fn thread_to_resume(
    layout: &Layout,
    previous: Option<&IssueState>,
    lane_key: &str,
) -> Option<(Resume, ResumedThread)> {
    let previous = previous?;
    if previous.last_status != Some(RunStatus::RetryScheduled)
        || previous.last_error_class != Some(ErrorClass::ContinuationPending)
        || previous.lane() != lane_key
    {
        return None;
    }
    let run_id = previous.last_run_id.as_deref()?;
    let run = record::load_run(layout, run_id).ok()?;
    let thread_id = run.thread_id.clone()?;
    // Codex counts the whole thread; each record counts its own attempt only.
    let earlier = run
        .resumed
        .as_ref()
        .map_or(Tokens::default(), |resumed| resumed.tokens_before);
    let before = Tokens {
        input: earlier.input + run.tokens.input,
        output: earlier.output + run.tokens.output,
        total: earlier.total + run.tokens.total,
    };
    let resume = Resume {
        thread_id,
        tokens_before: TokenUsage {
            input: before.input,
            output: before.output,
            total: before.total,
            ..TokenUsage::default()
        },
    };
    let resumed = ResumedThread {
        from_run_id: run.run_id,
        tokens_before: before,
    };
    Some((resume, resumed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::RunRecord;

    fn books(status: RunStatus, class: ErrorClass, lane: &str) -> IssueState {
        IssueState {
            issue_id: "id-1".into(),
            issue_identifier: "ABC-1".into(),
            last_run_id: Some("run-2".into()),
            last_status: Some(status),
            last_error_class: Some(class),
            lane_key: Some(lane.into()),
            ..IssueState::default()
        }
    }

    #[test]
    fn only_a_continuation_in_the_same_lane_resumes_and_tokens_add_up() {
        let dir = std::env::temp_dir().join(format!("maestro-continuation-{}", std::process::id()));
        let layout = Layout::new(&dir);
        let run = RunRecord {
            run_id: "run-2".into(),
            thread_id: Some("thr-1".into()),
            tokens: Tokens {
                input: 10,
                output: 2,
                total: 12,
            },
            resumed: Some(ResumedThread {
                from_run_id: "run-1".into(),
                tokens_before: Tokens {
                    input: 100,
                    output: 20,
                    total: 120,
                },
            }),
            ..RunRecord::default()
        };
        record::save_run(&layout, &run).unwrap();
        let continuation = books(
            RunStatus::RetryScheduled,
            ErrorClass::ContinuationPending,
            "ABC-1",
        );
        let (resume, resumed) = thread_to_resume(&layout, Some(&continuation), "ABC-1").unwrap();
        assert_eq!(resume.thread_id, "thr-1");
        assert_eq!(resume.tokens_before.total, 132);
        assert_eq!(resumed.from_run_id, "run-2");
        assert_eq!(resumed.tokens_before.input, 110);
        assert!(thread_to_resume(&layout, Some(&continuation), "OTHER").is_none());
        let failure = books(
            RunStatus::RetryScheduled,
            ErrorClass::ValidationFailed,
            "ABC-1",
        );
        assert!(thread_to_resume(&layout, Some(&failure), "ABC-1").is_none());
        assert!(thread_to_resume(&layout, None, "ABC-1").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
