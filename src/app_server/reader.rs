//! The reader threads: stdout framed into lines, stderr drained into lines.
//!
//! Each pipe gets its own thread so the child can never block on a full pipe while the session
//! is busy elsewhere (the reason ripgrep reads a child's stderr on its own thread). Both threads
//! only frame, then send an [`Event`] down the session's channel; they keep no state the
//! session needs and never write to the child.
//!
//! stdout lines travel in batches: every line already buffered when the next read would block
//! goes in one [`Batch`] (one allocation, one wake-up of the session). Parsing happens on the
//! session thread: a parsed `Value` is dozens of small allocations, and freeing them on a
//! different thread than the one that made them costs more in allocator lock traffic than
//! parsing in parallel saves (measured with `examples/bench_reader.rs`).
//!
//! The channel is bounded ([`CHANNEL_CAPACITY`] events), so memory stays flat whatever the child
//! writes: when the session falls behind, a reader waits for room (backpressure reaches the
//! child through its pipe). The one exception is streaming deltas (`item/…/delta`): a batch
//! that still finds the channel full after a few milliseconds sheds them and counts them
//! ([`Batch::dropped_deltas`]), so a flood of deltas never delays the requests and completions
//! behind it. Everything else is delivered, in order.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;

use serde_json::Value;

/// The longest stdout line accepted (10 MiB). A longer line is skipped whole and reported as
/// [`Span::Oversized`]; reading resumes at the next newline.
pub const MAX_LINE_BYTES: usize = 10 * 1024 * 1024;

/// stderr lines are for diagnostics only; a runaway line is cut here.
const MAX_STDERR_LINE_BYTES: usize = 64 * 1024;

/// How much of a non-JSON stdout line is kept for the journal and logs.
pub(crate) const GARBAGE_KEEP_BYTES: usize = 4096;

/// The stdout read buffer: the pipe's default capacity.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A batch is sent once it holds this many lines or bytes, so a flood still streams.
const MAX_BATCH_LINES: usize = 256;
const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Events the session's channel holds before a sender waits. With batches of at most 1 MiB
/// (one line of up to [`MAX_LINE_BYTES`]) this bounds what a reader can queue up.
pub(crate) const CHANNEL_CAPACITY: usize = 8;

/// A batch that finds the channel full retries this many times, this far apart, before its
/// deltas are shed.
const SHED_AFTER_TRIES: u32 = 10;
const SHED_AFTER_PAUSE: std::time::Duration = std::time::Duration::from_micros(500);

/// How far into a line a delta's `"method"` is looked for (codex writes it first).
const METHOD_SCAN_BYTES: usize = 256;

/// What the session's channel carries.
#[derive(Debug)]
pub(crate) enum Event {
    /// Complete stdout lines, in order.
    Stdout(Batch),
    /// stdout reached end of file (the child exited or closed it).
    StdoutClosed {
        error: Option<String>,
    },
    /// One stderr line, ANSI escapes removed.
    Stderr(String),
    StderrClosed,
    /// A tool worker finished a call: its result waits in the session's result queue. Sent
    /// with `try_send`; a full channel means the session is awake anyway.
    ToolWake,
}

/// stdout lines, framed but not parsed: their bytes back to back, and where each one is.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub spans: Vec<Span>,
    /// Streaming deltas shed before these lines because the session was behind.
    pub dropped_deltas: u64,
}

/// One stdout line in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Span {
    /// The line's bytes, without the newline.
    Text(Range<usize>),
    /// A line longer than [`MAX_LINE_BYTES`], skipped; its length.
    Oversized(usize),
}

/// A stdout line after parsing.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// One JSON value, with the line itself for the journal.
    Message { raw: &'a str, value: Value },
    /// Not JSON (or not UTF-8): recorded, never fatal. `text` is cut to 4 KiB.
    Garbage { text: String, bytes: usize },
}

