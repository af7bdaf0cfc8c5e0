//! The origin side of data sync: our exposed records served to a peer, a
//! page at a time by the keyset (changed_at, id), with sealed cursors.

use std::collections::HashMap;

use super::{CURSOR_PURPOSE, DEFAULT_RECORDS_PAGE, MAX_RECORDS_PAGE};
use serde::{Deserialize, Serialize};

use crate::crypto::{SigningKey, mac};
use crate::domain::{ExposedModule, Id, Node, Record};
use crate::store::{ChangeQuery, Store};
use crate::sync::ports::LocalRecords;
use crate::sync::structure::ServeError;

/// What a records page cursor carries (sealed: a peer cannot forge one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCursor {
    /// Node (pair) and exposed module the cursor belongs to.
    pub n: u64,
    pub m: u64,
    /// The last change served: (changed_at, record id).
    pub c: i64,
    pub i: u64,
    /// The `lastSync` filter, micros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<i64>,
}

/// Seals a records page cursor.
pub fn seal_cursor(key: &SigningKey, cursor: &RecordCursor) -> String {
    let payload = serde_json::to_vec(cursor).unwrap_or_default();
    mac::seal(key, CURSOR_PURPOSE, &payload)
}

/// The records page cursor in `text`, or `None` when this node (with `key`)
/// did not issue it.
pub fn open_cursor(key: &SigningKey, text: &str) -> Option<RecordCursor> {
    mac::open(key, CURSOR_PURPOSE, text).and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// A page request: `lastSync` (unix seconds), `limit`, `pageCursor`.
#[derive(Debug, Clone, Default)]
pub struct RecordsPageRequest {
    pub last_sync: Option<i64>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Count the records still to come (this page's and the later ones').
    pub include_total: bool,
}

/// A page of records ready to encode: values already cut to the exposed fields.
#[derive(Debug, Clone)]
pub struct ServedRecords {
    pub exposure: ExposedModule,
    pub records: Vec<ServedRecord>,
    pub next_cursor: Option<String>,
    pub resume_cursor: String,
    pub limit: u32,
    /// Records in this page and the later ones, when asked.
    pub total: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ServedRecord {
    /// The record, without the exposed values (moved to `values`).
    pub record: Record,
    /// Exposed fields only, multi-value fields repeated.
    pub values: Vec<ServedValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServedValue {
    pub name: String,
    pub value: String,
    /// A reference to a record that came from the reader, as the reader's id.
    pub yours: bool,
}

/// Serves one page of changed records of an exposed module to `node`.
/// Records that arrived from that peer are never sent back to it; records
/// from any peer only when `reexport` is on.
pub async fn serve_records(
    store: &dyn Store,
    records: &dyn LocalRecords,
    key: &SigningKey,
    node: &Node,
    exposed_module_id: &str,
    request: RecordsPageRequest,
    reexport: bool,
) -> Result<ServedRecords, ServeError> {
    let not_found = || ServeError::NotFound("module does not exist".into());
    let exposure = match exposed_module_id.parse::<Id>() {
        Ok(id) => store.get_exposed_module(id).await?,
        Err(_) => None,
    }
    .filter(|e| e.node_id == node.id && e.deleted_at.is_none())
    .ok_or_else(not_found)?;
    let limit = match request.limit {
        None | Some(0) => DEFAULT_RECORDS_PAGE,
        Some(n) => n.min(MAX_RECORDS_PAGE),
    };
    let (after, since) = match &request.cursor {
        Some(text) => {
            let c = open_cursor(key, text).ok_or_else(|| {
                ServeError::BadRequest("pageCursor is not a cursor this node issued".into())
            })?;
            if c.n != node.id.get() || c.m != exposure.id.get() {
                return Err(ServeError::BadRequest(
                    "pageCursor belongs to another pair or module".into(),
                ));
            }
            (Id::new(c.i).map(|i| (c.c, i)), c.s)
        }
        None => {
            if request.last_sync.is_some_and(|t| t < 0) {
                return Err(ServeError::BadRequest(
                    "lastSync must not be negative".into(),
                ));
            }
            (
                None,
                request
                    .last_sync
                    .filter(|t| *t > 0)
                    .map(|t| t.saturating_mul(1_000_000)),
            )
        }
    };
    let query = ChangeQuery {
        module_id: exposure.module_id,
        after,
        since,
        exclude_origin: Some(node.id),
        exclude_received: !reexport,
        limit: limit + 1,
    };
    let mut page = records
        .page_changes(&query)
        .await
        .map_err(|e| ServeError::Local(e.to_string()))?;
    let total = if request.include_total {
        records
            .count_changes(&query)
            .await
            .map_err(|e| ServeError::Local(e.to_string()))?
    } else {
        None
    };
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let (last_changed, last_id) = match page.last() {
        Some(r) => (r.changed_at, r.id.get()),
        None => after.map(|(c, i)| (c, i.get())).unwrap_or((0, 0)),
    };
    let cursor = |c: i64, i: u64| {
        seal_cursor(
            key,
            &RecordCursor {
                n: node.id.get(),
                m: exposure.id.get(),
                c,
                i,
                s: since,
            },
        )
    };
    let resume_cursor = cursor(last_changed, last_id);
    let exposed: Vec<(&str, bool)> = exposure
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind.eq_ignore_ascii_case("Record")))
        .collect();
    // References to records that are our copies of the reader's records go
    // back as the reader's own ids.
    let referenced: Vec<Id> = page
        .iter()
        .flat_map(|record| {
            exposed
                .iter()
                .filter(|(_, is_ref)| *is_ref)
                .filter_map(|(name, _)| record.values.get(*name))
                .flatten()
                .filter_map(|v| v.parse::<Id>().ok())
        })
        .collect();
    let returned: HashMap<Id, Id> = store
        .find_links_by_local(node.id, &referenced)
        .await?
        .into_iter()
        .map(|l| (l.local_record_id, l.origin_record_id))
        .collect();
    // The exposed values move out of the record (no copy); the record
    // keeps its other values.
    let records = page
        .into_iter()
        .map(|mut record| {
            let mut values = Vec::new();
            for (name, is_ref) in &exposed {
                for value in record.values.remove(*name).into_iter().flatten() {
                    let theirs = is_ref
                        .then(|| value.parse::<Id>().ok().and_then(|id| returned.get(&id)))
                        .flatten();
                    values.push(ServedValue {
                        name: name.to_string(),
                        value: theirs.map_or(value, |id| id.to_string()),
                        yours: theirs.is_some(),
                    });
                }
            }
            ServedRecord { record, values }
        })
        .collect();
    Ok(ServedRecords {
        exposure,
        records,
        next_cursor: more.then(|| resume_cursor.clone()),
        resume_cursor,
        limit,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn cursor() -> impl Strategy<Value = RecordCursor> {
            (
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                any::<u64>(),
                proptest::option::of(any::<i64>()),
            )
                .prop_map(|(n, m, c, i, s)| RecordCursor { n, m, c, i, s })
        }

        crate::sync::sealed_cursor_properties!(crate::sync::structure::open_cursor);
    }
}
