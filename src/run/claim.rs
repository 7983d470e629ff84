//! Which issue this run takes: the daemon's target, or the next one by the recovery and
//! dispatch rules, with its lease won and what the previous attempt left behind.
//!
//! Recovery candidates come first: in-progress issues whose lease is free and whose bookkeeping
//! says another attempt is due (a retry was scheduled, the last attempt was interrupted, or its
//! process died mid-attempt). Fresh eligible work follows in dispatch order. Losing a lease race
//! is a clean skip, never an error. This module reads `.maestro/` and the tracker; it does not
//! touch lanes or the agent.

use super::Error;
use super::verdict::Failure;
use crate::cli::TargetArgs;
use crate::settings::Settings;
use crate::tracker::{Issue, Tracker};
use crate::workspace::Layout;
use crate::workspace::lane;
use crate::workspace::lock::{self, Lease, LeaseOwner};
use crate::workspace::record::{self, Phase, RunStatus};
use crate::{claims, clock, selection};

/// An issue chosen and leased.
pub(super) struct Claimed {
    pub issue: Issue,
    pub lease: Lease,
    pub attempt: u32,
    pub run_id: String,
    pub previous_failure: Option<String>,
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

/// The daemon chose the issue; re-check that it is still runnable and take its lease. `Err`
/// inside is why nothing was claimed.
pub(super) fn claim_target(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
    target: &TargetArgs,
) -> Result<Result<Claimed, String>, Error> {
    let issue = tracker
        .refresh(std::slice::from_ref(&target.issue_id))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::TargetMissing {
            issue_id: target.issue_id.clone(),
        })?;
    if let Err(reason) = runnable(settings, &issue) {
        log::info!(
            "target no longer runnable issue={} reason=\"{reason}\"",
            issue.identifier
        );
        return Ok(Err(format!(
            "{} is no longer runnable: {reason}",
            issue.identifier
        )));
    }
    let key = lane::lane_key(&issue.identifier);
    let Some(lease) = lock::acquire_lease(layout, &key, &lease_owner(&target.run_id, &issue))?
    else {
        log::info!("lease held elsewhere issue={}", issue.identifier);
        return Ok(Err(held_elsewhere(layout, &issue.identifier, &key)));
    };
    let previous_failure = previous_failure(layout, &key)?;
    Ok(Ok(Claimed {
        issue,
        lease,
        attempt: target.attempt,
        run_id: target.run_id.clone(),
        previous_failure,
    }))
}

/// `ABC-1 is leased by run … (pid …)`: who holds the issue, for the skip line.
fn held_elsewhere(layout: &Layout, identifier: &str, key: &str) -> String {
    match lock::lease_holder(layout, key) {
        Ok(Some(owner)) => format!(
            "{identifier} is leased by run {} (pid {})",
            owner.run_id, owner.pid
        ),
        _ => format!("{identifier} is leased by another process"),
    }
}

/// Recovery candidates first (in progress, lease free, our bookkeeping says a retry is due),
/// then fresh eligible work in dispatch order; the first whose lease we win. `Err` inside is
/// why nothing was claimed.
pub(super) fn claim_next(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
) -> Result<Result<Claimed, String>, Error> {
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
    let held: Vec<String> = issues
        .iter()
        .filter_map(|issue| {
            local
                .claims
                .held
                .get(&issue.id)
                .map(|why| format!("{} {why}", issue.identifier))
        })
        .take(3)
        .collect();
    let selection = selection::select(issues, policy, &settings.project_slug, &local.claims);
    let fresh = selection
        .eligible()
        .map(|candidate| candidate.issue.clone());
    for issue in recovery.into_iter().chain(fresh) {
        let key = lane::lane_key(&issue.identifier);
        let prior = local.prior_attempts.get(&issue.id).copied().unwrap_or(0);
        let attempt = prior + 1;
        let run_id = record::new_run_id(&key, attempt);
        match lock::acquire_lease(layout, &key, &lease_owner(&run_id, &issue))? {
            Some(lease) => {
                let previous_failure = previous_failure(layout, &key)?;
                return Ok(Ok(Claimed {
                    issue,
                    lease,
                    attempt,
                    run_id,
                    previous_failure,
                }));
            }
            None => log::info!(
                "lost the lease race, trying the next issue issue={}",
                issue.identifier
            ),
        }
    }
    Ok(Err(if held.is_empty() {
        "no eligible issue".to_string()
    } else {
        format!("no eligible issue; held: {}", held.join("; "))
    }))
}

/// The longest previous-failure text handed to the agent.
const PREVIOUS_FAILURE_CHARS: usize = 2000;

/// What the previous attempt in the current budget left for this one (`class: message`), read
/// with the lease held. Bookkeeping that still says `running` means the previous attempt's
/// process ended without concluding: its run record is finished here as `failed` /
/// `process_died` (unless the daemon already finished it with its own view), and the
/// bookkeeping takes the record's status and class, so neither says `running` forever.
fn previous_failure(layout: &Layout, key: &str) -> Result<Option<String>, Error> {
    let Some(mut state) = record::load_issue_state(layout, key)? else {
        return Ok(None);
    };
    if state.last_status == Some(RunStatus::Running) {
        let died = Failure::retryable(
            "process_died",
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
                    record::save_run(layout, &stale)?;
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
        state.updated_at = clock::now_rfc3339();
        record::save_issue_state(layout, key, &state)?;
    }
    if claims::attempts_in_budget(&state) == 0 {
        return Ok(None);
    }
    let Some(class) = state.last_error_class.clone() else {
        return Ok(None);
    };
    let message = state
        .last_run_id
        .as_deref()
        .and_then(|run_id| record::load_run(layout, run_id).ok())
        .and_then(|run| run.error_message);
    let text = match message {
        Some(message) => format!("{class}: {message}"),
        None => class,
    };
    Ok(Some(text.chars().take(PREVIOUS_FAILURE_CHARS).collect()))
}

/// Rules 1–6 for a startable issue, or the recovery rules for an in-progress one.
pub(super) fn runnable(settings: &Settings, issue: &Issue) -> Result<(), String> {
    let policy = &settings.workflow.tracker;
    if policy.is_in_progress(&issue.state.name) {
        if issue.project_slug.as_deref() != Some(settings.project_slug.as_str()) {
            return Err("the issue is in another project".to_string());
        }
        if issue.has_label(&policy.opt_out_label) {
            return Err(format!("label {}", policy.opt_out_label));
        }
        if issue.has_label(&policy.needs_attention_label) {
            return Err(format!("label {}", policy.needs_attention_label));
        }
        return Ok(());
    }
    selection::check(issue, policy, &settings.project_slug, &Default::default())
        .map_err(|reason| reason.to_string())
}
