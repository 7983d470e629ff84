//! The progress of `run --once` on stderr: what a person watching a terminal, or a cron log,
//! sees while the run goes.
//!
//! In a terminal ([`Mode::Live`]) one compact line is redrawn in place — the step (`lease`,
//! `lane`, `turn 2/3`, `validation 1/3: cargo test`, `PR check`, `writeback`), the tokens, what
//! the agent is doing (`running command cargo test`, `tool issue_comment`, `agent message: …`)
//! and the time so far — at each event and once a second. Elsewhere ([`Mode::Plain`]) each
//! step is one plain line. Both end with one summary line ([`ProgressLine::finish`]).
//! Everything goes to stderr through [`crate::terminal`], never to stdout, which belongs to
//! the summary line or the JSON. Every value shown comes from the tracker, codex or the agent
//! and is escaped ([`crate::escape::text`]) before it is printed.
//!
//! This module only renders: the events come from the run ([`crate::run::watch`]); which mode
//! applies (or none, for the daemon's children) is the caller's decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::clock;
use crate::escape::text;
use crate::run::watch::{Event, Watch};
use crate::run::{HandedOff, Outcome, Summary};
use crate::terminal;
use crate::workspace::record::Phase;

/// How the progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One line redrawn in place (stderr is a terminal).
    Live,
    /// One line per step (a log file, a pipe, cron).
    Plain,
}

/// How often the live line is redrawn when nothing happens (its clock moves).
const TICK: Duration = Duration::from_secs(1);

/// The progress display of one run.
#[derive(Debug)]
pub struct ProgressLine {
    mode: Mode,
    started: Instant,
    state: Mutex<State>,
    done: AtomicBool,
}

/// What the line shows now.
#[derive(Debug, Default)]
struct State {
    /// `ABC-1 a2`, once an issue is claimed.
    issue: Option<String>,
    /// The current step, as the timeline names it.
    step: String,
    tokens: Option<u64>,
    /// The agent's current item, during turns only.
    agent: Option<String>,
}

impl ProgressLine {
    /// A display in `mode`; a live one starts redrawing its clock once a second.
    pub fn start(mode: Mode) -> Arc<ProgressLine> {
        let line = Arc::new(ProgressLine {
            mode,
            started: Instant::now(),
            state: Mutex::new(State::default()),
            done: AtomicBool::new(false),
        });
        if mode == Mode::Live {
            let weak = Arc::downgrade(&line);
            // Without the ticker the line still updates on every event; only its clock stalls.
            let _ = std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || tick(&weak));
        }
        line
    }

    /// Ends the display with one summary line (the live line is replaced by it).
    pub fn finish(&self, summary: &Summary) {
        // Under the state lock, so the ticker cannot draw the line again after the summary.
        let state = self.lock();
        self.done.store(true, Ordering::SeqCst);
        let line = format!(
            "done: {}\n",
            final_line(state.issue.as_deref(), summary, self.elapsed())
        );
        terminal::clear();
        terminal::write_above(line.as_bytes());
    }

    /// Ends the display without a summary (the command failed before an outcome; its error
    /// follows on stderr).
    pub fn abandon(&self) {
        let _state = self.lock();
        self.done.store(true, Ordering::SeqCst);
        terminal::clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Draws the live line from the state (live mode only, and not after the end).
    fn redraw(&self) {
        if self.mode != Mode::Live {
            return;
        }
        // The state lock is held while drawing: `finish` takes it too, so no draw can follow
        // the summary line.
        let state = self.lock();
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        let head = match &state.issue {
            Some(issue) => format!("[{issue}] {}", text(&state.step)),
            None => text(&state.step).into_owned(),
        };
        let mut parts = vec![head];
        if let Some(tokens) = state.tokens {
            parts.push(format!("{} tokens", count(tokens)));
        }
        let clock = clock::humanize(self.elapsed());
        let columns = terminal::width().saturating_sub(1).max(20);
        // The agent's activity gets what the rest leaves, so the clock always shows.
        if let Some(agent) = &state.agent {
            let used: usize = parts
                .iter()
                .map(|part| part.chars().count() + 3)
                .sum::<usize>()
                + clock.chars().count();
            let room = columns.saturating_sub(used + 3);
            if room >= 8 {
                parts.push(terminal::fit(&text(agent), room));
            }
        }
        parts.push(clock);
        terminal::draw(&terminal::fit(&parts.join(" | "), columns));
    }

    /// Prints one step as its own line (plain mode).
    fn print_step(&self) {
        let state = self.lock();
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        let step = match &state.issue {
            Some(issue) => format!("[{issue}] {}", text(&state.step)),
            None => text(&state.step).into_owned(),
        };
        let line = format!("progress: {step} ({})\n", clock::humanize(self.elapsed()));
        terminal::write_above(line.as_bytes());
        drop(state);
    }
}

