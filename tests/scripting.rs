//! `run --once` from shell scripts and terminals (#18): `--json` (one object that matches the
//! run record, pinned by `fixtures/run/*.golden.json`), `--issue IDENT`, `--deadline`, and the
//! progress on stderr (plain lines, one live line in a terminal, none in daemon children, never
//! on stdout). Real codex, the scripted model, the fake Linear and GitHub.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use maestro::mock_model::Step;
use maestro::workspace::record::{RunRecord, RunStatus};

use crate::codex_or_skip;
use crate::support::dir::TestDir;
use crate::support::fake_linear::FakeIssue;
use crate::support::run_world::{self, RunWorld, handoff_steps};
use crate::support::{maestro, maestro_command, stderr, stdout};

const BRANCH: &str = "x/demo-abc-1";

/// stdout as exactly one JSON object (pretty-printed or not), or a failed test saying why.
fn json_of(output: &Output) -> Value {
    let text = stdout(output);
    let mut values = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no JSON on stdout; stderr:\n{}", stderr(output)))
        .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{text}"));
    assert!(values.next().is_none(), "more than one object:\n{text}");
    assert!(value.is_object(), "{value}");
    value
}

/// The report as printed, with what changes from run to run replaced by placeholders (the
/// text, not a re-serialization, so the golden file keeps the printed field order).
fn normalized(output: &Output, world: &RunWorld) -> String {
    let report = json_of(output);
    let mut text = stdout(output);
    let root = world.dir.path().display().to_string();
    text = text.replace(&root, "<dir>");
    for (field, placeholder) in [
        ("run_id", "<run_id>"),
        ("started_at", "<time>"),
        ("finished_at", "<time>"),
        ("thread_id", "<thread_id>"),
    ] {
        if let Some(value) = report[field].as_str() {
            text = text.replace(value, placeholder);
        }
    }
    if let Some(seconds) = report["duration_seconds"].as_u64() {
        text = text.replace(
            &format!("\"duration_seconds\": {seconds},"),
            "\"duration_seconds\": 0,",
        );
    }
    text
}

/// Compares `actual` with `fixtures/run/<name>.golden.json` (re-bless with MAESTRO_BLESS=1).
fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/run")
        .join(format!("{name}.golden.json"));
    if std::env::var_os("MAESTRO_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .expect("golden file exists (regenerate with MAESTRO_BLESS=1 cargo test scripting)");
    assert_eq!(
        actual.trim_end(),
        golden.trim_end(),
        "run --once --json changed: bump its schema_version and re-bless deliberately"
    );
}

/// Every field the report shares with the run record holds the record's value.
fn assert_matches_record(report: &Value, record: &RunRecord, world: &RunWorld) {
    let layout = world.layout();
    let expected = [
        ("run_id", json!(record.run_id)),
        ("issue_id", json!(record.issue_id)),
        ("issue_identifier", json!(record.issue_identifier)),
        ("issue_url", json!(record.issue_url)),
        ("attempt", json!(record.attempt)),
        ("branch", json!(record.branch)),
        ("workspace_path", json!(record.workspace_path)),
        ("thread_id", json!(record.thread_id)),
        ("status", json!(record.status)),
        ("disposition", json!(record.disposition)),
        ("pr_url", json!(record.pr_url)),
        ("started_at", json!(record.started_at)),
        ("finished_at", json!(record.finished_at)),
        ("turn_count", json!(record.turn_count)),
        ("tokens", json!(record.tokens)),
        ("error_class", json!(record.error_class)),
        ("error_message", json!(record.error_message)),
        ("cause", json!(record.cause)),
        (
            "next_action",
            json!(record.retry.as_ref().unwrap().next_action),
        ),
        (
            "run_record_path",
            json!(layout.run_record_file(&record.run_id).display().to_string()),
        ),
        (
            "journal_path",
            json!(layout.journal_file(&record.run_id).display().to_string()),
        ),
    ];
    for (field, value) in expected {
        assert_eq!(report[field], value, "{field} differs from the record");
    }
    let record_on_disk =
        run_world::read_json(Path::new(report["run_record_path"].as_str().unwrap()));
    assert_eq!(record_on_disk["run_id"], report["run_id"]);
    assert!(Path::new(report["journal_path"].as_str().unwrap()).is_file());
}

