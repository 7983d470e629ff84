//! WORKFLOW.md text → [`Workflow`]: front matter split, field reading, cross-field rules.
//!
//! Spans from the TOML parser are relative to the front matter; every diagnostic is moved back
//! into file coordinates so line numbers match what the operator sees in an editor.

use std::path::{Path, PathBuf};

use toml::Spanned;

use super::agent::read_agent;
use super::review::{check_review, read_review};
use super::{
    AgentStyle, Error, Execution, HandoffMode, Hooks, ReviewPolicy, SUPPORTED_VERSION,
    TrackerPolicy, Workflow, same_state,
};
use crate::config::{Provider, repo_relative};
use crate::toml_fields::{self, Diagnostic, Problem, Table};

/// Tables the contract defines; others are warnings, kept for forward compatibility.
const KNOWN_TABLES: [&str; 7] = [
    "tracker",
    "agent",
    "execution",
    "context",
    "hooks",
    "review",
    "handoff",
];

/// The largest `max_concurrent_agents` (and so per-state cap) accepted.
const MAX_CONCURRENT_AGENTS: u32 = 256;

/// Keys that would set Codex execution policy. Maestro never injects policy: the child inherits
/// the Codex runtime's own sandbox and approval settings, which the operator controls there.
const POLICY_KEYS: [&str; 7] = [
    "sandbox",
    "sandbox_mode",
    "sandbox_policy",
    "sandboxPolicy",
    "approval_policy",
    "approvalPolicy",
    "approvals",
];

/// Parses WORKFLOW.md text that came from `path`.
pub fn parse(path: &Path, text: &str, repo_root: &Path) -> Result<Workflow, Error> {
    let split =
        split_front_matter(text).map_err(|problem| invalid(path, text, 0, vec![problem]))?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let fields = match split.front_matter {
        None => Fields::default(),
        Some(front_matter) => {
            let document = toml_fields::parse(front_matter)
                .map_err(|problem| invalid(path, text, split.base, vec![problem]))?;
            toml_fields::find_secrets(&document, &mut problems);
            read_fields(&document, repo_root, &mut problems, &mut warnings)
        }
    };
    let body_problems = body_secrets(split.body);
    let body_base = split.body_base;
    let mut diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|problem| Diagnostic::locate(text, split.base, problem))
        .chain(
            body_problems
                .into_iter()
                .map(|problem| Diagnostic::locate(text, body_base, problem)),
        )
        .collect();
    if !diagnostics.is_empty() {
        diagnostics.sort_by_key(|d| (d.position.line, d.position.column));
        return Err(Error::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        });
    }
    Ok(Workflow {
        path: path.to_path_buf(),
        tracker: fields.tracker,
        agent: fields.agent,
        execution: fields.execution,
        read_first: fields.read_first,
        hooks: fields.hooks,
        review: fields.review,
        handoff: fields.handoff,
        body: split.body.trim().to_string(),
        warnings,
        source: text.to_string(),
    })
}

fn invalid(path: &Path, text: &str, base: usize, problems: Vec<Problem>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        diagnostics: problems
            .into_iter()
            .map(|problem| Diagnostic::locate(text, base, problem))
            .collect(),
    }
}

struct Split<'a> {
    /// The TOML between the `+++` lines, when present.
    front_matter: Option<&'a str>,
    /// Byte offset of the front matter in the file.
    base: usize,
    body: &'a str,
    body_base: usize,
}

fn split_front_matter(text: &str) -> Result<Split<'_>, Problem> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[bom..];
    let first_line = rest.lines().next().unwrap_or("");
    if first_line.trim_end() == "---" {
        return Err(Problem {
            span: bom..bom,
            field: String::new(),
            message: "YAML front matter (---) is not supported; put TOML between +++ lines".into(),
        });
    }
    if first_line.trim_end() != "+++" {
        return Ok(Split {
            front_matter: None,
            base: 0,
            body: text,
            body_base: 0,
        });
    }
    let start = bom + first_line.len() + line_ending_len(&rest[first_line.len()..]);
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        if line.trim_end() == "+++" {
            let body_base = offset + line.len();
            return Ok(Split {
                front_matter: Some(&text[start..offset]),
                base: start,
                body: &text[body_base..],
                body_base,
            });
        }
        offset += line.len();
    }
    Err(Problem {
        span: bom..bom,
        field: String::new(),
        message: "front matter opened with +++ is never closed; add a line with +++ after it"
            .into(),
    })
}

