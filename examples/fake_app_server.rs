//! A fake `codex app-server` for the faults the real binary will not produce on demand.
//!
//! Test-only: `cargo test` builds it, the integration tests run it (`tests/support/
//! app_server.rs`), and it never ships in the release binary. It speaks just enough of the
//! protocol (one JSON object per line) for the client to reach a turn, then follows the
//! scenario named by `MAESTRO_FAKE_SCENARIO`:
//!
//! | scenario | what the turn does |
//! | --- | --- |
//! | `happy` | an agent message, token usage, `turn/completed` |
//! | `garbage` | non-JSON, coloured, blank and odd lines, then `happy` |
//! | `huge_line` | an 11 MiB line on turn 1, then `happy` (turn 2 is plain `happy`) |
//! | `big_line` | a 9 MiB agent message (under the limit), then completes |
//! | `crash` | `turn/started`, a stderr line, exit 3 |
//! | `silence` | `turn/started`, then ignores everything, even `turn/interrupt` |
//! | `silent_start` | never answers `initialize` |
//! | `exit_early` | writes to stderr and exits 2 before reading anything |
//! | `request:<method>` | sends server request `<method>`, completes `interrupted` on cancel or interrupt |
//! | `unknown_request` | an unknown server request, then reports the reply it got |
//! | `interleaved` | requests mixed into the handshake and the turn; reports every reply |
//! | `wait` | `turn/started`, then waits for `turn/interrupt` |
//! | `budget` | token totals 100 then 1000, then waits for `turn/interrupt` |
//! | `slow_tool` | one `echo` tool call, completes after the reply |
//! | `env` | the final message lists the environment variable names it sees |
//! | `turn_start_error` | answers `turn/start` with a JSON-RPC error |
//! | `ignore_stdin_close` | starts `sleep 600` in its group, ignores SIGTERM and stdin EOF |
//! | `tools` | calls the dynamic tools listed in `MAESTRO_FAKE_TOOLS` one after another, then completes |
//! | `flood:<n>` | `n` agent-message deltas as fast as it can write, then the item (text cut at 64 KiB), then completes with `flood done: <bytes> bytes of deltas` |
//! | `tool_flood:<n>` | `n` `echo` tool calls at once; completes with `answered=<n> ok=<k>` once every one has a reply |
//!
//! `MAESTRO_FAKE_TOOLS` is a JSON object from issue identifier (read from the turn input's
//! `# ABC-1: title` line; `"*"` for any other) to a list of `{"tool": …, "arguments": {…}}`,
//! or to the string `"wait"` (wait for `turn/interrupt`), `"silence"` or `"crash"`. A list entry
//! `{"sleep_ms": N}` pauses before the next call, `{"wait_for_file": PATH}` stays busy (a delta
//! every 200 ms) until PATH exists (at most a minute), and `{"exit": N}` exits with code N.
//!
//! With `MAESTRO_FAKE_ESCAPEE_FILE` set, any scenario first starts `setsid sleep 600` (a process
//! that leaves the fake's group and session but keeps its stdout and stderr) and writes its pid
//! to that file.
//!
//! `--version` and `app-server generate-json-schema --experimental --out DIR` imitate codex for
//! the probe; `MAESTRO_FAKE_SCHEMA_DROP` names a method to leave out of the bundle.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["--version"] => println!("codex-cli 0.0.0-fake"),
        [
            "app-server",
            "generate-json-schema",
            "--experimental",
            "--out",
            dir,
        ] => schema(dir),
        ["app-server"] => serve(&std::env::var("MAESTRO_FAKE_SCENARIO").unwrap_or_default()),
        _ => {
            eprintln!("fake_app_server: unexpected arguments {args:?}");
            std::process::exit(64);
        }
    }
}

fn schema(dir: &str) {
    let drop = std::env::var("MAESTRO_FAKE_SCHEMA_DROP").unwrap_or_default();
    let files = [
        (
            "ClientRequest.json",
            &["initialize", "thread/start", "turn/start", "turn/interrupt"][..],
        ),
        (
            "ServerRequest.json",
            &["item/tool/call", "item/commandExecution/requestApproval"][..],
        ),
        (
            "ServerNotification.json",
            &["thread/status/changed", "turn/started", "turn/completed"][..],
        ),
    ];
    std::fs::create_dir_all(dir).expect("schema dir");
    for (file, methods) in files {
        let variants: Vec<Value> = methods
            .iter()
            .filter(|method| **method != drop)
            .map(|method| json!({"properties": {"method": {"enum": [method], "type": "string"}}}))
            .collect();
        let text = json!({"title": file, "oneOf": variants}).to_string();
        std::fs::write(std::path::Path::new(dir).join(file), text).expect("schema file");
    }
}

