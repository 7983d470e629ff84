//! The operator HTTP endpoint over loopback: every route, error shapes, `/state` equal to
//! `status --json`, Prometheus text that parses, `HEAD`, and slow or idle clients that cannot
//! starve readers (issue #11, item 5).

use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use maestro::clock;
use maestro::operator_http::{self, Health};
use maestro::workspace::Layout;

use crate::support::dir::TestDir;
use crate::support::maestro_command;
use crate::support::state::{NOW_MS, config_for, populate};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// A plain HTTP/1.0 request over a fresh connection, read to EOF.
fn request(address: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(stream, "{method} {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

fn start(
    dir: &TestDir,
) -> (
    operator_http::Server,
    Arc<Health>,
    Vec<maestro::workspace::lock::Lease>,
) {
    let config = config_for(dir);
    let leases = populate(&config);
    let health = Arc::new(Health::default());
    health
        .poll_interval_ms
        .store(60_000, std::sync::atomic::Ordering::SeqCst);
    let server =
        operator_http::start("127.0.0.1:0".parse().unwrap(), config, Arc::clone(&health)).unwrap();
    (server, health, leases)
}

/// Removes the fields that depend on the instant a snapshot was built.
fn without_clock(mut value: serde_json::Value) -> serde_json::Value {
    value.as_object_mut().unwrap().remove("generated_at");
    for run in value["active"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("idle_for_seconds");
        run.as_object_mut().unwrap().remove("wait_reason");
    }
    let totals = value["totals"].as_object_mut().unwrap();
    totals.remove("runtime_seconds");
    value
}

#[test]
fn state_is_exactly_status_json() {
    let dir = TestDir::new("http-state");
    let (server, _health, _leases) = start(&dir);
    let reply = request(server.address(), "GET", "/state");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let output = maestro_command(dir.path(), &["status", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let from_cli: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(without_clock(reply.json()), without_clock(from_cli));
}

#[test]
fn symphony_compatible_state_and_issue_routes() {
    let dir = TestDir::new("http-api");
    let (server, _health, _leases) = start(&dir);
    let state = request(server.address(), "GET", "/api/v1/state").json();
    assert_eq!(state["counts"]["running"], 4);
    assert_eq!(state["counts"]["retrying"], 2);
    assert_eq!(state["running"][0]["issue_identifier"], "ABC-1");
    assert_eq!(state["running"][0]["session_id"], "thread-ABC-1");
    assert!(state["codex_totals"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(state["retrying"][0]["due_at"].is_string());

    let issue = request(server.address(), "GET", "/api/v1/ABC-1");
    assert_eq!(issue.status, 200);
    let issue = issue.json();
    assert_eq!(issue["status"], "running");
    assert_eq!(issue["running"]["turn_count"], 1);
    assert_eq!(issue["workspace"]["path"], ".workspaces/ABC-1");

    let retrying = request(server.address(), "GET", "/api/v1/ABC-7").json();
    assert_eq!(retrying["status"], "retrying");
    assert_eq!(retrying["retry"]["error"], "codex_turn_failed");

    let missing = request(server.address(), "GET", "/api/v1/NOPE-404");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "issue_not_found");
}

#[test]
fn read_only_and_unknown_paths_answer_json_errors() {
    let dir = TestDir::new("http-errors");
    let (server, _health, _leases) = start(&dir);
    for (method, path) in [
        ("POST", "/state"),
        ("DELETE", "/api/v1/ABC-1"),
        ("PUT", "/"),
    ] {
        let reply = request(server.address(), method, path);
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert_eq!(reply.json()["error"]["code"], "method_not_allowed");
    }
    let reply = request(server.address(), "GET", "/nope");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "not_found");
}

#[test]
fn healthz_reports_a_wedged_loop() {
    let dir = TestDir::new("http-health");
    let (server, health, _leases) = start(&dir);
    let before = request(server.address(), "GET", "/healthz");
    assert_eq!(before.status, 503, "no tick yet");
    assert_eq!(before.json()["status"], "wedged");
    health.tick_finished(Duration::from_millis(12));
    let after = request(server.address(), "GET", "/healthz");
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["status"], "ok");
    assert_eq!(after.json()["ticks"], 1);
}

/// A small Prometheus text-format check: every sample line is `name{labels} value`, every
/// metric has HELP and TYPE before its samples, values parse as numbers.
fn check_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut typed = std::collections::HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed.insert(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let name = series.split('{').next().unwrap();
        assert!(typed.contains(name), "TYPE before samples: {line}");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "metric name: {name}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split(',') {
                    let (key, quoted) = pair.split_once('=').expect("label pair");
                    assert!(
                        !key.is_empty() && quoted.starts_with('"') && quoted.ends_with('"'),
                        "{line}"
                    );
                }
            }
        }
        samples.push((
            series.to_string(),
            value.parse::<f64>().expect("numeric value"),
        ));
    }
    samples
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let dir = TestDir::new("http-metrics");
    let (server, health, _leases) = start(&dir);
    health.tick_finished(Duration::from_millis(34));
    let reply = request(server.address(), "GET", "/metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let samples = check_prometheus(&reply.body);
    let value = |series: &str| samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v);
    // The fixture's lanes went quiet long before "now", so the live ones read as stalled.
    let lanes: f64 = samples
        .iter()
        .filter(|(series, _)| series.starts_with("maestro_lanes{"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(lanes, 4.0);
    assert_eq!(value("maestro_lanes{phase=\"orphaned\"}"), Some(1.0));
    assert_eq!(value("maestro_retries_queued"), Some(2.0));
    assert_eq!(value("maestro_last_tick_duration_milliseconds"), Some(34.0));
    assert_eq!(value("maestro_runs{outcome=\"handoff\"}"), Some(2.0));
}

#[test]
fn dashboard_renders_lanes_and_highlights_trouble() {
    let dir = TestDir::new("http-dashboard");
    let (server, _health, _leases) = start(&dir);
    let reply = request(server.address(), "GET", "/");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(reply.body.contains("<meta http-equiv=\"refresh\""));
    assert!(reply.body.contains("<a href=\"/api/v1/ABC-1\">ABC-1</a>"));
    assert!(reply.body.contains("<tr class=\"orphaned\">"));
    assert!(!reply.body.contains("<script"), "no JavaScript");
}

#[test]
fn slow_clients_do_not_delay_a_normal_request() {
    let dir = TestDir::new("http-slow");
    let (server, _health, _leases) = start(&dir);
    // Fifty clients that send half a request line and then nothing.
    let slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(server.address()).unwrap();
            stream.write_all(b"GET /sta").unwrap();
            stream
        })
        .collect();
    let started = Instant::now();
    let reply = request(server.address(), "GET", "/healthz");
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 503);
    assert!(
        elapsed < Duration::from_secs(5),
        "normal request took {elapsed:?}"
    );
    drop(slow);
}

