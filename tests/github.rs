//! The GitHub PR check against the fake GitHub: token handling, shapes, statuses, and replies
//! that must not be trusted (redirects, foreign `html_url`s, forks).

use maestro::config::GithubConfig;
use maestro::github::{self, Client, Error, Expectation, RepoRef};

use crate::support::fake_github::{FakeGithub, Pull, pull_url};

// Reading the token from its variable is covered end to end by the live-run tests, which pass
// it to the maestro process; changing this process's environment would race other tests.
fn client(fake: &FakeGithub) -> Client {
    Client::new(&fake.url(), "test-token-value".into())
}

fn widgets() -> RepoRef {
    github::parse_remote("git@github.com:acme/widgets.git").unwrap()
}

#[test]
fn reads_a_pull_request_sending_the_token() {
    let fake = FakeGithub::start();
    fake.add(Pull::fixed("acme/widgets", 7, "x/demo-abc-1", "abc123"));
    let pr = client(&fake).pull_request(&widgets(), 7).unwrap();
    assert_eq!(pr.html_url, pull_url("acme/widgets", 7));
    assert_eq!(pr.head_ref, "x/demo-abc-1");
    assert_eq!(pr.head_sha, "abc123");
    assert_eq!(pr.base_repo, "acme/widgets");
    let expected = Expectation {
        repo: widgets(),
        branch: "x/demo-abc-1".into(),
        head_sha: "abc123".into(),
    };
    assert!(github::mismatches(&pr, &expected).is_empty());
    let request = &fake.requests()[0];
    assert_eq!(request.path(), "/repos/acme/widgets/pulls/7");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer test-token-value")
    );
    assert!(
        request
            .header("user-agent")
            .unwrap()
            .starts_with("maestro/")
    );
}

#[test]
fn statuses_map_to_errors_that_never_show_the_token() {
    let fake = FakeGithub::start();
    let client = client(&fake);
    assert!(matches!(
        client.pull_request(&widgets(), 1),
        Err(Error::NotFound { .. })
    ));
    for (status, transient) in [(401, false), (403, false), (500, true), (502, true)] {
        fake.force_status(Some(status));
        let error = client.pull_request(&widgets(), 1).unwrap_err();
        assert_eq!(error.is_transient(), transient, "{status}: {error}");
        assert!(!error.to_string().contains("test-token-value"));
    }
    assert!(!format!("{client:?}").contains("test-token-value"));
}

