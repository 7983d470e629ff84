//! A fake Linear GraphQL API on top of [`FakeHttp`]: an in-memory workspace (one project, its
//! teams, states, labels and issues) served schema-true for the operations Maestro sends.
//!
//! It dispatches on `operationName`, checks that the document really defines that operation,
//! that the variables are well-formed and that the query's complexity is within Linear's limit
//! (bad ones answer HTTP 400 with a GraphQL error, as Linear does, and are kept in
//! [`FakeLinear::violations`]), pages through issues with opaque cursors, honours the page
//! sizes the document gives nested label and relation lists, applies mutations to its state so tests can look at the result, records every
//! request, and injects faults on demand. The live-run tests reuse it, so mutations are
//! visible through [`FakeLinear::issue`] and [`FakeLinear::comments`].
//!
//! Like Linear, it charges every request against the key's hourly budget and sends the cost
//! and budget headers with every answer (`fake_linear_budget.rs`); it refuses what the budget
//! cannot pay only when [`FakeLinear::enforce_budget`] asks it to. Its clock (real, or a test's
//! virtual one) stamps `updatedAt` on every change, [`FakeLinear::edit`] included, as Linear
//! does, so the daemon's "what changed?" question sees edits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::fake_http::{FakeHttp, Recorded, Reply};

// Paths relative to this file, so the benchmarks that include this file by path find them too.
#[path = "fake_linear_budget.rs"]
pub mod budget;
#[path = "linear_complexity.rs"]
pub mod linear_complexity;
#[path = "fake_linear_polls.rs"]
mod polls;
#[path = "fake_linear_world.rs"]
mod world;

pub use budget::{Clock, Cost};
pub use world::{FakeComment, FakeIssue, FakeTeam, SLUG_ID, World};

/// The API key the fake accepts.
pub const API_KEY: &str = "lin_test_fake_key";

/// The name of the user [`API_KEY`] authenticates as (`viewer`).
pub const VIEWER_NAME: &str = "Fake Operator";

/// A fault answered instead of the real reply.
#[derive(Debug, Clone)]
pub enum Fault {
    /// This HTTP status with a GraphQL error body (401 looks like Linear's auth error).
    Status(u16),
    /// HTTP 429, optionally with `retry-after` seconds and a requests-reset time (epoch ms).
    RateLimited {
        retry_after: Option<u64>,
        reset_at_ms: Option<u64>,
    },
    /// HTTP 400 whose GraphQL error has `extensions.code = "RATELIMITED"`.
    RateLimitedBody { reset_at_ms: Option<u64> },
    /// HTTP 200 with a body that is not JSON.
    MalformedJson,
    /// HTTP 200 with `data: null` and this GraphQL error message.
    GraphQlError(String),
    /// A page that says `hasNextPage` but gives no `endCursor`.
    MissingCursor,
    /// A page whose `endCursor` is the cursor it was asked with (the first page answers
    /// normally; the second repeats the first's cursor).
    RepeatedCursor,
    /// The normal reply, after this delay.
    Slow(Duration),
    /// `307 Temporary Redirect` to this URL.
    Redirect(String),
}

#[derive(Debug)]
struct Control {
    /// (operation name or "*", fault), consumed first match first.
    faults: VecDeque<(String, Fault)>,
    violations: Vec<String>,
    budget: budget::Budget,
}

/// The running fake. Dropping it stops the server.
pub struct FakeLinear {
    http: FakeHttp,
    world: Arc<Mutex<World>>,
    control: Arc<Mutex<Control>>,
    clock: Clock,
}

impl FakeLinear {
    /// A fake on the real clock.
    pub fn start(world: World) -> FakeLinear {
        FakeLinear::start_with_clock(world, Arc::new(maestro::clock::now_ms))
    }

