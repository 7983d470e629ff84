//! The post-review lifecycle end to end (#14, docs/spec/review.md): the real `maestro` binary
//! and daemon, the real codex with the scripted model, the fake Linear and GitHub, and a bare
//! git origin the agent pushes to. A `run --once` hands the issue off; the daemon then watches
//! the PR, repairs feedback in the retained lane, merges (or waits for a person to), closes
//! out, deletes the branch and removes the lane, or sends the lane to a person.

use maestro::mock_model::Step;
use maestro::review::Phase;
use serde_json::json;

use crate::codex_or_skip;
use crate::support::landing::{
    BRANCH, CLOSEOUT, Daemon, HUMAN, LIFECYCLE, approve, assert_left_to_a_person, comments_titled,
    handed_off, head, phase, repair_steps, review_record, several_handed_off,
};
use crate::support::run_world::{REPO, pr_url};

#[test]
fn an_approved_green_pr_is_merged_at_the_validated_head_closed_out_and_cleaned_up() {
    let codex = codex_or_skip!();
    let world = handed_off("landing-auto", &codex, "", Vec::new());
    let validated = head(&world, BRANCH);
    let mut daemon = Daemon::start(&world);
    // Not ready yet: no approval, no check. The daemon waits and says for what.
    daemon.wait_for("a read of the PR", LIFECYCLE, || {
        review_record(&world, "ABC-1")
            .filter(|record| record.waiting_for.contains("0/1 approvals"))
            .map(|_| ())
    });
    let status = crate::support::run_world::bounded(world.command(&["status"]), LIFECYCLE);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("ABC-1 review_wait: 0/1 approvals, no checks on the head yet"),
        "{text}"
    );
    let dry = crate::support::run_world::bounded(
        world.command(&["run", "--once", "--dry-run"]),
        LIFECYCLE,
    );
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        text.contains("post-review lanes (the daemon drives them):\n  ABC-1 review_wait: 0/1 approvals, no checks on the head yet, next read in"),
        "{text}"
    );
    approve(&world, 1, &validated);
    daemon.wait_for("the lane to be done", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "done").then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());

    let merges: Vec<_> = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path() == "/repos/acme/widgets/pulls/1/merge")
        .collect();
    assert_eq!(merges.len(), 1, "one merge request");
    assert_eq!(
        merges[0].json()["sha"],
        json!(validated),
        "pinned to the validated head"
    );
    assert_eq!(merges[0].json()["merge_method"], "squash");
    assert!(world.github.pull(REPO, 1).merged);
    assert_eq!(world.linear.issue("ABC-1").state, "Done");
    let closeouts = comments_titled(&world, "ABC-1", CLOSEOUT);
    assert_eq!(closeouts.len(), 1, "{closeouts:?}");
    assert!(
        closeouts[0].contains("- merged_by: maestro"),
        "{}",
        closeouts[0]
    );
    assert!(closeouts[0].contains(&format!("- pr_url: {}", pr_url(1))));
    assert!(
        !world.github.has_branch(REPO, BRANCH),
        "the branch is deleted"
    );
    assert!(!world.lane("ABC-1").exists(), "the lane is removed");
    let record = review_record(&world, "ABC-1").unwrap();
    assert_eq!(record.cleanup.branch.as_deref(), Some("deleted"));
    assert!(record.merge.as_ref().is_some_and(|merge| merge.by_maestro));
    let path: Vec<String> = record.history.iter().map(|t| t.to.to_string()).collect();
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
    world.assert_comments_clean();
}

#[test]
fn a_person_merges_and_maestro_closes_out() {
    let codex = codex_or_skip!();
    let world = handed_off("landing-manual", &codex, "merge = \"manual\"", Vec::new());
    let validated = head(&world, BRANCH);
    approve(&world, 1, &validated);
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("the lane to wait for a person to merge", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "landing").then_some(())
    });
    world.github.update(REPO, 1, |pull| {
        pull.merged = true;
        pull.state = "closed".into();
        pull.merge_commit_sha = Some("c".repeat(40));
        pull.merged_by = Some("dana".into());
    });
    daemon.wait_for("the lane to be done", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "done").then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert_eq!(
        world
            .github
            .requests_on("PUT", "/repos/acme/widgets/pulls/1/merge"),
        0,
        "maestro never merges in manual mode"
    );
    assert_eq!(world.linear.issue("ABC-1").state, "Done");
    let closeouts = comments_titled(&world, "ABC-1", CLOSEOUT);
    assert_eq!(closeouts.len(), 1, "{closeouts:?}");
    assert!(
        closeouts[0].contains("- merged_by: dana"),
        "{}",
        closeouts[0]
    );
    assert!(closeouts[0].contains("- method: unknown (merged outside maestro)"));
    assert!(!world.github.has_branch(REPO, BRANCH));
    assert!(!world.lane("ABC-1").exists());
}

