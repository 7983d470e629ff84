//! One app-server session: spawn, handshake, requests outside a turn, and shutdown.
//!
//! The [`Session`] owns the child's [`Link`] (its stdin, the event channel, the journal and the
//! accounting) and the reader threads; nothing else in Maestro touches them. A turn
//! (`turn.rs`) borrows the link and the settings it reads as a [`SessionView`], never the
//! session itself. What a session does not do: choose prompts, retry, or decide what an
//! outcome means for the issue — those belong to the caller.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::accounting::{Accounting, Activity, ActivityKind, TokenUsage};
use super::child::{self, Stdin, describe_exit};
use super::journal::Journal;
use super::link::{Link, Received};
use super::policy::{self, Answer};
use super::reader;
use super::tools::ToolResult;
use super::turn::{self, SessionView};
use super::wire;
use super::{Error, Observer, SessionConfig, ToolDispatch, TurnLimits, TurnOutcome};

/// How long shutdown waits for the reader threads to see their pipes close.
const READER_JOIN_WAIT: Duration = Duration::from_secs(1);

/// A running `codex app-server` with one thread started on it.
///
/// Dropping a session that was not [`shut down`](Session::shutdown) runs the same stop
/// sequence, so an error path never leaves a process behind.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    link: Link,
    readers: Vec<JoinHandle<()>>,
    model: Option<String>,
    /// Whether an observer was told the thread started (the first turn does it).
    thread_reported: bool,
    stopped: bool,
    /// Defers custody sweeps after other commands while the agent runs (`custody`).
    custody_hold: Option<crate::custody::SessionHold>,
    /// The thread was resumed (`thread/resume`), not started.
    resumed: bool,
}

/// A thread to resume instead of starting a new one: an earlier session's thread, whose
/// history (and dynamic tools) codex reloads from its rollout under `CODEX_HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub thread_id: String,
    /// What the thread had spent before: codex counts it in the resumed thread's totals.
    pub tokens_before: TokenUsage,
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

impl Session {
    /// Spawns the app-server, runs the handshake (`initialize` with `experimentalApi`,
    /// `initialized`) and starts a thread in `config.cwd` with the configured instructions and
    /// dynamic tools. Sandbox and approval policy are not sent: the child keeps its own.
    pub fn start(config: SessionConfig) -> Result<Session, Error> {
        Session::start_with(config, &child::Launcher::Local, None)
    }

    /// [`Session::start`] through `launcher`, resuming `resume`'s thread when given.
    ///
    /// With [`child::Launcher::Remote`] the app-server runs on another host over a local
    /// command's stdio (ssh), and `config.cwd` is the thread's directory there. Everything else
    /// — the handshake, the readers, turns, tools, the journal — is the same and stays in this
    /// process.
    ///
    /// `resume` (`thread/resume`): codex reloads the thread's history and dynamic tools; the
    /// developer instructions stay those the thread started with. A thread codex refuses to
    /// resume (its rollout is gone, another `CODEX_HOME`) is journaled and logged, and a new
    /// thread starts instead; see [`Session::resumed`].
    pub fn start_with(
        config: SessionConfig,
        launcher: &child::Launcher,
        resume: Option<&Resume>,
    ) -> Result<Session, Error> {
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
        let link = Link::new(
            spawned.child,
            Stdin::new(spawned.stdin),
            journal,
            config.read_timeout,
        );
        let mut session = Session {
            config,
            link,
            readers: Vec::new(),
            model: None,
            thread_reported: false,
            stopped: false,
            custody_hold: Some(crate::custody::SessionHold::new()),
            resumed: false,
        };
        // From here on, an early return drops `session`, which stops the child.
        let stdout = reader::spawn_stdout(spawned.stdout, session.link.sender());
        session.readers.push(stdout.map_err(Error::ReaderThread)?);
        let stderr = reader::spawn_stderr(spawned.stderr, session.link.sender());
        session.readers.push(stderr.map_err(Error::ReaderThread)?);
        session.handshake(resume)?;
        Ok(session)
    }

    fn handshake(&mut self, resume: Option<&Resume>) -> Result<(), Error> {
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
        if let Some(resume) = resume {
            if self.resume_thread(resume)? {
                return Ok(());
            }
        }
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
        self.link.set_thread_id(thread_id.to_string());
        self.model = result
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.link.journal.local(
            "thread_started",
            json!({"thread_id": self.link.thread_id(), "model": self.model}),
        );
        log::info!(
            "app-server thread started thread_id={} model={}",
            self.link.thread_id(),
            self.model.as_deref().unwrap_or("unknown")
        );
        Ok(())
    }

