//! The post-review lifecycle's GitHub side against the fake GitHub (#14): every client call and
//! its faults, conditional requests (a second read is free), and the phase machine driven by
//! real answers from handoff to merged, closed out and cleaned up. These tests drive
//! `maestro::review` directly, as the daemon's tick does (`landing.rs` runs the daemon itself).

use maestro::github::{self, BranchDeletion, Client, Error, MergeMethod, RepoRef};
use maestro::review::{
    self, Action, Handoff, IssueState, LaneFacts, Phase, RepairResult, ReviewRecord, decide,
};
use maestro::workflow::{MergeMode, ReviewPolicy};
use maestro::workspace::Layout;

use crate::support::dir::TestDir;
use crate::support::fake_github::{FakeGithub, Pull, Route, Thread, pull_url};

const HEAD: &str = "1111111111111111111111111111111111111111";
const MOVED: &str = "2222222222222222222222222222222222222222";
const TOKEN: &str = "test-token-value";
const BRANCH: &str = "x/demo-eng-10";

fn client(fake: &FakeGithub) -> Client {
    Client::new(&fake.url(), TOKEN.into())
}

fn widgets() -> RepoRef {
    github::parse_remote("git@github.com:acme/widgets.git").unwrap()
}

/// A PR on `HEAD` with one approval, one green check run and one green status.
fn ready_pr(fake: &FakeGithub) {
    let mut pull = Pull::fixed("acme/widgets", 7, BRANCH, HEAD);
    pull.review("bob", "APPROVED", "Looks good.");
    fake.add(pull);
    fake.check_run(HEAD, "build", "completed", Some("success"));
    fake.commit_status(HEAD, "ci/lint", "success", "lint passed");
}

fn policy() -> ReviewPolicy {
    ReviewPolicy {
        enabled: true,
        ..ReviewPolicy::default()
    }
}

fn record() -> ReviewRecord {
    ReviewRecord::from_handoff(
        &Handoff {
            issue_id: "id-10",
            identifier: "ENG-10",
            key: "ENG-10",
            pr_url: &pull_url("acme/widgets", 7),
            repo: &widgets(),
            number: 7,
            branch: BRANCH,
            validated_head: HEAD,
            run_id: "run-handoff",
        },
        "2026-07-01T10:00:00.000Z",
    )
}

/// Reads the PR and decides, as the daemon's tick does.
fn step(client: &Client, record: &mut ReviewRecord, policy: &ReviewPolicy) -> review::Decision {
    let reading = review::read(client, &widgets(), 7);
    record.mark_read("2026-07-01T10:01:00.000Z");
    let lane = LaneFacts {
        record,
        issue: &IssueState::InReview,
        repair_running: false,
    };
    let decision = decide(policy, &lane, Some(&reading));
    record.apply(&decision, "2026-07-01T10:01:00.000Z");
    decision
}

#[test]
fn reads_every_review_signal_across_pages() {
    let fake = FakeGithub::start();
    let mut pull = Pull::fixed("acme/widgets", 7, BRANCH, HEAD);
    // 150 reviews: two REST pages. The last word of each reviewer counts.
    for n in 0..148 {
        pull.review(&format!("commenter{n}"), "COMMENTED", "noted");
    }
    pull.review("alice", "CHANGES_REQUESTED", "Please add a test.");
    pull.review("bob", "APPROVED", "");
    // 30 threads: two GraphQL pages; resolved ones are not feedback.
    for n in 0..30 {
        let mut thread = Thread::open(&format!("T{n}"), "src/lib.rs", n, "carol", "Rename this.");
        thread.resolved = n % 2 == 0;
        pull.threads.push(thread);
    }
    fake.add(pull);
    fake.check_run(HEAD, "build", "completed", Some("success"));
    fake.check_run(HEAD, "test", "completed", Some("failure"));
    fake.check_run(HEAD, "slow", "in_progress", None);
    fake.commit_status(HEAD, "ci/lint", "success", "lint passed");
    let signals = review::read(&client(&fake), &widgets(), 7).unwrap();
    assert_eq!(signals.pr.head_sha, HEAD);
    assert_eq!(signals.pr.mergeable_state, "clean");
    assert_eq!(signals.approvals, ["bob"]);
    assert_eq!(signals.change_requests.len(), 1);
    assert_eq!(signals.change_requests[0].body, "Please add a test.");
    assert_eq!(signals.threads.len(), 15);
    assert_eq!(signals.threads[0].path, "src/lib.rs");
    assert_eq!(signals.threads[0].comments[0].author, "carol");
    assert_eq!(signals.checks.len(), 4);
    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /repos/acme/widgets/pulls/7",
            "GET /repos/acme/widgets/pulls/7/reviews?per_page=100&page=1",
            "GET /repos/acme/widgets/pulls/7/reviews?per_page=100&page=2",
            "POST /graphql",
            "POST /graphql",
            &format!(
                "GET /repos/acme/widgets/commits/{HEAD}/check-runs?filter=latest&per_page=100&page=1"
            ),
            &format!("GET /repos/acme/widgets/commits/{HEAD}/status?per_page=100&page=1"),
        ]
    );
    // The query sent is the validated document, with the cursor of the first page next.
    let graphql: Vec<serde_json::Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(
        graphql[0]["query"],
        include_str!("../src/github/graphql/review_threads.graphql")
    );
    assert_eq!(graphql[0]["variables"]["after"], serde_json::Value::Null);
    assert_eq!(graphql[1]["variables"]["after"], "cursor:25");
}

