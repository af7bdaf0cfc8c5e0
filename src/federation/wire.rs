//! The federation wire: serde twins of what Corteza and fedsync peers send
//! and read. The only place that knows Corteza's JSON.
//!
//! Conventions of the wire: ids are decimal strings; payloads come in
//! `{"response": ...}`, acknowledgements as `{"success":{"message":"OK"}}`,
//! errors as `{"error":{"message": ...}}`. Our own peers add a `fedsync`
//! object to handshake bodies and answers, which Corteza ignores; its absence
//! tells us the peer is Corteza.

use serde::{Deserialize, Serialize};

use crate::domain::{ExposedModule, NodeId, Timestamp};

/// Our extension, present in what fedsync sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FedsyncExtension {
    pub version: String,
}

impl FedsyncExtension {
    pub fn ours() -> FedsyncExtension {
        FedsyncExtension {
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
}

/// `{"success":{"message":"OK"}}`, plus our extension.
#[derive(Debug, Serialize)]
pub struct SuccessBody {
    pub success: Message,
    pub fedsync: FedsyncExtension,
}

impl SuccessBody {
    pub fn ok() -> SuccessBody {
        SuccessBody {
            success: Message {
                message: "OK".to_owned(),
            },
            fedsync: FedsyncExtension::ours(),
        }
    }
}

/// `{"error":{"message": ...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: Message,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: Message {
                message: message.into(),
            },
        }
    }
}

/// `{"response": ...}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub response: T,
}

/// A handshake request in either spelling: Corteza's (`pairToken`,
/// `authToken`, `sharedNodeID`) or the documentation's (`nodeURI`, `token`,
/// `nodeIDB`). Serde refuses duplicate keys and wrong types.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HandshakeInitBody {
    #[serde(rename = "pairToken", default, skip_serializing_if = "Option::is_none")]
    pub pair_token: Option<String>,
    #[serde(rename = "authToken", default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(
        rename = "sharedNodeID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_node_id: Option<String>,
    #[serde(rename = "nodeURI", default, skip_serializing_if = "Option::is_none")]
    pub node_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "nodeIDB", default, skip_serializing_if = "Option::is_none")]
    pub node_id_b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fedsync: Option<FedsyncExtension>,
}

/// A handshake completion: Corteza's `authToken` or the documentation's `token`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct HandshakeCompleteBody {
    #[serde(rename = "authToken", default, skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fedsync: Option<FedsyncExtension>,
}

/// A field in Corteza's documents: `{kind, name, label, isMulti}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldDoc {
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(rename = "isMulti", default)]
    pub is_multi: bool,
}

/// An exposed module in the internal structure document.
#[derive(Debug, Serialize)]
pub struct ExposedModuleDoc {
    #[serde(rename = "moduleID")]
    pub module_id: String,
    #[serde(rename = "nodeID")]
    pub node_id: String,
    #[serde(rename = "composeModuleID")]
    pub compose_module_id: String,
    #[serde(rename = "composeNamespaceID")]
    pub compose_namespace_id: String,
    pub handle: String,
    pub name: String,
    pub fields: Vec<FieldDoc>,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    #[serde(rename = "updatedAt", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(rename = "deletedAt", skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
}

