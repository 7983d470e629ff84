//! The daemon's intake: an in-memory mirror of the project's active issues, kept fresh with
//! the fewest and cheapest tracker questions, inside the tracker's API budget.
//!
//! Every poll asks one cheap question: which issues of the project changed since the last
//! answer (stamps only, [`Tracker::changed_since`], with an overlap so nothing committed
//! around the boundary is missed); only the issues whose stamp moved are read, as summaries.
//! Every resync interval it lists the stamps of every issue in the active states instead,
//! reads the new or changed ones, drops the ones that left, and opens a fresh tracker client
//! (so cached state names and labels never outlive one interval). Reconciliation and
//! selection then read the mirror, which costs nothing; [`Intake::confirm`] reads the few
//! issues about to be dispatched again first. Each answer's cost goes into a ledger, and
//! syncing is paced when the key's budget runs low ([`budget::pace`]).
//!
//! The intake decides nothing about eligibility (that is [`crate::selection`]'s) and knows no
//! GraphQL (that is [`crate::tracker`]'s). It takes a [`Clock`], so a benchmark can run an
//! hour of polls in seconds. Spec: docs/spec/tracker.md, "The daemon's intake".

pub mod budget;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock;
use crate::tracker::{self, Issue, Stamp, Tracker, Usage};
use crate::workflow::same_state;
use crate::workspace::Layout;
use budget::{Ledger, Spent};

/// Default time between two full resyncs (`[tracker] resync_interval_ms`).
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// How far before the last answer's time each "what changed?" question starts. Linear stamps
/// `updatedAt` when a change commits; a change committed around the previous answer, or seen
/// late by the replica that answered, is still caught. Re-seeing an unchanged issue is free:
/// its stamp matches and it is not read again.
pub const OVERLAP: Duration = Duration::from_secs(120);

/// Time for the intake: monotonic for its schedules, wall-clock for what it tells the tracker.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> Instant;
    /// Milliseconds since the epoch.
    fn wall_ms(&self) -> u64;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_ms(&self) -> u64 {
        clock::now_ms()
    }
}

/// Opens a tracker client. Called lazily and again at every resync.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn Tracker>, tracker::Error> + Send>;

/// How the intake runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub resync_interval: Duration,
    /// Where the budget report is written after every sync; `None` writes nothing.
    pub report_to: Option<Layout>,
}

/// What a sync came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The mirror is as fresh as the tracker's last answer.
    Fresh,
    /// Nothing was asked: the budget is kept for the reserve until `until`. The mirror is as
    /// old as the last fresh sync, so callers must not act on it.
    Paced { until: Instant },
}

/// Which kind of sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Changes,
    Resync,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Changes => "changes",
            Kind::Resync => "resync",
        }
    }
}

/// One mirrored issue and the version it was read at (`None`: read outside a stamped sync,
/// so the next stamp that names it reads it again).
#[derive(Debug, Clone)]
struct Entry {
    issue: Issue,
    version: Option<String>,
}

/// The intake. One per daemon; single-threaded.
pub struct Intake {
    open: Opener,
    clock: Arc<dyn Clock>,
    options: Options,
    tracker: Option<Box<dyn Tracker>>,
    provider: String,
    /// The current client's usage already in the ledger.
    counted: Usage,
    ledger: Ledger,
    mirror: HashMap<String, Entry>,
    /// Issues seen to change that the tracker no longer shows (archived, deleted, moved out
    /// of the project), with the version that said so; cleared by each resync.
    gone: HashMap<String, Option<String>>,
    /// The active states the mirror was last resynced with.
    states: Vec<String>,
    /// The tracker's time at the last successful sync's first answer.
    watermark_ms: Option<u64>,
    next_resync: Option<Instant>,
    paced_until: Option<Instant>,
    /// What the last sync of each kind cost, to judge whether the budget holds the next one.
    last_cost: HashMap<&'static str, Spent>,
    last_sync: Option<budget::SyncRecord>,
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("provider", &self.provider)
            .field("mirror", &self.mirror.len())
            .field("watermark_ms", &self.watermark_ms)
            .field("paced_until", &self.paced_until)
            .finish_non_exhaustive()
    }
}

