//! The post-review lifecycle's part of a tick, as pure functions (docs/spec/review.md): from
//! each open review record, its issue's state in the intake's mirror, whether a repair runs,
//! the current repair's run record and this tick's read of the PR's signals, to the
//! [`Action::Review`] steps the executor carries out (`review_exec.rs`).
//!
//! The phase machine itself is [`review::decide`]; this file adds what only the daemon knows:
//! a repair the record started whose child is gone is either finished from its run record or
//! started (again), an ending whose own steps are unfinished (the human path's label and
//! comment, a cancelled lane's removal) is finished, and a finished repair child's run record
//! is mapped to its result. No I/O: `tick.rs` reads, the executor acts.

use crate::github;
use crate::review::{self, IssueState, LaneFacts, Phase, RepairResult, ReviewRecord, Signals};
use crate::tracker::Issue;
use crate::workflow::{ReviewPolicy, TrackerPolicy, same_state};
use crate::workspace::record::{Disposition, ErrorClass, RunRecord, RunStatus};

use super::action::{Action, RepairEnd, ReviewStep, Step};
use super::children::StopReason;

/// One open review lane as the tick sees it.
#[derive(Debug)]
pub struct LaneView {
    /// The record, with this tick's read marked when there was one.
    pub record: ReviewRecord,
    pub issue: IssueState,
    /// A process works the issue now (a repair child, or anything holding its lease).
    pub repair_running: bool,
    /// The run record of the current repair's run, when it has one on disk.
    pub repair_run: Option<RunRecord>,
    /// This tick's read of the PR's signals, when one was due.
    pub reading: Option<Result<Signals, github::Error>>,
}

/// How the lifecycle sees an issue from the mirror: in `success_state`, terminal, or anywhere
/// else (gone from the project included).
pub fn issue_state(policy: &TrackerPolicy, issue: Option<&Issue>) -> IssueState {
    match issue {
        None => IssueState::Elsewhere("no longer visible in the project".into()),
        Some(issue) if same_state(&issue.state.name, &policy.success_state) => IssueState::InReview,
        Some(issue) if policy.is_terminal(&issue.state.name) => {
            IssueState::Terminal(issue.state.name.clone())
        }
        Some(issue) => IssueState::Elsewhere(issue.state.name.clone()),
    }
}

/// The review steps of one tick, lane by lane.
pub fn plan(policy: &ReviewPolicy, lanes: Vec<LaneView>) -> Vec<Action> {
    lanes
        .into_iter()
        .filter_map(|lane| step(policy, lane))
        .map(|step| Action::Review(Box::new(step)))
        .collect()
}

fn step(policy: &ReviewPolicy, lane: LaneView) -> Option<ReviewStep> {
    let record = &lane.record;
    let step = match record.phase {
        Phase::Human if !record.notice.is_done() => Step::Notify,
        Phase::Cancelled if !record.cleanup.lane_removed => Step::RemoveLane,
        phase if phase.is_ending() => return None,
        _ => {
            let facts = LaneFacts {
                record,
                issue: &lane.issue,
                repair_running: lane.repair_running,
            };
            let decision = review::decide(policy, &facts, lane.reading.as_ref());
            let pending = record.current_repair();
            let waits_for_repair = decision.phase == Phase::ReviewRepair
                && decision.action == review::Action::Wait
                && pending.is_some();
            if waits_for_repair && !lane.repair_running {
                let run_id = pending.and_then(|repair| repair.run_id.clone());
                match (&run_id, &lane.repair_run) {
                    (Some(run_id), Some(run)) if run.run_id == *run_id => Step::RepairEnded {
                        run_id: run_id.clone(),
                        end: repair_end(Some(run), None, None),
                    },
                    _ => Step::SpawnRepair { run_id },
                }
            } else {
                let changed = decision.phase != record.phase
                    || decision.reason != record.reason
                    || decision.waiting_for != record.waiting_for
                    || decision.action != review::Action::Wait;
                // A read is saved even when it changed nothing: the poll clock counts from it.
                if !changed && lane.reading.is_none() {
                    return None;
                }
                Step::Decide(decision)
            }
        }
    };
    Some(ReviewStep {
        record: lane.record,
        issue: lane.issue,
        step,
    })
}

