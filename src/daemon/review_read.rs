//! The post-review lifecycle's reads at the I/O edge of a tick (docs/spec/review.md): the open
//! review records, their issues' states from the intake's mirror (an issue in review is outside
//! the mirrored active states, so it is read once and then kept fresh by the every-poll "what
//! changed?" question), whether a process works each lane, the current repair's run record,
//! and the PR's signals for each lane whose read is due. `review.rs` decides from them.
//!
//! One GitHub client per tick, with the persisted ETag cache (most reads are free 304s); the
//! cache is saved once at the end of the tick. A client that cannot be built (no token) turns
//! every due read into that error, which the phase machine waits on.

use super::Daemon;
use super::review::{self, LaneView};
use crate::github;
use crate::review::{self as lifecycle, ReviewRecord};
use crate::tracker;
use crate::workflow::Workflow;
use crate::workspace::lock;
use crate::workspace::record;
use crate::{clock, config::GithubConfig};

/// The clients the review steps share. The GitHub client lives for one tick (its ETag cache is
/// saved at the end); the tracker client for the lifecycle's writes lives as long as the
/// intake's resync interval, so the team's states and labels it caches cost their points once
/// per interval, not once per closeout, and are never older than the intake's.
#[derive(Default)]
pub struct Clients {
    github: Option<Result<github::Client, ()>>,
    pub(super) tracker: Option<Box<dyn tracker::Tracker>>,
    tracker_opened: Option<std::time::Instant>,
    /// The tracker client's usage already booked with the intake.
    tracker_counted: tracker::Usage,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("github", &self.github.as_ref().map(Result::is_ok))
            .field("tracker", &self.tracker.is_some())
            .finish()
    }
}

impl Daemon {
    /// The open review lanes with what the tick knows about them; `None` when the lifecycle is
    /// off or the tracker could not say where the issues are.
    pub(super) fn review_lanes(&mut self, workflow: &Workflow) -> Option<Vec<LaneView>> {
        if !workflow.review.enabled {
            return None;
        }
        let (records, problems) = ReviewRecord::list(&self.layout);
        for problem in &problems {
            log::warn!("review record problem: {problem}");
        }
        let open: Vec<ReviewRecord> = records.into_iter().filter(ReviewRecord::is_open).collect();
        if open.is_empty() {
            return Some(Vec::new());
        }
        let ids: Vec<String> = open.iter().map(|record| record.issue_id.clone()).collect();
        let issues = match self.intake.issues(&ids) {
            Ok(issues) => issues,
            Err(error) => {
                self.tracker_error("read of the issues in review", &error);
                return None;
            }
        };
        let policy = &workflow.review;
        let now_ms = clock::now_ms();
        let now = clock::format_ms(now_ms);
        let mut lanes = Vec::with_capacity(open.len());
        for mut record in open {
            let issue = issues.iter().find(|issue| issue.id == record.issue_id);
            let issue = review::issue_state(&workflow.tracker, issue);
            let repair_run = record
                .current_repair()
                .and_then(|repair| repair.run_id.as_deref())
                .and_then(|run_id| record::load_run(&self.layout, run_id).ok());
            let reading = if lifecycle::read_due(&record, policy, &issue, now_ms) {
                let reading = self.read_signals(&record);
                record.mark_read(&now);
                record.schedule_read(policy, now_ms);
                Some(reading)
            } else {
                None
            };
            lanes.push(LaneView {
                repair_running: self.works_on(&record.issue_id),
                record,
                issue,
                repair_run,
                reading,
            });
        }
        Some(lanes)
    }

    /// Whether a process works on the issue now: a child of this daemon (spawned or adopted),
    /// or anything holding its lease.
    pub(super) fn works_on(&self, issue_id: &str) -> bool {
        self.children.iter().any(|child| child.issue_id == issue_id)
            || lock::lease_holder(&self.layout, &record::issue_key(issue_id))
                .ok()
                .flatten()
                .is_some()
    }

    /// The review record whose repair ran as `run_id`, when the issue has one.
    pub(super) fn repair_record_of(&self, issue_id: &str, run_id: &str) -> Option<ReviewRecord> {
        ReviewRecord::load(&self.layout, &record::issue_key(issue_id))
            .ok()
            .flatten()
            .filter(|record| {
                record
                    .repairs
                    .iter()
                    .any(|repair| repair.run_id.as_deref() == Some(run_id))
            })
    }

    fn read_signals(&mut self, record: &ReviewRecord) -> Result<lifecycle::Signals, github::Error> {
        let Some(repo) = record.repo_ref() else {
            return Err(github::Error::Untrusted {
                url: record.pr_url.clone(),
                message: format!(
                    "the review record's repository `{}` is not owner/name",
                    github::shown(&record.repo)
                ),
            });
        };
        let config = self.config.github.clone();
        let client = self.github(&config)?;
        lifecycle::read(client, &repo, record.number)
    }

    /// This tick's GitHub client (with the persisted ETag cache), built on first use.
    pub(super) fn github(
        &mut self,
        config: &GithubConfig,
    ) -> Result<&github::Client, github::Error> {
        let layout = self.layout.clone();
        let built = self.review_clients.github.get_or_insert_with(|| {
            github::Client::from_config(config)
                .map(|client| client.with_etag_cache(&layout.github_etag_cache_file()))
                .map_err(|error| log::warn!("no GitHub client for the review lifecycle: {error}"))
        });
        built.as_ref().map_err(|()| github::Error::MissingToken {
            variable: config.token_env_var.clone(),
        })
    }

    /// This tick's tracker client for the lifecycle's writes, opened on first use and taken
    /// out while a step uses it (the step puts it back).
    pub(super) fn take_tracker(&mut self) -> Option<Box<dyn tracker::Tracker>> {
        let max_age = std::time::Duration::from_millis(self.config.tracker.resync_interval_ms);
        let fresh = self
            .review_clients
            .tracker_opened
            .is_some_and(|opened| opened.elapsed() < max_age);
        if !fresh {
            self.book_review_tracker();
            self.review_clients.tracker = None;
        }
        if let Some(tracker) = self.review_clients.tracker.take() {
            return Some(tracker);
        }
        match tracker::open(&self.config, &self.project_slug) {
            Ok(tracker) => {
                self.review_clients.tracker_opened = Some(std::time::Instant::now());
                self.review_clients.tracker_counted = tracker.usage();
                Some(tracker)
            }
            Err(error) => {
                self.tracker_error("open for the review lifecycle", &error);
                None
            }
        }
    }

    /// Books what the lifecycle's tracker client spent since it was last booked with the
    /// intake, so the budget counts the lifecycle's writes too.
    fn book_review_tracker(&mut self) {
        if let Some(tracker) = &self.review_clients.tracker {
            let usage = tracker.usage();
            let spent = usage.since(&self.review_clients.tracker_counted);
            self.review_clients.tracker_counted = usage;
            self.intake.book(&spent);
        }
    }

    /// The end of a tick: the lifecycle's tracker requests booked, the ETag cache saved once,
    /// the GitHub client dropped.
    pub(super) fn finish_review_tick(&mut self) {
        self.book_review_tracker();
        if let Some(Ok(client)) = &self.review_clients.github {
            if let Err(error) = client.save_etag_cache() {
                log::warn!(
                    "cannot save the GitHub ETag cache path={} error={error}",
                    self.layout.github_etag_cache_file().display()
                );
            }
        }
        self.review_clients.github = None;
    }
}
