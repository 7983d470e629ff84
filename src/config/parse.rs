//! maestro.toml's text to a [`ServiceConfig`]: table by table, every problem collected with
//! its span so the operator sees them all at once, in file order.
//!
//! It reads no file and no environment variable: relative paths resolve against the config
//! file's directory, `~/` against the `home` it is given.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::paths::{expand_home, normalize, repo_relative, workspace_overlap};
use super::{
    AgentConfig, DEFAULT_AGENT_COMMAND, DEFAULT_GITHUB_API_URL, DEFAULT_LINEAR_API_URL,
    DEFAULT_READ_TIMEOUT_MS, DEFAULT_RESYNC_INTERVAL_MS, DEFAULT_STALL_TIMEOUT_MS,
    DEFAULT_TURN_IDLE_TIMEOUT_MS, DEFAULT_WORKSPACE_DIR, Error, GithubConfig, Provider,
    RetentionConfig, STDIO_TRANSPORT, ServiceConfig, TrackerConfig,
};
use crate::toml_fields::{self, Diagnostic, Problem, Table};

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
    let worker = super::worker::read(&mut root, problems);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids() {
        assert!(is_project_id("my-app-2"));
        assert!(!is_project_id("My_App"));
        assert!(!is_project_id(""));
    }
}
