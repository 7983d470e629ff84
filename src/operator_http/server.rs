//! The listener: accept, read one request head per connection, answer, close.
//!
//! One thread accepts; each connection is served on its own short-lived thread. Three rules
//! keep slow or hostile clients from starving everyone else (issue #11, item 5):
//!
//! - **A total deadline for the head.** A client has [`HEAD_DEADLINE`] from accept to finish
//!   its request head, however it spaces its bytes (each read gets only the time left), then
//!   gets a 408. A per-read timeout alone let a client sending one byte a second hold its
//!   connection for hours.
//! - **Eviction, not refusal.** At most [`MAX_CONNECTIONS`] connections hold a slot
//!   (`slots.rs`). When all are taken, a new client evicts the one that has waited longest
//!   without completing its head; that one is answered 503 with `Retry-After` and closed. A
//!   new client is refused only when every slot is busy answering, and then it too gets a 503
//!   with `Retry-After`, never a bare reset.
//! - **A total deadline for the answer.** Writing the answer gets [`WRITE_DEADLINE`], then the
//!   connection is closed: a client that stops reading cannot keep a slot either.
//!
//! After the answer the write side is shut and what the client still sends is drained for a
//! moment ([`LINGER`]), so the kernel does not reset the connection (and destroy the answer)
//! over unread request bytes. Responses are HTTP/1.1 with `Connection: close`, which every
//! client, scraper and browser understands; keeping connections open is not worth a thread.
//! `HEAD` is answered exactly as `GET`, status and headers (`Content-Length` included) but no
//! body.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::head::{self, HeadError, MAX_HEAD_BYTES, parse_head, read_head};
use super::slots::{Admission, Slots, Ticket};
use super::{Answer, Health, route};
use crate::config::ServiceConfig;

/// Connections holding a slot at once (reading a head, answering, or lingering).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client has, from accept, to send its whole request head.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How long a client has to take the whole answer.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// How long, at most, the request bytes a client still sends after its answer are drained.
pub const LINGER: Duration = Duration::from_secs(1);
/// `Retry-After` on a 503 for a busy endpoint, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Connections the kernel queues for accept. std listens with 128: a flood of reconnecting
/// clients fills that, and the kernel then drops a new client's SYN, which the client retries
/// only a second later (the benchmark saw about one probe in ten pay that second). The kernel
/// caps this at `net.core.somaxconn` (4096 by default).
const LISTEN_BACKLOG: libc::c_int = 1024;
/// How long the accept thread waits after a failed accept (out of file descriptors, say)
/// before trying again, so a persistent failure does not spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// The most bytes drained while lingering; a client still sending after that is cut off.
const LINGER_BYTES: usize = 64 * 1024;

/// The endpoint's connection limits; [`Limits::default`] is what `maestro daemon` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub head_deadline: Duration,
    pub write_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            head_deadline: HEAD_DEADLINE,
            write_deadline: WRITE_DEADLINE,
        }
    }
}

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

/// Starts serving `config`'s state on `address` with the default [`Limits`].
pub fn start(
    address: SocketAddr,
    config: ServiceConfig,
    health: Arc<Health>,
) -> Result<Server, BindError> {
    start_with(address, config, health, Limits::default())
}

/// Starts serving `config`'s state on `address` within `limits`.
pub fn start_with(
    address: SocketAddr,
    config: ServiceConfig,
    health: Arc<Health>,
    limits: Limits,
) -> Result<Server, BindError> {
    if !address.ip().is_loopback() {
        log::warn!(
            "operator HTTP listens on a non-loopback address; anyone who can reach it can read lane state address={address}"
        );
    }
    let listener = TcpListener::bind(address).map_err(|source| BindError { address, source })?;
    let bound = listener.local_addr().unwrap_or(address);
    widen_backlog(&listener);
    let stopping = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        config,
        health,
        limits,
        slots: Slots::new(limits.max_connections),
    });
    let accept_thread = {
        let stopping = Arc::clone(&stopping);
        std::thread::Builder::new()
            .name("operator-http-accept".into())
            .spawn(move || accept_loop(&listener, &stopping, &shared))
            .map_err(|source| BindError {
                address: bound,
                source,
            })?
    };
    log::info!("operator HTTP listening address={bound}");
    Ok(Server {
        address: bound,
        stopping,
        accept_thread: Some(accept_thread),
    })
}

