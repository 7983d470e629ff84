//! One GraphQL call over HTTP: POST, classify the answer, retry what may be retried, all
//! inside the call's deadline.
//!
//! Rate limits (HTTP 429, or `RATELIMITED` in a 200/400 body) and 5xx answers are retried with
//! bounded backoff, waiting what `retry-after` / `x-ratelimit-requests-reset` say when they say
//! it; a wait that would overrun the deadline fails the call at once instead of sleeping for
//! nothing. Everything else fails the call on the first answer. Every answer's cost and budget
//! headers (`X-Complexity`, `X-RateLimit-*`) are added to the transport's [`Usage`], and its
//! `Date` is handed back so a caller can reason in Linear's clock rather than the host's. This
//! file knows HTTP and the GraphQL envelope, nothing about the operations (see `mod.rs`) or
//! their payloads (`wire.rs`).

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::Options;
use crate::tracker::{Allowance, Budget, Error, RateLimit, Usage};

/// Answers bigger than this are refused: a page of 100 issues with long descriptions is a few
/// megabytes at most, so anything larger is not an answer Maestro asked for.
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The longest pause between retries when the answer gives no reset time.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// How much of an unexpected body an error quotes.
const BODY_QUOTE_CHARS: usize = 200;

/// A Linear API key. Never printed: `Debug` is redacted and there is no `Display`.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> ApiKey {
        ApiKey(key.trim().to_string())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The HTTP side of the client: one agent (connection pool) and the endpoint.
pub(super) struct Transport {
    agent: ureq::Agent,
    url: String,
    key: ApiKey,
    call_timeout: Duration,
    max_attempts: u32,
    retry_base: Duration,
    /// What every answer so far said it cost, and the latest budget.
    usage: Mutex<Usage>,
}

/// What the answer to a call said besides its data.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Meta {
    /// The answer's `Date`, ms since the epoch.
    pub server_ms: Option<u64>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("url", &self.url)
            .field("key", &self.key)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a, V> {
    query: &'a str,
    operation_name: &'a str,
    variables: &'a V,
}

/// The GraphQL response envelope with `data` already typed.
#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl GraphQlError {
    fn is_rate_limit(&self) -> bool {
        self.extensions.as_ref().is_some_and(|extensions| {
            extensions
                .code
                .as_deref()
                .is_some_and(|code| code.eq_ignore_ascii_case("RATELIMITED"))
                || extensions
                    .kind
                    .as_deref()
                    .is_some_and(|kind| kind.eq_ignore_ascii_case("ratelimited"))
        })
    }

    fn is_authentication(&self) -> bool {
        self.extensions.as_ref().is_some_and(|extensions| {
            let mentions = |text: &Option<String>| {
                text.as_deref()
                    .is_some_and(|text| text.to_ascii_lowercase().contains("authentication"))
            };
            mentions(&extensions.code) || mentions(&extensions.kind)
        })
    }
}

/// What one HTTP exchange amounted to.
enum Outcome<T> {
    Done(T),
    /// Worth another try; `wait` is what the server asked for, if it said.
    Retry {
        error: Error,
        wait: Option<Duration>,
    },
    Fail(Error),
}

