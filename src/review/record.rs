//! The persisted phase record of one lane in the post-review lifecycle:
//! `.maestro/review/<key>.json` ([`Layout::review_record_file`]), flat JSON written atomically
//! with a schema version, like every other state file.
//!
//! The record is the lifecycle's memory: a restarted daemon resumes each lane from it, so every
//! side effect is recorded as an intent *before* it happens (the repair attempt, the merge
//! request, the closeout steps) and as done after. It also holds the history a person reads:
//! every transition with its reason, the run ids of the handoff and each repair. It decides
//! nothing; `decide.rs` does, and [`ReviewRecord::apply`] writes the decision down.

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::github::{BranchDeletion, MergeMethod, RepoRef};
use crate::workflow::ReviewPolicy;
use crate::workspace::{Error, Layout, io_error};

use super::decide::{Action, Decision, after_merge, after_repair};
use super::phase::Phase;

/// The version of the record's shape; another is refused as corrupt (never guessed at).
pub const SCHEMA_VERSION: u32 = 1;

/// The most transitions a record keeps (the oldest go first).
const MAX_HISTORY: usize = 100;

/// One lane's post-review state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub schema_version: u32,
    pub issue_id: String,
    pub identifier: String,
    /// The record's file key: the issue's stable id as a file name
    /// ([`crate::workspace::record::issue_key`]), like every other file under `.maestro/`.
    pub key: String,
    /// The lane directory's name (the issue's first identifier, kept when it changes); `None`
    /// in records of the first slice, whose lane is then found through the bookkeeping.
    #[serde(default)]
    pub lane_key: Option<String>,
    /// GitHub's `html_url` of the PR, as checked at the handoff.
    pub pr_url: String,
    /// `owner/name`.
    pub repo: String,
    pub number: u64,
    pub branch: String,
    /// The last head Maestro validated (the handoff's, then each successful repair's): the
    /// only commit it will merge.
    pub validated_head: String,
    pub handoff_run_id: String,
    pub phase: Phase,
    /// When the lane entered `phase` (RFC 3339).
    pub since: String,
    pub reason: String,
    pub waiting_for: String,
    /// When the PR's signals were last read (RFC 3339): the poll interval counts from it.
    #[serde(default)]
    pub last_read_at: Option<String>,
    /// When the daemon reads the PR's signals next (RFC 3339), for `status`, which does not
    /// read WORKFLOW.md's poll interval itself.
    #[serde(default)]
    pub next_read_at: Option<String>,
    #[serde(default)]
    pub repairs: Vec<Repair>,
    /// Recorded before the merge request is sent.
    #[serde(default)]
    pub merge_requested: Option<MergeRequest>,
    /// Recorded once the PR is known merged.
    #[serde(default)]
    pub merge: Option<MergeFacts>,
    #[serde(default)]
    pub closeout: CloseoutProgress,
    #[serde(default)]
    pub cleanup: CleanupProgress,
    /// The human path's steps done (the label, the comment), so a restart finishes them
    /// without posting twice.
    #[serde(default)]
    pub notice: NoticeProgress,
    #[serde(default)]
    pub history: Vec<Transition>,
}

/// One repair attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    /// 1-based.
    pub attempt: u32,
    /// The feedback it was given (see `signals::Feedback::key`).
    pub feedback_keys: Vec<String>,
    pub started_at: String,
    /// The repair child's run id, once spawned.
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub result: Option<RepairResult>,
}

/// How a repair ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RepairResult {
    /// It pushed `head` and validation passed on it.
    Pushed { head: String },
    /// It pushed nothing, failed validation, or its process died.
    Failed { reason: String },
}

/// The merge Maestro asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    pub sha: String,
    pub method: MergeMethod,
    pub at: String,
}

