//! A command's text on stdout and its errors on stderr, as `maestro: <message>`.
//!
//! A leaf: it imports nothing of Maestro's but [`crate::escape`], so every command module can
//! say what went wrong without depending on `commands`, which depends on all of them. Nothing
//! here panics: a closed stdout is the reader leaving (success), an unwritable stderr is
//! ignored. It chooses no exit code; `commands` maps what each command returns to one.

use std::io::Write;

/// stdout could not be written (not a closed pipe); the reason was already said on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unwritten;

/// Writes `text` to stdout; a closed pipe is not an error (the reader of `maestro status |
/// head -1` has all it wanted, the usual Unix convention ripgrep follows too). Any other write
/// error is reported on stderr.
pub fn print(text: &str) -> Result<(), Unwritten> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => {
            complain(&format!("cannot write to stdout: {error}"));
            Err(Unwritten)
        }
    }
}

/// Prints an error (and its source chain) once, to stderr.
pub fn report(error: &dyn std::error::Error) {
    write_stderr(&report_text(error));
}

/// Prints `maestro: <message>` to stderr, escaped like every error ([`report_text`]).
pub fn complain(message: &str) {
    write_stderr(&message_text(message));
}

/// Writes Maestro's own text (a hint, never text from outside) to stderr as it is.
pub fn hint(text: &str) {
    write_stderr(text);
}

/// An unwritable stderr (closed, or `2>/dev/full`) is ignored: there is nowhere left to say
/// anything, and the exit code still tells the caller what happened.
fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush());
}

/// `maestro: <error>`, then `  caused by: <source>` for each source whose text the message
/// does not already include. Error texts carry issue identifiers, paths, git and tracker
/// output: every control character is escaped but the line feeds of a multi-line diagnostic,
/// and each continuation line is indented, so no text inside an error can start a line of its
/// own that looks like another `maestro:` message.
fn report_text(error: &dyn std::error::Error) -> String {
    let message = error.to_string();
    let mut text = message_text(&message);
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.contains(&cause_text) {
            text.push_str(&indented("  caused by: ", &cause_text));
        }
        source = cause.source();
    }
    text
}

fn message_text(message: &str) -> String {
    indented("maestro: ", message)
}

/// `first_prefix` before the first line, two spaces before every further line, each line
/// escaped and ended with a line feed.
fn indented(first_prefix: &str, message: &str) -> String {
    let mut text = String::new();
    for (index, line) in crate::escape::lines(message).split('\n').enumerate() {
        text.push_str(if index == 0 { first_prefix } else { "  " });
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Failure(&'static str, Option<Box<Failure>>);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|cause| cause as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn a_report_escapes_controls_and_indents_continuation_lines() {
        let error = Failure(
            "invalid config /c.toml (1 problem):\n/c.toml:1:1: `X\u{1b}[2J\rmaestro: forged` is bad",
            Some(Box::new(Failure("disk\nmaestro: on fire", None))),
        );
        assert_eq!(
            report_text(&error),
            "maestro: invalid config /c.toml (1 problem):\n  /c.toml:1:1: `X\\u{1b}[2J\\rmaestro: forged` is bad\n  caused by: disk\n  maestro: on fire\n"
        );
    }
}
