//! The codex app-server client: one child process speaking JSON-RPC over stdio, one thread.
//!
//! This module owns everything about the child: spawning it in its own process group with the
//! secrets removed from its environment, the reader threads for its stdout and stderr, the
//! JSON-RPC framing, the handshake, turns on one thread, the non-interactive answer to every
//! server request, token and rate-limit accounting, the JSONL journal, and shutdown.
//! It deliberately knows nothing of Linear, lanes, run records or retries: callers hand it a
//! [`SessionConfig`], a [`ToolDispatch`] for the dynamic tools they advertise and an
//! [`Observer`] for activity, and get a [`TurnOutcome`] back. The wire contract as implemented
//! is `docs/spec/app-server.md`.
//!
//! It is also the only place that starts codex at all: the one-shot `--version` and
//! `generate-json-schema` runs `protocol probe` needs are here too.
//!
//! Threads: the reader threads only frame, and feed the session through a bounded channel; the
//! session thread (the caller's) owns stdin, the journal and all state; tool calls run on a
//! pool of at most four scoped worker threads for the length of a turn, so parallel calls are
//! answered in the order they finish without a thread (or a tracker connection) per call.

mod accounting;
mod child;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod journal;
mod link;
mod notices;
mod oneshot;
mod outcome;
mod policy;
mod pool;
mod reader;
mod session;
mod tools;
mod turn;
mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use accounting::{
    Accounting, Activity, ActivityKind, ItemStage, NoopObserver, Observer, RateLimitSnapshot,
    RateLimitWindow, TokenUsage,
};
pub use child::{Launcher, RemoteLaunch};
pub use error::Error;
pub use events::{EventSummary, command_text, describe_item, recent_events};
pub use journal::{
    DeltaRun, Direction, JournalEntry, JournalRead, read_journal, read_journal_tail,
};
pub use notices::{Cause, CauseKind, ErrorNotice};
pub use oneshot::{OneShotError, codex_prefix, codex_version, generate_schema};
pub use outcome::{TurnEnd, TurnError, TurnLimits, TurnOutcome};
pub use reader::MAX_LINE_BYTES;
pub use session::{Resume, Session, ShutdownReport};
pub use tools::{ToolCall, ToolDispatch, ToolResult};

/// Everything needed to start one app-server session in one lane.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Program and arguments (`ServiceConfig.agent.command`); no shell is involved.
    pub command: Vec<String>,
    /// The lane: the child's working directory and the thread's `cwd`.
    pub cwd: PathBuf,
    /// Environment variable names removed from the child's environment (the secrets).
    pub remove_env: Vec<String>,
    /// Variables added to the child's environment (for example `CODEX_HOME`). Their names are
    /// journaled, their values are not; still, secrets do not belong here.
    pub extra_env: Vec<(String, String)>,
    /// Sent as `developerInstructions` on `thread/start` when not empty.
    pub developer_instructions: String,
    pub personality: Option<String>,
    pub service_tier: Option<String>,
    /// Advertised as `dynamicTools` on `thread/start`; calls to them reach the [`ToolDispatch`].
    pub dynamic_tools: Vec<DynamicTool>,
    /// The JSONL journal every message in and out is appended to.
    pub journal_path: PathBuf,
    /// How long any single JSON-RPC request may wait for its reply.
    pub read_timeout: Duration,
    /// How long a turn may go without progress before it is interrupted.
    pub turn_idle_timeout: Duration,
    /// When set during a turn, the turn is interrupted and ends [`TurnEnd::Interrupted`].
    pub stop: Option<Arc<AtomicBool>>,
}

/// A dynamic tool advertised to the model on `thread/start`.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamicTool {
    /// Must match `^[a-zA-Z0-9_-]+$` (codex rejects anything else).
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
}

/// What [`bench_pipeline`] saw.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineCounts {
    /// Messages parsed, journaled and accounted.
    pub messages: u64,
    /// Streaming deltas the reader shed because the consumer was behind (counted only).
    pub dropped_deltas: u64,
}

/// Runs the stdout reader and the journal exactly as a session does, over `input`, and says
/// how many messages were journaled and how many deltas were shed. For the benchmarks
/// (`examples/bench_reader.rs`, `examples/bench_journal.rs`) only.
#[doc(hidden)]
pub fn bench_pipeline(
    input: Box<dyn std::io::Read + Send>,
    journal_path: &std::path::Path,
) -> Result<PipelineCounts, Error> {
    link::bench_pipeline(input, journal_path)
}
