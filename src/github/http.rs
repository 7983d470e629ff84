//! One GitHub HTTP exchange: headers, the token, conditional GETs, redirects refused, bounded
//! bodies, statuses mapped to [`Error`].
//!
//! Every REST GET goes through [`Client::get_json`], which sends `If-None-Match` when the
//! [`EtagCache`](super::etag::EtagCache) knows the URL and answers a `304` from the cache: a 304
//! costs nothing against GitHub's rate limit. Writes (merge, branch deletion) and the GraphQL
//! POST go through [`Client::send`]; their callers decide what a status means. Nothing here
//! retries: a lane re-reads at its next poll, which is its retry.

use std::sync::PoisonError;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Client, Error, shown};

/// The largest body read from GitHub. GitHub caps a comment at 65,536 characters, so a page of
/// 25 review threads with 10 comments each, or of 100 reviews, stays under it.
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// How much of an unexpected body an error keeps.
const ERROR_BODY_CHARS: usize = 300;

/// A GitHub answer Maestro reads only part of, cut to size before it is kept or used. Reviewer
/// text is hostile input: every string an answer brings has a bound.
pub(super) trait Bounded {
    fn bound(&mut self);
}

/// A decoded REST answer.
#[derive(Debug)]
pub(super) struct Got<T> {
    pub value: T,
    /// GitHub's `Link` header names a next page.
    pub has_next: bool,
}

/// A status and body of a write or GraphQL call, for the caller to judge.
#[derive(Debug)]
pub(super) struct Sent {
    pub status: u16,
    pub body: String,
    rate_limit_spent: bool,
    reset: Option<u64>,
}

/// What GitHub requests cost so far through one client: what `/metrics` and the spec's cost
/// table count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Requests sent (every method, every answer).
    pub requests: u64,
    /// GETs answered `304 Not Modified` from the ETag cache: free.
    pub not_modified: u64,
    /// GraphQL queries sent.
    pub graphql: u64,
    /// `x-ratelimit-remaining` of the last answer that said it.
    pub rate_remaining: Option<u64>,
}

