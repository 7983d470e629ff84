//! `run --once --issue IDENT`: take exactly the issue the operator named, if it is eligible.
//!
//! The issue is looked up by its identifier (case-insensitively) among the project's issues in
//! the states the dry run lists, and judged alone with the inputs the dry run uses
//! ([`verdict`], which `run --once --dry-run --issue IDENT` calls too): an in-progress issue
//! with another attempt due is taken as recovery, any other issue must pass selection's
//! fresh-work rules, and the first rule it fails is the refusal, in the dry run's words. The
//! rules are [`selection`]'s, the local facts [`claims`]', the lease [`super::claim`]'s; this
//! module only finds the issue and asks them.

use super::claim::{ClaimError, Claimed, NotClaimed, win};
use crate::selection::{self, Claims, Reason};
use crate::settings::Settings;
use crate::tracker::{Issue, Tracker};
use crate::workflow::TrackerPolicy;
use crate::workspace::Layout;
use crate::{claims, dry_run};

/// How the named issue stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// In progress with another attempt due (a retry, an interrupted or died attempt).
    Recovery,
    /// Passes every fresh-work rule.
    Eligible,
    /// Fails a rule: the first one, as selection words it.
    Ineligible(Reason),
}

/// How `issue` stands on its own: recovery first (the live run's order), then selection's rules
/// with `claims` (the held issues and the free slots) as if it were the only candidate.
pub fn verdict(
    layout: &Layout,
    policy: &TrackerPolicy,
    project_slug: &str,
    issue: &Issue,
    claims: &Claims,
) -> Verdict {
    if claims::recovery_candidate(layout, policy, project_slug, issue, &claims.held) {
        return Verdict::Recovery;
    }
    let selection = selection::select(vec![issue.clone()], policy, project_slug, claims);
    match selection.candidates.into_iter().next().map(|c| c.verdict) {
        Some(Err(reason)) => Verdict::Ineligible(reason),
        _ => Verdict::Eligible,
    }
}

/// Finds the issue called `identifier`, judges it and wins its lease.
pub(super) fn claim_named(
    settings: &Settings,
    tracker: &dyn Tracker,
    layout: &Layout,
    identifier: &str,
) -> Result<Claimed, ClaimError> {
    let policy = &settings.workflow.tracker;
    let states = dry_run::candidate_states(policy);
    let issues = tracker.issues_in_states(&states)?;
    let mut local = claims::gather(layout, &settings.workflow.execution, &issues, true);
    // The slot this process holds shows as busy; it is the one this issue will use.
    let slots = &mut local.claims.slots;
    slots.free = (slots.free + 1).min(slots.limit);
    for problem in &local.problems {
        log::warn!("state file problem: {problem}");
    }
    let Some(issue) = issues.into_iter().find(|issue| issue.is_named(identifier)) else {
        log::info!("named issue not found issue={identifier}");
        return Err(NotClaimed::NotFound {
            identifier: identifier.trim().to_string(),
            states,
        }
        .into());
    };
    match verdict(
        layout,
        policy,
        &settings.project_slug,
        &issue,
        &local.claims,
    ) {
        Verdict::Recovery | Verdict::Eligible => {}
        Verdict::Ineligible(reason) => {
            log::info!(
                "named issue not eligible issue={} reason=\"{reason}\"",
                issue.identifier
            );
            return Err(NotClaimed::NotEligible {
                identifier: issue.identifier,
                reason,
            }
            .into());
        }
    }
    let claimed = win(settings, layout, issue, None);
    if let Err(ClaimError::NotClaimed(reason)) = &claimed {
        log::info!("named issue not claimed reason=\"{reason}\"");
    }
    claimed
}
