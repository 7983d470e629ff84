//! Every transition and fallback of the phase machine, table-driven.

use crate::github::{self, MergeMethod};
use crate::workflow::{MergeMode, ReviewPolicy};

use super::*;
use crate::review::signals::{Check, CheckState};
use crate::review::{Action, IssueState, LaneFacts, Phase, decide};

#[test]
fn every_transition_from_the_signals() {
    let cases = [
        Case {
            phase: Phase::ReadyToLand,
            action: "merge",
            says: "ready to land: 1/1 approvals, checks 1/1 green",
            ..case("ready, auto: merge")
        },
        Case {
            policy: |p| p.merge = MergeMode::Manual,
            phase: Phase::Landing,
            says: "a person to merge",
            ..case("ready, manual: wait for a person")
        },
        Case {
            signals: |s| s.approvals.clear(),
            says: "0/1 approvals, checks 1/1 green",
            ..case("no approval")
        },
        Case {
            policy: |p| p.required_approvals = 0,
            signals: |s| s.approvals.clear(),
            phase: Phase::ReadyToLand,
            action: "merge",
            ..case("no approval needed")
        },
        Case {
            signals: |s| {
                s.checks.push(Check {
                    state: CheckState::Pending,
                    ..green("slow")
                })
            },
            says: "checks 1/2 green",
            ..case("a check pending")
        },
        Case {
            signals: |s| s.checks.clear(),
            says: "no checks on the head yet",
            ..case("no checks while required")
        },
        Case {
            policy: |p| p.require_checks = false,
            signals: |s| s.checks.clear(),
            phase: Phase::ReadyToLand,
            action: "merge",
            says: "checks not required",
            ..case("no checks, not required")
        },
        Case {
            policy: |p| p.require_checks = false,
            signals: |s| {
                s.checks.push(Check {
                    state: CheckState::Failing,
                    ..green("lint")
                })
            },
            phase: Phase::ReadyToLand,
            action: "merge",
            ..case("a failing check that is not required is not feedback")
        },
        Case {
            signals: |s| s.pr.draft = true,
            says: "the PR is a draft",
            ..case("draft")
        },
        Case {
            signals: |s| s.pr.mergeable_state = "blocked".into(),
            says: "mergeable_state blocked",
            ..case("blocked by branch protection")
        },
        Case {
            signals: |s| s.pr.mergeable_state = "behind".into(),
            says: "mergeable_state behind",
            ..case("behind its base")
        },
        Case {
            signals: |s| s.pr.mergeable = None,
            says: "GitHub is computing mergeability",
            ..case("mergeability not computed")
        },
        Case {
            signals: |s| s.pr.mergeable_state = "has_hooks".into(),
            phase: Phase::ReadyToLand,
            action: "merge",
            ..case("has_hooks is clean on GHES")
        },
        Case {
            signals: change_request,
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "repair 1 of 3: changes requested by alice",
            ..case("a change request: repair")
        },
        Case {
            signals: |s| s.threads.push(thread("T1", 1)),
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "1 unresolved thread",
            ..case("an unresolved thread: repair")
        },
        Case {
            signals: |s| {
                s.checks.push(Check {
                    state: CheckState::Failing,
                    ..green("lint")
                })
            },
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "failing checks lint",
            ..case("a failing check: repair")
        },
        Case {
            signals: |s| s.pr.mergeable_state = "dirty".into(),
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "conflicts with the base branch",
            ..case("a conflict: repair")
        },
        Case {
            policy: |p| p.repair = false,
            signals: change_request,
            phase: Phase::Human,
            action: "human",
            says: "[review] repair = false",
            ..case("feedback without repair: human")
        },
        Case {
            record: repairs_spent,
            signals: change_request,
            phase: Phase::Human,
            action: "human",
            says: "after 3 of 3 repairs",
            ..case("repairs exhausted: human")
        },
        Case {
            record: repaired,
            signals: change_request,
            says: "changes requested by alice (addressed by repair 1; waiting for a re-review)",
            ..case("addressed change request: wait for a re-review")
        },
        Case {
            record: |r| {
                repaired(r);
                r.repairs[0].result = Some(RepairResult::Failed {
                    reason: "pushed nothing".into(),
                });
            },
            signals: change_request,
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "repair 2 of 3",
            ..case("a failed repair's feedback is open again")
        },
        Case {
            record: repaired,
            signals: |s| {
                change_request(s);
                s.threads.push(thread("T9", 1));
            },
            phase: Phase::ReviewRepair,
            action: "repair",
            says: "repair 2 of 3: 1 unresolved thread",
            ..case("new feedback after a repair: repair again, only the new")
        },
        Case {
            record: |r| {
                r.repairs.push(record::Repair {
                    attempt: 1,
                    feedback_keys: vec![],
                    started_at: NOW.into(),
                    run_id: Some("run-r1".into()),
                    result: None,
                })
            },
            running: true,
            phase: Phase::ReviewRepair,
            says: "repair 1 of 3 running (run run-r1)",
            ..case("a repair running: wait")
        },
        Case {
            record: |r| {
                r.repairs.push(record::Repair {
                    attempt: 1,
                    feedback_keys: vec![],
                    started_at: NOW.into(),
                    run_id: None,
                    result: None,
                })
            },
            phase: Phase::ReviewRepair,
            says: "no recorded result",
            ..case("a repair without a result and no child: wait for its outcome")
        },
        Case {
            signals: |s| s.pr.head_sha = OTHER.into(),
            phase: Phase::Human,
            action: "human",
            says: "is not the head maestro validated",
            ..case("a head maestro did not validate: human")
        },
        Case {
            signals: merged,
            phase: Phase::DeliveryCloseout,
            action: "closeout",
            says: "merged as 333333333333 by dana",
            ..case("merged by a person: closeout")
        },
        Case {
            signals: |s| {
                merged(s);
                s.pr.state = "open".into();
            },
            phase: Phase::Human,
            action: "human",
            says: "contradictory signals: GitHub says merged but the PR is still open",
            ..case("merged yet open: human")
        },
        Case {
            signals: |s| {
                merged(s);
                s.pr.merge_commit_sha = None;
            },
            phase: Phase::Human,
            action: "human",
            says: "names no merge commit",
            ..case("merged without a merge commit: human")
        },
        Case {
            signals: |s| {
                merged(s);
                s.pr.head_sha = OTHER.into();
            },
            phase: Phase::Human,
            action: "human",
            says: "merged head 222222222222 is not the validated head 111111111111",
            ..case("merged a head maestro did not validate: human")
        },
        Case {
            signals: |s| s.pr.head_ref = "main".into(),
            phase: Phase::Human,
            action: "human",
            says: "not the lane branch",
            ..case("the PR's branch is not the lane's: human")
        },
        Case {
            signals: |s| s.pr.state = "closed".into(),
            phase: Phase::Human,
            action: "human",
            says: "the PR was closed without a merge",
            ..case("closed without merge: human")
        },
        Case {
            issue: IssueState::Terminal("Canceled".into()),
            phase: Phase::Cancelled,
            action: "cancel",
            says: "moved to Canceled before the PR was merged",
            ..case("cancelled by a person mid-wait")
        },
        Case {
            issue: IssueState::Terminal("Canceled".into()),
            running: true,
            record: |r| {
                r.repairs.push(record::Repair {
                    attempt: 1,
                    feedback_keys: vec![],
                    started_at: NOW.into(),
                    run_id: Some("r".into()),
                    result: None,
                })
            },
            phase: Phase::Cancelled,
            action: "cancel",
            ..case("cancelled by a person mid-repair")
        },
        Case {
            issue: IssueState::Terminal("Done".into()),
            signals: merged,
            phase: Phase::DeliveryCloseout,
            action: "closeout",
            ..case("a merge beats the terminal state a person set")
        },
        Case {
            issue: IssueState::Elsewhere("Todo".into()),
            phase: Phase::Released,
            action: "release",
            says: "moved out of review to Todo",
            ..case("moved back by a person: release")
        },
        Case {
            issue: IssueState::Elsewhere("Todo".into()),
            signals: merged,
            phase: Phase::DeliveryCloseout,
            action: "closeout",
            ..case("merged, then moved: closeout")
        },
        Case {
            record: |r| r.phase = Phase::Landing,
            policy: |p| p.merge = MergeMode::Manual,
            signals: |s| s.approvals.clear(),
            says: "no longer ready to land",
            ..case("manual landing falls back to wait")
        },
        Case {
            record: |r| r.phase = Phase::Landing,
            signals: change_request,
            phase: Phase::ReviewRepair,
            action: "repair",
            ..case("landing falls back to repair")
        },
        Case {
            record: |r| {
                r.phase = Phase::Landing;
                r.merge_requested = Some(record::MergeRequest {
                    sha: HEAD.into(),
                    method: MergeMethod::Squash,
                    at: NOW.into(),
                });
            },
            phase: Phase::ReadyToLand,
            action: "merge",
            ..case("landing after a lost answer: merge again, pinned")
        },
    ];
    for case in &cases {
        let decision = run(case);
        assert_eq!(
            (decision.phase, kind(&decision.action)),
            (case.phase, case.action),
            "{}: {decision:?}",
            case.name
        );
        assert!(
            decision.reason.contains(case.says) || decision.waiting_for.contains(case.says),
            "{}: expected {:?} in {decision:?}",
            case.name,
            case.says
        );
    }
}

