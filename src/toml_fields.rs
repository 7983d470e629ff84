//! Typed, span-aware reading of a TOML document, shared by maestro.toml and WORKFLOW.md.
//!
//! Both contracts need the same things serde's derive does not give: every problem located by
//! line and column, unknown keys named with the closest known key, all problems reported at once,
//! and literal secrets refused wherever they appear. This module walks toml's spanned `DeTable`
//! tree and hands out plain values; it knows nothing of either contract's fields. Each contract
//! module decides defaults and cross-field rules and wraps [`Problem`] in its own error type.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One thing wrong with a document: where, which field, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Byte range in the text that was parsed (callers add their own offset).
    pub span: Range<usize>,
    /// Dotted field path, for example `tracker.project_slug`; empty for document-level problems.
    pub field: String,
    /// Lowercase explanation with the expected form.
    pub message: String,
}

/// A line and column (both 1-based, columns counted in characters) inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the end of the text).
    pub fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// A [`Problem`] placed in its file: what operators read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub position: Position,
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    /// Places `problem`, whose span is relative to `text[base..]`, inside the whole `text`.
    /// Literal tokens the field or message echo from the file are redacted here, the one place
    /// every problem of every contract passes on its way to the operator.
    pub fn locate(text: &str, base: usize, problem: Problem) -> Diagnostic {
        Diagnostic {
            position: Position::of(text, base + problem.span.start),
            field: redact_secrets(&problem.field),
            message: redact_secrets(&problem.message),
        }
    }
}

/// Formats diagnostics as `PATH:LINE:COLUMN: field `F`: MESSAGE`, one per line.
pub fn format_diagnostics(path: &std::path::Path, diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics
        .iter()
        .map(|diagnostic| {
            let field = if diagnostic.field.is_empty() {
                String::new()
            } else {
                format!("field `{}`: ", diagnostic.field)
            };
            format!(
                "{}:{}:{}: {field}{}",
                path.display(),
                diagnostic.position.line,
                diagnostic.position.column,
                diagnostic.message
            )
        })
        .collect();
    lines.join("\n")
}

/// Parses `text` as a TOML document, or returns the syntax problem.
pub fn parse(text: &str) -> Result<Spanned<DeTable<'_>>, Problem> {
    DeTable::parse(text).map_err(|error| Problem {
        span: error.span().unwrap_or(0..0),
        field: String::new(),
        message: format!("invalid TOML: {}", first_line(error.message())),
    })
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim_end()
}

/// A TOML table being read field by field.
///
/// Every key asked for is remembered, present or not, so [`Table::finish`] can report the keys
/// nobody asked for together with the closest key that was.
#[derive(Debug)]
pub struct Table<'t, 'i> {
    prefix: String,
    table: &'t DeTable<'i>,
    span: Range<usize>,
    asked: Vec<&'static str>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// The document root.
    pub fn root(document: &'t Spanned<DeTable<'i>>) -> Self {
        Table {
            prefix: String::new(),
            table: document.get_ref(),
            span: document.span(),
            asked: Vec::new(),
        }
    }