    /// A fake whose time (stamps, `Date`, budget refill) is `clock`'s.
    pub fn start_with_clock(world: World, clock: Clock) -> FakeLinear {
        let world = Arc::new(Mutex::new(world));
        let control = Arc::new(Mutex::new(Control {
            faults: VecDeque::new(),
            violations: Vec::new(),
            budget: budget::Budget::new(clock()),
        }));
        let http = {
            let world = Arc::clone(&world);
            let control = Arc::clone(&control);
            let clock = Arc::clone(&clock);
            FakeHttp::start(move |request| answer(request, &world, &control, clock()))
        };
        FakeLinear {
            http,
            world,
            control,
            clock,
        }
    }

    /// Refuses, from now on, what these hourly allowances cannot pay for (full buckets now).
    pub fn enforce_budget(&self, requests_per_hour: u64, points_per_hour: u64) {
        let now = (self.clock)();
        let mut control = self.control.lock().unwrap();
        control.budget.requests = budget::Bucket::full(requests_per_hour, now);
        control.budget.points = budget::Bucket::full(points_per_hour, now);
        control.budget.enforce = true;
    }

    /// Everything charged so far: requests and complexity points, as Linear would count them.
    pub fn spent(&self) -> Cost {
        self.control.lock().unwrap().budget.total()
    }

    /// What each operation cost so far.
    pub fn spent_by_operation(&self) -> BTreeMap<String, Cost> {
        self.control.lock().unwrap().budget.by_operation.clone()
    }

    /// Requests refused because the enforced budget could not pay for them.
    pub fn refused(&self) -> u64 {
        self.control.lock().unwrap().budget.refused
    }

    /// The GraphQL endpoint.
    pub fn url(&self) -> String {
        format!("{}/graphql", self.http.url())
    }

    /// Answers the next request for `operation` (or any, with `"*"`) with `fault`. Faults
    /// queue up: inject twice to fail two requests.
    pub fn inject(&self, operation: &str, fault: Fault) {
        self.control
            .lock()
            .unwrap()
            .faults
            .push_back((operation.to_string(), fault));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.http.requests()
    }

