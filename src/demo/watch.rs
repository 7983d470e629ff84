//! Watching the demo the way an operator would, from Maestro's own state: the run records and
//! the daemon's retry queue under `.maestro/`, never the daemon's log text.
//!
//! Each poll turns what changed into one progress line per decision (a lane dispatched, an
//! attempt's outcome, a retry queued), and each issue is judged against the statuses its
//! attempts should end with ([`judge`], a pure function). This module reads only; starting and
//! stopping the daemon is `mod.rs`'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use super::script::{self, DemoIssue, ISSUES};
use crate::workspace::record::{self, RunRecord, RunStatus};
use crate::workspace::{Layout, retry_queue};

/// Where one issue stands against its expected outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Every attempt so far ended as expected; more are to come.
    Pending,
    /// Every expected attempt happened and ended as expected.
    Reached,
    /// Something else happened; the text says what.
    Wrong(String),
}

/// Judges `finished` (the statuses of an issue's finished attempts, in attempt order) against
/// what the issue should end with.
pub fn judge(issue: &DemoIssue, finished: &[RunStatus]) -> Standing {
    for (index, status) in finished.iter().enumerate() {
        match issue.expected.get(index) {
            Some(expected) if expected == status => {}
            Some(expected) => {
                return Standing::Wrong(format!(
                    "{} attempt {} ended {} where {} was expected",
                    issue.identifier,
                    index + 1,
                    status.as_str(),
                    expected.as_str()
                ));
            }
            None => {
                return Standing::Wrong(format!(
                    "{} ran {} attempts where {} were expected",
                    issue.identifier,
                    finished.len(),
                    issue.expected.len()
                ));
            }
        }
    }
    if finished.len() == issue.expected.len() {
        Standing::Reached
    } else {
        Standing::Pending
    }
}

/// The demo's view of `.maestro/`, polled.
#[derive(Debug)]
pub struct Watcher {
    layout: Layout,
    started: Instant,
    /// The last status a line was printed for, by run id.
    seen: HashMap<String, RunStatus>,
    /// Retry queue entries already reported: (issue identifier, attempt).
    queued: HashSet<(String, u32)>,
    /// Each demo issue's finished attempts as of the last poll: (attempt, status).
    finished: BTreeMap<String, Vec<(u32, RunStatus)>>,
    /// Records of issues that are not the demo's (none are expected).
    strangers: Vec<String>,
}

impl Watcher {
    pub fn new(layout: Layout, started: Instant) -> Watcher {
        Watcher {
            layout,
            started,
            seen: HashMap::new(),
            queued: HashSet::new(),
            finished: BTreeMap::new(),
            strangers: Vec::new(),
        }
    }

    /// Reads the records and the retry queue; returns a line for each decision not yet shown.
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let runs = record::list_runs(&self.layout).items;
        self.finished.clear();
        for run in &runs {
            if script::issue(&run.issue_identifier).is_none() {
                if !self.strangers.contains(&run.issue_identifier) {
                    self.strangers.push(run.issue_identifier.clone());
                }
                continue;
            }
            if !self.seen.contains_key(&run.run_id) {
                lines.push(self.line(run, &format!("dispatched (run {})", run.run_id)));
                self.seen.insert(run.run_id.clone(), RunStatus::Running);
            }
            if run.status != RunStatus::Running {
                if self.seen.get(&run.run_id) != Some(&run.status) {
                    lines.push(self.line(run, &outcome(run)));
                    self.seen.insert(run.run_id.clone(), run.status);
                }
                self.finished
                    .entry(run.issue_identifier.clone())
                    .or_default()
                    .push((run.attempt, run.status));
            }
        }
        for attempts in self.finished.values_mut() {
            attempts.sort_by_key(|(attempt, _)| *attempt);
        }
        if let Ok(queue) = retry_queue::load(&self.layout) {
            for entry in queue.entries {
                let key = (entry.issue_identifier.clone(), entry.attempt);
                if self.queued.insert(key) {
                    lines.push(format!(
                        "{:>6.1}s  {:<7} attempt {}  retry queued by the daemon ({} after {})",
                        self.started.elapsed().as_secs_f64(),
                        entry.issue_identifier,
                        entry.attempt,
                        entry.kind.as_str(),
                        entry
                            .last_error_class
                            .as_ref()
                            .map_or_else(|| "no error".to_string(), ToString::to_string)
                    ));
                }
            }
        }
        lines
    }

    /// Each demo issue and where it stands.
    pub fn standings(&self) -> Vec<(&'static DemoIssue, Standing)> {
        ISSUES
            .iter()
            .map(|issue| {
                let statuses: Vec<RunStatus> = self
                    .finished
                    .get(issue.identifier)
                    .map(|attempts| attempts.iter().map(|(_, status)| *status).collect())
                    .unwrap_or_default();
                (issue, judge(issue, &statuses))
            })
            .collect()
    }

    /// True when every issue reached its expected outcome and nothing else ran.
    pub fn all_reached(&self) -> bool {
        self.strangers.is_empty()
            && self
                .standings()
                .iter()
                .all(|(_, standing)| *standing == Standing::Reached)
    }

    /// What went wrong, when anything did.
    pub fn wrong(&self) -> Vec<String> {
        let mut wrong: Vec<String> = self
            .standings()
            .into_iter()
            .filter_map(|(_, standing)| match standing {
                Standing::Wrong(reason) => Some(reason),
                _ => None,
            })
            .collect();
        if !self.strangers.is_empty() {
            wrong.push(format!(
                "runs of issues that are not the demo's: {}",
                self.strangers.join(", ")
            ));
        }
        wrong
    }

    fn line(&self, run: &RunRecord, what: &str) -> String {
        format!(
            "{:>6.1}s  {:<7} attempt {}  {what}",
            self.started.elapsed().as_secs_f64(),
            run.issue_identifier,
            run.attempt
        )
    }
}

/// An attempt's outcome in a few words: the status, the error class and the next action.
fn outcome(run: &RunRecord) -> String {
    let next = run
        .retry
        .as_ref()
        .map(|retry| retry.next_action.clone())
        .unwrap_or_default();
    let class = run
        .error_class
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    match run.status {
        RunStatus::Handoff => format!("handed off: {next}"),
        RunStatus::RetryScheduled => format!("failed ({class}); next: {next}"),
        RunStatus::HumanRequired => format!("needs a human ({class}); next: {next}"),
        other => format!("ended {} ({class})", other.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_are_judged_attempt_by_attempt() {
        let retried = &ISSUES[2];
        assert_eq!(judge(retried, &[]), Standing::Pending);
        assert_eq!(
            judge(retried, &[RunStatus::RetryScheduled]),
            Standing::Pending
        );
        assert_eq!(
            judge(retried, &[RunStatus::RetryScheduled, RunStatus::Handoff]),
            Standing::Reached
        );
        assert_eq!(
            judge(retried, &[RunStatus::Handoff]),
            Standing::Wrong(
                "DEMO-3 attempt 1 ended handoff where retry_scheduled was expected".into()
            )
        );
        let once = &ISSUES[0];
        assert_eq!(
            judge(once, &[RunStatus::Handoff, RunStatus::Handoff]),
            Standing::Wrong("DEMO-1 ran 2 attempts where 1 were expected".into())
        );
    }
}