/// What the closeout comment says about the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeFacts {
    /// The merge commit on the base branch.
    pub sha: String,
    /// Known when Maestro merged; GitHub does not say how a person merged.
    pub method: Option<MergeMethod>,
    /// GitHub's `merged_by`, when it said.
    pub merged_by: Option<String>,
    pub by_maestro: bool,
}

/// Closeout steps done, so a restart repeats none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseoutProgress {
    pub state_moved: bool,
    /// Set before the comment is posted: after a crash with this set and `comment_posted`
    /// not, the issue's comments must be checked for the closeout marker before posting.
    pub comment_attempted: bool,
    pub comment_posted: bool,
}

/// Cleanup steps done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupProgress {
    /// `deleted`, `already_gone` or `kept` (`delete_branch = false`); `None` until decided.
    pub branch: Option<String>,
    pub lane_removed: bool,
}

/// Human-path steps done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeProgress {
    pub label_added: bool,
    /// Set before the comment is posted; with `comment_posted` unset after a crash, the issue's
    /// comments are searched for the human-path marker before posting again.
    pub comment_attempted: bool,
    pub comment_posted: bool,
}

impl NoticeProgress {
    pub fn is_done(&self) -> bool {
        self.label_added && self.comment_posted
    }
}

/// One phase change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub at: String,
    pub from: Phase,
    pub to: Phase,
    pub reason: String,
}

/// What a PR-backed handoff hands to the lifecycle.
#[derive(Debug, Clone)]
pub struct Handoff<'a> {
    pub issue_id: &'a str,
    pub identifier: &'a str,
    pub key: &'a str,
    pub pr_url: &'a str,
    pub repo: &'a RepoRef,
    pub number: u64,
    pub branch: &'a str,
    /// The lane `HEAD` the run validated and the PR check matched.
    pub validated_head: &'a str,
    pub run_id: &'a str,
}

impl ReviewRecord {
    /// The record of a lane that just handed off: `review_wait`, nothing read yet.
    pub fn from_handoff(handoff: &Handoff<'_>, now: &str) -> ReviewRecord {
        ReviewRecord {
            schema_version: SCHEMA_VERSION,
            issue_id: handoff.issue_id.into(),
            identifier: handoff.identifier.into(),
            key: handoff.key.into(),
            lane_key: None,
            pr_url: handoff.pr_url.into(),
            repo: handoff.repo.full_name(),
            number: handoff.number,
            branch: handoff.branch.into(),
            validated_head: handoff.validated_head.into(),
            handoff_run_id: handoff.run_id.into(),
            phase: Phase::ReviewWait,
            since: now.into(),
            reason: format!("handed off in run {}", handoff.run_id),
            waiting_for: "the first read of the PR".into(),
            last_read_at: None,
            next_read_at: None,
            repairs: Vec::new(),
            merge_requested: None,
            merge: None,
            closeout: CloseoutProgress::default(),
            cleanup: CleanupProgress::default(),
            notice: NoticeProgress::default(),
            history: Vec::new(),
        }
    }

    /// The lane directory's name: the recorded one, else the identifier's (records of the
    /// first slice; callers that know the bookkeeping prefer its lane key).
    pub fn lane(&self) -> String {
        self.lane_key
            .clone()
            .unwrap_or_else(|| crate::workspace::lane::lane_key(&self.identifier))
    }

    /// The repair recorded as started whose result is not recorded yet.
    pub fn current_repair(&self) -> Option<&Repair> {
        self.repairs.last().filter(|repair| repair.result.is_none())
    }

    /// Whether the lifecycle still has something to do for this lane: a phase that is not an
    /// ending, or an ending whose own steps are unfinished (the human path's label and comment,
    /// a cancelled lane's removal).
    pub fn is_open(&self) -> bool {
        match self.phase {
            Phase::Human => !self.notice.is_done(),
            Phase::Cancelled => !self.cleanup.lane_removed,
            phase => !phase.is_ending(),
        }
    }

