//! Test doubles for the app-server client: a recording tool dispatcher, a recording observer,
//! the fake app-server example and journal helpers.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use maestro::app_server::{
    Activity, ActivityKind, DynamicTool, JournalEntry, Observer, SessionConfig, ToolCall,
    ToolDispatch, ToolResult, read_journal,
};
use serde_json::{Value, json};

/// Answers every call with `handler` and records the calls in order.
pub struct RecordingTools {
    pub calls: Mutex<Vec<ToolCall>>,
    handler: Box<dyn Fn(&ToolCall) -> ToolResult + Send + Sync>,
}

impl RecordingTools {
    pub fn new(handler: impl Fn(&ToolCall) -> ToolResult + Send + Sync + 'static) -> Self {
        RecordingTools {
            calls: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        }
    }

    /// Answers `echo: <arguments.text>`.
    pub fn echo() -> Self {
        RecordingTools::new(|call| {
            ToolResult::ok(format!(
                "echo: {}",
                call.arguments["text"].as_str().unwrap_or("")
            ))
        })
    }

    pub fn calls(&self) -> Vec<ToolCall> {
        self.calls.lock().unwrap().clone()
    }
}

impl ToolDispatch for RecordingTools {
    fn call(&self, call: &ToolCall) -> ToolResult {
        self.calls.lock().unwrap().push(call.clone());
        (self.handler)(call)
    }
}

/// Keeps every activity report.
#[derive(Default)]
pub struct RecordingObserver {
    pub activities: Vec<Activity>,
}

impl RecordingObserver {
    pub fn kinds(&self) -> Vec<ActivityKind> {
        self.activities.iter().map(|a| a.kind).collect()
    }
}

impl Observer for RecordingObserver {
    fn on_activity(&mut self, activity: &Activity) {
        self.activities.push(activity.clone());
    }
}

/// A dynamic tool with an object schema taking `text`.
pub fn tool(name: &str) -> DynamicTool {
    DynamicTool {
        name: name.into(),
        description: format!("The {name} test tool."),
        input_schema: json!({
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "additionalProperties": false,
        }),
    }
}

/// Every journal entry (the journal must exist).
pub fn journal(path: &Path) -> Vec<JournalEntry> {
    read_journal(path).expect("journal readable").entries
}

/// The messages Maestro sent, in order.
pub fn sent(path: &Path) -> Vec<Value> {
    journal(path)
        .into_iter()
        .filter(|e| e.dir == maestro::app_server::Direction::Out)
        .filter_map(|e| e.msg)
        .collect()
}

/// The messages the app-server sent, in order.
pub fn received(path: &Path) -> Vec<Value> {
    journal(path)
        .into_iter()
        .filter(|e| e.dir == maestro::app_server::Direction::In)
        .filter_map(|e| e.msg)
        .collect()
}

/// The fake app-server built from `examples/fake_app_server.rs` (cargo builds examples for
/// `cargo test`). Fails with the fix when it is missing or older than its source.
pub fn fake_app_server() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples")
        .join("fake_app_server");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fake_app_server.rs");
    let built = path.metadata().and_then(|m| m.modified());
    let written = source
        .metadata()
        .and_then(|m| m.modified())
        .expect("fake source");
    match built {
        Ok(built) if built >= written => path,
        _ => panic!(
            "{} is missing or stale; run `cargo test` (it builds examples) or `cargo build --example fake_app_server`",
            path.display()
        ),
    }
}

/// A session config that runs the fake app-server with `scenario`.
pub fn fake_config(dir: &Path, scenario: &str) -> SessionConfig {
    let lane = dir.join("lane");
    std::fs::create_dir_all(&lane).expect("create lane");
    SessionConfig {
        command: vec![fake_app_server().display().to_string(), "app-server".into()],
        cwd: lane,
        remove_env: Vec::new(),
        extra_env: vec![("MAESTRO_FAKE_SCENARIO".into(), scenario.into())],
        developer_instructions: "fake".into(),
        personality: None,
        service_tier: None,
        dynamic_tools: vec![tool("echo")],
        journal_path: dir.join("journal.jsonl"),
        read_timeout: Duration::from_secs(5),
        turn_idle_timeout: Duration::from_secs(5),
        stop: None,
    }
}
