//! The attempt's record on disk while it runs: the run record at each phase change and the lane
//! activity marker as agent events arrive.
//!
//! Marker writes are throttled by the app-server client (it reports activity at most about
//! once a second, plus thread and turn boundaries), so a delta storm costs a few atomic writes,
//! not one per delta. A failed write is logged and the attempt goes on: losing a progress
//! marker must not lose the run. The final record is written with the attempt's disk
//! [`Reserve`] to fall back on, so a disk that filled up during the attempt still gets it.
//!
//! Progress also holds the attempt's lease and re-checks it at every phase change and activity
//! report: an agent that deletes the lease file gets it re-taken within about a second.
//!
//! Each step (a phase, or a finer step inside one: `turn 2/3`, `validation 1/2: cargo test`) is
//! appended to the record's timeline with its time and told to the caller's [`Watch`], if any,
//! together with the agent's tokens and current item.

use std::sync::Arc;

use serde_json::Value;

use super::watch::{self, Event, Watch};
use crate::app_server::{Activity, ItemStage, Observer};
use crate::clock;
use crate::workspace::Layout;
use crate::workspace::lock::{Lease, LeaseCheck};
use crate::workspace::record::{
    self, ActivityMarker, Phase, Reserve, RunRecord, RunStatus, TimelineEntry, Tokens,
};

/// The live record of one attempt.
#[derive(Debug)]
pub struct Progress {
    layout: Layout,
    /// The issue's file key (activity marker).
    issue_key: String,
    pub record: RunRecord,
    marker: ActivityMarker,
    lease: Option<Lease>,
    /// The last lease check that was not `Intact`, so each change is logged once.
    lease_problem: Option<LeaseCheck>,
    reserve: Option<Reserve>,
    /// Who is told about each step, the tokens and the agent's items (the progress line).
    watch: Option<Arc<dyn Watch>>,
}

impl Progress {
    /// Starts tracking `record` (already filled in by the caller) and writes it, its timeline
    /// opened with the first step.
    pub fn start(layout: &Layout, issue_key: &str, mut record: RunRecord) -> Progress {
        let now = clock::now_rfc3339();
        record.timeline.push(TimelineEntry {
            at: now.clone(),
            phase: record.phase,
            step: watch::step_name(record.phase).to_string(),
        });
        let marker = ActivityMarker {
            schema_version: record::SCHEMA_VERSION,
            run_id: record.run_id.clone(),
            issue_id: record.issue_id.clone(),
            issue_identifier: record.issue_identifier.clone(),
            attempt: record.attempt,
            phase: record.phase,
            pid: record.pid,
            thread_id: None,
            turn_count: 0,
            event_count: 0,
            last_event_type: None,
            last_event_at: None,
            last_progress_at: now.clone(),
            tokens: Tokens::default(),
            rate_limits: None,
            updated_at: now,
        };
        let progress = Progress {
            layout: layout.clone(),
            issue_key: issue_key.to_string(),
            record,
            marker,
            lease: None,
            lease_problem: None,
            reserve: None,
            watch: None,
        };
        progress.save_record();
        progress.save_marker();
        progress
    }

    /// Holds the attempt's lease (re-checked from now on) and its disk reserve.
    pub fn hold(&mut self, lease: Lease, reserve: Reserve) {
        self.lease = Some(lease);
        self.reserve = Some(reserve);
    }

    /// Gives the lease up (the attempt is over) and the reserved space back.
    pub fn release(&mut self) {
        self.lease = None;
        self.reserve = None;
    }

    /// The disk reserve, for the final bookkeeping write.
    pub fn reserve(&mut self) -> Option<&mut Reserve> {
        self.reserve.as_mut()
    }

    /// Re-checks the lease; a file the agent removed or replaced is taken again.
    fn verify_lease(&mut self) {
        let Some(lease) = self.lease.as_mut() else {
            return;
        };
        let check = lease.verify();
        if check == LeaseCheck::Intact || self.lease_problem.as_ref() == Some(&check) {
            return;
        }
        match &check {
            LeaseCheck::Restored => log::warn!(
                "lease file was removed or replaced during the attempt, taken again issue={} run_id={}",
                self.record.issue_identifier,
                self.record.run_id
            ),
            LeaseCheck::Lost { holder } => log::error!(
                "lease file was replaced and another process locks it issue={} run_id={} holder={}",
                self.record.issue_identifier,
                self.record.run_id,
                holder
                    .as_ref()
                    .map_or("unknown".to_string(), |owner| format!(
                        "{} (pid {})",
                        owner.run_id, owner.pid
                    ))
            ),
            LeaseCheck::Intact => {}
        }
        self.lease_problem = Some(check);
    }

    /// Tells `watch` about every step from now on, starting with the current one.
    pub fn watch(&mut self, watch: Option<Arc<dyn Watch>>) {
        self.watch = watch;
        self.tell_step();
    }

