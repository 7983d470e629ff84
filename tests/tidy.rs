//! The tidy tests: the invariants docs/index.md states about the source tree, checked against
//! the tree as text, the way rust-analyzer's and rustc's `tidy` do. A rule kept only in prose is
//! kept only while someone remembers it; here each one fails naming the file, the line and the
//! rule. Each rule's exceptions are listed beside it with their reason, and docs/index.md
//! states the same ones.
//!
//! The sources are read by `support::source_tree`: comments never count, string contents count
//! only for the rules about spelled names, and test code (`#[cfg(test)]` items, test modules,
//! `tests/`) is exempt from the rules for production code.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::source_tree::{self, SourceFile, View, find_token};

/// The statement of a rule and the places that break it.
fn assert_kept(rule: &str, violations: &[String]) {
    assert!(
        violations.is_empty(),
        "rule broken: {rule}\n{}\n",
        violations.join("\n")
    );
}

fn at(file: &SourceFile, line: usize, what: &str) -> String {
    format!("{}:{line}: {what}", file.path)
}

/// Non-test lines of `src/` files outside `allowed` where one of `patterns` starts a token.
fn found_outside(view: View, patterns: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut violations = Vec::new();
    for file in source_tree::rust_files("src") {
        if allowed.contains(&file.path.as_str()) {
            continue;
        }
        for (number, line) in file.lines(view) {
            for pattern in patterns {
                if find_token(line, pattern).is_some() {
                    violations.push(at(&file, number, &format!("`{pattern}`")));
                }
            }
        }
    }
    violations
}

#[test]
fn exit_codes_are_chosen_in_commands_only() {
    // cli/help.rs prints the exit-code table; main.rs maps a command-line error.
    let allowed = [
        "src/commands.rs",
        "src/main.rs",
        "src/exit.rs",
        "src/cli/help.rs",
    ];
    assert_kept(
        "only commands.rs (with main.rs, and exit.rs and cli/help.rs for the table) names an `Exit`; the library returns errors and outcomes (docs/index.md, `commands.rs`)",
        &found_outside(View::Code, &["Exit::", "exit::Exit"], &allowed),
    );
    assert_kept(
        "nothing calls std::process::exit: main returns the exit code, so destructors and stdout flushes run",
        &found_outside(View::Code, &["process::exit"], &[]),
    );
}

#[test]
fn only_lock_calls_fs2() {
    assert_kept(
        "only workspace/lock.rs calls fs2 (docs/index.md, `workspace/`)",
        &found_outside(View::Code, &["fs2"], &["src/workspace/lock.rs"]),
    );
}

#[test]
fn only_signals_sends_signals() {
    assert_kept(
        "all kill(2) calls go through signals.rs (docs/index.md, `signals.rs`)",
        &found_outside(
            View::Code,
            &["libc::kill", "libc::killpg", "libc::tgkill", "libc::raise"],
            &["src/signals.rs"],
        ),
    );
}

#[test]
fn nothing_in_src_prints_with_a_macro_that_panics() {
    // Test code included: a print in a unit test is debugging output left behind.
    let patterns = [
        "print!",
        "println!",
        "eprint!",
        "eprintln!",
        "dbg!",
        "todo!",
        "unimplemented!",
    ];
    let mut violations = Vec::new();
    for file in source_tree::rust_files("src") {
        for (number, line) in file.all_lines(View::Code) {
            for pattern in patterns {
                if find_token(line, pattern).is_some() {
                    violations.push(at(&file, number, &format!("`{pattern}`")));
                }
            }
        }
    }
    assert_kept(
        "no print!/println!/eprint!/eprintln! in src/ (they panic when stdout or stderr fails: write through output.rs or writeln! and handle the error), and no dbg!, todo! or unimplemented! (docs/index.md, Cross-cutting invariants)",
        &violations,
    );
}

