//! `maestro demo` end to end: the real binary builds its throwaway world, runs the real daemon
//! over it with the real codex and the built-in scripted agent, and each of the three issues
//! ends as the demo promises. Asserted from what an operator can read: the run records, the
//! local tracker's files, the bare origin, the exit code and the printed report; and the
//! repository's tracked files are left exactly as they were.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use maestro::workspace::Layout;
use maestro::workspace::record::{self, RunStatus};

use crate::codex_or_skip;
use crate::support::dir::TestDir;
use crate::support::maestro_bin;
use crate::support::procs::live_in_group;
use crate::support::run_world::wait_until;

/// A whole demo takes seconds; this only stops a stuck one (the demo's own deadline is 300 s).
const DEMO_DEADLINE: Duration = Duration::from_secs(420);

/// The repository this test binary was built from.
fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `maestro demo ARGS` run from the repository itself (so a write there would show), with
/// HOME and XDG config kept in the test directory.
fn demo_command(test: &TestDir, args: &[&str]) -> Command {
    let mut command = Command::new(maestro_bin());
    command
        .arg("demo")
        .args(args)
        .current_dir(repository())
        .env("HOME", test.join("home"))
        .env("XDG_CONFIG_HOME", test.join("xdg-config"))
        .env_remove("RUST_LOG");
    command
}

/// The repository's tracked files as git sees them: modified paths and the full diff.
fn tracked_state() -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(repository())
            .output()
            .expect("git runs");
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    git(&["status", "--porcelain", "--untracked-files=no"])
        + &git(&["diff", "--no-ext-diff", "--binary", "HEAD"])
}

/// What one demo run printed and how it ended.
struct DemoRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    /// The dashboard's answer to `GET /` while the demo ran, when it printed a dashboard URL.
    dashboard: Option<String>,
}