    /// The repository, parsed back from `repo`.
    pub fn repo_ref(&self) -> Option<RepoRef> {
        let (owner, name) = self.repo.split_once('/')?;
        (!owner.is_empty() && !name.is_empty() && !name.contains('/')).then(|| RepoRef {
            owner: owner.into(),
            name: name.into(),
        })
    }

    /// Feedback keys handed to repairs that did not fail: feedback Maestro has addressed.
    pub fn addressed(&self) -> Vec<&str> {
        self.repairs
            .iter()
            .filter(|repair| !matches!(repair.result, Some(RepairResult::Failed { .. })))
            .flat_map(|repair| repair.feedback_keys.iter().map(String::as_str))
            .collect()
    }

    /// Every run id of this lane's work: the handoff's, then each repair's.
    pub fn run_ids(&self) -> Vec<&str> {
        std::iter::once(self.handoff_run_id.as_str())
            .chain(
                self.repairs
                    .iter()
                    .filter_map(|repair| repair.run_id.as_deref()),
            )
            .collect()
    }

    /// Writes `decision` down: phase (with a history entry when it changes), reason, what it
    /// waits for, and the intent of its action — a repair attempt, a merge request (the phase
    /// becomes `landing` before the request is sent), the merge facts. Record, save, then act.
    pub fn apply(&mut self, decision: &Decision, now: &str) {
        self.enter(decision.phase, &decision.reason, now);
        self.waiting_for = decision.waiting_for.clone();
        match &decision.action {
            Action::Repair { attempt, feedback } => {
                // Idempotent: applying the same decision twice starts one attempt.
                if *attempt as usize == self.repairs.len() + 1 {
                    self.repairs.push(Repair {
                        attempt: *attempt,
                        feedback_keys: feedback.iter().map(|item| item.key.clone()).collect(),
                        started_at: now.into(),
                        run_id: None,
                        result: None,
                    });
                }
                self.waiting_for = format!("repair {attempt} to finish");
            }
            Action::Merge { sha, method } => {
                self.merge_requested = Some(MergeRequest {
                    sha: sha.clone(),
                    method: *method,
                    at: now.into(),
                });
                let reason = format!("merge requested ({}, head {sha})", method.as_str());
                self.enter(Phase::Landing, &reason, now);
                self.waiting_for = "GitHub's answer to the merge request".into();
            }
            Action::Closeout { merge, .. } => {
                if self.merge.is_none() {
                    self.merge = Some(merge.clone());
                }
            }
            Action::Wait
            | Action::Cleanup { .. }
            | Action::Human { .. }
            | Action::Cancel
            | Action::Release => {}
        }
    }

    fn enter(&mut self, phase: Phase, reason: &str, now: &str) {
        if phase != self.phase {
            self.history.push(Transition {
                at: now.into(),
                from: self.phase,
                to: phase,
                reason: reason.into(),
            });
            if self.history.len() > MAX_HISTORY {
                let excess = self.history.len() - MAX_HISTORY;
                self.history.drain(..excess);
            }
            self.phase = phase;
            self.since = now.into();
        }
        self.reason = reason.into();
    }

    /// The PR's signals were read now (successfully or not).
    pub fn mark_read(&mut self, now: &str) {
        self.last_read_at = Some(now.into());
    }

    /// When the next read is due, for `status`: `poll_interval_s` after the last read, or now
    /// when there was none (the record was just handed off, or a repair just ended).
    pub fn schedule_read(&mut self, policy: &ReviewPolicy, now_ms: u64) {
        let wait = super::next_read_in(self, policy, now_ms).unwrap_or_default();
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.next_read_at = Some(crate::clock::format_ms(now_ms.saturating_add(wait_ms)));
    }

    /// The current repair ended while the lane had already moved on (cancelled, released, sent
    /// to a person): its result is recorded and nothing is decided from it.
    pub fn close_repair(&mut self, result: RepairResult) {
        if let Some(repair) = self.repairs.last_mut().filter(|r| r.result.is_none()) {
            repair.result = Some(result);
        }
    }