/// Raises the listen backlog to [`LISTEN_BACKLOG`]; on failure the endpoint keeps std's 128.
fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: listen(2) on a descriptor `listener` owns and keeps open for the call; on a
    // socket that is already listening it only changes the queue length.
    let result = unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
    if result != 0 {
        log::debug!(
            "operator HTTP keeps the default listen backlog error={}",
            std::io::Error::last_os_error()
        );
    }
}

/// What every connection thread reads.
#[derive(Debug)]
struct Shared {
    config: ServiceConfig,
    health: Arc<Health>,
    limits: Limits,
    slots: Arc<Slots>,
}

fn accept_loop(listener: &TcpListener, stopping: &AtomicBool, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                log::debug!("operator HTTP accept failed error={error}");
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let accepted = Instant::now();
        let (early, head_complete) = already_sent(&stream);
        let ticket = match shared.slots.admit(&stream, head_complete) {
            Admission::Admitted(ticket) => ticket,
            Admission::Full => {
                refuse(stream);
                continue;
            }
        };
        let connection = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("operator-http".into())
            .spawn(move || serve(&stream, &early, &ticket, accepted, &connection));
        if let Err(error) = spawned {
            // The closure (stream and ticket) was dropped with the error: the slot is free
            // and the client sees its connection closed.
            log::warn!("operator HTTP cannot start a connection thread error={error}");
        }
    }
}

/// The answer to a client that cannot be served now.
fn busy() -> Answer {
    let mut answer = Answer::error(503, "busy", "too many connections; retry shortly");
    answer
        .headers
        .push(("Retry-After".into(), RETRY_AFTER_SECONDS.to_string()));
    answer
}

/// Every slot is answering: tell the client so on the accept thread, without waiting on it.
/// The socket's send buffer is empty, so the short write does not block; whatever request
/// bytes have already arrived are read first, so closing does not reset the connection over
/// them.
fn refuse(stream: TcpStream) {
    let mut stream = stream;
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < MAX_HEAD_BYTES {
            match stream.read(&mut sink) {
                Ok(n) if n > 0 => drained += n,
                _ => break,
            }
        }
    }
    let _ = write_answer(&mut stream, &busy(), true);
    let _ = stream.shutdown(Shutdown::Write);
}

/// The request bytes that had arrived by the time the connection was accepted, read without
/// waiting, and whether they hold the whole head. A client that sends its request at once
/// (every real one) is then never evictable, however fast others connect after it: under a
/// flood of reconnecting attackers, a probe could otherwise lose its slot before its own thread
/// had run.
fn already_sent(stream: &TcpStream) -> (Vec<u8>, bool) {
    let mut early = Vec::new();
    if stream.set_nonblocking(true).is_err() {
        return (early, false);
    }
    let mut buffer = [0u8; 4096];
    let mut stream_ref = stream;
    while early.len() <= MAX_HEAD_BYTES && !head::is_complete(&early) {
        match stream_ref.read(&mut buffer) {
            Ok(n) if n > 0 => early.extend_from_slice(&buffer[..n]),
            _ => break,
        }
    }
    let complete = head::is_complete(&early);
    if stream.set_nonblocking(false).is_err() {
        // The connection cannot be served with deadlines; its thread will fail its first read.
        return (early, false);
    }
    (early, complete)
}

