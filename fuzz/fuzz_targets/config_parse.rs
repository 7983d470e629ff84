//! `maestro::config::parse` on arbitrary text: never panics; an invalid file lists at least one
//! problem, each at a line and column inside the input, and the error text never repeats a
//! literal token; a valid file upholds `ServiceConfig`'s documented invariants.
#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use maestro::config::{self, Error, Provider};

mod common;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/fuzz/repo/tmp/maestro.toml");
    match config::parse(path, &text, Some(Path::new("/home/fuzz"))) {
        Ok(config) => {
            assert!(config::is_project_id(&config.id), "{config:?}");
            assert!(config.repo_root.is_absolute(), "{config:?}");
            assert!(config.workspace_root.is_absolute(), "{config:?}");
            assert!(config.workflow_path.is_relative(), "{config:?}");
            assert!(
                !config
                    .workflow_path
                    .components()
                    .any(|c| matches!(c, Component::ParentDir)),
                "{config:?}"
            );
            assert!(!config.agent.command.is_empty(), "{config:?}");
            assert_eq!(
                config.tracker.provider == Provider::Local,
                config.tracker.issues_dir.is_some(),
                "{config:?}"
            );
        }
        Err(error) => {
            let Error::Invalid { diagnostics, .. } = &error else {
                panic!("parse touched the filesystem: {error}");
            };
            common::check_diagnostics(&text, diagnostics);
            common::check_error_text(&error.to_string());
        }
    }
});
