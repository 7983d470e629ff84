//! What a turn is given and what it returns: [`TurnLimits`] in, [`TurnOutcome`] out.
//!
//! The types only; `turn.rs` drives a turn and decides which [`TurnEnd`] it gets. An outcome
//! also carries the error notices codex sent during the turn, and [`TurnOutcome::cause`] reads
//! the most telling of them (`notices.rs`), so a timeout can say what codex was struggling with.

use std::time::Duration;

use serde_json::Value;

use super::accounting::TokenUsage;
use super::notices::{self, Cause, ErrorNotice};

/// Limits on one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnLimits {
    /// Total tokens this turn may spend, measured on the thread's cumulative total; when it is
    /// exceeded the turn is interrupted and ends [`TurnEnd::TokenBudgetExceeded`].
    pub token_budget: Option<u64>,
    /// Wall-clock time this turn may take, busy or not; when it passes the turn is interrupted
    /// and ends [`TurnEnd::TurnTimeout`]. The idle timeout only bounds a turn that goes quiet; an
    /// agent that keeps streaming is bounded by this.
    pub turn_timeout: Option<Duration>,
}

/// How a turn ended, with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOutcome {
    /// The turn id, once codex assigned one.
    pub turn_id: Option<String>,
    pub end: TurnEnd,
    /// Tokens spent by this turn: the difference of the thread totals before and after.
    pub usage: TokenUsage,
    pub duration: Duration,
    /// The child is gone (it exited or was killed); further turns return `ProcessExited`.
    pub session_ended: bool,
    /// The last distinct `error` notifications of the turn (retry notes included), oldest first.
    pub notices: Vec<ErrorNotice>,
}

impl TurnOutcome {
    /// The most telling of the turn's error notices, said for an operator; `None` when codex
    /// sent none.
    pub fn cause(&self) -> Option<Cause> {
        notices::cause(&self.notices)
    }
}

/// The ways a turn can end.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    /// `turn/completed` with status `completed`; the last agent message, if there was one.
    Completed { final_message: Option<String> },
    /// `turn/completed` with status `failed`; codex's error as reported.
    Failed { error: TurnError },
    /// Interrupted: by the caller's stop flag, or by codex itself.
    Interrupted,
    /// No progress for the idle timeout; the turn was interrupted.
    IdleTimeout { idle: Duration },
    /// The turn ran for its whole wall-clock limit; it was interrupted.
    TurnTimeout { limit: Duration },
    /// The child exited (or closed stdout) during the turn.
    ProcessExited {
        exit: Option<String>,
        stderr_tail: Vec<String>,
    },
    /// The app-server broke the protocol: rejected `turn/start`, never answered it, or sent
    /// a line longer than the limit.
    ProtocolError { detail: String },
    /// The app-server asked for a human (an approval or user input); the request was refused
    /// and the turn interrupted. `summary` says what was asked.
    PolicyViolation { method: String, summary: String },
    /// The turn spent more than its token budget and was interrupted.
    TokenBudgetExceeded { budget: u64, used: u64 },
}

impl TurnEnd {
    /// A stable one-word name for logs and records.
    pub fn kind(&self) -> &'static str {
        match self {
            TurnEnd::Completed { .. } => "completed",
            TurnEnd::Failed { .. } => "failed",
            TurnEnd::Interrupted => "interrupted",
            TurnEnd::IdleTimeout { .. } => "idle_timeout",
            TurnEnd::TurnTimeout { .. } => "turn_timeout",
            TurnEnd::ProcessExited { .. } => "process_exited",
            TurnEnd::ProtocolError { .. } => "protocol_error",
            TurnEnd::PolicyViolation { .. } => "policy_violation",
            TurnEnd::TokenBudgetExceeded { .. } => "token_budget_exceeded",
        }
    }
}

/// Codex's `TurnError`.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnError {
    pub message: String,
    /// `codexErrorInfo` as sent: a string such as `"internalServerError"` or an object such
    /// as `{"httpConnectionFailed":{"httpStatusCode":null}}`.
    pub codex_error_info: Option<Value>,
    pub additional_details: Option<String>,
}

impl TurnError {
    pub(crate) fn from_value(value: &Value) -> Option<TurnError> {
        Some(TurnError {
            message: value.get("message")?.as_str()?.to_string(),
            codex_error_info: value
                .get("codexErrorInfo")
                .filter(|v| !v.is_null())
                .cloned(),
            additional_details: value
                .get("additionalDetails")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}