#[test]
fn garbage_and_oversized_requests_get_json_errors() {
    let dir = TestDir::new("http-garbage");
    let (server, _health, _leases) = start(&dir);
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
        .write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 400 "), "{raw}");
    assert!(raw.contains("\"bad_request\""), "{raw}");

    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let huge = format!(
        "GET /state HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    // The server may close before reading everything; only its answer matters.
    let _ = stream.write_all(huge.as_bytes());
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    assert!(raw.starts_with("HTTP/1.1 431 "), "{raw}");
}

/// Issue #11, item 10: `HEAD` got a 405 with a body. It is answered as `GET` is, status and
/// headers alike, `Content-Length` included, with no body.
#[test]
fn head_is_answered_like_get_without_a_body() {
    let dir = TestDir::new("http-head");
    let (server, health, _leases) = start(&dir);
    health.tick_finished(Duration::from_millis(5));
    for path in [
        "/healthz",
        "/state",
        "/",
        "/api/v1/ABC-1",
        "/api/v1/NOPE-404",
        "/nope",
    ] {
        let get = request(server.address(), "GET", path);
        let head = request(server.address(), "HEAD", path);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(head.body, "", "{path}: no body");
        assert!(!get.body.is_empty(), "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
}

/// A client that keeps its connection open and sends half a request line.
fn idle_client(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /sta").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Issue #11, item 5: 64 clients that never finish their request held every connection slot,
/// and /healthz got a 503 or a reset. Now a new client evicts the one that has waited longest
/// for its head, and that one is told so with a 503 and `Retry-After`.
#[test]
fn clients_that_never_finish_their_head_cannot_lock_out_a_probe() {
    let dir = TestDir::new("http-evict");
    let (server, health, _leases) = start(&dir);
    health.tick_finished(Duration::from_millis(5));
    let mut waiting: Vec<TcpStream> = (0..operator_http::MAX_CONNECTIONS)
        .map(|_| idle_client(server.address()))
        .collect();
    let reply = request(server.address(), "GET", "/healthz");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "ok");
    // The oldest waiting client made room, and was told why.
    let mut evicted = String::new();
    waiting[0].read_to_string(&mut evicted).unwrap();
    assert!(evicted.starts_with("HTTP/1.1 503 "), "{evicted}");
    assert!(evicted.contains("\r\nRetry-After: 1\r\n"), "{evicted}");
    assert!(evicted.contains("\"busy\""), "{evicted}");
    // The next one still holds its slot: a newcomer evicts one client, not more.
    waiting[1].set_nonblocking(true).unwrap();
    let mut buffer = [0u8; 1];
    let still_open = waiting[1].read(&mut buffer);
    assert!(
        matches!(&still_open, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "{still_open:?}"
    );
    // And every later probe gets through as well.
    for round in 0..5 {
        let reply = request(server.address(), "GET", "/healthz");
        assert_eq!(reply.status, 200, "probe {round}: {}", reply.body);
    }
}

/// Issue #11, item 5: the 5 s timeout was per read, so a client sending a byte every so often
/// held its connection for as long as it liked. The head now has 5 s from accept in total;
/// then the client gets a 408 and the connection is closed, while it is still sending.
#[test]
fn a_client_dribbling_its_head_is_cut_off_at_the_deadline() {
    let dir = TestDir::new("http-dribble");
    let (server, _health, _leases) = start(&dir);
    let mut stream = TcpStream::connect(server.address()).unwrap();
    stream
        .write_all(b"GET /state HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let answered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribbler = {
        let mut stream = stream.try_clone().unwrap();
        let answered = Arc::clone(&answered);
        std::thread::spawn(move || {
            // Well inside any per-read timeout; bounded so the test ends even on the old code.
            for _ in 0..150 {
                if answered.load(std::sync::atomic::Ordering::SeqCst)
                    || stream.write_all(b"a").is_err()
                {
                    return;
                }
                crate::support::pause(Duration::from_millis(200));
            }
        })
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    // Until the server closes (or resets once its answer is in): a bounded number of reads.
    for _ in 0..64 {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buffer[..n]),
        }
    }
    answered.store(true, std::sync::atomic::Ordering::SeqCst);
    dribbler.join().unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408 "), "{response:?}");
    assert!(response.contains("\"request_timeout\""), "{response}");
}

/// Writes `lines` (JSON values, one per line) as run `run_id`'s journal.
fn write_journal(layout: &Layout, run_id: &str, lines: &[serde_json::Value]) -> std::path::PathBuf {
    let path = layout.journal_file(run_id);
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn command_completed(at_ms: u64, command: &str) -> serde_json::Value {
    serde_json::json!({"at_ms": at_ms, "dir": "in", "msg": {"method": "item/completed",
        "params": {"item": {"type": "commandExecution", "command": command, "exitCode": 0}}}})
}

/// #13 item 6: the issue detail names the current attempt's journal and child log, and carries
/// its last 50 journal events, summarized, with host paths shown as status shows them.
#[test]
fn issue_detail_carries_the_attempts_logs_and_last_fifty_events() {
    let dir = TestDir::new("http-issue-events");
    let (server, _health, _leases) = start(&dir);
    let layout = Layout::new(&config_for(&dir).workspace_root);
    // 59 commands, then one naming a file in the lane by its absolute host path.
    let mut lines: Vec<_> = (0..59)
        .map(|n| command_completed(NOW_MS + n, &format!("make step-{n}")))
        .collect();
    let lane = layout.lane_dir("ABC-1");
    lines.push(serde_json::json!({"at_ms": NOW_MS + 59, "dir": "in", "msg": {
        "method": "item/started",
        "params": {"item": {"type": "commandExecution", "command": format!("cat {}/notes.txt", lane.display())}}}}));
    write_journal(&layout, "run-ABC-1", &lines);
    std::fs::create_dir_all(layout.logs_dir()).unwrap();
    std::fs::write(layout.log_file("run-ABC-1"), "log\n").unwrap();

    let reply = request(server.address(), "GET", "/api/v1/ABC-1");
    assert_eq!(reply.status, 200);
    let issue = reply.json();
    let events = issue["recent_events"].as_array().unwrap();
    assert_eq!(events.len(), 50);
    assert_eq!(events[0]["event"], "item/completed");
    assert_eq!(events[0]["message"], "command make step-10 (exit 0)");
    assert_eq!(events[0]["at"], clock::format_ms(NOW_MS + 10));
    assert_eq!(events[49]["event"], "item/started");
    assert_eq!(
        events[49]["message"],
        "command cat ./.workspaces/ABC-1/notes.txt"
    );
    assert_eq!(
        issue["logs"]["codex_session_logs"],
        serde_json::json!([
            {"label": "journal", "path": ".workspaces/.maestro/runs/run-ABC-1.journal.jsonl",
             "url": null, "run_id": "run-ABC-1"},
            {"label": "child_log", "path": ".workspaces/.maestro/logs/run-ABC-1.log",
             "url": null, "run_id": "run-ABC-1"},
        ])
    );
    let root = dir.path().display().to_string();
    assert!(
        !reply.body.contains(&root),
        "a host path leaked: {}",
        reply.body
    );

    // An idle issue shows its last attempt (done-11 is ABC-9's newest), not an older one.
    write_journal(
        &layout,
        "done-10",
        &[command_completed(NOW_MS, "older attempt")],
    );
    write_journal(
        &layout,
        "done-11",
        &[
            serde_json::json!({"at_ms": NOW_MS, "dir": "local", "event": "turn_outcome",
            "detail": {"outcome": "idle_timeout", "cause": "model endpoint unreachable"}}),
        ],
    );
    let idle = request(server.address(), "GET", "/api/v1/ABC-9").json();
    assert_eq!(idle["status"], "idle");
    assert_eq!(
        idle["recent_events"],
        serde_json::json!([{"at": clock::format_ms(NOW_MS), "event": "turn_outcome",
            "message": "idle_timeout: model endpoint unreachable"}])
    );
    assert_eq!(
        idle["logs"]["codex_session_logs"][0]["path"],
        ".workspaces/.maestro/runs/done-11.journal.jsonl"
    );
    // Without a journal there is nothing to list.
    let no_journal = request(server.address(), "GET", "/api/v1/ABC-2").json();
    assert_eq!(no_journal["recent_events"], serde_json::json!([]));
    assert_eq!(
        no_journal["logs"]["codex_session_logs"],
        serde_json::json!([])
    );
}

/// #13 item 6: only the journal's tail is read. This journal is a terabyte (sparse): reading it
/// whole could not finish within the client's read timeout.
#[test]
fn issue_events_are_read_from_the_journal_tail_only() {
    use std::io::Write as _;
    let dir = TestDir::new("http-issue-tail");
    let (server, _health, _leases) = start(&dir);
    let layout = Layout::new(&config_for(&dir).workspace_root);
    let path = layout.journal_file("run-ABC-2");
    let mut file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 40).unwrap();
    file.seek(std::io::SeekFrom::End(0)).unwrap();
    // The hole ends as one bad line; the events after it are whole.
    writeln!(file).unwrap();
    for n in 0..3 {
        writeln!(
            file,
            "{}",
            command_completed(NOW_MS + n, &format!("late {n}"))
        )
        .unwrap();
    }
    drop(file);
    let issue = request(server.address(), "GET", "/api/v1/ABC-2").json();
    let messages: Vec<&str> = issue["recent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "command late 0 (exit 0)",
            "command late 1 (exit 0)",
            "command late 2 (exit 0)"
        ]
    );
}
