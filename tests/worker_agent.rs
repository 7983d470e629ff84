//! codex app-server on an ssh host over ssh stdio, against real sshd, the real codex and the
//! scripted mock model: the session, its readers and its tools stay in the controller; a
//! dropped connection ends the turn as a disconnect and leaves nothing on the host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro::app_server::{Session, SessionConfig, TurnEnd, TurnLimits};
use maestro::mock_model::{MockModel, Step};
use maestro::worker::{HostConfig, Place, Remote, WorkerConfig};
use maestro::workspace::lane::Lane;
use serde_json::json;

use crate::support::app_server::{RecordingObserver, RecordingTools, journal, tool};
use crate::support::codex::unattended;
use crate::support::dir::TestDir;
use crate::support::sshd::{HostSpec, SshWorld};
use crate::{codex_or_skip, sshd_or_skip};

/// A host whose sessions see the mock's codex config as their own `CODEX_HOME`, and a lane
/// directory on it.
struct AgentHost {
    dir: TestDir,
    world: SshWorld,
    place: Place,
    lane: Lane,
    codex: PathBuf,
}

fn agent_host(name: &str, codex: &Path, mock: &MockModel) -> Option<AgentHost> {
    let sshd = crate::support::sshd::require_sshd()?;
    let dir = TestDir::new(name);
    let home = dir.join("codex-home-a");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        unattended(&mock.base_url()).to_toml(),
    )
    .unwrap();
    let world = SshWorld::start(
        &sshd,
        dir.path(),
        &[HostSpec::new("host-a").env("CODEX_HOME", home.to_str().unwrap())],
    );
    let root = world.host("host-a").root.clone();
    std::fs::create_dir_all(root.join("ABC-1")).unwrap();
    let worker = WorkerConfig {
        hosts: vec![HostConfig {
            name: "host-a".into(),
            workspace_root: root.display().to_string(),
        }],
        max_concurrent_agents_per_host: None,
        ssh_command: vec![
            "ssh".into(),
            "-F".into(),
            world.ssh_config.display().to_string(),
        ],
    };
    let remote = Remote::new(&worker, &worker.hosts[0], dir.path());
    let lane = Lane {
        key: "ABC-1".into(),
        path: root.join("ABC-1").canonicalize().unwrap(),
        branch: "x/demo-abc-1".into(),
        created: true,
    };
    Some(AgentHost {
        codex: codex.to_path_buf(),
        place: Place::Remote(remote),
        lane,
        world,
        dir,
    })
}

impl AgentHost {
    fn session_config(&self) -> SessionConfig {
        SessionConfig {
            command: vec![self.codex.display().to_string(), "app-server".into()],
            cwd: self.lane.path.clone(),
            remove_env: Vec::new(),
            extra_env: Vec::new(),
            developer_instructions: "You are under test on a remote host.".into(),
            personality: None,
            service_tier: None,
            dynamic_tools: vec![tool("echo")],
            journal_path: self.dir.join("journal.jsonl"),
            read_timeout: Duration::from_secs(30),
            turn_idle_timeout: Duration::from_secs(60),
            stop: None,
        }
    }

    fn start(&self) -> Session {
        let config = self.session_config();
        let launcher = self.place.launcher(&self.lane, &config.command.clone());
        Session::start_with(config, &launcher, None).expect("remote session starts")
    }
}

