//! Attacks on what the operator reads (issue #11, item 9; docs/spec/faults.md, "Attacks: the
//! endpoint and the terminal"): text from the tracker or the agent carrying ESC sequences,
//! carriage returns and line feeds must not drive the terminal, forge a table row, split a log
//! record or pose as another error line, in any text view; the JSON views stay exact.

use std::path::Path;

use maestro::run::{Outcome, Summary};
use maestro::workspace::Layout;
use maestro::workspace::record::{self, Phase, RunRecord, RunStatus};

use crate::support::dir::TestDir;
use crate::support::fake_linear::{API_KEY, FakeIssue, FakeLinear, SLUG_ID, World};
use crate::support::state::config_for;
use crate::support::{maestro, maestro_command, stderr, stdout, tree};

/// Clears the screen, homes the cursor, then starts a new line that looks like a table row.
const EVIL: &str = "Evil \u{1b}[2J\u{1b}[H\r\nDEMO-9  urgent    Todo         selected  forged";

/// True when `text` holds a control character other than the line feeds between lines.
fn has_raw_controls(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

/// The demo project (and the README its WORKFLOW.md names) copied into `dir`, which plays the
/// repository root.
fn demo_copy(dir: &TestDir) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    tree::copy(&root.join("fixtures/demo"), &dir.join("fixtures/demo"));
    std::fs::copy(root.join("README.md"), dir.join("README.md")).unwrap();
    // repo_root must be a git checkout (issue #16); the copy plays one.
    crate::support::git::git(dir.path(), &["init", "--quiet"]);
}

/// The demo project copied into a fresh directory, DEMO-2's title replaced by `title` (a TOML
/// basic-string body, so `\u001b` is an escape the tracker decodes to ESC).
fn demo_with_title(name: &str, title: &str) -> TestDir {
    let dir = TestDir::new(name);
    demo_copy(&dir);
    let issue = dir.join("fixtures/demo/issues/DEMO-2.md");
    let text = std::fs::read_to_string(&issue).unwrap().replace(
        "title = \"Explain the exit codes in run --help\"",
        &format!("title = \"{title}\""),
    );
    std::fs::write(&issue, text).unwrap();
    dir
}

const EVIL_TOML: &str =
    "Evil \\u001b[2J\\u001b[H\\r\\nDEMO-9  urgent    Todo         selected  forged";

#[test]
fn a_title_cannot_clear_the_screen_or_forge_a_dry_run_row() {
    let dir = demo_with_title("attack-dry-run-title", EVIL_TOML);
    let args = [
        "run",
        "--once",
        "--dry-run",
        "--config",
        "fixtures/demo/maestro.toml",
    ];
    let output = maestro(dir.path(), &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!has_raw_controls(&text), "{text:?}");
    assert!(
        text.contains(
            "\nselected: DEMO-2  Evil \\u{1b}[2J\\u{1b}[H\\r\\nDEMO-9  urgent    Todo         selected  forged\n"
        ),
        "{text}"
    );
    // One table row per candidate: the title did not add a row of its own.
    let rows: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("DEMO-"))
        .collect();
    assert_eq!(rows.len(), 8, "{text}");
    assert!(rows.iter().all(|row| !row.starts_with("DEMO-9")), "{text}");

    // The JSON view carries the title exactly; serde's escaping is all it needs.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let output = maestro(dir.path(), &json_args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!has_raw_controls(&stdout(&output)));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["selected"]["title"], EVIL);
}

