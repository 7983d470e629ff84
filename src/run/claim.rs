//! Which issue this run takes: the daemon's target, or the next one by the recovery and
//! dispatch rules, with its lease won and what the previous attempt left behind.
//!
//! Recovery candidates come first: in-progress issues whose lease is free and whose bookkeeping
//! says another attempt is due (a retry was scheduled, the last attempt was interrupted, or its
//! process died mid-attempt). Fresh eligible work follows in dispatch order. Losing a lease race
//! is a clean skip, never an error.
//!
//! Winning an issue takes three proofs, because the agent of a live attempt can delete files
//! under `.maestro/`: the lease lock, no live process named by the bookkeeping, and the lane
//! directory's lock. Then, in one read-modify-write of the bookkeeping under its lock, the
//! previous attempt is settled (one that died is finished as `process_died`), the attempt
//! number is decided by the budget rule ([`selection::next_attempt`]) and the attempt is
//! recorded as `running` with this process as its owner — before anything else touches the
//! issue. This module reads `.maestro/`, probes the locks and asks the tracker; every rule it
//! applies is [`selection`]'s. It does not touch the agent.

use std::fmt;

use super::Error;
use super::repair::Job;
use super::verdict::Failure;
use crate::cli::TargetArgs;
use crate::selection::{self, Hold, Reason};
use crate::settings::Settings;
use crate::tracker::{self, Issue, Tracker};
use crate::workspace::lane;
use crate::workspace::lock::{self, LaneClaim, LaneLock, Lease, LeaseOwner, OwnerProcess};
use crate::workspace::record::{self, ErrorClass, IssueRef, IssueState, Phase, RunStatus};
use crate::workspace::{self, Layout};
use crate::{claims, clock};

/// Why this run took no issue: the summary line's `nothing_to_do reason=…` (exit 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotClaimed {
    /// Every dispatch slot is held by another process.
    SlotsBusy { limit: u32 },
    /// Every ssh host (`[worker]`) is down or at its per-host cap.
    HostsBusy { hosts: usize },
    /// No candidate could be won. `held` names up to three visible issues Maestro holds, as
    /// `ABC-1 leased by run … (pid …)` or the refusal a claim met.
    NoEligible { held: Vec<String> },
    /// The daemon's target no longer passes the rules.
    NotRunnable { identifier: String, reason: Reason },
    /// The issue is held: another process won it, a guard stops it, its lane is busy.
    Held { identifier: String, hold: Hold },
    /// The daemon asked for a review repair its review record does not (or no longer) want.
    NoRepair { identifier: String, reason: String },
    /// `--issue IDENT` named no issue of the project in the states listed.
    NotFound {
        identifier: String,
        states: Vec<String>,
    },
    /// `--issue IDENT` named an issue that fails an eligibility rule (the dry run's reason).
    NotEligible { identifier: String, reason: Reason },
    /// `--deadline` passed before an issue was claimed.
    DeadlinePassed,
}

impl NotClaimed {
    /// The eligibility rule behind the refusal, by the name the dry run's JSON uses, when one
    /// rule decided it.
    pub fn rule(&self) -> Option<&'static str> {
        match self {
            NotClaimed::SlotsBusy { .. } | NotClaimed::HostsBusy { .. } => {
                Some(selection::Rule::Slot.as_str())
            }
            NotClaimed::NotRunnable { reason, .. } | NotClaimed::NotEligible { reason, .. } => {
                Some(reason.rule().as_str())
            }
            NotClaimed::Held { .. } => Some(selection::Rule::Held.as_str()),
            NotClaimed::NoEligible { .. }
            | NotClaimed::NotFound { .. }
            | NotClaimed::DeadlinePassed
            | NotClaimed::NoRepair { .. } => None,
        }
    }
}

impl fmt::Display for NotClaimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotClaimed::SlotsBusy { limit } => write!(f, "all {limit} dispatch slots are busy"),
            NotClaimed::HostsBusy { hosts } => {
                write!(f, "all {hosts} ssh hosts are down or at their per-host cap")
            }
            NotClaimed::NoEligible { held } if held.is_empty() => write!(f, "no eligible issue"),
            NotClaimed::NoEligible { held } => {
                write!(f, "no eligible issue; held: {}", held.join("; "))
            }
            NotClaimed::NotRunnable { identifier, reason } => {
                write!(f, "{identifier} is no longer runnable: {reason}")
            }
            NotClaimed::Held { identifier, hold } => f.write_str(&hold.refusal(identifier)),
            NotClaimed::NotFound { identifier, states } => write!(
                f,
                "no issue {identifier} among the project's issues in {} (another state or project, or not an identifier)",
                states.join(", ")
            ),
            NotClaimed::NotEligible { identifier, reason } => {
                write!(f, "{identifier} is not eligible: {reason}")
            }
            NotClaimed::DeadlinePassed => {
                write!(f, "the --deadline passed before an issue was claimed")
            }
            NotClaimed::NoRepair { identifier, reason } => {
                write!(f, "no repair of {identifier} is due: {reason}")
            }
        }
    }
}

