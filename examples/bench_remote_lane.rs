//! Benchmark (not a test): what a lane on an ssh host costs the controller, and what an ssh
//! connection costs on loopback.
//!
//!     cargo build --release && cargo run --release --example bench_remote_lane [lanes]
//!
//! Starts a real `sshd` on 127.0.0.1 (the test helper's, with generated keys) standing in for
//! a build host, whose sessions see a `CODEX_HOME` pointing at the scripted mock model. Then
//! `lanes` (default 2) release `maestro run --once` processes run one issue each of a local
//! tracker project on that host, each agent parked in an `exec_command` until the benchmark has
//! measured. Measured, per running lane: threads, open descriptors and RSS of the `run --once`
//! process plus its ssh client(s), from /proc. Then the ssh connection setup time: `ssh true`
//! and one wrapped remote step (`worker::Remote::run`), 20 times each. Needs sshd
//! (`MAESTRO_SSHD_BIN` or `/usr/sbin/sshd`) and codex (`MAESTRO_CODEX_BIN` or PATH).

#[allow(dead_code, unused_macros)] // The benchmark uses a subset of the test helper.
#[path = "../tests/support/sshd.rs"]
mod sshd;

#[allow(dead_code)] // sshd.rs's ports; the benchmark needs no dead port itself.
#[path = "../tests/support/ports.rs"]
mod ports;

#[allow(dead_code)] // sshd.rs's process table.
#[path = "../tests/support/procs.rs"]
mod procs;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maestro::mock_model::{CodexConfig, MockModel, Route, Step};
use maestro::worker::{HostConfig, Remote, WorkerConfig};

