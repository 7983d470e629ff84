//! The doctor's checks that ask the tracker and GitHub: the Linear key (`viewer`), the project,
//! the states and labels WORKFLOW.md names, and whether the GitHub token can read `origin`.
//!
//! Read-only queries through [`crate::tracker`] and [`crate::github`], the same clients and
//! endpoints a run uses. With `--offline` they are skipped, except for a local tracker, whose
//! "project" is a directory of files.

use super::{Outcome, did_you_mean, project_slug};
use crate::config::{Provider, ServiceConfig};
use crate::github;
use crate::settings::Settings;
use crate::tracker::{self, ProjectScope, Tracker, linear};
use crate::workflow::{HandoffMode, Workflow};

/// What the remote checks build on.
#[derive(Debug)]
pub struct Facts<'a> {
    pub config: &'a ServiceConfig,
    /// `None` when WORKFLOW.md failed its check.
    pub settings: Option<&'a Settings>,
    /// `repo_root`'s origin URL, when the repository check found one.
    pub origin: Option<&'a str>,
    pub offline: bool,
}

/// `linear key`, `project`, `states` and `labels`, in that order; each later one is skipped
/// when an earlier one failed.
pub fn tracker(facts: &Facts<'_>) -> Vec<(&'static str, Outcome)> {
    let mut checks = Vec::new();
    let rest = ["project", "states", "labels"];
    let skip_rest = |checks: &mut Vec<(&'static str, Outcome)>, reason: &str| {
        for name in rest {
            checks.push((name, Outcome::Skip(reason.to_string())));
        }
    };
    let config = facts.config;
    let Some(slug) = project_slug(config, facts.settings) else {
        checks.push((
            "linear key",
            Outcome::Skip("needs the project slug (see workflow)".into()),
        ));
        skip_rest(&mut checks, "needs the project slug (see workflow)");
        return checks;
    };
    let client: Box<dyn Tracker> = match config.tracker.provider {
        Provider::Local => {
            checks.push((
                "linear key",
                Outcome::Skip("the tracker is local: issue files, no Linear".into()),
            ));
            match tracker::open(config, slug) {
                Ok(local) => local,
                Err(error) => {
                    checks.push((
                        "project",
                        Outcome::fail(
                            error.to_string(),
                            format!(
                                "set [tracker] issues_dir in {} to the directory of issue files",
                                config.path.display()
                            ),
                        ),
                    ));
                    checks.push(("states", Outcome::Skip("needs the project".into())));
                    checks.push(("labels", Outcome::Skip("needs the project".into())));
                    return checks;
                }
            }
        }
        Provider::Linear if facts.offline => {
            checks.push(("linear key", Outcome::Skip("--offline".into())));
            skip_rest(&mut checks, "--offline");
            return checks;
        }
        Provider::Linear => {
            let variable = config
                .tracker
                .api_key_env_var
                .clone()
                .unwrap_or_else(|| "LINEAR_API_KEY".into());
            let Some(key) = std::env::var(&variable)
                .ok()
                .filter(|value| !value.trim().is_empty())
            else {
                let reason = format!("{variable} is unset (see secret {variable})");
                checks.push(("linear key", Outcome::Skip(reason.clone())));
                skip_rest(&mut checks, &reason);
                return checks;
            };
            let options = linear::Options::new(&config.tracker.api_url, linear::ApiKey::new(key));
            let client = linear::Client::new(options, slug);
            let outcome = linear_key(&client, &variable, config);
            let failed = !outcome.is_ok();
            checks.push(("linear key", outcome));
            if failed {
                skip_rest(&mut checks, "needs a working Linear key");
                return checks;
            }
            Box::new(client)
        }
    };
    let scope = match client.project() {
        Ok(scope) => scope,
        Err(error) => {
            checks.push(("project", project_failure(&error, slug, config)));
            checks.push(("states", Outcome::Skip("needs the project".into())));
            checks.push(("labels", Outcome::Skip("needs the project".into())));
            return checks;
        }
    };
    checks.push(("project", project_found(&scope)));
    match facts.settings {
        Some(settings) => {
            let (states, labels) = names(client.as_ref(), &scope, &settings.workflow);
            checks.push(("states", states));
            checks.push(("labels", labels));
        }
        None => {
            let reason = "needs a valid WORKFLOW.md, which names them (see workflow)";
            checks.push(("states", Outcome::Skip(reason.into())));
            checks.push(("labels", Outcome::Skip(reason.into())));
        }
    }
    checks
}