impl Transport {
    pub(super) fn new(options: &Options) -> Transport {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Linear's endpoint does not redirect; an answer that does would make another
            // host's reply (or a re-sent mutation) part of the call. It fails as a `status`.
            .max_redirects(0)
            .timeout_connect(Some(options.connect_timeout))
            .user_agent(format!("maestro/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Transport {
            agent,
            url: options.api_url.clone(),
            key: options.api_key.clone(),
            call_timeout: options.call_timeout,
            max_attempts: options.max_attempts.max(1),
            retry_base: options.retry_base,
            usage: Mutex::new(Usage::default()),
        }
    }

    /// Everything spent through this transport so far.
    pub(super) fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `operation` (whose text is `document`) with `variables` and returns its `data`.
    pub(super) fn call<V, T>(
        &self,
        operation: &'static str,
        document: &str,
        variables: &V,
    ) -> Result<T, Error>
    where
        V: serde::Serialize,
        T: DeserializeOwned,
    {
        self.call_meta(operation, document, variables)
            .map(|(data, _)| data)
    }

    /// [`Transport::call`], with what the successful answer said besides its data.
    pub(super) fn call_meta<V, T>(
        &self,
        operation: &'static str,
        document: &str,
        variables: &V,
    ) -> Result<(T, Meta), Error>
    where
        V: serde::Serialize,
        T: DeserializeOwned,
    {
        let body = serde_json::to_vec(&Request {
            query: document,
            operation_name: operation,
            variables,
        })
        .map_err(|error| Error::Malformed {
            operation,
            detail: format!("cannot encode the request: {error}"),
        })?;
        let deadline = Instant::now() + self.call_timeout;
        let mut attempt = 1;
        loop {
            let Some(remaining) = deadline
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
            else {
                return Err(Error::Transport {
                    operation,
                    detail: format!("no answer within {} ms", self.call_timeout.as_millis()),
                    timed_out: true,
                });
            };
            let (error, wait) = match self.exchange(operation, &body, remaining) {
                (Outcome::Done(data), meta) => return Ok((data, meta)),
                (Outcome::Fail(error), _) => return Err(error),
                (Outcome::Retry { error, wait }, _) => (error, wait),
            };
            let wait = wait.unwrap_or_else(|| self.backoff(attempt));
            let fits = Instant::now() + wait < deadline;
            if attempt >= self.max_attempts || !fits {
                return Err(error);
            }
            log::warn!(
                "tracker call retried operation={operation} attempt={attempt} wait_ms={} reason={}",
                wait.as_millis(),
                error.category().as_str()
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    /// Exponential backoff from `retry_base`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(10);
        self.retry_base.saturating_mul(factor).min(MAX_BACKOFF)
    }

    fn exchange<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        body: &[u8],
        remaining: Duration,
    ) -> (Outcome<T>, Meta) {
        let sent = self
            .agent
            .post(&self.url)
            .header("Authorization", self.key.0.as_str())
            .header("Content-Type", "application/json")
            .config()
            .timeout_global(Some(remaining))
            .build()
            .send(body);
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => {
                return (
                    Outcome::Fail(transport_error(operation, &error)),
                    Meta::default(),
                );
            }
        };
        let status = response.status().as_u16();
        let limit = rate_limit(response.headers());
        let meta = Meta {
            server_ms: header(response.headers(), "date").and_then(parse_http_date),
        };
        self.account(response.headers());
        let text = match response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
        {
            Ok(bytes) => bytes,
            Err(error) => return (Outcome::Fail(transport_error(operation, &error)), meta),
        };
        (classify(operation, status, limit, &text), meta)
    }

    /// Adds one answer's cost and budget to the usage. An answer counts as a request whatever
    /// it says: Linear charges the ones it refuses too.
    fn account(&self, headers: &ureq::http::HeaderMap) {
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.requests += 1;
        match number(headers, "x-complexity") {
            Some(points) => usage.points += points.ceil() as u64,
            None => usage.unpriced += 1,
        }
        let budget = budget(headers);
        if budget.requests.is_some() {
            usage.budget.requests = budget.requests;
        }
        if budget.points.is_some() {
            usage.budget.points = budget.points;
        }
    }
}

fn header<'h>(headers: &'h ureq::http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A header as a finite, non-negative number.
fn number(headers: &ureq::http::HeaderMap, name: &str) -> Option<f64> {
    header(headers, name)
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|value| value.is_finite() && *value >= 0.0)
}

/// Epoch milliseconds from a reset header; a value too small to be milliseconds is seconds.
fn epoch_ms(value: f64) -> u64 {
    // Epoch seconds are below 10^11 until the year 5138; milliseconds are above it.
    let ms = if value < 1e11 { value * 1000.0 } else { value };
    ms as u64
}

/// Linear's two allowances, from `X-RateLimit-{Requests,Complexity}-{Limit,Remaining,Reset}`.
/// An allowance is known only when both its limit and what remains are given.
fn budget(headers: &ureq::http::HeaderMap) -> Budget {
    let allowance = |kind: &str| {
        let limit = number(headers, &format!("x-ratelimit-{kind}-limit"))?;
        let remaining = number(headers, &format!("x-ratelimit-{kind}-remaining"))?;
        Some(Allowance {
            limit: limit as u64,
            remaining: remaining as u64,
            reset_at_ms: number(headers, &format!("x-ratelimit-{kind}-reset")).map(epoch_ms),
        })
    };
    Budget {
        requests: allowance("requests"),
        points: allowance("complexity"),
    }
}

