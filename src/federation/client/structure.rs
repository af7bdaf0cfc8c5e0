//! Structure from a peer (`StructurePeer`): a page of its exposed
//! modules, and the structure document read the way a destination must.

use async_trait::async_trait;
use http::Method;

use super::PeerClient;
use super::request::{endpoint, sanitize};
use crate::domain::{Id, ModuleField, NodeId};
use crate::federation::wire::{Envelope, StructureDocIn};
use crate::sync::{PeerError, RemoteModule, StructurePage, StructurePeer};

#[async_trait]
impl StructurePeer for PeerClient {
    async fn structure_page(
        &self,
        base_url: &str,
        shared_node_id: NodeId,
        bearer: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<StructurePage, PeerError> {
        let mut url = url::Url::parse(&endpoint(
            base_url,
            &format!("/nodes/{shared_node_id}/modules/exposed/"),
        ))
        .map_err(|e| PeerError::Protocol(format!("bad peer URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("limit", &limit.to_string());
            // Escaped properly: Corteza's cursors are standard base64 (W14).
            if let Some(cursor) = cursor {
                query.append_pair("pageCursor", cursor);
            }
        }
        let (status, body) = self
            .call::<()>(Method::GET, url.as_str(), Some(bearer), None)
            .await?;
        PeerClient::judge(status, &body)?;
        parse_structure_page(&body)
    }
}

/// Reads a structure document the way a destination must: `response.set`
/// and `response.filter.nextPage`, ids as decimal strings.
pub fn parse_structure_page(body: &[u8]) -> Result<StructurePage, PeerError> {
    let doc: Envelope<StructureDocIn> = serde_json::from_slice(body)
        .map_err(|e| PeerError::Protocol(format!("the structure document does not decode: {e}")))?;
    let id = |what: &str, text: &str| {
        text.parse::<Id>()
            .map_err(|_| PeerError::Protocol(format!("{what} `{}` is not an id", sanitize(text))))
    };
    let optional_id = |text: &Option<String>| text.as_deref().and_then(|t| t.parse::<Id>().ok());
    let mut modules = Vec::new();
    for m in doc.response.set.unwrap_or_default() {
        modules.push(RemoteModule {
            external_id: id("moduleID", &m.module_id)?,
            compose_module_id: optional_id(&m.compose_module_id),
            compose_namespace_id: optional_id(&m.compose_namespace_id),
            handle: m.handle,
            name: m.name,
            fields: m
                .fields
                .unwrap_or_default()
                .into_iter()
                .map(|f| ModuleField {
                    kind: f.kind,
                    name: f.name,
                    label: f.label,
                    is_multi: f.is_multi,
                })
                .collect(),
            deleted: m.deleted_at.is_some_and(|d| !d.is_empty()),
        });
    }
    let next_cursor = doc
        .response
        .filter
        .and_then(|f| f.next_page)
        .filter(|c| !c.is_empty());
    Ok(StructurePage {
        modules,
        next_cursor,
    })
}