/// Parses one stdout line into a message or a garbage record.
pub(crate) fn parse_line(line: &[u8]) -> Parsed<'_> {
    let garbage = || Parsed::Garbage {
        text: String::from_utf8_lossy(&line[..line.len().min(GARBAGE_KEEP_BYTES)]).into_owned(),
        bytes: line.len(),
    };
    match std::str::from_utf8(line) {
        Ok(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(value) => Parsed::Message { raw, value },
            Err(_) => garbage(),
        },
        Err(_) => garbage(),
    }
}

/// Whether `method` is a streaming delta: coalesced in the journal, and the only kind of line
/// shed when the session falls behind.
pub(crate) fn is_delta_method(method: &str) -> bool {
    method.starts_with("item/") && (method.ends_with("/delta") || method.ends_with("Delta"))
}

/// Whether a raw stdout line is a streaming-delta notification, judged without parsing: the
/// object's own `"method"` member (at nesting depth one, within its first 256 bytes) names a
/// delta, and it has no `"id"` before it. Anything unsure is not a delta and is never shed.
pub(crate) fn is_delta_line(line: &[u8]) -> bool {
    delta_line(&line[..line.len().min(METHOD_SCAN_BYTES)]).unwrap_or(false)
}

fn delta_line(line: &[u8]) -> Option<bool> {
    let mut depth = 0usize;
    let mut index = 0;
    while index < line.len() {
        match line[index] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let (text, end) = string_at(line, index)?;
                index = end;
                if depth == 1 && followed_by_colon(line, &mut index) {
                    match text {
                        b"id" => return Some(false),
                        b"method" => {
                            let start = skip_spaces(line, index);
                            if line.get(start) != Some(&b'"') {
                                return Some(false);
                            }
                            let (value, _) = string_at(line, start)?;
                            return Some(std::str::from_utf8(value).is_ok_and(is_delta_method));
                        }
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        index += 1;
    }
    Some(false)
}

/// The string starting at the quote at `start`: its raw bytes and the index after its closing
/// quote. `None` when it does not end within `line`.
fn string_at(line: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let mut index = start + 1;
    while index < line.len() {
        match line[index] {
            b'\\' => index += 2,
            b'"' => return Some((&line[start + 1..index], index + 1)),
            _ => index += 1,
        }
    }
    None
}

fn skip_spaces(line: &[u8], mut index: usize) -> usize {
    while line.get(index).is_some_and(u8::is_ascii_whitespace) {
        index += 1;
    }
    index
}

/// Whether a `:` follows (after spaces); moves `index` past it when it does.
fn followed_by_colon(line: &[u8], index: &mut usize) -> bool {
    let at = skip_spaces(line, *index);
    if line.get(at) == Some(&b':') {
        *index = at + 1;
        true
    } else {
        false
    }
}

/// Starts the stdout reader thread.
pub(crate) fn spawn_stdout(
    input: impl Read + Send + 'static,
    events: SyncSender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("app-server-stdout".into())
        .spawn(move || read_stdout(input, &events))
}

/// Starts the stderr reader thread.
pub(crate) fn spawn_stderr(
    input: impl Read + Send + 'static,
    events: SyncSender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("app-server-stderr".into())
        .spawn(move || read_stderr(input, &events))
}

pub(crate) fn read_stdout(input: impl Read, events: &SyncSender<Event>) {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let mut sink = StdoutSink {
        events,
        batch: Batch::with_capacity(),
        dropped: 0,
    };
    let result = frame_lines(&mut reader, MAX_LINE_BYTES, &mut sink);
    let error = result.err().map(|error| error.to_string());
    if sink.send(true) {
        let _ = events.send(Event::StdoutClosed { error });
    }
}

/// Batches stdout lines for the channel.
struct StdoutSink<'a> {
    events: &'a SyncSender<Event>,
    batch: Batch,
    /// Deltas shed and not yet reported to the session.
    dropped: u64,
}

impl StdoutSink<'_> {
    /// Hands the batch to the session; false once the session is gone. When the channel is
    /// full the batch's deltas are shed (counted) and the rest waits for room; a batch of
    /// nothing but deltas is then dropped without waiting, unless `report` asks for the count
    /// to be delivered now (the reader is about to block on the pipe anyway).
    fn send(&mut self, report: bool) -> bool {
        if self.batch.spans.is_empty() && (self.dropped == 0 || !report) {
            return true;
        }
        let mut batch = std::mem::replace(&mut self.batch, Batch::with_capacity());
        batch.dropped_deltas = std::mem::take(&mut self.dropped);
        let mut event = Event::Stdout(batch);
        // A session that is only briefly busy (a journal write, a tool result) gets a few
        // milliseconds before anything is shed; a flood outlasts them.
        for attempt in 0..=SHED_AFTER_TRIES {
            event = match self.events.try_send(event) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(event)) => event,
            };
            if attempt < SHED_AFTER_TRIES {
                std::thread::sleep(SHED_AFTER_PAUSE);
            }
        }
        let Event::Stdout(mut batch) = event else {
            // Only stdout batches are sent here.
            return true;
        };
        batch.dropped_deltas += batch.shed_deltas();
        if batch.spans.is_empty() && !report {
            self.dropped = batch.dropped_deltas;
            batch.dropped_deltas = 0;
            self.batch = batch;
            return true;
        }
        self.events.send(Event::Stdout(batch)).is_ok()
    }
}

