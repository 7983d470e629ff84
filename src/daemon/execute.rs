//! The executor: carries out the daemon's [`Action`]s, in order, and logs each decision once
//! with `issue`, `run_id`, `attempt`, `action` and `reason`. It also turns a finished child
//! into [`ExitFacts`] for [`exits::decide`].
//!
//! Everything with a side effect lives here: signals to children, slots and spawns, the retry
//! queue on disk, run records, lane removal (a finished child's, and the retained lanes of
//! terminal issues through `workspace::sweep`), and the tracker writes of a stalled lane. What to
//! do was decided before, by pure functions; a dispatch that finds no free slot (or cannot
//! spawn) ends this tick's dispatching, and the issue stays eligible, its retry queued.

use std::time::Instant;

use super::Daemon;
use super::action::{Action, ChildRef, Dispatch, Note, Sweep, Verb};
use super::children::{self, SpawnSpec, StopReason};
use super::exits::{self, ExitFacts};
use crate::claims::RetainedLane;
use crate::run::writeback;
use crate::tracker::Issue;
use crate::workspace::record::{self, ErrorClass, IssueRef, RetryEntry, RunRecord};
use crate::workspace::{lane, lock, retry_queue, sweep};
use crate::{clock, selection, tracker};

impl Daemon {
    /// Carries out `actions` in order.
    pub(super) fn execute(&mut self, actions: Vec<Action>) {
        let mut dispatching = true;
        for action in actions {
            if let Action::Dispatch {
                issue,
                attempt,
                why,
            } = &action
            {
                if dispatching && !self.dispatch(issue, *attempt, *why) {
                    // No free slot (or no spawn): later dispatches wait for the next tick.
                    dispatching = false;
                }
            } else if let Action::Review(step) = action {
                if !self.review_step(*step, dispatching) {
                    dispatching = false;
                }
            } else {
                self.apply(action);
            }
        }
    }

    /// Carries out one action other than a dispatch.
    fn apply(&mut self, action: Action) {
        match action {
            Action::Stop { child, reason, why } => self.stop(&child, reason, &why),
            // Dispatches and review steps are carried out by `execute`, which knows whether a
            // slot ran out.
            Action::Dispatch { .. } | Action::Review(_) => {}
            Action::Release {
                issue_id,
                identifier,
                attempt,
                why,
            } => {
                // The queue is saved before the decision is logged: a log line never announces
                // state that is not on disk yet.
                self.forget_retry(&issue_id);
                log::info!(
                    "retry released issue={identifier} attempt={attempt} action={} reason=\"{why}\"",
                    Verb::Released.as_str()
                );
            }
            Action::Queue { entry, delay } => self.queue_retry(entry, delay),
            Action::SaveRecord(record) => {
                if let Err(error) = record::save_run(&self.layout, &record) {
                    log::error!(
                        "cannot update run record run_id={} error={error}",
                        record.run_id
                    );
                }
            }
            Action::RemoveLane(child) => self.remove_lane(&child),
            Action::Stall {
                issue_id,
                identifier,
                record,
                message,
                next_action,
            } => self.record_stall(&issue_id, &identifier, &record, &message, &next_action),
            Action::EarlyExits { issue_id, count } => match count {
                Some(count) => {
                    self.early_exits.insert(issue_id, count);
                }
                None => {
                    self.early_exits.remove(&issue_id);
                }
            },
            Action::Note {
                child,
                attempt,
                note,
            } => log_note(&child, attempt, &note),
            Action::SweepLane { lane, sweep } => self.sweep_lane(&lane, sweep),
        }
    }

    /// A retained lane of a terminal issue: removed, kept saying why, or its mark forgotten
    /// (`workspace::sweep` logs each change once).
    fn sweep_lane(&self, lane: &RetainedLane, step: Sweep) {
        let target = sweep::LaneRef {
            issue_id: &lane.issue_id,
            identifier: &lane.identifier,
            lane_key: &lane.lane_key,
        };
        match step {
            Sweep::Remove { state } => {
                let hooks = &self.store.current().hooks;
                // A lane on an ssh host goes there first (guarded by its creation marker).
                crate::worker::lane::remove_everywhere(
                    &self.layout,
                    &self.config,
                    &lane.lane_key,
                    hooks,
                );
                let secrets = self.config.secret_env_vars();
                sweep::remove(&self.layout, target, &state, hooks, &secrets);
            }
            Sweep::Keep { state, why } => sweep::keep(&self.layout, target, &state, &why),
            Sweep::Forget => sweep::forget(&self.layout, target),
        }
    }

