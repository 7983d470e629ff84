//! A fake GitHub: the REST routes and the GraphQL query Maestro uses, from an in-memory table,
//! loopback only, every request recorded (through `fake_http`).
//!
//! - `GET /repos/{o}/{r}`: a repository the token can see ([`FakeGithub::add_repo`]);
//! - `GET /repos/{o}/{r}/pulls/{n}`: the PR, its head either fixed or read live from a bare git
//!   repository (so a test's agent can push and the PR follows, and a force-push between
//!   handoff and validation is real);
//! - `GET …/pulls/{n}/reviews`, `GET …/commits/{sha}/check-runs`, `GET …/commits/{sha}/status`:
//!   paginated by `per_page`/`page` with a `Link: <…>; rel="next"` header like GitHub's;
//! - `POST /graphql`: the `ReviewThreads` query, answered in the schema's shapes (cursors,
//!   `pageInfo`, `rateLimit`, `NOT_FOUND` errors);
//! - `PUT …/pulls/{n}/merge` (405 when not mergeable, 409 when `sha` is not the head) and
//!   `DELETE …/git/refs/heads/{branch}` (422 when the branch does not exist).
//!
//! Every 200 to a GET carries an `ETag` (a hash of the body); a GET whose `If-None-Match`
//! matches gets `304` with no body and, as on GitHub, costs nothing: the fake counts the rate
//! limit it would charge ([`FakeGithub::rate_used`]) and says `X-RateLimit-Remaining`.
//!
//! Its web pages are where Maestro derives them for a plain-http API: `https://127.0.0.1/…`
//! ([`WEB`]), so a PR's `html_url` is `https://127.0.0.1/OWNER/REPO/pull/N`. A test can make a PR
//! hostile (a fork's head, no head repository, a foreign `html_url`), make the API redirect, or
//! inject a fault on any route ([`FakeGithub::fail`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_http::{FakeHttp, Recorded, Reply};

/// Where the fake's PR pages are, as Maestro derives it from the fake's `http://127.0.0.1:PORT`.
pub const WEB: &str = "https://127.0.0.1";

/// The rate limit the fake starts with, per hour as GitHub's.
pub const RATE_LIMIT: u64 = 5000;

/// The web URL of PR `number` in `repo` (`owner/name`).
pub fn pull_url(repo: &str, number: u64) -> String {
    format!("{WEB}/{repo}/pull/{number}")
}

/// Where a PR's head commit comes from.
#[derive(Debug, Clone)]
pub enum Head {
    Fixed(String),
    /// The tip of `branch` in this bare repository, read at request time.
    Live {
        bare_repo: PathBuf,
    },
}

/// One pull request the fake knows.
#[derive(Debug, Clone)]
pub struct Pull {
    pub repo: String,
    pub number: u64,
    pub head_ref: String,
    pub head: Head,
    pub state: String,
    pub draft: bool,
    /// `head.repo.full_name`: [`Pull::repo`] normally, a fork's name, or `None` (`null`, as
    /// GitHub answers when the fork is deleted).
    pub head_repo: Option<String>,
    /// `html_url` instead of the fake's own page for the PR.
    pub html_url: Option<String>,
    pub merged: bool,
    /// `null` while "GitHub" computes it.
    pub mergeable: Option<bool>,
    pub mergeable_state: String,
    pub merge_commit_sha: Option<String>,
    pub merged_by: Option<String>,
    /// Reviews as GitHub lists them (oldest first), in GitHub's JSON shape.
    pub reviews: Vec<Value>,
    pub threads: Vec<Thread>,
}

/// One review thread of a PR.
#[derive(Debug, Clone)]
pub struct Thread {
    pub id: String,
    pub resolved: bool,
    pub outdated: bool,
    pub path: String,
    pub line: Option<u64>,
    /// `(author, body)`, oldest first.
    pub comments: Vec<(String, String)>,
}

impl Thread {
    pub fn open(id: &str, path: &str, line: u64, author: &str, body: &str) -> Thread {
        Thread {
            id: id.into(),
            resolved: false,
            outdated: false,
            path: path.into(),
            line: Some(line),
            comments: vec![(author.into(), body.into())],
        }
    }
}