fn main() {
    let lanes: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(2);
    let Some(sshd_bin) = sshd::sshd_bin() else {
        println!("sshd not found: install openssh-server (or set MAESTRO_SSHD_BIN)");
        return;
    };
    let Some(codex) = codex_bin() else {
        println!("codex not found: set MAESTRO_CODEX_BIN or put codex on PATH");
        return;
    };
    let maestro = release_binary();
    let dir = std::env::temp_dir().join(format!("maestro-bench-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");

    let identifiers: Vec<String> = (1..=lanes).map(|n| format!("BENCH-{n}")).collect();
    let park = "touch waiting; while [ ! -f release ]; do sleep 0.05; done";
    let mock = MockModel::start_routed(
        identifiers
            .iter()
            .map(|identifier| Route {
                markers: vec![format!("# {identifier}: ")],
                steps: vec![
                    Step::exec_command("call_park", park),
                    Step::message("Parked and released."),
                ],
            })
            .collect(),
    )
    .expect("mock model");
    let codex_home = dir.join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let mut codex_config = CodexConfig::new(&mock.base_url());
    codex_config.approval_policy = Some("never".into());
    codex_config.sandbox_mode = Some("danger-full-access".into());
    std::fs::write(codex_home.join("config.toml"), codex_config.to_toml()).unwrap();

    let world = sshd::SshWorld::start(
        &sshd_bin,
        &dir,
        &[sshd::HostSpec::new("bench-host").env("CODEX_HOME", codex_home.to_str().unwrap())],
    );
    let root = world.host("bench-host").root.clone();
    let config = project(&dir, &codex, &world, &identifiers);

    let mut runs: Vec<Child> = identifiers
        .iter()
        .map(|_| {
            Command::new(&maestro)
                .args(["run", "--once", "--config"])
                .arg(&config)
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run --once starts")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !identifiers
        .iter()
        .all(|identifier| root.join(identifier).join("waiting").exists())
    {
        assert!(
            Instant::now() < deadline,
            "the agents did not start on the host within 180 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the sessions settle (the turn is waiting on the parked command).
    std::thread::sleep(Duration::from_millis(500));
    println!("{lanes} lane(s) running on one ssh host (loopback), each agent parked mid-turn:");
    let mut totals = (0u64, 0u64, 0u64);
    for run in &runs {
        let pid = run.id();
        let clients: Vec<u32> = sshd::descendants(pid)
            .into_iter()
            .filter(|child| {
                std::fs::read_to_string(format!("/proc/{child}/comm"))
                    .is_ok_and(|comm| comm.trim() == "ssh")
            })
            .collect();
        let own = usage(pid);
        let mut lane = own;
        for client in &clients {
            let client = usage(*client);
            lane = (lane.0 + client.0, lane.1 + client.1, lane.2 + client.2);
        }
        println!(
            "  run --once pid {pid}: {} threads, {} fds, {:.1} MB RSS; + {} ssh client(s): lane total {} threads, {} fds, {:.1} MB RSS",
            own.0,
            own.1,
            own.2 as f64 / 1024.0,
            clients.len(),
            lane.0,
            lane.1,
            lane.2 as f64 / 1024.0
        );
        totals = (totals.0 + lane.0, totals.1 + lane.1, totals.2 + lane.2);
    }
    let n = lanes as f64;
    println!(
        "  per running lane on the controller: {:.1} threads (goal <= 8), {:.1} fds (goal <= 32), {:.1} MB RSS (goal <= 15)",
        totals.0 as f64 / n,
        totals.1 as f64 / n,
        totals.2 as f64 / 1024.0 / n
    );
    for identifier in &identifiers {
        std::fs::write(root.join(identifier).join("release"), "").unwrap();
    }
    for run in &mut runs {
        let deadline = Instant::now() + Duration::from_secs(120);
        while run.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = run.kill();
        let _ = run.wait();
    }

    let runs_dir = dir.join("controller/.maestro/runs");
    let (mut records, mut journals, mut count) = (0u64, 0u64, 0u64);
    for entry in std::fs::read_dir(&runs_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = entry.metadata().map_or(0, |meta| meta.len());
        if name.ends_with(".journal.jsonl") {
            journals += bytes;
        } else if name.ends_with(".json") && !name.starts_with('.') {
            records += bytes;
            count += 1;
        }
    }
    if let (Some(record), Some(journal)) = (records.checked_div(count), journals.checked_div(count))
    {
        println!(
            "  on the controller's disk per run (one short turn): record {record} bytes, journal {journal} bytes"
        );
    }

    let mut plain = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let status = Command::new("ssh")
            .arg("-F")
            .arg(&world.ssh_config)
            .args([
                "-o",
                "BatchMode=yes",
                "-T",
                "-n",
                "--",
                "bench-host",
                "true",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh runs");
        assert!(status.success());
        plain.push(started.elapsed());
    }
    let worker = WorkerConfig {
        hosts: vec![HostConfig {
            name: "bench-host".into(),
            workspace_root: root.display().to_string(),
        }],
        max_concurrent_agents_per_host: None,
        ssh_command: vec![
            "ssh".into(),
            "-F".into(),
            world.ssh_config.display().to_string(),
        ],
    };
    let remote = Remote::new(&worker, &worker.hosts[0], &dir);
    let mut wrapped = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let ran = remote
            .run(None, "true", Duration::from_secs(30), None)
            .expect("remote step");
        assert!(matches!(ran, maestro::worker::ssh::Ran::Done(ref done) if done.success()));
        wrapped.push(started.elapsed());
    }
    println!("ssh on loopback (ed25519 keys, 20 connections each):");
    println!("  `ssh host true`: {}", spread(&mut plain));
    println!(
        "  one wrapped remote step (worker::Remote::run): {}",
        spread(&mut wrapped)
    );
    drop(world);
    let _ = std::fs::remove_dir_all(&dir);
}

/// (threads, open descriptors, RSS in KiB) of `pid`.
fn usage(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count());
    (field("Threads:"), fds as u64, field("VmRSS:"))
}

/// `median X ms, min Y, max Z`.
fn spread(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms, min {:.1} ms, max {:.1} ms",
        ms(samples[samples.len() / 2]),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    )
}

/// Writes the project: a bare origin and a checkout, the local tracker's issues, WORKFLOW.md
/// and maestro.toml with the host under `[worker]`. Returns maestro.toml's path.
fn project(dir: &Path, codex: &Path, world: &sshd::SshWorld, identifiers: &[String]) -> PathBuf {
    let origin = dir.join("origin.git");
    let source = dir.join("source");
    std::fs::create_dir_all(&origin).unwrap();
    std::fs::create_dir_all(&source).unwrap();
    git(
        &origin,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    );
    git(&source, &["init", "--quiet", "--initial-branch=main"]);
    let states = "[tracker]\nprovider = \"local\"\nstartable_states = [\"Todo\"]\nterminal_states = [\"Done\"]\nin_progress_state = \"In Progress\"\nsuccess_state = \"In Review\"\nfailure_state = \"Todo\"\n";
    std::fs::write(
        source.join("WORKFLOW.md"),
        format!(
            "+++\nversion = 1\n{states}\n[execution]\nmax_attempts = 1\nmax_turns = 1\nmax_concurrent_agents = {}\n+++\n\nBenchmark lane.\n",
            identifiers.len()
        ),
    )
    .unwrap();
    git(&source, &["add", "-A"]);
    git(&source, &["commit", "--quiet", "-m", "initial"]);
    git(
        &source,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&source, &["push", "--quiet", "origin", "main"]);
    let issues = dir.join("issues");
    std::fs::create_dir_all(&issues).unwrap();
    std::fs::write(
        issues.join("team.toml"),
        "key = \"BENCH\"\nname = \"Bench\"\nlabels = [\"maestro:needs-attention\"]\n\n[[states]]\nname = \"Todo\"\ntype = \"unstarted\"\n\n[[states]]\nname = \"In Progress\"\ntype = \"started\"\n\n[[states]]\nname = \"In Review\"\ntype = \"started\"\n\n[[states]]\nname = \"Done\"\ntype = \"completed\"\n",
    )
    .unwrap();
    for identifier in identifiers {
        std::fs::write(
            issues.join(format!("{identifier}.md")),
            format!(
                "+++\nidentifier = \"{identifier}\"\ntitle = \"Bench {identifier}\"\nstate = \"Todo\"\ncreated = \"2026-01-01T00:00:00Z\"\n+++\n\nA parked lane.\n"
            ),
        )
        .unwrap();
    }
    let config = dir.join("maestro.toml");
    std::fs::write(
        &config,
        format!(
            "id = \"bench\"\nrepo_root = \"{}\"\nworkspace_root = \"{}\"\n\n[tracker]\nprovider = \"local\"\nproject_slug = \"bench\"\nissues_dir = \"{}\"\n\n[agent]\ncommand = \"{} app-server\"\nread_timeout_ms = 30000\nturn_idle_timeout_ms = 120000\n\n[worker]\nssh_hosts = [\"bench-host\"]\nworkspace_root = \"{}\"\nssh_command = \"{}\"\n",
            source.display(),
            dir.join("controller").display(),
            issues.display(),
            codex.display(),
            world.host("bench-host").root.display(),
            world.ssh_command(),
        ),
    )
    .unwrap();
    config
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.invalid")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed in {}", dir.display());
}

fn codex_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MAESTRO_CODEX_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("codex"))
        .find(|candidate| candidate.is_file())
}

/// `target/release/maestro`, which must be at least as new as the sources.
fn release_binary() -> PathBuf {
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/maestro");
    assert!(
        binary.is_file(),
        "{} is missing; run `cargo build --release` first",
        binary.display()
    );
    binary
}