    /// The `operationName` of every request, in arrival order.
    pub fn operations(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|request| {
                request.json()["operationName"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    }

    /// Requests whose document is a mutation.
    pub fn mutations(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| {
                request.json()["query"]
                    .as_str()
                    .is_some_and(|query| query.contains("mutation "))
            })
            .collect()
    }

    /// Malformed requests the fake saw (wrong document, bad variables, bad cursor).
    pub fn violations(&self) -> Vec<String> {
        self.control.lock().unwrap().violations.clone()
    }

    /// The current state of an issue, by identifier.
    pub fn issue(&self, identifier: &str) -> FakeIssue {
        self.world
            .lock()
            .unwrap()
            .issues
            .iter()
            .find(|issue| issue.identifier == identifier)
            .cloned()
            .unwrap_or_else(|| panic!("fake has no issue {identifier}"))
    }

    pub fn comments(&self) -> Vec<FakeComment> {
        self.world.lock().unwrap().comments.clone()
    }

    /// Edits the workspace between calls (for example, to change a state behind a cache).
    /// Every issue the edit changed gets `updatedAt` = now, as Linear stamps a change, unless
    /// the edit set `updated_at` itself.
    pub fn edit(&self, change: impl FnOnce(&mut World)) {
        let mut world = self.world.lock().unwrap();
        let before = world.issues.clone();
        change(&mut world);
        let now = maestro::clock::format_ms((self.clock)());
        for issue in &mut world.issues {
            let old = before.iter().find(|old| old.id == issue.id);
            let stamped = old.is_some_and(|old| old.updated_at != issue.updated_at);
            if old != Some(issue) && !stamped {
                issue.updated_at = now.clone();
            }
        }
    }
}

fn graphql_error(status: u16, message: &str, code: &str, kind: &str) -> Reply {
    Reply::json(
        status,
        &json!({"errors": [{"message": message, "extensions": {"code": code, "type": kind}}]}),
    )
}

/// Charges the request to the budget (refusing it when an enforced budget cannot pay), answers
/// it, and adds Linear's cost and budget headers.
fn answer(request: &Recorded, world: &Mutex<World>, control: &Mutex<Control>, now: u64) -> Reply {
    let body = serde_json::from_str::<Value>(&request.body).unwrap_or(Value::Null);
    let operation = body["operationName"].as_str().unwrap_or("").to_string();
    let points = body["query"]
        .as_str()
        .and_then(|query| linear_complexity::score(query, &body["variables"]).ok());
    // A query over the limit is refused before it runs: it costs a request, no points.
    let charged = points.filter(|points| *points <= linear_complexity::LIMIT);
    let paid = control
        .lock()
        .unwrap()
        .budget
        .charge(now, &operation, charged.unwrap_or(0.0));
    let mut reply = if paid {
        respond(request, world, control, now)
    } else {
        graphql_error(
            400,
            "Rate limit exceeded: the key's hourly budget cannot pay for this query",
            "RATELIMITED",
            "ratelimited",
        )
    };
    // A fault's answer is exactly what the test asked for: no budget headers are added (a
    // reset header of the budget's would change how a 429 without one is retried).
    let before = reply.headers.len();
    reply.headers.retain(|(name, _)| name != FAULT_MARKER);
    if reply.headers.len() == before {
        reply
            .headers
            .extend(control.lock().unwrap().budget.headers(now, charged));
    }
    reply
}

/// Marks a reply made by an injected fault (removed before it is sent).
const FAULT_MARKER: &str = "X-Fake-Fault";

fn faulted(reply: Reply) -> Reply {
    reply.with_header(FAULT_MARKER, "1")
}

fn respond(request: &Recorded, world: &Mutex<World>, control: &Mutex<Control>, now: u64) -> Reply {
    let violation = |message: String| {
        control.lock().unwrap().violations.push(message.clone());
        graphql_error(400, &message, "GRAPHQL_VALIDATION_FAILED", "invalid input")
    };
    if request.method != "POST" || request.path() != "/graphql" {
        return violation(format!(
            "{} {} is not the GraphQL endpoint",
            request.method, request.url
        ));
    }
    if request.header("authorization") != Some(API_KEY) {
        return graphql_error(
            401,
            "Authentication required, not authenticated",
            "AUTHENTICATION_ERROR",
            "authentication error",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&request.body) else {
        return violation("request body is not JSON".into());
    };
    let operation = body["operationName"].as_str().unwrap_or("").to_string();
    let query = body["query"].as_str().unwrap_or("");
    // An operation without variables (`Viewer`) has no parentheses.
    if !query.contains(&format!("query {operation}("))
        && !query.contains(&format!("query {operation} {{"))
        && !query.contains(&format!("mutation {operation}("))
    {
        return violation(format!("document does not define operation `{operation}`"));
    }
    let variables = body["variables"].clone();
    match linear_complexity::score(query, &variables) {
        Ok(points) if points > linear_complexity::LIMIT => {
            let message = format!(
                "{operation}: query too complex: {points:.1} points, the limit is {}",
                linear_complexity::LIMIT
            );
            control.lock().unwrap().violations.push(message.clone());
            return graphql_error(400, &message, "GRAPHQL_VALIDATION_FAILED", "invalid input");
        }
        Ok(_) => {}
        Err(problem) => {
            return violation(format!("{operation}: cannot score the query: {problem}"));
        }
    }
    let fault = {
        let mut control = control.lock().unwrap();
        let position = control
            .faults
            .iter()
            .position(|(op, _)| op == "*" || *op == operation);
        position
            .and_then(|index| control.faults.remove(index))
            .map(|(_, fault)| fault)
    };
    let mut delay = None;
    let mut cursor_fault = None;
    match fault {
        None => {}
        Some(Fault::Status(401)) => {
            return faulted(graphql_error(
                401,
                "Authentication failed",
                "AUTHENTICATION_ERROR",
                "authentication error",
            ));
        }
        Some(Fault::Status(status)) => {
            return faulted(graphql_error(
                status,
                "Internal server error",
                "INTERNAL_SERVER_ERROR",
                "internal error",
            ));
        }
        Some(Fault::RateLimited {
            retry_after,
            reset_at_ms,
        }) => {
            let mut reply = graphql_error(429, "Too many requests", "RATELIMITED", "ratelimited");
            if let Some(seconds) = retry_after {
                reply = reply.with_header("Retry-After", &seconds.to_string());
            }
            if let Some(reset) = reset_at_ms {
                reply = reply.with_header("X-RateLimit-Requests-Reset", &reset.to_string());
            }
            return faulted(reply);
        }
        Some(Fault::RateLimitedBody { reset_at_ms }) => {
            let mut reply = graphql_error(400, "Rate limit exceeded", "RATELIMITED", "ratelimited");
            if let Some(reset) = reset_at_ms {
                reply = reply.with_header("X-RateLimit-Requests-Reset", &reset.to_string());
            }
            return faulted(reply);
        }
        Some(Fault::MalformedJson) => {
            return faulted(Reply::text(200, "{\"data\": {\"issues\": [trunc"));
        }
        Some(Fault::Redirect(location)) => {
            return faulted(Reply::text(307, "").with_header("Location", &location));
        }
        Some(Fault::GraphQlError(message)) => {
            return faulted(Reply::json(
                200,
                &json!({"data": null, "errors": [{"message": message, "extensions": {"code": "INVALID_INPUT", "type": "invalid input"}}]}),
            ));
        }
        Some(Fault::Slow(duration)) => delay = Some(duration),
        // A cursor can only repeat from the second page on: the first page answers normally
        // and the fault waits for the next one.
        Some(Fault::RepeatedCursor) if variables["after"].is_null() => {
            control
                .lock()
                .unwrap()
                .faults
                .push_front((operation.clone(), Fault::RepeatedCursor));
        }
        Some(fault @ (Fault::MissingCursor | Fault::RepeatedCursor)) => cursor_fault = Some(fault),
    }
    let mut world = world.lock().unwrap();
    let result = match operation.as_str() {
        "Viewer" => Ok(json!({"viewer": {"id": "user-1", "name": VIEWER_NAME}})),
        "ProjectBySlugId" => project(&world, &variables),
        "ProjectIssuesByStateNames" => {
            issues_page(&world, query, &variables, cursor_fault.as_ref())
        }
        "IssuesByIds" => issues_by_ids(&world, query, &variables),
        "IssueChanges" => polls::issue_changes(&world, query, &variables),
        "ProjectIssueStamps" => polls::project_issue_stamps(&world, &variables),
        "IssueSummariesByIds" => polls::issue_summaries(&world, query, &variables),
        "IssueLabels" => issue_labels(&world, &variables),
        "IssueInverseRelations" => issue_relations(&world, &variables),
        "TeamWorkflowStates" => team_states(&world, &variables),
        "LabelsUsableByTeam" => labels(&world, &variables),
        "IssueSetState" => set_state(&mut world, &variables, now),
        "CommentCreate" => comment(&mut world, &variables),
        "IssueComments" => issue_comments(&world, &variables),
        "IssueAddLabel" => add_label(&mut world, &variables, now),
        other => Err(format!("unknown operation `{other}`")),
    };
    drop(world);
    let reply = match result {
        Ok(data) => Reply::json(200, &json!({"data": data})),
        Err(message) => violation(format!("{operation}: {message}")),
    };
    match delay {
        Some(delay) => reply.delayed(delay),
        None => reply,
    }
}

fn string_var<'a>(variables: &'a Value, name: &str) -> Result<&'a str, String> {
    variables[name]
        .as_str()
        .ok_or_else(|| format!("variable ${name} must be a String, got {}", variables[name]))
}

