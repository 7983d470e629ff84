//! Landing a pull request: the merge (`PUT …/pulls/{n}/merge`) pinned to the validated head,
//! and the branch deletion after it (`DELETE …/git/refs/heads/{branch}`).
//!
//! The merge always carries `sha`: GitHub merges only if the PR's head is still that commit,
//! and answers 409 otherwise, so a head that moved after Maestro judged the PR ready is never
//! merged. A 405 (not mergeable as it is) and a 409 are typed errors the lifecycle turns into a
//! return to `review_wait`. Deleting a branch that is already gone (GitHub's automatic branch
//! deletion, a person) is success. Neither call is retried here.

use serde::Deserialize;
use serde_json::json;

use super::{Client, Error, RepoRef, is_commit_id, shown};

/// How GitHub combines the PR into its base: WORKFLOW.md's `[review] merge_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethod {
    Squash,
    Merge,
    Rebase,
}

impl MergeMethod {
    /// The wire and WORKFLOW.md value.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Squash => "squash",
            MergeMethod::Merge => "merge",
            MergeMethod::Rebase => "rebase",
        }
    }

    pub fn from_name(name: &str) -> Option<MergeMethod> {
        match name {
            "squash" => Some(MergeMethod::Squash),
            "merge" => Some(MergeMethod::Merge),
            "rebase" => Some(MergeMethod::Rebase),
            _ => None,
        }
    }
}

/// A merge GitHub made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The commit the merge created on the base branch.
    pub sha: String,
}

/// What a branch deletion found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchDeletion {
    Deleted,
    /// The branch did not exist any more (404 or 422 `Reference does not exist`).
    AlreadyGone,
}

impl Client {
    /// Merges PR `number` with `method` if, and only if, its head is still `head_sha`.
    ///
    /// 405 is [`Error::NotMergeable`], 409 [`Error::HeadMoved`]; nothing was merged then.
    pub fn merge(
        &self,
        repo: &RepoRef,
        number: u64,
        method: MergeMethod,
        head_sha: &str,
    ) -> Result<Merged, Error> {
        let url = format!("{}/pulls/{number}/merge", self.repo_url(repo));
        if !is_commit_id(head_sha) {
            return Err(Error::Malformed {
                url,
                message: format!("`{}` is not a commit id to merge", shown(head_sha)),
            });
        }
        let body = json!({"merge_method": method.as_str(), "sha": head_sha});
        let sent = self.send("PUT", &url, Some(&body))?;
        match sent.status {
            200 => {}
            405 => {
                return Err(Error::NotMergeable {
                    message: message_of(&sent.body),
                    url,
                });
            }
            409 => {
                return Err(Error::HeadMoved {
                    message: message_of(&sent.body),
                    url,
                });
            }
            _ => return Err(sent.error(&url, "pull request")),
        }
        let answer: WireMerge =
            serde_json::from_str(&sent.body).map_err(|error| Error::Malformed {
                url: url.clone(),
                message: error.to_string(),
            })?;
        if !answer.merged || !is_commit_id(&answer.sha) {
            return Err(Error::Malformed {
                url,
                message: format!(
                    "the merge answer says merged={} sha=`{}`",
                    answer.merged,
                    shown(&answer.sha)
                ),
            });
        }
        Ok(Merged { sha: answer.sha })
    }

    /// Deletes `branch` from the repository; a branch that is already gone is success.
    pub fn delete_branch(&self, repo: &RepoRef, branch: &str) -> Result<BranchDeletion, Error> {
        let Some(path) = ref_path(branch) else {
            return Err(Error::Malformed {
                url: format!("{}/git/refs/heads/…", self.repo_url(repo)),
                message: format!("`{}` is not a branch name maestro deletes", shown(branch)),
            });
        };
        let url = format!("{}/git/refs/heads/{path}", self.repo_url(repo));
        let sent = self.send("DELETE", &url, None)?;
        match sent.status {
            204 | 200 => Ok(BranchDeletion::Deleted),
            404 | 422 => Ok(BranchDeletion::AlreadyGone),
            _ => Err(sent.error(&url, "branch")),
        }
    }
}

#[derive(Deserialize)]
struct WireMerge {
    #[serde(default)]
    sha: String,
    #[serde(default)]
    merged: bool,
}

/// GitHub's `message` from an error body, cut; the whole body (cut) when it has none.
fn message_of(body: &str) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    let text = serde_json::from_str::<Message>(body)
        .map(|parsed| parsed.message)
        .unwrap_or_else(|_| body.to_string());
    text.chars().take(300).collect()
}

/// `branch` as a URL path under `refs/heads/`: its `/`-separated parts, each a plain git ref
/// component (letters, digits, `-`, `_`, `.`, not starting with `.`, no `..`). Lane branches
/// are always of this shape; anything else is refused rather than escaped into a path.
fn ref_path(branch: &str) -> Option<&str> {
    let ok = !branch.is_empty()
        && branch.len() <= 255
        && !branch.contains("..")
        && branch.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && !part.ends_with(".lock")
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    ok.then_some(branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_branch_names_become_ref_paths() {
        assert_eq!(ref_path("x/demo-abc-1"), Some("x/demo-abc-1"));
        assert_eq!(ref_path("feature/v1.2_fix"), Some("feature/v1.2_fix"));
        for bad in [
            "",
            "../main",
            "x/../../main",
            "x//y",
            "/x",
            "x/",
            "x?y",
            "x#y",
            "x y",
            "x%2fy",
            ".hidden",
            "x.lock",
        ] {
            assert_eq!(ref_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn merge_methods_round_trip() {
        for method in [MergeMethod::Squash, MergeMethod::Merge, MergeMethod::Rebase] {
            assert_eq!(MergeMethod::from_name(method.as_str()), Some(method));
        }
        assert_eq!(MergeMethod::from_name("fast-forward"), None);
    }
}