fn send(message: Value) {
    write_line(&message.to_string());
}

fn write_line(line: &str) {
    let mut stdout = std::io::stdout().lock();
    // The client may be gone (a kill test); exiting quietly is right then.
    if stdout.write_all(line.as_bytes()).is_err()
        || stdout.write_all(b"\n").is_err()
        || stdout.flush().is_err()
    {
        std::process::exit(0);
    }
}

fn notify(method: &str, params: Value) {
    send(json!({"method": method, "params": params, "emittedAtMs": 0}));
}

struct Fake {
    scenario: String,
    turn_count: u64,
    /// The open turn's id.
    turn: Option<String>,
    /// Replies to our requests, by id text.
    replies: BTreeMap<String, String>,
    /// How many replies the scenario waits for before completing the turn.
    awaiting: usize,
    silent: bool,
    /// The `tools` scenario's remaining calls for this turn.
    script: Vec<Value>,
}

const THREAD: &str = "thr_fake";

fn serve(scenario: &str) {
    if scenario == "exit_early" {
        eprintln!("fake: cannot start: config error");
        std::process::exit(2);
    }
    if scenario == "ignore_stdin_close" {
        // SAFETY: installing SIG_IGN for SIGTERM touches no memory.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
        let child = std::process::Command::new("sleep").arg("600").spawn();
        eprintln!("fake: started sleep {:?}", child.map(|c| c.id()));
    }
    if let Some(path) = std::env::var_os("MAESTRO_FAKE_ESCAPEE_FILE") {
        // Never waited for on purpose: it is meant to outlive this process.
        #[allow(clippy::zombie_processes)]
        let escapee = std::process::Command::new("setsid")
            .args(["sleep", "600"])
            .spawn()
            .expect("setsid sleep starts");
        std::fs::write(path, escapee.id().to_string()).expect("escapee pid written");
    }
    let mut fake = Fake {
        scenario: scenario.to_string(),
        turn_count: 0,
        turn: None,
        replies: BTreeMap::new(),
        awaiting: 0,
        silent: false,
        script: Vec::new(),
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if fake.silent {
            continue;
        }
        fake.handle(&message);
    }
    if scenario == "ignore_stdin_close" {
        // Bounded: the test kills us long before this ends.
        std::thread::sleep(std::time::Duration::from_secs(600));
    }
}

impl Fake {
    fn handle(&mut self, message: &Value) {
        let id = message.get("id").cloned();
        let method = message.get("method").and_then(Value::as_str);
        match (id, method) {
            (Some(id), Some(method)) => self.request(id, method, message.get("params")),
            (Some(id), None) => self.reply(&id, message),
            _ => {}
        }
    }

