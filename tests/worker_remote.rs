//! The SSH worker end to end: the real `maestro` (daemon and `run --once`), real sshd hosts on
//! loopback, the real codex on each host with the scripted model, fake Linear and GitHub, real
//! git. Each host is its own sshd whose sessions get the world's `CODEX_HOME` and git config
//! (the host's own codex login and git setup); codex is `[agent] command`'s absolute path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use maestro::mock_model::{Route, Step};
use maestro::workspace::record::{ErrorClass, RunStatus};
use serde_json::{Value, json};

use crate::support::fake_linear::{API_KEY, FakeIssue};
use crate::support::run_world::{
    DEFAULT_FRONT_MATTER, GITHUB_TOKEN, RUN_DEADLINE, RunWorld, RunWorldBuilder, handoff_steps,
    summary_line, wait_until,
};
use crate::support::sshd::{HostSpec, SshWorld, descendants};
use crate::{codex_or_skip, sshd_or_skip};

/// A run world whose lanes run on ssh hosts.
struct RemoteWorld {
    run: RunWorld,
    ssh: SshWorld,
}

/// Builds the world, starts one sshd per host (`refusing` ones listen nowhere) and adds
/// `[worker]` to maestro.toml: every host with its own root, `cap` lanes per host.
fn remote_world(
    builder: RunWorldBuilder,
    sshd: &Path,
    hosts: &[(&str, bool)],
    cap: u32,
) -> RemoteWorld {
    let run = builder.build();
    let specs: Vec<HostSpec> = hosts
        .iter()
        .map(|(alias, refusing)| {
            let spec = HostSpec::new(alias)
                .env("CODEX_HOME", run.codex_home.to_str().unwrap())
                .env("GIT_CONFIG_GLOBAL", run.gitconfig.to_str().unwrap())
                .env("GIT_CONFIG_NOSYSTEM", "1");
            if *refusing { spec.refusing() } else { spec }
        })
        .collect();
    let ssh = SshWorld::start(sshd, run.dir.path(), &specs);
    let names: Vec<String> = hosts
        .iter()
        .map(|(alias, _)| format!("\"{alias}\""))
        .collect();
    let mut worker = format!(
        "\n[worker]\nssh_hosts = [{}]\nmax_concurrent_agents_per_host = {cap}\nworkspace_root = \"{}\"\nssh_command = \"{}\"\n\n[worker.workspace_roots]\n",
        names.join(", "),
        ssh.hosts[0].root.display(),
        ssh.ssh_command(),
    );
    for host in &ssh.hosts[1..] {
        worker.push_str(&format!(
            "\"{}\" = \"{}\"\n",
            host.alias,
            host.root.display()
        ));
    }
    let mut config = std::fs::read_to_string(&run.config).unwrap();
    config.push_str(&worker);
    std::fs::write(&run.config, config).unwrap();
    RemoteWorld { run, ssh }
}

/// A world with issue ABC-1 whose agent hands it off with PR 1 (one route, any attempt).
fn one_handoff(name: &str, codex: &Path) -> RunWorldBuilder {
    RunWorld::builder(name, codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .routes(vec![route(
            "ABC-1",
            None,
            handoff_steps(&branch("ABC-1"), 1),
        )])
}

/// The summary line of a run's `output`, which must contain `wanted` (else the test fails with
/// the line and the run's log).
fn expect_outcome(output: &std::process::Output, wanted: &str) -> String {
    let line = summary_line(output);
    assert!(
        line.contains(wanted),
        "{line}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    line
}

fn branch(identifier: &str) -> String {
    format!("x/demo-{}", identifier.to_lowercase())
}

/// The routed conversation of one issue's attempt.
fn route(identifier: &str, attempt: Option<u32>, steps: Vec<Step>) -> Route {
    let mut markers = vec![format!("# {identifier}: ")];
    if let Some(attempt) = attempt {
        markers.push(format!("Attempt: {attempt} of"));
    }
    Route { markers, steps }
}

/// Codex processes running below host `alias`'s sshd right now.
fn agents_on(ssh: &SshWorld, alias: &str) -> usize {
    ssh.remote_processes(alias)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "codex")
        })
        .count()
}

