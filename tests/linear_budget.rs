//! Issue #15: the daemon's intake stays inside Linear's API budget without losing correctness.
//!
//! The intake is driven poll by poll on a virtual clock shared with the fake Linear, which
//! prices every query by Linear's formula, charges it to the key's hourly budget, sends the
//! cost and budget headers, and (when asked) refuses what the budget cannot pay. Detection
//! latencies are in polls, budgets in points and requests counted by the fake: no test here
//! waits on wall-clock time except the one that runs the real daemon.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use maestro::intake::{self, Intake, Outcome};
use maestro::selection::{self, Claims};
use maestro::tracker::linear::{ApiKey, Client, Options};
use maestro::tracker::{self, Issue, Tracker};
use maestro::workflow::{self, Execution, TrackerPolicy};

use crate::support::fake_linear::budget::VirtualClock;
use crate::support::fake_linear::linear_complexity::{LIMIT, score};
use crate::support::fake_linear::{API_KEY, Cost, FakeIssue, FakeLinear, SLUG_ID, World};

/// The daemon's default poll interval.
const POLL: Duration = Duration::from_secs(60);

/// 2026-03-01T00:00:00Z, after every fake issue was created.
const START_MS: u64 = 1_772_323_200_000;

fn policy() -> TrackerPolicy {
    workflow::parse(
        Path::new("/r/WORKFLOW.md"),
        "+++\nversion = 1\n+++\n",
        Path::new("/r"),
    )
    .unwrap()
    .tracker
}

fn active(policy: &TrackerPolicy) -> Vec<String> {
    let mut states = policy.startable_states.clone();
    states.push(policy.in_progress_state.clone());
    states
}

fn linear_opener(url: String) -> intake::Opener {
    Box::new(move || {
        let options = Options::new(&url, ApiKey::new(API_KEY.into()));
        Ok(Box::new(Client::new(options, SLUG_ID)) as Box<dyn Tracker>)
    })
}

/// The intake against the fake Linear, both on one virtual clock.
struct Poller {
    clock: Arc<VirtualClock>,
    fake: FakeLinear,
    intake: Intake,
    policy: TrackerPolicy,
}

impl Poller {
    /// Starts the fake and runs the first sync (a resync) at [`START_MS`].
    fn start(world: World, resync_interval: Duration) -> Poller {
        Poller::start_with(world, resync_interval, |_| {})
    }

    fn start_with(
        world: World,
        resync_interval: Duration,
        prepare: impl FnOnce(&FakeLinear),
    ) -> Poller {
        let clock = VirtualClock::new(START_MS);
        let fake = FakeLinear::start_with_clock(world, clock.for_fake());
        prepare(&fake);
        let intake = Intake::new(
            linear_opener(fake.url()),
            clock.clone(),
            intake::Options {
                resync_interval,
                report_to: None,
            },
        );
        let mut poller = Poller {
            clock,
            fake,
            intake,
            policy: policy(),
        };
        assert_eq!(poller.sync(), Outcome::Fresh);
        poller
    }

    fn sync(&mut self) -> Outcome {
        self.intake
            .sync(&active(&self.policy))
            .unwrap_or_else(|error| panic!("sync failed: {error}"))
    }

    /// One poll interval later, one sync.
    fn poll(&mut self) -> Outcome {
        self.clock.advance(POLL);
        self.sync()
    }

    fn requests(&self) -> usize {
        self.fake.requests().len()
    }

    fn operations_since(&self, count: usize) -> Vec<String> {
        self.fake.operations()[count..].to_vec()
    }

    /// The identifiers selection finds eligible among the intake's candidates, slots aplenty.
    fn eligible(&self) -> Vec<String> {
        let candidates = self.intake.candidates(&active(&self.policy));
        let execution = Execution {
            max_concurrent_agents: 100,
            ..Execution::default()
        };
        let claims = Claims::unclaimed(&execution);
        selection::select(candidates, &self.policy, SLUG_ID, &claims)
            .eligible()
            .map(|candidate| candidate.issue.identifier.clone())
            .collect()
    }

