//! The session journal: every message in and out, plus notable local events, as JSONL.
//!
//! One line per record, each with `at_ms` (Unix milliseconds) and `dir` (`in`, `out` or
//! `local`). Incoming lines are embedded as received (they were just parsed, so they are valid
//! JSON) to keep the per-message cost to one buffered write. The journal is append-only; a
//! crash can tear the last line, which [`read_journal`] tolerates. Environment values never
//! reach it: local events name variables, never their contents.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::Error;

/// Which way a journaled record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the app-server (stdout).
    In,
    /// To the app-server (stdin).
    Out,
    /// Something Maestro observed or decided (spawn, timeout, outcome, exit).
    Local,
}

/// One journal line as read back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JournalEntry {
    pub at_ms: u64,
    pub dir: Direction,
    /// The JSON-RPC message, for `in` and `out`.
    #[serde(default)]
    pub msg: Option<Value>,
    /// A stdout line that was not JSON (cut to 4 KiB), with its full length in `bytes`.
    #[serde(default)]
    pub garbage: Option<String>,
    #[serde(default)]
    pub bytes: Option<u64>,
    /// The local event's name, for `local`.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub detail: Value,
}

impl JournalEntry {
    /// The message's `method`, if it has one.
    pub fn method(&self) -> Option<&str> {
        self.msg.as_ref()?.get("method")?.as_str()
    }
}

/// A journal read back from disk.
#[derive(Debug, Clone, Default)]
pub struct JournalRead {
    pub entries: Vec<JournalEntry>,
    /// The last line was incomplete (a crash mid-write) and was left out.
    pub torn_last_line: bool,
    /// Complete lines that did not parse (left out; should not happen).
    pub skipped_lines: usize,
}

/// Reads a journal, leaving out a torn last line.
pub fn read_journal(path: &Path) -> std::io::Result<JournalRead> {
    let mut text = String::new();
    File::open(path)?.read_to_string(&mut text)?;
    let mut read = JournalRead::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let n_lines = lines.len();
    for (index, line) in lines.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(entry) => read.entries.push(entry),
            Err(_) if index + 1 == n_lines && !complete => read.torn_last_line = true,
            Err(_) => read.skipped_lines += 1,
        }
    }
    Ok(read)
}

/// The open journal of one session.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    writer: BufWriter<File>,
    /// The first write error is logged; later ones are not, so a full disk cannot flood the log.
    failed: bool,
}

impl Journal {
    /// Opens `path` for appending, creating it and its directory. If a previous writer tore
    /// the last line, a newline is added first so that line stays a single bad line.
    pub fn open(path: &Path) -> Result<Journal, Error> {
        let error = |source| Error::Journal {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(error)?;
        let length = file.metadata().map_err(error)?.len();
        if length > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(length - 1)).map_err(error)?;
            file.read_exact(&mut last).map_err(error)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(error)?;
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            writer: BufWriter::with_capacity(64 * 1024, file),
            failed: false,
        })
    }

    /// A message from the app-server, embedded as received.
    pub fn incoming(&mut self, raw: &str) {
        self.message("in", raw);
    }

    /// A message to the app-server, as the serialized line that was sent.
    pub fn outgoing(&mut self, line: &str) {
        self.message("out", line);
    }

    /// `{"at_ms":N,"dir":D,"msg":RAW}` written piece by piece: this runs for every message,
    /// and skipping the formatting machinery is measurable (`examples/bench_reader.rs`).
    fn message(&mut self, dir: &str, raw: &str) {
        let mut digits = [0u8; 20];
        let at_ms = format_u64(crate::clock::now_ms(), &mut digits);
        let parts: [&[u8]; 7] = [
            b"{\"at_ms\":",
            at_ms,
            b",\"dir\":\"",
            dir.as_bytes(),
            b"\",\"msg\":",
            raw.as_bytes(),
            b"}\n",
        ];
        let result = parts
            .iter()
            .try_for_each(|part| self.writer.write_all(part));
        self.check(result);
    }

    /// A stdout line that was not JSON.
    pub fn garbage(&mut self, text: &str, bytes: usize) {
        let record = serde_json::json!({
            "at_ms": crate::clock::now_ms(),
            "dir": "in",
            "garbage": text,
            "bytes": bytes,
        });
        let result = writeln!(self.writer, "{record}");
        self.check(result);
    }

    /// Something Maestro observed or decided.
    pub fn local(&mut self, event: &str, detail: Value) {
        let record = serde_json::json!({
            "at_ms": crate::clock::now_ms(),
            "dir": "local",
            "event": event,
            "detail": detail,
        });
        let result = writeln!(self.writer, "{record}");
        self.check(result);
    }

    /// Pushes buffered lines to the file. The session calls this whenever it is about to wait
    /// for the child, so a burst is written in one go and a quiet session is always on disk.
    pub fn flush(&mut self) {
        let result = self.writer.flush();
        self.check(result);
    }

    fn check(&mut self, result: std::io::Result<()>) {
        if let Err(error) = result {
            if !self.failed {
                self.failed = true;
                log::warn!(
                    "cannot write app-server journal, continuing without it path={} error={error}",
                    self.path.display()
                );
            }
        }
    }
}

/// The decimal digits of `value`, in the tail of `buffer`.
fn format_u64(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &buffer[start..];
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "maestro-journal-unit-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub").join("journal.jsonl")
    }

    #[test]
    fn numbers_format_like_display() {
        for value in [0, 7, 10, 1_795_668_651_321, u64::MAX] {
            let mut buffer = [0u8; 20];
            assert_eq!(format_u64(value, &mut buffer), value.to_string().as_bytes());
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_last_line_is_tolerated() {
        let path = temp_path("roundtrip");
        {
            let mut journal = Journal::open(&path).unwrap();
            journal.incoming(r#"{"method":"turn/started","params":{}}"#);
            journal.outgoing(r#"{"id":1,"method":"turn/start"}"#);
            journal.garbage("not json", 8);
            journal.local("spawned", serde_json::json!({"pid": 42}));
        }
        // A crash mid-write leaves half a line.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"at_ms":1,"dir":"in","msg":{"meth"#)
            .unwrap();
        drop(file);

        let read = read_journal(&path).unwrap();
        assert!(read.torn_last_line);
        assert_eq!(read.skipped_lines, 0);
        let dirs: Vec<Direction> = read.entries.iter().map(|e| e.dir).collect();
        assert_eq!(
            dirs,
            vec![
                Direction::In,
                Direction::Out,
                Direction::In,
                Direction::Local
            ]
        );
        assert_eq!(read.entries[0].method(), Some("turn/started"));
        assert_eq!(read.entries[1].method(), Some("turn/start"));
        assert_eq!(read.entries[2].garbage.as_deref(), Some("not json"));
        assert_eq!(read.entries[2].bytes, Some(8));
        assert_eq!(read.entries[3].event.as_deref(), Some("spawned"));
        assert_eq!(read.entries[3].detail["pid"], 42);

        // The next writer seals the torn line, so it stays one bad line and nothing is lost.
        {
            let mut journal = Journal::open(&path).unwrap();
            journal.local("reopened", Value::Null);
        }
        let read = read_journal(&path).unwrap();
        assert!(!read.torn_last_line);
        assert_eq!(read.skipped_lines, 1);
        assert_eq!(read.entries.len(), 5);
        assert_eq!(read.entries[4].event.as_deref(), Some("reopened"));
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }
}
