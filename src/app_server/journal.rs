//! The session journal: every message in and out, plus notable local events, as JSONL.
//!
//! One line per record, each with `at_ms` (Unix milliseconds) and `dir` (`in`, `out` or
//! `local`). Incoming lines are embedded as received (they were just parsed, so they are valid
//! JSON) to keep the per-message cost to one buffered write. The journal is append-only; a
//! crash can tear the last line, which [`read_journal`] tolerates. Environment values never
//! reach it: local events name variables, never their contents.
//!
//! Streaming deltas are the exception to "every message as received": codex sends one line of
//! about 250 bytes per few characters of agent text, and `item/completed` repeats the whole
//! text, so a two-hour session would journal well over 100 MB of deltas. They are coalesced
//! instead: one `deltas` line per item (a [`DeltaRun`]: method, ids, count, bytes, first and last
//! time, the text up to 4 KiB) written when 256 have arrived, when the first of them is five
//! seconds old, or when the item or the turn completes. Every request, response, tool call,
//! `item/started` and `item/completed` is still journaled whole.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Error;
use super::reader::is_delta_method;
use super::wire::Incoming;

/// A coalesced line is written once it holds this many deltas…
const COALESCE_MAX_DELTAS: u64 = 256;
/// …or once its first delta is this old (the session wakes up to write it). Long enough that
/// at codex's pace (50–100 deltas a second) lines fill up to the count above, short enough that
/// a crash loses only seconds of delta counts.
pub(crate) const COALESCE_INTERVAL: Duration = Duration::from_secs(5);
/// How much of the deltas' text one coalesced line keeps.
const COALESCE_TEXT_BYTES: usize = 4096;
/// Items coalesced at once; a hostile server inventing item ids gets its oldest run written.
const MAX_OPEN_RUNS: usize = 64;

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
    /// Streaming deltas of one item, coalesced (an `in` line without `msg`).
    #[serde(default)]
    pub deltas: Option<DeltaRun>,
}

/// Consecutive streaming deltas of one item (`item/agentMessage/delta`,
/// `item/commandExecution/outputDelta`, …), journaled as one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaRun {
    pub method: String,
    #[serde(default)]
    pub thread_id: Option<String>,
    #[serde(default)]
    pub turn_id: Option<String>,
    #[serde(default)]
    pub item_id: Option<String>,
    /// How many deltas the line stands for.
    pub count: u64,
    /// Their lines' length as received, in bytes.
    pub bytes: u64,
    /// When the first and the last of them arrived (Unix milliseconds).
    pub first_ms: u64,
    pub last_ms: u64,
    /// Their `delta` text, concatenated and cut at 4 KiB; `text_bytes` is the whole length.
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub text_bytes: u64,
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
    Ok(parse_lines(&text))
}

/// Reads only the last `max_bytes` of a journal (whatever its size, nothing before them is
/// read): the complete lines among them, leaving out the line cut at the start and a torn last
/// line. For views of a live or finished session that must stay cheap, such as the operator
/// endpoint's recent events.
pub fn read_journal_tail(path: &Path, max_bytes: u64) -> std::io::Result<JournalRead> {
    read_tail(File::open(path)?, max_bytes)
}

/// [`read_journal_tail`] over any seekable reader.
fn read_tail(mut file: impl Read + Seek, max_bytes: u64) -> std::io::Result<JournalRead> {
    let len = file.seek(SeekFrom::End(0))?;
    // One byte before the window tells whether it starts on a line boundary.
    let start = len.saturating_sub(max_bytes.saturating_add(1));
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    // The file may grow while it is read (a live session): never more than the window.
    file.take(len - start).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let text = if start > 0 {
        // The first line is cut (or is the boundary byte itself); everything after the first
        // newline is whole.
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    Ok(parse_lines(text))
}

/// Journal lines parsed, a torn last line left out.
fn parse_lines(text: &str) -> JournalRead {
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
    read
}

/// The open journal of one session.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    writer: BufWriter<File>,
    /// The first write error is logged; later ones are not, so a full disk cannot flood the log.
    failed: bool,
    /// Delta runs not written yet, oldest first.
    runs: Vec<OpenRun>,
    /// Deltas the reader shed (the session was behind), not written yet.
    dropped: Option<OpenDrop>,
}