    fn request(&mut self, id: Value, method: &str, params: Option<&Value>) {
        match method {
            "initialize" => {
                if self.scenario != "silent_start" {
                    send(
                        json!({"id": id, "result": {"userAgent": "fake/0", "platformOs": "linux"}}),
                    );
                }
            }
            "thread/start" => {
                if self.scenario == "interleaved" {
                    // A request and a notification before the reply the client waits for.
                    send(json!({"id": 99, "method": "item/tool/call", "params": {
                        "threadId": THREAD, "turnId": "none", "callId": "c0", "tool": "echo",
                        "arguments": {"text": "early"}}}));
                    notify(
                        "remoteControl/status/changed",
                        json!({"status": "disabled"}),
                    );
                    self.awaiting += 1;
                }
                let cwd = params
                    .and_then(|p| p.get("cwd"))
                    .cloned()
                    .unwrap_or(Value::Null);
                send(json!({"id": id, "result": {
                    "thread": {"id": THREAD, "cwd": cwd, "status": {"type": "idle"}, "turns": []},
                    "model": "fake-model"}}));
                notify("thread/started", json!({"thread": {"id": THREAD}}));
            }
            "turn/start" => {
                if self.scenario == "turn_start_error" {
                    send(
                        json!({"id": id, "error": {"code": -32600, "message": "Invalid request: fake refusal"}}),
                    );
                    return;
                }
                self.turn_count += 1;
                let turn = format!("turn_{}", self.turn_count);
                self.turn = Some(turn.clone());
                send(
                    json!({"id": id, "result": {"turn": {"id": turn, "status": "inProgress", "items": []}}}),
                );
                if self.scenario == "tools" {
                    let input = params
                        .and_then(|p| p.pointer("/input/0/text"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    self.scripted_turn(&turn, input);
                    return;
                }
                self.start_turn(&turn);
            }
            "turn/interrupt" => {
                if self.turn.is_some() {
                    send(json!({"id": id, "result": {}}));
                    self.complete("interrupted", None);
                } else {
                    send(
                        json!({"id": id, "error": {"code": -32600, "message": "no active turn to interrupt"}}),
                    );
                }
            }
            _ => send(
                json!({"id": id, "error": {"code": -32600, "message": format!("unknown variant `{method}`")}}),
            ),
        }
    }

    /// A reply to one of our requests.
    fn reply(&mut self, id: &Value, message: &Value) {
        let text = if let Some(result) = message.get("result") {
            if let Some(text) = result
                .pointer("/contentItems/0/text")
                .and_then(Value::as_str)
            {
                let ok = result.get("success").and_then(Value::as_bool) == Some(true);
                format!("{}:{text}", if ok { "ok" } else { "fail" })
            } else if result.get("currentTimeAt").is_some() {
                "time".to_string()
            } else {
                result.to_string()
            }
        } else {
            format!(
                "error {}",
                message.pointer("/error/code").unwrap_or(&Value::Null)
            )
        };
        let key = id.as_str().map_or_else(|| id.to_string(), str::to_string);
        self.replies.insert(key, text);
        if self.scenario.starts_with("tool_flood:") {
            if self.replies.len() >= self.awaiting && self.turn.is_some() {
                let ok = self
                    .replies
                    .values()
                    .filter(|v| v.starts_with("ok:"))
                    .count();
                let summary = format!("answered={} ok={ok}", self.replies.len());
                self.complete("completed", Some(&summary));
            }
            return;
        }
        if self.scenario == "tools" {
            self.next_scripted_call();
            return;
        }
        if self.scenario.starts_with("request:") {
            // Codex ends the turn itself when an approval is cancelled.
            let cancelled = message.pointer("/result/decision") == Some(&json!("cancel"));
            if cancelled {
                self.complete("interrupted", None);
            }
            return;
        }
        if self.awaiting > 0 && self.replies.len() >= self.awaiting && self.turn.is_some() {
            let summary: Vec<String> = self
                .replies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            self.complete("completed", Some(&summary.join("|")));
        }
    }

    fn start_turn(&mut self, turn: &str) {
        notify(
            "thread/status/changed",
            json!({"threadId": THREAD, "status": {"type": "active", "activeFlags": []}}),
        );
        notify(
            "turn/started",
            json!({"threadId": THREAD, "turn": {"id": turn, "status": "inProgress"}}),
        );
        let scenario = self.scenario.clone();
        match scenario.as_str() {
            "happy" => self.happy(),
            "garbage" => {
                for line in [
                    "this is not json",
                    "\u{1b}[31mERROR\u{1b}[0m coloured",
                    "{\"broken\":",
                    "",
                    "   ",
                    "[1,2,3]",
                    "42",
                ] {
                    write_line(line);
                }
                self.happy();
            }
            "huge_line" if self.turn_count == 1 => {
                let filler = "x".repeat(11 * 1024 * 1024);
                write_line(&format!(
                    r#"{{"method":"item/agentMessage/delta","params":{{"delta":"{filler}"}}}}"#
                ));
                self.happy();
            }
            "huge_line" => self.happy(),
            "big_line" => {
                let text = "y".repeat(9 * 1024 * 1024);
                self.agent_message(&text);
                self.complete("completed", Some(&text));
            }
            "crash" => {
                eprintln!("\u{1b}[31mfake: fatal error mid-turn\u{1b}[0m");
                std::process::exit(3);
            }
            "silence" => self.silent = true,
            "unknown_request" => {
                send(
                    json!({"id": 5, "method": "account/chatgptAuthTokens/refresh", "params": {"reason": "unauthorized"}}),
                );
                self.awaiting = 1;
            }
            "interleaved" => {
                let call = |id: Value, call_id: &str, tool: &str, text: &str| {
                    json!({"id": id, "method": "item/tool/call", "params": {
                        "threadId": THREAD, "turnId": turn, "callId": call_id, "tool": tool,
                        "arguments": {"text": text}}})
                };
                send(call(json!(10), "c1", "echo", "a"));
                notify(
                    "item/started",
                    json!({"threadId": THREAD, "turnId": turn, "item": {"type": "dynamicToolCall", "id": "c1"}}),
                );
                send(
                    json!({"id": 11, "method": "currentTime/read", "params": {"threadId": THREAD}}),
                );
                send(call(json!(12), "c2", "echo", "b"));
                notify(
                    "account/rateLimits/updated",
                    json!({"rateLimits": {"limitId": "codex"}}),
                );
                send(call(json!(13), "c3", "nope", "c"));
                send(call(json!("s-14"), "c4", "echo", "d"));
                self.awaiting += 5;
            }
            "slow_tool" => {
                send(json!({"id": 20, "method": "item/tool/call", "params": {
                    "threadId": THREAD, "turnId": turn, "callId": "slow", "tool": "echo",
                    "arguments": {"text": "slow"}}}));
                self.awaiting = 1;
            }
            "budget" => {
                self.tokens(100);
                self.tokens(1000);
            }
            scenario if scenario.starts_with("flood:") => {
                let count: u64 = scenario["flood:".len()..].parse().unwrap_or(0);
                self.flood(turn, count);
            }
            scenario if scenario.starts_with("tool_flood:") => {
                let count: usize = scenario["tool_flood:".len()..].parse().unwrap_or(0);
                // Every call at once, in one write, before reading any reply.
                let mut burst = String::new();
                for n in 0..count {
                    let call = json!({"id": 1000 + n, "method": "item/tool/call", "params": {
                        "threadId": THREAD, "turnId": turn, "callId": format!("c{n}"),
                        "tool": "echo", "arguments": {"text": n.to_string()}}});
                    burst.push_str(&call.to_string());
                    burst.push('\n');
                }
                self.awaiting = count;
                write_line(burst.trim_end());
            }
            "env" => {
                let mut names: Vec<String> = std::env::vars_os()
                    .map(|(name, _)| name.to_string_lossy().into_owned())
                    .collect();
                names.sort();
                self.complete("completed", Some(&names.join(",")));
            }
            scenario if scenario.starts_with("request:") => {
                let method = &scenario["request:".len()..];
                if method == "item/fileChange/requestApproval" {
                    notify(
                        "item/started",
                        json!({"threadId": THREAD, "turnId": turn, "item": {
                        "type": "fileChange", "id": "fc1", "status": "inProgress",
                        "changes": [{"path": "src/main.rs", "kind": {"type": "update"}, "diff": ""}]}}),
                    );
                }
                send(json!({"id": 0, "method": method, "params": {
                    "threadId": THREAD, "turnId": turn, "itemId": "fc1", "command": "rm -rf /",
                    "cwd": "/lane", "reason": "fake reason", "serverName": "fake-mcp",
                    "message": "pick one", "questions": [{"id": "q", "question": "Color?"}]}}));
            }
            // "wait" and anything else: wait for turn/interrupt.
            _ => {}
        }
    }

    /// `count` deltas shaped like codex's (about 200 bytes each), as fast as stdout takes
    /// them, then the whole message as one item, token usage and `turn/completed`.
    fn flood(&mut self, turn: &str, count: u64) {
        let item = "msg_0199b1e2c3d4e5f60718293a4b5c6d7e";
        notify(
            "item/started",
            json!({"threadId": THREAD, "turnId": turn, "item": {"type": "agentMessage", "id": item, "text": ""}}),
        );
        let line = format!(
            "{}\n",
            json!({"method": "item/agentMessage/delta", "params": {
                "threadId": "0199b1e2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "turnId": turn,
                "itemId": item, "delta": "word "}, "emittedAtMs": 1_795_668_651_321_u64})
        );
        let mut written = 0u64;
        {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            for _ in 0..count {
                if out.write_all(line.as_bytes()).is_err() {
                    std::process::exit(0);
                }
                written += line.len() as u64;
            }
            if out.flush().is_err() {
                std::process::exit(0);
            }
        }
        // The whole message would be 5 bytes a delta; cut at 64 KiB so a flood test measures
        // the deltas, not one huge final line (that has its own limit, MAX_LINE_BYTES).
        let text = "word ".repeat(usize::try_from(count).unwrap_or(0).min(13_107));
        let done = json!({"threadId": THREAD, "turnId": turn,
            "item": {"type": "agentMessage", "id": item, "text": text, "phase": null}});
        notify("item/completed", done);
        self.tokens(10);
        self.complete(
            "completed",
            Some(&format!("flood done: {written} bytes of deltas")),
        );
    }

    fn happy(&mut self) {
        let text = format!("fake done {}", self.turn_count);
        self.agent_message(&text);
        self.tokens(10 * self.turn_count);
        self.complete("completed", Some(&text));
    }

    fn agent_message(&self, text: &str) {
        let turn = self.turn.clone().unwrap_or_default();
        let item = json!({"type": "agentMessage", "id": "msg", "text": text, "phase": null});
        notify(
            "item/started",
            json!({"threadId": THREAD, "turnId": turn, "item": item}),
        );
        notify(
            "item/completed",
            json!({"threadId": THREAD, "turnId": turn, "item": item}),
        );
    }

    fn tokens(&self, total: u64) {
        let turn = self.turn.clone().unwrap_or_default();
        let breakdown = json!({"totalTokens": total, "inputTokens": total, "cachedInputTokens": 0,
                               "outputTokens": 0, "reasoningOutputTokens": 0});
        notify(
            "thread/tokenUsage/updated",
            json!({"threadId": THREAD, "turnId": turn,
            "tokenUsage": {"total": breakdown, "last": breakdown, "modelContextWindow": 1000}}),
        );
    }

    /// The `tools` scenario: pick this issue's script from `MAESTRO_FAKE_TOOLS`.
    fn scripted_turn(&mut self, turn: &str, input: &str) {
        notify(
            "turn/started",
            json!({"threadId": THREAD, "turn": {"id": turn, "status": "inProgress"}}),
        );
        let identifier = input
            .lines()
            .find_map(|line| line.strip_prefix("# "))
            .and_then(|line| line.split(':').next())
            .unwrap_or("")
            .trim()
            .to_string();
        let scripts: Value = std::env::var("MAESTRO_FAKE_TOOLS")
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        let script = scripts
            .get(&identifier)
            .or_else(|| scripts.get("*"))
            .cloned()
            .unwrap_or(Value::Null);
        match script {
            Value::String(mode) if mode == "wait" => {}
            Value::String(mode) if mode == "silence" => self.silent = true,
            Value::String(mode) if mode == "crash" => std::process::exit(3),
            Value::Array(calls) if self.turn_count == 1 => {
                self.script = calls;
                self.next_scripted_call();
            }
            _ => self.complete("completed", Some("nothing to do")),
        }
    }

    fn next_scripted_call(&mut self) {
        let Some(turn) = self.turn.clone() else {
            return;
        };
        if self.script.is_empty() {
            self.tokens(50);
            self.complete("completed", Some("scripted calls done"));
            return;
        }
        let call = self.script.remove(0);
        if let Some(code) = call.get("exit").and_then(Value::as_i64) {
            // The app-server dies mid-turn, after the calls before this one took effect.
            eprintln!("fake: exiting {code} mid-turn as scripted");
            std::process::exit(i32::try_from(code).unwrap_or(3));
        }
        if let Some(path) = call.get("wait_for_file").and_then(Value::as_str) {
            // Busy (a delta every 200 ms, so never stalled) until the test creates `path`,
            // at most a minute.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !std::path::Path::new(path).exists() && std::time::Instant::now() < deadline {
                notify(
                    "item/agentMessage/delta",
                    json!({"threadId": THREAD, "turnId": turn, "itemId": "thinking", "delta": "."}),
                );
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            self.next_scripted_call();
            return;
        }
        if let Some(ms) = call.get("sleep_ms").and_then(Value::as_u64) {
            // A pause between calls, for tests that need a lane to be busy for a while.
            notify(
                "item/agentMessage/delta",
                json!({"threadId": THREAD, "turnId": turn, "itemId": "thinking", "delta": "."}),
            );
            std::thread::sleep(std::time::Duration::from_millis(ms));
            self.next_scripted_call();
            return;
        }
        let id = 100 + self.replies.len();
        notify(
            "item/started",
            json!({"threadId": THREAD, "turnId": turn, "item": {"type": "dynamicToolCall", "id": format!("call-{id}")}}),
        );
        send(json!({"id": id, "method": "item/tool/call", "params": {
            "threadId": THREAD, "turnId": turn, "callId": format!("call-{id}"),
            "tool": call.get("tool").cloned().unwrap_or(Value::Null),
            "arguments": call.get("arguments").cloned().unwrap_or(json!({}))}}));
    }

    /// Ends the open turn with `status` (once).
    fn complete(&mut self, status: &str, final_text: Option<&str>) {
        let Some(turn) = self.turn.take() else { return };
        let items: Vec<Value> = final_text
            .map(|text| vec![json!({"type": "agentMessage", "id": "msg", "text": text})])
            .unwrap_or_default();
        notify(
            "thread/status/changed",
            json!({"threadId": THREAD, "status": {"type": "idle"}}),
        );
        notify(
            "turn/completed",
            json!({"threadId": THREAD, "turn": {
            "id": turn, "status": status, "items": items, "error": null}}),
        );
        self.replies.clear();
        self.awaiting = 0;
    }
}
