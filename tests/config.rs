//! maestro.toml: resolution order, defaults and every validation rule, messages asserted.

use std::path::{Path, PathBuf};

use maestro::config::{self, Error, Lookup, Provider};

use crate::support::dir::TestDir;

const MINIMAL: &str = r#"
id = "demo"
repo_root = "/srv/demo"

[tracker]
api_key_env_var = "LINEAR_API_KEY"
"#;

fn parse(text: &str) -> Result<config::ServiceConfig, Error> {
    config::parse(
        Path::new("/etc/maestro/maestro.toml"),
        text,
        Some(Path::new("/home/op")),
    )
}

/// The whole error text for `text`, which must be invalid.
fn check_error(text: &str, expected: &str) {
    let error = parse(text).expect_err("config should be rejected");
    let message = error.to_string();
    assert!(
        message.contains(expected),
        "expected to find\n  {expected}\nin\n  {message}"
    );
}

#[test]
fn defaults_fill_everything_optional() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.id, "demo");
    assert_eq!(config.repo_root, PathBuf::from("/srv/demo"));
    assert_eq!(config.workflow_path, PathBuf::from("WORKFLOW.md"));
    assert_eq!(
        config.workspace_root,
        PathBuf::from("/srv/demo/.workspaces")
    );
    assert_eq!(config.tracker.provider, Provider::Linear);
    assert_eq!(config.tracker.issues_dir, None);
    assert_eq!(config.tracker.api_url, "https://api.linear.app/graphql");
    assert_eq!(config.tracker.project_slug, None);
    assert_eq!(config.github.api_url, "https://api.github.com");
    assert_eq!(config.github.token_env_var, None);
    assert_eq!(config.agent.command, vec!["codex", "app-server"]);
    assert_eq!(config.agent.read_timeout_ms, 30_000);
    assert_eq!(config.agent.turn_idle_timeout_ms, 300_000);
    assert_eq!(config.agent.stall_timeout_ms, 900_000);
    assert_eq!(config.operator_http, None);
    assert_eq!(config.secret_env_vars(), vec!["LINEAR_API_KEY"]);
    assert_eq!(
        config.workflow_file(),
        PathBuf::from("/srv/demo/WORKFLOW.md")
    );
}

#[test]
fn workspace_root_relative_to_config_dir_and_tilde() {
    let config = parse(&format!("{MINIMAL}\n")).unwrap();
    assert_eq!(
        config.workspace_root,
        PathBuf::from("/srv/demo/.workspaces")
    );
    let text = MINIMAL.replace(
        "repo_root = \"/srv/demo\"",
        "repo_root = \"~/src/demo\"\nworkspace_root = \"../lanes\"",
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.repo_root, PathBuf::from("/home/op/src/demo"));
    assert_eq!(config.workspace_root, PathBuf::from("/etc/lanes"));
    let text = MINIMAL.replace(
        "repo_root = \"/srv/demo\"",
        "repo_root = \"/srv/demo\"\nworkspace_root = \"~/lanes\"",
    );
    assert_eq!(
        parse(&text).unwrap().workspace_root,
        PathBuf::from("/home/op/lanes")
    );
}

#[test]
fn relative_repo_root_resolves_against_the_config_directory() {
    let text = MINIMAL.replace("\"/srv/demo\"", "\"../src/demo/\"");
    let config = parse(&text).unwrap();
    assert_eq!(config.repo_root, PathBuf::from("/etc/src/demo"));
    assert_eq!(
        config.workspace_root,
        PathBuf::from("/etc/src/demo/.workspaces")
    );
    let config = parse(&MINIMAL.replace("\"/srv/demo\"", "\".\"")).unwrap();
    assert_eq!(config.repo_root, PathBuf::from("/etc/maestro"));
}

#[test]
fn local_provider_needs_issues_dir_and_no_api_key() {
    let local = "id = \"demo\"\nrepo_root = \"/srv/demo\"\n[tracker]\nprovider = \"local\"\n";
    let config = parse(&format!("{local}issues_dir = \"issues\"\n")).unwrap();
    assert_eq!(config.tracker.provider, Provider::Local);
    assert_eq!(
        config.tracker.issues_dir,
        Some(PathBuf::from("/etc/maestro/issues"))
    );
    assert_eq!(config.tracker.api_key_env_var, None);
    assert!(config.secret_env_vars().is_empty());
    let config = parse(&format!("{local}issues_dir = \"/var/issues\"\n")).unwrap();
    assert_eq!(
        config.tracker.issues_dir,
        Some(PathBuf::from("/var/issues"))
    );

    check_error(
        local,
        "field `tracker.issues_dir`: missing required key `issues_dir`: the directory of issue files",
    );
    check_error(
        &format!("{local}issues_dir = \" \"\n"),
        "field `tracker.issues_dir`: must not be empty",
    );
    check_error(
        &format!("{MINIMAL}issues_dir = \"issues\"\n"),
        "field `tracker.issues_dir`: only used with provider = \"local\"",
    );
}