impl Batch {
    /// Sized for one read buffer's worth of lines, so filling it rarely reallocates.
    fn with_capacity() -> Batch {
        Batch {
            bytes: Vec::with_capacity(READ_BUFFER_BYTES),
            spans: Vec::with_capacity(MAX_BATCH_LINES),
            dropped_deltas: 0,
        }
    }

    /// Removes the streaming-delta lines (their spans; the bytes stay until the batch is
    /// reused) and returns how many there were.
    fn shed_deltas(&mut self) -> u64 {
        let before = self.spans.len();
        let bytes = &self.bytes;
        self.spans.retain(|span| match span {
            Span::Text(range) => !is_delta_line(&bytes[range.clone()]),
            Span::Oversized(_) => true,
        });
        if self.spans.is_empty() {
            self.bytes.clear();
        }
        (before - self.spans.len()) as u64
    }
}

impl FrameSink for StdoutSink<'_> {
    fn frame(&mut self, frame: Frame<'_>) -> bool {
        let span = match frame {
            Frame::Line(line) => {
                let start = self.batch.bytes.len();
                self.batch.bytes.extend_from_slice(line);
                Span::Text(start..self.batch.bytes.len())
            }
            Frame::Oversized(bytes) => Span::Oversized(bytes),
        };
        self.batch.spans.push(span);
        let full =
            self.batch.spans.len() >= MAX_BATCH_LINES || self.batch.bytes.len() >= MAX_BATCH_BYTES;
        !full || self.send(false)
    }

    /// About to block on the pipe: hand over what is complete first, so nothing waits.
    fn before_wait(&mut self) -> bool {
        self.send(true)
    }
}

pub(crate) fn read_stderr(input: impl Read, events: &SyncSender<Event>) {
    let mut reader = BufReader::new(input);
    let _ = frame_lines(&mut reader, MAX_STDERR_LINE_BYTES, &mut StderrSink(events));
    let _ = events.send(Event::StderrClosed);
}

/// Sends each stderr line as it comes (they are few; no batching needed).
struct StderrSink<'a>(&'a SyncSender<Event>);

impl FrameSink for StderrSink<'_> {
    fn frame(&mut self, frame: Frame<'_>) -> bool {
        let line = match frame {
            Frame::Line(line) => strip_ansi(&String::from_utf8_lossy(line)),
            Frame::Oversized(bytes) => format!("[stderr line of {bytes} bytes skipped]"),
        };
        self.0.send(Event::Stderr(line)).is_ok()
    }
}

/// One unit of newline framing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A complete line without its `\n` (or `\r\n`); never blank.
    Line(&'a [u8]),
    /// A line longer than the limit, with its full length; its bytes were discarded.
    Oversized(usize),
}

