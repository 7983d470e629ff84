//! `maestro run --once`: one issue through slot → lease → lane → codex turns → validation →
//! writeback, with every step recorded so a crash loses nothing.
//!
//! This is the main loop of the whole tool. It owns the order of operations and nothing else:
//! eligibility is [`crate::selection`], local claims [`crate::claims`], the lane, locks and
//! records [`crate::workspace`], the agent [`crate::app_server`]; beside this file, `claim`
//! picks and leases the issue, `tools` and `verdict` judge what the agent did, `writeback` and
//! `conclude` write the result. One attempt ends with exactly one [`Outcome`], one run record,
//! one outcome written to the tracker, and one summary line.

mod agent;
mod cause;
mod claim;
mod conclude;
mod context;
mod continuation;
pub mod deadline;
mod handoff;
mod host;
pub mod json;
pub mod named;
mod progress;
mod prompt;
pub(crate) mod redact;
mod remote_context;
mod repair;
mod repair_prompt;
mod sweep;
mod tools;
mod validation;
mod verdict;
pub mod watch;
pub(crate) mod writeback;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::app_server::Session;
use crate::cli::TargetArgs;
use crate::clock;
use crate::selection::{self, Standing};
use crate::settings::Settings;
use crate::tracker::{self, Issue, Tracker};
use crate::worker::{self, Place};
use crate::workspace::lane::{self, Lane, LaneSpec};
use crate::workspace::lock::{self, LaneClaim, LaneLock, Slot};
use crate::workspace::record::{
    self, ErrorClass, IssueState, Phase, Reserve, RunRecord, RunStatus,
};
use crate::workspace::{self, Layout, retention};

pub use claim::NotClaimed;
pub use handoff::HandedOff;

use claim::{ClaimError, Claimed, claim_next, claim_target};
use deadline::Deadline;
use watch::{Event, Watch};

use host::place_failure;
use progress::Progress;
use tools::IssueTools;
use verdict::{Declared, Failure};

/// Options beyond the settings.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The daemon's target: run exactly this issue (hidden flags).
    pub target: Option<TargetArgs>,
    /// Set on SIGTERM/SIGINT: the running turn is interrupted and the run recorded as
    /// interrupted.
    pub stop: Arc<AtomicBool>,
    /// `--issue IDENT`: run exactly this issue if it is eligible (`named`).
    pub issue: Option<String>,
    /// `--deadline`: raises `stop` when the work's time is up; the attempt then fails as
    /// `deadline_exceeded` instead of being interrupted (`deadline`).
    pub deadline: Option<Deadline>,
    /// Told about each step, the tokens and the agent's activity (the progress line).
    pub watch: Option<Arc<dyn Watch>>,
}

/// How one `run --once` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Review handoff validated and written: the issue is in `success_state`. `review` is
    /// `pr=URL` or `branch=B commit=SHA` (`[handoff] mode`).
    Handoff { review: String },
    /// Failed with attempts left; the issue stays in progress.
    RetryScheduled { error_class: ErrorClass },
    /// The needs-attention path was taken.
    HumanRequired { error_class: ErrorClass },
    /// Stopped by a signal before an outcome was written.
    Interrupted,
    /// The issue became ineligible after the lease was taken; the lane is kept.
    Skipped { reason: String },
    /// Nothing was started: no slot, no eligible issue, or every one held elsewhere.
    NothingToDo { reason: NotClaimed },
}

/// The one line `run --once` prints (`commands` maps its outcome to the exit code); with the
/// final record and the handoff, everything `run --once --json` reports (`json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub issue: Option<String>,
    pub run_id: Option<String>,
    pub outcome: Outcome,
    pub next_action: String,
    /// The attempt's final run record; `None` when nothing was claimed.
    pub record: Option<Box<RunRecord>>,
    /// What was handed off, for a handoff.
    pub handoff: Option<HandedOff>,
}

