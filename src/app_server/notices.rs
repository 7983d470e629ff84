//! The error notices codex sends during a turn, and the cause an operator reads from them.
//!
//! Codex reports trouble with the model as `error` notifications: with `willRetry: true` while
//! it keeps trying ("Reconnecting... 2/5", "Reconnecting... waiting for network"), with
//! `willRetry: false` when it gives up. A turn that ends at Maestro's idle timeout never gets
//! the final one: without the notes it would say nothing about the network or the credentials.
//! So a turn keeps its last few notices ([`Notices`]), and [`cause`] picks the most telling of
//! them and says in one sentence what it means and what to check, for example
//! `model endpoint unreachable (codex: stream disconnected before completion: …); check network
//! or codex login`.
//!
//! This file only keeps and classifies; whether a cause changes what happens to the issue is
//! the caller's decision.

use std::collections::VecDeque;

use serde_json::Value;

/// How many distinct notices a turn keeps (the oldest go first).
pub const MAX_NOTICES: usize = 8;
/// How much of codex's own text a cause quotes.
const MAX_QUOTED_CHARS: usize = 240;
/// How much of a notice's message and details is kept at all.
const MAX_NOTICE_BYTES: usize = 2048;

/// One `error` notification of a turn.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorNotice {
    /// When it arrived (Unix milliseconds).
    pub at_ms: u64,
    /// `error.message`, for example `Reconnecting... 2/5`.
    pub message: String,
    /// `error.additionalDetails`, the underlying error when codex gives one.
    pub details: Option<String>,
    /// `error.codexErrorInfo` as sent.
    pub codex_error_info: Option<Value>,
    /// Whether codex said it keeps trying (`willRetry`).
    pub will_retry: bool,
    /// How many times in a row this same notice arrived.
    pub repeats: u32,
}

impl ErrorNotice {
    /// The notice in `params` of an `error` notification, if it has a message.
    pub(crate) fn from_params(params: &Value, at_ms: u64) -> Option<ErrorNotice> {
        let error = params.get("error")?;
        let text = |name: &str| {
            error
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(|text| cut_bytes(text, MAX_NOTICE_BYTES))
        };
        Some(ErrorNotice {
            at_ms,
            message: text("message")?,
            details: text("additionalDetails"),
            codex_error_info: error
                .get("codexErrorInfo")
                .filter(|v| !v.is_null())
                .cloned(),
            will_retry: params
                .get("willRetry")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            repeats: 1,
        })
    }

    /// An HTTP status the notice names (`codexErrorInfo.*.httpStatusCode`).
    pub fn http_status(&self) -> Option<u16> {
        let info = self.codex_error_info.as_ref()?.as_object()?;
        info.values()
            .find_map(|inner| inner.get("httpStatusCode")?.as_u64())
            .and_then(|status| u16::try_from(status).ok())
    }

    /// The name of `codexErrorInfo`: the string itself, or the object's only key.
    fn info_name(&self) -> Option<&str> {
        match self.codex_error_info.as_ref()? {
            Value::String(name) => Some(name),
            Value::Object(map) => map.keys().next().map(String::as_str),
            _ => None,
        }
    }

    /// What codex said, most specific first: the underlying error when there is one.
    fn quoted(&self) -> &str {
        self.details.as_deref().unwrap_or(&self.message)
    }

    fn same_as(&self, other: &ErrorNotice) -> bool {
        self.message == other.message
            && self.details == other.details
            && self.codex_error_info == other.codex_error_info
            && self.will_retry == other.will_retry
    }
}

/// The last [`MAX_NOTICES`] distinct notices of a turn; a repeat of the newest one is counted.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notices {
    kept: VecDeque<ErrorNotice>,
}

impl Notices {
    pub fn push(&mut self, notice: ErrorNotice) {
        if let Some(last) = self.kept.back_mut() {
            if last.same_as(&notice) {
                last.repeats = last.repeats.saturating_add(1);
                last.at_ms = notice.at_ms;
                return;
            }
        }
        if self.kept.len() == MAX_NOTICES {
            self.kept.pop_front();
        }
        self.kept.push_back(notice);
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    pub fn into_vec(self) -> Vec<ErrorNotice> {
        self.kept.into()
    }
}

/// What a cause is about, from least to most telling: a notice that names the credentials says
/// more than one that names an HTTP status, which says more than a lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CauseKind {
    /// Codex reported an error Maestro does not recognise.
    CodexError,
    /// The model endpoint could not be reached (DNS, refused or dropped connections, no network).
    ModelUnreachable,
    /// The endpoint answered with an HTTP error other than the ones below.
    ModelHttpError,
    /// The endpoint answered 429 or codex reported a rate or usage limit.
    ModelRateLimited,
    /// The endpoint refused the credentials (401, 403, `unauthorized`).
    ModelAuth,
}