/// Live processes whose working directory is inside `dir`.
fn working_in(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
            && crate::support::procs::is_alive(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

fn status_json(world: &RunWorld) -> Value {
    let output = world.command(&["status", "--json"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Two hosts with a cap of one lane each and four issues: the daemon never runs more than one
/// agent on a host, uses both, and hands all four off, each exactly once; `status` names the
/// host of every run and both hosts' health.
#[test]
fn two_hosts_with_a_cap_of_one_hand_off_four_issues() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let identifiers = ["ABC-1", "ABC-2", "ABC-3", "ABC-4"];
    let builder = RunWorld::builder("remote-four", &codex)
        .front_matter(
            "version = 1\n\n[execution]\nmax_concurrent_agents = 4\nmax_attempts = 1\nvalidation_commands = [\"test -f feature.txt\"]\nvalidation_timeout_ms = 60000\n",
        )
        .issues(
            identifiers
                .iter()
                .map(|identifier| FakeIssue::new(identifier, "Todo"))
                .collect(),
        )
        .routes(
            identifiers
                .iter()
                .enumerate()
                .map(|(index, identifier)| {
                    route(identifier, None, handoff_steps(&branch(identifier), index as u64 + 1))
                })
                .collect(),
        );
    let world = remote_world(builder, &sshd, &[("host-a", false), ("host-b", false)], 1);
    for (index, identifier) in identifiers.iter().enumerate() {
        world.run.open_pull(index as u64 + 1, &branch(identifier));
    }
    let daemon = crate::support::run_world::Background::start(world.run.command(&[
        "daemon",
        "--poll-interval-s",
        "1",
    ]));
    let stop = AtomicBool::new(false);
    let most = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut most: BTreeMap<&str, usize> = BTreeMap::new();
            while !stop.load(Ordering::SeqCst) {
                for alias in ["host-a", "host-b"] {
                    let now = agents_on(&world.ssh, alias);
                    let seen = most.entry(alias).or_default();
                    *seen = (*seen).max(now);
                }
                // The sampling period: each sample is the observation, so this is the input.
                crate::support::pause(Duration::from_millis(10));
            }
            most
        });
        let handed_off = wait_until(Duration::from_secs(400), || {
            world
                .run
                .runs()
                .iter()
                .filter(|run| run.status == RunStatus::Handoff)
                .count()
                == identifiers.len()
        });
        stop.store(true, Ordering::SeqCst);
        let most = sampler.join().unwrap();
        assert!(handed_off, "runs: {:#?}", world.run.runs());
        most
    });
    daemon.signal(libc::SIGTERM);
    let output = daemon.finish(Duration::from_secs(60));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        most,
        BTreeMap::from([("host-a", 1), ("host-b", 1)]),
        "one agent at a time on each host, and the sampler saw each host's"
    );
    let runs = world.run.runs();
    assert_eq!(
        runs.len(),
        identifiers.len(),
        "no issue ran twice: {runs:#?}"
    );
    let hosts: BTreeSet<String> = runs.iter().filter_map(|run| run.host.clone()).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["host-a".to_string(), "host-b".to_string()]),
        "both hosts used"
    );
    for run in &runs {
        let host = run.host.as_deref().unwrap();
        assert_eq!(
            run.workspace_path,
            format!("{host}:<workspace_root>/{}", run.issue_identifier)
        );
        let lane = world.ssh.host(host).root.join(&run.issue_identifier);
        assert!(lane.join("feature.txt").is_file(), "the lane is on {host}");
        assert_eq!(
            world
                .run
                .comments(&run.issue_identifier)
                .iter()
                .filter(|comment| comment.contains("Maestro: ready for review"))
                .count(),
            1,
            "one outcome for {}",
            run.issue_identifier
        );
        assert!(
            world
                .run
                .comments(&run.issue_identifier)
                .iter()
                .any(|c| c.contains(host)),
            "the comments name the host"
        );
    }
    // Nothing of Maestro's was written on the controller for the lanes: they live on hosts.
    assert!(!world.run.workspace_root.join("ABC-1").exists());
    let status = status_json(&world.run);
    let recent = status["recent"].as_array().unwrap();
    assert_eq!(recent.len(), identifiers.len());
    for run in recent {
        let host = run["host"].as_str().expect("status names the host");
        assert!(host == "host-a" || host == "host-b", "{run}");
    }
    let health: Vec<(&str, &str)> = status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| {
            (
                host["host"].as_str().unwrap(),
                host["health"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(health, [("host-a", "up"), ("host-b", "up")]);
    let text = world.run.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("HOSTS (2)") && text.contains("host host-a"),
        "{text}"
    );
}

/// A host that refuses connections is marked down and swapped for the other host within the
/// same attempt, before anything ran on it: no duplicate run, no local fallback, and the next
/// attempt never tries the down host; `status` shows it down.
#[test]
fn a_refusing_host_shrinks_capacity_and_the_work_goes_to_the_other_host() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let builder = RunWorld::builder("remote-refusing", &codex)
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
        ])
        .routes(vec![
            route("ABC-1", None, handoff_steps(&branch("ABC-1"), 1)),
            route("ABC-2", None, handoff_steps(&branch("ABC-2"), 2)),
        ]);
    let world = remote_world(builder, &sshd, &[("host-down", true), ("host-b", false)], 1);
    world.run.open_pull(1, &branch("ABC-1"));
    world.run.open_pull(2, &branch("ABC-2"));
    for expected in ["ABC-1", "ABC-2"] {
        let output = world.run.run_once();
        let line = summary_line(&output);
        assert!(
            line.contains(&format!("issue={expected}")) && line.contains("outcome=handoff"),
            "{line}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        if expected == "ABC-1" {
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("host marked down host=host-down"),
                "{stderr}"
            );
            assert!(stderr.contains("trying another"), "{stderr}");
        }
    }
    let runs = world.run.runs();
    assert_eq!(runs.len(), 2, "one run per issue: {runs:#?}");
    assert!(runs.iter().all(|run| run.host.as_deref() == Some("host-b")));
    assert!(
        !world.run.workspace_root.join("ABC-1").exists(),
        "never local"
    );
    // The host's health as the runs left it. `status` shows it `down` only until its backoff
    // (10 s) has passed, which on a loaded machine can be before this line runs: what is
    // checked is what does not expire — the failures, the error, and a backoff that was set.
    let status = status_json(&world.run);
    let down = &status["hosts"][0];
    assert_eq!(down["host"], "host-down");
    assert!(down["failures"].as_u64() >= Some(1), "{status}");
    assert!(
        down["last_error"]
            .as_str()
            .unwrap()
            .contains("Connection refused")
    );
    let health = maestro::worker::health::load(&world.run.layout(), "host-down");
    assert!(health.down_until_ms > 0, "{health:?}");
    if health.down_until_ms > maestro::clock::now_ms() {
        assert_eq!(down["health"], "down", "{status}");
    }
}