impl Pull {
    /// An open, ready PR for `branch` whose head follows the bare repository.
    pub fn live(repo: &str, number: u64, branch: &str, bare_repo: PathBuf) -> Pull {
        Pull {
            repo: repo.into(),
            number,
            head_ref: branch.into(),
            head: Head::Live { bare_repo },
            state: "open".into(),
            draft: false,
            head_repo: Some(repo.into()),
            html_url: None,
            merged: false,
            mergeable: Some(true),
            mergeable_state: "clean".into(),
            merge_commit_sha: None,
            merged_by: None,
            reviews: Vec::new(),
            threads: Vec::new(),
        }
    }

    /// An open, ready PR for `branch` whose head is the fixed `sha`.
    pub fn fixed(repo: &str, number: u64, branch: &str, sha: &str) -> Pull {
        Pull {
            head: Head::Fixed(sha.into()),
            ..Pull::live(repo, number, branch, PathBuf::new())
        }
    }

    /// Adds a review in GitHub's shape (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, …).
    pub fn review(&mut self, reviewer: &str, state: &str, body: &str) {
        let id = 1000 + self.reviews.len() as u64;
        self.reviews.push(json!({
            "id": id,
            "node_id": format!("PRR_{id}"),
            "user": {"login": reviewer, "id": id, "type": "User"},
            "body": body,
            "state": state,
            "html_url": format!("{}#pullrequestreview-{id}", pull_url(&self.repo, self.number)),
            "commit_id": "0000000000000000000000000000000000000000",
            "submitted_at": "2026-07-01T10:00:00Z",
            "author_association": "MEMBER",
        }));
    }
}

/// A route a fault can be injected on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /repos/{o}/{r}`: a repository added with [`FakeGithub::add_repo`] (or holding a PR).
    Repo,
    Pull,
    Reviews,
    Threads,
    CheckRuns,
    Status,
    Merge,
    DeleteRef,
}

/// What changes once a PR has been read a given number of times (the handoff check reads it
/// once; the final check after validation reads it again).
#[derive(Debug, Clone, Copy)]
pub enum Later {
    /// Answer with this status from then on.
    Status(u16),
    /// The PR is closed from then on.
    Closed,
}

#[derive(Default)]
struct State {
    pulls: HashMap<(String, u64), Pull>,
    /// Check runs per commit, in GitHub's JSON shape.
    check_runs: HashMap<String, Vec<Value>>,
    /// `(context, state, description)` per commit.
    statuses: HashMap<String, Vec<(String, String, String)>>,
    /// Branches that exist, as `owner/repo:branch` (lowercase repository).
    branches: HashSet<String>,
    /// Answer every request with this status instead (401, 404, 500, ...).
    forced_status: Option<u16>,
    /// Answer every request with `302 Found` to this base URL plus the request's path.
    redirect_to: Option<String>,
    /// Successful PR reads so far, and what happens after how many.
    reads: usize,
    later: Option<(usize, Later)>,
    /// Per route: the status to answer and how many more times.
    faults: HashMap<Route, (u16, usize)>,
    /// Per route: how long to hold the answer (the request is applied first, as on a server
    /// whose answer is lost) and how many more times.
    slow: HashMap<Route, (std::time::Duration, usize)>,
    /// Moved onto the PR's head when a merge request arrives, before it is judged.
    head_on_merge: Option<String>,
    /// Answer `reviewThreads` with `hasNextPage` and the same cursor forever.
    broken_thread_cursor: bool,
    /// Rate-limit points charged (every answer but a 304).
    rate_used: u64,
    /// Repositories the token can see (`owner/repo`, lowercase) beyond those holding a PR.
    repos: HashSet<String>,
}

/// The running fake.
pub struct FakeGithub {
    pub http: FakeHttp,
    state: Arc<Mutex<State>>,
}

impl FakeGithub {
    pub fn start() -> FakeGithub {
        let state: Arc<Mutex<State>> = Arc::default();
        let handler_state = Arc::clone(&state);
        let http = FakeHttp::start(move |request| {
            let mut state = handler_state.lock().unwrap();
            let reply = answer(&mut state, request);
            if reply.status != 304 {
                state.rate_used += 1;
            }
            let remaining = RATE_LIMIT.saturating_sub(state.rate_used);
            let said = reply
                .headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("x-ratelimit-remaining"));
            if said {
                reply
            } else {
                reply
                    .with_header("X-RateLimit-Limit", &RATE_LIMIT.to_string())
                    .with_header("X-RateLimit-Remaining", &remaining.to_string())
            }
        });
        FakeGithub { http, state }
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    pub fn add(&self, pull: Pull) {
        let mut state = self.state.lock().unwrap();
        state.branches.insert(format!(
            "{}:{}",
            pull.repo.to_ascii_lowercase(),
            pull.head_ref
        ));
        state
            .pulls
            .insert((pull.repo.to_ascii_lowercase(), pull.number), pull);
    }

