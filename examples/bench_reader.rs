//! Benchmark (not a test): app-server notifications per second through Maestro's stdout
//! reader thread → channel → journal and accounting, against a plain loop that only parses the
//! same lines with serde_json. Goal: the pipeline keeps at least half the plain loop's rate.
//! Each side runs five times and keeps its best, which filters out a busy machine.
//!
//! Run with `cargo run --release --example bench_reader [N_MESSAGES]`.

use std::io::Cursor;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn main() {
    let n_messages: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(200_000);
    let input = corpus(n_messages);
    let bytes = input.len();
    println!(
        "corpus: {n_messages} notifications, {:.1} MB, {} bytes per line on average",
        bytes as f64 / 1e6,
        bytes / n_messages
    );

    let journal = std::env::temp_dir().join(format!(
        "maestro-bench-journal-{}.jsonl",
        std::process::id()
    ));
    let mut plain = Duration::MAX;
    let mut piped = Duration::MAX;
    let mut shed = 0;
    for _ in 0..5 {
        plain = plain.min(plain_loop(&input, n_messages));
        let _ = std::fs::remove_file(&journal);
        let reader = Box::new(Cursor::new(input.clone().into_bytes()));
        let started = Instant::now();
        let counts = maestro::app_server::bench_pipeline(reader, &journal).expect("pipeline runs");
        piped = piped.min(started.elapsed());
        // A delta the reader shed (the consumer was behind) is counted, not journaled.
        assert_eq!(
            counts.messages + counts.dropped_deltas,
            n_messages as u64,
            "every message journaled or counted"
        );
        shed = shed.max(counts.dropped_deltas);
    }
    if shed > 0 {
        println!("(up to {shed} deltas were shed in a run: the rate below counts them as handled)");
    }
    let journal_bytes = std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&journal);

    let rate = |elapsed: Duration| n_messages as f64 / elapsed.as_secs_f64();
    println!(
        "plain serde_json loop:             {:>12.0} notifications/s ({:.1} MB/s)",
        rate(plain),
        bytes as f64 / 1e6 / plain.as_secs_f64()
    );
    println!(
        "reader → channel → journal:        {:>12.0} notifications/s ({:.1} MB/s, journal {:.1} MB)",
        rate(piped),
        bytes as f64 / 1e6 / piped.as_secs_f64(),
        journal_bytes as f64 / 1e6
    );
    let ratio = rate(piped) / rate(plain);
    println!(
        "ratio: {ratio:.2} (goal >= 0.50: {})",
        if ratio >= 0.5 { "met" } else { "NOT met" }
    );
}

fn plain_loop(input: &str, n_messages: usize) -> Duration {
    let started = Instant::now();
    let mut parsed = 0;
    for line in input.lines() {
        let value: Value = serde_json::from_str(line).expect("corpus is JSON");
        std::hint::black_box(&value);
        parsed += 1;
    }
    assert_eq!(parsed, n_messages);
    started.elapsed()
}

/// A turn's worth of notifications, in the proportions a real turn has: mostly deltas, some
/// items, token and rate-limit updates.
fn corpus(n_messages: usize) -> String {
    let thread = "019a2f0e-7d1c-7b42-9c1e-5b6a7c8d9e0f";
    let turn = "019a2f0e-8e2d-7c53-8d2f-6c7b8d9e0f1a";
    let mut out = String::new();
    for index in 0..n_messages {
        let message = match index % 10 {
            0..=4 => json!({"method": "item/agentMessage/delta", "params": {
                "threadId": thread, "turnId": turn, "itemId": "msg_0a1b2c3d",
                "delta": format!("token {index} of a streamed answer ")}, "emittedAtMs": 1_764_000_000_000u64 + index as u64}),
            5 | 6 => json!({"method": "item/commandExecution/outputDelta", "params": {
                "threadId": thread, "turnId": turn, "itemId": "call_9f8e7d",
                "delta": "test result: ok. 73 passed; 0 failed; 0 ignored; 0 measured\n"}, "emittedAtMs": 1_764_000_000_000u64}),
            7 => json!({"method": "item/completed", "params": {"threadId": thread, "turnId": turn,
                "item": {"type": "agentMessage", "id": "msg_0a1b2c3d", "phase": "final_answer",
                         "text": "I changed the reader to resynchronise after an over-long line. ".repeat(8)}},
                "emittedAtMs": 1_764_000_000_000u64}),
            8 => {
                json!({"method": "thread/tokenUsage/updated", "params": {"threadId": thread, "turnId": turn,
                "tokenUsage": {
                    "total": {"totalTokens": index * 10, "inputTokens": index * 8, "cachedInputTokens": index * 4,
                              "cacheWriteInputTokens": 0, "outputTokens": index * 2, "reasoningOutputTokens": index},
                    "last": {"totalTokens": 10, "inputTokens": 8, "cachedInputTokens": 4,
                             "cacheWriteInputTokens": 0, "outputTokens": 2, "reasoningOutputTokens": 1},
                    "modelContextWindow": 258_400}}, "emittedAtMs": 1_764_000_000_000u64})
            }
            _ => json!({"method": "account/rateLimits/updated", "params": {"rateLimits": {
                "limitId": "codex", "limitName": null,
                "primary": {"usedPercent": 43, "windowDurationMins": 300, "resetsAt": 1_764_003_600},
                "secondary": {"usedPercent": 12, "windowDurationMins": 10_080, "resetsAt": 1_764_600_000},
                "credits": null, "planType": "pro", "rateLimitReachedType": null}}, "emittedAtMs": 1_764_000_000_000u64}),
        };
        out.push_str(&message.to_string());
        out.push('\n');
    }
    out
}
