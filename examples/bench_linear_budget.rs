//! Benchmark (not a test): what an hour of daemon polling costs in Linear's budget, the
//! intake against the full poll it replaces, on a virtual clock.
//!
//!     cargo run --release --example bench_linear_budget
//!
//! For 100 and 1,000 candidate issues (3 of them running lanes, the rest Todo), with nothing
//! changing and with 10 changes an hour, two loopback fake Linears serve the same workspace
//! and receive the same changes at the same virtual times. Every 60 virtual seconds:
//!
//! - **intake**: `maestro::intake::Intake::sync`, then reconciliation of the running lanes
//!   (`Intake::issues`) and the candidate list (`Intake::candidates`), as the daemon's tick.
//! - **full poll**: what the daemon did before the intake: a new client per tick, the listing
//!   of every issue in the active states (`ProjectIssuesByStateNames`, 25 a page, with the
//!   project and team-state lookups a new client makes) and a refresh of the running lanes.
//!
//! Points and requests are what each fake charged, scored by Linear's published formula
//! (tests/support/linear_complexity.rs). Detection latency is the virtual time from a change
//! to the first tick whose answer reflects it: an issue moved out of Todo, moved back, and a
//! running lane's issue moved to Done (reconciliation).

#[allow(dead_code)] // The benchmark uses a subset of the test fakes.
#[path = "../tests/support/fake_http.rs"]
mod fake_http;
#[allow(dead_code)]
#[path = "../tests/support/fake_linear.rs"]
mod fake_linear;

use std::time::Duration;

use fake_linear::budget::VirtualClock;
use fake_linear::{API_KEY, Cost, FakeIssue, FakeLinear, SLUG_ID, World};
use maestro::intake::{self, Intake};
use maestro::tracker::linear::{ApiKey, Client, Options};
use maestro::tracker::{Issue, Tracker};

const POLL_MS: u64 = 60_000;
const HOUR_MS: u64 = 3_600_000;
const RUNNING: usize = 3;
/// 2026-03-01T00:00:00Z.
const START_MS: u64 = 1_772_323_200_000;

