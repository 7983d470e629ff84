//! `run --once`'s part of the terminal-lane rule (docs/spec/daemon.md, "Terminal lanes"): a
//! `run --once` started from a shell or a script, once its attempt is over (or it found nothing
//! to do), reads the issues of the lanes kept on disk in one request and removes the lanes of
//! those now terminal, as the daemon's tick does; its own issue's lane included, when the
//! attempt found the issue finished. So a handed-off issue that moves to Done later loses its
//! lane at the next run, with no daemon.
//!
//! It decides with `selection::lane_fate` and acts through `workspace::sweep`, like the daemon.
//! A daemon child does none of this: the daemon's tick sweeps every lane already, and a child
//! must not spend the key's budget on lanes that are not its own.

use crate::claims;
use crate::selection::{self, LaneFate};
use crate::settings::Settings;
use crate::tracker::Tracker;
use crate::workspace::{Layout, sweep};

/// Removes the lanes of terminal issues (lanes nothing works in, that the post-review
/// lifecycle does not hold), records why one must stay, forgets the mark of an issue that is
/// back. One `summaries` request when any lane is on disk; nothing otherwise.
pub fn terminal_lanes(settings: &Settings, tracker: &dyn Tracker, layout: &Layout) {
    let lanes: Vec<claims::RetainedLane> = claims::retained_lanes(layout)
        .into_iter()
        .filter(|lane| !lane.review_open)
        .collect();
    if lanes.is_empty() {
        return;
    }
    let ids: Vec<String> = lanes.iter().map(|lane| lane.issue_id.clone()).collect();
    let issues = match tracker.summaries(&ids) {
        Ok(issues) => issues,
        Err(error) => {
            log::warn!("terminal lanes not swept: cannot read their issues: {error}");
            return;
        }
    };
    let policy = &settings.workflow.tracker;
    let secrets = settings.config.secret_env_vars();
    for lane in &lanes {
        let state = issues
            .iter()
            .find(|issue| issue.id == lane.issue_id)
            .map(|issue| issue.state.name.as_str());
        let target = sweep::LaneRef {
            issue_id: &lane.issue_id,
            identifier: &lane.identifier,
            lane_key: &lane.lane_key,
        };
        match selection::lane_fate(policy, state, lane.worked_by.as_deref(), lane.review_open) {
            LaneFate::Remove { state } => {
                let hooks = &settings.workflow.hooks;
                // A lane on an ssh host goes there first (guarded by its creation marker).
                crate::worker::lane::remove_everywhere(
                    layout,
                    &settings.config,
                    &lane.lane_key,
                    hooks,
                );
                sweep::remove(layout, target, &state, hooks, &secrets);
            }
            LaneFate::Wait { state, why } => sweep::keep(layout, target, &state, &why),
            LaneFate::Stays { visible: true } if lane.mark.is_some() => {
                sweep::forget(layout, target);
            }
            LaneFate::Stays { .. } | LaneFate::Lifecycle => {}
        }
    }
}