    /// `thread/resume` of `resume`'s thread in this lane: true when codex resumed it, false
    /// when it refused (the caller starts a new thread); an error when the child went away.
    fn resume_thread(&mut self, resume: &Resume) -> Result<bool, Error> {
        let params = json!({"threadId": resume.thread_id, "cwd": self.config.cwd});
        let result = match self.request("thread/resume", params) {
            Ok(result) => result,
            Err(Error::Rpc { code, message, .. }) => {
                self.link.journal.local(
                    "thread_resume_refused",
                    json!({"thread_id": resume.thread_id, "code": code, "message": message}),
                );
                log::warn!(
                    "app-server refused to resume the thread, starting a new one thread_id={} error=\"{message}\"",
                    resume.thread_id
                );
                return Ok(false);
            }
            Err(error) => return Err(error),
        };
        let Some(thread_id) = result.pointer("/thread/id").and_then(Value::as_str) else {
            return Err(Error::Protocol {
                method: "thread/resume".into(),
                detail: "the result has no thread.id".into(),
            });
        };
        self.link.set_thread_id(thread_id.to_string());
        self.link.accounting.tokens_before = resume.tokens_before;
        self.model = result
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string);
        self.resumed = true;
        self.link.journal.local(
            "thread_resumed",
            json!({"thread_id": self.link.thread_id(), "model": self.model}),
        );
        log::info!(
            "app-server thread resumed thread_id={} model={}",
            self.link.thread_id(),
            self.model.as_deref().unwrap_or("unknown")
        );
        Ok(true)
    }

    /// Whether the thread was resumed rather than started ([`Session::start_resuming`]).
    pub fn resumed(&self) -> bool {
        self.resumed
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
        let mut view = SessionView {
            link: &mut self.link,
            config: &self.config,
            thread_reported: &mut self.thread_reported,
        };
        turn::run(&mut view, input, tools, observer, limits)
    }

    /// The thread id from `thread/start` (or `thread/resume`).
    pub fn thread_id(&self) -> &str {
        self.link.thread_id()
    }

    /// The model the thread runs on, as `thread/start` reported it.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn accounting(&self) -> &Accounting {
        &self.link.accounting
    }

    /// An activity snapshot now (for example right after `start`).
    pub fn activity(&self, kind: ActivityKind) -> Activity {
        Activity::new(kind, self.link.thread_id(), None, &self.link.accounting)
    }

    /// The child's pid, which is also its process group id.
    pub fn pid(&self) -> u32 {
        self.link.pid()
    }

    /// The last stderr lines (ANSI stripped), oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.link.stderr_tail()
    }

    /// False once the child has exited or been killed.
    pub fn is_alive(&self) -> bool {
        !self.link.is_ended()
    }

    /// Closes stdin, waits up to 2 s for the child to exit, then signals its process group
    /// (SIGTERM, then SIGKILL), reaps it and joins the reader threads.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop_child()
    }

    fn stop_child(&mut self) -> ShutdownReport {
        let started = Instant::now();
        self.stopped = true;
        let (status, forced) = self.link.stop();
        // What left the group (a `setsid` command of the agent's) was reparented to Maestro
        // when codex exited, if this process took custody; it goes too, and with it whatever
        // still held the pipes.
        self.custody_hold = None;
        let escapees = crate::custody::sweep(Some(self.link.pid())).killed;
        let readers_joined = self.join_readers(Instant::now() + READER_JOIN_WAIT);
        let exit = status.map(describe_exit);
        let report = ShutdownReport {
            exit,
            forced,
            readers_joined,
            elapsed: started.elapsed(),
        };
        self.link.journal.local(
            "stopped",
            json!({
                "exit": report.exit,
                "forced": report.forced,
                "escapees_killed": escapees.len(),
                "readers_joined": report.readers_joined,
                "elapsed_ms": report.elapsed.as_millis() as u64,
            }),
        );
        self.link.journal.flush();
        log::debug!(
            "app-server stopped pid={} exit={} forced={}",
            self.link.pid(),
            report.exit.as_deref().unwrap_or("unknown"),
            report.forced
        );
        report
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

    fn notify(&mut self, method: &str) -> Result<(), Error> {
        self.link
            .send(&wire::notification(method, Value::Null))
            .map_err(|_| self.exited_error(method))
    }

    /// Sends a request and waits up to the read timeout for its reply. Notifications that
    /// arrive meanwhile are accounted; server requests are answered by the policy.
    fn request(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self
            .link
            .send_request(method, params)
            .map_err(|_| self.exited_error(method))?;
        let deadline = Instant::now() + self.config.read_timeout;
        loop {
            match self.link.receive(deadline) {
                Received::Timeout => {
                    self.link
                        .journal
                        .local("timeout", json!({"method": method}));
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
                    self.link.journal.local(
                        "policy_refusal",
                        json!({"method": method, "summary": summary}),
                    );
                    reply
                }
                Answer::Result(result) => result,
                Answer::Unsupported { code, message } => {
                    let _ = self.link.send(&wire::error_response(id, code, &message));
                    return;
                }
            }
        };
        let _ = self.link.send(&wire::response(id, reply));
    }

    /// The error for "the child went away while `method` was outstanding".
    fn exited_error(&mut self, method: &str) -> Error {
        let exit = self.link.collect_exit();
        Error::ChildExited {
            method: method.to_string(),
            exit,
            stderr_tail: self.stderr_tail(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop_child();
        }
    }
}
