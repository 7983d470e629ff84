//! One app-server session: spawn, handshake, the receive loop shared by requests and turns,
//! and shutdown.
//!
//! The [`Session`] owns the child, its stdin, the event channel, the journal and the
//! accounting; nothing else in Maestro touches them. Turns are driven by `turn.rs` through the
//! crate-private methods here. What a session does not do: choose prompts, retry, or decide
//! what an outcome means for the issue — those belong to the caller.

use std::collections::{HashMap, VecDeque};
use std::process::ExitStatus;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::accounting::{Accounting, Activity, ActivityKind, is_progress};
use super::child::{self, Child, Stdin, describe_exit};
use super::journal::Journal;
use super::policy::{self, Answer};
use super::reader::{self, Batch, CHANNEL_CAPACITY, Event, Parsed, Span};
use super::tools::{FinishedQueue, ToolResult};
use super::wire::{self, Incoming};
use super::{Error, Observer, SessionConfig, ToolDispatch, TurnLimits, TurnOutcome, turn};

/// How many stderr lines are kept for diagnostics.
const STDERR_TAIL_LINES: usize = 200;
/// After closing stdin, how long the child gets to exit by itself (codex takes 15–65 ms).
const STDIN_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// After SIGTERM, how long before SIGKILL.
const SIGTERM_GRACE: Duration = Duration::from_millis(500);
/// After SIGKILL, the longest wait to reap the child.
const SIGKILL_WAIT: Duration = Duration::from_secs(5);
/// Once stdout closed, how long to wait for the exit status and the last stderr lines.
const EXIT_COLLECT_WAIT: Duration = Duration::from_secs(1);
/// How long shutdown waits for the reader threads to see their pipes close.
const READER_JOIN_WAIT: Duration = Duration::from_secs(1);

/// A running `codex app-server` with one thread started on it.
///
/// Dropping a session that was not [`shut down`](Session::shutdown) runs the same stop
/// sequence, so an error path never leaves a process behind.
#[derive(Debug)]
pub struct Session {
    pub(crate) config: SessionConfig,
    child: Child,
    stdin: Option<Stdin>,
    events: Receiver<Event>,
    /// The stdout batch being handled, and the index of its next line.
    pending: Option<(Batch, usize)>,
    /// Cloned into tool workers (to wake the session); also keeps `recv` from ever seeing a
    /// disconnect.
    pub(crate) events_tx: SyncSender<Event>,
    /// Tool calls the workers finished, not yet answered.
    finished: FinishedQueue,
    readers: Vec<JoinHandle<()>>,
    pub(crate) journal: Journal,
    thread_id: String,
    model: Option<String>,
    next_id: i64,
    pub(crate) accounting: Accounting,
    stderr_tail: VecDeque<String>,
    stderr_closed: bool,
    /// Set once the child is known to be gone (stdout closed, killed); no more turns.
    pub(crate) ended: bool,
    exit: Option<ExitStatus>,
    /// Paths of `fileChange` items by item id: approval requests do not repeat them.
    pub(crate) file_changes: HashMap<String, Vec<String>>,
    pub(crate) thread_reported: bool,
    stopped: bool,
    /// Defers custody sweeps after other commands while the agent runs (`custody`).
    custody_hold: Option<crate::custody::SessionHold>,
}

/// How a session's child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// `exit code N` or `killed by signal N`, when the child was reaped.
    pub exit: Option<String>,
    /// The child did not exit after stdin closed and had to be signalled.
    pub forced: bool,
    /// Both reader threads finished (their pipes closed).
    pub readers_joined: bool,
    pub elapsed: Duration,
}

/// One received item, after journaling and bookkeeping.
#[derive(Debug)]
pub(crate) enum Received {
    Timeout,
    Notification {
        method: String,
        params: Value,
    },
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Response {
        id: Value,
        result: Result<Value, (i64, String)>,
    },
    Oversized {
        bytes: usize,
    },
    /// The reader shed streaming deltas because the session was behind (counted in the
    /// journal and the accounting).
    DeltasDropped,
    StdoutClosed,
    ToolDone {
        request_id: Value,
        call_id: String,
        result: ToolResult,
    },
}

