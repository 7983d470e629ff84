//! One local issue file: `+++` TOML front matter plus a Markdown description, read with spans
//! so write-backs edit single values in place and leave the operator's formatting alone.
//!
//! This file knows the file format and nothing about trackers: `mod.rs` decides which files to
//! read, how blockers resolve and when to write.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::toml_fields::{self, Diagnostic, Problem, Table};
use crate::tracker::Error;

/// Keys an issue file may hold, in the order docs list them.
pub(super) const KEYS: [&str; 9] = [
    "identifier",
    "title",
    "state",
    "priority",
    "labels",
    "blockers",
    "created",
    "updated",
    "project",
];

/// A parsed issue file, with what write-backs need to edit it.
#[derive(Debug, Clone)]
pub(super) struct IssueFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte range of the front matter (between the `+++` lines) in `text`.
    pub front_matter: Range<usize>,
    pub identifier: String,
    pub title: String,
    pub state: String,
    pub priority: Option<u8>,
    pub labels: Vec<String>,
    pub blockers: Vec<String>,
    pub created: String,
    pub created_ms: u64,
    pub updated: Option<String>,
    pub project: Option<String>,
    pub description: String,
    /// Value spans (in `text`) of the keys present, for in-place edits.
    spans: Vec<(&'static str, Range<usize>)>,
}

impl IssueFile {
    /// Reads and parses the issue file at `path`.
    pub fn read(path: &Path) -> Result<IssueFile, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        IssueFile::parse(path, text)
    }

    /// Parses issue file `text` that came from `path`.
    pub fn parse(path: &Path, text: String) -> Result<IssueFile, Error> {
        let invalid = |offset: usize, message: String| Error::InvalidIssueFile {
            path: path.to_path_buf(),
            line: toml_fields::Position::of(&text, offset).line,
            message,
        };
        let Some(front_matter) = split(&text) else {
            return Err(invalid(
                0,
                "an issue file starts with a +++ line, then TOML front matter, then +++".into(),
            ));
        };
        let base = front_matter.start;
        let document = toml_fields::parse(&text[front_matter.clone()])
            .map_err(|problem| located(path, &text, base, vec![problem]))?;
        let mut problems = Vec::new();
        let mut root = Table::root(&document);
        let mut spans = Vec::new();
        for key in KEYS {
            if let Some(span) = root.value_span(key) {
                spans.push((key, base + span.start..base + span.end));
            }
        }
        let mut required = |root: &mut Table<'_, '_>, key: &'static str| {
            let value = root.string(key, &mut problems);
            match value {
                Some(value) if !value.get_ref().trim().is_empty() => {
                    Some(value.get_ref().trim().to_string())
                }
                Some(value) => {
                    problems.push(Problem {
                        span: value.span(),
                        field: key.into(),
                        message: "must not be empty".into(),
                    });
                    None
                }
                None => {
                    if !root.contains(key) {
                        problems.push(Problem {
                            span: 0..0,
                            field: key.into(),
                            message: format!("missing required key `{key}`"),
                        });
                    }
                    None
                }
            }
        };
        let identifier = required(&mut root, "identifier");
        let title = required(&mut root, "title");
        let state = required(&mut root, "state");
        let created = required(&mut root, "created");
        // The identifier names the lane directory and branch, so it must be a safe path part.
        let identifier = identifier.filter(|identifier| {
            let safe = identifier
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
                && identifier
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !safe {
                let span = spans
                    .iter()
                    .find(|(key, _)| *key == "identifier")
                    .map_or(0..0, |(_, span)| span.start - base..span.end - base);
                problems.push(Problem {
                    span,
                    field: "identifier".into(),
                    message: format!(
                        "`{identifier}` must be letters, digits, '-' and '_' only, like \"DEMO-1\""
                    ),
                });
            }
            safe
        });
        let priority = match root.integer("priority", &mut problems) {
            None => None,
            Some(value) => match *value.get_ref() {
                0 => None,
                level @ 1..=4 => u8::try_from(level).ok(),
                other => {
                    problems.push(Problem {
                        span: value.span(),
                        field: "priority".into(),
                        message: format!(
                            "must be 0 (none), 1 (urgent), 2 (high), 3 (medium) or 4 (low), got {other}"
                        ),
                    });
                    None
                }
            },
        };
        let list = |root: &mut Table<'_, '_>, key: &'static str, problems: &mut Vec<Problem>| {
            root.string_list(key, problems)
                .map(|items| {
                    items
                        .into_inner()
                        .into_iter()
                        .map(|item| item.into_inner().trim().to_string())
                        .filter(|item| !item.is_empty())
                        .collect::<Vec<String>>()
                })
                .unwrap_or_default()
        };
        let labels = list(&mut root, "labels", &mut problems);
        let blockers = list(&mut root, "blockers", &mut problems);
        let updated = root
            .string("updated", &mut problems)
            .map(|value| value.into_inner().trim().to_string());
        let project = root
            .string("project", &mut problems)
            .map(|value| value.into_inner().trim().to_string())
            .filter(|value| !value.is_empty());
        root.finish(&mut problems);
        let created_ms = created.as_deref().and_then(crate::clock::parse_rfc3339);
        if created.is_some() && created_ms.is_none() {
            let span = spans
                .iter()
                .find(|(key, _)| *key == "created")
                .map_or(0..0, |(_, span)| span.start - base..span.end - base);
            problems.push(Problem {
                span,
                field: "created".into(),
                message: "must be an RFC 3339 timestamp such as \"2026-01-05T09:00:00Z\"".into(),
            });
        }
        if !problems.is_empty() {
            return Err(located(path, &text, base, problems));
        }
        let (Some(identifier), Some(title), Some(state), Some(created), Some(created_ms)) =
            (identifier, title, state, created, created_ms)
        else {
            return Err(invalid(0, "incomplete front matter".into()));
        };
        let description = text[front_matter.end..]
            .split_once('\n')
            .map_or("", |(_, body)| body)
            .trim()
            .to_string();
        Ok(IssueFile {
            path: path.to_path_buf(),
            front_matter,
            identifier,
            title,
            state,
            priority,
            labels,
            blockers,
            created,
            created_ms,
            updated,
            project,
            description,
            spans,
            text,
        })
    }

    /// The file text with `key` set to `value` (a TOML literal): the old value replaced in
    /// place, or a new `key = value` line added at the end of the front matter.
    pub fn with_value(&self, key: &'static str, value: &str) -> String {
        let mut text = self.text.clone();
        match self.spans.iter().find(|(name, _)| *name == key) {
            Some((_, span)) => text.replace_range(span.clone(), value),
            None => {
                let end = self.front_matter.end;
                let newline = if text[..end].ends_with('\n') {
                    ""
                } else {
                    "\n"
                };
                text.insert_str(end, &format!("{newline}{key} = {value}\n"));
            }
        }
        text
    }
}

