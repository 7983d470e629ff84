//! The SSH worker's plumbing against real OpenSSH servers on loopback (`support::sshd`): the
//! test servers themselves, the ssh command line, remote execution, host health and slots.

use crate::sshd_or_skip;
use crate::support::dir::TestDir;
use crate::support::sshd::{HostSpec, SshWorld};

/// The test servers are what the worker tests rely on: two hosts answer as the current user
/// with their own session environment, a refusing host refuses, and a killed host stops
/// answering.
#[test]
fn test_sshd_serves_two_hosts_and_a_refusing_one() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("sshd-world");
    let mut world = SshWorld::start(
        &sshd,
        dir.path(),
        &[
            HostSpec::new("host-a").env("MAESTRO_TEST_HOST", "a"),
            HostSpec::new("host-b").env("MAESTRO_TEST_HOST", "b"),
            HostSpec::new("host-down").refusing(),
        ],
    );
    for alias in ["host-a", "host-b"] {
        let (code, stdout, stderr) = world.ssh(alias, "echo \"host=$MAESTRO_TEST_HOST\"");
        assert_eq!(
            code,
            Some(0),
            "{alias}: {stderr}\n{}",
            world.host(alias).log()
        );
        assert_eq!(stdout.trim(), format!("host={}", &alias[5..]));
    }
    assert_ne!(world.host("host-a").root, world.host("host-b").root);
    let (code, _, stderr) = world.ssh("host-down", "true");
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    world.kill_host("host-a");
    let (code, _, _) = world.ssh("host-a", "true");
    assert_eq!(code, Some(255));
    world.restart_host("host-a");
    let (code, _, stderr) = world.ssh("host-a", "true");
    assert_eq!(code, Some(0), "{stderr}");
}

/// The host key is checked strictly: a server presenting another key is refused.
#[test]
fn test_sshd_host_key_is_checked_strictly() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("sshd-hostkey");
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let known_hosts = dir.join("ssh/known_hosts");
    let other = dir.join("ssh/other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(
        &known_hosts,
        format!("maestro-test-sshd {}", other_key.trim()),
    )
    .unwrap();
    let (code, _, stderr) = world.ssh("host-a", "true");
    assert_eq!(code, Some(255), "{stderr}");
    assert!(
        stderr.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
}

use std::time::{Duration, Instant};

use maestro::worker::assign;
use maestro::worker::health;
use maestro::worker::ssh::Ran;
use maestro::worker::{HostConfig, Remote, WorkerConfig};
use maestro::workspace::Layout;

/// The worker config for the world's hosts, each with its own remote root.
fn worker_config(world: &SshWorld, cap: Option<u32>) -> WorkerConfig {
    WorkerConfig {
        hosts: world
            .hosts
            .iter()
            .map(|host| HostConfig {
                name: host.alias.clone(),
                workspace_root: host.root.display().to_string(),
            })
            .collect(),
        max_concurrent_agents_per_host: cap,
        ssh_command: vec![
            "ssh".into(),
            "-F".into(),
            world.ssh_config.display().to_string(),
        ],
    }
}

fn remote(world: &SshWorld, alias: &str) -> Remote {
    let worker = worker_config(world, None);
    let host = worker.host(alias).unwrap().clone();
    Remote::new(&worker, &host, world.ssh_config.parent().unwrap())
}

/// Waits (bounded) until nothing runs below host `alias`'s sshd any more.
fn wait_no_remote_processes(world: &SshWorld, alias: &str) -> Vec<u32> {
    let mut left = Vec::new();
    crate::support::run_world::wait_until(Duration::from_secs(20), || {
        // The listener's own per-connection servers close with their connections.
        left = world
            .remote_processes(alias)
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| !comm.trim().starts_with("sshd"))
            })
            .collect();
        left.is_empty()
    });
    left
}

/// A remote command runs through the wrapper with its own exit code and output; its own exit
/// 255 is not mistaken for ssh's; a quoted argument reaches the host unchanged.
#[test]
fn remote_commands_run_with_their_own_exit_codes() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("remote-run");
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let host = remote(&world, "host-a");
    let tricky = "it's $(echo not run) `id` \"q\"";
    let script = format!(
        "printf '%s\\n' {}; exit 3",
        maestro::worker::ssh::quote(tricky)
    );
    match host
        .run(None, &script, Duration::from_secs(30), None)
        .unwrap()
    {
        Ran::Done(outcome) => {
            assert_eq!(outcome.exit_code, Some(3), "{outcome:?}");
            assert_eq!(outcome.output_tail, format!("{tricky}\n"));
        }
        other => panic!("{other:?}"),
    }
    match host
        .run(None, "exit 255", Duration::from_secs(30), None)
        .unwrap()
    {
        Ran::Done(outcome) => assert_eq!(outcome.exit_code, Some(255)),
        other => panic!("a command's own 255 is not an ssh failure: {other:?}"),
    }
}

