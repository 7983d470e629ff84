//! Benchmark (not a test): `maestro status --json` with 100 lanes and 1,000 run records, and
//! `GET /state` requests per second on loopback.
//!
//!     cargo build --release && cargo run --release --example bench_status
//!
//! The snapshot is timed in-process (build + JSON) and end to end (the release binary, process
//! start included). The endpoint is hammered by 4 client threads for 5 s, one connection per
//! request (the endpoint closes every connection). Goal: `status --json` under 20 ms.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use maestro::clock;
use maestro::config;
use maestro::operator_http::{self, Health};
use maestro::status;
use maestro::workspace::Layout;
use maestro::workspace::record::{self, ActivityMarker, Phase, RunRecord, RunStatus, Tokens};

fn main() {
    let root = std::env::temp_dir().join(format!("maestro-bench-status-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let text = format!(
        "id = \"bench\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"K\"\n",
        root.display()
    );
    let config_path = root.join("maestro.toml");
    std::fs::write(&config_path, &text).expect("config");
    let config = config::parse(&config_path, &text, None).expect("valid config");
    populate(&Layout::new(&config.workspace_root));

    let runs = 50;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        let snapshot = status::build(&config, 10);
        bytes = status::to_json(&snapshot).len();
    }
    let in_process = started.elapsed() / runs;

    let binary = release_binary();
    let mut best = Duration::MAX;
    for _ in 0..10 {
        let started = Instant::now();
        let output = std::process::Command::new(&binary)
            .args(["status", "--json", "--config"])
            .arg(&config_path)
            .output()
            .expect("status runs");
        assert!(output.status.success());
        best = best.min(started.elapsed());
    }
    println!("status --json, 100 lanes, 1000 records ({bytes} bytes of JSON):");
    println!(
        "  in-process build + JSON: {:.2} ms",
        in_process.as_secs_f64() * 1000.0
    );
    println!(
        "  release binary end to end (best of 10): {:.2} ms",
        best.as_secs_f64() * 1000.0
    );

    let server = operator_http::start(
        "127.0.0.1:0".parse().expect("address"),
        config,
        Arc::new(Health::default()),
    )
    .expect("endpoint starts");
    let address = server.address();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let mut stream = TcpStream::connect(address).expect("connect");
                    stream
                        .write_all(b"GET /state HTTP/1.0\r\n\r\n")
                        .expect("request");
                    let mut reply = Vec::new();
                    stream.read_to_end(&mut reply).expect("reply");
                    assert!(reply.starts_with(b"HTTP/1.1 200"));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client");
    }
    println!(
        "GET /state on loopback, 4 clients for 5 s: {:.0} requests/s",
        done.load(Ordering::Relaxed) as f64 / 5.0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

fn populate(layout: &Layout) {
    let now = clock::now_ms();
    for lane in 0..100u64 {
        let identifier = format!("ABC-{lane}");
        std::fs::create_dir_all(layout.lane_dir(&identifier)).expect("lane dir");
        for attempt in 0..10u64 {
            let started = now - (lane * 10 + attempt) * 60_000;
            let live = attempt == 9 && lane < 20;
            let record = RunRecord {
                run_id: format!("run-{lane}-{attempt}"),
                project_id: "bench".into(),
                issue_id: format!("id-{lane}"),
                issue_identifier: identifier.clone(),
                attempt: u32::try_from(attempt + 1).unwrap_or(1),
                branch: format!("x/bench-abc-{lane}"),
                workspace_path: format!(".workspaces/{identifier}"),
                started_at: clock::format_ms(started),
                finished_at: (!live).then(|| clock::format_ms(started + 30_000)),
                phase: if live {
                    Phase::Executing
                } else {
                    Phase::Finished
                },
                status: if live {
                    RunStatus::Running
                } else {
                    RunStatus::RetryScheduled
                },
                thread_id: Some(format!("thread-{lane}")),
                turn_count: 1,
                tokens: Tokens {
                    input: 1000,
                    output: 100,
                    total: 1100,
                },
                error_class: Some("validation_failed".into()),
                pid: 1,
                ..RunRecord::default()
            };
            record::save_run(layout, &record).expect("record");
            if live {
                let marker = ActivityMarker {
                    schema_version: record::SCHEMA_VERSION,
                    run_id: record.run_id.clone(),
                    issue_id: record.issue_id.clone(),
                    issue_identifier: identifier.clone(),
                    attempt: record.attempt,
                    phase: Phase::Executing,
                    pid: 1,
                    thread_id: record.thread_id.clone(),
                    turn_count: 1,
                    event_count: 100,
                    last_event_type: Some("item/agentMessage/delta".into()),
                    last_event_at: Some(clock::format_ms(now)),
                    last_progress_at: clock::format_ms(now),
                    tokens: record.tokens,
                    rate_limits: None,
                    updated_at: clock::format_ms(now),
                };
                record::save_marker(layout, &identifier, &marker).expect("marker");
            }
        }
    }
}

fn release_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("maestro"))
        .expect("target dir");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    binary
}