/// Where [`frame_lines`] delivers lines. Returning false from either method stops reading.
pub(crate) trait FrameSink {
    fn frame(&mut self, frame: Frame<'_>) -> bool;

    /// Called whenever the buffer is empty and the next read may block.
    fn before_wait(&mut self) -> bool {
        true
    }
}

/// A line that spans reads is assembled in a buffer; one that grew this large is not kept
/// around for the next line.
const KEEP_PARTIAL_CAPACITY: usize = 1024 * 1024;

/// Splits `reader` into lines of at most `max` bytes for `sink`, until the sink says stop or
/// the input ends. A line inside the read buffer is handed over without a copy. An over-long
/// line is never buffered whole: once it passes `max` its bytes are counted and dropped until
/// the next newline, so a hostile child cannot make Maestro allocate more than `max` bytes
/// per line.
pub(crate) fn frame_lines<R: Read>(
    reader: &mut BufReader<R>,
    max: usize,
    sink: &mut dyn FrameSink,
) -> std::io::Result<()> {
    let mut partial: Vec<u8> = Vec::new();
    let mut skipping: Option<usize> = None;
    loop {
        if reader.buffer().is_empty() && !sink.before_wait() {
            return Ok(());
        }
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            // End of file: a final line without a newline still counts.
            if let Some(bytes) = skipping {
                sink.frame(Frame::Oversized(bytes));
            } else if let Some(line) = content(&partial) {
                sink.frame(Frame::Line(line));
            }
            return Ok(());
        }
        let Some(newline) = available.iter().position(|&byte| byte == b'\n') else {
            let n = available.len();
            if let Some(bytes) = skipping.as_mut() {
                *bytes += n;
            } else if partial.len() + n > max {
                skipping = Some(partial.len() + n);
                partial = Vec::new();
            } else {
                partial.extend_from_slice(available);
            }
            reader.consume(n);
            continue;
        };
        let keep_going = if let Some(bytes) = skipping.take() {
            sink.frame(Frame::Oversized(bytes + newline))
        } else if partial.len() + newline > max {
            let bytes = partial.len() + newline;
            partial.clear();
            sink.frame(Frame::Oversized(bytes))
        } else if partial.is_empty() {
            content(&available[..newline]).is_none_or(|line| sink.frame(Frame::Line(line)))
        } else {
            partial.extend_from_slice(&available[..newline]);
            let keep_going = content(&partial).is_none_or(|line| sink.frame(Frame::Line(line)));
            if partial.capacity() > KEEP_PARTIAL_CAPACITY {
                partial = Vec::new();
            } else {
                partial.clear();
            }
            keep_going
        };
        reader.consume(newline + 1);
        if !keep_going {
            return Ok(());
        }
    }
}

/// A complete line minus a trailing `\r`; `None` for a blank line, which carries nothing.
fn content(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(line)
    }
}