#[test]
fn run_once_json_is_one_object_that_matches_the_record() {
    let codex = codex_or_skip!();
    // The model reports its usage on the last step, so the tokens are not all zero.
    let mut steps = handoff_steps(BRANCH, 7);
    let last = steps.pop().unwrap().with_usage(1200, 34);
    steps.push(last);
    let world = RunWorld::builder("scripting-json-handoff", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);

    let output = run_world::bounded(
        world.command(&["run", "--once", "--json"]),
        run_world::RUN_DEADLINE,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json_of(&output);
    let record = world.only_run();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["outcome"], "handoff");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(
        report["handoff"],
        json!({"mode": "pull_request", "pr_url": run_world::pr_url(7)})
    );
    assert_matches_record(&report, &record, &world);
    assert!(report["tokens"]["total"].as_u64().unwrap() > 0, "{report}");
    check_golden("handoff", &normalized(&output, &world));

    // The progress went to stderr, one plain line per step (stderr is no terminal here), and
    // none of it to stdout.
    let log = stderr(&output);
    for step in [
        "progress: lease",
        "progress: [ABC-1 a1] lane .workspaces/ABC-1 on x/demo-abc-1",
        "progress: [ABC-1 a1] turn 1/",
        "progress: [ABC-1 a1] validation 1/1: test -f feature.txt",
        "progress: [ABC-1 a1] PR check",
        "progress: [ABC-1 a1] writeback",
        "done: [ABC-1 a1] handoff in ",
    ] {
        assert!(log.contains(step), "{step:?} missing from stderr:\n{log}");
    }
    assert!(!stdout(&output).contains("progress"), "{}", stdout(&output));
}

#[test]
fn a_failed_attempt_reports_its_error_in_json_and_exits_four() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("scripting-json-retry", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .front_matter(
            "version = 1\n[execution]\nvalidation_commands = [\"echo 'tests failed: 2' >&2; exit 3\"]\n",
        )
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);

    let output = run_world::bounded(
        world.command(&["run", "--once", "--json"]),
        run_world::RUN_DEADLINE,
    );
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let report = json_of(&output);
    let record = world.only_run();
    assert_eq!(record.status, RunStatus::RetryScheduled);
    assert_eq!(
        (&report["outcome"], &report["exit_code"]),
        (&json!("retry_scheduled"), &json!(4))
    );
    assert_eq!(report["error_class"], "validation_failed");
    assert!(
        report["error_message"]
            .as_str()
            .unwrap()
            .contains("tests failed: 2"),
        "{report}"
    );
    assert_eq!(report["handoff"], Value::Null);
    assert_matches_record(&report, &record, &world);
    check_golden("retry", &normalized(&output, &world));
}

#[test]
fn json_errors_before_an_outcome_are_json_too() {
    let dir = TestDir::new("scripting-json-errors");
    // A usage error: the stderr line as ever, and an object on stdout.
    let output = maestro(dir.path(), &["run", "--once", "--json", "--bogus"]);
    assert_eq!(output.status.code(), Some(2));
    let error = json_of(&output);
    assert_eq!(error["error"]["kind"], "usage");
    assert_eq!(error["exit_code"], 2);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown option '--bogus' for 'maestro run'"),
        "{error}"
    );
    assert!(stderr(&output).starts_with("maestro: unknown option '--bogus'"));
    // Without --json, stdout stays empty.
    assert_eq!(
        stdout(&maestro(dir.path(), &["run", "--once", "--bogus"])),
        ""
    );

    // A configuration error.
    let output = maestro(
        dir.path(),
        &["run", "--once", "--json", "--config", "missing.toml"],
    );
    assert_eq!(output.status.code(), Some(2));
    let error = json_of(&output);
    assert_eq!(error["error"]["kind"], "config");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.toml"),
        "{error}"
    );
    // The dry run's JSON errors the same way.
    let output = maestro(
        dir.path(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--json",
            "--config",
            "missing.toml",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json_of(&output)["error"]["kind"], "config");
}