#[test]
fn a_second_read_sends_the_etags_and_costs_nothing() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    let first = review::read(&client, &widgets(), 7).unwrap();
    let used = fake.rate_used();
    assert_eq!(client.usage().not_modified, 0);
    let second = review::read(&client, &widgets(), 7).unwrap();
    assert_eq!(first, second, "the 304s answer from the cache");
    let requests = fake.requests();
    let again = &requests[requests.len() - 5..];
    for request in again.iter().filter(|r| r.method == "GET") {
        assert!(
            request
                .header("if-none-match")
                .is_some_and(|etag| etag.starts_with("W/\"")),
            "{} sent no ETag",
            request.url
        );
    }
    // Four REST GETs answered 304 (free); only the GraphQL query was charged.
    assert_eq!(client.usage().not_modified, 4);
    assert_eq!(fake.rate_used(), used + 1);
    assert_eq!(client.usage().graphql, 2);
    assert_eq!(client.usage().rate_remaining, Some(5000 - fake.rate_used()));
    // A change is read in full: a new review changes that URL's answer, and only that one.
    fake.update("acme/widgets", 7, |pull| {
        pull.review("alice", "CHANGES_REQUESTED", "No.")
    });
    let third = review::read(&client, &widgets(), 7).unwrap();
    assert_eq!(third.change_requests.len(), 1);
    assert_eq!(client.usage().not_modified, 7);
}

#[test]
fn etags_persist_for_another_process() {
    let dir = TestDir::new("review-etags");
    let layout = Layout::new(dir.path());
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let daemon = client(&fake).with_etag_cache(&layout.github_etag_cache_file());
    review::read(&daemon, &widgets(), 7).unwrap();
    assert!(daemon.save_etag_cache().unwrap());
    let text = std::fs::read_to_string(layout.github_etag_cache_file()).unwrap();
    assert!(text.contains("\"schema_version\": 1"), "{text}");
    assert!(!text.contains(TOKEN), "the cache holds no token");
    // A `run --once` child or a restarted daemon: a new client, the same file.
    let child = client(&fake).with_etag_cache(&layout.github_etag_cache_file());
    let used = fake.rate_used();
    let signals = review::read(&child, &widgets(), 7).unwrap();
    assert_eq!(signals.approvals, ["bob"]);
    assert_eq!(child.usage().not_modified, 4);
    assert_eq!(fake.rate_used(), used + 1, "only the GraphQL query costs");
    assert!(!child.save_etag_cache().unwrap(), "nothing new to save");
}

#[test]
fn the_token_is_only_ever_in_the_authorization_header() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    review::read(&client, &widgets(), 7).unwrap();
    client
        .merge(&widgets(), 7, MergeMethod::Squash, HEAD)
        .unwrap();
    client.delete_branch(&widgets(), BRANCH).unwrap();
    for request in fake.requests() {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer test-token-value")
        );
        assert!(!request.url.contains(TOKEN) && !request.body.contains(TOKEN));
        for (name, value) in &request.headers {
            assert!(
                name.eq_ignore_ascii_case("authorization") || !value.contains(TOKEN),
                "{name}"
            );
        }
    }
}

