//! A whole world for live-run tests: the real `maestro` binary and the real codex, a scripted
//! model, a fake Linear, a fake GitHub whose PR heads follow a bare git origin, and a source
//! repository whose `origin` is `https://github.com/acme/widgets.git`.
//!
//! A test-only git global config rewrites that URL to the bare repository (`insteadOf`), so
//! the agent's `git push` through `exec_command` really lands in the bare origin while the
//! lane's configured `origin` keeps its GitHub identity for the PR check. Everything lives in
//! one [`TestDir`]; the fakes stop when the world is dropped. `run --once` and the daemon tests
//! both build on [`RunWorld`]: N issues, any WORKFLOW.md front matter, any model script.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use maestro::mock_model::{MockModel, ModelRequest, Route, Step};
use maestro::workspace::Layout;
use maestro::workspace::record::{self, IssueState, RunRecord};
use serde_json::{Value, json};

use super::codex::unattended;
use super::dir::TestDir;
use super::fake_github::{FakeGithub, Pull};
use super::fake_linear::{API_KEY, FakeComment, FakeIssue, FakeLinear, SLUG_ID, World};
use super::git::git;
use super::maestro_command;

/// The source repository's origin as the lane sees it.
pub const ORIGIN_URL: &str = "https://github.com/acme/widgets.git";
/// The GitHub repository behind [`ORIGIN_URL`].
pub const REPO: &str = "acme/widgets";
/// Variable names maestro.toml gives for the secrets, and their test values.
pub const LINEAR_VAR: &str = "LINEAR_API_KEY";
pub const GITHUB_VAR: &str = "GITHUB_TOKEN";
pub const GITHUB_TOKEN: &str = "gh-test-token-4f1d9c";
/// A harmless variable set beside the secrets: it must reach the agent, which shows that a
/// secret's absence there is Maestro's doing and not codex's own filtering.
pub const CANARY_VAR: &str = "MAESTRO_CANARY_KEY";
pub const CANARY_VALUE: &str = "canary-visible-7e2b";
/// The project id in maestro.toml, so the first issue's lane branch is `x/demo-abc-1`.
pub const PROJECT_ID: &str = "demo";
/// No `run --once` in these tests may take longer than this.
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// The front matter every world starts from (before [`RunWorldBuilder::front_matter`]).
pub const DEFAULT_FRONT_MATTER: &str = "\
version = 1