fn linear_key(client: &linear::Client, variable: &str, config: &ServiceConfig) -> Outcome {
    match client.viewer() {
        Ok(viewer) => Outcome::Ok(format!(
            "valid: {variable} authenticates as {}",
            viewer.name
        )),
        Err(error @ tracker::Error::Auth { .. }) => Outcome::fail(
            error.to_string(),
            format!(
                "create a personal API key in Linear (Settings, Security & access) and export it as {variable}"
            ),
        ),
        Err(error) if error.category() == tracker::Category::Transport => Outcome::fail(
            error.to_string(),
            format!(
                "Linear is unreachable from here; [tracker] api_url in {} is {}",
                config.path.display(),
                config.tracker.api_url
            ),
        ),
        Err(error) => Outcome::fail(
            error.to_string(),
            "try again; if it persists, check Linear's status page",
        ),
    }
}

fn project_failure(error: &tracker::Error, slug: &str, config: &ServiceConfig) -> Outcome {
    match error {
        tracker::Error::ProjectNotFound { .. } => Outcome::fail(
            format!("no project with slug id \"{slug}\" is visible to this key"),
            format!(
                "set project_slug (in {} or WORKFLOW.md) to the end of the project's URL, https://linear.app/<team>/project/<name>-<slugId>, and check that the key's user can see the project",
                config.path.display()
            ),
        ),
        other => Outcome::Fail {
            problem: other.to_string(),
            fix: None,
        },
    }
}

fn project_found(scope: &ProjectScope) -> Outcome {
    let teams: Vec<&str> = scope.teams.iter().map(|team| team.key.as_str()).collect();
    if teams.is_empty() {
        return Outcome::fail(
            format!("project {} belongs to no team", scope.name),
            "add the project to the team whose issues Maestro should work on",
        );
    }
    Outcome::Ok(format!(
        "{} (slug id {}; teams {})",
        scope.name,
        scope.slug_id,
        teams.join(", ")
    ))
}

/// The states and labels WORKFLOW.md names, judged against each team of the project.
fn names(tracker: &dyn Tracker, scope: &ProjectScope, workflow: &Workflow) -> (Outcome, Outcome) {
    let policy = &workflow.tracker;
    let mut states: Vec<(&str, String)> = Vec::new();
    for state in &policy.startable_states {
        states.push(("tracker.startable_states", state.clone()));
    }
    for state in &policy.terminal_states {
        states.push(("tracker.terminal_states", state.clone()));
    }
    states.push((
        "tracker.in_progress_state",
        policy.in_progress_state.clone(),
    ));
    states.push(("tracker.success_state", policy.success_state.clone()));
    if let Some(state) = &policy.completed_state {
        states.push(("tracker.completed_state", state.clone()));
    }
    states.push(("tracker.failure_state", policy.failure_state.clone()));
    for (state, _) in &workflow.execution.max_concurrent_agents_by_state {
        states.push(("execution.max_concurrent_agents_by_state", state.clone()));
    }
    let labels = [
        ("tracker.opt_out_label", policy.opt_out_label.clone()),
        (
            "tracker.needs_attention_label",
            policy.needs_attention_label.clone(),
        ),
    ];
    let mut missing_states = Vec::new();
    let mut missing_labels = Vec::new();
    for team in &scope.teams {
        let metadata = match tracker.team_metadata(&team.id) {
            Ok(metadata) => metadata,
            Err(error) => {
                let failure = Outcome::Fail {
                    problem: format!("cannot read team {}: {error}", team.key),
                    fix: None,
                };
                return (failure.clone(), failure);
            }
        };
        let state_names: Vec<String> = metadata.states.iter().map(|s| s.name.clone()).collect();
        for (field, name) in &states {
            if metadata.state(name).is_err() {
                missing_states.push(format!(
                    "team {} has no state \"{}\" ({field}){}",
                    team.key,
                    name.trim(),
                    did_you_mean(name, &state_names)
                ));
            }
        }
        let label_names: Vec<String> = metadata.labels.iter().map(|l| l.name.clone()).collect();
        for (field, name) in &labels {
            if metadata.label(name).is_err() {
                missing_labels.push(format!(
                    "no label \"{}\" ({field}) is usable on team {}'s issues{}",
                    name.trim(),
                    team.key,
                    did_you_mean(name, &label_names)
                ));
            }
        }
    }
    let teams: Vec<&str> = scope.teams.iter().map(|team| team.key.as_str()).collect();
    let states = if missing_states.is_empty() {
        Outcome::Ok(format!(
            "all {} states WORKFLOW.md names exist in team {}",
            distinct(&states),
            teams.join(", ")
        ))
    } else {
        Outcome::fail(
            missing_states.join("\n"),
            "correct the name in WORKFLOW.md, or create the state in the team's workflow settings",
        )
    };
    let labels = if missing_labels.is_empty() {
        Outcome::Ok(format!(
            "{} and {} are usable in team {}",
            labels[0].1,
            labels[1].1,
            teams.join(", ")
        ))
    } else {
        Outcome::fail(
            missing_labels.join("\n"),
            "create the label (a workspace label serves every team), or correct the name in WORKFLOW.md",
        )
    };
    (states, labels)
}

