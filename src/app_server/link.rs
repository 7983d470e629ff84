//! The link to one app-server child: messages out on its stdin, everything it writes in
//! through the reader threads' channel (each message journaled and accounted on the way), the
//! tool results the turn's workers finish, and the child's exit.
//!
//! A [`Link`] is the part of a session a turn borrows (`turn.rs`, through
//! [`super::turn::SessionView`]): it sends requests and replies, receives, and reads the
//! accounting. The handshake, the reader threads and the shutdown sequence stay in
//! `session.rs`; what a message means for a turn is `turn.rs`'s.

use std::collections::{HashMap, VecDeque};
use std::process::ExitStatus;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Error;
use super::accounting::{Accounting, is_progress};
use super::child::{Child, Stdin, describe_exit};
use super::journal::Journal;
use super::reader::{self, Batch, CHANNEL_CAPACITY, Event, Parsed, Span};
use super::tools::{FinishedQueue, ToolResult};
use super::wire::{self, Incoming};

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

/// The child, its pipes as Maestro sees them, and the record of everything exchanged.
#[derive(Debug)]
pub(crate) struct Link {
    child: Child,
    stdin: Option<Stdin>,
    events: Receiver<Event>,
    /// Cloned into the reader threads and the tool workers (to wake `receive`); also keeps
    /// `receive` from ever seeing a disconnect.
    events_tx: SyncSender<Event>,
    /// The stdout batch being handled, and the index of its next line.
    pending: Option<(Batch, usize)>,
    /// Tool calls the workers finished, not yet answered.
    finished: FinishedQueue,
    pub(crate) journal: Journal,
    pub(crate) accounting: Accounting,
    /// The thread id from `thread/start` (empty until the handshake has it), for logs.
    thread_id: String,
    next_id: i64,
    /// How long a write to stdin may block.
    read_timeout: Duration,
    stderr_tail: VecDeque<String>,
    stderr_closed: bool,
    /// Set once the child is known to be gone (stdout closed, killed); no more turns.
    ended: bool,
    exit: Option<ExitStatus>,
    /// Paths of `fileChange` items by item id: approval requests do not repeat them.
    file_changes: HashMap<String, Vec<String>>,
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

impl Link {
    /// A link to a freshly spawned child; its reader threads are to send on [`Link::sender`].
    pub(crate) fn new(
        child: Child,
        stdin: Stdin,
        journal: Journal,
        read_timeout: Duration,
    ) -> Link {
        // Bounded: a child writing faster than the session reads waits on its pipe instead of
        // filling Maestro's memory (see `reader.rs`).
        let (events_tx, events) = mpsc::sync_channel(CHANNEL_CAPACITY);
        Link {
            child,
            stdin: Some(stdin),
            events,
            events_tx,
            pending: None,
            finished: Arc::new(Mutex::new(VecDeque::new())),
            journal,
            accounting: Accounting::default(),
            thread_id: String::new(),
            next_id: 0,
            read_timeout,
            stderr_tail: VecDeque::new(),
            stderr_closed: false,
            ended: false,
            exit: None,
            file_changes: HashMap::new(),
        }
    }

    /// Where reader threads and tool workers send what wakes [`Link::receive`].
    pub(crate) fn sender(&self) -> SyncSender<Event> {
        self.events_tx.clone()
    }

    /// Where tool workers leave finished calls.
    pub(crate) fn finished_queue(&self) -> FinishedQueue {
        Arc::clone(&self.finished)
    }

    /// The child's pid, which is also its process group id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub(crate) fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// Records the thread id `thread/start` answered.
    pub(crate) fn set_thread_id(&mut self, thread_id: String) {
        self.thread_id = thread_id;
    }

    /// True once the child has exited or been killed.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// The paths of `fileChange` item `item_id`, which its approval request does not repeat.
    pub(crate) fn file_changes(&self, item_id: &str) -> Option<&Vec<String>> {
        self.file_changes.get(item_id)
    }

    /// The last stderr lines (ANSI stripped), oldest first.
    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail.iter().cloned().collect()
    }

    /// How the child exited, if it has.
    pub(crate) fn exit_text(&mut self) -> Option<String> {
        if self.exit.is_none() {
            self.exit = self.child.try_exit();
        }
        self.exit.map(describe_exit)
    }

    /// Closes stdin and waits up to 2 s for the child to exit, then signals its process group
    /// (SIGTERM, then SIGKILL) and reaps it; finally kills what it left in its group. The exit
    /// status when the child was reaped, and whether it had to be signalled. The link ends.
    pub(crate) fn stop(&mut self) -> (Option<ExitStatus>, bool) {
        let started = Instant::now();
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
        (status.or(self.exit), forced)
    }

    /// Kills the child's group at once (a turn that cannot be interrupted). The link ends.
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

    /// Sends a request and returns its id.
    pub(crate) fn send_request(&mut self, method: &str, params: Value) -> std::io::Result<i64> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&wire::request(id, method, params))?;
        Ok(id)
    }

    /// Writes one message line to the child and journals it.
    pub(crate) fn send(&mut self, message: &Value) -> std::io::Result<()> {
        let mut line = message.to_string();
        self.journal.outgoing(&line);
        line.push('\n');
        let deadline = Instant::now() + self.read_timeout;
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes(), deadline),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
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