#[test]
fn the_actions_carry_what_their_executor_needs() {
    let decision = run(&case("merge"));
    assert_eq!(
        decision.action,
        Action::Merge {
            sha: HEAD.into(),
            method: MergeMethod::Squash
        }
    );
    let repair = run(&Case {
        signals: |s| {
            change_request(s);
            s.threads.push(thread("T1", 2));
        },
        ..case("repair")
    });
    let Action::Repair { attempt, feedback } = &repair.action else {
        panic!("{repair:?}")
    };
    assert_eq!(*attempt, 1);
    let keys: Vec<&str> = feedback.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["review:41", "thread:T1:2"]);
    let closeout = run(&Case {
        signals: merged,
        ..case("closeout")
    });
    let Action::Closeout {
        merge,
        move_state,
        post_comment,
    } = &closeout.action
    else {
        panic!()
    };
    assert!(*move_state && *post_comment);
    assert_eq!(
        (merge.sha.as_str(), merge.by_maestro, merge.method),
        (MERGE, false, None)
    );
    assert_eq!(merge.merged_by.as_deref(), Some("dana"));
    let terminal = run(&Case {
        issue: IssueState::Terminal("Done".into()),
        signals: merged,
        ..case("terminal")
    });
    assert!(matches!(
        terminal.action,
        Action::Closeout {
            move_state: false,
            ..
        }
    ));
    let human = run(&Case {
        signals: |s| {
            change_request(s);
            s.pr.state = "closed".into();
        },
        ..case("closed")
    });
    let Action::Human { open_feedback } = &human.action else {
        panic!()
    };
    assert_eq!(
        open_feedback.len(),
        1,
        "the human comment lists the open feedback"
    );
}