/// Processes whose working directory is inside `dir` (what runs in a lane on the host).
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
        if let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) {
            if cwd.starts_with(&dir) && crate::support::procs::is_alive(pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

fn wait_nothing_working_in(dir: &Path) -> Vec<u32> {
    let mut left = Vec::new();
    crate::support::run_world::wait_until(Duration::from_secs(20), || {
        left = working_in(dir);
        left.is_empty()
    });
    left
}

/// A turn on the host: codex runs its command in the remote lane, the dynamic tool call is
/// answered by the controller's dispatcher, and shutdown leaves nothing running there — not
/// even a process the agent moved out of its session.
#[test]
fn a_remote_session_runs_turns_with_tools_in_the_controller() {
    let codex = codex_or_skip!();
    let _sshd = sshd_or_skip!();
    let mock = MockModel::start(vec![
        Step::exec_command(
            "call_pwd",
            "pwd > where.txt; setsid sleep 3176 > /dev/null 2>&1 & echo $! > escapee.pid",
        ),
        Step::tool_call("call_echo", "echo", json!({"text": "from the host"})),
        Step::message("Remote done."),
    ])
    .unwrap();
    let Some(host) = agent_host("remote-agent", &codex, &mock) else {
        return;
    };
    let mut session = host.start();
    assert!(!session.thread_id().is_empty());
    let tools = RecordingTools::echo();
    let mut observer = RecordingObserver::default();
    let outcome = session.run_turn(
        "work remotely",
        &tools,
        &mut observer,
        TurnLimits::default(),
    );
    assert_eq!(
        outcome.end,
        TurnEnd::Completed {
            final_message: Some("Remote done.".into())
        },
        "{outcome:?}"
    );
    let calls = tools.calls();
    assert_eq!(calls.len(), 1, "the tool call reached the controller");
    assert_eq!(calls[0].arguments, json!({"text": "from the host"}));
    let written = std::fs::read_to_string(host.lane.path.join("where.txt")).unwrap();
    assert_eq!(
        Path::new(written.trim()),
        host.lane.path,
        "codex ran in the remote lane"
    );
    let entries = journal(&host.dir.join("journal.jsonl"));
    let spawned = entries
        .iter()
        .find(|entry| entry.event.as_deref() == Some("spawned"))
        .expect("spawned event");
    assert_eq!(spawned.detail["host"], "host-a");
    let escapee: u32 = std::fs::read_to_string(host.lane.path.join("escapee.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        crate::support::procs::is_alive(escapee),
        "the agent's escapee runs until the session ends"
    );
    let report = session.shutdown();
    assert_eq!(report.exit.as_deref(), Some("exit code 0"), "{report:?}");
    let left = wait_nothing_working_in(&host.lane.path);
    assert!(left.is_empty(), "left in the remote lane: {left:?}");
}

/// The host's sshd dies mid-turn: the turn ends with ssh's exit (a disconnect, not a codex
/// crash), and nothing of the session — codex, the command it ran, or what that command moved
/// out of its session — is left on the host.
#[test]
fn a_dropped_connection_ends_the_turn_as_a_disconnect_and_leaves_nothing() {
    let codex = codex_or_skip!();
    let _sshd = sshd_or_skip!();
    let mock = MockModel::start(vec![
        Step::exec_command(
            "call_long",
            "setsid sleep 3174 > /dev/null 2>&1 & echo started > started.txt; sleep 3175",
        ),
        Step::message("never reached"),
    ])
    .unwrap();
    let Some(mut host) = agent_host("remote-agent-drop", &codex, &mock) else {
        return;
    };
    let mut session = host.start();
    let lane = host.lane.path.clone();
    let outcome = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            crate::support::run_world::wait_until(Duration::from_secs(60), || {
                lane.join("started.txt").exists()
            });
            assert!(lane.join("started.txt").exists(), "the command started");
            host.world.kill_host("host-a");
        });
        let tools = RecordingTools::echo();
        let mut observer = RecordingObserver::default();
        let outcome = session.run_turn("work", &tools, &mut observer, TurnLimits::default());
        killer.join().unwrap();
        outcome
    });
    assert!(
        matches!(&outcome.end, TurnEnd::ProcessExited { exit: Some(exit), .. } if exit == "exit code 255"),
        "{outcome:?}"
    );
    assert!(host.place.disconnected(&outcome.end));
    drop(session);
    let left = wait_nothing_working_in(&lane);
    assert!(left.is_empty(), "left in the remote lane: {left:?}");
}
