//! The mock's replies that stay open: written by hand as a chunked event stream, because
//! tiny_http buffers a streamed body and these must really send their head and first events
//! while the reply goes on (a stall that the client sees as an open, silent stream; deltas
//! that keep coming).
//!
//! Every reply here ends when the mock is dropped or after [`MAX_STALL`], whichever is first;
//! the endless one also ends as soon as a write fails (the client hung up).

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{MAX_STALL, Shared, lock, sse};

/// The pause between two deltas of an endless reply: a busy model, about 20 deltas a second.
const DELTA_INTERVAL: Duration = Duration::from_millis(50);

/// A stream that opens, sends `response.created`, then nothing until the mock is dropped.
pub(super) fn stall(
    request: tiny_http::Request,
    headers: &[(String, String)],
    response_id: &str,
    shared: &Shared,
) {
    let opening = [json!({"type": "response.created", "response": {"id": response_id}})];
    if let Some(mut writer) = open(request, headers, &opening) {
        stopped_within(shared, MAX_STALL);
        let _ = writer.write_all(b"0\r\n\r\n").and_then(|()| writer.flush());
    }
}

/// A message that streams one delta every [`DELTA_INTERVAL`] and never completes.
pub(super) fn endless_deltas(
    request: tiny_http::Request,
    headers: &[(String, String)],
    response_id: &str,
    shared: &Shared,
) {
    let item_id = format!("msg_endless_{response_id}");
    let opening = [
        json!({"type": "response.created", "response": {"id": response_id}}),
        json!({"type": "response.output_item.added", "output_index": 0,
               "item": {"type": "message", "role": "assistant", "id": item_id, "content": []}}),
    ];
    let Some(mut writer) = open(request, headers, &opening) else {
        return;
    };
    let deadline = Instant::now() + MAX_STALL;
    let mut n = 0u64;
    while Instant::now() < deadline {
        if stopped_within(shared, DELTA_INTERVAL) {
            break;
        }
        n += 1;
        let delta = json!({"type": "response.output_text.delta", "item_id": item_id,
                           "output_index": 0, "content_index": 0, "delta": format!("busy {n}. ")});
        if chunk(&mut writer, &sse(&[delta])).is_err() {
            // Codex hung up (the turn was interrupted): nothing left to stream to.
            return;
        }
    }
    let _ = writer.write_all(b"0\r\n\r\n").and_then(|()| writer.flush());
}

/// Writes the head and the `opening` events; `None` when the client is already gone.
fn open(
    request: tiny_http::Request,
    headers: &[(String, String)],
    opening: &[Value],
) -> Option<Box<dyn Write + Send>> {
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    let mut writer = request.into_writer();
    writer
        .write_all(head.as_bytes())
        .and_then(|()| chunk(&mut writer, &sse(opening)))
        .ok()?;
    Some(writer)
}

/// One chunk of a chunked body, flushed.
fn chunk(writer: &mut Box<dyn Write + Send>, bytes: &[u8]) -> std::io::Result<()> {
    writer.write_all(format!("{:x}\r\n", bytes.len()).as_bytes())?;
    writer.write_all(bytes)?;
    writer.write_all(b"\r\n")?;
    writer.flush()
}

/// Waits up to `timeout` for the mock to be dropped; true when it was.
fn stopped_within(shared: &Shared, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut stopping = lock(&shared.stopping);
    while !*stopping {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        stopping = match shared.stopped.wait_timeout(stopping, deadline - now) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
    true
}
