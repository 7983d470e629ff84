//! The local file tracker on a copy of the demo issues: listing, refresh, in-place
//! write-backs, comments beside the issue file, and format errors that name file and line.

use std::path::Path;

use maestro::tracker::local::LocalTracker;
use maestro::tracker::{Category, Error, Tracker};

use crate::support::dir::TestDir;
use crate::support::tree;

fn demo(name: &str) -> (TestDir, LocalTracker) {
    let dir = TestDir::new(name);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/issues");
    tree::copy(&fixture, &dir.join("issues"));
    let tracker = LocalTracker::open(&dir.join("issues"), "demo").unwrap();
    (dir, tracker)
}

fn identifiers(issues: &[maestro::tracker::Issue]) -> Vec<&str> {
    let mut identifiers: Vec<&str> = issues
        .iter()
        .map(|issue| issue.identifier.as_str())
        .collect();
    identifiers.sort_by_key(|identifier| identifier[5..].parse::<u32>().unwrap());
    identifiers
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn lists_the_project_issues_in_the_asked_states() {
    let (_dir, tracker) = demo("local-list");
    let todo = tracker.issues_in_states(&strings(&["todo"])).unwrap();
    assert_eq!(
        identifiers(&todo),
        ["DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4", "DEMO-5", "DEMO-8"],
        "DEMO-10 belongs to another project"
    );
    let done = tracker
        .issues_in_states(&strings(&["Done", "In Review"]))
        .unwrap();
    assert_eq!(identifiers(&done), ["DEMO-7", "DEMO-9"]);

    let demo_1 = todo
        .iter()
        .find(|issue| issue.identifier == "DEMO-1")
        .unwrap();
    assert_eq!(demo_1.id, "DEMO-1");
    assert_eq!(demo_1.title, "Add --verbose to maestro status");
    assert_eq!(demo_1.priority, Some(1));
    assert_eq!(demo_1.state.kind, "unstarted");
    assert_eq!(demo_1.labels, ["cli"]);
    assert_eq!(demo_1.blockers[0].identifier, "DEMO-6");
    assert_eq!(demo_1.blockers[0].state.name, "In Progress");
    assert!(demo_1.description.starts_with("`maestro status --verbose`"));
    assert_eq!(demo_1.team.key, "DEMO");
    assert_eq!(demo_1.project_slug.as_deref(), Some("demo"));
    let scope = tracker.project().unwrap();
    assert_eq!(
        (scope.slug_id.as_str(), scope.teams[0].key.as_str()),
        ("demo", "DEMO")
    );
}

#[test]
fn refresh_sees_edits_and_hides_other_projects() {
    let (dir, tracker) = demo("local-refresh");
    let path = dir.join("issues/DEMO-2.md");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("state = \"Todo\"", "state = \"Backlog\""),
    )
    .unwrap();
    let issues = tracker
        .refresh(&strings(&["DEMO-2", "DEMO-10", "DEMO-99"]))
        .unwrap();
    assert_eq!(identifiers(&issues), ["DEMO-2"]);
    assert_eq!(issues[0].state.name, "Backlog");
}

#[test]
fn transitions_and_labels_edit_the_file_in_place() {
    let (dir, tracker) = demo("local-write");
    let path = dir.join("issues/DEMO-2.md");
    let before = std::fs::read_to_string(&path).unwrap();

    let state = tracker.transition("DEMO-2", "in progress").unwrap();
    assert_eq!(
        (state.name.as_str(), state.kind.as_str()),
        ("In Progress", "started")
    );
    tracker
        .add_label("DEMO-2", "Maestro:Needs-Attention")
        .unwrap();
    tracker.add_label("DEMO-2", "cli").unwrap();

    let after = std::fs::read_to_string(&path).unwrap();
    let expected = before
        .replace("state = \"Todo\"", "state = \"In Progress\"")
        .replace(
            "labels = [\"cli\", \"docs\"]",
            "labels = [\"cli\", \"docs\", \"maestro:needs-attention\"]",
        );
    let (kept, updated) = after.split_once("updated = ").unwrap();
    assert_eq!(
        format!("{kept}{}", &updated[updated.find('\n').unwrap() + 1..]),
        expected,
        "only state, labels and the new updated line change"
    );
    let refreshed = tracker.refresh(&strings(&["DEMO-2"])).unwrap();
    assert_eq!(refreshed[0].state.name, "In Progress");
    assert_eq!(
        refreshed[0].labels,
        ["cli", "docs", "maestro:needs-attention"]
    );
    let leftovers: Vec<String> = std::fs::read_dir(dir.join("issues"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "atomic writes leave no temp files: {leftovers:?}"
    );
}

#[test]
fn comments_go_to_a_sibling_file_that_is_not_an_issue() {
    let (dir, tracker) = demo("local-comment");
    let issue_before = std::fs::read(dir.join("issues/DEMO-3.md")).unwrap();
    let first = tracker
        .add_comment("DEMO-3", "Picked up by lane x/demo-3.")
        .unwrap();
    let second = tracker
        .add_comment("DEMO-3", "Handed off: PR #4\n")
        .unwrap();
    assert_eq!(first.id, "DEMO-3#comment-1");
    assert_eq!(second.id, "DEMO-3#comment-2");
    let comments_path = dir.join("issues/DEMO-3.comments.md");
    assert!(
        second
            .url
            .unwrap()
            .ends_with("DEMO-3.comments.md#comment-2")
    );
    let text = std::fs::read_to_string(&comments_path).unwrap();
    let markers: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("<!-- maestro comment"))
        .collect();
    assert_eq!(markers.len(), 2);
    assert!(
        markers[1].starts_with("<!-- maestro comment 2 · "),
        "{text}"
    );
    assert!(
        text.contains("\n\nPicked up by lane x/demo-3.\n\n<!-- maestro comment 2"),
        "{text}"
    );
    assert!(text.ends_with("\n\nHanded off: PR #4\n"), "{text}");
    assert_eq!(
        std::fs::read(dir.join("issues/DEMO-3.md")).unwrap(),
        issue_before
    );
    let todo = tracker.issues_in_states(&strings(&["Todo"])).unwrap();
    assert_eq!(todo.len(), 6, "the comments file is not read as an issue");
}