#[test]
fn issue_takes_exactly_the_named_issue_or_says_why_not() {
    let codex = codex_or_skip!();
    let mut blocked = FakeIssue::new("ABC-3", "Todo");
    blocked.blocked_by = vec!["id-ABC-1".to_string()];
    let world = RunWorld::builder("scripting-issue", &codex)
        .issues(vec![
            FakeIssue::new("ABC-1", "Todo"),
            FakeIssue::new("ABC-2", "Todo"),
            blocked,
            FakeIssue::new("ABC-4", "Done"),
        ])
        .steps(handoff_steps("x/demo-abc-2", 8))
        .build();
    world.open_pull(8, "x/demo-abc-2");

    // A blocked issue: exit 3, the dry run's reason word for word, in JSON and in text.
    let dry = run_world::bounded(
        world.command(&["run", "--once", "--dry-run", "--issue", "ABC-3", "--json"]),
        Duration::from_secs(60),
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let dry = json_of(&dry);
    let rows = dry["candidates"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "the dry run explains the one issue: {dry}");
    assert_eq!(rows[0]["identifier"], "ABC-3");
    assert_eq!(rows[0]["rule"], "blocked");
    let dry_reason = rows[0]["reason"].as_str().unwrap();
    assert_eq!(dry_reason, "blocked by ABC-1 (Todo)");

    let live = run_world::bounded(
        world.command(&["run", "--once", "--issue", "ABC-3", "--json"]),
        Duration::from_secs(60),
    );
    assert_eq!(live.status.code(), Some(3), "{}", stderr(&live));
    let live = json_of(&live);
    assert_eq!(live["outcome"], "nothing_to_do");
    assert_eq!(live["issue_identifier"], "ABC-3");
    assert_eq!(live["rule"], "blocked");
    assert_eq!(
        live["reason"],
        format!("ABC-3 is not eligible: {dry_reason}")
    );
    let text = run_world::bounded(
        world.command(&["run", "--once", "--issue", "ABC-3"]),
        Duration::from_secs(60),
    );
    assert_eq!(text.status.code(), Some(3));
    assert_eq!(
        run_world::summary_line(&text),
        format!(
            "run --once: issue=- run_id=- outcome=nothing_to_do reason=\"ABC-3 is not eligible: {dry_reason}\" next=\"none\""
        )
    );

    // A finished issue is not among the candidates; neither is a typo.
    for (identifier, expected) in [
        (
            "ABC-4",
            "no issue ABC-4 among the project's issues in Todo, In Progress, In Review",
        ),
        (
            "ABC-99",
            "no issue ABC-99 among the project's issues in Todo, In Progress, In Review",
        ),
    ] {
        let output = run_world::bounded(
            world.command(&["run", "--once", "--issue", identifier, "--json"]),
            Duration::from_secs(60),
        );
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        let report = json_of(&output);
        assert!(
            report["reason"].as_str().unwrap().starts_with(expected),
            "{report}"
        );
    }
    assert!(world.runs().is_empty(), "no refusal wrote a run record");

    // An eligible issue that is not the first in dispatch order: exactly that one runs.
    let output = run_world::bounded(
        world.command(&["run", "--once", "--issue", "abc-2"]),
        run_world::RUN_DEADLINE,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        run_world::summary_line(&output).starts_with("run --once: issue=ABC-2 "),
        "{}",
        stdout(&output)
    );
    assert_eq!(world.only_run().issue_identifier, "ABC-2");
    assert_eq!(world.linear.issue("ABC-2").state, "In Review");
    assert_eq!(world.linear.issue("ABC-1").state, "Todo");
}

#[test]
fn the_dry_run_explains_one_issue_judged_alone() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--once",
            "--dry-run",
            "--config",
            "fixtures/demo/maestro.toml",
        ];
        all.extend_from_slice(args);
        let output = maestro(root, &all);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        stdout(&output)
    };
    // In the whole report DEMO-3 waits behind DEMO-2 for the one slot; alone, it would run.
    assert!(run(&[]).contains("DEMO-3  high      Todo         waiting"));
    let one = run(&["--issue", "demo-3"]);
    assert!(one.contains("selected: DEMO-3"), "{one}");
    assert!(one.contains(", 1 candidate in "), "{one}");
    let blocked = run(&["--issue", "DEMO-1"]);
    assert!(
        blocked.contains("skipped  blocked by DEMO-6 (In Progress)"),
        "{blocked}"
    );
    let missing = run(&["--issue", "DEMO-99"]);
    assert!(
        missing.contains("no issue DEMO-99 among the project's issues in those states"),
        "{missing}"
    );
}