impl CauseKind {
    /// A stable snake_case name, for records and for comparing causes across attempts.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseKind::CodexError => "codex_error",
            CauseKind::ModelUnreachable => "model_unreachable",
            CauseKind::ModelHttpError => "model_http_error",
            CauseKind::ModelRateLimited => "model_rate_limited",
            CauseKind::ModelAuth => "model_auth",
        }
    }
}

/// Why a turn went wrong, as far as codex's notices tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub kind: CauseKind,
    /// One line for the operator: what it means, codex's words (escaped, bounded, URLs without
    /// credentials or query), and what to check.
    pub text: String,
}

/// The most telling of `notices`, or `None` when there are none: the most telling kind, then
/// the deepest error chain (`a: b: c` names a root cause, `Connection failed` does not), then
/// the latest.
pub fn cause(notices: &[ErrorNotice]) -> Option<Cause> {
    let best = notices
        .iter()
        .enumerate()
        .max_by_key(|(index, notice)| (classify(notice), chain_depth(notice.quoted()), *index))
        .map(|(_, notice)| notice)?;
    let kind = classify(best);
    let quoted = quote(best.quoted());
    let text = match kind {
        CauseKind::ModelAuth => format!(
            "model endpoint refused the credentials{} (codex: {quoted}); check codex login or the provider's API key",
            status_suffix(best)
        ),
        CauseKind::ModelRateLimited => format!(
            "model rate or usage limit reached{} (codex: {quoted}); wait, or check the account's plan",
            status_suffix(best)
        ),
        CauseKind::ModelHttpError => format!(
            "model endpoint answered with an error{} (codex: {quoted}); check the model provider's status",
            status_suffix(best)
        ),
        CauseKind::ModelUnreachable => {
            format!("model endpoint unreachable (codex: {quoted}); check network or codex login")
        }
        CauseKind::CodexError => format!("codex reported an error (codex: {quoted})"),
    };
    Some(Cause { kind, text })
}

fn status_suffix(notice: &ErrorNotice) -> String {
    notice
        .http_status()
        .map(|status| format!(" (HTTP {status})"))
        .unwrap_or_default()
}

fn classify(notice: &ErrorNotice) -> CauseKind {
    let info = notice.info_name().unwrap_or("");
    match notice.http_status() {
        Some(401 | 403) => return CauseKind::ModelAuth,
        Some(429) => return CauseKind::ModelRateLimited,
        Some(_) => return CauseKind::ModelHttpError,
        None => {}
    }
    match info {
        "unauthorized" => CauseKind::ModelAuth,
        "usageLimitExceeded" | "rateLimitExceeded" => CauseKind::ModelRateLimited,
        "internalServerError" | "serverOverloaded" | "badRequest" => CauseKind::ModelHttpError,
        // Without an HTTP status these never got an answer from the endpoint.
        "responseStreamDisconnected"
        | "httpConnectionFailed"
        | "responseStreamConnectionFailed"
        | "responseTooManyFailedAttempts" => CauseKind::ModelUnreachable,
        _ if notice.message.contains("waiting for network") => CauseKind::ModelUnreachable,
        _ => CauseKind::CodexError,
    }
}

/// How many `: ` separators the text has: each is one more level of "because".
fn chain_depth(text: &str) -> usize {
    text.matches(": ").count()
}