impl Intake {
    pub fn new(open: Opener, clock: Arc<dyn Clock>, options: Options) -> Intake {
        Intake {
            open,
            clock,
            options,
            tracker: None,
            provider: String::new(),
            counted: Usage::default(),
            ledger: Ledger::default(),
            mirror: HashMap::new(),
            gone: HashMap::new(),
            states: Vec::new(),
            watermark_ms: None,
            next_resync: None,
            paced_until: None,
            last_cost: HashMap::new(),
            last_sync: None,
        }
    }

    /// Brings the mirror up to date for `active_states` (the startable states plus the
    /// in-progress state): a resync when one is due (first sync, new states, interval passed),
    /// else the changes since the last answer. On an error the mirror keeps what it had and
    /// the next sync asks again from the same point.
    pub fn sync(&mut self, active_states: &[String]) -> Result<Outcome, tracker::Error> {
        let now = self.clock.now();
        let due = self.watermark_ms.is_none()
            || self.states != active_states
            || self.next_resync.is_none_or(|at| now >= at);
        let kind = if due { Kind::Resync } else { Kind::Changes };
        if let Some(until) = self.pacing(kind, now) {
            self.save_report();
            return Ok(Outcome::Paced { until });
        }
        let before = self.ledger.total;
        let at = self.clock.wall_ms();
        let result = match kind {
            Kind::Resync => self.resync(active_states),
            Kind::Changes => self.catch_up(),
        };
        self.account();
        let cost = diff(&self.ledger.total, &before);
        if result.is_ok() {
            // A failed sync's partial cost says little about what the next one needs.
            self.last_cost.insert(kind.as_str(), cost);
        }
        self.last_sync = Some(budget::SyncRecord {
            kind: kind.as_str().to_string(),
            at: clock::format_ms(at),
            requests: cost.requests,
            points: cost.points,
            read: *result.as_ref().unwrap_or(&0),
            error: result.as_ref().err().map(ToString::to_string),
        });
        if let Err(tracker::Error::RateLimited { limit, .. }) = &result {
            // The key ran out (its other users count too): wait for the budget the refusal
            // reported, else for the reset it named, rather than spend a request every poll on
            // refusals.
            let now_ms = self.clock.wall_ms();
            let resume_ms =
                budget::pace(&self.ledger.latest, self.ledger.latest_at_ms, now_ms, &cost).or_else(
                    || {
                        limit
                            .wait(now_ms)
                            .map(|wait| now_ms + u64::try_from(wait.as_millis()).unwrap_or(0))
                    },
                );
            if let Some(resume_ms) = resume_ms {
                let wait =
                    Duration::from_millis(resume_ms.saturating_sub(now_ms).min(budget::HOUR_MS));
                self.paced_until = Some(self.clock.now() + wait);
            }
        }
        self.save_report();
        log::debug!(
            "intake sync kind={} requests={} points={} read={} mirror={}",
            kind.as_str(),
            cost.requests,
            cost.points,
            result.as_ref().map_or(0, |read| *read),
            self.mirror.len()
        );
        result.map(|_| Outcome::Fresh)
    }

    /// The mirrored issues in one of `states`, oldest first.
    pub fn candidates(&self, states: &[String]) -> Vec<Issue> {
        let mut issues: Vec<Issue> = self
            .mirror
            .values()
            .filter(|entry| {
                states
                    .iter()
                    .any(|state| same_state(state, &entry.issue.state.name))
            })
            .map(|entry| entry.issue.clone())
            .collect();
        issues.sort_by(|a, b| (a.created_ms, &a.identifier).cmp(&(b.created_ms, &b.identifier)));
        issues
    }

