//! The federation wire: serde twins of what Corteza and fedsync peers send
//! and read. The only place that knows Corteza's JSON.
//!
//! Conventions of the wire: ids are decimal strings; payloads come in
//! `{"response": ...}`, acknowledgements as `{"success":{"message":"OK"}}`,
//! errors as `{"error":{"message": ...}}`. Our own peers add a `fedsync`
//! object to handshake bodies and answers, which Corteza ignores; its absence
//! tells us the peer is Corteza.

pub mod live;

use serde::{Deserialize, Serialize};

use crate::domain::{ExposedModule, NodeId, Timestamp};

/// Our extension, present in what fedsync sends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FedsyncExtension {
    pub version: String,
    /// What the sender can do (`change-notices`); absent from versions
    /// before live changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

impl FedsyncExtension {
    pub fn ours() -> FedsyncExtension {
        FedsyncExtension::with_capabilities(&[])
    }

    pub fn with_capabilities(capabilities: &[String]) -> FedsyncExtension {
        FedsyncExtension {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capabilities: capabilities.to_vec(),
        }
    }

    /// What it says, as the store keeps it.
    pub fn capabilities(&self) -> crate::domain::PeerCapabilities {
        crate::domain::PeerCapabilities {
            version: self.version.chars().take(64).collect(),
            capabilities: self.capabilities.iter().take(32).cloned().collect(),
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
        SuccessBody::with_capabilities(&[])
    }

    /// A handshake's answer: it says what we can do too.
    pub fn with_capabilities(capabilities: &[String]) -> SuccessBody {
        SuccessBody {
            success: Message {
                message: "OK".to_owned(),
            },
            fedsync: FedsyncExtension::with_capabilities(capabilities),
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

impl AnswerProbe {
    /// What a fedsync peer's answer says it can do (`None` from Corteza;
    /// an extension that does not parse says nothing).
    pub fn capabilities(&self) -> Option<crate::domain::PeerCapabilities> {
        let value = self.fedsync.clone()?;
        let extension: FedsyncExtension = serde_json::from_value(value).ok()?;
        Some(extension.capabilities())
    }
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

// ------------------------------------------------------------ request decoding
//
// The pure halves of the peer routes' decoding (the routes read the body and
// the query, then call these), public so that fuzz targets and property tests
// reach them.

/// Largest handshake body read (federation-security 3.2.7).
pub const MAX_HANDSHAKE_BODY: usize = 16 * 1024;
/// Longest token accepted in a handshake body.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A request refused while decoding: the status and the message for
/// Corteza's error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: http::StatusCode,
    pub message: String,
}

impl Refused {
    pub fn new(status: http::StatusCode, message: impl Into<String>) -> Refused {
        Refused {
            status,
            message: message.into(),
        }
    }
}

/// A JSON request body (already known to be JSON and within its cap):
/// 400 when it does not decode (wrong types, duplicate keys, too deep).
pub fn decode_json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refused> {
    serde_json::from_slice(bytes).map_err(|e| {
        Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {e}"),
        )
    })
}

/// A token field that must be present, non-empty and not too long.
pub fn present_token(
    value: Option<String>,
    field: &str,
) -> Result<zeroize::Zeroizing<String>, Refused> {
    match value {
        Some(v) if !v.is_empty() && v.len() <= MAX_TOKEN_LEN => Ok(zeroize::Zeroizing::new(v)),
        Some(v) if v.len() > MAX_TOKEN_LEN => Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is too long"),
        )),
        _ => Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {field} is required"),
        )),
    }
}

/// What a handshake body says, in either spelling.
#[derive(Debug)]
pub struct DecodedHandshake {
    /// The one-time pairing token.
    pub pair_token: zeroize::Zeroizing<String>,
    /// The token the peer gives us for calling it.
    pub auth_token: zeroize::Zeroizing<String>,
    /// The node id the body names (empty when it names none).
    pub body_node_id: String,
    /// Fedsync when the body carries our extension.
    pub peer_kind: crate::domain::PeerKind,
    /// What a fedsync peer says it can do.
    pub capabilities: Option<crate::domain::PeerCapabilities>,
}

