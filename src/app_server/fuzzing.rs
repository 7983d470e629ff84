//! A socket-free, child-free entry point for the fuzz harness in `fuzz/` (`app_server_reader`).
//!
//! Feeds arbitrary bytes through the same framing, parsing, classification and accounting a
//! session applies to codex's stdout, and through the stderr drain, and reports what came out
//! so the harness can check it against a model of the framing rules. It spawns nothing, writes
//! no journal and sends nothing; replies to server requests are built with the same policy and
//! wire functions the turn loop uses and returned as text instead of written to a pipe.
//! Not part of the public API: `#[doc(hidden)]` and subject to change with the harness.

use std::io::BufReader;
use std::sync::mpsc;

use serde_json::Value;

use super::accounting::Accounting;
use super::link;
use super::policy::{self, Answer};
use super::reader::{self, Event, Frame, FrameSink, Parsed, Span};
use super::tools::{self, ToolResult};
use super::wire::{self, Incoming};

/// What happened to one framed stdout line.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Longer than the limit: skipped, with its length in bytes (newline excluded).
    Oversized(usize),
    /// Not JSON or not UTF-8. `kept` is what the journal and logs would show.
    Garbage { bytes: Vec<u8>, kept: String },
    /// One JSON value and how the session classified it.
    Message { bytes: Vec<u8>, kind: Kind },
}

/// The classification of one JSON message, with the reply Maestro would send to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Request {
        id: Value,
        method: String,
        /// The exact line the turn loop would write back (without its newline).
        reply: String,
        /// The policy-violation summary, when the request asked for a human.
        summary: Option<String>,
    },
    Response {
        id: Value,
    },
    ErrorResponse {
        id: Value,
        code: i64,
        message: String,
    },
    Notification {
        method: String,
    },
    Unrecognised,
}

/// Everything the reader side made of one input.
#[derive(Debug, Default)]
pub struct Trace {
    /// `frame_lines` with the given limit and read-buffer capacity, each line parsed and
    /// classified.
    pub lines: Vec<Line>,
    /// The real stdout thread body (batching, [`super::MAX_LINE_BYTES`]), flattened: `Ok`
    /// for a line's bytes, `Err` for an oversized line's length.
    pub stdout: Vec<Result<Vec<u8>, usize>>,
    /// Whether the stdout reader reported end of file, with no error.
    pub stdout_closed: bool,
    /// Whether a stdout batch arrived after end of file (it never should).
    pub stdout_after_close: bool,
    /// The real stderr thread body: one string per line, escapes removed.
    pub stderr: Vec<String>,
    /// Accounting after every message was absorbed.
    pub accounting: Accounting,
}

/// Runs `input` through the reader with a `max_line_bytes` limit and a `read_capacity`-byte
/// read buffer (both at least 1), then through the real stdout and stderr reader bodies.
#[doc(hidden)]
pub fn read(input: &[u8], max_line_bytes: usize, read_capacity: usize) -> Trace {
    let mut sink = Collect {
        lines: Vec::new(),
        accounting: Accounting::default(),
    };
    let mut buffered = BufReader::with_capacity(read_capacity.max(1), input);
    // Reading a slice cannot fail.
    let _ = reader::frame_lines(&mut buffered, max_line_bytes.max(1), &mut sink);

    // Room for every event the input can make (each line has at least one byte, plus the two
    // end-of-file events), so the readers never wait and never shed a delta here: the trace is
    // the framing contract, not the session's pace.
    let (events_tx, events) = mpsc::sync_channel(2 * input.len() + 4);
    reader::read_stdout(input, &events_tx);
    reader::read_stderr(input, &events_tx);
    drop(events_tx);
    let mut trace = Trace {
        lines: sink.lines,
        accounting: sink.accounting,
        ..Trace::default()
    };
    for event in events {
        match event {
            Event::Stdout(batch) => {
                trace.stdout_after_close |= trace.stdout_closed;
                for span in &batch.spans {
                    trace.stdout.push(match span {
                        Span::Text(range) => Ok(batch.bytes[range.clone()].to_vec()),
                        Span::Oversized(bytes) => Err(*bytes),
                    });
                }
            }
            Event::StdoutClosed { error } => trace.stdout_closed = error.is_none(),
            Event::Stderr(line) => trace.stderr.push(line),
            Event::StderrClosed | Event::ToolWake => {}
        }
    }
    trace
}

