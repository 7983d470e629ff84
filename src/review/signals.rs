//! A PR's review signals, normalized: the verdict of each reviewer, the open threads, each
//! check as green, pending or failing, and the feedback a repair could address, each item with
//! a stable key.
//!
//! Pure functions over what `github` read; [`read`] is the one place that asks GitHub, in the
//! order and with the short cuts the spec's cost table describes. The rules here are GitHub's
//! own where GitHub has one (the latest decisive review per reviewer counts; a dismissal clears
//! it) and Maestro's where it must choose (zero checks are not green).

use crate::github::{
    self, CheckRun, CombinedStatus, PullRequest, RepoRef, Review, ReviewState, ReviewThread,
};

/// What the lifecycle knows about a PR after one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signals {
    pub pr: PullRequest,
    /// Reviewers whose latest decisive review approves, in first-seen order.
    pub approvals: Vec<String>,
    /// Outstanding change requests: reviewers whose latest decisive review requests changes.
    pub change_requests: Vec<ChangeRequest>,
    /// Unresolved review threads.
    pub threads: Vec<ReviewThread>,
    /// Every check run and commit status on the head.
    pub checks: Vec<Check>,
}

/// A reviewer's outstanding change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    pub reviewer: String,
    pub review_id: u64,
    /// Bounded by `github`; not escaped.
    pub body: String,
}

/// One check run or commit status, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
    /// GitHub's conclusion or state word (`failure`, `timed_out`, `pending`, …).
    pub detail: String,
    /// The check's title and summary, or the status's description; bounded, not escaped.
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Green,
    Pending,
    Failing,
}

/// One piece of actionable feedback. `key` stays the same while the feedback does, so a repair
/// that addressed it is not started again for the same thing (see `decide.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub key: String,
    pub item: FeedbackItem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackItem {
    ChangeRequest(ChangeRequest),
    /// An unresolved thread; a new comment on it is new feedback.
    Thread(ReviewThread),
    FailingCheck(Check),
    /// GitHub says the PR conflicts with its base (`mergeable_state` `dirty`).
    Conflict,
}

impl Signals {
    /// Normalizes what GitHub answered for one PR.
    pub fn from_github(
        pr: PullRequest,
        reviews: &[Review],
        threads: Vec<ReviewThread>,
        check_runs: &[CheckRun],
        status: &CombinedStatus,
    ) -> Signals {
        // The latest decisive review per reviewer, as GitHub counts them: a comment-only
        // review changes nothing, a dismissal clears the reviewer's verdict.
        let mut verdicts: Vec<(String, Option<&Review>)> = Vec::new();
        for review in reviews {
            let login = review.reviewer.to_ascii_lowercase();
            let slot = match verdicts.iter().position(|(name, _)| *name == login) {
                Some(index) => index,
                None => {
                    verdicts.push((login, None));
                    verdicts.len() - 1
                }
            };
            match review.state {
                ReviewState::Approved | ReviewState::ChangesRequested => {
                    verdicts[slot].1 = Some(review);
                }
                ReviewState::Dismissed => verdicts[slot].1 = None,
                ReviewState::Commented | ReviewState::Pending | ReviewState::Other(_) => {}
            }
        }
        let mut approvals = Vec::new();
        let mut change_requests = Vec::new();
        for review in verdicts.into_iter().filter_map(|(_, review)| review) {
            match review.state {
                ReviewState::Approved => approvals.push(review.reviewer.clone()),
                _ => change_requests.push(ChangeRequest {
                    reviewer: review.reviewer.clone(),
                    review_id: review.id,
                    body: review.body.clone(),
                }),
            }
        }
        let mut checks: Vec<Check> = check_runs.iter().map(judge_run).collect();
        checks.extend(status.statuses.iter().map(|status| Check {
            name: status.context.clone(),
            state: match status.state.as_str() {
                "success" => CheckState::Green,
                "pending" => CheckState::Pending,
                _ => CheckState::Failing,
            },
            detail: status.state.clone(),
            summary: status.description.clone().unwrap_or_default(),
        }));
        Signals {
            pr,
            approvals,
            change_requests,
            threads: threads
                .into_iter()
                .filter(|thread| !thread.resolved)
                .collect(),
            checks,
        }
    }

