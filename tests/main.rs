//! Maestro's integration tests, built into one binary (as cargo's and ripgrep's are) so they
//! link once. Each module covers one feature; shared fakes and helpers live in `support/`.

mod support;

/// The app-server client against the fake app-server: faults, policy, leaks.
mod app_server_fake;
/// The app-server client against the real codex binary and the scripted mock model.
mod app_server_real;
/// The command line as an operator meets it: help, version, usage errors, exit codes.
mod cli;
/// maestro.toml: resolution order, defaults, every validation rule.
mod config;
/// `maestro protocol probe`: the real codex passes; each failing step is named.
mod probe;
/// WORKFLOW.md: front matter, every validation rule, last-known-good reload.
mod workflow;