#[test]
fn the_demo_config_loads_wherever_the_repository_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("fixtures/demo/maestro.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = config::parse(&path, &text, None).unwrap();
    assert_eq!(config.tracker.provider, Provider::Local);
    assert_eq!(config.repo_root, config::normalize(root));
    assert_eq!(
        config.tracker.issues_dir,
        Some(config::normalize(&root.join("fixtures/demo/issues")))
    );
}

#[test]
fn the_example_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("maestro.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = config::parse(&path, &text, None).unwrap();
    assert_eq!(config.id, "maestro");
    assert_eq!(config.operator_http.unwrap().to_string(), "127.0.0.1:8787");
    assert_eq!(
        config.secret_env_vars(),
        vec!["GITHUB_TOKEN", "LINEAR_API_KEY"]
    );
}

#[test]
fn missing_required_keys_are_named() {
    check_error(
        "[tracker]\napi_key_env_var = \"K\"\n",
        "/etc/maestro/maestro.toml:1:1: field `id`: missing required key `id`",
    );
    check_error(
        "id = \"x\"\n[tracker]\napi_key_env_var = \"K\"\n",
        "field `repo_root`: missing required key `repo_root`",
    );
    check_error(
        "id = \"x\"\nrepo_root = \"/r\"\n",
        "field `tracker`: missing required key `tracker`",
    );
    check_error(
        "id = \"x\"\nrepo_root = \"/r\"\n[tracker]\nproject_slug = \"p\"\n",
        "field `tracker.api_key_env_var`: missing required key `api_key_env_var`",
    );
}

#[test]
fn bad_values_name_line_column_and_field() {
    check_error(
        &MINIMAL.replace("\"demo\"", "\"My App\""),
        "maestro.toml:2:6: field `id`: `My App` is not a valid project id",
    );
    check_error(
        &MINIMAL.replace("\"/srv/demo\"", "\"  \""),
        "maestro.toml:3:13: field `repo_root`: must not be empty",
    );
    check_error(
        &format!("workflow_path = \"/abs/WORKFLOW.md\"\n{MINIMAL}"),
        "maestro.toml:1:17: field `workflow_path`: `/abs/WORKFLOW.md` is absolute",
    );
    check_error(
        &format!("workflow_path = \"../WORKFLOW.md\"\n{MINIMAL}"),
        "field `workflow_path`: `../WORKFLOW.md` leaves the repository",
    );
    check_error(
        &MINIMAL.replace("\"LINEAR_API_KEY\"", "\"not a name\""),
        "field `tracker.api_key_env_var`: `not a name` is not an environment variable name",
    );
    check_error(
        &format!("{MINIMAL}api_url = \"ftp://x\"\n"),
        "field `tracker.api_url`: `ftp://x` is not an http:// or https:// URL",
    );
    check_error(
        &format!("{MINIMAL}provider = \"jira\"\n"),
        "field `tracker.provider`: unknown tracker provider `jira`; expected \"linear\" or \"local\"",
    );
    check_error(
        &format!("{MINIMAL}[operator_http]\nlisten_address = \"localhost\"\n"),
        "field `operator_http.listen_address`: `localhost` is not an IP:PORT socket address",
    );
    check_error(
        &format!("{MINIMAL}[agent]\nread_timeout_ms = 0\n"),
        "field `agent.read_timeout_ms`: must be a positive number of milliseconds, got 0",
    );
    check_error(
        &format!("{MINIMAL}[agent]\ncommand = \"  \"\n"),
        "field `agent.command`: must name a program",
    );
}

#[test]
fn wrong_types_say_expected_and_found() {
    check_error(
        &MINIMAL.replace("id = \"demo\"", "id = 7"),
        "maestro.toml:2:6: field `id`: expected a string, found integer",
    );
    check_error(
        &format!("{MINIMAL}[agent]\nturn_idle_timeout_ms = \"soon\"\n"),
        "field `agent.turn_idle_timeout_ms`: expected an integer, found string",
    );
    check_error(
        &format!("github = 3\n{MINIMAL}"),
        "field `github`: expected a table, found integer",
    );
}

