//! What CI says about a commit: its check runs (`GET …/commits/{sha}/check-runs`) and its
//! combined status (`GET …/commits/{sha}/status`), both paginated and conditional.
//!
//! Only the latest run of each check is listed (`filter=latest`), as GitHub shows them on the
//! PR. Names and summaries are cut to bounds here; whether a conclusion counts as green is
//! `review::signals`' decision, not this file's.

use serde::{Deserialize, Serialize};

use super::http::{Bounded, cut};
use super::{Client, Error, RepoRef, is_commit_id};

/// Pages of 100 read at most, for check runs and for statuses: 1000 each.
const MAX_PAGES: u32 = 10;

/// A check's summary kept: 2 KiB (what a repair's turn input quotes).
const MAX_SUMMARY: usize = 2 * 1024;

/// One check run on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    /// `queued`, `in_progress`, `completed`, `waiting`, `requested` or `pending`.
    pub status: String,
    /// Once completed: `success`, `failure`, `neutral`, `cancelled`, `skipped`, `timed_out`,
    /// `action_required`, `stale`, `startup_failure`.
    pub conclusion: Option<String>,
    pub title: Option<String>,
    /// At most 2 KiB, cut with a note; not escaped.
    pub summary: Option<String>,
}

/// The combined commit status: every status context's latest state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CombinedStatus {
    /// GitHub's rollup: `success`, `pending`, `failure` or `error` (`pending` when there are no
    /// statuses at all, which is why Maestro looks at `statuses` instead).
    pub state: String,
    pub statuses: Vec<CommitStatus>,
}

/// One status context on a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStatus {
    pub context: String,
    /// `success`, `pending`, `failure` or `error`.
    pub state: String,
    pub description: Option<String>,
}

impl Client {
    /// The latest check run of every check on commit `sha`.
    pub fn check_runs(&self, repo: &RepoRef, sha: &str) -> Result<Vec<CheckRun>, Error> {
        let base = self.commit_url(repo, sha)?;
        let mut runs = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!("{base}/check-runs?filter=latest&per_page=100&page={page}");
            let got = self.get_json::<WireCheckRuns>(&url, "commit")?;
            runs.extend(got.value.check_runs.into_iter().map(|wire| CheckRun {
                id: wire.id,
                name: wire.name,
                status: wire.status,
                conclusion: wire.conclusion,
                title: wire.output.as_ref().and_then(|output| output.title.clone()),
                summary: wire.output.and_then(|output| output.summary),
            }));
            if !got.has_next {
                return Ok(runs);
            }
        }
        Err(Error::TooMany {
            url: format!("{base}/check-runs"),
            what: "check runs",
            limit: (MAX_PAGES * 100) as usize,
        })
    }

    /// The combined status of commit `sha`, with every context.
    pub fn combined_status(&self, repo: &RepoRef, sha: &str) -> Result<CombinedStatus, Error> {
        let base = self.commit_url(repo, sha)?;
        let mut combined = CombinedStatus {
            state: String::new(),
            statuses: Vec::new(),
        };
        for page in 1..=MAX_PAGES {
            let url = format!("{base}/status?per_page=100&page={page}");
            let got = self.get_json::<WireCombined>(&url, "commit")?;
            if page == 1 {
                combined.state = got.value.state;
            }
            combined
                .statuses
                .extend(got.value.statuses.into_iter().map(|wire| CommitStatus {
                    context: wire.context,
                    state: wire.state,
                    description: wire.description,
                }));
            if !got.has_next {
                return Ok(combined);
            }
        }
        Err(Error::TooMany {
            url: format!("{base}/status"),
            what: "commit statuses",
            limit: (MAX_PAGES * 100) as usize,
        })
    }

    /// `{api}/repos/{owner}/{repo}/commits/{sha}`, for a `sha` that is a commit id (it goes
    /// into a URL path, so nothing else is accepted).
    fn commit_url(&self, repo: &RepoRef, sha: &str) -> Result<String, Error> {
        if !is_commit_id(sha) {
            return Err(Error::Malformed {
                url: format!("{}/commits/…", self.repo_url(repo)),
                message: format!("`{}` is not a commit id", super::shown(sha)),
            });
        }
        Ok(format!("{}/commits/{sha}", self.repo_url(repo)))
    }
}

#[derive(Serialize, Deserialize)]
struct WireCheckRuns {
    #[serde(default)]
    check_runs: Vec<WireCheckRun>,
}

#[derive(Serialize, Deserialize)]
struct WireCheckRun {
    id: u64,
    name: String,
    status: String,
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    output: Option<WireOutput>,
}

#[derive(Serialize, Deserialize)]
struct WireOutput {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

impl Bounded for WireCheckRuns {
    fn bound(&mut self) {
        for run in &mut self.check_runs {
            cut(&mut run.name, 256);
            cut(&mut run.status, 64);
            if let Some(conclusion) = &mut run.conclusion {
                cut(conclusion, 64);
            }
            if let Some(output) = &mut run.output {
                if let Some(title) = &mut output.title {
                    cut(title, 256);
                }
                if let Some(summary) = &mut output.summary {
                    cut(summary, MAX_SUMMARY);
                }
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct WireCombined {
    #[serde(default)]
    state: String,
    #[serde(default)]
    statuses: Vec<WireStatus>,
}

#[derive(Serialize, Deserialize)]
struct WireStatus {
    context: String,
    state: String,
    #[serde(default)]
    description: Option<String>,
}

impl Bounded for WireCombined {
    fn bound(&mut self) {
        cut(&mut self.state, 64);
        for status in &mut self.statuses {
            cut(&mut status.context, 256);
            cut(&mut status.state, 64);
            if let Some(description) = &mut status.description {
                cut(description, 1024);
            }
        }
    }
}
