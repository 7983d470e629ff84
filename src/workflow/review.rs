//! WORKFLOW.md's `[review]` table: the post-review lifecycle policy (#14), read with the same
//! line/column diagnostics as the other tables, and its cross-field rule with
//! `[tracker] completed_state`.
//!
//! It only reads and validates; what the policy means for a lane is `crate::review`'s.

use toml::Spanned;

use super::{HandoffMode, ReviewPolicy, TrackerPolicy};
use crate::github::MergeMethod;
use crate::toml_fields::{Problem, Table};

/// The most approvals a policy may require, and the most repairs it may allow: more is a typo.
const MAX_COUNT: i64 = 100;

/// The slowest poll accepted: once a day.
const MAX_POLL_INTERVAL_S: i64 = 86_400;

/// Reads `[review]` into `policy`; every problem is pushed with its span.
pub(super) fn read_review(
    table: &mut Table<'_, '_>,
    policy: &mut ReviewPolicy,
    problems: &mut Vec<Problem>,
) {
    if let Some(flag) = table.boolean("enabled", problems) {
        policy.enabled = *flag.get_ref();
    }
    if let Some(value) = table.string("merge", problems) {
        match value.get_ref().trim() {
            "auto" => policy.merge = super::MergeMode::Auto,
            "manual" => policy.merge = super::MergeMode::Manual,
            other => problems.push(Problem {
                span: value.span(),
                field: table.field("merge"),
                message: format!(
                    "unknown merge mode `{}`; expected \"auto\" (maestro merges when ready) or \"manual\" (a person merges, maestro closes out)",
                    crate::github::shown(other)
                ),
            }),
        }
    }
    if let Some(value) = table.string("merge_method", problems) {
        match MergeMethod::from_name(value.get_ref().trim()) {
            Some(method) => policy.merge_method = method,
            None => problems.push(Problem {
                span: value.span(),
                field: table.field("merge_method"),
                message: format!(
                    "unknown merge method `{}`; expected one of: squash, merge, rebase",
                    crate::github::shown(value.get_ref().trim())
                ),
            }),
        }
    }
    if let Some(n) = bounded(table, "required_approvals", 0, MAX_COUNT, problems) {
        policy.required_approvals = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(flag) = table.boolean("require_checks", problems) {
        policy.require_checks = *flag.get_ref();
    }
    if let Some(flag) = table.boolean("repair", problems) {
        policy.repair = *flag.get_ref();
    }
    if let Some(n) = bounded(table, "max_repairs", 0, MAX_COUNT, problems) {
        policy.max_repairs = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(flag) = table.boolean("delete_branch", problems) {
        policy.delete_branch = *flag.get_ref();
    }
    if let Some(n) = bounded(table, "poll_interval_s", 1, MAX_POLL_INTERVAL_S, problems) {
        policy.poll_interval_s = u64::try_from(n).unwrap_or(u64::MAX);
    }
}

fn bounded(
    table: &mut Table<'_, '_>,
    key: &'static str,
    low: i64,
    high: i64,
    problems: &mut Vec<Problem>,
) -> Option<i64> {
    let value: Spanned<i64> = table.integer(key, problems)?;
    let n = *value.get_ref();
    if (low..=high).contains(&n) {
        return Some(n);
    }
    problems.push(Problem {
        span: value.span(),
        field: table.field(key),
        message: format!("must be between {low} and {high}, got {n}"),
    });
    None
}

/// With the lifecycle on, the issue must have somewhere to go once its PR is merged, and that
/// state must not make it look unfinished (startable, in progress, or still in review).
/// `span_of` finds a `[tracker]` or `[review]` key's value span for the diagnostic.
pub(super) fn check_review(
    tracker: &TrackerPolicy,
    review: &ReviewPolicy,
    handoff: HandoffMode,
    span_of: &dyn Fn(&str, &str) -> std::ops::Range<usize>,
    problems: &mut Vec<Problem>,
) {
    if !review.enabled {
        return;
    }
    // The lifecycle reads reviews, checks and merges through a pull request; a bare branch has
    // none of them, so the two settings contradict each other.
    if handoff == HandoffMode::Branch {
        problems.push(Problem {
            span: span_of("handoff", "mode"),
            field: "handoff.mode".into(),
            message: "is \"branch\" but [review] enabled = true needs pull requests; set mode = \"pull_request\" or turn the review lifecycle off".into(),
        });
    }
    let Some(completed) = &tracker.completed_state else {
        problems.push(Problem {
            span: span_of("review", "enabled"),
            field: "tracker.completed_state".into(),
            message: "is required when [review] enabled = true and \"Done\" is not among terminal_states; set it to the state a merged issue moves to".into(),
        });
        return;
    };
    let clash = if tracker.is_startable(completed) {
        Some("a startable state: a merged issue would be picked up again")
    } else if tracker.is_in_progress(completed) {
        Some("the in_progress_state: a merged issue would look claimed")
    } else if super::same_state(completed, &tracker.success_state) {
        Some("the success_state: a merged issue would look still in review")
    } else {
        None
    };
    if let Some(clash) = clash {
        problems.push(Problem {
            span: span_of("tracker", "completed_state"),
            field: "tracker.completed_state".into(),
            message: format!(
                "`{completed}` is {clash}; with [review] enabled it must be a state that means finished"
            ),
        });
    }
}