#[test]
fn merge_is_pinned_to_the_validated_head() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let merged = client(&fake)
        .merge(&widgets(), 7, MergeMethod::Rebase, HEAD)
        .unwrap();
    let request = fake.requests().pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path()),
        ("PUT", "/repos/acme/widgets/pulls/7/merge")
    );
    assert_eq!(
        request.json(),
        serde_json::json!({"merge_method": "rebase", "sha": HEAD})
    );
    assert_eq!(
        fake.pull("acme/widgets", 7).merge_commit_sha,
        Some(merged.sha)
    );
}

#[test]
fn merge_faults_are_typed_and_merge_nothing() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    // A push lands between "ready" and the merge: 409, nothing merged.
    fake.move_head_on_merge(MOVED);
    let error = client
        .merge(&widgets(), 7, MergeMethod::Squash, HEAD)
        .unwrap_err();
    assert!(matches!(error, Error::HeadMoved { .. }), "{error:?}");
    assert!(
        error.to_string().contains("Head branch was modified"),
        "{error}"
    );
    assert!(!fake.pull("acme/widgets", 7).merged);
    // Not mergeable as it is: 405.
    fake.update("acme/widgets", 7, |pull| pull.mergeable = Some(false));
    let error = client
        .merge(&widgets(), 7, MergeMethod::Squash, MOVED)
        .unwrap_err();
    assert!(matches!(error, Error::NotMergeable { .. }), "{error:?}");
    assert!(!error.is_transient());
    for (status, transient) in [(405, false), (409, false), (500, true), (502, true)] {
        fake.fail(Route::Merge, status, 1);
        let error = client
            .merge(&widgets(), 7, MergeMethod::Squash, MOVED)
            .unwrap_err();
        assert_eq!(error.is_transient(), transient, "{status}: {error:?}");
    }
    assert!(!fake.pull("acme/widgets", 7).merged);
    // A sha that is not a commit id never reaches GitHub.
    let before = fake.requests().len();
    let error = client
        .merge(&widgets(), 7, MergeMethod::Squash, "HEAD~1")
        .unwrap_err();
    assert!(matches!(error, Error::Malformed { .. }), "{error:?}");
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn deleting_a_branch_that_is_gone_is_success() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    assert_eq!(
        client.delete_branch(&widgets(), BRANCH).unwrap(),
        BranchDeletion::Deleted
    );
    assert!(!fake.has_branch("acme/widgets", BRANCH));
    let request = fake.requests().pop().unwrap();
    assert_eq!(
        (request.method.as_str(), request.path()),
        ("DELETE", "/repos/acme/widgets/git/refs/heads/x/demo-eng-10")
    );
    assert_eq!(
        client.delete_branch(&widgets(), BRANCH).unwrap(),
        BranchDeletion::AlreadyGone
    );
    fake.fail(Route::DeleteRef, 404, 1);
    assert_eq!(
        client.delete_branch(&widgets(), "other").unwrap(),
        BranchDeletion::AlreadyGone
    );
    fake.fail(Route::DeleteRef, 500, 1);
    assert!(
        client
            .delete_branch(&widgets(), "other")
            .unwrap_err()
            .is_transient()
    );
    let before = fake.requests().len();
    assert!(
        client
            .delete_branch(&widgets(), "../../heads/main")
            .is_err()
    );
    assert_eq!(
        fake.requests().len(),
        before,
        "a hostile name is refused before any request"
    );
}

