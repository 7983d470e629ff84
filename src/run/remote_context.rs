//! `context.read_first` files read from a lane on an ssh host, under the rules `context` applies
//! to a local lane: a plain relative path that resolves inside the lane (on the host, through
//! `readlink -e`) and outside its `.git`, a regular file, at most [`MAX_FILE_BYTES`] and all of
//! them at most [`MAX_TOTAL_BYTES`], UTF-8. One bounded ssh step reads them all, through the
//! remote wrapper (which refuses a lane that is a symlink or resolves outside the host's root,
//! and runs the step in the lane); each file's identity (device and inode) and resolved path
//! are checked again after it is read, so a file swapped meanwhile is skipped, not followed.
//!
//! The step runs as the ssh account the agent's own commands run as, so it can read nothing
//! the agent could not; the rules keep the prompt to the lane's own files, as for a local lane.
//! No secret value goes to the host (the arguments are the two limits and the relative paths).
//! A file that fails any rule, or a step that fails as a whole, is skipped with a reason, never
//! fatal. This module reads; `prompt` says what the agent is told.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::context::{ContextEntry, MAX_FILE_BYTES, MAX_TOTAL_BYTES};
use crate::worker::Remote;
use crate::worker::ssh::Ran;
use crate::workspace::record::ContextSkip;