#[derive(Debug)]
struct OpenRun {
    run: DeltaRun,
    opened: Instant,
}

#[derive(Debug)]
struct OpenDrop {
    count: u64,
    first_ms: u64,
    last_ms: u64,
    opened: Instant,
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
            runs: Vec::new(),
            dropped: None,
        })
    }

    /// A message from the app-server: embedded as received, or, for a streaming delta, added
    /// to its item's coalesced run. An item's run is written before its `item/completed`, and
    /// every run before `turn/completed`.
    pub fn incoming(&mut self, raw: &str, incoming: &Incoming) {
        if let Incoming::Notification { method, params } = incoming {
            if is_delta_method(method) {
                self.delta(method, params, raw.len());
                return;
            }
            match method.as_str() {
                "item/completed" => {
                    let item_id = params.pointer("/item/id").and_then(Value::as_str);
                    if item_id.is_some() {
                        self.settle_item(item_id);
                    }
                }
                "turn/completed" => self.settle_all(),
                _ => {}
            }
        }
        self.message("in", raw);
    }

    /// Adds one delta to its item's run, writing the run once it is full.
    fn delta(&mut self, method: &str, params: &Value, raw_bytes: usize) {
        let now_ms = crate::clock::now_ms();
        let text_of = |name: &str| params.get(name).and_then(Value::as_str);
        let item_id = text_of("itemId");
        let index =
            match self.runs.iter().position(|open| {
                open.run.method == method && open.run.item_id.as_deref() == item_id
            }) {
                Some(index) => index,
                None => {
                    if self.runs.len() >= MAX_OPEN_RUNS {
                        let oldest = self.runs.remove(0);
                        self.write_run(&oldest.run);
                    }
                    self.runs.push(OpenRun {
                        run: DeltaRun {
                            method: method.to_string(),
                            thread_id: text_of("threadId").map(str::to_string),
                            turn_id: text_of("turnId").map(str::to_string),
                            item_id: item_id.map(str::to_string),
                            count: 0,
                            bytes: 0,
                            first_ms: now_ms,
                            last_ms: now_ms,
                            text: String::new(),
                            text_bytes: 0,
                        },
                        opened: Instant::now(),
                    });
                    self.runs.len() - 1
                }
            };
        let open = &mut self.runs[index];
        let run = &mut open.run;
        run.count += 1;
        run.bytes += raw_bytes as u64;
        run.last_ms = now_ms;
        if let Some(text) = text_of("delta") {
            run.text_bytes += text.len() as u64;
            let room = COALESCE_TEXT_BYTES.saturating_sub(run.text.len());
            if room > 0 {
                let mut cut = room.min(text.len());
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                run.text.push_str(&text[..cut]);
            }
        }
        if run.count >= COALESCE_MAX_DELTAS || open.opened.elapsed() >= COALESCE_INTERVAL {
            let full = self.runs.remove(index);
            self.write_run(&full.run);
        }
    }

    /// Counts deltas the reader shed because the session was behind; journaled as one
    /// `deltas_dropped` event per interval.
    pub fn dropped(&mut self, count: u64) {
        let now_ms = crate::clock::now_ms();
        let open = self.dropped.get_or_insert(OpenDrop {
            count: 0,
            first_ms: now_ms,
            last_ms: now_ms,
            opened: Instant::now(),
        });
        open.count += count;
        open.last_ms = now_ms;
    }

    /// When the oldest unwritten run is due, if there is one: the session wakes up then, so a
    /// stream that stops still reaches the disk within a few seconds.
    pub fn next_due(&self) -> Option<Instant> {
        self.runs
            .iter()
            .map(|open| open.opened)
            .chain(self.dropped.as_ref().map(|open| open.opened))
            .min()
            .map(|opened| opened + COALESCE_INTERVAL)
    }

    /// Writes the runs whose interval has passed.
    fn write_due(&mut self) {
        let now = Instant::now();
        let (due, open): (Vec<OpenRun>, Vec<OpenRun>) = std::mem::take(&mut self.runs)
            .into_iter()
            .partition(|open| now >= open.opened + COALESCE_INTERVAL);
        self.runs = open;
        for open in due {
            self.write_run(&open.run);
        }
        if self
            .dropped
            .as_ref()
            .is_some_and(|open| now >= open.opened + COALESCE_INTERVAL)
        {
            self.write_dropped();
        }
    }

    /// Writes the runs of one item.
    fn settle_item(&mut self, item_id: Option<&str>) {
        let (done, open): (Vec<OpenRun>, Vec<OpenRun>) = std::mem::take(&mut self.runs)
            .into_iter()
            .partition(|open| open.run.item_id.as_deref() == item_id);
        self.runs = open;
        for open in done {
            self.write_run(&open.run);
        }
    }

    /// Writes every run and the dropped count.
    pub fn settle_all(&mut self) {
        for open in std::mem::take(&mut self.runs) {
            self.write_run(&open.run);
        }
        self.write_dropped();
    }

    fn write_run(&mut self, run: &DeltaRun) {
        #[derive(Serialize)]
        struct Line<'a> {
            at_ms: u64,
            dir: &'static str,
            deltas: &'a DeltaRun,
        }
        let line = Line {
            at_ms: run.last_ms,
            dir: "in",
            deltas: run,
        };
        let result = serde_json::to_writer(&mut self.writer, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| self.writer.write_all(b"\n"));
        self.check(result);
    }

    fn write_dropped(&mut self) {
        let Some(open) = self.dropped.take() else {
            return;
        };
        let record = serde_json::json!({
            "at_ms": open.last_ms,
            "dir": "local",
            "event": "deltas_dropped",
            "detail": {"count": open.count, "first_ms": open.first_ms, "last_ms": open.last_ms},
        });
        let result = writeln!(self.writer, "{record}");
        self.check(result);
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

    /// Something Maestro observed or decided. Pending delta runs are written first, so a local
    /// event (an interrupt, the outcome) follows the stream it concerns.
    pub fn local(&mut self, event: &str, detail: Value) {
        self.settle_all();
        let record = serde_json::json!({
            "at_ms": crate::clock::now_ms(),
            "dir": "local",
            "event": event,
            "detail": detail,
        });
        let result = writeln!(self.writer, "{record}");
        self.check(result);
    }

    /// Pushes buffered lines (and delta runs that are due) to the file. The session calls this
    /// whenever it is about to wait for the child, so a burst is written in one go and a quiet
    /// session is on disk within a few seconds.
    pub fn flush(&mut self) {
        self.write_due();
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
        self.settle_all();
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

    fn incoming(journal: &mut Journal, raw: &str) {
        let value: Value = serde_json::from_str(raw).unwrap();
        journal.incoming(raw, &super::super::wire::classify(value));
    }

    fn delta(item: &str, text: &str) -> String {
        serde_json::json!({"method": "item/agentMessage/delta", "params": {
            "threadId": "t", "turnId": "u", "itemId": item, "delta": text}})
        .to_string()
    }

    #[test]
    fn deltas_are_coalesced_per_item_and_written_before_the_item_completes() {
        let path = temp_path("deltas");
        {
            let mut journal = Journal::open(&path).unwrap();
            incoming(
                &mut journal,
                r#"{"method":"item/started","params":{"item":{"id":"m1"}}}"#,
            );
            for text in ["Al", "l ", "good"] {
                incoming(&mut journal, &delta("m1", text));
            }
            incoming(&mut journal, &delta("m2", "other"));
            incoming(
                &mut journal,
                r#"{"method":"item/completed","params":{"item":{"id":"m1","text":"All good"}}}"#,
            );
            incoming(&mut journal, r#"{"method":"turn/completed","params":{}}"#);
        }
        let read = read_journal(&path).unwrap();
        let shape: Vec<String> = read
            .entries
            .iter()
            .map(|entry| match (&entry.deltas, entry.method()) {
                (Some(run), _) => {
                    format!("deltas {} x{}", run.item_id.as_deref().unwrap(), run.count)
                }
                (None, Some(method)) => method.to_string(),
                (None, None) => "?".to_string(),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "item/started",
                "deltas m1 x3",
                "item/completed",
                "deltas m2 x1",
                "turn/completed"
            ]
        );
        let run = read.entries[1].deltas.clone().unwrap();
        assert_eq!(run.text, "All good");
        assert_eq!(run.text_bytes, 8);
        assert_eq!(run.thread_id.as_deref(), Some("t"));
        assert_eq!(
            run.bytes,
            ["Al", "l ", "good"]
                .iter()
                .map(|t| delta("m1", t).len() as u64)
                .sum::<u64>()
        );
        assert!(run.first_ms <= run.last_ms);
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn a_run_is_written_when_full_and_its_text_is_capped() {
        let path = temp_path("full");
        let chunk = "é".repeat(100);
        {
            let mut journal = Journal::open(&path).unwrap();
            for _ in 0..COALESCE_MAX_DELTAS + 1 {
                incoming(&mut journal, &delta("m1", &chunk));
            }
            journal.dropped(7);
            journal.local("stopped", Value::Null);
        }
        let read = read_journal(&path).unwrap();
        let runs: Vec<&DeltaRun> = read
            .entries
            .iter()
            .filter_map(|e| e.deltas.as_ref())
            .collect();
        let counts: Vec<u64> = runs.iter().map(|run| run.count).collect();
        assert_eq!(counts, [COALESCE_MAX_DELTAS, 1]);
        assert!(runs[0].text.len() <= COALESCE_TEXT_BYTES);
        assert_eq!(runs[0].text_bytes, COALESCE_MAX_DELTAS * chunk.len() as u64);
        let dropped = read
            .entries
            .iter()
            .find(|e| e.event.as_deref() == Some("deltas_dropped"))
            .unwrap();
        assert_eq!(dropped.detail["count"], 7);
        assert_eq!(
            read.entries.last().unwrap().event.as_deref(),
            Some("stopped")
        );
        let _ = std::fs::remove_dir_all(path.parent().unwrap().parent().unwrap());
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
            incoming(&mut journal, r#"{"method":"turn/started","params":{}}"#);
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

    /// A journal in memory that counts the bytes read from it.
    struct Counting {
        inner: std::io::Cursor<Vec<u8>>,
        read: u64,
    }

    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }

    impl Seek for Counting {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn a_tail_read_reads_only_its_window_and_whole_lines() {
        let line = |n: u64| format!("{{\"at_ms\":{n},\"dir\":\"local\",\"event\":\"e{n}\"}}\n");
        let mut text = "x".repeat(1_000_000);
        text.push('\n');
        for n in 0..100 {
            text.push_str(&line(n));
        }
        let window = 10 * line(99).len() as u64 + 5;
        let mut counting = Counting {
            inner: std::io::Cursor::new(text.clone().into_bytes()),
            read: 0,
        };
        let read = read_tail(&mut counting, window).unwrap();
        assert!(counting.read <= window + 1, "read {} bytes", counting.read);
        // Ten whole lines fit; the eleventh, cut at the window's start, is left out.
        let events: Vec<u64> = read.entries.iter().map(|entry| entry.at_ms).collect();
        assert_eq!(events, (90..100).collect::<Vec<_>>());
        assert_eq!(read.skipped_lines, 0);

        // A window starting exactly on a line boundary keeps that line.
        let exact = 10 * line(99).len() as u64;
        let read = read_tail(std::io::Cursor::new(text.clone().into_bytes()), exact).unwrap();
        assert_eq!(read.entries.len(), 10);
        // A window larger than the file reads it all (the long first line is not JSON).
        let read = read_tail(std::io::Cursor::new(text.into_bytes()), u64::MAX).unwrap();
        assert_eq!((read.entries.len(), read.skipped_lines), (100, 1));
    }
}
