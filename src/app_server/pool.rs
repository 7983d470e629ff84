//! The tool worker pool of one turn: at most [`TOOL_WORKERS`] dynamic tool calls run at once,
//! more wait in a bounded queue, and results go to the session through a [`FinishedQueue`].
//!
//! Each tool call can cost a tracker connection and a thread; a server that issues thousands of
//! calls at once must not get thousands of either. A call that finds the queue full (by count
//! or by argument bytes) is answered at once with a failure the model can act on. Workers are
//! scoped to the turn: dropping the pool closes it, queued calls that never started are dropped
//! (the turn is over; nobody waits for them), and the scope then joins the workers, so a turn
//! returns only after every call that started has returned.
//!
//! It knows nothing of the protocol: it runs [`ToolDispatch::call`] and hands back results.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::Scope;

use serde_json::Value;

use super::reader::Event;
use super::tools::{Finished, FinishedQueue, ToolCall, ToolDispatch, ToolResult};

/// Tool calls that run at once.
pub(crate) const TOOL_WORKERS: usize = 4;
/// Calls that may wait for a worker…
pub(crate) const MAX_QUEUED_CALLS: usize = 256;
/// …and the most their arguments may weigh together (serialized JSON).
pub(crate) const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// One turn's workers and their queue.
pub(crate) struct Pool<'scope, 'env> {
    shared: Arc<Shared>,
    scope: &'scope Scope<'scope, 'env>,
    tools: &'scope dyn ToolDispatch,
    finished: FinishedQueue,
    wake: SyncSender<Event>,
    workers: usize,
}

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    queued_bytes: usize,
    closed: bool,
}

struct Job {
    /// `wire::id_key` of the request, to cancel it.
    key: String,
    request_id: Value,
    call: ToolCall,
    bytes: usize,
}

impl<'scope, 'env> Pool<'scope, 'env> {
    pub fn new(
        scope: &'scope Scope<'scope, 'env>,
        tools: &'scope dyn ToolDispatch,
        finished: FinishedQueue,
        wake: SyncSender<Event>,
    ) -> Self {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                ready: Condvar::new(),
            }),
            scope,
            tools,
            finished,
            wake,
            workers: 0,
        }
    }

    /// Queues a call for the next free worker. `Err` carries the answer to send at once: the
    /// queue is full, or no worker could be started.
    pub fn submit(
        &mut self,
        key: String,
        request_id: Value,
        call: ToolCall,
    ) -> Result<(), ToolResult> {
        let bytes = call.arguments.to_string().len();
        {
            let mut state = self.shared.lock();
            let over_bytes =
                !state.jobs.is_empty() && state.queued_bytes + bytes > MAX_QUEUED_BYTES;
            if state.jobs.len() >= MAX_QUEUED_CALLS || over_bytes {
                return Err(ToolResult::failure(format!(
                    "maestro is busy: {} tool calls are already waiting for one of its {TOOL_WORKERS} workers; call `{}` again once some have been answered",
                    state.jobs.len(),
                    call.tool
                )));
            }
            state.queued_bytes += bytes;
            state.jobs.push_back(Job {
                key,
                request_id,
                call,
                bytes,
            });
        }
        self.shared.ready.notify_one();
        if self.workers < TOOL_WORKERS {
            match self.start_worker() {
                Ok(()) => self.workers += 1,
                Err(error) if self.workers == 0 => {
                    let job = self.shared.lock().jobs.pop_back();
                    log::warn!("cannot start a tool worker: {error}");
                    let tool = job.map(|job| job.call.tool).unwrap_or_default();
                    return Err(ToolResult::failure(format!(
                        "maestro could not run the tool `{tool}`: {error}"
                    )));
                }
                // The workers already running will get to it.
                Err(error) => log::warn!("cannot start another tool worker: {error}"),
            }
        }
        Ok(())
    }

    /// Removes a call that has not started (codex gave up on it); true when it was queued.
    pub fn cancel(&self, key: &str) -> bool {
        let mut state = self.shared.lock();
        let Some(index) = state.jobs.iter().position(|job| job.key == key) else {
            return false;
        };
        if let Some(job) = state.jobs.remove(index) {
            state.queued_bytes -= job.bytes;
        }
        true
    }

    /// Stops taking calls and drops the ones that never started; returns how many.
    pub fn close(&self) -> usize {
        let dropped = {
            let mut state = self.shared.lock();
            state.closed = true;
            state.queued_bytes = 0;
            std::mem::take(&mut state.jobs).len()
        };
        self.shared.ready.notify_all();
        dropped
    }

    fn start_worker(&self) -> std::io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let tools = self.tools;
        let finished = Arc::clone(&self.finished);
        let wake = self.wake.clone();
        std::thread::Builder::new()
            .name("maestro-tool".into())
            .spawn_scoped(self.scope, move || {
                while let Some(job) = shared.next_job() {
                    let result = run_tool(tools, &job.call);
                    finished
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(Finished {
                            request_id: job.request_id,
                            call_id: job.call.call_id,
                            result,
                        });
                    // A full channel means the session is busy and will look at the queue.
                    let _ = wake.try_send(Event::ToolWake);
                }
            })
            .map(|_| ())
    }
}

impl Drop for Pool<'_, '_> {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next call to run; `None` once the pool is closed.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                state.queued_bytes -= job.bytes;
                return Some(job);
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Runs one tool call, turning a panic into a failure result so one bad tool cannot take the
/// session down.
fn run_tool(tools: &dyn ToolDispatch, call: &ToolCall) -> ToolResult {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tools.call(call)))
        .unwrap_or_else(|_| ToolResult::failure(format!("tool `{}` panicked", call.tool)))
}