    pub fn update(&self, repo: &str, number: u64, change: impl FnOnce(&mut Pull)) {
        let mut state = self.state.lock().unwrap();
        let pull = state
            .pulls
            .get_mut(&(repo.to_ascii_lowercase(), number))
            .expect("known pull");
        change(pull);
    }

    /// The PR as the fake holds it now.
    pub fn pull(&self, repo: &str, number: u64) -> Pull {
        self.state.lock().unwrap().pulls[&(repo.to_ascii_lowercase(), number)].clone()
    }

    /// Adds a check run on `sha`: `status` (`completed`, `in_progress`, …) and `conclusion`.
    pub fn check_run(&self, sha: &str, name: &str, status: &str, conclusion: Option<&str>) {
        let mut state = self.state.lock().unwrap();
        let runs = state.check_runs.entry(sha.to_string()).or_default();
        let id = 500 + runs.len() as u64;
        runs.push(json!({
            "id": id,
            "head_sha": sha,
            "name": name,
            "status": status,
            "conclusion": conclusion,
            "started_at": "2026-07-01T10:00:00Z",
            "completed_at": if status == "completed" { json!("2026-07-01T10:05:00Z") } else { Value::Null },
            "output": {"title": format!("{name} report"), "summary": format!("{name}: {}", conclusion.unwrap_or(status)), "text": null, "annotations_count": 0},
            "app": {"slug": "ci"},
        }));
    }

    /// Adds a commit status on `sha`.
    pub fn commit_status(&self, sha: &str, context: &str, state: &str, description: &str) {
        let mut fake = self.state.lock().unwrap();
        let statuses = fake.statuses.entry(sha.to_string()).or_default();
        statuses.retain(|(existing, _, _)| existing != context);
        statuses.push((context.into(), state.into(), description.into()));
    }

    /// Makes `repo` (`owner/name`) a repository the token can see.
    pub fn add_repo(&self, repo: &str) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(repo.to_ascii_lowercase());
    }

    /// Whether `branch` exists in `repo`.
    pub fn has_branch(&self, repo: &str, branch: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .branches
            .contains(&format!("{}:{branch}", repo.to_ascii_lowercase()))
    }

    /// Answers the next `times` requests on `route` with `status`.
    pub fn fail(&self, route: Route, status: u16, times: usize) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(route, (status, times));
    }

    /// Holds the answer of the next `times` requests on `route` for `delay`, after applying
    /// them: a client killed meanwhile never learns what the server did.
    pub fn slow(&self, route: Route, delay: std::time::Duration, times: usize) {
        self.state
            .lock()
            .unwrap()
            .slow
            .insert(route, (delay, times));
    }

    /// Requests on `route` so far (method and path as the fake routes them).
    pub fn requests_on(&self, method: &str, path: &str) -> usize {
        self.http
            .requests()
            .iter()
            .filter(|request| request.method == method && request.path() == path)
            .count()
    }

    /// When a merge request arrives, the PR's head first moves to `sha` (a push that lands
    /// between "ready" and the merge).
    pub fn move_head_on_merge(&self, sha: &str) {
        self.state.lock().unwrap().head_on_merge = Some(sha.into());
    }

    /// `reviewThreads` says there is a next page but repeats its cursor.
    pub fn break_thread_cursor(&self) {
        self.state.lock().unwrap().broken_thread_cursor = true;
    }

    /// After `reads` successful PR reads, behave as `later` says.
    pub fn after_reads(&self, reads: usize, later: Later) {
        self.state.lock().unwrap().later = Some((reads, later));
    }

    pub fn force_status(&self, status: Option<u16>) {
        self.state.lock().unwrap().forced_status = status;
    }

    /// Redirects every request to the same path under `base_url` (another server).
    pub fn redirect_to(&self, base_url: &str) {
        self.state.lock().unwrap().redirect_to = Some(base_url.to_string());
    }

    /// Rate-limit points charged so far (a 304 is free).
    pub fn rate_used(&self) -> u64 {
        self.state.lock().unwrap().rate_used
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.http.requests()
    }
}

fn not_found() -> Reply {
    Reply::json(
        404,
        &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
    )
}

