//! stderr shared by a live status line and everything else written there.
//!
//! A live line (the progress of `run --once` in a terminal) stays on the terminal's last line
//! and is redrawn in place: carriage return, erase the line, the new text, no line feed.
//! Anything else written to stderr while it is shown — log records, warnings — would land on
//! the same line, so it goes through [`write_above`] (the logger through [`LogSink`]): the
//! line is erased, the text written, the line drawn again below it, all under one lock.
//!
//! Callers pass text that is already escaped (`crate::escape`); this module adds nothing but
//! the erase sequence. Nothing here panics: a failed write is dropped, since stderr is where
//! errors would be reported and there is nowhere left to say anything.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Carriage return and "erase the whole line" (ECMA-48 EL 2).
const ERASE: &[u8] = b"\r\x1b[2K";

/// The live line as drawn now, if one is shown.
static LINE: Mutex<Option<String>> = Mutex::new(None);

fn line() -> MutexGuard<'static, Option<String>> {
    LINE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether stderr is a terminal (a person is watching).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// The terminal's width in columns: the window size of stderr, else `COLUMNS`, else 80.
pub fn width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; fd 2 is only read.
    let result = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    if result == 0 && size.ws_col > 0 {
        return usize::from(size.ws_col);
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|columns| columns.trim().parse().ok())
        .filter(|columns: &usize| *columns > 0)
        .unwrap_or(80)
}

/// Draws `text` (one escaped line, already fitted to the width) in place of the live line.
pub fn draw(text: &str) {
    let mut shown = line();
    let mut bytes = ERASE.to_vec();
    bytes.extend_from_slice(text.as_bytes());
    write_stderr(&bytes);
    *shown = Some(text.to_string());
}

/// Erases the live line; stderr is an ordinary stream again.
pub fn clear() {
    let mut shown = line();
    if shown.take().is_some() {
        write_stderr(ERASE);
    }
}

/// Writes `bytes` (whole lines) to stderr, above the live line when one is shown.
pub fn write_above(bytes: &[u8]) {
    let shown = line();
    match shown.as_deref() {
        Some(text) => {
            let mut out = ERASE.to_vec();
            out.extend_from_slice(bytes);
            out.extend_from_slice(text.as_bytes());
            write_stderr(&out);
        }
        None => write_stderr(bytes),
    }
}

fn write_stderr(bytes: &[u8]) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(bytes).and_then(|()| stderr.flush());
}

/// stderr for the logger: each record is written above the live line, if one is shown, and a
/// write never fails (a full or closed stderr loses the record, never the command).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_above(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` cut to at most `columns` characters (an ellipsis marks the cut), so a line never
/// wraps and the next redraw erases all of it.
pub fn fit(text: &str, columns: usize) -> String {
    if text.chars().count() <= columns {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(columns.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_with_an_ellipsis() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("0123456789abc", 10), "012345678…");
        assert_eq!(fit("0123456789abc", 10).chars().count(), 10);
    }
}
