//! The repository's Rust sources as text, for the tidy tests (`tests/tidy.rs`): each file with
//! two views that keep its line structure, one without comments and one that also blanks the
//! contents of string and character literals, and which of its lines are test code.
//!
//! A small lexer, not a parser: it knows comments (line, nested block), strings (escaped, raw,
//! byte), character literals and lifetimes, which is all a text rule needs to tell code from
//! prose. Test code is a `#[cfg(test)]` item (to its `;` or its matching brace) and every file
//! of a module declared as `#[cfg(test)] mod name;`.

use std::path::{Path, PathBuf};

/// One `.rs` file of the repository.
#[derive(Debug)]
pub struct SourceFile {
    /// Relative to the repository root, with `/` separators: `src/daemon/mod.rs`.
    pub path: String,
    pub text: String,
    /// `text` with every comment blanked (spaces), string literals kept.
    pub without_comments: String,
    /// `without_comments` with the contents of string and character literals blanked too.
    pub code: String,
    /// Per line (0-based): inside a `#[cfg(test)]` item, or the whole file is a test module.
    test_lines: Vec<bool>,
}

/// Which view of a line a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Code only: no comments, no literal contents.
    Code,
    /// Code and string literals: no comments.
    CodeAndStrings,
}

impl SourceFile {
    /// The non-test lines of the chosen view, as (1-based line number, text).
    pub fn lines(&self, view: View) -> impl Iterator<Item = (usize, &str)> {
        self.all_lines(view)
            .filter(|(number, _)| !self.test_lines[number - 1])
    }

    /// Every line of the chosen view, test code included, as (1-based line number, text).
    pub fn all_lines(&self, view: View) -> impl Iterator<Item = (usize, &str)> {
        let text = match view {
            View::Code => &self.code,
            View::CodeAndStrings => &self.without_comments,
        };
        text.split('\n')
            .enumerate()
            .map(|(index, line)| (index + 1, line))
    }

    /// The file's line count.
    pub fn line_count(&self) -> usize {
        self.text.lines().count()
    }

    /// Whether every line is test code (a `#[cfg(test)] mod name;` file, or under `tests/`).
    pub fn is_test_file(&self) -> bool {
        self.test_lines.iter().all(|test| *test)
    }

    /// `src/daemon/mod.rs` → `daemon`: the top-level module a `src/` file belongs to (`None`
    /// for `lib.rs` and `main.rs`, which are the crate itself).
    pub fn top_module(&self) -> Option<&str> {
        let rest = self.path.strip_prefix("src/")?;
        let first = rest.split('/').next()?;
        let name = first.strip_suffix(".rs").unwrap_or(first);
        (!matches!(name, "lib" | "main")).then_some(name)
    }
}

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the root), sorted by path.
pub fn rust_files(dir: &str) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    collect(&root().join(dir), &mut paths);
    paths.sort();
    let root = root();
    let mut files: Vec<SourceFile> = paths.iter().map(|path| read_at(path, &root)).collect();
    let test_modules: Vec<String> = files.iter().flat_map(test_module_dirs).collect();
    for file in &mut files {
        let in_test_module = test_modules.iter().any(|prefix| {
            file.path.starts_with(&format!("{prefix}/")) || file.path == format!("{prefix}.rs")
        });
        if in_test_module || file.path.starts_with("tests/") {
            file.test_lines.iter_mut().for_each(|test| *test = true);
        }
    }
    files
}

fn collect(dir: &Path, paths: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, paths);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            paths.push(path);
        }
    }
}

/// Reads one file, its path taken relative to `root`.
pub fn read_at(path: &Path, root: &Path) -> SourceFile {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let (without_comments, code) = blank(&text);
    let test_lines = test_lines(&code);
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    SourceFile {
        path: relative,
        text,
        without_comments,
        code,
        test_lines,
    }
}

