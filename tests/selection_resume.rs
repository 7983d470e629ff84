//! The rules for issues Maestro already works on or worked on, table-driven, each once: how
//! holds read, which one is reported, a running lane's standing, a chosen issue's re-check,
//! recovery candidates, due retries, a claim's bookkeeping check and the attempt budget.

use std::collections::BTreeMap;

use maestro::selection::{self, Bookkeeping, Hold, NextAttempt, Reason, Rule, Standing};
use maestro::tracker::Issue;
use maestro::workspace::lock::OwnerProcess;
use maestro::workspace::record::{self, Guard, RunStatus};

use crate::selection::{PROJECT, blocker, eligible, plenty, policy, state};

/// Bookkeeping as an attempt leaves it.
fn books(status: RunStatus, attempts: u32) -> record::IssueState {
    record::IssueState {
        issue_id: "id-ABC-1".into(),
        issue_identifier: "ABC-1".into(),
        attempts_used: attempts,
        last_run_id: Some("r-1".into()),
        last_status: Some(status),
        ..record::IssueState::default()
    }
}

fn guarded(mut state: record::IssueState) -> record::IssueState {
    state.guard = Some(Guard {
        reason: "label missing".into(),
        run_id: "r-1".into(),
        at: "2026-01-01T00:00:00.000Z".into(),
    });
    state
}

fn in_progress(mut issue: Issue) -> Issue {
    issue.state = state("In Progress", "started");
    issue
}

#[test]
fn every_hold_reads_the_same_wherever_it_is_reported() {
    let cases = [
        (
            Hold::Leased {
                run_id: "r-1".into(),
                pid: 9,
            },
            "leased by run r-1 (pid 9)",
            "ABC-1 is leased by run r-1 (pid 9)",
        ),
        (
            Hold::LeasedElsewhere,
            "leased by another process",
            "ABC-1 is leased by another process",
        ),
        (
            Hold::Running {
                run_id: Some("r-1".into()),
                pid: 9,
            },
            "running in run r-1 (pid 9; its lease file is missing)",
            "ABC-1 is running in run r-1 (pid 9; its lease file is missing)",
        ),
        (
            Hold::Running {
                run_id: None,
                pid: 9,
            },
            "running in run unknown (pid 9; its lease file is missing)",
            "ABC-1 is running in run unknown (pid 9; its lease file is missing)",
        ),
        (
            Hold::Guard {
                reason: "label missing".into(),
            },
            "guard marker: label missing",
            "ABC-1 is held by a guard marker: label missing",
        ),
        (
            Hold::QueuedRetry {
                attempt: 2,
                due_at: "2026-01-01T00:00:10.000Z".into(),
            },
            "queued for retry by the daemon (attempt 2, due 2026-01-01T00:00:10.000Z)",
            "ABC-1 is queued for retry by the daemon (attempt 2, due 2026-01-01T00:00:10.000Z)",
        ),
        (
            Hold::DaemonChild {
                run_id: "r-2".into(),
            },
            "running in daemon child run r-2",
            "ABC-1 is running in daemon child run r-2",
        ),
        (
            Hold::LaneBusy {
                lane: "ABC-1".into(),
            },
            "its lane ABC-1 is locked by another process",
            "ABC-1 has its lane ABC-1 locked by another process (its lease file was removed or replaced)",
        ),
    ];
    for (hold, listed, refused) in cases {
        assert_eq!(hold.to_string(), listed);
        assert_eq!(Reason::Held(hold.clone()).to_string(), listed);
        assert_eq!(hold.refusal("ABC-1"), refused);
    }
}

#[test]
fn the_strongest_hold_is_the_one_reported() {
    let leased = Hold::Leased {
        run_id: "r-1".into(),
        pid: 9,
    };
    let guard = Hold::Guard {
        reason: "label missing".into(),
    };
    let queued = Hold::QueuedRetry {
        attempt: 2,
        due_at: "soon".into(),
    };
    // Whatever order the facts arrive in, a lease beats a guard beats a queued retry.
    for order in [
        [leased.clone(), guard.clone(), queued.clone()],
        [queued.clone(), guard.clone(), leased.clone()],
        [guard.clone(), queued.clone(), leased.clone()],
    ] {
        let mut claims = plenty();
        for hold in order {
            claims.hold("id-1", hold);
        }
        assert_eq!(claims.held["id-1"], leased);
    }
}

