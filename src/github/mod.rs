//! GitHub, used at the review boundary: is the handoff PR the lane's work, open and ready? And,
//! for the post-review lifecycle, what do its reviews, threads and checks say; merge it; delete
//! its branch.
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
//! reply is escaped before it reaches an error message, and every string of an answer is cut to
//! a bound before anything keeps it. It does not decide what a failed check, a review or a
//! refused merge means for a lane; the run and `review` do.
//!
//! Files: `error.rs` the boundary's error; `http.rs` one exchange (headers, conditional GETs,
//! statuses); `etag.rs` the ETag cache (in memory, optionally persisted); `reviews.rs` reviews
//! and review threads (GraphQL, `graphql/review_threads.graphql`); `checks.rs` check runs and
//! commit statuses; `land.rs` merge and branch deletion; `repository.rs` whether the token can
//! see the repository (`maestro doctor`); `url.rs` parsing.
//!
//! **Invariant:** only this module talks to GitHub.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::GithubConfig;

mod checks;
mod error;
mod etag;
mod http;
mod land;
mod repository;
mod reviews;
mod url;

pub use checks::{CheckRun, CombinedStatus, CommitStatus};
pub use error::Error;
pub use etag::EtagCache;
pub use http::Usage;
pub use land::{BranchDeletion, MergeMethod, Merged};
pub use repository::Repository;
pub use reviews::{Review, ReviewState, ReviewThread, ThreadComment};
pub use url::{
    PrUrlProblem, RepoRef, WebHost, parse_pr_url_on, parse_remote, shown, without_userinfo,
};

use http::{Bounded, cut};

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
    /// The branch the PR merges into.
    pub base_ref: String,
    pub merged: bool,
    /// `None` while GitHub is still computing whether the PR can be merged.
    pub mergeable: Option<bool>,
    /// GitHub's `mergeable_state`: `clean`, `blocked`, `behind`, `dirty`, `unstable`,
    /// `has_hooks`, `draft` or `unknown` (escaped when shown; any other text is kept as is).
    pub mergeable_state: String,
    /// The merge (or squash, or rebase) commit once merged; before that GitHub's test merge.
    pub merge_commit_sha: Option<String>,
    /// Who merged it, once merged.
    pub merged_by: Option<String>,
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

