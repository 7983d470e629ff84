//! The app-server stdout/stderr reader and message decoding on arbitrary bytes.
//!
//! Input: byte 0 picks the line limit (1..=64), byte 1 the read-buffer capacity (1..=32), the
//! rest is what the child wrote. Checked against a model of the framing contract: split at
//! `\n`; a line longer than the limit (counting a trailing `\r`) is reported oversized with its
//! exact length and reading resumes right after its newline; otherwise one trailing `\r` is
//! dropped and blank lines vanish. So no line handed on is longer than the limit, and a bad
//! line never costs the next one. Each line is a message exactly when it is JSON; classified
//! requests get a one-line reply echoing their id; the real stdout and stderr thread bodies
//! agree with the model too, and stderr text never carries an escape character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::app_server::MAX_LINE_BYTES;
use maestro::app_server::fuzzing::{self, Kind, Line};
use serde_json::Value;

/// The framing contract, written independently of `reader.rs`.
#[derive(Debug, PartialEq)]
enum Expected<'a> {
    Line(&'a [u8]),
    Oversized(usize),
}

fn model(input: &[u8], max: usize) -> Vec<Expected<'_>> {
    let mut out = Vec::new();
    for segment in input.split(|&byte| byte == b'\n') {
        if segment.len() > max {
            out.push(Expected::Oversized(segment.len()));
            continue;
        }
        let line = segment.strip_suffix(b"\r").unwrap_or(segment);
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push(Expected::Line(line));
        }
    }
    out
}

fn is_id(id: &Value) -> bool {
    id.is_i64() || id.is_string()
}

fn check_line(line: &Line, expected: &Expected<'_>, max: usize) {
    match (line, expected) {
        (Line::Oversized(got), Expected::Oversized(want)) => assert_eq!(got, want),
        (Line::Garbage { bytes, kept }, Expected::Line(want)) => {
            assert_eq!(bytes.as_slice(), *want);
            assert!(
                bytes.len() <= max,
                "line of {} bytes past a {max} limit",
                bytes.len()
            );
            let json = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            assert!(json.is_none(), "valid JSON treated as garbage: {bytes:?}");
            assert!(
                kept.chars().count() <= 4096,
                "garbage kept whole: {} chars",
                kept.len()
            );
        }
        (Line::Message { bytes, kind }, Expected::Line(want)) => {
            assert_eq!(bytes.as_slice(), *want);
            assert!(
                bytes.len() <= max,
                "line of {} bytes past a {max} limit",
                bytes.len()
            );
            let value: Value = serde_json::from_slice(bytes).expect("a message is JSON");
            check_kind(kind, &value);
        }
        (got, want) => panic!("framed {got:?}, the contract says {want:?}"),
    }
}

fn check_kind(kind: &Kind, value: &Value) {
    match kind {
        Kind::Request {
            id,
            method,
            reply,
            summary,
        } => {
            assert!(is_id(id), "request id {id}");
            assert_eq!(
                value.get("method").and_then(Value::as_str),
                Some(method.as_str())
            );
            assert!(!reply.contains('\n'), "a reply must be one line: {reply}");
            let reply: Value = serde_json::from_str(reply).expect("a reply is JSON");
            assert_eq!(reply.get("id"), Some(id), "the reply echoes the request id");
            let has_result = reply.get("result").is_some();
            let has_error = reply.get("error").is_some();
            assert!(
                has_result != has_error,
                "reply needs exactly one of result/error: {reply}"
            );
            if let Some(summary) = summary {
                assert!(
                    summary.chars().count() <= 401,
                    "summary unbounded: {}",
                    summary.len()
                );
            }
        }
        Kind::Response { id } | Kind::ErrorResponse { id, .. } => {
            assert!(is_id(id), "response id {id}");
            assert!(value.get("method").is_none());
        }
        Kind::Notification { method } => {
            assert_eq!(
                value.get("method").and_then(Value::as_str),
                Some(method.as_str())
            );
        }
        Kind::Unrecognised => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [limit, capacity, input @ ..] = data else {
        return;
    };
    let max = usize::from(*limit % 64) + 1;
    let capacity = usize::from(*capacity % 32) + 1;
    let trace = fuzzing::read(input, max, capacity);

    let expected = model(input, max);
    assert_eq!(
        trace.lines.len(),
        expected.len(),
        "{:?} vs {expected:?}",
        trace.lines
    );
    for (line, want) in trace.lines.iter().zip(&expected) {
        check_line(line, want, max);
    }
    let n_events = trace
        .lines
        .iter()
        .filter(|line| {
            matches!(
                line,
                Line::Message {
                    kind: Kind::Request { .. } | Kind::Notification { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(trace.accounting.event_count, n_events as u64);

    // The real stdout thread body: same contract at the real limit, then end of file.
    let stdout: Vec<Expected<'_>> = trace
        .stdout
        .iter()
        .map(|line| match line {
            Ok(bytes) => Expected::Line(bytes),
            Err(length) => Expected::Oversized(*length),
        })
        .collect();
    assert_eq!(stdout, model(input, MAX_LINE_BYTES));
    assert!(trace.stdout_closed && !trace.stdout_after_close);

    // The real stderr thread body: one string per line, no escapes left.
    assert_eq!(trace.stderr.len(), model(input, 64 * 1024).len());
    for line in &trace.stderr {
        assert!(!line.contains('\u{1b}'), "escape left in {line:?}");
    }
});