#[test]
fn a_state_puts_a_running_lane_active_terminal_or_inactive() {
    let policy = policy();
    let cases = [
        ("Todo", Standing::Active),
        ("ready", Standing::Active),
        ("In Progress", Standing::Active),
        ("Done", Standing::Terminal),
        ("canceled", Standing::Terminal),
        ("Backlog", Standing::Inactive),
        ("In Review", Standing::Inactive),
    ];
    for (name, expected) in cases {
        assert_eq!(selection::standing(&policy, name), expected, "{name}");
    }
}

#[test]
fn a_chosen_issue_is_runnable_by_the_rules_of_its_state() {
    type Change = fn(Issue) -> Issue;
    let cases: [(&str, Change, Option<&str>); 7] = [
        ("startable", |issue| issue, None),
        (
            "startable but blocked",
            |mut issue| {
                issue.blockers.push(blocker("ABC-2", "Todo", "unstarted"));
                issue
            },
            Some("blocked by ABC-2 (Todo)"),
        ),
        ("in progress", in_progress, None),
        (
            "in progress, its blockers are not looked at",
            |issue| {
                let mut issue = in_progress(issue);
                issue.blockers.push(blocker("ABC-2", "Todo", "unstarted"));
                issue
            },
            None,
        ),
        (
            "in progress in another project",
            |issue| {
                let mut issue = in_progress(issue);
                issue.project_slug = Some("other".into());
                issue
            },
            Some("in another project (other)"),
        ),
        (
            "in progress with the needs-attention label",
            |issue| {
                let mut issue = in_progress(issue);
                issue.labels.push("maestro:needs-attention".into());
                issue
            },
            Some("label maestro:needs-attention"),
        ),
        (
            "moved on",
            |mut issue| {
                issue.state = state("In Review", "started");
                issue
            },
            Some("state In Review is not startable"),
        ),
    ];
    for (name, change, expected) in cases {
        let issue = change(eligible("ABC-1"));
        let verdict = selection::runnable(&issue, &policy(), PROJECT)
            .err()
            .map(|reason| reason.to_string());
        assert_eq!(verdict.as_deref(), expected, "{name}");
    }
}

#[test]
fn an_in_progress_issue_left_for_another_try_is_a_recovery_candidate() {
    let dead_owner = |status| books(status, 1);
    type Case = (
        &'static str,
        fn(Issue) -> Issue,
        Option<record::IssueState>,
        bool,
        bool,
        bool,
    );
    // (name, issue change, bookkeeping, its owner alive, lane on disk, recovery?)
    let cases: [Case; 12] = [
        (
            "retried",
            in_progress,
            Some(dead_owner(RunStatus::RetryScheduled)),
            false,
            false,
            true,
        ),
        (
            "interrupted",
            in_progress,
            Some(dead_owner(RunStatus::Interrupted)),
            false,
            false,
            true,
        ),
        (
            "failed",
            in_progress,
            Some(dead_owner(RunStatus::Failed)),
            false,
            false,
            true,
        ),
        (
            "died while running",
            in_progress,
            Some(dead_owner(RunStatus::Running)),
            false,
            false,
            true,
        ),
        (
            "still running",
            in_progress,
            Some(dead_owner(RunStatus::Running)),
            true,
            false,
            false,
        ),
        (
            "handed off",
            in_progress,
            Some(dead_owner(RunStatus::Handoff)),
            false,
            true,
            false,
        ),
        (
            "sent to a human",
            in_progress,
            Some(dead_owner(RunStatus::HumanRequired)),
            false,
            true,
            false,
        ),
        (
            "guarded",
            in_progress,
            Some(guarded(dead_owner(RunStatus::RetryScheduled))),
            false,
            false,
            false,
        ),
        (
            "a lane and no bookkeeping",
            in_progress,
            None,
            false,
            true,
            true,
        ),
        (
            "no lane and no bookkeeping",
            in_progress,
            None,
            false,
            false,
            false,
        ),
        (
            "startable, not in progress",
            |issue| issue,
            Some(dead_owner(RunStatus::RetryScheduled)),
            false,
            true,
            false,
        ),
        (
            "opted out",
            |issue| {
                let mut issue = in_progress(issue);
                issue.labels.push("maestro:manual-only".into());
                issue
            },
            Some(dead_owner(RunStatus::RetryScheduled)),
            false,
            true,
            false,
        ),
    ];
    for (name, change, state, owner_alive, lane_on_disk, expected) in cases {
        let issue = change(eligible("ABC-1"));
        let bookkeeping = state
            .as_ref()
            .map(|state| Bookkeeping { state, owner_alive });
        let verdict = selection::recovery(
            &issue,
            &policy(),
            PROJECT,
            &BTreeMap::new(),
            bookkeeping,
            lane_on_disk,
        );
        assert_eq!(verdict, expected, "{name}");
    }
    // Held elsewhere: never a recovery candidate, whatever the bookkeeping says.
    let mut claims = plenty();
    claims.hold("id-ABC-1", Hold::LeasedElsewhere);
    let state = books(RunStatus::RetryScheduled, 1);
    let bookkeeping = Some(Bookkeeping {
        state: &state,
        owner_alive: false,
    });
    let issue = in_progress(eligible("ABC-1"));
    assert!(!selection::recovery(
        &issue,
        &policy(),
        PROJECT,
        &claims.held,
        bookkeeping,
        true
    ));
}