#[test]
fn only_stdio_transport_is_accepted() {
    check_error(
        &format!("{MINIMAL}[agent]\ntransport = \"ws://127.0.0.1:4000\"\n"),
        "field `agent.transport`: transport `ws://127.0.0.1:4000` is not supported; only \"stdio://\"",
    );
    let config = parse(&format!("{MINIMAL}[agent]\ntransport = \"stdio://\"\n")).unwrap();
    assert_eq!(config.agent.command, vec!["codex", "app-server"]);
}

#[test]
fn unknown_keys_suggest_the_closest_known_key() {
    check_error(
        &format!("{MINIMAL}project_slg = \"p\"\n"),
        "maestro.toml:7:1: field `tracker.project_slg`: unknown key `project_slg` in [tracker]; did you mean `project_slug`?",
    );
    check_error(
        &format!("worksapce_root = \"/w\"\n{MINIMAL}"),
        "maestro.toml:1:1: field `worksapce_root`: unknown key `worksapce_root` at the top level; did you mean `workspace_root`?",
    );
    check_error(
        &format!("{MINIMAL}[agent]\ncomand = \"codex app-server\"\n"),
        "did you mean `command`?",
    );
    check_error(
        &format!("{MINIMAL}[github]\nfrobnicate = true\n"),
        "unknown key `frobnicate` in [github]; known keys: token_env_var, api_url",
    );
}

#[test]
fn literal_tokens_are_rejected_wherever_they_appear() {
    check_error(
        &MINIMAL.replace("\"LINEAR_API_KEY\"", "\"lin_api_0123456789abcdefghij\""),
        "field `tracker.api_key_env_var`: looks like a literal token (`lin_api_…`); never put secrets in this file",
    );
    check_error(
        &format!("{MINIMAL}[github]\ntoken_env_var = \"ghp_0123456789abcdefghijklmn\"\n"),
        "field `github.token_env_var`: looks like a literal token (`ghp_…`)",
    );
    check_error(
        &format!(
            "{MINIMAL}[agent]\ncommand = \"codex app-server --token github_pat_11ABCDEFG0123456789\"\n"
        ),
        "field `agent.command`: looks like a literal token (`github_pat_…`)",
    );
}

/// Found by fuzzing (fuzz/ config_parse): a value rejected for its shape was echoed whole, so
/// a token pasted into `id` or `provider` reached the terminal next to the "literal token" error.
#[test]
fn errors_never_echo_a_pasted_token() {
    let token = "lin_api_0123456789abcdefXYZ";
    for text in [
        MINIMAL.replace("\"demo\"", &format!("\"my-app {token}\"")),
        MINIMAL.replace("[tracker]", &format!("[tracker]\nprovider = \"{token}\"")),
        format!("{MINIMAL}{token} = 1\n"),
    ] {
        let message = parse(&text)
            .expect_err("config should be rejected")
            .to_string();
        assert!(!message.contains(token), "{message}");
        assert!(message.contains("lin_api_…"), "{message}");
    }
}

#[test]
fn policy_keys_are_rejected_with_the_reason() {
    check_error(
        &format!("{MINIMAL}[agent]\nsandbox = \"danger-full-access\"\n"),
        "field `agent.sandbox`: sandbox and approval policy cannot be set here: execution policy is inherited from the Codex runtime",
    );
}

#[test]
fn bad_toml_is_located() {
    let error = parse("id = \"demo\"\nrepo_root = \n").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("/etc/maestro/maestro.toml:2:"),
        "{message}"
    );
    assert!(message.contains("invalid TOML"), "{message}");
}

#[test]
fn several_problems_are_reported_together_in_file_order() {
    let error =
        parse("id = \"Bad Id\"\nrepo_root = 3\n[tracker]\napi_key_env_var = \"K\"\n").unwrap_err();
    let Error::Invalid { diagnostics, .. } = &error else {
        panic!("expected Invalid, got {error:?}");
    };
    let fields: Vec<&str> = diagnostics.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(fields, vec!["id", "repo_root"]);
    assert!(error.to_string().starts_with(
        "invalid config /etc/maestro/maestro.toml (2 problems):\n/etc/maestro/maestro.toml:1:6: field `id`"
    ));
}

fn lookup(dir: &TestDir, xdg: bool) -> Lookup {
    Lookup {
        cwd: dir.join("work"),
        xdg_config_home: xdg.then(|| dir.join("xdg")),
        home: Some(dir.join("home")),
        codex_bin: None,
    }
}