/// How many different names (compared as the contract compares them) a list holds.
fn distinct(named: &[(&str, String)]) -> usize {
    let mut seen: Vec<String> = Vec::new();
    for (_, name) in named {
        let key = name.trim().to_lowercase();
        if !seen.contains(&key) {
            seen.push(key);
        }
    }
    seen.len()
}

/// The GitHub token can read the repository `origin` names (pull-request handoffs only).
pub fn github(facts: &Facts<'_>) -> Outcome {
    let config = facts.config;
    let Some(settings) = facts.settings else {
        return Outcome::Skip(
            "needs a valid WORKFLOW.md, which says whether GitHub is used".into(),
        );
    };
    if settings.workflow.handoff == HandoffMode::Branch {
        return Outcome::Skip(
            "WORKFLOW.md says [handoff] mode = \"branch\": handoffs are checked with git, not GitHub"
                .into(),
        );
    }
    let Some(variable) = &config.github.token_env_var else {
        return Outcome::fail(
            "no [github] token_env_var, but WORKFLOW.md hands off pull requests, which are checked through GitHub",
            format!(
                "add [github] token_env_var = \"GITHUB_TOKEN\" to {} and export that variable, or set [handoff] mode = \"branch\" in WORKFLOW.md",
                config.path.display()
            ),
        );
    };
    if facts.offline {
        return Outcome::Skip("--offline".into());
    }
    let Some(token) = std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
    else {
        return Outcome::Skip(format!("{variable} is unset (see secret {variable})"));
    };
    let Some(origin) = facts.origin else {
        return Outcome::Skip("needs repo_root's origin (see repo_root)".into());
    };
    let Some(repo) = github::parse_remote(origin) else {
        return Outcome::fail(
            format!(
                "origin {} is not a GitHub repository URL",
                github::without_userinfo(origin)
            ),
            "set origin to the GitHub repository (https://github.com/OWNER/REPO.git or git@github.com:OWNER/REPO.git), or set [handoff] mode = \"branch\" in WORKFLOW.md",
        );
    };
    let client = github::Client::new(&config.github.api_url, token);
    match client.repository(&repo) {
        Ok(found) => {
            let access = match found.can_push {
                Some(false) => "; it cannot push, which Maestro does not need",
                _ => "",
            };
            Outcome::Ok(format!(
                "{variable} can read {}{access}",
                github::shown(&found.full_name)
            ))
        }
        Err(error @ (github::Error::Auth { .. } | github::Error::NotFound { .. })) => {
            Outcome::fail(
                format!("{error} (the token cannot read {})", repo.full_name()),
                format!(
                    "give the token in {variable} read access to {} (fine-grained: Contents and Pull requests, read), or check repo_root's origin",
                    repo.full_name()
                ),
            )
        }
        Err(error) => Outcome::fail(
            error.to_string(),
            format!(
                "check [github] api_url in {} ({}) and this host's network",
                config.path.display(),
                config.github.api_url
            ),
        ),
    }
}