fn answer(state: &mut State, request: &Recorded) -> Reply {
    if let Some(status) = state.forced_status {
        return Reply::json(status, &json!({"message": format!("forced {status}")}));
    }
    if let Some(base) = &state.redirect_to {
        return Reply::json(302, &json!({"message": "Found"}))
            .with_header("Location", &format!("{base}{}", request.path()));
    }
    if request.header("authorization").is_none() {
        return Reply::json(401, &json!({"message": "Requires authentication"}));
    }
    let parts: Vec<&str> = request.path().trim_matches('/').split('/').collect();
    let route = match (request.method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _]) => Route::Repo,
        ("GET", ["repos", _, _, "pulls", _]) => Route::Pull,
        ("GET", ["repos", _, _, "pulls", _, "reviews"]) => Route::Reviews,
        ("POST", ["graphql"]) => Route::Threads,
        ("GET", ["repos", _, _, "commits", _, "check-runs"]) => Route::CheckRuns,
        ("GET", ["repos", _, _, "commits", _, "status"]) => Route::Status,
        ("PUT", ["repos", _, _, "pulls", _, "merge"]) => Route::Merge,
        ("DELETE", ["repos", _, _, "git", "refs", "heads", ..]) => Route::DeleteRef,
        _ => return not_found(),
    };
    if let Some((status, times)) = state.faults.get_mut(&route) {
        if *times > 0 {
            *times -= 1;
            let status = *status;
            let reply = Reply::json(status, &json!({"message": format!("injected {status}")}));
            return if status == 403 || status == 429 {
                reply
                    .with_header("X-RateLimit-Remaining", "0")
                    .with_header("X-RateLimit-Reset", "1900000000")
            } else {
                reply
            };
        }
    }
    let delay = match state.slow.get_mut(&route) {
        Some((delay, times)) if *times > 0 => {
            *times -= 1;
            Some(*delay)
        }
        _ => None,
    };
    let reply = match route {
        Route::Repo => repository(state, &parts),
        Route::Pull => pull(state, &parts),
        Route::Reviews => reviews(state, &parts, request),
        Route::Threads => threads(state, request),
        Route::CheckRuns => check_runs(state, &parts, request),
        Route::Status => status(state, &parts, request),
        Route::Merge => merge(state, &parts, request),
        Route::DeleteRef => delete_ref(state, &parts),
    };
    let reply = conditional(request, reply);
    match delay {
        Some(delay) => reply.delayed(delay),
        None => reply,
    }
}

/// Adds an ETag to a GET's 200 and turns it into a 304 when the client already has it.
fn conditional(request: &Recorded, reply: Reply) -> Reply {
    if request.method != "GET" || reply.status != 200 {
        return reply;
    }
    let super::fake_http::Body::Bytes(bytes) = &reply.body else {
        return reply;
    };
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let etag = format!("W/\"{:016x}\"", hasher.finish());
    if request.header("if-none-match") == Some(etag.as_str()) {
        return Reply {
            status: 304,
            headers: vec![("ETag".into(), etag)],
            body: super::fake_http::Body::Bytes(Vec::new()),
            delay: None,
        };
    }
    reply.with_header("ETag", &etag)
}

fn repository(state: &State, parts: &[&str]) -> Reply {
    let full_name = format!("{}/{}", parts[1], parts[2]);
    let key = full_name.to_ascii_lowercase();
    let known = state.repos.contains(&key) || state.pulls.keys().any(|(repo, _)| *repo == key);
    if !known {
        return not_found();
    }
    Reply::json(
        200,
        &json!({
            "full_name": full_name,
            "private": true,
            "permissions": {"admin": false, "push": true, "pull": true},
        }),
    )
}

fn find<'a>(state: &'a State, owner: &str, repo: &str, number: &str) -> Option<&'a Pull> {
    let number = number.parse::<u64>().ok()?;
    state
        .pulls
        .get(&(format!("{owner}/{repo}").to_ascii_lowercase(), number))
}