#[test]
fn resolution_order_explicit_then_tmp_then_xdg_then_home_config() {
    let dir = TestDir::new("config-resolution");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let explicit = dir.write("elsewhere/maestro.toml", MINIMAL);
    let local = dir.write("work/tmp/maestro.toml", MINIMAL);
    let xdg = dir.write("xdg/maestro/maestro.toml", MINIMAL);
    let home = dir.write("home/.config/maestro/maestro.toml", MINIMAL);

    let with_xdg = lookup(&dir, true);
    assert_eq!(
        config::resolve(Some(&explicit), &with_xdg).unwrap(),
        explicit
    );
    assert_eq!(config::resolve(None, &with_xdg).unwrap(), local);
    std::fs::remove_file(&local).unwrap();
    assert_eq!(config::resolve(None, &with_xdg).unwrap(), xdg);
    let without_xdg = lookup(&dir, false);
    assert_eq!(config::resolve(None, &without_xdg).unwrap(), home);
    std::fs::remove_file(&home).unwrap();
    let error = config::resolve(None, &without_xdg).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "no maestro config found (tried: {}, {}); run 'maestro init' in the repository's checkout to write tmp/maestro.toml, or pass --config PATH",
            dir.join("work/tmp/maestro.toml").display(),
            dir.join("home/.config/maestro/maestro.toml").display()
        )
    );
}

#[test]
fn explicit_config_must_exist_and_is_relative_to_cwd() {
    let dir = TestDir::new("config-explicit");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    dir.write("work/tmp/maestro.toml", MINIMAL);
    let error = config::resolve(Some(Path::new("nope.toml")), &lookup(&dir, true)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "config file {} (given with --config) does not exist; check the path, or run 'maestro init' to write tmp/maestro.toml",
            dir.join("work/nope.toml").display()
        )
    );
}

/// Issue #16: a literal GitHub token in `github.token_env_var` was answered with an example
/// for the Linear field (`api_key_env_var = "LINEAR_API_KEY"`). The example is now the field
/// the token was found in, with the variable usual for the token's kind.
#[test]
fn a_pasted_token_is_answered_with_the_field_it_was_found_in() {
    check_error(
        &format!("{MINIMAL}[github]\ntoken_env_var = \"ghp_0123456789abcdefghijklmn\"\n"),
        "field `github.token_env_var`: looks like a literal token (`ghp_…`); never put secrets in this file: export the token in an environment variable and give the variable's name here (for example token_env_var = \"GITHUB_TOKEN\")",
    );
    check_error(
        &MINIMAL.replace("\"LINEAR_API_KEY\"", "\"lin_api_0123456789abcdefghij\""),
        "field `tracker.api_key_env_var`: looks like a literal token (`lin_api_…`); never put secrets in this file: export the token in an environment variable and give the variable's name here (for example api_key_env_var = \"LINEAR_API_KEY\")",
    );
    let error = parse(&format!(
        "{MINIMAL}[agent]\ncommand = \"codex app-server --token github_pat_11ABCDEFG0123456789\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.ends_with(
            "looks like a literal token (`github_pat_…`); never put secrets in this file: export the token in an environment variable (for example GITHUB_TOKEN) and name that variable in the field meant for it"
        ),
        "{error}"
    );
    assert!(!error.contains("api_key_env_var"), "{error}");
}

/// `MAESTRO_CODEX_BIN` stands in for the bare program `codex` only: an explicit path in the
/// file, or another program, is what runs.
#[test]
fn the_codex_bin_override_replaces_only_a_bare_codex() {
    let dir = TestDir::new("config-codex-bin");
    std::fs::create_dir_all(dir.join("work")).unwrap();
    let with_bin = Lookup {
        codex_bin: Some(PathBuf::from("bin/codex")),
        ..lookup(&dir, false)
    };
    let words = |text: &str| text.split(' ').map(String::from).collect::<Vec<_>>();
    assert_eq!(
        with_bin.agent_command(words("codex app-server")),
        [
            dir.join("work/bin/codex").display().to_string(),
            "app-server".into()
        ]
    );
    for explicit in [
        "/opt/codex app-server",
        "./codex app-server",
        "npx codex app-server",
    ] {
        assert_eq!(with_bin.agent_command(words(explicit)), words(explicit));
    }
    dir.write("work/tmp/maestro.toml", MINIMAL);
    let config = config::load(None, &with_bin).unwrap();
    assert_eq!(
        config.agent.command[0],
        dir.join("work/bin/codex").display().to_string()
    );
    let unset = lookup(&dir, false);
    assert_eq!(
        config::load(None, &unset).unwrap().agent.command,
        ["codex", "app-server"]
    );
}
