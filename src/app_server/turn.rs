//! One turn: `turn/start`, then every notification and server request until `turn/completed`,
//! a timeout, a policy violation or the child's exit decides the outcome.
//!
//! Owns the turn's clocks (reply deadline, idle timeout measured on progress, the wall-clock
//! turn timeout, interrupt grace), tool dispatch to the turn's worker pool (`pool.rs`), the
//! turn's error notices (`notices.rs`), and the classification into a [`TurnEnd`]. It does not
//! retry, pick prompts or interpret the final message; the caller does.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::accounting::{Activity, ActivityKind, ItemStage, Throttle, TokenUsage, is_progress};
use super::link::{Link, Received};
use super::notices::{ErrorNotice, Notices};
use super::outcome::{TurnEnd, TurnError, TurnLimits, TurnOutcome};
use super::policy::{self, Answer};
use super::pool::Pool;
use super::tools::{self, ToolResult};
use super::wire::{self, id_key};
use super::{Observer, SessionConfig, ToolDispatch};

/// What a turn borrows of its session: the link to the child and the settings it reads. The
/// session lends these for one turn (`Session::run_turn`); a turn never sees the handshake,
/// the reader threads or the shutdown.
#[derive(Debug)]
pub(crate) struct SessionView<'s> {
    pub(crate) link: &'s mut Link,
    pub(crate) config: &'s SessionConfig,
    /// Whether an observer was told the thread started (the first turn does it).
    pub(crate) thread_reported: &'s mut bool,
}

/// Why Maestro interrupted a turn.
#[derive(Debug, Clone)]
enum Interrupt {
    IdleTimeout(Duration),
    TurnTimeout(Duration),
    Stop,
    Budget { budget: u64, used: u64 },
    Policy { method: String, summary: String },
    Protocol(String),
}

impl Interrupt {
    fn end(&self) -> TurnEnd {
        match self {
            Interrupt::IdleTimeout(idle) => TurnEnd::IdleTimeout { idle: *idle },
            Interrupt::TurnTimeout(limit) => TurnEnd::TurnTimeout { limit: *limit },
            Interrupt::Stop => TurnEnd::Interrupted,
            Interrupt::Budget { budget, used } => TurnEnd::TokenBudgetExceeded {
                budget: *budget,
                used: *used,
            },
            Interrupt::Policy { method, summary } => TurnEnd::PolicyViolation {
                method: method.clone(),
                summary: summary.clone(),
            },
            Interrupt::Protocol(detail) => TurnEnd::ProtocolError {
                detail: detail.clone(),
            },
        }
    }

    /// Timeouts and stops are about waiting; a turn that finished anyway keeps its own result.
    /// Policy, budget and protocol problems stand whatever codex reports after.
    fn yields_to(&self, status: &str) -> bool {
        matches!(
            self,
            Interrupt::IdleTimeout(_) | Interrupt::TurnTimeout(_) | Interrupt::Stop
        ) && matches!(status, "completed" | "failed")
    }
}

