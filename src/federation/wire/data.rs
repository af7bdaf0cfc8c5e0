//! Records on the wire: the data document (records and their values) as
//! we serve it and as a peer sends it, the records index, and the
//! documented variant's Activity Streams pages.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::envelope::rfc3339;
use super::structure::LinkDoc;

/// A value entry: `{name, value}`; Corteza omits `value` for a false Bool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ValueDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// fedsync only: the value is a reference to a record of the reader's
    /// own (one the reader sent us), given as the reader's id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yours: bool,
}

/// A value entry as we serve it, borrowed from the page being encoded.
#[derive(Debug, Serialize)]
pub struct ValueOut<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// As `ValueDoc::yours`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub yours: bool,
}

/// A record in the internal data document, borrowing its values and
/// namespace from the page being encoded (no copy of each string).
#[derive(Debug, Serialize)]
pub struct RecordDoc<'a> {
    #[serde(rename = "recordID")]
    pub record_id: String,
    #[serde(rename = "moduleID")]
    pub module_id: String,
    pub revision: u64,
    pub values: Vec<ValueOut<'a>>,
    #[serde(rename = "namespaceID")]
    pub namespace_id: &'a str,
    #[serde(rename = "ownedBy")]
    pub owned_by: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    #[serde(rename = "updatedAt", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(rename = "deletedAt", skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

impl<'a> RecordDoc<'a> {
    pub fn new(
        record: &crate::domain::Record,
        values: &'a [crate::sync::data::ServedValue],
        namespace_id: &'a str,
    ) -> RecordDoc<'a> {
        RecordDoc {
            record_id: record.id.to_string(),
            module_id: record.module_id.to_string(),
            revision: record.revision,
            values: values
                .iter()
                .map(|v| ValueOut {
                    name: &v.name,
                    value: &v.value,
                    yours: v.yours,
                })
                .collect(),
            namespace_id,
            owned_by: "0".to_owned(),
            created_at: rfc3339(record.created_at),
            created_by: "0".to_owned(),
            updated_at: (record.updated_at != record.created_at)
                .then(|| rfc3339(record.updated_at)),
            deleted_at: record.deleted_at.map(rfc3339),
        }
    }
}

/// The echoed filter of the internal data document.
#[derive(Debug, Serialize)]
pub struct DataFilter {
    #[serde(rename = "moduleID")]
    pub module_id: String,
    #[serde(rename = "namespaceID")]
    pub namespace_id: String,
    pub query: String,
    pub deleted: u8,
    pub sort: String,
    pub limit: u32,
    #[serde(rename = "nextPage", skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
    /// Our extension: where the next run starts (fedsync peers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Records in this page and the ones after it; only when asked
    /// (`incTotal`, as Corteza's compose API names it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// `response` of `GET /nodes/{id}/modules/{module}/records/`.
#[derive(Debug, Serialize)]
pub struct DataDoc<'a> {
    pub filter: DataFilter,
    pub set: Vec<RecordDoc<'a>>,
}

/// A peer's answer to a records request: the data document, and the error
/// a refusal (or Corteza's HTTP-200 error) carries instead.
#[derive(Debug, Deserialize)]
pub struct DataAnswerIn<'a> {
    #[serde(borrow)]
    pub response: DataDocIn<'a>,
    #[serde(default)]
    pub error: Option<serde::de::IgnoredAny>,
}

/// A data document as a peer sends it.
#[derive(Debug, Deserialize)]
pub struct DataDocIn<'a> {
    #[serde(default)]
    pub filter: Option<DataFilterIn>,
    #[serde(default, borrow)]
    pub set: Option<Vec<RecordIn<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct DataFilterIn {
    #[serde(rename = "nextPage", default)]
    pub next_page: Option<String>,
    #[serde(default)]
    pub resume: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
}

/// A record as a peer sends it; its id and times are borrowed from the
/// document (parsed once, never kept), its values owned.
#[derive(Debug, Deserialize)]
pub struct RecordIn<'a> {
    #[serde(rename = "recordID", borrow)]
    pub record_id: Text<'a>,
    #[serde(default)]
    pub values: Option<Vec<ValueDoc>>,
    #[serde(rename = "createdAt", default, borrow)]
    pub created_at: Option<Text<'a>>,
    #[serde(rename = "updatedAt", default, borrow)]
    pub updated_at: Option<Text<'a>>,
    #[serde(rename = "deletedAt", default, borrow)]
    pub deleted_at: Option<Text<'a>>,
}

/// A string borrowed from the document (owned only when it holds escapes);
/// serde borrows a `Cow` field only when its type is `Cow` itself, not
/// inside an `Option`, hence this newtype.
#[derive(Debug, Deserialize)]
pub struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl Text<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A link of the records index: `{type, rel, href}`.
#[derive(Debug, Serialize)]
pub struct IndexSet {
    pub set: Vec<LinkDoc>,
}

/// An Activity Streams 2.0 collection page (no envelope).
#[derive(Debug, Serialize)]
pub struct ActivityPage {
    #[serde(rename = "@context")]
    pub context: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "itemsPerPage")]
    pub items_per_page: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<ActivityLink>,
    pub items: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ActivityLink {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'static str,
    pub href: String,
}

pub const ACTIVITY_STREAMS: &str = "https://www.w3.org/ns/activitystreams";
