//! The attempt's record on disk while it runs: the run record at each phase change and the lane
//! activity marker as agent events arrive.
//!
//! Marker writes are throttled by the app-server client (it reports activity at most about
//! once a second, plus thread and turn boundaries), so a delta storm costs a few atomic writes,
//! not one per delta. A failed write is logged and the attempt goes on: losing a progress
//! marker must not lose the run.

use crate::app_server::{Activity, Observer};
use crate::clock;
use crate::workspace::Layout;
use crate::workspace::record::{
    self, ActivityMarker, Phase, RunRecord, RunStatus, ToolCallRecord, Tokens,
};

/// The live record of one attempt.
#[derive(Debug)]
pub struct Progress {
    layout: Layout,
    lane_key: String,
    pub record: RunRecord,
    marker: ActivityMarker,
}

impl Progress {
    /// Starts tracking `record` (already filled in by the caller) and writes it.
    pub fn start(layout: &Layout, lane_key: &str, record: RunRecord) -> Progress {
        let now = clock::now_rfc3339();
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
            lane_key: lane_key.to_string(),
            record,
            marker,
        };
        progress.save_record();
        progress.save_marker();
        progress
    }

    /// Moves to `phase`; a phase change counts as progress.
    pub fn phase(&mut self, phase: Phase) {
        self.record.phase = phase;
        self.marker.phase = phase;
        let now = clock::now_rfc3339();
        self.marker.last_progress_at = now.clone();
        self.marker.updated_at = now;
        self.save_record();
        self.save_marker();
    }

    /// Records one dynamic tool call.
    pub fn tool_call(&mut self, tool: &str, success: bool, detail: String) {
        self.record.tool_calls.push(ToolCallRecord {
            at: clock::now_rfc3339(),
            tool: tool.to_string(),
            success,
            detail,
        });
        self.save_record();
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
        if let Err(error) = record::save_marker(&self.layout, &self.lane_key, &self.marker) {
            log::warn!(
                "cannot write activity marker run_id={} error={error}",
                self.record.run_id
            );
        }
    }

    /// Finishes the attempt: final status, finish time, last marker.
    pub fn finish(&mut self, status: RunStatus) {
        self.record.status = status;
        self.record.phase = Phase::Finished;
        self.record.finished_at = Some(clock::now_rfc3339());
        self.marker.phase = Phase::Finished;
        self.marker.updated_at = clock::now_rfc3339();
        self.save_record();
        self.save_marker();
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
        self.save_marker();
        if thread_changed {
            // The thread id belongs in the record as soon as it exists.
            self.save_record();
        }
    }
}
