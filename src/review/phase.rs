//! The phases of a lane after its PR-backed handoff, and the endings off the happy path.
//!
//! A phase is a fact on disk (the lane's [`ReviewRecord`](super::record::ReviewRecord)), not
//! daemon memory, so a restarted daemon resumes every lane where it was. This file names the
//! phases and what each needs; `decide.rs` moves between them.

use serde::{Deserialize, Serialize};

/// Where a lane is in the post-review lifecycle (docs/spec/review.md has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The PR is open and not ready; its signals are read every `poll_interval_s`.
    ReviewWait,
    /// A repair child is addressing feedback in the retained lane.
    ReviewRepair,
    /// Every landing condition held at the last read and Maestro merges now (`merge = "auto"`).
    ReadyToLand,
    /// The merge is under way: Maestro's merge request was sent (`auto`), or a person is to
    /// merge (`manual`).
    Landing,
    /// The PR is merged: the issue moves to `completed_state` and gets its closeout comment.
    DeliveryCloseout,
    /// Closed out: the remote branch is deleted and the lane removed.
    Cleanup,
    /// Ending: merged, closed out and cleaned up.
    Done,
    /// Ending: a person must act (needs-attention label and a comment name what).
    Human,
    /// Ending: a person moved the issue to a terminal state before the merge; the lane is
    /// removed, the PR and its branch left as they are.
    Cancelled,
    /// Ending: a person moved the issue out of review to a state that is not terminal; the
    /// lifecycle lets go and ordinary eligibility decides what happens to it next.
    Released,
}

impl Phase {
    /// Every phase, in lifecycle order: for metrics and documentation tables.
    pub const ALL: [Phase; 10] = [
        Phase::ReviewWait,
        Phase::ReviewRepair,
        Phase::ReadyToLand,
        Phase::Landing,
        Phase::DeliveryCloseout,
        Phase::Cleanup,
        Phase::Done,
        Phase::Human,
        Phase::Cancelled,
        Phase::Released,
    ];

    /// The name on disk, in `status` and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::ReviewWait => "review_wait",
            Phase::ReviewRepair => "review_repair",
            Phase::ReadyToLand => "ready_to_land",
            Phase::Landing => "landing",
            Phase::DeliveryCloseout => "delivery_closeout",
            Phase::Cleanup => "cleanup",
            Phase::Done => "done",
            Phase::Human => "human",
            Phase::Cancelled => "cancelled",
            Phase::Released => "released",
        }
    }

    /// An ending: the lifecycle does nothing more for this lane.
    pub fn is_ending(self) -> bool {
        matches!(
            self,
            Phase::Done | Phase::Human | Phase::Cancelled | Phase::Released
        )
    }

    /// Whether the lane's next step depends on the PR's signals (so they are read every
    /// `poll_interval_s`). Closeout and cleanup work from what the record already holds.
    pub fn reads_signals(self) -> bool {
        matches!(
            self,
            Phase::ReviewWait | Phase::ReviewRepair | Phase::ReadyToLand | Phase::Landing
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_endings_read_nothing() {
        for phase in Phase::ALL {
            let json = serde_json::to_string(&phase).unwrap();
            assert_eq!(json, format!("\"{}\"", phase.as_str()));
            assert_eq!(serde_json::from_str::<Phase>(&json).unwrap(), phase);
            assert!(!(phase.is_ending() && phase.reads_signals()), "{phase}");
        }
    }
}
