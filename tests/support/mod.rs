//! Shared test support: temp dirs, the maestro binary, fakes. A plain module, not a test target.

#![allow(dead_code)] // Each test module uses a different subset of the helpers.

pub mod app_server;
pub mod codex;
pub mod daemon_world;
pub mod dir;
pub mod fake_github;
pub mod fake_http;
pub mod fake_linear;
pub mod git;
pub mod landing;
pub mod ports;
pub mod procs;
pub mod run_world;
pub mod source_tree;
pub mod sshd;
pub mod state;
pub mod tree;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The `maestro` binary built for this test run.
pub fn maestro_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_maestro"))
}

/// Runs `maestro` with `args` in `cwd`, with a scrubbed config environment (no XDG or HOME
/// config leaks in from the machine running the tests).
pub fn maestro(cwd: &Path, args: &[&str]) -> Output {
    maestro_command(cwd, args)
        .output()
        .expect("maestro binary runs")
}

/// The command `maestro(...)` runs, for callers that need to add environment.
pub fn maestro_command(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(maestro_bin());
    command
        .args(args)
        .current_dir(cwd)
        .env("XDG_CONFIG_HOME", cwd.join("xdg-config"))
        .env("HOME", cwd.join("home"))
        .env_remove("RUST_LOG");
    command
}

/// A deliberate pause that is itself a test's input (a client that dribbles, a slow tool, a
/// kill point), never a wait for something to happen: that polls its condition with a bound
/// (`run_world::wait_until`). The tidy tests allow a sleep only here, in `support/`.
pub fn pause(duration: Duration) {
    std::thread::sleep(duration);
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
