//! From what happened to what happens next: the disposition the agent declared, and the one
//! verdict an attempt ends with.
//!
//! Pure functions over the tool state and the turn's end, so every rule is unit-tested: exactly
//! one disposition (`review_handoff` or `manual_attention`), anything else invalid; retryable
//! failures become retries while attempts remain; everything a human must look at goes down the
//! needs-attention path.

use super::handoff::Handoff;
use super::tools::{PATH_MANUAL, PATH_REPAIR, PATH_REVIEW, ToolState};
use crate::app_server::TurnEnd;
use crate::tracker::normalize_label;
use crate::workflow::TrackerPolicy;
use crate::workspace::record::{Disposition, ErrorClass};

/// What the agent declared, judged against what it recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declared {
    ReviewHandoff(Handoff),
    ManualAttention,
    Invalid(String),
}

impl Declared {
    pub fn disposition(&self) -> Disposition {
        match self {
            Declared::ReviewHandoff(_) => Disposition::ReviewHandoff,
            Declared::ManualAttention => Disposition::ManualAttention,
            Declared::Invalid(_) => Disposition::Invalid,
        }
    }
}

/// Judges the tool state: exactly one path, finalized once, with what that path requires.
pub fn declared(state: &ToolState, policy: &TrackerPolicy) -> Declared {
    let attention = normalize_label(&policy.needs_attention_label);
    let labelled = state.labels.contains(&attention);
    let mut paths = state.finalized.clone();
    paths.dedup();
    match paths.as_slice() {
        [] => Declared::Invalid(
            "the agent never called issue_terminal_finalize".to_string(),
        ),
        [path] if path == PATH_REVIEW => match (&state.handoff, labelled) {
            (Some(handoff), false) => Declared::ReviewHandoff(handoff.clone()),
            (None, _) => Declared::Invalid(
                "finalized review_handoff without a recorded handoff (issue_review_handoff never succeeded)"
                    .to_string(),
            ),
            (Some(_), true) => Declared::Invalid(format!(
                "finalized review_handoff but also added the {} label (both paths)",
                policy.needs_attention_label
            )),
        },
        [path] if path == PATH_MANUAL => {
            if state.handoff.is_some() {
                Declared::Invalid(
                    "finalized manual_attention after recording a review handoff (both paths)"
                        .to_string(),
                )
            } else if !labelled {
                Declared::Invalid(format!(
                    "finalized manual_attention without adding the {} label",
                    policy.needs_attention_label
                ))
            } else if state.comments == 0 {
                Declared::Invalid(
                    "finalized manual_attention without an explanatory comment".to_string(),
                )
            } else {
                Declared::ManualAttention
            }
        }
        _ => Declared::Invalid(format!(
            "finalized more than one way ({})",
            paths.join(", ")
        )),
    }
}

/// Judges a review repair's tool state: `review_repair` after a recorded
/// `issue_review_repair_complete` (as [`Declared::ReviewHandoff`], the handoff of the repaired
/// head), or `manual_attention` with its label and comment; anything else is invalid.
pub fn declared_repair(state: &ToolState, policy: &TrackerPolicy) -> Declared {
    let attention = normalize_label(&policy.needs_attention_label);
    let labelled = state.labels.contains(&attention);
    let mut paths = state.finalized.clone();
    paths.dedup();
    match paths.as_slice() {
        [path] if path == PATH_REPAIR => match (&state.handoff, labelled) {
            (Some(handoff), false) => Declared::ReviewHandoff(handoff.clone()),
            (None, _) => Declared::Invalid(
                "finalized review_repair without a recorded repair (issue_review_repair_complete never succeeded)"
                    .to_string(),
            ),
            (Some(_), true) => Declared::Invalid(format!(
                "finalized review_repair but also added the {} label (both paths)",
                policy.needs_attention_label
            )),
        },
        [path] if path == PATH_MANUAL => {
            // The manual path's rules are the attempt's; a recorded repair is simply not used.
            let without_repair = ToolState {
                handoff: None,
                ..state.clone()
            };
            declared(&without_repair, policy)
        }
        [] => Declared::Invalid("the agent never called issue_terminal_finalize".to_string()),
        _ => Declared::Invalid(format!(
            "finalized more than one way ({})",
            paths.join(", ")
        )),
    }
}

