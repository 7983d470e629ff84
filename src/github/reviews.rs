//! What reviewers said on a pull request: its reviews (REST, paginated, conditional) and its
//! review threads (GraphQL `reviewThreads`, paginated; the document is
//! `graphql/review_threads.graphql`, validated against GitHub's schema by `.ci/run`).
//!
//! Reviewer text is hostile input: every body and name is cut to a bound here, before anything
//! keeps it; escaping happens where it is shown. Listings are whole or an error: a review
//! beyond the page limit could be the change request that matters, so a longer listing is
//! [`Error::TooMany`], never a silently shorter one. Deciding which review counts is
//! `review::signals`' job, not this file's.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{Bounded, cut};
use super::{Client, Error, RepoRef, WireUser};

/// REST pages of 100 reviews read at most: 1000 reviews.
const MAX_REVIEW_PAGES: u32 = 10;

/// GraphQL pages of 25 threads read at most: 1000 threads.
const MAX_THREAD_PAGES: u32 = 40;

/// A review body kept: 8 KiB.
const MAX_REVIEW_BODY: usize = 8 * 1024;

/// A thread comment body kept: 4 KiB.
const MAX_COMMENT_BODY: usize = 4 * 1024;

/// A user name, path or other short string kept.
const MAX_NAME: usize = 256;

const REVIEW_THREADS: &str = include_str!("graphql/review_threads.graphql");

/// One submitted review, as GitHub lists it (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub id: u64,
    /// The reviewer's login; `ghost` when the account is gone.
    pub reviewer: String,
    pub state: ReviewState,
    /// At most 8 KiB, cut with a note; not escaped (escape when showing it).
    pub body: String,
    /// The commit the review was made on.
    pub commit_id: Option<String>,
    pub submitted_at: Option<String>,
}

/// A review's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewState {
    Approved,
    ChangesRequested,
    Commented,
    Dismissed,
    /// Not submitted yet (only its author sees it).
    Pending,
    /// A state this build does not know, kept as GitHub wrote it (cut, not escaped).
    Other(String),
}

impl ReviewState {
    fn from_wire(state: &str) -> ReviewState {
        match state {
            "APPROVED" => ReviewState::Approved,
            "CHANGES_REQUESTED" => ReviewState::ChangesRequested,
            "COMMENTED" => ReviewState::Commented,
            "DISMISSED" => ReviewState::Dismissed,
            "PENDING" => ReviewState::Pending,
            other => ReviewState::Other(other.to_string()),
        }
    }
}

/// One review thread (a conversation on a line of the diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewThread {
    /// GitHub's node id: stable for the thread's life.
    pub id: String,
    pub resolved: bool,
    /// The lines it was about changed since.
    pub outdated: bool,
    pub path: String,
    /// The line in the current diff, else the line it was made on.
    pub line: Option<u64>,
    /// The first comments (at most 10), oldest first.
    pub comments: Vec<ThreadComment>,
    /// All comments, including those not read.
    pub total_comments: u64,
}

/// One comment of a review thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadComment {
    pub author: String,
    /// At most 4 KiB, cut with a note; not escaped.
    pub body: String,
    pub created_at: String,
}

impl Client {
    /// Every review of PR `number`, oldest first
    /// (`GET /repos/{owner}/{repo}/pulls/{n}/reviews`, 100 a page, each page conditional).
    pub fn reviews(&self, repo: &RepoRef, number: u64) -> Result<Vec<Review>, Error> {
        let base = format!("{}/pulls/{number}/reviews", self.repo_url(repo));
        let mut reviews = Vec::new();
        for page in 1..=MAX_REVIEW_PAGES {
            let url = format!("{base}?per_page=100&page={page}");
            let got = self.get_json::<Vec<WireReview>>(&url, "pull request")?;
            reviews.extend(got.value.into_iter().map(|wire| {
                Review {
                    id: wire.id,
                    reviewer: wire
                        .user
                        .map_or_else(|| "ghost".to_string(), |user| user.login),
                    state: ReviewState::from_wire(&wire.state),
                    body: wire.body.unwrap_or_default(),
                    commit_id: wire.commit_id,
                    submitted_at: wire.submitted_at,
                }
            }));
            if !got.has_next {
                return Ok(reviews);
            }
        }
        Err(Error::TooMany {
            url: base,
            what: "reviews",
            limit: (MAX_REVIEW_PAGES * 100) as usize,
        })
    }