/// Where a comment for the issue in `path` goes: `<stem>.comments.md` beside it.
pub(super) fn comments_path(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{stem}.comments.md"))
}

/// A TOML basic string for `value`.
pub(super) fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of basic strings.
pub(super) fn toml_string_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|value| toml_string(value)).collect();
    format!("[{}]", items.join(", "))
}

/// The front matter's byte range: after the first `+++` line, up to the closing `+++` line.
fn split(text: &str) -> Option<Range<usize>> {
    let first = text.lines().next()?;
    if first.trim_end() != "+++" {
        return None;
    }
    let rest = &text[first.len()..];
    let newline = if rest.starts_with("\r\n") {
        2
    } else {
        usize::from(rest.starts_with('\n'))
    };
    let start = first.len() + newline;
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == "+++" {
            return Some(start..offset);
        }
        offset += line.len();
    }
    None
}

fn located(path: &Path, text: &str, base: usize, problems: Vec<Problem>) -> Error {
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|problem| Diagnostic::locate(text, base, problem))
        .collect();
    diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
    let Some(first) = diagnostics.first() else {
        return Error::InvalidIssueFile {
            path: path.to_path_buf(),
            line: 1,
            message: "invalid front matter".into(),
        };
    };
    let mut message = if first.field.is_empty() {
        first.message.clone()
    } else {
        format!("field `{}`: {}", first.field, first.message)
    };
    if diagnostics.len() > 1 {
        message.push_str(&format!(" (and {} more)", diagnostics.len() - 1));
    }
    Error::InvalidIssueFile {
        path: path.to_path_buf(),
        line: first.position.line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "+++\nidentifier = \"DEMO-1\"\ntitle = \"Fix it\"\nstate = \"Todo\" # keep\npriority = 2\nlabels = [\"Bug\"]\ncreated = \"2026-01-05T09:00:00Z\"\n+++\n\nThe body.\n";

    fn parse(text: &str) -> Result<IssueFile, Error> {
        IssueFile::parse(Path::new("/issues/DEMO-1.md"), text.to_string())
    }

    #[test]
    fn reads_fields_and_body() {
        let file = parse(FILE).unwrap();
        assert_eq!(file.identifier, "DEMO-1");
        assert_eq!(file.state, "Todo");
        assert_eq!(file.priority, Some(2));
        assert_eq!(file.labels, vec!["Bug"]);
        assert_eq!(file.description, "The body.");
        assert_eq!(file.project, None);
    }

    #[test]
    fn edits_in_place_and_appends_missing_keys() {
        let file = parse(FILE).unwrap();
        let text = file.with_value("state", &toml_string("In \"Progress\""));
        assert!(
            text.contains("state = \"In \\\"Progress\\\"\" # keep\n"),
            "{text}"
        );
        let reparsed = parse(&text).unwrap();
        assert_eq!(reparsed.state, "In \"Progress\"");
        let text = file.with_value("updated", &toml_string("2026-01-06T00:00:00Z"));
        assert!(
            text.contains(
                "created = \"2026-01-05T09:00:00Z\"\nupdated = \"2026-01-06T00:00:00Z\"\n+++\n"
            ),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap().description, "The body.");
    }

    #[test]
    fn problems_name_line_and_field() {
        let error = parse(&FILE.replace("priority = 2", "priority = 9")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid issue file /issues/DEMO-1.md:5: field `priority`: must be 0 (none), 1 (urgent), 2 (high), 3 (medium) or 4 (low), got 9"
        );
        let error =
            parse(&FILE.replace("state = \"Todo\" # keep\n", "stat = \"Todo\"\n")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("missing required key `state`"),
            "{message}"
        );
        assert!(message.contains("(and 1 more)"), "{message}");
        let error = parse("no front matter").unwrap_err();
        assert!(
            error.to_string().contains("starts with a +++ line"),
            "{error}"
        );
        let error = parse(&FILE.replace("2026-01-05T09:00:00Z", "soon")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains(":7: field `created`: must be an RFC 3339"),
            "{error}"
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(toml_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            toml_string_list(&["x".into(), "y".into()]),
            "[\"x\", \"y\"]"
        );
    }
}