fn serve(stream: &TcpStream, early: &[u8], ticket: &Ticket, accepted: Instant, shared: &Shared) {
    let reader = DeadlineReader {
        stream,
        deadline: accepted + shared.limits.head_deadline,
    };
    let head = read_head(&mut early.chain(reader));
    let reply = if ticket.evicted() {
        Some((busy(), true))
    } else if head.is_ok() && !ticket.answering() {
        // Evicted between the last read and now: the slot is someone else's.
        Some((busy(), true))
    } else {
        decide(head, &shared.config, &shared.health)
    };
    let Some((answer, with_body)) = reply else {
        return;
    };
    let mut writer = DeadlineWriter {
        stream,
        deadline: Instant::now() + shared.limits.write_deadline,
    };
    if let Err(error) = write_answer(&mut writer, &answer, with_body) {
        log::debug!("operator HTTP client went away error={error}");
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    ticket.lingering();
    linger(stream);
}

/// Reads and discards what the client still sends until it closes, for at most [`LINGER`]
/// and [`LINGER_BYTES`]. A well-behaved client closes as soon as it has the answer.
fn linger(stream: &TcpStream) {
    let mut reader = DeadlineReader {
        stream,
        deadline: Instant::now() + LINGER,
    };
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match reader.read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// A socket read that never waits past `deadline` in total, however the client spaces its
/// bytes: each read may block only for the time left.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buffer)
    }
}

/// A socket write that never waits past `deadline` in total.
struct DeadlineWriter<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Write for DeadlineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_write_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.write(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut stream = self.stream;
        stream.flush()
    }
}

/// The answer to what [`read_head`] returned, and whether it carries a body (not for `HEAD`);
/// `None` when the client went away before a full head arrived, so there is no one to answer.
fn decide(
    head: Result<String, HeadError>,
    config: &ServiceConfig,
    health: &Health,
) -> Option<(Answer, bool)> {
    Some(match head {
        Ok(head) => match parse_head(&head) {
            Some((method, target)) => (route(method, target, config, health), method != "HEAD"),
            None => (
                Answer::error(400, "bad_request", "malformed HTTP/1.x request head"),
                true,
            ),
        },
        Err(HeadError::TooLarge) => (
            Answer::error(
                431,
                "request_too_large",
                &format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
            ),
            true,
        ),
        Err(HeadError::TimedOut) => (
            Answer::error(
                408,
                "request_timeout",
                "the request head did not arrive in time",
            ),
            true,
        ),
        Err(HeadError::Closed) => return None,
    })
}

/// Serves one connection's bytes exactly as a socket connection is served, without the
/// socket: returns the bytes the client would receive, or `None` when it would receive nothing.
/// For the fuzz harness in `fuzz/` (`operator_http_request`); not part of the public API.
#[doc(hidden)]
pub fn respond(input: &mut dyn Read, config: &ServiceConfig, health: &Health) -> Option<Vec<u8>> {
    let (answer, with_body) = decide(read_head(input), config, health)?;
    let mut output = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_answer(&mut output, &answer, with_body);
    Some(output)
}

/// Writes the status line, headers and (unless `with_body` is false, for `HEAD`) the body.
/// `Content-Length` is always the body's length, sent or not, as RFC 9110 asks of `HEAD`.
fn write_answer(stream: &mut dyn Write, answer: &Answer, with_body: bool) -> std::io::Result<()> {
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
    let mut bytes = head.into_bytes();
    if with_body {
        bytes.extend_from_slice(&answer.body);
    }
    // One write: the answer usually leaves in one segment, and the deadline covers it whole.
    stream.write_all(&bytes)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn head_answers_like_get_without_the_body() {
        let get = respond_to(b"GET /healthz HTTP/1.1\r\n\r\n");
        let head = respond_to(b"HEAD /healthz HTTP/1.1\r\n\r\n");
        let (get_head, get_body) = get.split_once("\r\n\r\n").unwrap();
        assert!(!get_body.is_empty());
        assert_eq!(head, format!("{get_head}\r\n\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", get_body.len())));
    }
}