/// What stops a claim: nothing to take (exit 3), or a failure of Maestro itself (exit 1).
#[derive(Debug)]
pub(super) enum ClaimError {
    NotClaimed(NotClaimed),
    Failed(Error),
}

impl From<Error> for ClaimError {
    fn from(error: Error) -> Self {
        ClaimError::Failed(error)
    }
}

impl From<tracker::Error> for ClaimError {
    fn from(error: tracker::Error) -> Self {
        ClaimError::Failed(Error::Tracker(error))
    }
}

impl From<workspace::Error> for ClaimError {
    fn from(error: workspace::Error) -> Self {
        ClaimError::Failed(Error::Workspace(error))
    }
}

impl From<NotClaimed> for ClaimError {
    fn from(reason: NotClaimed) -> Self {
        ClaimError::NotClaimed(reason)
    }
}

/// An issue chosen and leased.
pub(super) struct Claimed {
    pub issue: Issue,
    pub lease: Lease,
    /// The lane directory's lock, when the lane already existed (else taken once it is made).
    pub lane_lock: Option<LaneLock>,
    /// The lane directory's name (kept from the first claim when the identifier changed).
    pub lane_key: String,
    pub attempt: u32,
    pub run_id: String,
    pub previous_failure: Option<String>,
    /// The issue's bookkeeping before this attempt started (a died attempt already settled).
    pub previous_state: Option<IssueState>,
    /// A review repair's job (`--repair`).
    pub repair: Option<Job>,
}

fn lease_owner(run_id: &str, issue: &Issue) -> LeaseOwner {
    LeaseOwner {
        run_id: run_id.to_string(),
        pid: std::process::id(),
        issue_id: issue.id.clone(),
        issue_identifier: issue.identifier.clone(),
        acquired_at: clock::now_rfc3339(),
    }
}

/// The daemon chose the issue; re-check that it is still runnable and take its lease.
pub(super) fn claim_target(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
    target: &TargetArgs,
) -> Result<Claimed, ClaimError> {
    let issue = tracker
        .refresh(std::slice::from_ref(&target.issue_id))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::TargetMissing {
            issue_id: target.issue_id.clone(),
        })?;
    let policy = &settings.workflow.tracker;
    let verdict = if target.repair {
        selection::repairable(&issue, policy, &settings.project_slug)
    } else {
        selection::runnable(&issue, policy, &settings.project_slug)
    };
    if let Err(reason) = verdict {
        log::info!(
            "target no longer runnable issue={} reason=\"{reason}\"",
            issue.identifier
        );
        return Err(NotClaimed::NotRunnable {
            identifier: issue.identifier,
            reason,
        }
        .into());
    }
    let repair = if target.repair {
        match super::repair::job(layout, &target.issue_id, &target.run_id) {
            Ok(job) => Some(job),
            Err(reason) => {
                log::info!(
                    "repair not claimed issue={} run_id={} reason=\"{reason}\"",
                    issue.identifier,
                    target.run_id
                );
                return Err(NotClaimed::NoRepair {
                    identifier: issue.identifier,
                    reason,
                }
                .into());
            }
        }
    } else {
        None
    };
    let requested = Requested {
        attempt: target.attempt,
        run_id: target.run_id.clone(),
        repair: repair.is_some(),
    };
    let claimed =
        win(settings, layout, issue, Some(requested)).map(|claimed| Claimed { repair, ..claimed });
    if let Err(ClaimError::NotClaimed(reason)) = &claimed {
        log::info!("target not claimed reason=\"{reason}\"");
    }
    claimed
}