    /// Handles one finished child (spawned: from its exit event; adopted: its lease freed).
    pub(super) fn child_exited(&mut self, run_id: &str, code: Option<i32>) {
        let Some(position) = self
            .children
            .iter()
            .position(|child| child.run_id == run_id)
        else {
            return;
        };
        let child = self.children.remove(position);
        let record = match record::load_run(&self.layout, run_id) {
            Ok(record) => Some(record),
            Err(crate::workspace::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(error) => {
                // Read as no record (the child ended before it started an attempt), said so.
                log::warn!(
                    "cannot read the finished child's run record issue={} run_id={run_id} error={error}",
                    child.identifier
                );
                None
            }
        };
        if self.repair_exited(&child, record.as_ref(), code) {
            return;
        }
        if let Some(run) = &record {
            self.review_after_handoff(&child, run);
        }
        let execution = &self.store.current().execution;
        let facts = ExitFacts {
            child: ChildRef {
                run_id: child.run_id.clone(),
                issue_id: child.issue_id.clone(),
                identifier: child.identifier.clone(),
                lane_key: child.lane_key.clone(),
                attempt: child.attempt,
            },
            stop: child.stop.as_ref().map(|(reason, _)| reason.clone()),
            record,
            code,
            max_attempts: execution.max_attempts,
            max_retry_backoff: std::time::Duration::from_millis(execution.max_retry_backoff_ms),
            stall_timeout: std::time::Duration::from_millis(self.config.agent.stall_timeout_ms),
            early_exits: self.early_exits.get(&child.issue_id).copied().unwrap_or(0),
            now_ms: clock::now_ms(),
        };
        let actions = exits::decide(&facts);
        self.execute(actions);
    }

    fn stop(&mut self, child: &ChildRef, reason: StopReason, why: &str) {
        let Some(running) = self
            .children
            .iter_mut()
            .find(|running| running.run_id == child.run_id)
        else {
            return;
        };
        let verb = match reason {
            StopReason::Terminal => Verb::Terminated,
            StopReason::Stalled { .. } => Verb::Stalled,
            StopReason::Inactive | StopReason::Shutdown => Verb::Interrupted,
        };
        if verb == Verb::Stalled {
            log::warn!(
                "lane stalled issue={} run_id={} attempt={} action={} reason=\"{why}\"",
                child.identifier,
                child.run_id,
                child.attempt,
                verb.as_str()
            );
        } else {
            log::info!(
                "stopping lane issue={} run_id={} attempt={} action={} reason=\"{why}\"",
                child.identifier,
                child.run_id,
                child.attempt,
                verb.as_str()
            );
        }
        children::request_stop(running, reason);
    }

    /// Takes a slot, reads the issue again (fresh work and recovery: the mirror may be a poll
    /// old) and spawns a child for it; a retry that runs leaves the queue. False when no slot
    /// is free or the spawn failed (logged; the issue stays eligible). True, with nothing
    /// spawned, when the read finds the issue no longer runnable: the next dispatch may use the
    /// slot.
    fn dispatch(&mut self, issue: &Issue, attempt: u32, why: Dispatch) -> bool {
        let max = self.store.current().execution.max_concurrent_agents as usize;
        // With ssh hosts, a lane needs a host that is up with a free slot too: when every host
        // is down or full, dispatch waits. A child takes its host slot itself, a moment after
        // it starts, so the children that hold none yet are counted against the free slots:
        // otherwise one tick could start more children than the hosts have room for, and the
        // extra ones would end at once with nowhere to run.
        if let Some(worker) = &self.config.worker {
            let cap = crate::worker::assign::cap(worker, max as u32);
            let free =
                crate::worker::assign::free_slots(&self.layout, worker, cap, clock::now_ms());
            let pending = self
                .children
                .iter()
                .filter(|child| child.stop.is_none() && !self.holds_host(child))
                .count();
            if free <= pending {
                log::debug!(
                    "dispatch waits: every ssh host is down or at its per-host cap free={free} starting={pending}"
                );
                return false;
            }
        }
        let slot = match lock::acquire_slot(&self.layout, max) {
            Ok(Some(slot)) => slot,
            Ok(None) => return false,
            Err(error) => {
                log::error!("cannot take a dispatch slot error={error}");
                return false;
            }
        };
        // The slot comes first: a candidate waiting for one must not cost a request a tick.
        // A due retry was read again this tick already.
        let reread;
        let issue = if why == Dispatch::Retry {
            issue
        } else {
            match self.reread(issue) {
                Some(fresh) => {
                    reread = fresh;
                    &reread
                }
                None => return true,
            }
        };
        let key = lane::lane_key(&issue.identifier);
        let run_id = record::new_run_id(&key, attempt);
        let snapshot = self.snapshot_path();
        let spec = SpawnSpec {
            config_path: &self.config.path,
            workflow_snapshot: &snapshot,
            issue_id: &issue.id,
            identifier: &issue.identifier,
            run_id: &run_id,
            attempt,
            repair: false,
        };
        match children::spawn(&self.layout, &spec, slot, &self.events) {
            Ok(child) => {
                log::info!(
                    "dispatched issue={} run_id={run_id} attempt={attempt} pid={} action={} reason=\"{}\" log={}",
                    issue.identifier,
                    child.pid,
                    Verb::Dispatch.as_str(),
                    why.reason(),
                    self.layout.log_file(&run_id).display()
                );
                self.children.push(child);
                if why == Dispatch::Retry {
                    self.forget_retry(&issue.id);
                }
                true
            }
            Err(error) => {
                log::error!(
                    "cannot spawn run --once issue={} run_id={run_id} error={error}",
                    issue.identifier
                );
                false
            }
        }
    }

    /// Whether `child` holds a host slot: its run record names its host (it is written right
    /// after the slot is taken, so a child in between counts as holding none, which only makes
    /// dispatch wait a tick).
    fn holds_host(&self, child: &children::Child) -> bool {
        record::load_run(&self.layout, &child.run_id).is_ok_and(|run| run.host.is_some())
    }

    /// Reads `issue` again right before its dispatch and returns the fresh copy while
    /// [`selection::runnable`] accepts it. The mirror may be a poll old, and a blocking relation
    /// can be added without the issue's stamp moving; the child re-checks too, but a child
    /// that only finds out costs a process and a slot.
    fn reread(&mut self, issue: &Issue) -> Option<Issue> {
        let fresh = match self.intake.confirm(std::slice::from_ref(&issue.id)) {
            Ok(fresh) => fresh.into_iter().next(),
            Err(error) => {
                self.tracker_error("read before dispatch", &error);
                return None;
            }
        };
        let policy = &self.store.current().tracker;
        let verdict = match &fresh {
            Some(fresh) => selection::runnable(fresh, policy, &self.project_slug)
                .map_err(|reason| reason.to_string()),
            None => Err("the issue is no longer visible in the project".to_string()),
        };
        match verdict {
            Ok(()) => fresh,
            Err(reason) => {
                log::info!(
                    "not dispatched issue={} reason=\"{reason}\" (read again before dispatch)",
                    issue.identifier
                );
                None
            }
        }
    }

    /// Queues `entry` (replacing the issue's earlier entry), due after `delay`.
    fn queue_retry(&mut self, entry: RetryEntry, delay: std::time::Duration) {
        let issue_id = entry.issue_id.clone();
        self.queue
            .entries
            .retain(|queued| queued.issue_id != issue_id);
        let log_line = format!(
            "retry queued issue={} attempt={} action={} reason=\"{:?} after {}, due in {} s\"",
            entry.issue_identifier,
            entry.attempt,
            Verb::RetryScheduled.as_str(),
            entry.kind,
            entry
                .last_error_class
                .as_ref()
                .map_or_else(|| "a clean exit".to_string(), ToString::to_string),
            delay.as_secs()
        );
        self.queue.entries.push(entry);
        self.due.insert(issue_id, Instant::now() + delay);
        self.save_queue();
        log::info!("{log_line}");
    }

    pub(super) fn forget_retry(&mut self, issue_id: &str) {
        self.queue
            .entries
            .retain(|entry| entry.issue_id != issue_id);
        self.due.remove(issue_id);
        self.save_queue();
    }

    pub(super) fn save_queue(&self) {
        if let Err(error) = retry_queue::save(&self.layout, &self.queue) {
            log::error!("cannot save retry queue error={error}");
        }
    }

    /// Removes a finished issue's lane (`before_remove` hook first); records stay.
    fn remove_lane(&self, child: &ChildRef) {
        let workflow = self.store.current();
        let secrets = self.config.secret_env_vars();
        // The lane's name is the one the bookkeeping remembers (the child decided it).
        let issue = IssueRef {
            id: &child.issue_id,
            identifier: &child.identifier,
        };
        let lane_key = match record::find_issue_state(&self.layout, issue) {
            Ok(state) => state.map_or_else(|| child.lane_key.clone(), |state| state.lane()),
            Err(error) => {
                log::warn!(
                    "cannot read issue bookkeeping, removing the lane the daemon knew issue={} lane={} error={error}",
                    child.identifier,
                    child.lane_key
                );
                child.lane_key.clone()
            }
        };
        crate::worker::lane::remove_everywhere(
            &self.layout,
            &self.config,
            &lane_key,
            &workflow.hooks,
        );
        match lane::remove(&self.layout, &lane_key, &workflow.hooks, &secrets) {
            Ok(()) => log::info!(
                "lane removed issue={} run_id={} attempt={} action={} reason=\"issue is terminal\"",
                child.identifier,
                child.run_id,
                child.attempt,
                Verb::Terminated.as_str()
            ),
            Err(error) => log::warn!(
                "cannot remove lane issue={} error={error}",
                child.identifier
            ),
        }
    }

    /// A stalled lane: its record, the needs-attention path in the tracker, the bookkeeping.
    fn record_stall(
        &mut self,
        issue_id: &str,
        identifier: &str,
        record: &RunRecord,
        message: &str,
        next_action: &str,
    ) {
        if let Err(error) = record::save_run(&self.layout, record) {
            log::error!("cannot write the stalled record issue={identifier} error={error}");
        }
        let workflow = self.store.current();
        match tracker::open(&self.config, &self.project_slug).and_then(|tracker| {
            tracker
                .refresh(&[issue_id.to_string()])
                .map(|fresh| (tracker, fresh))
        }) {
            Ok((tracker, fresh)) => {
                if let Some(issue) = fresh.first() {
                    let host_paths = vec![(self.config.repo_root.clone(), ".".to_string())];
                    let target = writeback::Target {
                        tracker: tracker.as_ref(),
                        issue,
                        policy: &workflow.tracker,
                        host_paths: &host_paths,
                    };
                    if let Err(error) = writeback::human(
                        &target,
                        record,
                        &ErrorClass::StalledRunDetected.to_string(),
                        message,
                        next_action,
                    ) {
                        log::warn!(
                            "cannot write the stall to the tracker issue={identifier} error={}",
                            error.error
                        );
                    }
                }
                // Counted with the intake's requests: every request the daemon sends is in
                // the budget.
                self.intake.book(&tracker.usage());
            }
            Err(error) => self.tracker_error("stall writeback", &error),
        }
        let issue = IssueRef {
            id: issue_id,
            identifier,
        };
        let failure_state = &workflow.tracker.failure_state;
        let written = record::update_issue_state(&self.layout, issue, None, |current| {
            let next = exits::stalled_bookkeeping(
                current,
                record,
                issue_id,
                identifier,
                next_action,
                failure_state,
                &clock::now_rfc3339(),
            );
            (next, ())
        });
        if let Err(error) = written {
            log::error!("cannot write issue bookkeeping issue={identifier} error={error}");
        }
        log::warn!(
            "lane stopped issue={identifier} run_id={} attempt={} action={} reason=\"{message}\"",
            record.run_id,
            record.attempt,
            Verb::Stalled.as_str()
        );
    }
}

/// The log line of a decision that needs nothing else.
fn log_note(child: &ChildRef, attempt: u32, note: &Note) {
    let identifier = &child.identifier;
    let released = Verb::Released.as_str();
    match note {
        Note::Finished { run_id, status } => log::info!(
            "child finished issue={identifier} run_id={run_id} attempt={attempt} status={}",
            status.as_str()
        ),
        Note::BudgetSpent { max_attempts } => log::info!(
            "retry not queued issue={identifier} attempt={attempt} action={released} reason=\"attempt budget of {max_attempts} spent\""
        ),
        Note::IssueLeft => log::info!(
            "child stopped because its issue left issue={identifier} attempt={attempt} action={released} reason=\"issue left the active states\""
        ),
        Note::LaneKept => log::info!(
            "lane kept issue={identifier} run_id={} attempt={attempt} action={} reason=\"issue left the active states\"",
            child.run_id,
            Verb::Interrupted.as_str()
        ),
        Note::NothingToDo => log::info!(
            "child had nothing to do issue={identifier} attempt={attempt} action={released} reason=\"issue no longer runnable or held elsewhere\""
        ),
        Note::FinishedWithoutRecord { run_id, status } => log::warn!(
            "child finished without its record issue={identifier} run_id={run_id} attempt={attempt} status={}",
            status.as_str()
        ),
        Note::StalledWithoutRecord => {
            log::warn!("stalled child left no record issue={identifier}")
        }
    }
}