fn first_var(variables: &Value) -> Result<usize, String> {
    match variables["first"].as_u64() {
        Some(first) if (1..=100).contains(&first) => Ok(first as usize),
        _ => Err(format!(
            "variable $first must be an Int in 1..=100, got {}",
            variables["first"]
        )),
    }
}

/// Cursors are opaque to clients; here they encode the offset of the next node.
fn offset_of(variables: &Value) -> Result<usize, String> {
    match &variables["after"] {
        Value::Null => Ok(0),
        Value::String(cursor) => cursor
            .strip_prefix("cursor-")
            .and_then(|offset| offset.parse().ok())
            .ok_or_else(|| format!("unknown cursor `{cursor}`")),
        other => Err(format!(
            "variable $after must be a String or null, got {other}"
        )),
    }
}

fn page<T: Clone>(items: &[T], offset: usize, first: usize) -> (Vec<T>, Value) {
    let end = (offset + first).min(items.len());
    let slice = items.get(offset..end).unwrap_or(&[]).to_vec();
    let has_next = end < items.len();
    let info = json!({
        "hasNextPage": has_next,
        "endCursor": if slice.is_empty() { Value::Null } else { json!(format!("cursor-{end}")) },
    });
    (slice, info)
}

fn team_by_key<'a>(world: &'a World, key: &str) -> &'a FakeTeam {
    world
        .teams
        .iter()
        .find(|team| team.key == key)
        .expect("issue's team exists")
}