/// The host's sshd is killed mid-turn: the attempt ends `agent_disconnected` (a retry), nothing
/// of it is left running on the host, and the retry is a new attempt — on the other host, since
/// the first is down. While the agent ran, no secret value was in any command line or
/// environment on the host (nor in the local ssh client's).
#[test]
fn a_killed_sshd_ends_the_attempt_as_disconnected_and_the_retry_is_a_new_attempt() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let wait = "touch agent-waiting; while [ ! -f release ]; do sleep 0.05; done; sleep 3177";
    let builder = RunWorld::builder("remote-killed", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .routes(vec![
            route(
                "ABC-1",
                Some(1),
                vec![
                    Step::tool_call(
                        "call_claim",
                        "issue_transition",
                        json!({"state": "In Progress"}),
                    ),
                    Step::exec_command("call_wait", wait),
                    Step::message("never reached"),
                ],
            ),
            route("ABC-1", Some(2), handoff_steps(&branch("ABC-1"), 1)),
        ]);
    let mut world = remote_world(builder, &sshd, &[("host-a", false), ("host-b", false)], 1);
    world.run.open_pull(1, &branch("ABC-1"));
    let lane_a: PathBuf = world.ssh.host("host-a").root.join("ABC-1");
    let running = world.run.spawn_run_once();
    assert!(
        wait_until(RUN_DEADLINE, || lane_a.join("agent-waiting").exists()),
        "the agent started on host-a"
    );
    // No secret anywhere on the host, nor in the ssh client that carries the session.
    let mut inspected = 0;
    let local_ssh: Vec<u32> = descendants(running.pid())
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "ssh")
        })
        .collect();
    assert!(
        !local_ssh.is_empty(),
        "the session runs through a local ssh client"
    );
    for pid in world
        .ssh
        .remote_processes("host-a")
        .into_iter()
        .chain(local_ssh)
    {
        for file in ["environ", "cmdline"] {
            let Ok(bytes) = std::fs::read(format!("/proc/{pid}/{file}")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            inspected += 1;
            assert!(
                !text.contains(API_KEY) && !text.contains(GITHUB_TOKEN),
                "a secret in /proc/{pid}/{file}"
            );
        }
    }
    assert!(inspected > 4, "the host's processes were read");
    world.ssh.kill_host("host-a");
    let output = running.finish(RUN_DEADLINE);
    expect_outcome(&output, "outcome=retry_scheduled error=agent_disconnected");
    let left = {
        let mut left = working_in(&lane_a);
        let _ = wait_until(Duration::from_secs(20), || {
            left = working_in(&lane_a);
            left.is_empty()
        });
        left
    };
    assert!(left.is_empty(), "left running on host-a: {left:?}");
    let first = world.run.only_run();
    assert_eq!(first.attempt, 1);
    assert_eq!(first.host.as_deref(), Some("host-a"));
    assert_eq!(first.error_class, Some(ErrorClass::AgentDisconnected));

    let output = world.run.run_once();
    expect_outcome(&output, "outcome=handoff");
    let runs = world.run.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let second = runs.iter().find(|run| run.run_id != first.run_id).unwrap();
    assert_eq!(second.attempt, 2, "a new attempt");
    assert_eq!(
        second.host.as_deref(),
        Some("host-b"),
        "the down host is not retried"
    );
}