/// The handshake body in either spelling: (OTT, token for us, node id named).
pub fn decode_handshake(body: HandshakeInitBody) -> Result<DecodedHandshake, Refused> {
    let peer_kind = if body.fedsync.is_some() {
        crate::domain::PeerKind::Fedsync
    } else {
        crate::domain::PeerKind::Corteza
    };
    let capabilities = body.fedsync.as_ref().map(FedsyncExtension::capabilities);
    // Corteza's spelling first, then the documentation's.
    if body.pair_token.is_some() || body.shared_node_id.is_some() {
        return Ok(DecodedHandshake {
            pair_token: present_token(body.pair_token, "pairToken")?,
            auth_token: present_token(body.auth_token, "authToken")?,
            body_node_id: body.shared_node_id.unwrap_or_default(),
            peer_kind,
            capabilities,
        });
    }
    let Some(uri) = body.node_uri else {
        return Err(Refused::new(
            http::StatusCode::BAD_REQUEST,
            "request invalid: pairToken is required",
        ));
    };
    let parsed = crate::pairing::parse_node_uri(&uri, true).map_err(|_| {
        Refused::new(
            http::StatusCode::BAD_REQUEST,
            "request invalid: nodeURI is not a node URI",
        )
    })?;
    let token = present_token(body.token, "token")?;
    Ok(DecodedHandshake {
        pair_token: parsed.token,
        auth_token: token,
        body_node_id: parsed.node_id.to_string(),
        peer_kind,
        capabilities,
    })
}

/// The bytes of a handshake request body (already known to be JSON):
/// 413 past the cap, 400 when it does not decode or lacks a token.
pub fn decode_handshake_body(bytes: &[u8]) -> Result<DecodedHandshake, Refused> {
    if bytes.len() > MAX_HANDSHAKE_BODY {
        return Err(Refused::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "the body is too large",
        ));
    }
    decode_handshake(decode_json_body::<HandshakeInitBody>(bytes)?)
}

/// The query of a page request: `lastSync` (or `after`), `limit`,
/// `pageCursor`; others, such as Corteza's ignored `query` and `sort`, are
/// ignored too. A negative limit means none; `lastSync` is unix seconds or
/// RFC 3339 within years 1970-9999.
pub fn decode_page_query(
    raw: Option<&str>,
) -> Result<crate::sync::structure::PageRequest, Refused> {
    let mut request = crate::sync::structure::PageRequest::default();
    let bad = |what: &str| {
        Refused::new(
            http::StatusCode::BAD_REQUEST,
            format!("request invalid: {what}"),
        )
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" if !value.is_empty() => {
                let limit: i64 = value.parse().map_err(|_| bad("limit must be a number"))?;
                request.limit = Some(u32::try_from(limit.max(0)).unwrap_or(u32::MAX));
            }
            "lastSync" | "after" if !value.is_empty() => {
                let seconds = match value.parse::<i64>() {
                    Ok(seconds) => seconds,
                    // Corteza's client may send RFC 3339; honour it.
                    Err(_) => chrono::DateTime::parse_from_rfc3339(&value)
                        .map(|t| t.timestamp())
                        .map_err(|_| bad("lastSync must be unix seconds"))?,
                };
                if !(0..=253_402_300_799).contains(&seconds) {
                    return Err(bad("lastSync is out of range"));
                }
                request.last_sync = Some(seconds);
            }
            "pageCursor" if !value.is_empty() => request.cursor = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(request)
}