/// Removes ANSI escape sequences (codex colours its tracing output even into a pipe).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch != '\u{1b}' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
            // OSC: until BEL or ST (ESC \).
            Some(']') => {
                while let Some(next) = chars.next() {
                    if next == '\u{7}' {
                        break;
                    }
                    if next == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            // Character-set designation: one more character.
            Some('(' | ')' | '*' | '+' | '-' | '.' | '/') => {
                chars.next();
            }
            // Any other escape is two characters long.
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Collects frames; stops after `limit` of them.
    struct Collect {
        frames: Vec<Owned>,
        limit: usize,
        waits: usize,
    }

    impl FrameSink for Collect {
        fn frame(&mut self, frame: Frame<'_>) -> bool {
            self.frames.push(match frame {
                Frame::Line(line) => Owned::Line(String::from_utf8(line.to_vec()).unwrap()),
                Frame::Oversized(bytes) => Owned::Oversized(bytes),
            });
            self.frames.len() < self.limit
        }

        fn before_wait(&mut self) -> bool {
            self.waits += 1;
            true
        }
    }

    fn collect(input: &[u8], max: usize, capacity: usize, limit: usize) -> Collect {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut sink = Collect {
            frames: Vec::new(),
            limit,
            waits: 0,
        };
        frame_lines(&mut reader, max, &mut sink).unwrap();
        sink
    }

    #[derive(Debug, PartialEq)]
    enum Owned {
        Line(String),
        Oversized(usize),
    }

    fn frames(input: &[u8], max: usize, capacity: usize) -> Vec<Owned> {
        collect(input, max, capacity, usize::MAX).frames
    }

    fn line(text: &str) -> Owned {
        Owned::Line(text.into())
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        for capacity in [1, 2, 3, 7, 64] {
            let got = frames(b"{\"a\":1}\r\n\n  \n{\"b\":2}\nlast", 100, capacity);
            assert_eq!(
                got,
                vec![line("{\"a\":1}"), line("{\"b\":2}"), line("last")],
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn oversized_line_is_skipped_and_reading_resynchronises() {
        for capacity in [1, 4, 64] {
            let got = frames(b"short\n0123456789ABC\nok\n0123456789", 10, capacity);
            assert_eq!(
                got,
                vec![
                    line("short"),
                    Owned::Oversized(13),
                    line("ok"),
                    line("0123456789"),
                ],
                "capacity {capacity}"
            );
        }
        assert_eq!(frames(b"01234567890", 10, 4), vec![Owned::Oversized(11)]);
    }

    #[test]
    fn sink_returning_false_stops_reading() {
        assert_eq!(collect(b"a\nb\nc\n", 10, 64, 1).frames, vec![line("a")]);
    }

    #[test]
    fn the_sink_hears_before_every_read_that_may_block() {
        // One read fills the buffer with all three lines, one more finds the end of input.
        assert_eq!(collect(b"a\nb\nc\n", 10, 64, usize::MAX).waits, 2);
        assert_eq!(collect(b"a\nb\nc\n", 10, 2, usize::MAX).waits, 4);
    }

    #[test]
    fn lines_become_messages_or_garbage() {
        match parse_line(b"{\"method\":\"x\"}") {
            Parsed::Message { raw, value } => {
                assert_eq!(raw, "{\"method\":\"x\"}");
                assert_eq!(value["method"], "x");
            }
            other => panic!("{other:?}"),
        }
        let long = vec![b'z'; GARBAGE_KEEP_BYTES + 10];
        match parse_line(&long) {
            Parsed::Garbage { text, bytes } => {
                assert_eq!(bytes, GARBAGE_KEEP_BYTES + 10);
                assert_eq!(text.len(), GARBAGE_KEEP_BYTES);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdout_lines_arrive_in_batches_then_end_of_file() {
        let (events, received) = std::sync::mpsc::sync_channel(CHANNEL_CAPACITY);
        let input = b"{\"a\":1}\r\n\nnot json\n{\"b\":2}".to_vec();
        read_stdout(std::io::Cursor::new(input), &events);
        let mut lines: Vec<Vec<u8>> = Vec::new();
        loop {
            match received.try_recv() {
                Ok(Event::Stdout(batch)) => {
                    for span in &batch.spans {
                        match span {
                            Span::Text(range) => lines.push(batch.bytes[range.clone()].to_vec()),
                            Span::Oversized(_) => panic!("{span:?}"),
                        }
                    }
                }
                Ok(Event::StdoutClosed { error: None }) => break,
                other => panic!("{other:?}"),
            }
        }
        // The unterminated last line is complete at end of file.
        assert_eq!(lines, [&b"{\"a\":1}"[..], b"not json", b"{\"b\":2}"]);
        assert!(received.try_recv().is_err(), "nothing after end of file");
    }

    #[test]
    fn delta_lines_are_recognised_without_parsing() {
        let delta = br#"{"method":"item/agentMessage/delta","params":{"itemId":"m","delta":"x"}}"#;
        assert!(is_delta_line(delta));
        assert!(is_delta_line(
            br#"{"emittedAtMs":0, "method" : "item/commandExecution/outputDelta","params":{}}"#
        ));
        for not_delta in [
            &br#"{"method":"item/completed","params":{"item":{"type":"agentMessage"}}}"#[..],
            br#"{"id":3,"method":"item/agentMessage/delta"}"#,
            br#"{"params":{"method":"item/agentMessage/delta"},"method":"item/tool/call","id":1}"#,
            br#"{"params":{"x":""method":"item/a/delta""},"method":"turn/completed"}"#,
            br#"not json "method":"item/a/delta""#,
            br#"{"method":"item/agentMessage/del"#,
        ] {
            assert!(
                !is_delta_line(not_delta),
                "{}",
                String::from_utf8_lossy(not_delta)
            );
        }
        // Past the first 256 bytes a line is never judged a delta.
        let late = format!(
            r#"{{"a":"{}","method":"item/agentMessage/delta"}}"#,
            "z".repeat(300)
        );
        assert!(!is_delta_line(late.as_bytes()));
    }

    #[test]
    fn a_batch_of_deltas_that_finds_the_channel_full_is_counted_not_queued() {
        let (events, received) = std::sync::mpsc::sync_channel(1);
        events.send(Event::StderrClosed).unwrap();
        let mut sink = StdoutSink {
            events: &events,
            batch: Batch::with_capacity(),
            dropped: 0,
        };
        let delta = br#"{"method":"item/agentMessage/delta","params":{"delta":"x"}}"#;
        for _ in 0..MAX_BATCH_LINES {
            // The last frame fills the batch; sending it sheds every line without waiting.
            assert!(sink.frame(Frame::Line(delta)));
        }
        assert_eq!(sink.dropped, MAX_BATCH_LINES as u64);
        assert!(sink.batch.spans.is_empty() && sink.batch.bytes.is_empty());
        assert!(matches!(received.try_recv(), Ok(Event::StderrClosed)));
        // About to wait on the pipe: the count is delivered.
        assert!(sink.before_wait());
        match received.try_recv() {
            Ok(Event::Stdout(batch)) => {
                assert!(batch.spans.is_empty());
                assert_eq!(batch.dropped_deltas, MAX_BATCH_LINES as u64);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_slow_session_gets_every_other_line_in_order_and_every_delta_or_its_count() {
        let (events, received) = std::sync::mpsc::sync_channel(1);
        let delta = r#"{"method":"item/agentMessage/delta","params":{"delta":"x"}}"#;
        let mut input = String::new();
        for n in 0..(3 * MAX_BATCH_LINES) {
            input.push_str(delta);
            input.push('\n');
            if n % 100 == 0 {
                input.push_str(&format!(
                    "{{\"method\":\"keep\",\"params\":{{\"n\":{n}}}}}\n"
                ));
            }
        }
        let reader = std::thread::spawn(move || read_stdout(std::io::Cursor::new(input), &events));
        let mut kept = Vec::new();
        let mut deltas = 0u64;
        let mut dropped = 0u64;
        // Bounded by the input: the reader ends with StdoutClosed.
        for event in received.iter() {
            match event {
                Event::Stdout(batch) => {
                    dropped += batch.dropped_deltas;
                    for span in &batch.spans {
                        let Span::Text(range) = span else {
                            panic!("{span:?}")
                        };
                        let line = &batch.bytes[range.clone()];
                        if is_delta_line(line) {
                            deltas += 1;
                        } else {
                            kept.push(String::from_utf8(line.to_vec()).unwrap());
                        }
                    }
                }
                Event::StdoutClosed { .. } => break,
                other => panic!("{other:?}"),
            }
        }
        reader.join().unwrap();
        // Every other line arrives, in order; every delta arrives or is counted.
        let expected: Vec<String> = (0..(3 * MAX_BATCH_LINES))
            .step_by(100)
            .map(|n| format!("{{\"method\":\"keep\",\"params\":{{\"n\":{n}}}}}"))
            .collect();
        assert_eq!(kept, expected);
        assert_eq!(deltas + dropped, 3 * MAX_BATCH_LINES as u64);
    }

    #[test]
    fn ansi_sequences_are_removed() {
        let coloured =
            "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m codex: boom";
        assert_eq!(
            strip_ansi(coloured),
            "2026-01-01T00:00:00Z ERROR codex: boom"
        );
        assert_eq!(strip_ansi("\u{1b}]0;title\u{7}plain"), "plain");
        assert_eq!(strip_ansi("\u{1b}]8;;x\u{1b}\\link"), "link");
        assert_eq!(strip_ansi("a\u{1b}(Bb\u{1b}7c"), "abc");
        assert_eq!(strip_ansi("no escapes"), "no escapes");
    }
}