#[test]
fn faults_on_each_read_route_fail_the_read_and_the_lane_waits_or_goes_to_a_human() {
    for (route, status, transient) in [
        (Route::Pull, 500, true),
        (Route::Reviews, 502, true),
        (Route::Threads, 503, true),
        (Route::CheckRuns, 500, true),
        (Route::Status, 500, true),
        (Route::Reviews, 403, true),
        (Route::Pull, 404, false),
    ] {
        let fake = FakeGithub::start();
        ready_pr(&fake);
        fake.fail(route, status, 1);
        let error = review::read(&client(&fake), &widgets(), 7).unwrap_err();
        assert_eq!(
            error.is_transient(),
            transient,
            "{route:?} {status}: {error:?}"
        );
        assert!(!error.to_string().contains(TOKEN));
        let mut record = record();
        let decision = decide(
            &policy(),
            &LaneFacts {
                record: &record,
                issue: &IssueState::InReview,
                repair_running: false,
            },
            Some(&Err(error)),
        );
        let expected = if status == 404 {
            Phase::Human
        } else {
            Phase::ReviewWait
        };
        assert_eq!(decision.phase, expected, "{route:?} {status}: {decision:?}");
        record.apply(&decision, "2026-07-01T10:01:00.000Z");
        // The next read, with the fault gone, carries on.
        if transient {
            assert_eq!(
                step(&client(&fake), &mut record, &policy()).phase,
                Phase::ReadyToLand
            );
        }
    }
}

#[test]
fn graphql_faults_are_errors_never_partial_lists() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    let other = RepoRef {
        owner: "acme".into(),
        name: "gadgets".into(),
    };
    let error = client.review_threads(&other, 7).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    let error = client.review_threads(&widgets(), 99).unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    fake.update("acme/widgets", 7, |pull| {
        for n in 0..30 {
            pull.threads
                .push(Thread::open(&format!("T{n}"), "a.rs", 1, "carol", "x"));
        }
    });
    fake.break_thread_cursor();
    let error = client.review_threads(&widgets(), 7).unwrap_err();
    assert!(error.to_string().contains("gives no new cursor"), "{error}");
    fake.fail(Route::Threads, 429, 1);
    assert!(matches!(
        client.review_threads(&widgets(), 7).unwrap_err(),
        Error::RateLimited { .. }
    ));
}

#[test]
fn reviewer_text_is_bounded_when_read() {
    let fake = FakeGithub::start();
    let mut pull = Pull::fixed("acme/widgets", 7, BRANCH, HEAD);
    pull.review(
        &"m".repeat(5000),
        "CHANGES_REQUESTED",
        &format!("\u{1b}[2J{}", "x".repeat(100_000)),
    );
    pull.threads.push(Thread::open(
        "T1",
        &"p".repeat(5000),
        1,
        "carol",
        &"y".repeat(70_000),
    ));
    fake.add(pull);
    fake.check_run(HEAD, &"n".repeat(10_000), "completed", Some("failure"));
    let signals = review::read(&client(&fake), &widgets(), 7).unwrap();
    let request = &signals.change_requests[0];
    assert!(request.reviewer.len() < 400, "{}", request.reviewer.len());
    assert!(request.body.len() < 8 * 1024 + 100 && request.body.contains("cut at 8192 bytes"));
    assert!(signals.threads[0].comments[0].body.len() < 4 * 1024 + 100);
    assert!(signals.threads[0].path.len() < 1100);
    assert!(signals.checks[0].name.len() < 400);
    // Shown to a person or the agent, it is quoted and escaped.
    let text = review::texts::repair_input(&record(), 1, 3, &signals.feedback(true));
    assert!(
        text.contains("> \\u{1b}[2Jxxx"),
        "control characters escaped in the quote"
    );
}

#[test]
fn a_redirect_on_a_review_route_is_not_followed() {
    let elsewhere = FakeGithub::start();
    ready_pr(&elsewhere);
    let fake = FakeGithub::start();
    fake.redirect_to(&elsewhere.url());
    let error = client(&fake).reviews(&widgets(), 7).unwrap_err();
    assert!(matches!(error, Error::Redirected { .. }), "{error:?}");
    assert!(elsewhere.requests().is_empty());
    let mut record = record();
    let decision = decide(
        &policy(),
        &LaneFacts {
            record: &record,
            issue: &IssueState::InReview,
            repair_running: false,
        },
        Some(&Err(error)),
    );
    record.apply(&decision, "now");
    assert_eq!(record.phase, Phase::Human);
}

