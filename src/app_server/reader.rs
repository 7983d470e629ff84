//! The reader threads: stdout framed into JSON messages, stderr drained into lines.
//!
//! Each pipe gets its own thread so the child can never block on a full pipe while the session
//! is busy elsewhere (the reason ripgrep reads a child's stderr on its own thread). Both threads
//! only frame and parse, then send an [`Event`] down the session's channel; they keep no state
//! the session needs and never write to the child.

use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use serde_json::Value;

use super::tools::ToolResult;

/// The longest stdout line accepted (10 MiB). A longer line is skipped whole and reported as
/// [`Event::Oversized`]; reading resumes at the next newline.
pub const MAX_LINE_BYTES: usize = 10 * 1024 * 1024;

/// stderr lines are for diagnostics only; a runaway line is cut here.
const MAX_STDERR_LINE_BYTES: usize = 64 * 1024;

/// How much of a non-JSON stdout line is kept for the journal and logs.
pub(crate) const GARBAGE_KEEP_BYTES: usize = 4096;

/// What the session's channel carries.
#[derive(Debug)]
pub(crate) enum Event {
    /// One JSON value from one stdout line, with the line itself for the journal.
    Message {
        raw: String,
        value: Value,
    },
    /// A stdout line that is not JSON: recorded, never fatal.
    Garbage {
        text: String,
        bytes: usize,
    },
    /// A stdout line longer than [`MAX_LINE_BYTES`], skipped.
    Oversized {
        bytes: usize,
    },
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
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let result = frame_lines(&mut reader, MAX_LINE_BYTES, &mut |frame| {
        let event = match frame {
            Frame::Line(line) => parse_line(line),
            Frame::Oversized(bytes) => Event::Oversized { bytes },
        };
        events.send(event).is_ok()
    });
    let error = result.err().map(|error| error.to_string());
    let _ = events.send(Event::StdoutClosed { error });
}

fn read_stderr(input: impl Read, events: &Sender<Event>) {
    let mut reader = BufReader::new(input);
    let _ = frame_lines(&mut reader, MAX_STDERR_LINE_BYTES, &mut |frame| {
        let line = match frame {
            Frame::Line(line) => strip_ansi(&String::from_utf8_lossy(&line)),
            Frame::Oversized(bytes) => format!("[stderr line of {bytes} bytes skipped]"),
        };
        events.send(Event::Stderr(line)).is_ok()
    });
    let _ = events.send(Event::StderrClosed);
}

/// Turns one framed stdout line into a message or a garbage record.
fn parse_line(line: Vec<u8>) -> Event {
    match serde_json::from_slice::<Value>(&line) {
        Ok(value) => {
            let raw = String::from_utf8(line)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
            Event::Message { raw, value }
        }
        Err(_) => {
            let bytes = line.len();
            let keep = &line[..bytes.min(GARBAGE_KEEP_BYTES)];
            Event::Garbage {
                text: String::from_utf8_lossy(keep).into_owned(),
                bytes,
            }
        }
    }
}

/// One unit of newline framing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A complete line without its `\n` (or `\r\n`); never empty.
    Line(Vec<u8>),
    /// A line longer than the limit, with its full length; its bytes were discarded.
    Oversized(usize),
}

/// Splits `reader` into lines of at most `max` bytes, calling `sink` for each until it returns
/// false or the input ends. An over-long line is never buffered whole: once it passes `max`
/// its bytes are counted and dropped until the next newline, so a hostile child cannot make
/// Maestro allocate more than `max` bytes per line.
pub(crate) fn frame_lines(
    reader: &mut impl BufRead,
    max: usize,
    sink: &mut dyn FnMut(Frame) -> bool,
) -> std::io::Result<()> {
    let mut line: Vec<u8> = Vec::new();
    let mut skipping: Option<usize> = None;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            // End of file: a final line without a newline still counts.
            if let Some(bytes) = skipping {
                sink(Frame::Oversized(bytes));
            } else if let Some(frame) = finish_line(std::mem::take(&mut line)) {
                sink(frame);
            }
            return Ok(());
        }
        let newline = available.iter().position(|&byte| byte == b'\n');
        let chunk_len = newline.unwrap_or(available.len());
        let chunk = &available[..chunk_len];
        if let Some(bytes) = skipping.as_mut() {
            *bytes += chunk_len;
        } else if line.len() + chunk_len > max {
            skipping = Some(line.len() + chunk_len);
            line = Vec::new();
        } else {
            line.extend_from_slice(chunk);
        }
        let consumed = chunk_len + usize::from(newline.is_some());
        reader.consume(consumed);
        if newline.is_some() {
            let frame = match skipping.take() {
                Some(bytes) => Some(Frame::Oversized(bytes)),
                None => finish_line(std::mem::take(&mut line)),
            };
            if let Some(frame) = frame {
                if !sink(frame) {
                    return Ok(());
                }
            }
        }
    }
}

/// A complete line minus a trailing `\r`; blank lines carry nothing and are dropped.
fn finish_line(mut line: Vec<u8>) -> Option<Frame> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(Frame::Line(line))
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

    fn frames(input: &[u8], max: usize, capacity: usize) -> Vec<Frame> {
        let mut reader = BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        frame_lines(&mut reader, max, &mut |frame| {
            out.push(frame);
            true
        })
        .unwrap();
        out
    }

    fn line(text: &str) -> Frame {
        Frame::Line(text.as_bytes().to_vec())
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
                    Frame::Oversized(13),
                    line("ok"),
                    line("0123456789"),
                ],
                "capacity {capacity}"
            );
        }
        assert_eq!(frames(b"01234567890", 10, 4), vec![Frame::Oversized(11)]);
    }

    #[test]
    fn sink_returning_false_stops_reading() {
        let mut reader = BufReader::new(&b"a\nb\nc\n"[..]);
        let mut seen = 0;
        frame_lines(&mut reader, 10, &mut |_| {
            seen += 1;
            false
        })
        .unwrap();
        assert_eq!(seen, 1);
    }

    #[test]
    fn lines_become_messages_or_garbage() {
        match parse_line(b"{\"method\":\"x\"}".to_vec()) {
            Event::Message { raw, value } => {
                assert_eq!(raw, "{\"method\":\"x\"}");
                assert_eq!(value["method"], "x");
            }
            other => panic!("{other:?}"),
        }
        let long = vec![b'z'; GARBAGE_KEEP_BYTES + 10];
        match parse_line(long) {
            Event::Garbage { text, bytes } => {
                assert_eq!(bytes, GARBAGE_KEEP_BYTES + 10);
                assert_eq!(text.len(), GARBAGE_KEEP_BYTES);
            }
            other => panic!("{other:?}"),
        }
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
