//! The service config, `maestro.toml`: where it is found, what it may say, what it means.
//!
//! This module owns config resolution (`--config`, `./tmp/maestro.toml`, the XDG path) and the
//! validated [`ServiceConfig`]. It reads one file and touches nothing else: WORKFLOW.md belongs to
//! [`crate::workflow`], and the cross-checks between the two live in [`crate::settings`].
//! Secrets are never read here; the config only names the environment variables that hold them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use crate::toml_fields::{self, Diagnostic, Problem, Table};

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
    /// `[worker]`: SSH hosts lanes run on (`crate::worker::config`); `None` runs them locally.
    pub worker: Option<crate::worker::WorkerConfig>,
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

    /// Maestro's own state directory, `<workspace_root>/.maestro`.
    pub fn state_dir(&self) -> PathBuf {
        self.workspace_root.join(".maestro")
    }
}

/// Why a config could not be used.
#[derive(Debug)]
pub enum Error {
    /// No config file exists at any candidate path.
    NotFound { tried: Vec<PathBuf> },
    /// The file exists but could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but breaks the contract; every problem is listed.
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { tried } => {
                let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "no maestro config found (tried: {}); pass --config PATH or copy maestro.example.toml to one of those paths",
                    tried.join(", ")
                )
            }
            Error::Read { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            Error::Invalid { path, diagnostics } => {
                let count = diagnostics.len();
                let noun = if count == 1 { "problem" } else { "problems" };
                write!(
                    f,
                    "invalid config {} ({count} {noun}):\n{}",
                    path.display(),
                    toml_fields::format_diagnostics(path, diagnostics)
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What config resolution may look at; a struct so tests need not touch the process environment.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub cwd: PathBuf,
    pub xdg_config_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Lookup {
    /// The real process environment.
    pub fn from_env() -> Lookup {
        let non_empty = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Lookup {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            xdg_config_home: non_empty("XDG_CONFIG_HOME"),
            home: non_empty("HOME"),
        }
    }

    /// Candidate paths in resolution order (without `--config`).
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.cwd.join("tmp").join("maestro.toml")];
        let config_home = self
            .xdg_config_home
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".config")));
        if let Some(config_home) = config_home {
            paths.push(config_home.join("maestro").join("maestro.toml"));
        }
        paths
    }
}

/// Finds the config file: `--config PATH` when given (it must exist), else the first candidate
/// that exists.
pub fn resolve(explicit: Option<&Path>, lookup: &Lookup) -> Result<PathBuf, Error> {
    if let Some(path) = explicit {
        let path = lookup.cwd.join(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::NotFound { tried: vec![path] })
        };
    }
    let tried = lookup.candidates();
    tried
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or(Error::NotFound { tried })
}

/// Resolves and loads the config in one step.
pub fn load(explicit: Option<&Path>, lookup: &Lookup) -> Result<ServiceConfig, Error> {
    let path = resolve(explicit, lookup)?;
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    parse(&path, &text, lookup.home.as_deref())
}

/// Parses config text that came from `path` (used to resolve relative paths and in messages).
pub fn parse(path: &Path, text: &str, home: Option<&Path>) -> Result<ServiceConfig, Error> {
    let invalid = |problems: Vec<Problem>| {
        let mut diagnostics: Vec<Diagnostic> = problems
            .into_iter()
            .map(|problem| Diagnostic::locate(text, 0, problem))
            .collect();
        diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
        Error::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        }
    };
    let document = toml_fields::parse(text).map_err(|problem| invalid(vec![problem]))?;
    let mut problems = Vec::new();
    toml_fields::find_secrets(&document, &mut problems);
    let config_dir = path.parent().unwrap_or(Path::new("."));
    let config = read_config(path, config_dir, home, &document, &mut problems);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(invalid(problems)),
    }
}