    fn candidate_identifiers(&self) -> Vec<String> {
        self.intake
            .candidates(&active(&self.policy))
            .into_iter()
            .map(|issue| issue.identifier)
            .collect()
    }
}

fn identifiers(issues: &[Issue]) -> Vec<(&str, &str)> {
    issues
        .iter()
        .map(|issue| (issue.identifier.as_str(), issue.state.name.as_str()))
        .collect()
}

fn edit_issue(fake: &FakeLinear, identifier: &str, change: impl FnOnce(&mut FakeIssue)) {
    fake.edit(|world| {
        let issue = world
            .issues
            .iter_mut()
            .find(|issue| issue.identifier == identifier)
            .unwrap();
        change(issue);
    });
}

/// Dispatch within one poll interval of the change: an issue moved into a startable state,
/// one whose opt-out label was removed, and one whose blocker finished (the blocked issue's
/// own stamp does not move) are all eligible at the first poll after the change, and a quiet
/// poll asks one question and reads nothing.
#[test]
fn an_issue_that_becomes_eligible_is_seen_by_the_next_poll() {
    let world = World::standard()
        .with(FakeIssue::new("ABC-1", "Todo"))
        .with(FakeIssue::new("ABC-2", "Todo").labels(&["maestro:manual-only"]))
        .with(FakeIssue::new("ABC-3", "Backlog"))
        .with(FakeIssue::new("ABC-4", "In Progress"))
        .with(FakeIssue::new("ABC-5", "Todo").blocked_by("ABC-4"));
    let mut poller = Poller::start(world, intake::DEFAULT_RESYNC_INTERVAL);
    assert_eq!(poller.eligible(), ["ABC-1"]);

    let before = poller.requests();
    assert_eq!(poller.poll(), Outcome::Fresh);
    assert_eq!(
        poller.operations_since(before),
        ["IssueChanges"],
        "a quiet poll asks what changed and reads nothing"
    );

    // The changes land 20 s into the interval; the next poll is 40 s later.
    poller.clock.advance(Duration::from_secs(20));
    edit_issue(&poller.fake, "ABC-3", |issue| issue.state = "Todo".into());
    edit_issue(&poller.fake, "ABC-2", |issue| issue.labels.clear());
    edit_issue(&poller.fake, "ABC-4", |issue| issue.state = "Done".into());
    poller.clock.advance(POLL - Duration::from_secs(20));
    let before = poller.requests();
    assert_eq!(poller.sync(), Outcome::Fresh);
    assert_eq!(poller.eligible(), ["ABC-1", "ABC-2", "ABC-3", "ABC-5"]);
    assert_eq!(
        poller.operations_since(before),
        ["IssueChanges", "IssueSummariesByIds"],
        "the three changed issues are read in one request; ABC-5 is not read at all"
    );
    // The next question still names the three (its window overlaps the last one by two
    // minutes); their stamps match the mirror, so nothing is read again.
    let before = poller.requests();
    poller.poll();
    assert_eq!(poller.operations_since(before), ["IssueChanges"]);
    assert!(
        poller.fake.violations().is_empty(),
        "{:?}",
        poller.fake.violations()
    );
}

