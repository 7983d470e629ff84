//! The post-review lifecycle under faults (#14, docs/spec/faults.md "Review lifecycle"): the
//! daemon killed with `kill -9` mid-merge, mid-closeout, mid-repair and at pseudo-random points,
//! and faults injected on each GitHub and Linear route it uses. Every lane converges: one
//! merge, one closeout comment, one repair child per repair, no orphaned lane.

use maestro::review::Phase;

use crate::codex_or_skip;
use crate::support::landing::{
    BRANCH, CLOSEOUT, Daemon, HUMAN, LIFECYCLE, approve, comments_titled, handed_off, head, phase,
    repair_steps, review_record, several_handed_off,
};
use crate::support::run_world::REPO;

/// `kill -9` of the daemon inside the lifecycle's two dangerous windows (a merge request sent
/// and its answer lost; a closeout comment posted and its answer lost), then at pseudo-random
/// points, over three lanes: every lane converges to exactly one merge, one closeout comment,
/// its issue Done, its branch deleted and its lane removed.
#[test]
fn kill_9_at_any_point_converges_to_one_merge_one_closeout_and_no_orphaned_lane() {
    use crate::support::fake_github::Route;
    use crate::support::fake_linear::Fault;
    use std::time::Duration;

    let codex = codex_or_skip!();
    let world = several_handed_off("landing-kill-9", &codex, "", 3);
    for n in 1..=3 {
        let sha = head(&world, &format!("x/demo-abc-{n}"));
        approve(&world, n, &sha);
    }
    let identifiers = ["ABC-1", "ABC-2", "ABC-3"];
    let records = || {
        identifiers
            .iter()
            .filter_map(|identifier| review_record(&world, identifier))
            .collect::<Vec<_>>()
    };
    // 1. The merge request is answered slowly: the daemon dies after recording it and sending
    //    it, before GitHub's answer (GitHub merges all the same). The answer is held for 5 s,
    //    a window wide enough to see on a loaded machine.
    world.github.slow(Route::Merge, Duration::from_secs(5), 1);
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("a merge request in flight", LIFECYCLE, || {
        (world.github.requests().iter().any(|r| r.method == "PUT")
            && records()
                .iter()
                .any(|r| r.phase == Phase::Landing && r.merge.is_none()))
        .then_some(())
    });
    daemon.kill();
    // 2. The first closeout comment is answered slowly: the daemon dies after posting it.
    world
        .linear
        .inject("CommentCreate", Fault::Slow(Duration::from_secs(5)));
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("a closeout comment in flight", LIFECYCLE, || {
        records()
            .iter()
            .any(|r| r.closeout.comment_attempted && !r.closeout.comment_posted)
            .then_some(())
    });
    daemon.kill();
    // 3. Pseudo-random kill points (a fixed linear congruential sequence, so a failure
    //    reproduces) while the rest of the lifecycle runs.
    let mut seed: u64 = 0x1a2d_1e55;
    for _ in 0..6 {
        let mut daemon = Daemon::start(&world);
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let pause = 50 + (seed >> 33) % 700;
        crate::support::pause(Duration::from_millis(pause)); // the kill point itself is the test input
        daemon.kill();
        let (_, problems) = maestro::review::ReviewRecord::list(&world.layout());
        assert!(problems.is_empty(), "every record parses: {problems:?}");
    }
    let mut daemon = Daemon::start(&world);
    daemon.wait_ticked(9);
    daemon.wait_for("every lane to be done", LIFECYCLE, || {
        identifiers
            .iter()
            .all(|identifier| phase(&world, identifier) == "done")
            .then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    for (n, identifier) in identifiers.iter().enumerate() {
        let number = n as u64 + 1;
        let branch = format!("x/demo-abc-{number}");
        let pull = world.github.pull(REPO, number);
        assert!(pull.merged, "{identifier} merged");
        let merges = world
            .github
            .requests_on("PUT", &format!("/repos/acme/widgets/pulls/{number}/merge"));
        assert!(
            (1..=2).contains(&merges),
            "{identifier}: {merges} merge requests (one, or one more after a lost answer)"
        );
        assert_eq!(
            comments_titled(&world, identifier, CLOSEOUT).len(),
            1,
            "{identifier}: exactly one closeout comment"
        );
        assert_eq!(world.linear.issue(identifier).state, "Done");
        assert!(
            !world.github.has_branch(REPO, &branch),
            "{identifier}'s branch"
        );
        assert!(!world.lane(identifier).exists(), "{identifier}'s lane");
        let record = review_record(&world, identifier).unwrap();
        assert!(
            record.merge.as_ref().is_some_and(|merge| merge.by_maestro),
            "{identifier}: a merge whose answer was lost is still maestro's"
        );
    }
    let log = daemon.log();
    assert!(
        log.contains("comment found on the issue, not posted again"),
        "the interrupted closeout was found by its marker: {log}"
    );
}

/// `kill -9` of the daemon right after it started a repair: the repair child runs on, and the
/// next daemon adopts it (or finds its record), records its result once and lands the PR; the
/// repair is never started twice.
#[test]
fn kill_9_during_a_repair_finishes_that_repair_once() {
    let codex = codex_or_skip!();
    let world = handed_off(
        "landing-kill-repair",
        &codex,
        "",
        repair_steps("gadget.txt"),
    );
    world.github.update(REPO, 1, |pull| {
        pull.review(
            "alice",
            "CHANGES_REQUESTED",
            "Please rename widget to gadget.",
        );
    });
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("the repair child to start", LIFECYCLE, || {
        review_record(&world, "ABC-1")
            .filter(|record| record.repairs.first().is_some_and(|r| r.run_id.is_some()))
            .map(|_| ())
    });
    daemon.kill();
    let mut daemon = Daemon::start(&world);
    let repaired = daemon.wait_for("the repair's result", LIFECYCLE, || {
        review_record(&world, "ABC-1").filter(|record| {
            record.phase == Phase::ReviewWait
                && record.repairs.len() == 1
                && record.repairs[0].result.is_some()
        })
    });
    let new_head = head(&world, BRANCH);
    assert_eq!(repaired.validated_head, new_head, "{repaired:#?}");
    world
        .github
        .update(REPO, 1, |pull| pull.review("alice", "APPROVED", "Thanks."));
    world
        .github
        .check_run(&new_head, "ci", "completed", Some("success"));
    daemon.wait_for("the lane to be done", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "done").then_some(())
    });
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
    let repair_runs: Vec<_> = world
        .runs()
        .into_iter()
        .filter(|run| run.review_repair.is_some())
        .collect();
    assert_eq!(repair_runs.len(), 1, "one repair run: {repair_runs:#?}");
    assert_eq!(comments_titled(&world, "ABC-1", CLOSEOUT).len(), 1);
    assert!(!world.lane("ABC-1").exists());
}