/// The whole step: one ssh connection and at most 256 KiB read on the host.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `$1` the per-file limit, `$2` the total; then the relative paths. For each path, a
/// `maestro-context-next` line, then one of: `maestro-context-skip=WHY`,
/// `maestro-context-size=SIZE LIMIT` (too big), `maestro-context-data=HEX`.
const READ: &str = r#"max=$1 budget=$2
shift 2
lane=$(pwd -P)
for rel; do
  printf '\nmaestro-context-next\n'
  r=$(readlink -e -- "$rel") || { printf 'maestro-context-skip=missing\n'; continue; }
  case $r in "$lane"/*) ;; *) printf 'maestro-context-skip=outside\n'; continue ;; esac
  case "/${r#"$lane"/}/" in */.git/*) printf 'maestro-context-skip=git\n'; continue ;; esac
  if [ -L "$r" ] || [ ! -f "$r" ]; then printf 'maestro-context-skip=special\n'; continue; fi
  id=$(stat -c %d:%i -- "$r") && size=$(stat -c %s -- "$r") || { printf 'maestro-context-skip=unreadable\n'; continue; }
  limit=$max
  [ "$budget" -lt "$limit" ] && limit=$budget
  if [ "$size" -gt "$limit" ]; then printf 'maestro-context-size=%s %s\n' "$size" "$limit"; continue; fi
  data=$(head -c "$((limit + 1))" < "$r" | od -An -v -tx1 | tr -d ' \n') || { printf 'maestro-context-skip=unreadable\n'; continue; }
  if [ "$(readlink -e -- "$rel")" != "$r" ] || [ "$(stat -c %d:%i -- "$r")" != "$id" ]; then
    printf 'maestro-context-skip=changed\n'; continue
  fi
  printf 'maestro-context-data=%s\n' "$data"
  budget=$((budget - ${#data} / 2))
done"#;

/// Reads every `relative` file from lane `key` on `remote`'s host, in order, within the limits.
pub fn read_all(remote: &Remote, key: &str, relatives: &[PathBuf]) -> Vec<ContextEntry> {
    let mut entries: Vec<Option<ContextEntry>> = vec![None; relatives.len()];
    let mut sent: Vec<(usize, &str)> = Vec::new();
    for (index, relative) in relatives.iter().enumerate() {
        match plain(relative) {
            Some(text) => sent.push((index, text)),
            None => {
                entries[index] = Some(skipped(
                    relative,
                    "is not a plain path relative to the lane",
                ));
            }
        }
    }
    if !sent.is_empty() {
        let answers = ask(remote, key, &sent);
        let mut budget = MAX_TOTAL_BYTES;
        for ((index, _), answer) in sent.iter().zip(answers) {
            let relative = &relatives[*index];
            entries[*index] = Some(match judge(answer, budget) {
                Ok(text) => {
                    budget = budget.saturating_sub(text.len() as u64);
                    ContextEntry::Read {
                        path: relative.clone(),
                        text,
                    }
                }
                Err(reason) => skipped(relative, &reason),
            });
        }
    }
    entries
        .into_iter()
        .zip(relatives)
        .map(|(entry, relative)| {
            entry.unwrap_or_else(|| {
                skipped(relative, "cannot be read: the host did not answer for it")
            })
        })
        .collect()
}

/// The path as the host's shell gets it: relative, only normal components, UTF-8, no NUL.
fn plain(relative: &Path) -> Option<&str> {
    let plain = relative
        .components()
        .all(|component| matches!(component, Component::Normal(_) | Component::CurDir));
    let text = relative.to_str()?;
    (plain && !text.is_empty() && !text.contains('\0')).then_some(text)
}

fn skipped(relative: &Path, reason: &str) -> ContextEntry {
    ContextEntry::Skipped(ContextSkip {
        path: relative.display().to_string(),
        reason: reason.to_string(),
    })
}

/// The host's answer for one file: its raw line after `maestro-context-next`, or why the step
/// as a whole failed.
type Answer = Result<String, String>;

/// Runs the step; one answer per sent path, in order.
fn ask(remote: &Remote, key: &str, sent: &[(usize, &str)]) -> Vec<Answer> {
    let max = MAX_FILE_BYTES.to_string();
    let total = MAX_TOTAL_BYTES.to_string();
    let mut args = vec![max.as_str(), total.as_str()];
    args.extend(sent.iter().map(|(_, text)| *text));
    // Hex doubles the bytes; each file adds its marker lines.
    let keep = 2 * MAX_TOTAL_BYTES as usize + 128 * (sent.len() + 1) + 4096;
    let failed = |why: String| vec![Err(why); sent.len()];
    let output = match remote.read_args(Some(key), READ, &args, READ_TIMEOUT, keep) {
        Ok(Ran::Done(outcome)) if outcome.success() => outcome.output_tail,
        Ok(Ran::Done(outcome)) if outcome.timed_out => {
            return failed(format!(
                "cannot be read: reading the lane on {} took over {} s",
                remote.host,
                READ_TIMEOUT.as_secs()
            ));
        }
        Ok(Ran::Done(outcome)) => {
            return failed(format!(
                "cannot be read: reading the lane on {} failed ({})",
                remote.host,
                crate::worker::last_line(&outcome.output_tail)
            ));
        }
        Ok(Ran::Refused(reason)) => {
            return failed(format!(
                "cannot be read: the lane on {} was refused ({reason})",
                remote.host
            ));
        }
        Ok(Ran::Missing) => {
            return failed(format!(
                "cannot be read: the lane on {} is gone",
                remote.host
            ));
        }
        Ok(Ran::Ssh { detail, .. }) => {
            return failed(format!(
                "cannot be read: ssh to {} failed ({detail})",
                remote.host
            ));
        }
        Err(error) => return failed(format!("cannot be read: {error}")),
    };
    answers(&output, sent.len()).unwrap_or_else(|parts| {
        failed(format!(
            "cannot be read: the answer from {} was not understood ({parts} parts for {} files)",
            remote.host,
            sent.len()
        ))
    })
}

/// The step's output cut into one answer per path, or how many parts it had instead. Answers
/// are matched to paths by position, so an output with parts missing or extra (its start cut
/// off, something else printing the marker) is refused whole: it could name one file's bytes
/// after another.
fn answers(output: &str, count: usize) -> Result<Vec<Answer>, usize> {
    let answers: Vec<Answer> = output
        .split("maestro-context-next\n")
        .skip(1)
        .map(|part| Ok(part.trim().to_string()))
        .collect();
    if answers.len() == count {
        Ok(answers)
    } else {
        Err(answers.len())
    }
}

/// The file's text from one answer, or why it was skipped (the same sentences as a local lane).
fn judge(answer: Answer, budget: u64) -> Result<String, String> {
    let answer = answer?;
    let too_big = |size: u64, limit: u64| {
        if limit < MAX_FILE_BYTES {
            format!(
                "is {size} bytes, more than is left of the {MAX_TOTAL_BYTES}-byte limit for all read_first files"
            )
        } else {
            format!("is {size} bytes, over the {MAX_FILE_BYTES}-byte limit per read_first file")
        }
    };
    if let Some(why) = answer.strip_prefix("maestro-context-skip=") {
        return Err(match why {
            "missing" => "does not exist in the lane (or is a symlink to nothing)",
            "outside" => "leads outside the lane (through a symlink)",
            "git" => "leads into the lane's git metadata",
            "special" => "is not a regular file",
            "changed" => "changed while Maestro read it",
            _ => "cannot be read on the host",
        }
        .to_string());
    }
    if let Some(sizes) = answer.strip_prefix("maestro-context-size=") {
        let mut numbers = sizes
            .split(' ')
            .map(|n| n.parse::<u64>().unwrap_or(u64::MAX));
        let size = numbers.next().unwrap_or(u64::MAX);
        let limit = numbers.next().unwrap_or(0);
        return Err(too_big(size, limit));
    }
    let Some(hex) = answer.strip_prefix("maestro-context-data=") else {
        return Err("cannot be read: the host's answer was not understood".to_string());
    };
    let bytes = unhex(hex).ok_or("cannot be read: the host's answer was not understood")?;
    let limit = MAX_FILE_BYTES.min(budget);
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64, limit));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

/// Lowercase hex (`od -tx1`) back to bytes; `None` for anything else.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_the_local_lanes_sentences() {
        let ok = |hex: &str| judge(Ok(format!("maestro-context-data={hex}")), MAX_TOTAL_BYTES);
        assert_eq!(ok("68690a"), Ok("hi\n".to_string()));
        assert_eq!(ok(""), Ok(String::new()));
        assert_eq!(ok("ff"), Err("is not UTF-8 text".to_string()));
        assert!(ok("6").is_err() && ok("zz").is_err());
        let skip = |why: &str| judge(Ok(format!("maestro-context-skip={why}")), MAX_TOTAL_BYTES);
        assert_eq!(
            skip("outside"),
            Err("leads outside the lane (through a symlink)".to_string())
        );
        assert_eq!(
            skip("git"),
            Err("leads into the lane's git metadata".to_string())
        );
        assert_eq!(
            judge(
                Ok("maestro-context-size=70000 65536".into()),
                MAX_TOTAL_BYTES
            ),
            Err("is 70000 bytes, over the 65536-byte limit per read_first file".to_string())
        );
        assert_eq!(
            judge(Ok("maestro-context-size=20 10".into()), 10),
            Err(
                "is 20 bytes, more than is left of the 262144-byte limit for all read_first files"
                    .to_string()
            )
        );
        // The host's word on the size is checked again here.
        assert_eq!(
            judge(Ok("maestro-context-data=616263".into()), 2),
            Err(
                "is 3 bytes, more than is left of the 262144-byte limit for all read_first files"
                    .to_string()
            )
        );
        assert_eq!(
            judge(
                Err("cannot be read: ssh to b failed (x)".into()),
                MAX_TOTAL_BYTES
            ),
            Err("cannot be read: ssh to b failed (x)".to_string())
        );
    }

    #[test]
    fn an_answer_is_one_part_per_path_or_refused_whole() {
        let output = "\nmaestro-context-next\nmaestro-context-data=6869\n\nmaestro-context-next\nmaestro-context-skip=git\n";
        assert_eq!(
            answers(output, 2),
            Ok(vec![
                Ok("maestro-context-data=6869".to_string()),
                Ok("maestro-context-skip=git".to_string())
            ])
        );
        assert_eq!(answers(output, 3), Err(2));
        // The start cut off: the first file's part is gone, so nothing is matched.
        assert_eq!(answers("xt\nmaestro-context-data=6869\n", 1), Err(0));
    }

    #[test]
    fn only_plain_relative_paths_are_sent() {
        assert_eq!(plain(Path::new("docs/a.md")), Some("docs/a.md"));
        assert_eq!(plain(Path::new("../x")), None);
        assert_eq!(plain(Path::new("/etc/passwd")), None);
        assert_eq!(plain(Path::new("")), None);
    }
}