impl Summary {
    /// `run --once: issue=ABC-12 run_id=… outcome=handoff next=…`, always one line: the
    /// identifier, PR URL and reasons come from the tracker, GitHub and the agent, so each is
    /// escaped ([`crate::escape::text`]) before shell scripts and terminals read it.
    pub fn line(&self) -> String {
        use crate::escape::text;
        let outcome = match &self.outcome {
            Outcome::Handoff { review } => format!("handoff {}", text(review)),
            Outcome::RetryScheduled { error_class } => {
                format!("retry_scheduled error={}", text(&error_class.to_string()))
            }
            Outcome::HumanRequired { error_class } => {
                format!("human_required error={}", text(&error_class.to_string()))
            }
            Outcome::Interrupted => "interrupted".to_string(),
            Outcome::Skipped { reason } => format!("skipped reason=\"{}\"", text(reason)),
            Outcome::NothingToDo { reason } => {
                format!("nothing_to_do reason=\"{}\"", text(&reason.to_string()))
            }
        };
        format!(
            "run --once: issue={} run_id={} outcome={outcome} next=\"{}\"",
            text(self.issue.as_deref().unwrap_or("-")),
            text(self.run_id.as_deref().unwrap_or("-")),
            text(&self.next_action)
        )
    }
}

/// A failure of Maestro itself before an outcome could be recorded (exit 1).
#[derive(Debug)]
pub enum Error {
    Tracker(tracker::Error),
    Workspace(workspace::Error),
    /// The daemon's target issue is not visible in the project.
    TargetMissing {
        issue_id: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Tracker(error) => write!(f, "tracker: {error}"),
            Error::Workspace(error) => error.fmt(f),
            Error::TargetMissing { issue_id } => write!(
                f,
                "issue {issue_id} is not visible in the project any more; nothing to run"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<tracker::Error> for Error {
    fn from(error: tracker::Error) -> Self {
        Error::Tracker(error)
    }
}

impl From<workspace::Error> for Error {
    fn from(error: workspace::Error) -> Self {
        Error::Workspace(error)
    }
}

/// Runs one attempt at one issue.
pub fn run_once(
    settings: &Settings,
    tracker: &dyn Tracker,
    options: &Options,
) -> Result<Summary, Error> {
    let layout = Layout::new(&settings.config.workspace_root);
    lane::sweep_staging(&layout);
    let execution = &settings.workflow.execution;
    let _slot: Slot = match &options.target {
        Some(TargetArgs {
            slot: Some((index, fd)),
            ..
        }) => Slot::adopt(&layout, *index, *fd)?,
        _ => match lock::acquire_slot(&layout, execution.max_concurrent_agents as usize)? {
            Some(slot) => slot,
            None => {
                return Ok(nothing(NotClaimed::SlotsBusy {
                    limit: execution.max_concurrent_agents,
                }));
            }
        },
    };
    if options
        .deadline
        .as_ref()
        .is_some_and(Deadline::stopped_work)
    {
        return Ok(nothing(NotClaimed::DeadlinePassed));
    }
    if let Some(reason) = host::hosts_busy(settings, &layout) {
        return Ok(nothing(reason));
    }
    if let Some(watch) = &options.watch {
        watch.event(&Event::Claiming);
    }
    let claimed = match (&options.target, &options.issue) {
        (Some(target), _) => claim_target(settings, tracker, &layout, target),
        (None, Some(identifier)) => named::claim_named(settings, tracker, &layout, identifier),
        (None, None) => claim_next(settings, tracker, &layout),
    };
    let summary = match claimed {
        Ok(claimed) => attempt(settings, tracker, &layout, claimed, options),
        Err(ClaimError::NotClaimed(reason)) => nothing(reason),
        Err(ClaimError::Failed(error)) => return Err(error),
    };
    // From a shell, the lanes of issues now terminal go too (the daemon's tick does it for its
    // children); not when a signal or the deadline asks the run to end.
    let ending = options.stop.load(Ordering::SeqCst)
        || options
            .deadline
            .as_ref()
            .is_some_and(Deadline::stopped_work);
    if options.target.is_none() && !ending {
        sweep::terminal_lanes(settings, tracker, &layout);
    }
    Ok(summary)
}

fn nothing(reason: NotClaimed) -> Summary {
    log::info!("nothing to do reason=\"{reason}\"");
    Summary {
        issue: None,
        run_id: None,
        next_action: "none".to_string(),
        outcome: Outcome::NothingToDo { reason },
        record: None,
        handoff: None,
    }
}

/// Absolute host paths and what they become in anything posted or shown to the tracker.
fn host_paths(settings: &Settings) -> Vec<(PathBuf, String)> {
    writeback::host_paths(&settings.config)
}

/// Everything after the lease: lane, agent, verdict, writeback, records.
fn attempt(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
    claimed: Claimed,
    options: &Options,
) -> Summary {
    let Claimed {
        issue,
        lease,
        lane_lock,
        lane_key,
        attempt,
        run_id,
        previous_failure,
        previous_state,
        repair,
    } = claimed;
    let config = &settings.config;
    let issue_key = record::issue_key(&issue.id);
    // The branch follows the lane's name, so a lane kept under its first name keeps its branch.
    let branch = lane::branch_name(&config.id, &lane_key);
    let lane_dir = layout.lane_dir(&lane_key);
    let record = RunRecord {
        run_id: run_id.clone(),
        project_id: config.id.clone(),
        issue_id: issue.id.clone(),
        issue_identifier: issue.identifier.clone(),
        issue_url: issue.url.clone(),
        attempt,
        branch: branch.clone(),
        workspace_path: Layout::relative_to(&lane_dir, &config.repo_root),
        started_at: clock::now_rfc3339(),
        review_repair: repair.as_ref().map(|job| job.attempt),
        ..RunRecord::default()
    };
    log::info!(
        "attempt starting project={} issue={} run_id={run_id} attempt={attempt} branch={branch}",
        config.id,
        issue.identifier
    );
    let mut progress = Progress::start(layout, &issue_key, record);
    progress.hold(lease, Reserve::create(layout, &run_id));
    let hosts = host::assign_host(settings, layout, previous_state.as_ref());
    progress.watch(options.watch.clone());
    let run = LaneRun {
        settings,
        tracker,
        layout,
        issue: &issue,
        lane_key: &lane_key,
        branch: &branch,
        attempt,
        previous_failure,
        previous_state,
        options,
        host_paths: host::with_hosts(host_paths(settings), settings),
        hosts,
        repair,
    };
    let mut lane_lock = lane_lock;
    let ending = run.execute(&mut progress, &mut lane_lock);
    let ending = deadline::judge(ending, options.deadline.as_ref(), progress.record.phase);
    let summary = match &run.repair {
        Some(job) => run.conclude_repair(&mut progress, ending, job),
        None => run.conclude(&mut progress, ending),
    };
    progress.release();
    drop(lane_lock);
    match retention::prune(layout, &settings.config.retention) {
        Ok(pruned) if pruned != retention::Pruned::default() => log::info!(
            "pruned old runs runs={} trimmed={} orphans={} bytes={}",
            pruned.runs,
            pruned.trimmed,
            pruned.orphans,
            pruned.bytes
        ),
        Ok(_) => {}
        Err(error) => log::warn!("cannot prune old runs error={error}"),
    }
    summary
}

/// How the attempt's work ended, before writeback.
enum Ending {
    Validated(tools::Handoff),
    Failed(Failure),
    ManualAttention,
    /// Stopped by a signal.
    Interrupted,
    /// The issue became ineligible before the agent started.
    Skipped(String),
    /// The issue left the active states between turns (`Terminated` or `Interrupted`).
    Left {
        status: RunStatus,
        reason: String,
    },
}

impl Ending {
    /// A failure the needs-attention label turns into the human path
    /// ([`verdict::flagged_for_human`]); any other ending as it is.
    fn flagged(self, labels: &[String], policy: &crate::workflow::TrackerPolicy) -> Ending {
        match self {
            Ending::Failed(failure) => {
                Ending::Failed(verdict::flagged_for_human(failure, labels, policy))
            }
            ending => ending,
        }
    }
}

/// One attempt's context.
struct LaneRun<'a> {
    settings: &'a Settings,
    tracker: &'a dyn Tracker,
    layout: &'a Layout,
    issue: &'a Issue,
    /// The lane directory's name.
    lane_key: &'a str,
    branch: &'a str,
    attempt: u32,
    previous_failure: Option<String>,
    /// The issue's bookkeeping as it was before this attempt.
    previous_state: Option<IssueState>,
    options: &'a Options,
    host_paths: Vec<(PathBuf, String)>,
    /// The attempt's ssh host (`[worker]`); `None` for local lanes.
    hosts: Option<std::cell::RefCell<worker::assign::AttemptHost>>,
    /// Set on a review repair (`--repair`): the retained lane is re-entered for the PR's
    /// feedback (`repair.rs`).
    repair: Option<repair::Job>,
}

impl LaneRun<'_> {
    fn secrets(&self) -> Vec<String> {
        self.settings.config.secret_env_vars()
    }

    /// Lane, refresh, agent session, turns, disposition, validation. The lane directory is
    /// locked before the agent starts (`lane_lock`), so a second proof of ownership exists
    /// outside `.maestro/`.
    fn execute(&self, progress: &mut Progress, lane_lock: &mut Option<LaneLock>) -> Ending {
        let workflow = &self.settings.workflow;
        let max_attempts = workflow.execution.max_attempts;
        if self.repair.is_none() && selection::within_budget(self.attempt, max_attempts).is_err() {
            // Only an attempt that died without an outcome gets here (every recorded failure
            // on the last attempt already went to a human): no agent run, straight to a human.
            return Ending::Failed(Failure::human(
                ErrorClass::AttemptsExhausted,
                format!(
                    "attempt {} would exceed max_attempts ({max_attempts}); the previous attempt ended with: {}",
                    self.attempt,
                    self.previous_failure
                        .as_deref()
                        .unwrap_or("no recorded outcome")
                ),
            ));
        }
        let secrets = self.secrets();
        let spec = LaneSpec {
            layout: self.layout,
            repo_root: &self.settings.config.repo_root,
            key: self.lane_key,
            branch: self.branch,
            hooks: &workflow.hooks,
            remove_env: &secrets,
        };
        if self.repair.is_some() && !self.layout.lane_dir(self.lane_key).is_dir() {
            // A fresh clone would not hold the PR branch's work: a repair needs the lane kept.
            return Ending::Failed(Failure::retryable(
                ErrorClass::RepairLaneMissing,
                format!("the retained lane {} is gone", self.lane_key),
            ));
        }
        let (place, lane) = match self.prepare_lane(progress, &spec) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return self.no_host(progress),
            Err(failure) => return Ending::Failed(failure),
        };
        // A lane on a host is locked by nothing here: the lease and the attempt's process
        // hold the issue, and nothing on the host can reach this controller's files.
        if lane_lock.is_none() && matches!(place, Place::Local) {
            match lock::lock_lane(self.layout, self.lane_key) {
                Ok(LaneClaim::Locked(lock)) => *lane_lock = Some(lock),
                Ok(LaneClaim::Busy) => {
                    return Ending::Skipped(format!(
                        "lane {} is locked by another process",
                        self.lane_key
                    ));
                }
                Ok(LaneClaim::Absent) => {
                    return Ending::Failed(Failure::retryable(
                        ErrorClass::LaneSetupFailed,
                        format!(
                            "lane {} vanished right after it was prepared",
                            self.lane_key
                        ),
                    ));
                }
                Err(error) => return Ending::Failed(lane_failure(&error)),
            }
        }
        if let Some(script) = &workflow.hooks.before_run {
            match place.run_hook("before_run", script, &lane, &workflow.hooks, &secrets) {
                Ok(outcome) if outcome.success() => {}
                Ok(outcome) => {
                    let error = place.hook_error("before_run", &lane, &outcome);
                    return Ending::Failed(Failure::retryable(
                        ErrorClass::HookFailed,
                        error.to_string(),
                    ));
                }
                Err(error) => return Ending::Failed(place_failure(&error)),
            }
        }
        // The issue may have moved while the lane was prepared.
        let fresh = match self.tracker.refresh(std::slice::from_ref(&self.issue.id)) {
            Ok(fresh) => fresh.into_iter().next(),
            Err(error) => return Ending::Failed(tracker_failure(&error)),
        };
        let Some(fresh) = fresh else {
            return Ending::Skipped("the issue is no longer visible in the project".to_string());
        };
        let slug = &self.settings.project_slug;
        let verdict = match &self.repair {
            Some(_) => selection::repairable(&fresh, &workflow.tracker, slug),
            None => selection::runnable(&fresh, &workflow.tracker, slug),
        };
        if let Err(reason) = verdict {
            return Ending::Skipped(reason.to_string());
        }
        let ending = match &self.repair {
            Some(job) => self.repair_agent(progress, &lane, &fresh, job),
            None => self.agent(progress, &place, &lane, &fresh),
        };
        if let Some(script) = &workflow.hooks.after_run {
            // after_run failures are logged by run_hook and never change the outcome.
            let _ = place.run_hook("after_run", script, &lane, &workflow.hooks, &secrets);
        }
        ending
    }

