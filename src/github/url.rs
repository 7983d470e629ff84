//! Parsing what names a repository or a pull request: git remotes, the web host derived from
//! `[github] api_url`, and PR URLs, strictly; plus quoting outside text safely.
//!
//! Pure functions over strings: no I/O and no GitHub call. A PR URL is the agent's text, so the
//! parser accepts one shape only and its errors never repeat the URL (it may carry a token).

use std::fmt;

/// How much of a reply's text (a branch name, a body) an error message quotes.
const QUOTE_CHARS: usize = 100;

/// A GitHub repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// `owner/name` as written; compare with [`RepoRef::same`], case-insensitively as GitHub
    /// does.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// Whether `full_name` (`owner/name`, as GitHub answers it) names this repository.
    pub(super) fn same(&self, full_name: &str) -> bool {
        self.full_name().eq_ignore_ascii_case(full_name)
    }
}

/// Parses a git remote URL: `git@host:owner/name(.git)`, `ssh://git@host/owner/name(.git)` or
/// `https://host/owner/name(.git)`.
pub fn parse_remote(url: &str) -> Option<RepoRef> {
    let url = url.trim();
    let path = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
    {
        rest.split_once('/')?.1
    } else if let Some((user_host, path)) = url.split_once(':') {
        if !user_host.contains('@') || user_host.contains('/') {
            return None;
        }
        path
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut parts = path.split('/');
    let (owner, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || owner.is_empty() || name.is_empty() {
        return None;
    }
    Some(RepoRef {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

/// Where GitHub serves web pages for the configured API: the one host a pull request URL may
/// name. Lowercase `host` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebHost(String);

impl WebHost {
    /// The web host of `[github] api_url`:
    ///
    /// - `https://api.github.com` → `github.com`;
    /// - `https://api.NAME.ghe.com` → `NAME.ghe.com` (GitHub Enterprise Cloud, data residency);
    /// - `https://HOST[:PORT]/api/v3` (GitHub Enterprise Server) and any other
    ///   `https://HOST[:PORT]/…` → `HOST[:PORT]`;
    /// - `http://HOST[:PORT]/…` → `HOST`: a plain-text API (a loopback test fake) serves no
    ///   pages of its own, and PR pages are https on its default port.
    ///
    /// `None` when the URL has no host Maestro can compare (user info, an IPv6 literal, …).
    pub fn from_api_url(api_url: &str) -> Option<WebHost> {
        let api_url = api_url.trim();
        let (https, rest) = match api_url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, api_url.strip_prefix("http://")?),
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = split_authority(authority)?;
        if !https {
            return Some(WebHost(host));
        }
        if host == "api.github.com" {
            return Some(WebHost("github.com".into()));
        }
        let host = match host.strip_prefix("api.") {
            Some(tenant) if tenant.ends_with(".ghe.com") => tenant.to_string(),
            _ => host,
        };
        Some(WebHost(match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }))
    }

    /// `host` or `host:port`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits `host[:port]` into a lowercase DNS name or IPv4 address and a port other than
/// https's default; `None` for anything else (user info, IPv6, stray characters).
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let valid =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            let port: u16 = port.parse().ok().filter(|_| valid)?;
            (host, (port != 443).then_some(port))
        }
        None => (authority, None),
    };
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// Why a pull request URL was refused; the URL itself is never repeated (it may hold a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrUrlProblem {
    /// Spaces, control characters or non-ASCII characters anywhere.
    Characters,
    NotHttps,
    /// `user:password@` before the host.
    UserInfo,
    /// A `?query` or `#fragment`.
    QueryOrFragment,
    /// A well-formed host that is not the configured one (shown escaped).
    OtherHost(String),
    /// The path is not `/OWNER/REPO/pull/N`.
    Path,
}

impl fmt::Display for PrUrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrUrlProblem::Characters => {
                f.write_str("contains spaces, control or non-ASCII characters")
            }
            PrUrlProblem::NotHttps => f.write_str("is not an https:// URL"),
            PrUrlProblem::UserInfo => f.write_str("carries a user name or password"),
            PrUrlProblem::QueryOrFragment => f.write_str("has a query or fragment"),
            PrUrlProblem::OtherHost(host) => {
                write!(f, "names host `{host}`, not the configured GitHub host")
            }
            PrUrlProblem::Path => f.write_str("does not have the path /OWNER/REPO/pull/N"),
        }
    }
}

