//! Logging setup: `env_logger` to stderr, level from `RUST_LOG` (default `info`).
//!
//! Messages carry stable `key=value` fields (`project`, `issue`, `run_id`, `attempt`,
//! `thread_id`, `action`) inside the message text, so `grep issue=ABC-12` works on any log.
//! Secrets never reach a log line: only environment variable *names* are ever formatted.
//!
//! One record is one line: the format escapes every control character in the message
//! ([`crate::escape::text`]), so an issue identifier or title carrying a line feed or an ESC
//! sequence cannot split a record, forge another one or drive the operator's terminal. This is
//! the single place that rule is applied to logs; call sites format values plainly.
//!
//! Logging never panics on a full or closed stderr: records go to [`crate::terminal::LogSink`],
//! which writes them to stderr (above `run --once`'s live progress line when one is shown) and
//! drops a failed write; `is_test` stays off (its `print!`-based target would panic).

use std::io::Write;

/// Installs the global logger. Safe to call more than once (later calls do nothing).
pub fn init() {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(log::LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    builder.format(|out, record| {
        writeln!(
            out,
            "{} {:<5} {}: {}",
            crate::clock::now_rfc3339(),
            record.level(),
            record.target(),
            message(record.args())
        )
    });
    builder.target(env_logger::Target::Pipe(Box::new(crate::terminal::LogSink)));
    builder.is_test(false);
    let _ = builder.try_init();
}

/// A record's message as it is written: formatted, then escaped to one line.
fn message(args: &std::fmt::Arguments<'_>) -> String {
    match args.as_str() {
        Some(literal) => crate::escape::text(literal).into_owned(),
        None => crate::escape::text(&args.to_string()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_control_characters_stays_on_one_line() {
        let identifier = "ABC-1\n2026-01-01T00:00:00Z INFO  maestro::run: forged";
        let text = message(&format_args!("dispatch issue={identifier} attempt=1"));
        assert_eq!(
            text,
            "dispatch issue=ABC-1\\n2026-01-01T00:00:00Z INFO  maestro::run: forged attempt=1"
        );
    }
}