#[test]
fn a_deadline_stops_the_work_records_deadline_exceeded_and_exits_four() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("scripting-deadline", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        // The model never answers: only the deadline ends this turn.
        .steps(vec![Step::stall()])
        .turn_idle_timeout_ms(600_000)
        .build();

    let started = Instant::now();
    let output = run_world::bounded(
        world.command(&["run", "--once", "--deadline", "30s", "--json"]),
        run_world::RUN_DEADLINE,
    );
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    assert!(
        took < Duration::from_secs(30),
        "the run outlived its deadline: {took:?}"
    );
    let record = world.only_run();
    assert_eq!(record.status, RunStatus::RetryScheduled);
    assert_eq!(record.error_class, Some("deadline_exceeded".into()));
    let message = record.error_message.clone().unwrap();
    assert!(
        message.starts_with("the run's --deadline of 30s was reached while the agent worked"),
        "{message}"
    );
    let report = json_of(&output);
    assert_eq!(report["error_class"], "deadline_exceeded");
    assert_eq!(report["next_action"], "retry attempt 2");
    let comment = world.comments("ABC-1").pop().unwrap_or_default();
    assert!(
        comment.contains("- error_class: `deadline_exceeded`"),
        "{comment}"
    );
    assert_eq!(world.linear.issue("ABC-1").state, "In Progress");
    assert_eq!(
        world.issue_state("ABC-1").unwrap().last_error_class,
        Some("deadline_exceeded".into())
    );
    assert!(
        run_world::wait_until(Duration::from_secs(30), || world
            .codex_processes()
            .is_empty()),
        "codex outlived the run"
    );
}