/// Codex's text as a cause quotes it: one line, control characters escaped, URLs without user
/// name, password or query, at most [`MAX_QUOTED_CHARS`] characters.
fn quote(text: &str) -> String {
    let one_line: String = text
        .split_whitespace()
        .map(strip_url_secrets)
        .collect::<Vec<_>>()
        .join(" ");
    let escaped = crate::escape::text(&one_line).into_owned();
    if escaped.chars().count() <= MAX_QUOTED_CHARS {
        escaped
    } else {
        let mut cut: String = escaped.chars().take(MAX_QUOTED_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// `scheme://user:pass@host/path?query` → `scheme://host/path`; other words unchanged.
fn strip_url_secrets(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_string();
    };
    let (scheme, rest) = word.split_at(scheme_end + 3);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{scheme}{host}{path}")
}

fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The notices codex 0.169.0 sent in the cases this module was written from.
    fn notice(message: &str, info: Value, details: Option<&str>, will_retry: bool) -> ErrorNotice {
        let params = json!({
            "error": {"message": message, "codexErrorInfo": info, "additionalDetails": details},
            "willRetry": will_retry,
        });
        ErrorNotice::from_params(&params, 1).unwrap()
    }

    fn dns(n: u32) -> ErrorNotice {
        notice(
            &format!("Reconnecting... {n}/5"),
            json!({"responseStreamDisconnected": {"httpStatusCode": null}}),
            Some(
                "stream disconnected before completion: failed to lookup address information: Name does not resolve",
            ),
            true,
        )
    }

    fn waiting() -> ErrorNotice {
        notice(
            "Reconnecting... waiting for network",
            json!({"responseStreamDisconnected": {"httpStatusCode": null}}),
            Some("Connection failed: error sending request"),
            true,
        )
    }

    #[test]
    fn no_notice_no_cause() {
        assert_eq!(cause(&[]), None);
    }

    #[test]
    fn an_unreachable_model_names_the_network_and_quotes_the_root_cause() {
        // Without network, codex's first notes name the DNS failure; the later ones only say
        // "Connection failed". The deeper chain is the telling one.
        let found = cause(&[dns(2), dns(5), waiting(), waiting()]).unwrap();
        assert_eq!(found.kind, CauseKind::ModelUnreachable);
        assert_eq!(
            found.text,
            "model endpoint unreachable (codex: stream disconnected before completion: failed to lookup address information: Name does not resolve); check network or codex login"
        );
        let only_waiting = cause(&[waiting()]).unwrap();
        assert_eq!(only_waiting.kind, CauseKind::ModelUnreachable);
        assert!(
            only_waiting
                .text
                .contains("(codex: Connection failed: error sending request)"),
            "{only_waiting:?}"
        );
    }

    #[test]
    fn credentials_outrank_everything_and_urls_lose_their_secrets() {
        let auth = notice(
            "Reconnecting... 1/5",
            json!({"responseStreamDisconnected": {"httpStatusCode": 401}}),
            Some(
                "unexpected status 401 Unauthorized: Incorrect API key provided: sk-...abcd, url: https://user:pw@proxy.example/v1/responses?key=k",
            ),
            true,
        );
        let found = cause(&[auth, waiting()]).unwrap();
        assert_eq!(found.kind, CauseKind::ModelAuth);
        assert!(found.text.starts_with(
            "model endpoint refused the credentials (HTTP 401) (codex: unexpected status 401"
        ));
        assert!(
            found
                .text
                .contains("url: https://proxy.example/v1/responses)")
        );
        assert!(!found.text.contains("pw@") && !found.text.contains("key=k"));
        assert!(
            found
                .text
                .ends_with("check codex login or the provider's API key")
        );
    }

    #[test]
    fn statuses_and_infos_classify() {
        let with = |info: Value| classify(&notice("x", info, None, false));
        assert_eq!(
            with(json!("internalServerError")),
            CauseKind::ModelHttpError
        );
        assert_eq!(
            with(json!("usageLimitExceeded")),
            CauseKind::ModelRateLimited
        );
        assert_eq!(
            with(json!({"responseTooManyFailedAttempts": {"httpStatusCode": 429}})),
            CauseKind::ModelRateLimited
        );
        assert_eq!(
            with(json!({"httpConnectionFailed": {"httpStatusCode": 503}})),
            CauseKind::ModelHttpError
        );
        assert_eq!(with(json!("unauthorized")), CauseKind::ModelAuth);
        assert_eq!(
            with(json!({"responseTooManyFailedAttempts": {"httpStatusCode": null}})),
            CauseKind::ModelUnreachable
        );
        assert_eq!(with(json!("other")), CauseKind::CodexError);
    }

    #[test]
    fn repeats_are_counted_and_the_oldest_notices_go_first() {
        let mut notices = Notices::default();
        notices.push(waiting());
        notices.push(waiting());
        for n in 0..MAX_NOTICES as u32 {
            notices.push(dns(n));
        }
        let kept = notices.into_vec();
        assert_eq!(kept.len(), MAX_NOTICES);
        assert_eq!(
            kept[0].message, "Reconnecting... 0/5",
            "waiting was pushed out"
        );
        let mut again = Notices::default();
        again.push(waiting());
        again.push(waiting());
        assert_eq!(again.into_vec()[0].repeats, 2);
    }

    #[test]
    fn quoted_text_is_one_bounded_escaped_line() {
        let long = format!("first\nsecond \u{1b}[2J {}", "x".repeat(400));
        let found = cause(&[notice("m", Value::Null, Some(&long), false)]).unwrap();
        assert!(!found.text.contains('\n') && !found.text.contains('\u{1b}'));
        assert!(found.text.contains("first second \\u{1b}[2J x"));
        assert!(found.text.contains("…)"), "{}", found.text);
    }
}
