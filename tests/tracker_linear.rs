//! The Linear adapter against the fake Linear: pagination, normalization, name resolution,
//! mutations, and every fault the adapter must classify (and retry only when it should).

use std::time::Duration;

use maestro::tracker::linear::{ApiKey, Client, Options};
use maestro::tracker::{self, Category, Error, Tracker};

use crate::support::fake_linear::{
    API_KEY, FakeComment, FakeIssue, FakeLinear, Fault, SLUG_ID, World,
};

/// A client with small pages and quick retries, for the slug in its URL form.
fn client(fake: &FakeLinear) -> Client {
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.page_size = 2;
    options.retry_base = Duration::from_millis(5);
    options.call_timeout = Duration::from_secs(5);
    Client::new(options, &format!("demo-project-{SLUG_ID}"))
}

fn todo() -> Vec<String> {
    vec!["Todo".to_string()]
}

/// Seven Todo issues created in order, plus issues the listing must leave out.
fn seven() -> World {
    let mut world = World::standard();
    for n in 1..=7 {
        world = world.with(FakeIssue::new(&format!("ABC-{n}"), "Todo"));
    }
    world
        .with(FakeIssue::new("ABC-8", "Done"))
        .with(FakeIssue::new("ABC-9", "Todo").project(Some("elsewhere")))
}

#[test]
fn listing_walks_every_page_in_order() {
    let fake = FakeLinear::start(seven());
    let issues = client(&fake).issues_in_states(&todo()).unwrap();
    let identifiers: Vec<&str> = issues
        .iter()
        .map(|issue| issue.identifier.as_str())
        .collect();
    assert_eq!(
        identifiers,
        [
            "ABC-1", "ABC-2", "ABC-3", "ABC-4", "ABC-5", "ABC-6", "ABC-7"
        ]
    );
    assert_eq!(
        fake.operations(),
        [
            "ProjectBySlugId",
            "TeamWorkflowStates",
            "ProjectIssuesByStateNames",
            "ProjectIssuesByStateNames",
            "ProjectIssuesByStateNames",
            "ProjectIssuesByStateNames"
        ]
    );
    let requests = fake.requests();
    let variables: Vec<serde_json::Value> = requests[2..]
        .iter()
        .map(|request| request.json()["variables"].clone())
        .collect();
    assert_eq!(
        variables[0]["slugId"], SLUG_ID,
        "the URL form is reduced to the slug id"
    );
    assert_eq!(variables[0]["stateNames"], serde_json::json!(["Todo"]));
    assert_eq!(variables[0]["first"], 2);
    assert_eq!(variables[0]["after"], serde_json::Value::Null);
    assert_eq!(variables[1]["after"], "cursor-2");
    assert_eq!(variables[3]["after"], "cursor-6");
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn state_names_are_sent_as_the_team_spells_them() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    let names = vec![
        "todo ".to_string(),
        "DONE".to_string(),
        "Shipped".to_string(),
    ];
    let issues = linear.issues_in_states(&names).unwrap();
    assert_eq!(
        issues.len(),
        8,
        "seven Todo and one Done; Shipped matches no state"
    );
    let listing = fake.requests()[2].json();
    assert_eq!(listing["operationName"], "ProjectIssuesByStateNames");
    assert_eq!(
        listing["variables"]["stateNames"],
        serde_json::json!(["Todo", "Done"])
    );

    let none = linear.issues_in_states(&["Shipped".to_string()]).unwrap();
    assert!(none.is_empty());
    let listings = fake
        .operations()
        .iter()
        .filter(|op| *op == "ProjectIssuesByStateNames")
        .count();
    assert_eq!(listings, 4, "no listing is sent when no state matches");
}