#[test]
fn no_unwrap_or_expect_outside_tests() {
    assert_kept(
        "no unwrap()/expect() outside tests: an error is returned with its context (docs/index.md, Errors)",
        &found_outside(View::Code, &[".unwrap()", ".expect("], &[]),
    );
}

#[test]
fn every_src_file_says_what_it_owns() {
    let violations: Vec<String> = source_tree::rust_files("src")
        .iter()
        .filter(|file| !file.text.starts_with("//!"))
        .map(|file| at(file, 1, "no `//!` header"))
        .collect();
    assert_kept(
        "every src/ file starts with a `//!` header saying what it owns and what it deliberately does not do (guide, Standards)",
        &violations,
    );
}

#[test]
fn no_file_is_over_800_lines() {
    let mut violations = Vec::new();
    for dir in ["src", "tests", "examples", "fuzz"] {
        for file in source_tree::rust_files(dir) {
            let lines = file.line_count();
            if lines > 800 {
                violations.push(at(&file, lines, &format!("{lines} lines")));
            }
        }
    }
    assert_kept(
        "no Rust file is over 800 lines: split it by concept (guide, Standards)",
        &violations,
    );
}

#[test]
fn tests_wait_on_conditions_not_on_sleeps() {
    let mut violations = Vec::new();
    for file in source_tree::rust_files("tests") {
        if file.path.starts_with("tests/support/") {
            continue;
        }
        for (number, line) in file.all_lines(View::Code) {
            if find_token(line, "thread::sleep").is_some() || find_token(line, "sleep(").is_some() {
                violations.push(at(&file, number, "a sleep"));
            }
        }
    }
    assert_kept(
        "no thread::sleep in tests outside tests/support: wait on the observable condition (support::run_world::wait_until), or call support::pause where the delay itself is the test's input (docs/index.md, Tests)",
        &violations,
    );
}

/// Whether the statement that binds port 0 at `at` in `text` only reads the port: the chain
/// ends in `.port()`, or the listener is bound in a block whose value is its port.
fn only_reads_the_port(text: &str, at: usize) -> bool {
    let rest = &text[at..];
    let end = rest.find(';').unwrap_or(rest.len());
    let squeezed = |part: &str| part.split_whitespace().collect::<String>();
    if squeezed(&rest[..end]).ends_with(".port()") {
        return true;
    }
    // `{ let listener = bind(..).unwrap(); listener.local_addr().unwrap().port() }`
    let after = &rest[(end + 1).min(rest.len())..];
    let next = after
        .find(['}', ';'])
        .map_or(after, |close| &after[..close]);
    squeezed(next).ends_with(".port()")
}

#[test]
fn tests_never_take_a_dead_port_by_dropping_a_listener() {
    let mut violations = Vec::new();
    for file in source_tree::rust_files("tests") {
        if file.path == "tests/support/ports.rs" {
            continue;
        }
        let text: String = file
            .all_lines(View::CodeAndStrings)
            .map(|(_, line)| format!("{line}\n"))
            .collect();
        let mut from = 0;
        while let Some(found) = text[from..].find("\"127.0.0.1:0\"") {
            let at_byte = from + found;
            if only_reads_the_port(&text, at_byte) {
                let line = text[..at_byte].matches('\n').count() + 1;
                violations.push(at(&file, line, "a port from a dropped listener"));
            }
            from = at_byte + 1;
        }
    }
    assert_kept(
        "tests take a port nothing listens on from support::ports::DeadPort (kept bound, never listening) and a port for a later server from support::ports::free_port; a port read from a dropped listener can be handed to another test's server at once (docs/index.md, Tests)",
        &violations,
    );
}

#[test]
fn no_test_is_ignored_or_expected_to_panic() {
    let mut violations = Vec::new();
    for dir in ["src", "tests"] {
        for file in source_tree::rust_files(dir) {
            for (number, line) in file.all_lines(View::Code) {
                for pattern in ["#[ignore", "#[should_panic"] {
                    if line.contains(pattern) {
                        violations.push(at(&file, number, &format!("`{pattern}]`")));
                    }
                }
            }
        }
    }
    assert_kept(
        "no #[ignore] and no #[should_panic]: a test asserts today's behaviour, a skipped one says so (docs/index.md, Tests)",
        &violations,
    );
}