/// A GitHub REST client holding the token.
pub struct Client {
    api_url: String,
    /// Where GraphQL queries go: `{api_url}/graphql`, or `…/api/graphql` for GitHub
    /// Enterprise Server's `…/api/v3`.
    graphql_url: String,
    /// Where the PR pages GitHub links to must be; `None` when the API URL has no such host.
    web: Option<WebHost>,
    token: String,
    agent: ureq::Agent,
    cache: Mutex<EtagCache>,
    usage: Mutex<Usage>,
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
        let api_url = api_url.trim_end_matches('/').to_string();
        Client {
            graphql_url: graphql_url(&api_url),
            web: WebHost::from_api_url(&api_url),
            api_url,
            token,
            agent,
            cache: Mutex::new(EtagCache::in_memory()),
            usage: Mutex::new(Usage::default()),
        }
    }

    /// This client with the ETag cache persisted at `path` (see
    /// [`crate::workspace::Layout::github_etag_cache_file`]): ETags another process saved are
    /// used, and [`Client::save_etag_cache`] writes this client's back.
    pub fn with_etag_cache(self, path: &Path) -> Client {
        Client {
            cache: Mutex::new(EtagCache::load(path)),
            ..self
        }
    }

    /// Writes the ETag cache to its file when it changed; `Ok(false)` when there was nothing to
    /// write. A failure loses nothing but future 304s.
    pub fn save_etag_cache(&self) -> std::io::Result<bool> {
        self.cache().save()
    }

    /// What this client's requests cost so far.
    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> MutexGuard<'_, EtagCache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `{api_url}/repos/{owner}/{name}`.
    fn repo_url(&self, repo: &RepoRef) -> String {
        format!("{}/repos/{}/{}", self.api_url, repo.owner, repo.name)
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`. The answer must be that PR: its `html_url`
    /// is checked like an agent's URL and must name the same repository and number, so the
    /// URL Maestro posts is GitHub's own and well-formed.
    pub fn pull_request(&self, repo: &RepoRef, number: u64) -> Result<PullRequest, Error> {
        let web = self.web.as_ref().ok_or_else(|| Error::NoWebHost {
            api_url: self.api_url.clone(),
        })?;
        let url = format!("{}/pulls/{number}", self.repo_url(repo));
        let wire: WirePull = self.get_json(&url, "pull request")?.value;
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
            base_ref: wire.base.ref_name,
            merged: wire.merged.unwrap_or(false),
            mergeable: wire.mergeable,
            mergeable_state: wire.mergeable_state.unwrap_or_else(|| "unknown".into()),
            merge_commit_sha: wire.merge_commit_sha,
            merged_by: wire.merged_by.map(|user| user.login),
        })
    }
}

/// Where GraphQL queries go for a REST API URL (without its trailing slash).
fn graphql_url(api_url: &str) -> String {
    match api_url.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{api_url}/graphql"),
    }
}

/// Whether `text` is a commit id as GitHub writes it (40 or 64 lowercase hex digits): only such
/// text goes into a URL path or a merge request.
pub fn is_commit_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Serialize, Deserialize)]
struct WirePull {
    number: u64,
    html_url: String,
    state: String,
    draft: Option<bool>,
    head: WireRef,
    base: WireBase,
    #[serde(default)]
    merged: Option<bool>,
    #[serde(default)]
    mergeable: Option<bool>,
    #[serde(default)]
    mergeable_state: Option<String>,
    #[serde(default)]
    merge_commit_sha: Option<String>,
    #[serde(default)]
    merged_by: Option<WireUser>,
}

impl Bounded for WirePull {
    fn bound(&mut self) {
        // Branch names and repository names are bounded by GitHub itself; the URL and the
        // free-form fields are cut so a hostile or broken answer stays small when kept.
        cut(&mut self.html_url, 512);
        cut(&mut self.state, 64);
        cut(&mut self.head.ref_name, 512);
        cut(&mut self.head.sha, 128);
        cut(&mut self.base.ref_name, 512);
        for text in [&mut self.mergeable_state, &mut self.merge_commit_sha]
            .into_iter()
            .flatten()
        {
            cut(text, 128);
        }
        if let Some(user) = &mut self.merged_by {
            cut(&mut user.login, 100);
        }
    }
}

/// A GitHub user as answers name one; `login` only.
#[derive(Serialize, Deserialize)]
struct WireUser {
    login: String,
}

#[derive(Serialize, Deserialize)]
struct WireRef {
    #[serde(rename = "ref")]
    ref_name: String,
    sha: String,
    /// Null when the head repository was deleted.
    #[serde(default)]
    repo: Option<WireRepo>,
}

#[derive(Serialize, Deserialize)]
struct WireBase {
    #[serde(rename = "ref", default)]
    ref_name: String,
    repo: WireRepo,
}

#[derive(Serialize, Deserialize)]
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
            base_ref: "main".into(),
            merged: false,
            mergeable: Some(true),
            mergeable_state: "clean".into(),
            merge_commit_sha: None,
            merged_by: None,
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
    fn graphql_lives_beside_the_rest_api() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(
            graphql_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/graphql"
        );
    }

    #[test]
    fn only_hex_commit_ids_are_commit_ids() {
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(is_commit_id(&"0123456789abcdef".repeat(4)));
        assert!(!is_commit_id(&"A".repeat(40)));
        assert!(!is_commit_id("abc123"));
        assert!(!is_commit_id(&format!("{}/../x", "a".repeat(35))));
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
