//! Logging setup: `env_logger` to stderr, level from `RUST_LOG` (default `info`).
//!
//! Messages carry stable `key=value` fields (`project`, `issue`, `run_id`, `attempt`,
//! `thread_id`, `action`) inside the message text, so `grep issue=ABC-12` works on any log.
//! Secrets never reach a log line: only environment variable *names* are ever formatted.

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
            record.args()
        )
    });
    builder.target(env_logger::Target::Stderr);
    let _ = builder.try_init();
}
