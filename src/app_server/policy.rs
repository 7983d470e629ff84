//! The non-interactive policy: how every server→client request other than a dynamic tool call
//! is answered, so a run never waits on a human.
//!
//! Approval and user-input requests are refused (`cancel`, or the nearest equivalent) and make
//! the turn a policy violation; the turn loop then interrupts the turn. Requests Maestro does
//! not know get a JSON-RPC error, which codex treats as a failure or decline. This module only
//! decides the reply and the summary; sending it and ending the turn belong to the turn loop.
//! The policy is documented in `docs/spec/app-server.md`; change both together.

use serde_json::{Value, json};

use super::wire::METHOD_NOT_FOUND;

/// How to answer one server request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Reply with `reply`; the request asked for a human, so the turn is a policy violation.
    Refuse { reply: Value, summary: String },
    /// Reply with `result`; nothing to see (for example `currentTime/read`).
    Result(Value),
    /// Reply with a JSON-RPC error: Maestro does not handle this method.
    Unsupported { code: i64, message: String },
}

/// The longest violation summary kept (it ends up in run records and tracker comments).
const MAX_SUMMARY_CHARS: usize = 400;

/// Decides the answer to `method`. `file_paths` are the paths of the `fileChange` item the
/// request refers to (codex does not repeat them in the request), when known.
pub(crate) fn answer(method: &str, params: &Value, file_paths: Option<&[String]>) -> Answer {
    let text = |name: &str| params.get(name).and_then(Value::as_str).unwrap_or("");
    let with_reason = |what: String, reason: &str| {
        if reason.is_empty() {
            what
        } else {
            format!("{what}; reason: {reason}")
        }
    };
    let refuse = |reply: Value, summary: String| Answer::Refuse {
        reply,
        summary: truncate(&summary),
    };
    match method {
        // `cancel` rather than `decline`: decline lets the model carry on and ask again, cancel
        // ends the turn (verified on codex 0.169.0), which is what a policy violation means.
        "item/commandExecution/requestApproval" => refuse(
            json!({"decision": "cancel"}),
            with_reason(
                format!("run command `{}` in {}", text("command"), text("cwd")),
                text("reason"),
            ),
        ),
        "item/fileChange/requestApproval" => {
            let paths = match file_paths {
                Some(paths) if !paths.is_empty() => paths.join(", "),
                _ => "files not named in the request".to_string(),
            };
            refuse(
                json!({"decision": "cancel"}),
                with_reason(format!("change {paths}"), text("reason")),
            )
        }
        // Granting an empty set is the documented way to grant nothing.
        "item/permissions/requestApproval" => refuse(
            json!({"permissions": {}}),
            with_reason(
                format!(
                    "grant permissions {}",
                    params.get("permissions").unwrap_or(&Value::Null)
                ),
                text("reason"),
            ),
        ),
        "mcpServer/elicitation/request" => refuse(
            json!({"action": "cancel"}),
            format!(
                "answer MCP server `{}`: {}",
                text("serverName"),
                text("message")
            ),
        ),
        "item/tool/requestUserInput" => {
            let questions: Vec<String> = params
                .get("questions")
                .and_then(Value::as_array)
                .map(|questions| {
                    questions
                        .iter()
                        .filter_map(|q| q.get("question").and_then(Value::as_str))
                        .map(|q| format!("\"{q}\""))
                        .collect()
                })
                .unwrap_or_default();
            refuse(
                json!({"answers": {}}),
                format!("answer questions {}", questions.join("; ")),
            )
        }
        // The legacy (pre-v2) approval requests; `turn/start` turns should never send them.
        "execCommandApproval" | "applyPatchApproval" => refuse(
            json!({"decision": "abort"}),
            format!(
                "approve ({method}) {}",
                params.get("command").unwrap_or(params)
            ),
        ),
        "currentTime/read" => {
            Answer::Result(json!({"currentTimeAt": crate::clock::now_ms() / 1000}))
        }
        _ => Answer::Unsupported {
            code: METHOD_NOT_FOUND,
            message: format!("maestro does not handle {method}; it runs unattended"),
        },
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvals_are_cancelled_and_summarised() {
        let answer = answer(
            "item/commandExecution/requestApproval",
            &json!({"command": "/bin/bash -lc 'rm -rf x'", "cwd": "/lane", "reason": "cleanup"}),
            None,
        );
        assert_eq!(
            answer,
            Answer::Refuse {
                reply: json!({"decision": "cancel"}),
                summary: "run command `/bin/bash -lc 'rm -rf x'` in /lane; reason: cleanup".into()
            }
        );
        let paths = vec!["src/a.rs".to_string(), "src/b.rs".to_string()];
        let Answer::Refuse { reply, summary } = super::answer(
            "item/fileChange/requestApproval",
            &json!({"itemId": "i"}),
            Some(&paths),
        ) else {
            panic!()
        };
        assert_eq!(reply, json!({"decision": "cancel"}));
        assert_eq!(summary, "change src/a.rs, src/b.rs");
    }

    #[test]
    fn every_human_facing_request_is_refused() {
        let cases = [
            (
                "item/permissions/requestApproval",
                json!({"permissions": {}}),
            ),
            ("mcpServer/elicitation/request", json!({"action": "cancel"})),
            ("item/tool/requestUserInput", json!({"answers": {}})),
            ("execCommandApproval", json!({"decision": "abort"})),
            ("applyPatchApproval", json!({"decision": "abort"})),
        ];
        for (method, expected) in cases {
            match answer(
                method,
                &json!({"questions": [{"question": "Color?"}]}),
                None,
            ) {
                Answer::Refuse { reply, .. } => assert_eq!(reply, expected, "{method}"),
                other => panic!("{method}: {other:?}"),
            }
        }
        let Answer::Refuse { summary, .. } = answer(
            "item/tool/requestUserInput",
            &json!({"questions": [{"id": "c", "question": "Color?"}]}),
            None,
        ) else {
            panic!()
        };
        assert_eq!(summary, "answer questions \"Color?\"");
    }

    #[test]
    fn unknown_requests_get_method_not_found_and_summaries_are_bounded() {
        assert!(matches!(
            answer("account/chatgptAuthTokens/refresh", &json!({}), None),
            Answer::Unsupported { code: -32601, .. }
        ));
        assert!(matches!(
            answer("currentTime/read", &json!({}), None),
            Answer::Result(_)
        ));
        let long = "x".repeat(5000);
        let Answer::Refuse { summary, .. } = answer(
            "item/commandExecution/requestApproval",
            &json!({"command": long}),
            None,
        ) else {
            panic!()
        };
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS + 1);
    }
}