impl Session {
    /// Spawns the app-server, runs the handshake (`initialize` with `experimentalApi`,
    /// `initialized`) and starts a thread in `config.cwd` with the configured instructions and
    /// dynamic tools. Sandbox and approval policy are not sent: the child keeps its own.
    pub fn start(config: SessionConfig) -> Result<Session, Error> {
        Session::start_with(config, &child::Launcher::Local)
    }

    /// [`Session::start`] through `launcher`: with [`child::Launcher::Remote`] the app-server
    /// runs on another host over a local command's stdio (ssh), and `config.cwd` is the
    /// thread's directory there. Everything else — the handshake, the readers, turns, tools,
    /// the journal — is the same and stays in this process.
    pub fn start_with(config: SessionConfig, launcher: &child::Launcher) -> Result<Session, Error> {
        let mut journal = Journal::open(&config.journal_path)?;
        let env_names: Vec<&str> = config.extra_env.iter().map(|(k, _)| k.as_str()).collect();
        let spawned = match child::spawn(&config, launcher) {
            Ok(spawned) => spawned,
            Err(error) => {
                journal.local("spawn_failed", json!({"error": error.to_string()}));
                return Err(error);
            }
        };
        journal.local(
            "spawned",
            json!({
                "pid": spawned.child.pid(),
                "command": config.command,
                "cwd": config.cwd,
                "removed_env": config.remove_env,
                "added_env": env_names,
                "host": spawned.child.host(),
            }),
        );
        log::debug!(
            "app-server spawned pid={} command={:?}",
            spawned.child.pid(),
            config.command
        );
        // Bounded: a child writing faster than the session reads waits on its pipe instead of
        // filling Maestro's memory (see `reader.rs`).
        let (events_tx, events) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let mut session = Session {
            config,
            child: spawned.child,
            stdin: Some(Stdin::new(spawned.stdin)),
            events,
            pending: None,
            events_tx: events_tx.clone(),
            finished: Arc::new(Mutex::new(VecDeque::new())),
            readers: Vec::new(),
            journal,
            thread_id: String::new(),
            model: None,
            next_id: 0,
            accounting: Accounting::default(),
            stderr_tail: VecDeque::new(),
            stderr_closed: false,
            ended: false,
            exit: None,
            file_changes: HashMap::new(),
            thread_reported: false,
            stopped: false,
            custody_hold: Some(crate::custody::SessionHold::new()),
        };
        // From here on, an early return drops `session`, which stops the child.
        let stdout = reader::spawn_stdout(spawned.stdout, events_tx.clone());
        session.readers.push(stdout.map_err(Error::ReaderThread)?);
        let stderr = reader::spawn_stderr(spawned.stderr, events_tx);
        session.readers.push(stderr.map_err(Error::ReaderThread)?);
        session.handshake()?;
        Ok(session)
    }

    fn handshake(&mut self) -> Result<(), Error> {
        self.request(
            "initialize",
            json!({
                "clientInfo": {
                    "name": "maestro",
                    "title": "Maestro",
                    "version": env!("CARGO_PKG_VERSION"),
                },
                // Dynamic tools on thread/start need the experimental API.
                "capabilities": {"experimentalApi": true},
            }),
        )?;
        self.notify("initialized")?;
        let mut params = json!({"cwd": self.config.cwd});
        if !self.config.developer_instructions.is_empty() {
            params["developerInstructions"] = json!(self.config.developer_instructions);
        }
        if let Some(personality) = &self.config.personality {
            params["personality"] = json!(personality);
        }
        if let Some(tier) = &self.config.service_tier {
            params["serviceTier"] = json!(tier);
        }
        if !self.config.dynamic_tools.is_empty() {
            let tools: Vec<Value> = self
                .config
                .dynamic_tools
                .iter()
                .map(|tool| {
                    json!({
                        "type": "function",
                        "name": tool.name,
                        "description": tool.description,
                        "inputSchema": tool.input_schema,
                    })
                })
                .collect();
            params["dynamicTools"] = json!(tools);
        }
        let result = self.request("thread/start", params)?;
        let Some(thread_id) = result.pointer("/thread/id").and_then(Value::as_str) else {
            return Err(Error::Protocol {
                method: "thread/start".into(),
                detail: "the result has no thread.id".into(),
            });
        };
        self.thread_id = thread_id.to_string();
        self.model = result
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.journal.local(
            "thread_started",
            json!({"thread_id": self.thread_id, "model": self.model}),
        );
        log::info!(
            "app-server thread started thread_id={} model={}",
            self.thread_id,
            self.model.as_deref().unwrap_or("unknown")
        );
        Ok(())
    }