fn line_ending_len(rest: &str) -> usize {
    if rest.starts_with("\r\n") {
        2
    } else {
        usize::from(rest.starts_with('\n'))
    }
}

fn body_secrets(body: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if let Some(prefix) = toml_fields::secret_prefix(line) {
            problems.push(Problem {
                span: offset..offset,
                field: String::new(),
                message: format!(
                    "the instructions contain what looks like a literal token (`{prefix}…`); remove it: the agent must never see secrets"
                ),
            });
        }
        offset += line.len();
    }
    problems
}

/// Everything read from the front matter, defaults applied.
struct Fields {
    tracker: TrackerPolicy,
    agent: AgentStyle,
    execution: Execution,
    read_first: Vec<PathBuf>,
    hooks: Hooks,
    review: ReviewPolicy,
    handoff: HandoffMode,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            tracker: default_tracker(),
            agent: AgentStyle::default(),
            execution: Execution::default(),
            read_first: Vec::new(),
            hooks: Hooks::default(),
            review: ReviewPolicy::default(),
            handoff: HandoffMode::default(),
        }
    }
}

fn default_tracker() -> TrackerPolicy {
    TrackerPolicy {
        provider: None,
        project_slug: None,
        startable_states: vec!["Todo".into()],
        terminal_states: vec!["Done".into(), "Canceled".into(), "Duplicate".into()],
        in_progress_state: "In Progress".into(),
        success_state: "In Review".into(),
        completed_state: Some("Done".into()),
        failure_state: "Todo".into(),
        opt_out_label: "maestro:manual-only".into(),
        needs_attention_label: "maestro:needs-attention".into(),
    }
}

