//! Retention: what of `.maestro/` is deleted after each attempt, so Maestro's state never
//! outgrows a small build host.
//!
//! A *run* is everything kept under one run id: its record (`runs/<id>.json`), its protocol
//! journal (`runs/<id>.journal.jsonl`) and, for a daemon child, its log (`logs/<id>.log`); they
//! are kept and deleted together. After each attempt, oldest first:
//!
//! 1. finished runs beyond `keep_per_issue` per issue and `keep_total` in all are deleted;
//! 2. while the kept runs weigh more than `max_total_bytes`, the oldest finished run is deleted,
//!    except each issue's newest (`status` shows it);
//! 3. if that is still too much, the journals and logs of those newest runs go, oldest first,
//!    and their small records stay.
//!
//! A **live** run — status `running`, or its run id holding its issue's lease — is never
//! touched and counts towards both limits first. Journals and logs without a record (earlier
//! versions pruned records only) are deleted once they are older than every record kept; a newer
//! one may be a daemon child that has not written its record yet.
//!
//! Knows nothing of what the files mean beyond run id, issue, status and start order; `record`
//! decides their contents.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::record::{self, RunRecord, RunStatus};
use super::{Error, Layout, io_error, lock};
use crate::config::RetentionConfig;

/// What one pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Whole runs (record, journal and log).
    pub runs: usize,
    /// Journals and logs of kept records, removed for the size budget.
    pub trimmed: usize,
    /// Journals and logs that had no record.
    pub orphans: usize,
    /// Bytes freed.
    pub bytes: u64,
}

/// Applies `retention` to the runs under `layout` (see the module docs for the order).
pub fn prune(layout: &Layout, retention: &RetentionConfig) -> Result<Pruned, Error> {
    let records = record::list_runs(layout).items;
    let live_ids: BTreeSet<String> = lock::held_leases(layout)?
        .into_iter()
        .map(|(_, owner)| owner.run_id)
        .chain(
            records
                .iter()
                .filter(|record| record.status == RunStatus::Running)
                .map(|record| record.run_id.clone()),
        )
        .collect();
    let runs: Vec<Run<'_>> = records
        .iter()
        .map(|record| Run::measure(layout, record, live_ids.contains(&record.run_id)))
        .collect();
    let fate = decide(&runs, retention);

    let mut pruned = Pruned::default();
    for (run, fate) in runs.iter().zip(&fate) {
        match fate {
            Fate::Keep => {}
            Fate::Trim => {
                pruned.bytes += remove_all(&run.extras(layout))?;
                pruned.trimmed += 1;
            }
            Fate::Delete => {
                // Journal and log first: a pass cut short leaves the record to find them again.
                let mut paths = run.extras(layout);
                paths.push(layout.run_record_file(&run.record.run_id));
                pruned.bytes += remove_all(&paths)?;
                pruned.runs += 1;
            }
        }
    }

    let oldest_kept = runs
        .iter()
        .zip(&fate)
        .filter(|(_, fate)| **fate != Fate::Delete)
        .map(|(run, _)| run.record.run_id.as_str())
        .min();
    if let Some(oldest_kept) = oldest_kept {
        let recorded: BTreeSet<&str> = records.iter().map(|r| r.run_id.as_str()).collect();
        let orphans: Vec<PathBuf> = run_files(layout)
            .into_iter()
            .filter(|(run_id, _)| {
                !recorded.contains(run_id.as_str())
                    && !live_ids.contains(run_id)
                    && run_id.as_str() < oldest_kept
            })
            .map(|(_, path)| path)
            .collect();
        pruned.orphans = orphans.len();
        pruned.bytes += remove_all(&orphans)?;
    }
    Ok(pruned)
}

/// One record and what its run weighs on disk.
#[derive(Debug)]
struct Run<'a> {
    record: &'a RunRecord,
    live: bool,
    /// The record file alone.
    record_bytes: u64,
    /// Its journal and log.
    extra_bytes: u64,
}

