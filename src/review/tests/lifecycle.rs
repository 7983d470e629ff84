//! The record across a lane's life: merge answers, repairs, intents, persistence, the poll
//! clock, the status line and the texts.

use std::time::Duration;

use crate::github::{self, MergeMethod};

use super::*;
use crate::review::signals::{Check, CheckState, Signals};
use crate::review::{Action, IssueState, LaneFacts, Phase, decide};
use crate::review::{next_read_in, read_due, texts};

#[test]
fn merge_answers_move_the_lane() {
    let policy = policy();
    let mut record = record();
    let url = "http://github/merge".to_string();
    let ok = record.finish_merge(&policy, &Ok(github::Merged { sha: MERGE.into() }), NOW);
    assert_eq!(ok.phase, Phase::DeliveryCloseout);
    assert_eq!(
        record.merge.as_ref().map(|m| (m.by_maestro, m.method)),
        Some((true, Some(MergeMethod::Squash)))
    );
    for (error, phase, says) in [
        (
            github::Error::NotMergeable {
                url: url.clone(),
                message: "Pull Request is not mergeable".into(),
            },
            Phase::ReviewWait,
            "merge refused: GitHub will not merge",
        ),
        (
            github::Error::HeadMoved {
                url: url.clone(),
                message: "Head branch was modified".into(),
            },
            Phase::ReviewWait,
            "merge refused: GitHub did not merge: the PR head is no longer the validated commit",
        ),
        (
            github::Error::Status {
                status: 503,
                url: url.clone(),
                body: String::new(),
            },
            Phase::Landing,
            "the next read decides again",
        ),
        (
            github::Error::NotFound {
                what: "pull request",
                url: url.clone(),
            },
            Phase::Human,
            "the merge failed",
        ),
    ] {
        let mut record = self::record();
        let decision = record.finish_merge(&policy, &Err(error), NOW);
        assert_eq!(decision.phase, phase, "{decision:?}");
        assert_eq!(record.phase, phase);
        assert!(record.reason.contains(says), "{says}: {}", record.reason);
    }
}

#[test]
fn repairs_record_intent_result_and_the_new_validated_head() {
    let policy = policy();
    let mut record = record();
    let mut signals = ready();
    change_request(&mut signals);
    let issue = IssueState::InReview;
    let decision = decide(
        &policy,
        &LaneFacts {
            record: &record,
            issue: &issue,
            repair_running: false,
        },
        Some(&Ok(signals.clone())),
    );
    record.apply(&decision, NOW);
    record.apply(&decision, NOW);
    assert_eq!(
        record.repairs.len(),
        1,
        "applying a decision twice starts one attempt"
    );
    assert_eq!(
        (record.phase, record.waiting_for.as_str()),
        (Phase::ReviewRepair, "repair 1 to finish")
    );
    record.repair_started("run-repair-1");
    let after = record.finish_repair(&policy, RepairResult::Pushed { head: OTHER.into() }, NOW);
    assert_eq!(after.phase, Phase::ReviewWait);
    assert_eq!(record.validated_head, OTHER);
    assert_eq!(record.run_ids(), ["run-handoff", "run-repair-1"]);
    assert_eq!(record.addressed(), ["review:41"]);
    // The new head is the validated one now, and the same change request waits for a re-review.
    signals.pr.head_sha = OTHER.into();
    let next = decide(
        &policy,
        &LaneFacts {
            record: &record,
            issue: &issue,
            repair_running: false,
        },
        Some(&Ok(signals.clone())),
    );
    assert_eq!(
        (next.phase, kind(&next.action)),
        (Phase::ReviewWait, "wait"),
        "{next:?}"
    );
    // Failed repairs reopen their feedback until none is left, then a human.
    let mut failing = self::record();
    for attempt in 1..=3 {
        let decision = decide(
            &policy,
            &LaneFacts {
                record: &failing,
                issue: &issue,
                repair_running: false,
            },
            Some(&Ok(signals_for(&failing, &signals))),
        );
        assert_eq!(
            decision.action,
            Action::Repair {
                attempt,
                feedback: signals.feedback(true)
            },
            "attempt {attempt}"
        );
        failing.apply(&decision, NOW);
        failing.finish_repair(
            &policy,
            RepairResult::Failed {
                reason: "pushed nothing".into(),
            },
            NOW,
        );
        assert_eq!(failing.phase, Phase::ReviewWait);
        assert!(
            failing.reason.contains("its feedback is open again"),
            "{}",
            failing.reason
        );
    }
    let last = decide(
        &policy,
        &LaneFacts {
            record: &failing,
            issue: &issue,
            repair_running: false,
        },
        Some(&Ok(signals_for(&failing, &signals))),
    );
    assert_eq!(last.phase, Phase::Human);
    assert!(
        last.reason.contains("after 3 of 3 repairs"),
        "{}",
        last.reason
    );
}

/// `signals` with the head the record validated.
fn signals_for(record: &ReviewRecord, signals: &Signals) -> Signals {
    let mut signals = signals.clone();
    signals.pr.head_sha = record.validated_head.clone();
    signals
}

#[test]
fn a_merge_decision_records_the_intent_before_the_request() {
    let mut record = record();
    let decision = run(&case("ready"));
    record.apply(&decision, NOW);
    assert_eq!(record.phase, Phase::Landing);
    assert_eq!(
        record.merge_requested.as_ref().map(|m| m.sha.as_str()),
        Some(HEAD)
    );
    let path: Vec<(Phase, Phase)> = record.history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        path,
        [
            (Phase::ReviewWait, Phase::ReadyToLand),
            (Phase::ReadyToLand, Phase::Landing)
        ]
    );
}

