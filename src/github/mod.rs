//! GitHub, used only at the review boundary: is the handoff PR the lane's work, open and ready?
//!
//! The repository comes from the lane's `origin` (ssh or https form), the token only from the
//! environment variable named by `[github] token_env_var` — never from ambient `gh` auth, so the
//! operator controls exactly which credential Maestro uses. The token is sent in one header and
//! appears nowhere else: not in `Debug`, errors or logs.
//!
//! Neither the agent's PR URL nor GitHub's reply is trusted as text. The URL is parsed strictly
//! (`https://<web host>/OWNER/REPO/pull/N`, the web host derived from `[github] api_url`, no
//! user name, query or fragment) and only used to find the PR; what Maestro posts is GitHub's
//! own `html_url`, itself checked the same way. Redirects are not followed, and text from a
//! reply is escaped before it reaches an error message. It does not decide what a failed check
//! means for the attempt; the run does.
//!
//! **Invariant:** only this module talks to GitHub.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::config::GithubConfig;

mod url;

pub use url::{
    PrUrlProblem, RepoRef, WebHost, parse_pr_url_on, parse_remote, shown, without_userinfo,
};

/// Time limit for one GitHub request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// [`parse_pr_url_on`] with the web host of `[github] api_url`.
pub fn parse_pr_url(url: &str, api_url: &str) -> Result<(RepoRef, u64), Error> {
    let web = WebHost::from_api_url(api_url).ok_or_else(|| Error::NoWebHost {
        api_url: api_url.to_string(),
    })?;
    parse_pr_url_on(url, &web).map_err(|problem| Error::InvalidPrUrl { problem, web })
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
    /// `owner/name` of the repository the head branch lives in; `None` when GitHub has no
    /// repository for it any more (a deleted fork).
    pub head_repo: Option<String>,
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
            shown(&pr.base_repo),
            expected.repo.full_name()
        ));
    }
    // A fork's branch can be the lane's name and even point at the lane's commit, but it is
    // someone else's repository: what gets merged is not what Maestro validated.
    match &pr.head_repo {
        None => problems.push(format!(
            "PR head repository is unknown (a deleted fork?); open the PR from the lane branch in {}",
            expected.repo.full_name()
        )),
        Some(head_repo) if !expected.repo.same(head_repo) => problems.push(format!(
            "PR head branch is in {} but must be in the lane's origin {}; push the lane branch there and open the PR from it",
            shown(head_repo),
            expected.repo.full_name()
        )),
        Some(_) => {}
    }
    if pr.head_ref != expected.branch {
        problems.push(format!(
            "PR head branch is `{}`, expected the lane branch `{}`",
            shown(&pr.head_ref),
            expected.branch
        ));
    }
    if pr.head_sha != expected.head_sha {
        problems.push(format!(
            "PR head is {} but the lane HEAD is {} (push the lane branch)",
            shown(short(&pr.head_sha)),
            short(&expected.head_sha)
        ));
    }
    if pr.state != "open" {
        problems.push(format!("PR is {}, expected open", shown(&pr.state)));
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
    /// The URL the agent gave is not a PR URL on the configured GitHub host.
    InvalidPrUrl { problem: PrUrlProblem, web: WebHost },
    /// `[github] api_url` has no host a PR URL can be checked against.
    NoWebHost { api_url: String },
    /// GitHub answered with a redirect, which Maestro does not follow: the answer would come
    /// from wherever the redirect points. `location` is escaped.
    Redirected {
        status: u16,
        url: String,
        location: String,
    },
    /// The reply is JSON but not a PR Maestro can trust: its `html_url` is not the PR asked
    /// for on the configured host.
    Untrusted { url: String, message: String },
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
            Error::InvalidPrUrl { problem, web } => write!(
                f,
                "the pull request URL {problem}; give it as https://{web}/OWNER/REPO/pull/N"
            ),
            Error::NoWebHost { api_url } => write!(
                f,
                "[github] api_url `{api_url}` has no host a pull request URL can be checked against; use https://api.github.com or https://HOST/api/v3"
            ),
            Error::Redirected {
                status,
                url,
                location,
            } => write!(
                f,
                "GitHub answered {status} for {url}, redirecting to `{location}`; redirects are not followed: check [github] api_url and whether the repository moved"
            ),
            Error::Untrusted { url, message } => {
                write!(f, "GitHub's answer for {url} is not trusted: {message}")
            }
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
                write!(f, "GitHub answered {status} for {url}: {}", shown(body))
            }
            Error::Transport { url, message } => {
                write!(f, "cannot reach GitHub at {url}: {message}")
            }
            Error::Malformed { url, message } => {
                write!(
                    f,
                    "unexpected reply from GitHub for {url}: {}",
                    shown(message)
                )
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
    /// Where the PR pages GitHub links to must be; `None` when the API URL has no such host.
    web: Option<WebHost>,
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
            // A redirect would make another host's answer the PR check's evidence; a moved
            // repository is better reported than silently followed.
            .max_redirects(0)
            .user_agent(format!("maestro/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Client {
            api_url: api_url.trim_end_matches('/').to_string(),
            web: WebHost::from_api_url(api_url),
            token,
            agent,
        }
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`. The answer must be that PR: its `html_url`
    /// is checked like an agent's URL and must name the same repository and number, so the
    /// URL Maestro posts is GitHub's own and well-formed.
    pub fn pull_request(&self, repo: &RepoRef, number: u64) -> Result<PullRequest, Error> {
        let web = self.web.as_ref().ok_or_else(|| Error::NoWebHost {
            api_url: self.api_url.clone(),
        })?;
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
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            return Err(Error::Redirected {
                status,
                url,
                location: shown(location),
            });
        }
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
        match parse_pr_url_on(&wire.html_url, web) {
            Ok((linked, linked_number))
                if repo.same(&linked.full_name())
                    && linked_number == number
                    && wire.number == number => {}
            Ok(_) => {
                return Err(Error::Untrusted {
                    url,
                    message: format!(
                        "its html_url `{}` is not pull request {number} of {}",
                        shown(&wire.html_url),
                        repo.full_name()
                    ),
                });
            }
            Err(problem) => {
                return Err(Error::Untrusted {
                    url,
                    message: format!("its html_url {problem} (expected https://{web}/…)"),
                });
            }
        }
        Ok(PullRequest {
            number: wire.number,
            html_url: wire.html_url,
            state: wire.state,
            draft: wire.draft.unwrap_or(false),
            head_ref: wire.head.ref_name,
            head_sha: wire.head.sha,
            head_repo: wire.head.repo.map(|repo| repo.full_name),
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
    /// Null when the head repository was deleted.
    #[serde(default)]
    repo: Option<WireRepo>,
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
    fn mismatches_name_every_difference() {
        let pr = PullRequest {
            number: 1,
            html_url: "https://github.com/acme/widgets/pull/1".into(),
            state: "closed".into(),
            draft: true,
            head_ref: "other".into(),
            head_sha: "aaaaaaaaaaaaaaaa".into(),
            head_repo: Some("mallory/widgets".into()),
            base_repo: "acme/gadgets".into(),
        };
        let expected = Expectation {
            repo: repo("Acme", "Widgets"),
            branch: "x/demo-abc-1".into(),
            head_sha: "bbbbbbbbbbbbbbbb".into(),
        };
        let problems = mismatches(&pr, &expected);
        assert_eq!(problems.len(), 6, "{problems:?}");
        let ok = PullRequest {
            state: "open".into(),
            draft: false,
            head_ref: "x/demo-abc-1".into(),
            head_sha: "bbbbbbbbbbbbbbbb".into(),
            head_repo: Some("acme/widgets".into()),
            base_repo: "acme/widgets".into(),
            ..pr
        };
        assert!(mismatches(&ok, &expected).is_empty());
        let orphan = PullRequest {
            head_repo: None,
            ..ok
        };
        assert_eq!(
            mismatches(&orphan, &expected),
            [
                "PR head repository is unknown (a deleted fork?); open the PR from the lane branch in Acme/Widgets"
            ]
        );
    }

    #[test]
    fn an_invalid_pr_url_error_never_repeats_the_url() {
        let error = parse_pr_url(
            "https://x-access-token:ghp_secret@github.com/acme/widgets/pull/42",
            "https://api.github.com",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the pull request URL carries a user name or password; give it as https://github.com/OWNER/REPO/pull/N"
        );
    }
}
