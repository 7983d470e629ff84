//! Benchmark (not a test): how many journal bytes one streamed turn costs, as a share of what
//! the app-server wrote. Goal: at most 10 % for a 20,000-delta turn.
//!
//! The stream imitates codex 0.169: `item/started`, N `item/agentMessage/delta` lines of 247
//! bytes (a few characters of text each, with codex's thread, turn and item ids), the
//! `item/completed` that repeats the whole text, token usage and `turn/completed`. It goes
//! through Maestro's own stdout reader → channel → journal pipeline. Two runs:
//!
//! - the whole turn, fed at most 50,000 deltas a second (fast, but slow enough that the
//!   reader never has to shed a delta, which would flatter the figure);
//! - a shorter turn at codex's own pace (100 deltas a second), which shows the figure does not
//!   depend on the pace.
//!
//! Run with `cargo run --release --example bench_journal [N_DELTAS]` (default 20,000).

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;

/// Bytes of one delta line as codex 0.169 writes it (measured on the wire).
const CODEX_DELTA_LINE: usize = 247;
const THREAD: &str = "0199b1e2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const TURN: &str = "0199b1e2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
/// Tokens as the model streams them: a few characters each.
const WORDS: [&str; 8] = [
    " the", " reader", " now", " stops", " at", " a", " newline", ".",
];

fn main() {
    let n_deltas: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(20_000);
    println!("journal bytes per streamed turn (goal: at most 10 % of the stream)");
    let fast = measure(n_deltas, 50_000);
    report(&format!("{n_deltas} deltas, up to 50,000/s"), &fast);
    let paced = measure(2_000, 100);
    report("2,000 deltas at 100/s (codex's pace)", &paced);
    let share = fast.share();
    println!(
        "result: {:.1} % of the stream for a {n_deltas}-delta turn (goal <= 10 %: {})",
        share * 100.0,
        if share <= 0.10 { "met" } else { "NOT met" }
    );
}

struct Measured {
    stream_bytes: u64,
    delta_bytes: u64,
    journal_bytes: u64,
    journal_lines: usize,
    dropped: u64,
    elapsed: Duration,
}

impl Measured {
    fn share(&self) -> f64 {
        self.journal_bytes as f64 / self.stream_bytes as f64
    }
}

fn report(label: &str, measured: &Measured) {
    println!(
        "{label:<40} stream {:>9} B (deltas {:>9} B)  journal {:>8} B in {:>4} lines  = {:>5.1} %  shed {}  ({:.1} s)",
        measured.stream_bytes,
        measured.delta_bytes,
        measured.journal_bytes,
        measured.journal_lines,
        measured.share() * 100.0,
        measured.dropped,
        measured.elapsed.as_secs_f64()
    );
}

fn measure(n_deltas: usize, per_second: usize) -> Measured {
    let (stream, delta_bytes) = turn(n_deltas);
    let stream_bytes = stream.len() as u64;
    let journal = std::env::temp_dir().join(format!(
        "maestro-bench-journal-size-{}-{n_deltas}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&journal);
    let reader = Paced {
        lines: stream.lines().map(|line| format!("{line}\n")).collect(),
        next: 0,
        interval: Duration::from_secs(1) / u32::try_from(per_second).unwrap_or(u32::MAX),
        started: Instant::now(),
    };
    let started = Instant::now();
    let counts =
        maestro::app_server::bench_pipeline(Box::new(reader), &journal).expect("pipeline runs");
    let elapsed = started.elapsed();
    let journal_text = std::fs::read_to_string(&journal).unwrap_or_default();
    let _ = std::fs::remove_file(&journal);
    Measured {
        stream_bytes,
        delta_bytes,
        journal_bytes: journal_text.len() as u64,
        journal_lines: journal_text.lines().count(),
        dropped: counts.dropped_deltas,
        elapsed,
    }
}

/// One turn's stdout and the bytes of its delta lines.
fn turn(n_deltas: usize) -> (String, u64) {
    let item = "msg_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let mut out = String::new();
    let push = |value: serde_json::Value, out: &mut String| {
        out.push_str(&value.to_string());
        out.push('\n');
    };
    push(
        json!({"method": "item/started", "params": {"threadId": THREAD, "turnId": TURN,
            "item": {"type": "agentMessage", "id": item, "text": "", "phase": "final_answer"}},
            "emittedAtMs": 1_795_668_651_000_u64}),
        &mut out,
    );
    let mut text = String::new();
    let mut delta_bytes = 0u64;
    for index in 0..n_deltas {
        let word = WORDS[index % WORDS.len()];
        text.push_str(word);
        let mut line = json!({"method": "item/agentMessage/delta", "params": {
            "threadId": THREAD, "turnId": TURN, "itemId": item, "delta": word},
            "emittedAtMs": 1_795_668_651_321_u64 + index as u64})
        .to_string();
        // Pad (inside the JSON, as an unknown field) to codex's measured line length.
        if line.len() < CODEX_DELTA_LINE {
            let pad = CODEX_DELTA_LINE - line.len() - ",\"x\":\"\"".len();
            line.insert_str(line.len() - 1, &format!(",\"x\":\"{}\"", "-".repeat(pad)));
        }
        delta_bytes += line.len() as u64 + 1;
        out.push_str(&line);
        out.push('\n');
    }
    push(
        json!({"method": "item/completed", "params": {"threadId": THREAD, "turnId": TURN,
            "item": {"type": "agentMessage", "id": item, "text": text, "phase": "final_answer"}},
            "emittedAtMs": 1_795_668_700_000_u64}),
        &mut out,
    );
    push(
        json!({"method": "thread/tokenUsage/updated", "params": {"threadId": THREAD, "turnId": TURN,
            "tokenUsage": {"total": {"totalTokens": 30_000, "inputTokens": 10_000, "cachedInputTokens": 0,
                "outputTokens": 20_000, "reasoningOutputTokens": 0},
            "last": {"totalTokens": 30_000, "inputTokens": 10_000, "cachedInputTokens": 0,
                "outputTokens": 20_000, "reasoningOutputTokens": 0}, "modelContextWindow": 258_400}},
            "emittedAtMs": 1_795_668_700_001_u64}),
        &mut out,
    );
    push(
        json!({"method": "turn/completed", "params": {"threadId": THREAD, "turn": {
            "id": TURN, "status": "completed", "items": [], "error": null}},
            "emittedAtMs": 1_795_668_700_002_u64}),
        &mut out,
    );
    (out, delta_bytes)
}

/// Hands out one line per read, no faster than `interval` apart.
struct Paced {
    lines: Vec<String>,
    next: usize,
    interval: Duration,
    started: Instant,
}

impl Read for Paced {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let Some(line) = self.lines.get(self.next) else {
            return Ok(0);
        };
        let due = self.started + self.interval * u32::try_from(self.next).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Lines are far shorter than the reader's 64 KiB buffer.
        let bytes = line.as_bytes();
        let n = bytes.len().min(buffer.len());
        buffer[..n].copy_from_slice(&bytes[..n]);
        if n == bytes.len() {
            self.next += 1;
        } else {
            self.lines[self.next] = line[n..].to_string();
        }
        Ok(n)
    }
}