/// Containment on the host: a lane that is a symlink out of the host's workspace root is
/// refused as a policy violation, and nothing runs through it.
#[test]
fn a_symlinked_lane_on_the_host_is_refused() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let builder = one_handoff("remote-symlink", &codex);
    let world = remote_world(builder, &sshd, &[("host-a", false)], 1);
    let outside = world.run.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, world.ssh.host("host-a").root.join("ABC-1")).unwrap();
    let output = world.run.run_once();
    expect_outcome(&output, "outcome=human_required error=policy_violation");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing ran there"
    );
    let run = world.run.only_run();
    assert!(
        run.error_message
            .as_deref()
            .unwrap_or("")
            .contains("symlink"),
        "{run:#?}"
    );
    assert!(
        world.run.model_calls().is_empty(),
        "the agent never started"
    );
}

/// Cleanup happens on the right machine: when the issue of a lane on a host becomes terminal,
/// the daemon's startup sweep removes that lane on that host (its `before_remove` running there)
/// and forgets its creation marker; the controller never had a lane to remove.
#[test]
fn a_terminal_issues_lane_is_removed_on_its_host() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let builder = RunWorld::builder("remote-remove", &codex)
        .front_matter(
            "version = 1\n\n[execution]\nmax_attempts = 1\nvalidation_commands = [\"test -f feature.txt\"]\nvalidation_timeout_ms = 60000\n\n[hooks]\nbefore_remove = \"echo removed-on-host > ../before-remove.txt\"\n",
        )
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .routes(vec![route("ABC-1", None, handoff_steps(&branch("ABC-1"), 1))]);
    let world = remote_world(builder, &sshd, &[("host-a", false), ("host-b", false)], 1);
    world.run.open_pull(1, &branch("ABC-1"));
    let output = world.run.run_once();
    assert!(summary_line(&output).contains("outcome=handoff"));
    let host = world.run.only_run().host.unwrap();
    let root = world.ssh.host(&host).root.clone();
    assert!(root.join("ABC-1").is_dir());
    let marker = world.run.layout().remote_lane_marker_file(&host, "ABC-1");
    assert!(marker.is_file());
    world.run.linear.edit(|linear| {
        for issue in &mut linear.issues {
            if issue.identifier == "ABC-1" {
                issue.state = "Done".to_string();
            }
        }
    });
    let daemon = crate::support::run_world::Background::start(world.run.command(&[
        "daemon",
        "--poll-interval-s",
        "1",
    ]));
    let removed = wait_until(Duration::from_secs(60), || {
        !root.join("ABC-1").exists() && !marker.exists()
    });
    daemon.signal(libc::SIGTERM);
    let output = daemon.finish(Duration::from_secs(60));
    assert!(removed, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        std::fs::read_to_string(root.join("before-remove.txt"))
            .unwrap()
            .trim(),
        "removed-on-host"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("remote lane removed host={host} lane=ABC-1")),
        "{stderr}"
    );
}