fn state_json(world: &World, issue: &FakeIssue) -> Value {
    let team = team_by_key(world, &issue.team_key);
    let (_, name, kind) = team
        .states
        .iter()
        .find(|(_, name, _)| *name == issue.state)
        .unwrap_or_else(|| panic!("{} has unknown state {}", issue.identifier, issue.state));
    json!({"name": name, "type": kind})
}

/// The page size a document gives a nested list (`labels(first: 20)`), else Linear's 50.
fn nested_page(query: &str, field: &str) -> usize {
    query
        .split_once(&format!("{field}(first: "))
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or(50)
}

/// An issue's inverse relations: blockers (`blocks`) first, then merely related issues.
fn relations_json(world: &World, issue: &FakeIssue) -> Vec<Value> {
    let relation = |kind: &str, id: &String| {
        let other = world
            .issues
            .iter()
            .find(|other| other.id == *id)
            .expect("related issue exists");
        json!({
            "type": kind,
            "issue": {"id": other.id, "identifier": other.identifier, "state": state_json(world, other)},
        })
    };
    issue
        .blocked_by
        .iter()
        .map(|id| relation("blocks", id))
        .chain(issue.related.iter().map(|id| relation("related", id)))
        .collect()
}

fn labels_json(issue: &FakeIssue) -> Vec<Value> {
    issue
        .labels
        .iter()
        .map(|name| json!({"name": name}))
        .collect()
}

/// One issue as the listing and refresh documents select it, nested lists cut to the page
/// sizes `query` gives them.
fn issue_json(world: &World, query: &str, issue: &FakeIssue) -> Value {
    let team = team_by_key(world, &issue.team_key);
    let relations = relations_json(world, issue);
    let labels = labels_json(issue);
    let (label_page, relation_page) = (
        nested_page(query, "labels"),
        nested_page(query, "inverseRelations"),
    );
    json!({
        "id": issue.id,
        "identifier": issue.identifier,
        "title": issue.title,
        "description": issue.description,
        "priority": issue.priority,
        "url": format!("https://linear.app/fake/issue/{}", issue.identifier),
        "branchName": format!("fake/{}", issue.identifier.to_lowercase()),
        "createdAt": issue.created_at,
        "updatedAt": issue.updated_at,
        "state": state_json(world, issue),
        "labels": {"pageInfo": {"hasNextPage": labels.len() > label_page}, "nodes": labels.into_iter().take(label_page).collect::<Vec<_>>()},
        "team": {"id": team.id, "key": team.key},
        "project": issue.project_slug.as_ref().map(|slug| json!({"slugId": slug})),
        "inverseRelations": {"pageInfo": {"hasNextPage": relations.len() > relation_page}, "nodes": relations.into_iter().take(relation_page).collect::<Vec<_>>()},
    })
}

