//! The tracker boundary's one error type, with stable categories callers branch on.
//!
//! Variants carry their context as data (operation, status, names, what exists). `Display` is
//! short, lowercase and says what to do. Nothing here ever holds a secret: the missing-secret
//! variant names the variable, never its value.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a tracker call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The environment variable named by `[tracker] api_key_env_var` is unset or empty.
    MissingSecret { var: String },
    /// The tracker refused the credentials (HTTP 401/403 or an authentication error).
    Auth {
        operation: &'static str,
        detail: String,
    },
    /// Rate limited (HTTP 429, or `RATELIMITED` in the body) and the reset did not fit in the
    /// call's deadline or retry budget.
    RateLimited {
        operation: &'static str,
        limit: RateLimit,
    },
    /// No usable HTTP exchange: connect failure, timeout, broken connection.
    Transport {
        operation: &'static str,
        detail: String,
        timed_out: bool,
    },
    /// A non-success HTTP status that is neither auth nor rate limiting (5xx after retries).
    Status {
        operation: &'static str,
        status: u16,
        body: String,
    },
    /// The tracker answered with GraphQL `errors`, or a mutation reported `success: false`.
    GraphQl {
        operation: &'static str,
        messages: Vec<String>,
    },
    /// The answer was not the shape the operation promises (bad JSON, missing fields).
    Malformed {
        operation: &'static str,
        detail: String,
    },
    /// A paginated read could not be completed safely (missing or repeated cursor, truncated
    /// nested list); nothing from it is returned.
    Pagination {
        operation: &'static str,
        detail: String,
    },
    /// No project with this slug is visible.
    ProjectNotFound { slug: String },
    /// No visible issue of the project has this id.
    IssueNotFound { id: String },
    /// The team has no workflow state with this name.
    UnknownState {
        team: String,
        name: String,
        known: Vec<String>,
    },
    /// No label with this name is usable on the team's issues.
    UnknownLabel {
        team: String,
        name: String,
        known: Vec<String>,
    },
    /// A local issue file or directory could not be read or written.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A local issue file breaks the format, at `line` (1-based).
    InvalidIssueFile {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What a rate-limited answer said about when to come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    /// From `retry-after` (seconds).
    pub retry_after: Option<Duration>,
    /// From `x-ratelimit-requests-reset`, in milliseconds since the epoch.
    pub reset_at_ms: Option<u64>,
}

impl RateLimit {
    /// How long to wait from `now_ms` before retrying, when the answer said.
    pub fn wait(&self, now_ms: u64) -> Option<Duration> {
        self.retry_after.or_else(|| {
            self.reset_at_ms
                .map(|reset| Duration::from_millis(reset.saturating_sub(now_ms)))
        })
    }
}

/// The stable category of an [`Error`], for records, logs and exit-code decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    MissingSecret,
    Auth,
    RateLimited,
    Transport,
    Status,
    GraphQl,
    Malformed,
    Pagination,
    NotFound,
    UnknownState,
    UnknownLabel,
    Io,
}

impl Category {
    /// The snake_case name written to records and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::MissingSecret => "missing_secret",
            Category::Auth => "auth",
            Category::RateLimited => "rate_limited",
            Category::Transport => "transport",
            Category::Status => "status",
            Category::GraphQl => "graphql",
            Category::Malformed => "malformed",
            Category::Pagination => "pagination",
            Category::NotFound => "not_found",
            Category::UnknownState => "unknown_state",
            Category::UnknownLabel => "unknown_label",
            Category::Io => "io",
        }
    }
}

impl Error {
    pub fn category(&self) -> Category {
        match self {
            Error::MissingSecret { .. } => Category::MissingSecret,
            Error::Auth { .. } => Category::Auth,
            Error::RateLimited { .. } => Category::RateLimited,
            Error::Transport { .. } => Category::Transport,
            Error::Status { .. } => Category::Status,
            Error::GraphQl { .. } => Category::GraphQl,
            Error::Malformed { .. } | Error::InvalidIssueFile { .. } => Category::Malformed,
            Error::Pagination { .. } => Category::Pagination,
            Error::ProjectNotFound { .. } | Error::IssueNotFound { .. } => Category::NotFound,
            Error::UnknownState { .. } => Category::UnknownState,
            Error::UnknownLabel { .. } => Category::UnknownLabel,
            Error::Io { .. } => Category::Io,
        }
    }

