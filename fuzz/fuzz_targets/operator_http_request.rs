//! The operator HTTP endpoint on arbitrary request bytes, served exactly as a connection is
//! (`maestro::operator_http::respond`), delivered in chunks of a size byte 0 picks (1..=64).
//!
//! Checked: a client that sends a full head always gets a well-formed HTTP/1.1 response (status
//! line with a known reason, `Name: value` headers, a Content-Length that matches the body, JSON
//! bodies that parse; for `HEAD`, no body at all), and a 2xx only for a well-formed request:
//! `GET|HEAD <target> HTTP/1.0|1.1` with a visible-ASCII origin-form target naming a route, and
//! header lines of the form `name: value`. A client that never finishes its head gets nothing.
#![no_main]

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maestro::config::{self, ServiceConfig};
use maestro::operator_http::{self, Health};
use maestro::workspace::Layout;
use maestro::workspace::record::{self, Phase, RunRecord, RunStatus, Tokens};

const MAX_HEAD_BYTES: usize = 16 * 1024;

struct Fixture {
    config: ServiceConfig,
    health: Health,
}

/// A workspace with one finished run for ABC-1, so `/api/v1/ABC-1` finds something, and a
/// daemon loop that ticked just now, so `/healthz` is 200.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root: PathBuf =
            std::env::temp_dir().join(format!("maestro-fuzz-http-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let text = format!(
            "id = \"fuzz\"\nrepo_root = \"{}\"\n[tracker]\napi_key_env_var = \"FUZZ_LINEAR_KEY\"\n",
            root.display()
        );
        let config = config::parse(&root.join("maestro.toml"), &text, None).unwrap();
        let run = RunRecord {
            schema_version: record::SCHEMA_VERSION,
            run_id: "run-ABC-1".into(),
            project_id: "fuzz".into(),
            issue_id: "id-ABC-1".into(),
            issue_identifier: "ABC-1".into(),
            issue_url: None,
            attempt: 1,
            branch: "x/fuzz-abc-1".into(),
            workspace_path: ".workspaces/ABC-1".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: Some("2026-01-01T00:01:00Z".into()),
            phase: Phase::Finished,
            status: RunStatus::Handoff,
            thread_id: None,
            turn_count: 1,
            tokens: Tokens::default(),
            disposition: None,
            error_class: None,
            error_message: None,
            tool_calls: Vec::new(),
            validation: Vec::new(),
            pr_url: None,
            retry: None,
            pid: 1,
        };
        record::save_run(&Layout::new(&config.workspace_root), &run).unwrap();
        let health = Health::default();
        health
            .poll_interval_ms
            .store(24 * 3600 * 1000, std::sync::atomic::Ordering::SeqCst);
        health.tick_finished(std::time::Duration::from_millis(1));
        Fixture { config, health }
    })
}

/// Hands out at most `chunk` bytes per read, as a slow client would.
struct Chunked<'a> {
    rest: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = self.rest.len().min(self.chunk).min(buffer.len());
        buffer[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn known_route(path: &str) -> bool {
    matches!(
        path,
        "/" | "/state" | "/healthz" | "/metrics" | "/api/v1/state"
    ) || path
        .strip_prefix("/api/v1/")
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Whether `input` starts with a request that deserves a 2xx, judged independently of the
/// server's own parser.
fn well_formed(input: &[u8]) -> bool {
    let head_end = match (find(input, b"\r\n\r\n"), find(input, b"\n\n")) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => match a.or(b) {
            Some(end) => end,
            None => return false,
        },
    };
    let head = &input[..head_end];
    let mut lines = head
        .split(|&byte| byte == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let Some(request_line) = lines.next() else {
        return false;
    };
    let Some(rest) = request_line
        .strip_prefix(b"GET ")
        .or_else(|| request_line.strip_prefix(b"HEAD "))
    else {
        return false;
    };
    let (target, version) = match rest.iter().position(|&byte| byte == b' ') {
        Some(space) => (&rest[..space], &rest[space + 1..]),
        None => return false,
    };
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return false;
    }
    if !target.starts_with(b"/") || !target.iter().all(|byte| (0x21..=0x7e).contains(byte)) {
        return false;
    }
    let target = std::str::from_utf8(target).unwrap();
    let path = target.split('?').next().unwrap();
    if !known_route(path) {
        return false;
    }
    lines.all(|line| match line.iter().position(|&byte| byte == b':') {
        Some(colon) => {
            colon > 0
                && line[..colon].iter().all(|&byte| is_tchar(byte))
                && line[colon + 1..]
                    .iter()
                    .all(|&byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f))
        }
        None => false,
    })
}