/// The happy path as the daemon will drive it: wait for an approval, merge pinned to the
/// validated head, close out, delete the branch, done — with the record saved at every step.
#[test]
fn the_lifecycle_from_handoff_to_done_against_the_fake() {
    let dir = TestDir::new("review-lifecycle");
    let layout = Layout::new(dir.path());
    let fake = FakeGithub::start();
    fake.add(Pull::fixed("acme/widgets", 7, BRANCH, HEAD));
    fake.check_run(HEAD, "build", "in_progress", None);
    let client = client(&fake);
    let policy = policy();
    let mut record = record();
    record.save(&layout).unwrap();
    let waiting = step(&client, &mut record, &policy);
    assert_eq!(
        (waiting.phase, waiting.action.clone()),
        (Phase::ReviewWait, Action::Wait)
    );
    assert_eq!(
        review::texts::summary_line(&record, Some(std::time::Duration::from_secs(41))),
        "ENG-10 review_wait: 0/1 approvals, checks 0/1 green, next read in 41 s"
    );
    fake.update("acme/widgets", 7, |pull| {
        pull.review("bob", "APPROVED", "Ship it.")
    });
    fake.check_run(HEAD, "build", "completed", Some("success"));
    // The in-progress run is replaced by its completed run in GitHub's latest-per-name list.
    let decision = step(&client, &mut record, &policy);
    let Action::Merge { sha, method } = decision.action.clone() else {
        panic!("{decision:?}")
    };
    assert_eq!(
        record.phase,
        Phase::Landing,
        "the intent is recorded before the request"
    );
    record.save(&layout).unwrap();
    let answer = client.merge(&widgets(), 7, method, &sha);
    let closeout = record.finish_merge(&policy, &answer, "2026-07-01T10:02:00.000Z");
    assert!(matches!(
        closeout.action,
        Action::Closeout {
            move_state: true,
            post_comment: true,
            ..
        }
    ));
    let comment = review::texts::closeout_comment(&record);
    assert!(
        comment.contains("- method: squash") && comment.contains("- merged_by: maestro"),
        "{comment}"
    );
    record.finish_closeout("2026-07-01T10:03:00.000Z");
    let cleanup = decide(
        &policy,
        &LaneFacts {
            record: &record,
            issue: &IssueState::Terminal("Done".into()),
            repair_running: false,
        },
        None,
    );
    assert_eq!(
        cleanup.action,
        Action::Cleanup {
            delete_branch: true,
            remove_lane: true
        }
    );
    record.branch_cleaned(Some(client.delete_branch(&widgets(), BRANCH).unwrap()));
    record.finish_cleanup("2026-07-01T10:04:00.000Z");
    record.save(&layout).unwrap();
    let saved = ReviewRecord::load(&layout, "ENG-10").unwrap().unwrap();
    assert_eq!(saved.phase, Phase::Done);
    let path: Vec<&str> = saved.history.iter().map(|t| t.to.as_str()).collect();
    assert_eq!(
        path,
        [
            "ready_to_land",
            "landing",
            "delivery_closeout",
            "cleanup",
            "done"
        ]
    );
    assert!(!fake.has_branch("acme/widgets", BRANCH));
}

/// A head that moves between "ready" and the merge is never merged: 409, back to review_wait,
/// and the next read sees a head Maestro did not validate.
#[test]
fn a_head_moved_between_ready_and_merge_returns_to_review_wait() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    let policy = policy();
    let mut record = record();
    let decision = step(&client, &mut record, &policy);
    let Action::Merge { sha, method } = decision.action else {
        panic!("{decision:?}")
    };
    fake.move_head_on_merge(MOVED);
    let after = record.finish_merge(&policy, &client.merge(&widgets(), 7, method, &sha), "t");
    assert_eq!(after.phase, Phase::ReviewWait);
    assert!(
        record
            .reason
            .starts_with("merge refused: GitHub did not merge"),
        "{}",
        record.reason
    );
    assert!(!fake.pull("acme/widgets", 7).merged);
    let next = step(&client, &mut record, &policy);
    assert_eq!(next.phase, Phase::Human, "{next:?}");
    assert!(
        next.reason.contains("someone pushed to the lane branch"),
        "{}",
        next.reason
    );
}