#[test]
fn a_due_retry_runs_only_while_its_issue_and_bookkeeping_still_want_it() {
    type Case = (
        &'static str,
        fn(Issue) -> Issue,
        Option<record::IssueState>,
        bool,
        Option<(Rule, &'static str)>,
    );
    let human_since = || books(RunStatus::HumanRequired, 1);
    // (name, issue change, bookkeeping, the retry follows a run, verdict)
    let cases: [Case; 10] = [
        (
            "startable",
            |issue| issue,
            Some(books(RunStatus::RetryScheduled, 1)),
            true,
            None,
        ),
        (
            "in progress",
            in_progress,
            Some(books(RunStatus::Failed, 1)),
            true,
            None,
        ),
        ("no bookkeeping", in_progress, None, true, None),
        (
            "terminal",
            |mut issue| {
                issue.state = state("Canceled", "canceled");
                issue
            },
            None,
            true,
            Some((Rule::Terminal, "state Canceled is terminal")),
        ),
        (
            "moved on",
            |mut issue| {
                issue.state = state("Backlog", "backlog");
                issue
            },
            None,
            true,
            Some((
                Rule::Active,
                "state Backlog is neither startable nor in progress",
            )),
        ),
        (
            "opted out",
            |mut issue| {
                issue.labels.push("maestro:manual-only".into());
                issue
            },
            None,
            true,
            Some((Rule::OptOut, "label maestro:manual-only")),
        ),
        (
            "guarded since",
            in_progress,
            Some(guarded(books(RunStatus::RetryScheduled, 1))),
            false,
            Some((Rule::Held, "guard marker: label missing")),
        ),
        (
            "a human outcome since",
            in_progress,
            Some(human_since()),
            true,
            Some((Rule::Episode, "run r-1 already recorded human_required")),
        ),
        (
            "a stall since",
            in_progress,
            Some(books(RunStatus::Stalled, 1)),
            true,
            Some((Rule::Episode, "run r-1 already recorded stalled")),
        ),
        (
            "queued without a run: only a guard stops it",
            in_progress,
            Some(human_since()),
            false,
            None,
        ),
    ];
    for (name, change, bookkeeping, follows_a_run, expected) in cases {
        let issue = change(eligible("ABC-1"));
        let verdict = selection::retry_due(
            &issue,
            &policy(),
            PROJECT,
            bookkeeping.as_ref(),
            follows_a_run,
        )
        .err()
        .map(|reason| (reason.rule(), reason.to_string()));
        let expected = expected.map(|(rule, text)| (rule, text.to_string()));
        assert_eq!(verdict, expected, "{name}");
    }
}

#[test]
fn bookkeeping_lets_a_claim_go_ahead_unless_a_live_process_or_a_guard_holds_it() {
    let mut running = books(RunStatus::Running, 1);
    running.owner = Some(OwnerProcess {
        pid: 77,
        start_time: 1,
    });
    let cases = [
        ("finished", books(RunStatus::RetryScheduled, 1), false, None),
        (
            "a live process",
            running.clone(),
            true,
            Some("ABC-1 is running in run r-1 (pid 77; its lease file is missing)"),
        ),
        ("its process died", running, false, None),
        (
            "a guard",
            guarded(books(RunStatus::HumanRequired, 1)),
            false,
            Some("ABC-1 is held by a guard marker: label missing"),
        ),
    ];
    for (name, state, other_owner_alive, expected) in cases {
        let verdict = selection::claimable(&state, other_owner_alive)
            .err()
            .map(|hold| hold.refusal("ABC-1"));
        assert_eq!(verdict.as_deref(), expected, "{name}");
    }
}

#[test]
fn a_review_repair_runs_only_on_an_issue_still_in_review() {
    fn in_review(mut issue: Issue) -> Issue {
        issue.state = state("In Review", "started");
        issue
    }
    type Change = fn(Issue) -> Issue;
    let cases: [(&str, Change, Option<&str>); 5] = [
        ("in review", in_review, None),
        (
            "in review, any case",
            |mut issue| {
                issue.state = state("in review", "started");
                issue
            },
            None,
        ),
        (
            "moved back to work",
            in_progress,
            Some("state In Progress is not the review state a repair works in"),
        ),
        (
            "cancelled",
            |mut issue| {
                issue.state = state("Canceled", "canceled");
                issue
            },
            Some("state Canceled is terminal"),
        ),
        (
            "in review with the needs-attention label",
            |issue| {
                let mut issue = in_review(issue);
                issue.labels.push("maestro:needs-attention".into());
                issue
            },
            Some("label maestro:needs-attention"),
        ),
    ];
    for (name, change, expected) in cases {
        let issue = change(eligible("ABC-1"));
        let verdict = selection::repairable(&issue, &policy(), PROJECT)
            .err()
            .map(|reason| reason.to_string());
        assert_eq!(verdict.as_deref(), expected, "{name}");
    }
}

#[test]
fn the_budget_counts_the_consecutive_failures_of_one_episode() {
    let left_in = |status, attempts, outcome_state: Option<&str>| record::IssueState {
        outcome_state: outcome_state.map(str::to_string),
        ..books(status, attempts)
    };
    // (name, bookkeeping, current state, attempts used)
    let cases = [
        (
            "retried",
            left_in(RunStatus::RetryScheduled, 2, Some("In Progress")),
            Some("In Progress"),
            2,
        ),
        (
            "retried, state unknown",
            left_in(RunStatus::RetryScheduled, 2, Some("In Progress")),
            None,
            2,
        ),
        (
            "failed",
            left_in(RunStatus::Failed, 1, None),
            Some("Todo"),
            1,
        ),
        (
            "died while running",
            left_in(RunStatus::Running, 1, None),
            Some("Todo"),
            1,
        ),
        (
            "handed off",
            left_in(RunStatus::Handoff, 2, None),
            Some("Todo"),
            0,
        ),
        (
            "sent to a human",
            left_in(RunStatus::HumanRequired, 2, None),
            Some("Todo"),
            0,
        ),
        (
            "stalled",
            left_in(RunStatus::Stalled, 2, None),
            Some("Todo"),
            0,
        ),
        (
            "moved by a person",
            left_in(RunStatus::RetryScheduled, 2, Some("In Progress")),
            Some("todo"),
            0,
        ),
        (
            "same state, any case",
            left_in(RunStatus::RetryScheduled, 2, Some("In Progress")),
            Some("in progress"),
            2,
        ),
        // A failed review repair leaves the issue in review: whoever moves it back to work
        // starts a new episode, so repairs never eat into max_attempts.
        (
            "a failed repair, then moved back to work",
            left_in(RunStatus::Failed, 2, Some("In Review")),
            Some("Todo"),
            0,
        ),
    ];
    for (name, state, current, expected) in cases {
        assert_eq!(
            selection::attempts_in_budget(&state, current),
            expected,
            "{name}"
        );
    }
}

#[test]
fn a_claim_numbers_its_attempt_from_the_budget_or_the_daemons_request() {
    let failed = books(RunStatus::Failed, 2);
    let handed_off = books(RunStatus::Handoff, 2);
    // (name, bookkeeping, the daemon's request, attempt, used)
    let cases = [
        ("first ever", None, None, 1, 0),
        ("after two failures", Some(&failed), None, 3, 2),
        (
            "the daemon asks for a higher one",
            Some(&failed),
            Some(5),
            5,
            2,
        ),
        (
            "the bookkeeping knows a higher one",
            Some(&failed),
            Some(2),
            3,
            2,
        ),
        (
            "a new episode wins over the request",
            Some(&handed_off),
            Some(3),
            1,
            0,
        ),
        ("a request with no bookkeeping", None, Some(2), 2, 0),
    ];
    for (name, previous, requested, attempt, used) in cases {
        assert_eq!(
            selection::next_attempt(previous, "Todo", requested),
            NextAttempt { attempt, used },
            "{name}"
        );
    }
    assert_eq!(selection::within_budget(3, 3), Ok(()));
    let spent = selection::within_budget(4, 3).unwrap_err();
    assert_eq!(spent.rule(), Rule::Budget);
    assert_eq!(spent.to_string(), "attempt budget of 3 spent");
}
