//! `viewer`: who the API key belongs to. `maestro doctor` asks it first, so a wrong or revoked
//! key is named as such before any project query; runs never need it.

use serde::Deserialize;
use serde_json::json;

use super::Client;
use crate::tracker::Error;

const VIEWER: &str = include_str!("graphql/viewer.graphql");

/// The longest user name kept from an answer.
const NAME_BYTES: usize = 200;

/// The user an API key authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
struct ViewerData {
    viewer: WireViewer,
}

#[derive(Deserialize)]
struct WireViewer {
    id: String,
    name: String,
}

impl Client {
    /// The user the key belongs to (one cheap query, no project involved).
    pub fn viewer(&self) -> Result<Viewer, Error> {
        let data: ViewerData = self.transport.call("Viewer", VIEWER, &json!({}))?;
        let mut name = data.viewer.name;
        if name.len() > NAME_BYTES {
            let mut end = NAME_BYTES;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name.truncate(end);
        }
        Ok(Viewer {
            id: data.viewer.id,
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_its_operation() {
        assert!(VIEWER.contains("query Viewer {"));
    }
}