/// For each `#[cfg(test)] mod name;` in `file`, the module's path without `.rs`
/// (`src/review/tests`): its file and everything under its directory are test code.
fn test_module_dirs(file: &SourceFile) -> Vec<String> {
    let dir = match file.path.rsplit_once('/') {
        Some((parent, "mod.rs" | "lib.rs" | "main.rs")) => parent.to_string(),
        _ => file.path.trim_end_matches(".rs").to_string(),
    };
    let code: Vec<&str> = file.code.split('\n').collect();
    let mut dirs = Vec::new();
    for (index, line) in code.iter().enumerate() {
        if !line.contains("#[cfg(test)]") {
            continue;
        }
        let rest = code[index..]
            .iter()
            .flat_map(|line| line.split_whitespace())
            .skip_while(|word| *word != "#[cfg(test)]")
            .skip(1)
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(name) = rest
            .strip_prefix("mod ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|name| name.strip_suffix(';'))
        {
            dirs.push(format!("{dir}/{name}"));
        }
    }
    dirs
}

/// The two views of `text`: comments blanked, and comments and literal contents blanked.
/// Every character becomes one character (a blank is a space), so columns and lines stay.
fn blank(text: &str) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let mut without_comments = String::with_capacity(text.len());
    let mut code = String::with_capacity(text.len());
    // Pushes `c` to both views, blanked in those where it is not kept.
    let mut push = |c: char, keep_in_strings: bool, keep_in_code: bool| {
        let blanked = if c == '\n' { '\n' } else { ' ' };
        without_comments.push(if keep_in_strings { c } else { blanked });
        code.push(if keep_in_code { c } else { blanked });
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                push(chars[i], false, false);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    push(' ', false, false);
                    push(' ', false, false);
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    push(' ', false, false);
                    push(' ', false, false);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    push(chars[i], false, false);
                    i += 1;
                }
            }
            continue;
        }
        let starts_raw =
            (c == 'r' || (c == 'b' && next == Some('r'))) && (i == 0 || !ident(chars[i - 1]));
        if starts_raw {
            let prefix = if c == 'b' { 2 } else { 1 };
            let mut hashes = 0;
            while chars.get(i + prefix + hashes) == Some(&'#') {
                hashes += 1;
            }
            if chars.get(i + prefix + hashes) == Some(&'"') {
                for _ in 0..prefix + hashes + 1 {
                    push(chars[i], true, true);
                    i += 1;
                }
                let closes = |at: usize| {
                    chars[at] == '"' && (1..=hashes).all(|k| chars.get(at + k) == Some(&'#'))
                };
                while i < chars.len() && !closes(i) {
                    push(chars[i], true, false);
                    i += 1;
                }
                for _ in 0..(hashes + 1).min(chars.len() - i) {
                    push(chars[i], true, true);
                    i += 1;
                }
                continue;
            }
        }
        if c == '"' {
            push(c, true, true);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    push(chars[i], true, false);
                    i += 1;
                }
                push(chars[i], true, false);
                i += 1;
            }
            if i < chars.len() {
                push(chars[i], true, true);
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            // A character literal ('a', '\n', '\u{1b}'); anything else is a lifetime or label.
            let end = if next == Some('\\') {
                // An escape: one character (`\n`, `\'`), `\x41`, or `\u{1b}`.
                let close = match chars.get(i + 2) {
                    Some('u') => (i + 3..chars.len())
                        .find(|&at| chars[at] == '}')
                        .map(|at| at + 1),
                    Some('x') => Some(i + 5),
                    _ => Some(i + 3),
                };
                close.filter(|&at| chars.get(at) == Some(&'\''))
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                push(c, true, true);
                for &inner in &chars[i + 1..end] {
                    push(inner, true, false);
                }
                push('\'', true, true);
                i = end + 1;
                continue;
            }
        }
        push(c, true, true);
        i += 1;
    }
    (without_comments, code)
}

/// Which lines of `code` (comments and literals blanked) belong to a `#[cfg(test)]` item: from
/// the attribute to the item's `;` or to the brace that closes its body.
fn test_lines(code: &str) -> Vec<bool> {
    let line_count = code.split('\n').count();
    let mut test = vec![false; line_count];
    let line_of = |offset: usize| code[..offset].matches('\n').count();
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(found) = code[search..].find("#[cfg(test)]") {
        let start = search + found;
        let mut at = start + "#[cfg(test)]".len();
        let mut depth = 0i32;
        let mut end = None;
        while at < bytes.len() {
            match bytes[at] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b';' if depth == 0 => {
                    end = Some(at);
                    break;
                }
                b'{' if depth == 0 => {
                    let mut braces = 0i32;
                    while at < bytes.len() {
                        match bytes[at] {
                            b'{' => braces += 1,
                            b'}' => {
                                braces -= 1;
                                if braces == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        at += 1;
                    }
                    end = Some(at.min(bytes.len() - 1));
                    break;
                }
                _ => {}
            }
            at += 1;
        }
        let end = end.unwrap_or(bytes.len().saturating_sub(1));
        for line in &mut test[line_of(start)..=line_of(end)] {
            *line = true;
        }
        search = end.max(start + 1);
    }
    test
}

/// Where `pattern` occurs in `line` as a token start: the character before it, if any, is not
/// part of an identifier (so `Exit::` does not match `NoExit::`, nor `println!` `eprintln!`).
pub fn find_token(line: &str, pattern: &str) -> Option<usize> {
    line.match_indices(pattern).map(|(at, _)| at).find(|&at| {
        line[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !(before.is_alphanumeric() || before == '_'))
    })
}
