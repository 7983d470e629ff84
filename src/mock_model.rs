//! A scripted loopback mock of the OpenAI Responses API, for `protocol probe`, `maestro demo`
//! and tests.
//!
//! Codex, pointed at it through a throwaway `CODEX_HOME`, POSTs `{base_url}/responses` once per
//! model call; each call takes the next [`Step`] of the script and is answered with a
//! server-sent event stream (or an HTTP error, a cut stream, a stall, deltas that never end;
//! the replies that stay open are written by hand in `mock_model/stream.rs`). Every request is
//! recorded so a caller can read what codex sent back, such as a tool's output.
//!
//! One mock can also be a small scripted agent for several conversations at once
//! ([`MockModel::start_routed`]): each [`Route`] is a script of its own, and a request takes
//! the next step of the first route whose markers all appear in it (codex sends the whole
//! conversation every time, so a marker in the first input, such as an issue's heading, keeps
//! routing every later call of that conversation). This is how all of the demo's lanes share
//! one mock.
//! It lives in the library because the shipped `protocol probe` and `demo` need it; it binds
//! 127.0.0.1 only and knows nothing of the app-server protocol.

mod stream;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The model slug the mock's codex config uses: unknown to codex, so codex offers its plain
/// tool set (with a catalogued slug it switches to a JavaScript "code mode").
pub const MOCK_MODEL_SLUG: &str = "mock-model";