/// Recovery candidates first (in progress, lease free, our bookkeeping says a retry is due),
/// then fresh eligible work in dispatch order; the first we win.
pub(super) fn claim_next(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
) -> Result<Claimed, ClaimError> {
    let policy = &settings.workflow.tracker;
    let mut states = policy.startable_states.clone();
    states.push(policy.in_progress_state.clone());
    let issues = tracker.issues_in_states(&states)?;
    let mut local = claims::gather(layout, &settings.workflow.execution, &issues, true);
    // The slot this process already holds shows up as busy in the slot files; it is the one
    // this claim will use, so selection must count it as free again.
    let slots = &mut local.claims.slots;
    slots.free = (slots.free + 1).min(slots.limit);
    for problem in &local.problems {
        log::warn!("state file problem: {problem}");
    }
    let mut recovery: Vec<Issue> = issues
        .iter()
        .filter(|issue| {
            claims::recovery_candidate(
                layout,
                policy,
                &settings.project_slug,
                issue,
                &local.claims.held,
            )
        })
        .cloned()
        .collect();
    recovery.sort_by(selection::dispatch_order);
    // Issues another process or a guard holds, named in the skip line so an operator sees why
    // a visible issue was not taken.
    let mut held: Vec<String> = issues
        .iter()
        .filter_map(|issue| {
            local
                .claims
                .held
                .get(&issue.id)
                .map(|hold| format!("{} {hold}", issue.identifier))
        })
        .take(3)
        .collect();
    let selection = selection::select(issues, policy, &settings.project_slug, &local.claims);
    let fresh = selection
        .eligible()
        .map(|candidate| candidate.issue.clone());
    for issue in recovery.into_iter().chain(fresh) {
        let identifier = issue.identifier.clone();
        match win(settings, layout, issue, None) {
            Ok(claimed) => return Ok(claimed),
            Err(ClaimError::NotClaimed(reason)) => {
                log::info!(
                    "not claimed, trying the next issue issue={identifier} reason=\"{reason}\""
                );
                if held.len() < 3 {
                    held.push(reason.to_string());
                }
            }
            Err(failed) => return Err(failed),
        }
    }
    Err(NotClaimed::NoEligible { held }.into())
}

/// The attempt and run id the daemon asked for.
pub(super) struct Requested {
    attempt: u32,
    run_id: String,
    /// A review repair: `attempt` is the repair's number, outside the attempt budget.
    repair: bool,
}

/// Takes `issue` if every proof says nobody else works it: the lease (and the lease of an
/// older version, stored under the identifier), the bookkeeping's live process, the lane lock.
/// Then settles the previous attempt and records this one as `running`, in one
/// read-modify-write.
pub(super) fn win(
    settings: &Settings,
    layout: &Layout,
    issue: Issue,
    requested: Option<Requested>,
) -> Result<Claimed, ClaimError> {
    let held = |hold: Hold| -> ClaimError {
        NotClaimed::Held {
            identifier: issue.identifier.clone(),
            hold,
        }
        .into()
    };
    let issue_ref = IssueRef {
        id: &issue.id,
        identifier: &issue.identifier,
    };
    let key = record::issue_key(&issue.id);
    let legacy = lane::lane_key(&issue.identifier);
    if legacy != key {
        if let Some(owner) = lock::lease_holder(layout, &legacy)? {
            return Err(held(leased_by(&owner)));
        }
    }
    // A first look without the lock, for the lane's name and the run id; the locked read below
    // decides.
    let peek = record::find_issue_state(layout, issue_ref)?;
    let lane_key = peek
        .as_ref()
        .map_or_else(|| lane::lane_key(&issue.identifier), IssueState::lane);
    let provisional_attempt =
        selection::next_attempt(peek.as_ref(), &issue.state.name, None).attempt;
    let provisional = match &requested {
        Some(requested) => requested.run_id.clone(),
        None => record::new_run_id(&lane_key, provisional_attempt),
    };
    let Some(mut lease) = lock::acquire_lease(layout, &key, &lease_owner(&provisional, &issue))?
    else {
        let hold = match lock::lease_holder(layout, &key) {
            Ok(Some(owner)) => leased_by(&owner),
            _ => Hold::LeasedElsewhere,
        };
        return Err(held(hold));
    };
    let lane_lock = match lock::lock_lane(layout, &lane_key)? {
        LaneClaim::Locked(lock) => Some(lock),
        LaneClaim::Absent => None,
        LaneClaim::Busy => {
            log::warn!(
                "lane locked by another process though the lease was free issue={} lane={lane_key}",
                issue.identifier
            );
            let hold = Hold::LaneBusy {
                lane: lane_key.clone(),
            };
            return Err(held(hold));
        }
    };
    let max_attempts = settings.workflow.execution.max_attempts;
    let me = OwnerProcess::current();
    let decided = record::update_issue_state(layout, issue_ref, None, |current| {
        let mut previous = current;
        if let Some(state) = &previous {
            let other_owner_alive = state.owner_alive() && state.owner != me;
            if let Err(hold) = selection::claimable(state, other_owner_alive) {
                return (None, Err(hold));
            }
        }
        if let Some(state) = previous.as_mut() {
            settle_died_attempt(layout, state);
        }
        let repair = requested.as_ref().filter(|requested| requested.repair);
        let selection::NextAttempt { attempt, used } = match repair {
            // A repair is numbered by the review record and never counts against
            // `max_attempts`: the budget the bookkeeping holds is left as it was.
            Some(requested) => selection::NextAttempt {
                attempt: requested.attempt,
                used: 0,
            },
            None => selection::next_attempt(
                previous.as_ref(),
                &issue.state.name,
                requested.as_ref().map(|requested| requested.attempt),
            ),
        };
        let attempts_used = match repair {
            Some(_) => previous.as_ref().map_or(0, |state| state.attempts_used),
            None => attempt,
        };
        let run_id = match &requested {
            Some(requested) => requested.run_id.clone(),
            None if attempt == provisional_attempt => provisional.clone(),
            None => record::new_run_id(&lane_key, attempt),
        };
        let previous_failure = previous
            .as_ref()
            .filter(|_| used > 0)
            .and_then(|state| failure_text(layout, state));
        let started = IssueState {
            issue_id: issue.id.clone(),
            issue_identifier: issue.identifier.clone(),
            attempts_used,
            last_run_id: Some(run_id.clone()),
            last_status: Some(RunStatus::Running),
            last_error_class: previous
                .as_ref()
                .and_then(|state| state.last_error_class.clone()),
            next_action: Some(format!("attempt {attempt} running")),
            guard: previous.as_ref().and_then(|state| state.guard.clone()),
            updated_at: clock::now_rfc3339(),
            lane_key: Some(lane_key.clone()),
            owner: me,
            outcome_state: None,
            // Kept while the attempt runs, so a process that dies before its outcome does not
            // restart the streak; the outcome decides from the state before this attempt.
            idle_timeouts: previous
                .as_ref()
                .and_then(|state| state.idle_timeouts.clone()),
            ..IssueState::default()
        };
        (
            Some(started),
            Ok((attempt, run_id, previous_failure, previous)),
        )
    })?;
    let (attempt, run_id, previous_failure, previous_state) = decided.map_err(held)?;
    let repairing = requested.as_ref().is_some_and(|requested| requested.repair);
    if !repairing && selection::within_budget(attempt, max_attempts).is_err() {
        log::warn!(
            "attempt past the budget issue={} attempt={attempt} max_attempts={max_attempts}",
            issue.identifier
        );
    }
    if lease.owner().run_id != run_id {
        lease.set_owner(lease_owner(&run_id, &issue))?;
    }
    Ok(Claimed {
        issue,
        lease,
        lane_lock,
        lane_key,
        attempt,
        run_id,
        previous_failure,
        previous_state,
        repair: None,
    })
}