impl<'a> Run<'a> {
    fn measure(layout: &Layout, record: &'a RunRecord, live: bool) -> Run<'a> {
        let run = Run {
            record,
            live,
            record_bytes: file_size(&layout.run_record_file(&record.run_id)),
            extra_bytes: 0,
        };
        let extra_bytes = run.extras(layout).iter().map(|path| file_size(path)).sum();
        Run { extra_bytes, ..run }
    }

    fn extras(&self, layout: &Layout) -> Vec<PathBuf> {
        vec![
            layout.journal_file(&self.record.run_id),
            layout
                .logs_dir()
                .join(format!("{}.log", self.record.run_id)),
        ]
    }

    fn bytes(&self) -> u64 {
        self.record_bytes + self.extra_bytes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    /// Keep the record, delete the journal and log.
    Trim,
    Delete,
}

/// The fate of each run (`runs` oldest first), as a pure function of counts and sizes.
fn decide(runs: &[Run<'_>], retention: &RetentionConfig) -> Vec<Fate> {
    let keep_per_issue = usize::try_from(retention.keep_per_issue).unwrap_or(usize::MAX);
    let keep_total = usize::try_from(retention.keep_total).unwrap_or(usize::MAX);
    let mut fate = vec![Fate::Keep; runs.len()];
    // Live runs count towards the total first.
    let mut kept_total = runs.iter().filter(|run| run.live).count();
    let mut per_issue: HashMap<&str, usize> = HashMap::new();
    // Newest first, so the counts keep the newest; the first seen per issue is its newest.
    let mut newest_of_issue = vec![false; runs.len()];
    for (index, run) in runs.iter().enumerate().rev() {
        if run.live {
            continue;
        }
        let count = per_issue.entry(run.record.issue_id.as_str()).or_insert(0);
        newest_of_issue[index] = *count == 0;
        if *count >= keep_per_issue || kept_total >= keep_total {
            fate[index] = Fate::Delete;
        } else {
            *count += 1;
            kept_total += 1;
        }
    }

    let mut weight: u64 = runs
        .iter()
        .zip(&fate)
        .filter(|(_, fate)| **fate == Fate::Keep)
        .map(|(run, _)| run.bytes())
        .sum();
    for pass in [Fate::Delete, Fate::Trim] {
        for (index, run) in runs.iter().enumerate() {
            if weight <= retention.max_total_bytes {
                return fate;
            }
            if run.live || fate[index] != Fate::Keep {
                continue;
            }
            match pass {
                Fate::Delete if !newest_of_issue[index] => {
                    fate[index] = Fate::Delete;
                    weight -= run.bytes();
                }
                Fate::Trim if newest_of_issue[index] => {
                    fate[index] = Fate::Trim;
                    weight -= run.extra_bytes;
                }
                _ => {}
            }
        }
    }
    fate
}

/// Journals and logs on disk, by run id.
fn run_files(layout: &Layout) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let journals: (PathBuf, fn(&str) -> Option<&str>) = (layout.runs_dir(), Layout::journal_run_id);
    for (dir, run_id_of) in [journals, (layout.logs_dir(), Layout::log_run_id)] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(run_id) = name.to_str().and_then(run_id_of) else {
                continue;
            };
            if !run_id.is_empty() && !run_id.starts_with('.') {
                files.push((run_id.to_string(), entry.path()));
            }
        }
    }
    files
}

fn file_size(path: &Path) -> u64 {
    std::fs::symlink_metadata(path).map_or(0, |metadata| metadata.len())
}