    /// Whether trying again later may succeed without anyone changing anything: rate limits,
    /// transport failures and server errors. Everything else needs a fix first.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::RateLimited { .. } | Error::Transport { .. } => true,
            Error::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Whether fixing the configuration (not the tracker) is what it takes.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::MissingSecret { .. } | Error::ProjectNotFound { .. }
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingSecret { var } => write!(
                f,
                "environment variable {var} (named by tracker.api_key_env_var) is unset or empty; export it with a Linear API key"
            ),
            Error::Auth { operation, detail } => write!(
                f,
                "linear refused the API key in {operation}: {detail}; check the key named by tracker.api_key_env_var"
            ),
            Error::RateLimited { operation, limit } => {
                write!(f, "linear rate limit hit in {operation}")?;
                match (limit.retry_after, limit.reset_at_ms) {
                    (Some(after), _) => write!(f, "; retry after {}s", after.as_secs()),
                    (None, Some(reset)) => {
                        write!(f, "; resets at {}", crate::clock::format_ms(reset))
                    }
                    (None, None) => write!(f, "; retry later"),
                }
            }
            Error::Transport {
                operation,
                detail,
                timed_out,
            } => {
                if *timed_out {
                    write!(f, "linear did not answer {operation} in time: {detail}")?;
                } else {
                    write!(f, "cannot reach linear for {operation}: {detail}")?;
                }
                // The usual causes, in the order an operator can rule them out.
                write!(
                    f,
                    "; check this host's network and DNS, the proxy variables (HTTPS_PROXY, ALL_PROXY, NO_PROXY) and tracker.api_url"
                )
            }
            Error::Status {
                operation,
                status,
                body,
            } => write!(f, "linear answered {operation} with http {status}: {body}"),
            Error::GraphQl {
                operation,
                messages,
            } => write!(f, "linear rejected {operation}: {}", messages.join("; ")),
            Error::Malformed { operation, detail } => {
                write!(f, "linear's answer to {operation} is malformed: {detail}")
            }
            Error::Pagination { operation, detail } => write!(
                f,
                "cannot page through {operation}: {detail}; nothing from it was used"
            ),
            Error::ProjectNotFound { slug } => write!(
                f,
                "no project with slug id \"{slug}\" is visible; check tracker.project_slug and that the key's user can see the project"
            ),
            Error::IssueNotFound { id } => {
                write!(f, "issue {id} is not a visible issue of the project")
            }
            Error::UnknownState { team, name, known } => write!(
                f,
                "team {team} has no workflow state \"{name}\"; it has: {}",
                known.join(", ")
            ),
            Error::UnknownLabel { team, name, known } => {
                write!(f, "no label \"{name}\" is usable on team {team}'s issues; ")?;
                if known.is_empty() {
                    write!(f, "there are none, create it in the tracker")
                } else {
                    write!(f, "usable labels: {}", known.join(", "))
                }
            }
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::InvalidIssueFile {
                path,
                line,
                message,
            } => write!(f, "invalid issue file {}:{line}: {message}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_names_the_variable_only() {
        let error = Error::MissingSecret {
            var: "LINEAR_API_KEY".into(),
        };
        assert_eq!(error.category().as_str(), "missing_secret");
        assert!(
            error
                .to_string()
                .starts_with("environment variable LINEAR_API_KEY ")
        );
    }

    #[test]
    fn rate_limit_wait_prefers_retry_after() {
        let limit = RateLimit {
            retry_after: Some(Duration::from_secs(2)),
            reset_at_ms: Some(10_000),
        };
        assert_eq!(limit.wait(5_000), Some(Duration::from_secs(2)));
        let limit = RateLimit {
            retry_after: None,
            reset_at_ms: Some(10_000),
        };
        assert_eq!(limit.wait(9_000), Some(Duration::from_secs(1)));
        assert_eq!(limit.wait(11_000), Some(Duration::ZERO));
    }

    #[test]
    fn transient_errors() {
        let status = |status| Error::Status {
            operation: "Op",
            status,
            body: String::new(),
        };
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        assert!(
            !Error::Auth {
                operation: "Op",
                detail: String::new()
            }
            .is_transient()
        );
    }

    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<Error>() <= 80);
    }
}
