//! `maestro::workflow::parse` on arbitrary text: never panics; an invalid file lists at least
//! one problem, each at a line and column inside the input, and the error text never repeats a
//! literal token; a valid file upholds `Workflow`'s documented invariants.
#![no_main]

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maestro::workflow::{self, Error};

mod common;

/// A repository with a few files, so `context.read_first` can name existing ones.
fn repo_root() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root =
            std::env::temp_dir().join(format!("maestro-fuzz-workflow-{}", std::process::id()));
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join("README.md"), "readme\n").unwrap();
        std::fs::write(root.join("docs/a.md"), "a\n").unwrap();
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let root = repo_root();
    let path = root.join("WORKFLOW.md");
    match workflow::parse(&path, &text, root) {
        Ok(workflow) => {
            assert_eq!(workflow.body, workflow.body.trim(), "{workflow:?}");
            // Warnings are logged: the same rule as error text.
            for warning in &workflow.warnings {
                common::check_error_text(warning);
            }
            for file in &workflow.read_first {
                assert!(file.is_relative(), "{workflow:?}");
                assert!(
                    !file.components().any(|c| matches!(c, Component::ParentDir)),
                    "{workflow:?}"
                );
            }
            let execution = &workflow.execution;
            for (state, cap) in &execution.max_concurrent_agents_by_state {
                assert!(
                    *cap >= 1 && *cap <= execution.max_concurrent_agents,
                    "cap for {state}: {workflow:?}"
                );
            }
        }
        Err(error) => {
            let Error::Invalid { diagnostics, .. } = &error else {
                panic!("parse failed without diagnostics: {error}");
            };
            common::check_diagnostics(&text, diagnostics);
            common::check_error_text(&error.to_string());
        }
    }
});
