//! The GitHub PR check against the fake GitHub: token handling, shapes, statuses.

use maestro::config::GithubConfig;
use maestro::github::{self, Client, Error, Expectation, RepoRef};

use crate::support::fake_github::{FakeGithub, Head, Pull};

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
    fake.add(Pull {
        repo: "acme/widgets".into(),
        number: 7,
        head_ref: "x/demo-abc-1".into(),
        head: Head::Fixed("abc123".into()),
        state: "open".into(),
        draft: false,
    });
    let pr = client(&fake).pull_request(&widgets(), 7).unwrap();
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
