//! A session's recent events for operators: the last lines of its journal, each summarized as
//! a type, a time and one line of text.
//!
//! Only the journal's tail is read ([`read_journal_tail`], at most [`TAIL_BYTES`]), so a view of
//! a two-hour session costs the same as one of a minute. The summary knows the shapes codex
//! sends (items, errors, turns, coalesced deltas) and picks the one fact an operator scanning a
//! list wants from each; the full message stays in the journal. What the summaries contain is
//! text codex, the model or the agent produced: callers that show it to others pass their
//! scrubber (host paths, secret values), which sees each whole text before it is cut to one
//! line, so no cut can leave half a secret behind.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::journal::{Direction, JournalEntry, read_journal_tail};

/// How much of the journal's end is read for recent events.
pub const TAIL_BYTES: u64 = 512 * 1024;
/// How long one summary line may be, in characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// One journal entry, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSummary {
    /// When it was journaled (RFC 3339 UTC).
    pub at: String,
    /// The method (`item/completed`, `turn/start`, `item/agentMessage/delta`), `response` or
    /// `reply` for an answer, the local event's name (`turn_outcome`), or `garbage`.
    pub event: String,
    /// One line, at most 200 characters.
    pub message: String,
}

/// The last `max` events of the journal at `path`, oldest first, from its last
/// [`TAIL_BYTES`] only (fewer when its lines are long). `scrub` rewrites each message before it
/// is cut to one line.
pub fn recent_events(
    path: &Path,
    max: usize,
    scrub: &dyn Fn(&str) -> String,
) -> std::io::Result<Vec<EventSummary>> {
    let read = read_journal_tail(path, TAIL_BYTES)?;
    let skip = read.entries.len().saturating_sub(max);
    Ok(read.entries[skip..]
        .iter()
        .map(|entry| summarize(entry, scrub))
        .collect())
}

/// One entry as an [`EventSummary`], its message passed through `scrub` first.
pub fn summarize(entry: &JournalEntry, scrub: &dyn Fn(&str) -> String) -> EventSummary {
    let (event, message) = describe(entry);
    EventSummary {
        at: crate::clock::format_ms(entry.at_ms),
        event,
        message: one_line(&scrub(&message)),
    }
}

fn describe(entry: &JournalEntry) -> (String, String) {
    if let Some(run) = &entry.deltas {
        let noun = if run.count == 1 { "delta" } else { "deltas" };
        return (
            run.method.clone(),
            format!("{} {noun}: {}", run.count, run.text),
        );
    }
    if let Some(garbage) = &entry.garbage {
        let bytes = entry.bytes.unwrap_or(garbage.len() as u64);
        return ("garbage".into(), format!("{bytes} bytes that are not JSON"));
    }
    if entry.dir == Direction::Local {
        let event = entry.event.clone().unwrap_or_else(|| "local".into());
        let message = local(&event, &entry.detail);
        return (event, message);
    }
    let Some(msg) = &entry.msg else {
        return ("unknown".into(), String::new());
    };
    match (msg.get("method").and_then(Value::as_str), msg.get("id")) {
        (Some(method), _) => {
            let params = msg.get("params").unwrap_or(&Value::Null);
            (method.to_string(), message_text(method, params))
        }
        (None, Some(id)) => {
            let event = if entry.dir == Direction::In {
                "response"
            } else {
                "reply"
            };
            (event.into(), answer(id, msg))
        }
        (None, None) => ("unknown".into(), String::new()),
    }
}