/// The top-level modules a non-test line of `file` names through `crate::`, with the line.
fn crate_references(file: &SourceFile) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (number, line) in file.lines(View::Code) {
        let mut rest = line;
        while let Some(start) = find_token(rest, "crate::") {
            rest = &rest[start + "crate::".len()..];
            for name in first_segments(rest) {
                found.push((name, number));
            }
        }
    }
    found
}

/// `daemon::run` → `daemon`; `{config::{self, Lookup}, exit::Exit}` → `config`, `exit`.
fn first_segments(path: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = path.strip_prefix('{') else {
        return vec![ident(path)];
    };
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => item_start = true,
            c if item_start && !c.is_whitespace() => {
                names.push(ident(&group[index..]));
                item_start = false;
            }
            _ => {}
        }
    }
    names
}

/// A cycle in `edges`, if there is one, as the nodes along it (the first repeated at the end).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(index) = path.iter().position(|on_path| on_path == node) {
            let mut cycle = path[index..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

/// `a -> b (src/a.rs:3) -> a (src/b/mod.rs:9)`: a cycle with one place naming each step.
fn describe_cycle(cycle: &[String], places: &BTreeMap<(String, String), String>) -> String {
    let mut text = cycle[0].clone();
    for step in cycle.windows(2) {
        let place = &places[&(step[0].clone(), step[1].clone())];
        text.push_str(&format!(" -> {} ({place})", step[1]));
    }
    text
}

#[test]
fn the_module_graph_has_no_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut places = BTreeMap::new();
    let files = source_tree::rust_files("src");
    let modules: BTreeSet<&str> = files.iter().filter_map(SourceFile::top_module).collect();
    for file in &files {
        let Some(from) = file.top_module() else {
            continue;
        };
        for (to, line) in crate_references(file) {
            if to != from && modules.contains(to.as_str()) {
                edges
                    .entry(from.to_string())
                    .or_default()
                    .insert(to.clone());
                places
                    .entry((from.to_string(), to))
                    .or_insert_with(|| format!("{}:{line}", file.path));
            }
        }
    }
    let cycle = find_cycle(&edges).map(|cycle| describe_cycle(&cycle, &places));
    assert_kept(
        "the top-level modules import each other without a cycle: a module that both calls and is called by another has no home (docs/index.md, Code map)",
        &cycle.into_iter().collect::<Vec<_>>(),
    );
}

/// Import cycles between the files of one module that exist today. The list only shrinks: a
/// new cycle fails the test, and so does an entry whose cycle is gone.
const KNOWN_FILE_CYCLES: [&str; 4] = [
    "src/review: decide, record",
    "src/run: handoff, prompt, tools, verdict",
    "src/workflow: agent, parse",
    "src/workspace: bookkeeping, lane, lock, ownership, record",
];