fn project(world: &World, variables: &Value) -> Result<Value, String> {
    let slug = string_var(variables, "slugId")?;
    let nodes: Vec<Value> = if slug == world.slug_id {
        vec![json!({
            "id": world.project_id,
            "name": world.project_name,
            "slugId": world.slug_id,
            "url": format!("https://linear.app/fake/project/demo-{}", world.slug_id),
            "teams": {
                "pageInfo": {"hasNextPage": false},
                "nodes": world.teams.iter().map(|team| json!({"id": team.id, "key": team.key, "name": team.name})).collect::<Vec<_>>(),
            },
        })]
    } else {
        Vec::new()
    };
    Ok(json!({"projects": {"nodes": nodes}}))
}

fn issues_page(
    world: &World,
    query: &str,
    variables: &Value,
    cursor_fault: Option<&Fault>,
) -> Result<Value, String> {
    let slug = string_var(variables, "slugId")?;
    let Some(states) = variables["stateNames"].as_array() else {
        return Err("variable $stateNames must be a [String!]!".into());
    };
    let states: Vec<&str> = states.iter().filter_map(Value::as_str).collect();
    if states.is_empty() {
        return Err("variable $stateNames is empty".into());
    }
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    let mut matching: Vec<&FakeIssue> = world
        .issues
        .iter()
        .filter(|issue| {
            issue.project_slug.as_deref() == Some(slug)
                && !issue.archived
                && states.contains(&issue.state.as_str())
        })
        .collect();
    matching.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let (nodes, mut info) = page(&matching, offset, first);
    match cursor_fault {
        Some(Fault::MissingCursor) => info = json!({"hasNextPage": true, "endCursor": null}),
        Some(Fault::RepeatedCursor) => {
            info = json!({"hasNextPage": true, "endCursor": variables["after"]});
        }
        _ => {}
    }
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|issue| issue_json(world, query, issue))
        .collect();
    Ok(json!({"issues": {"pageInfo": info, "nodes": nodes}}))
}