fn read_config(
    path: &Path,
    config_dir: &Path,
    home: Option<&Path>,
    document: &toml::Spanned<toml::de::DeTable<'_>>,
    problems: &mut Vec<Problem>,
) -> Option<ServiceConfig> {
    let mut root = Table::root(document);

    let id = root.string("id", problems);
    let id = match id {
        None => {
            problems.push(missing(&root, "id", "a project id such as \"my-app\""));
            None
        }
        Some(id) if !is_project_id(id.get_ref()) => {
            problems.push(Problem {
                span: id.span(),
                field: "id".into(),
                message: format!(
                    "`{}` is not a valid project id; use lowercase letters, digits and '-' only",
                    id.get_ref()
                ),
            });
            None
        }
        Some(id) => Some(id.into_inner()),
    };

    let repo_root = match root.string("repo_root", problems) {
        None if root.contains("repo_root") => None,
        None => {
            problems.push(missing(
                &root,
                "repo_root",
                "the path of the source git checkout",
            ));
            None
        }
        Some(value) if value.get_ref().trim().is_empty() => {
            problems.push(Problem {
                span: value.span(),
                field: "repo_root".into(),
                message: "must not be empty; give the path of the source git checkout".into(),
            });
            None
        }
        // Relative to the config file's directory, so a config checked in next to the code
        // (fixtures/demo/maestro.toml) works wherever the repository is cloned.
        Some(value) => {
            let expanded = expand_home(value.get_ref().trim(), home);
            Some(normalize(&config_dir.join(expanded)))
        }
    };

    let workflow_path = match root.string("workflow_path", problems) {
        None => Some(PathBuf::from("WORKFLOW.md")),
        Some(value) => match repo_relative(value.get_ref()) {
            Ok(relative) => Some(relative),
            Err(reason) => {
                problems.push(Problem {
                    span: value.span(),
                    field: "workflow_path".into(),
                    message: reason,
                });
                None
            }
        },
    };

    let workspace_root = match root.string("workspace_root", problems) {
        None => repo_root
            .as_ref()
            .map(|root| root.join(DEFAULT_WORKSPACE_DIR)),
        Some(value) if value.get_ref().trim().is_empty() => {
            problems.push(Problem {
                span: value.span(),
                field: "workspace_root".into(),
                message: "must not be empty; omit it to use <repo_root>/.workspaces".into(),
            });
            None
        }
        Some(value) => {
            let expanded = expand_home(value.get_ref(), home);
            let workspace_root = normalize(&config_dir.join(expanded));
            match repo_root
                .as_ref()
                .and_then(|repo_root| workspace_overlap(&workspace_root, repo_root))
            {
                Some(reason) => {
                    problems.push(Problem {
                        span: value.span(),
                        field: "workspace_root".into(),
                        message: format!("`{}` {reason}", workspace_root.display()),
                    });
                    None
                }
                None => Some(workspace_root),
            }
        }
    };

    let tracker = read_tracker(&mut root, config_dir, home, problems);
    let github = read_github(&mut root, problems);
    let agent = read_agent(&mut root, problems);
    let operator_http = read_operator_http(&mut root, problems);
    let retention = read_retention(&mut root, problems);
    let worker = crate::worker::config::read(&mut root, problems);
    root.finish(problems);

    Some(ServiceConfig {
        path: path.to_path_buf(),
        id: id?,
        repo_root: repo_root?,
        workflow_path: workflow_path?,
        workspace_root: workspace_root?,
        tracker: tracker?,
        github: github?,
        agent: agent?,
        operator_http: operator_http?,
        retention: retention?,
        worker: worker?,
    })
}

