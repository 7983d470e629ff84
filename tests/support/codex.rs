//! The real codex binary for tests: finding it (installing the pinned version once when npm
//! can), skipping without it, and a throwaway `CODEX_HOME` pointing at the scripted mock model.
//!
//! Tests find codex through `MAESTRO_CODEX_BIN`, else `codex` on PATH, else the pinned codex in
//! `${MAESTRO_CI_CACHE:-~/.cache/maestro-ci}/codex-0.169.0` (where `.ci/run` installs it). When
//! none is there and npm is, the pinned version is installed into that cache on first use, once:
//! a lock file serializes test processes, and one lookup per process serves every test thread.
//! Without codex a test prints `skipped: codex not found` and passes, unless
//! `MAESTRO_REQUIRE_CODEX=1` (CI), when it fails; `codex::the_real_codex_is_here` fails the run
//! either way unless `MAESTRO_ALLOW_SKIP=1`, so skipped tests never pass unnoticed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use maestro::app_server::SessionConfig;
use maestro::mock_model::CodexConfig;

use super::dir::TestDir;

/// The codex version the suite is written against (README, `.ci/run`).
pub const PINNED: &str = "0.169.0";

/// The longest an `npm install` of codex may take before the suite gives up on it.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The codex binary to test against, if there is one.
pub fn codex_bin() -> Option<PathBuf> {
    codex_lookup().as_ref().ok().cloned()
}

/// Where codex was found, or why it is missing (for the one test that says so).
pub fn codex_lookup() -> &'static Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(find_or_install)
}

fn find_or_install() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("MAESTRO_CODEX_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MAESTRO_CODEX_BIN={} does not name a file",
            path.display()
        );
        return Ok(path);
    }
    if let Some(path) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("codex"))
            .find(|candidate| is_executable(candidate))
    }) {
        return Ok(path);
    }
    let Some(cache) = cache_dir() else {
        return Err("MAESTRO_CODEX_BIN is unset, there is no codex on PATH, and neither MAESTRO_CI_CACHE nor HOME names a cache to install it in".into());
    };
    if let Some(path) = installed(&cache) {
        return Ok(path);
    }
    install(&cache)
}

/// `${MAESTRO_CI_CACHE:-$HOME/.cache/maestro-ci}/codex-<PINNED>`, as `.ci/run` has it.
fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("MAESTRO_CI_CACHE")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|value| !value.is_empty())
                .map(|home| Path::new(&home).join(".cache/maestro-ci"))
        })?;
    Some(base.join(format!("codex-{PINNED}")))
}

/// The pinned codex in `dir`, when an install finished there: the native binary npm unpacked
/// for this platform (it starts faster, and its pid is codex's own), else npm's wrapper.
fn installed(dir: &Path) -> Option<PathBuf> {
    let wrapper = dir.join("node_modules/.bin/codex");
    let version = Command::new(&wrapper)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if String::from_utf8_lossy(&version.stdout).trim() != format!("codex-cli {PINNED}") {
        return None;
    }
    let native = std::fs::read_dir(dir.join("node_modules/@openai"))
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|package| {
            std::fs::read_dir(package.path().join("vendor"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|target| target.path().join("bin/codex"))
        .find(|candidate| is_executable(candidate));
    Some(native.unwrap_or(wrapper))
}

/// Installs the pinned codex into `dir` with npm, under a lock so concurrent test processes
/// install it once; the second one finds the first one's install when it gets the lock.
fn install(dir: &Path) -> Result<PathBuf, String> {
    use fs2::FileExt;

    let npm_version = Command::new("npm")
        .arg("--version")
        .stdin(Stdio::null())
        .output();
    if !npm_version.is_ok_and(|output| output.status.success()) {
        return Err(format!(
            "MAESTRO_CODEX_BIN is unset, there is no codex on PATH or in {}, and npm is not available to install @openai/codex@{PINNED} there",
            dir.display()
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    // Beside the install directory (`codex-<PINNED>.lock`), not in it: npm owns what is inside.
    let lock_path = dir.with_file_name(format!("codex-{PINNED}.lock"));
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| format!("cannot open {}: {error}", lock_path.display()))?;
    lock.lock_exclusive()
        .map_err(|error| format!("cannot lock {}: {error}", lock_path.display()))?;
    if let Some(path) = installed(dir) {
        return Ok(path);
    }
    eprintln!(
        "installing @openai/codex@{PINNED} into {} with npm, once, for the real-codex tests",
        dir.display()
    );
    let mut child = Command::new("npm")
        .args(["install", "--prefix"])
        .arg(dir)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("@openai/codex@{PINNED}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run npm: {error}"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "npm install @openai/codex@{PINNED} did not finish within {} s",
                    INSTALL_TIMEOUT.as_secs()
                ));
            }
            Err(error) => return Err(format!("cannot wait for npm: {error}")),
        }
    };
    let mut npm_errors = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut npm_errors);
    }
    drop(lock);
    if !status.success() {
        return Err(format!(
            "npm install @openai/codex@{PINNED} into {} failed ({status}): {}",
            dir.display(),
            npm_errors.trim()
        ));
    }
    installed(dir).ok_or_else(|| {
        format!(
            "npm installed @openai/codex@{PINNED} into {} but its codex does not answer `codex-cli {PINNED}`",
            dir.display()
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// codex, or `None` after printing the skip line. Panics when codex is required.
pub fn require_codex() -> Option<PathBuf> {
    match codex_lookup() {
        Ok(path) => Some(path.clone()),
        Err(why) if std::env::var("MAESTRO_REQUIRE_CODEX").as_deref() == Ok("1") => {
            panic!("codex not found and MAESTRO_REQUIRE_CODEX=1: {why}")
        }
        Err(_) => {
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