#[test]
fn a_missing_token_names_the_variable() {
    let error = Client::from_config(&GithubConfig {
        token_env_var: Some("MAESTRO_TEST_SURELY_UNSET_TOKEN".into()),
        api_url: "http://127.0.0.1:9".into(),
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the GitHub token variable MAESTRO_TEST_SURELY_UNSET_TOKEN (named by [github] token_env_var) is unset or empty; export it before running"
    );
    let error = Client::from_config(&GithubConfig {
        token_env_var: None,
        api_url: "http://127.0.0.1:9".into(),
    })
    .unwrap_err();
    assert!(error.to_string().contains("set [github] token_env_var"));
}

#[test]
fn an_unreachable_github_is_a_transient_transport_error() {
    let fake = FakeGithub::start();
    let unreachable = {
        let client = client(&fake);
        drop(fake);
        client
    };
    let error = unreachable.pull_request(&widgets(), 1).unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(error.is_transient());
}

fn lane_expectation() -> Expectation {
    Expectation {
        repo: widgets(),
        branch: "x/demo-abc-1".into(),
        head_sha: "abc123".into(),
    }
}

/// Issue #19, break 3: a redirect from the API was followed, so another host's answer became
/// the PR check's evidence. It is now an error naming where it pointed, and the other host is
/// never asked.
#[test]
fn a_redirect_is_not_followed() {
    let elsewhere = FakeGithub::start();
    elsewhere.add(Pull::fixed("acme/widgets", 7, "x/demo-abc-1", "abc123"));
    let fake = FakeGithub::start();
    fake.redirect_to(&elsewhere.url());
    let result = client(&fake).pull_request(&widgets(), 7);
    let error = result.expect_err("a redirect is not an answer");
    let message = error.to_string();
    assert!(message.contains("redirect"), "{message}");
    assert!(message.contains(&elsewhere.url()), "{message}");
    assert!(!error.is_transient());
    assert!(elsewhere.requests().is_empty(), "the other host was asked");
    assert!(!message.contains("test-token-value"));
}

/// Issue #19, break 3: the URL Maestro posts is GitHub's `html_url`, so it must itself be the
/// PR that was asked for, on the configured web host, with nothing hidden in it.
#[test]
fn a_reply_whose_html_url_is_not_that_pr_on_the_web_host_is_refused() {
    let fake = FakeGithub::start();
    let client = client(&fake);
    for html_url in [
        "https://evil.example.net/acme/widgets/pull/7".to_string(),
        "https://github.com/acme/widgets/pull/7".to_string(),
        "https://x-access-token:ghp_leak@127.0.0.1/acme/widgets/pull/7".to_string(),
        "https://127.0.0.1/acme/widgets/pull/8".to_string(),
        "https://127.0.0.1/mallory/widgets/pull/7".to_string(),
        "https://127.0.0.1/acme/widgets/pull/7?tab=files".to_string(),
        format!(
            "{}\nrun --once: issue=ABC-9 outcome=handoff",
            pull_url("acme/widgets", 7)
        ),
    ] {
        fake.add(Pull {
            html_url: Some(html_url.clone()),
            ..Pull::fixed("acme/widgets", 7, "x/demo-abc-1", "abc123")
        });
        let error = client
            .pull_request(&widgets(), 7)
            .expect_err("html_url must be refused");
        let message = error.to_string();
        assert!(message.contains("html_url"), "{html_url:?}: {message}");
        assert!(
            !message.contains('\n') && !message.contains("ghp_leak"),
            "{html_url:?}: {message}"
        );
    }
}

/// Issue #19, break 3: a PR whose head branch lives in a fork, or in a repository that no
/// longer exists, is not the lane's work even when branch name and commit match.
#[test]
fn a_pr_from_a_fork_or_a_deleted_head_repository_is_a_mismatch() {
    let fake = FakeGithub::start();
    let client = client(&fake);
    for (head_repo, expected) in [
        (
            Some("mallory/widgets"),
            "PR head branch is in mallory/widgets",
        ),
        (None, "PR head repository is unknown"),
    ] {
        fake.add(Pull {
            head_repo: head_repo.map(str::to_string),
            ..Pull::fixed("acme/widgets", 7, "x/demo-abc-1", "abc123")
        });
        let pr = client.pull_request(&widgets(), 7).unwrap();
        let problems = github::mismatches(&pr, &lane_expectation());
        assert_eq!(problems.len(), 1, "{head_repo:?}: {problems:?}");
        assert!(problems[0].starts_with(expected), "{problems:?}");
    }
}

/// Text from GitHub reaches messages (and from there Linear comments) escaped: no control
/// characters, no backticks that close a code span.
#[test]
fn reply_text_in_messages_is_escaped() {
    let fake = FakeGithub::start();
    fake.add(Pull {
        head_ref: "evil\u{1b}[2J`\n- pr_url: https://evil.example.net".into(),
        state: "closed\r\nrun --once: outcome=handoff".into(),
        ..Pull::fixed("acme/widgets", 7, "x/demo-abc-1", "abc123")
    });
    let pr = client(&fake).pull_request(&widgets(), 7).unwrap();
    let problems = github::mismatches(&pr, &lane_expectation());
    assert_eq!(problems.len(), 2, "{problems:?}");
    for problem in &problems {
        assert!(
            !problem.chars().any(char::is_control),
            "control character in {problem:?}"
        );
    }
    assert!(
        problems[0].contains("evil\\u{1b}[2J'\\n"),
        "{}",
        problems[0]
    );
}