#[test]
fn unknown_names_and_invisible_issues_are_errors_that_change_nothing() {
    let (dir, tracker) = demo("local-unknown");
    let before = tree::snapshot(dir.path());
    let error = tracker.transition("DEMO-2", "Shipped").unwrap_err();
    assert_eq!(
        error.to_string(),
        "team DEMO has no workflow state \"Shipped\"; it has: Backlog, Todo, In Progress, In Review, Done, Canceled, Duplicate"
    );
    let error = tracker.add_label("DEMO-2", "urgent").unwrap_err();
    assert_eq!(error.category(), Category::UnknownLabel);
    assert_eq!(
        error.to_string(),
        "no label \"urgent\" is usable on team DEMO's issues; usable labels: cli, docs, maestro:manual-only, maestro:needs-attention"
    );
    let error = tracker.add_comment("DEMO-10", "hello").unwrap_err();
    assert!(
        matches!(&error, Error::IssueNotFound { id } if id == "DEMO-10"),
        "{error:?}"
    );
    assert_eq!(tree::snapshot(dir.path()), before);
}

#[test]
fn a_broken_issue_file_is_named_with_its_line() {
    let (dir, tracker) = demo("local-broken");
    let path = dir.join("issues/DEMO-5.md");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("priority = 3", "priority = \"3\"")).unwrap();
    let error = tracker.issues_in_states(&strings(&["Todo"])).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "invalid issue file {}:5: field `priority`: expected an integer, found string",
            path.display()
        )
    );
    std::fs::write(&path, text.replace("state = \"Todo\"", "state = \"Doing\"")).unwrap();
    let error = tracker.issues_in_states(&strings(&["Todo"])).unwrap_err();
    assert!(
        error.to_string().contains(
            "state \"Doing\" is not a workflow state of team DEMO; known states: Backlog, Todo"
        ),
        "{error}"
    );
    std::fs::write(
        &path,
        text.replace("identifier = \"DEMO-5\"", "identifier = \"DEMO-4\""),
    )
    .unwrap();
    let error = tracker.issues_in_states(&strings(&["Todo"])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("identifier DEMO-4 is also used by"),
        "{error}"
    );
    std::fs::write(
        &path,
        text.replace("identifier = \"DEMO-5\"", "identifier = \"../etc\""),
    )
    .unwrap();
    let error = tracker.issues_in_states(&strings(&["Todo"])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(":2: field `identifier`: `../etc` must be letters"),
        "{error}"
    );
    std::fs::write(
        &path,
        text.replace("created =", "blockers = [\"DEMO-77\"]\ncreated ="),
    )
    .unwrap();
    let error = tracker.issues_in_states(&strings(&["Todo"])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("blocker DEMO-77 has no issue file"),
        "{error}"
    );
}

#[test]
fn without_team_file_linear_default_states_apply() {
    let dir = TestDir::new("local-defaults");
    dir.write(
        "issues/X-1.md",
        "+++\nidentifier = \"X-1\"\ntitle = \"t\"\nstate = \"In Review\"\ncreated = \"2026-01-01T00:00:00Z\"\n+++\n",
    );
    let tracker = LocalTracker::open(&dir.join("issues"), "p").unwrap();
    let issues = tracker.issues_in_states(&strings(&["In Review"])).unwrap();
    assert_eq!(issues[0].state.kind, "started");
    assert_eq!(issues[0].team.key, "LOCAL");
    assert_eq!(issues[0].priority, None);
    let metadata = tracker.team_metadata("local").unwrap();
    assert_eq!(metadata.states.len(), 7);
    assert!(metadata.labels.is_empty());
    let missing = LocalTracker::open(&dir.join("nope"), "p").unwrap_err();
    assert_eq!(missing.category(), Category::Io);
    assert!(
        missing
            .to_string()
            .contains("the issues directory (tracker.issues_dir) does not exist"),
        "{missing}"
    );
}

#[test]
fn comments_are_read_back_by_a_text_they_contain() {
    let (_dir, tracker) = demo("local-comments");
    assert!(
        tracker
            .comments_containing("DEMO-1", "closeout:")
            .unwrap()
            .is_empty()
    );
    tracker
        .add_comment("DEMO-1", "first\n- closeout: k u")
        .unwrap();
    tracker.add_comment("DEMO-1", "second").unwrap();
    tracker
        .add_comment("DEMO-1", "third\n- closeout: k u")
        .unwrap();
    let found = tracker
        .comments_containing("DEMO-1", "closeout: k u")
        .unwrap();
    let bodies: Vec<&str> = found.iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, ["first\n- closeout: k u", "third\n- closeout: k u"]);
    assert_eq!(found[1].id, "DEMO-1#comment-3");
    assert!(
        tracker
            .comments_containing("DEMO-2", "closeout:")
            .unwrap()
            .is_empty()
    );
}
