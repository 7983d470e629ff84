//! Renderings of the status snapshot for the operator endpoint: the HTML dashboard, the
//! Symphony-compatible `/api/v1/state` shape and Prometheus text (the issue detail is
//! `issue.rs`).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::Health;
use super::html::escape;
use crate::clock::humanize;
use crate::status::Snapshot;

/// `GET /api/v1/state` in Symphony's shape (SPEC §13.7.2), plus Maestro's own fields.
pub fn api_state(snapshot: &Snapshot) -> Value {
    // Symphony's `running` lists running sessions; an issue waiting for its retry is in
    // `retrying` (Maestro's `active` lists both).
    let running: Vec<Value> = snapshot
        .active
        .iter()
        .filter(|run| !run.is_retry())
        .map(|run| {
            let mut entry = json!({
                "issue_id": run.issue_id,
                "issue_identifier": run.issue_identifier,
                "state": run.phase,
                "session_id": run.thread_id,
                "turn_count": run.turn_count,
                "last_event": run.last_event_type,
                "last_message": run.wait_reason,
                "started_at": run.started_at,
                "last_event_at": run.last_event_at,
                "tokens": tokens(run.tokens),
                "run_id": run.run_id,
                "attempt": run.attempt,
                "owner_alive": run.owner_alive,
            });
            // The ssh host that owns the run (`[worker]`); no key for a local lane.
            if let (Some(host), Some(fields)) = (&run.host, entry.as_object_mut()) {
                fields.insert("host".into(), json!(host));
            }
            entry
        })
        .collect();
    let retrying: Vec<Value> = snapshot
        .retrying
        .iter()
        .map(|retry| {
            json!({
                "issue_id": retry.issue_id,
                "issue_identifier": retry.issue_identifier,
                "attempt": retry.attempt,
                "due_at": retry.next_retry_at,
                "error": retry.last_error_class,
                "retry_kind": retry.retry_kind,
            })
        })
        .collect();
    let mut state = json!({
        "generated_at": snapshot.generated_at,
        "counts": {"running": running.len(), "retrying": retrying.len()},
        "running": running,
        "retrying": retrying,
        "codex_totals": {
            "input_tokens": snapshot.totals.tokens.input,
            "output_tokens": snapshot.totals.tokens.output,
            "total_tokens": snapshot.totals.tokens.total,
            "seconds_running": snapshot.totals.runtime_seconds,
        },
        "rate_limits": snapshot.totals.rate_limits,
    });
    // The ssh hosts' health and slots, as `status --json` has them; no key without `[worker]`.
    if let (false, Some(fields)) = (snapshot.hosts.is_empty(), state.as_object_mut()) {
        fields.insert("hosts".into(), json!(snapshot.hosts));
    }
    state
}

pub(super) fn tokens(tokens: crate::workspace::record::Tokens) -> Value {
    json!({
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "total_tokens": tokens.total,
    })
}

