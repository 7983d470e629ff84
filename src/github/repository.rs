//! `GET /repos/{owner}/{repo}`: can the configured token see the repository, and what may it
//! do there. `maestro doctor` asks it once, before a live handoff would need the token; the
//! run itself never does.

use serde::{Deserialize, Serialize};

use super::http::{Bounded, cut};
use super::{Client, Error, RepoRef};

/// What GitHub says about a repository the token can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// `owner/name` as GitHub spells it.
    pub full_name: String,
    pub private: bool,
    /// The token's permissions on it; `None` when GitHub did not say (an unauthenticated view).
    pub can_push: Option<bool>,
}

impl Client {
    /// `GET /repos/{owner}/{repo}`. A 404 means the repository does not exist or the token
    /// cannot see it (GitHub does not tell the two apart).
    pub fn repository(&self, repo: &RepoRef) -> Result<Repository, Error> {
        let wire: WireRepository = self.get_json(&self.repo_url(repo), "repository")?.value;
        Ok(Repository {
            full_name: wire.full_name,
            private: wire.private.unwrap_or(false),
            can_push: wire.permissions.map(|permissions| permissions.push),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireRepository {
    full_name: String,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default)]
    permissions: Option<WirePermissions>,
}

#[derive(Serialize, Deserialize)]
struct WirePermissions {
    #[serde(default)]
    push: bool,
}

impl Bounded for WireRepository {
    fn bound(&mut self) {
        // GitHub bounds repository names itself; a hostile or broken answer stays small anyway.
        cut(&mut self.full_name, 256);
    }
}