/// Maps a repair child's end to its result. `run` is its run record (`None`: it ended before
/// writing one), `code` its exit code, `stop` why the daemon stopped it, if it did. A repair
/// that pushed a validated head is `Pushed`; anything else the agent or the process did is a
/// failed repair, which counts against `max_repairs`.
pub fn repair_end(
    run: Option<&RunRecord>,
    code: Option<i32>,
    stop: Option<&StopReason>,
) -> RepairEnd {
    let failed = |reason: String| RepairEnd::Result(RepairResult::Failed { reason });
    if let Some(StopReason::Stalled { idle }) = stop {
        return failed(format!(
            "no progress for {} s; the repair was stopped",
            idle.as_secs()
        ));
    }
    let Some(run) = run else {
        return failed(match code {
            Some(code) => format!("the repair process exited {code} before it started"),
            None => "the repair process ended before it started".into(),
        });
    };
    let class_and_message = || {
        let class = run
            .error_class
            .as_ref()
            .map_or_else(|| run.status.as_str().to_string(), ToString::to_string);
        match &run.error_message {
            Some(message) => format!("{class}: {message}"),
            None => class,
        }
    };
    match run.status {
        RunStatus::Handoff => match &run.head_sha {
            Some(head) => RepairEnd::Result(RepairResult::Pushed { head: head.clone() }),
            None => failed("the repair recorded a handoff without a head".into()),
        },
        RunStatus::HumanRequired
            if run.disposition == Some(Disposition::ManualAttention)
                || run.error_class == Some(ErrorClass::ManualAttention) =>
        {
            RepairEnd::AskedForHuman("the repair's agent asked for a human; see its comment".into())
        }
        // Stopped by a shutdown (the daemon's, or a SIGTERM): not the repair's fault.
        RunStatus::Interrupted if run.error_class.is_none() => RepairEnd::Respawn,
        RunStatus::Running => {
            failed("the repair process ended without recording an outcome".into())
        }
        _ => failed(class_and_message()),
    }
}

/// The review record a handoff run should have started, when it is missing: the run handed
/// off a PR (`pr_url`, `head_sha`) with the lifecycle on, and no record names it. The run
/// writes it itself; this covers a run that could not (a full disk) and then ended.
pub fn missing_after_handoff(
    run: &RunRecord,
    existing: Option<&ReviewRecord>,
    policy: &ReviewPolicy,
    api_url: &str,
    lane_key: &str,
    now_ms: u64,
) -> Option<ReviewRecord> {
    let (Some(pr_url), Some(head)) = (&run.pr_url, &run.head_sha) else {
        return None;
    };
    if !policy.enabled || run.status != RunStatus::Handoff || run.review_repair.is_some() {
        return None;
    }
    if existing.is_some_and(|record| record.handoff_run_id == run.run_id) {
        return None;
    }
    let (repo, number) = github::parse_pr_url(pr_url, api_url).ok()?;
    let key = crate::workspace::record::issue_key(&run.issue_id);
    let mut record = ReviewRecord::from_handoff(
        &review::Handoff {
            issue_id: &run.issue_id,
            identifier: &run.issue_identifier,
            key: &key,
            pr_url,
            repo: &repo,
            number,
            branch: &run.branch,
            validated_head: head,
            run_id: &run.run_id,
        },
        &crate::clock::format_ms(now_ms),
    );
    record.lane_key = Some(lane_key.to_string());
    record.schedule_read(policy, now_ms);
    Some(record)
}

