//! What the agent did, from the attempt's protocol journal: each command with its exit code,
//! each tool call with its result, its messages, file changes, codex's errors and how each turn
//! ended, one [`Action`] each.
//!
//! Only the journal's last [`JOURNAL_TAIL_BYTES`] are read ([`read_journal_tail`]), so a long
//! session costs what a short one does and a live journal (its last line torn) reads fine.
//! Streaming deltas are already coalesced in the journal; an item appears once, from its
//! `item/completed` — or from its `item/started` while it still runs. The texts are codex's
//! and the agent's: secret values are scrubbed here, and the text view escapes them.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::app_server::{Direction, JournalEntry, command_text, read_journal_tail};
use crate::clock;

/// How much of the journal's end is read.
pub const JOURNAL_TAIL_BYTES: u64 = 8 * 1024 * 1024;
/// The most actions kept (the latest).
pub const MAX_ACTIONS: usize = 500;
/// How long one action's text may be, in characters.
const MAX_TEXT_CHARS: usize = 300;

/// One thing the agent (or codex about it) did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// When it started (commands, tools) or was journaled (RFC 3339 UTC).
    pub at: String,
    /// `command`, `tool`, `message`, `file_change`, `error` or `turn`.
    pub kind: &'static str,
    /// The command line, the tool's name, the message, the changed paths, codex's error, or how
    /// the turn ended; one line, at most 300 characters.
    pub text: String,
    /// A command's exit code.
    pub exit_code: Option<i64>,
    /// A tool call's result.
    pub success: Option<bool>,
    pub duration_ms: Option<u64>,
    /// Started and not completed when the journal was read (live, or cut off).
    pub running: bool,
}

/// The journal as read for the view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Digest {
    pub actions: Vec<Action>,
    /// Journal entries read (the last [`JOURNAL_TAIL_BYTES`] of the file).
    pub entries_read: usize,
    /// The file was longer than the part read: earlier actions are not listed.
    pub truncated: bool,
    /// Actions left out beyond [`MAX_ACTIONS`] (the oldest).
    pub actions_dropped: usize,
}

/// Reads the journal at `path` (`None` when it does not exist) and lists the agent's actions;
/// `scrub` sees every text before it is cut.
pub fn digest(path: &Path, scrub: &dyn Fn(&str) -> String) -> std::io::Result<Option<Digest>> {
    let bytes = match std::fs::metadata(path) {
        Ok(metadata) => metadata.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let read = read_journal_tail(path, JOURNAL_TAIL_BYTES)?;
    let mut actions = actions(&read.entries, scrub);
    let actions_dropped = actions.len().saturating_sub(MAX_ACTIONS);
    actions.drain(..actions_dropped);
    Ok(Some(Digest {
        actions,
        entries_read: read.entries.len(),
        truncated: bytes > JOURNAL_TAIL_BYTES,
        actions_dropped,
    }))
}

/// The actions in `entries`, in the order they started.
pub fn actions(entries: &[JournalEntry], scrub: &dyn Fn(&str) -> String) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    // Item id → its action's index, so a completion replaces what its start listed.
    let mut started: HashMap<String, usize> = HashMap::new();
    for entry in entries {
        if entry.dir == Direction::Local {
            if entry.event.as_deref() == Some("turn_outcome") {
                actions.push(turn_outcome(entry, scrub));
            }
            continue;
        }
        if entry.dir != Direction::In {
            continue;
        }
        let Some(msg) = &entry.msg else {
            continue;
        };
        let method = msg.get("method").and_then(Value::as_str).unwrap_or("");
        let params = msg.get("params").unwrap_or(&Value::Null);
        match method {
            "item/started" | "item/completed" => {
                let item = params.get("item").unwrap_or(&Value::Null);
                let Some(mut action) = item_action(item, entry.at_ms, scrub) else {
                    continue;
                };
                let id = item.get("id").and_then(Value::as_str).map(str::to_string);
                action.running = method == "item/started";
                match id.as_ref().and_then(|id| started.get(id)) {
                    Some(&index) => {
                        // The completion keeps the start's time: the list is in start order.
                        action.at = actions[index].at.clone();
                        actions[index] = action;
                    }
                    None => {
                        if let Some(id) = id {
                            started.insert(id, actions.len());
                        }
                        actions.push(action);
                    }
                }
            }
            "error" => {
                let message = params
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let retries = params.get("willRetry").and_then(Value::as_bool) == Some(true);
                let text = if retries {
                    format!("{message} (codex retries)")
                } else {
                    message.to_string()
                };
                actions.push(plain(entry.at_ms, "error", &text, scrub));
            }
            _ => {}
        }
    }
    actions
}

