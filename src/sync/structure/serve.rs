//! The origin side of structure sync: our exposed modules served to a
//! peer a page at a time by a keyset on the exposed module id, with sealed,
//! pair-bound cursors that carry the `lastSync` filter.

use serde::{Deserialize, Serialize};

use super::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::crypto::{SigningKey, mac};
use crate::domain::{ExposedModule, Id, Node};
use crate::store::{ExposedPageQuery, Store, StoreError};

const CURSOR_PURPOSE: &str = "structure-page";

/// What a page request asked for.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Corteza's `lastSync`: unix seconds.
    pub last_sync: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A page of exposed modules, ready to encode.
#[derive(Debug, Clone)]
pub struct ServedPage {
    pub modules: Vec<ExposedModule>,
    pub next_cursor: Option<String>,
    pub last_sync: i64,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the local data plane failed: {0}")]
    Local(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a structure page cursor carries (sealed: a peer cannot forge one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorPayload {
    /// The node (pair) the cursor belongs to.
    pub n: u64,
    /// The last exposed module id served.
    pub a: u64,
    /// The `lastSync` filter, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<i64>,
}

/// Seals a structure page cursor.
pub fn seal_cursor(key: &SigningKey, cursor: &CursorPayload) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    mac::seal(key, CURSOR_PURPOSE, &payload)
}

/// The structure page cursor in `text`, or `None` when this node (with
/// `key`) did not issue it.
pub fn open_cursor(key: &SigningKey, text: &str) -> Option<CursorPayload> {
    mac::open(key, CURSOR_PURPOSE, text).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Serves one page of `node`'s exposed modules. Tombstones (unexposed
/// modules) are served only to peers that understand them.
pub async fn serve_page(
    store: &dyn Store,
    key: &SigningKey,
    node: &Node,
    include_deleted: bool,
    request: PageRequest,
) -> Result<ServedPage, ServeError> {
    let limit = match request.limit {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) => n.min(MAX_PAGE_SIZE),
    };
    let (after, last_sync) = match &request.cursor {
        Some(text) => {
            let payload = open_cursor(key, text).ok_or_else(|| {
                ServeError::BadRequest("pageCursor is not a cursor this node issued".into())
            })?;
            if payload.n != node.id.get() {
                return Err(ServeError::BadRequest(
                    "pageCursor belongs to another pair".into(),
                ));
            }
            (Id::new(payload.a), payload.s)
        }
        None => (None, request.last_sync),
    };
    if let Some(t) = last_sync
        && t < 0
    {
        return Err(ServeError::BadRequest(
            "lastSync must not be negative".into(),
        ));
    }
    let since = last_sync
        .filter(|t| *t > 0)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let mut modules = store
        .page_exposed_modules(&ExposedPageQuery {
            node_id: node.id,
            since,
            after,
            include_deleted,
            limit: limit + 1,
        })
        .await?;
    let next_cursor = if modules.len() > limit as usize {
        modules.truncate(limit as usize);
        let last = modules.last().map(|m| m.id.get()).unwrap_or(0);
        Some(seal_cursor(
            key,
            &CursorPayload {
                n: node.id.get(),
                a: last,
                s: last_sync,
            },
        ))
    } else {
        None
    };
    Ok(ServedPage {
        modules,
        next_cursor,
        last_sync: last_sync.unwrap_or(0),
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_payloads_are_compact() {
        let payload = serde_json::to_string(&CursorPayload {
            n: 523615093115650149,
            a: 912285089520418816,
            s: None,
        })
        .unwrap();
        assert_eq!(
            payload,
            r#"{"n":523615093115650149,"a":912285089520418816}"#
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn cursor() -> impl Strategy<Value = CursorPayload> {
            (
                any::<u64>(),
                any::<u64>(),
                proptest::option::of(any::<i64>()),
            )
                .prop_map(|(n, a, s)| CursorPayload { n, a, s })
        }

        crate::sync::sealed_cursor_properties!(crate::sync::data::open_cursor);
    }
}