    pub fn checks_in(&self, state: CheckState) -> usize {
        self.checks
            .iter()
            .filter(|check| check.state == state)
            .count()
    }

    /// Every piece of actionable feedback now, in a stable order: change requests, threads,
    /// failing checks (only when checks are required), a conflict.
    pub fn feedback(&self, require_checks: bool) -> Vec<Feedback> {
        let mut items = Vec::new();
        for request in &self.change_requests {
            items.push(Feedback {
                key: format!("review:{}", request.review_id),
                item: FeedbackItem::ChangeRequest(request.clone()),
            });
        }
        for thread in &self.threads {
            items.push(Feedback {
                key: format!("thread:{}:{}", thread.id, thread.total_comments),
                item: FeedbackItem::Thread(thread.clone()),
            });
        }
        if require_checks {
            for check in self
                .checks
                .iter()
                .filter(|check| check.state == CheckState::Failing)
            {
                items.push(Feedback {
                    key: format!("check:{}:{}", self.pr.head_sha, check.name),
                    item: FeedbackItem::FailingCheck(check.clone()),
                });
            }
        }
        if self.pr.mergeable_state == "dirty" {
            items.push(Feedback {
                key: format!("conflict:{}", self.pr.head_sha),
                item: FeedbackItem::Conflict,
            });
        }
        items
    }
}

fn judge_run(run: &CheckRun) -> Check {
    let (state, detail) = match (run.status.as_str(), run.conclusion.as_deref()) {
        ("completed", Some(conclusion @ ("success" | "neutral" | "skipped"))) => {
            (CheckState::Green, conclusion.to_string())
        }
        ("completed", Some(conclusion)) => (CheckState::Failing, conclusion.to_string()),
        ("completed", None) => (CheckState::Failing, "completed without a conclusion".into()),
        (status, _) => (CheckState::Pending, status.to_string()),
    };
    let summary = match (&run.title, &run.summary) {
        (Some(title), Some(summary)) => format!("{title}: {summary}"),
        (Some(text), None) | (None, Some(text)) => text.clone(),
        (None, None) => String::new(),
    };
    Check {
        name: run.name.clone(),
        state,
        detail,
        summary,
    }
}

