//! Maestro: a repo-native control plane for autonomous coding agents.
//!
//! The binary (`src/main.rs`) is thin glue; everything lives in this library so integration
//! tests can drive the internals. Start reading at [`cli`] (what the operator typed) and
//! `docs/index.md` (the architecture map: modules, data flow, invariants).

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

pub mod app_server;
pub mod atomic_file;
pub mod bounds;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod custody;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod dry_run;
pub mod escape;
pub mod exit;
pub mod github;
pub mod init;
pub mod intake;
pub mod logging;
pub mod mock_model;
pub mod operator_http;
pub mod output;
pub mod probe;
pub mod progress_line;
pub mod review;
pub mod run;
pub mod selection;
pub mod settings;
pub mod shell;
pub mod show;
pub mod signals;
pub mod status;
pub mod terminal;
pub mod toml_fields;
pub mod tracker;
pub mod worker;
pub mod workflow;
pub mod workspace;