fn issues_by_ids(world: &World, query: &str, variables: &Value) -> Result<Value, String> {
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
    let nodes: Vec<Value> = world
        .issues
        .iter()
        .filter(|issue| !issue.archived && ids.contains(&issue.id.as_str()))
        .map(|issue| issue_json(world, query, issue))
        .collect();
    Ok(json!({"issues": {"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes}}))
}

/// `IssueLabels` and `IssueInverseRelations`: the issue with that id (none when it does not
/// exist) and one page of its nested list under `field`.
fn nested_list_page(
    world: &World,
    variables: &Value,
    field: &str,
    list: impl Fn(&FakeIssue) -> Vec<Value>,
) -> Result<Value, String> {
    let issue_id = string_var(variables, "issueId")?;
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    let nodes: Vec<Value> = world
        .issues
        .iter()
        .filter(|issue| issue.id == issue_id && !issue.archived)
        .map(|issue| {
            let (items, info) = page(&list(issue), offset, first);
            json!({"id": issue.id, field: {"pageInfo": info, "nodes": items}})
        })
        .collect();
    Ok(json!({"issues": {"nodes": nodes}}))
}

fn issue_labels(world: &World, variables: &Value) -> Result<Value, String> {
    nested_list_page(world, variables, "labels", labels_json)
}

fn issue_relations(world: &World, variables: &Value) -> Result<Value, String> {
    nested_list_page(world, variables, "inverseRelations", |issue| {
        relations_json(world, issue)
    })
}

fn team_states(world: &World, variables: &Value) -> Result<Value, String> {
    let team_id = string_var(variables, "teamId")?;
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    let Some(team) = world.teams.iter().find(|team| team.id == team_id) else {
        return Ok(json!({"team": null}));
    };
    let (nodes, info) = page(&team.states, offset, first);
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|(id, name, kind)| json!({"id": id, "name": name, "type": kind}))
        .collect();
    Ok(
        json!({"team": {"id": team.id, "key": team.key, "states": {"pageInfo": info, "nodes": nodes}}}),
    )
}

fn labels(world: &World, variables: &Value) -> Result<Value, String> {
    let team_id = string_var(variables, "teamId")?;
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    let mut all: Vec<Value> = Vec::new();
    for team in world.teams.iter().filter(|team| team.id == team_id) {
        for (id, name) in &team.labels {
            all.push(json!({"id": id, "name": name, "isGroup": false, "team": {"id": team.id}}));
        }
    }
    for (id, name) in &world.workspace_labels {
        all.push(json!({"id": id, "name": name, "isGroup": false, "team": null}));
    }
    for (id, name) in &world.group_labels {
        all.push(json!({"id": id, "name": name, "isGroup": true, "team": null}));
    }
    let (nodes, info) = page(&all, offset, first);
    Ok(json!({"issueLabels": {"pageInfo": info, "nodes": nodes}}))
}

fn issue_index(world: &World, variables: &Value) -> Result<usize, String> {
    let issue_id = string_var(variables, "issueId")?;
    world
        .issues
        .iter()
        .position(|issue| issue.id == issue_id || issue.identifier == issue_id)
        .ok_or_else(|| format!("no issue `{issue_id}`"))
}

fn set_state(world: &mut World, variables: &Value, now: u64) -> Result<Value, String> {
    let index = issue_index(world, variables)?;
    let state_id = string_var(variables, "stateId")?;
    let team = team_by_key(world, &world.issues[index].team_key);
    let Some((_, name, _)) = team.states.iter().find(|(id, _, _)| id == state_id) else {
        return Err(format!(
            "state `{state_id}` is not a state of team {}",
            team.key
        ));
    };
    let name = name.clone();
    world.issues[index].state = name;
    world.issues[index].updated_at = maestro::clock::format_ms(now);
    let issue = &world.issues[index];
    Ok(
        json!({"issueUpdate": {"success": true, "issue": {"id": issue.id, "state": state_json(world, issue)}}}),
    )
}

fn comment(world: &mut World, variables: &Value) -> Result<Value, String> {
    let index = issue_index(world, variables)?;
    let body = string_var(variables, "body")?;
    if body.trim().is_empty() {
        return Err("comment body is empty".into());
    }
    let id = format!("comment-{}", world.comments.len() + 1);
    let issue_id = world.issues[index].id.clone();
    world.comments.push(FakeComment {
        id: id.clone(),
        issue_id,
        body: body.to_string(),
    });
    Ok(json!({"commentCreate": {"success": true, "comment": {
        "id": id,
        "url": format!("https://linear.app/fake/issue/{}#comment-{id}", world.issues[index].identifier),
    }}}))
}

/// `issue(id).comments(filter: { body: { contains } })`, oldest first, paged.
fn issue_comments(world: &World, variables: &Value) -> Result<Value, String> {
    let Ok(index) = issue_index(world, variables) else {
        return Ok(json!({"issue": null}));
    };
    let contains = string_var(variables, "contains")?;
    let first = first_var(variables)?;
    let offset = offset_of(variables)?;
    let issue = &world.issues[index];
    let matching: Vec<Value> = world
        .comments
        .iter()
        .filter(|comment| comment.issue_id == issue.id && comment.body.contains(contains))
        .map(|comment| json!({"id": comment.id, "body": comment.body}))
        .collect();
    let (nodes, info) = page(&matching, offset, first);
    Ok(json!({"issue": {"id": issue.id, "comments": {"pageInfo": info, "nodes": nodes}}}))
}

fn add_label(world: &mut World, variables: &Value, now: u64) -> Result<Value, String> {
    let index = issue_index(world, variables)?;
    let label_id = string_var(variables, "labelId")?;
    let team = team_by_key(world, &world.issues[index].team_key);
    let name = team
        .labels
        .iter()
        .chain(&world.workspace_labels)
        .find(|(id, _)| id == label_id)
        .map(|(_, name)| name.clone())
        .ok_or_else(|| {
            format!(
                "label `{label_id}` cannot be applied to team {}'s issues",
                team.key
            )
        })?;
    let issue = &mut world.issues[index];
    if !issue.labels.contains(&name) {
        issue.labels.push(name);
        issue.updated_at = maestro::clock::format_ms(now);
    }
    Ok(json!({"issueAddLabel": {"success": true, "issue": {"id": issue.id}}}))
}
