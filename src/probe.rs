//! `maestro protocol probe`: is the configured codex app-server usable by Maestro?
//!
//! Three steps, one line each, then `PROBE_OK`: the command runs (its version), its schema
//! bundle defines the methods Maestro uses, and a live round trip reaches `turn/completed`
//! after answering a `maestro_probe` dynamic tool call. The round trip is offline and free by
//! default (a built-in loopback mock model and a throwaway `CODEX_HOME`); `--live` uses the
//! operator's own Codex configuration and model instead. The probe needs no maestro.toml.
//! It drives codex only through [`crate::app_server`] and writes nothing outside a temporary
//! directory, which it removes unless a step failed (then the journal is kept for reading).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app_server::{
    self, DynamicTool, NoopObserver, Session, SessionConfig, ToolCall, ToolDispatch, ToolResult,
    TurnEnd, TurnLimits,
};
use crate::cli::ProbeArgs;
use crate::config::{self, AgentConfig, Lookup};
use crate::escape;
use crate::mock_model::{self, MockModel};

/// The methods Maestro relies on, by schema file.
pub const REQUIRED_METHODS: [(&str, &str); 6] = [
    ("ClientRequest.json", "initialize"),
    ("ClientRequest.json", "thread/start"),
    ("ClientRequest.json", "turn/start"),
    ("ServerRequest.json", "item/tool/call"),
    ("ServerNotification.json", "thread/status/changed"),
    ("ServerNotification.json", "turn/completed"),
];

const PROBE_TOOL: &str = "maestro_probe";
/// `--version` and the schema dump take well under a second; this only catches a hang.
const ONESHOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The mock model answers at once; a live model may think for a while.
const MOCK_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const LIVE_IDLE_TIMEOUT: Duration = Duration::from_secs(180);

/// Why the probe did not pass.
#[derive(Debug)]
pub enum Error {
    /// The maestro.toml to probe with is missing (an explicit `--config`) or invalid.
    Config(config::Error),
    /// A step failed; its line on stdout says why, and its journal is kept.
    Step { number: usize, name: &'static str },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(error) => error.fmt(f),
            Error::Step { number, name } => {
                write!(f, "protocol probe failed at step {number} ({name})")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(error) => error.source(),
            Error::Step { .. } => None,
        }
    }
}

/// One probe step: given its scratch directory, a detail for the `ok` line or the reason it
/// failed.
type Step<'a> = dyn Fn(&Path) -> Result<String, String> + 'a;

/// Runs the probe, printing step lines to stdout; the caller reports the error. The lines
/// carry codex's own output (its version, its errors), so every value is escaped; a closed or
/// full stdout is ignored here (the result still says whether the probe passed).
pub fn run(args: &ProbeArgs, lookup: &Lookup) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    let (agent, secrets, source) = probe_settings(args, lookup).map_err(Error::Config)?;
    let source = match &lookup.codex_bin {
        Some(codex_bin)
            if agent.command.first() == Some(&lookup.cwd.join(codex_bin).display().to_string()) =>
        {
            format!("{source}; codex from {}", config::CODEX_BIN_VAR)
        }
        _ => source,
    };
    let _ = writeln!(
        stdout,
        "maestro protocol probe: command `{}` ({})",
        escape::text(&agent.command.join(" ")),
        escape::text(&source)
    );
    let scratch = Scratch::new();
    let steps: [(&'static str, &Step); 3] = [
        ("command", &|dir| {
            app_server::codex_version(&agent.command, &secrets, dir, ONESHOT_TIMEOUT)
                .map_err(|error| with_install_hint(&error.to_string()))
        }),
        ("schema", &|dir| {
            check_schema_step(&agent.command, &secrets, dir)
        }),
        (
            if args.live {
                "round trip (live model)"
            } else {
                "round trip (built-in mock model)"
            },
            &|dir| round_trip(&agent, &secrets, dir, args.live),
        ),
    ];
    for (index, (name, step)) in steps.iter().enumerate() {
        let number = index + 1;
        let dir = scratch.path.join(format!("step{number}"));
        let result = std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create {}: {error}", dir.display()))
            .and_then(|()| step(&dir));
        match result {
            Ok(detail) => {
                let detail = escape::text(&detail);
                let _ = writeln!(stdout, "step {number}/3 {name}: ok ({detail})");
            }
            Err(reason) => {
                let reason = escape::text(&reason);
                let _ = writeln!(stdout, "step {number}/3 {name}: FAILED: {reason}");
                let _ = stdout.flush();
                scratch.keep();
                return Err(Error::Step { number, name });
            }
        }
    }
    let _ = writeln!(stdout, "PROBE_OK");
    Ok(())
}

