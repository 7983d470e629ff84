//! The fake Linear's workspace: the project, its teams, labels, issues and comments, with
//! builders for tests. Plain data; `fake_linear.rs` serves it.

/// An issue in the fake workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeIssue {
    pub id: String,
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    /// Linear's float priority: 0 none, 1 urgent … 4 low.
    pub priority: f64,
    /// State name; must be one of the team's states.
    pub state: String,
    pub team_key: String,
    /// `None`: the issue has no project.
    pub project_slug: Option<String>,
    pub labels: Vec<String>,
    /// Ids of issues that block this one (`blocks` relations).
    pub blocked_by: Vec<String>,
    /// Ids of issues merely related (`related` relations; never blockers).
    pub related: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Archived (or deleted): invisible unless a query includes archived issues.
    pub archived: bool,
}

impl FakeIssue {
    /// An issue in the standard project and team, created at `2026-01-01T00:00:00Z` plus
    /// `number` minutes, with id `id-<identifier>`.
    pub fn new(identifier: &str, state: &str) -> FakeIssue {
        let number: u64 = identifier
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let created = format!(
            "2026-01-01T{:02}:{:02}:00.000Z",
            (number / 60) % 24,
            number % 60
        );
        FakeIssue {
            id: format!("id-{identifier}"),
            identifier: identifier.to_string(),
            title: format!("Issue {identifier}"),
            description: Some(format!("Description of {identifier}.")),
            priority: 0.0,
            state: state.to_string(),
            team_key: "ABC".to_string(),
            project_slug: Some(SLUG_ID.to_string()),
            labels: Vec::new(),
            blocked_by: Vec::new(),
            related: Vec::new(),
            created_at: created.clone(),
            updated_at: created,
            archived: false,
        }
    }

    pub fn priority(mut self, priority: f64) -> FakeIssue {
        self.priority = priority;
        self
    }

    pub fn labels(mut self, labels: &[&str]) -> FakeIssue {
        self.labels = labels.iter().map(|label| label.to_string()).collect();
        self
    }

    pub fn blocked_by(mut self, identifier: &str) -> FakeIssue {
        self.blocked_by.push(format!("id-{identifier}"));
        self
    }

    pub fn related_to(mut self, identifier: &str) -> FakeIssue {
        self.related.push(format!("id-{identifier}"));
        self
    }

    pub fn created(mut self, created_at: &str) -> FakeIssue {
        self.created_at = created_at.to_string();
        self
    }

    pub fn project(mut self, slug: Option<&str>) -> FakeIssue {
        self.project_slug = slug.map(str::to_string);
        self
    }
}

/// The standard project's slug id.
pub const SLUG_ID: &str = "f00dfeed1234";

/// A team with its workflow states (id, name, type) and own labels (id, name).
#[derive(Debug, Clone)]
pub struct FakeTeam {
    pub id: String,
    pub key: String,
    pub name: String,
    pub states: Vec<(String, String, String)>,
    pub labels: Vec<(String, String)>,
}

/// A comment created through `CommentCreate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: String,
    pub issue_id: String,
    pub body: String,
}

/// The fake workspace.
#[derive(Debug, Clone)]
pub struct World {
    pub project_id: String,
    pub project_name: String,
    pub slug_id: String,
    pub teams: Vec<FakeTeam>,
    /// Workspace labels (no team).
    pub workspace_labels: Vec<(String, String)>,
    /// Group labels (cannot be applied to issues), workspace level.
    pub group_labels: Vec<(String, String)>,
    pub issues: Vec<FakeIssue>,
    pub comments: Vec<FakeComment>,
}

impl World {
    /// Project `Demo` (slug id [`SLUG_ID`]) with team `ABC`, Linear's default states, team
    /// label `Bug`, workspace labels `maestro:needs-attention` and `maestro:manual-only`, a
    /// group label `Area`, and no issues.
    pub fn standard() -> World {
        let states = [
            ("Backlog", "backlog"),
            ("Todo", "unstarted"),
            ("In Progress", "started"),
            ("In Review", "started"),
            ("Done", "completed"),
            ("Canceled", "canceled"),
            ("Duplicate", "canceled"),
        ];
        World {
            project_id: "project-1".into(),
            project_name: "Demo".into(),
            slug_id: SLUG_ID.into(),
            teams: vec![FakeTeam {
                id: "team-abc".into(),
                key: "ABC".into(),
                name: "Alphabet".into(),
                states: states
                    .iter()
                    .map(|(name, kind)| {
                        (
                            format!("state-{}", name.to_lowercase().replace(' ', "-")),
                            name.to_string(),
                            kind.to_string(),
                        )
                    })
                    .collect(),
                labels: vec![("label-bug".into(), "Bug".into())],
            }],
            workspace_labels: vec![
                ("label-attention".into(), "maestro:needs-attention".into()),
                ("label-manual".into(), "maestro:manual-only".into()),
            ],
            group_labels: vec![("label-area".into(), "Area".into())],
            issues: Vec::new(),
            comments: Vec::new(),
        }
    }

    pub fn with(mut self, issue: FakeIssue) -> World {
        self.issues.push(issue);
        self
    }
}