    /// Runs one turn on this session's thread and returns how it ended. Callable again after
    /// any outcome; once the child is gone every call returns [`super::TurnEnd::ProcessExited`].
    pub fn run_turn(
        &mut self,
        input: &str,
        tools: &dyn ToolDispatch,
        observer: &mut dyn Observer,
        limits: TurnLimits,
    ) -> TurnOutcome {
        turn::run(self, input, tools, observer, limits)
    }

    /// The thread id from `thread/start`.
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// The model the thread runs on, as `thread/start` reported it.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// An activity snapshot now (for example right after `start`).
    pub fn activity(&self, kind: ActivityKind) -> Activity {
        Activity::new(kind, &self.thread_id, None, &self.accounting)
    }

    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Where tool workers leave finished calls for this session.
    pub(crate) fn finished_queue(&self) -> FinishedQueue {
        Arc::clone(&self.finished)
    }

    /// How the child exited, if it has.
    pub(crate) fn exit_text(&mut self) -> Option<String> {
        if self.exit.is_none() {
            self.exit = self.child.try_exit();
        }
        self.exit.map(describe_exit)
    }

    /// The last stderr lines (ANSI stripped), oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail.iter().cloned().collect()
    }

    /// False once the child has exited or been killed.
    pub fn is_alive(&self) -> bool {
        !self.ended
    }

    /// Closes stdin, waits up to 2 s for the child to exit, then signals its process group
    /// (SIGTERM, then SIGKILL), reaps it and joins the reader threads.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop_child()
    }

    fn stop_child(&mut self) -> ShutdownReport {
        let started = Instant::now();
        self.stopped = true;
        self.ended = true;
        self.stdin = None;
        let mut forced = false;
        let mut status = self.child.wait_until(started + STDIN_CLOSE_GRACE);
        if status.is_none() {
            forced = true;
            self.journal
                .local("sigterm", json!({"pid": self.child.pid()}));
            self.child.signal_group(libc::SIGTERM);
            status = self.child.wait_until(Instant::now() + SIGTERM_GRACE);
        }
        if status.is_none() {
            self.journal
                .local("sigkill", json!({"pid": self.child.pid()}));
            self.child.signal_group(libc::SIGKILL);
            status = self.child.wait_until(Instant::now() + SIGKILL_WAIT);
        }
        // Sweep the group even after a clean exit: anything the child started and left
        // behind in it (a shell, a sleep) would otherwise be orphaned.
        self.child.signal_group(libc::SIGKILL);
        // What left the group (a `setsid` command of the agent's) was reparented to Maestro
        // when codex exited, if this process took custody; it goes too, and with it whatever
        // still held the pipes.
        self.custody_hold = None;
        let escapees = crate::custody::sweep(Some(self.child.pid())).killed;
        let readers_joined = self.join_readers(Instant::now() + READER_JOIN_WAIT);
        let exit = status.or(self.exit).map(describe_exit);
        let report = ShutdownReport {
            exit,
            forced,
            readers_joined,
            elapsed: started.elapsed(),
        };
        self.journal.local(
            "stopped",
            json!({
                "exit": report.exit,
                "forced": report.forced,
                "escapees_killed": escapees.len(),
                "readers_joined": report.readers_joined,
                "elapsed_ms": report.elapsed.as_millis() as u64,
            }),
        );
        self.journal.flush();
        log::debug!(
            "app-server stopped pid={} exit={} forced={}",
            self.child.pid(),
            report.exit.as_deref().unwrap_or("unknown"),
            report.forced
        );
        report
    }

    /// Kills the child's group at once (a turn that cannot be interrupted). The session ends.
    pub(crate) fn kill(&mut self, why: &str) {
        self.journal
            .local("kill", json!({"pid": self.child.pid(), "why": why}));
        log::warn!(
            "killing app-server pid={} thread_id={} reason={why}",
            self.child.pid(),
            self.thread_id
        );
        self.stdin = None;
        self.child.signal_group(libc::SIGKILL);
        if let Some(status) = self.child.wait_until(Instant::now() + SIGKILL_WAIT) {
            self.exit = Some(status);
        }
        self.ended = true;
    }

    /// Waits for the reader threads to finish, up to `deadline`; true when both did. A reader
    /// can only outlive this if a process outside the group still holds the pipe, and then it
    /// is left detached rather than blocking the caller.
    fn join_readers(&mut self, deadline: Instant) -> bool {
        while self.readers.iter().any(|reader| !reader.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut all = true;
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            } else {
                all = false;
                log::warn!("app-server reader thread still running after shutdown; detaching it");
            }
        }
        all
    }

    /// Sends a request and returns its id.
    pub(crate) fn send_request(&mut self, method: &str, params: Value) -> std::io::Result<i64> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&wire::request(id, method, params))?;
        Ok(id)
    }

    fn notify(&mut self, method: &str) -> Result<(), Error> {
        self.send(&wire::notification(method, Value::Null))
            .map_err(|_| self.exited_error(method))
    }

    /// Writes one message line to the child and journals it.
    pub(crate) fn send(&mut self, message: &Value) -> std::io::Result<()> {
        let mut line = message.to_string();
        self.journal.outgoing(&line);
        line.push('\n');
        let deadline = Instant::now() + self.config.read_timeout;
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes(), deadline),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Sends a request and waits up to the read timeout for its reply. Notifications that
    /// arrive meanwhile are accounted; server requests are answered by the policy.
    fn request(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self
            .send_request(method, params)
            .map_err(|_| self.exited_error(method))?;
        let deadline = Instant::now() + self.config.read_timeout;
        loop {
            match self.receive(deadline) {
                Received::Timeout => {
                    self.journal.local("timeout", json!({"method": method}));
                    return Err(Error::Timeout {
                        method: method.to_string(),
                        after: self.config.read_timeout,
                        stderr_tail: self.stderr_tail(),
                    });
                }
                Received::Response {
                    id: reply_id,
                    result,
                } if reply_id == json!(id) => {
                    return result.map_err(|(code, message)| Error::Rpc {
                        method: method.to_string(),
                        code,
                        message,
                    });
                }
                Received::Request { id, method, params } => {
                    self.answer_outside_turn(&id, &method, &params);
                }
                Received::StdoutClosed => return Err(self.exited_error(method)),
                Received::Notification { .. }
                | Received::Response { .. }
                | Received::Oversized { .. }
                | Received::DeltasDropped
                | Received::ToolDone { .. } => {}
            }
        }
    }

    /// A server request with no turn running: tool calls fail, everything else follows the
    /// policy (a refusal is journaled; there is no turn to classify).
    fn answer_outside_turn(&mut self, id: &Value, method: &str, params: &Value) {
        let reply = if method == "item/tool/call" {
            ToolResult::failure("no maestro turn is running").to_reply()
        } else {
            match policy::answer(method, params, None) {
                Answer::Refuse { reply, summary } => {
                    self.journal.local(
                        "policy_refusal",
                        json!({"method": method, "summary": summary}),
                    );
                    reply
                }
                Answer::Result(result) => result,
                Answer::Unsupported { code, message } => {
                    let _ = self.send(&wire::error_response(id, code, &message));
                    return;
                }
            }
        };
        let _ = self.send(&wire::response(id, reply));
    }

    /// The error for "the child went away while `method` was outstanding".
    fn exited_error(&mut self, method: &str) -> Error {
        let exit = self.collect_exit();
        Error::ChildExited {
            method: method.to_string(),
            exit,
            stderr_tail: self.stderr_tail(),
        }
    }

    /// After stdout closed: waits briefly for the exit status and the last stderr lines.
    pub(crate) fn collect_exit(&mut self) -> Option<String> {
        self.ended = true;
        let deadline = Instant::now() + EXIT_COLLECT_WAIT;
        while !self.stderr_closed && Instant::now() < deadline {
            match self.events.recv_timeout(deadline - Instant::now()) {
                Ok(Event::Stderr(line)) => self.push_stderr(line),
                Ok(Event::StderrClosed) => self.stderr_closed = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        if self.exit.is_none() {
            self.exit = self.child.wait_until(deadline);
        }
        let exit = self.exit.map(describe_exit);
        self.journal.local(
            "child_exited",
            json!({"exit": exit, "stderr_tail": self.stderr_tail.iter().rev().take(20).rev().collect::<Vec<_>>()}),
        );
        exit
    }

    fn push_stderr(&mut self, line: String) {
        log::debug!("app-server stderr pid={}: {line}", self.child.pid());
        if self.stderr_tail.len() == STDERR_TAIL_LINES {
            self.stderr_tail.pop_front();
        }
        self.stderr_tail.push_back(line);
    }

    /// The next message, reply, tool result or pipe event, or `Timeout` at `deadline`.
    /// Journals and accounts every message; stderr and garbage are absorbed here.
    pub(crate) fn receive(&mut self, deadline: Instant) -> Received {
        loop {
            let finished = self
                .finished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front();
            if let Some(finished) = finished {
                return Received::ToolDone {
                    request_id: finished.request_id,
                    call_id: finished.call_id,
                    result: finished.result,
                };
            }
            if let Some(taken) =
                take_line(&mut self.pending, &mut self.journal, &mut self.accounting)
            {
                if let Some(received) = self.after_line(taken) {
                    return received;
                }
                continue;
            }
            let event = match self.events.try_recv() {
                Ok(event) => event,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                    // About to wait: put what we have on disk first.
                    self.journal.flush();
                    let now = Instant::now();
                    if now >= deadline {
                        return Received::Timeout;
                    }
                    // Wake up for a coalesced delta run that comes due, so a stream that went
                    // quiet is on disk within a few seconds.
                    let wake = self
                        .journal
                        .next_due()
                        .map_or(deadline, |due| due.clamp(now, deadline));
                    match self.events.recv_timeout(wake - now) {
                        Ok(event) => event,
                        Err(RecvTimeoutError::Timeout) if wake < deadline => continue,
                        Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                            return Received::Timeout;
                        }
                    }
                }
            };
            match event {
                Event::Stdout(batch) => {
                    let dropped = batch.dropped_deltas;
                    self.pending = Some((batch, 0));
                    if dropped > 0 {
                        self.journal.dropped(dropped);
                        self.accounting.record_dropped_deltas(dropped);
                        return Received::DeltasDropped;
                    }
                }
                Event::StdoutClosed { error } => {
                    self.journal.local("stdout_closed", json!({"error": error}));
                    self.ended = true;
                    return Received::StdoutClosed;
                }
                Event::Stderr(line) => self.push_stderr(line),
                Event::StderrClosed => self.stderr_closed = true,
                // A result is waiting in `finished`; the top of the loop takes it.
                Event::ToolWake => {}
            }
        }
    }

    /// Turns a taken stdout line into what the caller sees; `None` for lines that are only
    /// recorded.
    fn after_line(&mut self, taken: Taken) -> Option<Received> {
        match taken {
            Taken::Incoming(incoming) => match incoming {
                Incoming::Notification { method, params } => {
                    self.track_items(&method, &params);
                    Some(Received::Notification { method, params })
                }
                Incoming::Request { id, method, params } => {
                    Some(Received::Request { id, method, params })
                }
                Incoming::Response { id, result } => Some(Received::Response {
                    id,
                    result: Ok(result),
                }),
                Incoming::ErrorResponse { id, code, message } => Some(Received::Response {
                    id,
                    result: Err((code, message)),
                }),
                Incoming::Unrecognised => {
                    log::warn!(
                        "app-server sent an unrecognised message thread_id={}",
                        self.thread_id
                    );
                    None
                }
            },
            Taken::Garbage { text, bytes } => {
                self.journal.garbage(&text, bytes);
                let preview: String = text.chars().take(120).collect();
                log::warn!(
                    "app-server wrote a non-JSON line to stdout thread_id={} bytes={bytes}: {preview}",
                    self.thread_id
                );
                None
            }
            Taken::Oversized(bytes) => {
                self.journal
                    .local("oversized_line", json!({"bytes": bytes}));
                log::warn!(
                    "app-server line too long, skipped thread_id={} bytes={bytes}",
                    self.thread_id
                );
                Some(Received::Oversized { bytes })
            }
        }
    }

    /// Remembers the paths of `fileChange` items, which approval requests refer to by id.
    fn track_items(&mut self, method: &str, params: &Value) {
        if method != "item/started" {
            return;
        }
        let Some(item) = params.get("item") else {
            return;
        };
        if item.get("type").and_then(Value::as_str) != Some("fileChange") {
            return;
        }
        let Some(id) = item.get("id").and_then(Value::as_str) else {
            return;
        };
        let paths = item
            .get("changes")
            .and_then(Value::as_array)
            .map(|changes| {
                changes
                    .iter()
                    .filter_map(|c| c.get("path").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.file_changes.insert(id.to_string(), paths);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop_child();
        }
    }
}

/// A stdout line taken from the pending batch.
#[derive(Debug)]
enum Taken {
    Incoming(Incoming),
    Garbage { text: String, bytes: usize },
    Oversized(usize),
}

/// Takes the next line of the pending batch (dropping the batch once it is used up), parsing
/// and absorbing it in place: the line's bytes are never copied out of the batch.
fn take_line(
    pending: &mut Option<(Batch, usize)>,
    journal: &mut Journal,
    accounting: &mut Accounting,
) -> Option<Taken> {
    let (batch, next) = pending.as_mut()?;
    let Some(span) = batch.spans.get(*next) else {
        *pending = None;
        return None;
    };
    *next += 1;
    Some(match span {
        Span::Oversized(bytes) => Taken::Oversized(*bytes),
        Span::Text(range) => match reader::parse_line(&batch.bytes[range.clone()]) {
            Parsed::Message { raw, value } => {
                Taken::Incoming(absorb(journal, accounting, raw, value))
            }
            Parsed::Garbage { text, bytes } => Taken::Garbage { text, bytes },
        },
    })
}

/// The per-message work every received line gets: journal it, classify it, count it, and
/// apply token and rate-limit updates. Shared with [`bench_pipeline`] so the benchmark
/// measures exactly this.
fn absorb(journal: &mut Journal, accounting: &mut Accounting, raw: &str, value: Value) -> Incoming {
    let incoming = wire::classify(value);
    journal.incoming(raw, &incoming);
    account(accounting, &incoming);
    incoming
}

/// Counts one classified message and applies its token and rate-limit updates (the part of
/// [`absorb`] the fuzz entry point shares).
pub(crate) fn account(accounting: &mut Accounting, incoming: &Incoming) {
    match incoming {
        Incoming::Notification { method, params } => {
            accounting.record_event(method, is_progress(method));
            match method.as_str() {
                "thread/tokenUsage/updated" => {
                    accounting.update_tokens(params);
                }
                "account/rateLimits/updated" => accounting.update_rate_limits(params),
                _ => {}
            }
        }
        Incoming::Request { method, .. } => accounting.record_event(method, is_progress(method)),
        _ => {}
    }
}

/// Reader thread → channel → journal and accounting, as a session runs them, over `input`.
pub(crate) fn bench_pipeline(
    input: Box<dyn std::io::Read + Send>,
    journal_path: &std::path::Path,
) -> Result<super::PipelineCounts, Error> {
    let mut journal = Journal::open(journal_path)?;
    let mut accounting = Accounting::default();
    let (events_tx, events) = mpsc::sync_channel(CHANNEL_CAPACITY);
    let reader = reader::spawn_stdout(input, events_tx).map_err(Error::ReaderThread)?;
    let mut n_messages = 0;
    let mut n_dropped = 0;
    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(_) => {
                journal.flush();
                match events.recv() {
                    Ok(event) => event,
                    Err(_) => break,
                }
            }
        };
        match event {
            Event::Stdout(batch) => {
                if batch.dropped_deltas > 0 {
                    journal.dropped(batch.dropped_deltas);
                    accounting.record_dropped_deltas(batch.dropped_deltas);
                    n_dropped += batch.dropped_deltas;
                }
                let mut pending = Some((batch, 0));
                while let Some(taken) = take_line(&mut pending, &mut journal, &mut accounting) {
                    if let Taken::Incoming(_) = taken {
                        n_messages += 1;
                    }
                }
            }
            Event::StdoutClosed { .. } => break,
            _ => {}
        }
    }
    journal.flush();
    let _ = reader.join();
    Ok(super::PipelineCounts {
        messages: n_messages,
        dropped_deltas: n_dropped,
    })
}
