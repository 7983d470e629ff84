//! Error classes: why an attempt failed or was stopped, each with one stable snake_case name.
//!
//! The names are a compatibility promise: run records, bookkeeping and the retry queue store
//! them, comments and the summary line print them, `status` and the metrics group by them
//! (docs/spec/runtime.md, "Error classes"). The enum serializes as exactly that name, so the
//! JSON on disk reads as it always did; a name this version does not know (written by another
//! version) is kept as [`ErrorClass::Other`] and written back unchanged.
//!
//! This module names classes; which failure gets which class, and whether it is retried, is
//! decided where the failure happens (`run::verdict`, `run`, the daemon).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tracker::Category;

/// Why an attempt failed or was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// A validation command exited non-zero or timed out.
    ValidationFailed,
    /// After validation the PR no longer matches the lane.
    PrCheckFailed,
    /// After validation the handed-off branch on origin no longer matches the lane (branch
    /// handoff mode).
    BranchCheckFailed,
    /// Codex reported the turn failed.
    CodexTurnFailed,
    /// Codex interrupted the turn on its own.
    CodexTurnInterrupted,
    /// No progress for `turn_idle_timeout_ms`.
    TurnIdleTimeout,
    /// The turn ran past `[agent] turn_timeout_ms` (wall clock).
    TurnTimeout,
    /// The run's `--deadline` passed before the attempt ended; the work was stopped.
    DeadlineExceeded,
    /// The codex child died.
    AppServerExited,
    /// The codex child spoke out of protocol.
    AppServerProtocolError,
    /// The codex child did not start.
    AppServerStartFailed,
    /// `after_create` or `before_run` failed.
    HookFailed,
    /// Git clone or fetch failed, or the lane vanished.
    LaneSetupFailed,
    /// A transient tracker error (network, 5xx, rate limit).
    TrackerUnavailable,
    /// The previous attempt's process ended without recording an outcome.
    ProcessDied,
    /// The outcome could not be written to the tracker (fallback class).
    TrackerWritebackFailed,
    /// The agent used all of an attempt's `max_turns` without calling
    /// `issue_terminal_finalize`: the work continues in the next attempt (retryable, a
    /// continuation on the same lane and thread).
    ContinuationPending,
    /// The agent's declaration does not match what it recorded.
    InvalidDisposition,
    /// The agent asked for a human.
    ManualAttention,
    /// A tool call named another issue, codex asked for approval or input, or the lane's git
    /// metadata is outside it.
    PolicyViolation,
    /// Over `token_budget`.
    TokenBudgetExceeded,
    /// `[github] token_env_var` unset, or its variable unset or empty.
    GithubTokenMissing,
    /// GitHub refused the token.
    GithubAuth,
    /// A died last attempt left nothing to retry.
    AttemptsExhausted,
    /// The success state was written, the completion comment was not.
    CompletionCommentFailed,
    /// A non-transient tracker error: `tracker_<category>`.
    Tracker(Category),
    /// The issue became terminal while its lane ran.
    IssueTerminal,
    /// The issue left the active states while its lane ran.
    IssueLeftActiveStates,
    /// The daemon saw no progress for `stall_timeout_ms`.
    StalledRunDetected,
    /// The ssh connection to the lane's host failed or dropped during the attempt (`[worker]`):
    /// the agent, a hook or a validation command was cut off.
    AgentDisconnected,
    /// A review repair ended without pushing a new head to the PR branch.
    RepairPushedNothing,
    /// A review repair found no retained lane to work in (it never clones a new one: a fresh
    /// clone would not hold the PR branch's work).
    RepairLaneMissing,
    /// A daemon child ended with its record still running: `child_exited_<code>`, or
    /// `child_exited_by_signal` without a code.
    ChildExited(Option<i32>),
    /// A daemon child ended before it recorded anything: `child_failed_before_record_<code>`,
    /// or `child_failed_before_record_signal` without a code.
    ChildFailedBeforeRecord(Option<i32>),
    /// A name this version does not know, kept as written.
    Other(String),
}

