//! `maestro show` for terminals: a header with the record's facts, then the timeline, what the
//! agent did, Maestro's tool calls, the validation output, the writeback and the files.
//!
//! Every value that came from the tracker, codex, the agent or a lane command is escaped
//! ([`crate::escape`]) before it is printed, so nothing in it can move the cursor or forge a
//! line; validation output keeps its lines, each escaped and indented.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Shown, Writeback};
use crate::clock;
use crate::escape::text;
use crate::workspace::record::{RunRecord, RunStatus, Tokens};

/// How many lines of each validation command's output tail are shown.
const OUTPUT_LINES: usize = 15;

/// The whole view.
pub fn render_text(shown: &Shown) -> String {
    let mut out = String::new();
    let run = &shown.run;
    header(&mut out, shown);
    timeline(&mut out, run);
    agent(&mut out, shown);
    tool_calls(&mut out, run);
    validation(&mut out, run);
    writeback(&mut out, &shown.writeback, run);
    files(&mut out, shown);
    if !shown.other_attempts.is_empty() {
        out.push_str("\nOTHER ATTEMPTS\n");
        for other in &shown.other_attempts {
            let _ = writeln!(
                out,
                "  a{:<3} {:<16} {}  {}{}",
                other.attempt,
                other.status.as_str(),
                text(&other.started_at),
                text(&other.run_id),
                other
                    .error_class
                    .as_deref()
                    .map(|class| format!("  {}", text(class)))
                    .unwrap_or_default()
            );
        }
    }
    out
}

fn header(out: &mut String, shown: &Shown) {
    let run = &shown.run;
    let _ = writeln!(
        out,
        "maestro show: {} attempt {}, run {}",
        text(&run.issue_identifier),
        run.attempt,
        text(&run.run_id)
    );
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<12} {value}");
    };
    let status = match (&shown.live, run.status) {
        (Some(live), _) => format!(
            "running: {} ({}), idle {}, {} events, pid {} {}",
            live.phase,
            live.wait_reason.as_deref().map(text).unwrap_or_default(),
            clock::humanize(Duration::from_secs(live.idle_for_seconds)),
            live.event_count,
            live.pid,
            if live.owner_alive { "alive" } else { "gone" }
        ),
        (None, RunStatus::Running) => {
            format!("running, phase {}", crate::status::phase_name(run.phase))
        }
        (None, status) => match (&run.finished_at, duration(run)) {
            (Some(finished), Some(took)) => format!(
                "{} (finished {}, after {})",
                status.as_str(),
                text(finished),
                clock::humanize(took)
            ),
            _ => status.as_str().to_string(),
        },
    };
    field("status", status);
    let url = run
        .issue_url
        .as_deref()
        .map(|url| format!("  {}", text(url)))
        .unwrap_or_default();
    field("issue", format!("{}{url}", text(&run.issue_identifier)));
    field("started", text(&run.started_at).into_owned());
    field("branch", text(&run.branch).into_owned());
    field("lane", text(&run.workspace_path).into_owned());
    if let Some(thread) = &run.thread_id {
        field("thread", text(thread).into_owned());
    }
    let tokens = shown.live.as_ref().map_or(run.tokens, |live| live.tokens);
    let turns = shown
        .live
        .as_ref()
        .map_or(run.turn_count, |live| live.turn_count);
    field("turns", format!("{turns}, tokens {}", tokens_text(tokens)));
    if let Some(disposition) = run.disposition {
        field("disposition", format!("{disposition:?}").to_lowercase());
    }
    if let Some(pr) = &run.pr_url {
        field("pr", text(pr).into_owned());
    }
    if let Some(class) = &run.error_class {
        let message = run
            .error_message
            .as_deref()
            .map(|message| format!(": {}", text(first_line(message))))
            .unwrap_or_default();
        field("error", format!("{}{message}", text(&class.to_string())));
    }
    if let Some(cause) = &run.cause {
        field("cause", text(&cause.message).into_owned());
    }
    if let Some(retry) = &run.retry {
        field("next", text(&retry.next_action).into_owned());
    }
}

fn timeline(out: &mut String, run: &RunRecord) {
    if run.timeline.is_empty() {
        return;
    }
    out.push_str("\nTIMELINE\n");
    let start = clock::parse_rfc3339(&run.started_at);
    for entry in &run.timeline {
        let offset = match (start, clock::parse_rfc3339(&entry.at)) {
            (Some(start), Some(at)) => {
                format!(
                    "+{}",
                    clock::humanize(Duration::from_millis(at.saturating_sub(start)))
                )
            }
            _ => String::new(),
        };
        let phase = crate::status::phase_name(entry.phase);
        let _ = writeln!(
            out,
            "  {}  {offset:<9} {phase:<21} {}",
            time_of(&entry.at),
            text(&entry.step)
        );
    }
}