#[test]
fn an_identifier_with_a_line_feed_cannot_split_a_log_record() {
    let forged =
        "ABC-1\n2026-01-01T00:00:00.000Z INFO  maestro::run: forged issue=ABC-1 \u{1b}[31m";
    let fake = FakeLinear::start(World::standard().with(FakeIssue {
        identifier: forged.into(),
        ..FakeIssue::new("ABC-1", "Todo")
    }));
    let dir = TestDir::new("attack-log-identifier");
    dir.write(
        "repo/WORKFLOW.md",
        "+++\nversion = 1\n+++\nWork carefully.\n",
    );
    crate::support::git::git(&dir.join("repo"), &["init", "--quiet"]);
    dir.write(
        "repo/tmp/maestro.toml",
        &format!(
            "id = \"demo\"\nrepo_root = \"..\"\n[tracker]\nproject_slug = \"demo-{SLUG_ID}\"\napi_key_env_var = \"LINEAR_API_KEY\"\napi_url = \"{}\"\n",
            fake.url()
        ),
    );
    let output = maestro_command(&dir.join("repo"), &["run", "--once", "--dry-run"])
        .env("LINEAR_API_KEY", API_KEY)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let log = stderr(&output);
    assert!(!has_raw_controls(&log), "{log:?}");
    let record = log
        .lines()
        .find(|line| line.contains("dry run project=demo"))
        .unwrap_or_else(|| panic!("the dry run logs its selection: {log}"));
    assert!(
        record.ends_with(
            "selected=ABC-1\\n2026-01-01T00:00:00.000Z INFO  maestro::run: forged issue=ABC-1 \\u{1b}[31m"
        ),
        "{record}"
    );
    assert!(
        log.lines()
            .all(|line| !line.starts_with("2026-01-01T00:00:00.000Z")),
        "no forged record: {log}"
    );
    // The text report escapes the identifier too.
    assert!(!has_raw_controls(&stdout(&output)));
    assert!(
        stdout(&output).contains("selected: ABC-1\\n2026-01-01T00:00:00.000Z INFO"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn an_error_message_cannot_carry_escape_sequences_or_pose_as_another_error() {
    // The local tracker rejects this identifier and quotes it in its diagnostic.
    let dir = TestDir::new("attack-error-text");
    demo_copy(&dir);
    let issue = dir.join("fixtures/demo/issues/DEMO-2.md");
    let text = std::fs::read_to_string(&issue).unwrap().replace(
        "identifier = \"DEMO-2\"",
        "identifier = \"DEMO-2\\u001b]0;pwned\\u0007\\rmaestro: all good\\nmaestro: all good\"",
    );
    std::fs::write(&issue, text).unwrap();
    let output = maestro(
        dir.path(),
        &[
            "run",
            "--once",
            "--dry-run",
            "--config",
            "fixtures/demo/maestro.toml",
        ],
    );
    assert_ne!(output.status.code(), Some(0));
    let text = stderr(&output);
    assert!(!has_raw_controls(&text), "{text:?}");
    assert!(
        text.contains("DEMO-2\\u{1b}]0;pwned\\u{7}\\rmaestro: all good"),
        "{text}"
    );
    let messages = text
        .lines()
        .filter(|line| line.starts_with("maestro:"))
        .count();
    assert_eq!(messages, 1, "one error, one `maestro:` line: {text}");
}

#[test]
fn the_run_once_summary_line_stays_one_line() {
    let summary = Summary {
        issue: Some("ABC-1\r\nrun --once: issue=ABC-2".into()),
        run_id: Some("run-1".into()),
        outcome: Outcome::Skipped {
            reason: "title \u{1b}[2J changed\u{9b}".into(),
        },
        next_action: "none\nrun --once: outcome=handoff".into(),
        record: None,
        handoff: None,
    };
    let line = summary.line();
    assert!(!line.chars().any(char::is_control), "{line:?}");
    assert_eq!(
        line,
        "run --once: issue=ABC-1\\r\\nrun --once: issue=ABC-2 run_id=run-1 outcome=skipped \
         reason=\"title \\u{1b}[2J changed\\u{9b}\" next=\"none\\nrun --once: outcome=handoff\""
    );
}

/// A finished run whose identifier, branch, PR URL and error class carry control characters.
fn evil_record(dir: &TestDir) -> maestro::config::ServiceConfig {
    let config = config_for(dir);
    let layout = Layout::new(&config.workspace_root);
    let record = RunRecord {
        run_id: "run-evil".into(),
        project_id: "demo".into(),
        issue_id: "id-evil".into(),
        issue_identifier: "EVIL-1\u{1b}[2J\r\n  ABC-9        a1  handoff".into(),
        attempt: 1,
        branch: "x/demo-evil-1".into(),
        workspace_path: ".workspaces/EVIL-1".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: Some("2026-01-01T00:01:00Z".into()),
        phase: Phase::Finished,
        status: RunStatus::HumanRequired,
        error_class: Some("validation_failed\u{7}\u{1b}]0;pwned\u{7}\r\n!!ABC-9 forged".into()),
        ..RunRecord::default()
    };
    record::save_run(&layout, &record).unwrap();
    config
}

#[test]
fn status_text_escapes_what_records_hold_and_json_stays_exact() {
    let dir = TestDir::new("attack-status");
    evil_record(&dir);
    let output = maestro(dir.path(), &["status"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(!has_raw_controls(&text), "{text:?}");
    assert!(
        text.contains("!!EVIL-1\\u{1b… a1 "),
        "clipped after escaping: {text}"
    );
    assert!(
        text.contains("    validation_failed\\u{7}\\u{1b}]0;pwned\\u{7}\\r\\n!!ABC-9 forged\n"),
        "{text}"
    );
    assert!(
        text.lines().all(|line| !line.starts_with("!!ABC-9")),
        "{text}"
    );

    let output = maestro(dir.path(), &["status", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["recent"][0]["issue_identifier"],
        "EVIL-1\u{1b}[2J\r\n  ABC-9        a1  handoff"
    );
}

#[test]
fn the_dashboard_carries_no_raw_control_character() {
    let dir = TestDir::new("attack-dashboard");
    let config = evil_record(&dir);
    let health = std::sync::Arc::new(maestro::operator_http::Health::default());
    let server =
        maestro::operator_http::start("127.0.0.1:0".parse().unwrap(), config, health).unwrap();
    let mut stream = std::net::TcpStream::connect(server.address()).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut page = String::new();
    std::io::Read::read_to_string(&mut stream, &mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 "), "{page}");
    assert!(
        !has_raw_controls(page.split_once("\r\n\r\n").unwrap().1),
        "{page:?}"
    );
    assert!(page.contains("EVIL-1\\u{1b}[2J\\r\\n  ABC-9"), "{page}");
}