/// Every class without data, for parsing names back.
const UNIT: [ErrorClass; 31] = [
    ErrorClass::ValidationFailed,
    ErrorClass::PrCheckFailed,
    ErrorClass::BranchCheckFailed,
    ErrorClass::CodexTurnFailed,
    ErrorClass::CodexTurnInterrupted,
    ErrorClass::TurnIdleTimeout,
    ErrorClass::TurnTimeout,
    ErrorClass::DeadlineExceeded,
    ErrorClass::AppServerExited,
    ErrorClass::AppServerProtocolError,
    ErrorClass::AppServerStartFailed,
    ErrorClass::HookFailed,
    ErrorClass::LaneSetupFailed,
    ErrorClass::TrackerUnavailable,
    ErrorClass::ProcessDied,
    ErrorClass::TrackerWritebackFailed,
    ErrorClass::ContinuationPending,
    ErrorClass::InvalidDisposition,
    ErrorClass::ManualAttention,
    ErrorClass::PolicyViolation,
    ErrorClass::TokenBudgetExceeded,
    ErrorClass::GithubTokenMissing,
    ErrorClass::GithubAuth,
    ErrorClass::AttemptsExhausted,
    ErrorClass::CompletionCommentFailed,
    ErrorClass::IssueTerminal,
    ErrorClass::IssueLeftActiveStates,
    ErrorClass::StalledRunDetected,
    ErrorClass::AgentDisconnected,
    ErrorClass::RepairPushedNothing,
    ErrorClass::RepairLaneMissing,
];

/// Every tracker category, for parsing `tracker_<category>` back (see the exhaustiveness test).
const CATEGORIES: [Category; 12] = [
    Category::MissingSecret,
    Category::Auth,
    Category::RateLimited,
    Category::Transport,
    Category::Status,
    Category::GraphQl,
    Category::Malformed,
    Category::Pagination,
    Category::NotFound,
    Category::UnknownState,
    Category::UnknownLabel,
    Category::Io,
];

const TRACKER: &str = "tracker_";
const CHILD_EXITED: &str = "child_exited_";
const CHILD_EXITED_BY_SIGNAL: &str = "by_signal";
const CHILD_FAILED: &str = "child_failed_before_record_";
const CHILD_FAILED_BY_SIGNAL: &str = "signal";

impl ErrorClass {
    /// The class of a tracker error: transient ones are retried, the rest need a human.
    pub fn of_tracker(error: &crate::tracker::Error) -> ErrorClass {
        if error.is_transient() {
            ErrorClass::TrackerUnavailable
        } else {
            ErrorClass::Tracker(error.category())
        }
    }

    /// The name of a class without data.
    fn unit_name(&self) -> Option<&'static str> {
        Some(match self {
            ErrorClass::ValidationFailed => "validation_failed",
            ErrorClass::PrCheckFailed => "pr_check_failed",
            ErrorClass::BranchCheckFailed => "branch_check_failed",
            ErrorClass::CodexTurnFailed => "codex_turn_failed",
            ErrorClass::CodexTurnInterrupted => "codex_turn_interrupted",
            ErrorClass::TurnIdleTimeout => "turn_idle_timeout",
            ErrorClass::TurnTimeout => "turn_timeout",
            ErrorClass::DeadlineExceeded => "deadline_exceeded",
            ErrorClass::AppServerExited => "app_server_exited",
            ErrorClass::AppServerProtocolError => "app_server_protocol_error",
            ErrorClass::AppServerStartFailed => "app_server_start_failed",
            ErrorClass::HookFailed => "hook_failed",
            ErrorClass::LaneSetupFailed => "lane_setup_failed",
            ErrorClass::TrackerUnavailable => "tracker_unavailable",
            ErrorClass::ProcessDied => "process_died",
            ErrorClass::TrackerWritebackFailed => "tracker_writeback_failed",
            ErrorClass::ContinuationPending => "continuation_pending",
            ErrorClass::InvalidDisposition => "invalid_disposition",
            ErrorClass::ManualAttention => "manual_attention",
            ErrorClass::PolicyViolation => "policy_violation",
            ErrorClass::TokenBudgetExceeded => "token_budget_exceeded",
            ErrorClass::GithubTokenMissing => "github_token_missing",
            ErrorClass::GithubAuth => "github_auth",
            ErrorClass::AttemptsExhausted => "attempts_exhausted",
            ErrorClass::CompletionCommentFailed => "completion_comment_failed",
            ErrorClass::IssueTerminal => "issue_terminal",
            ErrorClass::IssueLeftActiveStates => "issue_left_active_states",
            ErrorClass::StalledRunDetected => "stalled_run_detected",
            ErrorClass::AgentDisconnected => "agent_disconnected",
            ErrorClass::RepairPushedNothing => "repair_pushed_nothing",
            ErrorClass::RepairLaneMissing => "repair_lane_missing",
            ErrorClass::Tracker(_)
            | ErrorClass::ChildExited(_)
            | ErrorClass::ChildFailedBeforeRecord(_)
            | ErrorClass::Other(_) => return None,
        })
    }

    /// The class a stored name stands for; a name this version does not know is kept as
    /// [`ErrorClass::Other`].
    pub fn parse(name: &str) -> ErrorClass {
        if let Some(known) = UNIT
            .into_iter()
            .find(|class| class.unit_name() == Some(name))
        {
            return known;
        }
        let code = |rest: &str, signal: &str| -> Option<Option<i32>> {
            if rest == signal {
                Some(None)
            } else {
                rest.parse::<i32>().ok().map(Some)
            }
        };
        if let Some(rest) = name.strip_prefix(CHILD_EXITED) {
            if let Some(code) = code(rest, CHILD_EXITED_BY_SIGNAL) {
                return ErrorClass::ChildExited(code);
            }
        }
        if let Some(rest) = name.strip_prefix(CHILD_FAILED) {
            if let Some(code) = code(rest, CHILD_FAILED_BY_SIGNAL) {
                return ErrorClass::ChildFailedBeforeRecord(code);
            }
        }
        if let Some(rest) = name.strip_prefix(TRACKER) {
            if let Some(category) = CATEGORIES
                .into_iter()
                .find(|category| category.as_str() == rest)
            {
                return ErrorClass::Tracker(category);
            }
        }
        ErrorClass::Other(name.to_string())
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.unit_name() {
            return f.write_str(name);
        }
        match self {
            ErrorClass::Tracker(category) => write!(f, "{TRACKER}{}", category.as_str()),
            ErrorClass::ChildExited(Some(code)) => write!(f, "{CHILD_EXITED}{code}"),
            ErrorClass::ChildExited(None) => write!(f, "{CHILD_EXITED}{CHILD_EXITED_BY_SIGNAL}"),
            ErrorClass::ChildFailedBeforeRecord(Some(code)) => write!(f, "{CHILD_FAILED}{code}"),
            ErrorClass::ChildFailedBeforeRecord(None) => {
                write!(f, "{CHILD_FAILED}{CHILD_FAILED_BY_SIGNAL}")
            }
            ErrorClass::Other(name) => f.write_str(name),
            _ => Ok(()),
        }
    }
}