/// The one fact worth a line from a request or notification.
fn message_text(method: &str, params: &Value) -> String {
    let text = |pointer: &str| {
        params
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match method {
        "item/started" | "item/completed" => {
            describe_item(params.get("item").unwrap_or(&Value::Null))
        }
        "error" => {
            let mut line = text("/error/message");
            let details = text("/error/additionalDetails");
            if !details.is_empty() {
                line = format!("{line}: {details}");
            }
            if params.get("willRetry").and_then(Value::as_bool) == Some(true) {
                line.push_str(" (codex retries)");
            }
            line
        }
        "warning" => text("/message"),
        "turn/start" => format!("input: {}", text("/input/0/text")),
        "turn/started" => format!("turn {}", text("/turn/id")),
        "turn/completed" => {
            let status = text("/turn/status");
            let error = text("/turn/error/message");
            if error.is_empty() {
                status
            } else {
                format!("{status}: {error}")
            }
        }
        "turn/interrupt" => format!("turn {}", text("/turnId")),
        "thread/status/changed" => text("/status/type"),
        "thread/tokenUsage/updated" => match params
            .pointer("/tokenUsage/total/totalTokens")
            .and_then(Value::as_u64)
        {
            Some(total) => format!("{total} tokens on the thread"),
            None => String::new(),
        },
        "item/tool/call" => format!("tool {}", text("/tool")),
        "item/commandExecution/requestApproval" => format!("approval for {}", text("/command")),
        _ => String::new(),
    }
}

/// An item (`item/started`, `item/completed`) by its type and the field that says what it is:
/// `command cargo test (exit 101)`, `tool issue_comment (success)`, `agent message: …`. The text
/// is codex's and the agent's, unescaped and unbounded: callers escape and cut it.
pub fn describe_item(item: &Value) -> String {
    let field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
    let kind = field("type");
    match kind {
        "agentMessage" => format!("agent message: {}", field("text")),
        "userMessage" => "user message".to_string(),
        "commandExecution" => {
            let mut line = format!("command {}", command_text(item));
            if let Some(code) = item.get("exitCode").and_then(Value::as_i64) {
                line.push_str(&format!(" (exit {code})"));
            }
            line
        }
        "dynamicToolCall" => {
            let mut line = format!("tool {}", field("tool"));
            if let Some(success) = item.get("success").and_then(Value::as_bool) {
                line.push_str(if success { " (success)" } else { " (failed)" });
            }
            line
        }
        "fileChange" => {
            let paths: Vec<&str> = item
                .get("changes")
                .and_then(Value::as_array)
                .map(|changes| {
                    changes
                        .iter()
                        .filter_map(|change| change.get("path").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            format!("file change {}", paths.join(", "))
        }
        other => other.to_string(),
    }
}

/// What a command item ran: the one command codex parsed out of its shell wrapper
/// (`commandActions`), else the whole command line (`/bin/bash -lc "…"`).
pub fn command_text(item: &Value) -> &str {
    let whole = item.get("command").and_then(Value::as_str).unwrap_or("");
    match item.get("commandActions").and_then(Value::as_array) {
        Some(actions) if actions.len() == 1 => actions[0]
            .get("command")
            .and_then(Value::as_str)
            .unwrap_or(whole),
        _ => whole,
    }
}

/// A response codex sent, or a reply Maestro sent to one of codex's requests.
fn answer(id: &Value, msg: &Value) -> String {
    if let Some(error) = msg.get("error") {
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        return format!("error to request {id}: {message}");
    }
    match msg.pointer("/result/success").and_then(Value::as_bool) {
        Some(true) => format!("to request {id}: success"),
        Some(false) => format!("to request {id}: failed"),
        None => format!("to request {id}"),
    }
}

/// A local event's detail: the fields an operator reads first, else the detail as JSON.
fn local(event: &str, detail: &Value) -> String {
    match event {
        "turn_outcome" => {
            let outcome = detail.get("outcome").and_then(Value::as_str).unwrap_or("");
            match detail.get("cause").and_then(Value::as_str) {
                Some(cause) => format!("{outcome}: {cause}"),
                None => outcome.to_string(),
            }
        }
        _ if detail.is_null() => String::new(),
        _ => detail.to_string(),
    }
}

/// Whitespace runs (newlines included) become one space; cut at [`MAX_MESSAGE_CHARS`].
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_MESSAGE_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(dir: &str, body: Value) -> JournalEntry {
        let mut line = json!({"at_ms": 1_795_651_800_000u64, "dir": dir});
        for (key, value) in body.as_object().unwrap() {
            line[key] = value.clone();
        }
        serde_json::from_value(line).unwrap()
    }

    fn summary(dir: &str, body: Value) -> (String, String) {
        let summary = summarize(&entry(dir, body), &str::to_string);
        assert_eq!(summary.at, "2026-11-26T00:10:00.000Z");
        (summary.event, summary.message)
    }

    #[test]
    fn each_kind_of_line_gets_its_one_fact() {
        let cases = [
            (
                summary(
                    "in",
                    json!({"msg": {"method": "item/completed", "params": {"item": {"type": "commandExecution", "command": "cargo test", "exitCode": 101}}}}),
                ),
                ("item/completed", "command cargo test (exit 101)"),
            ),
            (
                summary(
                    "in",
                    json!({"msg": {"method": "item/completed", "params": {"item": {"type": "agentMessage", "text": "Done.\nAll green."}}}}),
                ),
                ("item/completed", "agent message: Done. All green."),
            ),
            (
                summary(
                    "in",
                    json!({"msg": {"method": "error", "params": {"error": {"message": "Reconnecting... 2/5", "additionalDetails": "stream disconnected"}, "willRetry": true}}}),
                ),
                (
                    "error",
                    "Reconnecting... 2/5: stream disconnected (codex retries)",
                ),
            ),
            (
                summary(
                    "in",
                    json!({"msg": {"id": 0, "method": "item/tool/call", "params": {"tool": "issue_comment"}}}),
                ),
                ("item/tool/call", "tool issue_comment"),
            ),
            (
                summary(
                    "out",
                    json!({"msg": {"id": 0, "result": {"success": true, "contentItems": []}}}),
                ),
                ("reply", "to request 0: success"),
            ),
            (
                summary(
                    "in",
                    json!({"msg": {"id": 3, "error": {"code": -32600, "message": "no active turn"}}}),
                ),
                ("response", "error to request 3: no active turn"),
            ),
            (
                summary(
                    "in",
                    json!({"deltas": {"method": "item/agentMessage/delta", "count": 256, "bytes": 60000, "first_ms": 1, "last_ms": 2, "text": "Working on it"}}),
                ),
                ("item/agentMessage/delta", "256 deltas: Working on it"),
            ),
            (
                summary(
                    "local",
                    json!({"event": "turn_outcome", "detail": {"outcome": "idle_timeout", "cause": "model endpoint unreachable"}}),
                ),
                ("turn_outcome", "idle_timeout: model endpoint unreachable"),
            ),
            (
                summary("in", json!({"garbage": "oops", "bytes": 4})),
                ("garbage", "4 bytes that are not JSON"),
            ),
        ];
        for ((event, message), (want_event, want_message)) in cases {
            assert_eq!(
                (event.as_str(), message.as_str()),
                (want_event, want_message)
            );
        }
    }

    #[test]
    fn the_scrubber_sees_the_whole_text_before_the_cut() {
        let secret = "s3cr3t-value-".repeat(20);
        let text = format!("{} {secret}", "z".repeat(190));
        let entry = entry(
            "in",
            json!({"msg": {"method": "warning", "params": {"message": text}}}),
        );
        let scrub = |text: &str| text.replace(&secret, "[redacted]");
        let summary = summarize(&entry, &scrub);
        assert!(!summary.message.contains("s3cr3t"), "{}", summary.message);
    }

    #[test]
    fn a_summary_is_one_bounded_line() {
        let text = format!("line one\nline two {}", "y".repeat(500));
        let (_, message) = summary(
            "in",
            json!({"msg": {"method": "warning", "params": {"message": text}}}),
        );
        assert!(!message.contains('\n'));
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(message.starts_with("line one line two y") && message.ends_with('…'));
    }
}