    /// The issues with these ids as the mirror holds them; an id it does not know (an issue
    /// outside the active states, say) is read once and mirrored. Ids the tracker does not
    /// show are absent, as [`Tracker::refresh`] would have them.
    pub fn issues(&mut self, issue_ids: &[String]) -> Result<Vec<Issue>, tracker::Error> {
        let unknown: Vec<String> = issue_ids
            .iter()
            .filter(|id| !self.mirror.contains_key(*id) && !self.gone.contains_key(*id))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            let fetched = self.call(|tracker| tracker.summaries(&unknown))?;
            self.absorb(&unknown, fetched, |_| None);
        }
        Ok(issue_ids
            .iter()
            .filter_map(|id| self.mirror.get(id))
            .map(|entry| entry.issue.clone())
            .collect())
    }

    /// Reads these issues again (summaries) right before acting on them, and mirrors what
    /// was read: the mirror may be a poll old, and a blocking relation can be added without
    /// the issue's stamp moving. Ids the tracker no longer shows are absent.
    pub fn confirm(&mut self, issue_ids: &[String]) -> Result<Vec<Issue>, tracker::Error> {
        let fetched = self.call(|tracker| tracker.summaries(issue_ids))?;
        let previous: HashMap<String, (String, Option<String>)> = issue_ids
            .iter()
            .filter_map(|id| self.mirror.get(id))
            .map(|entry| {
                (
                    entry.issue.id.clone(),
                    (entry.issue.updated_at.clone(), entry.version.clone()),
                )
            })
            .collect();
        // An issue read unchanged keeps its version, so the next stamp does not read it again.
        let version = |issue: &Issue| {
            previous
                .get(&issue.id)
                .filter(|(updated_at, _)| *updated_at == issue.updated_at)
                .and_then(|(_, version)| version.clone())
        };
        Ok(self.absorb(issue_ids, fetched, version))
    }

    /// Complete snapshots through the intake's client, so their cost is counted.
    pub fn refresh(&mut self, issue_ids: &[String]) -> Result<Vec<Issue>, tracker::Error> {
        self.call(|tracker| tracker.refresh(issue_ids))
    }

    /// Books what another tracker client of this daemon spent (the review lifecycle's writes,
    /// a stall's write-back), so the ledger, the report and the pacing count every request the
    /// daemon sends, not only the intake's.
    pub fn book(&mut self, spent: &tracker::Usage) {
        self.ledger.record(self.clock.wall_ms(), spent);
    }

    /// What the intake's requests cost in the hour before now.
    pub fn spent_last_hour(&self) -> Spent {
        self.ledger.last_hour(self.clock.wall_ms())
    }

    /// Issues in the mirror.
    pub fn mirrored(&self) -> usize {
        self.mirror.len()
    }

    /// The budget report as of now.
    pub fn report(&self) -> budget::Report {
        let now = self.clock.now();
        let now_ms = self.clock.wall_ms();
        let wall = |at: Instant| {
            clock::format_ms(
                now_ms + u64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(0),
            )
        };
        let spent = self.ledger.last_hour(now_ms);
        budget::Report {
            schema_version: budget::SCHEMA_VERSION,
            updated_at: clock::format_ms(now_ms),
            provider: self.provider.clone(),
            requests_last_hour: spent.requests,
            points_last_hour: spent.points,
            unpriced_last_hour: spent.unpriced,
            requests: self.ledger.latest.requests.map(Into::into),
            points: self.ledger.latest.points.map(Into::into),
            paced_until: self.paced_until.filter(|at| *at > now).map(wall),
            last_sync: self.last_sync.clone(),
            next_resync_at: self.next_resync.map(wall),
            mirror_issues: self.mirror.len(),
        }
    }

    /// `Some(until)` when the budget, as last reported, does not hold the reserve plus what
    /// the last sync of this kind cost; logged once per paced stretch.
    fn pacing(&mut self, kind: Kind, now: Instant) -> Option<Instant> {
        if let Some(until) = self.paced_until {
            if now < until {
                return Some(until);
            }
            self.paced_until = None;
            log::info!("intake pacing over, syncing again");
        }
        let need = self.last_cost.get(kind.as_str()).copied().unwrap_or(Spent {
            requests: 1,
            points: 0,
            unpriced: 0,
        });
        let now_ms = self.clock.wall_ms();
        let resume_ms = budget::pace(&self.ledger.latest, self.ledger.latest_at_ms, now_ms, &need)?;
        let until = now + Duration::from_millis(resume_ms.saturating_sub(now_ms));
        self.paced_until = Some(until);
        log::warn!(
            "intake paced to keep the tracker budget's reserve kind={} resume_in_s={} requests_remaining={} points_remaining={}",
            kind.as_str(),
            resume_ms.saturating_sub(now_ms) / 1000,
            self.ledger
                .latest
                .requests
                .map_or("unknown".to_string(), |a| a.remaining.to_string()),
            self.ledger
                .latest
                .points
                .map_or("unknown".to_string(), |a| a.remaining.to_string()),
        );
        Some(until)
    }

    /// The full pass: a fresh client, the stamps of every active issue, the new and changed
    /// ones read, blocked ones read again (a removed blocking relation, or a blocker outside
    /// the project moving on, does not move the blocked issue's stamp), the rest dropped.
    fn resync(&mut self, active_states: &[String]) -> Result<usize, tracker::Error> {
        self.account();
        self.tracker = None;
        let started = self.clock.wall_ms();
        let stamps = self.call(|tracker| tracker.stamps_in_states(active_states))?;
        let wanted: Vec<String> = stamps
            .stamps
            .iter()
            .filter(|stamp| {
                self.mirror.get(&stamp.id).is_none_or(|entry| {
                    entry.version.as_deref() != Some(stamp.version.as_str())
                        || has_open_blockers(&entry.issue)
                })
            })
            .map(|stamp| stamp.id.clone())
            .collect();
        let fetched = if wanted.is_empty() {
            Vec::new()
        } else {
            self.call(|tracker| tracker.summaries(&wanted))?
        };
        let read = fetched.len();
        let wanted_ids: HashSet<&str> = wanted.iter().map(String::as_str).collect();
        let mut fetched: HashMap<String, Issue> = fetched
            .into_iter()
            .map(|issue| (issue.id.clone(), issue))
            .collect();
        let mut mirror = HashMap::with_capacity(stamps.stamps.len());
        for Stamp { id, version } in &stamps.stamps {
            let entry = match fetched.remove(id) {
                Some(issue) => Entry {
                    issue,
                    version: Some(version.clone()),
                },
                // Listed but not read again because nothing changed: keep it.
                None if !wanted_ids.contains(id.as_str()) => match self.mirror.remove(id) {
                    Some(entry) => entry,
                    None => continue,
                },
                // Listed, then not shown when read: it left between the two answers.
                None => continue,
            };
            mirror.insert(id.clone(), entry);
        }
        let dropped = self
            .mirror
            .keys()
            .filter(|id| !mirror.contains_key(*id))
            .count();
        self.mirror = mirror;
        self.gone.clear();
        let fresh: Vec<(String, tracker::IssueState)> = wanted
            .iter()
            .filter_map(|id| self.mirror.get(id))
            .map(|entry| (entry.issue.id.clone(), entry.issue.state.clone()))
            .collect();
        self.propagate_states(&fresh);
        self.watermark_ms = Some(stamps.server_ms.unwrap_or(started));
        self.states = active_states.to_vec();
        self.next_resync = Some(self.clock.now() + self.options.resync_interval);
        log::info!(
            "intake resynced issues={} read={read} dropped={dropped}",
            self.mirror.len()
        );
        Ok(read)
    }

    /// The every-poll question: stamps changed since the last answer (less the overlap); the
    /// ones whose version is new are read, the ones the tracker no longer shows are dropped.
    fn catch_up(&mut self) -> Result<usize, tracker::Error> {
        let watermark = self.watermark_ms.unwrap_or(0);
        let since = watermark.saturating_sub(u64::try_from(OVERLAP.as_millis()).unwrap_or(0));
        let started = self.clock.wall_ms();
        let stamps = self.call(|tracker| tracker.changed_since(since))?;
        let changed: Vec<&Stamp> = stamps
            .stamps
            .iter()
            .filter(|stamp| {
                let known = self
                    .mirror
                    .get(&stamp.id)
                    .map(|entry| entry.version.as_deref())
                    .or_else(|| self.gone.get(&stamp.id).map(Option::as_deref));
                known.flatten() != Some(stamp.version.as_str())
            })
            .collect();
        let mut read = 0;
        if !changed.is_empty() {
            let ids: Vec<String> = changed.iter().map(|stamp| stamp.id.clone()).collect();
            let versions: HashMap<String, String> = changed
                .iter()
                .map(|stamp| (stamp.id.clone(), stamp.version.clone()))
                .collect();
            let fetched = self.call(|tracker| tracker.summaries(&ids))?;
            read = fetched.len();
            for id in &ids {
                if !fetched.iter().any(|issue| issue.id == *id) {
                    self.gone.insert(id.clone(), versions.get(id).cloned());
                }
            }
            self.absorb(&ids, fetched, |issue| versions.get(&issue.id).cloned());
        }
        self.watermark_ms = Some(stamps.server_ms.unwrap_or(started).max(watermark));
        Ok(read)
    }

    /// Mirrors `fetched` (read for `asked`): each issue under the version `version_of` gives
    /// it; an asked id not among them is no longer shown and leaves the mirror. Blockers
    /// elsewhere in the mirror take the states just read. Returns the issues read.
    fn absorb(
        &mut self,
        asked: &[String],
        fetched: Vec<Issue>,
        version_of: impl Fn(&Issue) -> Option<String>,
    ) -> Vec<Issue> {
        for id in asked {
            if !fetched.iter().any(|issue| issue.id == *id) && self.mirror.remove(id).is_some() {
                self.gone.entry(id.clone()).or_insert(None);
            }
        }
        let states: Vec<(String, tracker::IssueState)> = fetched
            .iter()
            .map(|issue| (issue.id.clone(), issue.state.clone()))
            .collect();
        for issue in &fetched {
            self.gone.remove(&issue.id);
            self.mirror.insert(
                issue.id.clone(),
                Entry {
                    version: version_of(issue),
                    issue: issue.clone(),
                },
            );
        }
        self.propagate_states(&states);
        fetched
    }

    /// A blocker's state as last read, wherever it appears as a blocker: a blocker moving on
    /// moves its own stamp, not the blocked issue's.
    fn propagate_states(&mut self, states: &[(String, tracker::IssueState)]) {
        if states.is_empty() {
            return;
        }
        let by_id: HashMap<&str, &tracker::IssueState> = states
            .iter()
            .map(|(id, state)| (id.as_str(), state))
            .collect();
        for entry in self.mirror.values_mut() {
            for blocker in &mut entry.issue.blockers {
                if let Some(state) = by_id.get(blocker.id.as_str()) {
                    blocker.state = (*state).clone();
                }
            }
        }
    }

    /// Runs `read` on the client (opened when there is none) and books what it cost.
    fn call<T>(
        &mut self,
        read: impl FnOnce(&dyn Tracker) -> Result<T, tracker::Error>,
    ) -> Result<T, tracker::Error> {
        if self.tracker.is_none() {
            let tracker = (self.open)()?;
            self.provider = tracker.provider().name().to_string();
            self.counted = tracker.usage();
            self.tracker = Some(tracker);
        }
        let result = match self.tracker.as_deref() {
            Some(tracker) => read(tracker),
            None => unreachable_tracker(),
        };
        self.account();
        result
    }

    /// Books what the current client spent since the last booking.
    fn account(&mut self) {
        if let Some(tracker) = &self.tracker {
            let usage = tracker.usage();
            let spent = usage.since(&self.counted);
            self.counted = usage;
            self.ledger.record(self.clock.wall_ms(), &spent);
        }
    }

    fn save_report(&self) {
        if let Some(layout) = &self.options.report_to {
            if let Err(error) = budget::save(layout, &self.report()) {
                log::warn!(
                    "cannot write the tracker budget report path={} error={error}",
                    layout.tracker_budget_file().display()
                );
            }
        }
    }
}

/// The client was just opened above; an error rather than a panic keeps the rule of no
/// `expect` outside tests.
fn unreachable_tracker<T>() -> Result<T, tracker::Error> {
    Err(tracker::Error::Malformed {
        operation: "intake",
        detail: "no tracker client is open".into(),
    })
}

/// Whether any blocker is in a state that does not count as finished by its type.
fn has_open_blockers(issue: &Issue) -> bool {
    issue.blockers.iter().any(|blocker| {
        !matches!(
            blocker.state.kind.as_str(),
            "completed" | "canceled" | "duplicate"
        )
    })
}

fn diff(after: &Spent, before: &Spent) -> Spent {
    Spent {
        requests: after.requests.saturating_sub(before.requests),
        points: after.points.saturating_sub(before.points),
        unpriced: after.unpriced.saturating_sub(before.unpriced),
    }
}
