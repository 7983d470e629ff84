//! The one error type of the GitHub boundary, with its context as data.
//!
//! Every message names the URL asked (never the token, which is only ever in a request header)
//! and quotes GitHub's text through [`shown`], so a hostile reply cannot put control characters
//! or a forged line into a log, a record or a tracker comment. What an error means for a lane
//! (retry, wait, human) is decided by the caller; [`Error::is_transient`] only says whether
//! asking again later could give another answer.

use std::fmt;

use super::url::{PrUrlProblem, WebHost, shown};

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
    /// 401 or 403 (other than a rate limit): the token is wrong or lacks access.
    Auth { status: u16, url: String },
    /// 403 or 429 with the rate limit spent: asking again after `reset` (epoch seconds, when
    /// GitHub said) will work.
    RateLimited { url: String, reset: Option<u64> },
    /// 404: no such object (or the token cannot see it). `what` names it: `pull request`,
    /// `commit`, ….
    NotFound { what: &'static str, url: String },
    /// 405 on a merge: GitHub will not merge the PR as it is (not mergeable, blocked by branch
    /// protection, a merge method the repository does not allow). `message` is GitHub's,
    /// escaped.
    NotMergeable { url: String, message: String },
    /// 409 on a merge: the PR's head is no longer the commit Maestro asked to merge, so
    /// nothing was merged. `message` is GitHub's, escaped.
    HeadMoved { url: String, message: String },
    /// GitHub's GraphQL API answered with `errors`; each message escaped.
    GraphQl { url: String, messages: Vec<String> },
    /// A listing is longer than Maestro reads (`limit` items); a partial list could hide a
    /// change request, so it is an error, never a truncated answer.
    TooMany {
        url: String,
        what: &'static str,
        limit: usize,
    },
    /// Any other non-success status.
    Status {
        status: u16,
        url: String,
        body: String,
    },
    /// The request did not complete (connect, TLS, timeout, a body over the size limit).
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
            Error::RateLimited { url, reset } => match reset {
                Some(reset) => write!(
                    f,
                    "GitHub's rate limit is spent (at {url}); it resets at {}",
                    crate::clock::format_ms(reset.saturating_mul(1000))
                ),
                None => write!(
                    f,
                    "GitHub's rate limit is spent (at {url}); asking again later"
                ),
            },
            Error::NotFound { what, url } => write!(f, "GitHub has no such {what}: {url}"),
            Error::NotMergeable { url, message } => {
                write!(f, "GitHub will not merge ({url}, 405): {}", shown(message))
            }
            Error::HeadMoved { url, message } => write!(
                f,
                "GitHub did not merge: the PR head is no longer the validated commit ({url}, 409): {}",
                shown(message)
            ),
            Error::GraphQl { url, messages } => {
                write!(f, "GitHub's GraphQL API answered errors for {url}: ")?;
                let shown_messages: Vec<String> =
                    messages.iter().take(3).map(|m| shown(m)).collect();
                write!(f, "{}", shown_messages.join("; "))
            }
            Error::TooMany { url, what, limit } => write!(
                f,
                "GitHub lists more than {limit} {what} at {url}; maestro reads at most that many, so this PR needs a human"
            ),
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
        matches!(self, Error::Transport { .. } | Error::RateLimited { .. })
            || matches!(self, Error::Status { status, .. } if *status >= 500 || *status == 429)
    }
}