/// Every host refuses: the attempt is not counted and writes nothing to the tracker (it waits
/// for a host, `interrupted`), it never falls back to a local lane, and while the host is in its
/// backoff the next run takes nothing at all.
#[test]
fn with_every_host_down_the_attempt_waits_and_never_runs_locally() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let builder = one_handoff("remote-all-down", &codex);
    let world = remote_world(builder, &sshd, &[("host-down", true)], 1);
    let output = world.run.run_once();
    expect_outcome(&output, "outcome=interrupted");
    let run = world.run.only_run();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(
        run.error_message
            .as_deref()
            .unwrap_or("")
            .contains("no ssh host is up"),
        "{run:#?}"
    );
    assert_eq!(
        world.run.issue_state("ABC-1").unwrap().attempts_used,
        0,
        "not counted"
    );
    assert!(
        world.run.comments("ABC-1").is_empty(),
        "nothing written to the tracker"
    );
    assert!(world.run.model_calls().is_empty(), "no agent anywhere");
    assert!(
        !world.run.workspace_root.join("ABC-1").exists(),
        "never a local lane"
    );
    // The run marked the host down for 10 s. On a loaded machine that can pass before the next
    // run starts, and the next run would rightly try the host again: keep it down for this one.
    let layout = world.run.layout();
    let health = maestro::worker::health::load(&layout, "host-down");
    assert!(health.failures >= 1, "{health:?}");
    if health.down_until_ms < maestro::clock::now_ms() + 5_000 {
        maestro::worker::health::record_failure(
            &layout,
            "host-down",
            "Connection refused (kept down by the test)",
            maestro::clock::now_ms(),
        );
    }
    let output = world.run.run_once();
    let line = summary_line(&output);
    assert!(
        line.contains(
            "outcome=nothing_to_do reason=\"all 1 ssh hosts are down or at their per-host cap\""
        ),
        "{line}"
    );
    assert_eq!(
        world.run.runs().len(),
        1,
        "nothing claimed while the host is down"
    );
}

/// A retry prefers the host its last attempt ran on while that host is up with room, even when
/// another host comes first in configuration order: attempt 1 runs on host-b (host-a's only
/// slot is held elsewhere), attempt 2 finds host-a free and still goes to host-b, into the same
/// lane, whose earlier work is there.
#[test]
fn a_retry_goes_back_to_the_host_of_the_last_attempt() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let mut second = vec![Step::exec_command("call_look", "cat work.txt")];
    second.extend(handoff_steps(&branch("ABC-1"), 1));
    let builder = RunWorld::builder("remote-prefer", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .routes(vec![
            route(
                "ABC-1",
                Some(1),
                vec![
                    Step::exec_command("call_draft", "echo draft > work.txt"),
                    Step::http_error(500, "the model is overloaded"),
                ],
            ),
            route("ABC-1", Some(2), second),
        ]);
    let world = remote_world(builder, &sshd, &[("host-a", false), ("host-b", false)], 1);
    world.run.open_pull(1, &branch("ABC-1"));
    let layout = maestro::workspace::Layout::new(&world.run.workspace_root);
    let held = maestro::workspace::lock::acquire_host_slot(
        &layout,
        &maestro::worker::host_key("host-a"),
        1,
    )
    .unwrap()
    .expect("host-a's only slot is free before the run");
    let output = world.run.run_once();
    expect_outcome(&output, "outcome=retry_scheduled error=codex_turn_failed");
    let first = world.run.only_run();
    assert_eq!(first.host.as_deref(), Some("host-b"), "host-a was full");
    drop(held);

    let output = world.run.run_once();
    expect_outcome(&output, "outcome=handoff");
    let runs = world.run.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let retry = runs.iter().find(|run| run.run_id != first.run_id).unwrap();
    assert_eq!(retry.attempt, 2);
    assert_eq!(
        retry.host.as_deref(),
        Some("host-b"),
        "the retry prefers its last host over host-a, free and first in order"
    );
    assert!(
        world
            .ssh
            .host("host-b")
            .root
            .join("ABC-1")
            .join("work.txt")
            .is_file(),
        "the same lane, with attempt 1's work"
    );
    assert!(
        !world.ssh.host("host-a").root.join("ABC-1").exists(),
        "nothing ran on host-a"
    );
}