/// Prometheus text exposition (format 0.0.4).
pub fn metrics(snapshot: &Snapshot, health: &Health) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, kind: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let phases = [
        "preparing",
        "executing",
        "waiting_continuation",
        "validating",
        "writing_back",
        "stalled",
        "orphaned",
    ];
    let by_phase: Vec<(String, u64)> = phases
        .iter()
        .map(|phase| {
            let count = snapshot
                .active
                .iter()
                .filter(|run| run.phase == *phase)
                .count();
            (format!("{{phase=\"{phase}\"}}"), count as u64)
        })
        .collect();
    gauge(
        "maestro_lanes",
        "Active lanes by phase.",
        "gauge",
        &by_phase,
    );
    gauge(
        "maestro_retries_queued",
        "Retries waiting: the daemon's queue and those only a run record holds.",
        "gauge",
        &[(String::new(), snapshot.retrying.len() as u64)],
    );
    let outcomes: Vec<(String, u64)> = snapshot
        .totals
        .runs_by_outcome
        .iter()
        .map(|(outcome, count)| (format!("{{outcome=\"{outcome}\"}}"), *count))
        .collect();
    gauge(
        "maestro_runs",
        "Run records on disk by outcome.",
        "gauge",
        &outcomes,
    );
    let totals = snapshot.totals.tokens;
    gauge(
        "maestro_tokens",
        "Tokens spent by all runs on disk.",
        "gauge",
        &[
            ("{kind=\"input\"}".into(), totals.input),
            ("{kind=\"output\"}".into(), totals.output),
            ("{kind=\"total\"}".into(), totals.total),
        ],
    );
    gauge(
        "maestro_runtime_seconds",
        "Runtime of all runs on disk, live runs up to now.",
        "gauge",
        &[(String::new(), snapshot.totals.runtime_seconds)],
    );
    gauge(
        "maestro_tracker_request_errors_total",
        "Tracker requests that failed since the daemon started.",
        "counter",
        &[(String::new(), health.tracker_errors.load(Ordering::SeqCst))],
    );
    gauge(
        "maestro_tracker_rate_limited",
        "1 while the tracker reports a rate limit.",
        "gauge",
        &[(
            String::new(),
            health.tracker_rate_limited.load(Ordering::SeqCst),
        )],
    );
    if let Some(budget) = &snapshot.tracker_budget {
        gauge(
            "maestro_tracker_requests_last_hour",
            "Tracker requests the daemon sent in the last hour.",
            "gauge",
            &[(String::new(), budget.requests_last_hour)],
        );
        gauge(
            "maestro_tracker_points_last_hour",
            "Tracker complexity points the daemon's requests cost in the last hour.",
            "gauge",
            &[(String::new(), budget.points_last_hour)],
        );
        let remaining: Vec<(String, u64)> =
            [("requests", &budget.requests), ("points", &budget.points)]
                .into_iter()
                .filter_map(|(kind, allowance)| {
                    allowance
                        .as_ref()
                        .map(|allowance| (format!("{{kind=\"{kind}\"}}"), allowance.remaining))
                })
                .collect();
        gauge(
            "maestro_tracker_budget_remaining",
            "What the API key's hourly allowances have left, as the tracker last reported.",
            "gauge",
            &remaining,
        );
        gauge(
            "maestro_tracker_paced",
            "1 while the daemon paces polling to keep the budget's reserve.",
            "gauge",
            &[(String::new(), u64::from(budget.paced_until.is_some()))],
        );
    }
    gauge(
        "maestro_last_tick_duration_milliseconds",
        "Duration of the daemon's last poll tick.",
        "gauge",
        &[(
            String::new(),
            health.last_tick_duration_ms.load(Ordering::SeqCst),
        )],
    );
    gauge(
        "maestro_ticks_total",
        "Daemon poll ticks finished since start.",
        "counter",
        &[(String::new(), health.ticks.load(Ordering::SeqCst))],
    );
    if !snapshot.hosts.is_empty() {
        let per_host = |value: &dyn Fn(&crate::status::HostState) -> u64| -> Vec<(String, u64)> {
            snapshot
                .hosts
                .iter()
                .map(|host| (format!("{{host=\"{}\"}}", label(&host.host)), value(host)))
                .collect()
        };
        gauge(
            "maestro_host_up",
            "1 while the ssh host is up, 0 while it is down in its backoff after connect failures.",
            "gauge",
            &per_host(&|host| u64::from(host.health == "up")),
        );
        gauge(
            "maestro_host_slots_busy",
            "Per-host slots held now.",
            "gauge",
            &per_host(&|host| host.slots_busy as u64),
        );
        gauge(
            "maestro_host_slots",
            "Per-host slots: the most lanes the host runs at once.",
            "gauge",
            &per_host(&|host| host.slots as u64),
        );
    }
    super::review::metrics(&mut out, snapshot);
    out
}

