//! Control characters out of operator-facing text: the one home of that rule.
//!
//! Issue titles, identifiers, branch names, error texts and agent output are written by
//! anyone, and a terminal obeys what it prints: an ESC sequence can clear the screen or
//! recolour it, a carriage return or line feed can forge a table row or a log line. Every text
//! Maestro shows an operator (the dry-run and status views, the `run --once` summary line,
//! error messages, probe lines, log records, the dashboard) passes each untrusted value
//! through [`text`] (or a whole message through [`lines`]) before it is printed.
//!
//! A control character is what Unicode calls one (`char::is_control`): C0 (U+0000–U+001F),
//! DEL (U+007F) and C1 (U+0080–U+009F). They are shown the way Rust's debug escapes show them:
//! `\n`, `\r`, `\t`, and `\u{1b}` for the rest. Backslashes are left alone, so the result is
//! for reading, not for decoding back.
//!
//! **Not here:** JSON output. serde_json already escapes every control character in a string,
//! and the JSON documents are exact contracts, so they are never passed through this module.

use std::borrow::Cow;

/// `value` with every control character escaped, line breaks included: the result is always
/// one line. For fields (titles, identifiers, paths, reasons) and for log records.
pub fn text(value: &str) -> Cow<'_, str> {
    escape_where(value, char::is_control)
}

/// A message Maestro composed, possibly over several lines (a config file's diagnostics):
/// line feeds are kept, every other control character is escaped.
pub fn lines(message: &str) -> Cow<'_, str> {
    escape_where(message, |c| c.is_control() && c != '\n')
}

fn escape_where(value: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !value.chars().any(&escaped) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if !escaped(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push_str(&format!("\\u{{{:x}}}", u32::from(other))),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let plain = "Fix the flaky lane cleanup test — café, 日本, \\n stays";
        assert!(matches!(text(plain), Cow::Borrowed(_)));
        assert_eq!(text(plain), plain);
    }

    #[test]
    fn c0_del_and_c1_are_escaped() {
        assert_eq!(
            text("a\u{1b}[2J\r\nb\tc\u{0}\u{7f}\u{9b}31m\u{85}"),
            "a\\u{1b}[2J\\r\\nb\\tc\\u{0}\\u{7f}\\u{9b}31m\\u{85}"
        );
    }

    #[test]
    fn lines_keeps_line_feeds_only() {
        assert_eq!(
            lines("one\ntwo\r\n\u{1b}]0;x\u{7}"),
            "one\ntwo\\r\n\\u{1b}]0;x\\u{7}"
        );
    }
}