/// Removes each file that exists; returns the bytes freed.
fn remove_all(paths: &[PathBuf]) -> Result<u64, Error> {
    let mut freed = 0;
    for path in paths {
        let size = file_size(path);
        match std::fs::remove_file(path) {
            Ok(()) => freed += size,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(path, "remove old run file")(error)),
        }
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::record::save_run;
    use crate::workspace::record::tests::{layout, record};

    fn counts(keep_per_issue: u64, keep_total: u64) -> RetentionConfig {
        RetentionConfig {
            keep_per_issue,
            keep_total,
            ..RetentionConfig::default()
        }
    }

    fn left(layout: &Layout) -> Vec<String> {
        let mut ids: Vec<String> = record::list_runs(layout)
            .items
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn the_retention_table_defaults_and_rejects_what_is_not_a_positive_count() {
        let base = "id = \"demo\"\nrepo_root = \"/r\"\n[tracker]\napi_key_env_var = \"K\"\n";
        let path = std::path::Path::new("/etc/maestro.toml");
        let config = crate::config::parse(path, base, None).unwrap();
        assert_eq!(config.retention, RetentionConfig::default());
        assert_eq!(config.retention.max_total_bytes, 2 * 1024 * 1024 * 1024);
        let text = format!("{base}[retention]\nmax_total_bytes = 1000000\nkeep_per_issue = 3\n");
        let config = crate::config::parse(path, &text, None).unwrap();
        assert_eq!(
            config.retention,
            RetentionConfig {
                keep_per_issue: 3,
                keep_total: 500,
                max_total_bytes: 1_000_000,
            }
        );
        let text = format!("{base}[retention]\nmax_total_bytes = 0\nkeep_totl = 5\n");
        let message = crate::config::parse(path, &text, None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("retention.max_total_bytes")
                && message.contains("positive number of bytes")
                && message.contains("did you mean `keep_total`"),
            "{message}"
        );
    }

    #[test]
    fn keeps_newest_per_issue_and_total_and_all_running() {
        let (layout, dir) = layout("counts");
        for n in 0..5 {
            let started = format!("2026-11-26T00:00:0{n}.000Z");
            save_run(
                &layout,
                &record(&format!("a{n}"), "a", &started, RunStatus::Handoff),
            )
            .unwrap();
            save_run(
                &layout,
                &record(&format!("b{n}"), "b", &started, RunStatus::Handoff),
            )
            .unwrap();
        }
        save_run(
            &layout,
            &record("live", "a", "2026-11-25T00:00:00.000Z", RunStatus::Running),
        )
        .unwrap();
        std::fs::write(layout.journal_file("a0"), "{}\n").unwrap();
        std::fs::create_dir_all(layout.logs_dir()).unwrap();
        std::fs::write(layout.logs_dir().join("a0.log"), "log\n").unwrap();
        let pruned = prune(&layout, &counts(2, 3)).unwrap();
        // Total 3 counts the running record; then a4 and b4 are the newest per issue.
        assert_eq!(left(&layout), vec!["a4", "b4", "live"]);
        assert_eq!(pruned.runs, 8);
        assert!(!layout.journal_file("a0").exists());
        assert!(!layout.logs_dir().join("a0.log").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_size_budget_deletes_oldest_first_then_trims_each_issues_newest() {
        let (layout, dir) = layout("bytes");
        for (n, issue) in ["a", "b", "a", "b"].iter().enumerate() {
            let id = format!("r{n}");
            let started = format!("2026-11-26T00:00:0{n}.000Z");
            save_run(&layout, &record(&id, issue, &started, RunStatus::Handoff)).unwrap();
            std::fs::write(layout.journal_file(&id), vec![b'x'; 10_000]).unwrap();
        }
        let record_bytes = file_size(&layout.run_record_file("r0"));
        // Room for two whole runs: r0 and r1 go, r2 and r3 (each issue's newest) stay whole.
        let budget = RetentionConfig {
            max_total_bytes: 2 * (10_000 + record_bytes) + 10,
            ..RetentionConfig::default()
        };
        let pruned = prune(&layout, &budget).unwrap();
        assert_eq!(left(&layout), vec!["r2", "r3"]);
        assert_eq!(pruned.runs, 2);
        assert!(layout.journal_file("r3").exists());
        // Room for one journal beside the records: the older issue's newest loses its journal
        // and keeps its record.
        let tight = RetentionConfig {
            max_total_bytes: 10_000 + 2 * record_bytes + 10,
            ..RetentionConfig::default()
        };
        let pruned = prune(&layout, &tight).unwrap();
        assert_eq!(left(&layout), vec!["r2", "r3"]);
        assert_eq!(pruned.trimmed, 1);
        assert!(!layout.journal_file("r2").exists());
        assert!(layout.journal_file("r3").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn orphans_go_only_when_older_than_every_record_kept() {
        let (layout, dir) = layout("orphans");
        save_run(
            &layout,
            &record("2026b", "a", "2026-11-26T00:00:00.000Z", RunStatus::Handoff),
        )
        .unwrap();
        std::fs::create_dir_all(layout.logs_dir()).unwrap();
        for id in ["2025a", "2027c"] {
            std::fs::write(layout.logs_dir().join(format!("{id}.log")), "log\n").unwrap();
            std::fs::write(layout.journal_file(id), "{}\n").unwrap();
        }
        let pruned = prune(&layout, &RetentionConfig::default()).unwrap();
        assert_eq!(pruned.orphans, 2);
        assert!(!layout.logs_dir().join("2025a.log").exists());
        assert!(!layout.journal_file("2025a").exists());
        // Newer than every record: perhaps a child that has not written its record yet.
        assert!(layout.logs_dir().join("2027c.log").exists());
        assert!(layout.journal_file("2027c").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