fn main() {
    println!(
        "Linear budget over one simulated hour, poll every 60 s (virtual clock; points and requests as the fake charges them by Linear's formula)\n"
    );
    println!(
        "{:>10} {:>9} {:<9} {:>9} {:>9} {:>7} {:>10} {:>10} {:>16}",
        "candidates",
        "changes/h",
        "approach",
        "req/h",
        "points/h",
        "budget",
        "steady r/h",
        "steady p/h",
        "detect mean/max"
    );
    let mut results = Vec::new();
    for candidates in [100, 1000] {
        for changes in [0, 10] {
            let scenario = Scenario {
                candidates,
                changes,
            };
            for approach in [Approach::FullPoll, Approach::Intake] {
                let result = scenario.run(approach);
                println!(
                    "{:>10} {:>9} {:<9} {:>9} {:>9} {:>6.1}% {:>10} {:>10} {:>16}",
                    candidates,
                    changes,
                    approach.name(),
                    result.hour.requests,
                    result.hour.points,
                    result.hour.points as f64 / 2_500.0,
                    result.steady.requests,
                    result.steady.points,
                    result.latency(),
                );
                results.push((scenario.candidates, scenario.changes, approach, result));
            }
        }
    }
    println!(
        "\nreq/h and points/h: the whole hour, start-up included (the intake's first sync reads every candidate once); steady: the hour without the first tick. budget: points/h of Linear's 250,000."
    );
    let goal = results
        .iter()
        .find(|(candidates, changes, approach, _)| {
            *candidates == 100 && *changes == 0 && *approach == Approach::Intake
        })
        .map(|(_, _, _, result)| result.hour);
    if let Some(hour) = goal {
        let met = hour.points <= 25_000 && hour.requests <= 120;
        println!(
            "goal (100 quiet candidates): <= 25,000 points/h and <= 120 requests/h; intake: {} points, {} requests: {}",
            hour.points,
            hour.requests,
            if met { "met" } else { "NOT met" }
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Approach {
    FullPoll,
    Intake,
}

impl Approach {
    fn name(self) -> &'static str {
        match self {
            Approach::FullPoll => "full poll",
            Approach::Intake => "intake",
        }
    }
}

struct Scenario {
    candidates: usize,
    changes: usize,
}

/// One change at a virtual time, and how to tell that an approach has seen it.
#[derive(Debug, Clone)]
struct Change {
    at_ms: u64,
    identifier: String,
    kind: ChangeKind,
}

#[derive(Debug, Clone, Copy)]
enum ChangeKind {
    /// Todo → Backlog: seen when it is no longer a candidate.
    Leaves,
    /// Backlog → Todo: seen when it is a candidate in Todo again.
    Returns,
    /// A running lane's issue → Done: seen when reconciliation reads Done.
    Finishes,
}

struct Outcome {
    hour: Cost,
    steady: Cost,
    latencies_ms: Vec<u64>,
    missed: usize,
}

impl Outcome {
    fn latency(&self) -> String {
        if self.latencies_ms.is_empty() && self.missed == 0 {
            return "-".to_string();
        }
        let mean = self.latencies_ms.iter().sum::<u64>() as f64
            / self.latencies_ms.len().max(1) as f64
            / 1000.0;
        let max = self.latencies_ms.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
        let missed = if self.missed > 0 {
            format!(" ({} missed)", self.missed)
        } else {
            String::new()
        };
        format!("{mean:.0} s/{max:.0} s{missed}")
    }
}

impl Scenario {
    fn world(&self) -> World {
        let mut world = World::standard();
        let todo = self.candidates - RUNNING;
        for n in 1..=self.candidates {
            let state = if n > todo { "In Progress" } else { "Todo" };
            let mut issue = FakeIssue::new(&format!("ABC-{n}"), state);
            if n % 10 == 0 {
                issue = issue.labels(&["Bug"]);
            }
            world = world.with(issue);
        }
        world
    }

    fn running(&self) -> Vec<String> {
        (self.candidates - RUNNING + 1..=self.candidates)
            .map(|n| format!("id-ABC-{n}"))
            .collect()
    }

    /// `changes` changes spread over the hour (deterministic): pairs of an issue leaving Todo
    /// and coming back, the last one a running lane finishing.
    fn changes(&self) -> Vec<Change> {
        let mut seed: u64 = 0x5eed_0000 + self.candidates as u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        let spacing = HOUR_MS / (self.changes.max(1) as u64 + 1);
        let mut changes = Vec::new();
        let mut moved = String::new();
        for index in 0..self.changes {
            let at_ms = spacing * (index as u64 + 1) + next() % 50_000;
            let (identifier, kind) = if index + 1 == self.changes {
                (format!("ABC-{}", self.candidates), ChangeKind::Finishes)
            } else if index % 2 == 0 {
                let n = 1 + next() as usize % (self.candidates - RUNNING);
                moved = format!("ABC-{n}");
                (moved.clone(), ChangeKind::Leaves)
            } else {
                (moved.clone(), ChangeKind::Returns)
            };
            changes.push(Change {
                at_ms,
                identifier,
                kind,
            });
        }
        changes
    }

    fn run(&self, approach: Approach) -> Outcome {
        let clock = VirtualClock::new(START_MS);
        let fake = FakeLinear::start_with_clock(self.world(), clock.for_fake());
        let states = vec!["Todo".to_string(), "In Progress".to_string()];
        let running = self.running();
        let url = fake.url();
        let mut intake = Intake::new(
            Box::new(move || {
                Ok(Box::new(Client::new(
                    Options::new(&url, ApiKey::new(API_KEY.into())),
                    SLUG_ID,
                )) as Box<dyn Tracker>)
            }),
            clock.clone(),
            intake::Options {
                resync_interval: intake::DEFAULT_RESYNC_INTERVAL,
                report_to: None,
            },
        );
        let mut pending = self.changes();
        let mut latencies_ms = Vec::new();
        let mut after_first_tick = Cost::default();
        let mut tick = 0;
        while tick * POLL_MS < HOUR_MS {
            let now = tick * POLL_MS;
            // Changes due since the last tick land at their own virtual times.
            let mut due: Vec<Change> = pending
                .iter()
                .filter(|change| change.at_ms <= now)
                .cloned()
                .collect();
            due.sort_by_key(|change| change.at_ms);
            for change in &due {
                if change.at_ms > clock.elapsed_ms() {
                    clock.advance(Duration::from_millis(change.at_ms - clock.elapsed_ms()));
                }
                apply(&fake, change);
            }
            clock.advance(Duration::from_millis(now - clock.elapsed_ms()));
            let (candidates, lanes) = match approach {
                Approach::Intake => {
                    intake.sync(&states).expect("intake sync");
                    let lanes = intake.issues(&running).expect("reconcile");
                    (intake.candidates(&states), lanes)
                }
                Approach::FullPoll => {
                    let client = Client::new(
                        Options::new(&fake.url(), ApiKey::new(API_KEY.into())),
                        SLUG_ID,
                    );
                    let candidates = client.issues_in_states(&states).expect("listing");
                    let lanes = client.refresh(&running).expect("refresh");
                    (candidates, lanes)
                }
            };
            pending.retain(|change| {
                if change.at_ms > now || !seen(change, &candidates, &lanes) {
                    return true;
                }
                latencies_ms.push(now - change.at_ms);
                false
            });
            if tick == 0 {
                after_first_tick = fake.spent();
            }
            tick += 1;
        }
        let hour = fake.spent();
        Outcome {
            hour,
            steady: Cost {
                requests: hour.requests - after_first_tick.requests,
                points: hour.points - after_first_tick.points,
            },
            latencies_ms,
            missed: pending.len(),
        }
    }
}

fn apply(fake: &FakeLinear, change: &Change) {
    let state = match change.kind {
        ChangeKind::Leaves => "Backlog",
        ChangeKind::Returns => "Todo",
        ChangeKind::Finishes => "Done",
    };
    fake.edit(|world| {
        if let Some(issue) = world
            .issues
            .iter_mut()
            .find(|issue| issue.identifier == change.identifier)
        {
            issue.state = state.to_string();
        }
    });
}

fn seen(change: &Change, candidates: &[Issue], lanes: &[Issue]) -> bool {
    let find = |issues: &[Issue]| {
        issues
            .iter()
            .find(|issue| issue.identifier == change.identifier)
            .map(|issue| issue.state.name.clone())
    };
    match change.kind {
        ChangeKind::Leaves => find(candidates).is_none(),
        ChangeKind::Returns => find(candidates).as_deref() == Some("Todo"),
        ChangeKind::Finishes => find(lanes).as_deref() == Some("Done"),
    }
}