    /// The current repair's child was spawned as `run_id`.
    pub fn repair_started(&mut self, run_id: &str) {
        if let Some(repair) = self.repairs.last_mut().filter(|r| r.result.is_none()) {
            repair.run_id = Some(run_id.into());
        }
    }

    /// The current repair ended with `result`; a pushed head becomes the validated head.
    /// Returns the decision it led to, already applied.
    pub fn finish_repair(
        &mut self,
        policy: &ReviewPolicy,
        result: RepairResult,
        now: &str,
    ) -> Decision {
        if let RepairResult::Pushed { head } = &result {
            self.validated_head = head.clone();
        }
        if let Some(repair) = self.repairs.last_mut().filter(|r| r.result.is_none()) {
            repair.result = Some(result.clone());
        }
        let decision = after_repair(policy, self, &result);
        self.apply(&decision, now);
        decision
    }

    /// The merge request was answered. Returns the decision it led to, already applied.
    pub fn finish_merge(
        &mut self,
        policy: &ReviewPolicy,
        result: &Result<crate::github::Merged, crate::github::Error>,
        now: &str,
    ) -> Decision {
        let decision = after_merge(policy, self, result);
        self.apply(&decision, now);
        decision
    }

    /// Both closeout steps are done: on to cleanup.
    pub fn finish_closeout(&mut self, now: &str) {
        self.closeout.state_moved = true;
        self.closeout.comment_attempted = true;
        self.closeout.comment_posted = true;
        self.enter(Phase::Cleanup, "closed out", now);
        self.waiting_for.clear();
    }

    /// What happened to the remote branch (`None`: `delete_branch = false`).
    pub fn branch_cleaned(&mut self, deletion: Option<BranchDeletion>) {
        self.cleanup.branch = Some(
            match deletion {
                Some(BranchDeletion::Deleted) => "deleted",
                Some(BranchDeletion::AlreadyGone) => "already_gone",
                None => "kept",
            }
            .into(),
        );
    }

    /// The lane is removed: the lifecycle is done.
    pub fn finish_cleanup(&mut self, now: &str) {
        self.cleanup.lane_removed = true;
        self.enter(Phase::Done, "merged, closed out and cleaned up", now);
        self.waiting_for.clear();
    }

    /// Reads lane `key`'s record; `Ok(None)` when there is none.
    pub fn load(layout: &Layout, key: &str) -> Result<Option<ReviewRecord>, Error> {
        let path = layout.review_record_file(key);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path, "read")(error)),
        };
        parse(&path, &text).map(Some)
    }

    /// Writes the record atomically.
    pub fn save(&self, layout: &Layout) -> Result<(), Error> {
        let path = layout.review_record_file(&self.key);
        atomic_file::write_json(&path, self).map_err(io_error(&path, "write"))
    }

    /// Every record under `.maestro/review/`, sorted by identifier, and the files that could
    /// not be read (path and reason), for `status` and metrics.
    pub fn list(layout: &Layout) -> (Vec<ReviewRecord>, Vec<Error>) {
        let dir = layout.review_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return (Vec::new(), Vec::new());
        };
        let mut records = Vec::new();
        let mut problems = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse(&path, &text) {
                    Ok(record) => records.push(record),
                    Err(error) => problems.push(error),
                },
                Err(error) => problems.push(io_error(&path, "read")(error)),
            }
        }
        records.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        (records, problems)
    }
}

fn parse(path: &std::path::Path, text: &str) -> Result<ReviewRecord, Error> {
    let record: ReviewRecord = serde_json::from_str(text).map_err(|error| Error::Corrupt {
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    if record.schema_version != SCHEMA_VERSION {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "schema_version {} (this maestro reads {SCHEMA_VERSION})",
                record.schema_version
            ),
        });
    }
    Ok(record)
}