/// The agent settings to probe: from maestro.toml when one is found, else the defaults.
/// An explicit `--config` that does not exist, or any invalid config, is an error.
fn probe_settings(
    args: &ProbeArgs,
    lookup: &Lookup,
) -> Result<(AgentConfig, Vec<String>, String), config::Error> {
    match config::resolve(args.config.as_deref(), lookup) {
        Ok(path) => {
            let config = config::load(Some(&path), lookup)?;
            let source = format!("from {}", path.display());
            Ok((config.agent.clone(), config.secret_env_vars(), source))
        }
        Err(config::Error::NotFound { .. }) if args.config.is_none() => {
            let defaults = AgentConfig::default();
            let agent = AgentConfig {
                command: lookup.agent_command(defaults.command.clone()),
                ..defaults
            };
            Ok((agent, Vec::new(), "defaults; no maestro.toml found".into()))
        }
        Err(error) => Err(error),
    }
}

fn with_install_hint(error: &str) -> String {
    format!(
        "{error}; install codex (npm install -g @openai/codex@0.169.0) or set [agent] command in maestro.toml"
    )
}

fn check_schema_step(command: &[String], secrets: &[String], dir: &Path) -> Result<String, String> {
    let out = dir.join("schema");
    app_server::generate_schema(command, secrets, &out, dir, ONESHOT_TIMEOUT)
        .map_err(|error| error.to_string())?;
    check_schema(&out)?;
    let methods: Vec<&str> = REQUIRED_METHODS.iter().map(|(_, method)| *method).collect();
    Ok(format!("defines {}", methods.join(", ")))
}

/// Checks that the bundle in `dir` defines every required method.
pub fn check_schema(dir: &Path) -> Result<(), String> {
    let mut missing = Vec::new();
    for file in [
        "ClientRequest.json",
        "ServerRequest.json",
        "ServerNotification.json",
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("the schema bundle has no readable {file}: {error}"))?;
        let schema: Value = serde_json::from_str(&text)
            .map_err(|error| format!("{file} in the schema bundle is not JSON: {error}"))?;
        let defined = schema_methods(&schema);
        for (_, method) in REQUIRED_METHODS
            .iter()
            .filter(|(in_file, _)| *in_file == file)
        {
            if !defined.iter().any(|name| name == method) {
                missing.push(format!("{method} ({file})"));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the schema bundle lacks {}; this codex does not speak the protocol Maestro was built for (@openai/codex@0.169.0)",
            missing.join(", ")
        ))
    }
}

/// The method names a ClientRequest/ServerRequest/ServerNotification schema defines: the
/// `enum` of each `oneOf` variant's `method` property.
fn schema_methods(schema: &Value) -> Vec<String> {
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|variant| variant.pointer("/properties/method/enum")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Answers `maestro_probe` when the model passes back the nonce it was given.
struct ProbeTool {
    nonce: String,
    calls: Mutex<Vec<ToolCall>>,
}

impl ToolDispatch for ProbeTool {
    fn call(&self, call: &ToolCall) -> ToolResult {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call.clone());
        }
        if call.arguments.get("nonce").and_then(Value::as_str) == Some(self.nonce.as_str()) {
            ToolResult::ok(format!("maestro_probe ok {}", self.nonce))
        } else {
            ToolResult::failure(format!(
                "wrong or missing nonce; call {PROBE_TOOL} with {{\"nonce\": \"{}\"}}",
                self.nonce
            ))
        }
    }
}