[execution]
max_attempts = 3
validation_commands = [\"test -f feature.txt\"]
validation_timeout_ms = 60000
";

/// Makes the model's script from `repo_root`.
type Script = Box<dyn FnOnce(&Path) -> Vec<Step>>;
/// Makes the model's routed scripts (one per conversation) from `repo_root`.
type Routes = Box<dyn FnOnce(&Path) -> Vec<Route>>;

/// What a world is made of, before it starts.
pub struct RunWorldBuilder {
    name: String,
    codex: PathBuf,
    linear: World,
    front_matter: String,
    body: String,
    files: Vec<(String, String)>,
    steps: Script,
    routes: Option<Routes>,
    github_token: bool,
    read_timeout_ms: u64,
    turn_idle_timeout_ms: u64,
}

impl RunWorldBuilder {
    /// The issues of the fake Linear (added to its standard workspace).
    pub fn issues(mut self, issues: Vec<FakeIssue>) -> Self {
        self.linear.issues.extend(issues);
        self
    }

    /// Edits the fake Linear workspace before it starts (labels, teams, states).
    pub fn linear(mut self, change: impl FnOnce(&mut World)) -> Self {
        change(&mut self.linear);
        self
    }

    /// WORKFLOW.md's front matter (the TOML between the `+++` lines).
    pub fn front_matter(mut self, toml: &str) -> Self {
        self.front_matter = toml.to_string();
        self
    }

    /// WORKFLOW.md's body: the standing instructions.
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_string();
        self
    }

    /// A file committed to the source repository.
    pub fn file(mut self, path: &str, contents: &str) -> Self {
        self.files.push((path.to_string(), contents.to_string()));
        self
    }

    /// The model's script: one [`Step`] per model call, across every run of the world.
    pub fn steps(mut self, steps: Vec<Step>) -> Self {
        self.steps = Box::new(move |_| steps);
        self
    }

    /// The model's script, made from `repo_root` (for steps that must name a host path).
    pub fn steps_from(mut self, steps: impl FnOnce(&Path) -> Vec<Step> + 'static) -> Self {
        self.steps = Box::new(steps);
        self
    }

    /// The model's scripts per conversation ([`MockModel::start_routed`]), instead of one
    /// script for every call: for several issues at once.
    pub fn routes(mut self, routes: Vec<Route>) -> Self {
        self.routes = Some(Box::new(move |_| routes));
        self
    }

    /// Leaves the GitHub token variable unset in maestro's environment.
    pub fn without_github_token(mut self) -> Self {
        self.github_token = false;
        self
    }

    /// `[agent] turn_idle_timeout_ms`.
    pub fn turn_idle_timeout_ms(mut self, ms: u64) -> Self {
        self.turn_idle_timeout_ms = ms;
        self
    }

    pub fn build(self) -> RunWorld {
        let dir = TestDir::new(&self.name);
        let source = dir.join("source");
        let mock = match self.routes {
            Some(routes) => MockModel::start_routed(routes(&source)),
            None => MockModel::start((self.steps)(&source)),
        }
        .expect("mock model starts");
        let linear = FakeLinear::start(self.linear);
        let github = FakeGithub::start();

        // The bare origin and the source checkout (repo_root), WORKFLOW.md committed.
        let origin = dir.join("origin.git");
        std::fs::create_dir_all(&origin).unwrap();
        git(
            &origin,
            &["init", "--quiet", "--bare", "--initial-branch=main"],
        );
        std::fs::create_dir_all(&source).unwrap();
        git(&source, &["init", "--quiet", "--initial-branch=main"]);
        let workflow = format!("+++\n{}+++\n\n{}\n", self.front_matter, self.body);
        let mut files = vec![
            ("WORKFLOW.md".to_string(), workflow),
            ("README.md".to_string(), "widgets\n".to_string()),
            // Lanes live under the source checkout; keep them out of its status.
            (".gitignore".to_string(), "/.workspaces/\n".to_string()),
        ];
        files.extend(self.files);
        for (path, contents) in &files {
            let full = source.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, contents).unwrap();
        }
        git(&source, &["add", "-A"]);
        git(&source, &["commit", "--quiet", "-m", "initial"]);
        git(
            &source,
            &["push", "--quiet", origin.to_str().unwrap(), "main"],
        );
        git(&source, &["remote", "add", "origin", ORIGIN_URL]);

        // Git as maestro, hooks and the agent see it: GitHub's URL goes to the bare origin.
        let gitconfig = dir.join("gitconfig");
        std::fs::write(
            &gitconfig,
            format!(
                "[url \"{}\"]\n\tinsteadOf = {ORIGIN_URL}\n[user]\n\tname = Agent Under Test\n\temail = agent@example.invalid\n[init]\n\tdefaultBranch = main\n",
                origin.display()
            ),
        )
        .unwrap();

        // Codex: every model call to the mock, commands run without asking, and codex's own
        // environment filtering off so only Maestro decides what the agent sees.
        let codex_home = dir.join("codex-home");
        std::fs::create_dir_all(&codex_home).unwrap();
        let mut codex_config = unattended(&mock.base_url()).to_toml();
        codex_config.push_str(
            "\n[shell_environment_policy]\ninherit = \"all\"\nignore_default_excludes = true\n",
        );
        std::fs::write(codex_home.join("config.toml"), codex_config).unwrap();

        let config = dir.join("maestro.toml");
        std::fs::write(
            &config,
            format!(
                "id = \"{PROJECT_ID}\"\n\
                 repo_root = \"{source}\"\n\
                 \n\
                 [tracker]\n\
                 provider = \"linear\"\n\
                 project_slug = \"{SLUG_ID}\"\n\
                 api_key_env_var = \"{LINEAR_VAR}\"\n\
                 api_url = \"{linear_url}\"\n\
                 \n\
                 [github]\n\
                 token_env_var = \"{GITHUB_VAR}\"\n\
                 api_url = \"{github_url}\"\n\
                 \n\
                 [agent]\n\
                 command = \"{codex} app-server\"\n\
                 read_timeout_ms = {read}\n\
                 turn_idle_timeout_ms = {idle}\n",
                source = source.display(),
                linear_url = linear.url(),
                github_url = github.url(),
                codex = self.codex.display(),
                read = self.read_timeout_ms,
                idle = self.turn_idle_timeout_ms,
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("home")).unwrap();
        RunWorld {
            workspace_root: source.join(".workspaces"),
            dir,
            mock,
            linear,
            github,
            origin,
            source,
            config,
            gitconfig,
            codex_home,
            github_token: self.github_token,
        }
    }
}