/// A stalled reply is released after this long even if the mock is never dropped.
const MAX_STALL: Duration = Duration::from_secs(600);

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Step {
    kind: StepKind,
    usage: Option<Value>,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum StepKind {
    /// These output events, then `response.completed`.
    Complete(Vec<Value>),
    /// These output events, then the stream ends without `response.completed`.
    Cut(Vec<Value>),
    /// The stream opens and then sends nothing until the mock is dropped.
    Stall,
    /// A message streamed one delta at a time and never completed, until the client hangs up
    /// or the mock is dropped: an agent that keeps busy forever.
    EndlessDeltas,
    /// A non-2xx status with a JSON error body.
    HttpError { status: u16, message: String },
}

impl Step {
    /// An assistant message delivered whole.
    pub fn message(text: &str) -> Step {
        Step::complete(vec![output_item_done(json!({
            "type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}],
        }))])
    }

    /// An assistant message streamed in `chunks` (each becomes an `item/agentMessage/delta`).
    pub fn streamed_message(chunks: &[&str]) -> Step {
        let mut events = vec![json!({
            "type": "response.output_item.added", "output_index": 0,
            "item": {"type": "message", "role": "assistant", "id": "msg_stream", "content": []},
        })];
        for chunk in chunks {
            events.push(json!({
                "type": "response.output_text.delta", "item_id": "msg_stream",
                "output_index": 0, "content_index": 0, "delta": chunk,
            }));
        }
        events.push(output_item_done(json!({
            "type": "message", "role": "assistant", "id": "msg_stream",
            "content": [{"type": "output_text", "text": chunks.concat()}],
        })));
        Step::complete(events)
    }

    /// One function call (a dynamic tool or a built-in such as `exec_command`).
    pub fn tool_call(call_id: &str, name: &str, arguments: Value) -> Step {
        Step::tool_calls(&[(call_id, name, arguments)])
    }

    /// Several function calls in one response: codex issues them in parallel.
    pub fn tool_calls(calls: &[(&str, &str, Value)]) -> Step {
        Step::complete(
            calls
                .iter()
                .map(|(call_id, name, arguments)| {
                    output_item_done(json!({
                        "type": "function_call", "call_id": call_id, "name": name,
                        "arguments": arguments.to_string(),
                    }))
                })
                .collect(),
        )
    }

    /// A call to codex's built-in shell tool, with `login: false`: a plain `bash -c`, so the
    /// host's login profile (a `pyenv init` waiting a minute on a stale lock, say) never
    /// decides how long a scripted command takes.
    pub fn exec_command(call_id: &str, command: &str) -> Step {
        Step::tool_call(
            call_id,
            "exec_command",
            json!({"cmd": command, "login": false}),
        )
    }

    /// An HTTP error status with `{"error":{"message","type"}}`.
    pub fn http_error(status: u16, message: &str) -> Step {
        Step {
            kind: StepKind::HttpError {
                status,
                message: message.to_string(),
            },
            usage: None,
            headers: Vec::new(),
        }
    }

    /// A message that starts streaming, then the stream ends before `response.completed`.
    pub fn cut_stream() -> Step {
        Step {
            kind: StepKind::Cut(vec![
                json!({"type": "response.output_item.added", "output_index": 0,
                       "item": {"type": "message", "role": "assistant", "id": "msg_cut", "content": []}}),
                json!({"type": "response.output_text.delta", "item_id": "msg_cut",
                       "output_index": 0, "content_index": 0, "delta": "partial "}),
            ]),
            usage: None,
            headers: Vec::new(),
        }
    }

    /// The stream opens and then nothing more comes until the mock is dropped.
    pub fn stall() -> Step {
        Step {
            kind: StepKind::Stall,
            usage: None,
            headers: Vec::new(),
        }
    }

    /// A message that streams deltas (about 20 a second) and never completes: the turn never
    /// goes idle. The reply ends when codex closes the connection (an interrupt), when the mock
    /// is dropped, or after ten minutes.
    pub fn endless_deltas() -> Step {
        Step {
            kind: StepKind::EndlessDeltas,
            usage: None,
            headers: Vec::new(),
        }
    }

    /// Reports token usage in `response.completed`.
    pub fn with_usage(mut self, input_tokens: u64, output_tokens: u64) -> Step {
        self.usage = Some(json!({
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }));
        self
    }

    /// Adds a response header (for example `x-codex-primary-used-percent`).
    pub fn with_header(mut self, name: &str, value: &str) -> Step {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn complete(events: Vec<Value>) -> Step {
        Step {
            kind: StepKind::Complete(events),
            usage: None,
            headers: Vec::new(),
        }
    }
}

fn output_item_done(item: Value) -> Value {
    json!({"type": "response.output_item.done", "output_index": 0, "item": item})
}

/// One conversation's script in a routed mock: the requests that contain every marker take
/// these steps in order.
#[derive(Debug, Clone)]
pub struct Route {
    /// Texts matched against the raw request body (JSON), so they should hold no quote,
    /// backslash or newline, which JSON escapes.
    pub markers: Vec<String>,
    pub steps: Vec<Step>,
}

/// A route while the mock serves it.
#[derive(Debug)]
struct RouteState {
    markers: Vec<String>,
    steps: VecDeque<Step>,
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub method: String,
    pub path: String,
    pub body: String,
}

impl ModelRequest {
    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The text of the `function_call_output` for `call_id` that codex sent back in `input`.
    pub fn function_call_output(&self, call_id: &str) -> Option<String> {
        let body = self.json()?;
        let item = body.get("input")?.as_array()?.iter().find(|item| {
            item.get("type").and_then(Value::as_str) == Some("function_call_output")
                && item.get("call_id").and_then(Value::as_str) == Some(call_id)
        })?;
        match item.get("output")? {
            Value::String(text) => Some(text.clone()),
            // Content items: join their text parts.
            Value::Array(parts) => Some(
                parts
                    .iter()
                    .filter_map(|part| part.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(""),
            ),
            other => Some(other.to_string()),
        }
    }

    /// The names of the tools advertised in this request.
    pub fn tool_names(&self) -> Vec<String> {
        let Some(body) = self.json() else {
            return Vec::new();
        };
        body.get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|tool| tool.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// State shared with the server threads.
#[derive(Debug, Default)]
struct Shared {
    script: Mutex<VecDeque<Step>>,
    /// When non-empty, requests are answered from these instead of `script`.
    routes: Mutex<Vec<RouteState>>,
    /// Why each model call that got no step went unanswered.
    unanswered: Mutex<Vec<String>>,
    requests: Mutex<Vec<ModelRequest>>,
    /// Signalled when a request is recorded.
    arrived: Condvar,
    /// True once the mock is dropped: releases stalled replies.
    stopping: Mutex<bool>,
    stopped: Condvar,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a server thread panicked mid-update; the data is still the
    // best record there is.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running mock. Dropping it stops the server.
pub struct MockModel {
    address: SocketAddr,
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
}

impl MockModel {
    /// Starts serving `script` on 127.0.0.1 with an OS-chosen port.
    pub fn start(script: Vec<Step>) -> std::io::Result<MockModel> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(std::io::Error::other)?;
        let address = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("mock model is not on an IP address"))?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            ..Shared::default()
        });
        let accept_thread = {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mock-model".into())
                .spawn(move || accept_loop(&server, &shared))?
        };
        Ok(MockModel {
            address,
            server,
            shared,
            accept_thread: Some(accept_thread),
        })
    }

    /// Starts a mock that answers each request from the first of `routes` whose markers all
    /// appear in it. A request no route matches, or whose route has no step left, is answered
    /// 500 and remembered ([`MockModel::unanswered`]).
    pub fn start_routed(routes: Vec<Route>) -> std::io::Result<MockModel> {
        let mock = MockModel::start(Vec::new())?;
        *lock(&mock.shared.routes) = routes
            .into_iter()
            .map(|route| RouteState {
                markers: route.markers,
                steps: route.steps.into(),
            })
            .collect();
        Ok(mock)
    }

    /// Why each model call that found no step was answered 500, in arrival order.
    pub fn unanswered(&self) -> Vec<String> {
        lock(&self.shared.unanswered).clone()
    }

    /// `http://127.0.0.1:PORT/v1`, the provider `base_url` for codex.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ModelRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Waits until at least `count` requests arrived or `timeout` passed; true if they did.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        while requests.len() < count {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            requests = match self.shared.arrived.wait_timeout(requests, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    /// Steps not yet used (across every route of a routed mock).
    pub fn remaining_steps(&self) -> usize {
        lock(&self.shared.script).len()
            + lock(&self.shared.routes)
                .iter()
                .map(|route| route.steps.len())
                .sum::<usize>()
    }

    /// A codex `config.toml` that sends every model call to this mock.
    pub fn codex_config(&self) -> CodexConfig {
        CodexConfig::new(&self.base_url())
    }
}

impl std::fmt::Debug for MockModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockModel")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        *lock(&self.shared.stopping) = true;
        self.shared.stopped.notify_all();
        self.server.unblock();
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `config.toml` that points codex at a mock: unknown model slug, no retries, and
/// `unbounded_connection_retries` off (with it on, codex retries an unreachable model forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexConfig {
    pub base_url: String,
    pub unbounded_connection_retries: bool,
    /// Codex fails a stream after this long without an event (its default is minutes).
    pub stream_idle_timeout_ms: Option<u64>,
    /// Codex's own `approval_policy` (`untrusted`, `on-request`, `never`), when set.
    pub approval_policy: Option<String>,
    /// Codex's own `sandbox_mode` (`read-only`, `workspace-write`, `danger-full-access`).
    pub sandbox_mode: Option<String>,
}

impl CodexConfig {
    pub fn new(base_url: &str) -> CodexConfig {
        CodexConfig {
            base_url: base_url.to_string(),
            unbounded_connection_retries: false,
            stream_idle_timeout_ms: None,
            approval_policy: None,
            sandbox_mode: None,
        }
    }

    pub fn to_toml(&self) -> String {
        let mut text = String::new();
        // Top-level keys first: after a [table] header they would belong to that table.
        if let Some(policy) = &self.approval_policy {
            text.push_str(&format!("approval_policy = \"{policy}\"\n"));
        }
        if let Some(mode) = &self.sandbox_mode {
            text.push_str(&format!("sandbox_mode = \"{mode}\"\n"));
        }
        text.push_str(&format!(
            "model = \"{MOCK_MODEL_SLUG}\"\n\
             model_provider = \"mock\"\n\
             \n\
             [model_providers.mock]\n\
             name = \"mock\"\n\
             base_url = \"{}\"\n\
             wire_api = \"responses\"\n\
             request_max_retries = 0\n\
             stream_max_retries = 0\n",
            self.base_url
        ));
        if let Some(ms) = self.stream_idle_timeout_ms {
            text.push_str(&format!("stream_idle_timeout_ms = {ms}\n"));
        }
        text.push_str(&format!(
            "\n[features]\nunbounded_connection_retries = {}\n",
            self.unbounded_connection_retries
        ));
        text
    }
}

fn accept_loop(server: &tiny_http::Server, shared: &Arc<Shared>) {
    let mut n_responses = 0u64;
    for mut request in server.incoming_requests() {
        if *lock(&shared.stopping) {
            break;
        }
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let recorded = ModelRequest {
            method: request.method().as_str().to_string(),
            path: request.url().split('?').next().unwrap_or("").to_string(),
            body,
        };
        let is_model_call = recorded.method == "POST" && recorded.path.ends_with("/responses");
        let step = if is_model_call {
            next_step(shared, &recorded.body)
        } else {
            Err(String::new())
        };
        lock(&shared.requests).push(recorded);
        shared.arrived.notify_all();
        if !is_model_call {
            let _ = request
                .respond(tiny_http::Response::from_string("not found").with_status_code(404));
            continue;
        }
        n_responses += 1;
        let shared = Arc::clone(shared);
        let response_id = format!("resp_{n_responses}");
        // Each reply gets its own thread so a stalled one never holds up the next request.
        let _ = std::thread::Builder::new()
            .name("mock-model-reply".into())
            .spawn(move || respond(request, step, &response_id, &shared));
    }
}

/// The step for a model call with `body`: the plain script's next, or the next of the first
/// route whose markers all appear in `body`. The error says why there is none (and is
/// remembered for [`MockModel::unanswered`]).
fn next_step(shared: &Shared, body: &str) -> Result<Step, String> {
    let mut routes = lock(&shared.routes);
    let found = if routes.is_empty() {
        lock(&shared.script)
            .pop_front()
            .ok_or_else(|| "mock model script exhausted".to_string())
    } else {
        match routes.iter_mut().find(|route| {
            route
                .markers
                .iter()
                .all(|marker| body.contains(marker.as_str()))
        }) {
            Some(route) => route
                .steps
                .pop_front()
                .ok_or_else(|| format!("mock model script for {:?} exhausted", route.markers)),
            None => Err("no mock model script matches this request".to_string()),
        }
    };
    drop(routes);
    if let Err(reason) = &found {
        lock(&shared.unanswered).push(reason.clone());
    }
    found
}

fn respond(
    request: tiny_http::Request,
    step: Result<Step, String>,
    response_id: &str,
    shared: &Arc<Shared>,
) {
    let step = match step {
        Ok(step) => step,
        Err(reason) => {
            let _ = request.respond(error_response(500, &reason));
            return;
        }
    };
    let headers: Vec<tiny_http::Header> = std::iter::once(("Content-Type", "text/event-stream"))
        .chain(step.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        .filter_map(|(name, value)| header(name, value))
        .collect();
    let status = tiny_http::StatusCode(200);
    match step.kind {
        StepKind::HttpError { status, message } => {
            let _ = request.respond(error_response(status, &message));
        }
        StepKind::Complete(mut events) => {
            let mut response = json!({"id": response_id});
            if let Some(usage) = step.usage {
                response["usage"] = usage;
            }
            events.insert(
                0,
                json!({"type": "response.created", "response": {"id": response_id}}),
            );
            events.push(json!({"type": "response.completed", "response": response}));
            let body = sse(&events);
            let length = body.len();
            let reply = tiny_http::Response::new(
                status,
                headers,
                std::io::Cursor::new(body),
                Some(length),
                None,
            );
            let _ = request.respond(reply);
        }
        StepKind::Cut(events) => {
            let body = sse(&events);
            let length = body.len();
            let reply = tiny_http::Response::new(
                status,
                headers,
                std::io::Cursor::new(body),
                Some(length),
                None,
            );
            let _ = request.respond(reply);
        }
        StepKind::Stall => stream::stall(request, &step.headers, response_id, shared),
        StepKind::EndlessDeltas => {
            stream::endless_deltas(request, &step.headers, response_id, shared);
        }
    }
}

/// Server-sent event framing: `event: <type>` and `data: <json>` per event.
fn sse(events: &[Value]) -> Vec<u8> {
    let mut body = String::new();
    for event in events {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        body.push_str(&format!("event: {kind}\ndata: {event}\n\n"));
    }
    body.into_bytes()
}

fn error_response(status: u16, message: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let body = json!({"error": {"message": message, "type": "mock_error"}}).to_string();
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Some(content_type) = header("Content-Type", "application/json") {
        response.add_header(content_type);
    }
    response
}

/// A header from fixed ASCII text; a malformed one (a caller's typo) is left out.
fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(url: &str, body: &str) -> (u16, String) {
        match ureq::post(url)
            .header("Content-Type", "application/json")
            .send(body)
        {
            Ok(mut response) => (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap(),
            ),
            Err(ureq::Error::StatusCode(code)) => (code, String::new()),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn steps_are_served_in_order_and_requests_recorded() {
        let mock = MockModel::start(vec![
            Step::tool_call("call_1", "echo", json!({"x": 1})).with_usage(10, 5),
            Step::message("done"),
            Step::http_error(500, "boom"),
        ])
        .unwrap();
        let url = format!("{}/responses", mock.base_url());
        let (status, body) = post(&url, r#"{"input":[]}"#);
        assert_eq!(status, 200);
        assert!(
            body.starts_with("event: response.created\ndata: "),
            "{body}"
        );
        assert!(body.contains(r#""name":"echo""#), "{body}");
        assert!(body.contains(r#""arguments":"{\"x\":1}""#), "{body}");
        assert!(body.contains(r#""total_tokens":15"#), "{body}");
        assert!(body.ends_with("\n\n"));
        let input = json!({"input": [{"type": "function_call_output", "call_id": "call_1", "output": "echoed"}]});
        let (_, body) = post(&url, &input.to_string());
        assert!(body.contains(r#""text":"done""#), "{body}");
        assert!(body.contains("event: response.completed"), "{body}");
        assert_eq!(post(&url, "{}").0, 500);
        assert_eq!(post(&url, "{}").0, 500, "an exhausted script answers 500");
        assert_eq!(mock.remaining_steps(), 0);
        let requests = mock.requests();
        assert_eq!(requests.len(), 4);
        assert_eq!(
            requests[1].function_call_output("call_1").as_deref(),
            Some("echoed")
        );
        assert_eq!(requests[0].function_call_output("call_1"), None);
    }

    #[test]
    fn a_routed_mock_keeps_each_conversation_on_its_own_script() {
        let route = |markers: &[&str], texts: &[&str]| Route {
            markers: markers.iter().map(|m| m.to_string()).collect(),
            steps: texts.iter().map(|text| Step::message(text)).collect(),
        };
        let mock = MockModel::start_routed(vec![
            route(&["# A-1: "], &["a first", "a second"]),
            route(&["# A-2: ", "Attempt: 1 of"], &["b attempt one"]),
            route(&["# A-2: ", "Attempt: 2 of"], &["b attempt two"]),
        ])
        .unwrap();
        let url = format!("{}/responses", mock.base_url());
        let call = |input: &str| {
            let (status, body) = post(&url, &json!({"input": input}).to_string());
            (status, body)
        };
        // Interleaved conversations each get their own next step.
        assert!(call("# A-1: one").1.contains("a first"));
        assert!(
            call("# A-2: two - Attempt: 2 of 3")
                .1
                .contains("b attempt two")
        );
        assert!(
            call("# A-2: two - Attempt: 1 of 3")
                .1
                .contains("b attempt one")
        );
        assert!(call("# A-1: one, later").1.contains("a second"));
        assert_eq!(mock.remaining_steps(), 0);
        // An exhausted route and an unknown conversation are 500s, remembered with the reason.
        assert_eq!(call("# A-1: again").0, 500);
        assert_eq!(call("# A-10 is not A-1").0, 500);
        assert_eq!(
            mock.unanswered(),
            [
                "mock model script for [\"# A-1: \"] exhausted",
                "no mock model script matches this request"
            ]
        );
    }

    #[test]
    fn cut_stream_has_no_completion() {
        let mock = MockModel::start(vec![Step::cut_stream()]).unwrap();
        let (status, body) = post(&format!("{}/responses", mock.base_url()), "{}");
        assert_eq!(status, 200);
        assert!(body.contains("response.output_text.delta"));
        assert!(!body.contains("response.completed"));
        assert!(mock.wait_for_requests(1, Duration::from_secs(1)));
    }

    #[test]
    fn a_stall_sends_its_opening_then_holds_the_stream_until_dropped() {
        use std::io::Read;
        let mock = MockModel::start(vec![Step::stall()]).unwrap();
        let url = format!("{}/responses", mock.base_url());
        let (opened_tx, opened) = std::sync::mpsc::channel();
        let client = std::thread::spawn(move || {
            let mut response = ureq::post(&url).send("{}").unwrap();
            let mut reader = response.body_mut().as_reader();
            let mut body = Vec::new();
            let mut chunk = [0u8; 256];
            loop {
                let n = reader.read(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&body).contains("response.created") {
                    let _ = opened_tx.send(());
                }
            }
            String::from_utf8(body).unwrap()
        });
        // The opening arrives while the reply is still stalled...
        opened.recv_timeout(Duration::from_secs(10)).unwrap();
        // ...and the stream ends, without a completion, once the mock goes away.
        drop(mock);
        let body = client.join().unwrap();
        assert!(body.starts_with("event: response.created\n"), "{body}");
        assert!(!body.contains("response.completed"));
    }

    #[test]
    fn endless_deltas_keep_coming_until_the_client_hangs_up() {
        use std::io::Read;
        let mock = MockModel::start(vec![Step::endless_deltas(), Step::message("next")]).unwrap();
        let url = format!("{}/responses", mock.base_url());
        let mut response = ureq::post(&url).send("{}").unwrap();
        let mut reader = response.body_mut().as_reader();
        let mut body = String::new();
        let mut chunk = [0u8; 256];
        // Bounded by the mock's own ten-minute limit; five deltas arrive within a second.
        while body.matches("response.output_text.delta").count() < 5 {
            let n = reader.read(&mut chunk).unwrap();
            assert!(n > 0, "the stream ended early: {body}");
            body.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
        assert!(body.contains("busy 1. ") && !body.contains("response.completed"));
        drop(response);
        // The mock goes on to the next step for the next request.
        let (status, next) = post(&url, "{}");
        assert_eq!(status, 200);
        assert!(next.contains(r#""text":"next""#), "{next}");
    }

    #[test]
    fn codex_config_names_the_mock_and_disables_retries() {
        let mut config = CodexConfig::new("http://127.0.0.1:9/v1");
        config.stream_idle_timeout_ms = Some(3000);
        config.approval_policy = Some("never".into());
        let text = config.to_toml();
        assert!(text.starts_with("approval_policy = \"never\"\n"));
        assert!(text.contains("model = \"mock-model\""));
        assert!(text.contains("base_url = \"http://127.0.0.1:9/v1\""));
        assert!(text.contains("stream_max_retries = 0"));
        assert!(text.contains("stream_idle_timeout_ms = 3000"));
        assert!(text.contains("unbounded_connection_retries = false"));
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["model_providers"]["mock"]["request_max_retries"].as_integer(),
            Some(0)
        );
    }
}