fn agent(out: &mut String, shown: &Shown) {
    let Some(digest) = &shown.agent else {
        out.push_str("\nAGENT\n  no journal: the agent never started, or retention removed it\n");
        return;
    };
    let _ = writeln!(
        out,
        "\nAGENT ({} actions from {} journal entries{})",
        digest.actions.len(),
        digest.entries_read,
        if digest.truncated || digest.actions_dropped > 0 {
            "; earlier ones not shown"
        } else {
            ""
        }
    );
    for action in &digest.actions {
        let mut facts = Vec::new();
        if action.running {
            facts.push("running".to_string());
        }
        if let Some(code) = action.exit_code {
            facts.push(format!("exit {code}"));
        }
        if let Some(success) = action.success {
            facts.push(if success { "ok" } else { "failed" }.to_string());
        }
        if let Some(ms) = action.duration_ms {
            facts.push(seconds(ms));
        }
        let facts = if facts.is_empty() {
            String::new()
        } else {
            format!("  ({})", facts.join(", "))
        };
        let _ = writeln!(
            out,
            "  {}  {:<11} {}{facts}",
            time_of(&action.at),
            action.kind,
            text(&action.text)
        );
    }
}

fn tool_calls(out: &mut String, run: &RunRecord) {
    if run.tool_calls.is_empty() {
        return;
    }
    out.push_str("\nTOOL CALLS (Maestro's issue tools, as recorded)\n");
    for call in &run.tool_calls {
        let _ = writeln!(
            out,
            "  {}  {:<24} {:<7} {}",
            time_of(&call.at),
            text(&call.tool),
            if call.success { "ok" } else { "refused" },
            text(&call.detail)
        );
    }
}

fn validation(out: &mut String, run: &RunRecord) {
    if run.validation.is_empty() {
        return;
    }
    out.push_str("\nVALIDATION\n");
    for command in &run.validation {
        let result = match (command.exit_code, command.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(code), false) => format!("exit {code}"),
            (None, false) => "killed".to_string(),
        };
        let _ = writeln!(
            out,
            "  {}  {result}, {}{}",
            text(&command.command),
            seconds(command.duration_ms),
            if command.escaped {
                ", something it started outlived it"
            } else {
                ""
            }
        );
        let lines: Vec<&str> = command.output_tail.lines().collect();
        let skip = lines.len().saturating_sub(OUTPUT_LINES);
        for line in &lines[skip..] {
            let _ = writeln!(out, "    | {}", text(line));
        }
    }
}

fn writeback(out: &mut String, writeback: &Writeback, run: &RunRecord) {
    if run.status == RunStatus::Running && writeback.at.is_none() {
        return;
    }
    out.push_str("\nWRITEBACK\n");
    let at = writeback
        .at
        .as_deref()
        .map(|at| format!(" at {}", time_of(at)))
        .unwrap_or_default();
    let state = writeback
        .outcome_state
        .as_deref()
        .map(|state| format!("; the issue was left in {}", text(state)))
        .unwrap_or_default();
    let _ = writeln!(out, "  {}{at}{state}", writeback.status.as_str());
    if let Some(next) = &writeback.next_action {
        let retry = match writeback.retry {
            Some(true) => " (a retry is scheduled)",
            _ => "",
        };
        let _ = writeln!(out, "  next: {}{retry}", text(next));
    }
    if let Some(guard) = &writeback.guard {
        let _ = writeln!(
            out,
            "  !! guard (automatic reselection stopped): {} (run {}, {})",
            text(&guard.reason),
            text(&guard.run_id),
            text(&guard.at)
        );
    }
}

fn files(out: &mut String, shown: &Shown) {
    out.push_str("\nFILES\n");
    let files = &shown.files;
    let mut row = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<8} {value}");
    };
    row("record", text(&files.run_record).into_owned());
    match &files.journal {
        Some(journal) => row(
            "journal",
            format!("{} ({})", text(&journal.path), size(journal.bytes)),
        ),
        None => row("journal", "none".to_string()),
    }
    if let Some(log) = &files.log {
        row("log", format!("{} ({})", text(&log.path), size(log.bytes)));
    }
    match &files.lane {
        Some(lane) => row("lane", text(lane).into_owned()),
        None => row("lane", "gone (removed, or never created)".to_string()),
    }
    if let Some(issue) = &files.issue_bookkeeping {
        row("issue", text(issue).into_owned());
    }
}

/// `HH:MM:SS` of an RFC 3339 UTC time, else the whole text (escaped).
fn time_of(at: &str) -> String {
    match at.split_once('T') {
        Some((_, time)) => match time.get(..8) {
            Some(clock_time) => text(clock_time).into_owned(),
            None => text(at).into_owned(),
        },
        None => text(at).into_owned(),
    }
}

fn duration(run: &RunRecord) -> Option<Duration> {
    let started = clock::parse_rfc3339(&run.started_at)?;
    let finished = clock::parse_rfc3339(run.finished_at.as_deref()?)?;
    Some(Duration::from_millis(finished.saturating_sub(started)))
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("")
}

fn tokens_text(tokens: Tokens) -> String {
    format!(
        "{} (in {}, out {})",
        tokens.total, tokens.input, tokens.output
    )
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_sizes_read_short() {
        assert_eq!(time_of("2026-11-26T05:07:26.080Z"), "05:07:26");
        assert_eq!(time_of("garbage\u{1b}"), "garbage\\u{1b}");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(seconds(4500), "4.5s");
    }
}