#[test]
fn requests_carry_the_key_a_user_agent_and_json() {
    let fake = FakeLinear::start(World::standard());
    client(&fake).project().unwrap();
    let request = &fake.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/graphql");
    assert_eq!(request.header("authorization"), Some(API_KEY));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("user-agent"),
        Some(format!("maestro/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let body = request.json();
    assert_eq!(body["operationName"], "ProjectBySlugId");
    assert!(
        body["query"]
            .as_str()
            .unwrap()
            .starts_with("# The configured project")
    );
}

#[test]
fn issues_are_normalized() {
    let world = World::standard()
        .with(FakeIssue::new("ABC-2", "In Progress"))
        .with(FakeIssue::new("ABC-3", "Done"))
        .with(
            FakeIssue::new("ABC-1", "Todo")
                .priority(3.0)
                .labels(&[" Bug ", "bug", "Maestro:Needs-Attention"])
                .blocked_by("ABC-2")
                .blocked_by("ABC-3")
                .related_to("ABC-3"),
        );
    let mut world = world;
    world.issues[2].description = None;
    let fake = FakeLinear::start(world);
    let issues = client(&fake).issues_in_states(&todo()).unwrap();
    assert_eq!(issues.len(), 1);
    let issue = &issues[0];
    assert_eq!(issue.id, "id-ABC-1");
    assert_eq!(issue.identifier, "ABC-1");
    assert_eq!(issue.description, "", "null description becomes empty");
    assert_eq!(issue.priority, Some(3));
    assert_eq!(issue.state.name, "Todo");
    assert_eq!(issue.state.kind, "unstarted");
    assert_eq!(issue.labels, ["bug", "maestro:needs-attention"]);
    let blockers: Vec<(&str, &str)> = issue
        .blockers
        .iter()
        .map(|blocker| (blocker.identifier.as_str(), blocker.state.name.as_str()))
        .collect();
    assert_eq!(
        blockers,
        [("ABC-2", "In Progress"), ("ABC-3", "Done")],
        "related is not a blocker"
    );
    assert_eq!(
        issue.url.as_deref(),
        Some("https://linear.app/fake/issue/ABC-1")
    );
    assert_eq!(issue.branch_name.as_deref(), Some("fake/abc-1"));
    assert_eq!(issue.created_at, "2026-01-01T00:01:00.000Z");
    assert_eq!(
        issue.created_ms,
        maestro::clock::parse_rfc3339("2026-01-01T00:01:00Z").unwrap()
    );
    assert_eq!(issue.team.key, "ABC");
    assert_eq!(issue.project_slug.as_deref(), Some(SLUG_ID));
}

#[test]
fn project_scope_is_resolved_once_and_a_wrong_slug_is_an_error() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    let scope = linear.project().unwrap();
    assert_eq!(scope.slug_id, SLUG_ID);
    assert_eq!(scope.name, "Demo");
    assert_eq!(scope.teams.len(), 1);
    assert_eq!(scope.teams[0].key, "ABC");
    linear.project().unwrap();
    linear.issues_in_states(&todo()).unwrap();
    let project_calls = fake
        .operations()
        .iter()
        .filter(|op| *op == "ProjectBySlugId")
        .count();
    assert_eq!(project_calls, 1, "cached for the run");

    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.page_size = 2;
    let wrong = Client::new(options, "nope");
    let error = wrong.issues_in_states(&todo()).unwrap_err();
    assert!(
        matches!(&error, Error::ProjectNotFound { slug } if slug == "nope"),
        "{error:?}"
    );
    assert!(error.is_config());
}

#[test]
fn refresh_returns_complete_snapshots_of_visible_project_issues_only() {
    let world = seven().with(
        FakeIssue::new("ABC-10", "Todo")
            .blocked_by("ABC-1")
            .labels(&["Bug"]),
    );
    let fake = FakeLinear::start(world);
    let linear = client(&fake);
    let ids: Vec<String> = [
        "id-ABC-10",
        "id-ABC-9",
        "id-missing",
        "id-ABC-10",
        "id-ABC-2",
    ]
    .iter()
    .map(|id| id.to_string())
    .collect();
    let mut issues = linear.refresh(&ids).unwrap();
    issues.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    let identifiers: Vec<&str> = issues
        .iter()
        .map(|issue| issue.identifier.as_str())
        .collect();
    assert_eq!(
        identifiers,
        ["ABC-10", "ABC-2"],
        "other project and unknown ids are not visible"
    );
    assert_eq!(issues[0].labels, ["bug"]);
    assert_eq!(issues[0].blockers[0].identifier, "ABC-1");
    let requests = fake.requests();
    let by_ids: Vec<serde_json::Value> = requests
        .iter()
        .map(|request| request.json())
        .filter(|body| body["operationName"] == "IssuesByIds")
        .map(|body| body["variables"].clone())
        .collect();
    assert_eq!(by_ids.len(), 2, "4 distinct ids in pages of 2");
    assert_eq!(
        by_ids[0]["ids"],
        serde_json::json!(["id-ABC-10", "id-ABC-9"])
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

#[test]
fn mutations_resolve_names_and_reach_the_tracker() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    linear.issues_in_states(&todo()).unwrap();

    let state = linear.transition("id-ABC-1", " in review ").unwrap();
    assert_eq!(
        (state.name.as_str(), state.kind.as_str()),
        ("In Review", "started")
    );
    assert_eq!(fake.issue("ABC-1").state, "In Review");

    let comment = linear
        .add_comment("id-ABC-1", "Handed off: PR #12")
        .unwrap();
    assert_eq!(comment.id, "comment-1");
    assert!(comment.url.unwrap().contains("ABC-1"));
    assert_eq!(fake.comments()[0].issue_id, "id-ABC-1");
    assert_eq!(fake.comments()[0].body, "Handed off: PR #12");

    linear
        .add_label("id-ABC-1", "MAESTRO:NEEDS-ATTENTION")
        .unwrap();
    linear.add_label("id-ABC-1", "bug").unwrap();
    assert_eq!(
        fake.issue("ABC-1").labels,
        ["maestro:needs-attention", "Bug"]
    );

    linear.transition("id-ABC-2", "Todo").unwrap();
    let operations = fake.operations();
    let count = |name: &str| operations.iter().filter(|op| *op == name).count();
    assert_eq!(
        count("TeamWorkflowStates"),
        1,
        "team metadata is cached for the run"
    );
    assert_eq!(count("LabelsUsableByTeam"), 1);
    assert_eq!(count("IssuesByIds"), 0, "teams are known from the listing");
    assert_eq!(fake.mutations().len(), 5);
    let set_state = fake.mutations()[0].json();
    assert_eq!(set_state["variables"]["stateId"], "state-in-review");

    let metadata = linear.team_metadata("team-abc").unwrap();
    let labels: Vec<(&str, bool)> = metadata
        .labels
        .iter()
        .map(|label| (label.name.as_str(), label.workspace))
        .collect();
    assert_eq!(
        labels,
        [
            ("Bug", false),
            ("maestro:needs-attention", true),
            ("maestro:manual-only", true)
        ],
        "group labels are left out"
    );
}

#[test]
fn a_mutation_on_an_unlisted_issue_looks_it_up_first() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    linear.transition("id-ABC-3", "Done").unwrap();
    assert_eq!(fake.issue("ABC-3").state, "Done");
    let error = linear.transition("id-ABC-9", "Done").unwrap_err();
    assert!(
        matches!(&error, Error::IssueNotFound { id } if id == "id-ABC-9"),
        "{error:?}"
    );
    assert_eq!(
        fake.issue("ABC-9").state,
        "Todo",
        "another project's issue is never touched"
    );
}

#[test]
fn unknown_state_and_label_names_are_distinct_errors_listing_what_exists() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    let error = linear.transition("id-ABC-1", "Shipped").unwrap_err();
    assert_eq!(error.category(), Category::UnknownState);
    assert_eq!(
        error.to_string(),
        "team ABC has no workflow state \"Shipped\"; it has: Backlog, Todo, In Progress, In Review, Done, Canceled, Duplicate"
    );
    let error = linear.add_label("id-ABC-1", "Area").unwrap_err();
    assert!(
        matches!(&error, Error::UnknownLabel { name, .. } if name == "Area"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "no label \"Area\" is usable on team ABC's issues; usable labels: Bug, maestro:needs-attention, maestro:manual-only"
    );
    assert!(fake.mutations().is_empty());
}

/// What a call returns after `fault`, and how many requests it took.
fn after_fault(fault: Fault) -> (Result<usize, Error>, usize) {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    linear.project().unwrap();
    fake.inject("ProjectIssuesByStateNames", fault);
    let result = linear.issues_in_states(&todo()).map(|issues| issues.len());
    let listing_requests = fake
        .operations()
        .iter()
        .filter(|op| *op == "ProjectIssuesByStateNames")
        .count();
    (result, listing_requests)
}

#[test]
fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let far_past = 1_000_000_000_000; // a reset time already gone: retry at once
    let cases = [
        (
            "429 with retry-after",
            Fault::RateLimited {
                retry_after: Some(0),
                reset_at_ms: None,
            },
        ),
        (
            "429 without retry-after",
            Fault::RateLimited {
                retry_after: None,
                reset_at_ms: None,
            },
        ),
        (
            "429 with a past reset",
            Fault::RateLimited {
                retry_after: None,
                reset_at_ms: Some(far_past),
            },
        ),
        (
            "RATELIMITED in a 400 body",
            Fault::RateLimitedBody { reset_at_ms: None },
        ),
        ("500", Fault::Status(500)),
        ("503", Fault::Status(503)),
    ];
    for (name, fault) in cases {
        let (result, requests) = after_fault(fault);
        assert_eq!(result.unwrap(), 7, "{name}");
        assert_eq!(requests, 5, "{name}: one retry plus four pages");
    }
}