impl Watch for ProgressLine {
    fn event(&self, event: &Event<'_>) {
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        let new_step = {
            let mut state = self.lock();
            match event {
                Event::Claiming => {
                    state.step = "lease: looking for the issue to take".to_string();
                    true
                }
                Event::Step { record, entry } => {
                    if entry.phase == Phase::Finished {
                        // The summary line says how it ended.
                        return;
                    }
                    state.issue = Some(format!(
                        "{} a{}",
                        text(&record.issue_identifier),
                        record.attempt
                    ));
                    state.step = match entry.phase {
                        Phase::Preparing => format!(
                            "{} {} on {}",
                            entry.step, record.workspace_path, record.branch
                        ),
                        _ => entry.step.clone(),
                    };
                    if entry.phase != Phase::Executing {
                        state.agent = None;
                    }
                    true
                }
                Event::Tokens { tokens, .. } => {
                    state.tokens = Some(tokens.total);
                    false
                }
                Event::Agent { activity } => {
                    state.agent = Some(activity.lines().next().unwrap_or("").to_string());
                    false
                }
            }
        };
        match self.mode {
            Mode::Live => self.redraw(),
            Mode::Plain if new_step => self.print_step(),
            Mode::Plain => {}
        }
    }
}

/// Redraws the live line once a second until the display ends or is dropped.
fn tick(line: &Weak<ProgressLine>) {
    loop {
        std::thread::park_timeout(TICK);
        let Some(line) = line.upgrade() else {
            return;
        };
        if line.done.load(Ordering::SeqCst) {
            return;
        }
        line.redraw();
    }
}

/// `ABC-1 a1 handoff in 3m 12s, 2 turns, 41.0k tokens: https://…`, every value escaped.
fn final_line(label: Option<&str>, summary: &Summary, elapsed: Duration) -> String {
    let outcome = crate::run::json::outcome_name(&summary.outcome);
    let head = match label {
        Some(label) => format!("[{label}] {outcome}"),
        None => outcome.to_string(),
    };
    let mut line = format!("{head} in {}", clock::humanize(elapsed));
    if let Some(record) = &summary.record {
        let turns = if record.turn_count == 1 {
            "turn"
        } else {
            "turns"
        };
        line.push_str(&format!(
            ", {} {turns}, {} tokens",
            record.turn_count,
            count(record.tokens.total)
        ));
    }
    let detail = match (&summary.outcome, &summary.handoff) {
        (Outcome::Handoff { .. }, Some(HandedOff::PullRequest { url })) => url.clone(),
        (Outcome::Handoff { .. }, Some(HandedOff::Branch { branch, commit, .. })) => {
            format!("branch {branch} at {commit}")
        }
        (Outcome::RetryScheduled { error_class } | Outcome::HumanRequired { error_class }, _) => {
            format!("{error_class}; next: {}", summary.next_action)
        }
        (Outcome::Skipped { reason }, _) => reason.clone(),
        (Outcome::NothingToDo { reason }, _) => reason.to_string(),
        _ => summary.next_action.clone(),
    };
    format!("{}: {}", text(&line), text(&detail))
}

/// A token count as status shows it: `950`, `18.6k`, `1.2M`.
fn count(tokens: u64) -> String {
    match tokens {
        0..1_000 => tokens.to_string(),
        1_000..1_000_000 => format!("{:.1}k", tokens as f64 / 1_000.0),
        _ => format!("{:.1}M", tokens as f64 / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::{ErrorClass, RunRecord, Tokens};

    #[test]
    fn counts_read_like_status() {
        assert_eq!(count(950), "950");
        assert_eq!(count(18_600), "18.6k");
        assert_eq!(count(1_200_000), "1.2M");
    }

    #[test]
    fn the_final_line_escapes_what_others_wrote() {
        let record = RunRecord {
            turn_count: 2,
            tokens: Tokens {
                input: 1,
                output: 1,
                total: 41_000,
            },
            ..RunRecord::default()
        };
        let summary = Summary {
            issue: Some("ABC-1".into()),
            run_id: Some("r".into()),
            outcome: Outcome::RetryScheduled {
                error_class: ErrorClass::ValidationFailed,
            },
            next_action: "retry\u{1b}[2J attempt 2".into(),
            record: Some(Box::new(record)),
            handoff: None,
        };
        let line = final_line(Some("ABC-1 a1"), &summary, Duration::from_secs(192));
        assert_eq!(
            line,
            "[ABC-1 a1] retry_scheduled in 3m 12s, 2 turns, 41.0k tokens: validation_failed; next: retry\\u{1b}[2J attempt 2"
        );
    }
}
