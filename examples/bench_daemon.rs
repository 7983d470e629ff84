//! Benchmark (not a test): the daemon's idle cost and its tick time with 1,000 candidates.
//!
//!     cargo build --release && cargo run --release --example bench_daemon [idle_seconds]
//!
//! 1. Tick time: a loopback fake Linear serves 1,000 Todo issues that all carry the opt-out
//!    label (so nothing is dispatched and every tick does the full listing and selection);
//!    the release `maestro daemon` polls every second and the figure is read from its own
//!    `/metrics` (`maestro_last_tick_duration_milliseconds`), sampled over 10 ticks.
//! 2. Idle: the same daemon against an empty project for `idle_seconds` (default 60) at the
//!    default poll interval; CPU time from /proc/<pid>/stat and RSS from /proc/<pid>/status.

#[allow(dead_code)] // The benchmark uses a subset of the test fakes.
#[path = "../tests/support/fake_http.rs"]
mod fake_http;
#[allow(dead_code)]
#[path = "../tests/support/fake_linear.rs"]
mod fake_linear;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_linear::{API_KEY, FakeIssue, FakeLinear, SLUG_ID, World};

fn main() {
    let idle_seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(60);
    let maestro = release_binary();
    let root = std::env::temp_dir().join(format!("maestro-bench-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");

    let mut world = World::standard();
    for n in 1..=1000 {
        world = world
            .with(FakeIssue::new(&format!("ABC-{n}"), "Todo").labels(&["maestro:manual-only"]));
    }
    let busy = FakeLinear::start(world);
    let (mut daemon, port) = start_daemon(&maestro, &root.join("busy"), &busy.url(), 1);
    let mut ticks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_count = 0.0;
    while ticks.len() < 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let metrics = get(port, "/metrics");
        let count = metric(&metrics, "maestro_ticks_total");
        if count > last_count && count > 1.0 {
            ticks.push(metric(&metrics, "maestro_last_tick_duration_milliseconds"));
        }
        last_count = count.max(last_count);
    }
    stop(&mut daemon);
    ticks.sort_by(f64::total_cmp);
    println!("tick with 1000 candidate issues (all opted out, none dispatched), poll every 1 s:");
    println!(
        "  ticks sampled {}, median {:.0} ms, min {:.0} ms, max {:.0} ms",
        ticks.len(),
        ticks.get(ticks.len() / 2).copied().unwrap_or(f64::NAN),
        ticks.first().copied().unwrap_or(f64::NAN),
        ticks.last().copied().unwrap_or(f64::NAN)
    );

    let empty = FakeLinear::start(World::standard());
    let (mut daemon, _port) = start_daemon(&maestro, &root.join("idle"), &empty.url(), 60);
    std::thread::sleep(Duration::from_secs(2)); // let startup and the first tick finish
    let pid = daemon.id();
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(idle_seconds));
    let cpu_after = cpu_ticks(pid);
    let (rss, hwm) = memory(pid);
    stop(&mut daemon);
    let hertz = 100.0; // USER_HZ on Linux
    let cpu_seconds = (cpu_after - cpu_before) as f64 / hertz;
    println!("idle daemon (empty project, default poll interval 60 s) over {idle_seconds} s:");
    println!(
        "  cpu {:.3} s ({:.4}% of one core), rss {rss} kB, peak rss {hwm} kB",
        cpu_seconds,
        100.0 * cpu_seconds / started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&root);
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

fn start_daemon(maestro: &Path, dir: &Path, linear_url: &str, poll: u64) -> (Child, u16) {
    std::fs::create_dir_all(dir.join("repo")).expect("repo dir");
    std::fs::write(
        dir.join("repo/WORKFLOW.md"),
        format!("+++\nversion = 1\n[tracker]\nproject_slug = \"{SLUG_ID}\"\n+++\nbench\n"),
    )
    .expect("workflow");
    let port = free_port();
    let config = format!(
        "id = \"bench\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"BENCH_LINEAR_KEY\"\napi_url = \"{linear_url}\"\n[operator_http]\nlisten_address = \"127.0.0.1:{port}\"\n",
        dir.join("repo").display()
    );
    std::fs::write(dir.join("maestro.toml"), config).expect("config");
    let child = Command::new(maestro)
        .args(["daemon", "--poll-interval-s", &poll.to_string(), "--config"])
        .arg(dir.join("maestro.toml"))
        .env("BENCH_LINEAR_KEY", API_KEY)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "daemon did not open its endpoint"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn stop(child: &mut Child) {
    maestro::signals::signal_process(child.id(), libc::SIGTERM);
    let _ = child.wait();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").expect("request");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // After the command name: state is field 0, utime 11, stime 12.
    field(11) + field(12)
}

/// (VmRSS, VmHWM) of `pid` in kB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let value = |key: &str| {
        status
            .lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (value("VmRSS:"), value("VmHWM:"))
}