/// Runs the demo with `codex` (through `MAESTRO_CODEX_BIN`, as the demo documents) to
/// completion (bounded), asking the dashboard for its page as soon as the demo prints its URL,
/// while the daemon is still running.
fn run_demo(test: &TestDir, world: &Path, codex: &Path) -> DemoRun {
    let mut child = demo_command(test, &["--dir", world.to_str().unwrap()])
        .env("MAESTRO_CODEX_BIN", codex)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("maestro demo starts");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (dashboard_tx, dashboard_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.split("dashboard while it runs: ").nth(1) {
                let _ = dashboard_tx.send(get_page(url.trim()));
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut status = None;
    let finished = wait_until(DEMO_DEADLINE, || {
        status = child.try_wait().expect("wait for maestro demo");
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "maestro demo did not finish within {DEMO_DEADLINE:?}:\n{}",
            reader.join().unwrap_or_default()
        );
    }
    DemoRun {
        status: status.unwrap(),
        stdout: reader.join().unwrap(),
        stderr: errors.join().unwrap(),
        dashboard: dashboard_rx.try_recv().ok(),
    }
}

/// `GET /` from `http://127.0.0.1:PORT/`, retried (bounded) while the daemon binds its port.
fn get_page(url: &str) -> String {
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut page = String::new();
    wait_until(Duration::from_secs(30), || {
        let Ok(mut stream) = TcpStream::connect(&address) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        page.clear();
        stream.read_to_string(&mut page).is_ok() && !page.is_empty()
    });
    page
}

fn assert_success(run: &DemoRun) {
    assert_eq!(
        run.status.code(),
        Some(0),
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        run.stdout,
        run.stderr
    );
}

/// The tip of `branch` in the bare repository `origin`.
fn tip(origin: &Path, branch: &str) -> String {
    let output = Command::new("git")
        .args(["rev-parse", &format!("refs/heads/{branch}")])
        .current_dir(origin)
        .output()
        .unwrap();
    assert!(output.status.success(), "origin has no {branch}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn show(origin: &Path, object: &str) -> String {
    let output = Command::new("git")
        .args(["show", object])
        .current_dir(origin)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn assert_contains(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

/// Pids of live processes whose environment has `CODEX_HOME=<home>` (codex and what it ran).
fn processes_with_codex_home(home: &Path) -> Vec<u32> {
    let needle = format!("CODEX_HOME={}", home.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| crate::support::procs::is_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|var| var == needle.as_bytes())
            })
        })
        .collect()
}

#[test]
fn the_demo_hands_one_off_sends_one_to_a_human_and_hands_one_off_after_a_retry() {
    let codex = codex_or_skip!();
    let test = TestDir::new("demo");
    let world = test.join("world");
    let before = tracked_state();

    // A first run builds the world; a second run must wipe it (its own) and start fresh.
    let first = run_demo(&test, &world, &codex);
    assert_success(&first);
    std::fs::write(world.join("stale.txt"), "left from an earlier run").unwrap();
    let run = run_demo(&test, &world, &codex);
    assert_success(&run);
    assert!(
        !world.join("stale.txt").exists(),
        "the world was not rebuilt"
    );

    // The run records: exactly this run's four attempts, each ending as promised.
    let layout = Layout::new(&world.join("workspaces"));
    let listing = record::list_runs(&layout);
    assert!(listing.errors.is_empty(), "{:?}", listing.errors);
    let mut by_issue: BTreeMap<String, Vec<(u32, RunStatus, Option<String>)>> = BTreeMap::new();
    for run in &listing.items {
        by_issue
            .entry(run.issue_identifier.clone())
            .or_default()
            .push((
                run.attempt,
                run.status,
                run.error_class.as_ref().map(ToString::to_string),
            ));
    }
    for attempts in by_issue.values_mut() {
        attempts.sort_by_key(|(attempt, _, _)| *attempt);
    }
    assert_eq!(
        by_issue,
        BTreeMap::from([
            ("DEMO-1".to_string(), vec![(1, RunStatus::Handoff, None)]),
            (
                "DEMO-2".to_string(),
                vec![(1, RunStatus::HumanRequired, Some("manual_attention".into()))]
            ),
            (
                "DEMO-3".to_string(),
                vec![
                    (
                        1,
                        RunStatus::RetryScheduled,
                        Some("validation_failed".into())
                    ),
                    (2, RunStatus::Handoff, None),
                ]
            ),
        ])
    );

    // The local tracker's files: states, the label, and Maestro's comments naming what was
    // handed off (remote, branch, commit) with the commit really on origin.
    let origin = world.join("origin.git");
    let issues = world.join("issues");
    let tip_1 = tip(&origin, "x/demo-demo-1");
    let tip_3 = tip(&origin, "x/demo-demo-3");
    assert_contains(&read(issues.join("DEMO-1.md")), &["state = \"In Review\""]);
    assert_contains(
        &read(issues.join("DEMO-2.md")),
        &["state = \"Todo\"", "\"maestro:needs-attention\""],
    );
    assert_contains(&read(issues.join("DEMO-3.md")), &["state = \"In Review\""]);
    assert_contains(
        &read(issues.join("DEMO-1.comments.md")),
        &[
            "**Maestro: ready for review**",
            "- branch: `x/demo-demo-1`",
            "- remote: `../origin.git`",
            &format!("- commit: `{tip_1}`"),
            "- validation_result: passed (1 command)",
        ],
    );
    assert_contains(
        &read(issues.join("DEMO-2.comments.md")),
        &[
            "This needs a product decision",
            "**Maestro: needs attention**",
            "- error_class: `manual_attention`",
        ],
    );
    let demo_3 = read(issues.join("DEMO-3.comments.md"));
    assert_contains(
        &demo_3,
        &[
            "**Maestro: attempt 1 failed, retrying**",
            "- error_class: `validation_failed`",
            "3:de:hallo",
            "- attempt: 2",
            &format!("- commit: `{tip_3}`"),
        ],
    );
    assert!(
        demo_3.find("failed, retrying") < demo_3.find("ready for review"),
        "{demo_3}"
    );
    // The agent's work is on origin: the edits it made with its shell commands.
    assert!(show(&origin, &format!("{tip_1}:greetings.txt")).contains("es: hola"));
    let greetings_3 = show(&origin, &format!("{tip_3}:greetings.txt"));
    assert!(
        greetings_3.contains("de: hallo") && !greetings_3.contains("de:hallo"),
        "{greetings_3}"
    );

    // The report: a line per decision, the verdict, the status table, where to look, and a
    // dashboard that answered while the daemon ran. (The daemon's queued retry is shown too,
    // but it is on disk for only about a second, so a heavily loaded machine may skip it.)
    assert_contains(
        &run.stdout,
        &[
            "DEMO-1  attempt 1  dispatched",
            "DEMO-2  attempt 1  needs a human (manual_attention)",
            "DEMO-3  attempt 1  failed (validation_failed)",
            "DEMO-3  attempt 2  handed off: review branch x/demo-demo-3 on ../origin.git",
            "maestro demo: all three issues reached their expected outcome",
            "Recent Runs (4)",
            "records ",
            "journals",
        ],
    );
    let page = run
        .dashboard
        .as_deref()
        .expect("the demo printed a dashboard URL");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<title>maestro: demo</title>"), "{page}");

    // Nothing left running: neither the daemon's group nor anything with the world's codex home.
    let daemon_pid: u32 = run
        .stdout
        .split("daemon started (pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the daemon's pid is printed");
    assert!(live_in_group(daemon_pid).is_empty());
    assert!(processes_with_codex_home(&world.join("codex-home")).is_empty());

    assert_eq!(tracked_state(), before, "the demo changed tracked files");
}

#[test]
fn without_codex_the_demo_says_how_to_install_the_pinned_version() {
    let test = TestDir::new("demo-no-codex");
    let empty_path = test.join("empty-bin");
    std::fs::create_dir_all(&empty_path).unwrap();
    let world = test.join("world");
    let output = demo_command(&test, &["--dir", world.to_str().unwrap()])
        .env_remove("MAESTRO_CODEX_BIN")
        .env("PATH", &empty_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_contains(
        &stderr,
        &[
            "maestro: demo: codex not found: MAESTRO_CODEX_BIN is not set and there is no `codex` on PATH",
            "npm install --prefix \"$HOME/.cache/maestro-codex\" @openai/codex@0.169.0",
            "export PATH=\"$HOME/.cache/maestro-codex/node_modules/.bin:$PATH\"",
            "[agent] command",
        ],
    );
    assert!(!world.exists(), "nothing is built without codex");

    let output = demo_command(&test, &["--dir", world.to_str().unwrap()])
        .env("MAESTRO_CODEX_BIN", test.join("no-such-codex"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no-such-codex is not an executable file"),
        "{stderr}"
    );
}

#[test]
fn a_directory_the_demo_did_not_make_is_refused_and_left_alone() {
    let test = TestDir::new("demo-foreign");
    let world = test.join("world");
    std::fs::create_dir_all(&world).unwrap();
    std::fs::write(world.join("precious.txt"), "mine").unwrap();
    let output = demo_command(&test, &["--dir", world.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_contains(
        &stderr,
        &[
            &format!("maestro: demo: will not use {}", world.display()),
            "has no .maestro-demo marker",
            "pass --dir with a new or empty directory",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(world.join("precious.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&world).unwrap().count(), 1);
}