/// Manual merge: Maestro waits in landing for a person, then closes out what they merged.
#[test]
fn a_manual_merge_is_waited_for_and_closed_out() {
    let fake = FakeGithub::start();
    ready_pr(&fake);
    let client = client(&fake);
    let policy = ReviewPolicy {
        merge: MergeMode::Manual,
        ..policy()
    };
    let mut record = record();
    let waiting = step(&client, &mut record, &policy);
    assert_eq!(
        (waiting.phase, waiting.waiting_for.as_str()),
        (
            Phase::Landing,
            "a person to merge the PR (merge = \"manual\")"
        )
    );
    // A person merges on GitHub.
    client
        .merge(&widgets(), 7, MergeMethod::Merge, HEAD)
        .unwrap();
    fake.update("acme/widgets", 7, |pull| {
        pull.merged_by = Some("dana".into())
    });
    let closeout = step(&client, &mut record, &policy);
    let Action::Closeout { merge, .. } = closeout.action else {
        panic!("{closeout:?}")
    };
    assert_eq!(
        (merge.by_maestro, merge.merged_by.as_deref()),
        (false, Some("dana"))
    );
}

/// Review feedback: a repair is decided with the feedback, a pushed repair becomes the
/// validated head, and the reviewer's change request then waits for a re-review.
#[test]
fn feedback_starts_a_repair_and_its_head_is_validated_after() {
    let fake = FakeGithub::start();
    let mut pull = Pull::fixed("acme/widgets", 7, BRANCH, HEAD);
    pull.review("alice", "CHANGES_REQUESTED", "Please add a test.");
    pull.threads.push(Thread::open(
        "T1",
        "src/lib.rs",
        12,
        "alice",
        "Rename this.",
    ));
    fake.add(pull);
    fake.check_run(HEAD, "build", "completed", Some("failure"));
    let client = client(&fake);
    let policy = policy();
    let mut record = record();
    let decision = step(&client, &mut record, &policy);
    let Action::Repair { attempt, feedback } = &decision.action else {
        panic!("{decision:?}")
    };
    assert_eq!((*attempt, feedback.len()), (1, 3));
    let input = review::texts::repair_input(&record, *attempt, policy.max_repairs, feedback);
    for expected in [
        "Changes requested by alice",
        "> Please add a test.",
        "Unresolved thread at `src/lib.rs:12`",
        "Failing check `build` (failure)",
    ] {
        assert!(input.contains(expected), "{expected} in {input}");
    }
    record.repair_started("run-repair-1");
    // The repair pushed and validated a new head; CI passes on it.
    fake.update("acme/widgets", 7, |pull| {
        pull.head = crate::support::fake_github::Head::Fixed(MOVED.into())
    });
    fake.check_run(MOVED, "build", "completed", Some("success"));
    record.finish_repair(&policy, RepairResult::Pushed { head: MOVED.into() }, "t");
    assert_eq!(record.validated_head, MOVED);
    let next = step(&client, &mut record, &policy);
    assert_eq!(next.phase, Phase::ReviewWait, "{next:?}");
    assert!(
        next.waiting_for.contains(
            "changes requested by alice (addressed by repair 1; waiting for a re-review)"
        ),
        "{}",
        next.waiting_for
    );
    // The reviewer approves: ready, merged at the repaired head.
    fake.update("acme/widgets", 7, |pull| {
        pull.review("alice", "APPROVED", "")
    });
    let ready = step(&client, &mut record, &policy);
    assert_eq!(
        ready.action,
        Action::Merge {
            sha: MOVED.into(),
            method: MergeMethod::Squash
        }
    );
}

/// Closed without a merge: a person takes over, told what feedback was still open.
#[test]
fn a_pr_closed_without_merge_goes_to_a_human_with_its_open_feedback() {
    let fake = FakeGithub::start();
    let mut pull = Pull::fixed("acme/widgets", 7, BRANCH, HEAD);
    pull.review("alice", "CHANGES_REQUESTED", "Not like this.");
    pull.state = "closed".into();
    fake.add(pull);
    let mut record = record();
    let decision = step(&client(&fake), &mut record, &policy());
    let Action::Human { open_feedback } = &decision.action else {
        panic!("{decision:?}")
    };
    assert_eq!(record.phase, Phase::Human);
    assert_eq!(decision.reason, "the PR was closed without a merge");
    let comment = review::texts::human_comment(&record, &decision.reason, open_feedback);
    assert!(
        comment.contains("Changes requested by alice") && comment.contains("> Not like this."),
        "{comment}"
    );
}