fn head_sha(pull: &Pull) -> String {
    match &pull.head {
        Head::Fixed(sha) => sha.clone(),
        Head::Live { bare_repo } => {
            let output = std::process::Command::new("git")
                .args(["rev-parse", &format!("refs/heads/{}", pull.head_ref)])
                .current_dir(bare_repo)
                .output()
                .expect("git runs");
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
    }
}

fn pull(state: &mut State, parts: &[&str]) -> Reply {
    let mut closed = false;
    if let Some((after, later)) = state.later {
        if state.reads >= after {
            match later {
                Later::Status(status) => {
                    return Reply::json(status, &json!({"message": format!("later {status}")}));
                }
                Later::Closed => closed = true,
            }
        }
    }
    let Some(pull) = find(state, parts[1], parts[2], parts[4]) else {
        return not_found();
    };
    let body = json!({
        "url": format!("https://api.example/repos/{}/pulls/{}", pull.repo, pull.number),
        "id": 9000 + pull.number,
        "number": pull.number,
        "html_url": pull.html_url.clone().unwrap_or_else(|| pull_url(&pull.repo, pull.number)),
        "state": if closed { "closed" } else { pull.state.as_str() },
        "title": "A pull request",
        "body": "Its description.",
        "draft": pull.draft,
        "merged": pull.merged,
        "mergeable": pull.mergeable,
        "mergeable_state": pull.mergeable_state,
        "merge_commit_sha": pull.merge_commit_sha,
        "merged_by": pull.merged_by.as_ref().map(|login| json!({"login": login, "type": "User"})),
        "user": {"login": "maestro-bot"},
        "head": {
            "label": format!("acme:{}", pull.head_ref),
            "ref": pull.head_ref,
            "sha": head_sha(pull),
            "repo": pull.head_repo.as_ref().map(|name| json!({"full_name": name})),
        },
        "base": {"ref": "main", "sha": "b".repeat(40), "repo": {"full_name": pull.repo}},
    });
    state.reads += 1;
    Reply::json(200, &body)
}

/// `(per_page, page)` of a request, GitHub's defaults 30 and 1.
fn paging(request: &Recorded) -> (usize, usize) {
    let query = request.url.split_once('?').map_or("", |(_, query)| query);
    let mut per_page = 30;
    let mut page = 1;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("per_page", value)) => per_page = value.parse().unwrap_or(30).min(100),
            Some(("page", value)) => page = value.parse().unwrap_or(1).max(1),
            _ => {}
        }
    }
    (per_page, page)
}

/// One page of `items` with GitHub's `Link` header when more follow.
fn page_of(request: &Recorded, items: &[Value], wrap: impl Fn(Vec<Value>) -> Value) -> Reply {
    let (per_page, page) = paging(request);
    let start = (page - 1) * per_page;
    let slice: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
    let reply = Reply::json(200, &wrap(slice));
    if start + per_page < items.len() {
        let next = format!(
            "<https://api.example{}?per_page={per_page}&page={}>; rel=\"next\"",
            request.path(),
            page + 1
        );
        reply.with_header("Link", &next)
    } else {
        reply
    }
}

fn reviews(state: &State, parts: &[&str], request: &Recorded) -> Reply {
    let Some(pull) = find(state, parts[1], parts[2], parts[4]) else {
        return not_found();
    };
    page_of(request, &pull.reviews, Value::Array)
}

fn check_runs(state: &State, parts: &[&str], request: &Recorded) -> Reply {
    let mut runs = state.check_runs.get(parts[4]).cloned().unwrap_or_default();
    // `filter=latest` (GitHub's default) lists the most recent run of each check name.
    if !request.url.contains("filter=all") {
        let mut latest: Vec<Value> = Vec::new();
        for run in runs {
            latest.retain(|kept| kept["name"] != run["name"]);
            latest.push(run);
        }
        runs = latest;
    }
    let total = runs.len();
    page_of(
        request,
        &runs,
        |page| json!({"total_count": total, "check_runs": page}),
    )
}

fn status(state: &State, parts: &[&str], request: &Recorded) -> Reply {
    let sha = parts[4].to_string();
    let statuses: Vec<Value> = state
        .statuses
        .get(&sha)
        .into_iter()
        .flatten()
        .map(|(context, state, description)| {
            json!({"context": context, "state": state, "description": description, "target_url": null})
        })
        .collect();
    let rollup = if statuses.is_empty() || statuses.iter().any(|s| s["state"] == "pending") {
        "pending"
    } else if statuses.iter().all(|s| s["state"] == "success") {
        "success"
    } else {
        "failure"
    };
    let total = statuses.len();
    page_of(
        request,
        &statuses,
        |page| json!({"state": rollup, "statuses": page, "sha": sha, "total_count": total}),
    )
}