/// Review steps that will take a dispatch slot this tick (fresh work counts the slots left).
pub fn slots_taken(actions: &[Action]) -> u32 {
    let taking = |action: &&Action| match action {
        Action::Review(step) => matches!(
            &step.step,
            Step::SpawnRepair { .. }
                | Step::Decide(review::Decision {
                    action: review::Action::Repair { .. },
                    ..
                })
        ),
        _ => false,
    };
    u32::try_from(actions.iter().filter(taking).count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::PullRequest;
    use crate::review::signals::{Check, CheckState};
    use crate::review::{Handoff, record::Repair};
    use crate::tracker::{IssueState as TrackerState, TeamRef};

    const HEAD: &str = "1111111111111111111111111111111111111111";
    const NEW: &str = "2222222222222222222222222222222222222222";

    fn policy() -> ReviewPolicy {
        ReviewPolicy {
            enabled: true,
            ..ReviewPolicy::default()
        }
    }

    fn record() -> ReviewRecord {
        let repo = crate::github::parse_remote("git@github.com:acme/widgets.git").unwrap();
        ReviewRecord::from_handoff(
            &Handoff {
                issue_id: "id-1",
                identifier: "ABC-1",
                key: "id-1",
                pr_url: "https://github.com/acme/widgets/pull/7",
                repo: &repo,
                number: 7,
                branch: "x/demo-abc-1",
                validated_head: HEAD,
                run_id: "run-handoff",
            },
            "2026-07-01T10:00:00.000Z",
        )
    }

    fn ready() -> Signals {
        Signals {
            pr: PullRequest {
                number: 7,
                html_url: "https://github.com/acme/widgets/pull/7".into(),
                state: "open".into(),
                draft: false,
                head_ref: "x/demo-abc-1".into(),
                head_sha: HEAD.into(),
                head_repo: Some("acme/widgets".into()),
                base_repo: "acme/widgets".into(),
                base_ref: "main".into(),
                merged: false,
                mergeable: Some(true),
                mergeable_state: "clean".into(),
                merge_commit_sha: None,
                merged_by: None,
            },
            approvals: vec!["bob".into()],
            change_requests: Vec::new(),
            threads: Vec::new(),
            checks: vec![Check {
                name: "ci".into(),
                state: CheckState::Green,
                detail: "success".into(),
                summary: String::new(),
            }],
        }
    }

    fn lane(record: ReviewRecord) -> LaneView {
        LaneView {
            record,
            issue: IssueState::InReview,
            repair_running: false,
            repair_run: None,
            reading: None,
        }
    }

    /// Each step in one short line.
    fn summary(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|action| match action {
                Action::Review(step) => match &step.step {
                    Step::Decide(decision) => format!(
                        "{} decide {} {:?}",
                        step.record.identifier,
                        decision.phase,
                        std::mem::discriminant(&decision.action)
                    ),
                    other => format!("{} {other:?}", step.record.identifier),
                },
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn pending_repair(record: &mut ReviewRecord, run_id: Option<&str>) {
        record.phase = Phase::ReviewRepair;
        record.repairs.push(Repair {
            attempt: 1,
            feedback_keys: vec!["review:41".into()],
            started_at: "2026-07-01T10:00:00.000Z".into(),
            run_id: run_id.map(str::to_string),
            result: None,
        });
    }

    fn repair_run(status: RunStatus, head: Option<&str>) -> RunRecord {
        RunRecord {
            run_id: "run-repair-1".into(),
            status,
            head_sha: head.map(str::to_string),
            review_repair: Some(1),
            ..RunRecord::default()
        }
    }

    #[test]
    fn the_issue_state_comes_from_the_mirror() {
        let workflow = crate::workflow::parse(
            std::path::Path::new("/w/WORKFLOW.md"),
            "body",
            std::path::Path::new("/w"),
        )
        .unwrap();
        let issue = |state: &str| Issue {
            id: "id-1".into(),
            identifier: "ABC-1".into(),
            title: String::new(),
            description: String::new(),
            priority: None,
            state: TrackerState {
                name: state.into(),
                kind: String::new(),
            },
            labels: Vec::new(),
            blockers: Vec::new(),
            url: None,
            branch_name: None,
            created_at: String::new(),
            created_ms: 0,
            updated_at: String::new(),
            team: TeamRef {
                id: "t".into(),
                key: "ABC".into(),
            },
            project_slug: None,
        };
        let policy = &workflow.tracker;
        assert_eq!(
            issue_state(policy, Some(&issue("in review"))),
            IssueState::InReview
        );
        assert_eq!(
            issue_state(policy, Some(&issue("Canceled"))),
            IssueState::Terminal("Canceled".into())
        );
        assert_eq!(
            issue_state(policy, Some(&issue("Todo"))),
            IssueState::Elsewhere("Todo".into())
        );
        assert!(matches!(
            issue_state(policy, None),
            IssueState::Elsewhere(_)
        ));
    }

    #[test]
    fn each_open_lane_gets_the_step_its_facts_call_for() {
        let policy = policy();
        let named = |name: &str| {
            let mut record = record();
            record.identifier = name.into();
            lane(record)
        };
        let mut ready_lane = named("ready");
        ready_lane.reading = Some(Ok(ready()));
        // Nothing read and nothing changed: no step at all.
        let quiet = named("quiet");
        let mut read_unchanged = named("unchanged");
        let mut waiting = ready();
        waiting.approvals.clear();
        read_unchanged.record.waiting_for = "0/1 approvals, checks 1/1 green".into();
        read_unchanged.record.reason = "not ready to land".into();
        read_unchanged.reading = Some(Ok(waiting));
        let mut cancelled = named("cancelled");
        cancelled.issue = IssueState::Terminal("Canceled".into());
        cancelled.reading = Some(Ok(ready()));
        let mut human = named("human");
        human.record.phase = Phase::Human;
        let mut notified = named("notified");
        notified.record.phase = Phase::Human;
        notified.record.notice.label_added = true;
        notified.record.notice.comment_posted = true;
        let mut gone = named("gone");
        gone.record.phase = Phase::Cancelled;
        let actions = plan(
            &policy,
            vec![
                ready_lane,
                quiet,
                read_unchanged,
                cancelled,
                human,
                notified,
                gone,
            ],
        );
        let lines = summary(&actions);
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("ready decide ready_to_land"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("unchanged decide review_wait"),
            "a read is saved"
        );
        assert!(
            lines[2].starts_with("cancelled decide cancelled"),
            "{lines:#?}"
        );
        assert_eq!(lines[3], "human Notify");
        assert_eq!(lines[4], "gone RemoveLane");
        assert_eq!(slots_taken(&actions), 0);
    }

    #[test]
    fn a_recorded_repair_is_started_finished_or_waited_for() {
        let policy = policy();
        let mut never_spawned = lane(record());
        pending_repair(&mut never_spawned.record, None);
        let mut spawned_then_lost = lane(record());
        pending_repair(&mut spawned_then_lost.record, Some("run-repair-1"));
        let mut finished = lane(record());
        pending_repair(&mut finished.record, Some("run-repair-1"));
        finished.repair_run = Some(repair_run(RunStatus::Handoff, Some(NEW)));
        let mut running = lane(record());
        pending_repair(&mut running.record, Some("run-repair-1"));
        running.repair_running = true;
        running.repair_run = Some(repair_run(RunStatus::Running, None));
        let actions = plan(
            &policy,
            vec![never_spawned, spawned_then_lost, finished, running],
        );
        assert_eq!(
            summary(&actions),
            [
                "ABC-1 SpawnRepair { run_id: None }",
                "ABC-1 SpawnRepair { run_id: Some(\"run-repair-1\") }",
                &format!(
                    "ABC-1 RepairEnded {{ run_id: \"run-repair-1\", end: Result(Pushed {{ head: \"{NEW}\" }}) }}"
                ),
            ],
            "a running repair is waited for"
        );
        assert_eq!(slots_taken(&actions), 2);
    }

    #[test]
    fn a_handoff_run_without_its_review_record_gets_one() {
        let policy = policy();
        let api = "https://api.github.com";
        let run = RunRecord {
            run_id: "run-handoff-2".into(),
            issue_id: "id-1".into(),
            issue_identifier: "ABC-1".into(),
            branch: "x/demo-abc-1".into(),
            status: RunStatus::Handoff,
            pr_url: Some("https://github.com/acme/widgets/pull/7".into()),
            head_sha: Some(NEW.into()),
            ..RunRecord::default()
        };
        let written = missing_after_handoff(&run, Some(&record()), &policy, api, "ABC-1", 0)
            .expect("an older lifecycle's record does not name this run");
        assert_eq!(
            (
                written.key.as_str(),
                written.number,
                written.validated_head.as_str()
            ),
            ("id-1", 7, NEW)
        );
        assert_eq!(written.lane_key.as_deref(), Some("ABC-1"));
        assert_eq!(written.phase, Phase::ReviewWait);
        assert!(missing_after_handoff(&run, Some(&written), &policy, api, "ABC-1", 0).is_none());
        let off = ReviewPolicy::default();
        assert!(missing_after_handoff(&run, None, &off, api, "ABC-1", 0).is_none());
        let repair = RunRecord {
            review_repair: Some(1),
            ..run.clone()
        };
        assert!(missing_after_handoff(&repair, None, &policy, api, "ABC-1", 0).is_none());
        let failed = RunRecord {
            status: RunStatus::Failed,
            ..run
        };
        assert!(missing_after_handoff(&failed, None, &policy, api, "ABC-1", 0).is_none());
    }

    #[test]
    fn a_repair_childs_end_is_its_result() {
        use std::time::Duration;
        let pushed = repair_run(RunStatus::Handoff, Some(NEW));
        assert_eq!(
            repair_end(Some(&pushed), Some(0), None),
            RepairEnd::Result(RepairResult::Pushed { head: NEW.into() })
        );
        let mut nothing = repair_run(RunStatus::Failed, None);
        nothing.error_class = Some(ErrorClass::RepairPushedNothing);
        nothing.error_message = Some("nothing new".into());
        assert_eq!(
            repair_end(Some(&nothing), Some(4), None),
            RepairEnd::Result(RepairResult::Failed {
                reason: "repair_pushed_nothing: nothing new".into()
            })
        );
        let mut asked = repair_run(RunStatus::HumanRequired, None);
        asked.disposition = Some(Disposition::ManualAttention);
        assert!(matches!(
            repair_end(Some(&asked), Some(5), None),
            RepairEnd::AskedForHuman(_)
        ));
        let interrupted = repair_run(RunStatus::Interrupted, None);
        assert_eq!(
            repair_end(Some(&interrupted), Some(1), None),
            RepairEnd::Respawn
        );
        let mut left = repair_run(RunStatus::Interrupted, None);
        left.error_class = Some(ErrorClass::IssueLeftActiveStates);
        assert!(matches!(
            repair_end(Some(&left), Some(3), None),
            RepairEnd::Result(RepairResult::Failed { .. })
        ));
        let stalled = StopReason::Stalled {
            idle: Duration::from_secs(900),
        };
        assert_eq!(
            repair_end(Some(&interrupted), Some(1), Some(&stalled)),
            RepairEnd::Result(RepairResult::Failed {
                reason: "no progress for 900 s; the repair was stopped".into()
            })
        );
        assert_eq!(
            repair_end(None, Some(3), None),
            RepairEnd::Result(RepairResult::Failed {
                reason: "the repair process exited 3 before it started".into()
            })
        );
        let died = repair_run(RunStatus::Running, None);
        assert!(matches!(
            repair_end(Some(&died), None, None),
            RepairEnd::Result(RepairResult::Failed { reason }) if reason.contains("without recording")
        ));
    }
}