#[test]
fn read_failures_wait_or_go_to_a_human() {
    let record = record();
    let issue = IssueState::InReview;
    let lane = LaneFacts {
        record: &record,
        issue: &issue,
        repair_running: false,
    };
    let url = "http://github/x".to_string();
    for (error, phase, says) in [
        (
            github::Error::Status {
                status: 502,
                url: url.clone(),
                body: String::new(),
            },
            Phase::ReviewWait,
            "reading again at the next poll",
        ),
        (
            github::Error::Transport {
                url: url.clone(),
                message: "reset".into(),
            },
            Phase::ReviewWait,
            "reading again",
        ),
        (
            github::Error::RateLimited {
                url: url.clone(),
                reset: None,
            },
            Phase::ReviewWait,
            "rate limit",
        ),
        (
            github::Error::Auth {
                status: 401,
                url: url.clone(),
            },
            Phase::ReviewWait,
            "a GitHub token that can read the PR",
        ),
        (
            github::Error::NotFound {
                what: "pull request",
                url: url.clone(),
            },
            Phase::Human,
            "the PR cannot be read",
        ),
        (
            github::Error::Redirected {
                status: 301,
                url: url.clone(),
                location: "elsewhere".into(),
            },
            Phase::Human,
            "redirect",
        ),
        (
            github::Error::TooMany {
                url: url.clone(),
                what: "reviews",
                limit: 1000,
            },
            Phase::Human,
            "more than 1000 reviews",
        ),
    ] {
        let decision = decide(&policy(), &lane, Some(&Err(error)));
        assert_eq!(decision.phase, phase, "{decision:?}");
        assert!(
            decision.reason.contains(says) || decision.waiting_for.contains(says),
            "{says}: {decision:?}"
        );
    }
    let held = decide(&policy(), &lane, None);
    assert_eq!(
        (held.phase, held.action, held.waiting_for.as_str()),
        (Phase::ReviewWait, Action::Wait, "the first read of the PR")
    );
}

