//! Eligibility and dispatch order, table-driven: each rule alone, first failing rule wins,
//! the sort order, slots (global and per state) and held issues. The rules for issues Maestro
//! already worked on are in `selection_resume`, which shares the helpers here.

use std::collections::BTreeMap;
use std::path::Path;

use maestro::selection::{self, Claims, Hold, Reason, Rule, Slots, StateSlots};
use maestro::tracker::{Blocker, Issue, IssueState, TeamRef};
use maestro::workflow::{self, TrackerPolicy};

pub(crate) const PROJECT: &str = "proj";

pub(crate) fn policy() -> TrackerPolicy {
    workflow::parse(
        Path::new("/r/WORKFLOW.md"),
        "+++\nversion = 1\n[tracker]\nstartable_states = [\"Todo\", \"Ready\"]\n+++\n",
        Path::new("/r"),
    )
    .unwrap()
    .tracker
}

pub(crate) fn state(name: &str, kind: &str) -> IssueState {
    IssueState {
        name: name.into(),
        kind: kind.into(),
    }
}

/// An issue that passes every rule.
pub(crate) fn eligible(identifier: &str) -> Issue {
    Issue {
        id: format!("id-{identifier}"),
        identifier: identifier.into(),
        title: format!("Issue {identifier}"),
        description: String::new(),
        priority: Some(2),
        state: state("Todo", "unstarted"),
        labels: vec!["bug".into()],
        blockers: Vec::new(),
        url: None,
        branch_name: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        created_ms: 1_000,
        updated_at: "2026-01-01T00:00:00Z".into(),
        team: TeamRef {
            id: "t".into(),
            key: "ABC".into(),
        },
        project_slug: Some(PROJECT.into()),
    }
}

pub(crate) fn blocker(identifier: &str, name: &str, kind: &str) -> Blocker {
    Blocker {
        id: format!("id-{identifier}"),
        identifier: identifier.into(),
        state: state(name, kind),
    }
}

pub(crate) fn plenty() -> Claims {
    Claims {
        held: BTreeMap::new(),
        slots: Slots {
            limit: 10,
            free: 10,
            by_state: Vec::new(),
        },
    }
}

/// The verdict for one issue with ten free slots: `None` when eligible, else rule and reason.
fn verdict(issue: Issue, claims: &Claims) -> Option<(Rule, String)> {
    let selection = selection::select(vec![issue], &policy(), PROJECT, claims);
    selection.candidates[0]
        .verdict
        .as_ref()
        .err()
        .map(|reason| (reason.rule(), reason.to_string()))
}