/// Fixtures and tools spell classes by name: `Some("validation_failed".into())`.
impl From<&str> for ErrorClass {
    fn from(name: &str) -> Self {
        ErrorClass::parse(name)
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ErrorClass {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ErrorClass::parse(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_round_trips_through_its_name() {
        let mut classes: Vec<ErrorClass> = UNIT.to_vec();
        classes.extend(CATEGORIES.into_iter().map(ErrorClass::Tracker));
        classes.extend([
            ErrorClass::ChildExited(Some(3)),
            ErrorClass::ChildExited(None),
            ErrorClass::ChildFailedBeforeRecord(Some(1)),
            ErrorClass::ChildFailedBeforeRecord(None),
            ErrorClass::Other("from_a_later_version".into()),
        ]);
        for class in classes {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{class}\""));
            assert_eq!(serde_json::from_str::<ErrorClass>(&json).unwrap(), class);
        }
    }

    #[test]
    fn names_read_as_the_spec_spells_them() {
        let cases = [
            (ErrorClass::ValidationFailed, "validation_failed"),
            (ErrorClass::Tracker(Category::Auth), "tracker_auth"),
            (ErrorClass::TrackerUnavailable, "tracker_unavailable"),
            (ErrorClass::ChildExited(Some(101)), "child_exited_101"),
            (ErrorClass::ChildExited(None), "child_exited_by_signal"),
            (
                ErrorClass::ChildFailedBeforeRecord(Some(1)),
                "child_failed_before_record_1",
            ),
            (
                ErrorClass::ChildFailedBeforeRecord(None),
                "child_failed_before_record_signal",
            ),
            (ErrorClass::StalledRunDetected, "stalled_run_detected"),
            (ErrorClass::AgentDisconnected, "agent_disconnected"),
            (ErrorClass::DeadlineExceeded, "deadline_exceeded"),
        ];
        for (class, name) in cases {
            assert_eq!(class.to_string(), name);
            assert_eq!(ErrorClass::parse(name), class);
        }
        assert_eq!(
            ErrorClass::parse("child_exited_soon"),
            ErrorClass::Other("child_exited_soon".into())
        );
    }

    #[test]
    fn every_tracker_category_is_listed() {
        // A new category fails to compile here until it is added to CATEGORIES too.
        for category in CATEGORIES {
            match category {
                Category::MissingSecret
                | Category::Auth
                | Category::RateLimited
                | Category::Transport
                | Category::Status
                | Category::GraphQl
                | Category::Malformed
                | Category::Pagination
                | Category::NotFound
                | Category::UnknownState
                | Category::UnknownLabel
                | Category::Io => {}
            }
        }
        assert_eq!(CATEGORIES.len(), 12);
    }
}