/// Reconciliation within one poll interval: running lanes' issues are answered from the
/// mirror (no request), and a move to a terminal state, to an inactive state, or an archived
/// issue, shows at the first poll after the change.
#[test]
fn a_running_issue_that_moves_on_is_seen_by_the_next_poll() {
    let world = World::standard()
        .with(FakeIssue::new("ABC-1", "In Progress"))
        .with(FakeIssue::new("ABC-2", "In Progress"))
        .with(FakeIssue::new("ABC-3", "In Progress"))
        .with(FakeIssue::new("ABC-4", "Todo"))
        .with(FakeIssue::new("ABC-5", "In Review"));
    let mut poller = Poller::start(world, intake::DEFAULT_RESYNC_INTERVAL);
    let running: Vec<String> = ["id-ABC-1", "id-ABC-2", "id-ABC-3"]
        .iter()
        .map(|id| id.to_string())
        .collect();
    poller.poll();
    let before = poller.requests();
    let issues = poller.intake.issues(&running).unwrap();
    assert_eq!(
        identifiers(&issues),
        [
            ("ABC-1", "In Progress"),
            ("ABC-2", "In Progress"),
            ("ABC-3", "In Progress")
        ]
    );
    assert_eq!(poller.requests(), before, "answered from the mirror");

    edit_issue(&poller.fake, "ABC-1", |issue| issue.state = "Done".into());
    edit_issue(&poller.fake, "ABC-2", |issue| {
        issue.state = "Backlog".into()
    });
    edit_issue(&poller.fake, "ABC-3", |issue| issue.archived = true);
    poller.poll();
    let before = poller.requests();
    let issues = poller.intake.issues(&running).unwrap();
    assert_eq!(
        identifiers(&issues),
        [("ABC-1", "Done"), ("ABC-2", "Backlog")],
        "ABC-3 is no longer visible"
    );
    assert_eq!(poller.requests(), before);
    assert_eq!(poller.candidate_identifiers(), ["ABC-4"]);

    // A lane whose issue is outside the active states (the mirror does not hold it) is read
    // once, then answered from the mirror too.
    let review = ["id-ABC-5".to_string()];
    let issues = poller.intake.issues(&review).unwrap();
    assert_eq!(identifiers(&issues), [("ABC-5", "In Review")]);
    assert_eq!(poller.operations_since(before), ["IssueSummariesByIds"]);
    poller.intake.issues(&review).unwrap();
    assert_eq!(poller.requests(), before + 1);
}

/// The "what changed?" question is scoped to the project, so an issue moved to another
/// project is not seen by it (the documented limit); the resync drops it, and reads nothing
/// that did not change.
#[test]
fn a_resync_drops_an_issue_that_left_the_project() {
    let world = World::standard()
        .with(FakeIssue::new("ABC-1", "Todo"))
        .with(FakeIssue::new("ABC-2", "Todo"));
    let mut poller = Poller::start(world, Duration::from_secs(600));
    edit_issue(&poller.fake, "ABC-2", |issue| {
        issue.project_slug = Some("elsewhere".into())
    });
    for _ in 1..10 {
        poller.poll();
        assert_eq!(poller.candidate_identifiers(), ["ABC-1", "ABC-2"]);
    }
    let before = poller.requests();
    poller.poll();
    assert_eq!(
        poller.clock.elapsed_ms(),
        600_000,
        "the tenth poll is the resync"
    );
    assert_eq!(poller.candidate_identifiers(), ["ABC-1"]);
    assert_eq!(
        poller.operations_since(before),
        [
            "ProjectBySlugId",
            "TeamWorkflowStates",
            "ProjectIssueStamps"
        ],
        "a fresh client, the stamps, and no issue read again"
    );
}

/// Linear refuses a query above 10,000 points before running it; so does the fake, charging
/// the request but no points. Maestro's own documents stay far below the limit
/// (`tracker_linear::every_document_stays_under_linears_complexity_limit` checks each one at
/// its largest page), and the client clamps the one page size it takes from its options.
#[test]
fn a_query_over_the_complexity_limit_is_refused_like_linear_does() {
    let fake = FakeLinear::start(World::standard().with(FakeIssue::new("ABC-1", "Todo")));
    let document = include_str!("../src/tracker/linear/graphql/issues_by_ids.graphql");
    let ids: Vec<String> = (1..=100).map(|n| format!("id-ABC-{n}")).collect();
    let variables = serde_json::json!({"ids": ids, "first": 100});
    let points = score(document, &variables).unwrap();
    assert!(points > LIMIT, "{points}");
    let body = serde_json::json!({"query": document, "operationName": "IssuesByIds", "variables": variables});
    let mut response = ureq::post(&fake.url())
        .header("Authorization", API_KEY)
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&body)
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let answer: serde_json::Value = response.body_mut().read_json().unwrap();
    let message = answer["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("query too complex"), "{message}");
    assert_eq!(
        fake.spent(),
        Cost {
            requests: 1,
            points: 0
        }
    );
    assert_eq!(fake.violations().len(), 1);

    // Through the client, a page size the operator could set too high never reaches Linear.
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.page_size = 100;
    let client = Client::new(options, SLUG_ID);
    client.refresh(&ids).unwrap();
    assert_eq!(fake.violations().len(), 1, "{:?}", fake.violations());
}