/// Reads PR `number`'s signals: the PR first; unless it is merged, its reviews, review
/// threads, and the check runs and combined status of its head (a PR closed without a merge
/// goes to a person with its open feedback listed). A merged PR needs nothing more, so those
/// reads are skipped. Every REST GET is conditional (free when unchanged); the thread query
/// costs one GraphQL point per 25 threads.
pub fn read(
    client: &github::Client,
    repo: &RepoRef,
    number: u64,
) -> Result<Signals, github::Error> {
    let pr = client.pull_request(repo, number)?;
    if pr.merged {
        let empty = CombinedStatus {
            state: String::new(),
            statuses: Vec::new(),
        };
        return Ok(Signals::from_github(pr, &[], Vec::new(), &[], &empty));
    }
    let reviews = client.reviews(repo, number)?;
    let threads = client.review_threads(repo, number)?;
    let check_runs = client.check_runs(repo, &pr.head_sha)?;
    let status = client.combined_status(repo, &pr.head_sha)?;
    Ok(Signals::from_github(
        pr,
        &reviews,
        threads,
        &check_runs,
        &status,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::github::CommitStatus;

    pub(crate) fn pr(head: &str) -> PullRequest {
        PullRequest {
            number: 7,
            html_url: "https://github.com/acme/widgets/pull/7".into(),
            state: "open".into(),
            draft: false,
            head_ref: "x/demo-eng-10".into(),
            head_sha: head.into(),
            head_repo: Some("acme/widgets".into()),
            base_repo: "acme/widgets".into(),
            base_ref: "main".into(),
            merged: false,
            mergeable: Some(true),
            mergeable_state: "clean".into(),
            merge_commit_sha: None,
            merged_by: None,
        }
    }

    pub(crate) fn review(id: u64, reviewer: &str, state: ReviewState) -> Review {
        Review {
            id,
            reviewer: reviewer.into(),
            state,
            body: format!("review {id}"),
            commit_id: None,
            submitted_at: None,
        }
    }

    fn run(name: &str, status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            id: 1,
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_string),
            title: Some("Title".into()),
            summary: None,
        }
    }

    fn no_status() -> CombinedStatus {
        CombinedStatus {
            state: "pending".into(),
            statuses: Vec::new(),
        }
    }

    #[test]
    fn the_latest_decisive_review_per_reviewer_counts() {
        let reviews = [
            review(1, "alice", ReviewState::ChangesRequested),
            review(2, "Alice", ReviewState::Commented),
            review(3, "bob", ReviewState::Approved),
            review(4, "carol", ReviewState::ChangesRequested),
            review(5, "carol", ReviewState::Dismissed),
            review(6, "dave", ReviewState::Approved),
            review(7, "dave", ReviewState::ChangesRequested),
            review(8, "erin", ReviewState::ChangesRequested),
            review(9, "erin", ReviewState::Approved),
            review(10, "frank", ReviewState::Pending),
        ];
        let signals = Signals::from_github(pr("a"), &reviews, Vec::new(), &[], &no_status());
        assert_eq!(signals.approvals, ["bob", "erin"]);
        let requesters: Vec<(&str, u64)> = signals
            .change_requests
            .iter()
            .map(|request| (request.reviewer.as_str(), request.review_id))
            .collect();
        assert_eq!(requesters, [("alice", 1), ("dave", 7)]);
    }

    #[test]
    fn checks_are_green_pending_or_failing() {
        let runs = [
            run("ok", "completed", Some("success")),
            run("neutral", "completed", Some("neutral")),
            run("skipped", "completed", Some("skipped")),
            run("queued", "queued", None),
            run("running", "in_progress", None),
            run("failed", "completed", Some("failure")),
            run("timeout", "completed", Some("timed_out")),
            run("cancelled", "completed", Some("cancelled")),
            run("action", "completed", Some("action_required")),
            run("stale", "completed", Some("stale")),
        ];
        let status = CombinedStatus {
            state: "failure".into(),
            statuses: ["success", "pending", "failure", "error"]
                .iter()
                .map(|state| CommitStatus {
                    context: format!("ci/{state}"),
                    state: (*state).into(),
                    description: None,
                })
                .collect(),
        };
        let signals = Signals::from_github(pr("a"), &[], Vec::new(), &runs, &status);
        assert_eq!(signals.checks_in(CheckState::Green), 4);
        assert_eq!(signals.checks_in(CheckState::Pending), 3);
        assert_eq!(signals.checks_in(CheckState::Failing), 7);
    }

    #[test]
    fn feedback_keys_are_stable_and_change_with_the_feedback() {
        let thread = |comments: u64| ReviewThread {
            id: "T1".into(),
            resolved: false,
            outdated: false,
            path: "src/lib.rs".into(),
            line: Some(3),
            comments: Vec::new(),
            total_comments: comments,
        };
        let resolved = ReviewThread {
            id: "T2".into(),
            resolved: true,
            ..thread(1)
        };
        let mut dirty = pr("abc");
        dirty.mergeable_state = "dirty".into();
        let signals = Signals::from_github(
            dirty,
            &[review(4, "alice", ReviewState::ChangesRequested)],
            vec![thread(1), resolved],
            &[run("ci", "completed", Some("failure"))],
            &no_status(),
        );
        let keys: Vec<String> = signals.feedback(true).into_iter().map(|f| f.key).collect();
        assert_eq!(
            keys,
            ["review:4", "thread:T1:1", "check:abc:ci", "conflict:abc"]
        );
        let without_checks: Vec<String> =
            signals.feedback(false).into_iter().map(|f| f.key).collect();
        assert_eq!(without_checks, ["review:4", "thread:T1:1", "conflict:abc"]);
        let replied = Signals::from_github(pr("abc"), &[], vec![thread(2)], &[], &no_status());
        assert_eq!(replied.feedback(true)[0].key, "thread:T1:2");
    }
}