#[test]
fn the_files_of_a_module_import_each_other_without_a_cycle() {
    let files = source_tree::rust_files("src");
    // Module directory → its child modules (files and subdirectories) → what they import.
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let children = |dir: &str| -> BTreeSet<String> {
        files
            .iter()
            .filter_map(|file| file.path.strip_prefix(&format!("{dir}/")))
            .filter_map(|rest| rest.split('/').next())
            .map(|name| name.trim_end_matches(".rs").to_string())
            .filter(|name| name != "mod")
            .collect()
    };
    for file in &files {
        let Some((dir, name)) = file.path.rsplit_once('/') else {
            continue;
        };
        let (dir, name) = match name {
            "mod.rs" => match dir.rsplit_once('/') {
                Some((parent, own)) => (parent.to_string(), own.to_string()),
                None => continue,
            },
            name => (dir.to_string(), name.trim_end_matches(".rs").to_string()),
        };
        if dir == "src" {
            continue;
        }
        let siblings = children(&dir);
        let module_path = dir.trim_start_matches("src/").replace('/', "::");
        let prefixes = ["super::".to_string(), format!("crate::{module_path}::")];
        let graph = graphs.entry(dir.clone()).or_default();
        for (_, line) in file.lines(View::Code) {
            for prefix in &prefixes {
                let mut rest = line;
                while let Some(start) = find_token(rest, prefix) {
                    rest = &rest[start + prefix.len()..];
                    for target in first_segments(rest) {
                        if target != name && siblings.contains(&target) {
                            graph.entry(name.clone()).or_default().insert(target);
                        }
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    for (dir, graph) in &graphs {
        for component in cyclic_components(graph) {
            let names: Vec<&str> = component.iter().map(String::as_str).collect();
            found.insert(format!("{dir}: {}", names.join(", ")));
        }
    }
    let known: BTreeSet<String> = KNOWN_FILE_CYCLES.iter().map(|s| s.to_string()).collect();
    let mut violations: Vec<String> = found
        .difference(&known)
        .map(|cycle| format!("new import cycle between files: {cycle}"))
        .collect();
    violations.extend(known.difference(&found).map(|cycle| {
        format!("no longer a cycle, remove it from KNOWN_FILE_CYCLES in tests/tidy.rs: {cycle}")
    }));
    assert_kept(
        "the files of a module import each other without a cycle (the known ones only shrink); a turn borrows a SessionView and never imports the session (docs/index.md, `app_server/`)",
        &violations,
    );
}

/// The strongly connected components of more than one node, each sorted.
fn cyclic_components(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reaches = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|node| (node, reaches(node))).collect();
    let mut components: Vec<BTreeSet<String>> = Vec::new();
    for (node, reached) in &reach {
        let component: BTreeSet<String> = reached
            .iter()
            .filter(|other| reach.get(other).is_some_and(|back| back.contains(*node)))
            .cloned()
            .collect();
        if component.len() > 1 && !components.contains(&component) {
            components.push(component);
        }
    }
    components
}

#[test]
fn only_layout_spells_state_paths() {
    // The names of the state directory and of the files in it that no other word shares.
    let names = [
        "\".maestro\"",
        ".maestro/",
        "retry-queue",
        "daemon.lock",
        "daemon.pid",
        "github-etags",
        "tracker-budget",
        "workflow-snapshot.md",
        ".journal.jsonl",
        ".cloning-",
    ];
    let mut violations = Vec::new();
    for file in source_tree::rust_files("src") {
        if file.path == "src/workspace/mod.rs" {
            continue;
        }
        for (number, line) in file.lines(View::CodeAndStrings) {
            for name in names {
                if line.contains(name) {
                    violations.push(at(&file, number, &format!("`{name}`")));
                }
            }
        }
    }
    assert_kept(
        "only Layout (workspace/mod.rs) spells a path or a state file name under workspace_root; text that names one asks Layout::relative (docs/index.md, `workspace/`)",
        &violations,
    );
}

#[test]
fn state_is_written_by_the_state_writer() {
    // Each writes its own atomic, versioned JSON, as docs/index.md states.
    let own_writers = [
        "src/atomic_file.rs",
        "src/workspace/state_file.rs",
        "src/workspace/ownership.rs",
        "src/intake/budget.rs",
        "src/review/record.rs",
        "src/github/etag.rs",
    ];
    assert_kept(
        "JSON state is written through workspace/state_file.rs (atomic_file::write_json); the lane marker, the budget report, review records and the ETag cache keep their own atomic writers (docs/index.md, `workspace/`)",
        &found_outside(View::Code, &["write_json("], &own_writers),
    );
    // Files that are not state: the demo's throwaway world, the probe's throwaway CODEX_HOME,
    // and the disk reserve (zeros, replaced by nothing).
    let not_state_files = [
        "src/demo/world.rs",
        "src/probe.rs",
        "src/workspace/bookkeeping.rs",
    ];
    assert_kept(
        "nothing writes state in place with fs::write: state is replaced atomically through src/atomic_file.rs; the files listed in tests/tidy.rs are not state (docs/index.md, `atomic_file.rs`)",
        &found_outside(View::Code, &["fs::write("], &not_state_files),
    );
    // Where serde_json serializes something that is not a state file, and what it is.
    let not_state = [
        "src/atomic_file.rs",         // the serializer of write_json itself
        "src/dry_run.rs",             // the dry run's JSON on stdout
        "src/status/mod.rs",          // `status --json` on stdout
        "src/tracker/linear/http.rs", // a GraphQL request body
        "src/github/http.rs",         // an answer kept in the ETag cache
        "src/github/etag.rs",         // the size of a cache entry
        "src/run/progress.rs",        // a field inside a run record
        "src/run/redact.rs",          // text to scrub secrets from
        "src/app_server/journal.rs",  // a journal line (append-only JSONL)
        "src/run/json.rs",            // `run --once --json` on stdout
        "src/show/mod.rs",            // `show --json` on stdout
    ];
    assert_kept(
        "serde_json::to_* serializes state only inside the state writer; every other use is listed in tests/tidy.rs with what it serializes",
        &found_outside(View::Code, &["serde_json::to_"], &not_state),
    );
}

#[test]
fn processes_start_through_custody() {
    // The demo runs the daemon as its child and never takes custody itself.
    let spawners = ["src/custody.rs", "src/demo/mod.rs"];
    assert_kept(
        "every spawn in a custody process goes through custody::spawn (docs/index.md, `custody.rs`)",
        &found_outside(View::Code, &[".spawn()", ".output()"], &spawners),
    );
    let mut violations = Vec::new();
    for file in source_tree::rust_files("src") {
        if spawners.contains(&file.path.as_str()) {
            continue;
        }
        let builds = file
            .lines(View::Code)
            .find(|(_, line)| find_token(line, "Command::new(").is_some());
        let Some((number, _)) = builds else {
            continue;
        };
        if !file.code.contains("custody::spawn(") {
            violations.push(at(
                &file,
                number,
                "builds a Command but never calls custody::spawn",
            ));
        }
        for (number, line) in file.lines(View::Code) {
            if line.contains(".status()") {
                violations.push(at(&file, number, "`.status()` beside a Command"));
            }
        }
    }
    assert_kept(
        "a file that builds a Command spawns it with custody::spawn (docs/index.md, `custody.rs`)",
        &violations,
    );
}

#[test]
fn deciding_modules_do_no_io() {
    let pure = [
        "src/cli/",
        "src/selection/",
        "src/daemon/plan.rs",
        "src/daemon/exits.rs",
        "src/review/decide.rs",
    ];
    let io = [
        "std::fs",
        "fs::",
        "File::",
        "std::process",
        "std::net",
        "TcpStream",
        "ureq",
        "std::env",
        "stdout()",
        "stderr()",
        "stdin()",
    ];
    let mut violations = Vec::new();
    for file in source_tree::rust_files("src") {
        if !pure.iter().any(|prefix| file.path.starts_with(prefix)) {
            continue;
        }
        for (number, line) in file.lines(View::Code) {
            for pattern in io {
                if find_token(line, pattern).is_some() {
                    violations.push(at(&file, number, &format!("`{pattern}`")));
                }
            }
        }
    }
    assert_kept(
        "cli, selection, the daemon's plan and exits and review's decide do no I/O: they decide from plain data (docs/index.md, Code map)",
        &violations,
    );
}

#[test]
fn leaves_import_only_their_leaves() {
    // output.rs is what every command module reports through; it must depend on none of them.
    let leaves: [(&str, &[&str]); 3] = [
        ("src/output.rs", &["escape"]),
        ("src/exit.rs", &[]),
        ("src/escape.rs", &[]),
    ];
    let files = source_tree::rust_files("src");
    let mut violations = Vec::new();
    for (path, allowed) in leaves {
        let Some(file) = files.iter().find(|file| file.path == path) else {
            violations.push(format!("{path}: missing"));
            continue;
        };
        for (module, line) in crate_references(file) {
            if !allowed.contains(&module.as_str()) {
                violations.push(at(file, line, &format!("imports `crate::{module}`")));
            }
        }
    }
    assert_kept(
        "output.rs imports nothing of Maestro's but escape, exit.rs and escape.rs nothing at all (docs/index.md, `output.rs`)",
        &violations,
    );
}

#[test]
fn the_code_map_names_every_module() {
    let lib = std::fs::read_to_string(source_tree::root().join("src/lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';').to_string())
        .collect();
    let index = std::fs::read_to_string(source_tree::root().join("docs/index.md")).unwrap();
    let headings: BTreeSet<String> = index
        .lines()
        .filter_map(|line| line.strip_prefix("#### `"))
        .map(|rest| rest.trim_end_matches('`').to_string())
        .collect();
    let mut violations = Vec::new();
    for module in &modules {
        let is_dir = source_tree::root().join("src").join(module).is_dir()
            && !source_tree::root()
                .join("src")
                .join(format!("{module}.rs"))
                .is_file();
        let heading = if is_dir {
            format!("{module}/")
        } else {
            format!("{module}.rs")
        };
        if !headings.contains(&heading) {
            violations.push(format!("docs/index.md: no heading #### `{heading}`"));
        }
    }
    for heading in &headings {
        let module = heading.trim_end_matches('/').trim_end_matches(".rs");
        if !modules.contains(module) {
            violations.push(format!(
                "docs/index.md: heading #### `{heading}` names no module of src/lib.rs"
            ));
        }
    }
    assert_kept(
        "docs/index.md's code map has one heading per module of src/lib.rs, and no other",
        &violations,
    );
}

/// The lexer's corners: what counts as code, as a string, as a comment and as test code.
#[test]
fn the_source_reader_tells_code_from_prose() {
    let dir = crate::support::dir::TestDir::new("tidy-lexer");
    let source = "//! Header with Exit::Usage\n\
                  fn f<'a>(x: &'a str) -> char { let _ = \"Exit:: // not a comment\"; '\\'' }\n\
                  /* block Exit:: /* nested */ still */ let c = '\\u{1b}'; Exit::Success\n\
                  let r = r#\"raw \"Exit::\" text\"#; crate::{a::{self, B}, c}\n\
                  #[cfg(test)]\n\
                  mod tests {\n    Exit::Failure\n}\n\
                  after\n";
    dir.write("src/sample.rs", source);
    let file = source_tree::read_at(&dir.join("src/sample.rs"), dir.path());
    let code: Vec<(usize, &str)> = file.lines(View::Code).collect();
    let with_exit: Vec<usize> = code
        .iter()
        .filter(|(_, line)| find_token(line, "Exit::").is_some())
        .map(|(number, _)| *number)
        .collect();
    assert_eq!(with_exit, vec![3], "{code:#?}");
    let strings: Vec<usize> = file
        .lines(View::CodeAndStrings)
        .filter(|(_, line)| line.contains("not a comment") || line.contains("raw \"Exit"))
        .map(|(number, _)| number)
        .collect();
    assert_eq!(strings, vec![2, 4]);
    assert_eq!(
        code.iter().map(|(number, _)| *number).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 9, 10]
    );
    assert_eq!(first_segments("{a::{self, B}, c}"), vec!["a", "c"]);
    assert_eq!(first_segments("daemon::run(x)"), vec!["daemon"]);
    assert_eq!(find_token("eprintln!(x)", "println!"), None);
}
