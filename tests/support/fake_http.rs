//! A loopback HTTP server for tests: binds 127.0.0.1:0, serves on its own threads, records
//! every request, answers through a handler closure, and stops when dropped.
//!
//! Modelled on cargo's test registry: fakes for Linear, GitHub and the model API are handlers
//! on top of this. Each request is answered on its own thread so a deliberately slow reply never
//! delays another request.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path plus query string, as sent.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or(&self.url)
    }

    /// The body parsed as JSON (panics in the test when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

/// What the fake answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Wait this long before answering (for timeout tests).
    pub delay: Option<Duration>,
}

/// A reply body: fixed bytes, or a reader streamed with chunked encoding.
pub enum Body {
    Bytes(Vec<u8>),
    Stream(Box<dyn Read + Send>),
}

impl Reply {
    /// `status` with a JSON body.
    pub fn json(status: u16, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(value.to_string().into_bytes()),
            delay: None,
        }
    }

    /// `status` with a plain-text body.
    pub fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: Body::Bytes(text.as_bytes().to_vec()),
            delay: None,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Delays the reply.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A running fake server. Dropping it stops the accept loop and waits for it.
pub struct FakeHttp {
    address: SocketAddr,
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stopping: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl FakeHttp {
    /// Starts a server on 127.0.0.1 with an OS-chosen port.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> FakeHttp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        no_delay(&listener);
        let server =
            Arc::new(tiny_http::Server::from_listener(listener, None).expect("serve loopback"));
        let address = server
            .server_addr()
            .to_ip()
            .expect("fake server listens on an IP address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept_thread = {
            let server = Arc::clone(&server);
            let requests = Arc::clone(&requests);
            let stopping = Arc::clone(&stopping);
            std::thread::spawn(move || accept_loop(&server, &requests, &stopping, &handler))
        };
        FakeHttp {
            address,
            server,
            requests,
            stopping,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Turns Nagle's algorithm off for every connection the listener accepts (Linux copies the
/// option to accepted sockets). tiny_http writes a reply in two pieces; with Nagle on, the
/// second waits for the client's delayed ACK, and every small reply took about 40 ms.
fn no_delay(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd, a pointer to a live c_int and its exact size.
    let _ = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

fn accept_loop(
    server: &tiny_http::Server,
    requests: &Arc<Mutex<Vec<Recorded>>>,
    stopping: &AtomicBool,
    handler: &Arc<Handler>,
) {
    for mut request in server.incoming_requests() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let recorded = Recorded {
            method: request.method().as_str().to_string(),
            url: request.url().to_string(),
            headers: request
                .headers()
                .iter()
                .map(|h| {
                    (
                        h.field.as_str().as_str().to_string(),
                        h.value.as_str().to_string(),
                    )
                })
                .collect(),
            body,
        };
        requests
            .lock()
            .expect("requests lock")
            .push(recorded.clone());
        let handler = Arc::clone(handler);
        std::thread::spawn(move || {
            let reply = handler(&recorded);
            if let Some(delay) = reply.delay {
                std::thread::sleep(delay);
            }
            let headers: Vec<tiny_http::Header> = reply
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
                })
                .collect();
            let status = tiny_http::StatusCode(reply.status);
            let _ = match reply.body {
                Body::Bytes(bytes) => {
                    let length = bytes.len();
                    request.respond(tiny_http::Response::new(
                        status,
                        headers,
                        std::io::Cursor::new(bytes),
                        Some(length),
                        None,
                    ))
                }
                Body::Stream(reader) => request.respond(tiny_http::Response::new(
                    status, headers, reader, None, None,
                )),
            };
        });
    }
}

#[test]
fn records_requests_and_serves_replies() {
    let fake = FakeHttp::start(|request| match request.path() {
        "/hello" => Reply::json(200, &serde_json::json!({"seen": request.body})),
        _ => Reply::text(404, "no route").with_header("X-Test", "1"),
    });
    let mut response = ureq::post(&format!("{}/hello?x=1", fake.url()))
        .header("X-Custom", "yes")
        .send("ping")
        .expect("fake answers");
    let body: serde_json::Value = response.body_mut().read_json().expect("json reply");
    assert_eq!(body["seen"], "ping");
    let missing = ureq::get(&format!("{}/nope", fake.url())).call();
    assert!(matches!(missing, Err(ureq::Error::StatusCode(404))));
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].url, "/hello?x=1");
    assert_eq!(requests[0].header("x-custom"), Some("yes"));
    assert_eq!(requests[1].path(), "/nope");
}
