//! The review handoff check: what `issue_review_handoff` names, checked against the lane when
//! the agent calls it and again after validation.
//!
//! WORKFLOW.md's `[handoff] mode` decides what is handed off. `pull_request`: a GitHub pull
//! request, read through the GitHub API with the token from the named variable (repository,
//! head branch, head SHA, open, not a draft). `branch`: the lane's branch as pushed to the
//! source repository's `origin`, read with `git ls-remote`, so any git server works and no token
//! is needed. Either way the repository is the `origin` of `repo_root`, the URL the lane's
//! `origin` was set to at creation: the lane's own git config is the agent's to rewrite (`git
//! remote set-url`, an `insteadOf` rule), so nothing here reads it; `git ls-remote` runs in
//! `repo_root`, never in the lane. From the lane only its `HEAD` is read.
//! This module decides whether a handoff matches; the tool call around it, its recording and
//! its result text are `tools`.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::verdict::Failure;
use crate::bounds::{self, INLINE_EXCERPT_CHARS, MAX_SHORT_BYTES};
use crate::config::GithubConfig;
use crate::github::{self, RepoRef};
use crate::shell;
use crate::workflow::HandoffMode;
use crate::workspace::lane;
use crate::workspace::record::ErrorClass;

/// Time limit for one `git ls-remote` (a slow or unreachable remote).
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(120);

/// A validated review handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub review: Review,
    /// The agent's summary, secret values scrubbed (empty until the tool call sets it).
    pub summary: String,
    /// The lane HEAD the handoff was checked against.
    pub head_sha: String,
}

/// What was handed off for review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    /// A pull request: GitHub's own, checked `html_url` (never the agent's text).
    PullRequest {
        url: String,
        repo: RepoRef,
        number: u64,
    },
    /// The lane branch on `origin`. `remote` is origin's URL as shown to people: without user
    /// name or password, query or fragment; a local path relative to `repo_root`.
    Branch { remote: String, branch: String },
}

impl Handoff {
    /// The pull request's URL, in `pull_request` mode.
    pub fn pr_url(&self) -> Option<&str> {
        match &self.review {
            Review::PullRequest { url, .. } => Some(url),
            Review::Branch { .. } => None,
        }
    }

    /// What the summary line says was handed off: `pr=URL` or `branch=B commit=SHA`.
    pub fn outcome_field(&self) -> String {
        match &self.review {
            Review::PullRequest { url, .. } => format!("pr={url}"),
            Review::Branch { branch, .. } => format!("branch={branch} commit={}", self.head_sha),
        }
    }

    /// The operator's next step once the handoff is written.
    pub fn next_action(&self) -> String {
        match &self.review {
            Review::PullRequest { .. } => "review the pull request".to_string(),
            Review::Branch { remote, branch } => format!("review branch {branch} on {remote}"),
        }
    }
}

/// What a handoff handed over for review: a pull request, or a branch pushed to origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandedOff {
    PullRequest {
        url: String,
    },
    Branch {
        branch: String,
        commit: String,
        /// Origin as shown to people (no credentials; a local path relative to `repo_root`).
        remote: String,
    },
}

impl Handoff {
    /// What this handoff hands over, for the summary and `--json`.
    pub fn handed_off(&self) -> HandedOff {
        match &self.review {
            Review::PullRequest { url, .. } => HandedOff::PullRequest { url: url.clone() },
            Review::Branch { remote, branch } => HandedOff::Branch {
                branch: branch.clone(),
                commit: self.head_sha.clone(),
                remote: remote.clone(),
            },
        }
    }
}

/// Why a handoff could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffProblem {
    /// The GitHub credential is unusable (variable unset or empty, or the token refused): a
    /// human must fix the host; `error_class` says which.
    Credentials {
        error_class: ErrorClass,
        message: String,
    },
    /// The handoff does not match the lane (or could not be read); the agent can fix and retry.
    Rejected(Vec<String>),
}