/// A running world.
pub struct RunWorld {
    pub dir: TestDir,
    pub mock: MockModel,
    pub linear: FakeLinear,
    pub github: FakeGithub,
    /// The bare repository behind [`ORIGIN_URL`].
    pub origin: PathBuf,
    /// `repo_root`.
    pub source: PathBuf,
    /// maestro.toml.
    pub config: PathBuf,
    pub gitconfig: PathBuf,
    pub codex_home: PathBuf,
    /// `<repo_root>/.workspaces`.
    pub workspace_root: PathBuf,
    github_token: bool,
}

impl RunWorld {
    /// A world named `name` (its test directory) using `codex`, with the standard Linear
    /// workspace, [`DEFAULT_FRONT_MATTER`] and an empty model script.
    pub fn builder(name: &str, codex: &Path) -> RunWorldBuilder {
        RunWorldBuilder {
            name: name.to_string(),
            codex: codex.to_path_buf(),
            linear: World::standard(),
            front_matter: DEFAULT_FRONT_MATTER.to_string(),
            body: "Work in small steps. Keep the tests green.".to_string(),
            files: Vec::new(),
            steps: Box::new(|_| Vec::new()),
            routes: None,
            github_token: true,
            read_timeout_ms: 20_000,
            turn_idle_timeout_ms: 30_000,
        }
    }

    /// `maestro ARGS --config <maestro.toml>` with the world's environment: the secrets by the
    /// names maestro.toml gives, the canary, the git config and `CODEX_HOME`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = maestro_command(self.dir.path(), args);
        command
            .arg("--config")
            .arg(&self.config)
            .env(LINEAR_VAR, API_KEY)
            .env(CANARY_VAR, CANARY_VALUE)
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("CODEX_HOME", &self.codex_home)
            .env("RUST_LOG", "info");
        if self.github_token {
            command.env(GITHUB_VAR, GITHUB_TOKEN);
        } else {
            command.env_remove(GITHUB_VAR);
        }
        command
    }

    /// `maestro run --once`, bounded by [`RUN_DEADLINE`].
    pub fn run_once(&self) -> Output {
        bounded(self.command(&["run", "--once"]), RUN_DEADLINE)
    }

    /// `maestro run --once` started in the background.
    pub fn spawn_run_once(&self) -> Background {
        Background::start(self.command(&["run", "--once"]))
    }

    /// The state-file layout under `workspace_root`.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.workspace_root)
    }

    /// The lane directory of `key`.
    pub fn lane(&self, key: &str) -> PathBuf {
        self.workspace_root.join(key)
    }

    /// An open, ready PR `number` for `branch` whose head follows the bare origin.
    pub fn open_pull(&self, number: u64, branch: &str) {
        self.github
            .add(Pull::live(REPO, number, branch, self.origin.clone()));
    }

    /// Every run record on disk, oldest first.
    pub fn runs(&self) -> Vec<RunRecord> {
        let listing = record::list_runs(&self.layout());
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        listing.items
    }

    /// The only run record (panics when there is not exactly one).
    pub fn only_run(&self) -> RunRecord {
        let runs = self.runs();
        assert_eq!(runs.len(), 1, "{runs:#?}");
        runs.into_iter().next().unwrap()
    }

    /// Issue `identifier`'s bookkeeping (stored under its stable id).
    pub fn issue_state(&self, identifier: &str) -> Option<IssueState> {
        let id = self.linear.issue(identifier).id;
        record::find_issue_state(
            &self.layout(),
            record::IssueRef {
                id: &id,
                identifier,
            },
        )
        .unwrap()
    }

    /// Comments Linear received for `identifier`, in order.
    pub fn comments(&self, identifier: &str) -> Vec<String> {
        let id = self.linear.issue(identifier).id;
        self.linear
            .comments()
            .into_iter()
            .filter(|comment: &FakeComment| comment.issue_id == id)
            .map(|comment| comment.body)
            .collect()
    }

    /// Model calls (`POST …/responses`) the mock received, in order.
    pub fn model_calls(&self) -> Vec<ModelRequest> {
        self.mock
            .requests()
            .into_iter()
            .filter(|request| request.method == "POST" && request.path.ends_with("/responses"))
            .collect()
    }

    /// The output of tool call `call_id` as codex sent it back to the model.
    pub fn tool_output(&self, call_id: &str) -> String {
        self.model_calls()
            .iter()
            .find_map(|request| request.function_call_output(call_id))
            .unwrap_or_else(|| panic!("the model never saw the output of {call_id}"))
    }

    /// Every byte Maestro wrote under `.maestro/` and every comment Linear received, for
    /// leak checks.
    pub fn everything_written(&self) -> String {
        let mut text = String::new();
        collect_files(&self.layout().state_dir(), &mut text);
        for comment in self.linear.comments() {
            text.push_str(&comment.body);
            text.push('\n');
        }
        text
    }

    /// Asserts what every outcome comment promises: no absolute host path, no secret.
    pub fn assert_comments_clean(&self) {
        let root = self.dir.path().display().to_string();
        for comment in self.linear.comments() {
            assert!(
                !comment.body.contains(&root),
                "absolute host path in a comment: {}",
                comment.body
            );
            assert!(!comment.body.contains(API_KEY) && !comment.body.contains(GITHUB_TOKEN));
        }
    }
}