/// Arbitrary JSON values for property tests, with the wire's own keys
/// among the random ones so the decoders get past their first checks.
#[cfg(test)]
pub(crate) fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    const KEYS: &[&str] = &[
        "response",
        "set",
        "filter",
        "recordID",
        "values",
        "name",
        "value",
        "yours",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "nextPage",
        "resume",
        "total",
        "moduleID",
        "composeModuleID",
        "composeNamespaceID",
        "handle",
        "fields",
        "kind",
        "label",
        "isMulti",
        "pairToken",
        "authToken",
        "sharedNodeID",
        "nodeURI",
        "token",
        "nodeIDB",
        "fedsync",
        "version",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9]{1,20}".prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})"
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        let key = prop_oneof![
            3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
            1 => "[a-zA-Z]{0,8}",
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..7)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The page query decoder is total; `limit` is clamped to
        /// 0..=u32::MAX, `lastSync` outside years 1970-9999 is refused.
        #[test]
        fn page_queries_are_total_and_clamped(
            limit in any::<i64>(),
            last_sync in any::<i64>(),
            junk in "[a-zA-Z0-9=&%+._-]{0,40}",
        ) {
            let request = decode_page_query(Some(&format!("limit={limit}"))).unwrap();
            prop_assert_eq!(request.limit, Some(limit.clamp(0, u32::MAX as i64) as u32));
            let decoded = decode_page_query(Some(&format!("lastSync={last_sync}")));
            if (0..=253_402_300_799).contains(&last_sync) {
                prop_assert_eq!(decoded.unwrap().last_sync, Some(last_sync));
            } else {
                prop_assert_eq!(decoded.unwrap_err().message, "request invalid: lastSync is out of range");
            }
            match decode_page_query(Some(&junk)) {
                Ok(request) => prop_assert!(request.last_sync.is_none_or(|t| (0..=253_402_300_799).contains(&t))),
                Err(refused) => prop_assert_eq!(refused.status, http::StatusCode::BAD_REQUEST),
            }
        }

        /// RFC 3339 `lastSync` values are the same instant in unix seconds.
        #[test]
        fn rfc3339_last_sync_is_unix_seconds(seconds in 0i64..=253_402_300_799, offset_minutes in -1439i32..=1439) {
            let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let at = chrono::DateTime::from_timestamp(seconds, 0).unwrap().with_timezone(&offset);
            let text: String = url::form_urlencoded::byte_serialize(at.to_rfc3339().as_bytes()).collect();
            match decode_page_query(Some(&format!("after={text}"))) {
                Ok(request) => prop_assert_eq!(request.last_sync, Some(seconds)),
                // A local time past 9999-12-31 does not print as RFC 3339.
                Err(refused) => prop_assert_eq!(refused.status, http::StatusCode::BAD_REQUEST),
            }
        }

        /// The handshake body decoder is total on arbitrary bytes and JSON.
        #[test]
        fn handshake_bodies_decode_or_are_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            value in arbitrary_json(),
        ) {
            for body in [bytes, serde_json::to_vec(&value).unwrap()] {
                match decode_handshake_body(&body) {
                    Ok(decoded) => {
                        prop_assert!(!decoded.pair_token.is_empty() && decoded.pair_token.len() <= MAX_TOKEN_LEN);
                        prop_assert!(!decoded.auth_token.is_empty() && decoded.auth_token.len() <= MAX_TOKEN_LEN);
                    }
                    Err(refused) => prop_assert!(matches!(refused.status.as_u16(), 400 | 413)),
                }
            }
        }

        /// Corteza's spelling decodes to its tokens; tokens past the cap are refused.
        #[test]
        fn handshake_tokens_are_bounded(pair_len in 1usize..5000, auth_len in 1usize..5000, fedsync in any::<bool>()) {
            let mut body = serde_json::json!({
                "pairToken": "p".repeat(pair_len),
                "authToken": "a".repeat(auth_len),
                "sharedNodeID": "523615093115650149",
            });
            if fedsync {
                body["fedsync"] = serde_json::json!({"version": "1"});
            }
            let decoded = decode_handshake_body(&serde_json::to_vec(&body).unwrap());
            if pair_len > MAX_TOKEN_LEN {
                prop_assert_eq!(decoded.unwrap_err().message, "request invalid: pairToken is too long");
            } else if auth_len > MAX_TOKEN_LEN {
                prop_assert_eq!(decoded.unwrap_err().message, "request invalid: authToken is too long");
            } else {
                let decoded = decoded.unwrap();
                prop_assert_eq!(decoded.pair_token.len(), pair_len);
                prop_assert_eq!(decoded.auth_token.len(), auth_len);
                prop_assert_eq!(decoded.body_node_id, "523615093115650149");
                let kind = if fedsync { crate::domain::PeerKind::Fedsync } else { crate::domain::PeerKind::Corteza };
                prop_assert_eq!(decoded.peer_kind, kind);
            }
        }
    }

    #[test]
    fn oversized_handshake_bodies_are_refused_before_decoding() {
        let body = vec![b' '; MAX_HANDSHAKE_BODY + 1];
        assert_eq!(
            decode_handshake_body(&body).unwrap_err().status,
            http::StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