fn read_tracker(
    root: &mut Table<'_, '_>,
    config_dir: &Path,
    home: Option<&Path>,
    problems: &mut Vec<Problem>,
) -> Option<TrackerConfig> {
    let Some(mut table) = root.table("tracker", problems) else {
        if !root.contains("tracker") {
            problems.push(missing(
                root,
                "tracker",
                "a [tracker] table (api_key_env_var for linear, or provider = \"local\" with issues_dir)",
            ));
        }
        return None;
    };
    let provider = match table.string("provider", problems) {
        None => Some(Provider::Linear),
        Some(value) => match Provider::from_name(value.get_ref()) {
            Some(provider) => Some(provider),
            None => {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("provider"),
                    message: format!(
                        "unknown tracker provider `{}`; expected \"linear\" or \"local\"",
                        value.get_ref().trim()
                    ),
                });
                None
            }
        },
    };
    let project_slug = table.non_empty(
        "project_slug",
        "must not be empty; omit the key instead",
        problems,
    );
    let api_key_env_var = env_var_name(&mut table, "api_key_env_var", problems);
    if provider == Some(Provider::Linear)
        && api_key_env_var.is_none()
        && !table.contains("api_key_env_var")
    {
        problems.push(missing(
            &table,
            "api_key_env_var",
            "the name of the environment variable holding the Linear API key, e.g. \"LINEAR_API_KEY\"",
        ));
    }
    let api_url = http_url(&mut table, "api_url", DEFAULT_LINEAR_API_URL, problems);
    let resync_interval_ms = positive_ms(
        &mut table,
        "resync_interval_ms",
        DEFAULT_RESYNC_INTERVAL_MS,
        problems,
    );
    let issues_dir = match (provider, table.string("issues_dir", problems)) {
        (Some(Provider::Local), None) => {
            if !table.contains("issues_dir") {
                problems.push(missing(
                    &table,
                    "issues_dir",
                    "the directory of issue files, e.g. \"issues\" (relative to this file)",
                ));
            }
            None
        }
        (Some(Provider::Local), Some(value)) if value.get_ref().trim().is_empty() => {
            problems.push(Problem {
                span: value.span(),
                field: table.field("issues_dir"),
                message: "must not be empty; give the directory of issue files".into(),
            });
            None
        }
        (Some(Provider::Local), Some(value)) => {
            let expanded = expand_home(value.get_ref().trim(), home);
            Some(normalize(&config_dir.join(expanded)))
        }
        (Some(Provider::Linear), Some(value)) => {
            problems.push(Problem {
                span: value.span(),
                field: table.field("issues_dir"),
                message: "only used with provider = \"local\"; remove it or set the provider"
                    .into(),
            });
            None
        }
        (_, _) => None,
    };
    table.finish(problems);
    let provider = provider?;
    if provider == Provider::Local && issues_dir.is_none() {
        return None;
    }
    Some(TrackerConfig {
        provider,
        project_slug,
        api_key_env_var,
        api_url: api_url?,
        issues_dir,
        resync_interval_ms: resync_interval_ms?,
    })
}

fn read_github(root: &mut Table<'_, '_>, problems: &mut Vec<Problem>) -> Option<GithubConfig> {
    let Some(mut table) = root.table("github", problems) else {
        return (!root.contains("github")).then(|| GithubConfig {
            token_env_var: None,
            api_url: DEFAULT_GITHUB_API_URL.to_string(),
        });
    };
    let token_env_var = env_var_name(&mut table, "token_env_var", problems);
    let api_url = http_url(&mut table, "api_url", DEFAULT_GITHUB_API_URL, problems);
    table.finish(problems);
    Some(GithubConfig {
        token_env_var,
        api_url: api_url?,
    })
}

