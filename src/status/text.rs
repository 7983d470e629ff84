//! The text view of a [`Snapshot`]: aligned, fits an 80-column terminal, durations humanized,
//! stalled and orphaned lanes marked with `!!` so they stand out in a glance.
//!
//! Every value read from `.maestro/` is escaped ([`crate::escape::text`]) before it is printed:
//! identifiers, branches, reasons and error texts came from the tracker or the agent, and a
//! control character in them must not drive the operator's terminal or forge a line.

use std::fmt::Write;
use std::time::Duration;

use super::Snapshot;
use crate::clock::humanize;
use crate::escape::text;
use crate::workspace::record::Tokens;

/// Renders the snapshot for a terminal.
pub fn render_text(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "maestro status: project {} at {}",
        text(&snapshot.project_id),
        text(&snapshot.generated_at)
    );

    let _ = writeln!(out, "\nActive Runs ({})", snapshot.active.len());
    if snapshot.active.is_empty() {
        let _ = writeln!(out, "  no lane is running");
    }
    for run in &snapshot.active {
        if run.is_retry() {
            retry_entry(&mut out, run);
            continue;
        }
        let flagged = matches!(run.phase.as_str(), "stalled" | "orphaned");
        let mark = if flagged { "!!" } else { "  " };
        let phase = if flagged {
            run.phase.to_uppercase()
        } else {
            run.phase.clone()
        };
        let _ = writeln!(
            out,
            "{mark}{:<12} attempt {:<2} {:<20} idle {:<8} turns {}",
            clip(&run.issue_identifier, 12),
            run.attempt,
            clip(&phase, 20),
            humanize(Duration::from_secs(run.idle_for_seconds)),
            run.turn_count
        );
        let _ = writeln!(
            out,
            "    events {:<6} last {:<26} tokens {}",
            run.event_count,
            clip(run.last_event_type.as_deref().unwrap_or("-"), 26),
            tokens(&run.tokens)
        );
        let _ = writeln!(out, "    run {}", text(&run.run_id));
        if let Some(thread) = &run.thread_id {
            let _ = writeln!(out, "    thread {}", text(thread));
        }
        let _ = writeln!(
            out,
            "    lane {} ({})",
            text(&run.workspace_path),
            text(&run.branch)
        );
        if let Some(host) = &run.host {
            let _ = writeln!(out, "    host {}", text(host));
        }
        if let Some(reason) = &run.wait_reason {
            let _ = writeln!(out, "    {}", clip(reason, 74));
        }
    }

    let _ = writeln!(out, "\nRetrying ({})", snapshot.retrying.len());
    for retry in &snapshot.retrying {
        let kind = retry.retry_kind.as_str();
        let by = match retry.scheduled_by {
            super::ScheduledBy::Daemon => "daemon",
            super::ScheduledBy::Run => "run",
        };
        let _ = writeln!(
            out,
            "  {:<12} attempt {:<2} {:<12} due {} ({by})",
            clip(&retry.issue_identifier, 12),
            retry.attempt,
            kind,
            text(&retry.next_retry_at)
        );
        if let Some(class) = &retry.last_error_class {
            let _ = writeln!(out, "    last error {}", text(class));
        }
    }

    let _ = writeln!(out, "\nRecent Runs ({})", snapshot.recent.len());
    for run in &snapshot.recent {
        let outcome = run.outcome.as_str();
        let flag = if matches!(outcome, "human_required" | "failed" | "stalled") {
            "!!"
        } else {
            "  "
        };
        let _ = writeln!(
            out,
            "{flag}{:<12} a{:<2} {:<15} {:>8}  {}",
            clip(&run.issue_identifier, 12),
            run.attempt,
            outcome,
            humanize(Duration::from_secs(run.duration_seconds)),
            tokens(&run.tokens)
        );
        let detail = run
            .pr_url
            .clone()
            .or_else(|| run.error_class.clone())
            .or_else(|| run.next_action.clone());
        if let Some(detail) = detail {
            let _ = writeln!(out, "    {}", clip(&detail, 74));
        }
        if let Some(host) = &run.host {
            let _ = writeln!(out, "    host {}", clip(host, 69));
        }
        if let Some(cause) = &run.cause {
            // The whole sentence matters (it ends with what to check), so it wraps, not clips.
            for line in wrap_words(&format!("cause: {}", text(cause)), 74, 4) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }

    let _ = writeln!(out, "\nLANES ({})", snapshot.lanes.len());
    for lane in &snapshot.lanes {
        let status = lane
            .last_status
            .map_or("-", crate::workspace::record::RunStatus::as_str);
        let guard = if lane.guard.is_some() {
            "  !! GUARD"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<28} attempts {:<2} {}{guard}",
            clip(&lane.workspace_path, 28),
            lane.attempts_used,
            status
        );
        if let Some(guard) = &lane.guard {
            let _ = writeln!(out, "    {}", clip(&guard.reason, 74));
        }
        if let Some(terminal) = &lane.pending_removal {
            let why = terminal.kept.as_deref().unwrap_or("removing");
            let line = format!("pending removal: issue {}; {why}", terminal.state);
            let _ = writeln!(out, "    {}", clip(&line, 74));
        }
    }

    super::review::render_text(&mut out, &snapshot.review);
    if !snapshot.hosts.is_empty() {
        let _ = writeln!(out, "\nHOSTS ({})", snapshot.hosts.len());
    }
    for host in &snapshot.hosts {
        let down = host.health == "down";
        let _ = writeln!(
            out,
            "{}{:<28} {:<5} slots {}/{}  failures {}",
            if down { "!!" } else { "  " },
            clip(&host.host, 28),
            host.health,
            host.slots_busy,
            host.slots,
            host.failures
        );
        if let Some(until) = &host.down_until {
            let _ = writeln!(out, "    tried again at {}", text(until));
        }
        if let Some(error) = host.last_error.as_ref().filter(|_| host.failures > 0) {
            let _ = writeln!(out, "    {}", clip(error, 74));
        }
    }

    let totals = &snapshot.totals;
    let _ = writeln!(
        out,
        "\nTOTALS  tokens {}  runtime {}",
        tokens(&totals.tokens),
        humanize(Duration::from_secs(totals.runtime_seconds))
    );
    if !totals.runs_by_outcome.is_empty() {
        let runs: Vec<String> = totals
            .runs_by_outcome
            .iter()
            .map(|(outcome, count)| format!("{} {count}", text(outcome)))
            .collect();
        for line in wrap(&runs, 74) {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(budget) = &snapshot.tracker_budget {
        tracker_budget(&mut out, budget);
    }
    for problem in &snapshot.problems {
        let _ = writeln!(out, "\n!! {}", text(problem));
    }
    out
}

/// An issue waiting for its retry, in the active list: when it is due and what it follows.
fn retry_entry(out: &mut String, run: &super::ActiveRun) {
    let _ = writeln!(
        out,
        "  {:<12} attempt {:<2} {:<20} due {}",
        clip(&run.issue_identifier, 12),
        run.attempt,
        super::RETRY_BACKOFF,
        text(run.retry_at.as_deref().unwrap_or("-"))
    );
    if let Some(reason) = &run.wait_reason {
        let _ = writeln!(out, "    {}", clip(reason, 74));
    }
    let _ = writeln!(
        out,
        "    lane {} ({})",
        text(&run.workspace_path),
        text(&run.branch)
    );
}

/// What the daemon's tracker requests cost in the last hour and what the key has left.
fn tracker_budget(out: &mut String, budget: &crate::intake::budget::Report) {
    let _ = writeln!(
        out,
        "\nTRACKER  {} requests, {} points in the last hour (the daemon's)",
        budget.requests_last_hour,
        compact(budget.points_last_hour),
    );
    let left = |name: &str, allowance: &Option<crate::intake::budget::AllowanceReport>| {
        allowance.as_ref().map(|allowance| {
            format!(
                "{name} {} of {}",
                compact(allowance.remaining),
                compact(allowance.limit)
            )
        })
    };
    let remaining: Vec<String> = [
        left("requests", &budget.requests),
        left("points", &budget.points),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !remaining.is_empty() {
        let _ = writeln!(out, "  key budget left: {}", remaining.join(", "));
    }
    let _ = writeln!(out, "  as of {}", budget.updated_at);
    if let Some(until) = &budget.paced_until {
        let _ = writeln!(
            out,
            "!! polling paced to keep the budget's reserve until {until}"
        );
    }
    if let Some(error) = budget
        .last_sync
        .as_ref()
        .and_then(|sync| sync.error.as_ref())
    {
        let _ = writeln!(out, "!! last sync failed: {}", clip(error, 60));
    }
}

fn tokens(tokens: &Tokens) -> String {
    format!(
        "{} (in {}, out {})",
        compact(tokens.total),
        compact(tokens.input),
        compact(tokens.output)
    )
}

/// `950`, `12.3k`, `4.5M`.
fn compact(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1_000.0),
        _ => format!("{:.1}M", n as f64 / 1_000_000.0),
    }
}

