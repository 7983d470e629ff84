//! The fake Linear's answers to the operations the daemon's intake polls with: `IssueChanges`
//! (stamps updated after `$since`, archived issues only when the document asks for them),
//! `ProjectIssueStamps` (stamps by state name) and `IssueSummariesByIds` (issues with
//! `labelIds` and their nested relations cut to the document's page size).

use serde_json::{Value, json};

use super::{
    FakeIssue, World, first_var, nested_page, offset_of, page, relations_json, state_json,
    string_var, team_by_key,
};

/// Milliseconds of an RFC 3339 time the fake wrote or was sent.
fn ms(text: &str) -> Result<u64, String> {
    maestro::clock::parse_rfc3339(text).ok_or_else(|| format!("`{text}` is not an RFC 3339 time"))
}

fn stamp_json(issue: &FakeIssue) -> Value {
    json!({"id": issue.id, "updatedAt": issue.updated_at})
}

/// A page of stamps of `matching`, ordered by `order` (ascending).
fn stamps_page(
    mut matching: Vec<&FakeIssue>,
    variables: &Value,
    order: impl Fn(&FakeIssue) -> u64,
) -> Result<Value, String> {
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    matching.sort_by_key(|issue| (order(issue), issue.identifier.clone()));
    let (nodes, info) = page(&matching, offset, first);
    let nodes: Vec<Value> = nodes.into_iter().map(stamp_json).collect();
    Ok(json!({"issues": {"pageInfo": info, "nodes": nodes}}))
}

pub fn issue_changes(world: &World, query: &str, variables: &Value) -> Result<Value, String> {
    let slug = string_var(variables, "slugId")?;
    let since = ms(string_var(variables, "since")?)?;
    if !query.contains("orderBy: updatedAt") {
        return Err("changes must be ordered by updatedAt".into());
    }
    let archived = query.contains("includeArchived: true");
    let mut matching = Vec::new();
    for issue in &world.issues {
        if issue.project_slug.as_deref() == Some(slug)
            && (archived || !issue.archived)
            && ms(&issue.updated_at)? > since
        {
            matching.push(issue);
        }
    }
    stamps_page(matching, variables, |issue| {
        ms(&issue.updated_at).unwrap_or(0)
    })
}

pub fn project_issue_stamps(world: &World, variables: &Value) -> Result<Value, String> {
    let slug = string_var(variables, "slugId")?;
    let Some(states) = variables["stateNames"].as_array() else {
        return Err("variable $stateNames must be a [String!]!".into());
    };
    let states: Vec<&str> = states.iter().filter_map(Value::as_str).collect();
    if states.is_empty() {
        return Err("variable $stateNames is empty".into());
    }
    let matching: Vec<&FakeIssue> = world
        .issues
        .iter()
        .filter(|issue| {
            issue.project_slug.as_deref() == Some(slug)
                && !issue.archived
                && states.contains(&issue.state.as_str())
        })
        .collect();
    stamps_page(matching, variables, |issue| {
        ms(&issue.created_at).unwrap_or(0)
    })
}

/// A label's id as Linear would give it: the team's or workspace label of that exact name,
/// else an id of a label this team cannot use (the client must name it another way).
fn label_id(world: &World, issue: &FakeIssue, name: &str) -> String {
    team_by_key(world, &issue.team_key)
        .labels
        .iter()
        .chain(&world.workspace_labels)
        .find(|(_, label)| label == name)
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| format!("label-elsewhere-{name}"))
}

pub fn issue_summaries(world: &World, query: &str, variables: &Value) -> Result<Value, String> {
    let Some(ids) = variables["ids"].as_array() else {
        return Err("variable $ids must be a [ID!]!".into());
    };
    let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
    let first = first_var(variables)?;
    if first != ids.len() {
        return Err(format!(
            "$first ({first}) should equal the number of ids ({})",
            ids.len()
        ));
    }
    let relation_page = nested_page(query, "inverseRelations");
    let nodes: Vec<Value> = world
        .issues
        .iter()
        .filter(|issue| !issue.archived && ids.contains(&issue.id.as_str()))
        .map(|issue| {
            let team = team_by_key(world, &issue.team_key);
            let relations = relations_json(world, issue);
            json!({
                "id": issue.id,
                "identifier": issue.identifier,
                "title": issue.title,
                "priority": issue.priority,
                "url": format!("https://linear.app/fake/issue/{}", issue.identifier),
                "branchName": format!("fake/{}", issue.identifier.to_lowercase()),
                "createdAt": issue.created_at,
                "updatedAt": issue.updated_at,
                "labelIds": issue.labels.iter().map(|name| label_id(world, issue, name)).collect::<Vec<_>>(),
                "state": state_json(world, issue),
                "team": {"id": team.id, "key": team.key},
                "project": issue.project_slug.as_ref().map(|slug| json!({"slugId": slug})),
                "inverseRelations": {
                    "pageInfo": {"hasNextPage": relations.len() > relation_page},
                    "nodes": relations.into_iter().take(relation_page).collect::<Vec<_>>(),
                },
            })
        })
        .collect();
    Ok(json!({"issues": {"nodes": nodes}}))
}