#[test]
fn each_rule_alone() {
    type Change = fn(&mut Issue);
    type Expected = Option<(Rule, &'static str)>;
    let cases: [(&str, Change, Expected); 14] = [
        ("eligible as is", |_| {}, None),
        (
            "another project",
            |issue| issue.project_slug = Some("other".into()),
            Some((Rule::Project, "in another project (other)")),
        ),
        (
            "no project",
            |issue| issue.project_slug = None,
            Some((Rule::Project, "in no project")),
        ),
        (
            "not startable",
            |issue| issue.state = state("In Progress", "started"),
            Some((Rule::Startable, "state In Progress is not startable")),
        ),
        (
            "terminal",
            |issue| issue.state = state("Done", "completed"),
            Some((Rule::Startable, "state Done is not startable")),
        ),
        (
            "second startable state, any case",
            |issue| issue.state = state("ready", "unstarted"),
            None,
        ),
        (
            "opt-out label",
            |issue| issue.labels.push("maestro:manual-only".into()),
            Some((Rule::OptOut, "label maestro:manual-only")),
        ),
        (
            "needs-attention label",
            |issue| issue.labels.push("maestro:needs-attention".into()),
            Some((Rule::NeedsAttention, "label maestro:needs-attention")),
        ),
        (
            "open blocker",
            |issue| {
                issue
                    .blockers
                    .push(blocker("ABC-12", "In Progress", "started"))
            },
            Some((Rule::Blocked, "blocked by ABC-12 (In Progress)")),
        ),
        (
            "two open blockers, one done",
            |issue| {
                issue
                    .blockers
                    .push(blocker("ABC-12", "In Progress", "started"));
                issue.blockers.push(blocker("ABC-13", "Done", "completed"));
                issue.blockers.push(blocker("ABC-14", "Todo", "unstarted"));
            },
            Some((
                Rule::Blocked,
                "blocked by ABC-12 (In Progress), ABC-14 (Todo)",
            )),
        ),
        (
            "blocker in a terminal state",
            |issue| {
                issue
                    .blockers
                    .push(blocker("ABC-13", "Canceled", "canceled"))
            },
            None,
        ),
        (
            "blocker finished under another team's state name",
            |issue| {
                issue
                    .blockers
                    .push(blocker("XYZ-1", "Shipped", "completed"))
            },
            None,
        ),
        (
            "blocker in an unstarted state of another name",
            |issue| issue.blockers.push(blocker("XYZ-2", "Queued", "unstarted")),
            Some((Rule::Blocked, "blocked by XYZ-2 (Queued)")),
        ),
        (
            "held by a lease",
            |issue| issue.id = "id-HELD".into(),
            Some((Rule::Held, "leased by run r-42 (pid 7)")),
        ),
    ];
    let mut claims = plenty();
    claims.hold(
        "id-HELD",
        Hold::Leased {
            run_id: "r-42".into(),
            pid: 7,
        },
    );
    for (name, change, expected) in cases {
        let mut issue = eligible("ABC-1");
        change(&mut issue);
        let expected = expected.map(|(rule, reason)| (rule, reason.to_string()));
        assert_eq!(verdict(issue, &claims), expected, "{name}");
    }
}

#[test]
fn the_first_failing_rule_is_the_reason() {
    let mut issue = eligible("ABC-1");
    issue.id = "id-HELD".into();
    issue.blockers.push(blocker("ABC-2", "Todo", "unstarted"));
    issue.labels.push("maestro:needs-attention".into());
    issue.labels.push("maestro:manual-only".into());
    let mut claims = plenty();
    claims.hold("id-HELD", Hold::LeasedElsewhere);
    let order = [
        Rule::OptOut,
        Rule::NeedsAttention,
        Rule::Blocked,
        Rule::Held,
    ];
    for expected in order {
        let (rule, _) = verdict(issue.clone(), &claims).unwrap();
        assert_eq!(rule, expected);
        // Remove what made this rule fail; the next rule in order must then be the reason.
        match expected {
            Rule::OptOut => issue.labels.retain(|label| label != "maestro:manual-only"),
            Rule::NeedsAttention => issue.labels.retain(|label| !label.starts_with("maestro:")),
            Rule::Blocked => issue.blockers.clear(),
            _ => claims.held.clear(),
        }
    }
    assert_eq!(verdict(issue.clone(), &claims), None);
    issue.state = state("In Progress", "started");
    issue.project_slug = None;
    assert_eq!(verdict(issue, &claims).unwrap().0, Rule::Project);
    assert_eq!(Rule::ALL[0], Rule::Project);
}

#[test]
fn the_terminal_rule_guards_a_policy_that_lists_a_state_twice() {
    // WORKFLOW.md refuses a state both startable and terminal; the rule still holds if a
    // policy is built by hand.
    let mut policy = policy();
    policy.terminal_states.push("Ready".into());
    let mut issue = eligible("ABC-1");
    issue.state = state("Ready", "unstarted");
    let reason = selection::check(&issue, &policy, PROJECT, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        reason,
        Reason::Terminal {
            state: "Ready".into()
        }
    );
    assert_eq!(reason.to_string(), "state Ready is terminal");
}

#[test]
fn dispatch_order_is_priority_then_age_then_identifier() {
    let issue = |identifier: &str, priority: Option<u8>, created_ms: u64| {
        let mut issue = eligible(identifier);
        issue.priority = priority;
        issue.created_ms = created_ms;
        issue
    };
    let issues = vec![
        issue("ABC-1", None, 1),
        issue("ABC-2", Some(4), 1),
        issue("ABC-10", Some(2), 5),
        issue("ABC-9", Some(2), 5),
        issue("ABC-3", Some(2), 3),
        issue("ABC-4", Some(1), 9),
        issue("ABC-5", None, 0),
        issue("ABB-7", Some(2), 5),
    ];
    let selection = selection::select(issues, &policy(), PROJECT, &plenty());
    let order: Vec<&str> = selection
        .candidates
        .iter()
        .map(|candidate| candidate.issue.identifier.as_str())
        .collect();
    assert_eq!(
        order,
        [
            "ABC-4", "ABC-3", "ABB-7", "ABC-9", "ABC-10", "ABC-2", "ABC-5", "ABC-1"
        ]
    );
    assert_eq!(selection.selected().unwrap().issue.identifier, "ABC-4");
}

#[test]
fn slots_go_to_the_first_eligible_issues_in_order() {
    let mut blocked = eligible("ABC-1");
    blocked.priority = Some(1);
    blocked.blockers.push(blocker("ABC-9", "Todo", "unstarted"));
    let mut ready = eligible("ABC-4");
    ready.state = state("Ready", "unstarted");
    let issues = vec![blocked, eligible("ABC-2"), eligible("ABC-3"), ready];
    let claims = Claims {
        held: BTreeMap::new(),
        slots: Slots {
            limit: 3,
            free: 2,
            by_state: vec![StateSlots {
                state: "todo".into(),
                limit: 1,
                free: 1,
            }],
        },
    };
    let selection = selection::select(issues, &policy(), PROJECT, &claims);
    let verdicts: Vec<(&str, Option<String>)> = selection
        .candidates
        .iter()
        .map(|candidate| {
            (
                candidate.issue.identifier.as_str(),
                candidate.verdict.as_ref().err().map(ToString::to_string),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("ABC-1", Some("blocked by ABC-9 (Todo)".to_string())),
            ("ABC-2", None),
            (
                "ABC-3",
                Some(
                    "no free dispatch slot for state todo (max_concurrent_agents_by_state = 1)"
                        .to_string()
                )
            ),
            ("ABC-4", None),
        ],
        "a blocked issue takes no slot; the per-state cap stops ABC-3, not ABC-4"
    );
    assert_eq!(selection.eligible().count(), 2);

    let none_free = Claims {
        held: BTreeMap::new(),
        slots: Slots {
            limit: 2,
            free: 0,
            by_state: Vec::new(),
        },
    };
    let (rule, reason) = verdict(eligible("ABC-1"), &none_free).unwrap();
    assert_eq!(rule, Rule::Slot);
    assert_eq!(reason, "no free dispatch slot (max_concurrent_agents = 2)");
}

#[test]
fn unclaimed_means_every_configured_slot_is_free() {
    let workflow = workflow::parse(
        Path::new("/r/WORKFLOW.md"),
        "+++\nversion = 1\n[execution]\nmax_concurrent_agents = 3\nmax_concurrent_agents_by_state = { \"Todo\" = 2 }\n+++\n",
        Path::new("/r"),
    )
    .unwrap();
    let claims = Claims::unclaimed(&workflow.execution);
    assert!(claims.held.is_empty());
    assert_eq!(
        claims.slots,
        Slots {
            limit: 3,
            free: 3,
            by_state: vec![StateSlots {
                state: "Todo".into(),
                limit: 2,
                free: 2
            }],
        }
    );
}