/// An item as an action; `None` for what the agent did not do (the prompt, reasoning).
fn item_action(item: &Value, at_ms: u64, scrub: &dyn Fn(&str) -> String) -> Option<Action> {
    let field = |name: &str| item.get(name).and_then(Value::as_str).unwrap_or("");
    let at = item
        .get("startedAtMs")
        .and_then(Value::as_u64)
        .unwrap_or(at_ms);
    let (kind, text) = match field("type") {
        "commandExecution" => ("command", command_text(item).to_string()),
        "dynamicToolCall" | "mcpToolCall" => ("tool", field("tool").to_string()),
        "agentMessage" => ("message", field("text").to_string()),
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
            ("file_change", paths.join(", "))
        }
        _ => return None,
    };
    let mut action = plain(at, kind, &text, scrub);
    action.exit_code = item.get("exitCode").and_then(Value::as_i64);
    action.success = item.get("success").and_then(Value::as_bool);
    action.duration_ms = item.get("durationMs").and_then(Value::as_u64);
    Some(action)
}

/// How a turn ended, from Maestro's own `turn_outcome` journal event.
fn turn_outcome(entry: &JournalEntry, scrub: &dyn Fn(&str) -> String) -> Action {
    let detail = &entry.detail;
    let outcome = detail.get("outcome").and_then(Value::as_str).unwrap_or("");
    let text = match detail.get("cause").and_then(Value::as_str) {
        Some(cause) => format!("{outcome}: {cause}"),
        None => outcome.to_string(),
    };
    let mut action = plain(entry.at_ms, "turn", &text, scrub);
    action.duration_ms = detail.get("duration_ms").and_then(Value::as_u64);
    action
}

fn plain(at_ms: u64, kind: &'static str, text: &str, scrub: &dyn Fn(&str) -> String) -> Action {
    Action {
        at: clock::format_ms(at_ms),
        kind,
        text: one_line(&scrub(text)),
        exit_code: None,
        success: None,
        duration_ms: None,
        running: false,
    }
}

/// Whitespace runs (newlines included) become one space; cut at [`MAX_TEXT_CHARS`].
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_TEXT_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_TEXT_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(at_ms: u64, dir: &str, body: Value) -> JournalEntry {
        let mut line = json!({"at_ms": at_ms, "dir": dir});
        for (key, value) in body.as_object().unwrap() {
            line[key] = value.clone();
        }
        serde_json::from_value(line).unwrap()
    }

    fn item(method: &str, item: Value) -> Value {
        json!({"msg": {"method": method, "params": {"item": item}}})
    }

    #[test]
    fn a_completed_item_replaces_its_start_and_keeps_its_place() {
        let command = json!({"type": "commandExecution", "id": "c1", "command": "/bin/bash -lc \"cargo test\"",
            "commandActions": [{"type": "unknown", "command": "cargo test"}], "startedAtMs": 1000});
        let mut done = command.clone();
        done["exitCode"] = json!(101);
        done["durationMs"] = json!(4500);
        let entries = vec![
            entry(
                1000,
                "in",
                item("item/started", json!({"type": "userMessage", "id": "u"})),
            ),
            entry(1000, "in", item("item/started", command)),
            entry(
                2000,
                "in",
                item(
                    "item/started",
                    json!({"type": "dynamicToolCall", "id": "t1", "tool": "issue_comment"}),
                ),
            ),
            entry(
                3000,
                "in",
                item(
                    "item/completed",
                    json!({"type": "dynamicToolCall", "id": "t1", "tool": "issue_comment", "success": true}),
                ),
            ),
            entry(5500, "in", item("item/completed", done)),
            entry(
                6000,
                "in",
                json!({"deltas": {"method": "item/agentMessage/delta", "count": 3, "bytes": 9, "first_ms": 1, "last_ms": 2, "text": "Do"}}),
            ),
            entry(
                6100,
                "in",
                item(
                    "item/completed",
                    json!({"type": "agentMessage", "id": "m1", "text": "Done.\nAll green."}),
                ),
            ),
            entry(
                6200,
                "local",
                json!({"event": "turn_outcome", "detail": {"outcome": "completed", "duration_ms": 5200}}),
            ),
            entry(
                7000,
                "in",
                item(
                    "item/started",
                    json!({"type": "commandExecution", "id": "c2", "command": "sleep 60"}),
                ),
            ),
        ];
        let actions = actions(&entries, &str::to_string);
        let summary: Vec<String> = actions
            .iter()
            .map(|a| {
                format!(
                    "{} {} exit={:?} success={:?} running={}",
                    a.kind, a.text, a.exit_code, a.success, a.running
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                "command cargo test exit=Some(101) success=None running=false",
                "tool issue_comment exit=None success=Some(true) running=false",
                "message Done. All green. exit=None success=None running=false",
                "turn completed exit=None success=None running=false",
                "command sleep 60 exit=None success=None running=true",
            ]
        );
        assert_eq!(actions[0].at, clock::format_ms(1000));
        assert_eq!(actions[0].duration_ms, Some(4500));
    }

    #[test]
    fn texts_are_scrubbed_before_they_are_cut() {
        let secret = "s3cr3t".repeat(60);
        let entries = vec![entry(
            1,
            "in",
            json!({"msg": {"method": "error", "params": {"error": {"message": format!("{} {secret}", "x".repeat(290))}, "willRetry": true}}}),
        )];
        let scrub = |text: &str| text.replace(&secret, "[redacted]");
        let actions = actions(&entries, &scrub);
        assert!(!actions[0].text.contains("s3cr3t"), "{}", actions[0].text);
    }
}