/// Parses an HTTP date in its one current form, IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// into ms since the epoch. The obsolete forms are not sent by Linear and read as `None`.
pub(super) fn parse_http_date(text: &str) -> Option<u64> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    if parts.next()? != "GMT" || parts.next().is_some() || day.len() != 2 || year.len() != 4 {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|name| *name == month)? + 1;
    crate::clock::parse_rfc3339(&format!("{year}-{month:02}-{day}T{time}Z"))
}

/// Decides what an answer means. Pure, so every branch is unit-tested without a server.
fn classify<T: DeserializeOwned>(
    operation: &'static str,
    status: u16,
    limit: RateLimit,
    body: &[u8],
) -> Outcome<T> {
    if status == 429 {
        let wait = limit.wait(crate::clock::now_ms());
        return Outcome::Retry {
            error: Error::RateLimited { operation, limit },
            wait,
        };
    }
    // The typed parse is the fast path; when it fails, a second untyped parse still finds the
    // errors array so an error answer is classified by what it says, not by its shape.
    let envelope: Result<Envelope<T>, _> = serde_json::from_slice(body);
    let (data, errors, shape_error) = match envelope {
        Ok(envelope) => (envelope.data, envelope.errors.unwrap_or_default(), None),
        Err(error) => match serde_json::from_slice::<Envelope<IgnoredAny>>(body) {
            Ok(untyped) => (None, untyped.errors.unwrap_or_default(), Some(error)),
            Err(_) => (None, Vec::new(), Some(error)),
        },
    };
    if errors.iter().any(GraphQlError::is_rate_limit) {
        let wait = limit.wait(crate::clock::now_ms());
        return Outcome::Retry {
            error: Error::RateLimited { operation, limit },
            wait,
        };
    }
    if status == 401 || status == 403 || errors.iter().any(GraphQlError::is_authentication) {
        let detail = errors
            .first()
            .map(|error| error.message.clone())
            .unwrap_or_else(|| format!("http {status}"));
        return Outcome::Fail(Error::Auth { operation, detail });
    }
    if status >= 500 {
        return Outcome::Retry {
            error: Error::Status {
                operation,
                status,
                body: quote(body),
            },
            wait: None,
        };
    }
    // Linear answers GraphQL errors with 200 or 400; any other status is about HTTP itself
    // (a proxy, a wrong URL), whatever its body says.
    let graphql_status = status == 400 || (200..300).contains(&status);
    if graphql_status && !errors.is_empty() {
        let messages = errors.into_iter().map(|error| error.message).collect();
        return Outcome::Fail(Error::GraphQl {
            operation,
            messages,
        });
    }
    if !(200..300).contains(&status) {
        return Outcome::Fail(Error::Status {
            operation,
            status,
            body: quote(body),
        });
    }
    match (data, shape_error) {
        (Some(data), None) => Outcome::Done(data),
        (_, Some(error)) => Outcome::Fail(Error::Malformed {
            operation,
            detail: error.to_string(),
        }),
        (None, None) => Outcome::Fail(Error::Malformed {
            operation,
            detail: "the answer has neither data nor errors".into(),
        }),
    }
}

fn transport_error(operation: &'static str, error: &ureq::Error) -> Error {
    let timed_out = match error {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        _ => false,
    };
    Error::Transport {
        operation,
        detail: error.to_string(),
        timed_out,
    }
}

