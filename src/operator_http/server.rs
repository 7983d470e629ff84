//! The listener: accept, read one GET request per connection, answer, close.
//!
//! One thread accepts; each connection is served on its own short-lived thread with read and
//! write timeouts and a header size limit, and at most [`MAX_CONNECTIONS`] are served at once
//! (the rest get an immediate 503). Responses are HTTP/1.1 with `Connection: close`, which every
//! client, scraper and browser understands; keeping connections open is not worth a thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Answer, Health, route};
use crate::config::ServiceConfig;

/// Connections served at once; more are refused with 503 until one finishes.
pub const MAX_CONNECTIONS: usize = 64;
/// Longest request head accepted (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long a client may take to send its request, or to take the response.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the endpoint could not start.
#[derive(Debug)]
pub struct BindError {
    pub address: SocketAddr,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot listen on {} ([operator_http] listen_address): {}",
            self.address, self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A running endpoint; dropping it stops accepting and waits for the accept thread.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Server {
    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts serving `config`'s state on `address`.
pub fn start(
    address: SocketAddr,
    config: ServiceConfig,
    health: Arc<Health>,
) -> Result<Server, BindError> {
    if !address.ip().is_loopback() {
        log::warn!(
            "operator HTTP listens on a non-loopback address; anyone who can reach it can read lane state address={address}"
        );
    }
    let listener = TcpListener::bind(address).map_err(|source| BindError { address, source })?;
    let bound = listener.local_addr().unwrap_or(address);
    let stopping = Arc::new(AtomicBool::new(false));
    let config = Arc::new(config);
    let accept_thread = {
        let stopping = Arc::clone(&stopping);
        std::thread::spawn(move || accept_loop(&listener, &stopping, &config, &health))
    };
    log::info!("operator HTTP listening address={bound}");
    Ok(Server {
        address: bound,
        stopping,
        accept_thread: Some(accept_thread),
    })
}

fn accept_loop(
    listener: &TcpListener,
    stopping: &AtomicBool,
    config: &Arc<ServiceConfig>,
    health: &Arc<Health>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
            let answer = Answer::error(503, "busy", "too many connections; retry shortly");
            let _ = write_answer(&mut stream, &answer);
            continue;
        }
        active.fetch_add(1, Ordering::SeqCst);
        let active = Arc::clone(&active);
        let config = Arc::clone(config);
        let health = Arc::clone(health);
        std::thread::spawn(move || {
            serve(stream, &config, &health);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn serve(mut stream: TcpStream, config: &ServiceConfig, health: &Health) {
    let Some(answer) = answer(&mut stream, config, health) else {
        return;
    };
    if let Err(error) = write_answer(&mut stream, &answer) {
        log::debug!("operator HTTP client went away error={error}");
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

/// Reads one request head from `input` and decides the answer; `None` when the client went
/// away before a full head arrived, so there is no one to answer.
fn answer(input: &mut dyn Read, config: &ServiceConfig, health: &Health) -> Option<Answer> {
    Some(match read_head(input) {
        Ok(head) => match parse_head(&head) {
            Some((method, target)) => route(method, target, config, health),
            None => Answer::error(400, "bad_request", "malformed HTTP/1.x request head"),
        },
        Err(HeadError::TooLarge) => Answer::error(
            431,
            "request_too_large",
            &format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
        ),
        Err(HeadError::Closed) => return None,
    })
}

/// Serves one connection's bytes exactly as a socket connection is served, without the
/// socket: returns the bytes the client would receive, or `None` when it would receive nothing.
/// For the fuzz harness in `fuzz/` (`operator_http_request`); not part of the public API.
#[doc(hidden)]
pub fn respond(input: &mut dyn Read, config: &ServiceConfig, health: &Health) -> Option<Vec<u8>> {
    let answer = answer(input, config, health)?;
    let mut output = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_answer(&mut output, &answer);
    Some(output)
}

enum HeadError {
    TooLarge,
    /// Timed out, reset, or closed before a full head arrived: nothing to answer.
    Closed,
}

/// Reads up to the blank line that ends the request head.
fn read_head(stream: &mut dyn Read) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        let n = stream.read(&mut buffer).map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        // Only the new bytes, and the three before them where a blank line may have begun, can
        // end the head. Rescanning the whole head on every read costs time quadratic in its
        // size when a client sends one byte per packet (found by fuzz/: about a minute of
        // instrumented CPU for one 16 KiB head).
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = find_head_end(&head[scan_from..]) {
            head.truncate(scan_from + end);
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the head ends: the first blank line, whichever line ending the client uses (a bare
/// `\n\n` earlier in the stream wins over a later `\r\n\r\n`, which would be body bytes).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|window| window == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|window| window == b"\n\n");
    match (crlf, lf) {
        (Some(crlf), Some(lf)) => Some(crlf.min(lf)),
        (crlf, lf) => crlf.or(lf),
    }
}

/// A request head → (method, target), or `None` when it is not HTTP/1.x: the request line
/// must be `METHOD TARGET HTTP/1.0|1.1` with an origin-form target of visible ASCII, and every
/// other line a `name: value` field (RFC 9112 sections 3 and 5). A client speaking something
/// else (TLS, a port scanner, a mangled proxy) gets a 400 rather than a page.
fn parse_head(head: &str) -> Option<(&str, &str)> {
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request = parse_request_line(lines.next()?)?;
    lines.all(is_field_line).then_some(request)
}

fn parse_request_line(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    let valid = !method.is_empty()
        && method.chars().all(|c| c.is_ascii_uppercase())
        && target.starts_with('/')
        && target.bytes().all(|byte| byte.is_ascii_graphic())
        && matches!(version, "HTTP/1.1" | "HTTP/1.0")
        && parts.next().is_none();
    valid.then_some((method, target))
}

/// `name: value` with a token name (no whitespace before the colon, no folded continuation
/// line) and no control characters but tab in the value.
fn is_field_line(line: &str) -> bool {
    let Some((name, value)) = line.split_once(':') else {
        return false;
    };
    let token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    !name.is_empty()
        && name.bytes().all(token)
        && value
            .bytes()
            .all(|byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f))
}

fn write_answer(stream: &mut dyn Write, answer: &Answer) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        answer.status,
        reason(answer.status),
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&answer.body)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_head("GET /state HTTP/1.1\r\nHost: x"),
            Some(("GET", "/state"))
        );
        assert_eq!(parse_head("GET /state HTTP/1.0"), Some(("GET", "/state")));
        assert_eq!(parse_head("GET /state"), None);
        assert_eq!(parse_head("get /state HTTP/1.1"), None);
        assert_eq!(parse_head("GET state HTTP/1.1"), None);
        assert_eq!(parse_head("\u{0}\u{1}garbage"), None);
    }

    /// What a client receives for `request`, read in one go.
    fn respond_to(request: &[u8]) -> String {
        let text =
            "id = \"demo\"\nrepo_root = \"/nonexistent\"\n[tracker]\napi_key_env_var = \"K\"\n";
        let config = crate::config::parse(
            std::path::Path::new("/nonexistent/maestro.toml"),
            text,
            None,
        )
        .unwrap();
        let response = respond(&mut &request[..], &config, &Health::default()).unwrap();
        String::from_utf8(response).unwrap()
    }

    /// Found by `fuzz/` (operator_http_request): binary bytes in a header line were served the
    /// page, because only the request line was checked.
    #[test]
    fn garbage_header_lines_are_a_bad_request() {
        let crash =
            b"GET /api/v1/abc-1?x=1 HTTP/1.1\r\nHost: x\r\nAc\x02\0\0\0\0\0\0\0cept: */*\r\n\r\n";
        let response = respond_to(crash);
        assert!(
            response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{response}"
        );
        for head in [
            "GET /state HTTP/1.1\r\nno colon here",
            "GET /state HTTP/1.1\r\n folded: continuation",
            "GET /state HTTP/1.1\r\nName : space before the colon",
            "GET /state HTTP/1.1\r\n: no name",
            "GET /state HTTP/1.1\r\nX: bare\rCR",
            "GET /state HTTP/1.1\r\nX: nul\0",
        ] {
            assert_eq!(parse_head(head), None, "{head:?}");
        }
        assert_eq!(
            parse_head("GET /state HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nUser-Agent: a\tb é"),
            Some(("GET", "/state"))
        );
    }

    #[test]
    fn only_http_1_0_and_1_1_with_an_ascii_target_are_requests() {
        for head in [
            "GET /state HTTP/1.zzz",
            "GET /state HTTP/1.",
            "GET /state HTTP/2.0",
            "GET /st\u{e9}te HTTP/1.1",
            "GET /state\u{7f} HTTP/1.1",
        ] {
            assert_eq!(parse_head(head), None, "{head:?}");
        }
    }

    /// Hands out one byte per read, as a client sending one byte per packet does.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buffer[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    /// Found by `fuzz/` (operator_http_request ran at a few hundred inputs per second): the
    /// whole head was rescanned after every read. Only new bytes are scanned now; a blank line
    /// split across reads must still end the head, at its first occurrence.
    #[test]
    fn a_head_dribbled_one_byte_per_read_ends_at_its_first_blank_line() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"GET /state HTTP/1.1\r\nHost: x\r\n\r\nbody",
                "GET /state HTTP/1.1\r\nHost: x",
            ),
            (b"GET / HTTP/1.1\n\nbody\r\n\r\n", "GET / HTTP/1.1"),
            (
                b"GET / HTTP/1.1\r\nA: b\n\nrest\r\n\r\n",
                "GET / HTTP/1.1\r\nA: b",
            ),
        ];
        for (request, head) in cases {
            let got = read_head(&mut Dribble(request)).ok();
            assert_eq!(got.as_deref(), Some(head), "{request:?}");
        }
        let endless = [b'a'; MAX_HEAD_BYTES + 2];
        assert!(matches!(
            read_head(&mut Dribble(&endless)),
            Err(HeadError::TooLarge)
        ));
    }

    #[test]
    fn head_end_detection() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x"), None);
        // The first blank line ends the head, whichever line ending it uses.
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nbody\r\n\r\n"), Some(14));
    }
}