    /// The dotted path of `key` inside this table.
    pub fn field(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// Where this table starts, for problems about the table as a whole.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    fn value(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        if !self.asked.contains(&key) {
            self.asked.push(key);
        }
        self.table
            .iter()
            .find(|(name, _)| name.get_ref().as_ref() == key)
            .map(|(_, value)| value)
    }

    /// Marks `key` as known without reading it (for keys handled elsewhere).
    pub fn contains(&mut self, key: &'static str) -> bool {
        self.value(key).is_some()
    }

    /// The span of `key`'s value, when present.
    pub fn value_span(&mut self, key: &'static str) -> Option<Range<usize>> {
        self.value(key).map(Spanned::span)
    }

    fn wrong_type(&self, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) -> Problem {
        Problem {
            span: value.span(),
            field: self.field(key),
            message: format!("expected {expected}, found {}", value.get_ref().type_str()),
        }
    }

    /// A string field.
    pub fn string(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Spanned<String>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::String(text) => Some(Spanned::new(value.span(), text.to_string())),
            _ => {
                problems.push(self.wrong_type(key, value, "a string"));
                None
            }
        }
    }

    /// A string field, trimmed; an empty value is reported with `empty_message`.
    pub fn non_empty(
        &mut self,
        key: &'static str,
        empty_message: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let value = self.string(key, problems)?;
        let trimmed = value.get_ref().trim();
        if trimmed.is_empty() {
            problems.push(Problem {
                span: value.span(),
                field: self.field(key),
                message: empty_message.to_string(),
            });
            return None;
        }
        Some(trimmed.to_string())
    }

    /// An integer field.
    pub fn integer(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Spanned<i64>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Integer(number) => {
                match i64::from_str_radix(number.as_str(), number.radix()) {
                    Ok(parsed) => Some(Spanned::new(value.span(), parsed)),
                    Err(_) => {
                        problems.push(Problem {
                            span: value.span(),
                            field: self.field(key),
                            message: "integer is out of range".to_string(),
                        });
                        None
                    }
                }
            }
            _ => {
                problems.push(self.wrong_type(key, value, "an integer"));
                None
            }
        }
    }

    /// A boolean field.
    pub fn boolean(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Spanned<bool>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Boolean(flag) => Some(Spanned::new(value.span(), *flag)),
            _ => {
                problems.push(self.wrong_type(key, value, "a boolean (true or false)"));
                None
            }
        }
    }

    /// An array of strings.
    pub fn string_list(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Spanned<Vec<Spanned<String>>>> {
        let value = self.value(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            problems.push(self.wrong_type(key, value, "an array of strings"));
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        let mut ok = true;
        for (index, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::String(text) => strings.push(Spanned::new(item.span(), text.to_string())),
                other => {
                    ok = false;
                    problems.push(Problem {
                        span: item.span(),
                        field: format!("{}[{index}]", self.field(key)),
                        message: format!("expected a string, found {}", other.type_str()),
                    });
                }
            }
        }
        ok.then(|| Spanned::new(value.span(), strings))
    }

    /// A table of string keys to integers (for per-state caps).
    pub fn integer_map(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<(Spanned<String>, Spanned<i64>)>> {
        let value = self.value(key)?;
        let DeValue::Table(table) = value.get_ref() else {
            problems.push(self.wrong_type(key, value, "a table of integers"));
            return None;
        };
        let mut entries = Vec::with_capacity(table.len());
        for (name, item) in table.iter() {
            let field = format!("{}.{}", self.field(key), name.get_ref());
            let name = Spanned::new(name.span(), name.get_ref().to_string());
            match item.get_ref() {
                DeValue::Integer(number) => {
                    match i64::from_str_radix(number.as_str(), number.radix()) {
                        Ok(parsed) => entries.push((name, Spanned::new(item.span(), parsed))),
                        Err(_) => problems.push(Problem {
                            span: item.span(),
                            field,
                            message: "integer is out of range".to_string(),
                        }),
                    }
                }
                other => problems.push(Problem {
                    span: item.span(),
                    field,
                    message: format!("expected an integer, found {}", other.type_str()),
                }),
            }
        }
        Some(entries)
    }

    /// A table of string keys to strings (for per-host settings).
    pub fn string_map(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Vec<(Spanned<String>, Spanned<String>)>> {
        let value = self.value(key)?;
        let DeValue::Table(table) = value.get_ref() else {
            problems.push(self.wrong_type(key, value, "a table of strings"));
            return None;
        };
        let mut entries = Vec::with_capacity(table.len());
        for (name, item) in table.iter() {
            let field = format!("{}.{}", self.field(key), name.get_ref());
            let name = Spanned::new(name.span(), name.get_ref().to_string());
            match item.get_ref() {
                DeValue::String(text) => {
                    entries.push((name, Spanned::new(item.span(), text.to_string())))
                }
                other => problems.push(Problem {
                    span: item.span(),
                    field,
                    message: format!("expected a string, found {}", other.type_str()),
                }),
            }
        }
        Some(entries)
    }

    /// A sub-table.
    pub fn table(
        &mut self,
        key: &'static str,
        problems: &mut Vec<Problem>,
    ) -> Option<Table<'t, 'i>> {
        let value = self.value(key)?;
        match value.get_ref() {
            DeValue::Table(table) => Some(Table {
                prefix: self.field(key),
                table,
                span: value.span(),
                asked: Vec::new(),
            }),
            _ => {
                problems.push(self.wrong_type(key, value, "a table"));
                None
            }
        }
    }

    /// Keys present in the table that were never asked for, in file order.
    pub fn unasked(&self) -> Vec<Unasked> {
        let mut keys: Vec<Unasked> = self
            .table
            .iter()
            .filter(|(name, _)| !self.asked.contains(&name.get_ref().as_ref()))
            .map(|(name, value)| Unasked {
                key: name.get_ref().to_string(),
                span: name.span(),
                is_table: value.get_ref().is_table(),
            })
            .collect();
        keys.sort_by_key(|unasked| unasked.span.start);
        keys
    }

    /// The error for a key nobody asked for, suggesting the closest key that was.
    pub fn unknown_key(&self, unasked: &Unasked) -> Problem {
        let place = if self.prefix.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in [{}]", self.prefix)
        };
        let hint = match closest(&unasked.key, &self.asked) {
            Some(known) => format!("; did you mean `{known}`?"),
            None => format!("; known keys: {}", self.asked.join(", ")),
        };
        Problem {
            span: unasked.span.clone(),
            field: self.field(&unasked.key),
            message: format!("unknown key `{}` {place}{hint}", unasked.key),
        }
    }

    /// Reports every key nobody asked for as an error, suggesting the closest known key.
    pub fn finish(self, problems: &mut Vec<Problem>) {
        for unasked in self.unasked() {
            problems.push(self.unknown_key(&unasked));
        }
    }
}

/// A key present in a table that no reader asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unasked {
    pub key: String,
    pub span: Range<usize>,
    pub is_table: bool,
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|candidate| {
            (
                edit_distance(&word, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(left: &str, right: &str) -> usize {
    let right: Vec<char> = right.chars().collect();
    let mut previous: Vec<usize> = (0..=right.len()).collect();
    for (row, left_char) in left.chars().enumerate() {
        let mut current = vec![row + 1; right.len() + 1];
        for (column, right_char) in right.iter().enumerate() {
            let substitution = previous[column] + usize::from(left_char != *right_char);
            current[column + 1] = substitution
                .min(previous[column + 1] + 1)
                .min(current[column] + 1);
        }
        previous = current;
    }
    previous[right.len()]
}

/// Literal-token prefixes that must never appear in a config file: secrets are named by
/// environment variable only, so a value like this is a pasted token.
const TOKEN_PREFIXES: [&str; 8] = [
    "lin_api_",
    "lin_oauth_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
];

/// Returns the token prefix when `text` contains something shaped like a literal token:
/// a known prefix at a word start followed by at least 16 token characters.
pub fn secret_prefix(text: &str) -> Option<&'static str> {
    literal_tokens(text).first().map(|(prefix, _)| *prefix)
}

/// `text` with every literal token cut back to its prefix and `…`. Messages echo what the
/// operator wrote (a bad id, an unknown key) so they can find it; a pasted token must not ride
/// along into a terminal or a log.
pub fn redact_secrets(text: &str) -> String {
    let mut tails: Vec<Range<usize>> = literal_tokens(text)
        .into_iter()
        .map(|(_, tail)| tail)
        .collect();
    if tails.is_empty() {
        return text.to_string();
    }
    tails.sort_by_key(|tail| tail.start);
    let mut out = String::with_capacity(text.len());
    let mut done = 0;
    for tail in tails {
        if tail.start < done {
            continue;
        }
        out.push_str(&text[done..tail.start]);
        out.push('…');
        done = tail.end;
    }
    out.push_str(&text[done..]);
    out
}

/// Every literal token in `text`: its prefix and the byte range of the characters after it.
fn literal_tokens(text: &str) -> Vec<(&'static str, Range<usize>)> {
    let mut found = Vec::new();
    for prefix in TOKEN_PREFIXES {
        for (index, _) in text.match_indices(prefix) {
            let at_word_start = text[..index]
                .chars()
                .next_back()
                .is_none_or(|before| !before.is_ascii_alphanumeric() && before != '_');
            let start = index + prefix.len();
            // Token characters are ASCII, so counting bytes counts characters.
            let tail = text[start..]
                .bytes()
                .take_while(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
                .count();
            if at_word_start && tail >= 16 {
                found.push((prefix, start..start + tail));
            }
        }
    }
    found
}

/// Walks every string in the document (keys' values, arrays, nested tables) and reports the
/// ones that look like literal tokens.
pub fn find_secrets(document: &Spanned<DeTable<'_>>, problems: &mut Vec<Problem>) {
    walk_table(document.get_ref(), "", problems);
}

fn walk_table(table: &DeTable<'_>, prefix: &str, problems: &mut Vec<Problem>) {
    for (name, value) in table.iter() {
        let field = if prefix.is_empty() {
            name.get_ref().to_string()
        } else {
            format!("{prefix}.{}", name.get_ref())
        };
        walk_value(value, &field, problems);
    }
}

/// What to write instead of a token found in `field`. A field whose key ends in `_env_var`
/// exists to name the variable, so the example is that very key; the variable suggested is the
/// usual one for the token's kind (a Linear key or a GitHub token), judged by its prefix.
fn secret_advice(field: &str, prefix: &str) -> String {
    let variable = if prefix.starts_with("lin_") {
        "LINEAR_API_KEY"
    } else {
        "GITHUB_TOKEN"
    };
    let key = field.rsplit('.').next().unwrap_or(field);
    if key.ends_with("_env_var") {
        format!(
            "export the token in an environment variable and give the variable's name here (for example {key} = \"{variable}\")"
        )
    } else {
        format!(
            "export the token in an environment variable (for example {variable}) and name that variable in the field meant for it"
        )
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, field: &str, problems: &mut Vec<Problem>) {
    match value.get_ref() {
        DeValue::String(text) => {
            if let Some(prefix) = secret_prefix(text) {
                problems.push(Problem {
                    span: value.span(),
                    field: field.to_string(),
                    message: format!(
                        "looks like a literal token (`{prefix}…`); never put secrets in this file: {}",
                        secret_advice(field, prefix)
                    ),
                });
            }
        }
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                walk_value(item, &format!("{field}[{index}]"), problems);
            }
        }
        DeValue::Table(table) => walk_table(table, field, problems),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Position::of(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(text, 6), Position { line: 2, column: 1 });
        // "bé = " is 6 bytes but 5 characters.
        assert_eq!(Position::of(text, 12), Position { line: 2, column: 6 });
    }

    /// Found by `fuzz/` (config_parse, workflow_parse): an invalid project id, an unknown
    /// provider or an unknown key was echoed whole in the error, pasted token included.
    #[test]
    fn diagnostics_never_echo_a_literal_token() {
        let token = "lin_api_0123456789abcdefXYZ";
        let problem = Problem {
            span: 5..6,
            field: format!("tracker.{token}"),
            message: format!("`my-app {token}` is not a valid project id"),
        };
        let diagnostic = Diagnostic::locate("id = \"x\"", 0, problem);
        assert_eq!(diagnostic.field, "tracker.lin_api_…");
        assert_eq!(
            diagnostic.message,
            "`my-app lin_api_…` is not a valid project id"
        );
        assert_eq!(
            redact_secrets("ghp_0123456789abcdefghij and github_pat_0123456789abcdef_x end"),
            "ghp_… and github_pat_… end"
        );
        // Not tokens: too short, or not at a word start.
        assert_eq!(
            redact_secrets("ghp_short xghp_0123456789abcdefghij"),
            "ghp_short xghp_0123456789abcdefghij"
        );
    }

    #[test]
    fn closest_suggests_typos_only() {
        let known = ["project_slug", "api_key_env_var", "api_url"];
        assert_eq!(closest("project_slg", &known), Some("project_slug"));
        assert_eq!(closest("api_ulr", &known), Some("api_url"));
        assert_eq!(closest("completely_else", &known), None);
    }

    #[test]
    fn secret_shapes() {
        assert_eq!(
            secret_prefix("lin_api_0123456789abcdefABCDEF"),
            Some("lin_api_")
        );
        assert_eq!(
            secret_prefix("token ghp_0123456789abcdef0123"),
            Some("ghp_")
        );
        assert_eq!(
            secret_prefix("github_pat_11AAAAAAA0123456789_abcdef"),
            Some("github_pat_")
        );
        assert_eq!(secret_prefix("LINEAR_API_KEY"), None);
        assert_eq!(secret_prefix("ghp_short"), None);
        assert_eq!(secret_prefix("xghp_0123456789abcdef0123"), None);
    }

    #[test]
    fn unknown_keys_are_reported_with_suggestion() {
        let document = parse("[tracker]\nproject_slg = \"x\"\n").unwrap();
        let mut problems = Vec::new();
        let mut root = Table::root(&document);
        let mut tracker = root.table("tracker", &mut problems).unwrap();
        assert!(tracker.string("project_slug", &mut problems).is_none());
        tracker.finish(&mut problems);
        root.finish(&mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "tracker.project_slg");
        assert_eq!(
            problems[0].message,
            "unknown key `project_slg` in [tracker]; did you mean `project_slug`?"
        );
    }

    #[test]
    fn wrong_types_name_expected_and_found() {
        let document = parse("n = \"three\"\nlist = [1]\n").unwrap();
        let mut problems = Vec::new();
        let mut root = Table::root(&document);
        assert!(root.integer("n", &mut problems).is_none());
        assert!(root.string_list("list", &mut problems).is_none());
        assert_eq!(problems[0].message, "expected an integer, found string");
        assert_eq!(problems[1].field, "list[0]");
        assert_eq!(problems[1].message, "expected a string, found integer");
    }
}