/// How often the stop flag is looked at while waiting.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The most a turn gets to end after `turn/interrupt` (codex takes about 10 ms).
const INTERRUPT_GRACE_MAX: Duration = Duration::from_secs(10);
/// No wait is longer than this, so the loop re-checks its clocks at least this often.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub(crate) fn run(
    session: &mut SessionView<'_>,
    input: &str,
    tools: &dyn ToolDispatch,
    observer: &mut dyn Observer,
    limits: TurnLimits,
) -> TurnOutcome {
    let started = Instant::now();
    let tokens_before = session.link.accounting.thread_tokens;
    let mut turn = Turn::new(session);
    let end = if session.link.is_ended() {
        TurnEnd::ProcessExited {
            exit: session.link.exit_text(),
            stderr_tail: session.link.stderr_tail(),
        }
    } else if turn.stop_requested(session) {
        TurnEnd::Interrupted
    } else {
        if !*session.thread_reported {
            *session.thread_reported = true;
            let activity = Activity::new(
                ActivityKind::ThreadStarted,
                session.link.thread_id(),
                None,
                &session.link.accounting,
            );
            observer.on_activity(&activity);
        }
        session.link.accounting.turn_count += 1;
        std::thread::scope(|scope| {
            let mut pool = Pool::new(
                scope,
                tools,
                session.link.finished_queue(),
                session.link.sender(),
            );
            let end = turn.drive(session, &mut pool, input, observer, limits);
            let dropped = pool.close();
            if dropped > 0 {
                // Codex ended the turn without waiting for them; none of them ran.
                session
                    .link
                    .journal
                    .local("tool_calls_dropped", json!({"count": dropped}));
            }
            end
        })
    };
    let outcome = TurnOutcome {
        turn_id: turn.turn_id.clone(),
        end,
        usage: session.link.accounting.thread_tokens.since(tokens_before),
        duration: started.elapsed(),
        session_ended: session.link.is_ended(),
        notices: std::mem::take(&mut turn.notices).into_vec(),
    };
    record(session, &outcome);
    let activity = Activity::new(
        ActivityKind::TurnCompleted,
        session.link.thread_id(),
        outcome.turn_id.as_deref(),
        &session.link.accounting,
    );
    observer.on_activity(&activity);
    outcome
}

/// Journals and logs the outcome.
fn record(session: &mut SessionView<'_>, outcome: &TurnOutcome) {
    let detail = match &outcome.end {
        TurnEnd::Completed { final_message } => json!({"final_message": final_message}),
        TurnEnd::Failed { error } => json!({
            "message": error.message,
            "codex_error_info": error.codex_error_info,
            "additional_details": error.additional_details,
        }),
        TurnEnd::Interrupted => Value::Null,
        TurnEnd::IdleTimeout { idle } => json!({"idle_ms": idle.as_millis() as u64}),
        TurnEnd::TurnTimeout { limit } => json!({"limit_ms": limit.as_millis() as u64}),
        TurnEnd::ProcessExited { exit, .. } => json!({"exit": exit}),
        TurnEnd::ProtocolError { detail } => json!({"detail": detail}),
        TurnEnd::PolicyViolation { method, summary } => {
            json!({"method": method, "summary": summary})
        }
        TurnEnd::TokenBudgetExceeded { budget, used } => json!({"budget": budget, "used": used}),
    };
    // A turn that completed despite codex's retry notes needs no cause.
    let cause = outcome
        .cause()
        .filter(|_| !matches!(outcome.end, TurnEnd::Completed { .. }));
    session.link.journal.local(
        "turn_outcome",
        json!({
            "turn_id": outcome.turn_id,
            "outcome": outcome.end.kind(),
            "detail": detail,
            "usage": outcome.usage,
            "duration_ms": outcome.duration.as_millis() as u64,
            "session_ended": outcome.session_ended,
            "error_notices": outcome.notices.len(),
            "cause": cause.as_ref().map(|cause| &cause.text),
        }),
    );
    session.link.journal.flush();
    log::info!(
        "turn ended thread_id={} turn_id={} outcome={} tokens={} duration_ms={}{}",
        session.link.thread_id(),
        outcome.turn_id.as_deref().unwrap_or("none"),
        outcome.end.kind(),
        outcome.usage.total,
        outcome.duration.as_millis(),
        cause
            .map(|cause| format!(" cause=\"{}\"", cause.text))
            .unwrap_or_default()
    );
}

/// The state of the turn being driven.
struct Turn {
    request_id: Option<i64>,
    turn_id: Option<String>,
    /// Until the `turn/start` reply arrives.
    reply_deadline: Option<Instant>,
    /// When the wall-clock turn timeout runs out, from `turn/start`.
    turn_deadline: Option<(Instant, Duration)>,
    last_progress: Instant,
    interrupt: Option<Interrupt>,
    interrupt_sent: bool,
    interrupt_deadline: Option<Instant>,
    interrupt_grace: Duration,
    /// Tool calls running on worker threads, by request id key, not yet answered.
    in_flight: HashMap<String, String>,
    final_message: Option<String>,
    failure: Option<TurnError>,
    notices: Notices,
    throttle: Throttle,
}