/// Reads `retry-after` (seconds) and `x-ratelimit-requests-reset` (Linear sends epoch
/// milliseconds; a value too small to be milliseconds is taken as seconds).
fn rate_limit(headers: &ureq::http::HeaderMap) -> RateLimit {
    let retry_after = number(headers, "retry-after").map(Duration::from_secs_f64);
    let reset_at_ms = number(headers, "x-ratelimit-requests-reset").map(epoch_ms);
    RateLimit {
        retry_after,
        reset_at_ms,
    }
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_string();
    }
    let mut quoted: String = text.chars().take(BODY_QUOTE_CHARS).collect();
    if text.chars().count() > BODY_QUOTE_CHARS {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> Outcome<serde_json::Value> {
        classify("Op", status, RateLimit::default(), body.as_bytes())
    }

    fn error_of(outcome: Outcome<serde_json::Value>) -> (String, bool) {
        match outcome {
            Outcome::Done(data) => panic!("expected an error, got {data}"),
            Outcome::Retry { error, .. } => (error.category().as_str().to_string(), true),
            Outcome::Fail(error) => (error.category().as_str().to_string(), false),
        }
    }

    #[test]
    fn data_is_returned() {
        let Outcome::Done(data) = check(200, r#"{"data":{"a":1}}"#) else {
            panic!("expected data");
        };
        assert_eq!(data["a"], 1);
    }

    #[test]
    fn answers_are_classified() {
        let cases = [
            (401, r#"{"errors":[{"message":"bad key"}]}"#, "auth", false),
            (403, "forbidden", "auth", false),
            (429, "", "rate_limited", true),
            (
                400,
                r#"{"errors":[{"message":"slow down","extensions":{"code":"RATELIMITED"}}]}"#,
                "rate_limited",
                true,
            ),
            (
                200,
                r#"{"data":null,"errors":[{"message":"x","extensions":{"code":"RATELIMITED"}}]}"#,
                "rate_limited",
                true,
            ),
            (
                200,
                r#"{"data":null,"errors":[{"message":"x","extensions":{"type":"authentication error"}}]}"#,
                "auth",
                false,
            ),
            (500, "oops", "status", true),
            (502, "", "status", true),
            (404, "no", "status", false),
            (
                404,
                r#"{"errors":[{"message":"not here"}]}"#,
                "status",
                false,
            ),
            (400, "bad request", "status", false),
            (
                400,
                r#"{"errors":[{"message":"Unknown argument"}]}"#,
                "graphql",
                false,
            ),
            (
                200,
                r#"{"data":{"a":1},"errors":[{"message":"partial"}]}"#,
                "graphql",
                false,
            ),
            (200, "{not json", "malformed", false),
            (200, r#"{"data":null}"#, "malformed", false),
        ];
        for (status, body, category, retry) in cases {
            assert_eq!(
                error_of(check(status, body)),
                (category.to_string(), retry),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn shape_errors_are_malformed() {
        let outcome: Outcome<Vec<u32>> =
            classify("Op", 200, RateLimit::default(), b"{\"data\":{}}");
        let Outcome::Fail(Error::Malformed { operation, .. }) = outcome else {
            panic!("expected malformed");
        };
        assert_eq!(operation, "Op");
    }

    #[test]
    fn reset_headers_are_read() {
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("retry-after", "3".parse().unwrap());
        headers.insert(
            "x-ratelimit-requests-reset",
            "1795651200000".parse().unwrap(),
        );
        let limit = rate_limit(&headers);
        assert_eq!(limit.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(limit.reset_at_ms, Some(1_795_651_200_000));
        let mut headers = ureq::http::HeaderMap::new();
        headers.insert("x-ratelimit-requests-reset", "1795651200".parse().unwrap());
        assert_eq!(rate_limit(&headers).reset_at_ms, Some(1_795_651_200_000));
    }

    #[test]
    fn cost_and_budget_headers_are_read() {
        let mut headers = ureq::http::HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-requests-limit", "5000"),
            ("x-ratelimit-requests-remaining", "4990"),
            ("x-ratelimit-requests-reset", "1795651200000"),
            ("x-ratelimit-complexity-limit", "250000"),
            ("x-ratelimit-complexity-remaining", "12.5"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        let budget = budget(&headers);
        assert_eq!(
            budget.requests,
            Some(Allowance {
                limit: 5000,
                remaining: 4990,
                reset_at_ms: Some(1_795_651_200_000)
            })
        );
        assert_eq!(
            budget.points,
            Some(Allowance {
                limit: 250_000,
                remaining: 12,
                reset_at_ms: None
            })
        );
        headers.remove("x-ratelimit-requests-remaining");
        assert_eq!(super::budget(&headers).requests, None, "half an allowance");
    }

    #[test]
    fn http_dates_are_read() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            crate::clock::parse_rfc3339("1994-11-06T08:49:37Z")
        );
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let key = ApiKey::new("lin_api_secret".into());
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
    }

    #[test]
    fn quotes_are_bounded() {
        assert_eq!(quote(b"  "), "(empty body)");
        assert_eq!(quote("x".repeat(500).as_bytes()).chars().count(), 201);
    }
}