/// Runs `command` to completion, killing it (and failing the test) after `timeout`.
pub fn bounded(mut command: Command, timeout: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("command starts");
    finish(child, timeout)
}

/// Waits for `child` (started with piped output) at most `timeout`, then kills it and panics
/// with what it printed so far.
pub fn finish(mut child: Child, timeout: Duration) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for maestro") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!("maestro did not finish within {timeout:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; true if it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The model steps of a clean review handoff, from a lane where the agent has just started:
/// claim, commit and push `feature.txt` on `branch`, record PR `pr_number`, finalize.
pub fn handoff_steps(branch: &str, pr_number: u64) -> Vec<Step> {
    vec![
        Step::tool_call(
            "call_claim",
            "issue_transition",
            json!({"state": "In Progress"}),
        ),
        Step::exec_command("call_work", &commit_and_push("feature.txt", branch)),
        Step::tool_call(
            "call_handoff",
            "issue_review_handoff",
            json!({"pr_url": pr_url(pr_number), "summary": "Added feature.txt."}),
        ),
        Step::tool_call(
            "call_finalize",
            "issue_terminal_finalize",
            json!({"path": "review_handoff"}),
        ),
        Step::message("Handed off for review."),
    ]
}

/// A shell line that writes `file`, commits it and pushes the lane branch to `origin`.
pub fn commit_and_push(file: &str, branch: &str) -> String {
    format!(
        "echo change > {file} && git add {file} && git commit -q -m 'Add {file}' && git push -q origin HEAD:refs/heads/{branch} && git rev-parse HEAD"
    )
}

/// The PR URL for `number` in [`REPO`], on the fake GitHub's web host (Maestro accepts PR URLs
/// only on the host it derives from `[github] api_url`).
pub fn pr_url(number: u64) -> String {
    super::fake_github::pull_url(REPO, number)
}

/// The summary line `run --once` printed (its only stdout line).
pub fn summary_line(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line expected, got:\n{stdout}");
    lines[0].to_string()
}

/// A JSON value from a file, for state checks from outside maestro.
pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn collect_files(dir: &Path, text: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, text);
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
            text.push('\n');
        }
    }
}

/// A maestro process running in the background, killed if the test ends before it does.
pub struct Background {
    child: Option<Child>,
}

impl Background {
    pub fn start(mut command: Command) -> Background {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        Background {
            child: Some(command.spawn().expect("maestro starts")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still running").id()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits");
        // SAFETY: kill(2) on a child this test started and has not reaped yet.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// Waits at most `timeout` for the process to exit.
    pub fn finish(mut self, timeout: Duration) -> Output {
        finish(self.child.take().expect("still running"), timeout)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RunWorld {
    /// Pids of live processes started with this world's `CODEX_HOME` (codex and whatever it
    /// spawned), found through /proc.
    pub fn codex_processes(&self) -> Vec<u32> {
        let needle = format!("CODEX_HOME={}", self.codex_home.display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| super::procs::is_alive(*pid))
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                    environ
                        .split(|byte| *byte == 0)
                        .any(|var| var == needle.as_bytes())
                })
            })
            // maestro itself carries CODEX_HOME too; only its descendants count.
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| !cmdline.contains("maestro"))
            })
            .collect()
    }
}
