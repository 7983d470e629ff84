//! What a run reports while it goes, for a live view: the [`Watch`] a caller may hand
//! [`super::Options`] (the terminal's progress line of `run --once`), and the [`Event`]s it
//! receives.
//!
//! Events are the attempt's steps exactly as the run record's timeline keeps them, plus the
//! agent's tokens and what it is doing now. The watcher decides how to show them; nothing here
//! writes anything. A watcher is called on the run's own thread (and, during turns, on the
//! session thread through the activity observer), so it must return quickly and never fail.

use std::fmt;

use crate::workspace::record::{Phase, RunRecord, TimelineEntry, Tokens};

/// Receives a run's [`Event`]s. `Send + Sync`: the caller may redraw from its own thread.
pub trait Watch: Send + Sync + fmt::Debug {
    fn event(&self, event: &Event<'_>);
}

/// One thing a watcher hears about.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Looking for an issue to take: slot, candidates, lease.
    Claiming,
    /// A step of the attempt began; `record` is the run record as it is now (its timeline ends
    /// with `entry`).
    Step {
        record: &'a RunRecord,
        entry: &'a TimelineEntry,
    },
    /// The thread's tokens or turns moved.
    Tokens { tokens: Tokens, turn_count: u32 },
    /// What the agent is doing now, as codex described the item: `command cargo test`,
    /// `tool issue_comment`, `agent message: …` (unescaped; the watcher escapes).
    Agent { activity: &'a str },
}

/// The step name a phase gets when nothing more specific is said: what the timeline and the
/// progress line call it.
pub fn step_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Preparing => "lane",
        Phase::Executing => "agent session",
        Phase::WaitingContinuation => "continuation check",
        Phase::Validating => "validation",
        Phase::WritingBack => "writeback",
        Phase::Finished => "finished",
    }
}