fn round_trip(
    agent: &AgentConfig,
    secrets: &[String],
    dir: &Path,
    live: bool,
) -> Result<String, String> {
    let nonce = format!(
        "{:x}",
        crate::clock::now_ms() ^ u64::from(std::process::id()) << 20
    );
    let expected = format!("maestro probe complete {nonce}");
    let mock = if live {
        None
    } else {
        let mock = MockModel::start(vec![
            mock_model::Step::tool_call("call_maestro_probe", PROBE_TOOL, json!({"nonce": nonce})),
            mock_model::Step::message(&expected),
        ])
        .map_err(|error| format!("cannot start the built-in mock model: {error}"))?;
        Some(mock)
    };
    let lane = dir.join("lane");
    let journal_path = dir.join("journal.jsonl");
    std::fs::create_dir_all(&lane)
        .map_err(|error| format!("cannot create {}: {error}", lane.display()))?;
    let mut extra_env = Vec::new();
    if let Some(mock) = &mock {
        let home = dir.join("codex-home");
        std::fs::create_dir_all(&home)
            .and_then(|()| std::fs::write(home.join("config.toml"), mock.codex_config().to_toml()))
            .map_err(|error| format!("cannot write a throwaway CODEX_HOME: {error}"))?;
        extra_env.push(("CODEX_HOME".to_string(), home.display().to_string()));
    }
    let config = SessionConfig {
        command: agent.command.clone(),
        cwd: lane,
        remove_env: secrets.to_vec(),
        extra_env,
        developer_instructions: format!(
            "This is a connectivity probe run by Maestro. Call the {PROBE_TOOL} tool exactly once \
             with {{\"nonce\": \"{nonce}\"}}, then reply with exactly: {expected}"
        ),
        personality: None,
        service_tier: None,
        dynamic_tools: vec![DynamicTool {
            name: PROBE_TOOL.into(),
            description:
                "Confirms that Maestro answers dynamic tool calls. Pass the nonce you were given."
                    .into(),
            input_schema: json!({
                "type": "object",
                "properties": {"nonce": {"type": "string"}},
                "required": ["nonce"],
                "additionalProperties": false,
            }),
        }],
        journal_path: journal_path.clone(),
        read_timeout: Duration::from_millis(agent.read_timeout_ms),
        turn_idle_timeout: if live {
            LIVE_IDLE_TIMEOUT
        } else {
            MOCK_IDLE_TIMEOUT
        }
        .min(Duration::from_millis(agent.turn_idle_timeout_ms)),
        stop: None,
    };
    let journal_hint = || format!("journal: {}", journal_path.display());
    let started = Instant::now();
    let mut session =
        Session::start(config).map_err(|error| format!("{error} ({})", journal_hint()))?;
    let tool = ProbeTool {
        nonce: nonce.clone(),
        calls: Mutex::new(Vec::new()),
    };
    let input =
        format!("Call {PROBE_TOOL} with nonce {nonce}, then reply with exactly: {expected}");
    let outcome = session.run_turn(&input, &tool, &mut NoopObserver, TurnLimits::default());
    let thread_id = session.thread_id().to_string();
    session.shutdown();
    let final_message = match outcome.end {
        TurnEnd::Completed { final_message } => final_message.unwrap_or_default(),
        other => {
            return Err(format!(
                "the turn ended {} instead of completing: {} ({})",
                other.kind(),
                describe_end(&other),
                journal_hint()
            ));
        }
    };
    let calls = tool.calls.lock().map(|calls| calls.len()).unwrap_or(0);
    if calls == 0 {
        return Err(format!(
            "the model never called {PROBE_TOOL} ({})",
            journal_hint()
        ));
    }
    if let Some(mock) = &mock {
        let answered = mock
            .requests()
            .iter()
            .filter_map(|request| request.function_call_output("call_maestro_probe"))
            .any(|output| output == format!("maestro_probe ok {nonce}"));
        if !answered {
            return Err(format!(
                "the {PROBE_TOOL} answer never reached the model ({})",
                journal_hint()
            ));
        }
    }
    let expected_ok = if live {
        final_message.contains(&nonce)
    } else {
        final_message == expected
    };
    if !expected_ok {
        return Err(format!(
            "the final message was {final_message:?}, expected {expected:?} ({})",
            journal_hint()
        ));
    }
    Ok(format!(
        "thread {thread_id}, {PROBE_TOOL} answered, final message {final_message:?}, {:.1} s",
        started.elapsed().as_secs_f64()
    ))
}