/// Everything a handoff is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    pub mode: HandoffMode,
    pub lane: &'a Path,
    /// Where the lane lives: its `HEAD` is read there (on an ssh host, over ssh).
    pub place: &'a crate::worker::Place,
    /// The source checkout: its `origin` is the repository the handoff must be in.
    pub repo_root: &'a Path,
    /// The lane branch Maestro created; the only branch that may be handed off.
    pub branch: &'a str,
    pub github: &'a GithubConfig,
    /// Secret variables removed from `git ls-remote`'s environment.
    pub remove_env: &'a [String],
}

impl Checker<'_> {
    /// The argument `issue_review_handoff` names the handoff with in this mode.
    pub fn argument(&self) -> &'static str {
        match self.mode {
            HandoffMode::PullRequest => "pr_url",
            HandoffMode::Branch => "branch",
        }
    }

    /// Checks what the agent named (a PR URL or a branch, by mode) against the lane now.
    pub fn check(&self, named: &str) -> Result<Handoff, HandoffProblem> {
        match self.mode {
            HandoffMode::PullRequest => self.check_pr(named),
            HandoffMode::Branch => self.check_branch(named),
        }
    }

    /// After validation: the recorded handoff must still match the lane's `HEAD` (validation
    /// or the agent may have moved it). A mismatch is retryable; an unusable GitHub credential
    /// needs a human.
    pub fn recheck(&self, handoff: &Handoff) -> Result<(), Failure> {
        match &handoff.review {
            Review::PullRequest { url, .. } => match self.check_pr(url) {
                Ok(_) => Ok(()),
                Err(HandoffProblem::Credentials {
                    error_class,
                    message,
                }) => Err(Failure::human(error_class, message)),
                Err(HandoffProblem::Rejected(reasons)) => Err(Failure::retryable(
                    ErrorClass::PrCheckFailed,
                    format!(
                        "the pull request no longer matches the lane: {}",
                        reasons.join("; ")
                    ),
                )),
            },
            Review::Branch { branch, .. } => {
                self.check_branch(branch).map(|_| ()).map_err(|problem| {
                    // Branch checks never need a credential: every problem is a mismatch (or an
                    // unreachable origin), which another attempt can fix.
                    let reasons = match problem {
                        HandoffProblem::Credentials { message, .. } => vec![message],
                        HandoffProblem::Rejected(reasons) => reasons,
                    };
                    Failure::retryable(
                        ErrorClass::BranchCheckFailed,
                        format!(
                            "the branch on origin no longer matches the lane: {}",
                            reasons.join("; ")
                        ),
                    )
                })
            }
        }
    }

    /// The PR check: repository (from `repo_root`'s origin), head ref, head SHA, open, not draft.
    fn check_pr(&self, pr_url: &str) -> Result<Handoff, HandoffProblem> {
        let rejected = |reason: String| HandoffProblem::Rejected(vec![reason]);
        let (pr_repo, number) = github::parse_pr_url(pr_url, &self.github.api_url)
            .map_err(|error| rejected(error.to_string()))?;
        let origin =
            lane::origin_url(self.repo_root).map_err(|error| rejected(error.to_string()))?;
        let repo = github::parse_remote(&origin).ok_or_else(|| {
            rejected(
                github::Error::UnknownRemote {
                    url: origin.clone(),
                }
                .to_string(),
            )
        })?;
        let head_sha = self
            .place
            .head_sha(self.lane)
            .map_err(|error| rejected(error.to_string()))?;
        let client = github::Client::from_config(self.github).map_err(|error| {
            HandoffProblem::Credentials {
                error_class: ErrorClass::GithubTokenMissing,
                message: error.to_string(),
            }
        })?;
        let pr = client
            .pull_request(&pr_repo, number)
            .map_err(|error| match error {
                github::Error::Auth { .. } => HandoffProblem::Credentials {
                    error_class: ErrorClass::GithubAuth,
                    message: error.to_string(),
                },
                other => rejected(other.to_string()),
            })?;
        let expected = github::Expectation {
            repo: repo.clone(),
            branch: self.branch.to_string(),
            head_sha: head_sha.clone(),
        };
        let problems = github::mismatches(&pr, &expected);
        if !problems.is_empty() {
            return Err(HandoffProblem::Rejected(problems));
        }
        Ok(Handoff {
            // GitHub's own, checked URL: the agent's text is never posted or printed.
            review: Review::PullRequest {
                url: pr.html_url,
                repo,
                number,
            },
            summary: String::new(),
            head_sha,
        })
    }

    /// The branch check: the lane's own branch, whose tip on `repo_root`'s origin is exactly
    /// the lane's `HEAD`.
    fn check_branch(&self, named: &str) -> Result<Handoff, HandoffProblem> {
        let rejected = |reason: String| HandoffProblem::Rejected(vec![reason]);
        let named = named.trim();
        if named != self.branch {
            return Err(rejected(format!(
                "branch {} is not this lane's branch; push and hand off {}",
                bounds::excerpt(named, INLINE_EXCERPT_CHARS),
                self.branch
            )));
        }
        let origin = lane::origin_url(self.repo_root).map_err(|_| {
            rejected(
                "the source repository has no origin remote, so there is nothing to push the branch to; the operator must set repo_root's origin"
                    .to_string(),
            )
        })?;
        let remote = display_remote(&origin, self.repo_root);
        let head_sha = self
            .place
            .head_sha(self.lane)
            .map_err(|error| rejected(error.to_string()))?;
        let push = format!("git push origin HEAD:refs/heads/{}", self.branch);
        match ls_remote(self.repo_root, self.branch, self.remove_env) {
            Err(detail) => Err(rejected(format!(
                "cannot read branch {} on origin ({remote}): {}",
                self.branch,
                detail.replace(&origin, &remote)
            ))),
            Ok(None) => Err(rejected(format!(
                "origin ({remote}) has no branch {}; push it first ({push}) and call again",
                self.branch
            ))),
            Ok(Some(tip)) if tip != head_sha => Err(rejected(format!(
                "branch {} on origin is at {tip} but the lane HEAD is {head_sha}; push the lane branch ({push}) and call again",
                self.branch
            ))),
            Ok(Some(_)) => Ok(Handoff {
                review: Review::Branch {
                    remote,
                    branch: self.branch.to_string(),
                },
                summary: String::new(),
                head_sha,
            }),
        }
    }
}