fn read_agent(root: &mut Table<'_, '_>, problems: &mut Vec<Problem>) -> Option<AgentConfig> {
    let Some(mut table) = root.table("agent", problems) else {
        return (!root.contains("agent")).then(AgentConfig::default);
    };
    let mut ok = true;
    if let Some(transport) = table.string("transport", problems) {
        if transport.get_ref().trim() != STDIO_TRANSPORT {
            ok = false;
            problems.push(Problem {
                span: transport.span(),
                field: table.field("transport"),
                message: format!(
                    "transport `{}` is not supported; only \"{STDIO_TRANSPORT}\" (the app-server's stdin/stdout) is",
                    transport.get_ref()
                ),
            });
        }
    }
    let command = match table.string("command", problems) {
        None => Some(split_command(DEFAULT_AGENT_COMMAND)),
        Some(value) => {
            let words = split_command(value.get_ref());
            if words.is_empty() {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("command"),
                    message: format!(
                        "must name a program; omit it to use \"{DEFAULT_AGENT_COMMAND}\""
                    ),
                });
                None
            } else {
                Some(words)
            }
        }
    };
    let read_timeout_ms = positive_ms(
        &mut table,
        "read_timeout_ms",
        DEFAULT_READ_TIMEOUT_MS,
        problems,
    );
    let turn_idle_timeout_ms = positive_ms(
        &mut table,
        "turn_idle_timeout_ms",
        DEFAULT_TURN_IDLE_TIMEOUT_MS,
        problems,
    );
    let stall_timeout_ms = positive_ms(
        &mut table,
        "stall_timeout_ms",
        DEFAULT_STALL_TIMEOUT_MS,
        problems,
    );
    for policy_key in [
        "sandbox",
        "sandbox_mode",
        "approval_policy",
        "approvalPolicy",
        "sandbox_policy",
    ] {
        if let Some(span) = table.value_span(policy_key) {
            problems.push(Problem {
                span,
                field: table.field(policy_key),
                message: "sandbox and approval policy cannot be set here: execution policy is inherited from the Codex runtime's own configuration".into(),
            });
        }
    }
    table.finish(problems);
    if !ok {
        return None;
    }
    Some(AgentConfig {
        command: command?,
        read_timeout_ms: read_timeout_ms?,
        turn_idle_timeout_ms: turn_idle_timeout_ms?,
        stall_timeout_ms: stall_timeout_ms?,
    })
}

fn read_operator_http(
    root: &mut Table<'_, '_>,
    problems: &mut Vec<Problem>,
) -> Option<Option<SocketAddr>> {
    let Some(mut table) = root.table("operator_http", problems) else {
        return (!root.contains("operator_http")).then_some(None);
    };
    let address = match table.string("listen_address", problems) {
        None => Some(None),
        Some(value) => match value.get_ref().trim().parse::<SocketAddr>() {
            Ok(address) => Some(Some(address)),
            Err(_) => {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("listen_address"),
                    message: format!(
                        "`{}` is not an IP:PORT socket address, e.g. \"127.0.0.1:8787\"",
                        value.get_ref()
                    ),
                });
                None
            }
        },
    };
    table.finish(problems);
    address
}

fn read_retention(
    root: &mut Table<'_, '_>,
    problems: &mut Vec<Problem>,
) -> Option<RetentionConfig> {
    let Some(mut table) = root.table("retention", problems) else {
        return (!root.contains("retention")).then(RetentionConfig::default);
    };
    let defaults = RetentionConfig::default();
    let mut positive = |key: &'static str, default: u64, unit: &str| {
        let Some(value) = table.integer(key, problems) else {
            return (!table.contains(key)).then_some(default);
        };
        let number = u64::try_from(*value.get_ref()).ok().filter(|n| *n > 0);
        if number.is_none() {
            problems.push(Problem {
                span: value.span(),
                field: table.field(key),
                message: format!(
                    "must be a positive number of {unit}, got {}",
                    value.get_ref()
                ),
            });
        }
        number
    };
    let keep_per_issue = positive("keep_per_issue", defaults.keep_per_issue, "runs");
    let keep_total = positive("keep_total", defaults.keep_total, "runs");
    let max_total_bytes = positive("max_total_bytes", defaults.max_total_bytes, "bytes");
    table.finish(problems);
    Some(RetentionConfig {
        keep_per_issue: keep_per_issue?,
        keep_total: keep_total?,
        max_total_bytes: max_total_bytes?,
    })
}

fn missing(table: &Table<'_, '_>, key: &str, expected: &str) -> Problem {
    Problem {
        span: table.span().start..table.span().start,
        field: table.field(key),
        message: format!("missing required key `{key}`: {expected}"),
    }
}

