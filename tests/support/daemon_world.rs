//! A world for daemon tests: a source repository with WORKFLOW.md, the fake Linear, the fake
//! app-server (scripted per issue through `MAESTRO_FAKE_TOOLS`), and a `maestro daemon`
//! process with its log captured.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::app_server::fake_app_server;
use super::dir::TestDir;
use super::fake_linear::{API_KEY, FakeIssue, FakeLinear, SLUG_ID, World};
use super::git::repos;

/// The manual-attention script: claim, label, explain, finalize.
pub fn manual_attention_script() -> Value {
    serde_json::json!([
        {"tool": "issue_transition", "arguments": {"state": "In Progress"}},
        {"tool": "issue_label_add", "arguments": {"label": "maestro:needs-attention"}},
        {"tool": "issue_comment", "arguments": {"body": "I need a human to decide the API."}},
        {"tool": "issue_terminal_finalize", "arguments": {"path": "manual_attention"}},
    ])
}

/// Everything one daemon test needs.
pub struct DaemonWorld {
    pub dir: TestDir,
    pub linear: FakeLinear,
    pub config_path: PathBuf,
    pub workspace_root: PathBuf,
    daemon: Option<Child>,
    log_path: PathBuf,
}

/// Knobs for the world.
pub struct Setup<'a> {
    pub name: &'a str,
    pub issues: Vec<FakeIssue>,
    /// Extra `[execution]` lines for WORKFLOW.md.
    pub execution: &'a str,
    /// Extra `[agent]` lines for maestro.toml.
    pub agent: &'a str,
}

impl DaemonWorld {
    pub fn new(setup: Setup<'_>) -> DaemonWorld {
        let dir = TestDir::new(setup.name);
        let workflow = format!(
            "+++\nversion = 1\n[tracker]\nproject_slug = \"{SLUG_ID}\"\n[execution]\n{}\n+++\nWork on the issue.\n",
            setup.execution
        );
        let repos = repos(
            dir.path(),
            &[("README.md", "demo\n"), ("WORKFLOW.md", &workflow)],
        );
        let mut world = World::standard();
        for issue in setup.issues {
            world = world.with(issue);
        }
        let linear = FakeLinear::start(world);
        let workspace_root = dir.join("workspaces");
        let config = format!(
            "id = \"demo\"\nrepo_root = \"{}\"\nworkspace_root = \"{}\"\n\
             [tracker]\napi_key_env_var = \"MAESTRO_TEST_LINEAR_KEY\"\napi_url = \"{}\"\n\
             [agent]\ncommand = \"{} app-server\"\nread_timeout_ms = 5000\nturn_idle_timeout_ms = 60000\n{}\n",
            repos.source.display(),
            workspace_root.display(),
            linear.url(),
            fake_app_server().display(),
            setup.agent,
        );
        let config_path = dir.write("maestro.toml", &config);
        let log_path = dir.join("daemon.log");
        DaemonWorld {
            dir,
            linear,
            config_path,
            workspace_root,
            daemon: None,
            log_path,
        }
    }

    /// Starts `maestro daemon --poll-interval-s 1` with the fake's per-issue scripts.
    pub fn start_daemon(&mut self, scripts: &Value) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let child = Command::new(super::maestro_bin())
            .args(["daemon", "--poll-interval-s", "1", "--config"])
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("MAESTRO_TEST_LINEAR_KEY", API_KEY)
            .env("MAESTRO_FAKE_SCENARIO", "tools")
            .env("MAESTRO_FAKE_TOOLS", scripts.to_string())
            // The tick's debug line lets tests wait for ticks instead of sleeping.
            .env("RUST_LOG", "info,maestro::daemon::tick=debug")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
    }

    /// `maestro run --once` (or other `args`) against this world, not yet spawned.
    pub fn maestro(&self, args: &[&str], scripts: &Value) -> Command {
        let mut command = Command::new(super::maestro_bin());
        command
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .env("MAESTRO_TEST_LINEAR_KEY", API_KEY)
            .env("MAESTRO_FAKE_SCENARIO", "tools")
            .env("MAESTRO_FAKE_TOOLS", scripts.to_string())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon started").id()
    }

    /// Sends SIGTERM and waits (bounded) for the daemon's exit code.
    pub fn stop_daemon(&mut self) -> Option<i32> {
        let mut child = self.daemon.take()?;
        maestro::signals::signal_process(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("daemon did not stop within 40 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9` the daemon (children keep running).
    pub fn kill_daemon(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Ticks the daemon has finished so far (all its runs in this world).
    pub fn ticks(&self) -> usize {
        self.log().matches("tick finished").count()
    }

    /// Waits (bounded) until the daemon has finished `n` more ticks.
    pub fn wait_ticks(&self, n: usize) {
        let target = self.ticks() + n;
        self.wait_for(&format!("{n} more ticks"), Duration::from_secs(60), || {
            (self.ticks() >= target).then_some(())
        });
    }

    pub fn state_dir(&self) -> PathBuf {
        self.workspace_root.join(".maestro")
    }

    /// Polls `check` until it returns `Some`, at most `timeout`; panics with the daemon log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check() {
                return value;
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DaemonWorld {
    fn drop(&mut self) {
        self.kill_daemon();
        // Children of a killed daemon lead their own groups; end them so no test leaks.
        if let Ok(entries) = std::fs::read_dir(self.state_dir().join("leases")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "json") {
                    if let Ok(owner) =
                        serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap_or_default())
                    {
                        if let Some(pid) = owner["pid"].as_u64() {
                            maestro::signals::signal_group(pid as u32, libc::SIGKILL);
                        }
                    }
                }
            }
        }
    }
}

/// Reads every run record in `state_dir/runs` (panics on a torn one: records must never tear).
pub fn run_records(state_dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("runs")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "json")
                && !path.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .map(|path| {
            serde_json::from_slice(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|error| panic!("torn record {}: {error}", path.display()))
        })
        .collect()
}