/// The figures docs/spec/tracker.md's budget arithmetic rests on, scored by Linear's formula.
#[test]
fn poll_documents_cost_what_the_spec_says() {
    let cost = |document: &str, first: u32| {
        score(document, &serde_json::json!({"first": first}))
            .unwrap()
            .ceil() as u64
    };
    let changes = include_str!("../src/tracker/linear/graphql/issue_changes.graphql");
    let stamps = include_str!("../src/tracker/linear/graphql/project_issue_stamps.graphql");
    let summaries = include_str!("../src/tracker/linear/graphql/issue_summaries_by_ids.graphql");
    let listing =
        include_str!("../src/tracker/linear/graphql/project_issues_by_state_names.graphql");
    assert_eq!(cost(changes, 50), 121);
    assert_eq!(cost(stamps, 100), 241);
    assert_eq!(cost(summaries, 1), 31);
    assert_eq!(cost(summaries, 100), 2941);
    assert_eq!(cost(listing, 25), 3616);
}

/// The ten-percent goal as a count, not a timing: an hour of 60 s polls over 100 quiet
/// candidates (plus three running lanes reconciled every poll) costs at most 25,000 points
/// and 120 requests as the fake counts them, start-up and the half-hour resync included, and
/// the intake's own ledger agrees with the fake to the point.
#[test]
fn an_hour_of_quiet_polls_over_100_candidates_stays_within_a_tenth_of_the_budget() {
    let mut world = World::standard();
    for n in 1..=100 {
        let mut issue = FakeIssue::new(&format!("ABC-{n}"), "Todo");
        if n % 10 == 0 {
            issue = issue.labels(&["Bug"]);
        }
        if n % 25 == 0 {
            issue = issue.blocked_by("ABC-101");
        }
        world = world.with(issue);
    }
    for n in 101..=103 {
        world = world.with(FakeIssue::new(&format!("ABC-{n}"), "In Progress"));
    }
    let mut poller = Poller::start(world, intake::DEFAULT_RESYNC_INTERVAL);
    let running: Vec<String> = (101..=103).map(|n| format!("id-ABC-{n}")).collect();
    for _ in 1..60 {
        assert_eq!(poller.poll(), Outcome::Fresh);
        assert_eq!(poller.intake.issues(&running).unwrap().len(), 3);
        assert_eq!(poller.intake.candidates(&active(&poller.policy)).len(), 103);
    }
    let spent = poller.fake.spent();
    println!(
        "an hour over 100 quiet candidates: {} requests, {} points; by operation: {:?}",
        spent.requests,
        spent.points,
        poller.fake.spent_by_operation()
    );
    assert!(spent.points <= 25_000, "{spent:?}");
    assert!(spent.requests <= 120, "{spent:?}");
    let ledger = poller.intake.spent_last_hour();
    assert_eq!(
        (ledger.requests, ledger.points),
        (spent.requests, spent.points)
    );
    assert_eq!(ledger.unpriced, 0);
}

