//! `maestro protocol probe` as an operator runs it: the real codex passes, and a missing
//! command, an incomplete schema or a bad config each fail with the step or file named.

use std::path::Path;

use crate::codex_or_skip;
use crate::support::app_server::fake_app_server;
use crate::support::dir::TestDir;
use crate::support::{maestro, maestro_command, stderr, stdout};

/// A valid maestro.toml at `<dir>/tmp/maestro.toml` whose agent command is `command`.
fn write_config(dir: &TestDir, command: &str) {
    dir.write(
        "tmp/maestro.toml",
        &format!(
            "id = \"demo\"\nrepo_root = \"/srv/demo\"\n\n[tracker]\napi_key_env_var = \"MAESTRO_TEST_LINEAR_KEY\"\n\n[agent]\ncommand = \"{command}\"\n"
        ),
    );
}

#[test]
fn probe_passes_with_the_pinned_codex_from_config() {
    let codex = codex_or_skip!();
    let dir = TestDir::new("probe-ok");
    write_config(&dir, &format!("{} app-server", codex.display()));
    let output = maestro(dir.path(), &["protocol", "probe"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with(&format!(
        "maestro protocol probe: command `{} app-server` (from ",
        codex.display()
    )));
    assert_eq!(lines[1], "step 1/3 command: ok (codex-cli 0.169.0)");
    assert_eq!(
        lines[2],
        "step 2/3 schema: ok (defines initialize, thread/start, turn/start, item/tool/call, thread/status/changed, turn/completed)"
    );
    assert!(
        lines[3].starts_with("step 3/3 round trip (built-in mock model): ok (thread ")
            && lines[3].contains("maestro_probe answered, final message \"maestro probe complete "),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4], "PROBE_OK");
}

#[test]
fn probe_works_without_a_config_using_codex_from_path() {
    let codex = codex_or_skip!();
    if codex.file_name().and_then(|n| n.to_str()) != Some("codex") {
        println!(
            "skipped: {} is not named codex, cannot stand in on PATH",
            codex.display()
        );
        return;
    }
    let dir = TestDir::new("probe-no-config");
    let path = format!(
        "{}:{}",
        codex.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = maestro_command(dir.path(), &["protocol", "probe"])
        .env("PATH", path)
        .env_remove("MAESTRO_CODEX_BIN")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(text.starts_with(
        "maestro protocol probe: command `codex app-server` (defaults; no maestro.toml found)\n"
    ));
    assert!(text.ends_with("PROBE_OK\n"));
}

#[test]
fn a_missing_command_fails_step_one() {
    let dir = TestDir::new("probe-missing");
    write_config(&dir, "/nonexistent/bin/codex app-server");
    let output = maestro(dir.path(), &["protocol", "probe"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains(
            "step 1/3 command: FAILED: cannot run '/nonexistent/bin/codex': No such file or directory (os error 2); install codex (npm install -g @openai/codex@0.169.0) or set [agent] command in maestro.toml\n"
        ),
        "{text}"
    );
    assert!(!text.contains("PROBE_OK") && !text.contains("step 2/3"));
    assert_eq!(
        stderr(&output),
        "maestro: protocol probe failed at step 1 (command)\n"
    );
}

#[test]
fn a_schema_without_a_required_method_fails_step_two() {
    let dir = TestDir::new("probe-schema");
    write_config(&dir, &format!("{} app-server", fake_app_server().display()));
    let output = maestro_command(dir.path(), &["protocol", "probe"])
        .env("MAESTRO_FAKE_SCHEMA_DROP", "item/tool/call")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("step 1/3 command: ok (codex-cli 0.0.0-fake)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "step 2/3 schema: FAILED: the schema bundle lacks item/tool/call (ServerRequest.json); "
        ),
        "{text}"
    );
    assert_eq!(
        stderr(&output),
        "maestro: protocol probe failed at step 2 (schema)\n"
    );
}

#[test]
fn a_failed_round_trip_names_step_three_and_keeps_the_journal() {
    // The fake answers the handshake but its turn never completes within the idle timeout.
    let dir = TestDir::new("probe-roundtrip");
    write_config(&dir, &format!("{} app-server", fake_app_server().display()));
    dir.write(
        "tmp/maestro.toml",
        &(std::fs::read_to_string(dir.join("tmp/maestro.toml")).unwrap()
            + "turn_idle_timeout_ms = 300\n"),
    );
    let output = maestro_command(dir.path(), &["protocol", "probe"])
        .env("MAESTRO_FAKE_SCENARIO", "wait")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    let line = text
        .lines()
        .find(|line| line.starts_with("step 3/3"))
        .unwrap();
    // Issue #16: this line used to end in Rust debug text (`IdleTimeout { idle: 300ms }`).
    assert!(
        line.starts_with("step 3/3 round trip (built-in mock model): FAILED: the turn ended idle_timeout instead of completing: codex made no progress for 0.3 s, so the turn was interrupted (raise [agent] turn_idle_timeout_ms if the model is slow, or check that codex can reach it) (journal: "),
        "{line}"
    );
    assert!(
        !line.contains("IdleTimeout") && !line.contains(" {"),
        "{line}"
    );
    let journal = line
        .rsplit("journal: ")
        .next()
        .unwrap()
        .trim_end_matches(')');
    assert!(Path::new(journal).is_file(), "{journal}");
    let _ = std::fs::remove_dir_all(Path::new(journal).parent().unwrap().parent().unwrap());
}

#[test]
fn an_invalid_config_exits_two_and_a_missing_explicit_config_too() {
    let dir = TestDir::new("probe-bad-config");
    dir.write("tmp/maestro.toml", "id = \"Not Valid\"\n");
    let output = maestro(dir.path(), &["protocol", "probe"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("maestro: invalid config "));
    assert!(stdout(&output).is_empty());
    let output = maestro(dir.path(), &["protocol", "probe", "--config", "nope.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("maestro: config file "));
    assert!(stderr(&output).contains("nope.toml (given with --config) does not exist"));
}

/// With the bare `codex` of the default command, `MAESTRO_CODEX_BIN` names the codex to probe,
/// and the first line says where it came from.
#[test]
fn the_probe_takes_codex_from_maestro_codex_bin() {
    let dir = TestDir::new("probe-codex-bin");
    let output = maestro_command(dir.path(), &["protocol", "probe"])
        .env("MAESTRO_CODEX_BIN", fake_app_server())
        .env("MAESTRO_FAKE_SCHEMA_DROP", "item/tool/call")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!(
            "maestro protocol probe: command `{} app-server` (defaults; no maestro.toml found; codex from MAESTRO_CODEX_BIN)\nstep 1/3 command: ok (codex-cli 0.0.0-fake)\n",
            fake_app_server().display()
        )),
        "{text}"
    );
}