    /// Every review thread of PR `number`, resolved ones included, through GitHub's GraphQL API
    /// (25 a page; GraphQL has no conditional requests, each page costs one point).
    pub fn review_threads(&self, repo: &RepoRef, number: u64) -> Result<Vec<ReviewThread>, Error> {
        let url = self.graphql_url.clone();
        let mut threads = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_THREAD_PAGES {
            let body = json!({
                "query": REVIEW_THREADS,
                "operationName": "ReviewThreads",
                "variables": {
                    "owner": repo.owner,
                    "name": repo.name,
                    "number": number,
                    "after": after,
                },
            });
            {
                let mut usage = self
                    .usage
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                usage.graphql += 1;
            }
            let sent = self.send("POST", &url, Some(&body))?;
            if sent.status != 200 {
                return Err(sent.error(&url, "pull request"));
            }
            let envelope: Envelope =
                serde_json::from_str(&sent.body).map_err(|error| Error::Malformed {
                    url: url.clone(),
                    message: error.to_string(),
                })?;
            if let Some(errors) = envelope.errors.filter(|errors| !errors.is_empty()) {
                if errors
                    .iter()
                    .any(|error| error.kind.as_deref() == Some("RATE_LIMITED"))
                {
                    return Err(Error::RateLimited { url, reset: None });
                }
                if errors
                    .iter()
                    .any(|error| error.kind.as_deref() == Some("NOT_FOUND"))
                {
                    return Err(Error::NotFound {
                        what: "pull request",
                        url,
                    });
                }
                return Err(Error::GraphQl {
                    url,
                    messages: errors.into_iter().map(|error| error.message).collect(),
                });
            }
            let Some(connection) = envelope
                .data
                .and_then(|data| data.repository)
                .and_then(|repository| repository.pull_request)
                .map(|pull| pull.review_threads)
            else {
                return Err(Error::NotFound {
                    what: "pull request",
                    url,
                });
            };
            for mut wire in connection.nodes.into_iter().flatten() {
                wire.bound();
                threads.push(ReviewThread {
                    id: wire.id,
                    resolved: wire.is_resolved,
                    outdated: wire.is_outdated,
                    path: wire.path,
                    line: wire.line.or(wire.original_line),
                    total_comments: wire.comments.total_count,
                    comments: wire
                        .comments
                        .nodes
                        .into_iter()
                        .flatten()
                        .map(|comment| ThreadComment {
                            author: comment
                                .author
                                .map_or_else(|| "ghost".to_string(), |user| user.login),
                            body: comment.body,
                            created_at: comment.created_at,
                        })
                        .collect(),
                });
            }
            if !connection.page_info.has_next_page {
                return Ok(threads);
            }
            // A next page without a new cursor would loop on the same page forever.
            match connection.page_info.end_cursor {
                Some(cursor) if after.as_deref() != Some(cursor.as_str()) => after = Some(cursor),
                _ => {
                    return Err(Error::Malformed {
                        url,
                        message: "reviewThreads says there is a next page but gives no new cursor"
                            .into(),
                    });
                }
            }
        }
        Err(Error::TooMany {
            url,
            what: "review threads",
            limit: (MAX_THREAD_PAGES * 25) as usize,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireReview {
    id: u64,
    /// Null when the account was deleted.
    #[serde(default)]
    user: Option<WireUser>,
    state: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    commit_id: Option<String>,
    #[serde(default)]
    submitted_at: Option<String>,
}

impl Bounded for Vec<WireReview> {
    fn bound(&mut self) {
        for review in self {
            if let Some(user) = &mut review.user {
                cut(&mut user.login, MAX_NAME);
            }
            cut(&mut review.state, 64);
            if let Some(body) = &mut review.body {
                cut(body, MAX_REVIEW_BODY);
            }
            for text in [&mut review.commit_id, &mut review.submitted_at]
                .into_iter()
                .flatten()
            {
                cut(text, 128);
            }
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    data: Option<Data>,
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    repository: Option<Repository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    pull_request: Option<Pull>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pull {
    review_threads: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    page_info: PageInfo,
    #[serde(default)]
    nodes: Vec<Option<WireThread>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    #[serde(default)]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireThread {
    id: String,
    is_resolved: bool,
    is_outdated: bool,
    path: String,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    original_line: Option<u64>,
    comments: WireComments,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComments {
    total_count: u64,
    #[serde(default)]
    nodes: Vec<Option<WireComment>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireComment {
    body: String,
    created_at: String,
    #[serde(default)]
    author: Option<WireUser>,
}

impl Bounded for WireThread {
    fn bound(&mut self) {
        cut(&mut self.id, MAX_NAME);
        cut(&mut self.path, 1024);
        for comment in self.comments.nodes.iter_mut().flatten() {
            cut(&mut comment.body, MAX_COMMENT_BODY);
            cut(&mut comment.created_at, 64);
            if let Some(author) = &mut comment.author {
                cut(&mut author.login, MAX_NAME);
            }
        }
    }
}