/// Parses a pull request URL strictly: `https://<web>/OWNER/REPO/pull/N` and nothing else.
pub fn parse_pr_url_on(url: &str, web: &WebHost) -> Result<(RepoRef, u64), PrUrlProblem> {
    let url = url.trim();
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PrUrlProblem::Characters);
    }
    let rest = url.strip_prefix("https://").ok_or(PrUrlProblem::NotHttps)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(PrUrlProblem::UserInfo);
    }
    if url.contains('?') || url.contains('#') {
        return Err(PrUrlProblem::QueryOrFragment);
    }
    let same_host = split_authority(authority).is_some_and(|(host, port)| {
        let authority = match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        authority == web.0
    });
    if !same_host {
        return Err(PrUrlProblem::OtherHost(shown(authority)));
    }
    let parts: Vec<&str> = path.split('/').collect();
    let [owner, name, "pull", number] = parts.as_slice() else {
        return Err(PrUrlProblem::Path);
    };
    let number_ok = !number.is_empty()
        && number.len() <= 19
        && number.bytes().all(|b| b.is_ascii_digit())
        && !number.starts_with('0');
    let number: u64 = match number.parse() {
        Ok(number) if number_ok => number,
        _ => return Err(PrUrlProblem::Path),
    };
    if !is_owner(owner) || !is_repo_name(name) {
        return Err(PrUrlProblem::Path);
    }
    Ok((
        RepoRef {
            owner: (*owner).to_string(),
            name: (*name).to_string(),
        },
        number,
    ))
}