/// read_first in a lane on a host, under the rules of a local lane: attempt 1 reads the real
/// files there; the agent then swaps one for a symlink out of the lane, one for a FIFO and grows
/// one over the size cap, and attempt 2 skips each with the local lane's reason, tells the
/// agent, and runs.
#[test]
fn read_first_files_are_read_from_the_lane_on_the_host_under_the_local_rules() {
    let codex = codex_or_skip!();
    let sshd = sshd_or_skip!();
    let builder = RunWorld::builder("remote-read-first", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .file("NOTES.md", "notes on the host\n")
        .file("BIG.md", "small for now\n")
        .front_matter(&format!(
            "{DEFAULT_FRONT_MATTER}\n[context]\nread_first = [\"README.md\", \"NOTES.md\", \"BIG.md\"]\n"
        ))
        .routes(vec![
            route(
                "ABC-1",
                Some(1),
                vec![
                    Step::exec_command(
                        "call_swap",
                        "ln -sf /etc/hostname README.md && mv NOTES.md old.md && mkfifo NOTES.md && head -c 70000 /dev/zero | tr '\\0' x > BIG.md && ls -l",
                    ),
                    Step::http_error(500, "the model is overloaded"),
                ],
            ),
            route("ABC-1", Some(2), vec![Step::message("Nothing more to do.")]),
        ]);
    let world = remote_world(builder, &sshd, &[("host-a", false)], 1);
    let first = world.run.run_once();
    expect_outcome(&first, "outcome=retry_scheduled");
    assert!(world.run.tool_output("call_swap").contains("prw"));
    let first_prompt = world.run.model_calls()[0].body.clone();
    assert!(
        first_prompt.contains("## Context: README.md\\n\\nwidgets")
            && first_prompt.contains("## Context: NOTES.md\\n\\nnotes on the host"),
        "attempt 1 read the lane's files on the host: {first_prompt}"
    );
    let calls_in_first = world.run.model_calls().len();

    // Bounded by the world's run deadline: a blocking read of the FIFO would hang here.
    let second = world.run.run_once();
    expect_outcome(&second, "outcome=retry_scheduled");
    let runs = world.run.runs();
    assert_eq!(runs.len(), 2);
    let skip = |path: &str, reason: &str| maestro::workspace::record::ContextSkip {
        path: path.into(),
        reason: reason.into(),
    };
    assert!(runs[0].context_skipped.is_empty(), "{:?}", runs[0]);
    assert_eq!(
        runs[1].context_skipped,
        [
            skip("README.md", "leads outside the lane (through a symlink)"),
            skip("NOTES.md", "is not a regular file"),
            skip(
                "BIG.md",
                "is 70000 bytes, over the 65536-byte limit per read_first file"
            ),
        ]
    );
    assert_eq!(runs[1].host.as_deref(), Some("host-a"));
    let second_prompt = &world.run.model_calls()[calls_in_first].body;
    assert!(
        second_prompt.contains(
            "## Context: README.md\\n\\n(Maestro skipped this file: it leads outside the lane (through a symlink)."
        ),
        "the agent is told the file was skipped"
    );
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(
        hostname.trim().is_empty()
            || !second_prompt.contains(&format!("\\n\\n{}", hostname.trim())),
        "the symlink's target is not read"
    );
}
