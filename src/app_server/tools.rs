//! Dynamic tool calls: what the model asked for and what the caller answers.
//!
//! The session only routes calls (`item/tool/call`) to a [`ToolDispatch`] and turns the
//! [`ToolResult`] into the reply codex expects; what the tools do (tracker writes, for example)
//! belongs to the caller.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// One `item/tool/call` request from the app-server.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The model's call id (also the `dynamicToolCall` item's id).
    pub call_id: String,
    pub turn_id: String,
    /// The dynamic tool's name as advertised in [`super::DynamicTool`].
    pub tool: String,
    /// The arguments, already parsed from the model's JSON text.
    pub arguments: Value,
}

/// The answer to one tool call; the text reaches the model either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    pub success: bool,
    pub text: String,
}

impl ToolResult {
    pub fn ok(text: impl Into<String>) -> ToolResult {
        ToolResult {
            success: true,
            text: text.into(),
        }
    }

    pub fn failure(text: impl Into<String>) -> ToolResult {
        ToolResult {
            success: false,
            text: text.into(),
        }
    }

    /// The `item/tool/call` response body.
    pub(crate) fn to_reply(&self) -> Value {
        json!({
            "contentItems": [{"type": "inputText", "text": self.text}],
            "success": self.success,
        })
    }
}

/// A tool call a worker finished, waiting for the session thread to answer it.
#[derive(Debug)]
pub(crate) struct Finished {
    pub request_id: Value,
    pub call_id: String,
    pub result: ToolResult,
}

/// Finished calls, handed from the tool workers to the session thread. A queue beside the
/// bounded event channel, so a worker never waits for room (and a turn's end, which joins the
/// workers, can never wait on a full channel).
pub(crate) type FinishedQueue = Arc<Mutex<VecDeque<Finished>>>;

/// Answers dynamic tool calls for one turn.
///
/// Calls that codex issues in parallel run on a small pool of worker threads (at most four at
/// once; more wait in a bounded queue) and are answered in the order they finish; hence `&self`
/// and `Sync` (keep mutable state behind a `Mutex`). `call` must return in bounded time: a turn
/// ends only after every call that started has returned. A panic inside `call` becomes a
/// failure result.
pub trait ToolDispatch: Sync {
    fn call(&self, call: &ToolCall) -> ToolResult;
}

/// Builds a [`ToolCall`] from `item/tool/call` params; `None` when a required field is missing.
pub(crate) fn parse_call(params: &Value) -> Option<ToolCall> {
    Some(ToolCall {
        call_id: params.get("callId")?.as_str()?.to_string(),
        turn_id: params
            .get("turnId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        tool: params.get("tool")?.as_str()?.to_string(),
        arguments: params.get("arguments").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_has_the_shape_codex_expects() {
        assert_eq!(
            ToolResult::failure("nope").to_reply(),
            json!({"contentItems": [{"type": "inputText", "text": "nope"}], "success": false})
        );
    }

    #[test]
    fn calls_parse_from_params() {
        let call = parse_call(&json!({
            "threadId": "t", "turnId": "u", "callId": "call_1", "tool": "echo",
            "namespace": null, "arguments": {"x": 1}
        }))
        .unwrap();
        assert_eq!(call.call_id, "call_1");
        assert_eq!(call.turn_id, "u");
        assert_eq!(call.tool, "echo");
        assert_eq!(call.arguments, json!({"x": 1}));
        assert_eq!(parse_call(&json!({"tool": "echo"})), None);
    }
}