#[test]
fn daemon_children_print_no_progress() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("scripting-child-quiet", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Done")])
        .build();
    // The daemon's way in: the target is no longer runnable, so nothing starts (exit 3).
    let child = run_world::bounded(
        world.command(&[
            "run",
            "--once",
            "--issue-id",
            "id-ABC-1",
            "--run-id",
            "daemon-run-1",
            "--attempt",
            "1",
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(child.status.code(), Some(3), "{}", stderr(&child));
    assert!(!stderr(&child).contains("progress:"), "{}", stderr(&child));
    assert!(!stderr(&child).contains("done:"), "{}", stderr(&child));
    // The same run from a shell shows its progress.
    let shell = run_world::bounded(world.command(&["run", "--once"]), Duration::from_secs(60));
    assert_eq!(shell.status.code(), Some(3));
    let log = stderr(&shell);
    assert!(log.contains("progress: lease"), "{log}");
    assert!(
        log.contains("done: nothing_to_do in "),
        "the summary line ends the progress: {log}"
    );
}

/// A pseudo-terminal: the master to read what the child shows, the slave's path to open as
/// the child's stderr.
fn open_pty(columns: u16) -> (OwnedFd, PathBuf) {
    // SAFETY: plain libc calls on a descriptor this function owns; ptsname_r writes at most
    // `name.len()` bytes into the buffer it is given.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0, "grantpt");
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0
        );
        let size = libc::winsize {
            ws_row: 40,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        let path = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        (master, PathBuf::from(path))
    }
}

#[test]
fn a_terminal_gets_one_live_line_and_stdout_only_the_summary() {
    let codex = codex_or_skip!();
    let mut steps = vec![Step::exec_command(
        "call_esc",
        "echo 'painted \u{1b}[31mred'",
    )];
    steps.extend(handoff_steps(BRANCH, 7));
    let world = RunWorld::builder("scripting-live-line", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(steps)
        .build();
    world.open_pull(7, BRANCH);

    let (master, slave_path) = open_pty(200);
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)
        .unwrap();
    let mut command = world.command(&["run", "--once"]);
    command
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave));
    let mut child = command.spawn().unwrap();
    // Only the child holds the terminal now, so the master reads to its end when it exits.
    drop(command);
    let mut terminal = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buffer = [0u8; 4096];
        // A read error (EIO) is how a pty says its last writer closed.
        while let Ok(n) = terminal.read(&mut buffer) {
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buffer[..n]);
        }
        bytes
    });
    let mut stdout_pipe = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let mut exited = None;
    assert!(
        run_world::wait_until(run_world::RUN_DEADLINE, || {
            exited = child.try_wait().unwrap();
            exited.is_some()
        }),
        "the run did not finish"
    );
    let status = exited.unwrap();
    let shown = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    let printed = out.join().unwrap();
    assert_eq!(status.code(), Some(0), "{shown}");

    // stdout: the summary line and nothing else.
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    assert!(
        lines[0].starts_with("run --once: issue=ABC-1 "),
        "{printed}"
    );
    // The terminal: one line redrawn in place through every step, then the summary.
    let redraws = shown.matches("\r\u{1b}[2K").count();
    assert!(redraws >= 5, "{redraws} redraws: {shown:?}");
    for step in [
        "lease",
        "[ABC-1 a1] lane .workspaces/ABC-1",
        "[ABC-1 a1] turn 1/",
        "[ABC-1 a1] validation 1/1: test -f feature.txt",
        "[ABC-1 a1] PR check",
        "[ABC-1 a1] writeback",
        "tokens",
        "tool issue_transition",
        "done: [ABC-1 a1] handoff in ",
    ] {
        assert!(shown.contains(step), "{step:?} never shown: {shown:?}");
    }
    // The agent's command was shown, its ESC escaped: nothing it wrote drove the terminal.
    assert!(
        shown.contains("command echo 'painted \\u{1b}[31mred'"),
        "{shown:?}"
    );
    assert!(!shown.contains("\u{1b}[31m"), "{shown:?}");
    // No info log in a terminal without RUST_LOG, and no plain progress lines.
    assert!(!shown.contains(" INFO "), "{shown:?}");
    assert!(!shown.contains("progress: "), "{shown:?}");
}

/// A closed stdout is not an error for the JSON either (`maestro run --once --json | head -0`):
/// the exit code stays the outcome's, and nothing panics.
#[test]
fn a_closed_stdout_keeps_the_exit_code_of_a_json_error() {
    let dir = TestDir::new("scripting-json-stdout");
    let mut child = maestro_command(dir.path(), &["run", "--once", "--json", "--bogus"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// Progress, logs and the summary on a stderr that cannot be written (`2>/dev/full`) are lost,
/// never a panic: the exit code and stdout stay the outcome's.
#[test]
fn progress_to_an_unwritable_stderr_never_panics() {
    let codex = codex_or_skip!();
    let world = RunWorld::builder("scripting-stderr-full", &codex)
        .issues(vec![FakeIssue::new("ABC-1", "Todo")])
        .steps(handoff_steps(BRANCH, 7))
        .build();
    world.open_pull(7, BRANCH);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = world
        .command(&["run", "--once"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(full))
        .spawn()
        .unwrap();
    let mut stdout_pipe = child.stdout.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout_pipe.read_to_string(&mut text);
        text
    });
    let mut exited = None;
    assert!(
        run_world::wait_until(run_world::RUN_DEADLINE, || {
            exited = child.try_wait().unwrap();
            exited.is_some()
        }),
        "the run did not finish"
    );
    let status = exited.unwrap();
    let printed = out.join().unwrap();
    assert_eq!(status.code(), Some(0), "{printed}");
    assert!(
        printed.starts_with("run --once: issue=ABC-1 ") && printed.contains("outcome=handoff"),
        "{printed}"
    );
    assert_eq!(world.only_run().status, RunStatus::Handoff);
}