#[test]
fn faults_that_must_not_be_retried_fail_the_call_at_once() {
    let in_an_hour = maestro::clock::now_ms() + 3_600_000;
    let cases = [
        ("401", Fault::Status(401), Category::Auth, 1),
        ("404", Fault::Status(404), Category::Status, 1),
        (
            "malformed json",
            Fault::MalformedJson,
            Category::Malformed,
            1,
        ),
        (
            "graphql errors",
            Fault::GraphQlError("Argument first is invalid".into()),
            Category::GraphQl,
            1,
        ),
        (
            "missing cursor",
            Fault::MissingCursor,
            Category::Pagination,
            1,
        ),
        (
            "repeated cursor",
            Fault::RepeatedCursor,
            Category::Pagination,
            2,
        ),
        (
            "429 resetting beyond the deadline",
            Fault::RateLimited {
                retry_after: None,
                reset_at_ms: Some(in_an_hour),
            },
            Category::RateLimited,
            1,
        ),
        (
            "429 retry-after beyond the deadline",
            Fault::RateLimited {
                retry_after: Some(3600),
                reset_at_ms: None,
            },
            Category::RateLimited,
            1,
        ),
    ];
    for (name, fault, category, expected_requests) in cases {
        let (result, requests) = after_fault(fault);
        let error = result.expect_err(name);
        assert_eq!(error.category(), category, "{name}: {error}");
        assert_eq!(
            requests, expected_requests,
            "{name}: not retried, no page after the failure"
        );
    }
}