/// A host nobody answers on is an ssh failure before anything ran, and its health backoff
/// takes it out of assignment; the other host takes the work.
/// `[worker] ssh_hosts = ["user@host:port"]`, the issue's own example form: ssh reads a colon
/// in a plain destination as part of the host name, so Maestro passes it as an `ssh://` URI
/// and the command runs on that port.
#[test]
fn a_host_given_as_user_at_host_colon_port_is_reached_on_that_port() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("remote-port");
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let name = format!("{}@127.0.0.1:{}", world.user(), world.host("host-a").port);
    let mut worker = worker_config(&world, None);
    worker.hosts[0].name = name.clone();
    let host = worker.hosts[0].clone();
    let remote = Remote::new(&worker, &host, world.ssh_config.parent().unwrap());
    match remote
        .run(None, "echo reached", Duration::from_secs(30), None)
        .unwrap()
    {
        Ran::Done(outcome) => {
            assert!(outcome.success(), "{outcome:?}");
            assert_eq!(outcome.output_tail.trim(), "reached");
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_refusing_host_is_marked_down_and_skipped() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("remote-refusing");
    let world = SshWorld::start(
        &sshd,
        dir.path(),
        &[
            HostSpec::new("host-down").refusing(),
            HostSpec::new("host-b"),
        ],
    );
    let layout = Layout::new(&dir.join("controller"));
    let down = remote(&world, "host-down");
    let Ran::Ssh { started, detail } = down
        .run(None, "true", Duration::from_secs(30), None)
        .unwrap()
    else {
        panic!("a refusing host must be an ssh failure");
    };
    assert!(!started);
    assert!(detail.contains("Connection refused"), "{detail}");
    let now = maestro::clock::now_ms();
    health::record_failure(&layout, "host-down", &detail, now);
    let worker = worker_config(&world, Some(1));
    let first = assign::assign(&layout, &worker, 1, Some("host-down"), &[], now)
        .unwrap()
        .expect("host-b has room");
    assert_eq!(first.host.name, "host-b", "the down host is never tried");
    assert!(
        assign::assign(&layout, &worker, 1, None, &[], now)
            .unwrap()
            .is_none(),
        "host-b is full and host-down is down: no assignment, no local fallback"
    );
    assert!(!assign::has_capacity(&layout, &worker, 1, now));
    drop(first);
    assert!(assign::has_capacity(&layout, &worker, 1, now));
}

/// Per-host caps hold across assignments: two hosts with a cap of one take one lane each.
#[test]
fn per_host_slots_spread_lanes_over_hosts() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("remote-slots");
    let world = SshWorld::start(
        &sshd,
        dir.path(),
        &[HostSpec::new("host-a"), HostSpec::new("host-b")],
    );
    let layout = Layout::new(&dir.join("controller"));
    let worker = worker_config(&world, Some(1));
    let now = maestro::clock::now_ms();
    let first = assign::assign(&layout, &worker, 1, Some("host-b"), &[], now)
        .unwrap()
        .unwrap();
    assert_eq!(first.host.name, "host-b", "the preferred host first");
    let second = assign::assign(&layout, &worker, 1, Some("host-b"), &[], now)
        .unwrap()
        .unwrap();
    assert_eq!(second.host.name, "host-a", "the full host is passed over");
    assert!(
        assign::assign(&layout, &worker, 1, None, &[], now)
            .unwrap()
            .is_none()
    );
}

/// The timeout bounds a remote command, and killing its ssh client ends it on the host too:
/// nothing it started is left running there.
#[test]
fn a_timed_out_remote_command_leaves_nothing_on_the_host() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("remote-timeout");
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let host = remote(&world, "host-a");
    let started = Instant::now();
    let ran = host
        .run(
            None,
            "sleep 3170 & setsid sleep 3171 & echo started; sleep 3172",
            Duration::from_secs(2),
            None,
        )
        .unwrap();
    let Ran::Done(outcome) = ran else {
        panic!("{ran:?}");
    };
    assert!(outcome.timed_out, "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let left = wait_no_remote_processes(&world, "host-a");
    assert!(left.is_empty(), "left on the host: {left:?}");
    // The one that left the session was reparented away from sshd: found by its arguments.
    let escaped = wait_gone(&["sleep 3170", "sleep 3171", "sleep 3172"]);
    assert!(escaped.is_empty(), "still running: {escaped:?}");
}

