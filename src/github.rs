//! GitHub, used only at the review boundary: is the handoff PR the lane's work, open and ready?
//!
//! The repository comes from the lane's `origin` (ssh or https form), the token only from the
//! environment variable named by `[github] token_env_var` — never from ambient `gh` auth, so the
//! operator controls exactly which credential Maestro uses. The token is sent in one header and
//! appears nowhere else: not in `Debug`, errors or logs.
//!
//! **Invariant:** only this module talks to GitHub.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config::GithubConfig;

/// Time limit for one GitHub request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// `owner/name`, compared case-insensitively as GitHub does.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    fn same(&self, full_name: &str) -> bool {
        self.full_name().eq_ignore_ascii_case(full_name)
    }
}

/// Parses a git remote URL: `git@host:owner/name(.git)`, `ssh://git@host/owner/name(.git)` or
/// `https://host/owner/name(.git)`.
pub fn parse_remote(url: &str) -> Option<RepoRef> {
    let url = url.trim();
    let path = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
    {
        rest.split_once('/')?.1
    } else if let Some((user_host, path)) = url.split_once(':') {
        if !user_host.contains('@') || user_host.contains('/') {
            return None;
        }
        path
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || owner.is_empty() || name.is_empty() {
        return None;
    }
    Some(RepoRef {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

/// Parses a PR URL `https://host/owner/name/pull/N`.
pub fn parse_pr_url(url: &str) -> Option<(RepoRef, u64)> {
    let rest = url
        .trim()
        .strip_prefix("https://")
        .or_else(|| url.trim().strip_prefix("http://"))?;
    let mut parts = rest.trim_end_matches('/').split('/');
    let _host = parts.next()?;
    let owner = parts.next()?;
    let name = parts.next()?;
    if parts.next()? != "pull" {
        return None;
    }
    let number = parts.next()?.parse().ok()?;
    if parts.next().is_some() || owner.is_empty() || name.is_empty() {
        return None;
    }
    Some((
        RepoRef {
            owner: owner.to_string(),
            name: name.to_string(),
        },
        number,
    ))
}

/// The fields of a pull request the check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
    pub state: String,
    pub draft: bool,
    pub head_ref: String,
    pub head_sha: String,
    pub base_repo: String,
}

/// What the PR must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub repo: RepoRef,
    pub branch: String,
    pub head_sha: String,
}

/// Every way `pr` differs from `expected`; empty when it is the lane's open, ready PR.
pub fn mismatches(pr: &PullRequest, expected: &Expectation) -> Vec<String> {
    let mut problems = Vec::new();
    if !expected.repo.same(&pr.base_repo) {
        problems.push(format!(
            "PR is in {} but the lane's origin is {}",
            pr.base_repo,
            expected.repo.full_name()
        ));
    }
    if pr.head_ref != expected.branch {
        problems.push(format!(
            "PR head branch is `{}`, expected the lane branch `{}`",
            pr.head_ref, expected.branch
        ));
    }
    if pr.head_sha != expected.head_sha {
        problems.push(format!(
            "PR head is {} but the lane HEAD is {} (push the lane branch)",
            short(&pr.head_sha),
            short(&expected.head_sha)
        ));
    }
    if pr.state != "open" {
        problems.push(format!("PR is {}, expected open", pr.state));
    }
    if pr.draft {
        problems.push("PR is a draft; mark it ready for review".to_string());
    }
    problems
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Why a GitHub call failed.
#[derive(Debug)]
pub enum Error {
    /// `[github] token_env_var` is unset in the config, or the variable is missing or empty.
    MissingToken { variable: Option<String> },
    /// The URL the agent gave is not a PR URL.
    InvalidPrUrl { url: String },
    /// The lane's origin is not a recognizable GitHub remote.
    UnknownRemote { url: String },
    /// 401 or 403: the token is wrong or lacks access.
    Auth { status: u16, url: String },
    /// 404: no such PR (or the token cannot see it).
    NotFound { url: String },
    /// Any other non-success status.
    Status {
        status: u16,
        url: String,
        body: String,
    },
    /// The request did not complete (connect, TLS, timeout).
    Transport { url: String, message: String },
    /// The reply was not the JSON GitHub documents.
    Malformed { url: String, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingToken { variable: None } => write!(
                f,
                "no GitHub token configured: set [github] token_env_var in maestro.toml to the name of the variable holding it"
            ),
            Error::MissingToken {
                variable: Some(name),
            } => write!(
                f,
                "the GitHub token variable {name} (named by [github] token_env_var) is unset or empty; export it before running"
            ),
            Error::InvalidPrUrl { url } => write!(
                f,
                "`{url}` is not a pull request URL (expected https://github.com/OWNER/REPO/pull/N)"
            ),
            Error::UnknownRemote { url } => write!(
                f,
                "the lane's origin `{url}` is not a GitHub remote (expected git@github.com:OWNER/REPO.git or https://github.com/OWNER/REPO)"
            ),
            Error::Auth { status, url } => write!(
                f,
                "GitHub refused the token ({status}) for {url}; check the token's access to the repository"
            ),
            Error::NotFound { url } => write!(f, "GitHub has no such pull request: {url}"),
            Error::Status { status, url, body } => {
                write!(f, "GitHub answered {status} for {url}: {body}")
            }
            Error::Transport { url, message } => {
                write!(f, "cannot reach GitHub at {url}: {message}")
            }
            Error::Malformed { url, message } => {
                write!(f, "unexpected reply from GitHub for {url}: {message}")
            }
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Whether retrying later could help (the lane's work may still be fine).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Transport { .. })
            || matches!(self, Error::Status { status, .. } if *status >= 500 || *status == 429)
    }
}

/// A GitHub REST client holding the token.
pub struct Client {
    api_url: String,
    token: String,
    agent: ureq::Agent,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl Client {
    /// Builds a client from `[github]`, reading the token from the named variable.
    pub fn from_config(config: &GithubConfig) -> Result<Client, Error> {
        let Some(variable) = &config.token_env_var else {
            return Err(Error::MissingToken { variable: None });
        };
        let token = std::env::var(variable)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| Error::MissingToken {
                variable: Some(variable.clone()),
            })?;
        Ok(Client::new(&config.api_url, token))
    }

    /// Builds a client for `api_url` with an explicit token.
    pub fn new(api_url: &str, token: String) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .user_agent(format!("maestro/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
            agent,
        }
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`.
    pub fn pull_request(&self, repo: &RepoRef, number: u64) -> Result<PullRequest, Error> {
        let url = format!(
            "{}/repos/{}/{}/pulls/{number}",
            self.api_url, repo.owner, repo.name
        );
        let mut response = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .call()
            .map_err(|error| Error::Transport {
                url: url.clone(),
                message: error.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|error| Error::Transport {
                url: url.clone(),
                message: error.to_string(),
            })?;
        match status {
            200 => {}
            401 | 403 => return Err(Error::Auth { status, url }),
            404 => return Err(Error::NotFound { url }),
            _ => {
                return Err(Error::Status {
                    status,
                    url,
                    body: body.chars().take(300).collect(),
                });
            }
        }
        let wire: WirePull = serde_json::from_str(&body).map_err(|error| Error::Malformed {
            url: url.clone(),
            message: error.to_string(),
        })?;
        Ok(PullRequest {
            number: wire.number,
            html_url: wire.html_url,
            state: wire.state,
            draft: wire.draft.unwrap_or(false),
            head_ref: wire.head.ref_name,
            head_sha: wire.head.sha,
            base_repo: wire.base.repo.full_name,
        })
    }
}

#[derive(Deserialize)]
struct WirePull {
    number: u64,
    html_url: String,
    state: String,
    draft: Option<bool>,
    head: WireRef,
    base: WireBase,
}

#[derive(Deserialize)]
struct WireRef {
    #[serde(rename = "ref")]
    ref_name: String,
    sha: String,
}

#[derive(Deserialize)]
struct WireBase {
    repo: WireRepo,
}

#[derive(Deserialize)]
struct WireRepo {
    full_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(owner: &str, name: &str) -> RepoRef {
        RepoRef {
            owner: owner.into(),
            name: name.into(),
        }
    }

    #[test]
    fn remotes_in_every_form() {
        for url in [
            "git@github.com:acme/widgets.git",
            "git@github.com:acme/widgets",
            "ssh://git@github.com/acme/widgets.git",
            "https://github.com/acme/widgets.git",
            "https://github.com/acme/widgets/",
            "https://x-access-token@github.com/acme/widgets",
        ] {
            assert_eq!(parse_remote(url), Some(repo("acme", "widgets")), "{url}");
        }
        assert_eq!(parse_remote("/srv/git/widgets.git"), None);
        assert_eq!(parse_remote("https://github.com/acme"), None);
    }

    #[test]
    fn pr_urls() {
        assert_eq!(
            parse_pr_url("https://github.com/acme/widgets/pull/42"),
            Some((repo("acme", "widgets"), 42))
        );
        assert_eq!(
            parse_pr_url("https://github.com/acme/widgets/issues/42"),
            None
        );
        assert_eq!(parse_pr_url("https://github.com/acme/widgets/pull/x"), None);
    }

    #[test]
    fn mismatches_name_every_difference() {
        let pr = PullRequest {
            number: 1,
            html_url: "https://github.com/acme/widgets/pull/1".into(),
            state: "closed".into(),
            draft: true,
            head_ref: "other".into(),
            head_sha: "aaaaaaaaaaaaaaaa".into(),
            base_repo: "acme/gadgets".into(),
        };
        let expected = Expectation {
            repo: repo("Acme", "Widgets"),
            branch: "x/demo-abc-1".into(),
            head_sha: "bbbbbbbbbbbbbbbb".into(),
        };
        let problems = mismatches(&pr, &expected);
        assert_eq!(problems.len(), 5, "{problems:?}");
        let ok = PullRequest {
            state: "open".into(),
            draft: false,
            head_ref: "x/demo-abc-1".into(),
            head_sha: "bbbbbbbbbbbbbbbb".into(),
            base_repo: "acme/widgets".into(),
            ..pr
        };
        assert!(mismatches(&ok, &expected).is_empty());
    }
}