#[test]
fn a_change_request_is_repaired_in_the_lane_then_approved_and_landed() {
    let codex = codex_or_skip!();
    // The repair's agent works for two seconds first, so the repair spans several daemon ticks:
    // reconciliation must leave it alone although its issue is not in an active state.
    let mut steps = vec![Step::exec_command("call_think", "sleep 2")];
    steps.extend(repair_steps("gadget.txt"));
    let world = handed_off("landing-repair", &codex, "", steps);
    let first = head(&world, BRANCH);
    world.github.update(REPO, 1, |pull| {
        pull.review(
            "alice",
            "CHANGES_REQUESTED",
            "Please rename widget to gadget.",
        );
        pull.threads.push(crate::support::fake_github::Thread::open(
            "T1",
            "src/lib.rs",
            3,
            "carol",
            "Use a constant here.",
        ));
    });
    world
        .github
        .check_run(&first, "ci", "completed", Some("failure"));
    let mut daemon = Daemon::start(&world);
    let repaired = daemon.wait_for("the repair to push and validate", LIFECYCLE, || {
        review_record(&world, "ABC-1").filter(|record| {
            record.phase == Phase::ReviewWait
                && record.repairs.len() == 1
                && record.repairs[0].result.is_some()
        })
    });
    let new_head = head(&world, BRANCH);
    assert_ne!(new_head, first, "the repair pushed a new commit");
    assert_eq!(repaired.validated_head, new_head);
    assert_eq!(
        repaired.repairs[0].feedback_keys,
        [
            "review:1000".to_string(),
            "thread:T1:1".to_string(),
            format!("check:{first}:ci")
        ]
    );
    // The feedback itself was the repair's first input, quoted; the repair had its own tools.
    let repair_call = world
        .model_calls()
        .into_iter()
        .find(|call| call.body.contains("Repair 1 of 3 for ABC-1"))
        .expect("the repair's turn reached the model");
    for expected in [
        "Please rename widget to gadget.",
        "src/lib.rs:3",
        "Use a constant here.",
        "Failing check `ci` (failure)",
    ] {
        assert!(repair_call.body.contains(expected), "{expected} missing");
    }
    let tools = repair_call.tool_names();
    assert!(
        tools.contains(&"issue_review_repair_complete".to_string()),
        "{tools:?}"
    );
    assert!(
        !tools.contains(&"issue_review_handoff".to_string()),
        "{tools:?}"
    );
    let repair_run = world
        .runs()
        .into_iter()
        .find(|run| run.review_repair == Some(1))
        .expect("the repair's run record");
    assert_eq!(repair_run.head_sha.as_deref(), Some(new_head.as_str()));
    assert!(!repair_run.validation.is_empty(), "validation ran again");
    assert_eq!(
        world.linear.issue("ABC-1").state,
        "In Review",
        "the issue stays in review"
    );
    assert!(
        !daemon.log().contains("action=interrupted"),
        "the repair was never stopped: {}",
        daemon.log()
    );
    assert_eq!(
        comments_titled(&world, "ABC-1", "**Maestro: review feedback addressed**").len(),
        1
    );
    // The same change request now waits for a re-review; the reviewer approves the new head.
    world.github.update(REPO, 1, |pull| {
        pull.review("alice", "APPROVED", "Thanks.");
        pull.threads[0].resolved = true;
    });
    world
        .github
        .check_run(&new_head, "ci", "completed", Some("success"));
    daemon.wait_for("the lane to be done", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "done").then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let merges: Vec<_> = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path().ends_with("/pulls/1/merge"))
        .collect();
    assert_eq!(merges.len(), 1);
    assert_eq!(
        merges[0].json()["sha"],
        json!(new_head),
        "the repaired head is merged"
    );
    let closeout = &comments_titled(&world, "ABC-1", CLOSEOUT)[0];
    assert!(
        closeout.contains(&format!("- repair_run_ids: {}", repair_run.run_id)),
        "{closeout}"
    );
    assert!(!world.lane("ABC-1").exists());
}