/// Whether `input`'s request line asks for `HEAD`.
fn is_head(input: &[u8]) -> bool {
    input.starts_with(b"HEAD /")
}

/// The path of a request `well_formed` accepted.
fn request_path(input: &[u8]) -> &str {
    let line = input.split(|&byte| byte == b' ').nth(1).unwrap();
    let target = std::str::from_utf8(line).unwrap();
    target.split('?').next().unwrap()
}

/// Checks the response's shape. A `HEAD` request the server parsed (`head_request` and any
/// status but the three it gives unparsed heads: 400, 408, 431) is answered without a body,
/// with the Content-Length GET would have had, so that length is not compared.
fn check_response(response: &[u8], head_request: bool) -> u16 {
    let head_end = find(response, b"\r\n\r\n").expect("a response head ends with a blank line");
    let head = std::str::from_utf8(&response[..head_end]).expect("the head is UTF-8");
    let body = &response[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line:?}");
    let code = parts.next().unwrap_or("");
    assert!(
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
        "{status_line:?}"
    );
    let status: u16 = code.parse().unwrap();
    assert!((100..600).contains(&status), "{status_line:?}");
    let reason = parts.next().unwrap_or("");
    assert!(!reason.is_empty() && reason != "Unknown", "{status_line:?}");
    let mut content_length = None;
    let mut json = false;
    for line in lines {
        let (name, value) = line.split_once(": ").expect("headers are `Name: value`");
        assert!(!name.is_empty() && name.bytes().all(is_tchar), "{line:?}");
        assert!(!value.contains(['\r', '\n']), "{line:?}");
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().unwrap());
        }
        if name.eq_ignore_ascii_case("content-type") && value.starts_with("application/json") {
            json = true;
        }
    }
    if head_request && !matches!(status, 400 | 408 | 431) {
        assert!(body.is_empty(), "a response to HEAD has no body");
        assert!(
            content_length.is_some(),
            "a response to HEAD has a Content-Length"
        );
        return status;
    }
    assert_eq!(
        content_length,
        Some(body.len()),
        "Content-Length matches the body"
    );
    if json {
        let value: serde_json::Value = serde_json::from_slice(body).expect("a JSON body parses");
        if status >= 400 {
            assert!(
                value.pointer("/error/code").is_some(),
                "an error body names its code"
            );
        }
    }
    status
}

fuzz_target!(|data: &[u8]| {
    let [chunk, input @ ..] = data else {
        return;
    };
    let fixture = fixture();
    let mut reader = Chunked {
        rest: input,
        chunk: usize::from(*chunk % 64) + 1,
    };
    let Some(response) = operator_http::respond(&mut reader, &fixture.config, &fixture.health)
    else {
        // Nothing is answered only when the client never finished a head within the limit.
        let within = &input[..input.len().min(MAX_HEAD_BYTES)];
        assert!(
            find(within, b"\r\n\r\n").is_none() && find(within, b"\n\n").is_none(),
            "a complete head went unanswered"
        );
        return;
    };
    let status = check_response(&response, is_head(input));
    let well_formed = well_formed(input);
    if (200..300).contains(&status) {
        assert!(
            well_formed,
            "{status} for a malformed request: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    if well_formed {
        // A well-formed GET of a route is served: 200, or 404 for an unknown issue, or 431 when
        // its head is past the size limit.
        let path = request_path(input);
        let served = status == 200
            || (status == 404 && path.starts_with("/api/v1/") && path != "/api/v1/state")
            || (status == 431 && input.len() > MAX_HEAD_BYTES);
        assert!(
            served,
            "{status} for a well-formed request: {:?}",
            String::from_utf8_lossy(input)
        );
    }
});