/// Faults on each route the lifecycle uses, lane by lane: transient GitHub and Linear failures
/// are waited out (one closeout comment all the same), a 405 on the merge goes back to
/// waiting and merges at the next read, and a head that moved between "ready" and the merge
/// (409) is never merged: the lane goes to a person.
#[test]
fn faults_on_each_route_are_waited_out_or_sent_to_a_person() {
    use crate::support::fake_github::Route;
    use crate::support::fake_linear::Fault;

    let codex = codex_or_skip!();
    let world = several_handed_off("landing-faults", &codex, "", 3);
    for (route, status, times) in [
        (Route::Pull, 500, 2),
        (Route::Reviews, 502, 1),
        (Route::Threads, 500, 1),
        (Route::CheckRuns, 503, 1),
        (Route::Status, 500, 1),
        (Route::Merge, 503, 1),
        (Route::DeleteRef, 500, 1),
    ] {
        world.github.fail(route, status, times);
    }
    // Four 500s exhaust the Linear client's bounded retries of one closeout comment.
    for _ in 0..4 {
        world.linear.inject("CommentCreate", Fault::Status(500));
    }
    approve(&world, 1, &head(&world, "x/demo-abc-1"));
    let mut daemon = Daemon::start(&world);
    daemon.wait_for("ABC-1 to be done through the faults", LIFECYCLE, || {
        (phase(&world, "ABC-1") == "done").then_some(())
    });
    assert_eq!(
        world
            .github
            .requests_on("PUT", "/repos/acme/widgets/pulls/1/merge"),
        2,
        "a 503 on the merge is asked again at the next read"
    );
    assert_eq!(comments_titled(&world, "ABC-1", CLOSEOUT).len(), 1);
    assert!(!world.github.has_branch(REPO, "x/demo-abc-1"));
    assert!(!world.lane("ABC-1").exists());

    world.github.fail(Route::Merge, 405, 1);
    approve(&world, 2, &head(&world, "x/demo-abc-2"));
    daemon.wait_for("ABC-2 to be done after a 405", LIFECYCLE, || {
        (phase(&world, "ABC-2") == "done").then_some(())
    });
    let history: Vec<String> = review_record(&world, "ABC-2")
        .unwrap()
        .history
        .iter()
        .map(|t| format!("{} {}", t.to, t.reason))
        .collect();
    assert!(
        history
            .iter()
            .any(|t| t.starts_with("review_wait merge refused")),
        "{history:#?}"
    );
    assert_eq!(
        world
            .github
            .requests_on("PUT", "/repos/acme/widgets/pulls/2/merge"),
        2
    );

    world.github.move_head_on_merge(&"9".repeat(40));
    approve(&world, 3, &head(&world, "x/demo-abc-3"));
    let record = daemon.wait_for("ABC-3 to go to a person", LIFECYCLE, || {
        review_record(&world, "ABC-3").filter(|r| r.phase == Phase::Human && r.notice.is_done())
    });
    assert!(
        record.reason.contains("someone pushed to the lane branch"),
        "{}",
        record.reason
    );
    assert!(
        !world.github.pull(REPO, 3).merged,
        "a moved head is never merged"
    );
    assert_eq!(
        world
            .github
            .requests_on("PUT", "/repos/acme/widgets/pulls/3/merge"),
        1
    );
    assert_eq!(comments_titled(&world, "ABC-3", HUMAN).len(), 1);
    assert!(world.lane("ABC-3").is_dir());
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}