/// A turn's end as a sentence for the operator (the `Debug` form is for developers).
fn describe_end(end: &TurnEnd) -> String {
    match end {
        TurnEnd::Completed { .. } => "the turn completed".into(),
        TurnEnd::Failed { error } => format!("codex reported the turn failed: {}", error.message),
        TurnEnd::Interrupted => "the turn was interrupted".into(),
        TurnEnd::IdleTimeout { idle } => format!(
            "codex made no progress for {:.1} s, so the turn was interrupted (raise [agent] turn_idle_timeout_ms if the model is slow, or check that codex can reach it)",
            idle.as_secs_f64()
        ),
        TurnEnd::TurnTimeout { limit } => format!(
            "the turn ran for {:.1} s, its wall-clock limit, so it was interrupted",
            limit.as_secs_f64()
        ),
        TurnEnd::ProcessExited { exit, stderr_tail } => {
            let mut text = format!(
                "codex exited during the turn ({})",
                exit.as_deref().unwrap_or("no exit status")
            );
            if let Some(line) = stderr_tail
                .iter()
                .rev()
                .find(|line| !line.trim().is_empty())
            {
                text.push_str(&format!("; its last words: {}", line.trim()));
            }
            text
        }
        TurnEnd::ProtocolError { detail } => {
            format!("codex broke the app-server protocol: {detail}")
        }
        TurnEnd::PolicyViolation { method, summary } => format!(
            "codex asked for a human ({method}: {summary}); Maestro refuses approvals, so set approval_policy = \"never\" in Codex's own config.toml"
        ),
        TurnEnd::TokenBudgetExceeded { budget, used } => {
            format!("the turn used {used} tokens, over its budget of {budget}")
        }
    }
}

/// A temporary directory for the probe's files, removed on drop unless kept.
struct Scratch {
    path: PathBuf,
    keep: std::cell::Cell<bool>,
}

impl Scratch {
    fn new() -> Scratch {
        let path = std::env::temp_dir().join(format!(
            "maestro-probe-{}-{}",
            std::process::id(),
            crate::clock::now_ms()
        ));
        Scratch {
            path,
            keep: std::cell::Cell::new(false),
        }
    }

    fn keep(&self) {
        self.keep.set(true);
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep.get() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, client: &[&str], server: &[&str], notes: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for (file, methods) in [
            ("ClientRequest.json", client),
            ("ServerRequest.json", server),
            ("ServerNotification.json", notes),
        ] {
            let variants: Vec<Value> = methods
                .iter()
                .map(|m| json!({"properties": {"method": {"enum": [m]}}}))
                .collect();
            std::fs::write(dir.join(file), json!({"oneOf": variants}).to_string()).unwrap();
        }
    }

    #[test]
    fn schema_check_names_every_missing_method() {
        let dir = std::env::temp_dir().join(format!("maestro-probe-unit-{}", std::process::id()));
        bundle(
            &dir,
            &["initialize", "thread/start", "turn/start"],
            &["item/tool/call"],
            &["thread/status/changed", "turn/completed"],
        );
        assert_eq!(check_schema(&dir), Ok(()));
        bundle(
            &dir,
            &["initialize", "turn/start"],
            &[],
            &["turn/completed"],
        );
        let error = check_schema(&dir).unwrap_err();
        assert!(
            error.starts_with(
                "the schema bundle lacks thread/start (ClientRequest.json), item/tool/call (ServerRequest.json), thread/status/changed (ServerNotification.json);"
            ),
            "{error}"
        );
        std::fs::remove_file(dir.join("ServerRequest.json")).unwrap();
        assert!(
            check_schema(&dir)
                .unwrap_err()
                .starts_with("the schema bundle has no readable ServerRequest.json")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