/// A failure's class and whether another attempt could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable, snake_case, for records, comments and metrics.
    pub error_class: ErrorClass,
    pub message: String,
    pub retryable: bool,
}

impl Failure {
    pub fn retryable(class: ErrorClass, message: impl Into<String>) -> Failure {
        Failure {
            error_class: class,
            message: message.into(),
            retryable: true,
        }
    }

    pub fn human(class: ErrorClass, message: impl Into<String>) -> Failure {
        Failure {
            error_class: class,
            message: message.into(),
            retryable: false,
        }
    }
}

/// How a turn that did not complete normally fails the attempt. `None` for a completed turn.
pub fn turn_failure(end: &TurnEnd) -> Option<Failure> {
    Some(match end {
        TurnEnd::Completed { .. } => return None,
        TurnEnd::Failed { error } => Failure::retryable(
            ErrorClass::CodexTurnFailed,
            format!("codex reported a failed turn: {error:?}"),
        ),
        TurnEnd::Interrupted => Failure::retryable(
            ErrorClass::CodexTurnInterrupted,
            "codex interrupted the turn",
        ),
        TurnEnd::IdleTimeout { idle } => Failure::retryable(
            ErrorClass::TurnIdleTimeout,
            format!(
                "no progress for {} s; the turn was interrupted",
                idle.as_secs()
            ),
        ),
        TurnEnd::TurnTimeout { limit } => Failure::retryable(
            ErrorClass::TurnTimeout,
            format!(
                "the turn ran for its whole limit of {} s (WORKFLOW.md [agent] turn_timeout_ms) and was interrupted",
                limit.as_secs()
            ),
        ),
        TurnEnd::ProcessExited { exit, stderr_tail } => Failure::retryable(
            ErrorClass::AppServerExited,
            format!(
                "the app-server exited ({}); last stderr: {}",
                exit.as_deref().unwrap_or("unknown status"),
                stderr_tail.last().map_or("", String::as_str)
            ),
        ),
        TurnEnd::ProtocolError { detail } => {
            Failure::retryable(ErrorClass::AppServerProtocolError, detail.clone())
        }
        TurnEnd::PolicyViolation { method, summary } => Failure::human(
            ErrorClass::PolicyViolation,
            format!("the agent asked for a human ({method}: {summary}); runs are non-interactive"),
        ),
        TurnEnd::TokenBudgetExceeded { budget, used } => Failure::human(
            ErrorClass::TokenBudgetExceeded,
            format!("the attempt spent {used} tokens, over its budget of {budget}"),
        ),
    })
}

/// The needs-attention label means a human: when the agent added it and the attempt then
/// failed in a way that would otherwise be retried, the outcome is the human path, so the
/// comment, the label and the state agree (a retry comment on an issue the label keeps
/// out of selection would promise a retry that never comes).
pub fn flagged_for_human(failure: Failure, labels: &[String], policy: &TrackerPolicy) -> Failure {
    let attention = normalize_label(&policy.needs_attention_label);
    if failure.retryable && labels.contains(&attention) {
        Failure::human(
            failure.error_class,
            format!(
                "{}; the agent had added the {} label, so a human decides instead of a retry",
                failure.message, policy.needs_attention_label
            ),
        )
    } else {
        failure
    }
}