/// Waits (bounded) until no process's command line is one of `commands`; returns the pids
/// still running otherwise.
fn wait_gone(commands: &[&str]) -> Vec<u32> {
    let mut running = Vec::new();
    crate::support::run_world::wait_until(Duration::from_secs(20), || {
        running.clear();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if commands.iter().any(|command| cmdline.trim() == *command)
                && crate::support::procs::is_alive(pid)
            {
                running.push(pid);
            }
        }
        running.is_empty()
    });
    running
}

const MINIMAL: &str = r#"
id = "demo"
repo_root = "/srv/demo"

[tracker]
api_key_env_var = "LINEAR_API_KEY"
"#;

fn parse_config(extra: &str) -> Result<maestro::config::ServiceConfig, maestro::config::Error> {
    maestro::config::parse(
        std::path::Path::new("/etc/maestro/maestro.toml"),
        &format!("{MINIMAL}\n{extra}"),
        None,
    )
}

/// `[worker]` as the operator writes it: hosts with a shared root and one override, the cap,
/// the ssh command; without hosts lanes stay local.
#[test]
fn worker_config_reads_hosts_roots_cap_and_ssh_command() {
    let config = parse_config(
        r#"
[worker]
ssh_hosts = ["build-1", "ci@build-2"]
max_concurrent_agents_per_host = 2
workspace_root = "/srv/maestro/lanes/"
ssh_command = "ssh -F /etc/maestro/ssh_config"

[worker.workspace_roots]
"ci@build-2" = "/data/lanes"
"#,
    )
    .unwrap();
    let worker = config.worker.expect("hosts configured");
    assert_eq!(worker.max_concurrent_agents_per_host, Some(2));
    assert_eq!(worker.ssh_command, ["ssh", "-F", "/etc/maestro/ssh_config"]);
    assert_eq!(
        worker.hosts,
        [
            HostConfig {
                name: "build-1".into(),
                workspace_root: "/srv/maestro/lanes".into()
            },
            HostConfig {
                name: "ci@build-2".into(),
                workspace_root: "/data/lanes".into()
            },
        ]
    );
    assert!(parse_config("").unwrap().worker.is_none());
    assert!(
        parse_config("[worker]\nssh_hosts = []\n")
            .unwrap()
            .worker
            .is_none()
    );
}

/// Every `[worker]` problem names its field and what to do.
#[test]
fn worker_config_problems_are_named() {
    let cases = [
        (
            "[worker]\nssh_hosts = [\"build-1\"]\n",
            "field `worker.workspace_root`: missing required key `workspace_root`",
        ),
        (
            "[worker]\nssh_hosts = [\"-oProxyCommand=sh\"]\nworkspace_root = \"/w\"\n",
            "field `worker.ssh_hosts[0]`: `-oProxyCommand=sh` starts with `-`",
        ),
        (
            "[worker]\nssh_hosts = [\"a\", \"a\"]\nworkspace_root = \"/w\"\n",
            "host `a` is listed twice",
        ),
        (
            "[worker]\nssh_hosts = [\"a\"]\nworkspace_root = \"lanes\"\n",
            "field `worker.workspace_root`: `lanes` is not an absolute path",
        ),
        (
            "[worker]\nssh_hosts = [\"a\"]\nworkspace_root = \"/w\"\nmax_concurrent_agents_per_host = 0\n",
            "field `worker.max_concurrent_agents_per_host`: must be a positive number",
        ),
        (
            "[worker]\nssh_hosts = [\"a\"]\nworkspace_root = \"/w\"\nssh_command = \"ssh -A\"\n",
            "field `worker.ssh_command`: `-A` is not allowed",
        ),
        (
            "[worker]\nssh_hosts = [\"a\"]\nworkspace_root = \"/w\"\n[worker.workspace_roots]\nb = \"/x\"\n",
            "field `worker.workspace_roots.b`: `b` is not in ssh_hosts",
        ),
        (
            "[worker]\nssh_host = [\"a\"]\n",
            "unknown key `ssh_host` in [worker]; did you mean `ssh_hosts`?",
        ),
    ];
    for (extra, expected) in cases {
        let message = parse_config(extra).unwrap_err().to_string();
        assert!(message.contains(expected), "{expected}\nnot in\n{message}");
    }
}
