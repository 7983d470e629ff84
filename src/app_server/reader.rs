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

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use serde_json::Value;

use super::tools::ToolResult;

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
    /// A dynamic tool call finished on its worker thread.
    ToolDone {
        request_id: Value,
        call_id: String,
        result: ToolResult,
    },
}

/// stdout lines, framed but not parsed: their bytes back to back, and where each one is.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub bytes: Vec<u8>,
    pub spans: Vec<Span>,
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

/// Starts the stdout reader thread.
pub(crate) fn spawn_stdout(
    input: impl Read + Send + 'static,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("app-server-stdout".into())
        .spawn(move || read_stdout(input, &events))
}

/// Starts the stderr reader thread.
pub(crate) fn spawn_stderr(
    input: impl Read + Send + 'static,
    events: Sender<Event>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("app-server-stderr".into())
        .spawn(move || read_stderr(input, &events))
}

pub(crate) fn read_stdout(input: impl Read, events: &Sender<Event>) {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, input);
    let mut sink = StdoutSink {
        events,
        batch: Batch::with_capacity(),
    };
    let result = frame_lines(&mut reader, MAX_LINE_BYTES, &mut sink);
    let error = result.err().map(|error| error.to_string());
    if sink.send() {
        let _ = events.send(Event::StdoutClosed { error });
    }
}

/// Batches stdout lines for the channel.
struct StdoutSink<'a> {
    events: &'a Sender<Event>,
    batch: Batch,
}

impl StdoutSink<'_> {
    /// Sends the batch, if any; false once the session is gone.
    fn send(&mut self) -> bool {
        if self.batch.spans.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut self.batch, Batch::with_capacity());
        self.events.send(Event::Stdout(batch)).is_ok()
    }
}

impl Batch {
    /// Sized for one read buffer's worth of lines, so filling it rarely reallocates.
    fn with_capacity() -> Batch {
        Batch {
            bytes: Vec::with_capacity(READ_BUFFER_BYTES),
            spans: Vec::with_capacity(MAX_BATCH_LINES),
        }
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
        !full || self.send()
    }

    /// About to block on the pipe: hand over what is complete first, so nothing waits.
    fn before_wait(&mut self) -> bool {
        self.send()
    }
}

pub(crate) fn read_stderr(input: impl Read, events: &Sender<Event>) {
    let mut reader = BufReader::new(input);
    let _ = frame_lines(&mut reader, MAX_STDERR_LINE_BYTES, &mut StderrSink(events));
    let _ = events.send(Event::StderrClosed);
}

/// Sends each stderr line as it comes (they are few; no batching needed).
struct StderrSink<'a>(&'a Sender<Event>);

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
        let (events, received) = std::sync::mpsc::channel();
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