/// GitHub user and organization names: letters, digits and inner hyphens, at most 39.
fn is_owner(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= 39
        && !owner.starts_with('-')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// GitHub repository names: letters, digits, `.`, `-` and `_`, at most 100, not `.` or `..`.
fn is_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Text from outside (a reply, the agent) made safe to quote in a message, a log line or a
/// Markdown comment: at most [`QUOTE_CHARS`] characters, control characters escaped, backticks
/// replaced so the text cannot close a code span.
pub fn shown(text: &str) -> String {
    let mut out = String::new();
    for (index, c) in text.chars().enumerate() {
        if index == QUOTE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '`' => out.push('\''),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// `text` with any `user:password@` after a `scheme://` replaced, for records of what the
/// agent sent: a URL with credentials must not carry them into a run record.
pub fn without_userinfo(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let (scheme, rest) = text.split_at(scheme_end + 3);
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>@{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(owner: &str, name: &str) -> RepoRef {
        RepoRef {
            owner: owner.into(),
            name: name.into(),
        }
    }

    #[test]
    fn remotes_in_every_form() {
        for url in [
            "git@github.com:acme/widgets.git",
            "git@github.com:acme/widgets",
            "ssh://git@github.com/acme/widgets.git",
            "https://github.com/acme/widgets.git",
            "https://github.com/acme/widgets/",
            "https://x-access-token@github.com/acme/widgets",
        ] {
            assert_eq!(parse_remote(url), Some(repo("acme", "widgets")), "{url}");
        }
        assert_eq!(parse_remote("/srv/git/widgets.git"), None);
        assert_eq!(parse_remote("https://github.com/acme"), None);
    }

    #[test]
    fn web_hosts_derive_from_the_api_url() {
        for (api_url, web) in [
            ("https://api.github.com", Some("github.com")),
            ("https://API.GitHub.com/", Some("github.com")),
            ("https://api.octo.ghe.com", Some("octo.ghe.com")),
            ("https://ghe.example.com/api/v3", Some("ghe.example.com")),
            (
                "https://ghe.example.com:8443/api/v3",
                Some("ghe.example.com:8443"),
            ),
            (
                "https://ghe.example.com:443/api/v3",
                Some("ghe.example.com"),
            ),
            ("http://127.0.0.1:41234", Some("127.0.0.1")),
            ("https://token@api.github.com", None),
            ("https://[::1]:8080", None),
            ("ftp://api.github.com", None),
        ] {
            assert_eq!(
                WebHost::from_api_url(api_url).as_ref().map(WebHost::as_str),
                web,
                "{api_url}"
            );
        }
    }

    #[test]
    fn pr_urls_are_parsed_strictly() {
        let web = WebHost::from_api_url("https://api.github.com").unwrap();
        let parse = |url: &str| parse_pr_url_on(url, &web);
        assert_eq!(
            parse(" https://github.com/acme/widgets/pull/42\n"),
            Ok((repo("acme", "widgets"), 42))
        );
        assert_eq!(
            parse("https://GitHub.com:443/acme/my.repo_x-1/pull/7"),
            Ok((repo("acme", "my.repo_x-1"), 7))
        );
        for (url, problem) in [
            (
                "http://github.com/acme/widgets/pull/42",
                PrUrlProblem::NotHttps,
            ),
            (
                "https://x-access-token:ghp_secret@github.com/acme/widgets/pull/42",
                PrUrlProblem::UserInfo,
            ),
            (
                "https://github.com/acme/widgets/pull/42?x=1",
                PrUrlProblem::QueryOrFragment,
            ),
            (
                "https://github.com/acme/widgets/pull/42#top",
                PrUrlProblem::QueryOrFragment,
            ),
            (
                "https://evil.example.net/acme/widgets/pull/1",
                PrUrlProblem::OtherHost("evil.example.net".into()),
            ),
            (
                "https://github.com.evil.net/acme/widgets/pull/1",
                PrUrlProblem::OtherHost("github.com.evil.net".into()),
            ),
            (
                "https://github.com:8443/acme/widgets/pull/1",
                PrUrlProblem::OtherHost("github.com:8443".into()),
            ),
            (
                "https://github.com\nrun --once: outcome=human_required/acme/widgets/pull/1",
                PrUrlProblem::Characters,
            ),
            (
                "https://github.com\u{1b}[2J/acme/widgets/pull/1",
                PrUrlProblem::Characters,
            ),
            (
                "https://[github.com](https://evil.net)/acme/widgets/pull/1",
                PrUrlProblem::OtherHost("[github.com](https:".into()),
            ),
            (
                "https://github.com/acme/widgets/issues/42",
                PrUrlProblem::Path,
            ),
            ("https://github.com/acme/widgets/pull/x", PrUrlProblem::Path),
            ("https://github.com/acme/widgets/pull/0", PrUrlProblem::Path),
            (
                "https://github.com/acme/widgets/pull/42/",
                PrUrlProblem::Path,
            ),
            (
                "https://github.com/acme/widgets/pull/42/files",
                PrUrlProblem::Path,
            ),
            ("https://github.com/acme/../pull/42", PrUrlProblem::Path),
            ("https://github.com//widgets/pull/42", PrUrlProblem::Path),
        ] {
            assert_eq!(parse(url), Err(problem), "{url:?}");
        }
    }

    #[test]
    fn outside_text_is_quoted_safely() {
        assert_eq!(shown("main"), "main");
        assert_eq!(shown("a\nb\u{1b}[31m`x`"), "a\\nb\\u{1b}[31m'x'");
        assert_eq!(shown(&"x".repeat(150)).chars().count(), QUOTE_CHARS + 1);
        assert_eq!(
            without_userinfo("https://x-access-token:ghp_1@github.com/a/b/pull/1"),
            "https://<redacted>@github.com/a/b/pull/1"
        );
        assert_eq!(without_userinfo("In Progress"), "In Progress");
        assert_eq!(
            without_userinfo("https://github.com/a/b@c/pull/1"),
            "https://github.com/a/b@c/pull/1"
        );
    }
}