/// The tip of `refs/heads/<branch>` on `repo_root`'s origin (`None`: no such branch), or why it
/// could not be read. Runs in `repo_root`, so only the operator's git config applies.
fn ls_remote(
    repo_root: &Path,
    branch: &str,
    remove_env: &[String],
) -> Result<Option<String>, String> {
    let reference = format!("refs/heads/{branch}");
    let outcome = shell::run_program(
        "git",
        &["ls-remote", "origin", &reference],
        repo_root,
        remove_env,
        &[("GIT_TERMINAL_PROMPT", "0")],
        LS_REMOTE_TIMEOUT,
    )
    .map_err(|error| format!("cannot run git: {error}"))?;
    if outcome.timed_out {
        return Err(format!(
            "git ls-remote timed out after {} s",
            LS_REMOTE_TIMEOUT.as_secs()
        ));
    }
    if !outcome.success() {
        let last = outcome.output_tail.lines().last().unwrap_or("").trim();
        return Err(format!(
            "git ls-remote failed: {}",
            bounds::excerpt(last, 200)
        ));
    }
    Ok(tip_of(&outcome.output_tail, &reference))
}

/// The object name `ls-remote` output gives for exactly `reference`. Patterns match the tail of
/// a ref name, so `refs/heads/refs/heads/x/a` also matches `refs/heads/x/a`: only an exact name
/// counts, and a line that is not `<hex>\t<ref>` (a warning on stderr) is ignored.
fn tip_of(output: &str, reference: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (object, name) = line.split_once('\t')?;
        let object = object.trim();
        let hex = matches!(object.len(), 40 | 64) && object.chars().all(|c| c.is_ascii_hexdigit());
        (hex && name.trim() == reference).then(|| object.to_ascii_lowercase())
    })
}

