//! WORKFLOW.md's `[agent]` table: style hints for `thread/start`, the wall-clock limit of one
//! turn, and the transport a file written for a peer implementation may name.
//!
//! It only reads and validates, with the same line/column diagnostics as the other tables;
//! the turn loop enforces the limit (`crate::app_server`).

use super::parse::positive;
use super::{AgentStyle, Personality};
use crate::config::STDIO_TRANSPORT;
use crate::toml_fields::{Problem, Table};

/// Reads `[agent]` into `agent`; every problem is pushed with its span.
pub(super) fn read_agent(
    table: &mut Table<'_, '_>,
    agent: &mut AgentStyle,
    problems: &mut Vec<Problem>,
) {
    if let Some(value) = table.string("personality", problems) {
        agent.personality = match value.get_ref().trim() {
            "none" => Some(Personality::None),
            "friendly" => Some(Personality::Friendly),
            "pragmatic" => Some(Personality::Pragmatic),
            other => {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("personality"),
                    message: format!(
                        "unknown personality `{other}`; expected one of: none, friendly, pragmatic"
                    ),
                });
                None
            }
        };
    }
    if let Some(value) = table.string("service_tier", problems) {
        let tier = value.get_ref().trim();
        if tier.is_empty() {
            problems.push(Problem {
                span: value.span(),
                field: table.field("service_tier"),
                message: "must not be empty; omit the key instead".into(),
            });
        } else {
            agent.service_tier = Some(tier.to_string());
        }
    }
    if let Some(ms) = positive(table, "turn_timeout_ms", problems) {
        agent.turn_timeout_ms = ms;
    }
    // Files written for the peer implementation name their transport, as maestro.toml's
    // `[agent]` may. Maestro speaks to codex over the child's stdio only, so that one value is
    // accepted (and changes nothing); any other would silently mean something Maestro does not
    // do.
    if let Some(value) = table.string("transport", problems) {
        let transport = value.get_ref().trim();
        if transport != STDIO_TRANSPORT {
            problems.push(Problem {
                span: value.span(),
                field: table.field("transport"),
                message: format!(
                    "unsupported transport \"{}\": maestro runs codex app-server as a child and speaks JSON-RPC over its stdio only; write \"{STDIO_TRANSPORT}\" or remove the key",
                    crate::github::shown(transport)
                ),
            });
        }
    }
}
