//! Benchmark (not a test): does `/healthz` stay reachable while slow and idle clients attack
//! the operator endpoint? (issue #11, item 5)
//!
//!     cargo run --release --example bench_endpoint
//!
//! Attack: 64 sockets that dribble one byte of a never-ending request head per second, plus
//! 200 sockets that connect and send nothing. Probe: one `GET /healthz` every 200 ms for 20 s,
//! each on a fresh connection; it succeeds when a 200 arrives within 1 s of the probe's
//! connect. Goal: at least 95 % of probes succeed.
//!
//! Two attackers are measured. The *holding* attacker opens its 264 sockets once and keeps
//! whichever stay open (the reproduction). The *reconnecting* attacker reopens every
//! socket the endpoint closes at once, so the endpoint is under 264 waiting sockets for the
//! whole run and every probe must win a slot against them. Also printed: how the evicted
//! attacker sockets were told (a 503 with `Retry-After`, or a bare close or reset).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use maestro::config;
use maestro::operator_http::{self, Health};

const DRIBBLERS: usize = 64;
const IDLE: usize = 200;
const PROBE_EVERY: Duration = Duration::from_millis(200);
const PROBE_FOR: Duration = Duration::from_secs(20);
const PROBE_WITHIN: Duration = Duration::from_secs(1);
/// Time for the attack sockets to connect and settle before the first probe.
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    let root = std::env::temp_dir().join(format!("maestro-bench-endpoint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench dir");
    let text = format!(
        "id = \"bench\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"K\"\n",
        root.display()
    );
    let config = config::parse(&root.join("maestro.toml"), &text, None).expect("valid config");

    println!(
        "operator endpoint under attack: {DRIBBLERS} dribbling + {IDLE} idle sockets; \
         GET /healthz every {} ms for {} s, success = 200 within {} ms",
        PROBE_EVERY.as_millis(),
        PROBE_FOR.as_secs(),
        PROBE_WITHIN.as_millis()
    );
    for reconnect in [false, true] {
        let health = Arc::new(Health::default());
        health.poll_interval_ms.store(60_000, Ordering::SeqCst);
        health.tick_finished(Duration::from_millis(1));
        let server = operator_http::start(
            "127.0.0.1:0".parse().expect("address"),
            config.clone(),
            Arc::clone(&health),
        )
        .expect("endpoint starts");
        let report = scenario(server.address(), reconnect);
        let attacker = if reconnect { "reconnecting" } else { "holding" };
        let percent = 100.0 * report.ok as f64 / report.sent.max(1) as f64;
        println!("\n{attacker} attacker:");
        println!(
            "  /healthz 200 within 1 s: {} of {} probes ({percent:.1} %)",
            report.ok, report.sent
        );
        println!(
            "  probe latency: median {:.1} ms, p95 {:.1} ms, max {:.1} ms",
            report.percentile(50),
            report.percentile(95),
            report.percentile(100)
        );
        println!(
            "  attack sockets closed by the endpoint: {} ({} evicted with 503 + Retry-After, \
             {} past the head deadline with 408, {} with no answer)",
            report.closed.iter().sum::<u64>(),
            report.closed[0],
            report.closed[1],
            report.closed[2]
        );
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[derive(Default)]
struct Report {
    sent: u64,
    ok: u64,
    /// Milliseconds to the answer; failed probes count as their timeout.
    latencies: Vec<f64>,
    /// Attack sockets the endpoint closed: told 503, told 408, told nothing.
    closed: [u64; 3],
}

impl Report {
    fn percentile(&self, p: usize) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return 0.0;
        }
        let index = (sorted.len() * p / 100).min(sorted.len() - 1);
        sorted[index]
    }
}

fn scenario(address: SocketAddr, reconnect: bool) -> Report {
    let stop = Arc::new(AtomicBool::new(false));
    let closed: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let attackers: Vec<_> = (0..DRIBBLERS + IDLE)
        .map(|index| {
            let stop = Arc::clone(&stop);
            let closed = Arc::clone(&closed);
            std::thread::spawn(move || {
                attack(address, index < DRIBBLERS, reconnect, &stop, &closed);
            })
        })
        .collect();
    std::thread::sleep(SETTLE);

    let started = Instant::now();
    let mut probes = Vec::new();
    let mut next = started;
    while next < started + PROBE_FOR {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        probes.push(std::thread::spawn(move || probe(address)));
        next += PROBE_EVERY;
    }
    let mut report = Report::default();
    for handle in probes {
        report.sent += 1;
        match handle.join().ok().flatten() {
            Some(latency) if latency <= PROBE_WITHIN => {
                report.ok += 1;
                report.latencies.push(latency.as_secs_f64() * 1000.0);
            }
            Some(latency) => report.latencies.push(latency.as_secs_f64() * 1000.0),
            None => report
                .latencies
                .push(PROBE_WITHIN.as_secs_f64() * 1000.0 * 2.0),
        }
    }
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        let _ = attacker.join();
    }
    report.closed = [0, 1, 2].map(|index| closed[index].load(Ordering::SeqCst));
    report
}

/// One attack socket: connect, then either dribble a byte a second or stay silent; when the
/// endpoint closes it, note how, and reconnect if asked to.
fn attack(
    address: SocketAddr,
    dribble: bool,
    reconnect: bool,
    stop: &AtomicBool,
    closed_how: &[AtomicU64; 3],
) {
    const HEAD: &[u8] = b"GET /state HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut stream) = TcpStream::connect(address) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut sent = 0usize;
        let mut received = Vec::new();
        let mut closed = false;
        while !stop.load(Ordering::SeqCst) {
            if dribble {
                let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                if stream.write_all(&[byte]).is_err() {
                    closed = true;
                    break;
                }
                sent += 1;
            }
            let mut buffer = [0u8; 1024];
            match stream.read(&mut buffer) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => received.extend_from_slice(&buffer[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            let text = String::from_utf8_lossy(&received);
            let how = if text.starts_with("HTTP/1.1 503 ") && text.contains("\r\nRetry-After: ") {
                0
            } else if text.starts_with("HTTP/1.1 408 ") {
                1
            } else {
                2
            };
            closed_how[how].fetch_add(1, Ordering::SeqCst);
        }
        if !reconnect {
            // Hold nothing more: this socket is gone, and the holding attacker does not replace it.
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One `GET /healthz`; the time to a complete 200, or `None` for anything else.
fn probe(address: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let limit = PROBE_WITHIN * 2;
    let mut stream = TcpStream::connect_timeout(&address, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream.set_write_timeout(Some(limit)).ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
        .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    response
        .starts_with(b"HTTP/1.1 200 ")
        .then(|| started.elapsed())
}
