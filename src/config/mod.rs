//! The service config, `maestro.toml`: where it is found, what it may say, what it means.
//!
//! This module owns config resolution (`--config`, `./tmp/maestro.toml`, the XDG path) and the
//! validated [`ServiceConfig`]. It reads one file and touches nothing else: WORKFLOW.md belongs to
//! [`crate::workflow`], and the cross-checks between the two live in [`crate::settings`].
//! Secrets are never read here; the config only names the environment variables that hold them.
//!
//! Files by concept: this one holds the validated types and their defaults; `resolve.rs` finds
//! and loads the file ([`Lookup`], [`resolve`], [`load`]); `parse.rs` turns its text into a
//! [`ServiceConfig`], table by table; `paths.rs` the path rules (`~/`, lexical normalization,
//! repository-relative paths, the `workspace_root` overlap); `error.rs` the boundary's [`Error`].

mod error;
mod parse;
mod paths;
mod resolve;
pub mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use error::Error;
pub use parse::{is_project_id, parse, split_command};
pub use paths::{expand_home, normalize, repo_relative, workspace_overlap};
pub use resolve::{CODEX_BIN_VAR, Lookup, load, resolve};

/// Default Linear GraphQL endpoint.
pub const DEFAULT_LINEAR_API_URL: &str = "https://api.linear.app/graphql";
/// Default GitHub REST endpoint.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";
/// Default app-server command.
pub const DEFAULT_AGENT_COMMAND: &str = "codex app-server";
/// The only transport Maestro speaks to the app-server.
pub const STDIO_TRANSPORT: &str = "stdio://";
/// Default per-request timeout for app-server JSON-RPC calls.
pub const DEFAULT_READ_TIMEOUT_MS: u64 = 30_000;
/// Default time a turn may go without progress before it is interrupted.
pub const DEFAULT_TURN_IDLE_TIMEOUT_MS: u64 = 300_000;
/// The default `workspace_root`, relative to `repo_root`.
pub const DEFAULT_WORKSPACE_DIR: &str = ".workspaces";
/// Default time a lane may go without progress before the daemon declares it stalled.
pub const DEFAULT_STALL_TIMEOUT_MS: u64 = 900_000;
/// Default time between the daemon's full resyncs of the project's issues.
pub const DEFAULT_RESYNC_INTERVAL_MS: u64 = 1_800_000;

/// A validated maestro.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The file this came from (as resolved, not canonicalized).
    pub path: PathBuf,
    /// Project id, `[a-z0-9-]+`: used in lane branch names and to scope state.
    pub id: String,
    /// Absolute path of the source git checkout (a relative value in the file resolves against
    /// the config file's directory).
    pub repo_root: PathBuf,
    /// WORKFLOW.md, relative to `repo_root`.
    pub workflow_path: PathBuf,
    /// Absolute directory holding lanes and `.maestro/` state.
    pub workspace_root: PathBuf,
    pub tracker: TrackerConfig,
    pub github: GithubConfig,
    pub agent: AgentConfig,
    /// Read-only operator HTTP endpoint; `None` keeps it disabled.
    pub operator_http: Option<SocketAddr>,
    pub retention: RetentionConfig,
    /// `[worker]`: SSH hosts lanes run on (`config/worker.rs`); `None` runs them locally.
    pub worker: Option<worker::WorkerConfig>,
}

/// `[retention]`: how much of `.maestro/` survives each attempt (`workspace::retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Finished runs kept per issue, newest first.
    pub keep_per_issue: u64,
    /// Finished and live runs kept in all.
    pub keep_total: u64,
    /// What the kept runs (records, journals, child logs) may weigh together.
    pub max_total_bytes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            keep_per_issue: 10,
            keep_total: 500,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// `[tracker]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    pub provider: Provider,
    /// May also come from WORKFLOW.md; see [`crate::settings`].
    pub project_slug: Option<String>,
    /// Name of the environment variable holding the Linear API key (required for linear).
    pub api_key_env_var: Option<String>,
    pub api_url: String,
    /// Absolute directory of issue files; set exactly when `provider` is [`Provider::Local`].
    pub issues_dir: Option<PathBuf>,
    /// Time between the daemon's full resyncs; between them it asks only what changed.
    pub resync_interval_ms: u64,
}

/// Which tracker backs the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Linear's GraphQL API.
    Linear,
    /// Markdown issue files in `[tracker] issues_dir`: demos, scripts, no account needed.
    Local,
}

impl Provider {
    /// Every provider, for messages that list the accepted values.
    pub const ALL: [Provider; 2] = [Provider::Linear, Provider::Local];

    pub fn name(self) -> &'static str {
        match self {
            Provider::Linear => "linear",
            Provider::Local => "local",
        }
    }

    /// The provider called `name` (trimmed, exact case).
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name.trim())
    }
}

/// `[github]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubConfig {
    /// Name of the environment variable holding the GitHub token.
    pub token_env_var: Option<String>,
    pub api_url: String,
}

/// `[agent]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Program and arguments, split on whitespace (no shell is involved).
    pub command: Vec<String>,
    pub read_timeout_ms: u64,
    pub turn_idle_timeout_ms: u64,
    pub stall_timeout_ms: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            command: split_command(DEFAULT_AGENT_COMMAND),
            read_timeout_ms: DEFAULT_READ_TIMEOUT_MS,
            turn_idle_timeout_ms: DEFAULT_TURN_IDLE_TIMEOUT_MS,
            stall_timeout_ms: DEFAULT_STALL_TIMEOUT_MS,
        }
    }
}

impl ServiceConfig {
    /// Environment variables that hold secrets: never logged, never passed to the agent.
    pub fn secret_env_vars(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.tracker.api_key_env_var, &self.github.token_env_var]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Absolute path of WORKFLOW.md.
    pub fn workflow_file(&self) -> PathBuf {
        self.repo_root.join(&self.workflow_path)
    }
}