    /// The agent session: turns until finalized, out of turns, or the issue leaves.
    fn agent(&self, progress: &mut Progress, place: &Place, lane: &Lane, issue: &Issue) -> Ending {
        // A stop raised while the lane was set up (a signal, the deadline) starts no agent.
        if self.options.stop.load(Ordering::SeqCst) {
            return Ending::Interrupted;
        }
        let workflow = &self.settings.workflow;
        let config = &self.settings.config;
        let secrets = redact::Secrets::from_env(&self.secrets());
        let context = match place {
            Place::Local => context::read_all(&lane.path, &workflow.read_first),
            Place::Remote(remote) => {
                remote_context::read_all(remote, &lane.key, &workflow.read_first)
            }
        };
        let instructions =
            prompt::developer_instructions(workflow, context, &issue.identifier, &secrets);
        progress.record.context_skipped = instructions.skipped;
        let stop = Arc::clone(&self.options.stop);
        let session_config = self.session_config(
            progress,
            lane,
            instructions.text,
            prompt::definitions(workflow),
            &stop,
        );
        progress.phase(Phase::Executing);
        let resume = continuation::thread_to_resume(
            self.layout,
            self.previous_state.as_ref(),
            self.lane_key,
        );
        // On a host, the thread's rollout is that host's: a retry on another host cannot
        // resume it, and codex's refusal starts a new thread with the issue's brief.
        let launcher = place.launcher(lane, &config.agent.command);
        let started = Session::start_with(
            session_config,
            &launcher,
            resume.as_ref().map(|(resume, _)| resume),
        );
        let mut session = match started {
            Ok(session) => session,
            Err(error) => return Ending::Failed(host::start_failure(place, &error)),
        };
        if session.resumed() {
            progress.record.resumed = resume.map(|(_, resumed)| resumed);
        }
        let tools = IssueTools::new(self.tool_context(issue, lane, place, &stop, &secrets, None));
        let ending = self.turns(progress, &mut session, &tools, lane, issue, &secrets);
        self.end_session(progress, session, &tools, ending)
    }