struct Collect {
    lines: Vec<Line>,
    accounting: Accounting,
}

impl FrameSink for Collect {
    fn frame(&mut self, frame: Frame<'_>) -> bool {
        let line = match frame {
            Frame::Oversized(bytes) => Line::Oversized(bytes),
            Frame::Line(bytes) => match reader::parse_line(bytes) {
                Parsed::Garbage { text, .. } => Line::Garbage {
                    bytes: bytes.to_vec(),
                    kept: text,
                },
                Parsed::Message { value, .. } => {
                    let incoming = wire::classify(value);
                    link::account(&mut self.accounting, &incoming);
                    Line::Message {
                        bytes: bytes.to_vec(),
                        kind: kind(incoming),
                    }
                }
            },
        };
        self.lines.push(line);
        true
    }
}

fn kind(incoming: Incoming) -> Kind {
    match incoming {
        Incoming::Request { id, method, params } => {
            let (reply, summary) = reply_to(&id, &method, &params);
            Kind::Request {
                reply: reply.to_string(),
                id,
                method,
                summary,
            }
        }
        Incoming::Response { id, .. } => Kind::Response { id },
        Incoming::ErrorResponse { id, code, message } => Kind::ErrorResponse { id, code, message },
        Incoming::Notification { method, .. } => Kind::Notification { method },
        Incoming::Unrecognised => Kind::Unrecognised,
    }
}

/// The reply the turn loop sends to a server request (`turn.rs`, `on_request` and
/// `dispatch_tool`), with a tool call answered as an unknown tool since no tools are
/// advertised here.
fn reply_to(id: &Value, method: &str, params: &Value) -> (Value, Option<String>) {
    if method == "item/tool/call" {
        let reply = match tools::parse_call(params) {
            Some(call) => wire::response(
                id,
                ToolResult::failure(format!("unknown tool `{}`", call.tool)).to_reply(),
            ),
            None => wire::error_response(id, -32602, "item/tool/call without callId or tool"),
        };
        return (reply, None);
    }
    match policy::answer(method, params, None) {
        Answer::Refuse { reply, summary } => (wire::response(id, reply), Some(summary)),
        Answer::Result(result) => (wire::response(id, result), None),
        Answer::Unsupported { code, message } => (wire::error_response(id, code, &message), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The entry point is only driven by `fuzz/`, which CI does not build: this keeps it honest.
    #[test]
    fn read_frames_classifies_and_answers_like_a_session() {
        let long = "x".repeat(120);
        let input = format!(
            "{{\"id\":7,\"method\":\"item/tool/requestUserInput\",\"params\":{{}}}}\r\nnot json\n\n{long}\n{{\"method\":\"turn/started\"}}"
        );
        let trace = read(input.as_bytes(), 100, 3);
        assert_eq!(trace.lines.len(), 4, "{:?}", trace.lines);
        let Line::Message {
            kind: Kind::Request {
                id, reply, summary, ..
            },
            ..
        } = &trace.lines[0]
        else {
            panic!("{:?}", trace.lines[0]);
        };
        assert_eq!(id, &json!(7));
        let reply: Value = serde_json::from_str(reply).unwrap();
        assert_eq!(reply, json!({"id": 7, "result": {"answers": {}}}));
        assert_eq!(summary.as_deref(), Some("answer questions "));
        assert!(matches!(&trace.lines[1], Line::Garbage { kept, .. } if kept == "not json"));
        assert_eq!(trace.lines[2], Line::Oversized(120));
        assert!(matches!(
            &trace.lines[3],
            Line::Message { kind: Kind::Notification { method }, .. } if method == "turn/started"
        ));
        // The real thread bodies use their own, larger limits.
        assert_eq!(trace.stdout.len(), 4);
        assert_eq!(trace.stdout[2], Ok(long.into_bytes()));
        assert!(trace.stdout_closed && !trace.stdout_after_close);
        assert_eq!(trace.stderr.len(), 4);
        assert_eq!(trace.accounting.event_count, 2);
    }
}
