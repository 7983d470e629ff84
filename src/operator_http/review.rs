//! The post-review lifecycle on the operator endpoint (docs/spec/operator-http.md): its
//! Prometheus series and the dashboard's table of post-review lanes, both from the status
//! snapshot's `review` and `review_totals`. Rendering only; `status` builds the data.

use std::fmt::Write;

use crate::review::Phase;
use crate::status::Snapshot;

use super::html::escape;

/// `maestro_review_lanes{phase}`, `maestro_review_merges{by}` and
/// `maestro_review_repairs{result}`, when any review record exists.
pub fn metrics(out: &mut String, snapshot: &Snapshot) {
    let Some(totals) = &snapshot.review_totals else {
        return;
    };
    let mut gauge = |name: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let by_phase: Vec<(String, u64)> = Phase::ALL
        .iter()
        .map(|phase| {
            let count = totals
                .lanes_by_phase
                .get(phase.as_str())
                .copied()
                .unwrap_or(0);
            (format!("{{phase=\"{}\"}}", phase.as_str()), count)
        })
        .collect();
    gauge(
        "maestro_review_lanes",
        "Post-review lanes (review records on disk) by phase.",
        &by_phase,
    );
    gauge(
        "maestro_review_merges",
        "Pull requests of post-review lanes merged, by who merged them.",
        &[
            ("{by=\"maestro\"}".into(), totals.merged_by_maestro),
            ("{by=\"person\"}".into(), totals.merged_by_person),
        ],
    );
    gauge(
        "maestro_review_repairs",
        "Review repairs by result (running: started, no result recorded yet).",
        &[
            ("{result=\"pushed\"}".into(), totals.repairs_pushed),
            ("{result=\"failed\"}".into(), totals.repairs_failed),
            ("{result=\"running\"}".into(), totals.repairs_running),
        ],
    );
}

/// The dashboard's "Post-review lanes" table; nothing when there is none.
pub fn dashboard(page: &mut String, snapshot: &Snapshot) {
    if snapshot.review.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<h2>Post-review lanes ({})</h2>\n<table><tr><th>issue</th><th>phase</th>\
         <th>waiting for</th><th>next read</th><th>repairs</th><th>pull request</th></tr>",
        snapshot.review.len()
    );
    for lane in &snapshot.review {
        let class = if lane.phase == Phase::Human {
            " class=\"stalled\""
        } else {
            ""
        };
        let detail = if lane.waiting_for.is_empty() {
            &lane.reason
        } else {
            &lane.waiting_for
        };
        let next = lane
            .next_read_in_seconds
            .map_or_else(|| "-".to_string(), |seconds| format!("{seconds} s"));
        let _ = writeln!(
            page,
            "<tr{class}><td><a href=\"/api/v1/{id}\">{id}</a></td><td>{phase}</td><td>{detail}</td>\
             <td>{next}</td><td>{repairs}</td><td>{pr}</td></tr>",
            id = escape(&lane.issue_identifier),
            phase = escape(lane.phase.as_str()),
            detail = escape(detail),
            repairs = lane.repairs,
            pr = escape(&lane.pr_url),
        );
    }
    page.push_str("</table>\n");
}