/// With an hourly budget too small for a poll a minute, the intake spaces its polls out to
/// keep the reserve and is never refused; the same polls without pacing are refused.
#[test]
fn pacing_keeps_the_reserve_instead_of_hitting_ratelimited() {
    let world = || {
        let mut world = World::standard();
        for n in 1..=10 {
            world = world.with(FakeIssue::new(&format!("ABC-{n}"), "Todo"));
        }
        world
    };
    let mut poller = Poller::start_with(world(), intake::DEFAULT_RESYNC_INTERVAL, |fake| {
        fake.enforce_budget(5_000, 3_000)
    });
    let mut paced = 0;
    for _ in 0..120 {
        match poller.poll() {
            Outcome::Fresh => {}
            Outcome::Paced { .. } => paced += 1,
        }
    }
    assert_eq!(poller.fake.refused(), 0, "never refused");
    assert!(paced > 0, "a 3,000-point hour cannot pay a poll a minute");
    assert!(paced < 120, "and it still polls");
    let report = poller.intake.report();
    assert_eq!(
        report.points.as_ref().map(|points| points.limit),
        Some(3_000)
    );

    // The same question every minute, without pacing: refused once the bucket is empty.
    let clock = VirtualClock::new(START_MS);
    let fake = FakeLinear::start_with_clock(world(), clock.for_fake());
    fake.enforce_budget(5_000, 3_000);
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.max_attempts = 1;
    let client = Client::new(options, SLUG_ID);
    let refused = (0..120).any(|_| {
        clock.advance(POLL);
        matches!(
            client.changed_since(clock.ms() - 120_000),
            Err(tracker::Error::RateLimited { .. })
        )
    });
    assert!(refused && fake.refused() > 0);
}

/// The key's budget is shared (the run children, other tools): when an answer reports little
/// left, the intake stops asking until the refill covers its reserve, whoever spent it.
#[test]
fn pacing_reacts_to_what_the_key_has_left_not_only_to_its_own_spending() {
    let mut world = World::standard();
    for n in 1..=10 {
        world = world.with(FakeIssue::new(&format!("ABC-{n}"), "Todo"));
    }
    let mut poller = Poller::start_with(world, intake::DEFAULT_RESYNC_INTERVAL, |fake| {
        fake.enforce_budget(5_000, 20_000)
    });
    assert_eq!(poller.poll(), Outcome::Fresh);
    // Another user of the key spends most of what is left: five full listings.
    let other = Client::new(
        Options::new(&poller.fake.url(), ApiKey::new(API_KEY.into())),
        SLUG_ID,
    );
    for _ in 0..5 {
        other.issues_in_states(&["Todo".to_string()]).unwrap();
    }
    // The next poll still goes out (the intake has not heard yet) and learns what is left.
    assert_eq!(poller.poll(), Outcome::Fresh);
    let left = poller.intake.report().points.unwrap().remaining;
    assert!(left < 2_000, "{left} points left, under the 10% reserve");
    let before = poller.requests();
    let mut paced_polls = 0;
    while poller.poll() != Outcome::Fresh {
        paced_polls += 1;
        assert!(
            paced_polls < 60,
            "pacing ends once the refill covers the reserve"
        );
    }
    assert!(paced_polls >= 3, "{paced_polls}");
    assert_eq!(
        poller.operations_since(before),
        ["IssueChanges"],
        "nothing was asked while paced"
    );
    assert_eq!(poller.fake.refused(), 0);
}

/// The local tracker feeds the same intake: reads cost nothing, every poll reads every file,
/// and an edit to an issue file shows at the next poll.
#[test]
fn the_local_tracker_feeds_the_intake_too() {
    let dir = crate::support::dir::TestDir::new("intake-local");
    let issue = |identifier: &str, state: &str| {
        format!(
            "+++\nidentifier = \"{identifier}\"\ntitle = \"Issue {identifier}\"\nstate = \"{state}\"\ncreated = \"2026-01-02T09:00:00Z\"\n+++\n\nBody.\n"
        )
    };
    dir.write("issues/DEMO-1.md", &issue("DEMO-1", "Todo"));
    dir.write("issues/DEMO-2.md", &issue("DEMO-2", "Todo"));
    let issues_dir = dir.join("issues");
    let clock = VirtualClock::new(START_MS);
    let mut intake = Intake::new(
        Box::new(move || {
            Ok(
                Box::new(tracker::local::LocalTracker::open(&issues_dir, "demo")?)
                    as Box<dyn Tracker>,
            )
        }),
        clock.clone(),
        intake::Options {
            resync_interval: intake::DEFAULT_RESYNC_INTERVAL,
            report_to: None,
        },
    );
    let states = active(&policy());
    intake.sync(&states).unwrap();
    assert_eq!(intake.candidates(&states).len(), 2);
    dir.write("issues/DEMO-2.md", &issue("DEMO-2", "Done"));
    clock.advance(POLL);
    intake.sync(&states).unwrap();
    let candidates = intake.candidates(&states);
    assert_eq!(identifiers(&candidates), [("DEMO-1", "Todo")]);
    assert_eq!(
        identifiers(&intake.issues(&["DEMO-2".to_string()]).unwrap()),
        [("DEMO-2", "Done")]
    );
}