/// Turns a retryable failure into a human one when the attempt budget is spent.
pub fn with_budget(failure: Failure, attempt: u32, max_attempts: u32) -> Failure {
    if failure.retryable && attempt >= max_attempts {
        Failure {
            message: format!(
                "{} (attempt {attempt} of {max_attempts}: no attempts left)",
                failure.message
            ),
            retryable: false,
            ..failure
        }
    } else {
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::RepoRef;
    use crate::run::handoff::Review;

    fn policy() -> TrackerPolicy {
        crate::workflow::parse(
            std::path::Path::new("/w/WORKFLOW.md"),
            "body",
            std::path::Path::new("/w"),
        )
        .unwrap()
        .tracker
    }

    fn handoff() -> Handoff {
        Handoff {
            review: Review::PullRequest {
                url: "https://github.com/a/b/pull/1".into(),
                repo: RepoRef {
                    owner: "a".into(),
                    name: "b".into(),
                },
                number: 1,
            },
            summary: "done".into(),
            head_sha: "abc".into(),
        }
    }

    fn state(
        finalized: &[&str],
        handoff_recorded: bool,
        labels: &[&str],
        comments: u32,
    ) -> ToolState {
        ToolState {
            finalized: finalized.iter().map(|s| s.to_string()).collect(),
            handoff: handoff_recorded.then(handoff),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            comments,
            ..ToolState::default()
        }
    }

    #[test]
    fn the_two_legal_paths() {
        let policy = policy();
        assert_eq!(
            declared(&state(&["review_handoff"], true, &[], 0), &policy),
            Declared::ReviewHandoff(handoff())
        );
        assert_eq!(
            declared(
                &state(
                    &["manual_attention"],
                    false,
                    &["maestro:needs-attention"],
                    1
                ),
                &policy
            ),
            Declared::ManualAttention
        );
    }

    #[test]
    fn neither_both_or_mismatched_is_invalid() {
        let policy = policy();
        let invalid = |s: ToolState| matches!(declared(&s, &policy), Declared::Invalid(_));
        assert!(invalid(state(&[], true, &[], 0)), "never finalized");
        assert!(
            invalid(state(&["review_handoff"], false, &[], 0)),
            "no handoff"
        );
        assert!(invalid(state(
            &["review_handoff", "manual_attention"],
            true,
            &["maestro:needs-attention"],
            1
        )));
        assert!(invalid(state(
            &["review_handoff"],
            true,
            &["maestro:needs-attention"],
            0
        )));
        assert!(invalid(state(
            &["manual_attention"],
            true,
            &["maestro:needs-attention"],
            1
        )));
        assert!(
            invalid(state(&["manual_attention"], false, &[], 1)),
            "no label"
        );
        assert!(
            invalid(state(
                &["manual_attention"],
                false,
                &["maestro:needs-attention"],
                0
            )),
            "no comment"
        );
        // Finalizing the same path twice is still one path.
        assert!(!invalid(state(
            &["review_handoff", "review_handoff"],
            true,
            &[],
            0
        )));
    }

    #[test]
    fn the_needs_attention_label_turns_a_retry_into_the_human_path() {
        let policy = policy();
        let crashed = || Failure::retryable(ErrorClass::AppServerExited, "exited 3");
        let labelled = vec!["maestro:needs-attention".to_string()];
        let flagged = flagged_for_human(crashed(), &labelled, &policy);
        assert_eq!(flagged.error_class, ErrorClass::AppServerExited);
        assert!(!flagged.retryable);
        assert!(
            flagged
                .message
                .contains("so a human decides instead of a retry")
        );
        assert!(flagged_for_human(crashed(), &[], &policy).retryable);
        let human = Failure::human(ErrorClass::PolicyViolation, "no");
        assert_eq!(flagged_for_human(human.clone(), &labelled, &policy), human);
    }

    #[test]
    fn budget_turns_retries_into_human() {
        let failure = Failure::retryable(ErrorClass::ValidationFailed, "tests failed");
        assert!(with_budget(failure.clone(), 1, 3).retryable);
        let spent = with_budget(failure, 3, 3);
        assert!(!spent.retryable);
        assert_eq!(spent.error_class, ErrorClass::ValidationFailed);
        assert!(spent.message.contains("no attempts left"));
    }
}
