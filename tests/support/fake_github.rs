//! A fake GitHub REST API: `GET /repos/{owner}/{repo}/pulls/{n}` from an in-memory table, with
//! the head commit either fixed or read live from a bare git repository (so a test's agent can
//! push and the PR follows, and a force-push between handoff and validation is real).
//!
//! Its web pages are where Maestro derives them for a plain-http API: `https://127.0.0.1/…`
//! ([`WEB`]), so a PR's `html_url` is `https://127.0.0.1/OWNER/REPO/pull/N`. A test can make a PR
//! hostile (a fork's head, no head repository, a foreign `html_url`) or make the API redirect.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::fake_http::{FakeHttp, Recorded, Reply};

/// Where the fake's PR pages are, as Maestro derives it from the fake's `http://127.0.0.1:PORT`.
pub const WEB: &str = "https://127.0.0.1";

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
        }
    }

    /// An open, ready PR for `branch` whose head is the fixed `sha`.
    pub fn fixed(repo: &str, number: u64, branch: &str, sha: &str) -> Pull {
        Pull {
            head: Head::Fixed(sha.into()),
            ..Pull::live(repo, number, branch, PathBuf::new())
        }
    }
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
    /// Answer every request with this status instead (401, 404, 500, ...).
    forced_status: Option<u16>,
    /// Answer every request with `302 Found` to this base URL plus the request's path.
    redirect_to: Option<String>,
    /// Successful PR reads so far, and what happens after how many.
    reads: usize,
    later: Option<(usize, Later)>,
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
        let http = FakeHttp::start(move |request| answer(&handler_state, request));
        FakeGithub { http, state }
    }

    pub fn url(&self) -> String {
        self.http.url()
    }

    pub fn add(&self, pull: Pull) {
        let mut state = self.state.lock().unwrap();
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

    pub fn requests(&self) -> Vec<Recorded> {
        self.http.requests()
    }
}

fn answer(state: &Mutex<State>, request: &Recorded) -> Reply {
    let mut state = state.lock().unwrap();
    if let Some(status) = state.forced_status {
        return Reply::json(status, &json!({"message": format!("forced {status}")}));
    }
    if let Some(base) = &state.redirect_to {
        return Reply::json(302, &json!({"message": "Found"}))
            .with_header("Location", &format!("{base}{}", request.path()));
    }
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
    if request.header("authorization").is_none() {
        return Reply::json(401, &json!({"message": "Requires authentication"}));
    }
    let parts: Vec<&str> = request.path().trim_matches('/').split('/').collect();
    let ["repos", owner, repo, "pulls", number] = parts.as_slice() else {
        return Reply::json(404, &json!({"message": "Not Found"}));
    };
    let full_name = format!("{owner}/{repo}");
    let Some(pull) = number
        .parse::<u64>()
        .ok()
        .and_then(|n| state.pulls.get(&(full_name.to_ascii_lowercase(), n)))
    else {
        return Reply::json(404, &json!({"message": "Not Found"}));
    };
    let sha = match &pull.head {
        Head::Fixed(sha) => sha.clone(),
        Head::Live { bare_repo } => {
            let output = std::process::Command::new("git")
                .args(["rev-parse", &format!("refs/heads/{}", pull.head_ref)])
                .current_dir(bare_repo)
                .output()
                .expect("git runs");
            String::from_utf8_lossy(&output.stdout).trim().to_string()
        }
    };
    let body = json!({
            "number": pull.number,
            "html_url": pull.html_url.clone().unwrap_or_else(|| pull_url(&pull.repo, pull.number)),
            "state": if closed { "closed" } else { pull.state.as_str() },
            "draft": pull.draft,
            "merged": false,
            "head": {
                "ref": pull.head_ref,
                "sha": sha,
                "repo": pull.head_repo.as_ref().map(|name| json!({"full_name": name})),
            },
            "base": {"ref": "main", "repo": {"full_name": pull.repo}},
    });
    state.reads += 1;
    Reply::json(200, &body)
}