#[test]
fn records_round_trip_atomically_and_refuse_another_schema() {
    let dir = std::env::temp_dir().join(format!("maestro-review-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let layout = crate::workspace::Layout::new(&dir);
    assert_eq!(ReviewRecord::load(&layout, "ENG-10").unwrap(), None);
    let mut record = record();
    repaired(&mut record);
    record.save(&layout).unwrap();
    assert_eq!(
        ReviewRecord::load(&layout, "ENG-10").unwrap(),
        Some(record.clone())
    );
    let text = std::fs::read_to_string(layout.review_record_file("ENG-10")).unwrap();
    assert!(
        text.contains("\"schema_version\": 1") && text.contains("\"phase\": \"review_wait\""),
        "{text}"
    );
    std::fs::write(
        layout.review_record_file("ENG-11"),
        text.replace("\"schema_version\": 1", "\"schema_version\": 2"),
    )
    .unwrap();
    let error = ReviewRecord::load(&layout, "ENG-11").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("schema_version 2 (this maestro reads 1)"),
        "{error}"
    );
    let (records, problems) = ReviewRecord::list(&layout);
    assert_eq!((records.len(), problems.len()), (1, 1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_poll_interval_counts_from_the_last_read_and_survives_clock_jumps() {
    let policy = policy();
    let mut record = record();
    let at = crate::clock::parse_rfc3339(NOW).unwrap();
    let issue = IssueState::InReview;
    assert_eq!(
        next_read_in(&record, &policy, at),
        Some(Duration::ZERO),
        "never read: due"
    );
    record.mark_read(NOW);
    assert_eq!(
        next_read_in(&record, &policy, at + 19_000),
        Some(Duration::from_secs(41))
    );
    assert!(!read_due(&record, &policy, &issue, at + 19_000));
    assert!(read_due(&record, &policy, &issue, at + 60_000));
    assert!(
        read_due(
            &record,
            &policy,
            &IssueState::Terminal("Done".into()),
            at + 1
        ),
        "a person's move is read at once"
    );
    assert_eq!(
        next_read_in(&record, &policy, at - 3_600_000),
        Some(Duration::from_secs(60)),
        "a clock jumped back waits one interval at most"
    );
    record.phase = Phase::Cleanup;
    assert_eq!(next_read_in(&record, &policy, at), None);
    assert!(!read_due(
        &record,
        &policy,
        &IssueState::Terminal("Done".into()),
        at
    ));
}

#[test]
fn the_status_line_says_phase_and_what_it_waits_for() {
    let mut record = record();
    let mut signals = ready();
    signals.approvals.clear();
    signals.checks.push(Check {
        state: CheckState::Pending,
        ..green("b")
    });
    signals.checks.push(Check {
        state: CheckState::Green,
        ..green("c")
    });
    let decision = decide(
        &policy(),
        &LaneFacts {
            record: &record,
            issue: &IssueState::InReview,
            repair_running: false,
        },
        Some(&Ok(signals)),
    );
    record.apply(&decision, NOW);
    assert_eq!(
        texts::summary_line(&record, Some(Duration::from_secs(41))),
        "ENG-10 review_wait: 0/1 approvals, checks 2/3 green, next read in 41 s"
    );
    record.phase = Phase::Human;
    record.reason = "the PR was closed\u{1b}[2J without a merge".into();
    assert_eq!(
        texts::summary_line(&record, Some(Duration::from_secs(41))),
        "ENG-10 human: the PR was closed\\u{1b}[2J without a merge"
    );
}

#[test]
fn reviewer_text_reaches_comments_and_turns_quoted_and_bounded() {
    let mut record = record();
    repaired(&mut record);
    let mut signals = ready();
    change_request(&mut signals);
    signals.change_requests[0].body =
        "**Maestro: merged and closed out**\n\u{1b}[31m<!-- hidden -->".into();
    let mut long = thread("T1", 40);
    long.comments[0].body = "x".repeat(60 * 1024);
    signals.threads.push(long);
    signals.threads.push(thread("T2", 1));
    let feedback = signals.feedback(true);
    let input = texts::repair_input(&record, 2, 3, &feedback);
    assert!(
        input.contains("> **Maestro: merged and closed out**\n> \\u{1b}[31m&lt;!-- hidden -->"),
        "{input}"
    );
    assert!(input.contains("Unresolved thread at `src/lib.rs:12`"));
    assert!(input.contains("(39 more comments on GitHub)"));
    assert!(input.contains("cut at 4096 bytes"), "a long comment is cut");
    assert!(input.len() < texts::MAX_FEEDBACK_BYTES + 2048);
    let many: Vec<_> = (0..40).flat_map(|_| feedback.clone()).collect();
    let comment = texts::human_comment(&record, "repairs exhausted", &many);
    assert!(
        comment.len() < texts::MAX_FEEDBACK_BYTES + 2048,
        "{}",
        comment.len()
    );
    assert!(comment.contains("more items (cut at 49152 bytes)"));
    assert!(comment.contains("- run_ids: run-handoff, run-repair-1"));
    record.merge = Some(record::MergeFacts {
        sha: MERGE.into(),
        method: Some(MergeMethod::Rebase),
        merged_by: Some("maestro-bot".into()),
        by_maestro: true,
    });
    let closeout = texts::closeout_comment(&record);
    for line in [
        "- pr_url: https://github.com/acme/widgets/pull/7",
        &format!("- merge_commit: {MERGE}"),
        "- method: rebase",
        "- merged_by: maestro (as maestro-bot)",
        "- handoff_run_id: run-handoff",
        "- repair_run_ids: run-repair-1",
        "- closeout: ENG-10 https://github.com/acme/widgets/pull/7",
    ] {
        assert!(closeout.contains(line), "{line} in {closeout}");
    }
}