fn read_fields(
    document: &Spanned<toml::de::DeTable<'_>>,
    repo_root: &Path,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Fields {
    let mut root = Table::root(document);
    match root.integer("version", problems) {
        None if !root.contains("version") => problems.push(Problem {
            span: 0..0,
            field: "version".into(),
            message: format!("missing required key `version`; add `version = {SUPPORTED_VERSION}`"),
        }),
        None => {}
        Some(version) if *version.get_ref() != SUPPORTED_VERSION => problems.push(Problem {
            span: version.span(),
            field: "version".into(),
            message: format!(
                "unsupported version {}; this maestro understands version {SUPPORTED_VERSION}",
                version.get_ref()
            ),
        }),
        Some(_) => {}
    }
    reject_policy_keys(&mut root, problems);
    let mut fields = Fields::default();
    if let Some(mut table) = root.table("tracker", problems) {
        read_tracker(&mut table, &mut fields.tracker, problems);
        reject_policy_keys(&mut table, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("agent", problems) {
        read_agent(&mut table, &mut fields.agent, problems);
        reject_policy_keys(&mut table, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("execution", problems) {
        read_execution(&mut table, &mut fields.execution, problems);
        reject_policy_keys(&mut table, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("context", problems) {
        fields.read_first = read_context(&mut table, repo_root, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("hooks", problems) {
        read_hooks(&mut table, &mut fields.hooks, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("review", problems) {
        read_review(&mut table, &mut fields.review, problems);
        table.finish(problems);
    }
    if let Some(mut table) = root.table("handoff", problems) {
        if let Some(mode) = read_handoff(&mut table, problems) {
            fields.handoff = mode;
        }
        table.finish(problems);
    }
    // Unknown tables are tolerated for forward compatibility; unknown plain keys are typos.
    for unasked in root.unasked() {
        if unasked.is_table {
            warnings.push(format!(
                "unknown table [{}] ignored (known tables: {})",
                toml_fields::redact_secrets(&unasked.key),
                KNOWN_TABLES.join(", ")
            ));
        } else {
            problems.push(root.unknown_key(&unasked));
        }
    }
    check_states(&fields.tracker, document, problems);
    let span_of = |table: &str, key: &str| value_span(document, table, key);
    check_review(
        &fields.tracker,
        &fields.review,
        fields.handoff,
        &span_of,
        problems,
    );
    fields
}

/// The span of `[table] key`'s value, or the start of the document when it is absent.
fn value_span(
    document: &Spanned<toml::de::DeTable<'_>>,
    table: &str,
    key: &str,
) -> std::ops::Range<usize> {
    document
        .get_ref()
        .iter()
        .find(|(name, _)| name.get_ref() == table)
        .and_then(|(_, value)| value.get_ref().as_table())
        .and_then(|entries| {
            entries
                .iter()
                .find(|(name, _)| name.get_ref() == key)
                .map(|(_, value)| value.span())
        })
        .unwrap_or(0..0)
}

fn reject_policy_keys(table: &mut Table<'_, '_>, problems: &mut Vec<Problem>) {
    for key in POLICY_KEYS {
        if let Some(span) = table.value_span(key) {
            problems.push(Problem {
                span,
                field: table.field(key),
                message: "sandbox and approval policy cannot be set in WORKFLOW.md: execution policy is inherited from the Codex runtime's own configuration".into(),
            });
        }
    }
}

fn state_list(
    table: &mut Table<'_, '_>,
    key: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<String>> {
    let list = table.string_list(key, problems)?;
    if list.get_ref().is_empty() {
        problems.push(Problem {
            span: list.span(),
            field: table.field(key),
            message: "must name at least one state".into(),
        });
        return None;
    }
    let mut names = Vec::new();
    for (index, item) in list.get_ref().iter().enumerate() {
        let name = item.get_ref().trim();
        if name.is_empty() {
            problems.push(Problem {
                span: item.span(),
                field: format!("{}[{index}]", table.field(key)),
                message: "state name must not be empty".into(),
            });
        } else {
            names.push(name.to_string());
        }
    }
    Some(names)
}

fn read_tracker(
    table: &mut Table<'_, '_>,
    tracker: &mut TrackerPolicy,
    problems: &mut Vec<Problem>,
) {
    if let Some(provider) = table.string("provider", problems) {
        match Provider::from_name(provider.get_ref()) {
            Some(known) => tracker.provider = Some(known),
            None => problems.push(Problem {
                span: provider.span(),
                field: table.field("provider"),
                message: format!(
                    "unknown tracker provider `{}`; expected \"linear\" or \"local\"",
                    provider.get_ref().trim()
                ),
            }),
        }
    }
    if let Some(slug) = table.string("project_slug", problems) {
        if slug.get_ref().trim().is_empty() {
            problems.push(Problem {
                span: slug.span(),
                field: table.field("project_slug"),
                message: "must not be empty; omit the key instead".into(),
            });
        } else {
            tracker.project_slug = Some(slug.get_ref().trim().to_string());
        }
    }
    if let Some(states) = state_list(table, "startable_states", problems) {
        tracker.startable_states = states;
    }
    let terminal = state_list(table, "terminal_states", problems);
    if let Some(states) = terminal {
        tracker.terminal_states = states;
    }
    if let Some(state) = table.non_empty(
        "in_progress_state",
        "state name must not be empty",
        problems,
    ) {
        tracker.in_progress_state = state;
    }
    if let Some(state) = table.non_empty("success_state", "state name must not be empty", problems)
    {
        tracker.success_state = state;
    }
    tracker.completed_state =
        match table.non_empty("completed_state", "state name must not be empty", problems) {
            Some(state) => Some(state),
            None => tracker
                .terminal_states
                .iter()
                .find(|state| same_state(state, "Done"))
                .cloned(),
        };
    if let Some(state) = table.non_empty("failure_state", "state name must not be empty", problems)
    {
        tracker.failure_state = state;
    }
    if let Some(label) = table.non_empty("opt_out_label", "label name must not be empty", problems)
    {
        tracker.opt_out_label = label;
    }
    if let Some(label) = table.non_empty(
        "needs_attention_label",
        "label name must not be empty",
        problems,
    ) {
        tracker.needs_attention_label = label;
    }
}

pub(super) fn positive(
    table: &mut Table<'_, '_>,
    key: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    let value = table.integer(key, problems)?;
    match u64::try_from(*value.get_ref()) {
        Ok(number) if number >= 1 => Some(number),
        _ => {
            problems.push(Problem {
                span: value.span(),
                field: table.field(key),
                message: format!("must be at least 1, got {}", value.get_ref()),
            });
            None
        }
    }
}

fn small(number: u64) -> u32 {
    u32::try_from(number).unwrap_or(u32::MAX)
}

fn read_execution(
    table: &mut Table<'_, '_>,
    execution: &mut Execution,
    problems: &mut Vec<Problem>,
) {
    if let Some(n) = positive(table, "max_attempts", problems) {
        execution.max_attempts = small(n);
    }
    if let Some(n) = positive(table, "max_turns", problems) {
        execution.max_turns = small(n);
    }
    if let Some(n) = positive(table, "max_retry_backoff_ms", problems) {
        execution.max_retry_backoff_ms = n;
    }
    // Each slot is a lock file that every dispatch scans: a huge cap is a typo that would make
    // every tick walk billions of files, not a wish for that many agents.
    let mut global_ok = true;
    if let Some(value) = table.integer("max_concurrent_agents", problems) {
        match u32::try_from(*value.get_ref()) {
            Ok(n) if (1..=MAX_CONCURRENT_AGENTS).contains(&n) => {
                execution.max_concurrent_agents = n;
            }
            _ => {
                global_ok = false;
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("max_concurrent_agents"),
                    message: format!(
                        "must be between 1 and {MAX_CONCURRENT_AGENTS} (each slot is a lock file scanned at every dispatch), got {}",
                        value.get_ref()
                    ),
                });
            }
        }
    }
    if let Some(entries) = table.integer_map("max_concurrent_agents_by_state", problems) {
        let field = table.field("max_concurrent_agents_by_state");
        for (state, cap) in entries {
            let name = state.get_ref().trim();
            if name.is_empty() {
                problems.push(Problem {
                    span: state.span(),
                    field: field.clone(),
                    message: "state name must not be empty".into(),
                });
                continue;
            }
            // A rejected global cap is reported once; the per-state caps are then held to the
            // absolute bound only, not to a default the operator never wrote.
            let global = if global_ok {
                execution.max_concurrent_agents
            } else {
                MAX_CONCURRENT_AGENTS
            };
            match u32::try_from(*cap.get_ref()) {
                Ok(limit) if limit >= 1 && limit <= global => {
                    execution.max_concurrent_agents_by_state.push((name.to_string(), limit))
                }
                Ok(limit) if limit > global && !global_ok => problems.push(Problem {
                    span: cap.span(),
                    field: format!("{field}.{name}"),
                    message: format!("must be at most {MAX_CONCURRENT_AGENTS}, got {limit}"),
                }),
                Ok(limit) if limit > global => problems.push(Problem {
                    span: cap.span(),
                    field: format!("{field}.{name}"),
                    message: format!(
                        "cap {limit} exceeds execution.max_concurrent_agents ({global}); lower it or raise the global cap"
                    ),
                }),
                _ => problems.push(Problem {
                    span: cap.span(),
                    field: format!("{field}.{name}"),
                    message: format!("must be at least 1, got {}", cap.get_ref()),
                }),
            }
        }
    }
    if let Some(commands) = table.string_list("validation_commands", problems) {
        let field = table.field("validation_commands");
        for (index, command) in commands.get_ref().iter().enumerate() {
            if command.get_ref().trim().is_empty() {
                problems.push(Problem {
                    span: command.span(),
                    field: format!("{field}[{index}]"),
                    message: "validation command must not be empty".into(),
                });
            } else {
                execution
                    .validation_commands
                    .push(command.get_ref().trim().to_string());
            }
        }
    }
    if let Some(budget) = positive(table, "token_budget", problems) {
        execution.token_budget = Some(budget);
    }
    if let Some(ms) = positive(table, "validation_timeout_ms", problems) {
        execution.validation_timeout_ms = ms;
    }
}

fn read_context(
    table: &mut Table<'_, '_>,
    repo_root: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<PathBuf> {
    let Some(list) = table.string_list("read_first", problems) else {
        return Vec::new();
    };
    let field = table.field("read_first");
    let mut files = Vec::new();
    for (index, item) in list.get_ref().iter().enumerate() {
        let field = format!("{field}[{index}]");
        match repo_relative(item.get_ref()) {
            Err(reason) => problems.push(Problem {
                span: item.span(),
                field,
                message: reason,
            }),
            Ok(relative) if !repo_root.join(&relative).is_file() => problems.push(Problem {
                span: item.span(),
                field,
                message: format!(
                    "`{}` does not exist under {}; fix the path or remove the entry",
                    item.get_ref(),
                    repo_root.display()
                ),
            }),
            Ok(relative) => files.push(relative),
        }
    }
    files
}

fn read_hooks(table: &mut Table<'_, '_>, hooks: &mut Hooks, problems: &mut Vec<Problem>) {
    let mut script = |table: &mut Table<'_, '_>, key: &'static str| {
        let value = table.string(key, problems)?;
        if value.get_ref().trim().is_empty() {
            problems.push(Problem {
                span: value.span(),
                field: table.field(key),
                message: "hook script must not be empty; omit the key instead".into(),
            });
            return None;
        }
        Some(value.into_inner())
    };
    hooks.after_create = script(table, "after_create");
    hooks.before_run = script(table, "before_run");
    hooks.after_run = script(table, "after_run");
    hooks.before_remove = script(table, "before_remove");
    if let Some(ms) = positive(table, "timeout_ms", problems) {
        hooks.timeout_ms = ms;
    }
}

fn read_handoff(table: &mut Table<'_, '_>, problems: &mut Vec<Problem>) -> Option<HandoffMode> {
    let value = table.string("mode", problems)?;
    let mode = HandoffMode::from_name(value.get_ref());
    if mode.is_none() {
        problems.push(Problem {
            span: value.span(),
            field: table.field("mode"),
            message: format!(
                "unknown handoff mode `{}`; expected \"pull_request\" (a GitHub pull request) or \"branch\" (a branch pushed to origin, any git server)",
                value.get_ref().trim()
            ),
        });
    }
    mode
}

/// Cross-field state rules: nothing both startable and terminal, and the in-progress state
/// distinct from both (otherwise a claimed issue would be reselected or look finished).
fn check_states(
    tracker: &TrackerPolicy,
    document: &Spanned<toml::de::DeTable<'_>>,
    problems: &mut Vec<Problem>,
) {
    let span_of = |key: &str| value_span(document, "tracker", key);
    for state in &tracker.startable_states {
        if tracker.is_terminal(state) {
            problems.push(Problem {
                span: span_of("startable_states"),
                field: "tracker.startable_states".into(),
                message: format!(
                    "state `{state}` is both startable and terminal; remove it from one of the lists"
                ),
            });
        }
    }
    let in_progress = &tracker.in_progress_state;
    if tracker.is_startable(in_progress) || tracker.is_terminal(in_progress) {
        problems.push(Problem {
            span: span_of("in_progress_state"),
            field: "tracker.in_progress_state".into(),
            message: format!(
                "`{in_progress}` is also a startable or terminal state; a claimed issue must be distinguishable"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_front(front_matter: &str) -> Result<Workflow, Error> {
        parse(
            Path::new("/w/WORKFLOW.md"),
            &format!("+++\n{front_matter}+++\nbody\n"),
            Path::new("/w"),
        )
    }

    #[test]
    fn handoff_mode_defaults_to_pull_request_and_accepts_branch() {
        assert_eq!(
            parse_front("version = 1\n").unwrap().handoff,
            HandoffMode::PullRequest
        );
        assert_eq!(
            parse_front("version = 1\n[handoff]\nmode = \"pull_request\"\n")
                .unwrap()
                .handoff,
            HandoffMode::PullRequest
        );
        assert_eq!(
            parse_front("version = 1\n[handoff]\nmode = \"branch\"\n")
                .unwrap()
                .handoff,
            HandoffMode::Branch
        );
        assert_eq!(
            parse(Path::new("/w/WORKFLOW.md"), "body only", Path::new("/w"))
                .unwrap()
                .handoff,
            HandoffMode::PullRequest
        );
    }

    #[test]
    fn an_unknown_handoff_mode_or_key_names_the_field_and_line() {
        let error = parse_front("version = 1\n[handoff]\nmode = \"gerrit\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("WORKFLOW.md:4:8: field `handoff.mode`: unknown handoff mode `gerrit`; expected \"pull_request\""),
            "{error}"
        );
        let error = parse_front("version = 1\n[handoff]\nmod = \"branch\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`handoff.mod`"), "{error}");
        let workflow = parse_front("version = 1\n[handoff]\nmode = \"branch\"\n").unwrap();
        assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
    }
}