#[test]
fn error_messages_carry_what_the_operator_needs() {
    let (result, _) = after_fault(Fault::Status(401));
    assert_eq!(
        result.unwrap_err().to_string(),
        "linear refused the API key in ProjectIssuesByStateNames: Authentication failed; check the key named by tracker.api_key_env_var"
    );
    let (result, _) = after_fault(Fault::GraphQlError("Argument first is invalid".into()));
    assert_eq!(
        result.unwrap_err().to_string(),
        "linear rejected ProjectIssuesByStateNames: Argument first is invalid"
    );
    let (result, _) = after_fault(Fault::MissingCursor);
    assert_eq!(
        result.unwrap_err().to_string(),
        "cannot page through ProjectIssuesByStateNames: page 1 says hasNextPage but gives no endCursor; nothing from it was used"
    );
    let (result, _) = after_fault(Fault::RateLimited {
        retry_after: Some(3600),
        reset_at_ms: None,
    });
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "linear rate limit hit in ProjectIssuesByStateNames; retry after 3600s"
    );
    let Error::RateLimited { limit, .. } = error else {
        panic!("rate limited")
    };
    assert_eq!(limit.retry_after, Some(Duration::from_secs(3600)));
}

#[test]
fn retries_stop_after_the_attempt_budget() {
    let fake = FakeLinear::start(seven());
    let linear = client(&fake);
    linear.project().unwrap();
    for _ in 0..10 {
        fake.inject("ProjectIssuesByStateNames", Fault::Status(500));
    }
    let error = linear.issues_in_states(&todo()).unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 500, .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
    let requests = fake
        .operations()
        .iter()
        .filter(|op| *op == "ProjectIssuesByStateNames")
        .count();
    assert_eq!(requests, 4, "Options::new allows 4 attempts");
}