fn env_var_name(
    table: &mut Table<'_, '_>,
    key: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let value = table.string(key, problems)?;
    let name = value.get_ref().trim();
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        problems.push(Problem {
            span: value.span(),
            field: table.field(key),
            message: format!(
                "`{}` is not an environment variable name; give the variable's name (like \"LINEAR_API_KEY\"), never its value",
                value.get_ref()
            ),
        });
        return None;
    }
    Some(name.to_string())
}

fn http_url(
    table: &mut Table<'_, '_>,
    key: &'static str,
    default: &str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let Some(value) = table.string(key, problems) else {
        return (!table.contains(key)).then(|| default.to_string());
    };
    let url = value.get_ref().trim();
    if url.starts_with("https://") || url.starts_with("http://") {
        Some(url.trim_end_matches('/').to_string())
    } else {
        problems.push(Problem {
            span: value.span(),
            field: table.field(key),
            message: format!("`{url}` is not an http:// or https:// URL"),
        });
        None
    }
}

fn positive_ms(
    table: &mut Table<'_, '_>,
    key: &'static str,
    default: u64,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    let Some(value) = table.integer(key, problems) else {
        return (!table.contains(key)).then_some(default);
    };
    match u64::try_from(*value.get_ref()) {
        Ok(ms) if ms > 0 => Some(ms),
        _ => {
            problems.push(Problem {
                span: value.span(),
                field: table.field(key),
                message: format!(
                    "must be a positive number of milliseconds, got {}",
                    value.get_ref()
                ),
            });
            None
        }
    }
}

/// Why `workspace_root` may not be used with `repo_root`, judged on the paths as written: it is
/// the repository itself or contains it. Maestro removes lanes under `workspace_root`, so the
/// two must never share a tree ([`crate::settings`] checks the same with symlinks resolved,
/// and that a root inside the repository is outside its tracked tree).
pub fn workspace_overlap(workspace_root: &Path, repo_root: &Path) -> Option<String> {
    let fix = "set workspace_root to a directory outside the repository, or omit it to use <repo_root>/.workspaces";
    if workspace_root == repo_root {
        Some(format!(
            "is repo_root itself; lanes would be created and removed among the repository's own files: {fix}"
        ))
    } else if repo_root.starts_with(workspace_root) {
        Some(format!(
            "contains repo_root ({}); lanes would be created and removed around the repository: {fix}",
            repo_root.display()
        ))
    } else {
        None
    }
}

/// `[a-z0-9-]+`.
pub fn is_project_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Splits a command on whitespace; no shell quoting is interpreted.
pub fn split_command(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_string).collect()
}

/// Expands a leading `~` or `~/` using `home`.
pub fn expand_home(value: &str, home: Option<&Path>) -> PathBuf {
    match (value.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home.to_path_buf(),
        (Some(rest), Some(home)) if rest.starts_with('/') => home.join(&rest[1..]),
        _ => PathBuf::from(value),
    }
}

/// Checks that `value` is a relative path that stays inside its base directory.
pub fn repo_relative(value: &str) -> Result<PathBuf, String> {
    let path = Path::new(value.trim());
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if path.is_absolute() || value.trim().starts_with('~') {
        return Err(format!(
            "`{value}` is absolute; give a path relative to the repository root"
        ));
    }
    if path
        .components()
        .any(|component| matches!(component, Component::ParentDir))
    {
        return Err(format!(
            "`{value}` leaves the repository ('..' is not allowed); give a path inside it"
        ));
    }
    Ok(path.to_path_buf())
}

/// Removes `.` and resolves `..` lexically (no filesystem access, symlinks untouched).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_home_forms() {
        let home = Path::new("/home/op");
        assert_eq!(expand_home("~", Some(home)), PathBuf::from("/home/op"));
        assert_eq!(expand_home("~/w", Some(home)), PathBuf::from("/home/op/w"));
        assert_eq!(expand_home("~x/w", Some(home)), PathBuf::from("~x/w"));
        assert_eq!(expand_home("/abs", Some(home)), PathBuf::from("/abs"));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }

    #[test]
    fn project_ids() {
        assert!(is_project_id("my-app-2"));
        assert!(!is_project_id("My_App"));
        assert!(!is_project_id(""));
    }
}