impl Client {
    /// `GET url` as JSON of type `T`, conditionally when an ETag is known. `what` names the
    /// object in a 404.
    pub(super) fn get_json<T>(&self, url: &str, what: &'static str) -> Result<Got<T>, Error>
    where
        T: DeserializeOwned + Serialize + Bounded,
    {
        let cached = self.cache().get(url).cloned();
        let mut request = self.authorized(self.agent.get(url));
        if let Some(entry) = &cached {
            request = request.header("If-None-Match", &entry.etag);
        }
        let mut response = request.call().map_err(|error| transport(url, &error))?;
        let status = response.status().as_u16();
        self.count(&response, status == 304);
        if status == 304 {
            if let Some(entry) = cached {
                match serde_json::from_value::<T>(entry.value) {
                    Ok(value) => {
                        return Ok(Got {
                            value,
                            has_next: entry.has_next,
                        });
                    }
                    // A kept answer this build cannot read (an older shape): read it whole.
                    Err(_) => {
                        self.cache().forget(url);
                        return self.get_json(url, what);
                    }
                }
            }
        }
        refuse_redirect(url, status, &response)?;
        let etag = header(&response, "etag");
        let has_next = header(&response, "link").is_some_and(|link| names_next_page(&link));
        let limits = rate_limit(&response);
        let body = read_body(url, &mut response)?;
        if status != 200 {
            return Err(status_error(url, what, status, body, limits));
        }
        let mut value: T = serde_json::from_str(&body).map_err(|error| Error::Malformed {
            url: url.to_string(),
            message: error.to_string(),
        })?;
        value.bound();
        match (etag, serde_json::to_value(&value)) {
            (Some(etag), Ok(kept)) => self.cache().put(url, &etag, kept, has_next),
            _ => self.cache().forget(url),
        }
        Ok(Got { value, has_next })
    }

    /// `method url` with an optional JSON body; the status and (bounded) body come back for the
    /// caller to judge, except redirects and transport failures, which are errors here.
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Sent, Error> {
        let result = match (method, body) {
            ("PUT", Some(body)) => self.authorized(self.agent.put(url)).send_json(body),
            ("POST", Some(body)) => self.authorized(self.agent.post(url)).send_json(body),
            ("DELETE", None) => self.authorized(self.agent.delete(url)).call(),
            _ => {
                return Err(Error::Malformed {
                    url: url.to_string(),
                    message: format!("maestro does not send {method} requests"),
                });
            }
        };
        let mut response = result.map_err(|error| transport(url, &error))?;
        let status = response.status().as_u16();
        self.count(&response, false);
        refuse_redirect(url, status, &response)?;
        let (rate_limit_spent, reset) = rate_limit(&response);
        let body = read_body(url, &mut response)?;
        Ok(Sent {
            status,
            body,
            rate_limit_spent,
            reset,
        })
    }

    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        request
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    fn count(&self, response: &ureq::http::Response<ureq::Body>, not_modified: bool) {
        let remaining = header(response, "x-ratelimit-remaining").and_then(|v| v.parse().ok());
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.requests += 1;
        if not_modified {
            usage.not_modified += 1;
        }
        if remaining.is_some() {
            usage.rate_remaining = remaining;
        }
    }
}

impl Sent {
    /// The error for a status the caller did not expect.
    pub(super) fn error(self, url: &str, what: &'static str) -> Error {
        status_error(
            url,
            what,
            self.status,
            self.body,
            (self.rate_limit_spent, self.reset),
        )
    }
}

fn transport(url: &str, error: &ureq::Error) -> Error {
    Error::Transport {
        url: url.to_string(),
        message: error.to_string(),
    }
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

fn refuse_redirect(
    url: &str,
    status: u16,
    response: &ureq::http::Response<ureq::Body>,
) -> Result<(), Error> {
    if (300..400).contains(&status) && status != 304 {
        return Err(Error::Redirected {
            status,
            url: url.to_string(),
            location: shown(&header(response, "location").unwrap_or_default()),
        });
    }
    Ok(())
}

/// Whether the rate limit is spent, and when it resets (epoch seconds), as the headers say.
fn rate_limit(response: &ureq::http::Response<ureq::Body>) -> (bool, Option<u64>) {
    let spent = header(response, "x-ratelimit-remaining").is_some_and(|value| value.trim() == "0")
        || header(response, "retry-after").is_some();
    let reset = header(response, "x-ratelimit-reset").and_then(|value| value.trim().parse().ok());
    (spent, reset)
}

fn read_body(url: &str, response: &mut ureq::http::Response<ureq::Body>) -> Result<String, Error> {
    response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .map_err(|error| transport(url, &error))
}

fn status_error(
    url: &str,
    what: &'static str,
    status: u16,
    body: String,
    (rate_limit_spent, reset): (bool, Option<u64>),
) -> Error {
    let url = url.to_string();
    match status {
        403 | 429 if rate_limit_spent => Error::RateLimited { url, reset },
        401 | 403 => Error::Auth { status, url },
        404 => Error::NotFound { what, url },
        _ => Error::Status {
            status,
            url,
            body: body.chars().take(ERROR_BODY_CHARS).collect(),
        },
    }
}

/// Whether a `Link` header (`<url>; rel="next", <url>; rel="last"`) has a next page. Only the
/// fact is used: Maestro builds the next page's URL itself, so a link to another host is never
/// followed.
fn names_next_page(link: &str) -> bool {
    link.split(',').any(|part| {
        part.split(';')
            .skip(1)
            .any(|parameter| parameter.trim().eq_ignore_ascii_case("rel=\"next\""))
    })
}

/// `text` cut to at most `max_bytes` bytes on a character boundary, with a note of the
/// original size when cut.
pub(super) fn cut(text: &mut String, max_bytes: usize) {
    if text.len() <= max_bytes {
        return;
    }
    let original = text.len();
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… (cut at {max_bytes} bytes of {original})"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_a_next_page_or_not() {
        assert!(names_next_page(
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\""
        ));
        assert!(!names_next_page(
            "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=1>; rel=\"first\""
        ));
        assert!(!names_next_page(""));
    }

    #[test]
    fn cut_keeps_a_char_boundary_and_says_the_size() {
        let mut text = "é".repeat(10);
        cut(&mut text, 5);
        assert_eq!(text, "éé… (cut at 5 bytes of 20)");
        let mut short = "ok".to_string();
        cut(&mut short, 5);
        assert_eq!(short, "ok");
    }
}