#[test]
fn a_reply_slower_than_the_call_deadline_is_a_timeout() {
    let fake = FakeLinear::start(seven());
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.call_timeout = Duration::from_millis(300);
    let linear = Client::new(options, SLUG_ID);
    fake.inject("ProjectBySlugId", Fault::Slow(Duration::from_secs(3)));
    let error = linear.project().unwrap_err();
    assert!(
        matches!(
            error,
            Error::Transport {
                timed_out: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("linear did not answer ProjectBySlugId in time"),
        "{error}"
    );
}

#[test]
fn an_unreachable_endpoint_is_a_transport_error() {
    let dead = crate::support::ports::DeadPort::new();
    let port = dead.port();
    let options = Options::new(
        &format!("http://127.0.0.1:{port}/graphql"),
        ApiKey::new(API_KEY.into()),
    );
    let error = Client::new(options, SLUG_ID).project().unwrap_err();
    assert_eq!(error.category(), Category::Transport, "{error}");
    assert!(
        error
            .to_string()
            .starts_with("cannot reach linear for ProjectBySlugId: "),
        "{error}"
    );
}

#[test]
fn the_api_key_comes_from_the_named_variable_and_is_never_shown() {
    let dir = crate::support::dir::TestDir::new("linear-secret");
    let path = dir.write(
        "maestro.toml",
        "id = \"demo\"\nrepo_root = \".\"\n[tracker]\napi_key_env_var = \"MY_LINEAR_KEY\"\napi_url = \"http://127.0.0.1:9/graphql\"\n",
    );
    let config =
        maestro::config::parse(&path, &std::fs::read_to_string(&path).unwrap(), None).unwrap();
    for value in [None, Some("   ")] {
        let error =
            tracker::open_with(&config, "slug", &|_| value.map(str::to_string)).unwrap_err();
        assert!(matches!(&error, Error::MissingSecret { var } if var == "MY_LINEAR_KEY"));
        assert_eq!(
            error.to_string(),
            "environment variable MY_LINEAR_KEY (named by tracker.api_key_env_var) is unset or empty; export it with a Linear API key"
        );
    }
    let secret = "lin_api_do_not_print_0123456789";
    let tracker = tracker::open_with(&config, "slug", &|name| {
        (name == "MY_LINEAR_KEY").then(|| secret.to_string())
    })
    .unwrap();
    let error = tracker.project().unwrap_err();
    assert!(!format!("{error} {error:?}").contains(secret));
    let mut options = Options::new("http://127.0.0.1:9", ApiKey::new(secret.into()));
    options.page_size = 500;
    let debug = format!("{:?}", Client::new(options, "slug"));
    assert!(!debug.contains(secret), "{debug}");
    assert!(debug.contains("<redacted>"));
}

/// Issue #19, break 2: an issue with more labels than one page holds (the agent can add them)
/// made every listing fail, so no issue of the project was dispatched any more. The adapter now
/// reads the rest of that issue's labels and relations with small per-issue queries; the
/// issue is judged on all of them (its opt-out label is the last one here) and the others
/// are listed as before.
#[test]
fn an_issue_with_more_labels_and_relations_than_a_page_is_read_whole() {
    let mut world = World::standard();
    for n in 100..125 {
        world = world.with(FakeIssue::new(&format!("ABC-{n}"), "In Progress"));
    }
    let mut labels: Vec<String> = (1..=130).map(|n| format!("tag-{n:03}")).collect();
    labels.push("maestro:manual-only".into());
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let mut crowded = FakeIssue::new("ABC-1", "Todo").labels(&label_refs);
    for n in 100..125 {
        crowded = crowded.blocked_by(&format!("ABC-{n}"));
    }
    let world = world
        .with(crowded)
        .with(FakeIssue::new("ABC-2", "Todo").labels(&["Bug"]));
    let fake = FakeLinear::start(world);
    let linear = client(&fake);

    let issues = linear.issues_in_states(&todo()).unwrap();
    let identifiers: Vec<&str> = issues.iter().map(|i| i.identifier.as_str()).collect();
    assert_eq!(identifiers, ["ABC-1", "ABC-2"]);
    let crowded = &issues[0];
    assert_eq!(crowded.labels.len(), 131, "{:?}", crowded.labels);
    assert!(crowded.has_label("maestro:manual-only"));
    assert_eq!(crowded.blockers.len(), 25);
    assert_eq!(issues[1].labels, ["bug"]);
    let operations = fake.operations();
    let count = |name: &str| operations.iter().filter(|op| *op == name).count();
    assert_eq!(count("IssueLabels"), 2, "131 labels: two pages of 100");
    assert_eq!(count("IssueInverseRelations"), 1, "{operations:?}");

    // A refresh (the live run's last look before it starts the agent) reads it whole too.
    let refreshed = linear.refresh(&["id-ABC-1".to_string()]).unwrap();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0].labels, crowded.labels);
    assert_eq!(refreshed[0].blockers, crowded.blockers);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

/// Every operation Maestro sends stays under Linear's 10,000-point ceiling for one query at the
/// largest variables the client ever sends, and a client asking for a huge page is clamped.
#[test]
fn every_document_stays_under_linears_complexity_limit() {
    use crate::support::fake_linear::linear_complexity::{LIMIT, score};
    use maestro::tracker::linear::{MAX_ISSUE_PAGE_SIZE, MAX_PAGE_SIZE};

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tracker/linear/graphql");
    let mut scored = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let document = std::fs::read_to_string(&path).unwrap();
        let issue_pages = document.contains("query ProjectIssuesByStateNames(")
            || document.contains("query IssuesByIds(");
        let first = if issue_pages {
            MAX_ISSUE_PAGE_SIZE
        } else {
            MAX_PAGE_SIZE
        };
        let points = score(&document, &serde_json::json!({"first": first})).unwrap();
        println!("{}: {points:.1} points at first = {first}", path.display());
        assert!(points < LIMIT, "{}: {points} points", path.display());
        scored += 1;
    }
    assert_eq!(scored, 15, "every document in {}", dir.display());

    let mut world = World::standard();
    for n in 1..=60 {
        world = world.with(FakeIssue::new(&format!("ABC-{n}"), "Todo"));
    }
    let fake = FakeLinear::start(world);
    let mut options = Options::new(&fake.url(), ApiKey::new(API_KEY.into()));
    options.page_size = 100;
    let issues = Client::new(options, SLUG_ID)
        .issues_in_states(&todo())
        .unwrap();
    assert_eq!(issues.len(), 60);
    let firsts: Vec<u64> = fake
        .requests()
        .iter()
        .filter(|request| request.json()["operationName"] == "ProjectIssuesByStateNames")
        .map(|request| request.json()["variables"]["first"].as_u64().unwrap())
        .collect();
    assert_eq!(firsts, [u64::from(MAX_ISSUE_PAGE_SIZE); 2]);
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}

