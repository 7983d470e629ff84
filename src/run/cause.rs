//! What codex said about a failed turn, kept for the operator, and the idle-timeout streak that
//! sends an issue to a human instead of one more retry.
//!
//! A model Maestro cannot reach (no network, expired login) makes every attempt end at the idle
//! timeout in exactly the same way; retrying it forever only spends the day. So each failing
//! turn's cause (`crate::app_server::Cause`) goes into the run record, and the bookkeeping counts
//! the idle timeouts in a row that share one cause. The third goes to a human with that cause.
//! Pure functions, so the rule is unit-tested; `mod.rs` and `conclude.rs` call them.

use super::verdict::Failure;
use crate::app_server::Cause;
use crate::workspace::record::{ErrorClass, FailureCause, IdleTimeoutStreak, IssueState};

/// Idle timeouts in a row, with the same cause, after which a human decides.
pub const IDLE_STREAK_LIMIT: u32 = 3;
/// The class of a turn that ended at the idle timeout.
const IDLE_CLASS: ErrorClass = ErrorClass::TurnIdleTimeout;

/// The cause as the run record keeps it.
pub fn recorded(cause: &Cause) -> FailureCause {
    FailureCause {
        kind: cause.kind.as_str().to_string(),
        message: cause.text.clone(),
    }
}

/// How many idle timeouts in a row with cause `kind` this attempt makes, itself included. The
/// streak carries over only within an episode (attempt 2 and later), from the bookkeeping as
/// it was before this attempt.
fn streak_count(previous: Option<&IssueState>, attempt: u32, kind: &str) -> u32 {
    previous
        .filter(|_| attempt > 1)
        .and_then(|state| state.idle_timeouts.as_ref())
        .filter(|streak| streak.cause == kind)
        .map_or(0, |streak| streak.count)
        .saturating_add(1)
}

/// A retryable idle timeout that makes [`IDLE_STREAK_LIMIT`] in a row with the same cause
/// becomes the human path; every other failure is returned as it is.
pub fn escalate(
    failure: Failure,
    cause: Option<&FailureCause>,
    previous: Option<&IssueState>,
    attempt: u32,
) -> Failure {
    let Some(cause) = cause else {
        return failure;
    };
    if failure.error_class != IDLE_CLASS || !failure.retryable {
        return failure;
    }
    let count = streak_count(previous, attempt, &cause.kind);
    if count < IDLE_STREAK_LIMIT {
        return failure;
    }
    // The cause itself is the record's and the comment's `cause`; the message says what the
    // streak decided.
    Failure::human(
        IDLE_CLASS,
        format!(
            "{}; that is {count} idle timeouts in a row with the same cause ({}), so a human decides instead of another retry",
            failure.message, cause.kind
        ),
    )
}

/// The streak the bookkeeping keeps after an attempt that ended with `error_class` and
/// `cause`. `counts` is false for attempts that do not count against the budget (interrupted,
/// skipped): they leave the streak as it was. A person moving the issue ends it.
pub fn next_streak(
    error_class: Option<&ErrorClass>,
    cause: Option<&FailureCause>,
    previous: Option<&IssueState>,
    attempt: u32,
    counts: bool,
    moved_by_person: bool,
) -> Option<IdleTimeoutStreak> {
    if moved_by_person {
        return None;
    }
    if !counts {
        return previous.and_then(|state| state.idle_timeouts.clone());
    }
    match (error_class, cause) {
        (Some(&IDLE_CLASS), Some(cause)) => Some(IdleTimeoutStreak {
            cause: cause.kind.clone(),
            count: streak_count(previous, attempt, &cause.kind),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(kind: &str) -> FailureCause {
        FailureCause {
            kind: kind.into(),
            message: format!("{kind}: check it"),
        }
    }

    fn after(streak: Option<(&str, u32)>) -> IssueState {
        IssueState {
            idle_timeouts: streak.map(|(cause, count)| IdleTimeoutStreak {
                cause: cause.into(),
                count,
            }),
            ..IssueState::default()
        }
    }

    fn idle() -> Failure {
        Failure::retryable(
            IDLE_CLASS,
            "no progress for 300 s; the turn was interrupted",
        )
    }

    #[test]
    fn the_third_idle_timeout_with_one_cause_goes_to_a_human() {
        let unreachable = cause("model_unreachable");
        let two = after(Some(("model_unreachable", 2)));
        let third = escalate(idle(), Some(&unreachable), Some(&two), 3);
        assert!(!third.retryable);
        assert_eq!(third.error_class, IDLE_CLASS);
        assert!(
            third
                .message
                .contains("3 idle timeouts in a row with the same cause (model_unreachable)"),
            "{third:?}"
        );
        assert!(
            third
                .message
                .ends_with("so a human decides instead of another retry")
        );
        // The second, a different cause, no cause, another class: retried as before.
        let one = after(Some(("model_unreachable", 1)));
        assert!(escalate(idle(), Some(&unreachable), Some(&one), 2).retryable);
        assert!(escalate(idle(), Some(&cause("model_auth")), Some(&two), 3).retryable);
        assert!(escalate(idle(), None, Some(&two), 3).retryable);
        let failed = Failure::retryable(ErrorClass::CodexTurnFailed, "x");
        assert!(escalate(failed, Some(&unreachable), Some(&two), 3).retryable);
        // A new episode (attempt 1) starts counting again.
        assert!(escalate(idle(), Some(&unreachable), Some(&two), 1).retryable);
    }

    #[test]
    fn the_streak_counts_same_causes_and_survives_uncounted_attempts() {
        let record = |class: ErrorClass, kind: Option<&str>| (class, kind.map(cause));
        let one = after(Some(("model_unreachable", 1)));
        let streak = |(class, cause): &(ErrorClass, Option<FailureCause>),
                      previous: &IssueState,
                      attempt,
                      counts,
                      moved| {
            next_streak(
                Some(class),
                cause.as_ref(),
                Some(previous),
                attempt,
                counts,
                moved,
            )
            .map(|s| (s.cause, s.count))
        };
        let idle = record(IDLE_CLASS, Some("model_unreachable"));
        assert_eq!(
            streak(&idle, &one, 2, true, false),
            Some(("model_unreachable".into(), 2))
        );
        assert_eq!(
            streak(
                &record(IDLE_CLASS, Some("model_auth")),
                &one,
                2,
                true,
                false
            ),
            Some(("model_auth".into(), 1))
        );
        assert_eq!(
            streak(
                &record(ErrorClass::ValidationFailed, None),
                &one,
                2,
                true,
                false
            ),
            None
        );
        assert_eq!(
            streak(&record(IDLE_CLASS, None), &one, 2, true, false),
            None
        );
        assert_eq!(
            streak(
                &record(ErrorClass::IssueLeftActiveStates, None),
                &one,
                2,
                false,
                false
            ),
            Some(("model_unreachable".into(), 1)),
            "an interrupted attempt leaves the streak alone"
        );
        assert_eq!(
            streak(&idle, &one, 2, true, true),
            None,
            "a person moved it"
        );
    }
}