fn threads(state: &State, request: &Recorded) -> Reply {
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    let query = body["query"].as_str().unwrap_or("");
    assert!(
        query.contains("reviewThreads(first: 25") && body["operationName"] == "ReviewThreads",
        "unexpected GraphQL request: {}",
        request.body
    );
    let variables = &body["variables"];
    let owner = variables["owner"].as_str().unwrap_or("");
    let name = variables["name"].as_str().unwrap_or("");
    let number = variables["number"].as_u64().unwrap_or(0).to_string();
    let rate = json!({"cost": 1, "remaining": 4999});
    if !state
        .pulls
        .keys()
        .any(|(repo, _)| *repo == format!("{owner}/{name}").to_ascii_lowercase())
    {
        return Reply::json(
            200,
            &json!({
                "data": {"rateLimit": rate, "repository": null},
                "errors": [{"type": "NOT_FOUND", "path": ["repository"], "locations": [{"line": 7, "column": 3}],
                            "message": format!("Could not resolve to a Repository with the name '{owner}/{name}'.")}],
            }),
        );
    }
    let Some(pull) = find(state, owner, name, &number) else {
        return Reply::json(
            200,
            &json!({
                "data": {"rateLimit": rate, "repository": {"pullRequest": null}},
                "errors": [{"type": "NOT_FOUND", "path": ["repository", "pullRequest"], "locations": [{"line": 8, "column": 5}],
                            "message": format!("Could not resolve to a PullRequest with the number of {number}.")}],
            }),
        );
    };
    let start = variables["after"]
        .as_str()
        .and_then(|cursor| cursor.strip_prefix("cursor:"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let nodes: Vec<Value> = pull
        .threads
        .iter()
        .skip(start)
        .take(25)
        .map(|thread| {
            json!({
                "id": thread.id,
                "isResolved": thread.resolved,
                "isOutdated": thread.outdated,
                "path": thread.path,
                "line": thread.line,
                "originalLine": thread.line,
                "comments": {
                    "totalCount": thread.comments.len(),
                    "nodes": thread.comments.iter().take(10).map(|(author, body)| json!({
                        "body": body,
                        "createdAt": "2026-07-01T10:00:00Z",
                        "author": {"login": author},
                    })).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    let end = start + nodes.len();
    let (has_next, cursor) = if state.broken_thread_cursor {
        (true, "cursor:0".to_string())
    } else {
        (end < pull.threads.len(), format!("cursor:{end}"))
    };
    Reply::json(
        200,
        &json!({
            "data": {
                "rateLimit": rate,
                "repository": {"pullRequest": {"reviewThreads": {
                    "pageInfo": {"hasNextPage": has_next, "endCursor": cursor},
                    "nodes": nodes,
                }}},
            },
        }),
    )
}

fn merge(state: &mut State, parts: &[&str], request: &Recorded) -> Reply {
    let key = (
        format!("{}/{}", parts[1], parts[2]).to_ascii_lowercase(),
        parts[4].parse::<u64>().unwrap_or(0),
    );
    if let Some(sha) = state.head_on_merge.take() {
        if let Some(pull) = state.pulls.get_mut(&key) {
            pull.head = Head::Fixed(sha);
        }
    }
    let Some(pull) = state.pulls.get_mut(&key) else {
        return not_found();
    };
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    let method = body["merge_method"].as_str().unwrap_or("merge");
    if !matches!(method, "merge" | "squash" | "rebase") {
        return Reply::json(422, &json!({"message": "Validation Failed"}));
    }
    if pull.merged || pull.state != "open" || pull.mergeable != Some(true) {
        return Reply::json(405, &json!({"message": "Pull Request is not mergeable"}));
    }
    if body["sha"]
        .as_str()
        .is_some_and(|sha| sha != head_sha(pull))
    {
        return Reply::json(
            409,
            &json!({"message": "Head branch was modified. Review and try the merge again."}),
        );
    }
    let merge_sha = format!("{:0>40}", format!("{:x}", 0xfeed_0000_u64 + pull.number));
    pull.merged = true;
    pull.state = "closed".into();
    pull.mergeable = None;
    pull.mergeable_state = "unknown".into();
    pull.merge_commit_sha = Some(merge_sha.clone());
    pull.merged_by = Some("maestro-bot".into());
    Reply::json(
        200,
        &json!({"sha": merge_sha, "merged": true, "message": "Pull Request successfully merged"}),
    )
}

fn delete_ref(state: &mut State, parts: &[&str]) -> Reply {
    let branch = parts[6..].join("/");
    let key = format!("{}/{}:{branch}", parts[1], parts[2]).to_ascii_lowercase();
    // Branch names keep their case; only the repository part is case-insensitive.
    let key = format!("{}{}", &key[..key.len() - branch.len()], branch);
    if state.branches.remove(&key) {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: super::fake_http::Body::Bytes(Vec::new()),
            delay: None,
        }
    } else {
        Reply::json(422, &json!({"message": "Reference does not exist"}))
    }
}
