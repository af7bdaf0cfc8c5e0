//! Structure on the wire: the structure document (exposed modules and
//! their fields) as we serve it and as a peer sends it, the documented
//! variant's links to changed modules, and the query of a page request.

use serde::{Deserialize, Serialize};

use super::envelope::{Refused, rfc3339};
use crate::domain::{ExposedModule, NodeId};

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

    }
}