/// The echoed filter of the internal structure document (keys in Corteza's order).
#[derive(Debug, Serialize)]
pub struct StructureFilter {
    #[serde(rename = "nodeID")]
    pub node_id: String,
    #[serde(rename = "composeModuleID")]
    pub compose_module_id: String,
    #[serde(rename = "composeNamespaceID")]
    pub compose_namespace_id: String,
    #[serde(rename = "lastSync")]
    pub last_sync: i64,
    pub handle: String,
    pub name: String,
    pub query: String,
    pub sort: String,
    pub limit: u32,
    #[serde(rename = "nextPage", skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// `response` of `GET /nodes/{id}/modules/exposed/`. An empty set is `null`,
/// as Corteza sends it.
#[derive(Debug, Serialize)]
pub struct StructureDoc {
    pub filter: StructureFilter,
    pub set: Option<Vec<ExposedModuleDoc>>,
}

pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl StructureDoc {
    /// The document for `shared_node_id` listing `modules`.
    pub fn new(
        shared_node_id: NodeId,
        modules: &[ExposedModule],
        last_sync: i64,
        limit: u32,
        next_page: Option<String>,
    ) -> StructureDoc {
        let set: Vec<ExposedModuleDoc> = modules
            .iter()
            .map(|m| ExposedModuleDoc::new(shared_node_id, m))
            .collect();
        StructureDoc {
            filter: StructureFilter {
                node_id: shared_node_id.to_string(),
                compose_module_id: "0".to_owned(),
                compose_namespace_id: "0".to_owned(),
                last_sync,
                handle: String::new(),
                name: String::new(),
                query: String::new(),
                sort: "id".to_owned(),
                limit,
                next_page,
            },
            set: (!set.is_empty()).then_some(set),
        }
    }
}

impl ExposedModuleDoc {
    pub fn new(shared_node_id: NodeId, m: &ExposedModule) -> ExposedModuleDoc {
        ExposedModuleDoc {
            module_id: m.id.to_string(),
            node_id: shared_node_id.to_string(),
            compose_module_id: m.module_id.to_string(),
            compose_namespace_id: m.namespace_id.to_string(),
            handle: m.handle.clone(),
            name: m.name.clone(),
            fields: m
                .fields
                .iter()
                .map(|f| FieldDoc {
                    kind: f.kind.clone(),
                    name: f.name.clone(),
                    label: f.label.clone(),
                    is_multi: f.is_multi,
                })
                .collect(),
            created_at: rfc3339(m.created_at),
            created_by: "0".to_owned(),
            updated_at: (m.updated_at != m.created_at).then(|| rfc3339(m.updated_at)),
            deleted_at: m.deleted_at.map(rfc3339),
        }
    }
}

/// A structure document as a peer sends it (Corteza or fedsync). Only what
/// a destination needs is read; other keys are ignored.
#[derive(Debug, Deserialize)]
pub struct StructureDocIn {
    #[serde(default)]
    pub filter: Option<StructureFilterIn>,
    #[serde(default)]
    pub set: Option<Vec<ExposedModuleIn>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StructureFilterIn {
    #[serde(rename = "nextPage", default)]
    pub next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ExposedModuleIn {
    #[serde(rename = "moduleID")]
    pub module_id: String,
    #[serde(rename = "composeModuleID", default)]
    pub compose_module_id: Option<String>,
    #[serde(rename = "composeNamespaceID", default)]
    pub compose_namespace_id: Option<String>,
    #[serde(default)]
    pub handle: String,
    #[serde(default)]
    pub name: String,
    /// Corteza sends `null` for an empty list.
    #[serde(default)]
    pub fields: Option<Vec<FieldDoc>>,
    #[serde(rename = "deletedAt", default)]
    pub deleted_at: Option<String>,
}

/// The documented variant (seeds/003): `GET /federation/exposed/modules`
/// answers links to the changed modules.
#[derive(Debug, Serialize)]
pub struct LinkDoc {
    #[serde(rename = "type")]
    pub kind: String,
    pub rel: String,
    pub href: String,
}

#[derive(Debug, Serialize)]
pub struct LinkFilter {
    pub query: String,
    pub page: u32,
    #[serde(rename = "perPage")]
    pub per_page: u32,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct LinkSet {
    pub filter: LinkFilter,
    pub set: Vec<LinkDoc>,
}

/// What a peer's answer tells us: an error message when it refused (also
/// Corteza's HTTP-200 error body), and whether it is a fedsync.
#[derive(Debug, Default, Deserialize)]
pub struct AnswerProbe {
    #[serde(default)]
    pub error: Option<ErrorProbe>,
    #[serde(default)]
    pub fedsync: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorProbe {
    #[serde(default)]
    pub message: String,
}

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

/// A record in the internal data document.
#[derive(Debug, Serialize)]
pub struct RecordDoc {
    #[serde(rename = "recordID")]
    pub record_id: String,
    #[serde(rename = "moduleID")]
    pub module_id: String,
    pub revision: u64,
    pub values: Vec<ValueDoc>,
    #[serde(rename = "namespaceID")]
    pub namespace_id: String,
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

impl RecordDoc {
    pub fn new(
        record: &crate::domain::Record,
        values: &[crate::sync::data::ServedValue],
        namespace_id: &str,
    ) -> RecordDoc {
        RecordDoc {
            record_id: record.id.to_string(),
            module_id: record.module_id.to_string(),
            revision: record.revision,
            values: values
                .iter()
                .map(|v| ValueDoc {
                    name: v.name.clone(),
                    value: Some(v.value.clone()),
                    yours: v.yours,
                })
                .collect(),
            namespace_id: namespace_id.to_owned(),
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
pub struct DataDoc {
    pub filter: DataFilter,
    pub set: Vec<RecordDoc>,
}

/// A data document as a peer sends it.
#[derive(Debug, Deserialize)]
pub struct DataDocIn {
    #[serde(default)]
    pub filter: Option<DataFilterIn>,
    #[serde(default)]
    pub set: Option<Vec<RecordIn>>,
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

#[derive(Debug, Deserialize)]
pub struct RecordIn {
    #[serde(rename = "recordID")]
    pub record_id: String,
    #[serde(default)]
    pub values: Option<Vec<ValueDoc>>,
    #[serde(rename = "createdAt", default)]
    pub created_at: Option<String>,
    #[serde(rename = "updatedAt", default)]
    pub updated_at: Option<String>,
    #[serde(rename = "deletedAt", default)]
    pub deleted_at: Option<String>,
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