#[test]
fn phases_without_signals_work_from_the_record() {
    let policy = policy();
    let issue = IssueState::InReview;
    let mut record = record();
    record.phase = Phase::DeliveryCloseout;
    let lane = |record: &ReviewRecord| {
        decide(
            &policy,
            &LaneFacts {
                record,
                issue: &issue,
                repair_running: false,
            },
            None,
        )
    };
    assert_eq!(
        lane(&record).phase,
        Phase::Human,
        "closeout without merge facts is a contradiction"
    );
    record.merge = Some(record::MergeFacts {
        sha: MERGE.into(),
        method: Some(MergeMethod::Squash),
        merged_by: None,
        by_maestro: true,
    });
    record.closeout.state_moved = true;
    assert!(matches!(
        lane(&record).action,
        Action::Closeout {
            move_state: false,
            post_comment: true,
            ..
        }
    ));
    let terminal = IssueState::Terminal("Done".into());
    record.closeout.state_moved = false;
    let decision = decide(
        &policy,
        &LaneFacts {
            record: &record,
            issue: &terminal,
            repair_running: false,
        },
        None,
    );
    assert!(
        matches!(
            decision.action,
            Action::Closeout {
                move_state: false,
                ..
            }
        ),
        "a person's state is kept"
    );
    record.finish_closeout(NOW);
    assert_eq!(
        lane(&record).action,
        Action::Cleanup {
            delete_branch: true,
            remove_lane: true
        }
    );
    record.branch_cleaned(Some(github::BranchDeletion::AlreadyGone));
    assert_eq!(
        lane(&record).action,
        Action::Cleanup {
            delete_branch: false,
            remove_lane: true
        }
    );
    let keep = ReviewPolicy {
        delete_branch: false,
        ..policy.clone()
    };
    let mut fresh = record.clone();
    fresh.cleanup.branch = None;
    assert!(matches!(
        decide(
            &keep,
            &LaneFacts {
                record: &fresh,
                issue: &issue,
                repair_running: false
            },
            None
        )
        .action,
        Action::Cleanup {
            delete_branch: false,
            ..
        }
    ));
    record.finish_cleanup(NOW);
    assert_eq!(record.phase, Phase::Done);
    for ending in [Phase::Done, Phase::Human, Phase::Cancelled, Phase::Released] {
        record.phase = ending;
        let decision = decide(
            &policy,
            &LaneFacts {
                record: &record,
                issue: &issue,
                repair_running: false,
            },
            Some(&Ok(ready())),
        );
        assert_eq!(
            (decision.phase, decision.action),
            (ending, Action::Wait),
            "an ending is final"
        );
    }
}
