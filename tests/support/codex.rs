//! The real codex binary for tests: finding it, skipping without it, and a throwaway
//! `CODEX_HOME` pointing at the scripted mock model.
//!
//! Tests find codex through `MAESTRO_CODEX_BIN`, else `codex` on PATH. Without it a test prints
//! `skipped: codex not found` and passes, unless `MAESTRO_REQUIRE_CODEX=1` (CI), when it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use maestro::app_server::SessionConfig;
use maestro::mock_model::CodexConfig;

use super::dir::TestDir;

/// The codex binary to test against, if there is one.
pub fn codex_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MAESTRO_CODEX_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MAESTRO_CODEX_BIN={} does not name a file",
            path.display()
        );
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("codex"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// codex, or `None` after printing the skip line. Panics when codex is required.
pub fn require_codex() -> Option<PathBuf> {
    match codex_bin() {
        Some(path) => Some(path),
        None if std::env::var("MAESTRO_REQUIRE_CODEX").as_deref() == Ok("1") => {
            panic!("codex not found and MAESTRO_REQUIRE_CODEX=1; set MAESTRO_CODEX_BIN")
        }
        None => {
            println!("skipped: codex not found");
            None
        }
    }
}

/// Evaluates to the codex path, or returns from the test after printing the skip line.
#[macro_export]
macro_rules! codex_or_skip {
    () => {
        match $crate::support::codex::require_codex() {
            Some(path) => path,
            None => return,
        }
    };
    ($skipped:expr) => {
        match $crate::support::codex::require_codex() {
            Some(path) => path,
            None => return $skipped,
        }
    };
}

/// A test's codex world: a `CODEX_HOME` with the given config, a lane, a journal path.
#[derive(Debug)]
pub struct CodexWorld {
    pub dir: TestDir,
    pub codex: PathBuf,
    pub home: PathBuf,
    pub lane: PathBuf,
    pub journal: PathBuf,
}

impl CodexWorld {
    /// Writes `<dir>/codex-home/config.toml` from `config` and creates `<dir>/lane`. Both live
    /// under cargo's target tmp dir (codex warns about a `CODEX_HOME` under /tmp).
    pub fn new(name: &str, codex: &Path, config: &CodexConfig) -> CodexWorld {
        let dir = TestDir::new(name);
        let home = dir.join("codex-home");
        let lane = dir.join("lane");
        std::fs::create_dir_all(&home).expect("create CODEX_HOME");
        std::fs::create_dir_all(&lane).expect("create lane");
        std::fs::write(home.join("config.toml"), config.to_toml()).expect("write config.toml");
        let journal = dir.join("journal.jsonl");
        CodexWorld {
            dir,
            codex: codex.to_path_buf(),
            home,
            lane,
            journal,
        }
    }

    /// A session config for this world: `codex app-server` in the lane with this `CODEX_HOME`
    /// and test-sized timeouts.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            command: vec![self.codex.display().to_string(), "app-server".into()],
            cwd: self.lane.clone(),
            remove_env: Vec::new(),
            extra_env: vec![("CODEX_HOME".into(), self.home.display().to_string())],
            developer_instructions: "You are under test.".into(),
            personality: None,
            service_tier: None,
            dynamic_tools: Vec::new(),
            journal_path: self.journal.clone(),
            read_timeout: Duration::from_secs(20),
            turn_idle_timeout: Duration::from_secs(30),
            stop: None,
        }
    }
}

/// The mock's codex config with codex's own policy set to run commands without asking.
pub fn unattended(base_url: &str) -> CodexConfig {
    let mut config = CodexConfig::new(base_url);
    config.approval_policy = Some("never".into());
    config.sandbox_mode = Some("danger-full-access".into());
    config
}