/// A Prometheus label value: backslash, double quote and newline escaped (format 0.0.4).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The dashboard: one server-rendered page, no JavaScript, refreshing itself every 5 s.
pub fn dashboard(snapshot: &Snapshot) -> String {
    let mut page = String::new();
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>maestro: {project}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em;width:100%}}\
         th,td{{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;font-size:.9em}}\
         tr.stalled,tr.orphaned{{background:#fde2e1;font-weight:bold}}\
         tr.guard{{background:#fff4ce}} .muted{{color:#777}} h2{{margin-bottom:.3em}}</style>\
         </head><body>\n<h1>maestro <span class=\"muted\">project {project}</span></h1>\n\
         <p class=\"muted\">generated {generated} · refreshes every 5 s · \
         <a href=\"/state\">/state</a> · <a href=\"/api/v1/state\">/api/v1/state</a> · \
         <a href=\"/metrics\">/metrics</a></p>",
        project = escape(&snapshot.project_id),
        generated = escape(&snapshot.generated_at),
    );
    let _ = writeln!(
        page,
        "<h2>Active lanes ({})</h2>\n<table><tr><th>issue</th><th>phase</th><th>attempt</th>\
         <th>idle</th><th>turns</th><th>events</th><th>last event</th><th>tokens</th>\
         <th>thread</th><th>lane</th></tr>",
        snapshot.active.len()
    );
    if snapshot.active.is_empty() {
        page.push_str("<tr><td colspan=\"10\" class=\"muted\">no lane is running</td></tr>\n");
    }
    for run in &snapshot.active {
        let _ = writeln!(
            page,
            "<tr class=\"{phase}\"><td><a href=\"/api/v1/{id}\">{id}</a></td><td>{phase}</td>\
             <td>{attempt}</td><td>{idle}</td><td>{turns}</td><td>{events}</td><td>{last}</td>\
             <td>{tokens}</td><td>{thread}</td><td>{lane}</td></tr>",
            phase = escape(&run.phase),
            id = escape(&run.issue_identifier),
            attempt = run.attempt,
            idle = humanize(Duration::from_secs(run.idle_for_seconds)),
            turns = run.turn_count,
            events = run.event_count,
            last = escape(run.last_event_type.as_deref().unwrap_or("-")),
            tokens = run.tokens.total,
            thread = escape(run.thread_id.as_deref().unwrap_or("-")),
            lane = escape(&run.workspace_path),
        );
    }
    page.push_str("</table>\n");
    super::review::dashboard(&mut page, snapshot);
    let _ = writeln!(
        page,
        "<h2>Retrying ({})</h2>\n<table><tr><th>issue</th><th>attempt</th><th>kind</th>\
         <th>due</th><th>last error</th></tr>",
        snapshot.retrying.len()
    );
    for retry in &snapshot.retrying {
        let kind = retry.retry_kind.as_str();
        let _ = writeln!(
            page,
            "<tr><td><a href=\"/api/v1/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            retry.attempt,
            escape(kind),
            escape(&retry.next_retry_at),
            escape(retry.last_error_class.as_deref().unwrap_or("-")),
            id = escape(&retry.issue_identifier),
        );
    }
    page.push_str("</table>\n");
    let _ = writeln!(
        page,
        "<h2>Recent runs ({})</h2>\n<table><tr><th>issue</th><th>attempt</th><th>outcome</th>\
         <th>duration</th><th>tokens</th><th>PR or error</th></tr>",
        snapshot.recent.len()
    );
    for run in &snapshot.recent {
        let outcome = run.outcome.as_str();
        let detail = match (&run.pr_url, &run.error_class, &run.cause) {
            (Some(url), _, _) => url.clone(),
            (None, Some(class), Some(cause)) => format!("{class}: {cause}"),
            (None, Some(class), None) => class.clone(),
            (None, None, _) => "-".to_string(),
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"/api/v1/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            run.attempt,
            escape(outcome),
            humanize(Duration::from_secs(run.duration_seconds)),
            run.tokens.total,
            escape(&detail),
            id = escape(&run.issue_identifier),
        );
    }
    page.push_str("</table>\n");
    let _ = writeln!(
        page,
        "<h2>Lanes ({})</h2>\n<table><tr><th>lane</th><th>attempts</th><th>last status</th>\
         <th>guard</th></tr>",
        snapshot.lanes.len()
    );
    for lane in &snapshot.lanes {
        let status = lane
            .last_status
            .map_or("-", crate::workspace::record::RunStatus::as_str);
        let class = if lane.guard.is_some() {
            " class=\"guard\""
        } else {
            ""
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&lane.workspace_path),
            lane.attempts_used,
            escape(status),
            escape(lane.guard.as_ref().map_or("-", |g| g.reason.as_str())),
        );
    }
    page.push_str("</table>\n");
    hosts_table(&mut page, snapshot);
    let totals = &snapshot.totals;
    let _ = writeln!(
        page,
        "<p>tokens {} (in {}, out {}) · runtime {}</p>",
        totals.tokens.total,
        totals.tokens.input,
        totals.tokens.output,
        humanize(Duration::from_secs(totals.runtime_seconds))
    );
    for problem in &snapshot.problems {
        let _ = writeln!(page, "<p class=\"stalled\">{}</p>", escape(problem));
    }
    page.push_str("</body></html>\n");
    page
}

/// The ssh hosts' health and slots (`[worker]`); nothing without hosts. A host that is down is
/// highlighted like a stalled lane.
fn hosts_table(page: &mut String, snapshot: &Snapshot) {
    if snapshot.hosts.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<h2>Hosts ({})</h2>\n<table><tr><th>host</th><th>health</th><th>slots busy</th>\
         <th>failures</th><th>down until</th><th>last error</th></tr>",
        snapshot.hosts.len()
    );
    for host in &snapshot.hosts {
        let class = if host.health == "up" {
            ""
        } else {
            " class=\"stalled\""
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&host.host),
            escape(&host.health),
            host.slots_busy,
            host.slots,
            host.failures,
            escape(host.down_until.as_deref().unwrap_or("-")),
            escape(host.last_error.as_deref().unwrap_or("-")),
        );
    }
    page.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(escape("a\u{1b}[2J\r\n<b>"), "a\\u{1b}[2J\\r\\n&lt;b&gt;");
    }

    fn run(identifier: &str, host: Option<&str>) -> crate::status::ActiveRun {
        crate::status::ActiveRun {
            run_id: format!("run-{identifier}"),
            issue_id: format!("id-{identifier}"),
            issue_identifier: identifier.into(),
            issue_url: None,
            thread_id: None,
            branch: format!("x/{identifier}"),
            workspace_path: format!(".workspaces/{identifier}"),
            host: host.map(str::to_string),
            attempt: 1,
            phase: "executing".into(),
            retry_at: None,
            wait_reason: None,
            started_at: "2026-12-01T00:00:00Z".into(),
            last_run_activity_at: None,
            last_protocol_activity_at: None,
            idle_for_seconds: 0,
            event_count: 0,
            last_event_type: None,
            last_event_at: None,
            turn_count: 1,
            tokens: crate::workspace::record::Tokens::default(),
            owner_alive: true,
            pid: 1,
        }
    }

    fn host(name: &str, health: &str, busy: usize) -> crate::status::HostState {
        crate::status::HostState {
            host: name.into(),
            health: health.into(),
            failures: u32::from(health == "down"),
            down_until: None,
            last_error: None,
            slots_busy: busy,
            slots: 2,
        }
    }

    fn snapshot(
        active: Vec<crate::status::ActiveRun>,
        hosts: Vec<crate::status::HostState>,
    ) -> Snapshot {
        Snapshot {
            schema_version: crate::status::SCHEMA_VERSION,
            generated_at: "2026-12-01T00:00:00Z".into(),
            project_id: "demo".into(),
            active,
            retrying: Vec::new(),
            recent: Vec::new(),
            lanes: Vec::new(),
            totals: crate::status::Totals::default(),
            tracker_budget: None,
            hosts,
            problems: Vec::new(),
            review: Vec::new(),
            review_totals: None,
        }
    }

    #[test]
    fn api_state_names_each_runs_host_and_the_hosts_health() {
        let state = api_state(&snapshot(
            vec![run("ABC-1", Some("build1")), run("ABC-2", None)],
            vec![host("build1", "up", 1), host("build2", "down", 0)],
        ));
        assert_eq!(state["running"][0]["host"], "build1");
        assert!(
            state["running"][1].get("host").is_none(),
            "a local lane has no host key: {state}"
        );
        assert_eq!(state["hosts"][0]["host"], "build1");
        assert_eq!(state["hosts"][0]["slots_busy"], 1);
        assert_eq!(state["hosts"][1]["health"], "down");

        let local = api_state(&snapshot(vec![run("ABC-2", None)], Vec::new()));
        assert!(
            local.get("hosts").is_none(),
            "no hosts key without [worker]"
        );
    }

    #[test]
    fn the_dashboard_lists_the_hosts_and_marks_one_that_is_down() {
        let page = dashboard(&snapshot(
            vec![run("ABC-1", Some("build1"))],
            vec![host("build1", "up", 1), host("<b>build2</b>", "down", 0)],
        ));
        assert!(page.contains("<h2>Hosts (2)</h2>"), "{page}");
        assert!(
            page.contains("<tr><td>build1</td><td>up</td><td>1/2</td><td>0</td>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<tr class=\"stalled\"><td>&lt;b&gt;build2&lt;/b&gt;</td><td>down</td><td>0/2</td><td>1</td>"
            ),
            "{page}"
        );
        let local = dashboard(&snapshot(vec![run("ABC-1", None)], Vec::new()));
        assert!(
            !local.contains("<h2>Hosts"),
            "no hosts table without [worker]"
        );
    }

    #[test]
    fn metrics_carry_each_hosts_health_and_slots_with_escaped_labels() {
        let text = metrics(
            &snapshot(
                vec![run("ABC-1", Some("build1"))],
                vec![host("build1", "up", 1), host("we\"ird\\", "down", 0)],
            ),
            &Health::default(),
        );
        for line in [
            "maestro_host_up{host=\"build1\"} 1",
            "maestro_host_up{host=\"we\\\"ird\\\\\"} 0",
            "maestro_host_slots_busy{host=\"build1\"} 1",
            "maestro_host_slots{host=\"build1\"} 2",
        ] {
            assert!(text.lines().any(|got| got == line), "{line} in:\n{text}");
        }
        let local = metrics(&snapshot(Vec::new(), Vec::new()), &Health::default());
        assert!(!local.contains("maestro_host_"), "{local}");
    }
}