    fn turns(
        &self,
        progress: &mut Progress,
        session: &mut Session,
        tools: &IssueTools<'_>,
        lane: &Lane,
        issue: &Issue,
        secrets: &redact::Secrets,
    ) -> Ending {
        let workflow = &self.settings.workflow;
        let execution = &workflow.execution;
        let brief = prompt::IssueBrief {
            issue,
            attempt: self.attempt,
            max_attempts: execution.max_attempts,
            branch: self.branch,
            lane: &lane.path,
            previous_failure: self.previous_failure.clone(),
        };
        let mut input = if session.resumed() {
            prompt::resumed(&brief, execution.max_turns, secrets)
        } else {
            prompt::first_turn(&brief, secrets)
        };
        let mut claim_checked = false;
        for turn in 1..=execution.max_turns {
            if let Some(ending) = self.turn(progress, session, tools, issue, &input, turn, "turn") {
                return ending;
            }
            let state = tools.state();
            // An agent that already finalized gets no fallback: its outcome is written next, and
            // a "working on this issue" note after the work is done only confuses the timeline.
            if !claim_checked && state.finalized.is_empty() {
                claim_checked = true;
                let target = self.writeback_target();
                if let Err(error) =
                    writeback::claim_fallback(&target, &progress.record, state.comments > 0)
                {
                    log::warn!(
                        "claim fallback failed issue={} error={error}",
                        issue.identifier
                    );
                }
            }
            if !state.finalized.is_empty() || turn == execution.max_turns {
                break;
            }
            progress.phase(Phase::WaitingContinuation);
            match self.tracker.refresh(std::slice::from_ref(&issue.id)) {
                Ok(fresh) => {
                    let policy = &workflow.tracker;
                    let Some(fresh) = fresh.first() else {
                        return Ending::Left {
                            status: RunStatus::Interrupted,
                            reason: format!(
                                "{} is no longer visible in the project",
                                issue.identifier
                            ),
                        };
                    };
                    let state = &fresh.state.name;
                    // Someone moved the issue on (done, canceled, back to the backlog): there
                    // is nothing left to continue and nothing to write.
                    let status = match selection::standing(policy, state) {
                        Standing::Active => None,
                        Standing::Terminal => Some(RunStatus::Terminated),
                        Standing::Inactive => Some(RunStatus::Interrupted),
                    };
                    if let Some(status) = status {
                        return Ending::Left {
                            status,
                            reason: format!(
                                "{} moved to {state} during the attempt",
                                issue.identifier
                            ),
                        };
                    }
                }
                Err(error) => return Ending::Failed(tracker_failure(&error)),
            }
            input = prompt::continuation(turn + 1, execution.max_turns, secrets);
        }
        let state = tools.state();
        if let Some((error_class, message)) = &state.github_credentials {
            return Ending::Failed(Failure::human(error_class.clone(), message.clone()));
        }
        if state.finalized.is_empty() {
            // Out of turns, not out of ideas: the next attempt continues (continuation.rs).
            return Ending::Failed(continuation::out_of_turns(
                execution.max_turns,
                self.attempt,
            ));
        }
        let declared = verdict::declared(&state, &workflow.tracker);
        progress.record.disposition = Some(declared.disposition());
        match declared {
            Declared::Invalid(reason) => {
                Ending::Failed(Failure::human(ErrorClass::InvalidDisposition, reason))
            }
            Declared::ManualAttention => Ending::ManualAttention,
            Declared::ReviewHandoff(handoff) => self.validate(progress, tools, lane, handoff),
        }
    }

    fn writeback_target(&self) -> writeback::Target<'_> {
        writeback::Target {
            tracker: self.tracker,
            issue: self.issue,
            policy: &self.settings.workflow.tracker,
            host_paths: &self.host_paths,
        }
    }
}

fn lane_failure(error: &workspace::Error) -> Failure {
    match error {
        workspace::Error::Unsafe { .. } => {
            Failure::human(ErrorClass::PolicyViolation, error.to_string())
        }
        workspace::Error::Hook { .. } => {
            Failure::retryable(ErrorClass::HookFailed, error.to_string())
        }
        _ => Failure::retryable(ErrorClass::LaneSetupFailed, error.to_string()),
    }
}

fn tracker_failure(error: &tracker::Error) -> Failure {
    let class = ErrorClass::of_tracker(error);
    if error.is_transient() {
        Failure::retryable(class, error.to_string())
    } else {
        Failure::human(class, error.to_string())
    }
}