/// The hold a lease's owner file describes.
fn leased_by(owner: &LeaseOwner) -> Hold {
    Hold::Leased {
        run_id: owner.run_id.clone(),
        pid: owner.pid,
    }
}

/// The longest previous-failure text handed to the agent.
const PREVIOUS_FAILURE_CHARS: usize = 2000;

/// Bookkeeping that still says `running` (its process is gone: the caller checked) means the
/// previous attempt ended without concluding: its run record is finished here as `failed` /
/// `process_died` (unless the daemon already finished it with its own view), and the
/// bookkeeping takes the record's status and class, so neither says `running` forever.
fn settle_died_attempt(layout: &Layout, state: &mut IssueState) {
    if state.last_status != Some(RunStatus::Running) {
        return;
    }
    let died = Failure::retryable(
        ErrorClass::ProcessDied,
        "the process running this attempt ended without recording an outcome (killed or crashed)",
    );
    let mut status = RunStatus::Failed;
    let mut class = died.error_class.clone();
    if let Some(run_id) = &state.last_run_id {
        match record::load_run(layout, run_id) {
            Ok(mut stale) if stale.status == RunStatus::Running => {
                stale.status = RunStatus::Failed;
                stale.phase = Phase::Finished;
                stale.finished_at = Some(clock::now_rfc3339());
                stale.error_class = Some(died.error_class.clone());
                stale.error_message = Some(died.message.clone());
                if let Err(error) = record::save_run(layout, &stale) {
                    log::warn!(
                        "cannot finish the died attempt's record run_id={run_id} error={error}"
                    );
                }
                log::warn!(
                    "previous attempt died without an outcome issue={} run_id={run_id}",
                    state.issue_identifier
                );
            }
            Ok(finished) => {
                status = finished.status;
                if let Some(recorded) = finished.error_class {
                    class = recorded;
                }
            }
            Err(error) => log::warn!("cannot read the previous run record error={error}"),
        }
    }
    state.last_status = Some(status);
    state.last_error_class = Some(class);
    state.owner = None;
}

/// What the previous attempt in the current budget left for this one (`class: message`).
fn failure_text(layout: &Layout, state: &IssueState) -> Option<String> {
    let class = state.last_error_class.as_ref()?;
    let message = state
        .last_run_id
        .as_deref()
        .and_then(|run_id| record::load_run(layout, run_id).ok())
        .and_then(|run| run.error_message);
    let text = match message {
        Some(message) => format!("{class}: {message}"),
        None => class.to_string(),
    };
    Some(text.chars().take(PREVIOUS_FAILURE_CHARS).collect())
}
