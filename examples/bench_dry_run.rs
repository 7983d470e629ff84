//! Benchmark (not a test): the dry run's selection over 10,000 issues served as 200 pages of
//! 50 (the largest issue page Linear's complexity limit allows) by the loopback fake Linear.
//!
//!     cargo run --release --example bench_dry_run
//!
//! Prints wall time and Maestro's own work per 100 issues, and peak memory. "Own work" is the
//! CPU time of the thread that runs the dry run (HTTP client, JSON decoding, normalization,
//! eligibility, both renderings), read from /proc/thread-self/schedstat; the fake server runs
//! on other threads, so its time is not counted. Goal: at most 2 ms of own work per 100 issues.

#[allow(dead_code)] // The benchmark uses a subset of the test fakes.
#[path = "../tests/support/fake_http.rs"]
mod fake_http;
#[allow(dead_code)]
#[path = "../tests/support/fake_linear.rs"]
mod fake_linear;

use std::path::Path;
use std::time::{Duration, Instant};

use fake_linear::{API_KEY, FakeIssue, FakeLinear, SLUG_ID, World};
use maestro::dry_run::{self, Inputs};
use maestro::selection::Claims;
use maestro::tracker::linear::{ApiKey, Client, Options};
use maestro::{config, settings, workflow};

const ISSUES: usize = 10_000;
const PAGE_SIZE: u32 = maestro::tracker::linear::MAX_ISSUE_PAGE_SIZE;
const RUNS: usize = 5;

fn main() {
    let fake = FakeLinear::start(world());
    let settings = settings(&fake.url());
    let inputs = Inputs {
        claims: Claims::unclaimed(&settings.workflow.execution),
        prior_attempts: Default::default(),
    };

    // One warm-up pass opens the connection and faults in the code paths.
    let warm_up = run(&fake, &settings, &inputs);
    assert_eq!(warm_up.candidates, ISSUES, "every issue is a candidate");

    let mut best_wall = Duration::MAX;
    let mut best_cpu = Duration::MAX;
    let mut total_wall = Duration::ZERO;
    let mut total_cpu = Duration::ZERO;
    for _ in 0..RUNS {
        let measured = run(&fake, &settings, &inputs);
        best_wall = best_wall.min(measured.wall);
        best_cpu = best_cpu.min(measured.cpu);
        total_wall += measured.wall;
        total_cpu += measured.cpu;
    }
    let per_100 = |duration: Duration| duration.as_secs_f64() * 1000.0 / (ISSUES as f64 / 100.0);
    let runs = RUNS as u32;
    println!(
        "dry-run selection: {ISSUES} issues in {} pages of {PAGE_SIZE}, {RUNS} runs after a warm-up",
        ISSUES / PAGE_SIZE as usize
    );
    println!(
        "  wall time, loopback included:  {:.3} ms per 100 issues (mean), {:.3} best; {:.1} ms per run (mean)",
        per_100(total_wall / runs),
        per_100(best_wall),
        (total_wall / runs).as_secs_f64() * 1000.0
    );
    println!(
        "  maestro's own work (thread CPU): {:.3} ms per 100 issues (mean), {:.3} best; goal <= 2 ms",
        per_100(total_cpu / runs),
        per_100(best_cpu)
    );
    println!(
        "  peak memory (VmHWM, whole process incl. the fake server): {}",
        peak_memory().unwrap_or_else(|| "unknown (no /proc/self/status)".into())
    );
}

struct Measured {
    candidates: usize,
    wall: Duration,
    cpu: Duration,
}

/// One dry run on a fresh client (empty caches): list every page, judge, render text and JSON.
fn run(fake: &FakeLinear, settings: &settings::Settings, inputs: &Inputs) -> Measured {
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.page_size = PAGE_SIZE;
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let client = Client::new(options, SLUG_ID);
    let report = dry_run::build(settings, &client, inputs).expect("dry run against the fake");
    let text = dry_run::render_text(&report);
    let json = dry_run::render_json(&report);
    let wall = started.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu_before);
    assert!(text.len() > ISSUES && json.len() > ISSUES);
    Measured {
        candidates: report.candidates.len(),
        wall,
        cpu,
    }
}

/// 10,000 issues in the candidate states, with the mix a real backlog has: priorities,
/// a few labels, opt-outs, needs-attention, and blockers.
fn world() -> World {
    let mut world = World::standard();
    let states = ["Todo", "Todo", "Todo", "In Progress", "In Review"];
    for n in 1..=ISSUES {
        let identifier = format!("ABC-{n}");
        let mut issue = FakeIssue::new(&identifier, states[n % states.len()])
            .priority((n % 5) as f64)
            .created(&format!(
                "2025-{:02}-{:02}T{:02}:{:02}:00.000Z",
                1 + n % 12,
                1 + n % 28,
                n % 24,
                n % 60
            ));
        issue.title = format!("Backlog item {n}: make the thing handle case {n}");
        issue.description = Some("A paragraph of description. ".repeat(8));
        issue.labels = match n % 20 {
            0 => vec!["maestro:manual-only".into()],
            1 => vec!["maestro:needs-attention".into(), "Bug".into()],
            _ => vec!["Bug".into(), format!("area-{}", n % 7)],
        };
        if n % 10 == 0 && n > 1 {
            issue.blocked_by.push(format!("id-ABC-{}", n - 1));
        }
        world.issues.push(issue);
    }
    world
}

fn settings(api_url: &str) -> settings::Settings {
    let config_text = format!(
        "id = \"bench\"\nrepo_root = \"/srv/bench\"\n[tracker]\nproject_slug = \"{SLUG_ID}\"\napi_key_env_var = \"LINEAR_API_KEY\"\napi_url = \"{api_url}\"\n"
    );
    let config = config::parse(Path::new("/srv/bench/maestro.toml"), &config_text, None)
        .expect("bench config");
    let workflow = workflow::parse(
        Path::new("/srv/bench/WORKFLOW.md"),
        "+++\nversion = 1\n[execution]\nmax_concurrent_agents = 4\n+++\nBench.\n",
        Path::new("/srv/bench"),
    )
    .expect("bench workflow");
    settings::combine(config, workflow).expect("bench settings")
}

/// CPU time of the calling thread, from /proc/thread-self/schedstat (nanoseconds on CPU).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    Some(line["VmHWM:".len()..].trim().to_string())
}