/// A redirect is not followed: another host's answer (or a mutation sent twice) must never
/// become part of a call. It fails the call as a `status` error, at once.
#[test]
fn a_redirect_is_not_followed() {
    let elsewhere = FakeLinear::start(seven());
    let fake = FakeLinear::start(seven());
    fake.inject("*", Fault::Redirect(elsewhere.url()));
    let error = client(&fake).project().unwrap_err();
    assert_eq!(error.category(), Category::Status, "{error:?}");
    assert!(elsewhere.requests().is_empty(), "the other host was asked");
    assert_eq!(fake.requests().len(), 1, "not retried");
}

#[test]
fn comments_are_read_back_by_a_text_they_contain_across_pages() {
    let fake = FakeLinear::start(World::standard().with(FakeIssue::new("ABC-1", "In Review")));
    let client = client(&fake);
    let id = fake.issue("ABC-1").id;
    client
        .add_comment(&id, "**Maestro: ready for review**")
        .unwrap();
    fake.edit(|world| {
        for n in 0..60 {
            world.comments.push(FakeComment {
                id: format!("c-{n}"),
                issue_id: id.clone(),
                body: format!("note {n}\n- closeout: key-1 https://pr/{}", n % 2),
            });
        }
    });
    let found = client
        .comments_containing(&id, "closeout: key-1 https://pr/1")
        .unwrap();
    assert_eq!(found.len(), 30);
    assert_eq!(found[0].id, "c-1");
    assert!(found.iter().all(|c| c.body.ends_with("https://pr/1")));
    assert!(
        client
            .comments_containing(&id, "closeout: nobody")
            .unwrap()
            .is_empty()
    );
    let asked: Vec<u64> = fake
        .requests()
        .iter()
        .filter(|request| request.json()["operationName"] == "IssueComments")
        .map(|request| request.json()["variables"]["first"].as_u64().unwrap())
        .collect();
    assert_eq!(asked, [50, 50], "the filter answers in pages of 50");
    let missing = client
        .comments_containing("no-such-issue", "x")
        .unwrap_err();
    assert_eq!(missing.category(), Category::NotFound, "{missing}");
}
