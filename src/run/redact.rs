//! The one scrubber for secret values: everything Maestro hands to the agent (developer
//! instructions, turn input, tool results) and everything the agent hands to the tracker
//! through Maestro passes through [`Secrets::scrub`] first.
//!
//! The secrets are the values of the variables the service config names
//! ([`crate::config::ServiceConfig::secret_env_vars`]: the tracker API key, the GitHub token),
//! read once when the attempt starts. The codex child never has them in its environment; this
//! is defence in depth for the paths that do not go through the environment: a repository file
//! or an issue description that holds a token, a tracker error that echoes one back.
//! It deliberately knows no variable other than the ones the config names, and it never logs,
//! prints or formats a value: its `Debug` shows how many values it holds, nothing more.

use std::borrow::Cow;

/// What a secret value becomes.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not scrubbed: no real API key or token is that short, and
/// replacing every occurrence of a two-letter value would garble ordinary text.
pub const MIN_SECRET_BYTES: usize = 8;

/// The secret values of one attempt.
#[derive(Clone, Default)]
pub struct Secrets {
    /// Each value, and its JSON-escaped form when that differs (tool results are JSON text),
    /// longest first so a value that contains another is replaced whole.
    patterns: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Secrets {
    /// The values of the variables `names`, from this process's environment. Unset, empty and
    /// too-short values are left out.
    pub fn from_env(names: &[String]) -> Secrets {
        Secrets::from_values(
            names
                .iter()
                .filter_map(std::env::var_os)
                .map(|value| value.to_string_lossy().into_owned()),
        )
    }

    /// Scrubs exactly these values (tests, and callers that already hold them).
    pub fn from_values(values: impl IntoIterator<Item = String>) -> Secrets {
        let mut patterns = Vec::new();
        for value in values {
            let value = value.trim().to_string();
            if value.len() < MIN_SECRET_BYTES {
                continue;
            }
            let json = serde_json::to_string(&value).unwrap_or_default();
            let escaped = json
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_default()
                .to_string();
            if escaped != value && !escaped.is_empty() {
                patterns.push(escaped);
            }
            patterns.push(value);
        }
        patterns.sort_by_key(|pattern| std::cmp::Reverse(pattern.len()));
        patterns.dedup();
        Secrets { patterns }
    }

    /// `text` with every secret value replaced by [`REDACTED`]; borrowed when there is none.
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for pattern in &self.patterns {
            if text.contains(pattern.as_str()) {
                text = Cow::Owned(text.replace(pattern.as_str(), REDACTED));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_and_its_json_form_is_replaced() {
        let secrets = Secrets::from_values([
            "lin_api_0123456789".to_string(),
            "gh\"quoted\\token".to_string(),
        ]);
        assert_eq!(
            secrets.scrub("key lin_api_0123456789, again lin_api_0123456789."),
            "key [redacted], again [redacted]."
        );
        let json = serde_json::json!({"error": "no label \"gh\"quoted\\token\""}).to_string();
        let scrubbed = secrets.scrub(&json);
        assert!(!scrubbed.contains("quoted"), "{scrubbed}");
        assert!(serde_json::from_str::<serde_json::Value>(&scrubbed).is_ok());
        assert_eq!(secrets.scrub("nothing here"), "nothing here");
    }

    #[test]
    fn short_and_empty_values_are_left_alone_and_debug_shows_no_value() {
        let secrets = Secrets::from_values(["".to_string(), "abc".to_string()]);
        assert_eq!(secrets.scrub("abc abc"), "abc abc");
        let secrets = Secrets::from_values(["supersecretvalue".to_string()]);
        assert!(!format!("{secrets:?}").contains("supersecret"));
    }

    #[test]
    fn a_value_containing_another_is_replaced_whole() {
        let secrets = Secrets::from_values([
            "token-1234".to_string(),
            "prefix-token-1234-suffix".to_string(),
        ]);
        assert_eq!(
            secrets.scrub("a prefix-token-1234-suffix b"),
            "a [redacted] b"
        );
    }
}
