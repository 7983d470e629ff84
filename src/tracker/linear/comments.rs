//! Reading an issue's comments back: only those whose body contains a given text, so finding
//! one of Maestro's own comments by its marker line costs one small page, however long the
//! thread is. This file sequences the `IssueComments` operation; what is looked for, and why,
//! is the caller's.

use serde::Deserialize;
use serde_json::json;

use super::wire::Connection;
use super::{Client, Pager, documents};
use crate::tracker::{Comment, Error};

/// Comments per page: a marker matches one comment, rarely two; a thread that quotes it more
/// often still reads whole, page by page.
const PAGE_SIZE: u32 = 50;

#[derive(Debug, Deserialize)]
struct IssueCommentsData {
    issue: Option<WireIssueComments>,
}

#[derive(Debug, Deserialize)]
struct WireIssueComments {
    comments: Connection<WireComment>,
}

#[derive(Debug, Deserialize)]
struct WireComment {
    id: String,
    #[serde(default)]
    body: String,
}

impl Client {
    /// The comments of `issue_id` whose body contains `text`, oldest first, every page.
    pub(super) fn comments_matching(
        &self,
        issue_id: &str,
        text: &str,
    ) -> Result<Vec<Comment>, Error> {
        const OPERATION: &str = "IssueComments";
        let mut comments = Vec::new();
        let mut pages = Pager::new(OPERATION);
        while let Some(after) = pages.next_cursor() {
            let data: IssueCommentsData = self.transport.call(
                OPERATION,
                documents::ISSUE_COMMENTS,
                &json!({"issueId": issue_id, "contains": text, "first": PAGE_SIZE, "after": after}),
            )?;
            let Some(issue) = data.issue else {
                return Err(Error::IssueNotFound {
                    id: issue_id.to_string(),
                });
            };
            pages.advance(&issue.comments)?;
            comments.extend(issue.comments.nodes.into_iter().map(|comment| Comment {
                id: comment.id,
                body: comment.body,
            }));
        }
        // Linear's `contains` is what the filter promises; the check here keeps a caller's
        // exact-match contract whatever the server's collation does.
        comments.retain(|comment| comment.body.contains(text));
        Ok(comments)
    }
}