#[test]
fn repairs_exhausted_go_to_a_person_with_the_open_feedback_listed() {
    let codex = codex_or_skip!();
    // The repair records the PR at the head maestro already validated: nothing new is pushed,
    // which is a failed repair, and with max_repairs = 1 none is left.
    let pushes_nothing = vec![
        Step::tool_call(
            "call_repaired",
            "issue_review_repair_complete",
            json!({"pr_url": pr_url(1), "summary": "Nothing to change."}),
        ),
        Step::tool_call(
            "call_repair_finalize",
            "issue_terminal_finalize",
            json!({"path": "review_repair"}),
        ),
        Step::message("Done."),
    ];
    let world = handed_off(
        "landing-exhausted",
        &codex,
        "max_repairs = 1",
        pushes_nothing,
    );
    world.github.update(REPO, 1, |pull| {
        pull.review(
            "alice",
            "CHANGES_REQUESTED",
            "Please add a test for the edge case.",
        );
    });
    let mut daemon = Daemon::start(&world);
    let record = daemon.wait_for("the human path", LIFECYCLE, || {
        review_record(&world, "ABC-1")
            .filter(|record| record.phase == Phase::Human && record.notice.is_done())
    });
    assert_eq!(record.repairs.len(), 1);
    assert!(
        matches!(&record.repairs[0].result, Some(maestro::review::RepairResult::Failed { reason }) if reason.contains("repair_pushed_nothing")),
        "{:?}",
        record.repairs
    );
    assert!(
        record.reason.contains("after 1 of 1 repairs"),
        "{}",
        record.reason
    );
    // A few more ticks: the comment is posted once.
    let ticks = daemon.log().matches("tick finished").count();
    daemon.wait_for("three more ticks", LIFECYCLE, || {
        (daemon.log().matches("tick finished").count() >= ticks + 3).then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let human = comments_titled(&world, "ABC-1", HUMAN);
    assert_eq!(human.len(), 1, "{human:?}");
    assert!(
        human[0].contains("> Please add a test for the edge case."),
        "the open feedback is listed, quoted: {}",
        human[0]
    );
    assert_left_to_a_person(&world);
}

/// A repair whose agent cannot address the feedback takes the manual-attention path (its
/// comment, the needs-attention label, `manual_attention`): the lane goes to a person at once,
/// with repairs left, no other repair started, and nothing merged.
#[test]
fn a_repair_that_asks_for_a_person_sends_the_lane_to_a_person() {
    let codex = codex_or_skip!();
    let asks = vec![
        Step::tool_call(
            "call_explain",
            "issue_comment",
            json!({"body": "The requested rename breaks the public API; a person should decide."}),
        ),
        Step::tool_call(
            "call_flag",
            "issue_label_add",
            json!({"label": "maestro:needs-attention"}),
        ),
        Step::tool_call(
            "call_repair_finalize",
            "issue_terminal_finalize",
            json!({"path": "manual_attention"}),
        ),
        Step::message("A person needs to decide."),
    ];
    let world = handed_off("landing-repair-asks", &codex, "", asks);
    world.github.update(REPO, 1, |pull| {
        pull.review("alice", "CHANGES_REQUESTED", "Rename the public API.");
    });
    let mut daemon = Daemon::start(&world);
    let record = daemon.wait_for("the human path", LIFECYCLE, || {
        review_record(&world, "ABC-1").filter(|record| record.phase == Phase::Human)
    });
    assert_eq!(
        record.repairs.len(),
        1,
        "no second repair: {:?}",
        record.repairs
    );
    assert!(
        record.reason.contains("asked for a human"),
        "{}",
        record.reason
    );
    assert!(
        matches!(
            &record.repairs[0].result,
            Some(maestro::review::RepairResult::Failed { reason }) if reason.contains("asked for a human")
        ),
        "the repair's result says why it pushed nothing: {:?}",
        record.repairs
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert!(
        world
            .comments("ABC-1")
            .iter()
            .any(|c| c.contains("breaks the public API")),
        "the agent's explanation is on the issue"
    );
    assert_left_to_a_person(&world);
}

/// A repair whose agent stalls (a command that neither ends nor prints) is stopped by the
/// daemon's stall detection like any child; the stall is a failed repair, and with
/// `max_repairs = 1` the lane goes to a person. Nothing is merged.
#[test]
fn a_stalled_repair_is_stopped_and_counts_as_a_failed_repair() {
    let codex = codex_or_skip!();
    let stalls = vec![
        Step::exec_command("call_hang", "sleep 120"),
        Step::message("never reached"),
    ];
    let world = handed_off("landing-repair-stall", &codex, "max_repairs = 1", stalls);
    let config = std::fs::read_to_string(&world.config).unwrap();
    let config = config.replacen("[agent]\n", "[agent]\nstall_timeout_ms = 3000\n", 1);
    std::fs::write(&world.config, config).unwrap();
    world.github.update(REPO, 1, |pull| {
        pull.review("alice", "CHANGES_REQUESTED", "Handle the empty case.");
    });
    let mut daemon = Daemon::start(&world);
    let record = daemon.wait_for("the human path", LIFECYCLE, || {
        review_record(&world, "ABC-1").filter(|record| record.phase == Phase::Human)
    });
    assert_eq!(record.repairs.len(), 1, "{:?}", record.repairs);
    assert!(
        matches!(
            &record.repairs[0].result,
            Some(maestro::review::RepairResult::Failed { reason }) if reason.contains("no progress for")
        ),
        "{:?}",
        record.repairs
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    assert_left_to_a_person(&world);
}

#[test]
fn lanes_off_the_happy_path_go_to_a_person_are_cancelled_or_let_go() {
    let codex = codex_or_skip!();
    let world = several_handed_off("landing-off-path", &codex, "", 4);
    // ABC-1: the PR is closed without a merge. ABC-2: cancelled in Linear while waiting.
    // ABC-3: a person pushes to the lane branch. ABC-4: moved back to the backlog.
    world
        .github
        .update(REPO, 1, |pull| pull.state = "closed".into());
    crate::support::landing::push_behind_maestros_back(&world, "x/demo-abc-3");
    world.linear.edit(|w| {
        for issue in &mut w.issues {
            match issue.identifier.as_str() {
                "ABC-2" => issue.state = "Canceled".into(),
                "ABC-4" => issue.state = "Backlog".into(),
                _ => {}
            }
        }
    });
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("every lane to settle", LIFECYCLE, || {
        let settled = review_record(&world, "ABC-1")
            .is_some_and(|r| r.phase == Phase::Human && r.notice.is_done())
            && review_record(&world, "ABC-2")
                .is_some_and(|r| r.phase == Phase::Cancelled && r.cleanup.lane_removed)
            && review_record(&world, "ABC-3")
                .is_some_and(|r| r.phase == Phase::Human && r.notice.is_done())
            && phase(&world, "ABC-4") == "released";
        settled.then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let reason = |identifier: &str| review_record(&world, identifier).unwrap().reason;
    assert!(
        reason("ABC-1").contains("closed without a merge"),
        "{}",
        reason("ABC-1")
    );
    assert!(
        reason("ABC-3").contains("someone pushed to the lane branch"),
        "{}",
        reason("ABC-3")
    );
    for identifier in ["ABC-1", "ABC-3"] {
        assert_eq!(
            comments_titled(&world, identifier, HUMAN).len(),
            1,
            "{identifier}"
        );
        assert!(
            world.lane(identifier).is_dir(),
            "{identifier}'s lane is kept"
        );
    }
    // Cancelled: the lane is gone, the PR and its branch are left as they are.
    assert!(!world.lane("ABC-2").exists());
    assert_eq!(world.github.pull(REPO, 2).state, "open");
    assert!(world.github.has_branch(REPO, "x/demo-abc-2"));
    assert!(comments_titled(&world, "ABC-2", HUMAN).is_empty());
    // Released: the lane is kept for ordinary eligibility, nothing written.
    assert!(world.lane("ABC-4").is_dir());
    assert_eq!(world.linear.issue("ABC-4").state, "Backlog");
    assert_eq!(
        world
            .github
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count(),
        0,
        "nothing was merged"
    );
}

/// What the operator sees of post-review lanes: `status` (text and JSON), `/state`, `/metrics`
/// and the dashboard, from review records alone.
#[test]
fn the_operator_sees_each_post_review_lanes_phase_and_what_it_waits_for() {
    use maestro::operator_http::{self, Health};
    use maestro::review::{Handoff, RepairResult, ReviewRecord, record::Repair};
    use maestro::workspace::Layout;

    use crate::support::dir::TestDir;
    use crate::support::state::{NOW_MS, config_for};

    let dir = TestDir::new("landing-operator");
    let config = config_for(&dir);
    let layout = Layout::new(&config.workspace_root);
    let repo = maestro::github::parse_remote("git@github.com:acme/widgets.git").unwrap();
    let record = |identifier: &str, number: u64| {
        ReviewRecord::from_handoff(
            &Handoff {
                issue_id: &format!("id-{identifier}"),
                identifier,
                key: &format!("id-{identifier}"),
                pr_url: &format!("https://github.com/acme/widgets/pull/{number}"),
                repo: &repo,
                number,
                branch: &format!("x/demo-{}", identifier.to_lowercase()),
                validated_head: &"1".repeat(40),
                run_id: "run-handoff",
            },
            &maestro::clock::format_ms(NOW_MS - 60_000),
        )
    };
    let mut waiting = record("ENG-10", 10);
    waiting.waiting_for = "0/1 approvals, checks 2/3 green".into();
    waiting.next_read_at = Some(maestro::clock::format_ms(NOW_MS + 41_000));
    waiting.save(&layout).unwrap();
    let mut human = record("ENG-11", 11);
    human.phase = Phase::Human;
    human.reason = "the PR was closed without a merge".into();
    human.repairs.push(Repair {
        attempt: 1,
        feedback_keys: vec!["review:1".into()],
        started_at: String::new(),
        run_id: Some("run-repair".into()),
        result: Some(RepairResult::Failed {
            reason: "repair_pushed_nothing".into(),
        }),
    });
    human.save(&layout).unwrap();
    let mut done = record("ENG-12", 12);
    done.phase = Phase::Done;
    done.merge = Some(maestro::review::record::MergeFacts {
        sha: "3".repeat(40),
        method: None,
        merged_by: Some("dana".into()),
        by_maestro: false,
    });
    done.save(&layout).unwrap();

    let snapshot = maestro::status::build_at(&config, 10, NOW_MS);
    let text = maestro::status::render_text(&snapshot);
    assert!(text.contains("REVIEW (2)"), "{text}");
    assert!(
        text.contains("  ENG-10 review_wait: 0/1 approvals, checks 2/3 green, next read in 41 s"),
        "{text}"
    );
    assert!(
        text.contains("!!ENG-11 human: the PR was closed without a merge"),
        "{text}"
    );
    assert!(
        !text.contains("ENG-12 done"),
        "finished lanes are counted, not listed"
    );
    let json: serde_json::Value =
        serde_json::from_str(&maestro::status::to_json(&snapshot)).unwrap();
    assert_eq!(json["review"][0]["phase"], "review_wait");
    assert_eq!(json["review"][0]["next_read_in_seconds"], 41);
    assert_eq!(json["review"][1]["phase"], "human");
    assert_eq!(json["review_totals"]["lanes_by_phase"]["done"], 1);

    let health = Health::default();
    let state = operator_http::route("GET", "/state", &config, &health);
    let state: serde_json::Value = serde_json::from_slice(&state.body).unwrap();
    assert_eq!(state["review"][0]["issue_identifier"], "ENG-10");
    let metrics = operator_http::route("GET", "/metrics", &config, &health);
    let metrics = String::from_utf8(metrics.body).unwrap();
    for line in [
        "maestro_review_lanes{phase=\"review_wait\"} 1",
        "maestro_review_lanes{phase=\"human\"} 1",
        "maestro_review_lanes{phase=\"done\"} 1",
        "maestro_review_lanes{phase=\"landing\"} 0",
        "maestro_review_merges{by=\"person\"} 1",
        "maestro_review_merges{by=\"maestro\"} 0",
        "maestro_review_repairs{result=\"failed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let page = operator_http::route("GET", "/", &config, &health);
    let page = String::from_utf8(page.body).unwrap();
    assert!(page.contains("<h2>Post-review lanes (2)</h2>"), "{page}");
    assert!(page.contains("<td>review_wait</td><td>0/1 approvals, checks 2/3 green</td>"));
    assert!(page.contains(
        "<tr class=\"stalled\"><td><a href=\"/api/v1/ENG-11\">ENG-11</a></td><td>human</td>"
    ));
}