/// Joins `items` with ", " into lines of at most `width` characters.
fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines = vec![String::from("runs:")];
    for item in items {
        let last = lines.len() - 1;
        let separator = if lines[last] == "runs:" { " " } else { ", " };
        if lines[last].chars().count() + separator.len() + item.chars().count() > width {
            lines[last].push(',');
            lines.push(format!("      {item}"));
        } else {
            lines[last].push_str(separator);
            lines[last].push_str(item);
        }
    }
    lines
}

/// `value` (already escaped) in lines of at most `width` characters, broken between words, at
/// most `max_lines` of them (the last cut with a visible mark).
fn wrap_words(value: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in value.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.chars().take(width).collect()),
        }
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            *last = clip(&format!("{last} …"), width);
        }
    }
    lines
}

/// `value` escaped, then cut to `width` characters with a visible mark.
fn clip(value: &str, width: usize) -> String {
    let value = text(value);
    if value.chars().count() <= width {
        value.into_owned()
    } else {
        let mut clipped: String = value.chars().take(width.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(4_500_000), "4.5M");
    }

    #[test]
    fn causes_wrap_between_words() {
        let lines = wrap_words(
            "cause: model endpoint unreachable (codex: a b); check it",
            20,
            4,
        );
        assert_eq!(
            lines,
            [
                "cause: model",
                "endpoint unreachable",
                "(codex: a b); check",
                "it"
            ]
        );
        assert!(lines.iter().all(|line| line.chars().count() <= 20));
        let cut = wrap_words(&"word ".repeat(100), 20, 2);
        assert_eq!(cut.len(), 2);
        assert!(cut[1].ends_with('…'), "{cut:?}");
    }

    #[test]
    fn clipping_marks_the_cut() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