    /// Moves to `phase`; a phase change counts as progress.
    pub fn phase(&mut self, phase: Phase) {
        self.step(phase, watch::step_name(phase));
    }

    /// Moves to `phase` at the step `step` (`turn 2/3`, `validation 1/2: cargo test`): the
    /// record's timeline gets it with the time, the watcher hears of it. Counts as progress.
    pub fn step(&mut self, phase: Phase, step: &str) {
        self.verify_lease();
        self.record.phase = phase;
        self.marker.phase = phase;
        let now = clock::now_rfc3339();
        self.push_timeline(&now, phase, step);
        self.marker.last_progress_at = now.clone();
        self.marker.updated_at = now;
        self.save_record();
        self.save_marker();
        self.tell_step();
    }

    /// Appends a step unless it repeats the last one; past [`record::MAX_TIMELINE`] the last
    /// entry is replaced, so the newest step is always there.
    fn push_timeline(&mut self, at: &str, phase: Phase, step: &str) {
        let timeline = &mut self.record.timeline;
        if timeline
            .last()
            .is_some_and(|last| last.phase == phase && last.step == step)
        {
            return;
        }
        if timeline.len() >= record::MAX_TIMELINE {
            timeline.pop();
        }
        timeline.push(TimelineEntry {
            at: at.to_string(),
            phase,
            step: step.to_string(),
        });
    }

    fn tell_step(&self) {
        if let (Some(watch), Some(entry)) = (&self.watch, self.record.timeline.last()) {
            watch.event(&Event::Step {
                record: &self.record,
                entry,
            });
        }
    }

    /// Writes the record as it is now.
    pub fn save_record(&self) {
        if let Err(error) = record::save_run(&self.layout, &self.record) {
            log::error!(
                "cannot write run record run_id={} error={error}",
                self.record.run_id
            );
        }
    }

    fn save_marker(&self) {
        if let Err(error) = record::save_marker(&self.layout, &self.issue_key, &self.marker) {
            log::warn!(
                "cannot write activity marker run_id={} error={error}",
                self.record.run_id
            );
        }
    }

    /// Finishes the attempt: final status, finish time, last marker. The record is written
    /// with the reserve to fall back on: it is what says how the attempt ended.
    pub fn finish(&mut self, status: RunStatus) {
        self.verify_lease();
        self.record.status = status;
        self.record.phase = Phase::Finished;
        let now = clock::now_rfc3339();
        self.push_timeline(&now, Phase::Finished, status.as_str());
        self.record.finished_at = Some(now);
        self.marker.phase = Phase::Finished;
        self.marker.updated_at = clock::now_rfc3339();
        let saved = match self.reserve.as_mut() {
            Some(reserve) => record::save_run_reserving(&self.layout, &self.record, reserve),
            None => record::save_run(&self.layout, &self.record),
        };
        if let Err(error) = saved {
            log::error!(
                "cannot write the final run record run_id={} error={error}",
                self.record.run_id
            );
        }
        self.save_marker();
        self.tell_step();
    }
}

impl Observer for Progress {
    fn on_activity(&mut self, activity: &Activity) {
        let tokens = Tokens {
            input: activity.tokens.input,
            output: activity.tokens.output,
            total: activity.tokens.total,
        };
        let thread_changed = self.marker.thread_id.as_deref() != Some(activity.thread_id.as_str());
        self.marker.thread_id = Some(activity.thread_id.clone());
        self.marker.turn_count = u32::try_from(activity.turn_count).unwrap_or(u32::MAX);
        self.marker.event_count = activity.event_count;
        self.marker.last_event_type = activity.last_event_type.clone();
        self.marker.last_event_at = activity.last_event_at_ms.map(clock::format_ms);
        if let Some(at) = activity.last_progress_at_ms {
            self.marker.last_progress_at = clock::format_ms(at);
        }
        self.marker.tokens = tokens;
        self.marker.rate_limits = activity
            .rate_limits
            .as_ref()
            .and_then(|limits| serde_json::to_value(limits).ok());
        self.marker.updated_at = clock::now_rfc3339();
        self.record.turn_count = self.marker.turn_count;
        self.record.tokens = tokens;
        self.record.thread_id = Some(activity.thread_id.clone());
        self.verify_lease();
        self.save_marker();
        if thread_changed {
            // The thread id belongs in the record as soon as it exists.
            self.save_record();
        }
        if let Some(watch) = &self.watch {
            watch.event(&Event::Tokens {
                tokens,
                turn_count: self.record.turn_count,
            });
        }
    }

    fn on_item(&mut self, stage: ItemStage, item: &Value) {
        let Some(watch) = &self.watch else {
            return;
        };
        // The prompt codex echoes back is not something the agent does.
        if item.get("type").and_then(Value::as_str) == Some("userMessage") {
            return;
        }
        let mut activity = crate::app_server::describe_item(item);
        if stage == ItemStage::Started && activity.starts_with("command ") {
            activity = format!("running {activity}");
        }
        watch.event(&Event::Agent {
            activity: &activity,
        });
    }
}