impl Turn {
    fn new(session: &SessionView<'_>) -> Turn {
        Turn {
            request_id: None,
            turn_id: None,
            reply_deadline: None,
            turn_deadline: None,
            last_progress: Instant::now(),
            interrupt: None,
            interrupt_sent: false,
            interrupt_deadline: None,
            interrupt_grace: session.config.read_timeout.min(INTERRUPT_GRACE_MAX),
            in_flight: HashMap::new(),
            final_message: None,
            failure: None,
            notices: Notices::default(),
            throttle: Throttle::new(Duration::from_secs(1)),
        }
    }

    fn stop_requested(&self, session: &SessionView<'_>) -> bool {
        session
            .config
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(Ordering::SeqCst))
    }

    fn drive(
        &mut self,
        session: &mut SessionView<'_>,
        pool: &mut Pool<'_, '_>,
        input: &str,
        observer: &mut dyn Observer,
        limits: TurnLimits,
    ) -> TurnEnd {
        let params = json!({
            "threadId": session.link.thread_id(),
            "input": [{"type": "text", "text": input}],
        });
        match session.link.send_request("turn/start", params) {
            Ok(id) => self.request_id = Some(id),
            Err(_) => return self.exited(session),
        }
        let tokens_before = session.link.accounting.thread_tokens;
        self.reply_deadline = Some(Instant::now() + session.config.read_timeout);
        self.last_progress = Instant::now();
        self.turn_deadline = limits
            .turn_timeout
            .map(|limit| (self.last_progress + limit, limit));
        loop {
            let deadline = self.next_deadline(session);
            let received = session.link.receive(deadline);
            let now = Instant::now();
            let end = match received {
                Received::Timeout => None,
                Received::Response { id, result } => self.on_response(session, &id, result),
                Received::Notification { method, params } => {
                    if is_progress(&method) {
                        self.last_progress = now;
                    }
                    let end = self.on_notification(session, pool, observer, &method, &params);
                    if end.is_none() && method == "thread/tokenUsage/updated" {
                        self.check_budget(session, limits, tokens_before);
                    }
                    end
                }
                Received::Request { id, method, params } => {
                    if is_progress(&method) {
                        self.last_progress = now;
                    }
                    self.on_request(session, pool, id, &method, &params);
                    None
                }
                Received::DeltasDropped => {
                    // Shed because Maestro fell behind, but the agent was streaming: progress.
                    self.last_progress = now;
                    None
                }
                Received::ToolDone {
                    request_id,
                    call_id,
                    result,
                } => {
                    self.last_progress = now;
                    self.on_tool_done(session, &request_id, &call_id, &result);
                    None
                }
                Received::Oversized { bytes } => {
                    self.begin_interrupt(
                        session,
                        Interrupt::Protocol(format!(
                            "the app-server sent a line of {bytes} bytes, over the {} byte limit",
                            super::MAX_LINE_BYTES
                        )),
                    );
                    None
                }
                Received::StdoutClosed => Some(self.exited(session)),
            };
            if let Some(end) = end {
                return end;
            }
            if let Some(end) = self.check_clocks(session, Instant::now()) {
                return end;
            }
            if self.throttle.due(Instant::now()) {
                let activity = Activity::new(
                    ActivityKind::Progress,
                    session.link.thread_id(),
                    self.turn_id.as_deref(),
                    &session.link.accounting,
                );
                observer.on_activity(&activity);
            }
        }
    }

    fn next_deadline(&self, session: &SessionView<'_>) -> Instant {
        let now = Instant::now();
        let mut deadline = now + MAX_WAIT;
        let mut consider = |candidate: Option<Instant>| {
            if let Some(candidate) = candidate {
                deadline = deadline.min(candidate);
            }
        };
        consider(self.reply_deadline);
        consider(self.interrupt_deadline);
        if self.interrupt.is_none() {
            consider(self.turn_deadline.map(|(deadline, _)| deadline));
            // The idle clock stops while Maestro's own tools run: then the turn waits on us.
            if self.in_flight.is_empty() {
                consider(Some(self.last_progress + session.config.turn_idle_timeout));
            }
            if session.config.stop.is_some() {
                consider(Some(now + STOP_POLL));
            }
        }
        deadline
    }

    /// Deadlines that passed: escalate, or start an interrupt.
    fn check_clocks(&mut self, session: &mut SessionView<'_>, now: Instant) -> Option<TurnEnd> {
        if self
            .interrupt_deadline
            .is_some_and(|deadline| now >= deadline)
        {
            session
                .link
                .kill("the turn did not end after turn/interrupt");
            return Some(
                self.interrupt
                    .as_ref()
                    .map_or(TurnEnd::Interrupted, Interrupt::end),
            );
        }
        if self.reply_deadline.is_some_and(|deadline| now >= deadline) {
            let detail = format!(
                "no reply to turn/start within {} ms",
                session.config.read_timeout.as_millis()
            );
            // Without a turn id there is nothing to interrupt: the child is unresponsive.
            session.link.kill(&detail);
            return Some(TurnEnd::ProtocolError { detail });
        }
        if self.interrupt.is_none() {
            let turn_timeout = self
                .turn_deadline
                .filter(|(deadline, _)| now >= *deadline)
                .map(|(_, limit)| limit);
            if self.stop_requested(session) {
                self.begin_interrupt(session, Interrupt::Stop);
            } else if let Some(limit) = turn_timeout {
                // Wall-clock time, busy or not: a tool call in flight does not pause it.
                self.begin_interrupt(session, Interrupt::TurnTimeout(limit));
            } else if self.in_flight.is_empty()
                && now.duration_since(self.last_progress) >= session.config.turn_idle_timeout
            {
                let idle = session.config.turn_idle_timeout;
                self.begin_interrupt(session, Interrupt::IdleTimeout(idle));
            }
        }
        None
    }

    fn begin_interrupt(&mut self, session: &mut SessionView<'_>, reason: Interrupt) {
        if self.interrupt.is_some() {
            return;
        }
        session
            .link
            .journal
            .local("interrupting", json!({"reason": format!("{reason:?}")}));
        log::info!(
            "interrupting turn thread_id={} turn_id={} reason={reason:?}",
            session.link.thread_id(),
            self.turn_id.as_deref().unwrap_or("none")
        );
        self.interrupt = Some(reason);
        self.send_interrupt(session);
    }

    /// Sends `turn/interrupt` once an interrupt is wanted and the turn id is known.
    fn send_interrupt(&mut self, session: &mut SessionView<'_>) {
        if self.interrupt.is_none() || self.interrupt_sent {
            return;
        }
        let Some(turn_id) = self.turn_id.clone() else {
            return;
        };
        self.interrupt_sent = true;
        self.interrupt_deadline = Some(Instant::now() + self.interrupt_grace);
        let params = json!({"threadId": session.link.thread_id(), "turnId": turn_id});
        // A failed write means the child is gone; its stdout closing ends the turn.
        let _ = session.link.send_request("turn/interrupt", params);
    }

    fn on_response(
        &mut self,
        session: &mut SessionView<'_>,
        id: &Value,
        result: Result<Value, (i64, String)>,
    ) -> Option<TurnEnd> {
        if self
            .request_id
            .is_none_or(|request_id| *id != json!(request_id))
        {
            // The reply to turn/interrupt, or a stray one; nothing depends on it.
            return None;
        }
        self.reply_deadline = None;
        match result {
            Ok(result) => {
                if let Some(turn_id) = result.pointer("/turn/id").and_then(Value::as_str) {
                    self.turn_id = Some(turn_id.to_string());
                }
                self.send_interrupt(session);
                None
            }
            Err((code, message)) => Some(TurnEnd::ProtocolError {
                detail: format!("turn/start rejected: {message} (code {code})"),
            }),
        }
    }

    fn on_notification(
        &mut self,
        session: &mut SessionView<'_>,
        pool: &Pool<'_, '_>,
        observer: &mut dyn Observer,
        method: &str,
        params: &Value,
    ) -> Option<TurnEnd> {
        if let Some(stage) = ItemStage::of(method) {
            observer.on_item(stage, params.get("item").unwrap_or(&Value::Null));
        }
        match method {
            "turn/started" => {
                if self.turn_id.is_none() {
                    self.turn_id = params
                        .pointer("/turn/id")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    self.send_interrupt(session);
                }
                let now = Instant::now();
                self.throttle.reset(now);
                let activity = Activity::new(
                    ActivityKind::TurnStarted,
                    session.link.thread_id(),
                    self.turn_id.as_deref(),
                    &session.link.accounting,
                );
                observer.on_activity(&activity);
            }
            "item/completed" => {
                let item = params.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("agentMessage") {
                    if let Some(text) = item.get("text").and_then(Value::as_str) {
                        self.final_message = Some(text.to_string());
                    }
                }
            }
            "error" => {
                if let Some(notice) = ErrorNotice::from_params(params, crate::clock::now_ms()) {
                    self.notices.push(notice);
                }
                let will_retry = params.get("willRetry").and_then(Value::as_bool);
                let error = params.get("error").and_then(TurnError::from_value);
                if will_retry == Some(true) {
                    // A progress note ("Reconnecting... 2/5"), not the end of the turn.
                    log::info!(
                        "app-server retrying thread_id={} note={}",
                        session.link.thread_id(),
                        error.as_ref().map_or("", |e| e.message.as_str())
                    );
                } else if error.is_some() {
                    self.failure = error;
                }
            }
            "serverRequest/resolved" => {
                // Codex gave up on a request (an interrupt): a late tool result is not sent.
                if let Some(request_id) = params.get("requestId") {
                    let key = id_key(request_id);
                    self.in_flight.remove(&key);
                    // Still queued: it never starts.
                    pool.cancel(&key);
                }
            }
            "turn/completed" => {
                let turn = params.get("turn").unwrap_or(&Value::Null);
                let turn_id = turn.get("id").and_then(Value::as_str);
                let ours = match (&self.turn_id, turn_id) {
                    (Some(expected), Some(got)) => expected == got,
                    _ => true,
                };
                let thread_matches = params
                    .get("threadId")
                    .and_then(Value::as_str)
                    .is_none_or(|thread| thread == session.link.thread_id());
                if ours && thread_matches {
                    if self.turn_id.is_none() {
                        self.turn_id = turn_id.map(str::to_string);
                    }
                    return Some(self.finish(turn));
                }
            }
            _ => {}
        }
        None
    }

    /// Classifies `turn/completed`.
    fn finish(&mut self, turn: &Value) -> TurnEnd {
        let status = turn.get("status").and_then(Value::as_str).unwrap_or("");
        if let Some(interrupt) = self.interrupt.take() {
            if !interrupt.yields_to(status) {
                return interrupt.end();
            }
        }
        match status {
            "completed" => {
                let from_items = turn
                    .get("items")
                    .and_then(Value::as_array)
                    .and_then(|items| {
                        items.iter().rev().find(|item| {
                            item.get("type").and_then(Value::as_str) == Some("agentMessage")
                        })
                    })
                    .and_then(|item| item.get("text").and_then(Value::as_str))
                    .map(str::to_string);
                TurnEnd::Completed {
                    final_message: from_items.or_else(|| self.final_message.take()),
                }
            }
            "failed" => {
                if self.notices.is_empty() {
                    // A failure without an `error` notification still has a cause to tell.
                    let params = json!({"error": turn.get("error"), "willRetry": false});
                    if let Some(notice) = ErrorNotice::from_params(&params, crate::clock::now_ms())
                    {
                        self.notices.push(notice);
                    }
                }
                let error = turn
                    .get("error")
                    .and_then(TurnError::from_value)
                    .or_else(|| self.failure.take())
                    .unwrap_or(TurnError {
                        message: "the turn failed without an error message".into(),
                        codex_error_info: None,
                        additional_details: None,
                    });
                TurnEnd::Failed { error }
            }
            "interrupted" => TurnEnd::Interrupted,
            other => TurnEnd::ProtocolError {
                detail: format!("turn/completed with unknown status `{other}`"),
            },
        }
    }

    fn check_budget(
        &mut self,
        session: &mut SessionView<'_>,
        limits: TurnLimits,
        before: TokenUsage,
    ) {
        let Some(budget) = limits.token_budget else {
            return;
        };
        let used = session.link.accounting.thread_tokens.since(before).total;
        if used > budget {
            self.begin_interrupt(session, Interrupt::Budget { budget, used });
        }
    }

    fn on_request(
        &mut self,
        session: &mut SessionView<'_>,
        pool: &mut Pool<'_, '_>,
        id: Value,
        method: &str,
        params: &Value,
    ) {
        if method == "item/tool/call" {
            self.dispatch_tool(session, pool, id, params);
            return;
        }
        let file_paths = params
            .get("itemId")
            .and_then(Value::as_str)
            .and_then(|item| session.link.file_changes(item))
            .cloned();
        match policy::answer(method, params, file_paths.as_deref()) {
            Answer::Refuse { reply, summary } => {
                let _ = session.link.send(&wire::response(&id, reply));
                session.link.journal.local(
                    "policy_violation",
                    json!({"method": method, "summary": summary}),
                );
                log::warn!(
                    "policy violation, refusing thread_id={} method={method} summary={summary}",
                    session.link.thread_id()
                );
                self.begin_interrupt(
                    session,
                    Interrupt::Policy {
                        method: method.to_string(),
                        summary,
                    },
                );
            }
            Answer::Result(result) => {
                let _ = session.link.send(&wire::response(&id, result));
            }
            Answer::Unsupported { code, message } => {
                let _ = session
                    .link
                    .send(&wire::error_response(&id, code, &message));
                session
                    .link
                    .journal
                    .local("unsupported_request", json!({"method": method}));
                log::warn!(
                    "app-server request not handled thread_id={} method={method}",
                    session.link.thread_id()
                );
            }
        }
    }

    fn dispatch_tool(
        &mut self,
        session: &mut SessionView<'_>,
        pool: &mut Pool<'_, '_>,
        id: Value,
        params: &Value,
    ) {
        let Some(call) = tools::parse_call(params) else {
            let _ = session.link.send(&wire::error_response(
                &id,
                -32602,
                "item/tool/call without callId or tool",
            ));
            return;
        };
        let known = session
            .config
            .dynamic_tools
            .iter()
            .any(|tool| tool.name == call.tool);
        if !known {
            let names: Vec<&str> = session
                .config
                .dynamic_tools
                .iter()
                .map(|tool| tool.name.as_str())
                .collect();
            let result = ToolResult::failure(format!(
                "unknown tool `{}`; available tools: {}",
                call.tool,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ));
            let _ = session.link.send(&wire::response(&id, result.to_reply()));
            return;
        }
        let key = id_key(&id);
        let call_id = call.call_id.clone();
        match pool.submit(key.clone(), id.clone(), call) {
            Ok(()) => {
                self.in_flight.insert(key, call_id);
            }
            Err(answer) => {
                let _ = session.link.send(&wire::response(&id, answer.to_reply()));
            }
        }
    }

    fn on_tool_done(
        &mut self,
        session: &mut SessionView<'_>,
        request_id: &Value,
        call_id: &str,
        result: &ToolResult,
    ) {
        if self.in_flight.remove(&id_key(request_id)).is_some() {
            let _ = session
                .link
                .send(&wire::response(request_id, result.to_reply()));
        } else {
            session.link.journal.local(
                "late_tool_result",
                json!({"request_id": request_id, "call_id": call_id}),
            );
        }
    }

    fn exited(&mut self, session: &mut SessionView<'_>) -> TurnEnd {
        let exit = session.link.collect_exit();
        TurnEnd::ProcessExited {
            exit,
            stderr_tail: session.link.stderr_tail(),
        }
    }
}