/// What the daemon's tracker traffic cost reaches `status`, `GET /state` and `/metrics`
/// through `.maestro/tracker-budget.json`.
#[test]
fn the_budget_shows_in_status_state_and_metrics() {
    let dir = crate::support::dir::TestDir::new("intake-report");
    let config = crate::support::state::config_for(&dir);
    let clock = VirtualClock::new(maestro::clock::now_ms());
    let fake = FakeLinear::start_with_clock(
        World::standard().with(FakeIssue::new("ABC-1", "Todo")),
        clock.for_fake(),
    );
    let mut intake = Intake::new(
        linear_opener(fake.url()),
        clock.clone(),
        intake::Options {
            resync_interval: intake::DEFAULT_RESYNC_INTERVAL,
            report_to: Some(maestro::workspace::Layout::new(&config.workspace_root)),
        },
    );
    let states = active(&policy());
    intake.sync(&states).unwrap();
    clock.advance(POLL);
    intake.sync(&states).unwrap();
    let spent = fake.spent();

    let snapshot = maestro::status::build(&config, 10);
    let budget = snapshot.tracker_budget.clone().expect("the report is read");
    assert_eq!(budget.requests_last_hour, spent.requests);
    assert_eq!(budget.points_last_hour, spent.points);
    assert_eq!(
        budget.points.as_ref().map(|points| points.limit),
        Some(250_000)
    );
    assert_eq!(budget.last_sync.as_ref().unwrap().kind, "changes");
    assert_eq!(budget.mirror_issues, 1);
    let text = maestro::status::render_text(&snapshot);
    assert!(
        text.contains(&format!(
            "TRACKER  {} requests, {} points in the last hour",
            spent.requests, spent.points
        )),
        "{text}"
    );

    let health = maestro::operator_http::Health::default();
    let state = maestro::operator_http::route("GET", "/state", &config, &health);
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(
        state["tracker_budget"]["requests_last_hour"],
        serde_json::json!(spent.requests)
    );
    let metrics = maestro::operator_http::route("GET", "/metrics", &config, &health);
    let metrics = String::from_utf8(metrics.body).unwrap();
    assert!(
        metrics.contains(&format!(
            "maestro_tracker_points_last_hour {}",
            spent.points
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("maestro_tracker_budget_remaining{kind=\"points\"}"),
        "{metrics}"
    );
}

/// The real daemon between resyncs asks one question a tick: after its first resync, every
/// request it sends is `IssueChanges` (no listing, no project or state lookups, no refresh),
/// and it writes the budget report. Before the intake, every tick sent the project lookup, the
/// team's states and a full listing.
#[test]
fn the_daemon_asks_only_what_changed_between_resyncs() {
    use crate::support::daemon_world::{DaemonWorld, Setup};
    let issues = (1..=3)
        .map(|n| FakeIssue::new(&format!("ABC-{n}"), "Todo").labels(&["maestro:manual-only"]))
        .collect();
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-budget",
        issues,
        execution: "",
        agent: "",
    });
    world.start_daemon(&serde_json::json!({}));
    let changes = |world: &DaemonWorld| {
        world
            .linear
            .operations()
            .iter()
            .filter(|op| *op == "IssueChanges")
            .count()
    };
    world.wait_for(
        "four polls after the first",
        Duration::from_secs(60),
        || (changes(&world) >= 4).then_some(()),
    );
    let report = world.wait_for("the budget report", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(world.state_dir().join("tracker-budget.json")).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    let operations = world.linear.operations();
    let first_change = operations
        .iter()
        .position(|op| op == "IssueChanges")
        .unwrap();
    assert!(
        operations[first_change..]
            .iter()
            .all(|op| op == "IssueChanges"),
        "{operations:?}"
    );
    assert!(
        !operations
            .iter()
            .any(|op| op == "ProjectIssuesByStateNames"),
        "{operations:?}"
    );
    assert_eq!(report["provider"], "linear");
    assert!(
        report["requests_last_hour"].as_u64().unwrap() >= 4,
        "{report}"
    );
}

/// The real daemon dispatches an issue that becomes eligible between two polls from its
/// mirror: the poll that sees the change reads that issue, the dispatch reads it once more, and
/// nothing is listed.
#[test]
fn the_daemon_dispatches_an_issue_that_becomes_eligible_between_polls() {
    use crate::support::daemon_world::{DaemonWorld, Setup, manual_attention_script, run_records};
    let mut world = DaemonWorld::new(Setup {
        name: "daemon-budget-dispatch",
        issues: vec![
            FakeIssue::new("ABC-1", "Backlog"),
            FakeIssue::new("ABC-2", "Todo").labels(&["maestro:manual-only"]),
        ],
        execution: "",
        agent: "",
    });
    world.start_daemon(&serde_json::json!({"*": manual_attention_script()}));
    let polls = |world: &DaemonWorld| {
        world
            .linear
            .operations()
            .iter()
            .filter(|op| *op == "IssueChanges")
            .count()
    };
    world.wait_for("two quiet polls", Duration::from_secs(60), || {
        (polls(&world) >= 2).then_some(())
    });
    let before = world.linear.operations().len();
    edit_issue(&world.linear, "ABC-1", |issue| issue.state = "Todo".into());
    world.wait_for("ABC-1 dispatched", Duration::from_secs(60), || {
        world.log().contains("dispatched issue=ABC-1").then_some(())
    });
    world.wait_for("the run to end", Duration::from_secs(60), || {
        run_records(&world.state_dir())
            .iter()
            .any(|record| record["status"] == "human_required")
            .then_some(())
    });
    assert_eq!(world.stop_daemon(), Some(0), "{}", world.log());
    let operations = world.linear.operations()[before..].to_vec();
    assert!(
        !operations
            .iter()
            .any(|op| op == "ProjectIssuesByStateNames"),
        "{operations:?}"
    );
    let summaries = operations
        .iter()
        .filter(|op| *op == "IssueSummariesByIds")
        .count();
    assert!(
        summaries >= 2,
        "the change read and the read before dispatch: {operations:?}"
    );
    assert!(!world.log().contains("dispatched issue=ABC-2"));
}

/// The daemon's other tracker clients (the review lifecycle's writes, a stall's write-back)
/// book what they spent with the intake, so the ledger matches every request the fake saw.
#[test]
fn another_clients_requests_are_booked_in_the_same_ledger() {
    let mut poller = Poller::start(
        World::standard().with(FakeIssue::new("ABC-1", "Todo")),
        intake::DEFAULT_RESYNC_INTERVAL,
    );
    assert_eq!(poller.poll(), Outcome::Fresh);
    let writer = (linear_opener(poller.fake.url()))().unwrap();
    let issue = writer.refresh(&["id-ABC-1".to_string()]).unwrap();
    writer.add_comment(&issue[0].id, "a closeout").unwrap();
    poller.intake.book(&writer.usage());
    let spent = poller.fake.spent();
    let ledger = poller.intake.spent_last_hour();
    assert!(writer.usage().requests >= 2, "{:?}", writer.usage());
    assert_eq!(
        (ledger.requests, ledger.points),
        (spent.requests, spent.points),
        "the intake's and the writer's requests, all of them"
    );
}