/// A remote URL as it may be shown in a comment: a URL loses its user name and password
/// (`https://user:token@host/r.git` → `https://host/r.git`), query and fragment; an scp-like
/// address loses its user (`git@host:r.git` → `host:r.git`); a local path (or `file://` URL) is
/// shown relative to `repo_root`, never as an absolute host path.
pub fn display_remote(url: &str, repo_root: &Path) -> String {
    let url = url.trim();
    let shown = if let Some(path) = url.strip_prefix("file://") {
        local_path(path, repo_root)
    } else if let Some(scheme_end) = url.find("://") {
        let (scheme, rest) = url.split_at(scheme_end + 3);
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        format!("{scheme}{host}{path}")
    } else if is_scp_like(url) {
        let (host, path) = url.split_once(':').unwrap_or((url, ""));
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        format!("{host}:{path}")
    } else {
        local_path(url, repo_root)
    };
    bounds::excerpt(&shown, MAX_SHORT_BYTES)
}

/// Git's rule: `host:path` is an ssh address when no slash comes before the first colon.
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// A local remote path relative to `repo_root` (lexically; a relative path already is).
fn local_path(path: &str, repo_root: &Path) -> String {
    let path = Path::new(path);
    if !path.is_absolute() {
        return path.display().to_string();
    }
    let target: Vec<Component<'_>> = path.components().collect();
    let base: Vec<Component<'_>> = repo_root.components().collect();
    let common = target
        .iter()
        .zip(&base)
        .take_while(|(left, right)| left == right)
        .count();
    let mut relative = PathBuf::new();
    for _ in common..base.len() {
        relative.push("..");
    }
    for component in &target[common..] {
        relative.push(component);
    }
    if relative.as_os_str().is_empty() {
        ".".to_string()
    } else {
        relative.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_are_shown_without_credentials_or_host_paths() {
        let root = Path::new("/srv/demo/source");
        for (url, shown) in [
            (
                "https://deploy:s3cret-token@git.example.com/acme/widgets.git",
                "https://git.example.com/acme/widgets.git",
            ),
            (
                "https://git.example.com/acme/widgets.git?private_token=abc#frag",
                "https://git.example.com/acme/widgets.git",
            ),
            (
                "ssh://git@git.example.com:2222/acme/widgets.git",
                "ssh://git.example.com:2222/acme/widgets.git",
            ),
            (
                "git@git.example.com:acme/widgets.git",
                "git.example.com:acme/widgets.git",
            ),
            ("/srv/demo/origin.git", "../origin.git"),
            ("file:///srv/demo/origin.git", "../origin.git"),
            ("/srv/demo/source/sub/origin.git", "sub/origin.git"),
            ("../origin.git", "../origin.git"),
        ] {
            assert_eq!(display_remote(url, root), shown, "{url}");
        }
        assert_eq!(
            display_remote("https://host/r\n- forged: line", root),
            "https://host/r\\n- forged: line"
        );
    }

    #[test]
    fn only_the_exact_ref_counts() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let other = "89abcdef0123456789abcdef0123456789abcdef";
        let output = format!(
            "warning: redirecting to https://example.com/\n{other}\trefs/heads/refs/heads/x/a\n{sha}\trefs/heads/x/a\n"
        );
        assert_eq!(tip_of(&output, "refs/heads/x/a").as_deref(), Some(sha));
        assert_eq!(tip_of(&output, "refs/heads/x/b"), None);
        assert_eq!(tip_of("nothing\there\n", "here"), None);
    }

    #[test]
    fn the_summary_field_and_next_action_follow_the_mode() {
        let branch = Handoff {
            review: Review::Branch {
                remote: "git.example.com:acme/widgets.git".into(),
                branch: "x/demo-abc-1".into(),
            },
            summary: String::new(),
            head_sha: "abc123".into(),
        };
        assert_eq!(branch.outcome_field(), "branch=x/demo-abc-1 commit=abc123");
        assert_eq!(
            branch.next_action(),
            "review branch x/demo-abc-1 on git.example.com:acme/widgets.git"
        );
        assert_eq!(branch.pr_url(), None);
    }
}
